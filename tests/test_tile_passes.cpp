// The passes of tile registration over every pixel (core/tile_passes.hpp): the grid scan of the
// finder template against core::finder_response (the plain template, with its own rounding and
// clipping) at every position, the anchor searches' probe (core::pattern_probe) likewise, and
// the CUDA passes (host::tile_passes_cuda) against the CPU's: the same integral image, the same
// contrast, the same finder candidates. Images: codes drawn at
// a known pose (scan/synthetic_codes) and plain noise. The CUDA test is skipped where no CUDA
// device (or no CUDA build) exists.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "qrplate/core/anchor_confirm.hpp"
#include "qrplate/core/sample_symbol.hpp"
#include "qrplate/core/tile_passes.hpp"
#include "scan/synthetic_codes.hpp"
#include "scan/tile_registration.hpp"
#if QRPLATE_WITH_CUDA
#include "cuda/encode_cuda.hpp"
#include "cuda/tile_passes_cuda.hpp"
#endif

namespace {

using namespace qrplate;

struct test_image {
  sim::gray_image img;
  double module_px = 0;
};

// Codes at module_px (rotated, noisy), and an odd-sized image of uniform noise.
std::vector<test_image> images()
{
  std::vector<test_image> out;
  for (const double m : {1.6, 3.0, 4.5}) {
    const scan::synthetic_codes c = scan::make_synthetic_codes(10, ecc_level::M, m, 3, 2, 0.6, 2500, 11);
    test_image t;
    t.img.width = static_cast<std::uint32_t>(c.width);
    t.img.height = static_cast<std::uint32_t>(c.height);
    t.img.bits = 16;
    t.img.pixels = c.pixels;
    t.module_px = m;
    out.push_back(std::move(t));
  }
  test_image noise;
  noise.img.width = 301;
  noise.img.height = 187;
  noise.img.bits = 8;
  std::mt19937_64 rng(3);
  noise.img.pixels.resize(301 * 187);
  for (auto& v : noise.img.pixels) v = static_cast<std::uint16_t>(rng() % 256);
  noise.module_px = 2.2;
  out.push_back(std::move(noise));
  return out;
}

core::integral_view view_of(const sim::gray_image& img, const std::vector<std::uint32_t>& sums, int shift)
{
  return {sums.data(), static_cast<int>(img.width), static_cast<int>(img.height), shift};
}

// The grid covers exactly the positions the template fits inside with its margin, and its
// response is core::finder_response's, bit for bit.
TEST(TilePasses, FinderScanIsTheTemplateResponse)
{
  for (const test_image& t : images()) {
    SCOPED_TRACE(t.module_px);
    std::vector<std::uint32_t> sums;
    const int shift = scan::build_integral(t.img, t.module_px, sums);
    const core::integral_view iv = view_of(t.img, sums, shift);
    const core::finder_scan_plan plan = core::finder_scan_plan::make(iv, t.module_px);
    ASSERT_GT(plan.positions(), 0u);
    EXPECT_EQ(plan.x(plan.columns - 1) < iv.width - plan.margin, true);
    EXPECT_GE(plan.x(plan.columns - 1) + plan.step, iv.width - plan.margin);
    EXPECT_GE(plan.y(plan.rows - 1) + plan.step, iv.height - plan.margin);
    std::size_t strong = 0;
    for (int j = 0; j < plan.rows; ++j)
      for (int i = 0; i < plan.columns; ++i) {
        const float fast = plan.response(iv, i, j);
        const float plain = core::finder_response(iv, plan.x(i), plan.y(j), t.module_px);
        ASSERT_EQ(fast, plain) << i << "," << j;
        strong += fast > 5000.0f;
      }
    if (t.img.bits == 16) {
      EXPECT_GT(strong, 0u);  // the codes' finders are in the grid
    }
  }
}

// core::pattern_probe (the anchor searches' hoisted templates) is finder_response and
// alignment_response at every whole pixel, inside, near and past the image's edges.
TEST(TilePasses, PatternProbeIsTheTemplateResponse)
{
  std::mt19937_64 rng(9);
  for (const test_image& t : images()) {
    SCOPED_TRACE(t.module_px);
    std::vector<std::uint32_t> sums;
    const int shift = scan::build_integral(t.img, t.module_px, sums);
    const core::integral_view iv = view_of(t.img, sums, shift);
    const core::pattern_probe<4> finder(iv, t.module_px);
    const core::pattern_probe<3> alignment(iv, t.module_px);
    for (int trial = 0; trial < 4000; ++trial) {
      const int x = static_cast<int>(rng() % static_cast<std::uint64_t>(iv.width + 40)) - 20;
      const int y = static_cast<int>(rng() % static_cast<std::uint64_t>(iv.height + 40)) - 20;
      ASSERT_EQ(finder(x, y), core::finder_response(iv, x, y, t.module_px)) << "finder " << x << "," << y;
      ASSERT_EQ(alignment(x, y), core::alignment_response(iv, x, y, t.module_px)) << "alignment " << x << "," << y;
    }
  }
}

#if QRPLATE_WITH_CUDA
// The CPU's finder candidates as the scan lists them: grid positions, row-major, per sign.
void cpu_candidates(const core::integral_view& iv, double m, float threshold, std::vector<std::uint32_t> out[2])
{
  const core::finder_scan_plan plan = core::finder_scan_plan::make(iv, m);
  for (int j = 0; j < plan.rows; ++j)
    for (int i = 0; i < plan.columns; ++i) {
      const float r = plan.response(iv, i, j);
      const auto p = static_cast<std::uint32_t>(j * plan.columns + i);
      if (r >= threshold) out[0].push_back(p);
      if (-r >= threshold) out[1].push_back(p);
    }
}
#endif

TEST(TilePasses, CudaPassesAreTheCpuPasses)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  host::tile_passes_cuda gpu;  // one instance for every image: buffers grow and shrink across them
  for (const test_image& t : images()) {
    SCOPED_TRACE(t.module_px);
    std::vector<std::uint32_t> cpu_sums;
    const int shift = scan::build_integral(t.img, t.module_px, cpu_sums);
    const double cpu_contrast = scan::estimate_contrast(view_of(t.img, cpu_sums, shift), t.module_px);
    std::vector<std::uint32_t> gpu_sums(cpu_sums.size(), 0xdeadbeef);
    const double gpu_contrast = gpu.integral_and_contrast(t.img.pixels.data(), static_cast<int>(t.img.width),
                                                          static_cast<int>(t.img.height), shift, t.module_px,
                                                          gpu_sums.data());
    EXPECT_EQ(shift, scan::integral_shift(t.img.bits, t.module_px));
    ASSERT_TRUE(gpu_sums == cpu_sums);
    EXPECT_EQ(gpu_contrast, cpu_contrast);
    const auto threshold = static_cast<float>(0.3 * cpu_contrast);
    std::vector<std::uint32_t> expected[2], got[2];
    cpu_candidates(view_of(t.img, cpu_sums, shift), t.module_px, threshold, expected);
    gpu.finder_candidates(t.module_px, threshold, 0, got);
    EXPECT_TRUE(got[0] == expected[0]) << got[0].size() << " vs " << expected[0].size();
    EXPECT_TRUE(got[1] == expected[1]) << got[1].size() << " vs " << expected[1].size();
    gpu.finder_candidates(t.module_px, threshold, -1, got);  // one sign only
    EXPECT_TRUE(got[0].empty());
    EXPECT_TRUE(got[1] == expected[1]);
  }
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

// A kept tile (tile_passes_cuda::keep_tile, what the scan reader's GPU reads use) holds its own
// pixels and integral image after the passes went on to other tiles, of other sizes.
TEST(TilePasses, KeptTilesKeepTheirPixelsAndIntegral)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  host::tile_passes_cuda gpu;
  EXPECT_EQ(gpu.keep_tile(), nullptr);  // nothing passed yet
  std::vector<std::shared_ptr<const host::device_tile>> kept;
  std::vector<std::vector<std::uint32_t>> cpu_sums;
  const std::vector<test_image> all = images();
  for (const test_image& t : all) {
    cpu_sums.emplace_back();
    const int shift = scan::build_integral(t.img, t.module_px, cpu_sums.back());
    std::vector<std::uint32_t> sums(cpu_sums.back().size());
    gpu.integral_and_contrast(t.img.pixels.data(), static_cast<int>(t.img.width), static_cast<int>(t.img.height),
                              shift, t.module_px, sums.data());
    kept.push_back(gpu.keep_tile());
    ASSERT_NE(kept.back(), nullptr);
  }
  // Passes over another image reuse nothing that was kept.
  const test_image& first = all.front();
  std::vector<std::uint32_t> scratch(cpu_sums.front().size());
  gpu.integral_and_contrast(first.img.pixels.data(), static_cast<int>(first.img.width),
                            static_cast<int>(first.img.height), 0, first.module_px, scratch.data());
  for (std::size_t k = 0; k < kept.size(); ++k) {
    const test_image& t = all[k];
    std::vector<std::uint16_t> pixels(t.img.pixels.size(), 0xbeef);
    std::vector<std::uint32_t> sums(cpu_sums[k].size(), 0xdeadbeef);
    host::download_tile(*kept[k], pixels.data(), sums.data());
    EXPECT_TRUE(pixels == t.img.pixels) << k;
    EXPECT_TRUE(sums == cpu_sums[k]) << k;
  }
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

// Registration's confirm step (core::confirm_anchor) on the GPU, over a kept tile, answers as the
// CPU does: anchors at the codes' finders (found, sub-pixel positions compared exactly), the same
// points taken for alignment patterns, random points (mostly not found) and points near and past
// the edges (not predicted), under a slightly rotated pose, for both signs.
TEST(TilePasses, CudaConfirmsAnchorsAsTheCpu)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  host::tile_passes_cuda gpu;
  std::mt19937_64 rng(21);
  for (const test_image& t : images()) {
    SCOPED_TRACE(t.module_px);
    std::vector<std::uint32_t> sums;
    const int shift = scan::build_integral(t.img, t.module_px, sums);
    const core::integral_view iv = view_of(t.img, sums, shift);
    std::vector<std::uint32_t> scratch(sums.size());
    const double contrast = gpu.integral_and_contrast(t.img.pixels.data(), static_cast<int>(t.img.width),
                                                      static_cast<int>(t.img.height), shift, t.module_px, scratch.data());
    const std::shared_ptr<const host::device_tile> kept = gpu.keep_tile();
    ASSERT_NE(kept, nullptr);
    // Plate module coordinates = pixels / m, turned by 0.2 degrees about the origin.
    const double m = t.module_px, a = 0.2 * 3.14159265358979 / 180;
    core::affine_map to_pixel;
    to_pixel.a[1] = m * std::cos(a), to_pixel.a[2] = -m * std::sin(a);
    to_pixel.a[4] = m * std::sin(a), to_pixel.a[5] = m * std::cos(a);
    core::affine_map to_plate;
    ASSERT_TRUE(to_pixel.inverse(to_plate));
    std::vector<core::expected_anchor> anchors;
    std::vector<std::uint32_t> found[2];
    cpu_candidates(iv, m, static_cast<float>(0.3 * contrast), found);
    const core::finder_scan_plan plan = core::finder_scan_plan::make(iv, m);
    for (const std::uint32_t p : found[0]) {
      if (anchors.size() > 400) break;
      double x, y;
      to_plate.apply(plan.x(static_cast<int>(p % static_cast<std::uint32_t>(plan.columns))) + 0.4,
                     plan.y(static_cast<int>(p / static_cast<std::uint32_t>(plan.columns))) - 0.3, x, y);
      anchors.push_back({x, y, true});
      anchors.push_back({x, y, false});
    }
    for (int k = 0; k < 300; ++k) {
      const double u = static_cast<double>(rng() % static_cast<std::uint64_t>(t.img.width + 60)) - 30;
      const double v = static_cast<double>(rng() % static_cast<std::uint64_t>(t.img.height + 60)) - 30;
      double x, y;
      to_plate.apply(u + 0.25, v + 0.75, x, y);
      anchors.push_back({x, y, (k & 1) != 0});
    }
    for (const float sign : {1.0f, -1.0f}) {
      const float min_response = static_cast<float>(0.5 * contrast);
      std::vector<core::anchor_answer> got(anchors.size());
      gpu.confirm_anchors(*kept, to_pixel, anchors.data(), anchors.size(), m, sign, min_response, got.data());
      const core::pattern_probe<4> finder(iv, m);
      const core::pattern_probe<3> alignment(iv, m);
      std::size_t predicted = 0, confirmed = 0;
      for (std::size_t i = 0; i < anchors.size(); ++i) {
        const core::anchor_answer want = core::confirm_anchor(iv, to_pixel, anchors[i], m, sign, min_response, finder, alignment);
        ASSERT_EQ(got[i].predicted, want.predicted) << i;
        ASSERT_EQ(got[i].found, want.found) << i;
        ASSERT_EQ(got[i].u, want.u) << i;
        ASSERT_EQ(got[i].v, want.v) << i;
        predicted += want.predicted;
        confirmed += want.found;
      }
      EXPECT_GT(predicted, 0u);
      EXPECT_LT(predicted, anchors.size());  // the edge points are not predicted
      if (sign > 0 && t.img.bits == 16) {
        EXPECT_GT(confirmed, 0u);  // the codes' finders answer
      }
    }
  }
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

}  // namespace
