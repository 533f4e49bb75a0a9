// The CUDA backend of reading codes from a scan tile, seen from plain C++ (no CUDA types here).
// Issue #7's first pieces: the per-code core (core/read_code.hpp) on the GPU for codes wholly
// inside one tile, with maps given or measured on the GPU. Run on an H100 (docs/PERFORMANCE.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cuda/tile_passes_cuda.hpp"
#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_code.hpp"

namespace qrplate::host {

// The kernel behind the calls below: a block per code (core/read_cooperative.hpp), the same
// compiled for twice the resident blocks per SM (at most 128 registers per thread instead of 176;
// which is faster is for the GPU benchmarks to say), or the plain one thread per code over
// read_code, kept as their reference on the GPU.
enum class cuda_read_kernel { cooperative, cooperative_capped, per_thread };

// The kernel the scan reader and `qrplate bench --decode` use. On an H100 (2026-11-24) the capped
// form read v10-M 1.5x faster at 2, 3 and 4 px/module and v40-L 1.4x at 2 px, and v40-L within 1%
// at 3 and 4 px: never measurably slower. Same results: the same code, compiled twice.
constexpr cuda_read_kernel scan_read_kernel = cuda_read_kernel::cooperative_capped;

// Reads `count` codes wholly inside `image` (host pixels) through maps[i]: outcomes[i] and
// bytes[i * spec::max_data_codewords ...] as core::read_code gives them on the CPU (the same
// statuses, levels and bytes: the CPU/CUDA identity test holds it to that). Throws
// host::cuda_error (a qrplate error) when CUDA fails or no device exists.
void read_codes_cuda(const core::version_plan& plan, const core::gray_view& image, const core::code_map* maps,
                     std::size_t count, double module_px, std::uint8_t erasure_threshold, core::code_outcome* outcomes,
                     std::uint8_t* bytes, cuda_read_kernel kernel = cuda_read_kernel::cooperative);

// The anchor search too: code i is the one whose module (0, 0) is plate module (origins[2 i],
// origins[2 i + 1]); its map is measured on the GPU in `tile` (whose integral image, tile.iv, is
// host memory here and goes up with the image) as core::measure_code_map does on the CPU, then
// read as above.
void measure_and_read_codes_cuda(const core::version_plan& plan, const core::gray_view& image,
                                 const core::tile_anchor_view& tile, const double* origins, std::size_t count,
                                 double module_px, std::uint8_t erasure_threshold, core::code_outcome* outcomes,
                                 std::uint8_t* bytes, cuda_read_kernel kernel = cuda_read_kernel::cooperative);

// The codes of several tiles in one launch (cooperative kernel): tiles[k] is a tile's image (host
// pixels), its registered view (host integral image) and the origins of its `count` codes, as for
// measure_and_read_codes_cuda. outcomes and bytes in the order of the tiles, then of their codes.
// A tile whose pixels and integral image are already on the device (`resident`, from the
// registration passes: tile_passes_cuda::keep_tile) is read there; the others go up for the
// call, at most 64 of them at a time (launches are split to bound the device memory of a call).
struct tile_read_request {
  core::gray_view image;
  core::tile_anchor_view tile;
  const double* origins;
  std::size_t count;
  const device_tile* resident = nullptr;  // must hold `image` and tile.iv (same size and shift;
                                          // tile.iv.sums may then be null)
};
// kernel: cooperative or cooperative_capped.
void measure_and_read_tiles_cuda(const core::version_plan& plan, const tile_read_request* tiles, std::size_t tile_count,
                                 double module_px, std::uint8_t erasure_threshold, core::code_outcome* outcomes,
                                 std::uint8_t* bytes, cuda_read_kernel kernel = cuda_read_kernel::cooperative);

// Codes no tile holds whole (core::read_code_across; a GPU block per code,
// core/read_across_cooperative.hpp): codes[i] lies in tiles[codes[i].tiles[k]], k <
// codes[i].count, given as for measure_and_read_tiles_cuda (resident tiles read in place, the
// others uploaded, all in one launch; origins and count unused).
// outcomes[i] and bytes[i * spec::max_data_codewords ...] as the CPU's read_code_across gives them.
void read_across_tiles_cuda(const core::version_plan& plan, const tile_read_request* tiles, std::size_t tile_count,
                            const core::across_code* codes, std::size_t count, double module_px,
                            std::uint8_t erasure_threshold, core::code_outcome* outcomes, std::uint8_t* bytes);

// For benchmarks: one image and its codes' maps uploaded once; run() reads every code on the GPU
// with the data already there and returns the kernel's seconds (CUDA events).
class resident_read {
 public:
  resident_read(const core::version_plan& plan, const core::gray_view& image, const core::code_map* maps,
                std::size_t count, double module_px, std::uint8_t erasure_threshold);
  ~resident_read();
  resident_read(const resident_read&) = delete;
  resident_read& operator=(const resident_read&) = delete;

  double run(cuda_read_kernel kernel);
  std::size_t decoded() const;  // codes of the last run whose bytes are their content

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace qrplate::host
