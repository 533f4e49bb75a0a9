#include "decode/registration_kernels.cuh"

#include <cub/block/block_scan.cuh>
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

// One thread per column x of sums: the running sum down the rows 1..height (row 0 is zero).
__global__ void integral_columns_kernel(std::uint32_t* sums, int width, int height)
{
  const int x = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (x > width) return;
  const std::size_t w1 = static_cast<std::size_t>(width) + 1;
  std::uint32_t acc = 0;
  for (int y = 1; y <= height; ++y) {
    std::uint32_t* p = sums + static_cast<std::size_t>(y) * w1 + x;
    acc += *p;
    *p = acc;
  }
}

__global__ void contrast_histogram_kernel(core::integral_view iv, core::contrast_grid grid, std::uint32_t* histogram)
{
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= grid.boxes()) return;
  const int i = static_cast<int>(k % static_cast<std::size_t>(grid.columns));
  const int j = static_cast<int>(k / static_cast<std::size_t>(grid.columns));
  atomicAdd(histogram + grid.bin(iv, i, j), 1u);
}

__global__ void finder_responses_kernel(core::integral_view iv, core::finder_scan_plan plan, float* responses)
{
  const std::size_t k = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (k >= plan.positions()) return;
  const int i = static_cast<int>(k % static_cast<std::size_t>(plan.columns));
  const int j = static_cast<int>(k / static_cast<std::size_t>(plan.columns));
  responses[k] = plan.response(iv, i, j);
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

void launch_integral_image(const std::uint16_t* pixels, int width, int height, int shift, std::uint32_t* sums,
                           cudaStream_t stream)
{
  if (width <= 0 || height <= 0) return;
  integral_rows_kernel<<<static_cast<unsigned>(height), row_scan_threads, 0, stream>>>(pixels, width, shift, sums);
  constexpr unsigned threads = 128;
  integral_columns_kernel<<<blocks_for(static_cast<std::size_t>(width) + 1, threads), threads, 0, stream>>>(
      sums, width, height);
}

void launch_contrast_histogram(core::integral_view iv, core::contrast_grid grid, std::uint32_t* histogram,
                               cudaStream_t stream)
{
  if (grid.boxes() == 0) return;
  constexpr unsigned threads = 256;
  contrast_histogram_kernel<<<blocks_for(grid.boxes(), threads), threads, 0, stream>>>(iv, grid, histogram);
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

}  // namespace qrplate::kernels
