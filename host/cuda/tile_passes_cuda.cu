// Host glue of the registration kernels: synchronous per call, on the instance's own stream,
// with buffers from the stream-ordered allocator that grow as tiles need and are kept. Each tile's
// pixels and integral image go into a device_tile of their own, which keep_tile() hands over to
// the scan reader for the code reads (or the next tile reuses, when nobody took it).
// Status: run on an H100 (2026-11-24: tests, memcheck and racecheck clean; docs/PERFORMANCE.md).
#include "cuda/tile_passes_cuda.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "cuda/cuda_check.hpp"
#include "cuda/device_tile.cuh"
#include "cuda/pinned_memory.hpp"
#include "cuda/narrow_samples.hpp"
#include "decode/registration_kernels.cuh"
#include "qrplate/core/tile_passes.hpp"

namespace qrplate::host {
namespace {

// One of the two staging buffers of a tile upload: pinned host memory for a chunk of samples (or
// of bytes), the device bytes a narrowed chunk lands in before it is widened, and the event after
// its last upload (the host refills it only once the DMA has read it).
struct staging_slot {
  pinned_buffer<std::uint16_t> host;
  device_buffer<std::uint8_t> bytes;
  order_event uploaded;
  explicit staging_slot(std::size_t samples) : host(samples), bytes(samples) {}
};

constexpr auto histogram_bins = static_cast<std::size_t>(core::contrast_histogram_bins);

// The contrast from the two bins launch_contrast_percentiles found (each written exactly once when
// the histogram holds the boxes it was ranked for).
double percentile_spread(const int found[2])
{
  if (found[0] < 0 || found[1] < found[0])
    throw std::logic_error("tile_passes_cuda: contrast percentiles not found (a bug in qrplate)");
  return static_cast<double>(found[1] - found[0]);
}

}  // namespace

struct tile_passes_cuda::state {
  stream_owner stream;
  std::size_t staging_samples;
  staging_slot staging[2];
  std::uint64_t uploaded_bytes = 0;
  std::uint64_t staged_bytes = 0;
  explicit state(std::size_t samples)
      : staging_samples(samples), staging{staging_slot(samples), staging_slot(samples)}
  {
  }
  void upload(const std::uint16_t* samples, const std::uint8_t* bytes, std::size_t count, std::uint16_t* d_pixels);
  void queue_percentiles(const std::uint32_t* d_histogram, std::size_t count, int* found);
  std::shared_ptr<device_tile> tile;  // the last tile's pixels and integral, until keep_tile()
  bool keepable = false;              // `tile` holds the last call's tile
  // When no device_tile could be allocated (device memory short): the tile goes through these.
  stream_buffer<std::uint16_t> pixels{stream.get()};
  stream_buffer<std::uint32_t> sums{stream.get()};
  stream_buffer<std::uint32_t> column_totals{stream.get()};
  stream_buffer<std::uint32_t> histogram{stream.get()};
  stream_buffer<int> percentile_bins{stream.get()};
  stream_buffer<float> responses{stream.get()};
  stream_buffer<std::uint32_t> selected{stream.get()};
  stream_buffer<std::uint32_t> selected_count{stream.get()};
  stream_buffer<unsigned char> temp{stream.get()};
  stream_buffer<core::expected_anchor> anchors{stream.get()};
  stream_buffer<core::anchor_answer> answers{stream.get()};
  stream_buffer<core::affine_map> poses{stream.get()};
  stream_buffer<double> vote_points{stream.get()}, vote_finders{stream.get()}, vote_turns{stream.get()};
  stream_buffer<std::uint32_t> vote_owner{stream.get()}, vote_first{stream.get()}, vote_count{stream.get()};
  stream_buffer<int> votes{stream.get()};
  stream_buffer<core::pose_vote_entry> vote_entries{stream.get()}, vote_kept{stream.get()};
  stream_buffer<double> vote_cutoff{stream.get()};
  stream_buffer<float> gathered{stream.get()}, refine_responses{stream.get()};
  stream_buffer<double> refine_uv{stream.get()};
  stream_buffer<float> stitch_a{stream.get()}, stitch_b{stream.get()};
  stream_buffer<double> stitch_scores{stream.get()};
  core::integral_view iv;  // over sums, once integral_and_contrast ran
};

// The percentile bins of d_histogram (`count` boxes, at least 20) into found[0] and found[1] (host
// memory, valid after the stream's next synchronisation).
void tile_passes_cuda::state::queue_percentiles(const std::uint32_t* d_histogram, std::size_t count, int* found)
{
  if (count > 0xffffffffu) throw invalid_argument("tile_passes_cuda: too many contrast boxes for 32-bit counts");
  std::size_t lo = 0, hi = 0;
  core::contrast_ranks(count, lo, hi);
  const cudaStream_t s = stream.get();
  int* d_found = percentile_bins.reserve(2);
  QRP_CUDA_TRY(cudaMemsetAsync(d_found, 0xff, 2 * sizeof(int), s));
  kernels::launch_contrast_percentiles(d_histogram, static_cast<std::uint32_t>(lo), static_cast<std::uint32_t>(hi),
                                       d_found, s);
  QRP_CUDA_TRY(cudaGetLastError());
  QRP_CUDA_TRY(cudaMemcpyAsync(found, d_found, 2 * sizeof(int), cudaMemcpyDeviceToHost, s));
}

// Chunk by chunk through the two staging slots: the host narrows (or copies) chunk k while the
// DMA of chunk k - 1 runs, waiting only for the upload that last read the slot it refills. With
// `bytes` (the same samples as bytes, as the file held them) a chunk is copied from there instead
// of narrowed from the 16-bit samples; bytes in pinned memory (the scan reader's buffers) go by
// DMA from where they are, no host copy (the caller keeps them until the stream is synchronised,
// as integral_and_contrast does before it returns).
void tile_passes_cuda::state::upload(const std::uint16_t* samples, const std::uint8_t* bytes, std::size_t count,
                                     std::uint16_t* d_pixels)
{
  const cudaStream_t s = stream.get();
  const bool direct = bytes != nullptr && host_range_pinned(bytes, count);
  for (std::size_t a = 0, k = 0; a < count; a += staging_samples, ++k) {
    staging_slot& slot = staging[k % 2];
    const std::size_t n = std::min(staging_samples, count - a);
    if (direct) {  // the slot's device bytes are reused: stream order keeps the widen before the next copy
      QRP_CUDA_TRY(cudaMemcpyAsync(slot.bytes.data(), bytes + a, n, cudaMemcpyHostToDevice, s));
      kernels::launch_widen_samples(slot.bytes.data(), d_pixels + a, n, s);
      QRP_CUDA_TRY(cudaGetLastError());
      uploaded_bytes += n;
      continue;
    }
    QRP_CUDA_TRY(cudaEventSynchronize(slot.uploaded.get()));
    auto* narrow = reinterpret_cast<std::uint8_t*>(slot.host.data());
    if (bytes != nullptr) std::memcpy(narrow, bytes + a, n);
    if (bytes != nullptr || narrow_samples(samples + a, n, narrow)) {
      staged_bytes += n;
      QRP_CUDA_TRY(cudaMemcpyAsync(slot.bytes.data(), narrow, n, cudaMemcpyHostToDevice, s));
      kernels::launch_widen_samples(slot.bytes.data(), d_pixels + a, n, s);
      QRP_CUDA_TRY(cudaGetLastError());
      uploaded_bytes += n;
    } else {
      std::memcpy(slot.host.data(), samples + a, n * sizeof(std::uint16_t));
      staged_bytes += n * sizeof(std::uint16_t);
      QRP_CUDA_TRY(cudaMemcpyAsync(d_pixels + a, slot.host.data(), n * sizeof(std::uint16_t), cudaMemcpyHostToDevice, s));
      uploaded_bytes += n * sizeof(std::uint16_t);
    }
    QRP_CUDA_TRY(cudaEventRecord(slot.uploaded.get(), s));
  }
}

namespace {
std::atomic<std::uint64_t> passes_made{0};
}  // namespace

std::uint64_t tile_passes_cuda::made() { return passes_made.load(); }

tile_passes_cuda::tile_passes_cuda(std::size_t staging_samples)
{
  if (staging_samples == 0) throw invalid_argument("tile_passes_cuda: staging buffers of no samples");
  ++passes_made;
  // Keep freed blocks in the device's pool instead of handing them back at every synchronisation:
  // tile after tile asks for the same sizes.
  static const bool pool_kept = [] {
    int device = 0;
    cudaMemPool_t pool = nullptr;
    std::uint64_t keep = ~std::uint64_t{0};
    const bool kept = cudaGetDevice(&device) == cudaSuccess && cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess &&
                      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) == cudaSuccess;
    if (!kept) cuda_tolerate(cudaErrorInvalidValue);
    return kept;
  }();
  (void)pool_kept;  // an optimisation only
  state_ = std::make_unique<state>(staging_samples);
}

tile_passes_cuda::~tile_passes_cuda()
{
  if (state_) {
    // Frees are stream-ordered: let them happen before the stream goes.
    cuda_tolerate(cudaStreamSynchronize(state_->stream.get()));
  }
}

double tile_passes_cuda::integral_and_contrast(const std::uint16_t* pixels, int width, int height, int shift,
                                               double module_px, std::uint32_t* integral, const std::uint8_t* bytes)
{
  if (width <= 0 || height <= 0 || pixels == nullptr) throw invalid_argument("tile_passes_cuda: empty image");
  state& s = *state_;
  const cudaStream_t stream = s.stream.get();
  const std::size_t count = static_cast<std::size_t>(width) * height;
  const std::size_t w1 = static_cast<std::size_t>(width) + 1;
  const std::size_t entries = w1 * (static_cast<std::size_t>(height) + 1);
  // A device_tile of the right size for this tile (the last one again when nobody kept it).
  s.keepable = false;
  if (s.tile && (s.tile->width != width || s.tile->height != height)) s.tile.reset();
  if (!s.tile) {
    try {
      s.tile = std::make_shared<device_tile>(width, height, stream);
    } catch (const cuda_error&) {
      // Out of memory (cuda_check took it out of the last-error slot): the scratch buffers serve.
    }
  }
  std::uint16_t* d_pixels = s.tile ? s.tile->pixels.data() : s.pixels.reserve(count);
  std::uint32_t* d_sums = s.tile ? s.tile->sums.data() : s.sums.reserve(entries);
  if (s.tile) s.tile->shift = shift;
  s.upload(pixels, bytes, count, d_pixels);
  QRP_CUDA_TRY(cudaMemsetAsync(d_sums, 0, w1 * sizeof(std::uint32_t), stream));
  std::uint32_t* d_totals = s.column_totals.reserve(kernels::integral_scratch_entries(width, height));
  kernels::launch_integral_image(d_pixels, width, height, shift, d_sums, d_totals, stream);
  QRP_CUDA_TRY(cudaGetLastError());
  s.iv = core::integral_view{d_sums, width, height, shift};

  // The contrast's two percentiles are found on the device: two bins come back, not the 256 KiB
  // histogram (core::contrast_from_histogram is the reference).
  const core::contrast_grid grid = core::contrast_grid::make(s.iv, module_px);
  int found[2] = {-1, -1};
  const bool ranked = grid.boxes() >= 20;
  if (ranked) {
    std::uint32_t* d_histogram = s.histogram.reserve(histogram_bins);
    QRP_CUDA_TRY(cudaMemsetAsync(d_histogram, 0, histogram_bins * sizeof(std::uint32_t), stream));
    kernels::launch_contrast_histogram(s.iv, grid, d_histogram, stream);
    QRP_CUDA_TRY(cudaGetLastError());
    s.queue_percentiles(d_histogram, grid.boxes(), found);
  }
  if (integral != nullptr)
    QRP_CUDA_TRY(cudaMemcpyAsync(integral, d_sums, entries * sizeof(std::uint32_t), cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaStreamSynchronize(stream));
  s.keepable = s.tile != nullptr;
  return ranked ? percentile_spread(found) : 0.0;
}

double tile_passes_cuda::contrast_of_histogram(const std::uint32_t* histogram, std::size_t count)
{
  if (count < 20) return 0;
  state& s = *state_;
  const cudaStream_t stream = s.stream.get();
  std::uint32_t* d_histogram = s.histogram.reserve(histogram_bins);
  QRP_CUDA_TRY(cudaMemcpyAsync(d_histogram, histogram, histogram_bins * sizeof(std::uint32_t),
                               cudaMemcpyHostToDevice, stream));
  int found[2] = {-1, -1};
  s.queue_percentiles(d_histogram, count, found);
  QRP_CUDA_TRY(cudaStreamSynchronize(stream));
  return percentile_spread(found);
}

std::uint64_t tile_passes_cuda::staged_bytes() const { return state_->staged_bytes; }

std::uint64_t tile_passes_cuda::uploaded_bytes() const
{
  return state_->uploaded_bytes;
}

std::shared_ptr<const device_tile> tile_passes_cuda::keep_tile()
{
  state& s = *state_;
  if (!s.keepable) return nullptr;
  // Written on this stream, which integral_and_contrast synchronised: complete for any stream.
  s.keepable = false;
  std::shared_ptr<const device_tile> kept = std::move(s.tile);
  s.tile.reset();
  return kept;
}

void tile_passes_cuda::confirm_anchors(const device_tile& tile, const core::affine_map* poses, std::size_t pose_count,
                                       const core::expected_anchor* anchors, std::size_t count, double module_px,
                                       float sign, float min_response, core::anchor_answer* answers)
{
  if (count == 0 || pose_count == 0) return;
  if (pose_count > 65535) throw invalid_argument("tile_passes_cuda: more than 65535 poses to confirm at once");
  state& s = *state_;
  const cudaStream_t stream = s.stream.get();
  core::expected_anchor* d_anchors = s.anchors.reserve(count);
  core::affine_map* d_poses = s.poses.reserve(pose_count);
  core::anchor_answer* d_answers = s.answers.reserve(count * pose_count);
  QRP_CUDA_TRY(cudaMemcpyAsync(d_anchors, anchors, count * sizeof(core::expected_anchor), cudaMemcpyHostToDevice, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(d_poses, poses, pose_count * sizeof(core::affine_map), cudaMemcpyHostToDevice, stream));
  kernels::launch_confirm_anchors(tile.integral(), d_poses, pose_count, d_anchors, count, module_px, sign, min_response,
                                  d_answers, stream);
  QRP_CUDA_TRY(cudaGetLastError());
  QRP_CUDA_TRY(cudaMemcpyAsync(answers, d_answers, count * pose_count * sizeof(core::anchor_answer),
                               cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaStreamSynchronize(stream));
}

// The vote's launches, queued on the stream: returns the entries' capacity (0: nothing to vote),
// with d_entries and d_count (the proposals, *d_count of them) in device memory.
std::size_t tile_passes_cuda::vote(const core::pose_vote_grid& grid, const double* points, std::size_t detections,
                                   const double* finders, const std::uint32_t* owner, std::size_t pairs,
                                   const double* turns, int rotations, core::pose_vote_entry*& d_entries,
                                   std::uint32_t*& d_count)
{
  if (pairs == 0 || rotations <= 0 || detections == 0) return 0;
  if (pairs > 0xffffffffu) throw invalid_argument("tile_passes_cuda: too many vote pairs for 32-bit indices");
  state& s = *state_;
  const cudaStream_t stream = s.stream.get();
  const std::size_t cells = grid.bins() * static_cast<std::size_t>(rotations);
  // At most one entry per pair, and per bin, of each rotation.
  const std::size_t capacity = static_cast<std::size_t>(rotations) * std::min(pairs, grid.bins());
  if (capacity > 0xffffffffu) throw invalid_argument("tile_passes_cuda: too many vote bins for 32-bit indices");
  double* d_points = s.vote_points.reserve(2 * detections);
  double* d_finders = s.vote_finders.reserve(2 * pairs);
  double* d_turns = s.vote_turns.reserve(2 * static_cast<std::size_t>(rotations));
  std::uint32_t* d_owner = s.vote_owner.reserve(pairs);
  int* d_votes = s.votes.reserve(cells);
  std::uint32_t* d_first = s.vote_first.reserve(cells);
  d_count = s.vote_count.reserve(2);  // the proposals, and those kept (proposals_worth_checking)
  d_entries = s.vote_entries.reserve(capacity);
  QRP_CUDA_TRY(cudaMemcpyAsync(d_points, points, 2 * detections * sizeof(double), cudaMemcpyHostToDevice, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(d_finders, finders, 2 * pairs * sizeof(double), cudaMemcpyHostToDevice, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(d_turns, turns, 2 * static_cast<std::size_t>(rotations) * sizeof(double),
                               cudaMemcpyHostToDevice, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(d_owner, owner, pairs * sizeof(std::uint32_t), cudaMemcpyHostToDevice, stream));
  QRP_CUDA_TRY(cudaMemsetAsync(d_votes, 0, cells * sizeof(int), stream));
  QRP_CUDA_TRY(cudaMemsetAsync(d_first, 0xff, cells * sizeof(std::uint32_t), stream));
  QRP_CUDA_TRY(cudaMemsetAsync(d_count, 0, 2 * sizeof(std::uint32_t), stream));
  kernels::launch_pose_vote_pairs(grid, d_points, d_finders, d_owner, pairs, d_turns, rotations, d_votes, d_first,
                                  stream);
  QRP_CUDA_TRY(cudaGetLastError());
  kernels::launch_pose_vote_proposals(grid, rotations, d_votes, d_first, d_entries,
                                      static_cast<std::uint32_t>(capacity), d_count, stream);
  QRP_CUDA_TRY(cudaGetLastError());
  return capacity;
}

// Copies `count` entries at d_entries into `entries` (a pageable host vector) and waits.
void tile_passes_cuda::download_entries(const core::pose_vote_entry* d_entries, std::uint32_t count,
                                        std::vector<core::pose_vote_entry>& entries)
{
  entries.resize(count);
  if (count == 0) return;
  const cudaStream_t stream = state_->stream.get();
  QRP_CUDA_TRY(cudaMemcpyAsync(entries.data(), d_entries, count * sizeof(core::pose_vote_entry),
                               cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaStreamSynchronize(stream));
}

void tile_passes_cuda::vote_poses(const core::pose_vote_grid& grid, const double* points, std::size_t detections,
                                  const double* finders, const std::uint32_t* owner, std::size_t pairs,
                                  const double* turns, int rotations, std::vector<core::pose_vote_entry>& entries)
{
  entries.clear();
  core::pose_vote_entry* d_entries = nullptr;
  std::uint32_t* d_count = nullptr;
  const std::size_t capacity = vote(grid, points, detections, finders, owner, pairs, turns, rotations, d_entries, d_count);
  if (capacity == 0) return;
  const cudaStream_t stream = state_->stream.get();
  std::uint32_t count = 0;
  QRP_CUDA_TRY(cudaMemcpyAsync(&count, d_count, sizeof count, cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaStreamSynchronize(stream));
  if (count > capacity) throw std::logic_error("tile_passes_cuda: more vote proposals than bins (a bug in qrplate)");
  download_entries(d_entries, count, entries);
}

double tile_passes_cuda::proposals_worth_checking(const core::pose_vote_grid& grid, const double* points,
                                                  std::size_t detections, const double* finders,
                                                  const std::uint32_t* owner, std::size_t pairs, const double* turns,
                                                  int rotations, std::vector<core::pose_vote_entry>& entries)
{
  entries.clear();
  core::pose_vote_entry* d_entries = nullptr;
  std::uint32_t* d_count = nullptr;
  const std::size_t capacity = vote(grid, points, detections, finders, owner, pairs, turns, rotations, d_entries, d_count);
  if (capacity == 0) return 0;
  return keep_on_device(d_entries, d_count, capacity, entries);
}

double tile_passes_cuda::keep_proposals_worth_checking(std::vector<core::pose_vote_entry>& entries)
{
  if (entries.empty()) return 0;
  if (entries.size() > 0xffffffffu) throw invalid_argument("tile_passes_cuda: too many proposals for 32-bit indices");
  state& s = *state_;
  const cudaStream_t stream = s.stream.get();
  const auto count = static_cast<std::uint32_t>(entries.size());
  core::pose_vote_entry* d_entries = s.vote_entries.reserve(count);
  std::uint32_t* d_count = s.vote_count.reserve(2);
  const std::uint32_t counts[2] = {count, 0};
  QRP_CUDA_TRY(cudaMemcpyAsync(d_entries, entries.data(), count * sizeof(core::pose_vote_entry),
                               cudaMemcpyHostToDevice, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(d_count, counts, sizeof counts, cudaMemcpyHostToDevice, stream));
  return keep_on_device(d_entries, d_count, count, entries);
}

// The keep launches on d_entries (d_count[0] of them, at most `capacity`; d_count[1] zero), then
// the kept entries into `entries` (in no particular order) and the cutoff returned.
double tile_passes_cuda::keep_on_device(const core::pose_vote_entry* d_entries, std::uint32_t* d_count,
                                        std::size_t capacity, std::vector<core::pose_vote_entry>& entries)
{
  state& s = *state_;
  const cudaStream_t stream = s.stream.get();
  core::pose_vote_entry* d_kept = s.vote_kept.reserve(capacity);
  double* d_cutoff = s.vote_cutoff.reserve(1);
  kernels::launch_pose_vote_keep(d_entries, d_count, static_cast<std::uint32_t>(capacity), d_cutoff, d_kept,
                                 d_count + 1, stream);
  QRP_CUDA_TRY(cudaGetLastError());
  std::uint32_t counts[2] = {0, 0};
  double cutoff = 0;
  QRP_CUDA_TRY(cudaMemcpyAsync(counts, d_count, sizeof counts, cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(&cutoff, d_cutoff, sizeof cutoff, cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaStreamSynchronize(stream));
  if (counts[0] > capacity) throw std::logic_error("tile_passes_cuda: more vote proposals than bins (a bug in qrplate)");
  if (counts[1] > counts[0]) throw std::logic_error("tile_passes_cuda: more proposals kept than voted (a bug in qrplate)");
  download_entries(d_kept, counts[1], entries);
  return cutoff;
}

void tile_passes_cuda::stitch_scores(const core::stitch_patch& patch, double* scores)
{
  if (patch.pw <= 0 || patch.ph <= 0 || patch.reach < 0 || patch.bw < 2 * patch.pw + 2 * patch.reach)
    throw invalid_argument("tile_passes_cuda: stitch patch of no samples, or b narrower than the shifts reach");
  state& s = *state_;
  const cudaStream_t stream = s.stream.get();
  const std::size_t a_count = static_cast<std::size_t>(patch.pw) * static_cast<std::size_t>(patch.ph);
  const std::size_t b_count =
      static_cast<std::size_t>(patch.bw) * (2 * static_cast<std::size_t>(patch.ph) + 2 * static_cast<std::size_t>(patch.reach));
  const std::size_t shifts = static_cast<std::size_t>(patch.reach + 1) * static_cast<std::size_t>(patch.reach + 1);
  core::stitch_patch on_device = patch;
  float* d_a = s.stitch_a.reserve(a_count);
  float* d_b = s.stitch_b.reserve(b_count);
  double* d_scores = s.stitch_scores.reserve(shifts);
  QRP_CUDA_TRY(cudaMemcpyAsync(d_a, patch.a, a_count * sizeof(float), cudaMemcpyHostToDevice, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(d_b, patch.b, b_count * sizeof(float), cudaMemcpyHostToDevice, stream));
  on_device.a = d_a;
  on_device.b = d_b;
  kernels::launch_stitch_scores(on_device, d_scores, stream);
  QRP_CUDA_TRY(cudaGetLastError());
  QRP_CUDA_TRY(cudaMemcpyAsync(scores, d_scores, shifts * sizeof(double), cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaStreamSynchronize(stream));
}

void download_tile(const device_tile& tile, std::uint16_t* pixels, std::uint32_t* sums)
{
  const std::size_t count = static_cast<std::size_t>(tile.width) * static_cast<std::size_t>(tile.height);
  const std::size_t entries = (static_cast<std::size_t>(tile.width) + 1) * (static_cast<std::size_t>(tile.height) + 1);
  QRP_CUDA_TRY(cudaMemcpy(pixels, tile.pixels.data(), count * sizeof(std::uint16_t), cudaMemcpyDeviceToHost));
  QRP_CUDA_TRY(cudaMemcpy(sums, tile.sums.data(), entries * sizeof(std::uint32_t), cudaMemcpyDeviceToHost));
}

void tile_passes_cuda::refine_detections(const device_tile& tile, double module_px, int sign, int step, double* uv,
                                         float* responses, std::size_t count)
{
  if (count == 0) return;
  state& s = *state_;
  const cudaStream_t stream = s.stream.get();
  double* d_uv = s.refine_uv.reserve(2 * count);
  float* d_responses = s.refine_responses.reserve(count);
  QRP_CUDA_TRY(cudaMemcpyAsync(d_uv, uv, 2 * count * sizeof(double), cudaMemcpyHostToDevice, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(d_responses, responses, count * sizeof(float), cudaMemcpyHostToDevice, stream));
  kernels::launch_refine_detections(tile.integral(), module_px, static_cast<float>(sign), step, d_uv, d_responses, count,
                                    stream);
  QRP_CUDA_TRY(cudaGetLastError());
  QRP_CUDA_TRY(cudaMemcpyAsync(uv, d_uv, 2 * count * sizeof(double), cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(responses, d_responses, count * sizeof(float), cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaStreamSynchronize(stream));
}

void tile_passes_cuda::finder_candidates(double module_px, float threshold, int polarity,
                                         std::vector<std::uint32_t> out[2], std::vector<float> responses[2])
{
  state& s = *state_;
  if (s.iv.sums == nullptr) throw invalid_argument("tile_passes_cuda: finder_candidates before integral_and_contrast");
  const cudaStream_t stream = s.stream.get();
  const core::finder_scan_plan plan = core::finder_scan_plan::make(s.iv, module_px);
  out[0].clear();
  out[1].clear();
  if (responses != nullptr) responses[0].clear(), responses[1].clear();
  const std::size_t positions = plan.positions();
  if (positions == 0) return;
  if (positions > 0xffffffffu) throw invalid_argument("tile_passes_cuda: tile too large for 32-bit positions");
  float* d_responses = s.responses.reserve(positions);
  kernels::launch_finder_responses(s.iv, plan, d_responses, stream);
  QRP_CUDA_TRY(cudaGetLastError());
  std::uint32_t* d_selected = s.selected.reserve(positions);
  std::uint32_t* d_count = s.selected_count.reserve(1);
  const auto n = static_cast<std::uint32_t>(positions);
  for (int k = 0; k < 2; ++k) {
    const float sign = k == 0 ? 1.0f : -1.0f;
    if (polarity != 0 && (polarity > 0) != (k == 0)) continue;
    std::size_t temp_bytes = 0;
    QRP_CUDA_TRY(kernels::select_finder_candidates(nullptr, temp_bytes, d_responses, n, sign, threshold, d_selected,
                                                   d_count, stream));
    void* d_temp = s.temp.reserve(temp_bytes);
    QRP_CUDA_TRY(kernels::select_finder_candidates(d_temp, temp_bytes, d_responses, n, sign, threshold, d_selected,
                                                   d_count, stream));
    std::uint32_t selected = 0;
    QRP_CUDA_TRY(cudaMemcpyAsync(&selected, d_count, sizeof selected, cudaMemcpyDeviceToHost, stream));
    QRP_CUDA_TRY(cudaStreamSynchronize(stream));
    out[k].resize(selected);
    if (selected > 0) {
      QRP_CUDA_TRY(cudaMemcpyAsync(out[k].data(), d_selected, selected * sizeof(std::uint32_t),
                                   cudaMemcpyDeviceToHost, stream));
      if (responses != nullptr) {
        float* d_gathered = s.gathered.reserve(selected);
        kernels::launch_gather_responses(d_responses, d_selected, selected, d_gathered, stream);
        QRP_CUDA_TRY(cudaGetLastError());
        responses[k].resize(selected);
        QRP_CUDA_TRY(cudaMemcpyAsync(responses[k].data(), d_gathered, selected * sizeof(float), cudaMemcpyDeviceToHost,
                                     stream));
      }
      QRP_CUDA_TRY(cudaStreamSynchronize(stream));
    }
  }
}

}  // namespace qrplate::host
