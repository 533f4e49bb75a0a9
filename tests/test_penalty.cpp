// The fast mask scorer and the fast codeword placement held to their plain references, and the
// automatic mask held to the argmin of the reference penalty.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/encode_symbol.hpp"
#include "qrplate/core/penalty.hpp"
#include "qrplate/qr.hpp"

namespace {

using qrplate::symbol_view;
namespace core = qrplate::core;

struct matrix {
  int size;
  std::vector<std::uint64_t> rows;
  explicit matrix(int n) : size(n), rows(qrplate::words_per_symbol(n), 0) {}
  void set(int r, int c, bool v) { core::set_bit(rows.data() + r * qrplate::words_per_row(size), c, v); }
  symbol_view view() const { return {rows.data(), size}; }
};

matrix random_matrix(int n, double density, std::mt19937_64& rng)
{
  matrix m(n);
  std::bernoulli_distribution dark(density);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) m.set(r, c, dark(rng));
  return m;
}

// Draws runs (dark first, alternating) along row or column `line` starting at `at`.
void draw_runs(matrix& m, bool along_row, int line, int at, std::initializer_list<int> runs)
{
  bool dark = true;
  for (int len : runs) {
    for (int k = 0; k < len; ++k, ++at)
      if (at >= 0 && at < m.size) along_row ? m.set(line, at, dark) : m.set(at, line, dark);
    dark = !dark;
  }
}

TEST(Penalty, HandCountedExamples)
{
  // All light 21x21: N1 per line 3 + 16 = 19, 42 lines; N2 20*20 blocks * 3; N4: 0% dark -> k = 9.
  matrix light(21);
  EXPECT_EQ(core::penalty_reference(light.view()), 42 * 19 + 400 * 3 + 90);
  EXPECT_EQ(core::penalty_fast(light.view()), 42 * 19 + 400 * 3 + 90);

  // One finder-like row 1011101 with light everywhere else: each of the 7 columns it crosses
  // breaks the column's light run; counted by hand below.
  matrix f(21);
  draw_runs(f, true, 10, 7, {1, 1, 3, 1, 1});
  // Row 10: light 7, pattern, light 7: N3 counts both sides (7 >= 4) = 2 patterns = 80; N1 of the
  // row: two light runs of 7 -> 2 * (3 + 2) = 10.
  // Columns 7..13: dark at row 10 for columns 7, 9, 10, 11, 13 -> two light runs of 10 each
  // (3 + 5 each = 16 per column) = 80; columns 8 and 12 stay light (19 each) = 38;
  // other 14 columns light: 14 * 19 = 266. Other 20 rows light: 20 * 19 = 380.
  // N2: all light 2x2 blocks except those touching a dark module of row 10.
  int blocks = 0;
  for (int r = 0; r < 20; ++r)
    for (int c = 0; c < 20; ++c) {
      const auto v = f.view();
      const bool x = v.module(r, c);
      blocks += x == v.module(r, c + 1) && x == v.module(r + 1, c) && x == v.module(r + 1, c + 1);
    }
  const int expected = 80 + 10 + 80 + 38 + 266 + 380 + 3 * blocks + 90;  // 5 of 441 dark: k = 9
  EXPECT_EQ(core::penalty_reference(f.view()), expected);
  EXPECT_EQ(core::penalty_fast(f.view()), expected);
}

TEST(Penalty, FastEqualsReferenceOnRandomMatrices)
{
  const unsigned seed = 20261122;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  for (int n : {21, 25, 29, 57, 63, 64, 65, 101, 127, 128, 129, 177}) {
    for (double density : {0.5, 0.2, 0.8, 0.05, 0.95}) {
      for (int rep = 0; rep < 3; ++rep) {
        const matrix m = random_matrix(n, density, rng);
        SCOPED_TRACE(::testing::Message() << "size " << n << " density " << density << " rep " << rep);
        ASSERT_EQ(core::penalty_fast(m.view()), core::penalty_reference(m.view()));
      }
    }
  }
}

TEST(Penalty, FastEqualsReferenceOnScaledFinderPatterns)
{
  // 1:1:3:1:1 at scales 1..5 in rows and columns, at the edges and across word boundaries,
  // on light and on random backgrounds.
  const unsigned seed = 7;
  std::mt19937_64 rng(seed);
  int with_n3 = 0;
  for (int n : {21, 65, 129, 177}) {
    for (int scale = 1; scale <= 5; ++scale) {
      for (int trial = 0; trial < 12; ++trial) {
        matrix m = trial % 2 ? random_matrix(n, 0.5, rng) : matrix(n);
        const int len = 7 * scale;
        const int line = static_cast<int>(rng() % n);
        int at = static_cast<int>(rng() % (n + 2 * scale)) - scale;
        if (trial == 2) at = 0;
        if (trial == 4) at = n - len;
        if (trial == 6) at = 64 - 3 * scale;
        const bool along_row = trial % 3 != 0;
        // clear the light margins the pattern needs, then draw it
        for (int k = at - 4 * scale; k < at + len + 4 * scale; ++k)
          if (k >= 0 && k < n) along_row ? m.set(line, k, false) : m.set(k, line, false);
        draw_runs(m, along_row, line, at, {scale, scale, 3 * scale, scale, scale});
        const int ref = core::penalty_reference(m.view());
        SCOPED_TRACE(::testing::Message() << "size " << n << " scale " << scale << " trial " << trial << " at " << at);
        ASSERT_EQ(core::penalty_fast(m.view()), ref);
        with_n3 += ref >= 40;
      }
    }
  }
  EXPECT_GT(with_n3, 0);
}

TEST(Penalty, ScaleTwoPatternScoresFortyPerSide)
{
  // Row 20 of a light 45x45: 11 00 111111 00 11 from column 10, with 10 light before and 21
  // after (>= 8 on both sides: two patterns). `broken` differs in one module, (20, 19), which
  // turns the centre run into 5 and breaks the 1:1:3:1:1 ratio.
  matrix m(45);
  draw_runs(m, true, 20, 10, {2, 2, 6, 2, 2});
  matrix broken(45);
  draw_runs(broken, true, 20, 10, {2, 2, 5, 3, 2});
  const int a = core::penalty_reference(m.view());
  const int b = core::penalty_reference(broken.view());
  EXPECT_EQ(core::penalty_fast(m.view()), a);
  EXPECT_EQ(core::penalty_fast(broken.view()), b);
  // Counted by hand: N3 +80 (two patterns); N1 of row 20: dark run 6 (4) vs 5 (3): +1;
  // N1 of column 19: light runs 20 and 24 ((3+15)+(3+19) = 40) vs one of 45 (43): -3;
  // N2: the light blocks with top-left (19,19) and (20,19) exist only in broken: -6;
  // N4: 14 vs 13 dark of 2025, both in the k = 9 band: 0.
  EXPECT_EQ(a - b, 80 + 1 - 3 - 6);
}

TEST(Placement, FastEqualsReferenceForEveryVersion)
{
  std::mt19937_64 rng(99);
  auto fast = std::make_unique<std::uint64_t[]>(core::max_matrix_words);
  auto ref = std::make_unique<std::uint64_t[]>(core::max_matrix_words);
  std::vector<std::uint8_t> cw(qrplate::spec::max_total_codewords);
  for (int v = 1; v <= 40; ++v) {
    const auto& plan = qrplate::host::version_plan_for(v, qrplate::ecc_level::M);
    for (auto& b : cw) b = static_cast<std::uint8_t>(rng());
    core::place_codewords(plan, cw.data(), fast.get());
    core::place_codewords_reference(plan, cw.data(), ref.get());
    SCOPED_TRACE(::testing::Message() << "version " << v);
    for (int i = 0; i < plan.size * plan.words; ++i) ASSERT_EQ(fast[i], ref[i]) << "word " << i;
  }
}

TEST(Placement, MostCodewordsTakeTheBlockPath)
{
  // Not a speed test: the block path must actually be used, or the fast path is dead code.
  const auto& plan = qrplate::host::version_plan_for(40, qrplate::ecc_level::L);
  int regular = 0;
  for (int k = 0; k < plan.layout.total_codewords; ++k) regular += plan.slot_shift[k] >= 0;
  EXPECT_GT(regular, plan.layout.total_codewords / 2);
}

TEST(AutomaticMask, IsTheArgminOfTheReferencePenalty)
{
  std::mt19937_64 rng(4242);
  for (int v : {1, 2, 5, 7, 10, 16, 23, 31, 40}) {
    for (auto ecc : {qrplate::ecc_level::L, qrplate::ecc_level::H}) {
      std::vector<std::uint8_t> data(static_cast<std::size_t>(rng() % (qrplate::max_byte_payload(v, ecc) + 1)));
      for (auto& b : data) b = static_cast<std::uint8_t>(rng());
      qrplate::qr_options o;
      o.min_version = o.max_version = v;
      o.ecc = ecc;
      int best = -1, best_score = 0;
      for (int mask = 0; mask < 8; ++mask) {
        o.mask = mask;
        const auto s = qrplate::encode_bytes(data.data(), data.size(), o);
        const int score = core::penalty_reference(s.view());
        if (best < 0 || score < best_score) best = mask, best_score = score;
      }
      o.mask = qrplate::auto_mask;
      SCOPED_TRACE(::testing::Message() << "version " << v << " ecc " << qrplate::to_string(ecc));
      EXPECT_EQ(qrplate::encode_bytes(data.data(), data.size(), o).mask, best);
    }
  }
}

}  // namespace
