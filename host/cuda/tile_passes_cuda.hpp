// The passes of tile registration over every pixel (core/tile_passes.hpp) on the GPU, seen from
// plain C++ (no CUDA types here). Issue #7: the integral image, the contrast histogram and the
// finder template scan, the vote over rotations and shifts (core/pose_vote.hpp) and the confirm
// step of each candidate pose (core/anchor_confirm.hpp) and the refinement of the finder
// detections on the tile they leave in device memory; the host keeps the rest of registration
// (suppressing neighbours, fitting, choosing). Results
// are the CPU's exactly (tests/test_tile_passes.cpp: CudaPassesAreTheCpuPasses,
// CudaConfirmsAnchorsAsTheCpu, CudaVotesAsTheCpuLoop).
// Compiled in CI; not yet run on a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "qrplate/core/anchor_confirm.hpp"
#include "qrplate/core/pose_vote.hpp"
#include "qrplate/core/stitch_correlation.hpp"

namespace qrplate::host {

// A tile's pixels (packed, stride = width) and integral image as the passes left them in device
// memory, handed over for the code reads (read_codes_cuda.hpp): the scan reader keeps one per
// tile it holds, so a tile goes up once, not once per band of code rows it serves. Opaque to
// plain C++ (its definition is in device_tile.cuh); freed when the last owner lets go.
struct device_tile;

// The pixels and integral image of a kept tile, back in host memory (for tests): width * height
// and (width + 1) * (height + 1) entries.
void download_tile(const device_tile& tile, std::uint16_t* pixels, std::uint32_t* sums);

// One tile at a time, on a stream of its own; device buffers are kept for the next tile.
// Throws host::cuda_error (a qrplate error) when CUDA fails or no device exists.
class tile_passes_cuda {
 public:
  // A tile goes up through two pinned staging buffers of staging_samples samples each: the host
  // fills one (narrowed to bytes where the samples allow, see narrow_samples.hpp) while the
  // other's DMA runs. Pageable memory would cost the same host copy (the driver stages it) at a
  // lower link rate, and 2 bytes a pixel for 8-bit scans.
  static constexpr std::size_t default_staging_samples = std::size_t{1} << 20;
  explicit tile_passes_cuda(std::size_t staging_samples = default_staging_samples);
  ~tile_passes_cuda();
  tile_passes_cuda(const tile_passes_cuda&) = delete;
  tile_passes_cuda& operator=(const tile_passes_cuda&) = delete;

  // How many have been made in this process: one a host thread that registers tiles, for the
  // test that registration keeps to lasting threads (each keeps its buffers, never freed).
  static std::uint64_t made();

  // Pixel bytes sent to the device so far (1 a sample for chunks whose samples fit in 8 bits, 2
  // for the others): what the link carried for the tiles' pixels.
  std::uint64_t uploaded_bytes() const;
  // Of those, the bytes the host copied into the pinned staging first: all but 8-bit bytes given
  // in pinned memory (host_memory.hpp), which go by DMA from where they lie.
  std::uint64_t staged_bytes() const;

  // Uploads a width x height image (row-major, stride = width), builds its integral image with
  // `shift` (scan::build_integral's) into integral ((width + 1) * (height + 1) entries, host
  // memory; nullptr: left on the device only, 4 bytes a pixel less over PCIe) and returns the
  // contrast scan::estimate_contrast gives for module_px. bytes (optional): the same samples as
  // bytes (sim::gray_image::bytes), sent as they are rather than narrowed from `pixels` (which the
  // upload then does not read).
  double integral_and_contrast(const std::uint16_t* pixels, int width, int height, int shift, double module_px,
                               std::uint32_t* integral, const std::uint8_t* bytes = nullptr);
  // The device's core::contrast_from_histogram (what integral_and_contrast runs on its histogram
  // in device memory, so that only two bins come back) on a host histogram of 65536 bins holding
  // `count` boxes. For tests of the launch.
  double contrast_of_histogram(const std::uint32_t* histogram, std::size_t count);

  // The finder scan over the image of the last call (core::finder_scan_plan at module_px): the
  // grid positions j * columns + i whose response passes `threshold`, ascending; for sign +1
  // into out[0], for -1 into out[1]; polarity 0 asks for both, +1 or -1 for one.
  // responses (optional): each candidate's response, as finder_scan_plan::response gives it.
  void finder_candidates(double module_px, float threshold, int polarity, std::vector<std::uint32_t> out[2],
                         std::vector<float> responses[2] = nullptr);

  // Registration's refinement of `count` finder detections on a kept tile (the climb of scan's
  // suppress_and_refine: core::find_anchor over sign x the finder response, +-step pixels):
  // uv[2 i], uv[2 i + 1] and responses[i] in and out, host arrays.
  void refine_detections(const device_tile& tile, double module_px, int sign, int step, double* uv, float* responses,
                         std::size_t count);

  // Hands over the device pixels and integral image of the last integral_and_contrast call (the
  // next call puts its tile in new buffers); nullptr before any call, after a second keep_tile
  // for one tile, or when no device memory could be spared for the tile (it then went through
  // scratch buffers and the reads upload it again).
  std::shared_ptr<const device_tile> keep_tile();

  // Registration's confirm step on a kept tile: answers[i] = core::confirm_anchor for anchors[i]
  // under to_pixel (host arrays of `count`), with the tile's integral image on the device.
  void confirm_anchors(const device_tile& tile, const core::affine_map& to_pixel, const core::expected_anchor* anchors,
                       std::size_t count, double module_px, float sign, float min_response,
                       core::anchor_answer* answers)
  {
    confirm_anchors(tile, &to_pixel, 1, anchors, count, module_px, sign, min_response, answers);
  }
  // The same for pose_count poses at once (one upload of the anchors, one launch, one wait):
  // answers[p * count + i] for anchors[i] under poses[p]. Host arrays.
  void confirm_anchors(const device_tile& tile, const core::affine_map* poses, std::size_t pose_count,
                       const core::expected_anchor* anchors, std::size_t count, double module_px, float sign,
                       float min_response, core::anchor_answer* answers);

  // Stitching's coarse pass: scores[((dy + reach) / 2) * (reach + 1) + (dx + reach) / 2] =
  // core::sparse_correlation(patch, dx, dy) for every coarse shift (dx, dy in -reach, -reach + 2,
  // ..., reach). patch.a (pw x ph) and patch.b (bw x (2 ph + 2 reach)) are host arrays, as is
  // scores ((reach + 1)^2 entries).
  void stitch_scores(const core::stitch_patch& patch, double* scores);

  // Registration's vote (core/pose_vote.hpp) for `rotations` rotations ((cos, sin) at turns[2 r],
  // turns[2 r + 1]) over `pairs` (detection, expected finder) pairs: pair k is detection owner[k]
  // (points[2 owner[k]], points[2 owner[k] + 1], of `detections`) with the finder (finders[2 k],
  // finders[2 k + 1]). entries: one per touched bin, in no particular order (sorted by rotation,
  // then first_pair, they are the CPU loop's list; scan::keep_proposals_worth_checking sorts only
  // the few registration keeps). Host arrays.
  void vote_poses(const core::pose_vote_grid& grid, const double* points, std::size_t detections,
                  const double* finders, const std::uint32_t* owner, std::size_t pairs, const double* turns,
                  int rotations, std::vector<core::pose_vote_entry>& entries);
  // The same vote, and of its proposals only those registration goes on to check (the device's
  // scan::keep_proposals_worth_checking: core::better_proposal and proposal_cutoff, in two more
  // launches) come back, in no particular order (scan::sort_in_loop_order gives the CPU loop's);
  // returns the cutoff (0: no proposals). A tile's vote has tens of thousands of proposals (~40
  // bytes each, as much as its 8-bit pixels) and a few dozen worth checking.
  double proposals_worth_checking(const core::pose_vote_grid& grid, const double* points, std::size_t detections,
                                  const double* finders, const std::uint32_t* owner, std::size_t pairs,
                                  const double* turns, int rotations, std::vector<core::pose_vote_entry>& entries);
  // The device's keep on host entries (of one vote: unique (rotation, first_pair)): `entries`
  // becomes those kept, in no particular order; returns the cutoff. For tests of the launches.
  double keep_proposals_worth_checking(std::vector<core::pose_vote_entry>& entries);

 private:
  std::size_t vote(const core::pose_vote_grid& grid, const double* points, std::size_t detections,
                   const double* finders, const std::uint32_t* owner, std::size_t pairs, const double* turns,
                   int rotations, core::pose_vote_entry*& d_entries, std::uint32_t*& d_count);
  void download_entries(const core::pose_vote_entry* d_entries, std::uint32_t count,
                        std::vector<core::pose_vote_entry>& entries);
  double keep_on_device(const core::pose_vote_entry* d_entries, std::uint32_t* d_count, std::size_t capacity,
                        std::vector<core::pose_vote_entry>& entries);

  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace qrplate::host
