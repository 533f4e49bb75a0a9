// The CUDA backend of reading codes from a scan tile, seen from plain C++ (no CUDA types here).
// Issue #7's first piece: the per-code core (core/read_code.hpp) on the GPU for codes wholly
// inside one tile, whose maps the host measured. Compiled in CI; not yet run on a GPU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "qrplate/core/read_code.hpp"

namespace qrplate::host {

// Reads `count` codes wholly inside `image` (host pixels) through maps[i]: outcomes[i] and
// bytes[i * spec::max_data_codewords ...] as core::read_code gives them on the CPU (the same
// statuses, levels and bytes: the CPU/CUDA identity test holds it to that). Throws
// host::cuda_error (a qrplate error) when CUDA fails or no device exists.
void read_codes_cuda(const core::version_plan& plan, const core::gray_view& image, const core::code_map* maps,
                     std::size_t count, double module_px, std::uint8_t erasure_threshold, core::code_outcome* outcomes,
                     std::uint8_t* bytes);

}  // namespace qrplate::host
