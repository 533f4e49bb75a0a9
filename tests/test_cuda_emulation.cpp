// The CUDA emulation's own promises (tests/cuda_emulation; this file is built only with
// QRPLATE_CUDA=EMULATE): what the CUDA backend's tests rely on it to catch must stay caught.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr int block = 64;

// Each thread writes its index, the block syncs, each thread reads its neighbour's: right only if
// __syncthreads really is a barrier.
__global__ void rotate_kernel(const int* in, int* out)
{
  __shared__ int values[block];
  const unsigned t = threadIdx.x;
  values[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = values[(t + 1) % block];
}

__global__ void copy_kernel(const int* in, int* out, int n)
{
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) out[i] = in[i];  // one element too many: for the guard page
}

__global__ void diverging_kernel(int* out)
{
  if (threadIdx.x == 3) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void add_kernel(int* p, int v) { atomicAdd(p + threadIdx.x, v); }

// Each thread takes a ticket: the order threads (and blocks) ran in.
__global__ void ticket_kernel(int* tickets, int* next)
{
  tickets[blockIdx.x * blockDim.x + threadIdx.x] = atomicAdd(next, 1);
}

struct device_ints {
  int* p = nullptr;
  explicit device_ints(std::size_t n) { EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(int)), cudaSuccess); }
  ~device_ints() { EXPECT_EQ(cudaFree(p), cudaSuccess); }
};

TEST(CudaEmulation, SyncthreadsIsABarrier)
{
  const int blocks = 3, n = blocks * block;
  std::vector<int> host(n), back(n);
  for (int i = 0; i < n; ++i) host[i] = 1000 + i;
  device_ints in(n), out(n);
  ASSERT_EQ(cudaMemcpy(in.p, host.data(), n * sizeof(int), cudaMemcpyHostToDevice), cudaSuccess);
  ::qrplate_emu::launch(rotate_kernel, "rotate_kernel", {blocks, block})(in.p, out.p);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(back.data(), out.p, n * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < block; ++t) EXPECT_EQ(back[b * block + t], 1000 + b * block + (t + 1) % block);
}

// Threads between barriers and blocks of a grid run in a shuffled order (seeded), so that code
// relying on an order CUDA does not promise fails here rather than passing by luck.
TEST(CudaEmulation, ThreadsAndBlocksRunInAShuffledOrder)
{
  const int blocks = 8, n = blocks * block;
  device_ints tickets(n), next(1);
  ASSERT_EQ(cudaMemset(next.p, 0, sizeof(int)), cudaSuccess);
  ::qrplate_emu::launch(ticket_kernel, "ticket_kernel", {blocks, block})(tickets.p, next.p);
  std::vector<int> t(n);
  ASSERT_EQ(cudaMemcpy(t.data(), tickets.p, n * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  std::vector<int> sorted = t;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);  // every thread ran once
  int threads_in_order = 0, first_tickets_in_order = 0;
  for (int b = 0; b < blocks; ++b) {
    bool in_order = true;
    for (int i = 1; i < block; ++i) in_order = in_order && t[b * block + i] == t[b * block + i - 1] + 1;
    threads_in_order += in_order;
    first_tickets_in_order += t[b * block] == b * block;
  }
  EXPECT_EQ(threads_in_order, 0);          // no block ran its threads in index order
  EXPECT_LT(first_tickets_in_order, blocks);  // nor were the blocks in index order
}

TEST(CudaEmulation, StreamWorkRunsOnlyWhenWaitedFor)
{
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  device_ints d(block);
  int* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(reinterpret_cast<void**>(&pinned), block * sizeof(int)), cudaSuccess);
  std::memset(pinned, 0, block * sizeof(int));
  ASSERT_EQ(cudaMemsetAsync(d.p, 0, block * sizeof(int), s), cudaSuccess);
  ::qrplate_emu::launch(add_kernel, "add_kernel", {1, block, 0, s})(d.p, 7);
  ASSERT_EQ(cudaMemcpyAsync(pinned, d.p, block * sizeof(int), cudaMemcpyDeviceToHost, s), cudaSuccess);
  EXPECT_EQ(pinned[5], 0);  // not waited for yet: what a missing synchronisation would read
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(pinned[5], 7);
  // A pinned upload reads its source when it runs, not when it is queued.
  pinned[0] = 1;
  ASSERT_EQ(cudaMemcpyAsync(d.p, pinned, sizeof(int), cudaMemcpyHostToDevice, s), cudaSuccess);
  pinned[0] = 2;
  int back = 0;
  ASSERT_EQ(cudaMemcpyAsync(&back, d.p, sizeof(int), cudaMemcpyDeviceToHost, s), cudaSuccess);  // pageable: waits
  EXPECT_EQ(back, 2);
  ASSERT_EQ(cudaFreeHost(pinned), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

TEST(CudaEmulation, NewDeviceMemoryIsNotZero)
{
  device_ints d(4);
  int back[4] = {};
  ASSERT_EQ(cudaMemcpy(back, d.p, sizeof back, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(static_cast<std::uint32_t>(back[2]), 0xA5A5A5A5u);
}

TEST(CudaEmulation, BadLaunchesAndCopiesAreErrors)
{
  device_ints d(8);
  ::qrplate_emu::launch(add_kernel, "add_kernel", {1, 2048})(d.p, 1);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // read and cleared
  ::qrplate_emu::launch(add_kernel, "add_kernel", {1, 8, 64 * 1024})(d.p, 1);  // over 48 KB, not raised
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  int host[9] = {};
  EXPECT_EQ(cudaMemcpy(d.p, host, sizeof host, cudaMemcpyHostToDevice), cudaErrorInvalidValue);  // 9 into 8
  EXPECT_EQ(cudaMemcpy(host, d.p, 4, cudaMemcpyHostToDevice), cudaErrorInvalidMemcpyDirection);
  EXPECT_EQ(cudaMemsetAsync(host, 0, 4, nullptr), cudaErrorInvalidValue);  // host memory
  (void)cudaGetLastError();
}

// What each death test does, outside the macros (whose arguments cannot hold braced commas).
void read_device_memory_on_the_host()
{
  device_ints d(4);
  volatile int v = d.p[1];
  (void)v;
}

void read_past_an_array()
{
  device_ints in(100), out(100);
  ::qrplate_emu::launch(copy_kernel, "copy_kernel", {2, block})(in.p, out.p, 100);
  (void)cudaDeviceSynchronize();
}

void use_freed_memory()
{
  int* p = nullptr;
  (void)cudaMalloc(reinterpret_cast<void**>(&p), 64);
  (void)cudaFree(p);
  ::qrplate_emu::launch(add_kernel, "add_kernel", {1, 4})(p, 1);
  (void)cudaDeviceSynchronize();
}

void skip_a_barrier()
{
  device_ints d(8);
  ::qrplate_emu::launch(diverging_kernel, "diverging_kernel", {1, 8})(d.p);
  (void)cudaDeviceSynchronize();
}

TEST(CudaEmulationDeathTest, HostCodeReadingDeviceMemoryFaults)
{
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(read_device_memory_on_the_host(), "device memory touched by host code");
}

TEST(CudaEmulationDeathTest, KernelReadingPastItsArrayFaults)
{
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(read_past_an_array(), "past the end of a device allocation.*copy_kernel");
}

TEST(CudaEmulationDeathTest, FreedDeviceMemoryFaults)
{
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(use_freed_memory(), "freed device memory.*add_kernel");
}

TEST(CudaEmulationDeathTest, SyncthreadsSkippedByAThreadIsCaught)
{
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(skip_a_barrier(), "only some threads");
}

}  // namespace
