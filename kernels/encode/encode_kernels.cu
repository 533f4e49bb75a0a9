#include "encode/encode_kernels.cuh"

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
    status[i] = used < 0 ? 1 : 0;  // encode_status::too_long / ok
  }
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

}  // namespace qrplate::kernels
