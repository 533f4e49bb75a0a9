// Host glue of the CUDA encode backend: copies the version plan and payloads to the device,
// runs the per-code kernel, copies matrices, masks and statuses back.
// First version: one synchronous pass per call; the streamed, multi-buffered driver is the
// GPU encoder issue's work.
#include "cuda/encode_cuda.hpp"

#include <algorithm>

#include "cuda/cuda_check.hpp"
#include "encode/encode_kernels.cuh"
#include "encode/version_plan_cache.hpp"

namespace qrplate::host {

bool cuda_device_present()
{
  static const bool present = [] {
    int devices = 0;
    return cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
  }();
  return present;
}

void encode_cuda(const payload_batch_view& payloads, const batch_encode_options& options, symbol_batch& out)
{
  const std::uint64_t count = payloads.count;
  if (count == 0) return;
  const core::version_plan& plan = version_plan_for(options.version, options.ecc);
  const std::uint64_t total_bytes = payloads.offsets[count];
  const std::size_t stride = out.words_per_symbol();

  device_buffer<core::version_plan> d_plan(1);
  device_buffer<std::uint8_t> d_bytes(std::max<std::uint64_t>(total_bytes, 1));
  device_buffer<std::uint64_t> d_offsets(count + 1);
  device_buffer<std::uint64_t> d_modules(count * stride);
  device_buffer<std::uint8_t> d_masks(count);
  device_buffer<std::uint8_t> d_status(count);
  // Workspaces are ~25 KB each: bound the resident threads, not the batch.
  const unsigned workspace_count = static_cast<unsigned>(std::min<std::uint64_t>(((count + 127) / 128) * 128, 32768));
  device_buffer<core::encode_workspace> d_ws(workspace_count);

  cudaStream_t stream = nullptr;
  QRP_CUDA_TRY(cudaMemcpyAsync(d_plan.data(), &plan, sizeof(plan), cudaMemcpyHostToDevice, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(d_bytes.data(), payloads.bytes, total_bytes, cudaMemcpyHostToDevice, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(d_offsets.data(), payloads.offsets, (count + 1) * sizeof(std::uint64_t),
                               cudaMemcpyHostToDevice, stream));
  kernels::launch_encode_byte_payloads(d_plan.data(), d_bytes.data(), d_offsets.data(), count, options.mask, d_ws.data(),
                                       workspace_count, d_modules.data(), d_masks.data(), d_status.data(), stream);
  QRP_CUDA_TRY(cudaGetLastError());
  QRP_CUDA_TRY(cudaMemcpyAsync(out.modules(), d_modules.data(), count * stride * sizeof(std::uint64_t),
                               cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(out.masks(), d_masks.data(), count, cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaMemcpyAsync(reinterpret_cast<std::uint8_t*>(out.status()), d_status.data(), count,
                               cudaMemcpyDeviceToHost, stream));
  QRP_CUDA_TRY(cudaStreamSynchronize(stream));
}

}  // namespace qrplate::host
