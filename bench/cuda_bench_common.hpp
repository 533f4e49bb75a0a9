// What the GPU benchmarks share: skipping without a device, timing stream-ordered work with CUDA
// events, and the copy rows that are the GPU's limits (HBM, PCIe), registered by each binary so
// that its kernels and their limits are measured in the same run.
#pragma once

#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
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

enum class copy_kind {
  device_to_device,
  host_to_device_pinned,
  host_to_device_pageable,
  device_to_host_pinned,  // what an encode sends back: its matrices (1.44 bytes per v40-L payload byte)
  both_ways_pinned,       // host to device and device to host at once, on two streams (PCIe is full duplex)
};

inline void bm_copy(benchmark::State& state, copy_kind kind)
{
  if (skip_without_device(state)) return;
  try {
    const bool on_device = kind == copy_kind::device_to_device;
    const bool pinned_up = kind == copy_kind::host_to_device_pinned || kind == copy_kind::both_ways_pinned;
    const bool pinned_down = kind == copy_kind::device_to_host_pinned || kind == copy_kind::both_ways_pinned;
    const std::size_t bytes = on_device ? (1u << 30) : (256u << 20);
    host::device_buffer<std::uint8_t> dst(bytes), src(on_device || pinned_down ? bytes : 0);
    host::pinned_buffer<std::uint8_t> pinned(pinned_up ? bytes : 0), landing(pinned_down ? bytes : 0);
    std::vector<std::uint8_t> pageable(kind == copy_kind::host_to_device_pageable ? bytes : 0, 1);
    if (pinned.size()) std::memset(pinned.data(), 1, bytes);
    if (landing.size()) std::memset(landing.data(), 0, bytes);  // touched: no page faults in the timing
    if (src.size()) QRP_CUDA_TRY(cudaMemset(src.data(), 1, bytes));
    host::stream_owner stream, second;
    host::order_event fork, join;
    time_on_stream(state, stream.get(), [&] {
      switch (kind) {
        case copy_kind::device_to_device:
          QRP_CUDA_TRY(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, stream.get()));
          break;
        case copy_kind::host_to_device_pinned:
          QRP_CUDA_TRY(cudaMemcpyAsync(dst.data(), pinned.data(), bytes, cudaMemcpyHostToDevice, stream.get()));
          break;
        case copy_kind::host_to_device_pageable:
          QRP_CUDA_TRY(cudaMemcpyAsync(dst.data(), pageable.data(), bytes, cudaMemcpyHostToDevice, stream.get()));
          break;
        case copy_kind::device_to_host_pinned:
          QRP_CUDA_TRY(cudaMemcpyAsync(landing.data(), src.data(), bytes, cudaMemcpyDeviceToHost, stream.get()));
          break;
        case copy_kind::both_ways_pinned:
          // Forked to a second stream and joined back, so the timing events on `stream` span both.
          QRP_CUDA_TRY(cudaEventRecord(fork.get(), stream.get()));
          QRP_CUDA_TRY(cudaStreamWaitEvent(second.get(), fork.get(), 0));
          QRP_CUDA_TRY(cudaMemcpyAsync(dst.data(), pinned.data(), bytes, cudaMemcpyHostToDevice, stream.get()));
          QRP_CUDA_TRY(cudaMemcpyAsync(landing.data(), src.data(), bytes, cudaMemcpyDeviceToHost, second.get()));
          QRP_CUDA_TRY(cudaEventRecord(join.get(), second.get()));
          QRP_CUDA_TRY(cudaStreamWaitEvent(stream.get(), join.get(), 0));
          break;
      }
    });
    const auto moved = state.iterations() * static_cast<benchmark::IterationCount>(bytes);
    // Device to device reads and writes every byte; both ways moves a buffer each way.
    state.SetBytesProcessed(on_device || kind == copy_kind::both_ways_pinned ? 2 * moved : moved);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

inline void register_copy_rows()
{
  const std::pair<const char*, copy_kind> rows[] = {
      {"BM_cuda_copy/device_to_device", copy_kind::device_to_device},
      {"BM_cuda_copy/host_to_device_pinned", copy_kind::host_to_device_pinned},
      {"BM_cuda_copy/host_to_device_pageable", copy_kind::host_to_device_pageable},
      {"BM_cuda_copy/device_to_host_pinned", copy_kind::device_to_host_pinned},
      {"BM_cuda_copy/both_ways_pinned", copy_kind::both_ways_pinned},
  };
  for (const auto& [name, kind] : rows) benchmark::RegisterBenchmark(name, bm_copy, kind)->UseManualTime();
}

// main() of the GPU benchmarks: Google Benchmark's, with the device named in the output's context
// ("gpu": name, sm, SMs, memory, driver and runtime), so that every figure carries its device.
inline int run_benchmarks(int argc, char** argv)
{
  const std::string gpu = cuda_device_description();
  benchmark::AddCustomContext("gpu", gpu.empty() ? "none (no CUDA device: the CUDA rows are skipped)" : gpu);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace qrplate::bench
