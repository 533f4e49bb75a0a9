// GPU readback throughput beside its limits, in one binary and one run (built with the CUDA
// backend only; every row skips without a device). The scene: version-LEVEL codes drawn in
// memory at a known pose (scan::make_synthetic_codes: rotated 0.5 degrees, noise 1/11 of the
// contrast), about 8,000 px square; every code must read back in the warm-up.
//
//   BM_cuda_read_device/v10-M/px:2/cooperative   image and maps in GPU memory, the cooperative
//                                                read kernel (a block per code); CUDA events
//   BM_cuda_read_device/v10-M/px:2/cooperative_capped  the same kernel built for 4 resident blocks
//                                                per SM (128 registers) instead of 2 (176)
//   BM_cuda_read_device/v10-M/px:2/per_thread    the same with the one-thread-per-code kernel
//   BM_cuda_read_host/v10-M/px:2                 read_codes_cuda: image and maps up, results
//                                                down, per call (wall clock)
//   BM_cpu_read/v10-M/px:2/threads:all           core::read_code on every core (wall clock)
//   BM_cuda_read_across/v10-M/px:3               every code read across two tiles (the image cut
//                                                in two overlapping halves, both resident on the
//                                                device): read_across_tiles_cuda, a thread per code
//                                                (wall clock, host to host)
//   BM_cpu_read_across/v10-M/px:3/threads:all    the same reads on every core (read_code_across)
//   BM_cuda_tile_passes/v10-M/px:2               registration's passes over every pixel of the
//                                                image as one tile (host memory to host memory)
//   BM_cuda_copy/...                             the HBM and PCIe limits (cuda_bench_common.hpp)
//
// items_per_second is codes/s; pixels_per_second counts the scan's pixels (the image's pixels
// per code times codes/s), the unit of the 100 Gpixel/s target.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cuda/read_codes_cuda.hpp"
#include "cuda/tile_passes_cuda.hpp"
#include "cuda_bench_common.hpp"
#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_code.hpp"
#include "qrplate/core/stitch_correlation.hpp"
#include "qrplate/core/tile_passes.hpp"
#include "scan/synthetic_codes.hpp"
#include "scan/tile_registration.hpp"
#include "stitch_bench_patch.hpp"
#include "util/parallel_for.hpp"

namespace {

using namespace qrplate;
using bench::skip_without_device;

struct shape {
  int version;
  ecc_level ecc;
};

constexpr shape shapes[] = {{10, ecc_level::M}, {40, ecc_level::L}};
constexpr double pxs[] = {2, 3, 4};
constexpr std::uint8_t erasure_threshold = 64;

// About 8,000 px square of codes, 2 x 2 to 64 x 64.
const scan::synthetic_codes& scene(const shape& s, double px)
{
  static std::vector<std::pair<std::pair<int, double>, std::unique_ptr<scan::synthetic_codes>>> cache;
  for (auto& [key, sc] : cache)
    if (key.first == s.version && key.second == px) return *sc;
  const double pitch_px = (spec::symbol_size(s.version) + 4) * px;
  const int side = std::clamp(static_cast<int>(8000 / pitch_px), 2, 64);  // make_synthetic_codes: <= 64
  cache.emplace_back(std::make_pair(s.version, px),
                     std::make_unique<scan::synthetic_codes>(
                         scan::make_synthetic_codes(s.version, s.ecc, px, side, side, 0.5, 2500, 0x7E57)));
  return *cache.back().second;
}

void set_counters(benchmark::State& state, const scan::synthetic_codes& sc)
{
  const auto codes = state.iterations() * static_cast<benchmark::IterationCount>(sc.maps.size());
  state.SetItemsProcessed(codes);
  state.counters["pixels_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(sc.pixel_count()),
                         benchmark::Counter::kIsRate);
}

void bm_read_device(benchmark::State& state, shape s, double px, host::cuda_read_kernel kernel)
{
  if (skip_without_device(state)) return;
  try {
    const scan::synthetic_codes& sc = scene(s, px);
    host::resident_read reader(*sc.plan, sc.view(), sc.maps.data(), sc.maps.size(), sc.module_px, erasure_threshold);
    reader.run(kernel);  // warm-up
    if (reader.decoded() != sc.maps.size()) {
      state.SkipWithError("not every code read back (a bug in qrplate)");
      return;
    }
    for (auto _ : state) state.SetIterationTime(reader.run(kernel));
    set_counters(state, sc);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void bm_read_host(benchmark::State& state, shape s, double px)
{
  if (skip_without_device(state)) return;
  try {
    const scan::synthetic_codes& sc = scene(s, px);
    std::vector<core::code_outcome> outcomes(sc.maps.size());
    std::vector<std::uint8_t> bytes(sc.maps.size() * spec::max_data_codewords);
    for (auto _ : state) {
      host::read_codes_cuda(*sc.plan, sc.view(), sc.maps.data(), sc.maps.size(), sc.module_px, erasure_threshold,
                            outcomes.data(), bytes.data());
      benchmark::DoNotOptimize(bytes.data());
    }
    set_counters(state, sc);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void bm_read_cpu(benchmark::State& state, shape s, double px)
try {
  const scan::synthetic_codes& sc = scene(s, px);
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<core::read_code_workspace>> ws;
  for (unsigned t = 0; t < threads; ++t) ws.push_back(std::make_unique<core::read_code_workspace>());
  std::vector<core::code_outcome> outcomes(sc.maps.size());
  std::vector<std::uint8_t> bytes(sc.maps.size() * spec::max_data_codewords);
  for (auto _ : state) {
    host::parallel_for(threads, sc.maps.size(), [&](unsigned t, std::size_t i) {
      outcomes[i] = core::read_code(*sc.plan, sc.view(), sc.maps[i], sc.module_px, erasure_threshold,
                                    bytes.data() + i * spec::max_data_codewords, *ws[t]);
    });
  }
  set_counters(state, sc);
  state.counters["threads"] = threads;
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}

// The scene cut into two tiles, columns [0, cut + 16) and [cut - 16, width), cut through the
// middle of a column of codes, each with its integral image and pose; every code listed across
// both (in that order).
struct two_tiles {
  std::vector<std::uint16_t> pixels[2];
  std::vector<std::uint32_t> sums[2];
  core::gray_view views[2];
  core::tile_anchor_view anchors[2];
  std::vector<core::across_code> codes;
};

const two_tiles& split_scene(const shape& s, double px)
{
  static std::vector<std::pair<std::pair<int, double>, std::unique_ptr<two_tiles>>> cache;
  for (auto& [key, t] : cache)
    if (key.first == s.version && key.second == px) return *t;
  const scan::synthetic_codes& sc = scene(s, px);
  auto t = std::make_unique<two_tiles>();
  double mid_u = 0, mid_v = 0;
  const std::size_t side = static_cast<std::size_t>(std::lround(std::sqrt(static_cast<double>(sc.maps.size()))));
  sc.maps[side / 2].apply(sc.plan->size / 2.0, sc.plan->size / 2.0, mid_u, mid_v);
  const int cut = static_cast<int>(mid_u);
  const int x0s[2] = {0, cut - 16}, x1s[2] = {cut + 16, sc.width};
  for (int k = 0; k < 2; ++k) {
    const int w = x1s[k] - x0s[k];
    sim::gray_image img;
    img.width = static_cast<std::uint32_t>(w);
    img.height = static_cast<std::uint32_t>(sc.height);
    img.bits = 16;
    img.pixels.resize(static_cast<std::size_t>(w) * static_cast<std::size_t>(sc.height));
    for (int y = 0; y < sc.height; ++y)
      std::copy_n(sc.pixels.begin() + static_cast<std::ptrdiff_t>(y) * sc.width + x0s[k], w,
                  img.pixels.begin() + static_cast<std::ptrdiff_t>(y) * w);
    const int shift = scan::build_integral(img, sc.module_px, t->sums[k]);
    t->pixels[k] = std::move(img.pixels);
    t->views[k] = core::gray_view{t->pixels[k].data(), w, sc.height, static_cast<std::size_t>(w)};
    core::tile_anchor_view& a = t->anchors[k];
    a.iv = core::integral_view{t->sums[k].data(), w, sc.height, shift};
    a.to_pixel = sc.to_pixel;
    a.to_pixel.a[0] -= x0s[k];
    a.module_px = sc.module_px;
    a.contrast = scan::estimate_contrast(a.iv, sc.module_px);
    a.polarity = 1;
  }
  const double pitch = sc.plan->size + 4;
  for (std::size_t i = 0; i < sc.maps.size(); ++i) {
    core::across_code c;
    c.x0 = static_cast<double>(i % side) * pitch;
    c.y0 = static_cast<double>(i / side) * pitch;
    c.count = 2;
    c.tiles[0] = 0;
    c.tiles[1] = 1;
    t->codes.push_back(c);
  }
  cache.emplace_back(std::make_pair(s.version, px), std::move(t));
  return *cache.back().second;
}

void set_across_counters(benchmark::State& state, const scan::synthetic_codes& sc, const two_tiles& t)
{
  set_counters(state, sc);
  state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(t.codes.size()));
}

void bm_read_across(benchmark::State& state, shape s, double px)
{
  if (skip_without_device(state)) return;
  try {
    const scan::synthetic_codes& sc = scene(s, px);
    const two_tiles& t = split_scene(s, px);
    // Both tiles resident, as registration leaves them.
    host::tile_passes_cuda passes[2];
    std::shared_ptr<const host::device_tile> resident[2];
    host::tile_read_request requests[2];
    for (int k = 0; k < 2; ++k) {
      std::vector<std::uint32_t> sums(t.sums[k].size());
      passes[k].integral_and_contrast(t.pixels[k].data(), t.views[k].width, t.views[k].height, t.anchors[k].iv.shift,
                                      sc.module_px, sums.data());
      resident[k] = passes[k].keep_tile();
      requests[k] = {t.views[k], t.anchors[k], nullptr, 0, resident[k].get()};
    }
    std::vector<core::code_outcome> outcomes(t.codes.size());
    std::vector<std::uint8_t> bytes(t.codes.size() * spec::max_data_codewords);
    auto run = [&] {
      host::read_across_tiles_cuda(*sc.plan, requests, 2, t.codes.data(), t.codes.size(), sc.module_px,
                                   erasure_threshold, outcomes.data(), bytes.data());
    };
    run();  // warm-up
    for (const core::code_outcome& o : outcomes)
      if (!core::decoded(o.result)) {
        state.SkipWithError("not every code read back across the two tiles (a bug in qrplate)");
        return;
      }
    for (auto _ : state) run();
    set_across_counters(state, sc, t);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void bm_read_across_cpu(benchmark::State& state, shape s, double px)
try {
  const scan::synthetic_codes& sc = scene(s, px);
  const two_tiles& t = split_scene(s, px);
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<core::read_across_workspace>> ws;
  std::vector<core::code_map> maps(static_cast<std::size_t>(threads) * core::max_across);
  for (unsigned k = 0; k < threads; ++k) ws.push_back(std::make_unique<core::read_across_workspace>());
  std::vector<core::code_outcome> outcomes(t.codes.size());
  std::vector<std::uint8_t> bytes(t.codes.size() * spec::max_data_codewords);
  for (auto _ : state) {
    host::parallel_for(threads, t.codes.size(), [&](unsigned w, std::size_t i) {
      core::across_read_batch b;
      b.plan = sc.plan;
      b.images = t.views;
      b.tiles = t.anchors;
      b.codes = t.codes.data();
      b.count = t.codes.size();
      b.module_px = sc.module_px;
      b.erasure_threshold = erasure_threshold;
      b.workspaces = ws[w].get();
      b.maps = maps.data() + static_cast<std::size_t>(w) * core::max_across;
      b.bytes = bytes.data();
      b.outcomes = outcomes.data();
      core::measure_and_read_across(b, i, 0);
    });
  }
  for (const core::code_outcome& o : outcomes)
    if (!core::decoded(o.result)) {
      state.SkipWithError("not every code read back across the two tiles (a bug in qrplate)");
      return;
    }
  set_across_counters(state, sc, t);
  state.counters["threads"] = threads;
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}

void bm_tile_passes(benchmark::State& state, shape s, double px)
{
  if (skip_without_device(state)) return;
  try {
    const scan::synthetic_codes& sc = scene(s, px);
    host::tile_passes_cuda passes;
    const int shift = scan::integral_shift(16, sc.module_px);
    std::vector<std::uint32_t> sums((static_cast<std::size_t>(sc.width) + 1) * (static_cast<std::size_t>(sc.height) + 1));
    std::vector<std::uint32_t> candidates[2];
    for (auto _ : state) {
      const double contrast =
          passes.integral_and_contrast(sc.pixels.data(), sc.width, sc.height, shift, sc.module_px, sums.data());
      passes.finder_candidates(sc.module_px, static_cast<float>(0.5 * contrast), 0, candidates);
      benchmark::DoNotOptimize(candidates[0].data());
    }
    set_counters(state, sc);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// A tile's first pass as registration runs it (tile_passes_cuda::integral_and_contrast: the
// upload through pinned staging, the integral image and the contrast histogram, the integral left
// on the device) for a 4096 x 4096 tile of 8-bit samples (they go up as bytes) and of 16-bit
// ones. bytes_per_second is what the link carried: beside BM_cuda_copy/host_to_device_pinned.
void bm_tile_first_pass(benchmark::State& state, int bits)
{
  if (skip_without_device(state)) return;
  try {
    constexpr int side = 4096;
    const std::size_t n = static_cast<std::size_t>(side) * side;
    std::vector<std::uint16_t> pixels(n);
    std::mt19937 rng(7);
    for (auto& v : pixels) v = static_cast<std::uint16_t>(bits == 8 ? rng() & 0xffu : 256u + rng() % 65280u);
    const double module_px = 3;
    const int shift = scan::integral_shift(bits, module_px);
    host::tile_passes_cuda passes;
    passes.integral_and_contrast(pixels.data(), side, side, shift, module_px, nullptr);  // warm-up
    const std::uint64_t before = passes.uploaded_bytes();
    for (auto _ : state) {
      const double contrast = passes.integral_and_contrast(pixels.data(), side, side, shift, module_px, nullptr);
      benchmark::DoNotOptimize(contrast);
    }
    state.SetBytesProcessed(static_cast<benchmark::IterationCount>(passes.uploaded_bytes() - before));
    state.counters["pixels_per_second"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * static_cast<double>(n), benchmark::Counter::kIsRate);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// Stitching's coarse pass on the GPU (tile_passes_cuda::stitch_scores: upload, a thread per
// shift, scores back) over the patch bench_decode's BM_stitch_coarse rows correlate on the CPU
// (stitch_bench_patch.hpp), for the host time it saves.
void bm_stitch_scores(benchmark::State& state)
{
  if (skip_without_device(state)) return;
  try {
    const bench::stitch_bench_patch fixture;
    const core::stitch_patch patch = fixture.patch();
    std::vector<double> scores(fixture.shifts());
    host::tile_passes_cuda passes;
    passes.stitch_scores(patch, scores.data());  // warm-up
    for (auto _ : state) {
      passes.stitch_scores(patch, scores.data());
      benchmark::DoNotOptimize(scores.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(scores.size()));  // shifts
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

bool register_all()
{
  benchmark::RegisterBenchmark("BM_cuda_stitch_scores/64x64/reach:40", bm_stitch_scores)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  for (const int bits : {8, 16})
    benchmark::RegisterBenchmark(("BM_cuda_tile_first_pass/px:16M/bits:" + std::to_string(bits)).c_str(),
                                 bm_tile_first_pass, bits)
        ->UseRealTime();
  using K = host::cuda_read_kernel;
  for (const shape& s : shapes) {
    for (const double px : pxs) {
      const std::string name = "/v" + std::to_string(s.version) + "-" + to_string(s.ecc) + "/px:" +
                               std::to_string(static_cast<int>(px));
      benchmark::RegisterBenchmark(("BM_cuda_read_device" + name + "/cooperative").c_str(), bm_read_device, s, px,
                                   K::cooperative)
          ->UseManualTime();
      benchmark::RegisterBenchmark(("BM_cuda_read_device" + name + "/cooperative_capped").c_str(), bm_read_device, s,
                                   px, K::cooperative_capped)
          ->UseManualTime();
      benchmark::RegisterBenchmark(("BM_cuda_read_device" + name + "/per_thread").c_str(), bm_read_device, s, px,
                                   K::per_thread)
          ->UseManualTime();
      benchmark::RegisterBenchmark(("BM_cuda_read_host" + name).c_str(), bm_read_host, s, px)->UseRealTime();
      benchmark::RegisterBenchmark(("BM_cpu_read" + name + "/threads:all").c_str(), bm_read_cpu, s, px)->UseRealTime();
      if (px == 3) {  // one size is enough to tell whether the across reads need a cooperative kernel
        benchmark::RegisterBenchmark(("BM_cuda_read_across" + name).c_str(), bm_read_across, s, px)->UseRealTime();
        benchmark::RegisterBenchmark(("BM_cpu_read_across" + name + "/threads:all").c_str(), bm_read_across_cpu, s, px)
            ->UseRealTime();
      }
      benchmark::RegisterBenchmark(("BM_cuda_tile_passes" + name).c_str(), bm_tile_passes, s, px)->UseRealTime();
    }
  }
  bench::register_copy_rows();
  return true;
}

[[maybe_unused]] const bool registered = register_all();

}  // namespace

int main(int argc, char** argv) { return qrplate::bench::run_benchmarks(argc, argv); }
