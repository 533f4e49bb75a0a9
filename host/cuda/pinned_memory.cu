// Whether a device exists, and page-locked host memory (pinned_memory.hpp).
#include "cuda/pinned_memory.hpp"

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cuda/cuda_check.hpp"

namespace qrplate::host {

bool cuda_sync_flags(const char* text, unsigned& flags)
{
  const std::string t = text ? text : "";
  if (t.empty() || t == "auto") flags = cudaDeviceScheduleAuto;
  else if (t == "spin") flags = cudaDeviceScheduleSpin;
  else if (t == "yield") flags = cudaDeviceScheduleYield;
  else if (t == "block") flags = cudaDeviceScheduleBlockingSync;
  else return false;
  return true;
}

namespace {

// QRPLATE_CUDA_SYNC: how a host thread waits for the GPU (CUDA's default with fewer contexts
// than cores is to spin, which takes a core from the host work beside it: tile reading, the
// writer). For measuring the choice on a GPU machine; a bad value or a context made before this
// probe is said on stderr, never fatal.
void apply_sync_preference()
{
  const char* text = std::getenv("QRPLATE_CUDA_SYNC");
  if (text == nullptr) return;
  unsigned flags = 0;
  if (!cuda_sync_flags(text, flags)) {
    std::fprintf(stderr, "qrplate: QRPLATE_CUDA_SYNC=%s ignored (auto, spin, yield or block)\n", text);
    return;
  }
  const cudaError_t status = cudaSetDeviceFlags(flags);
  if (status != cudaSuccess) {
    std::fprintf(stderr, "qrplate: QRPLATE_CUDA_SYNC=%s not applied: %s\n", text, cudaGetErrorString(status));
    cuda_tolerate(status);
  }
}

}  // namespace

bool cuda_device_present()
{
  static const bool present = [] {
    int devices = 0;
    const cudaError_t status = cudaGetDeviceCount(&devices);
    cuda_tolerate(status);  // no device: cudaErrorNoDevice, which is an answer, not a failure
    const bool any = status == cudaSuccess && devices > 0;
    if (any) apply_sync_preference();  // qrplate's first CUDA call: no context exists yet
    return any;
  }();
  return present;
}

std::string cuda_device_summary()
{
  if (!cuda_device_present()) return "";
  cudaDeviceProp p{};
  const cudaError_t status = cudaGetDeviceProperties(&p, 0);
  if (status != cudaSuccess) {
    cuda_tolerate(status);
    return "a CUDA device (its properties could not be read)";
  }
  int driver = 0, runtime = 0;
  cuda_tolerate(cudaDriverGetVersion(&driver));
  cuda_tolerate(cudaRuntimeGetVersion(&runtime));
  char text[512];
  std::snprintf(text, sizeof text, "%s, sm_%d%d, %d SMs, %.1f GiB, driver %d.%d, runtime %d.%d", p.name, p.major, p.minor,
                p.multiProcessorCount, static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0),
                driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
  return text;
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
