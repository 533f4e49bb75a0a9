// Launchers of the registration kernels (issue #7): the passes over every pixel of a tile that
// core/tile_passes.hpp describes, and the confirm step of core/anchor_confirm.hpp. The only place with <<<>>> for them is registration_kernels.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "qrplate/core/anchor_confirm.hpp"
#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/pose_vote.hpp"
#include "qrplate/core/stitch_correlation.hpp"
#include "qrplate/core/tile_passes.hpp"

namespace qrplate::kernels {

// Summed-area table of a width x height image (row-major, stride = width) into sums
// ((width + 1) x (height + 1), core::integral_view's layout, modulo 2^32, each pixel >> shift):
// a block-wide scan per row, then running sums down chunks of each column and the chunks'
// carries. Row 0 of sums must be zero already (the caller clears it); every other entry is
// written. scratch: integral_scratch_entries(width, height) entries of device memory.
void launch_integral_image(const std::uint16_t* pixels, int width, int height, int shift, std::uint32_t* sums,
                           std::uint32_t* scratch, cudaStream_t stream);
std::size_t integral_scratch_entries(int width, int height);

// Stitching's coarse pass: scores[((dy + reach) / 2) * (reach + 1) + (dx + reach) / 2] =
// core::sparse_correlation(patch, dx, dy) for every dx, dy in -reach, -reach + 2, ..., reach (a
// thread per shift; patch.a and patch.b in device memory).
void launch_stitch_scores(core::stitch_patch patch, double* scores, cudaStream_t stream);

// samples[k] = bytes[k] for k < count: a tile that went up as 8-bit samples, widened to the
// 16-bit samples every pass reads (a thread per sample; HBM, far from the PCIe link's limit).
void launch_widen_samples(const std::uint8_t* bytes, std::uint16_t* samples, std::size_t count, cudaStream_t stream);

// histogram[bin] += 1 for every box of `grid` (65536 bins, zeroed by the caller).
void launch_contrast_histogram(core::integral_view iv, core::contrast_grid grid, std::uint32_t* histogram,
                               cudaStream_t stream);
// The bins of a 65536-bin histogram where the running count first exceeds lo and hi (the ranks of
// core::contrast_ranks; hi below the histogram's total) into found[0] and found[1]: what
// core::contrast_from_histogram subtracts. One block; device pointers.
void launch_contrast_percentiles(const std::uint32_t* histogram, std::uint32_t lo, std::uint32_t hi, int* found,
                                 cudaStream_t stream);

// responses[j * plan.columns + i] = plan.response(iv, i, j) for every grid position.
void launch_finder_responses(core::integral_view iv, core::finder_scan_plan plan, float* responses,
                             cudaStream_t stream);

// The positions p < count with sign * responses[p] >= threshold, ascending, into selected;
// their number into *selected_count. temp / temp_bytes: CUB's scratch (temp = nullptr: only
// sets temp_bytes).
cudaError_t select_finder_candidates(void* temp, std::size_t& temp_bytes, const float* responses, std::uint32_t count,
                                     float sign, float threshold, std::uint32_t* selected,
                                     std::uint32_t* selected_count, cudaStream_t stream);

// out[i] = responses[selected[i]] for i < count: the responses of the selected candidates.
void launch_gather_responses(const float* responses, const std::uint32_t* selected, std::uint32_t count, float* out,
                             cudaStream_t stream);

// Registration's refinement of the finder detections (scan's suppress_and_refine, after its
// suppression): for i < count, core::find_anchor climbs sign x the finder template's response
// from (uv[2 i], uv[2 i + 1]) within +-step pixels and writes the refined point back, and the
// response at its best whole pixel into responses[i] (a thread per detection).
void launch_refine_detections(core::integral_view iv, double module_px, float sign, int step, double* uv,
                              float* responses, std::size_t count, cudaStream_t stream);

// answers[p * count + i] = core::confirm_anchor(iv, poses[p], anchors[i], ...) for i < count,
// p < pose_count (at most 65535): registration's confirm step for its candidate poses, a thread
// per (expected anchor, pose) (all pointers device memory).
void launch_confirm_anchors(core::integral_view iv, const core::affine_map* poses, std::size_t pose_count,
                            const core::expected_anchor* anchors, std::size_t count, double module_px, float sign,
                            float min_response, core::anchor_answer* answers, cudaStream_t stream);

// Registration's vote for `rotations` rotations ((cos, sin) in turns[2 r], turns[2 r + 1]) over
// `pairs` pairs: pair k is detection owner[k] (plate point points[2 owner[k]], points[2 owner[k]
// + 1]) with expected finder (finders[2 k], finders[2 k + 1]). votes and first: rotations x
// grid.bins() entries, zero and 0xffffffff on entry; pose_vote_pairs adds the votes and keeps
// the first pair of each bin, pose_vote_proposals appends one entry per touched bin to entries
// (*count of them; any order, at most `capacity`).
void launch_pose_vote_pairs(core::pose_vote_grid grid, const double* points, const double* finders,
                            const std::uint32_t* owner, std::size_t pairs, const double* turns, int rotations,
                            int* votes, std::uint32_t* first, cudaStream_t stream);
void launch_pose_vote_proposals(core::pose_vote_grid grid, int rotations, const int* votes, const std::uint32_t* first,
                                core::pose_vote_entry* entries, std::uint32_t capacity, std::uint32_t* count,
                                cudaStream_t stream);
// What registration checks of them (scan::keep_proposals_worth_checking on the device): the
// cutoff of the best of entries[0, min(*count, capacity)) into *cutoff (0 when there are none),
// and the entries at or above it appended to kept (*kept_count, zero on entry; any order; kept
// holds `capacity`). Two launches; all pointers device memory.
void launch_pose_vote_keep(const core::pose_vote_entry* entries, const std::uint32_t* count, std::uint32_t capacity,
                           double* cutoff, core::pose_vote_entry* kept, std::uint32_t* kept_count, cudaStream_t stream);

}  // namespace qrplate::kernels
