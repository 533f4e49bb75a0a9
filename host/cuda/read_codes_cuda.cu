// Host glue of the CUDA code reader: one tile and its code maps (or its integral image and the
// codes' origins, for the anchor search on the GPU) up, one launch, outcomes and bytes down.
// Synchronous; the streaming pipeline of issue #7 (pinned staging, lanes of streams as in
// encode_cuda.cu) comes with the batched scan reader.
// Status: compiled in CI for sm_90, never run on a GPU yet.
#include "cuda/read_codes_cuda.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "decode/read_code_kernels.cuh"

namespace qrplate::host {

namespace {

// The image packed (stride = width) on the device.
device_buffer<std::uint16_t> upload_image(const core::gray_view& image, const char* who)
{
  if (image.width <= 0 || image.height <= 0 || image.pixels == nullptr)
    throw invalid_argument(std::string(who) + ": empty image");
  const auto width = static_cast<std::size_t>(image.width), height = static_cast<std::size_t>(image.height);
  device_buffer<std::uint16_t> d_pixels(width * height);
  QRP_CUDA_TRY(cudaMemcpy2D(d_pixels.data(), width * sizeof(std::uint16_t), image.pixels,
                            image.stride * sizeof(std::uint16_t), width * sizeof(std::uint16_t), height,
                            cudaMemcpyHostToDevice));
  return d_pixels;
}

// Threads for `count` codes, a multiple of the block: each holds a ~210 KB workspace (sized for
// version 40), so at most 1024.
unsigned read_threads(std::size_t count)
{
  const std::size_t wanted = std::min<std::size_t>(count, 1024);
  return static_cast<unsigned>((wanted + kernels::read_codes_block - 1) / kernels::read_codes_block *
                               kernels::read_codes_block);
}

}  // namespace

void read_codes_cuda(const core::version_plan& plan, const core::gray_view& image, const core::code_map* maps,
                     std::size_t count, double module_px, std::uint8_t erasure_threshold, core::code_outcome* outcomes,
                     std::uint8_t* bytes, cuda_read_kernel kernel)
{
  if (count == 0) return;
  const device_buffer<std::uint16_t> d_pixels = upload_image(image, "read_codes_cuda");
  const auto width = static_cast<std::size_t>(image.width);
  device_buffer<core::version_plan> d_plan(1);
  QRP_CUDA_TRY(cudaMemcpy(d_plan.data(), &plan, sizeof(plan), cudaMemcpyHostToDevice));
  device_buffer<core::code_map> d_maps(count);
  QRP_CUDA_TRY(cudaMemcpy(d_maps.data(), maps, count * sizeof(core::code_map), cudaMemcpyHostToDevice));
  const bool plain = kernel == cuda_read_kernel::per_thread;
  const unsigned workers = plain ? read_threads(count) : kernels::cooperative_read_blocks(count);
  device_buffer<core::read_code_workspace> d_ws(workers);
  device_buffer<std::uint8_t> d_bytes(count * spec::max_data_codewords);
  device_buffer<core::code_outcome> d_outcomes(count);
  const core::gray_view d_image{d_pixels.data(), image.width, image.height, width};
  if (plain) {
    kernels::launch_read_codes(d_plan.data(), d_image, d_maps.data(), count, module_px, erasure_threshold, d_ws.data(),
                               workers, d_bytes.data(), d_outcomes.data(), nullptr);
    QRP_CUDA_TRY(cudaGetLastError());
  } else {
    QRP_CUDA_TRY(kernels::launch_read_codes_cooperative(d_plan.data(), d_image, d_maps.data(), false, {}, nullptr, count,
                                                        module_px, erasure_threshold, d_ws.data(), nullptr, workers,
                                                        d_bytes.data(), d_outcomes.data(), nullptr));
  }
  QRP_CUDA_TRY(cudaDeviceSynchronize());
  QRP_CUDA_TRY(cudaMemcpy(outcomes, d_outcomes.data(), count * sizeof(core::code_outcome), cudaMemcpyDeviceToHost));
  QRP_CUDA_TRY(cudaMemcpy(bytes, d_bytes.data(), count * spec::max_data_codewords, cudaMemcpyDeviceToHost));
}

void measure_and_read_codes_cuda(const core::version_plan& plan, const core::gray_view& image,
                                 const core::tile_anchor_view& tile, const double* origins, std::size_t count,
                                 double module_px, std::uint8_t erasure_threshold, core::code_outcome* outcomes,
                                 std::uint8_t* bytes, cuda_read_kernel kernel)
{
  if (count == 0) return;
  if (tile.iv.sums == nullptr || tile.iv.width != image.width || tile.iv.height != image.height)
    throw invalid_argument("measure_and_read_codes_cuda: the integral image is not the image's");
  const device_buffer<std::uint16_t> d_pixels = upload_image(image, "measure_and_read_codes_cuda");
  const auto width = static_cast<std::size_t>(image.width), height = static_cast<std::size_t>(image.height);
  const std::size_t entries = (width + 1) * (height + 1);
  device_buffer<std::uint32_t> d_sums(entries);
  QRP_CUDA_TRY(cudaMemcpy(d_sums.data(), tile.iv.sums, entries * sizeof(std::uint32_t), cudaMemcpyHostToDevice));
  device_buffer<core::version_plan> d_plan(1);
  QRP_CUDA_TRY(cudaMemcpy(d_plan.data(), &plan, sizeof(plan), cudaMemcpyHostToDevice));
  device_buffer<double> d_origins(2 * count);
  QRP_CUDA_TRY(cudaMemcpy(d_origins.data(), origins, 2 * count * sizeof(double), cudaMemcpyHostToDevice));
  const bool plain = kernel == cuda_read_kernel::per_thread;
  // Each worker (a thread, or a block) also has a scratch map (~17 KB).
  const unsigned workers = plain ? read_threads(count) : kernels::cooperative_read_blocks(count);
  device_buffer<core::read_code_workspace> d_ws(workers);
  device_buffer<core::code_map> d_maps(workers);
  device_buffer<std::uint8_t> d_bytes(count * spec::max_data_codewords);
  device_buffer<core::code_outcome> d_outcomes(count);
  const core::gray_view d_image{d_pixels.data(), image.width, image.height, width};
  core::tile_anchor_view d_tile = tile;
  d_tile.iv.sums = d_sums.data();
  if (plain) {
    kernels::launch_measure_and_read_codes(d_plan.data(), d_image, d_tile, d_origins.data(), count, module_px,
                                           erasure_threshold, d_ws.data(), d_maps.data(), workers, d_bytes.data(),
                                           d_outcomes.data(), nullptr);
    QRP_CUDA_TRY(cudaGetLastError());
  } else {
    QRP_CUDA_TRY(kernels::launch_read_codes_cooperative(d_plan.data(), d_image, nullptr, true, d_tile, d_origins.data(),
                                                        count, module_px, erasure_threshold, d_ws.data(), d_maps.data(),
                                                        workers, d_bytes.data(), d_outcomes.data(), nullptr));
  }
  QRP_CUDA_TRY(cudaDeviceSynchronize());
  QRP_CUDA_TRY(cudaMemcpy(outcomes, d_outcomes.data(), count * sizeof(core::code_outcome), cudaMemcpyDeviceToHost));
  QRP_CUDA_TRY(cudaMemcpy(bytes, d_bytes.data(), count * spec::max_data_codewords, cudaMemcpyDeviceToHost));
}

struct resident_read::state {
  std::size_t count;
  double module_px;
  std::uint8_t erasure_threshold;
  device_buffer<std::uint16_t> pixels;
  core::gray_view image;
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
  s.pixels = upload_image(image, "resident_read");
  s.image = core::gray_view{s.pixels.data(), image.width, image.height, static_cast<std::size_t>(image.width)};
  QRP_CUDA_TRY(cudaMemcpy(s.plan.data(), &plan, sizeof(plan), cudaMemcpyHostToDevice));
  s.maps = device_buffer<core::code_map>(count);
  QRP_CUDA_TRY(cudaMemcpy(s.maps.data(), maps, count * sizeof(core::code_map), cudaMemcpyHostToDevice));
  s.ws = device_buffer<core::read_code_workspace>(std::max<std::size_t>(read_threads(count),
                                                                        kernels::cooperative_read_blocks(count)));
  s.bytes = device_buffer<std::uint8_t>(count * spec::max_data_codewords);
  s.outcomes = device_buffer<core::code_outcome>(count);
}

resident_read::~resident_read() = default;

double resident_read::run(cuda_read_kernel kernel)
{
  state& s = *s_;
  const cudaStream_t stream = s.stream.get();
  return s.timer.seconds(stream, [&] {
    if (kernel == cuda_read_kernel::per_thread) {
      kernels::launch_read_codes(s.plan.data(), s.image, s.maps.data(), s.count, s.module_px, s.erasure_threshold,
                                 s.ws.data(), read_threads(s.count), s.bytes.data(), s.outcomes.data(), stream);
      QRP_CUDA_TRY(cudaGetLastError());
    } else {
      QRP_CUDA_TRY(kernels::launch_read_codes_cooperative(
          s.plan.data(), s.image, s.maps.data(), false, {}, nullptr, s.count, s.module_px, s.erasure_threshold,
          s.ws.data(), nullptr, kernels::cooperative_read_blocks(s.count), s.bytes.data(), s.outcomes.data(), stream));
    }
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

