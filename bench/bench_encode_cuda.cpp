// GPU encode throughput beside the limits it runs into, in one binary and one run (built with
// the CUDA backend only; every row skips without a device):
//
//   BM_cuda_encode_device/v40/L/auto/cooperative   payloads already in GPU memory, the
//                                                  cooperative kernel; CUDA events, manual time
//   BM_cuda_encode_device/v40/L/auto/per_thread    the same with the plain one-thread-per-code kernel
//   BM_cuda_encode_device/v40/L/mask0/cooperative  mask 0 forced: no penalty for the eight masks, so
//                                                  beside the auto row it says what the search costs
//   BM_cuda_encode_host/v40/L/auto/cooperative/pageable   encode() with backend cuda: host memory
//                                                  to host memory through the streaming driver and
//                                                  its staging copies, wall clock
//   BM_cuda_encode_host/v40/L/auto/cooperative/pinned     the same from and to pinned memory
//                                                  (host_array, symbol_batch(pinned)): DMA only
//   BM_cpu_encode_host/v40/L/auto/threads:all      the CPU backend on the same batch, wall clock
//   BM_cuda_copy/device_to_device                  1 GiB cudaMemcpy; bytes_per_second counts the
//                                                  bytes read plus the bytes written (HBM traffic)
//   BM_cuda_copy/host_to_device_pinned             256 MiB from pinned host memory (PCIe)
//   BM_cuda_copy/host_to_device_pageable           256 MiB from ordinary host memory
//   BM_cuda_copy/device_to_host_pinned             256 MiB back to pinned memory: the direction an
//                                                  encode's matrices take, more bytes than its payloads
//   BM_cuda_copy/both_ways_pinned                  256 MiB each way at once, two streams (bytes of both)
//
// Shapes v3-L, v10-M, v40-L at full byte-mode capacity, automatic mask; batches of about 256 MB
// of output matrices. items_per_second is codes/s, bytes_per_second payload bytes/s.

#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/encode_cuda.hpp"
#include "cuda_bench_common.hpp"
#include "encode/encode_kernels.cuh"
#include "encode/version_plan_cache.hpp"
#include "qrplate/cuda/device_encoder.hpp"
#include "qrplate/encode.hpp"
#include "qrplate/host_memory.hpp"
#include "qrplate/qr.hpp"

namespace {

using namespace qrplate;
using bench::skip_without_device;
using bench::time_on_stream;

struct shape {
  int version;
  ecc_level ecc;
};

constexpr shape shapes[] = {{3, ecc_level::L}, {10, ecc_level::M}, {40, ecc_level::L}};
constexpr std::size_t output_bytes = 256u << 20;

struct host_batch {
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint64_t> offsets;
  std::size_t payload_size = 0;
  std::uint64_t count = 0;
  payload_batch_view view() const { return {bytes.data(), offsets.data(), count}; }
};

host_batch make_batch(const shape& s)
{
  host_batch b;
  b.payload_size = static_cast<std::size_t>(max_byte_payload(s.version, s.ecc));
  b.count = output_bytes / (words_per_symbol(spec::symbol_size(s.version)) * 8);
  std::mt19937_64 rng(0x51A7E5u + static_cast<unsigned>(s.version));
  b.bytes.resize(b.count * b.payload_size);
  for (std::size_t i = 0; i < b.bytes.size(); i += 8) {
    const std::uint64_t r = rng();
    std::memcpy(b.bytes.data() + i, &r, std::min<std::size_t>(8, b.bytes.size() - i));
  }
  b.offsets.resize(b.count + 1);
  for (std::uint64_t i = 0; i <= b.count; ++i) b.offsets[i] = i * b.payload_size;
  return b;
}

void set_counters(benchmark::State& state, std::uint64_t codes_per_iteration, std::size_t payload_size)
{
  const auto codes = state.iterations() * static_cast<benchmark::IterationCount>(codes_per_iteration);
  state.SetItemsProcessed(codes);
  state.SetBytesProcessed(codes * static_cast<benchmark::IterationCount>(payload_size));
}

void bm_device(benchmark::State& state, shape s, host::cuda_encode_kernel kernel, int mask)
{
  if (skip_without_device(state)) return;
  try {
    const host_batch b = make_batch(s);
    const std::size_t stride = words_per_symbol(spec::symbol_size(s.version));
    host::device_buffer<std::uint8_t> bytes(b.bytes.size()), masks(b.count), status(b.count);
    host::device_buffer<std::uint64_t> offsets(b.count + 1), modules(b.count * stride);
    QRP_CUDA_TRY(cudaMemcpy(bytes.data(), b.bytes.data(), b.bytes.size(), cudaMemcpyHostToDevice));
    QRP_CUDA_TRY(cudaMemcpy(offsets.data(), b.offsets.data(), (b.count + 1) * 8, cudaMemcpyHostToDevice));
    host::stream_owner stream;
    const cuda::device_encoder encoder(s.version, s.ecc);
    // The plain kernel's ~30 KB per resident code, as the streaming driver sizes it.
    constexpr unsigned resident = 32768;
    host::device_buffer<core::encode_workspace> ws(kernel == host::cuda_encode_kernel::per_thread ? resident : 0);
    host::device_buffer<core::version_plan> plan(kernel == host::cuda_encode_kernel::per_thread ? 1 : 0);
    if (plan.size())
      QRP_CUDA_TRY(cudaMemcpy(plan.data(), &host::version_plan_for(s.version, s.ecc), sizeof(core::version_plan),
                              cudaMemcpyHostToDevice));
    time_on_stream(state, stream.get(), [&] {
      if (kernel == host::cuda_encode_kernel::cooperative) {
        QRP_CUDA_TRY(encoder.encode_async({bytes.data(), offsets.data(), b.count}, mask,
                                          {modules.data(), masks.data(), reinterpret_cast<encode_status*>(status.data())},
                                          stream.get()));
      } else {
        kernels::launch_encode_byte_payloads(plan.data(), bytes.data(), offsets.data(), b.count, mask, ws.data(), resident,
                                             modules.data(), masks.data(), status.data(), stream.get());
        QRP_CUDA_TRY(cudaGetLastError());
      }
    });
    set_counters(state, b.count, b.payload_size);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// memory: where the payloads and the results live. Pageable, the driver copies them through its
// pinned staging on host threads; pinned (host_array), they go by DMA with no host copy.
void bm_host(benchmark::State& state, shape s, backend where, host::cuda_encode_kernel kernel, host_memory memory)
{
  if (where == backend::cuda && skip_without_device(state)) return;
  try {
    const host_batch b = make_batch(s);
    host_array<std::uint8_t> pinned_bytes(memory);
    payload_batch_view view = b.view();
    if (memory == host_memory::pinned) {
      pinned_bytes.resize(b.bytes.size());
      std::memcpy(pinned_bytes.data(), b.bytes.data(), b.bytes.size());
      view.bytes = pinned_bytes.data();
    }
    batch_encode_options o;
    o.version = s.version;
    o.ecc = s.ecc;
    o.where = where;
    symbol_batch out(memory);
    out.reset(s.version, s.ecc, b.count);
    if (pinned_bytes.memory() != memory || out.memory() != memory) {
      state.SkipWithError("no pinned host memory to be had");
      return;
    }
    const std::uint64_t staged_before = where == backend::cuda ? host::cuda_encode_staged_bytes() : 0;
    for (auto _ : state) {
      if (where == backend::cuda)
        host::encode_cuda(view, o, out, kernel);
      else
        encode(view, o, out);
      benchmark::DoNotOptimize(out.modules());
    }
    set_counters(state, b.count, b.payload_size);
    // What comes back over the link per payload byte that went: the matrices (64-bit words a row)
    // outweigh the payloads, so device to host, not host to device, bounds a host-to-host encode
    // (compare with BM_cuda_copy/device_to_host_pinned and both_ways_pinned).
    state.counters["matrix_bytes_per_payload_byte"] =
        static_cast<double>(words_per_symbol(spec::symbol_size(s.version)) * sizeof(std::uint64_t)) /
        static_cast<double>(b.payload_size);
    if (where == backend::cuda)  // host bytes copied through the staging per code: 0 when pinned
      state.counters["staged_bytes_per_code"] =
          static_cast<double>(host::cuda_encode_staged_bytes() - staged_before) /
          (static_cast<double>(state.iterations()) * static_cast<double>(b.count));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

bool register_all()
{
  using K = host::cuda_encode_kernel;
  for (const shape& s : shapes) {
    const std::string name = "/v" + std::to_string(s.version) + "/" + to_string(s.ecc) + "/auto";
    benchmark::RegisterBenchmark(("BM_cuda_encode_device" + name + "/cooperative").c_str(), bm_device, s, K::cooperative,
                                 -1)
        ->UseManualTime();
    const std::string forced = "/v" + std::to_string(s.version) + "/" + to_string(s.ecc) + "/mask0";
    benchmark::RegisterBenchmark(("BM_cuda_encode_device" + forced + "/cooperative").c_str(), bm_device, s,
                                 K::cooperative, 0)
        ->UseManualTime();
    benchmark::RegisterBenchmark(("BM_cuda_encode_device" + name + "/per_thread").c_str(), bm_device, s, K::per_thread,
                                 -1)
        ->UseManualTime();
    for (const host_memory memory : {host_memory::pageable, host_memory::pinned})
      benchmark::RegisterBenchmark(
          ("BM_cuda_encode_host" + name + "/cooperative/" + to_string(memory)).c_str(), bm_host, s, backend::cuda,
          K::cooperative, memory)
          ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_cpu_encode_host" + name + "/threads:all").c_str(), bm_host, s, backend::cpu,
                                 K::cooperative, host_memory::pageable)
        ->UseRealTime();
  }
  bench::register_copy_rows();
  return true;
}

[[maybe_unused]] const bool registered = register_all();

}  // namespace

int main(int argc, char** argv) { return qrplate::bench::run_benchmarks(argc, argv); }
