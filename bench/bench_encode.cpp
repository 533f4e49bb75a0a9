// Encoding throughput: qrplate's CPU batch backend beside libqrencode and zxing-cpp's writer, in
// one binary and one run so that ratios hold on a noisy machine.
//
// Shapes v3-L, v10-M, v25-Q and v40-L, each payload random binary data at the full byte-mode
// capacity of its shape (so every peer writes the same version). Counters: items_per_second
// is codes/s, bytes_per_second is payload bytes/s. Wall-clock time throughout, so the
// multithreaded rows are comparable with the single-threaded ones.
//
//   BM_qrplate_encode/v40/L/auto/threads:1    batch of 256 codes per iteration, one thread
//   BM_qrplate_encode/v40/L/mask0/threads:all the same on every core (threads = 0)
//   BM_libqrencode/v40/L/auto                 one code per iteration (QRinput + QRcode_encodeMask)
//   BM_zxing/v40/L/auto                       one code per iteration (MultiFormatWriter)
//   BM_cooperative_on_cpu/v40/L/auto          the GPU kernel's phases (core/encode_cooperative.hpp)
//                                             run on one core, a group's threads one after another:
//                                             the kernel's work per code, counters us_<phase> per
//                                             code; beside threads:1 it says how much more work the
//                                             parallel form does than the per-code core; path_<phase>
//                                             per code, the phase's slowest thread, us_path their
//                                             sum: the group's critical path if a GPU thread ran as
//                                             fast as this core (each call timed, its least time
//                                             over the iterations less the clock's own cost)
//
// Google Benchmark appends "/min_time:0.300/real_time" to each name; filter on the prefix.
// "auto" is each library's own lowest-penalty mask search; "mask0" forces mask 0, which skips
// the search. zxing-cpp 1.4's public writer can neither force a mask nor pin a version: it picks
// the smallest version that holds the data, which for a full-capacity payload is the version
// above (checked before timing), and it has no mask0 row.

#include <benchmark/benchmark.h>
#include <qrencode.h>
#include <ZXing/BarcodeFormat.h>
#include <ZXing/BitMatrix.h>
#include <ZXing/MultiFormatWriter.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "clock_cost.hpp"
#include "encode/version_plan_cache.hpp"
#include "qrplate/core/encode_cooperative.hpp"
#include "qrplate/encode.hpp"
#include "qrplate/qr.hpp"
#include "qrplate/spec/versions.hpp"
#include "util/popcnt_dispatch.hpp"

// Exported by libqrencode 4.x but declared only in its internal header (qrencode_inner.h);
// mask -1 is the automatic search that QRcode_encodeInput uses, 0..7 force a mask.
extern "C" QRcode* QRcode_encodeMask(QRinput* input, int mask);

namespace {

using qrplate::ecc_level;

constexpr std::uint64_t batch_size = 256;
constexpr double min_time_s = 0.3;  // per benchmark: the whole binary runs in about 20 s on 2 cores
constexpr std::uint64_t payload_seed = 0x9E3779B97F4A7C15ull;

struct shape {
  int version;
  ecc_level ecc;
};

constexpr shape shapes[] = {{3, ecc_level::L}, {10, ecc_level::M}, {25, ecc_level::Q}, {40, ecc_level::L}};

// batch_size full-capacity random payloads of one shape, concatenated with their offsets.
struct workload {
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint64_t> offsets;
  std::size_t payload_size = 0;

  qrplate::payload_batch_view view() const { return {bytes.data(), offsets.data(), batch_size}; }
  const std::uint8_t* payload(std::uint64_t i) const { return bytes.data() + offsets[i]; }
};

const workload& workload_for(const shape& s)
{
  static std::map<std::pair<int, ecc_level>, workload> cache;
  workload& w = cache[{s.version, s.ecc}];
  if (w.offsets.empty()) {
    w.payload_size = static_cast<std::size_t>(qrplate::max_byte_payload(s.version, s.ecc));
    std::mt19937_64 rng(payload_seed + static_cast<std::uint64_t>(s.version));
    std::uniform_int_distribution<int> byte(0, 255);
    w.bytes.resize(batch_size * w.payload_size);
    for (auto& b : w.bytes) b = static_cast<std::uint8_t>(byte(rng));
    w.offsets.resize(batch_size + 1);
    for (std::uint64_t i = 0; i <= batch_size; ++i) w.offsets[i] = i * w.payload_size;
  }
  return w;
}

void set_counters(benchmark::State& state, std::uint64_t codes_per_iteration, std::size_t payload_size)
{
  const auto codes = state.iterations() * static_cast<benchmark::IterationCount>(codes_per_iteration);
  state.SetItemsProcessed(codes);
  state.SetBytesProcessed(codes * static_cast<benchmark::IterationCount>(payload_size));
}

// ---------------------------------------------------------------------------------------------

void bm_qrplate(benchmark::State& state, shape s, int mask, unsigned threads)
{
  const workload& w = workload_for(s);
  qrplate::batch_encode_options options;
  options.version = s.version;
  options.ecc = s.ecc;
  options.mask = mask;
  options.where = qrplate::backend::cpu;
  options.threads = threads;
  qrplate::symbol_batch out;
  try {
    qrplate::encode(w.view(), options, out);  // warm-up, and a check that every code fits
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  for (std::uint64_t i = 0; i < out.count(); ++i)
    if (out.status()[i] != qrplate::encode_status::ok) {
      state.SkipWithError("qrplate: a full-capacity payload did not fit");
      return;
    }
  for (auto _ : state) {
    qrplate::encode(w.view(), options, out);
    benchmark::DoNotOptimize(out.modules());
    benchmark::ClobberMemory();
  }
  set_counters(state, batch_size, w.payload_size);
  state.counters["threads"] = static_cast<double>(threads != 0 ? threads : std::thread::hardware_concurrency());
}

// ---------------------------------------------------------------------------------------------

// The cooperative kernel's phases on the CPU, popcount compiled in as on the GPU (POPC): each
// phase's time summed over the batch, one code at a time, the group's threads in index order.
// The group size is the kernel's (cooperative_threads_per_code).

QRP_POPCNT_CLONES_FLATTEN void run_cooperative_batch(const workload& w, const qrplate::core::version_plan& plan,
                                            const qrplate::core::cooperative_tables& tables, int threads,
                                            std::vector<std::uint64_t>& shared, std::vector<std::uint64_t>& out,
                                            std::vector<double>& least, double clock_cost)
{
  namespace core = qrplate::core;
  const core::cooperative_layout layout = core::make_cooperative_layout(plan);
  for (std::uint64_t i = 0; i < batch_size; ++i) {
    const core::cooperative_job job{&plan,
                                    &tables,
                                    layout,
                                    core::bind_cooperative_code(shared.data(), layout),
                                    w.payload(i),
                                    static_cast<std::uint32_t>(w.payload_size),
                                    core::auto_mask,
                                    out.data() + i * static_cast<std::size_t>(plan.size * plan.words)};
    for (int phase = 0; phase < core::cooperative_phase_count; ++phase)
      for (int t = 0; t < threads; ++t) {
        const auto start = std::chrono::steady_clock::now();
        core::run_cooperative_phase(job, phase, t, threads);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() - clock_cost;
        double& l = least[(i * core::cooperative_phase_count + phase) * threads + t];
        l = std::min(l, std::max(0.0, s));
      }
  }
}

void bm_cooperative_on_cpu(benchmark::State& state, shape s)
{
  namespace core = qrplate::core;
  constexpr int phases = core::cooperative_phase_count;
  const workload& w = workload_for(s);
  const core::version_plan& plan = qrplate::host::version_plan_for(s.version, s.ecc);
  const core::cooperative_tables& tables = qrplate::host::cooperative_tables_for(s.version, s.ecc);
  const int threads = core::cooperative_threads_per_code(plan.size);
  std::vector<std::uint64_t> shared(core::make_cooperative_layout(plan).bytes / 8 + 1);
  std::vector<std::uint64_t> out(batch_size * static_cast<std::size_t>(plan.size * plan.words));
  // Each call's least time over the iterations (the batch is the same each iteration): a phase's
  // slowest thread is a maximum over many timings, which the machine's noise would bias.
  std::vector<double> least(batch_size * phases * static_cast<std::size_t>(threads), 1e30);
  const double clock_cost = qrplate::bench::steady_clock_cost();
  for (auto _ : state) {
    run_cooperative_batch(w, plan, tables, threads, shared, out, least, clock_cost);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, batch_size, w.payload_size);
  const char* names[] = {"data", "parity", "place", "transpose", "mask", "score", "total", "choose", "write"};
  static_assert(sizeof(names) / sizeof(names[0]) == phases, "a name per phase");
  double work[phases] = {}, path[phases] = {};
  for (std::size_t i = 0; i < batch_size; ++i)
    for (int phase = 0; phase < phases; ++phase) {
      const double* l = &least[(i * phases + phase) * static_cast<std::size_t>(threads)];
      for (int t = 0; t < threads; ++t) work[phase] += l[t];
      path[phase] += *std::max_element(l, l + threads);
    }
  double total_path = 0;
  for (int phase = 0; phase < phases; ++phase) {
    state.counters[std::string("us_") + names[phase]] = work[phase] / batch_size * 1e6;
    state.counters[std::string("path_") + names[phase]] = path[phase] / batch_size * 1e6;
    total_path += path[phase];
  }
  state.counters["us_path"] = total_path / batch_size * 1e6;
}

QRecLevel qrencode_level(ecc_level ecc)
{
  switch (ecc) {
    case ecc_level::L: return QR_ECLEVEL_L;
    case ecc_level::M: return QR_ECLEVEL_M;
    case ecc_level::Q: return QR_ECLEVEL_Q;
    default: return QR_ECLEVEL_H;
  }
}

// One code, input construction included (our timing includes building the bit stream too).
// Returns the version libqrencode wrote, 0 on failure.
int libqrencode_encode_one(const std::uint8_t* data, std::size_t size, const shape& s, int mask)
{
  QRinput* input = QRinput_new2(s.version, qrencode_level(s.ecc));
  if (input == nullptr) return 0;
  int version = 0;
  if (QRinput_append(input, QR_MODE_8, static_cast<int>(size), data) == 0) {
    if (QRcode* code = QRcode_encodeMask(input, mask)) {
      benchmark::DoNotOptimize(code->data);
      version = code->version;
      QRcode_free(code);
    }
  }
  QRinput_free(input);
  return version;
}

void bm_libqrencode(benchmark::State& state, shape s, int mask)
{
  const workload& w = workload_for(s);
  if (libqrencode_encode_one(w.payload(0), w.payload_size, s, mask) != s.version) {
    state.SkipWithError("libqrencode did not write the requested version");
    return;
  }
  std::uint64_t next = 0;
  for (auto _ : state) {
    const std::uint64_t i = next++ % batch_size;
    benchmark::DoNotOptimize(libqrencode_encode_one(w.payload(i), w.payload_size, s, mask));
  }
  set_counters(state, 1, w.payload_size);
}

// ---------------------------------------------------------------------------------------------

// MultiFormatWriter's QR level is 1-8 mapped by (level - 1) / 2 onto L, M, Q, H.
int zxing_level(ecc_level ecc) { return 2 * static_cast<int>(ecc) + 1; }

void bm_zxing(benchmark::State& state, shape s)
{
  const workload& w = workload_for(s);
  // zxing-cpp 1.4 takes text: characters 0-255 stand for the payload bytes. The encoding is
  // left unset on purpose: set explicitly (ISO8859_1 or BINARY), the writer adds an ECI header
  // and a full-capacity payload moves to the next version; unset, it writes those characters
  // as ISO 8859-1 bytes in byte mode without ECI, which reads back as the same bytes.
  std::vector<std::wstring> texts(batch_size);
  for (std::uint64_t i = 0; i < batch_size; ++i)
    texts[i].assign(w.payload(i), w.payload(i) + w.payload_size);
  const auto writer =
      ZXing::MultiFormatWriter(ZXing::BarcodeFormat::QRCode).setEccLevel(zxing_level(s.ecc)).setMargin(0);
  try {
    const ZXing::BitMatrix first = writer.encode(texts[0], 0, 0);
    if (first.width() != qrplate::spec::symbol_size(s.version)) {
      state.SkipWithError("zxing-cpp chose another version for a full-capacity payload");
      return;
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  std::uint64_t next = 0;
  for (auto _ : state) {
    const std::uint64_t i = next++ % batch_size;
    ZXing::BitMatrix matrix = writer.encode(texts[i], 0, 0);
    benchmark::DoNotOptimize(matrix);
  }
  set_counters(state, 1, w.payload_size);
}

// ---------------------------------------------------------------------------------------------

std::string shape_name(const shape& s)
{
  return "/v" + std::to_string(s.version) + "/" + qrplate::to_string(s.ecc);
}

bool register_all()
{
  for (const shape& s : shapes) {
    for (const int mask : {-1, 0}) {
      const std::string mask_name = mask < 0 ? "/auto" : "/mask0";
      for (const unsigned threads : {1u, 0u}) {
        const std::string name =
            "BM_qrplate_encode" + shape_name(s) + mask_name + (threads == 1 ? "/threads:1" : "/threads:all");
        benchmark::RegisterBenchmark(name.c_str(), bm_qrplate, s, mask, threads)->UseRealTime()->MinTime(min_time_s);
      }
      benchmark::RegisterBenchmark(("BM_libqrencode" + shape_name(s) + mask_name).c_str(), bm_libqrencode, s, mask)
          ->UseRealTime()
          ->MinTime(min_time_s);
    }
    benchmark::RegisterBenchmark(("BM_zxing" + shape_name(s) + "/auto").c_str(), bm_zxing, s)
        ->UseRealTime()
        ->MinTime(min_time_s);
    benchmark::RegisterBenchmark(("BM_cooperative_on_cpu" + shape_name(s) + "/auto").c_str(), bm_cooperative_on_cpu, s)
        ->UseRealTime()
        ->MinTime(min_time_s);
  }
  return true;
}

[[maybe_unused]] const bool registered = register_all();

}  // namespace

BENCHMARK_MAIN();
