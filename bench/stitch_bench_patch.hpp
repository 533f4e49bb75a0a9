// The patch both stitching benchmarks correlate (bench_decode's BM_stitch_coarse on the CPU,
// bench_decode_cuda's BM_cuda_stitch_scores on the GPU): 64 x 64 modules, +-20 modules of search
// (reach 40 half modules: 41 x 41 shifts), the last quarter of b's columns outside the tile (NaN:
// the strip two tiles share is narrower than the search).
#pragma once

#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include "qrplate/core/stitch_correlation.hpp"

namespace qrplate::bench {

struct stitch_bench_patch {
  static constexpr int pw = 64, ph = 64, reach = 40, bw = 2 * pw + 2 * reach, bh = 2 * ph + 2 * reach;
  std::vector<float> a, b;

  stitch_bench_patch() : a(static_cast<std::size_t>(pw) * ph), b(static_cast<std::size_t>(bw) * bh)
  {
    std::mt19937 rng(13);
    std::uniform_real_distribution<float> value(1000, 21000);
    for (auto& v : a) v = value(rng);
    for (std::size_t k = 0; k < b.size(); ++k)
      b[k] = static_cast<int>(k % bw) >= 3 * bw / 4 ? std::numeric_limits<float>::quiet_NaN() : value(rng);
  }
  core::stitch_patch patch() const { return {a.data(), pw, ph, b.data(), bw, reach, 0.2 * pw * ph}; }
  std::size_t shifts() const { return static_cast<std::size_t>(reach + 1) * (reach + 1); }
};

}  // namespace qrplate::bench
