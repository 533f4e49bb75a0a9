// Host glue of the CUDA code reader: one tile and its code maps, or the pixels and integral
// images of many tiles and their codes' origins (for the anchor search on the GPU), up; one
// launch; outcomes and bytes down; on a stream and in device buffers kept per host thread across
// calls. Tiles the registration passes left on the device (device_tile.cuh) are read there.
// Synchronous per call, for the calling thread: the scan reader makes its calls on a background
// thread of its own (scan_reader.cpp, overlap_batches), which waits for the reads of the rows
// ahead while the reader's threads register the next tiles on their own streams
// (tile_passes_cuda.cu). The results come back through pageable memory.
// Status: run on an H100 (2026-11-24: tests, memcheck and racecheck clean; docs/PERFORMANCE.md).
#include "cuda/read_codes_cuda.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/device_tile.cuh"
#include "decode/read_code_kernels.cuh"

namespace qrplate::host {

namespace {

// Threads for `count` codes, a multiple of the block: each holds a ~210 KB workspace (sized for
// version 40), so at most 1024.
unsigned read_threads(std::size_t count)
{
  const std::size_t wanted = std::min<std::size_t>(count, 1024);
  return static_cast<unsigned>((wanted + kernels::read_codes_block - 1) / kernels::read_codes_block *
                               kernels::read_codes_block);
}

// Workspaces (threads, or blocks) a read of `count` codes with `kernel` needs.
unsigned read_workers(cuda_read_kernel kernel, std::size_t count)
{
  return kernel == cuda_read_kernel::per_thread ? read_threads(count) : kernels::cooperative_read_blocks(count);
}

void check_image(const core::gray_view& image, const char* who)
{
  if (image.width <= 0 || image.height <= 0 || image.pixels == nullptr)
    throw invalid_argument(std::string(who) + ": empty image");
}

// The image packed (stride = width) at device address d, on `stream`.
core::gray_view upload_image_at(const core::gray_view& image, std::uint16_t* d, cudaStream_t stream)
{
  const auto width = static_cast<std::size_t>(image.width), height = static_cast<std::size_t>(image.height);
  QRP_CUDA_TRY(cudaMemcpy2DAsync(d, width * sizeof(std::uint16_t), image.pixels, image.stride * sizeof(std::uint16_t),
                                 width * sizeof(std::uint16_t), height, cudaMemcpyHostToDevice, stream));
  return core::gray_view{d, image.width, image.height, width};
}

// Reads `count` codes of one device image through given maps (all device memory; image_view:
// `image` itself in device memory, for the cooperative kernel), read_workers(kernel, count)
// workspaces, on `stream`.
void launch_reads_with_maps(cuda_read_kernel kernel, const core::version_plan* plan, const core::gray_view& image,
                            const core::gray_view* image_view, const core::code_map* maps, std::size_t count,
                            double module_px, std::uint8_t erasure_threshold, core::read_code_workspace* ws,
                            std::uint8_t* bytes, core::code_outcome* outcomes, cudaStream_t stream)
{
  const unsigned workers = read_workers(kernel, count);
  if (kernel == cuda_read_kernel::per_thread) {
    kernels::launch_read_codes(plan, image, maps, count, module_px, erasure_threshold, ws, workers, bytes, outcomes,
                               stream);
    QRP_CUDA_TRY(cudaGetLastError());
    return;
  }
  core::cooperative_read_batch batch{};
  batch.plan = plan;
  batch.images = image_view;
  batch.maps = maps;
  batch.count = count;
  batch.module_px = module_px;
  batch.erasure_threshold = erasure_threshold;
  batch.workspaces = ws;
  batch.bytes = bytes;
  batch.outcomes = outcomes;
  QRP_CUDA_TRY(
      kernels::launch_read_codes_cooperative(batch, workers, stream, kernel == cuda_read_kernel::cooperative_capped));
}

// What outlives one call, per host thread (the scan reader calls once per tile): a stream,
// device buffers that only grow (stream-ordered: growing one never waits for the other threads'
// work, as cudaFree would), and the plans uploaded so far. Deliberately never freed, as the
// encode driver's: the CUDA runtime may be gone before thread-local destructors run at exit.
struct read_context {
  stream_owner stream;
  std::map<std::pair<int, int>, device_buffer<core::version_plan>> plans;  // by (version, level)
  stream_buffer<std::uint16_t> pixels{stream.get()};
  stream_buffer<std::uint32_t> sums{stream.get()};
  stream_buffer<double> origins{stream.get()};
  stream_buffer<core::code_map> maps{stream.get()};
  stream_buffer<core::read_code_workspace> ws{stream.get()};
  stream_buffer<std::uint8_t> bytes{stream.get()};
  stream_buffer<core::code_outcome> outcomes{stream.get()};
  stream_buffer<core::gray_view> views{stream.get()};         // per tile, pointing into `pixels`
  stream_buffer<core::tile_anchor_view> tiles{stream.get()};  // per tile, pointing into `sums`
  stream_buffer<std::uint32_t> tile_of{stream.get()};         // per code
  stream_buffer<core::across_code> across_codes{stream.get()};
  stream_buffer<core::read_across_workspace> across_ws{stream.get()};
};

read_context& this_threads_read_context()
{
  thread_local read_context* context = new read_context();
  return *context;
}

// The plan on the device (plans of one version and level are identical, so one upload each).
const core::version_plan* device_plan(read_context& c, const core::version_plan& plan)
{
  device_buffer<core::version_plan>& d = c.plans[{plan.version, static_cast<int>(plan.ecc)}];
  if (d.size() == 0) {
    d = device_buffer<core::version_plan>(1);
    QRP_CUDA_TRY(cudaMemcpy(d.data(), &plan, sizeof(plan), cudaMemcpyHostToDevice));
  }
  return d.data();
}

// Host values to a grown device buffer, on the context's stream (pageable: consumed on return).
template <typename T>
T* upload(read_context& c, stream_buffer<T>& d, const T* values, std::size_t n)
{
  T* p = d.reserve(n);
  QRP_CUDA_TRY(cudaMemcpyAsync(p, values, n * sizeof(T), cudaMemcpyHostToDevice, c.stream.get()));
  return p;
}

// Waits for the stream, then brings outcomes and bytes back.
void download_results(read_context& c, std::size_t count, core::code_outcome* outcomes, std::uint8_t* bytes)
{
  const cudaStream_t s = c.stream.get();
  QRP_CUDA_TRY(cudaMemcpyAsync(outcomes, c.outcomes.data(), count * sizeof(core::code_outcome), cudaMemcpyDeviceToHost, s));
  QRP_CUDA_TRY(cudaMemcpyAsync(bytes, c.bytes.data(), count * spec::max_data_codewords, cudaMemcpyDeviceToHost, s));
  QRP_CUDA_TRY(cudaStreamSynchronize(s));
}

}  // namespace

void read_codes_cuda(const core::version_plan& plan, const core::gray_view& image, const core::code_map* maps,
                     std::size_t count, double module_px, std::uint8_t erasure_threshold, core::code_outcome* outcomes,
                     std::uint8_t* bytes, cuda_read_kernel kernel)
{
  if (count == 0) return;
  check_image(image, "read_codes_cuda");
  read_context& c = this_threads_read_context();
  const cudaStream_t s = c.stream.get();
  const core::version_plan* d_plan = device_plan(c, plan);
  const core::gray_view d_image =
      upload_image_at(image, c.pixels.reserve(static_cast<std::size_t>(image.width) * image.height), s);
  const core::code_map* d_maps = upload(c, c.maps, maps, count);
  const core::gray_view* d_view = kernel != cuda_read_kernel::per_thread ? upload(c, c.views, &d_image, 1) : nullptr;
  launch_reads_with_maps(kernel, d_plan, d_image, d_view, d_maps, count, module_px, erasure_threshold,
                         c.ws.reserve(read_workers(kernel, count)), c.bytes.reserve(count * spec::max_data_codewords),
                         c.outcomes.reserve(count), s);
  download_results(c, count, outcomes, bytes);
}

void measure_and_read_codes_cuda(const core::version_plan& plan, const core::gray_view& image,
                                 const core::tile_anchor_view& tile, const double* origins, std::size_t count,
                                 double module_px, std::uint8_t erasure_threshold, core::code_outcome* outcomes,
                                 std::uint8_t* bytes, cuda_read_kernel kernel)
{
  if (count == 0) return;
  check_image(image, "measure_and_read_codes_cuda");
  if (tile.iv.sums == nullptr || tile.iv.width != image.width || tile.iv.height != image.height)
    throw invalid_argument("measure_and_read_codes_cuda: the integral image is not the image's");
  if (kernel != cuda_read_kernel::per_thread) {
    const tile_read_request one{image, tile, origins, count};
    measure_and_read_tiles_cuda(plan, &one, 1, module_px, erasure_threshold, outcomes, bytes, kernel);
    return;
  }
  read_context& c = this_threads_read_context();
  const cudaStream_t s = c.stream.get();
  const core::version_plan* d_plan = device_plan(c, plan);
  const core::gray_view d_image =
      upload_image_at(image, c.pixels.reserve(static_cast<std::size_t>(image.width) * image.height), s);
  const std::size_t entries =
      (static_cast<std::size_t>(image.width) + 1) * (static_cast<std::size_t>(image.height) + 1);
  core::tile_anchor_view d_tile = tile;
  d_tile.iv.sums = c.sums.reserve(entries);
  QRP_CUDA_TRY(cudaMemcpyAsync(c.sums.data(), tile.iv.sums, entries * sizeof(std::uint32_t), cudaMemcpyHostToDevice, s));
  double* d_origins = upload(c, c.origins, origins, 2 * count);
  // The plain kernel: one thread per code, each with a workspace and a scratch map (~17 KB).
  const unsigned workers = read_threads(count);
  core::read_code_workspace* d_ws = c.ws.reserve(workers);
  core::code_map* d_maps = c.maps.reserve(workers);
  std::uint8_t* d_bytes = c.bytes.reserve(count * spec::max_data_codewords);
  core::code_outcome* d_outcomes = c.outcomes.reserve(count);
  kernels::launch_measure_and_read_codes(d_plan, d_image, d_tile, d_origins, count, module_px, erasure_threshold, d_ws,
                                         d_maps, workers, d_bytes, d_outcomes, s);
  QRP_CUDA_TRY(cudaGetLastError());
  download_results(c, count, outcomes, bytes);
}

namespace {

// The device views of tiles[0, n): resident tiles where they are, the others uploaded one after
// another into the context's pixel and integral buffers (on its stream).
void stage_tiles(read_context& c, const tile_read_request* tiles, std::size_t n, std::vector<core::gray_view>& views,
                 std::vector<core::tile_anchor_view>& anchor_views)
{
  const cudaStream_t s = c.stream.get();
  std::size_t pixels = 0, entries = 0;
  for (std::size_t k = 0; k < n; ++k)
    if (tiles[k].resident == nullptr) {
      pixels += static_cast<std::size_t>(tiles[k].image.width) * static_cast<std::size_t>(tiles[k].image.height);
      entries += (static_cast<std::size_t>(tiles[k].image.width) + 1) * (static_cast<std::size_t>(tiles[k].image.height) + 1);
    }
  std::uint16_t* d_pixels = pixels ? c.pixels.reserve(pixels) : nullptr;
  std::uint32_t* d_sums = entries ? c.sums.reserve(entries) : nullptr;
  views.resize(n);
  anchor_views.resize(n);
  for (std::size_t k = 0; k < n; ++k) {
    const tile_read_request& t = tiles[k];
    anchor_views[k] = t.tile;
    if (t.resident != nullptr) {
      views[k] = t.resident->image();
      anchor_views[k].iv.sums = t.resident->sums.data();
    } else {
      views[k] = upload_image_at(t.image, d_pixels, s);
      d_pixels += static_cast<std::size_t>(t.image.width) * static_cast<std::size_t>(t.image.height);
      const std::size_t e = (static_cast<std::size_t>(t.image.width) + 1) * (static_cast<std::size_t>(t.image.height) + 1);
      QRP_CUDA_TRY(cudaMemcpyAsync(d_sums, t.tile.iv.sums, e * sizeof(std::uint32_t), cudaMemcpyHostToDevice, s));
      anchor_views[k].iv.sums = d_sums;
      d_sums += e;
    }
  }
}

// Checks what measure_and_read_tiles_cuda and read_across_tiles_cuda are given.
void check_requests(const tile_read_request* tiles, std::size_t tile_count, const char* who)
{
  for (std::size_t k = 0; k < tile_count; ++k) {
    const tile_read_request& t = tiles[k];
    check_image(t.image, who);
    // A resident tile's integral image is read on the device: its host copy may not exist.
    if ((t.tile.iv.sums == nullptr && t.resident == nullptr) || t.tile.iv.width != t.image.width ||
        t.tile.iv.height != t.image.height)
      throw invalid_argument(std::string(who) + ": a tile's integral image is not its image's");
    if (t.resident != nullptr && (t.resident->width != t.image.width || t.resident->height != t.image.height ||
                                  t.resident->shift != t.tile.iv.shift))
      throw invalid_argument(std::string(who) + ": a resident tile is not the request's image");
  }
}

// One launch over tiles[0, n) (measure_and_read_tiles_cuda): the tiles not resident go up first.
void read_tiles_launch(read_context& c, const core::version_plan& plan, const tile_read_request* tiles, std::size_t n,
                       std::size_t count, double module_px, std::uint8_t erasure_threshold,
                       core::code_outcome* outcomes, std::uint8_t* bytes, bool register_capped)
{
  const cudaStream_t s = c.stream.get();
  std::vector<core::gray_view> views;
  std::vector<core::tile_anchor_view> anchor_views;
  stage_tiles(c, tiles, n, views, anchor_views);
  std::vector<std::uint32_t> tile_of;
  std::vector<double> all_origins;
  tile_of.reserve(count);
  all_origins.reserve(2 * count);
  for (std::size_t k = 0; k < n; ++k) {
    const tile_read_request& t = tiles[k];
    tile_of.insert(tile_of.end(), t.count, static_cast<std::uint32_t>(k));
    all_origins.insert(all_origins.end(), t.origins, t.origins + 2 * t.count);
  }
  const unsigned blocks = kernels::cooperative_read_blocks(count);
  core::cooperative_read_batch batch{};
  batch.plan = device_plan(c, plan);
  batch.images = upload(c, c.views, views.data(), n);
  batch.tile_of = upload(c, c.tile_of, tile_of.data(), count);
  batch.measure = true;
  batch.tiles = upload(c, c.tiles, anchor_views.data(), n);
  batch.origins = upload(c, c.origins, all_origins.data(), 2 * count);
  batch.count = count;
  batch.module_px = module_px;
  batch.erasure_threshold = erasure_threshold;
  batch.workspaces = c.ws.reserve(blocks);
  batch.scratch_maps = c.maps.reserve(blocks);
  batch.bytes = c.bytes.reserve(count * spec::max_data_codewords);
  batch.outcomes = c.outcomes.reserve(count);
  QRP_CUDA_TRY(kernels::launch_read_codes_cooperative(batch, blocks, s, register_capped));
  download_results(c, count, outcomes, bytes);
}

}  // namespace

void measure_and_read_tiles_cuda(const core::version_plan& plan, const tile_read_request* tiles, std::size_t tile_count,
                                 double module_px, std::uint8_t erasure_threshold, core::code_outcome* outcomes,
                                 std::uint8_t* bytes, cuda_read_kernel kernel)
{
  if (kernel == cuda_read_kernel::per_thread)
    throw invalid_argument("measure_and_read_tiles_cuda: many tiles per launch take a cooperative kernel");
  check_requests(tiles, tile_count, "measure_and_read_tiles_cuda");
  // Launches of at most max_uploads tiles that go up (resident tiles cost no device memory).
  constexpr std::size_t max_uploads = 64;
  for (std::size_t a = 0; a < tile_count;) {
    std::size_t b = a, uploads = 0, count = 0;
    for (; b < tile_count; ++b) {
      const bool up = tiles[b].resident == nullptr;
      if (up && uploads == max_uploads) break;
      uploads += up;
      count += tiles[b].count;
    }
    if (count > 0)
      read_tiles_launch(this_threads_read_context(), plan, tiles + a, b - a, count, module_px, erasure_threshold,
                        outcomes, bytes, kernel == cuda_read_kernel::cooperative_capped);
    outcomes += count;
    bytes += count * spec::max_data_codewords;
    a = b;
  }
}

void read_across_tiles_cuda(const core::version_plan& plan, const tile_read_request* tiles, std::size_t tile_count,
                            const core::across_code* codes, std::size_t count, double module_px,
                            std::uint8_t erasure_threshold, core::code_outcome* outcomes, std::uint8_t* bytes)
{
  if (count == 0) return;
  check_requests(tiles, tile_count, "read_across_tiles_cuda");
  for (std::size_t i = 0; i < count; ++i) {
    if (codes[i].count == 0 || codes[i].count > static_cast<std::uint32_t>(core::max_across))
      throw invalid_argument("read_across_tiles_cuda: a code in no tile, or in more than core::max_across");
    for (std::uint32_t k = 0; k < codes[i].count; ++k)
      if (codes[i].tiles[k] >= tile_count) throw invalid_argument("read_across_tiles_cuda: a code's tile is not listed");
  }
  read_context& c = this_threads_read_context();
  const cudaStream_t s = c.stream.get();
  std::vector<core::gray_view> views;
  std::vector<core::tile_anchor_view> anchor_views;
  stage_tiles(c, tiles, tile_count, views, anchor_views);
  // A block per code, at most read_across_blocks (each with a workspace of ~0.5 MB at v40).
  const unsigned blocks = kernels::read_across_blocks(count);
  core::across_read_batch batch;
  batch.plan = device_plan(c, plan);
  batch.images = upload(c, c.views, views.data(), tile_count);
  batch.tiles = upload(c, c.tiles, anchor_views.data(), tile_count);
  batch.codes = upload(c, c.across_codes, codes, count);
  batch.count = count;
  batch.module_px = module_px;
  batch.erasure_threshold = erasure_threshold;
  batch.workspaces = c.across_ws.reserve(blocks);
  batch.maps = c.maps.reserve(static_cast<std::size_t>(blocks) * core::max_across);
  batch.bytes = c.bytes.reserve(count * spec::max_data_codewords);
  batch.outcomes = c.outcomes.reserve(count);
  QRP_CUDA_TRY(kernels::launch_read_across(batch, blocks, s));
  download_results(c, count, outcomes, bytes);
}

struct resident_read::state {
  std::size_t count;
  double module_px;
  std::uint8_t erasure_threshold;
  device_buffer<std::uint16_t> pixels;
  core::gray_view image;
  device_buffer<core::gray_view> views{1};  // `image`, for the cooperative kernel's batch
  device_buffer<core::version_plan> plan{1};
  device_buffer<core::code_map> maps;
  device_buffer<core::read_code_workspace> ws;
  device_buffer<std::uint8_t> bytes;
  device_buffer<core::code_outcome> outcomes;
  stream_owner stream;
  event_timer timer;
};

resident_read::resident_read(const core::version_plan& plan, const core::gray_view& image, const core::code_map* maps,
                             std::size_t count, double module_px, std::uint8_t erasure_threshold)
    : s_(std::make_unique<state>())
{
  state& s = *s_;
  s.count = count;
  s.module_px = module_px;
  s.erasure_threshold = erasure_threshold;
  check_image(image, "resident_read");
  s.pixels = device_buffer<std::uint16_t>(static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height));
  s.image = upload_image_at(image, s.pixels.data(), s.stream.get());
  QRP_CUDA_TRY(cudaStreamSynchronize(s.stream.get()));
  QRP_CUDA_TRY(cudaMemcpy(s.views.data(), &s.image, sizeof(core::gray_view), cudaMemcpyHostToDevice));
  QRP_CUDA_TRY(cudaMemcpy(s.plan.data(), &plan, sizeof(plan), cudaMemcpyHostToDevice));
  s.maps = device_buffer<core::code_map>(count);
  QRP_CUDA_TRY(cudaMemcpy(s.maps.data(), maps, count * sizeof(core::code_map), cudaMemcpyHostToDevice));
  s.ws = device_buffer<core::read_code_workspace>(
      std::max(read_workers(cuda_read_kernel::per_thread, count), read_workers(cuda_read_kernel::cooperative, count)));
  s.bytes = device_buffer<std::uint8_t>(count * spec::max_data_codewords);
  s.outcomes = device_buffer<core::code_outcome>(count);
}

resident_read::~resident_read() = default;

double resident_read::run(cuda_read_kernel kernel)
{
  state& s = *s_;
  const cudaStream_t stream = s.stream.get();
  return s.timer.seconds(stream, [&] {
    launch_reads_with_maps(kernel, s.plan.data(), s.image, s.views.data(), s.maps.data(), s.count, s.module_px,
                           s.erasure_threshold, s.ws.data(), s.bytes.data(), s.outcomes.data(), stream);
  });
}

std::size_t resident_read::decoded() const
{
  std::vector<core::code_outcome> outcomes(s_->count);
  QRP_CUDA_TRY(cudaMemcpy(outcomes.data(), s_->outcomes.data(), s_->count * sizeof(core::code_outcome),
                          cudaMemcpyDeviceToHost));
  std::size_t n = 0;
  for (const core::code_outcome& o : outcomes) n += core::decoded(o.result);
  return n;
}

}  // namespace qrplate::host

