// The cooperative read kernel's phases (core/read_cooperative.hpp) on the CPU: where a block's
// time would go on a GPU, measured without one. The scene is bench_decode_cuda's (synthetic
// codes, maps given, about 8,000 px square, trimmed to at most 64 codes here).
//
//   BM_cooperative_read_on_cpu/v40-L/px:3/given     every code of the scene read by one group
//                                            of cooperative_read_block (128) threads, the threads
//                                            of a phase run one after another, each call timed;
//                                            the code's exact map given
//   BM_cooperative_read_on_cpu/v40-L/px:3/measured  the same, each code's map measured from its
//                                            own anchors in the scene's integral image (as a
//                                            decode does), the tile's pose 0.4 module off
//   BM_cooperative_read_on_cpu/v40-L/px:3/unconfirmed  the same on a tile no frame confirmed:
//                                            each code's finders first looked for 4 anchor radii
//                                            out (the scan reader's wide search)
//
// Counters, per code, in CPU microseconds:
//   us_work        all threads' time, every phase (the work, as a CPU would do it alone)
//   us_path        the sum over phases of the slowest thread's time: a block's critical path
//                  if each thread ran as fast as this core and phases were its only barriers
//   parallelism    us_work / us_path: the speed-up a group of 128 could at best get
//   path_<phase>   a phase's slowest thread, for the phases that count (> 1% of us_path)
//   work_<phase>   a phase's threads together, for the phases that count (> 1% of us_work)
// A phase run by one thread (fit, levels, a decode's finish) is all path; a GPU thread runs it
// several times slower than this core, so the path understates serial phases' share. Each call's
// time is its least over the iterations less the clock's own cost; the phases before decoding
// are timed on a second run (warm caches), the decoding phases, which a second run would skip or
// change, on their first.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "clock_cost.hpp"
#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/read_cooperative.hpp"
#include "scan/synthetic_codes.hpp"
#include "scan/tile_registration.hpp"

namespace {

using namespace qrplate;

constexpr int group = 128;  // kernels/decode/read_code_kernels.cuh: cooperative_read_block

const char* phase_name(int phase)
{
  static const char* const read_names[] = {"measure_base",   "measure_wide_rows", "measure_wide_pick", "measure_rows",
                                           "measure_anchors", "measure_keep",     "measure_median",    "measure_near",
                                           "measure_nodes",  "sample",            "fit_lanes",         "fit",
                                           "threshold",      "levels_lanes",      "levels"};
  static const char* const decode_names[] = {"format_copies",  "format",        "confidence",    "extract_first",
                                             "blocks_first",   "finish_first",  "extract_second",
                                             "blocks_second",  "finish_second", "copy"};
  static_assert(sizeof(read_names) / sizeof(read_names[0]) == core::read_phase_decode, "a name per phase");
  static_assert(sizeof(decode_names) / sizeof(decode_names[0]) == core::cooperative_decode_phase_count,
                "a name per phase");
  if (phase < core::read_phase_decode) return read_names[phase];
  if (phase < core::read_phase_outcome) return decode_names[phase - core::read_phase_decode];
  return "outcome";
}

enum class maps { given, measured, unconfirmed };

void bm_cooperative_read_on_cpu(benchmark::State& state, int version, ecc_level ecc, double px, maps how)
try {
  const bool measure = how != maps::given;
  const double pitch_px = (spec::symbol_size(version) + 4) * px;
  const int side = std::clamp(static_cast<int>(8000 / pitch_px), 2, 8);
  const scan::synthetic_codes sc = scan::make_synthetic_codes(version, ecc, px, side, side, 0.5, 2500, 0x7E57);
  // The scene as a registered tile (its integral image and contrast) whose pose is off by 0.4 and
  // -0.3 module: the maps must be measured for the codes to read.
  std::vector<std::uint32_t> sums;
  core::tile_anchor_view tile{};
  if (measure) {
    sim::gray_image img;
    img.width = static_cast<std::uint32_t>(sc.width);
    img.height = static_cast<std::uint32_t>(sc.height);
    img.bits = 16;
    img.pixels = sc.pixels;
    const int shift = scan::build_integral(img, sc.module_px, sums);
    tile.iv = core::integral_view{sums.data(), sc.width, sc.height, shift};
    tile.to_pixel = sc.to_pixel;
    tile.to_pixel.a[0] += 0.4 * sc.module_px;
    tile.to_pixel.a[3] -= 0.3 * sc.module_px;
    tile.module_px = sc.module_px;
    tile.contrast = scan::estimate_contrast(tile.iv, sc.module_px);
    tile.polarity = 1;
    if (how == maps::unconfirmed) {
      tile.anchor_search_px = 4 * core::anchor_radius(sc.module_px);
      tile.finder_strength = static_cast<float>(0.8 * tile.contrast);
    }
  }
  auto scratch = std::make_unique<core::code_map>();
  auto ws = std::make_unique<core::read_code_workspace>();
  auto shared = std::make_unique<core::cooperative_read_shared>();
  std::vector<std::uint8_t> bytes(spec::max_data_codewords);
  // Each call's least time over the iterations (the scene is read again each iteration): the
  // slowest thread of a phase is a maximum over 128 timings, which the machine's noise would bias.
  constexpr int phases = core::cooperative_read_phase_count;
  std::vector<double> least(sc.maps.size() * phases * group, 1e30);
  std::size_t decoded = 0, reads = 0;
  const double clock_cost = bench::steady_clock_cost();  // ~20 ns here
  for (auto _ : state) {
    for (std::size_t i = 0; i < sc.maps.size(); ++i) {
      const core::code_map& map = sc.maps[i];
      core::code_outcome outcome;
      core::cooperative_read_job job{};
      job.plan = sc.plan;
      job.image = sc.view();
      job.map = &map;
      if (measure) {
        const int pitch = sc.plan->size + 4;
        job.tile = &tile;
        job.x0 = static_cast<double>((static_cast<int>(i) % side) * pitch);
        job.y0 = static_cast<double>((static_cast<int>(i) / side) * pitch);
        job.measured = scratch.get();
      }
      job.module_px = sc.module_px;
      job.erasure_threshold = 64;
      job.ws = ws.get();
      job.fit = &shared->fit;
      job.fit_lanes = shared->fit_lanes;
      job.level_lanes = shared->level_lanes;
      job.decode = &shared->decode;
      job.measure = &shared->measure;
      job.out = bytes.data();
      job.outcome = &outcome;
      for (int phase = 0; phase < phases; ++phase) {
        // The phases before decoding may run twice (the second run writes what the first did):
        // the untimed first run brings the code's pixels into cache, or the first thread to touch
        // them would be timed with the misses of all (~4x the mean time for sampling v40 codes).
        if (phase < core::read_phase_decode)
          for (int t = 0; t < group; ++t) core::run_cooperative_read_phase(job, phase, t, group);
        for (int t = 0; t < group; ++t) {
          const auto start = std::chrono::steady_clock::now();
          core::run_cooperative_read_phase(job, phase, t, group);
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          double& l = least[(i * phases + phase) * group + t];
          l = std::min(l, std::max(0.0, s - clock_cost));
        }
      }
      decoded += core::decoded(outcome.result);
      ++reads;
      benchmark::DoNotOptimize(bytes.data());
    }
  }
  if (decoded != reads) {
    state.SkipWithError("not every code read back (a bug in qrplate)");
    return;
  }
  state.SetItemsProcessed(static_cast<benchmark::IterationCount>(reads));
  double work[phases] = {}, path[phases] = {};
  for (std::size_t i = 0; i < sc.maps.size(); ++i)
    for (int phase = 0; phase < phases; ++phase) {
      const double* l = &least[(i * phases + phase) * group];
      for (int t = 0; t < group; ++t) work[phase] += l[t];
      path[phase] += *std::max_element(l, l + group);
    }
  const double per_code = 1e6 / static_cast<double>(sc.maps.size());
  double total_work = 0, total_path = 0;
  for (int phase = 0; phase < phases; ++phase) {
    total_work += work[phase];
    total_path += path[phase];
  }
  state.counters["us_work"] = total_work * per_code;
  state.counters["us_path"] = total_path * per_code;
  state.counters["parallelism"] = total_work / total_path;
  for (int phase = 0; phase < phases; ++phase)
  {
    if (path[phase] > 0.01 * total_path) state.counters[std::string("path_") + phase_name(phase)] = path[phase] * per_code;
    if (work[phase] > 0.01 * total_work) state.counters[std::string("work_") + phase_name(phase)] = work[phase] * per_code;
  }
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}

}  // namespace

int main(int argc, char** argv)
{
  const struct {
    int version;
    ecc_level ecc;
    const char* name;
  } shapes[] = {{10, ecc_level::M, "v10-M"}, {40, ecc_level::L, "v40-L"}};
  for (const auto& s : shapes)
    for (const double px : {2.0, 3.0, 4.0})
      for (const maps how : {maps::given, maps::measured, maps::unconfirmed})
        benchmark::RegisterBenchmark(("BM_cooperative_read_on_cpu/" + std::string(s.name) + "/px:" +
                                      std::to_string(static_cast<int>(px)) +
                                      (how == maps::given ? "/given" : how == maps::measured ? "/measured" : "/unconfirmed"))
                                         .c_str(),
                                     bm_cooperative_read_on_cpu, s.version, s.ecc, px, how)
            ->Unit(benchmark::kMicrosecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
