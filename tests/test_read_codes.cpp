// The per-code read core (core/read_code.hpp) that the scan reader and the CUDA read kernel share:
// codes rendered into an image at a known affine pose (rotated, 3 px/module, noisy), read back
// through code maps built from that pose. The oracle is the payload each code was encoded from.
// The CUDA instance (host::read_codes_cuda) must give the CPU's outcomes and bytes exactly; it is
// skipped where no CUDA device (or no CUDA build) exists.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/encode_symbol.hpp"
#include "qrplate/core/read_code.hpp"
#if QRPLATE_WITH_CUDA
#include "cuda/encode_cuda.hpp"
#include "cuda/read_codes_cuda.hpp"
#endif

namespace {

using namespace qrplate;

struct rendered_codes {
  const core::version_plan* plan = nullptr;
  std::vector<std::vector<std::uint8_t>> payloads;
  std::vector<std::uint16_t> pixels;
  int width = 0, height = 0;
  core::affine_map to_pixel;  // plate module coordinates -> pixels
  std::vector<core::code_map> maps;
  double module_px = 3.0;

  core::gray_view view() const { return {pixels.data(), width, height, static_cast<std::size_t>(width)}; }
};

// `columns` x `rows` version-10-M codes (random payloads, masks 0-7 in turn) on a lattice of
// 61-module pitch, drawn at 3 px/module rotated by 0.7 degrees, each pixel the mean of 4x4
// sub-samples (a box beam), dark 12,000 / light 40,000 plus Gaussian noise of sigma 2,500.
rendered_codes render(int columns, int rows, std::uint64_t seed)
{
  rendered_codes r;
  r.plan = &host::version_plan_for(10, ecc_level::M);
  const core::version_plan& plan = *r.plan;
  const int n = plan.size, pitch = n + 4;
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::uint64_t>> symbols;
  auto ws = std::make_unique<core::encode_workspace>();
  for (int i = 0; i < columns * rows; ++i) {
    std::vector<std::uint8_t> payload(100 + rng() % 100);
    for (auto& b : payload) b = static_cast<std::uint8_t>(rng());
    std::vector<std::uint64_t> symbol(static_cast<std::size_t>(n * plan.words));
    EXPECT_EQ(core::encode_byte_payload(plan, payload.data(), static_cast<std::uint32_t>(payload.size()), i % 8, *ws,
                                        symbol.data()),
              i % 8);
    r.payloads.push_back(payload);
    symbols.push_back(symbol);
  }
  const double angle = 0.7 * 3.14159265358979323846 / 180, m = r.module_px;
  r.to_pixel.a[1] = m * std::cos(angle), r.to_pixel.a[2] = -m * std::sin(angle);
  r.to_pixel.a[4] = m * std::sin(angle), r.to_pixel.a[5] = m * std::cos(angle);
  r.to_pixel.a[0] = 20, r.to_pixel.a[3] = 14;
  core::affine_map to_plate;
  EXPECT_TRUE(r.to_pixel.inverse(to_plate));
  r.width = static_cast<int>(std::ceil(m * (columns * pitch + 8))) + 20;
  r.height = static_cast<int>(std::ceil(m * (rows * pitch + 8))) + 30;
  r.pixels.resize(static_cast<std::size_t>(r.width) * r.height);
  std::normal_distribution<double> noise(0, 2500);
  for (int y = 0; y < r.height; ++y)
    for (int x = 0; x < r.width; ++x) {
      double sum = 0;
      for (int sy = 0; sy < 4; ++sy)
        for (int sx = 0; sx < 4; ++sx) {
          double px, py;
          to_plate.apply(x + (sx + 0.5) / 4, y + (sy + 0.5) / 4, px, py);
          bool dark = false;
          const int cx = static_cast<int>(std::floor(px / pitch)), cy = static_cast<int>(std::floor(py / pitch));
          if (px >= 0 && py >= 0 && cx < columns && cy < rows) {
            const int col = static_cast<int>(std::floor(px - cx * pitch)), row = static_cast<int>(std::floor(py - cy * pitch));
            if (col < n && row < n)
              dark = core::get_bit(symbols[static_cast<std::size_t>(cy * columns + cx)].data() + row * plan.words, col);
          }
          sum += dark ? 12000 : 40000;
        }
      r.pixels[static_cast<std::size_t>(y) * r.width + x] =
          static_cast<std::uint16_t>(std::clamp(sum / 16 + noise(rng), 0.0, 65535.0));
    }
  for (int cy = 0; cy < rows; ++cy)
    for (int cx = 0; cx < columns; ++cx) {
      core::code_map map;
      map.base = r.to_pixel.shifted(cx * pitch, cy * pitch);
      r.maps.push_back(map);
    }
  return r;
}

TEST(ReadCode, CodesAtAKnownPoseReadBackExactly)
{
  const rendered_codes r = render(4, 3, 1);
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
TEST(ReadCode, ModulesNearTheEdgeAreNotSampled)
{
  const rendered_codes r = render(2, 1, 2);
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

TEST(ReadCode, CudaGivesTheCpuOutcomesAndBytes)
{
#if QRPLATE_WITH_CUDA
  if (!host::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  const rendered_codes r = render(4, 3, 3);
  std::vector<core::code_map> maps = r.maps;
  maps.push_back(r.maps[0]);
  maps.back().base = maps.back().base.shifted(-10, 0);  // partly outside: erasures, or a failure
  std::vector<core::code_outcome> gpu(maps.size());
  std::vector<std::uint8_t> gpu_bytes(maps.size() * spec::max_data_codewords);
  host::read_codes_cuda(*r.plan, r.view(), maps.data(), maps.size(), r.module_px, 64, gpu.data(), gpu_bytes.data());
  auto ws = std::make_unique<core::read_code_workspace>();
  std::vector<std::uint8_t> bytes(spec::max_data_codewords);
  for (std::size_t i = 0; i < maps.size(); ++i) {
    const core::code_outcome o = core::read_code(*r.plan, r.view(), maps[i], r.module_px, 64, bytes.data(), *ws);
    EXPECT_EQ(static_cast<int>(gpu[i].result.status), static_cast<int>(o.result.status)) << i;
    EXPECT_EQ(static_cast<int>(gpu[i].result.error), static_cast<int>(o.result.error)) << i;
    EXPECT_EQ(gpu[i].result.data_length, o.result.data_length) << i;
    EXPECT_EQ(gpu[i].result.corrected_symbols, o.result.corrected_symbols) << i;
    EXPECT_EQ(gpu[i].result.margin, o.result.margin) << i;
    EXPECT_EQ(gpu[i].levels.dark, o.levels.dark) << i;
    EXPECT_EQ(gpu[i].levels.light, o.levels.light) << i;
    EXPECT_EQ(gpu[i].levels.noise, o.levels.noise) << i;
    EXPECT_EQ(gpu[i].snr, o.snr) << i;
    if (core::decoded(o.result)) {
      EXPECT_EQ(std::memcmp(gpu_bytes.data() + i * spec::max_data_codewords, bytes.data(),
                            static_cast<std::size_t>(o.result.data_length)),
                0)
          << i;
    }
  }
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

}  // namespace
