// Launchers of the encode kernels (the only place with <<<>>> is encode_kernels.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "qrplate/core/encode_symbol.hpp"

namespace qrplate::kernels {

// One thread per code in a grid-stride loop over the shared per-code core; thread t uses
// workspaces[t] (workspace_count of them, one per launched thread).
void launch_encode_byte_payloads(const core::version_plan* plan, const std::uint8_t* bytes, const std::uint64_t* offsets,
                                 std::uint64_t count, int mask, core::encode_workspace* workspaces,
                                 unsigned workspace_count, std::uint64_t* modules, std::uint8_t* masks,
                                 std::uint8_t* status, cudaStream_t stream);

}  // namespace qrplate::kernels
