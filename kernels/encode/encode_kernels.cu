#include "encode/encode_kernels.cuh"

#include <algorithm>

#include "common/block_exec.cuh"

namespace qrplate::kernels {
namespace {

__global__ void encode_byte_payloads_kernel(const core::version_plan* plan, const std::uint8_t* bytes,
                                            const std::uint64_t* offsets, std::uint64_t count, int mask,
                                            core::encode_workspace* workspaces, std::uint64_t* modules,
                                            std::uint8_t* masks, std::uint8_t* status)
{
  const std::uint64_t thread = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
  const std::uint64_t threads = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  core::encode_workspace& ws = workspaces[thread];
  const std::size_t stride = words_per_symbol(plan->size);
  for (std::uint64_t i = thread; i < count; i += threads) {
    const std::uint64_t off = offsets[i];
    const auto len = static_cast<std::uint32_t>(offsets[i + 1] - off);
    const int used = core::encode_byte_payload(*plan, bytes + off, len, mask, ws, modules + i * stride);
    masks[i] = static_cast<std::uint8_t>(used < 0 ? 0 : used);
    status[i] = static_cast<std::uint8_t>(used < 0 ? 1 : 0);  // encode_status::too_long / ok
  }
}

__global__ void __launch_bounds__(core::cooperative_block_threads, 2) encode_cooperative_kernel(core::cooperative_batch batch)
{
  extern __shared__ std::uint64_t shared[];
  block_exec exec;
  core::encode_cooperative_block(batch, blockIdx.x, gridDim.x, static_cast<int>(blockDim.x),
                                 reinterpret_cast<unsigned char*>(shared), exec);
}

}  // namespace

void launch_encode_byte_payloads(const core::version_plan* plan, const std::uint8_t* bytes, const std::uint64_t* offsets,
                                 std::uint64_t count, int mask, core::encode_workspace* workspaces,
                                 unsigned workspace_count, std::uint64_t* modules, std::uint8_t* masks,
                                 std::uint8_t* status, cudaStream_t stream)
{
  constexpr unsigned block = 128;
  const unsigned grid = workspace_count / block;
  if (grid == 0 || count == 0) return;
  encode_byte_payloads_kernel<<<grid, block, 0, stream>>>(plan, bytes, offsets, count, mask, workspaces, modules,
                                                          masks, status);
}

cudaError_t launch_encode_cooperative(const core::version_plan* plan, const core::cooperative_tables* tables,
                                      const core::cooperative_layout& layout, int size, const std::uint8_t* bytes,
                                      const std::uint64_t* offsets, std::uint64_t count, int mask,
                                      std::uint64_t* modules, std::uint8_t* masks, std::uint8_t* status,
                                      cudaStream_t stream) noexcept
{
  if (count == 0) return cudaSuccess;
  const int per_code = core::cooperative_threads_per_code(size);
  const int groups = core::cooperative_block_threads / per_code;
  const std::size_t shared = static_cast<std::size_t>(groups) * layout.bytes;
  int device = 0, sms = 0, per_sm = 0;
  cudaError_t e = cudaFuncSetAttribute(encode_cooperative_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(shared));
  if (e == cudaSuccess) e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e == cudaSuccess)
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, encode_cooperative_kernel, core::cooperative_block_threads,
                                                      shared);
  if (e != cudaSuccess) return e;
  if (per_sm == 0) return cudaErrorInvalidConfiguration;  // the shared memory per block does not fit an SM
  const std::uint64_t rounds = (count + groups - 1) / groups;
  const auto grid = static_cast<unsigned>(std::min<std::uint64_t>(rounds, static_cast<std::uint64_t>(per_sm) * sms));
  const core::cooperative_batch batch{plan, tables, layout, bytes, offsets, count, mask, per_code, modules, masks, status};
  encode_cooperative_kernel<<<grid, core::cooperative_block_threads, shared, stream>>>(batch);
  return cudaGetLastError();
}

}  // namespace qrplate::kernels
