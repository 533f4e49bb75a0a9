// Checked CUDA calls and RAII device memory for the host glue (.cu files only).
#pragma once

#include <cuda_runtime.h>

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

inline void cuda_check(cudaError_t status, const char* what, const char* file, int line)
{
  if (status != cudaSuccess)
    throw cuda_error(std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                     "): " + cudaGetErrorString(status));
}

#define QRP_CUDA_TRY(call) ::qrplate::host::cuda_check((call), #call, __FILE__, __LINE__)

// Move-only owner of `count` elements of device memory.
template <typename T>
class device_buffer {
 public:
  device_buffer() = default;
  explicit device_buffer(std::size_t count) : count_(count)
  {
    if (count) QRP_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T)));
  }
  device_buffer(device_buffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  device_buffer& operator=(device_buffer&& o) noexcept
  {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  ~device_buffer()
  {
    if (ptr_) {
      [[maybe_unused]] const cudaError_t status = cudaFree(ptr_);
      assert(status == cudaSuccess);
    }
  }
  T* data() const { return ptr_; }
  std::size_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

// Move-only owner of `count` elements of pinned (page-locked) host memory: the only kind of
// host memory cudaMemcpyAsync copies without staging, so transfers overlap kernels.
template <typename T>
class pinned_buffer {
 public:
  pinned_buffer() = default;
  explicit pinned_buffer(std::size_t count) : count_(count)
  {
    if (count) QRP_CUDA_TRY(cudaMallocHost(reinterpret_cast<void**>(&ptr_), count * sizeof(T)));
  }
  pinned_buffer(pinned_buffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  pinned_buffer& operator=(pinned_buffer&& o) noexcept
  {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;
  ~pinned_buffer()
  {
    if (ptr_) {
      [[maybe_unused]] const cudaError_t status = cudaFreeHost(ptr_);
      assert(status == cudaSuccess);
    }
  }
  T* data() const { return ptr_; }
  std::size_t size() const { return count_; }

 private:
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
    [[maybe_unused]] const cudaError_t status = cudaStreamDestroy(stream_);
    assert(status == cudaSuccess);
  }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace qrplate::host
