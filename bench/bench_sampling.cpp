// Module sampling and thresholding, the CPU fast paths beside their references, in one binary and
// one run so their ratio holds on a noisy machine: host/scan/fast_sampling.hpp's sample_code_fast,
// sample_across_fast and threshold_symbol_fast (AVX2 where the CPU has it) and core::sample_code,
// sample_across_module and threshold_symbol (what the fast paths are tested to match bit for
// bit).
//
//   BM_sample_code/v40-L/px:3/reference   core::sample_code over 64 codes placed across a
//                                         2,048 x 2,048 16-bit tile of random pixels, each
//                                         code's map slightly rotated and with an offset field
//                                         (as the scan reader measures one)
//   BM_sample_code/v40-L/px:3/fast        the same codes through sample_code_fast
//   BM_sample_across/v40-L/px:3/reference core::sample_across_module over every module of the
//                                         same codes placed across two tiles (the tile split in
//                                         two views down the middle), each module from the tile
//                                         that holds it deeper
//   BM_sample_across/v40-L/px:3/fast      the same through sample_across_fast
//   BM_threshold/v40-L/whole/reference    core::threshold_symbol over the 64 codes' sampled
//                                         values (BM_sample_code's, at 3 px/module)
//   BM_threshold/v40-L/part/reference     the same with only the left half of each code sampled
//                                         (one tile's part of a code across two, as
//                                         core::finish_code_across thresholds it again)
//   BM_threshold/v40-L/{whole,part}/fast  the same through threshold_symbol_fast
//
// Counters: items_per_second is modules/s (the across and part rows count every module, sampled
// or not), codes_per_s codes/s. One thread.

#include <benchmark/benchmark.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_code.hpp"
#include "scan/fast_sampling.hpp"

namespace {

using qrplate::core::code_map;

constexpr int tile_side = 2048;
constexpr int codes_per_pass = 64;

struct scene {
  std::vector<std::uint16_t> pixels;
  qrplate::core::gray_view view;
  std::vector<code_map> maps;
};

scene make_scene(int n, double px)
{
  scene s;
  std::mt19937_64 rng(2026);
  s.pixels.resize(static_cast<std::size_t>(tile_side) * tile_side);
  for (auto& p : s.pixels) p = static_cast<std::uint16_t>(rng());
  s.view.pixels = s.pixels.data();
  s.view.width = s.view.height = tile_side;
  s.view.stride = tile_side;
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  const double span = n * px, room = tile_side - span - 40;
  for (int i = 0; i < codes_per_pass; ++i) {
    code_map m{};
    const double angle = 0.01 * unit(rng);
    m.base.a[0] = 20 + room * 0.5 * (1 + unit(rng)), m.base.a[1] = px * std::cos(angle), m.base.a[2] = -px * std::sin(angle);
    m.base.a[3] = 20 + room * 0.5 * (1 + unit(rng)), m.base.a[4] = px * std::sin(angle), m.base.a[5] = px * std::cos(angle);
    m.nodes = (n + code_map::step) / code_map::step + 1;
    m.anchors = 6;
    for (int r = 0; r < code_map::max_nodes; ++r)
      for (int c = 0; c < code_map::max_nodes; ++c) {
        m.du[r][c] = static_cast<float>(0.3 * unit(rng));
        m.dv[r][c] = static_cast<float>(0.3 * unit(rng));
      }
    s.maps.push_back(m);
  }
  return s;
}

void BM_sample_code(benchmark::State& state, int version, qrplate::ecc_level ecc, double px, bool fast)
{
  const qrplate::core::version_plan& plan = qrplate::host::version_plan_for(version, ecc);
  const int n = plan.size;
  const scene s = make_scene(n, px);
  std::vector<float> values(static_cast<std::size_t>(n) * n);
  std::vector<std::uint8_t> valid(values.size());
  if (fast && !qrplate::scan::avx2_fast_paths_available()) state.SetLabel("no AVX2: the reference");
  std::int64_t sampled = 0;
  for (auto _ : state) {
    for (const code_map& m : s.maps) {
      sampled += fast ? qrplate::scan::sample_code_fast(plan, s.view, m, px, values.data(), valid.data())
                      : qrplate::core::sample_code(plan, s.view, m, px, values.data(), valid.data());
      benchmark::DoNotOptimize(values.data());
    }
  }
  state.SetItemsProcessed(sampled);
  state.counters["codes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * codes_per_pass, benchmark::Counter::kIsRate);
}

// The same codes across two tiles: the tile split down the middle into two views of its pixels,
// each code placed across the split, its map into the right view shifted by the split.
void BM_sample_across(benchmark::State& state, int version, qrplate::ecc_level ecc, double px, bool fast)
{
  const qrplate::core::version_plan& plan = qrplate::host::version_plan_for(version, ecc);
  const int n = plan.size;
  scene s = make_scene(n, px);
  constexpr int half = tile_side / 2;
  qrplate::core::gray_view views[2] = {s.view, s.view};
  views[0].width = views[1].width = half;
  views[1].pixels = s.pixels.data() + half;
  std::vector<std::array<code_map, 2>> maps;
  for (code_map m : s.maps) {
    m.base.a[0] = half - 0.5 * n * px;  // the code's centre on the split
    std::array<code_map, 2> pair = {m, m};
    pair[1].base.a[0] -= half;
    maps.push_back(pair);
  }
  auto ws = std::make_unique<qrplate::core::read_across_workspace>();
  if (fast && !qrplate::scan::avx2_fast_paths_available()) state.SetLabel("no AVX2: the reference");
  const double reach = qrplate::core::sample_reach(px);
  for (auto _ : state) {
    for (const auto& pair : maps) {
      if (fast) {
        qrplate::scan::sample_across_fast(views, pair.data(), 2, px, n, *ws);
      } else {
        for (int k = 0; k < n * n; ++k) qrplate::core::sample_across_module(views, pair.data(), 2, px, reach, n, k, *ws);
      }
      benchmark::DoNotOptimize(ws->values);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * codes_per_pass * n * n);
  state.counters["codes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * codes_per_pass, benchmark::Counter::kIsRate);
}

// Thresholding the codes of BM_sample_code's scene at 3 px/module, sampled once up front.
void BM_threshold(benchmark::State& state, int version, qrplate::ecc_level ecc, bool part, bool fast)
{
  const qrplate::core::version_plan& plan = qrplate::host::version_plan_for(version, ecc);
  const int n = plan.size;
  const std::size_t cells = static_cast<std::size_t>(n) * n;
  const scene s = make_scene(n, 3.0);
  std::vector<float> values(cells * codes_per_pass);
  std::vector<std::uint8_t> valid(values.size());
  for (int i = 0; i < codes_per_pass; ++i)
    qrplate::core::sample_code(plan, s.view, s.maps[i], 3.0, values.data() + i * cells, valid.data() + i * cells);
  if (part)
    for (std::size_t k = 0; k < valid.size(); ++k) valid[k] = valid[k] && static_cast<int>(k % cells % n) < n / 2;
  std::vector<std::uint64_t> modules(static_cast<std::size_t>(n) * plan.words);
  std::vector<std::uint8_t> confidence(cells);
  if (fast && !qrplate::scan::avx2_fast_paths_available()) state.SetLabel("no AVX2: the reference");
  int known = 0;
  for (auto _ : state) {
    for (int i = 0; i < codes_per_pass; ++i) {
      const float* v = values.data() + i * cells;
      const std::uint8_t* ok = valid.data() + i * cells;
      known += fast ? qrplate::scan::threshold_symbol_fast(plan, v, ok, modules.data(), confidence.data()).known
                    : qrplate::core::threshold_symbol(plan, v, ok, modules.data(), confidence.data()).known;
      benchmark::DoNotOptimize(modules.data());
      benchmark::DoNotOptimize(confidence.data());
    }
  }
  benchmark::DoNotOptimize(known);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * codes_per_pass * n * n);
  state.counters["codes_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * codes_per_pass, benchmark::Counter::kIsRate);
}

void register_all()
{
  struct shape {
    const char* name;
    int version;
    qrplate::ecc_level ecc;
  };
  for (const shape& sh : {shape{"v10-M", 10, qrplate::ecc_level::M}, shape{"v40-L", 40, qrplate::ecc_level::L}})
    for (double px : {2.5, 3.0, 4.0})
      for (bool fast : {false, true}) {
        char name[96];
        std::snprintf(name, sizeof name, "BM_sample_code/%s/px:%g/%s", sh.name, px, fast ? "fast" : "reference");
        benchmark::RegisterBenchmark(name, [=](benchmark::State& st) { BM_sample_code(st, sh.version, sh.ecc, px, fast); });
        std::snprintf(name, sizeof name, "BM_sample_across/%s/px:%g/%s", sh.name, px, fast ? "fast" : "reference");
        benchmark::RegisterBenchmark(name, [=](benchmark::State& st) { BM_sample_across(st, sh.version, sh.ecc, px, fast); });
      }
  for (const shape& sh : {shape{"v10-M", 10, qrplate::ecc_level::M}, shape{"v40-L", 40, qrplate::ecc_level::L}})
    for (bool part : {false, true})
      for (bool fast : {false, true}) {
        char name[96];
        std::snprintf(name, sizeof name, "BM_threshold/%s/%s/%s", sh.name, part ? "part" : "whole",
                      fast ? "fast" : "reference");
        benchmark::RegisterBenchmark(name, [=](benchmark::State& st) { BM_threshold(st, sh.version, sh.ecc, part, fast); });
      }
}

}  // namespace

int main(int argc, char** argv)
{
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
