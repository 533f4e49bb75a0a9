// What the GPU benchmarks share: skipping without a device, timing stream-ordered work with CUDA
// events, and the copy rows that are the GPU's limits (HBM, PCIe), registered by each binary so
// that its kernels and their limits are measured in the same run.
#pragma once

#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "qrplate/encode.hpp"

namespace qrplate::bench {

inline bool skip_without_device(benchmark::State& state)
{
  if (cuda_backend_available()) return false;
  state.SkipWithError("no CUDA device");
  return true;
}

// Times one stream-ordered call per iteration with CUDA events.
template <typename Enqueue>
void time_on_stream(benchmark::State& state, cudaStream_t stream, Enqueue enqueue)
{
  host::event_timer timer;
  timer.seconds(stream, enqueue);  // warm-up
  for (auto _ : state) state.SetIterationTime(timer.seconds(stream, enqueue));
}

enum class copy_kind { device_to_device, host_to_device_pinned, host_to_device_pageable };

inline void bm_copy(benchmark::State& state, copy_kind kind)
{
  if (skip_without_device(state)) return;
  try {
    const std::size_t bytes = kind == copy_kind::device_to_device ? (1u << 30) : (256u << 20);
    host::device_buffer<std::uint8_t> dst(bytes), src(kind == copy_kind::device_to_device ? bytes : 0);
    host::pinned_buffer<std::uint8_t> pinned(kind == copy_kind::host_to_device_pinned ? bytes : 0);
    std::vector<std::uint8_t> pageable(kind == copy_kind::host_to_device_pageable ? bytes : 0, 1);
    const void* from = kind == copy_kind::device_to_device
                           ? static_cast<const void*>(src.data())
                           : (kind == copy_kind::host_to_device_pinned ? static_cast<const void*>(pinned.data())
                                                                       : static_cast<const void*>(pageable.data()));
    if (pinned.size()) std::memset(pinned.data(), 1, bytes);
    host::stream_owner stream;
    const cudaMemcpyKind how = kind == copy_kind::device_to_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice;
    time_on_stream(state, stream.get(),
                   [&] { QRP_CUDA_TRY(cudaMemcpyAsync(dst.data(), from, bytes, how, stream.get())); });
    const auto moved = state.iterations() * static_cast<benchmark::IterationCount>(bytes);
    state.SetBytesProcessed(kind == copy_kind::device_to_device ? 2 * moved : moved);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

inline void register_copy_rows()
{
  benchmark::RegisterBenchmark("BM_cuda_copy/device_to_device", bm_copy, copy_kind::device_to_device)->UseManualTime();
  benchmark::RegisterBenchmark("BM_cuda_copy/host_to_device_pinned", bm_copy, copy_kind::host_to_device_pinned)
      ->UseManualTime();
  benchmark::RegisterBenchmark("BM_cuda_copy/host_to_device_pageable", bm_copy, copy_kind::host_to_device_pageable)
      ->UseManualTime();
}

}  // namespace qrplate::bench
