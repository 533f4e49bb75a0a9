// The per-code read core (core/read_code.hpp) that the scan reader and the CUDA read kernel share:
// codes drawn into an image at a known affine pose (scan/synthetic_codes: rotated, 3 px/module,
// noisy), read back through code maps built from that pose. The oracle is the payload each code
// was encoded from.
// The CUDA instance (host::read_codes_cuda) must give the CPU's outcomes and bytes exactly; it is
// skipped where no CUDA device (or no CUDA build) exists.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_across_cooperative.hpp"
#include "qrplate/core/read_code.hpp"
#include "qrplate/core/read_cooperative.hpp"
#include "qrplate/error.hpp"
#include "scan/synthetic_codes.hpp"
#include "scan/tile_registration.hpp"
#include "thread_emulation.hpp"
#if QRPLATE_WITH_CUDA
#include "cuda/encode_cuda.hpp"
#include "cuda/read_codes_cuda.hpp"
#endif

namespace {

using namespace qrplate;

// version-10-M codes at 3 px/module, rotated 0.7 degrees, noise sigma 2,500 (contrast 28,000).
scan::synthetic_codes render(int columns, int rows, std::uint64_t seed)
{
  return scan::make_synthetic_codes(10, ecc_level::M, 3.0, columns, rows, 0.7, 2500, seed);
}

TEST(ReadCode, CodesAtAKnownPoseReadBackExactly)
{
  const scan::synthetic_codes r = render(4, 3, 1);
  auto ws = std::make_unique<core::read_code_workspace>();
  std::vector<std::uint8_t> bytes(spec::max_data_codewords);
  for (std::size_t i = 0; i < r.maps.size(); ++i) {
    const core::code_outcome o = core::read_code(*r.plan, r.view(), r.maps[i], r.module_px, 64, bytes.data(), *ws);
    ASSERT_TRUE(core::decoded(o.result)) << "code " << i << " status " << static_cast<int>(o.result.status);
    EXPECT_EQ(o.result.mask, static_cast<int>(i % 8));
    ASSERT_EQ(o.result.data_length, static_cast<int>(r.payloads[i].size()));
    EXPECT_EQ(std::memcmp(bytes.data(), r.payloads[i].data(), r.payloads[i].size()), 0) << "code " << i;
    EXPECT_GT(o.snr, 5.0f);
    EXPECT_LT(o.levels.dark, o.levels.light);  // milled modules dark in this image
  }
}

// A map that puts part of the code outside the image: those modules are not sampled (valid 0),
// the rest is, and reading never touches pixels outside the image.
// The plan's list of known modules, which the plane fit walks: every function module but the
// format modules, row-major, for every version (the fit's sums depend on the order).
TEST(ReadCode, KnownModulesAreTheFunctionModulesRowByRow)
{
  auto plan = std::make_unique<core::version_plan>();
  for (int v = 1; v <= 40; ++v) {
    core::build_version_plan(v, ecc_level::Q, *plan);
    const int n = plan->size;
    std::vector<int> want;
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c)
        if (core::get_bit(plan->reserved + r * plan->words, c) && !core::is_format_module(n, r, c)) want.push_back(r * n + c);
    ASSERT_EQ(plan->known_count, static_cast<int>(want.size())) << "v" << v;
    ASSERT_TRUE(std::equal(want.begin(), want.end(), plan->known)) << "v" << v;
    if (v == 40) {
      EXPECT_EQ(plan->known_count, core::max_known_modules);
    }
  }
}

TEST(ReadCode, ModulesNearTheEdgeAreNotSampled)
{
  const scan::synthetic_codes r = render(2, 1, 2);
  core::code_map off = r.maps[0];
  off.base = off.base.shifted(-10, 0);  // the code's left 10 columns lie left of the image
  std::vector<float> values(static_cast<std::size_t>(r.plan->size * r.plan->size));
  std::vector<std::uint8_t> valid(values.size());
  const int sampled = core::sample_code(*r.plan, r.view(), off, r.module_px, values.data(), valid.data());
  EXPECT_GT(sampled, r.plan->size * (r.plan->size - 10));
  EXPECT_LT(sampled, r.plan->size * r.plan->size);
  for (int row = 0; row < r.plan->size; ++row)
    for (int col = 0; col < r.plan->size; ++col) {
      double u, v;
      off.apply(col + 0.5, row + 0.5, u, v);
      const bool inside = core::interior(u, v, r.width, r.height) > core::sample_reach(r.module_px);
      EXPECT_EQ(valid[static_cast<std::size_t>(row * r.plan->size + col)], inside ? 1 : 0) << row << "," << col;
    }
}

// The fast sampler (no floor, no clamps) against the plain one on random points that keep the
// four samples' neighbours inside: the same float, bit for bit.
TEST(ReadCode, InsideSamplerIsTheSampler)
{
  std::mt19937_64 rng(9);
  std::vector<std::uint16_t> pixels(97 * 61);
  for (auto& p : pixels) p = static_cast<std::uint16_t>(rng());
  const core::gray_view img{pixels.data(), 97, 61, 97};
  for (int i = 0; i < 200000; ++i) {
    const double m = 1.2 + static_cast<double>(rng() % 1000) / 100.0;  // both samplers: tent below 2 px/module
    const double reach = core::sample_reach(m);
    std::uniform_real_distribution<double> u(reach + 1e-9, 97 - reach - 1e-9), v(reach + 1e-9, 61 - reach - 1e-9);
    if (!(97 - 2 * reach > 0 && 61 - 2 * reach > 0)) continue;
    const double x = u(rng), y = v(rng);
    const float plain = core::sample_module(img, x, y, m), fast = core::sample_module_inside(img, x, y, m);
    ASSERT_EQ(std::memcmp(&plain, &fast, sizeof plain), 0) << x << "," << y << " m " << m;
  }
}

// gray_view::tent_mean against its definition summed over every pixel of the image (the depth
// weights (h - |dx|)(h - |dy|) of the pixel centres inside the square), near and past the edges
// too; and at h = 1 it is the bilinear sample.
TEST(ReadCode, TentMeanIsTheDepthWeightedMeanOfThePixelsInside)
{
  std::mt19937_64 rng(12);
  std::vector<std::uint16_t> pixels(23 * 17);
  for (auto& p : pixels) p = static_cast<std::uint16_t>(rng());
  const core::gray_view img{pixels.data(), 23, 17, 23};
  std::uniform_real_distribution<double> u(-0.4, 23.4), v(-0.4, 17.4), h(0.5, 1.6);
  for (int trial = 0; trial < 20000; ++trial) {
    const double x = u(rng), y = v(rng), half = h(rng);
    double weights = 0, sum = 0;
    for (int j = 0; j < 17; ++j)
      for (int i = 0; i < 23; ++i) {
        const double wx = half - std::fabs(i + 0.5 - x), wy = half - std::fabs(j + 0.5 - y);
        if (wx > 0 && wy > 0) weights += wx * wy, sum += wx * wy * pixels[static_cast<std::size_t>(j) * 23 + i];
      }
    const double expected = weights > 0 ? sum / weights : 0.0;
    ASSERT_NEAR(img.tent_mean(x, y, half), expected, 1e-3 * (1 + expected)) << x << "," << y << " h " << half;
    if (x >= 1 && y >= 1 && x <= 22 && y <= 16) {
      EXPECT_NEAR(img.tent_mean(x, y, 1.0), img.bilinear(x, y), 0.05) << x << "," << y;
    }
  }
}

// The synthetic codes' image as a registered tile whose pose is off by (du, dv) pixels: its
// integral image and contrast (scan::build_integral, scan::estimate_contrast), polarity +1.
struct posed_codes {
  std::vector<std::uint32_t> sums;
  core::tile_anchor_view tile;
};

posed_codes pose_off(const scan::synthetic_codes& r, double du, double dv)
{
  sim::gray_image img;
  img.width = static_cast<std::uint32_t>(r.width);
  img.height = static_cast<std::uint32_t>(r.height);
  img.bits = 16;
  img.pixels = r.pixels;
  posed_codes p;
  const int shift = scan::build_integral(img, r.module_px, p.sums);
  p.tile.iv = core::integral_view{p.sums.data(), r.width, r.height, shift};
  p.tile.to_pixel = r.to_pixel;
  p.tile.to_pixel.a[0] += du;
  p.tile.to_pixel.a[3] += dv;
  p.tile.module_px = r.module_px;
  p.tile.contrast = scan::estimate_contrast(p.tile.iv, r.module_px);
  p.tile.polarity = 1;
  return p;
}

// Code i's origin on the synthetic lattice (pitch: the code's size + 4 quiet modules).
void code_origin(const scan::synthetic_codes& r, int columns, std::size_t i, double& x0, double& y0)
{
  const int pitch = r.plan->size + 4;
  x0 = static_cast<double>((static_cast<int>(i) % columns) * pitch);
  y0 = static_cast<double>((static_cast<int>(i) / columns) * pitch);
}

// A pose 0.7 module off: the tile's map alone misreads the codes, the map measured at each code's
// own finder and alignment patterns (core::measure_code_map) reads every one exactly.
TEST(ReadCode, MeasuredMapsRecoverAPoseError)
{
  const int columns = 4;
  const scan::synthetic_codes r = render(columns, 3, 5);
  const posed_codes p = pose_off(r, 0.7 * r.module_px, -0.5 * r.module_px);
  ASSERT_GT(p.tile.contrast, 10000);
  auto ws = std::make_unique<core::read_code_workspace>();
  auto map = std::make_unique<core::code_map>();
  std::vector<std::uint8_t> bytes(spec::max_data_codewords);
  std::size_t unmeasured_ok = 0;
  for (std::size_t i = 0; i < r.maps.size(); ++i) {
    double x0 = 0, y0 = 0;
    code_origin(r, columns, i, x0, y0);
    map->base = p.tile.to_pixel.shifted(x0, y0);
    map->anchors = 0;
    const core::code_outcome plain = core::read_code(*r.plan, r.view(), *map, r.module_px, 64, bytes.data(), *ws);
    unmeasured_ok += core::decoded(plain.result);
    core::measure_code_map(p.tile, *r.plan, x0, y0, *map);
    EXPECT_GE(map->anchors, 4) << i;  // three finders and the alignment pattern(s)
    const core::code_outcome o = core::read_code(*r.plan, r.view(), *map, r.module_px, 64, bytes.data(), *ws);
    ASSERT_TRUE(core::decoded(o.result)) << "code " << i;
    ASSERT_EQ(o.result.data_length, static_cast<int>(r.payloads[i].size()));
    EXPECT_TRUE(std::equal(r.payloads[i].begin(), r.payloads[i].end(), bytes.begin())) << i;
  }
  EXPECT_EQ(unmeasured_ok, 0u);  // the error is real: without the anchors no code reads
}

// A code's GPU (or cooperative) outcome and bytes are the CPU's, exactly.
void expect_same_outcome(const core::code_outcome& gpu, const std::uint8_t* gpu_bytes, const core::code_outcome& cpu,
                         const std::uint8_t* cpu_bytes, std::size_t i)
{
  EXPECT_EQ(static_cast<int>(gpu.result.status), static_cast<int>(cpu.result.status)) << i;
  EXPECT_EQ(static_cast<int>(gpu.result.error), static_cast<int>(cpu.result.error)) << i;
  EXPECT_EQ(gpu.result.data_length, cpu.result.data_length) << i;
  EXPECT_EQ(gpu.result.corrected_symbols, cpu.result.corrected_symbols) << i;
  EXPECT_EQ(gpu.result.margin, cpu.result.margin) << i;
  EXPECT_EQ(gpu.levels.dark, cpu.levels.dark) << i;
  EXPECT_EQ(gpu.levels.light, cpu.levels.light) << i;
  EXPECT_EQ(gpu.levels.noise, cpu.levels.noise) << i;
  EXPECT_EQ(gpu.snr, cpu.snr) << i;
  if (core::decoded(cpu.result)) {
    EXPECT_EQ(std::memcmp(gpu_bytes, cpu_bytes, static_cast<std::size_t>(cpu.result.data_length)), 0) << i;
  }
}

// The anchor search split by row (anchor_row_best, a thread a row; pick_from_rows) against
// find_anchor's raster-order climb, on random responses of a few levels (ties everywhere, the
// start's too), some not a number: the same pixel, the same refinement, the same answer.
TEST(CodeAnchors, SearchByRowsPicksWhatTheClimbPicks)
{
  std::mt19937_64 rng(23);
  constexpr int side = 40;
  std::vector<float> grid(side * side);
  int found = 0, not_found = 0, start_kept = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const int levels = 2 + static_cast<int>(rng() % 5);
    for (float& g : grid) g = rng() % 23 == 0 ? std::nanf("") : static_cast<float>(rng() % levels);
    auto response = [&](int x, int y) { return grid[static_cast<std::size_t>(y * side + x)]; };
    const int radius = 1 + static_cast<int>(rng() % 7);
    const double u0 = 12 + static_cast<double>(rng() % 1600) / 100, v0 = 12 + static_cast<double>(rng() % 1600) / 100;
    const float min_response = static_cast<float>(rng() % levels);
    double cu = u0, cv = v0;
    float climbed = 0;
    const bool climb = core::find_anchor(response, cu, cv, radius, min_response, &climbed);

    const int bu = core::round_to_int(u0), bv = core::round_to_int(v0);
    float row_best[15];
    int row_x[15];
    for (int row = 2 * radius; row >= 0; --row)  // any order: the rows are independent
      core::anchor_row_best(response, bu, bv, radius, row - radius, row_best[row], row_x[row]);
    double ru = u0, rv = v0;
    const bool rows = core::pick_from_rows(response, bu, bv, radius, row_best, row_x, min_response, ru, rv);
    ASSERT_EQ(rows, climb) << "trial " << trial;
    if (climb) {
      ASSERT_EQ(ru, cu) << "trial " << trial;
      ASSERT_EQ(rv, cv) << "trial " << trial;
      start_kept += climbed == response(bu, bv);
    }
    found += climb, not_found += !climb;
  }
  EXPECT_GT(found, 500);
  EXPECT_GT(not_found, 100);
  EXPECT_GT(start_kept, 100);  // the start's own response was the best often
}

// The cooperative read's median by rank (anchor_rank, a thread per anchor) against
// keep_consistent_anchors' insertion sort, on random offsets with many ties (signed zeros among
// them): the same anchors kept, in the same order, with the same values.
TEST(CodeAnchors, MedianByRankKeepsWhatTheSortKeeps)
{
  std::mt19937_64 rng(21);
  const double module_px = 3.0;
  int trials_dropping = 0;  // trials where the filter dropped some anchors
  for (int trial = 0; trial < 2000; ++trial) {
    core::code_anchor_set sorted;
    sorted.count = 3 + static_cast<int>(rng() % (core::max_code_anchors - 2));
    const double unit = trial % 2 ? 0.25 : 0.75;  // coarse offsets tie often
    for (int i = 0; i < sorted.count; ++i) {
      sorted.ax[i] = i, sorted.ay[i] = 2 * i;
      sorted.ru[i] = unit * (static_cast<int>(rng() % 9) - 4);
      sorted.rv[i] = unit * (static_cast<int>(rng() % 9) - 4);
      if (rng() % 8 == 0) sorted.ru[i] = -0.0;
    }
    core::code_anchor_set ranked = sorted;
    const int before = sorted.count;
    core::keep_consistent_anchors(sorted, module_px);
    trials_dropping += sorted.count < before;
    double cu = std::nan(""), cv = std::nan("");
    int medians_u = 0, medians_v = 0;
    for (int i = 0; i < ranked.count; ++i) {
      if (core::anchor_rank(ranked.ru, ranked.count, i) == ranked.count / 2) cu = ranked.ru[i], ++medians_u;
      if (core::anchor_rank(ranked.rv, ranked.count, i) == ranked.count / 2) cv = ranked.rv[i], ++medians_v;
    }
    ASSERT_EQ(medians_u, 1) << "trial " << trial;  // ranks are a permutation
    ASSERT_EQ(medians_v, 1) << "trial " << trial;
    core::keep_near_median(ranked, cu, cv, module_px);
    ASSERT_EQ(ranked.count, sorted.count) << "trial " << trial;
    for (int i = 0; i < ranked.count; ++i) {
      ASSERT_EQ(ranked.ax[i], sorted.ax[i]) << "trial " << trial;
      ASSERT_EQ(std::signbit(ranked.ru[i]), std::signbit(sorted.ru[i])) << "trial " << trial;
      ASSERT_EQ(ranked.ru[i], sorted.ru[i]) << "trial " << trial;
      ASSERT_EQ(ranked.rv[i], sorted.rv[i]) << "trial " << trial;
    }
  }
  EXPECT_GT(trials_dropping, 500);  // the medians decide something
  EXPECT_LT(trials_dropping, 2000);
}

// core/read_cooperative.hpp's phases run on the CPU: each phase's threads one after another in a
// new random order, scratch memory filled with garbage first.
core::code_outcome read_cooperatively(core::cooperative_read_job job, int threads, std::mt19937_64& rng,
                                      core::plane_fit* fit_out = nullptr)
{
  auto ws = std::make_unique<core::read_code_workspace>();
  std::memset(static_cast<void*>(ws.get()), 0xA5, sizeof(core::read_code_workspace));
  core::plane_fit fit;
  auto decode = std::make_unique<core::cooperative_decode_state>();
  std::memset(static_cast<void*>(decode.get()), 0xA5, sizeof(core::cooperative_decode_state));
  auto measure = std::make_unique<core::cooperative_measure_state>();
  std::memset(static_cast<void*>(measure.get()), 0xA5, sizeof(core::cooperative_measure_state));
  core::plane_fit_sums fit_lanes[core::plane_fit_lanes];
  std::memset(static_cast<void*>(fit_lanes), 0xA5, sizeof(fit_lanes));
  core::level_sums level_lanes[core::plane_fit_lanes];
  std::memset(static_cast<void*>(level_lanes), 0xA5, sizeof(level_lanes));
  core::code_outcome outcome;
  job.ws = ws.get();
  job.fit = &fit;
  job.fit_lanes = fit_lanes;
  job.level_lanes = level_lanes;
  job.decode = decode.get();
  job.measure = measure.get();
  job.outcome = &outcome;
  test::run_phases(core::cooperative_read_phase_count, threads, rng,
                   [&](int phase, int t, int n) { core::run_cooperative_read_phase(job, phase, t, n); });
  if (fit_out) *fit_out = fit;
  return outcome;
}

// The cooperative read against read_code: given maps and maps measured from a tile's integral
// image, at 3 and 1.5 px/module (the bilinear and the depth-weighted samplers), codes partly and
// wholly outside the image (erasures; no fit), for several group sizes.
TEST(ReadCode, CooperativeReadIsReadCode)
{
  const unsigned seed = 77;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  auto ws = std::make_unique<core::read_code_workspace>();
  auto measured = std::make_unique<core::code_map>();
  auto scratch = std::make_unique<core::code_map>();
  std::vector<std::uint8_t> cpu_bytes(spec::max_data_codewords), coop_bytes(spec::max_data_codewords);
  int decoded = 0, failed = 0;
  int wide_split = 0, wide_whole = 0;  // codes whose wide finder search the group splits by row, or not
  // Version 10 (one word per row) at two samplers, version 40 (three words per row, 46
  // alignment patterns, 25 blocks) at 2 px/module, version 5 at 8 px/module (anchor searches
  // too wide to split by row), and 5 x 5 version 5 codes, whose middle ones lie far enough from
  // the image's edges for the widest finder search (how 3) not to be cut down to a splittable one.
  const struct {
    int version;
    ecc_level ecc;
    double px;
    int columns, rows;
  } scenes[] = {{10, ecc_level::M, 3.0, 3, 2},
                {10, ecc_level::M, 1.5, 3, 2},
                {40, ecc_level::L, 2.0, 2, 1},
                {5, ecc_level::Q, 8.0, 2, 1},   // anchor searches of 17 rows: each anchor one thread's
                {5, ecc_level::Q, 3.0, 5, 5}};
  for (const auto& scene : scenes) {
    const double px = scene.px;
    const int columns = scene.columns;
    const scan::synthetic_codes r =
        scan::make_synthetic_codes(scene.version, scene.ecc, px, columns, scene.rows, 0.7, 2500, 8);
    const posed_codes p = pose_off(r, 0.4 * r.module_px, -0.3 * r.module_px);
    core::tile_anchor_view wide = p.tile;  // an unconfirmed tile: the finders are looked for farther out first
    wide.anchor_search_px = 4 * core::anchor_radius(r.module_px);
    wide.finder_strength = static_cast<float>(0.8 * p.tile.contrast);
    core::tile_anchor_view widest = wide;  // up to 150 px: past what the group splits (max_wide_rows)
    widest.anchor_search_px = 150;
    std::vector<core::code_map> maps = r.maps;
    maps.push_back(r.maps[0]);
    maps.back().base = maps.back().base.shifted(-10, 0);  // partly outside: erasures
    maps.push_back(r.maps[0]);
    maps.back().base = maps.back().base.shifted(-1000, 0);  // wholly outside: nothing to fit
    for (std::size_t i = 0; i < maps.size(); ++i) {
      for (const int how : {0, 1, 2, 3}) {  // map given, measured, with a wide finder search, a wider one
        const bool measure = how > 0;
        const core::tile_anchor_view& tile = how == 3 ? widest : how == 2 ? wide : p.tile;
        double x0 = 0, y0 = 0;
        if (i < r.maps.size()) code_origin(r, columns, i, x0, y0);
        if (i == r.maps.size()) x0 = -10;
        if (i == r.maps.size() + 1) x0 = -1000;
        core::wide_finder_search finders[3];
        if (how >= 2 && core::start_wide_finder_search(tile, *r.plan, tile.to_pixel.shifted(x0, y0), finders)) {
          bool whole = false;
          for (const auto& f : finders) whole |= f.searched && 2 * f.radius + 1 > core::max_wide_rows;
          ++(whole ? wide_whole : wide_split);
        }
        const core::code_map* map = &maps[i];
        if (measure) {
          core::measure_code_map(tile, *r.plan, x0, y0, *measured);
          map = measured.get();
        }
        const core::code_outcome cpu = core::read_code(*r.plan, r.view(), *map, r.module_px, 64, cpu_bytes.data(), *ws);
        decoded += core::decoded(cpu.result);
        failed += !core::decoded(cpu.result);
        if (i < r.maps.size() && how == 0) {  // exact maps: the comparison is of codes that read
          EXPECT_TRUE(core::decoded(cpu.result)) << "v" << scene.version << " at " << px << " px, code " << i;
        }
        for (const int threads : {1, 33, 128}) {
          core::cooperative_read_job job{};
          job.plan = r.plan;
          job.image = r.view();
          job.map = &maps[i];
          job.tile = measure ? &tile : nullptr;
          job.x0 = x0;
          job.y0 = y0;
          job.measured = scratch.get();
          job.module_px = r.module_px;
          job.erasure_threshold = 64;
          std::fill(coop_bytes.begin(), coop_bytes.end(), std::uint8_t{0x5A});
          job.out = coop_bytes.data();
          SCOPED_TRACE(::testing::Message() << "v" << scene.version << " at " << px << " px, code " << i << ", map "
                                            << (how ? "measured" : "given")
                                            << (how == 3 ? " (widest)" : how == 2 ? " (wide)" : "") << ", threads " << threads);
          core::plane_fit coop_fit;
          const core::code_outcome coop = read_cooperatively(job, threads, rng, &coop_fit);
          // The fit summed in lanes by the group is the one-thread fit, to the bit (ws: read_code's).
          core::plane_fit cpu_fit = core::fit_brightness_plane(*r.plan, ws->values, ws->valid);
          for (int k = 0; k < 4; ++k) ASSERT_EQ(coop_fit.p[k], cpu_fit.p[k]) << "p" << k;
          if (cpu_fit.solved) {
            core::finish_levels(*r.plan, cpu_fit, ws->values, ws->valid);
            ASSERT_EQ(coop_fit.sse, cpu_fit.sse);
          }
          if (measure) {  // the map itself is measure_code_map's
            for (int k = 0; k < 6; ++k) ASSERT_EQ(scratch->base.a[k], measured->base.a[k]);
            ASSERT_EQ(scratch->anchors, measured->anchors);
            if (measured->anchors > 0) {
              ASSERT_EQ(scratch->nodes, measured->nodes);
              for (int iy = 0; iy < measured->nodes; ++iy)
                for (int ix = 0; ix < measured->nodes; ++ix) {
                  ASSERT_EQ(scratch->du[iy][ix], measured->du[iy][ix]);
                  ASSERT_EQ(scratch->dv[iy][ix], measured->dv[iy][ix]);
                }
            }
          }
          expect_same_outcome(coop, coop_bytes.data(), cpu, cpu_bytes.data(), i);
          EXPECT_EQ(coop.levels.known, cpu.levels.known);
          EXPECT_EQ(coop.levels.known_wrong, cpu.levels.known_wrong);
          EXPECT_EQ(coop.levels.ok, cpu.levels.ok);
        }
      }
    }
  }
  EXPECT_GT(decoded, 20);  // the comparison covers codes that read ...
  EXPECT_GE(failed, 4);    // ... and codes that do not (wholly outside, at least)
  EXPECT_GT(wide_split, 10);
  EXPECT_GT(wide_whole, 0);
}

// The kernel's whole body (core::read_cooperative_block) over small grids, block after block,
// each block's threads one after another in shuffled order: the codes of two tiles (different
// images and poses) in one batch, interleaved, maps given and measured, a code partly outside
// its image, against read_code.
TEST(ReadCode, KernelBlocksOverAGridAreReadCode)
{
  std::mt19937_64 rng(78);
  const int columns = 3;
  const scan::synthetic_codes r[2] = {render(columns, 2, 9), render(columns, 2, 10)};
  const posed_codes p[2] = {pose_off(r[0], 0.5 * r[0].module_px, 0.3 * r[0].module_px),
                            pose_off(r[1], -0.4 * r[1].module_px, 0.2 * r[1].module_px)};
  const core::gray_view images[2] = {r[0].view(), r[1].view()};
  const core::tile_anchor_view tiles[2] = {p[0].tile, p[1].tile};
  // Code i: tile i % 2, that tile's code i / 2 (the last one of tile 0 partly outside).
  std::vector<core::code_map> maps;
  std::vector<double> origins;
  std::vector<std::uint32_t> tile_of;
  for (std::size_t j = 0; j <= r[0].maps.size(); ++j)
    for (std::uint32_t k = 0; k < 2; ++k) {
      if (j == r[0].maps.size() && k == 1) continue;
      double x0 = -10, y0 = 0;
      core::code_map m = r[k].maps[0];
      if (j < r[k].maps.size()) {
        code_origin(r[k], columns, j, x0, y0);
        m = r[k].maps[j];
      } else {
        m.base = m.base.shifted(-10, 0);
      }
      maps.push_back(m);
      origins.push_back(x0);
      origins.push_back(y0);
      tile_of.push_back(k);
    }
  const std::size_t count = maps.size();
  auto cpu_ws = std::make_unique<core::read_code_workspace>();
  auto map = std::make_unique<core::code_map>();
  int decoded = 0;
  for (const bool measure : {false, true}) {
    std::vector<core::code_outcome> want(count);
    std::vector<std::uint8_t> want_bytes(count * spec::max_data_codewords);
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint32_t k = tile_of[i];
      if (measure) core::measure_code_map(tiles[k], *r[k].plan, origins[2 * i], origins[2 * i + 1], *map);
      want[i] = core::read_code(*r[k].plan, images[k], measure ? *map : maps[i], r[k].module_px, 64,
                                want_bytes.data() + i * spec::max_data_codewords, *cpu_ws);
      decoded += core::decoded(want[i].result);
    }
    for (const unsigned grid : {1u, 3u}) {
      for (const int block_threads : {128, 33}) {
        SCOPED_TRACE(::testing::Message() << (measure ? "measured" : "given") << ", grid " << grid << ", threads "
                                          << block_threads);
        auto workspaces = std::make_unique<core::read_code_workspace[]>(grid);
        auto scratch = std::make_unique<core::code_map[]>(grid);
        auto shared = std::make_unique<core::cooperative_read_shared>();
        std::memset(static_cast<void*>(shared.get()), 0xA5, sizeof(core::cooperative_read_shared));
        std::vector<core::code_outcome> got(count);
        std::vector<std::uint8_t> got_bytes(count * spec::max_data_codewords, 0x5A);
        core::cooperative_read_batch batch{};
        batch.plan = r[0].plan;
        batch.images = images;
        batch.tile_of = tile_of.data();
        batch.maps = maps.data();
        batch.measure = measure;
        batch.tiles = tiles;
        batch.origins = origins.data();
        batch.count = count;
        batch.module_px = r[0].module_px;
        batch.erasure_threshold = 64;
        batch.workspaces = workspaces.get();
        batch.scratch_maps = scratch.get();
        batch.bytes = got_bytes.data();
        batch.outcomes = got.data();
        test::shuffled_threads exec{block_threads, rng};
        for (unsigned block = 0; block < grid; ++block)
          core::read_cooperative_block(batch, block, grid, block_threads, *shared, exec);
        for (std::size_t i = 0; i < count; ++i)
          expect_same_outcome(got[i], got_bytes.data() + i * spec::max_data_codewords, want[i],
                              want_bytes.data() + i * spec::max_data_codewords, i);
      }
    }
  }
  EXPECT_GE(decoded, 20);  // 12 codes in the images, given and measured maps
}

#if QRPLATE_WITH_CUDA
constexpr host::cuda_read_kernel all_read_kernels[] = {host::cuda_read_kernel::cooperative,
                                                      host::cuda_read_kernel::cooperative_capped,
                                                      host::cuda_read_kernel::per_thread};
const char* kernel_name(host::cuda_read_kernel k)
{
  return k == host::cuda_read_kernel::cooperative          ? "cooperative kernel"
         : k == host::cuda_read_kernel::cooperative_capped ? "cooperative kernel, registers capped"
                                                           : "per-thread kernel";
}
#endif

TEST(ReadCode, CudaMeasuresAndReadsAsTheCpu)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  const int columns = 4;
  const scan::synthetic_codes r = render(columns, 3, 6);
  const posed_codes p = pose_off(r, 0.6 * r.module_px, 0.4 * r.module_px);
  std::vector<double> origins;
  for (std::size_t i = 0; i < r.maps.size(); ++i) {
    double x0 = 0, y0 = 0;
    code_origin(r, columns, i, x0, y0);
    origins.push_back(x0);
    origins.push_back(y0);
  }
  origins.push_back(-10);  // a code partly outside the image
  origins.push_back(0);
  const std::size_t count = origins.size() / 2;
  for (const auto kernel : all_read_kernels) {
    SCOPED_TRACE(kernel_name(kernel));
    std::vector<core::code_outcome> gpu(count);
    std::vector<std::uint8_t> gpu_bytes(count * spec::max_data_codewords);
    host::measure_and_read_codes_cuda(*r.plan, r.view(), p.tile, origins.data(), count, r.module_px, 64, gpu.data(),
                                      gpu_bytes.data(), kernel);
    auto ws = std::make_unique<core::read_code_workspace>();
    auto map = std::make_unique<core::code_map>();
    std::vector<std::uint8_t> bytes(spec::max_data_codewords);
    for (std::size_t i = 0; i < count; ++i) {
      core::measure_code_map(p.tile, *r.plan, origins[2 * i], origins[2 * i + 1], *map);
      const core::code_outcome o = core::read_code(*r.plan, r.view(), *map, r.module_px, 64, bytes.data(), *ws);
      expect_same_outcome(gpu[i], gpu_bytes.data() + i * spec::max_data_codewords, o, bytes.data(), i);
    }
  }
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

// Two tiles in one launch (host::measure_and_read_tiles_cuda, what the scan reader uses): the
// outcomes and bytes of measure_code_map + read_code on the CPU, in the tiles' order.
TEST(ReadCode, CudaReadsManyTilesInOneLaunch)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  const int columns = 4;
  const scan::synthetic_codes r[2] = {render(columns, 3, 11), render(columns, 3, 12)};
  const posed_codes p[2] = {pose_off(r[0], 0.6 * r[0].module_px, 0.4 * r[0].module_px),
                            pose_off(r[1], -0.5 * r[1].module_px, 0.3 * r[1].module_px)};
  std::vector<double> origins[2];
  for (int k = 0; k < 2; ++k)
    for (std::size_t i = 0; i < r[k].maps.size(); ++i) {
      double x0 = 0, y0 = 0;
      code_origin(r[k], columns, i, x0, y0);
      origins[k].push_back(x0);
      origins[k].push_back(y0);
    }
  // The second tile also as the scan reader has it with CUDA: left in device memory by the
  // registration passes (read there, not uploaded). Its host copy is then spoiled, so that a read
  // that uploads it after all is caught.
  host::tile_passes_cuda passes;
  std::vector<std::uint32_t> sums(p[1].sums.size());
  passes.integral_and_contrast(r[1].pixels.data(), r[1].width, r[1].height, p[1].tile.iv.shift, r[1].module_px,
                               sums.data());
  const std::shared_ptr<const host::device_tile> resident = passes.keep_tile();
  ASSERT_NE(resident, nullptr);
  EXPECT_EQ(passes.keep_tile(), nullptr);  // handed over once
  std::vector<std::uint16_t> spoiled(r[1].pixels.size(), 0);
  std::vector<std::uint32_t> spoiled_sums(sums.size(), 0);
  core::tile_anchor_view spoiled_tile = p[1].tile;
  spoiled_tile.iv.sums = spoiled_sums.data();
  const core::gray_view spoiled_view{spoiled.data(), r[1].width, r[1].height, static_cast<std::size_t>(r[1].width)};
  const std::size_t count = r[0].maps.size() + r[1].maps.size();
  for (const bool on_device : {false, true}) {
    SCOPED_TRACE(on_device ? "second tile resident" : "both uploaded");
    host::tile_read_request requests[2] = {{r[0].view(), p[0].tile, origins[0].data(), r[0].maps.size()},
                                           {r[1].view(), p[1].tile, origins[1].data(), r[1].maps.size()}};
    if (on_device) requests[1] = {spoiled_view, spoiled_tile, origins[1].data(), r[1].maps.size(), resident.get()};
    std::vector<core::code_outcome> gpu(count);
    std::vector<std::uint8_t> gpu_bytes(count * spec::max_data_codewords);
    // The register-capped build of the kernel for the resident case (the same results).
    host::measure_and_read_tiles_cuda(*r[0].plan, requests, 2, r[0].module_px, 64, gpu.data(), gpu_bytes.data(),
                                      on_device ? host::cuda_read_kernel::cooperative_capped
                                                : host::cuda_read_kernel::cooperative);
    auto ws = std::make_unique<core::read_code_workspace>();
    auto map = std::make_unique<core::code_map>();
    std::vector<std::uint8_t> bytes(spec::max_data_codewords);
    std::size_t i = 0, decoded = 0;
    for (int k = 0; k < 2; ++k)
      for (std::size_t j = 0; j < r[k].maps.size(); ++j, ++i) {
        core::measure_code_map(p[k].tile, *r[k].plan, origins[k][2 * j], origins[k][2 * j + 1], *map);
        const core::code_outcome o = core::read_code(*r[k].plan, r[k].view(), *map, r[k].module_px, 64, bytes.data(), *ws);
        expect_same_outcome(gpu[i], gpu_bytes.data() + i * spec::max_data_codewords, o, bytes.data(), i);
        decoded += core::decoded(o.result);
      }
    EXPECT_GT(decoded, count / 2);
  }
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

// A crop of the synthetic image, columns [x0, x1), posed as a tile of its own (pose_off's error
// too).
struct cropped_tile {
  std::vector<std::uint16_t> pixels;
  int width = 0, height = 0;
  posed_codes posed;
  core::gray_view view() const { return {pixels.data(), width, height, static_cast<std::size_t>(width)}; }
};

cropped_tile crop(const scan::synthetic_codes& r, int x0, int x1, double du, double dv)
{
  scan::synthetic_codes c = r;
  c.width = x1 - x0;
  c.pixels.assign(static_cast<std::size_t>(c.width) * static_cast<std::size_t>(r.height), 0);
  for (int y = 0; y < r.height; ++y)
    std::copy_n(r.pixels.begin() + static_cast<std::ptrdiff_t>(y) * r.width + x0, c.width,
                c.pixels.begin() + static_cast<std::ptrdiff_t>(y) * c.width);
  c.to_pixel.a[0] -= x0;
  cropped_tile t;
  t.posed = pose_off(c, du, dv);
  t.pixels = std::move(c.pixels);
  t.posed.tile.iv = core::integral_view{t.posed.sums.data(), c.width, r.height, t.posed.tile.iv.shift};
  t.width = c.width;
  t.height = r.height;
  return t;
}

// Two tiles that both hold a code (their overlap) are two independent looks at each module: read
// across both, each module takes the mean of the two readings, so codes too noisy for either
// look alone read. The same noise-free codes with Gaussian noise of sigma 18,000 (contrast
// 28,000) drawn twice, independently; the maps are exact.
TEST(ReadCode, TwoLooksAtAModuleAreAveraged)
{
  const scan::synthetic_codes clean = scan::make_synthetic_codes(10, ecc_level::M, 3.0, 4, 3, 0.7, 0, 31);
  std::mt19937_64 rng(32);
  std::normal_distribution<double> noise(0, 18000);
  std::vector<std::uint16_t> looks[2];
  for (auto& look : looks) {
    look = clean.pixels;
    for (auto& p : look) p = static_cast<std::uint16_t>(std::clamp(p + noise(rng), 0.0, 65535.0));
  }
  const core::gray_view views[2] = {{looks[0].data(), clean.width, clean.height, static_cast<std::size_t>(clean.width)},
                                    {looks[1].data(), clean.width, clean.height, static_cast<std::size_t>(clean.width)}};
  auto ws = std::make_unique<core::read_across_workspace>();
  std::vector<std::uint8_t> bytes(spec::max_data_codewords);
  int alone[2] = {0, 0}, both = 0;
  for (std::size_t i = 0; i < clean.maps.size(); ++i) {
    const core::code_map maps[2] = {clean.maps[i], clean.maps[i]};
    for (int k = 0; k < 2; ++k) {
      const core::code_outcome o =
          core::read_code_across(*clean.plan, views + k, maps, 1, clean.module_px, 64, bytes.data(), *ws);
      alone[k] += core::decoded(o.result);
    }
    const core::code_outcome o = core::read_code_across(*clean.plan, views, maps, 2, clean.module_px, 64, bytes.data(), *ws);
    if (core::decoded(o.result)) {
      ++both;
      EXPECT_EQ(std::memcmp(bytes.data(), clean.payloads[i].data(), clean.payloads[i].size()), 0) << "code " << i;
    }
  }
  const int codes = static_cast<int>(clean.maps.size());
  std::cout << "[ looks    ] " << codes << " codes: " << alone[0] << " and " << alone[1] << " read from one look, "
            << both << " from both\n";
  EXPECT_LE(alone[0], codes / 2);
  EXPECT_LE(alone[1], codes / 2);
  EXPECT_EQ(both, codes);
}

// Codes across two cropped tiles as the scan reader's CPU batch reads them
// (measure_and_read_across, code by code, one worker): the reference the GPU paths are held to.
struct across_reference {
  core::gray_view views[2];
  core::tile_anchor_view anchors[2];
  std::unique_ptr<core::read_across_workspace> ws = std::make_unique<core::read_across_workspace>();
  std::vector<core::code_map> maps = std::vector<core::code_map>(core::max_across);
  std::vector<core::code_outcome> want;
  std::vector<std::uint8_t> want_bytes;
  core::across_read_batch batch;  // points into the members above: not copied

  across_reference(const scan::synthetic_codes& r, const cropped_tile (&tiles)[2],
                   const std::vector<core::across_code>& codes)
      : views{tiles[0].view(), tiles[1].view()},
        anchors{tiles[0].posed.tile, tiles[1].posed.tile},
        want(codes.size()),
        want_bytes(codes.size() * spec::max_data_codewords)
  {
    batch.plan = r.plan;
    batch.images = views;
    batch.tiles = anchors;
    batch.codes = codes.data();
    batch.count = codes.size();
    batch.module_px = r.module_px;
    batch.erasure_threshold = 64;
    batch.workspaces = ws.get();
    batch.maps = maps.data();
    batch.bytes = want_bytes.data();
    batch.outcomes = want.data();
    for (std::size_t i = 0; i < codes.size(); ++i) core::measure_and_read_across(batch, i, 0);
  }
  across_reference(const across_reference&) = delete;
  across_reference& operator=(const across_reference&) = delete;
};

// The GPU kernel's body for codes across tiles (core::read_across_cooperative_block) on the CPU,
// for the codes of `cpu` (a batch as measure_and_read_across read it, one code at a time, into
// want and want_bytes): grids of 1 and 3 blocks, each block's threads one after another in
// shuffled order, 128 and 33 of them, the shared state poisoned.
void expect_across_blocks_are(const core::across_read_batch& cpu, const std::vector<core::code_outcome>& want,
                              const std::vector<std::uint8_t>& want_bytes, std::mt19937_64& rng)
{
  const std::size_t n = cpu.count;
  for (const unsigned grid : {1u, 3u})
    for (const int block_threads : {128, 33}) {
      SCOPED_TRACE(::testing::Message() << "cooperative body, grid " << grid << ", threads " << block_threads);
      auto block_ws = std::make_unique<core::read_across_workspace[]>(grid);
      std::vector<core::code_map> block_maps(static_cast<std::size_t>(grid) * core::max_across);
      auto shared = std::make_unique<core::cooperative_across_shared>();
      std::memset(static_cast<void*>(shared.get()), 0xA5, sizeof(core::cooperative_across_shared));
      std::vector<core::code_outcome> got(n);
      std::vector<std::uint8_t> got_bytes(n * spec::max_data_codewords, 0x5A);
      core::across_read_batch batch = cpu;
      batch.workspaces = block_ws.get();
      batch.maps = block_maps.data();
      batch.bytes = got_bytes.data();
      batch.outcomes = got.data();
      test::shuffled_threads exec{block_threads, rng};
      for (unsigned block = 0; block < grid; ++block)
        core::read_across_cooperative_block(batch, block, grid, block_threads, *shared, exec);
      for (std::size_t i = 0; i < n; ++i)
        expect_same_outcome(got[i], got_bytes.data() + i * spec::max_data_codewords, want[i],
                            want_bytes.data() + i * spec::max_data_codewords, i);
    }
}

// Codes no tile holds whole (host::read_across_tiles_cuda, what the scan reader sends for them):
// the outcomes and bytes of measure_code_map in each tile + read_code_across on the CPU. The
// image is cut into two overlapping tiles across the second column of codes, so that neither
// holds those codes whole; one tile is resident on the device (its host copy spoiled).
TEST(ReadCode, CudaReadsCodesAcrossTilesAsTheCpu)
{
  const int columns = 4;
  const scan::synthetic_codes r = render(columns, 2, 21);
  // The cut through the middle of the second column's codes; 10 px of overlap on either side.
  double mid_u = 0, mid_v = 0;
  r.maps[1].apply(r.plan->size / 2.0, r.plan->size / 2.0, mid_u, mid_v);
  const int cut = static_cast<int>(mid_u);
  const cropped_tile tiles[2] = {crop(r, 0, cut + 10, 0.4 * r.module_px, -0.3 * r.module_px),
                                 crop(r, cut - 10, r.width, -0.3 * r.module_px, 0.5 * r.module_px)};
  // Every code across both tiles (in either order), and each code of the second column in one
  // tile alone (partly outside it).
  std::vector<core::across_code> codes;
  for (std::size_t i = 0; i < r.maps.size(); ++i) {
    core::across_code a;
    code_origin(r, columns, i, a.x0, a.y0);
    a.count = 2;
    a.tiles[0] = i % 2 == 0 ? 0 : 1;
    a.tiles[1] = 1 - a.tiles[0];
    codes.push_back(a);
    if (i % columns == 1) {
      a.count = 1;
      codes.push_back(a);
    }
  }
  // The CPU: measure_and_read_across, as the scan reader's batch runs it.
  const across_reference ref(r, tiles, codes);
  const std::vector<core::code_outcome>& want = ref.want;
  const std::vector<std::uint8_t>& want_bytes = ref.want_bytes;
  std::size_t across_decoded = 0;
  for (std::size_t i = 0; i < codes.size(); ++i) {
    const bool second_column = static_cast<int>(codes[i].x0) / (r.plan->size + 4) == 1;
    if (codes[i].count == 2 && second_column) across_decoded += core::decoded(want[i].result);
    if (codes[i].count == 1 && second_column) {
      EXPECT_FALSE(core::decoded(want[i].result)) << "code " << i << " is not cut by the tiles' edges";
    }
  }
  // The second column's codes read across the cut (each tile sees only part of them).
  EXPECT_EQ(across_decoded, std::size_t{2});
  // The GPU kernel's body on the CPU.
  std::mt19937_64 rng(79);
  expect_across_blocks_are(ref.batch, want, want_bytes, rng);
  for (std::size_t i = 0; i < codes.size(); ++i)
    if (codes[i].count == 2) {
      const std::size_t code = static_cast<std::size_t>(codes[i].y0 / (r.plan->size + 4)) * columns +
                               static_cast<std::size_t>(codes[i].x0 / (r.plan->size + 4));
      if (core::decoded(want[i].result)) {
        EXPECT_EQ(std::memcmp(want_bytes.data() + i * spec::max_data_codewords, r.payloads[code].data(),
                              r.payloads[code].size()), 0) << i;
      }
    }
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  host::tile_passes_cuda passes;
  std::vector<std::uint32_t> sums(tiles[1].posed.sums.size());
  passes.integral_and_contrast(tiles[1].pixels.data(), tiles[1].width, tiles[1].height, tiles[1].posed.tile.iv.shift,
                               r.module_px, sums.data());
  const std::shared_ptr<const host::device_tile> resident = passes.keep_tile();
  ASSERT_NE(resident, nullptr);
  std::vector<std::uint16_t> spoiled(tiles[1].pixels.size(), 0);
  std::vector<std::uint32_t> spoiled_sums(sums.size(), 0);
  core::tile_anchor_view spoiled_tile = tiles[1].posed.tile;
  spoiled_tile.iv.sums = spoiled_sums.data();
  const core::gray_view spoiled_view{spoiled.data(), tiles[1].width, tiles[1].height,
                                     static_cast<std::size_t>(tiles[1].width)};
  const host::tile_read_request requests[2] = {{ref.views[0], ref.anchors[0], nullptr, 0},
                                               {spoiled_view, spoiled_tile, nullptr, 0, resident.get()}};
  std::vector<core::code_outcome> gpu(codes.size());
  std::vector<std::uint8_t> gpu_bytes(codes.size() * spec::max_data_codewords);
  host::read_across_tiles_cuda(*r.plan, requests, 2, codes.data(), codes.size(), r.module_px, 64, gpu.data(),
                               gpu_bytes.data());
  for (std::size_t i = 0; i < codes.size(); ++i)
    expect_same_outcome(gpu[i], gpu_bytes.data() + i * spec::max_data_codewords, want[i],
                        want_bytes.data() + i * spec::max_data_codewords, i);
  core::across_code bad = codes[0];
  bad.tiles[1] = 2;  // not a listed tile
  EXPECT_THROW(host::read_across_tiles_cuda(*r.plan, requests, 2, &bad, 1, r.module_px, 64, gpu.data(), gpu_bytes.data()),
               invalid_argument);
#endif
}

// The across kernel's body where its parts matter: two tiles cut across the middle column of
// codes (120 px of overlap) that differ in brightness and contrast (the second at 55% of the
// first's contrast, on a raised floor), both very noisy, so each tile's own fit of its part of a
// code changes bits (finish_code_across's step 3), and codes that fail their first decode are
// read again from the overlapping modules (step 5). Held to measure_and_read_across, code by
// code. Checked by mutation: skipping step 3's bits, the parts or step 5 fails it; copying the
// parts' bits without their confidences does not (no outcome here depends on them).
TEST(ReadCode, AcrossKernelBodyIsTheCoreOnUnevenNoisyTiles)
{
  const int columns = 3;
  const scan::synthetic_codes clean = render(columns, 3, 41);
  std::mt19937_64 noise_rng(42);
  std::normal_distribution<double> noise(0, 14000);
  scan::synthetic_codes looks[2] = {clean, clean};
  for (int k = 0; k < 2; ++k)
    for (auto& p : looks[k].pixels) {
      const double v = k == 0 ? p : 0.55 * p + 12000.0;
      p = static_cast<std::uint16_t>(std::clamp(v + noise(noise_rng), 0.0, 65535.0));
    }
  double mid_u = 0, mid_v = 0;
  clean.maps[1].apply(clean.plan->size / 2.0, clean.plan->size / 2.0, mid_u, mid_v);
  const int cut = static_cast<int>(mid_u);
  const cropped_tile tiles[2] = {crop(looks[0], 0, cut + 60, 0.3 * clean.module_px, -0.2 * clean.module_px),
                                 crop(looks[1], cut - 60, clean.width, -0.2 * clean.module_px, 0.3 * clean.module_px)};
  std::vector<core::across_code> codes;
  for (std::size_t i = 0; i < clean.maps.size(); ++i) {
    core::across_code a;
    code_origin(clean, columns, i, a.x0, a.y0);
    a.count = 2;
    a.tiles[0] = 0;
    a.tiles[1] = 1;
    codes.push_back(a);
  }
  const across_reference ref(clean, tiles, codes);
  int decoded = 0;
  for (const core::code_outcome& o : ref.want) decoded += core::decoded(o.result);
  EXPECT_GE(decoded, static_cast<int>(codes.size()) / 2);  // 5 of 9: most read, some only at the second try
  std::mt19937_64 rng(43);
  expect_across_blocks_are(ref.batch, ref.want, ref.want_bytes, rng);
}

TEST(ReadCode, CudaGivesTheCpuOutcomesAndBytes)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  const scan::synthetic_codes r = render(4, 3, 3);
  std::vector<core::code_map> maps = r.maps;
  maps.push_back(r.maps[0]);
  maps.back().base = maps.back().base.shifted(-10, 0);  // partly outside: erasures, or a failure
  maps.push_back(r.maps[0]);
  maps.back().base = maps.back().base.shifted(-1000, 0);  // wholly outside: no fit
  for (const auto kernel : all_read_kernels) {
    SCOPED_TRACE(kernel_name(kernel));
    std::vector<core::code_outcome> gpu(maps.size());
    std::vector<std::uint8_t> gpu_bytes(maps.size() * spec::max_data_codewords);
    host::read_codes_cuda(*r.plan, r.view(), maps.data(), maps.size(), r.module_px, 64, gpu.data(), gpu_bytes.data(),
                          kernel);
    auto ws = std::make_unique<core::read_code_workspace>();
    std::vector<std::uint8_t> bytes(spec::max_data_codewords);
    for (std::size_t i = 0; i < maps.size(); ++i) {
      const core::code_outcome o = core::read_code(*r.plan, r.view(), maps[i], r.module_px, 64, bytes.data(), *ws);
      expect_same_outcome(gpu[i], gpu_bytes.data() + i * spec::max_data_codewords, o, bytes.data(), i);
    }
  }
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

}  // namespace
