// qrplate's CUDA emulation (tests only; QRPLATE_CUDA=EMULATE): the part of the CUDA runtime API
// and of the kernel language that qrplate's .cu files use, run on the CPU, so that the CUDA
// backend's host glue (buffers, copies, streams, launch geometry, the order of work) runs in CI
// on machines without a GPU. Not a GPU: it runs every thread of a block as a fiber on one host
// thread, one block after another, and checks what it can (tests/cuda_emulation/runtime.cpp).
// tests/cuda_emulation/translate.cmake rewrites `k<<<grid, block, shared, stream>>>(args)` into
// `::qrplate_emu::launch(k, "k", ::qrplate_emu::config{grid, block, shared, stream})(args)`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define QRPLATE_CUDA_EMULATION 1

// The kernel language: qualifiers vanish; a block's shared memory is the host thread's (the
// block's fibers share it, and blocks run one at a time on that thread).
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local

enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorLaunchOutOfResources = 701,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

enum cudaMemPoolAttr {
  cudaMemPoolAttrReleaseThreshold = 4,
};

enum cudaMemoryType {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3,
};

// The fields of the real cudaDeviceProp that qrplate reads (the name for figures' labels).
struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  int multiProcessorCount;
  int major;
  int minor;
};

struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};

#define cudaDeviceScheduleAuto 0x00
#define cudaDeviceScheduleSpin 0x01
#define cudaDeviceScheduleYield 0x02
#define cudaDeviceScheduleBlockingSync 0x04
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventDisableTiming 0x02

struct qrplate_emu_stream;
struct qrplate_emu_event;
struct qrplate_emu_mem_pool;
typedef qrplate_emu_stream* cudaStream_t;
typedef qrplate_emu_event* cudaEvent_t;
typedef qrplate_emu_mem_pool* cudaMemPool_t;

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

namespace qrplate_emu {

using kernel_id = void (*)();

// What a kernel's code sees of its thread (threadIdx and friends below).
struct thread_position {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
const thread_position& current();
void syncthreads();
unsigned char* dynamic_shared();

struct config {
  dim3 grid;
  dim3 block;
  std::size_t shared = 0;
  cudaStream_t stream = nullptr;
};

// Checks a launch's configuration (the error is the one cudaGetLastError then returns) and puts
// the grid on its stream: `body` runs once per thread, with current() telling which.
void launch_grid(kernel_id kernel, const char* name, const config& c, std::function<void()> body);

// Stream-ordered host work for the CUB stand-ins (runs with device memory open to it).
cudaError_t enqueue(cudaStream_t stream, const char* what, std::function<void()> work);
// Whether [p, p + bytes) lies inside one live device allocation.
bool is_device_range(const void* p, std::size_t bytes);

template <typename... P>
struct launcher {
  void (*kernel)(P...);
  const char* name;
  config cfg;

  template <typename... A>
  void operator()(A&&... a) const
  {
    static_assert(sizeof...(A) == sizeof...(P), "a kernel launch with the wrong number of arguments");
    // Arguments are copied at the launch, as CUDA copies them into the kernel's parameter space.
    std::tuple<std::decay_t<P>...> args(std::forward<A>(a)...);
    void (*k)(P...) = kernel;
    launch_grid(reinterpret_cast<kernel_id>(k), name, cfg, [k, args] { std::apply(k, args); });
  }
};

template <typename... P>
launcher<P...> launch(void (*kernel)(P...), const char* name, const config& c)
{
  return {kernel, name, c};
}

cudaError_t set_func_attribute(kernel_id kernel, cudaFuncAttribute attr, int value);
cudaError_t occupancy(int* blocks, kernel_id kernel, int block_size, std::size_t dynamic_shared);

}  // namespace qrplate_emu

#define threadIdx (::qrplate_emu::current().thread_idx)
#define blockIdx (::qrplate_emu::current().block_idx)
#define blockDim (::qrplate_emu::current().block_dim)
#define gridDim (::qrplate_emu::current().grid_dim)

inline void __syncthreads() { ::qrplate_emu::syncthreads(); }

// A block's threads run one at a time and blocks one after another: plain read-modify-writes are
// atomic here.
template <typename T, typename U>
T atomicAdd(T* p, U v)
{
  const T old = *p;
  *p = static_cast<T>(old + static_cast<T>(v));
  return old;
}
template <typename T, typename U>
T atomicMin(T* p, U v)
{
  const T old = *p;
  if (static_cast<T>(v) < old) *p = static_cast<T>(v);
  return old;
}
template <typename T, typename U>
T atomicMax(T* p, U v)
{
  const T old = *p;
  if (old < static_cast<T>(v)) *p = static_cast<T>(v);
  return old;
}

// The runtime API (the subset qrplate calls; semantics in runtime.cpp).
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaSetDeviceFlags(unsigned flags);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);

cudaError_t cudaMalloc(void** p, std::size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocHost(void** p, std::size_t bytes);
cudaError_t cudaHostAlloc(void** p, std::size_t bytes, unsigned flags);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* p);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* p, cudaStream_t stream);

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                              std::size_t height, cudaMemcpyKind kind, cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* p, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

template <typename T>
cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute attr, int value)
{
  return ::qrplate_emu::set_func_attribute(reinterpret_cast<::qrplate_emu::kernel_id>(entry), attr, value);
}
template <typename T>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, T* entry, int block_size,
                                                          std::size_t dynamic_shared)
{
  return ::qrplate_emu::occupancy(blocks, reinterpret_cast<::qrplate_emu::kernel_id>(entry), block_size,
                                  dynamic_shared);
}
