// Checked CUDA calls and RAII device memory for the host glue (.cu files only).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <string>
#include <utility>

#include "qrplate/error.hpp"

namespace qrplate::host {

class cuda_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A failed runtime call also leaves its error in the host thread's last-error slot, where the
// next launch's cudaGetLastError() would find it and blame the launch (a caught out-of-memory,
// then an unrelated kernel "out of memory"). Whoever consumes a failure takes it out of the slot:
// cuda_check by throwing it, cuda_tolerate for a failure that is allowed (cleanup, optional
// settings). Sticky errors (a faulted device context) stay: every later call reports them.
inline void cuda_tolerate(cudaError_t status)
{
  if (status != cudaSuccess) (void)cudaGetLastError();
}

inline void cuda_check(cudaError_t status, const char* what, const char* file, int line)
{
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    throw cuda_error(std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                     "): " + cudaGetErrorString(status));
  }
}

#define QRP_CUDA_TRY(call) ::qrplate::host::cuda_check((call), #call, __FILE__, __LINE__)

// Move-only owner of `count` elements of CUDA-allocated memory; Space says where (device
// memory, or pinned host memory: the only kind of host memory cudaMemcpyAsync copies without
// staging, so transfers overlap kernels).
struct device_space {
  static cudaError_t allocate(void** p, std::size_t bytes) { return cudaMalloc(p, bytes); }
  static cudaError_t release(void* p) { return cudaFree(p); }
};
struct pinned_space {
  static cudaError_t allocate(void** p, std::size_t bytes) { return cudaMallocHost(p, bytes); }
  static cudaError_t release(void* p) { return cudaFreeHost(p); }
};

template <typename T, typename Space>
class cuda_buffer {
 public:
  cuda_buffer() = default;
  explicit cuda_buffer(std::size_t count) : count_(count)
  {
    if (count) QRP_CUDA_TRY(Space::allocate(reinterpret_cast<void**>(&ptr_), count * sizeof(T)));
  }
  cuda_buffer(cuda_buffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  cuda_buffer& operator=(cuda_buffer&& o) noexcept
  {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  cuda_buffer(const cuda_buffer&) = delete;
  cuda_buffer& operator=(const cuda_buffer&) = delete;
  ~cuda_buffer()
  {
    if (ptr_) {
      const cudaError_t status = Space::release(ptr_);
      assert(status == cudaSuccess);
      cuda_tolerate(status);
    }
  }
  T* data() const { return ptr_; }
  std::size_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

template <typename T>
using device_buffer = cuda_buffer<T, device_space>;
template <typename T>
using pinned_buffer = cuda_buffer<T, pinned_space>;

// Device memory from the stream-ordered allocator on one stream, grown on demand (contents not
// kept). Growing frees the old block with cudaFreeAsync on that stream, which waits for nothing
// else (cudaFree would wait for every stream of the device: the other threads' registration and
// reads too). It grows by half again at least, so that batches that creep up in size do not
// reallocate at every call.
template <typename T>
class stream_buffer {
 public:
  explicit stream_buffer(cudaStream_t stream) : stream_(stream) {}
  stream_buffer(const stream_buffer&) = delete;
  stream_buffer& operator=(const stream_buffer&) = delete;
  ~stream_buffer()
  {
    if (ptr_ != nullptr) cuda_tolerate(cudaFreeAsync(ptr_, stream_));
  }
  T* reserve(std::size_t count)
  {
    if (count > count_) {
      const std::size_t grown = std::max(count, count_ + count_ / 2);
      if (ptr_ != nullptr) QRP_CUDA_TRY(cudaFreeAsync(ptr_, stream_));
      ptr_ = nullptr;
      count_ = 0;  // empty, should the allocation fail
      QRP_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void**>(&ptr_), grown * sizeof(T), stream_));
      count_ = grown;
    }
    return ptr_;
  }
  T* data() const { return ptr_; }
  std::size_t size() const { return count_; }

 private:
  cudaStream_t stream_;
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

// Owner of a CUDA stream.
class stream_owner {
 public:
  stream_owner() { QRP_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  stream_owner(const stream_owner&) = delete;
  stream_owner& operator=(const stream_owner&) = delete;
  ~stream_owner()
  {
    const cudaError_t status = cudaStreamDestroy(stream_);
    assert(status == cudaSuccess);
    cuda_tolerate(status);
  }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// An event that only orders work between streams (no timing: cheaper to record).
class order_event {
 public:
  order_event() { QRP_CUDA_TRY(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  order_event(const order_event&) = delete;
  order_event& operator=(const order_event&) = delete;
  ~order_event() { cuda_tolerate(cudaEventDestroy(event_)); }
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

// Times stream-ordered work with a pair of CUDA events: seconds between the work's start and end
// on the stream, without the host's launch overhead.
class event_timer {
 public:
  event_timer()
  {
    QRP_CUDA_TRY(cudaEventCreate(&start_));
    QRP_CUDA_TRY(cudaEventCreate(&stop_));
  }
  event_timer(const event_timer&) = delete;
  event_timer& operator=(const event_timer&) = delete;
  ~event_timer()
  {
    const cudaError_t a = cudaEventDestroy(start_);
    const cudaError_t b = cudaEventDestroy(stop_);
    assert(a == cudaSuccess && b == cudaSuccess);
    cuda_tolerate(a);
    cuda_tolerate(b);
  }

  // enqueue() puts the work on `stream`; waits for it.
  template <typename Enqueue>
  double seconds(cudaStream_t stream, Enqueue&& enqueue)
  {
    QRP_CUDA_TRY(cudaEventRecord(start_, stream));
    enqueue();
    QRP_CUDA_TRY(cudaEventRecord(stop_, stream));
    QRP_CUDA_TRY(cudaEventSynchronize(stop_));
    float ms = 0;
    QRP_CUDA_TRY(cudaEventElapsedTime(&ms, start_, stop_));
    return ms / 1e3;
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace qrplate::host
