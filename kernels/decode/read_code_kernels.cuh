// Launchers of the read-side kernels (issue #7; the only place with <<<>>> is
// read_code_kernels.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_across_cooperative.hpp"
#include "qrplate/core/read_code.hpp"
#include "qrplate/core/read_cooperative.hpp"

namespace qrplate::kernels {

// One thread per code in a grid-stride loop over core::read_code (sampling, threshold plane,
// Reed-Solomon with erasures) for codes wholly inside one image; thread t uses workspaces[t]
// (workspace_count of them, a multiple of the block size). bytes: count x
// spec::max_data_codewords. The plain kernel: one thread walks a whole code, so loads are
// neither coalesced nor shared; the GPU-side reference of the cooperative kernel below.
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

// Cooperative form (core/read_cooperative.hpp): a block of cooperative_read_block threads per
// code, grid-stride over the batch's codes (which may lie in many tiles); block b uses
// batch.workspaces[b] (and batch.scratch_maps[b] when measuring), so `blocks` of each are needed
// (cooperative_read_blocks gives the count). Returns the launch's status.
// register_capped: the same kernel compiled for at least 4 resident blocks per SM (ptxas, sm_90:
// 128 registers per thread and 44 bytes of spills) instead of the compiler's choice (176
// registers: 2 blocks per SM); which reads faster is for the GPU benchmarks to say.
inline constexpr unsigned cooperative_read_block = 128;
unsigned cooperative_read_blocks(std::uint64_t count);  // blocks worth launching for count codes (>= 1)
cudaError_t launch_read_codes_cooperative(const core::cooperative_read_batch& batch, unsigned blocks,
                                          cudaStream_t stream, bool register_capped = false) noexcept;

// Codes no tile holds whole (core/read_across_cooperative.hpp, held to
// core::measure_and_read_across): a block of cooperative_read_block threads per code, grid-stride
// over the batch; block b uses batch.workspaces[b] and batch.maps[b * core::max_across ...], so
// `blocks` of each are needed (read_across_blocks gives the count). Returns the launch's status.
unsigned read_across_blocks(std::uint64_t count);  // blocks worth launching for count codes (>= 1)
cudaError_t launch_read_across(const core::across_read_batch& batch, unsigned blocks, cudaStream_t stream) noexcept;

}  // namespace qrplate::kernels
