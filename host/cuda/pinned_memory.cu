// Whether a device exists, and page-locked host memory (pinned_memory.hpp).
#include "cuda/pinned_memory.hpp"

#include <cassert>

#include "cuda/cuda_check.hpp"

namespace qrplate::host {

bool cuda_device_present()
{
  static const bool present = [] {
    int devices = 0;
    const cudaError_t status = cudaGetDeviceCount(&devices);
    cuda_tolerate(status);  // no device: cudaErrorNoDevice, which is an answer, not a failure
    return status == cudaSuccess && devices > 0;
  }();
  return present;
}

void* pinned_host_allocate(std::size_t bytes) noexcept
{
  if (bytes == 0 || !cuda_device_present()) return nullptr;
  void* p = nullptr;
  // Portable: pinned for every device's context, not only the current one's.
  const cudaError_t status = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
  if (status != cudaSuccess) {
    cuda_tolerate(status);  // the caller falls back to pageable memory
    return nullptr;
  }
  return p;
}

void pinned_host_free(void* p) noexcept
{
  if (p == nullptr) return;
  const cudaError_t status = cudaFreeHost(p);
  assert(status == cudaSuccess);
  cuda_tolerate(status);
}

bool host_range_pinned(const void* p, std::size_t bytes) noexcept
{
  if (p == nullptr || bytes == 0 || !cuda_device_present()) return false;
  auto pinned = [](const void* q) {
    cudaPointerAttributes a{};
    const cudaError_t status = cudaPointerGetAttributes(&a, q);
    if (status != cudaSuccess) {
      cuda_tolerate(status);
      return false;
    }
    return a.type == cudaMemoryTypeHost;
  };
  return pinned(p) && pinned(static_cast<const char*>(p) + bytes - 1);
}

}  // namespace qrplate::host
