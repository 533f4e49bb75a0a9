// The CPU fast paths of the per-code core (host/scan/fast_sampling) against the plain references,
// core::sample_code, core::sample_across_module, core::measure_code_map and
// core::threshold_symbol: on random images (strides wider than rows, 8- and 16-bit values) and
// random code maps (rotated, scaled, with and without an offset field, codes hanging over every
// edge), the values must be the same bits, the valid flags and the count the same. The expected
// values come from the reference alone, never from the fast path.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <iterator>
#include <random>
#include <utility>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_code.hpp"
#include "qrplate/spec/versions.hpp"
#include "scan/fast_sampling.hpp"
#include "scan/synthetic_codes.hpp"
#include "scan/tile_registration.hpp"
#include "sim/scan_io.hpp"

namespace {

using qrplate::core::code_map;
using qrplate::core::gray_view;

struct random_image {
  std::vector<std::uint16_t> pixels;
  gray_view view;
};

random_image make_image(std::mt19937_64& rng, int width, int height, int bits)
{
  random_image img;
  const std::size_t stride = static_cast<std::size_t>(width) + rng() % 9;
  img.pixels.resize(stride * height);
  const std::uint32_t levels = bits == 8 ? 256u : 65536u;
  for (auto& p : img.pixels) p = static_cast<std::uint16_t>(rng() % levels);
  img.view.pixels = img.pixels.data();
  img.view.width = width, img.view.height = height, img.view.stride = stride;
  return img;
}

// A code of n modules at px pixels a module, rotated by up to ~3 degrees and sheared a little,
// its origin at (ox, oy) pixels; offsets of up to +-1.5 px at every node when `anchored`.
code_map make_map(std::mt19937_64& rng, int n, double px, double ox, double oy, bool anchored)
{
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  const double angle = 0.05 * unit(rng), shear = 0.01 * unit(rng);
  code_map map{};
  map.base.a[0] = ox, map.base.a[1] = px * std::cos(angle), map.base.a[2] = -px * std::sin(angle) + shear;
  map.base.a[3] = oy, map.base.a[4] = px * std::sin(angle), map.base.a[5] = px * std::cos(angle) - shear;
  // Every other map with fewer nodes than the code needs, so that the field's clamp at its last
  // node is taken too.
  const int full = (n + code_map::step) / code_map::step + 1;
  map.nodes = rng() % 2 ? full : 2 + static_cast<int>(rng() % (full - 1));
  map.anchors = anchored ? 3 : 0;
  for (int i = 0; i < code_map::max_nodes; ++i)
    for (int j = 0; j < code_map::max_nodes; ++j) {
      map.du[i][j] = anchored ? static_cast<float>(1.5 * unit(rng)) : 0.0f;
      map.dv[i][j] = anchored ? static_cast<float>(1.5 * unit(rng)) : 0.0f;
    }
  return map;
}

TEST(FastSampling, SameBitsAsTheReferenceOnRandomCodes)
{
  if (!qrplate::scan::avx2_fast_paths_available()) GTEST_SKIP() << "no AVX2 path on this build or CPU: the reference runs";
  std::mt19937_64 rng(20261125);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double module_px[] = {2.05, 2.5, 2.999, 3.0, 3.37, 4.0, 5.5};
  const int versions[] = {1, 3, 10, 25, 40};
  std::size_t codes = 0, whole = 0, partial = 0;
  for (int version : versions) {
    const qrplate::core::version_plan& plan = qrplate::host::version_plan_for(version, qrplate::ecc_level::M);
    const int n = plan.size;
    for (double px : module_px) {
      for (int trial = 0; trial < 12; ++trial) {
        // Two trials in three hold the code wholly inside (a margin of a tenth of the code for
        // the rotation and offsets); the third hangs it from well outside the left/top edge to
        // past the right/bottom one.
        const double span = n * px;
        const bool hanging = trial % 3 == 2;
        const double margin = 0.1 * span + 10;
        const int width = static_cast<int>(hanging ? span * (0.6 + unit(rng)) : span + 2 * margin + 20 * unit(rng)) + 8;
        const int height = static_cast<int>(hanging ? span * (0.6 + unit(rng)) : span + 2 * margin + 20 * unit(rng)) + 8;
        random_image img = make_image(rng, width, height, trial % 2 ? 8 : 16);
        const double ox = hanging ? (unit(rng) * 1.4 - 0.3) * width - 0.2 * span : margin + unit(rng) * (width - span - 2 * margin);
        const double oy = hanging ? (unit(rng) * 1.4 - 0.3) * height - 0.2 * span : margin + unit(rng) * (height - span - 2 * margin);
        const code_map map = make_map(rng, n, px, ox, oy, trial % 4 != 0);
        const std::size_t modules = static_cast<std::size_t>(n) * n;
        std::vector<float> want_values(modules, -1.0f), got_values(modules, -2.0f);
        std::vector<std::uint8_t> want_valid(modules, 7), got_valid(modules, 9);
        const int want = qrplate::core::sample_code(plan, img.view, map, px, want_values.data(), want_valid.data());
        const int got = qrplate::scan::sample_code_fast(plan, img.view, map, px, got_values.data(), got_valid.data());
        ASSERT_EQ(got, want) << "v" << version << " " << px << " px/module, trial " << trial;
        ASSERT_EQ(got_valid, want_valid) << "v" << version << " " << px << " px/module, trial " << trial;
        for (std::size_t k = 0; k < modules; ++k) {
          std::uint32_t a, b;
          std::memcpy(&a, &got_values[k], 4);
          std::memcpy(&b, &want_values[k], 4);
          ASSERT_EQ(a, b) << "module " << k << " of v" << version << " at " << px << " px/module, trial " << trial
                          << ": " << got_values[k] << " vs " << want_values[k];
        }
        ++codes;
        if (want == static_cast<int>(modules)) ++whole;
        if (want > 0 && want < static_cast<int>(modules)) ++partial;
      }
    }
  }
  // Both paths of the fast sampler ran: codes wholly inside, and codes cut by an edge.
  EXPECT_GT(whole, codes / 2) << whole << " of " << codes;
  EXPECT_GT(partial, codes / 5) << partial << " of " << codes;
}

// Codes across 2 to 4 images (tiles side by side, each with its own map of the code, a pixel or
// two apart as registration leaves them): the fast path's values, valid flags and source images
// are the reference's (core::sample_across_module), bit for bit, and so is the outcome of reading
// the code.
TEST(FastSampling, AcrossTilesSameBitsAsTheReference)
{
  if (!qrplate::scan::avx2_fast_paths_available()) GTEST_SKIP() << "no AVX2 path on this build or CPU: the reference runs";
  std::mt19937_64 rng(20261126);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto want_ws = std::make_unique<qrplate::core::read_across_workspace>();
  auto got_ws = std::make_unique<qrplate::core::read_across_workspace>();
  std::size_t mixed = 0, trials = 0;
  for (int version : {2, 10, 40}) {
    const qrplate::core::version_plan& plan = qrplate::host::version_plan_for(version, qrplate::ecc_level::L);
    const int n = plan.size;
    for (double px : {2.5, 3.0, 4.0}) {
      for (int trial = 0; trial < 8; ++trial) {
        const int count = 2 + trial % 3;
        const double span = n * px;
        std::vector<random_image> images;
        std::vector<code_map> maps;
        qrplate::core::gray_view views[qrplate::core::max_across];
        // Tile i shows the code's columns from a cut onwards (or up to it): each image holds part.
        for (int i = 0; i < count; ++i) {
          const int width = static_cast<int>(span * (0.4 + 0.5 * unit(rng))) + 16;
          const int height = static_cast<int>(span * 1.3) + 16;
          images.push_back(make_image(rng, width, height, i % 2 ? 8 : 16));
          const double ox = i % 2 ? width - span * (0.3 + 0.7 * unit(rng)) : -span * 0.6 * unit(rng);
          maps.push_back(make_map(rng, n, px, ox, 0.1 * span + 2 * unit(rng), trial % 4 != 0));
        }
        for (int i = 0; i < count; ++i) views[i] = images[i].view;
        const double reach = qrplate::core::sample_reach(px);
        for (int k = 0; k < n * n; ++k) qrplate::core::sample_across_module(views, maps.data(), count, px, reach, n, k, *want_ws);
        std::memset(got_ws->values, 0xa5, sizeof got_ws->values);
        qrplate::scan::sample_across_fast(views, maps.data(), count, px, n, *got_ws);
        const std::size_t cells = static_cast<std::size_t>(n) * n;
        ASSERT_EQ(std::memcmp(got_ws->valid, want_ws->valid, cells), 0) << "v" << version << " " << px << " trial " << trial;
        ASSERT_EQ(std::memcmp(got_ws->source, want_ws->source, cells), 0) << "v" << version << " " << px << " trial " << trial;
        ASSERT_EQ(std::memcmp(got_ws->values, want_ws->values, cells * sizeof(float)), 0)
            << "v" << version << " " << px << " trial " << trial;
        std::size_t from_later = 0;
        for (std::size_t k = 0; k < cells; ++k) from_later += want_ws->valid[k] && want_ws->source[k] > 0;
        mixed += from_later > 0 && from_later < cells;
        ++trials;
        // The whole read: the same outcome and bytes.
        std::vector<std::uint8_t> want_bytes(qrplate::spec::max_data_codewords), got_bytes(want_bytes.size());
        const qrplate::core::code_outcome a =
            qrplate::core::read_code_across(plan, views, maps.data(), count, px, 64, want_bytes.data(), *want_ws);
        const qrplate::core::code_outcome b =
            qrplate::scan::read_code_across_fast(plan, views, maps.data(), count, px, 64, got_bytes.data(), *got_ws);
        EXPECT_EQ(a.result.status, b.result.status);
        EXPECT_EQ(a.levels.known, b.levels.known);
        EXPECT_EQ(std::memcmp(&a.snr, &b.snr, sizeof a.snr), 0);
        EXPECT_EQ(want_bytes, got_bytes);
      }
    }
  }
  // Most codes were split between images (the case this path is for).
  EXPECT_GT(mixed, trials / 2) << mixed << " of " << trials;
}

// threshold_symbol_fast thresholds as core::threshold_symbol does, bit for bit: codes of every
// width class (the last word of a row ends in a column the four-wide loop leaves to its tail),
// both polarities, a brightness slope, noise from none to more than the contrast (confidences
// capped at 255), every module sampled (valid null), a random scatter sampled, and one tile's
// part of a code (a block of rows and columns, as finish_code_across thresholds it).
TEST(FastSampling, ThresholdingSameBitsAsTheReference)
{
  if (!qrplate::scan::avx2_fast_paths_available()) GTEST_SKIP() << "no AVX2 path on this build or CPU: the reference runs";
  std::mt19937_64 rng(20261127);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> gauss(0.0, 1.0);
  std::size_t solved = 0, capped = 0, trials = 0;
  for (int version : {1, 2, 7, 10, 17, 25, 40}) {
    const qrplate::core::version_plan& plan = qrplate::host::version_plan_for(version, qrplate::ecc_level::M);
    const int n = plan.size, w = plan.words;
    const std::size_t cells = static_cast<std::size_t>(n) * n;
    std::vector<std::uint8_t> known(cells, 0);
    for (int q = 0; q < plan.known_count; ++q) known[plan.known[q]] = 1;
    for (int trial = 0; trial < 24; ++trial) {
      const double light = 20000 + 20000 * unit(rng), contrast = (trial % 2 ? 1 : -1) * (500 + 8000 * unit(rng));
      const double slope_x = 3000 * (unit(rng) - 0.5), slope_y = 3000 * (unit(rng) - 0.5);
      const double noise = trial % 6 == 0 ? 0.0 : contrast * (trial % 3 == 0 ? 0.9 : 0.2) * unit(rng);
      std::vector<float> values(cells);
      for (int r = 0; r < n; ++r)
        for (int c = 0; c < n; ++c) {
          const std::size_t k = static_cast<std::size_t>(r) * n + c;
          const bool dark = known[k] ? qrplate::core::get_bit(plan.base + r * w, c) : rng() % 2 == 1;
          values[k] = static_cast<float>(light + slope_x * c / n + slope_y * r / n + (dark ? contrast : 0.0) +
                                         noise * gauss(rng));
        }
      // Every eighth trial flat (no contrast): nothing solved, all light with confidence 0.
      if (trial % 8 == 7) std::fill(values.begin(), values.end(), 1234.5f);
      std::vector<std::uint8_t> valid(cells, 1);
      const int kind = trial % 4;  // 0: valid null, 1: all sampled, 2: a scatter, 3: a part
      const int r0 = static_cast<int>(rng() % n), c0 = static_cast<int>(rng() % n);
      for (int r = 0; r < n; ++r)
        for (int c = 0; c < n; ++c) {
          const std::size_t k = static_cast<std::size_t>(r) * n + c;
          if (kind == 2) valid[k] = rng() % 5 != 0;
          if (kind == 3) valid[k] = (r >= r0 / 2) && (c >= c0 / 2) && (r < (n + r0) / 2 + 4);
        }
      const std::uint8_t* v = kind == 0 ? nullptr : valid.data();
      std::vector<std::uint64_t> want_modules(static_cast<std::size_t>(n) * w, 0x5555), got_modules(want_modules.size(), 0xaaaa);
      std::vector<std::uint8_t> want_conf(cells, 17), got_conf(cells, 71);
      const qrplate::core::symbol_levels want =
          qrplate::core::threshold_symbol(plan, values.data(), v, want_modules.data(), want_conf.data());
      const qrplate::core::symbol_levels got =
          qrplate::scan::threshold_symbol_fast(plan, values.data(), v, got_modules.data(), got_conf.data());
      SCOPED_TRACE("v" + std::to_string(version) + " trial " + std::to_string(trial));
      ASSERT_EQ(got_modules, want_modules);
      ASSERT_EQ(got_conf, want_conf);
      EXPECT_EQ(std::memcmp(&got.dark, &want.dark, sizeof want.dark), 0);
      EXPECT_EQ(std::memcmp(&got.light, &want.light, sizeof want.light), 0);
      EXPECT_EQ(std::memcmp(&got.noise, &want.noise, sizeof want.noise), 0);
      EXPECT_EQ(got.known, want.known);
      EXPECT_EQ(got.known_wrong, want.known_wrong);
      EXPECT_EQ(got.ok, want.ok);
      solved += want.ok;
      capped += std::count(want_conf.begin(), want_conf.end(), std::uint8_t{255}) > 0;
      ++trials;
    }
  }
  // The thresholding itself ran (not only the unsolved case), and the cap was reached.
  EXPECT_GT(solved, trials / 2) << solved << " of " << trials;
  EXPECT_GT(capped, trials / 4) << capped << " of " << trials;
}

// core::measure_code_map compiled for AVX2 gives the reference's map bit for bit: synthetic codes
// (v5-M, v10-M, v25-L at 2.5-4 px/module, rotated), the tile's pose off by a fraction of a module
// so that the offsets are real, on a confirmed tile and on one whose finders are searched wide.
TEST(FastSampling, MeasuredCodeMapsAreTheReferences)
{
  if (!qrplate::scan::avx2_fast_paths_available()) GTEST_SKIP() << "no AVX2 path on this build or CPU: the reference runs";
  struct scene_case {
    int version;
    qrplate::ecc_level ecc;
    double px;
  };
  std::size_t anchored = 0, maps = 0;
  for (const scene_case& sc_case : {scene_case{5, qrplate::ecc_level::M, 2.5}, scene_case{10, qrplate::ecc_level::M, 3.0},
                                    scene_case{25, qrplate::ecc_level::L, 4.0}}) {
    const qrplate::scan::synthetic_codes sc =
        qrplate::scan::make_synthetic_codes(sc_case.version, sc_case.ecc, sc_case.px, 3, 3, 0.7, 2500, 0x5eed);
    qrplate::sim::gray_image img;
    img.width = static_cast<std::uint32_t>(sc.width);
    img.height = static_cast<std::uint32_t>(sc.height);
    img.bits = 16;
    img.pixels = sc.pixels;
    std::vector<std::uint32_t> sums;
    const int shift = qrplate::scan::build_integral(img, sc.module_px, sums);
    qrplate::core::tile_anchor_view tile{};
    tile.iv = qrplate::core::integral_view{sums.data(), sc.width, sc.height, shift};
    tile.to_pixel = sc.to_pixel;
    tile.to_pixel.a[0] += 0.4 * sc.module_px;
    tile.to_pixel.a[3] -= 0.3 * sc.module_px;
    tile.module_px = sc.module_px;
    tile.contrast = qrplate::scan::estimate_contrast(tile.iv, sc.module_px);
    tile.polarity = 1;
    const int pitch = sc.plan->size + 4;
    for (bool wide : {false, true}) {
      if (wide) {
        tile.anchor_search_px = 4 * qrplate::core::anchor_radius(sc.module_px);
        tile.finder_strength = static_cast<float>(0.8 * tile.contrast);
      }
      // Every code of the scene, and origins between codes (few anchors, or none).
      for (int i = 0; i < 12; ++i) {
        const double x0 = (i % 3) * pitch + (i >= 9 ? pitch / 2 : 0), y0 = ((i / 3) % 3) * pitch;
        auto want = std::make_unique<code_map>(), got = std::make_unique<code_map>();
        // Different leftovers in each, so that a field one of them leaves unwritten shows.
        for (auto [m, fill] : {std::pair<code_map*, float>{want.get(), 1.5f}, {got.get(), -2.5f}}) {
          for (auto& row : m->du) std::fill(std::begin(row), std::end(row), fill);
          for (auto& row : m->dv) std::fill(std::begin(row), std::end(row), fill);
          m->nodes = m->anchors = static_cast<int>(fill);
        }
        qrplate::core::measure_code_map(tile, *sc.plan, x0, y0, *want);
        qrplate::scan::measure_code_map_fast(tile, *sc.plan, x0, y0, *got);
        SCOPED_TRACE("v" + std::to_string(sc_case.version) + " code " + std::to_string(i) + (wide ? " wide" : ""));
        ASSERT_EQ(std::memcmp(got->base.a, want->base.a, sizeof want->base.a), 0);
        ASSERT_EQ(got->anchors, want->anchors);
        if (want->anchors > 0) {
          ASSERT_EQ(got->nodes, want->nodes);  // with no anchors the grid is not set
        }
        // The nodes in use (apply() reads no others).
        const int used = want->anchors > 0 ? want->nodes : 0;
        for (int r = 0; r < used; ++r) {
          ASSERT_EQ(std::memcmp(got->du[r], want->du[r], sizeof(float) * static_cast<std::size_t>(used)), 0) << r;
          ASSERT_EQ(std::memcmp(got->dv[r], want->dv[r], sizeof(float) * static_cast<std::size_t>(used)), 0) << r;
        }
        anchored += want->anchors > 0;
        ++maps;
      }
    }
  }
  EXPECT_GT(anchored, maps / 2) << anchored << " of " << maps << " maps had anchors";
}

// At 2 px/module and below the reference itself runs (one sample, or the tent mean).
TEST(FastSampling, LowResolutionsGoToTheReference)
{
  std::mt19937_64 rng(7);
  const qrplate::core::version_plan& plan = qrplate::host::version_plan_for(5, qrplate::ecc_level::L);
  const int n = plan.size;
  for (double px : {1.3, 1.8, 2.0}) {
    random_image img = make_image(rng, static_cast<int>(n * px) + 20, static_cast<int>(n * px) + 20, 16);
    const code_map map = make_map(rng, n, px, 10, 10, true);
    std::vector<float> a(n * n), b(n * n);
    std::vector<std::uint8_t> va(n * n), vb(n * n);
    EXPECT_EQ(qrplate::scan::sample_code_fast(plan, img.view, map, px, a.data(), va.data()),
              qrplate::core::sample_code(plan, img.view, map, px, b.data(), vb.data()));
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << px;
    EXPECT_EQ(va, vb) << px;
  }
}

}  // namespace
