// The passes of tile registration over every pixel (core/tile_passes.hpp): the grid scan of the
// finder template against core::finder_response (the plain template, with its own rounding and
// clipping) at every position, the anchor searches' probe (core::pattern_probe) likewise, and
// the CUDA passes (host::tile_passes_cuda) against the CPU's: the same integral image, the same
// contrast, the same finder candidates and responses, the same refined detections. Images: codes drawn at
// a known pose (scan/synthetic_codes) and plain noise. The CUDA test is skipped where no CUDA
// device (or no CUDA build) exists.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "qrplate/core/anchor_confirm.hpp"
#include "qrplate/core/pose_vote.hpp"
#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/sample_symbol.hpp"
#include "qrplate/core/stitch_correlation.hpp"
#include "qrplate/core/tile_passes.hpp"
#include "qrplate/error.hpp"
#include "qrplate/host_memory.hpp"
#include "cuda/narrow_samples.hpp"
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

// build_integral (each row's running sum eight pixels at a time) is build_integral_reference's
// table entry for entry: random 8- and 16-bit images of widths 1-40 and a few wider (tails of
// every length), module sizes from 1.5 to 150 px (shifts 0 to 5), into fresh and into
// recycled buffers; and the table's entries are the pixels' sums (a box of one pixel is it).
TEST(TilePasses, IntegralImageIsTheReferences)
{
  std::mt19937_64 rng(17);
  std::vector<std::uint32_t> want, got(7, 0xdeadbeef);
  int shifts_seen = 0, max_shift = 0;
  for (int trial = 0; trial < 120; ++trial) {
    sim::gray_image img;
    img.width = static_cast<std::uint32_t>(trial < 40 ? trial + 1 : 41 + rng() % 600);
    img.height = static_cast<std::uint32_t>(1 + rng() % 24);
    img.bits = trial % 2 ? 16 : 8;
    img.pixels.resize(static_cast<std::size_t>(img.width) * img.height);
    for (auto& v : img.pixels) v = static_cast<std::uint16_t>(img.bits == 8 ? rng() % 256 : rng() % 65536);
    const double m = trial % 5 == 4 ? 150.0 : 1.5 + 0.1 * static_cast<double>(rng() % 100);
    SCOPED_TRACE(::testing::Message() << img.width << " x " << img.height << ", " << img.bits << " bits, " << m);
    const int want_shift = scan::build_integral_reference(img, m, want);
    const int got_shift = scan::build_integral(img, m, got);  // recycled (other sizes, stale entries)
    ASSERT_EQ(got_shift, want_shift);
    ASSERT_EQ(got, want);
    shifts_seen += want_shift > 0;
    max_shift = std::max(max_shift, want_shift);
    // A pixel is its one-pixel box, shifted (the reference's sums, checked against the image).
    const std::size_t w1 = img.width + 1;
    const std::size_t x = rng() % img.width, y = rng() % img.height;
    const std::uint32_t box = want[(y + 1) * w1 + x + 1] - want[y * w1 + x + 1] - want[(y + 1) * w1 + x] + want[y * w1 + x];
    EXPECT_EQ(box, static_cast<std::uint32_t>(img.pixels[y * img.width + x] >> want_shift));
  }
  EXPECT_GT(shifts_seen, 10);  // the shifted paths ran, up to large shifts
  EXPECT_GE(max_shift, 4);
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

// narrow_samples (a tile's chunk on its way up as bytes) is the byte copy exactly when every sample
// is below 256, at sizes around its 4096-sample blocks; one sample of 256 or more anywhere, even
// in the last sample, makes it refuse.
TEST(TilePasses, NarrowSamplesCopiesBytesOnlyWhenEverySampleFits)
{
  std::mt19937_64 rng(41);
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4095}, std::size_t{4096}, std::size_t{4097},
                              std::size_t{12289}}) {
    SCOPED_TRACE(n);
    std::vector<std::uint16_t> in(n);
    for (auto& v : in) v = static_cast<std::uint16_t>(rng() % 256);
    if (n > 0) in[rng() % n] = 255;
    std::vector<std::uint8_t> out(n + 1, 0x5a);
    EXPECT_TRUE(host::narrow_samples(in.data(), n, out.data()));
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], in[i]) << i;
    EXPECT_EQ(out[n], 0x5a);  // nothing past the end
    if (n == 0) continue;
    for (const std::size_t at : {std::size_t{0}, n / 2, n - 1, static_cast<std::size_t>(rng() % n)}) {
      for (const std::uint16_t high : {std::uint16_t{256}, std::uint16_t{0x8000}, std::uint16_t{0xffff}}) {
        std::vector<std::uint16_t> wide = in;
        wide[at] = high;
        EXPECT_FALSE(host::narrow_samples(wide.data(), n, out.data())) << at << " " << high;
      }
    }
  }
}

#if QRPLATE_WITH_CUDA
// What the link should carry for a tile sent in chunks of `chunk` samples: 1 byte a sample for the
// chunks whose samples are all below 256, 2 for the others.
std::uint64_t expected_upload_bytes(const std::vector<std::uint16_t>& pixels, std::size_t chunk)
{
  std::uint64_t bytes = 0;
  for (std::size_t a = 0; a < pixels.size(); a += chunk) {
    const std::size_t b = std::min(pixels.size(), a + chunk);
    const std::uint16_t top = *std::max_element(pixels.begin() + static_cast<std::ptrdiff_t>(a),
                                                pixels.begin() + static_cast<std::ptrdiff_t>(b));
    bytes += (b - a) * (top < 256 ? 1 : 2);
  }
  return bytes;
}
#endif

// A tile goes up through the pinned staging buffers chunk by chunk, as bytes where a chunk's
// samples fit and as 16-bit samples where they do not: with small staging buffers (many chunks,
// each slot refilled many times) the device holds every image exactly (pixels and integral, also
// for an 8-bit image with a 16-bit band across it), and the link carried 1 byte a sample for the
// 8-bit chunks.
TEST(TilePasses, CudaUploadsEightBitChunksAsBytes)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  constexpr std::size_t chunk = 1000;
  host::tile_passes_cuda gpu(chunk);
  std::vector<test_image> all = images();
  test_image banded = all.back();  // the 8-bit noise image, with a band of 16-bit samples
  banded.img.bits = 16;
  for (std::size_t i = 20000; i < 26000; ++i) banded.img.pixels[i] = static_cast<std::uint16_t>(banded.img.pixels[i] * 257);
  all.push_back(banded);
  int eight_bit_images = 0;
  for (const test_image& t : all) {
    SCOPED_TRACE(t.module_px);
    eight_bit_images += t.img.bits == 8;
    std::vector<std::uint32_t> cpu_sums;
    const int shift = scan::build_integral(t.img, t.module_px, cpu_sums);
    const std::uint64_t before = gpu.uploaded_bytes();
    std::vector<std::uint32_t> sums(cpu_sums.size(), 0xdeadbeef);
    gpu.integral_and_contrast(t.img.pixels.data(), static_cast<int>(t.img.width), static_cast<int>(t.img.height),
                              shift, t.module_px, sums.data());
    EXPECT_EQ(gpu.uploaded_bytes() - before, expected_upload_bytes(t.img.pixels, chunk));
    EXPECT_TRUE(sums == cpu_sums);
    const std::shared_ptr<const host::device_tile> kept = gpu.keep_tile();
    ASSERT_NE(kept, nullptr);
    std::vector<std::uint16_t> pixels(t.img.pixels.size(), 0xbeef);
    host::download_tile(*kept, pixels.data(), sums.data());
    EXPECT_TRUE(pixels == t.img.pixels);
    if (t.img.bits == 8) {
      EXPECT_EQ(gpu.uploaded_bytes() - before, t.img.pixels.size());
      // With the file's bytes given (sim::gray_image::bytes), those go up, a byte each, and the
      // 16-bit samples are not read: bytes that differ from them (each + 1, mod 256) are what
      // the device holds after.
      std::vector<std::uint8_t> bytes(t.img.pixels.size());
      for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(t.img.pixels[i] + 1);
      const std::uint64_t before_bytes = gpu.uploaded_bytes();
      gpu.integral_and_contrast(t.img.pixels.data(), static_cast<int>(t.img.width), static_cast<int>(t.img.height),
                                shift, t.module_px, nullptr, bytes.data());
      EXPECT_EQ(gpu.uploaded_bytes() - before_bytes, bytes.size());
      const std::shared_ptr<const host::device_tile> from_bytes = gpu.keep_tile();
      ASSERT_NE(from_bytes, nullptr);
      host::download_tile(*from_bytes, pixels.data(), sums.data());
      for (std::size_t i = 0; i < bytes.size(); ++i) ASSERT_EQ(pixels[i], bytes[i]) << i;
      // The same bytes in pinned memory (as the scan reader reads 8-bit tiles with --backend cuda)
      // go by DMA from there, none through the staging, and arrive the same.
      host_array<std::uint8_t> pinned(host_memory::pinned);
      pinned.resize(bytes.size());
      ASSERT_EQ(pinned.memory(), host_memory::pinned);
      std::copy(bytes.begin(), bytes.end(), pinned.data());
      const std::uint64_t staged_before = gpu.staged_bytes();
      gpu.integral_and_contrast(t.img.pixels.data(), static_cast<int>(t.img.width), static_cast<int>(t.img.height),
                                shift, t.module_px, nullptr, pinned.data());
      EXPECT_EQ(gpu.staged_bytes(), staged_before);
      const std::shared_ptr<const host::device_tile> from_pinned = gpu.keep_tile();
      ASSERT_NE(from_pinned, nullptr);
      std::fill(pixels.begin(), pixels.end(), std::uint16_t{0xbeef});
      host::download_tile(*from_pinned, pixels.data(), sums.data());
      for (std::size_t i = 0; i < bytes.size(); ++i) ASSERT_EQ(pixels[i], bytes[i]) << i;
      const std::uint64_t staged_pageable = gpu.staged_bytes();
      gpu.integral_and_contrast(t.img.pixels.data(), static_cast<int>(t.img.width), static_cast<int>(t.img.height),
                                shift, t.module_px, nullptr, bytes.data());
      EXPECT_EQ(gpu.staged_bytes() - staged_pageable, bytes.size());  // pageable bytes: through the staging
    }
  }
  EXPECT_EQ(eight_bit_images, 1);
  EXPECT_THROW(host::tile_passes_cuda(0), qrplate::invalid_argument);
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

// The device's percentile search (tile_passes_cuda::contrast_of_histogram, what
// integral_and_contrast runs on its histogram) is core::contrast_from_histogram on histograms of
// every shape: a few crowded bins (ranks fall inside a bin, and on a bin's last box), boxes at bins
// 0 and 65535, all in one bin, spread thin, and the smallest count ranked (20).
TEST(TilePasses, CudaContrastPercentilesAreTheHistogramsOnTheCpu)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  host::tile_passes_cuda gpu;
  std::mt19937_64 rng(29);
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<std::uint32_t> histogram(65536, 0);
    std::size_t count = 0;
    const int shape = trial % 5;
    const std::size_t boxes = shape == 4 ? 20 : 20 + rng() % 200000;
    for (std::size_t k = 0; k < boxes; ++k) {
      std::size_t bin = 0;
      if (shape == 0) bin = 1000 * (rng() % 7);                      // a few crowded bins
      if (shape == 1) bin = rng() % 2 ? 0 : 65535;                   // the two ends
      if (shape == 2) bin = 31337;                                    // one bin
      if (shape == 3 || shape == 4) bin = rng() % 65536;              // spread thin
      ++histogram[bin];
      ++count;
    }
    SCOPED_TRACE(::testing::Message() << "shape " << shape << ", " << count << " boxes");
    EXPECT_EQ(gpu.contrast_of_histogram(histogram.data(), count), core::contrast_from_histogram(histogram.data(), count));
  }
  // 200 boxes, 10 in each of the bins 0, 2000, ..., 38000: lo = 10 is the first box of bin 2000,
  // hi = 189 the last box of bin 36000.
  std::vector<std::uint32_t> tens(65536, 0);
  for (int b = 0; b < 20; ++b) tens[static_cast<std::size_t>(b) * 2000] = 10;
  EXPECT_EQ(core::contrast_from_histogram(tens.data(), 200), 34000.0);
  EXPECT_EQ(gpu.contrast_of_histogram(tens.data(), 200), 34000.0);
  EXPECT_EQ(gpu.contrast_of_histogram(tens.data(), 19), 0.0);  // too few boxes to rank
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

// A kept tile (tile_passes_cuda::keep_tile, what the scan reader's GPU reads use) holds its own
// pixels and integral image after the passes went on to other tiles, of other sizes.
TEST(TilePasses, CudaKeptTilesKeepTheirPixelsAndIntegral)
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

// The refinement of finder detections (tile_passes_cuda::refine_detections, what registration
// runs on a kept tile) climbs to the points and responses the CPU's core::find_anchor gives:
// candidates of both signs, random points and points past the edges, and the candidates'
// responses from finder_candidates are the CPU scan's.
TEST(TilePasses, CudaRefinesDetectionsAsTheCpu)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  host::tile_passes_cuda gpu;
  std::mt19937_64 rng(23);
  for (const test_image& t : images()) {
    SCOPED_TRACE(t.module_px);
    const double m = t.module_px;
    std::vector<std::uint32_t> sums;
    const int shift = scan::build_integral(t.img, m, sums);
    const core::integral_view iv = view_of(t.img, sums, shift);
    const double contrast = gpu.integral_and_contrast(t.img.pixels.data(), static_cast<int>(t.img.width),
                                                      static_cast<int>(t.img.height), shift, m, nullptr);
    std::vector<std::uint32_t> positions[2], want[2];
    std::vector<float> responses[2];
    gpu.finder_candidates(m, static_cast<float>(0.3 * contrast), 0, positions, responses);
    const std::shared_ptr<const host::device_tile> kept = gpu.keep_tile();
    ASSERT_NE(kept, nullptr);
    cpu_candidates(iv, m, static_cast<float>(0.3 * contrast), want);
    const core::finder_scan_plan plan = core::finder_scan_plan::make(iv, m);
    const int step = std::max(1, static_cast<int>(std::lround(m / 2)));
    const core::pattern_probe<4> probe(iv, m);
    for (int k = 0; k < 2; ++k) {
      ASSERT_EQ(positions[k], want[k]);
      ASSERT_EQ(responses[k].size(), positions[k].size());
      std::vector<double> uv;
      std::vector<float> r;
      for (std::size_t q = 0; q < positions[k].size() && q < 300; ++q) {
        const int i = static_cast<int>(positions[k][q] % static_cast<std::uint32_t>(plan.columns));
        const int j = static_cast<int>(positions[k][q] / static_cast<std::uint32_t>(plan.columns));
        const float cpu = plan.response(iv, i, j);
        ASSERT_EQ(std::memcmp(&responses[k][q], &cpu, sizeof cpu), 0) << q;
        uv.push_back(plan.x(i)), uv.push_back(plan.y(j)), r.push_back(k == 0 ? cpu : -cpu);
      }
      for (int e = 0; e < 200; ++e) {
        uv.push_back(static_cast<double>(rng() % (t.img.width + 20)) - 10 + 0.25);
        uv.push_back(static_cast<double>(rng() % (t.img.height + 20)) - 10 - 0.25);
        r.push_back(0);
      }
      std::vector<double> want_uv = uv;
      std::vector<float> want_r = r;
      const int sign = k == 0 ? 1 : -1;
      const auto s = static_cast<float>(sign);
      for (std::size_t q = 0; q < want_r.size(); ++q)
        core::find_anchor([&](int px, int py) { return s * probe(px, py); }, want_uv[2 * q], want_uv[2 * q + 1], step,
                          -std::numeric_limits<float>::infinity(), &want_r[q]);
      gpu.refine_detections(*kept, m, sign, step, uv.data(), r.data(), r.size());
      for (std::size_t q = 0; q < r.size(); ++q) {
        ASSERT_EQ(uv[2 * q], want_uv[2 * q]) << q;
        ASSERT_EQ(uv[2 * q + 1], want_uv[2 * q + 1]) << q;
        ASSERT_EQ(std::memcmp(&r[q], &want_r[q], sizeof(float)), 0) << q;
      }
    }
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
      // Several poses in one launch (registration's candidates): each pose's answers are the
      // CPU's for that pose.
      std::vector<core::affine_map> poses(3, to_pixel);
      poses[1].a[0] += 2.5;
      poses[2].a[3] -= 3.25;
      poses[2].a[1] *= 1.01;
      std::vector<core::anchor_answer> batch(anchors.size() * poses.size());
      gpu.confirm_anchors(*kept, poses.data(), poses.size(), anchors.data(), anchors.size(), m, sign, min_response,
                          batch.data());
      for (std::size_t p = 0; p < poses.size(); ++p)
        for (std::size_t i = 0; i < anchors.size(); ++i) {
          const core::anchor_answer want = core::confirm_anchor(iv, poses[p], anchors[i], m, sign, min_response, finder, alignment);
          const core::anchor_answer& g = batch[p * anchors.size() + i];
          ASSERT_EQ(g.predicted, want.predicted) << p << " " << i;
          ASSERT_EQ(g.found, want.found) << p << " " << i;
          ASSERT_EQ(g.u, want.u) << p << " " << i;
          ASSERT_EQ(g.v, want.v) << p << " " << i;
        }
    }
  }
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

// A registration vote: detections scattered over a tile of ~300 modules, expected finders on a
// lattice (some detections on it, shifted by a stage error, the rest look-alikes), each
// detection's reachable finders, 11 rotations.
struct vote_case {
  core::pose_vote_grid grid;
  std::vector<double> points, finders, turns;  // (x, y) pairs; (cos, sin) per rotation
  std::vector<std::uint32_t> owner;            // per pair: its detection
  std::vector<std::size_t> begin;              // per detection: its first pair
  int rotations = 0;
};

vote_case make_vote_case(std::uint64_t seed)
{
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * static_cast<double>(rng() >> 11) / 9007199254740992.0; };
  vote_case v;
  const double search = 30;
  v.grid.cx = 150, v.grid.cy = 150, v.grid.search2 = search * search, v.grid.prior_modules = 15;
  v.grid.bins_half = static_cast<int>(std::ceil(search)) + 1;
  v.grid.bins_side = 2 * v.grid.bins_half + 2;
  std::vector<std::pair<double, double>> lattice;
  for (int r = -2; r < 14; ++r)
    for (int c = -2; c < 14; ++c) lattice.push_back({c * 25.0 + 3.5, r * 25.0 + 3.5});
  const double ex = uniform(-8, 8), ey = uniform(-8, 8);
  std::vector<std::pair<double, double>> dets;
  for (int k = 0; k < 60; ++k) {
    const auto& l = lattice[rng() % lattice.size()];
    dets.push_back(k % 3 ? std::make_pair(l.first - ex + uniform(-0.3, 0.3), l.second - ey + uniform(-0.3, 0.3))
                         : std::make_pair(uniform(0, 300), uniform(0, 300)));
  }
  for (std::size_t i = 0; i < dets.size(); ++i) {
    v.points.push_back(dets[i].first), v.points.push_back(dets[i].second);
    v.begin.push_back(v.owner.size());
    for (const auto& l : lattice)
      if (std::hypot(l.first - dets[i].first, l.second - dets[i].second) <= search + 4) {
        v.finders.push_back(l.first), v.finders.push_back(l.second);
        v.owner.push_back(static_cast<std::uint32_t>(i));
      }
  }
  v.begin.push_back(v.owner.size());
  v.rotations = 11;
  for (int r = 0; r < v.rotations; ++r) {
    const double a = (r - 5) * 0.002;
    v.turns.push_back(std::cos(a)), v.turns.push_back(std::sin(a));
  }
  return v;
}

// The CPU loop's proposals (register_tile): per rotation, detection by detection, each touched
// bin listed when first touched (first_pair: the pair that touched it), scored once the rotation's
// votes are in.
std::vector<core::pose_vote_entry> cpu_loop_proposals(const vote_case& v)
{
  std::vector<core::pose_vote_entry> out;
  std::vector<int> votes(v.grid.bins(), 0);
  std::vector<std::uint32_t> first(v.grid.bins(), 0);
  for (int r = 0; r < v.rotations; ++r) {
    std::vector<std::uint32_t> touched;
    for (std::size_t i = 0; i + 1 < v.begin.size(); ++i) {
      double qx, qy;
      v.grid.turn(v.points[2 * i], v.points[2 * i + 1], v.turns[2 * r], v.turns[2 * r + 1], qx, qy);
      for (std::size_t k = v.begin[i]; k < v.begin[i + 1]; ++k) {
        std::uint32_t bin;
        if (!v.grid.bin_of(qx, qy, v.finders[2 * k], v.finders[2 * k + 1], bin)) continue;
        if (votes[bin]++ == 0) touched.push_back(bin), first[bin] = static_cast<std::uint32_t>(k);
      }
    }
    for (const std::uint32_t bin : touched) {
      core::pose_vote_entry e;
      e.rotation = static_cast<std::uint32_t>(r);
      e.first_pair = first[bin];
      v.grid.proposal(votes.data(), bin, e.score, e.sx, e.sy, e.value);
      out.push_back(e);
    }
    for (const std::uint32_t bin : touched) votes[bin] = 0;
  }
  return out;
}

void expect_same_proposals(const std::vector<core::pose_vote_entry>& got, const std::vector<core::pose_vote_entry>& want)
{
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].rotation, want[i].rotation) << i;
    ASSERT_EQ(got[i].first_pair, want[i].first_pair) << i;
    ASSERT_EQ(got[i].score, want[i].score) << i;
    ASSERT_EQ(got[i].sx, want[i].sx) << i;
    ASSERT_EQ(got[i].sy, want[i].sy) << i;
    ASSERT_EQ(got[i].value, want[i].value) << i;
  }
}

// The GPU's way, emulated: every pair votes (in any order) and keeps the first pair of its bin;
// every bin of every rotation is scanned; sorting by (rotation, first pair) gives the CPU loop's
// list exactly. Pairs are voted in a shuffled order, bins scanned backwards.
TEST(TilePasses, PoseVoteInAnyOrderSortsToTheCpuLoop)
{
  for (const std::uint64_t seed : {1u, 2u, 3u}) {
    const vote_case v = make_vote_case(seed);
    const std::vector<core::pose_vote_entry> want = cpu_loop_proposals(v);
    ASSERT_GT(want.size(), 100u);
    std::vector<int> votes(v.grid.bins() * static_cast<std::size_t>(v.rotations), 0);
    std::vector<std::uint32_t> first(votes.size(), 0xffffffffu);
    std::vector<std::pair<int, std::size_t>> order;
    for (int r = 0; r < v.rotations; ++r)
      for (std::size_t k = 0; k < v.owner.size(); ++k) order.push_back({r, k});
    std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
    for (const auto& [r, k] : order) {
      const std::uint32_t i = v.owner[k];
      double qx, qy;
      v.grid.turn(v.points[2 * i], v.points[2 * i + 1], v.turns[2 * r], v.turns[2 * r + 1], qx, qy);
      std::uint32_t bin;
      if (!v.grid.bin_of(qx, qy, v.finders[2 * k], v.finders[2 * k + 1], bin)) continue;
      const std::size_t at = static_cast<std::size_t>(r) * v.grid.bins() + bin;
      ++votes[at];
      first[at] = std::min(first[at], static_cast<std::uint32_t>(k));
    }
    std::vector<core::pose_vote_entry> got;
    for (std::size_t at = votes.size(); at-- > 0;) {
      if (votes[at] == 0) continue;
      core::pose_vote_entry e;
      e.rotation = static_cast<std::uint32_t>(at / v.grid.bins());
      e.first_pair = first[at];
      v.grid.proposal(votes.data() + e.rotation * v.grid.bins(), static_cast<std::uint32_t>(at % v.grid.bins()), e.score,
                      e.sx, e.sy, e.value);
      got.push_back(e);
    }
    std::sort(got.begin(), got.end(), [](const core::pose_vote_entry& a, const core::pose_vote_entry& b) {
      return a.rotation != b.rotation ? a.rotation < b.rotation : a.first_pair < b.first_pair;
    });
    expect_same_proposals(got, want);
  }
}

// A vote's proposals in the CPU loop's order (by rotation, then by first pair, unique within a
// rotation, as for touched bins), with values on a coarse grid, so that many tie for the best with
// different scores (and cutoffs).
std::vector<core::pose_vote_entry> random_loop_proposals(std::mt19937_64& rng)
{
  std::vector<core::pose_vote_entry> loop(1 + rng() % 4000);
  for (std::size_t i = 0; i < loop.size(); ++i) {
    loop[i].rotation = static_cast<std::uint32_t>(rng() % 11);
    loop[i].score = static_cast<int>(rng() % 80);
    loop[i].value = 0.25 * static_cast<double>(rng() % 200);
    loop[i].sx = static_cast<double>(i), loop[i].sy = -static_cast<double>(i);
  }
  std::stable_sort(loop.begin(), loop.end(), [](const core::pose_vote_entry& a, const core::pose_vote_entry& b) {
    return a.rotation < b.rotation;
  });
  for (std::size_t i = 0; i < loop.size(); ++i) loop[i].first_pair = static_cast<std::uint32_t>(3 * i + rng() % 3);
  return loop;
}

// What the CPU loop of register_tile keeps of `loop` (in its order): the cutoff from the first
// proposal of the highest value (std::max_element), the proposals at or above it, in loop order.
std::vector<core::pose_vote_entry> loop_keeps(const std::vector<core::pose_vote_entry>& loop, double& cutoff)
{
  const auto top = std::max_element(loop.begin(), loop.end(),
                                    [](const core::pose_vote_entry& a, const core::pose_vote_entry& b) { return a.value < b.value; });
  cutoff = top->value - std::max(3.0, 0.5 * top->score);
  std::vector<core::pose_vote_entry> kept;
  for (const core::pose_vote_entry& e : loop)
    if (!(e.value < cutoff)) kept.push_back(e);
  return kept;
}

void expect_same_kept(const std::vector<core::pose_vote_entry>& got, const std::vector<core::pose_vote_entry>& want)
{
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].first_pair, want[i].first_pair) << i;
    ASSERT_EQ(got[i].rotation, want[i].rotation) << i;
    ASSERT_EQ(got[i].score, want[i].score) << i;
    ASSERT_EQ(got[i].value, want[i].value) << i;
    ASSERT_EQ(got[i].sx, want[i].sx) << i;
  }
}

// What registration keeps of the GPU vote's proposals (scan::keep_proposals_worth_checking, given
// them in any order) is what its CPU loop keeps of the same list in loop order.
TEST(TilePasses, ProposalsWorthCheckingAreTheCpuLoopsInAnyOrder)
{
  std::mt19937_64 rng(17);
  for (int trial = 0; trial < 20; ++trial) {
    const std::vector<core::pose_vote_entry> loop = random_loop_proposals(rng);
    double want_cutoff = 0;
    const std::vector<core::pose_vote_entry> want = loop_keeps(loop, want_cutoff);
    for (int shuffle = 0; shuffle < 3; ++shuffle) {
      std::vector<core::pose_vote_entry> got = loop;
      std::shuffle(got.begin(), got.end(), rng);
      EXPECT_EQ(scan::keep_proposals_worth_checking(got), want_cutoff);
      expect_same_kept(got, want);
      if (HasFatalFailure()) return;
    }
  }
  std::vector<core::pose_vote_entry> none;
  EXPECT_EQ(scan::keep_proposals_worth_checking(none), 0.0);
  EXPECT_TRUE(none.empty());
}

// The device's keep (tile_passes_cuda::keep_proposals_worth_checking, the launches registration
// runs on the vote's proposals in device memory): the same cutoff and the same proposals, in any
// order, for lists in any order. Lists up to 4,000 long: many strides of the best kernel's
// threads and several blocks of the keep kernel's.
TEST(TilePasses, CudaKeepsTheProposalsTheCpuLoopKeeps)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  host::tile_passes_cuda gpu;
  std::mt19937_64 rng(23);
  for (int trial = 0; trial < 12; ++trial) {
    const std::vector<core::pose_vote_entry> loop = random_loop_proposals(rng);
    double want_cutoff = 0;
    const std::vector<core::pose_vote_entry> want = loop_keeps(loop, want_cutoff);
    std::vector<core::pose_vote_entry> got = loop;
    std::shuffle(got.begin(), got.end(), rng);
    EXPECT_EQ(gpu.keep_proposals_worth_checking(got), want_cutoff);
    scan::sort_in_loop_order(got);
    expect_same_kept(got, want);
    if (HasFatalFailure()) return;
  }
  std::vector<core::pose_vote_entry> none;
  EXPECT_EQ(gpu.keep_proposals_worth_checking(none), 0.0);
  EXPECT_TRUE(none.empty());
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

// A random stitching patch: values of a real patch's range, b with NaN holes (samples outside the
// tile) at `holes`, with every column left of bw / 3 outside too when cut_columns, and every
// column from right_cut on (-1: none).
struct stitch_case {
  std::vector<float> a, b;
  core::stitch_patch patch{};
  stitch_case(std::mt19937_64& rng, int reach, double holes, bool cut_columns, int pw = 0, int right_cut = -1)
  {
    auto u01 = [&] { return static_cast<double>(rng() >> 11) / 9007199254740992.0; };
    if (pw == 0) pw = 8 + static_cast<int>(rng() % 57);
    const int ph = 8 + static_cast<int>(rng() % 57);
    const int bw = 2 * pw + 2 * reach, bh = 2 * ph + 2 * reach, cut = cut_columns ? bw / 3 : -1;
    a.resize(static_cast<std::size_t>(pw) * ph);
    b.resize(static_cast<std::size_t>(bw) * bh);
    for (auto& v : a) v = static_cast<float>(1000 + 20000 * u01());
    for (int y = 0; y < bh; ++y)
      for (int x = 0; x < bw; ++x) {
        const bool outside = u01() < holes || x < cut || (right_cut >= 0 && x >= right_cut);
        b[static_cast<std::size_t>(y) * bw + x] =
            outside ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(1000 + 20000 * u01());
      }
    patch = {a.data(), pw, ph, b.data(), bw, reach, 0.2 * pw * ph};
  }
};

// Every coarse shift's score in `scores` (the layout of scan::sparse_correlations and
// tile_passes_cuda::stitch_scores) is core::sparse_correlation's double; counts rejected shifts (-2)
// and scored ones.
void expect_reference_scores(const core::stitch_patch& patch, const std::vector<double>& scores, int& rejected,
                             int& scored)
{
  const int reach = patch.reach;
  const auto side = static_cast<std::size_t>(reach) + 1;
  ASSERT_EQ(scores.size(), side * side);
  for (int dy = -reach; dy <= reach; dy += 2)
    for (int dx = -reach; dx <= reach; dx += 2) {
      const double want = core::sparse_correlation(patch, dx, dy);
      const double got = scores[static_cast<std::size_t>(dy + reach) / 2 * side + static_cast<std::size_t>(dx + reach) / 2];
      ASSERT_EQ(std::memcmp(&got, &want, sizeof got), 0) << reach << " " << dx << "," << dy << ": " << got << " vs " << want;
      (want == -2.0 ? rejected : scored) += 1;
    }
}

// Stitching's coarse pass on the CPU, four shifts at once (scan::sparse_correlations), gives every
// shift the reference's double exactly: random patches and samples with NaN holes (samples
// outside the tile), whole NaN columns on either side, reaches that leave a partial set of lanes,
// and patches too little of which falls inside (-2).
TEST(Stitching, CoarsePassIsTheSparseCorrelation)
{
  std::mt19937_64 rng(29);
  int rejected = 0, scored = 0;
  for (const int reach : {0, 1, 2, 3, 6, 7, 12, 40})
    for (int trial = 0; trial < 6; ++trial) {
      const stitch_case c(rng, reach, trial < 2 ? 0.0 : 0.15 * trial, trial == 5);  // up to 75% outside
      std::vector<double> scores(static_cast<std::size_t>(reach + 1) * (reach + 1), 7.0);
      scan::sparse_correlations(c.patch, scores.data());
      expect_reference_scores(c.patch, scores, rejected, scored);
      if (HasFatalFailure()) return;
    }
  // The tile's edge at every column near the right of b: some set of lanes then meets the outside
  // only in its last lane's last sample.
  for (int right_cut = 2 * 20 + 2 * 12 - 20; right_cut < 2 * 20 + 2 * 12; ++right_cut) {
    const stitch_case c(rng, 12, 0.0, false, 20, right_cut);
    std::vector<double> scores(13 * 13, 7.0);
    scan::sparse_correlations(c.patch, scores.data());
    expect_reference_scores(c.patch, scores, rejected, scored);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(rejected, 10);
  EXPECT_GT(scored, 1000);
}

// Stitching's coarse pass on the GPU (tile_passes_cuda::stitch_scores, a thread per shift) gives
// every shift core::sparse_correlation's double, as the CPU's lanes do: patches with NaN holes,
// NaN columns and shifts too few of whose samples fall inside (-2).
TEST(TilePasses, CudaStitchScoresAreTheCpus)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  host::tile_passes_cuda gpu;
  std::mt19937_64 rng(31);
  int rejected = 0, scored = 0;
  for (const int reach : {0, 3, 12, 40})
    for (int trial = 0; trial < 4; ++trial) {
      const stitch_case c(rng, reach, 0.2 * trial, trial == 3);
      std::vector<double> scores(static_cast<std::size_t>(reach + 1) * (reach + 1), 7.0);
      gpu.stitch_scores(c.patch, scores.data());
      expect_reference_scores(c.patch, scores, rejected, scored);
      if (HasFatalFailure()) return;
    }
  EXPECT_GT(rejected, 10);
  EXPECT_GT(scored, 500);
  const core::stitch_patch narrow{nullptr, 8, 8, nullptr, 15, 0, 1};
  double unused = 0;
  EXPECT_THROW(gpu.stitch_scores(narrow, &unused), qrplate::invalid_argument);
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

// Registration's nearest-finder lookup (scan::finder_index, a grid of 8-module cells) finds the
// point a search of every point finds: the nearest within the radius (radius <= 8), or none.
TEST(FinderIndex, NearestIsTheBruteForceNearest)
{
  std::mt19937_64 rng(37);
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * static_cast<double>(rng() >> 11) / 9007199254740992.0; };
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<std::pair<double, double>> points(static_cast<std::size_t>(rng() % 300));
    const double x0 = uniform(-500, 500), y0 = uniform(-500, 500), span = uniform(5, 400);
    for (auto& p : points) p = {x0 + uniform(0, span), y0 + uniform(0, span)};
    const scan::finder_index index(points);
    ASSERT_EQ(index.points(), points);
    for (int q = 0; q < 400; ++q) {
      const double x = x0 + uniform(-20, span + 20), y = y0 + uniform(-20, span + 20), radius = uniform(0.5, 8);
      long want = -1;
      double best = radius * radius;
      for (std::size_t i = 0; i < points.size(); ++i) {
        const double d2 = (points[i].first - x) * (points[i].first - x) + (points[i].second - y) * (points[i].second - y);
        if (d2 < best || (d2 == best && want < 0)) best = d2, want = static_cast<long>(i);
      }
      ASSERT_EQ(index.nearest(x, y, radius), want) << trial << " " << q;
    }
  }
}

TEST(TilePasses, CudaVotesAsTheCpuLoop)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  host::tile_passes_cuda gpu;
  for (const std::uint64_t seed : {1u, 2u, 3u}) {
    const vote_case v = make_vote_case(seed);
    std::vector<core::pose_vote_entry> got;
    gpu.vote_poses(v.grid, v.points.data(), v.points.size() / 2, v.finders.data(), v.owner.data(), v.owner.size(),
                   v.turns.data(), v.rotations, got);
    // In no particular order: by rotation, then first pair, they are the CPU loop's list.
    std::sort(got.begin(), got.end(), [](const core::pose_vote_entry& a, const core::pose_vote_entry& b) {
      return a.rotation != b.rotation ? a.rotation < b.rotation : a.first_pair < b.first_pair;
    });
    const std::vector<core::pose_vote_entry> loop = cpu_loop_proposals(v);
    expect_same_proposals(got, loop);
    // What registration asks for: only the proposals worth checking come back.
    double want_cutoff = 0;
    const std::vector<core::pose_vote_entry> want = loop_keeps(loop, want_cutoff);
    std::vector<core::pose_vote_entry> kept;
    EXPECT_EQ(gpu.proposals_worth_checking(v.grid, v.points.data(), v.points.size() / 2, v.finders.data(),
                                           v.owner.data(), v.owner.size(), v.turns.data(), v.rotations, kept),
              want_cutoff);
    EXPECT_LT(kept.size(), loop.size());
    scan::sort_in_loop_order(kept);
    expect_same_kept(kept, want);
  }
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

}  // namespace
