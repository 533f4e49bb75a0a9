// Launchers of the read-side kernels (issue #7; the only place with <<<>>> is
// read_code_kernels.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/read_code.hpp"

namespace qrplate::kernels {

// One thread per code in a grid-stride loop over core::read_code (sampling, threshold plane,
// Reed-Solomon with erasures) for codes wholly inside one image; thread t uses workspaces[t]
// (workspace_count of them, a multiple of the block size). bytes: count x
// spec::max_data_codewords. A first, plain kernel: one thread walks a whole code, so loads are
// neither coalesced nor shared; a block-per-code fast path is held to it later.
void launch_read_codes(const core::version_plan* plan, core::gray_view image, const core::code_map* maps,
                       std::uint64_t count, double module_px, std::uint8_t erasure_threshold,
                       core::read_code_workspace* workspaces, unsigned workspace_count, std::uint8_t* bytes,
                       core::code_outcome* outcomes, cudaStream_t stream);

// The same, each thread first measuring its code's map in the tile (core::measure_code_map: the
// code's own finder and alignment patterns, searched in tile.iv, a device integral image) for the
// code whose module (0, 0) is plate module (origins[2 i], origins[2 i + 1]); maps: one scratch
// map per thread (workspace_count).
void launch_measure_and_read_codes(const core::version_plan* plan, core::gray_view image,
                                   core::tile_anchor_view tile, const double* origins, std::uint64_t count,
                                   double module_px, std::uint8_t erasure_threshold,
                                   core::read_code_workspace* workspaces, core::code_map* maps,
                                   unsigned workspace_count, std::uint8_t* bytes, core::code_outcome* outcomes,
                                   cudaStream_t stream);

inline constexpr unsigned read_codes_block = 128;

}  // namespace qrplate::kernels
