// Launchers of the encode kernels (the only place with <<<>>> is encode_kernels.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "qrplate/core/encode_cooperative.hpp"
#include "qrplate/core/encode_symbol.hpp"

namespace qrplate::kernels {

// Plain form: one thread per code in a grid-stride loop over the per-code core; thread t uses
// workspaces[t] (workspace_count of them, one per launched thread; ~30 KB each, in global
// memory). The reference the cooperative kernel is held to on a GPU.
void launch_encode_byte_payloads(const core::version_plan* plan, const std::uint8_t* bytes, const std::uint64_t* offsets,
                                 std::uint64_t count, int mask, core::encode_workspace* workspaces,
                                 unsigned workspace_count, std::uint64_t* modules, std::uint8_t* masks,
                                 std::uint8_t* status, cudaStream_t stream);

// Cooperative form (core/encode_cooperative.hpp): blocks of core::cooperative_block_threads
// threads, each encoding 256 / core::cooperative_threads_per_code(size) codes at a time in shared memory,
// grid-stride over the batch. plan and tables are device copies; `size` is plan->size (needed on
// the host to size the launch). Returns the first failed CUDA call's status, or the launch's.
cudaError_t launch_encode_cooperative(const core::version_plan* plan, const core::cooperative_tables* tables,
                                      const core::cooperative_layout& layout, int size, const std::uint8_t* bytes,
                                      const std::uint64_t* offsets, std::uint64_t count, int mask,
                                      std::uint64_t* modules, std::uint8_t* masks, std::uint8_t* status,
                                      cudaStream_t stream) noexcept;

}  // namespace qrplate::kernels
