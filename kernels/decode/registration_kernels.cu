#include "decode/registration_kernels.cuh"

#include <algorithm>
#include <cub/block/block_scan.cuh>
#include <cmath>
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

namespace qrplate::kernels {
namespace {

constexpr int row_scan_threads = 256;

// One block per image row y: sums[(y + 1) * (width + 1) + x + 1] = the row's prefix sum up to x.
__global__ void integral_rows_kernel(const std::uint16_t* pixels, int width, int shift, std::uint32_t* sums)
{
  using block_scan = cub::BlockScan<std::uint32_t, row_scan_threads>;
  __shared__ typename block_scan::TempStorage temp;
  const int y = static_cast<int>(blockIdx.x);
  const std::size_t w1 = static_cast<std::size_t>(width) + 1;
  const std::uint16_t* row = pixels + static_cast<std::size_t>(y) * width;
  std::uint32_t* out = sums + (static_cast<std::size_t>(y) + 1) * w1;
  if (threadIdx.x == 0) out[0] = 0;
  std::uint32_t carry = 0;  // modulo 2^32, as on the host
  for (int x0 = 0; x0 < width; x0 += row_scan_threads) {
    const int x = x0 + static_cast<int>(threadIdx.x);
    const std::uint32_t v = x < width ? static_cast<std::uint32_t>(row[x] >> shift) : 0u;
    std::uint32_t inclusive = 0, total = 0;
    block_scan(temp).InclusiveSum(v, inclusive, total);
    if (x < width) out[x + 1] = carry + inclusive;
    carry += total;
    __syncthreads();  // temp is reused by the next chunk
  }
}

// The column pass in two steps, so that a tile's ~1,000 columns give tens of thousands of threads
// rather than ~1,000 (a thread per column walking every row would leave most of the GPU idle and
// wait on each row's latency in turn). Rows 1..height are cut into chunks of column_chunk_rows.
constexpr int column_chunk_rows = 32;

// Thread (x, chunk): the running sum down its chunk of column x, in place; the chunk's total
// into totals[chunk * (width + 1) + x].
__global__ void integral_column_chunks_kernel(std::uint32_t* sums, int width, int height, std::uint32_t* totals)
{
  const int x = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const int chunk = static_cast<int>(blockIdx.y);
  if (x > width) return;
  const std::size_t w1 = static_cast<std::size_t>(width) + 1;
  const int y0 = 1 + chunk * column_chunk_rows;
  const int y1 = y0 + column_chunk_rows <= height + 1 ? y0 + column_chunk_rows : height + 1;
  std::uint32_t acc = 0;  // modulo 2^32, as on the host: any order of the adds gives the same sums
  for (int y = y0; y < y1; ++y) {
    std::uint32_t* p = sums + static_cast<std::size_t>(y) * w1 + x;
    acc += *p;
    *p = acc;
  }
  totals[static_cast<std::size_t>(chunk) * w1 + x] = acc;
}

// Thread (x, chunk > 0): adds the totals of the chunks above it to its chunk of column x.
__global__ void integral_column_carries_kernel(std::uint32_t* sums, int width, int height,
                                               const std::uint32_t* totals)
{
  const int x = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const int chunk = static_cast<int>(blockIdx.y) + 1;
  if (x > width) return;
  const std::size_t w1 = static_cast<std::size_t>(width) + 1;
  std::uint32_t carry = 0;
  for (int c = 0; c < chunk; ++c) carry += totals[static_cast<std::size_t>(c) * w1 + x];
  const int y0 = 1 + chunk * column_chunk_rows;
  const int y1 = y0 + column_chunk_rows <= height + 1 ? y0 + column_chunk_rows : height + 1;
  for (int y = y0; y < y1; ++y) sums[static_cast<std::size_t>(y) * w1 + x] += carry;
}

__global__ void contrast_histogram_kernel(core::integral_view iv, core::contrast_grid grid, std::uint32_t* histogram)
{
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= grid.boxes()) return;
  const int i = static_cast<int>(k % static_cast<std::size_t>(grid.columns));
  const int j = static_cast<int>(k / static_cast<std::size_t>(grid.columns));
  atomicAdd(histogram + grid.bin(iv, i, j), 1u);
}

constexpr int percentile_threads = 256;

// One block: the bins where the running count of the histogram first passes lo and hi (the ranks
// core::contrast_from_histogram looks for) into found[0] and found[1]. Each thread owns a run of
// consecutive bins; a block scan of the runs' totals gives the count below each run, so exactly
// one thread sees the count cross each rank, in one bin.
__global__ void contrast_percentiles_kernel(const std::uint32_t* histogram, std::uint32_t lo, std::uint32_t hi,
                                            int* found)
{
  using block_scan = cub::BlockScan<std::uint32_t, percentile_threads>;
  __shared__ typename block_scan::TempStorage temp;
  constexpr int run = core::contrast_histogram_bins / percentile_threads;
  const int first = static_cast<int>(threadIdx.x) * run;
  std::uint32_t own = 0;
  for (int v = first; v < first + run; ++v) own += histogram[v];
  std::uint32_t inclusive = 0, total = 0;
  block_scan(temp).InclusiveSum(own, inclusive, total);
  std::uint32_t seen = inclusive - own;
  for (int v = first; v < first + run; ++v) {
    const std::uint32_t before = seen;
    seen += histogram[v];
    if (before <= lo && seen > lo) found[0] = v;
    if (before <= hi && seen > hi) found[1] = v;
  }
}

__global__ void finder_responses_kernel(core::integral_view iv, core::finder_scan_plan plan, float* responses)
{
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= plan.positions()) return;
  const int i = static_cast<int>(k % static_cast<std::size_t>(plan.columns));
  const int j = static_cast<int>(k / static_cast<std::size_t>(plan.columns));
  responses[k] = plan.response(iv, i, j);
}

__global__ void stitch_scores_kernel(core::stitch_patch patch, double* scores)
{
  const int side = patch.reach + 1;  // coarse shifts per axis
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= static_cast<std::size_t>(side) * side) return;
  const int dx = -patch.reach + 2 * static_cast<int>(k % side), dy = -patch.reach + 2 * static_cast<int>(k / side);
  scores[k] = core::sparse_correlation(patch, dx, dy);
}

__global__ void widen_samples_kernel(const std::uint8_t* bytes, std::uint16_t* samples, std::size_t count)
{
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k < count) samples[k] = bytes[k];
}

__global__ void gather_responses_kernel(const float* responses, const std::uint32_t* selected, std::uint32_t count,
                                        float* out)
{
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k < count) out[k] = responses[selected[k]];
}

__global__ void refine_detections_kernel(core::integral_view iv, double module_px, float sign, int step, double* uv,
                                         float* responses, std::size_t count)
{
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= count) return;
  const core::pattern_probe<4> probe(iv, module_px);
  double u = uv[2 * k], v = uv[2 * k + 1];
  float best = responses[k];
  // min_response -infinity: the climb always succeeds, as the host's refinement asks.
  core::find_anchor([&](int px, int py) { return sign * probe(px, py); }, u, v, step, -INFINITY, &best);
  uv[2 * k] = u;
  uv[2 * k + 1] = v;
  responses[k] = best;
}

// Thread (k, pose blockIdx.y): anchor k under poses[blockIdx.y].
__global__ void confirm_anchors_kernel(core::integral_view iv, const core::affine_map* poses,
                                       const core::expected_anchor* anchors, std::size_t count, double module_px,
                                       float sign, float min_response, core::anchor_answer* answers)
{
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= count) return;
  const std::size_t pose = blockIdx.y;
  const core::pattern_probe<4> finder(iv, module_px);
  const core::pattern_probe<3> alignment(iv, module_px);
  answers[pose * count + k] =
      core::confirm_anchor(iv, poses[pose], anchors[k], module_px, sign, min_response, finder, alignment);
}

__global__ void pose_vote_pairs_kernel(core::pose_vote_grid grid, const double* points, const double* finders,
                                       const std::uint32_t* owner, std::size_t pairs, const double* turns, int* votes,
                                       std::uint32_t* first)
{
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= pairs) return;
  const unsigned r = blockIdx.y;
  const std::uint32_t i = owner[k];
  double qx, qy;
  grid.turn(points[2 * i], points[2 * i + 1], turns[2 * r], turns[2 * r + 1], qx, qy);
  std::uint32_t bin;
  if (!grid.bin_of(qx, qy, finders[2 * k], finders[2 * k + 1], bin)) return;
  const std::size_t at = r * grid.bins() + bin;
  atomicAdd(votes + at, 1);
  atomicMin(first + at, static_cast<std::uint32_t>(k));
}

__global__ void pose_vote_proposals_kernel(core::pose_vote_grid grid, int rotations, const int* votes,
                                           const std::uint32_t* first, core::pose_vote_entry* entries,
                                           std::uint32_t capacity, std::uint32_t* count)
{
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  const std::size_t bins = grid.bins();
  if (k >= bins * static_cast<std::size_t>(rotations)) return;
  if (votes[k] == 0) return;
  const std::size_t r = k / bins;
  core::pose_vote_entry e;
  e.rotation = static_cast<std::uint32_t>(r);
  e.first_pair = first[k];
  grid.proposal(votes + r * bins, static_cast<std::uint32_t>(k - r * bins), e.score, e.sx, e.sy, e.value);
  const std::uint32_t slot = atomicAdd(count, 1u);
  if (slot < capacity) entries[slot] = e;
}

constexpr unsigned keep_best_threads = 256;

// One block: the best of entries[0, min(*count, capacity)) (core::better_proposal) and its cutoff
// (core::proposal_cutoff) into *cutoff; 0 when there are none. Each thread keeps the best index of
// its strided share, then a tree over the block: better_proposal is a strict total order on one
// vote's entries, so the order of the comparisons cannot change the answer.
__global__ void pose_vote_best_kernel(const core::pose_vote_entry* entries, const std::uint32_t* count,
                                      std::uint32_t capacity, double* cutoff)
{
  constexpr std::uint32_t none = 0xffffffffu;
  __shared__ std::uint32_t best[keep_best_threads];
  const std::uint32_t n = *count < capacity ? *count : capacity;
  std::uint32_t mine = none;
  for (std::uint32_t k = threadIdx.x; k < n; k += blockDim.x)
    if (mine == none || core::better_proposal(entries[k], entries[mine])) mine = k;
  best[threadIdx.x] = mine;
  __syncthreads();
  for (unsigned half = keep_best_threads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      const std::uint32_t other = best[threadIdx.x + half], current = best[threadIdx.x];
      if (other != none && (current == none || core::better_proposal(entries[other], entries[current])))
        best[threadIdx.x] = other;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *cutoff = best[0] == none ? 0.0 : core::proposal_cutoff(entries[best[0]]);
}

// Appends the entries at or above *cutoff to kept (*kept_count of them, any order).
__global__ void pose_vote_keep_kernel(const core::pose_vote_entry* entries, const std::uint32_t* count,
                                      std::uint32_t capacity, const double* cutoff, core::pose_vote_entry* kept,
                                      std::uint32_t* kept_count)
{
  const std::uint32_t n = *count < capacity ? *count : capacity;
  const double c = *cutoff;
  for (std::uint32_t k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
    if (entries[k].value < c) continue;
    kept[atomicAdd(kept_count, 1u)] = entries[k];
  }
}

// The host's test (scan_finder_responses): r >= threshold for +1, -r >= threshold for -1.
struct passes_threshold {
  const float* responses;
  float sign, threshold;
  __device__ bool operator()(std::uint32_t p) const { return sign * responses[p] >= threshold; }
};

unsigned blocks_for(std::size_t items, unsigned threads)
{
  return static_cast<unsigned>((items + threads - 1) / threads);
}

}  // namespace

std::size_t integral_scratch_entries(int width, int height)
{
  const std::size_t chunks = (static_cast<std::size_t>(height) + column_chunk_rows - 1) / column_chunk_rows;
  return chunks * (static_cast<std::size_t>(width) + 1);
}

void launch_integral_image(const std::uint16_t* pixels, int width, int height, int shift, std::uint32_t* sums,
                           std::uint32_t* scratch, cudaStream_t stream)
{
  if (width <= 0 || height <= 0) return;
  integral_rows_kernel<<<static_cast<unsigned>(height), row_scan_threads, 0, stream>>>(pixels, width, shift, sums);
  constexpr unsigned threads = 128;
  const unsigned chunks = static_cast<unsigned>((height + column_chunk_rows - 1) / column_chunk_rows);
  const dim3 grid(blocks_for(static_cast<std::size_t>(width) + 1, threads), chunks);
  integral_column_chunks_kernel<<<grid, threads, 0, stream>>>(sums, width, height, scratch);
  if (chunks > 1) {
    const dim3 carry_grid(grid.x, chunks - 1);
    integral_column_carries_kernel<<<carry_grid, threads, 0, stream>>>(sums, width, height, scratch);
  }
}

void launch_contrast_histogram(core::integral_view iv, core::contrast_grid grid, std::uint32_t* histogram,
                               cudaStream_t stream)
{
  if (grid.boxes() == 0) return;
  constexpr unsigned threads = 256;
  contrast_histogram_kernel<<<blocks_for(grid.boxes(), threads), threads, 0, stream>>>(iv, grid, histogram);
}

void launch_contrast_percentiles(const std::uint32_t* histogram, std::uint32_t lo, std::uint32_t hi, int* found,
                                 cudaStream_t stream)
{
  contrast_percentiles_kernel<<<1, percentile_threads, 0, stream>>>(histogram, lo, hi, found);
}

void launch_finder_responses(core::integral_view iv, core::finder_scan_plan plan, float* responses,
                             cudaStream_t stream)
{
  if (plan.positions() == 0) return;
  constexpr unsigned threads = 256;
  finder_responses_kernel<<<blocks_for(plan.positions(), threads), threads, 0, stream>>>(iv, plan, responses);
}

cudaError_t select_finder_candidates(void* temp, std::size_t& temp_bytes, const float* responses, std::uint32_t count,
                                     float sign, float threshold, std::uint32_t* selected,
                                     std::uint32_t* selected_count, cudaStream_t stream)
{
  // DeviceSelect keeps the input order: the candidates come out row-major, as the host's scan
  // pushes them.
  return cub::DeviceSelect::If(temp, temp_bytes, thrust::counting_iterator<std::uint32_t>(0), selected, selected_count,
                        count, passes_threshold{responses, sign, threshold}, stream);
}

void launch_stitch_scores(core::stitch_patch patch, double* scores, cudaStream_t stream)
{
  const std::size_t shifts = static_cast<std::size_t>(patch.reach + 1) * (patch.reach + 1);
  constexpr unsigned threads = 128;
  stitch_scores_kernel<<<blocks_for(shifts, threads), threads, 0, stream>>>(patch, scores);
}

void launch_widen_samples(const std::uint8_t* bytes, std::uint16_t* samples, std::size_t count, cudaStream_t stream)
{
  if (count == 0) return;
  constexpr unsigned threads = 256;
  widen_samples_kernel<<<blocks_for(count, threads), threads, 0, stream>>>(bytes, samples, count);
}

void launch_gather_responses(const float* responses, const std::uint32_t* selected, std::uint32_t count, float* out,
                             cudaStream_t stream)
{
  if (count == 0) return;
  constexpr unsigned threads = 256;
  gather_responses_kernel<<<blocks_for(count, threads), threads, 0, stream>>>(responses, selected, count, out);
}

void launch_refine_detections(core::integral_view iv, double module_px, float sign, int step, double* uv,
                              float* responses, std::size_t count, cudaStream_t stream)
{
  if (count == 0) return;
  constexpr unsigned threads = 64;
  refine_detections_kernel<<<blocks_for(count, threads), threads, 0, stream>>>(iv, module_px, sign, step, uv, responses,
                                                                             count);
}

void launch_confirm_anchors(core::integral_view iv, const core::affine_map* poses, std::size_t pose_count,
                            const core::expected_anchor* anchors, std::size_t count, double module_px, float sign,
                            float min_response, core::anchor_answer* answers, cudaStream_t stream)
{
  if (count == 0 || pose_count == 0) return;
  constexpr unsigned threads = 64;
  const dim3 grid(blocks_for(count, threads), static_cast<unsigned>(pose_count));
  confirm_anchors_kernel<<<grid, threads, 0, stream>>>(iv, poses, anchors, count, module_px, sign, min_response,
                                                       answers);
}

void launch_pose_vote_pairs(core::pose_vote_grid grid, const double* points, const double* finders,
                            const std::uint32_t* owner, std::size_t pairs, const double* turns, int rotations,
                            int* votes, std::uint32_t* first, cudaStream_t stream)
{
  if (pairs == 0 || rotations <= 0) return;
  constexpr unsigned threads = 128;
  const dim3 blocks(blocks_for(pairs, threads), static_cast<unsigned>(rotations));
  pose_vote_pairs_kernel<<<blocks, threads, 0, stream>>>(grid, points, finders, owner, pairs, turns, votes, first);
}

void launch_pose_vote_proposals(core::pose_vote_grid grid, int rotations, const int* votes, const std::uint32_t* first,
                                core::pose_vote_entry* entries, std::uint32_t capacity, std::uint32_t* count,
                                cudaStream_t stream)
{
  const std::size_t cells = grid.bins() * static_cast<std::size_t>(rotations);
  if (cells == 0) return;
  constexpr unsigned threads = 256;
  pose_vote_proposals_kernel<<<blocks_for(cells, threads), threads, 0, stream>>>(grid, rotations, votes, first, entries,
                                                                               capacity, count);
}

void launch_pose_vote_keep(const core::pose_vote_entry* entries, const std::uint32_t* count, std::uint32_t capacity,
                           double* cutoff, core::pose_vote_entry* kept, std::uint32_t* kept_count, cudaStream_t stream)
{
  if (capacity == 0) return;
  pose_vote_best_kernel<<<1, keep_best_threads, 0, stream>>>(entries, count, capacity, cutoff);
  // Enough threads for a typical vote at one entry each; a larger one loops.
  constexpr unsigned threads = 256;
  const unsigned blocks = static_cast<unsigned>(std::min<std::size_t>(blocks_for(capacity, threads), 256));
  pose_vote_keep_kernel<<<blocks, threads, 0, stream>>>(entries, count, capacity, cutoff, kept, kept_count);
}

}  // namespace qrplate::kernels
