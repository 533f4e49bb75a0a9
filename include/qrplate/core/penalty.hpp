// Mask penalty score, ISO 18004:2015 §7.8.3 Table 11, scored on the whole symbol as drawn
// (format information included). Where readings of the standard differ we follow Project
// Nayuki's generator:
//   N1 (3 + k per run of 5 + k same-colour modules in a row or column),
//   N2 (3 per 2x2 block of one colour, overlapping blocks all counted),
//   N3 (40 per finder-like pattern: runs dark:light:dark:light:dark in ratio 1:1:3:1:1 at any
//       scale n, with light of at least 4n on one side and n on the other; outside the symbol
//       counts as light; 4n on both sides counts twice),
//   N4 (10 * k for the smallest k with (45 - 5k)% <= dark <= (55 + 5k)%).
//
// penalty_reference is the plain run-length reading. penalty_fast scores with whole words: a
// "vertical" pass over the rows of a matrix sees 64 columns at once, so columns are scored on
// the matrix and rows on its transpose, and no bit shifts are needed except for N2.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/symbol.hpp"

namespace qrplate::core {

inline constexpr int penalty_n1 = 3;
inline constexpr int penalty_n2 = 3;
inline constexpr int penalty_n3 = 40;
inline constexpr int penalty_n4 = 10;

QRP_HD inline int balance_penalty(long long dark, long long total)
{
  int k = 0;
  while (!(100 * dark >= (45 - 5 * k) * total && 100 * dark <= (55 + 5 * k) * total)) ++k;
  return penalty_n4 * k;
}

namespace detail {

// N1 and N3 of one line given as runs: run[0] is light, colours alternate. The first and last
// light runs already include the light border outside the symbol (for N3 only).
QRP_HD inline int line_penalty_from_runs(const int* run, int count, int size)
{
  int score = 0;
  for (int r = 0; r < count; ++r) {
    // the borders added to the first and last runs are not part of the symbol
    const int len = run[r] - (r == 0 ? size : 0) - (r == count - 1 ? size : 0);
    if (len >= 5) score += penalty_n1 + (len - 5);
  }
  for (int d = 1; d + 5 < count; d += 2) {  // dark runs sit at odd indices
    const int n = run[d];
    if (run[d + 1] != n || run[d + 2] != 3 * n || run[d + 3] != n || run[d + 4] != n) continue;
    const int before = run[d - 1], after = run[d + 5];
    score += penalty_n3 * ((before >= 4 * n && after >= n) + (after >= 4 * n && before >= n));
  }
  return score;
}

}  // namespace detail

// Plain reference: each row and column turned into runs, N2 and N4 by module.
QRP_HD inline int penalty_reference(symbol_view s)
{
  const int n = s.size;
  int score = 0;
  int run[spec::max_symbol_size + 3];
  for (int pass = 0; pass < 2; ++pass) {
    for (int line = 0; line < n; ++line) {
      int count = 0;
      run[count++] = n;  // light border before the line
      bool colour = false;
      for (int x = 0; x < n; ++x) {
        const bool m = pass == 0 ? s.module(line, x) : s.module(x, line);
        if (m == colour) {
          ++run[count - 1];
        } else {
          run[count++] = 1;
          colour = m;
        }
      }
      if (colour) run[count++] = 0;
      run[count - 1] += n;  // light border after the line
      score += detail::line_penalty_from_runs(run, count, n);
    }
  }
  long long dark = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      dark += s.module(i, j);
      if (i + 1 < n && j + 1 < n) {
        const bool c = s.module(i, j);
        if (s.module(i, j + 1) == c && s.module(i + 1, j) == c && s.module(i + 1, j + 1) == c) score += penalty_n2;
      }
    }
  return score + balance_penalty(dark, static_cast<long long>(n) * n);
}

// ---------------------------------------------------------------------------------------------
// Fast scorer.

// Light rows padded above and below a matrix, so windows reaching past the edge read "light".
inline constexpr int penalty_pad = 8;
inline constexpr int padded_rows = spec::max_symbol_size + 2 * penalty_pad;

// A matrix with penalty_pad zero rows on each side; row i lives at rows[(i + pad) * W].
struct padded_matrix {
  std::uint64_t rows[padded_rows * max_words];
};

namespace detail {

QRP_HD inline bool line_bit(const std::uint64_t* line, int size, int x)
{
  return x >= 0 && x < size && get_bit(line, x);
}

QRP_HD inline bool line_all(const std::uint64_t* line, int size, int lo, int hi, bool dark)
{
  for (int x = lo; x < hi; ++x)
    if (line_bit(line, size, x) != dark) return false;
  return true;
}

// Finder-like patterns of scale n >= 3 whose centre run starts at s (module s - 1 is light).
QRP_HD inline int large_finder_like_at(const std::uint64_t* line, int size, int s)
{
  int len = 0;
  while (line_bit(line, size, s + len)) ++len;
  if (len % 3 != 0 || len < 9) return 0;
  const int n = len / 3;
  if (!line_all(line, size, s - n, s, false) || !line_all(line, size, s - 2 * n, s - n, true) ||
      !line_all(line, size, s + 3 * n, s + 4 * n, false) || !line_all(line, size, s + 4 * n, s + 5 * n, true))
    return 0;
  const bool before_n = line_all(line, size, s - 3 * n, s - 2 * n, false);
  const bool before_4n = before_n && line_all(line, size, s - 6 * n, s - 3 * n, false);
  const bool after_n = line_all(line, size, s + 5 * n, s + 6 * n, false);
  const bool after_4n = after_n && line_all(line, size, s + 6 * n, s + 9 * n, false);
  return (before_4n && after_n) + (after_4n && before_n);
}

// N1 + N3 (weighted) of every column of `m`, whose rows are the columns' modules; `other`
// is the transpose of m, used to read one column as a line for rare large-scale patterns.
template <int W>
QRP_HD inline int column_penalty(const padded_matrix& m, const padded_matrix& other, int size)
{
  const std::uint64_t* p0 = m.rows + penalty_pad * W;  // p0[i * W + w]: row i, i may be negative
  int windows = 0, starts = 0, finders = 0;
  for (int w = 0; w < W; ++w) {
    const std::uint64_t valid = lane_mask(size, w);
    auto P = [&](int i) { return p0[i * W + w]; };
    // N1: windows of five equal modules, and the windows that start a run.
    for (int i = 0; i + 5 <= size; ++i) {
      const std::uint64_t d5 = P(i) & P(i + 1) & P(i + 2) & P(i + 3) & P(i + 4);
      const std::uint64_t l5 = ~(P(i) | P(i + 1) | P(i + 2) | P(i + 3) | P(i + 4)) & valid;
      // a window starts its run when the module before it differs (or it is at the edge)
      const std::uint64_t prev_dark = i == 0 ? 0 : P(i - 1);
      const std::uint64_t prev_light = i == 0 ? 0 : ~P(i - 1);
      windows += popcount64(d5) + popcount64(l5);
      starts += popcount64(d5 & ~prev_dark) + popcount64(l5 & ~prev_light);
    }
    // N3 at scales 1 and 2 as fixed windows around the first dark row c of the pattern.
    for (int c = 0; c + 7 <= size; ++c) {
      const std::uint64_t core1 = ~P(c - 1) & P(c) & ~P(c + 1) & P(c + 2) & P(c + 3) & P(c + 4) & ~P(c + 5) &
                                  P(c + 6) & ~P(c + 7);
      if (core1) {
        finders += popcount64(core1 & ~(P(c - 4) | P(c - 3) | P(c - 2)));
        finders += popcount64(core1 & ~(P(c + 8) | P(c + 9) | P(c + 10)));
      }
    }
    for (int c = 0; c + 14 <= size; ++c) {
      const std::uint64_t core2 = ~(P(c - 2) | P(c - 1)) & P(c) & P(c + 1) & ~(P(c + 2) | P(c + 3)) & P(c + 4) &
                                  P(c + 5) & P(c + 6) & P(c + 7) & P(c + 8) & P(c + 9) & ~(P(c + 10) | P(c + 11)) &
                                  P(c + 12) & P(c + 13) & ~(P(c + 14) | P(c + 15));
      if (core2) {
        finders += popcount64(core2 & ~(P(c - 8) | P(c - 7) | P(c - 6) | P(c - 5) | P(c - 4) | P(c - 3)));
        finders += popcount64(core2 & ~(P(c + 16) | P(c + 17) | P(c + 18) | P(c + 19) | P(c + 20) | P(c + 21)));
      }
    }
    // Scales >= 3: a centre run of at least 9 dark after 3 light; checked one line at a time.
    for (int s = 0; s + 9 <= size; ++s) {
      std::uint64_t cand = ~(P(s - 3) | P(s - 2) | P(s - 1)) & P(s) & P(s + 1) & P(s + 2) & P(s + 3) & P(s + 4) &
                           P(s + 5) & P(s + 6) & P(s + 7) & P(s + 8);
      while (cand) {
        const int lane = ctz64(cand);
        cand &= cand - 1;
        const int col = 64 * w + lane;
        finders += large_finder_like_at(other.rows + (penalty_pad + col) * W, size, s);
      }
    }
  }
  // A run of L >= 5 scores N1 + (L - 5) = (L - 4 windows) + 2, with N1 = 3.
  static_assert(penalty_n1 == 3, "the window count below assumes N1 = 3");
  return windows + 2 * starts + penalty_n3 * finders;
}

}  // namespace detail

// Score of a symbol given as m (rows) and t (its transpose), both padded.
template <int W>
QRP_HD inline int penalty_fast_padded(const padded_matrix& m, const padded_matrix& t, int size)
{
  int score = detail::column_penalty<W>(m, t, size) + detail::column_penalty<W>(t, m, size);
  // N2 on rows i, i+1: equal vertically, and equal to the right-hand neighbour horizontally.
  const std::uint64_t* p0 = m.rows + penalty_pad * W;
  long long dark = 0;
  int blocks = 0;
  for (int i = 0; i < size; ++i) {
    for (int w = 0; w < W; ++w) {
      const std::uint64_t a = p0[i * W + w];
      dark += popcount64(a);
      if (i + 1 == size) continue;
      const std::uint64_t b = p0[(i + 1) * W + w];
      const std::uint64_t a_next = w + 1 < W ? p0[i * W + w + 1] : 0;
      const std::uint64_t a_right = (a >> 1) | (a_next << 63);  // bit j = module (i, j + 1)
      const std::uint64_t same_v = ~(a ^ b);
      const std::uint64_t same_h = ~(a ^ a_right);
      const std::uint64_t same_v_right = (same_v >> 1) | ((w + 1 < W ? ~(a_next ^ p0[(i + 1) * W + w + 1]) : 0) << 63);
      blocks += popcount64(same_v & same_v_right & same_h & lane_mask(size - 1, w));
    }
  }
  return score + penalty_n2 * blocks + balance_penalty(dark, static_cast<long long>(size) * size);
}

// Copies rows (stride W) into a padded matrix and zeroes its padding.
template <int W>
QRP_HD inline void load_padded(const std::uint64_t* rows, int size, padded_matrix& out)
{
  for (int i = 0; i < penalty_pad * W; ++i) out.rows[i] = 0;
  for (int i = 0; i < size * W; ++i) out.rows[penalty_pad * W + i] = rows[i];
  for (int i = (penalty_pad + size) * W; i < (2 * penalty_pad + size) * W; ++i) out.rows[i] = 0;
}

// Convenience form for tests and one-off use: pads and transposes, then scores.
QRP_HD inline int penalty_fast(symbol_view s)
{
  padded_matrix m, t;
  std::uint64_t tr[spec::max_symbol_size * max_words];
  switch (s.stride()) {
    case 1:
      load_padded<1>(s.rows, s.size, m);
      transpose_matrix<1>(s.rows, tr, s.size);
      load_padded<1>(tr, s.size, t);
      return penalty_fast_padded<1>(m, t, s.size);
    case 2:
      load_padded<2>(s.rows, s.size, m);
      transpose_matrix<2>(s.rows, tr, s.size);
      load_padded<2>(tr, s.size, t);
      return penalty_fast_padded<2>(m, t, s.size);
    default:
      load_padded<3>(s.rows, s.size, m);
      transpose_matrix<3>(s.rows, tr, s.size);
      load_padded<3>(tr, s.size, t);
      return penalty_fast_padded<3>(m, t, s.size);
  }
}

}  // namespace qrplate::core
