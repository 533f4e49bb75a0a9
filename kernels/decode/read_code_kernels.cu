#include "decode/read_code_kernels.cuh"

#include <algorithm>

#include "common/block_exec.cuh"

namespace qrplate::kernels {
namespace {

__global__ void read_codes_kernel(const core::version_plan* plan, core::gray_view image, const core::code_map* maps,
                                  std::uint64_t count, double module_px, std::uint8_t erasure_threshold,
                                  core::read_code_workspace* workspaces, std::uint8_t* bytes,
                                  core::code_outcome* outcomes)
{
  const std::uint64_t thread = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
  const std::uint64_t threads = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  core::read_code_workspace& ws = workspaces[thread];
  for (std::uint64_t i = thread; i < count; i += threads)
    outcomes[i] = core::read_code(*plan, image, maps[i], module_px, erasure_threshold,
                                  bytes + i * spec::max_data_codewords, ws);
}

__global__ void measure_and_read_codes_kernel(const core::version_plan* plan, core::gray_view image,
                                              core::tile_anchor_view tile, const double* origins, std::uint64_t count,
                                              double module_px, std::uint8_t erasure_threshold,
                                              core::read_code_workspace* workspaces, core::code_map* maps,
                                              std::uint8_t* bytes, core::code_outcome* outcomes)
{
  const std::uint64_t thread = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
  const std::uint64_t threads = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  core::read_code_workspace& ws = workspaces[thread];
  core::code_map& map = maps[thread];
  for (std::uint64_t i = thread; i < count; i += threads) {
    core::measure_code_map(tile, *plan, origins[2 * i], origins[2 * i + 1], map);
    outcomes[i] = core::read_code(*plan, image, map, module_px, erasure_threshold,
                                  bytes + i * spec::max_data_codewords, ws);
  }
}

__device__ __forceinline__ void read_codes_cooperative_body(const core::cooperative_read_batch& batch)
{
  // Raw storage: the member initializers of these types would make a __shared__ declaration a
  // dynamic initialization, which CUDA does not allow; the phases write each part before reading it.
  alignas(core::cooperative_read_shared) __shared__ unsigned char storage[sizeof(core::cooperative_read_shared)];
  block_exec exec;
  core::read_cooperative_block(batch, blockIdx.x, gridDim.x, static_cast<int>(blockDim.x),
                               *reinterpret_cast<core::cooperative_read_shared*>(storage), exec);
}

// The register count left to the compiler, and capped for 4 resident blocks per SM.
__global__ void read_codes_cooperative_kernel(core::cooperative_read_batch batch)
{
  read_codes_cooperative_body(batch);
}

__global__ void __launch_bounds__(cooperative_read_block, 4)
    read_codes_cooperative_capped_kernel(core::cooperative_read_batch batch)
{
  read_codes_cooperative_body(batch);
}

__global__ void read_across_cooperative_kernel(core::across_read_batch batch)
{
  // Raw storage, as in read_codes_cooperative_body.
  alignas(core::cooperative_across_shared) __shared__ unsigned char storage[sizeof(core::cooperative_across_shared)];
  block_exec exec;
  core::read_across_cooperative_block(batch, blockIdx.x, gridDim.x, static_cast<int>(blockDim.x),
                                      *reinterpret_cast<core::cooperative_across_shared*>(storage), exec);
}

}  // namespace

unsigned read_across_blocks(std::uint64_t count)
{
  // Each block holds a read_across_workspace (~0.5 MB at version 40) and max_across maps.
  constexpr std::uint64_t max_blocks = 512;
  return static_cast<unsigned>(std::max<std::uint64_t>(1, std::min(count, max_blocks)));
}

cudaError_t launch_read_across(const core::across_read_batch& batch, unsigned blocks, cudaStream_t stream) noexcept
{
  if (batch.count == 0 || blocks == 0) return cudaSuccess;
  read_across_cooperative_kernel<<<blocks, cooperative_read_block, 0, stream>>>(batch);
  return cudaGetLastError();
}

unsigned cooperative_read_blocks(std::uint64_t count)
{
  // Each block holds a ~210 KB workspace (version 40): a few per SM keep the SMs busy.
  constexpr std::uint64_t max_blocks = 1024;
  return static_cast<unsigned>(std::max<std::uint64_t>(1, std::min(count, max_blocks)));
}

cudaError_t launch_read_codes_cooperative(const core::cooperative_read_batch& batch, unsigned blocks,
                                          cudaStream_t stream, bool register_capped) noexcept
{
  if (batch.count == 0 || blocks == 0) return cudaSuccess;
  if (register_capped) read_codes_cooperative_capped_kernel<<<blocks, cooperative_read_block, 0, stream>>>(batch);
  else read_codes_cooperative_kernel<<<blocks, cooperative_read_block, 0, stream>>>(batch);
  return cudaGetLastError();
}

void launch_measure_and_read_codes(const core::version_plan* plan, core::gray_view image,
                                   core::tile_anchor_view tile, const double* origins, std::uint64_t count,
                                   double module_px, std::uint8_t erasure_threshold,
                                   core::read_code_workspace* workspaces, core::code_map* maps,
                                   unsigned workspace_count, std::uint8_t* bytes, core::code_outcome* outcomes,
                                   cudaStream_t stream)
{
  const unsigned grid = workspace_count / read_codes_block;
  if (grid == 0 || count == 0) return;
  measure_and_read_codes_kernel<<<grid, read_codes_block, 0, stream>>>(
      plan, image, tile, origins, count, module_px, erasure_threshold, workspaces, maps, bytes, outcomes);
}

void launch_read_codes(const core::version_plan* plan, core::gray_view image, const core::code_map* maps,
                       std::uint64_t count, double module_px, std::uint8_t erasure_threshold,
                       core::read_code_workspace* workspaces, unsigned workspace_count, std::uint8_t* bytes,
                       core::code_outcome* outcomes, cudaStream_t stream)
{
  const unsigned grid = workspace_count / read_codes_block;
  if (grid == 0 || count == 0) return;
  read_codes_kernel<<<grid, read_codes_block, 0, stream>>>(plan, image, maps, count, module_px, erasure_threshold,
                                                           workspaces, bytes, outcomes);
}

}  // namespace qrplate::kernels
