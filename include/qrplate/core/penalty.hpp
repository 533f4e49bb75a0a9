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
inline constexpr int padded_rows = spec::max_symbol_size + 2 * penalty_pad + 8;  // +8: room for pair reads

// A matrix stored word-planar: plane[w][penalty_pad + i] is word w of row i (i may reach
// penalty_pad rows past either edge, where it is 0). One plane is 64 columns of every row, so
// the scorer's loops over rows run over contiguous memory.
struct padded_matrix {
  std::uint64_t plane[max_words][padded_rows];
};

namespace detail {

// Module x of row `line` of a padded matrix (0 outside the symbol).
QRP_HD inline bool line_bit(const padded_matrix& m, int line, int size, int x)
{
  return x >= 0 && x < size && ((m.plane[x >> 6][penalty_pad + line] >> (x & 63)) & 1u);
}

// Whether modules lo..hi-1 of a line are all `dark`; bit(x) reads module x (false outside).
template <class Bit>
QRP_HD inline bool line_all(const Bit& bit, int lo, int hi, bool dark)
{
  for (int x = lo; x < hi; ++x)
    if (bit(x) != dark) return false;
  return true;
}

// Finder-like patterns of scale n >= 3 in a line whose centre run starts at s (module s - 1 is
// light); bit(x) reads module x of the line, false outside the symbol.
template <class Bit>
QRP_HD inline int large_finder_like(const Bit& bit, int s)
{
  int len = 0;
  while (bit(s + len)) ++len;
  if (len % 3 != 0 || len < 9) return 0;
  const int n = len / 3;
  if (!line_all(bit, s - n, s, false) || !line_all(bit, s - 2 * n, s - n, true) ||
      !line_all(bit, s + 3 * n, s + 4 * n, false) || !line_all(bit, s + 4 * n, s + 5 * n, true))
    return 0;
  const bool before_n = line_all(bit, s - 3 * n, s - 2 * n, false);
  const bool before_4n = before_n && line_all(bit, s - 6 * n, s - 3 * n, false);
  const bool after_n = line_all(bit, s + 5 * n, s + 6 * n, false);
  const bool after_4n = after_n && line_all(bit, s + 6 * n, s + 9 * n, false);
  return (before_4n && after_n) + (after_4n && before_n);
}

// N2 in one word of rows i, i+1 (a, b) given the next word of the same rows (qa, qb; 0 for the
// last word; bit 63 of a last word is never one of its lanes): 2x2 blocks of one colour whose
// top-left module is a lane of `lanes`.
QRP_HD inline int same_colour_blocks(std::uint64_t a, std::uint64_t b, std::uint64_t qa, std::uint64_t qb,
                                     std::uint64_t lanes)
{
  const std::uint64_t same_v = ~(a ^ b);
  const std::uint64_t same_v_next = ~(qa ^ qb);  // next word, for column 64w+63
  const std::uint64_t a_right = (a >> 1) | (qa << 63);  // bit j = module (i, j + 1)
  const std::uint64_t same_v_right = (same_v >> 1) | (same_v_next << 63);
  return popcount64(same_v & same_v_right & ~(a ^ a_right) & lanes);
}

// Per-row features of one plane, each a word of 64 columns; index i is row i (arrays are
// offset by penalty_pad so that negative rows are valid).
struct run_features {
  std::uint64_t d2[padded_rows];  // rows i, i+1 dark
  std::uint64_t l2[padded_rows];  // rows i, i+1 light
  std::uint64_t d3[padded_rows];  // rows i..i+2 dark
  std::uint64_t l4[padded_rows];  // rows i..i+3 light
  std::uint64_t x1[padded_rows];  // light, dark, light at rows i-1, i, i+1
  std::uint64_t x2[padded_rows];  // 2 light, 2 dark, 2 light at rows i-2 .. i+3
};

// N1 + N3 (weighted) of every column of `m` (the rows of m are the columns' modules); `other`
// is the transpose of m, read as lines for the rare finder-like patterns of scale >= 3.
template <int W>
QRP_HD inline int column_penalty(const padded_matrix& m, const padded_matrix& other, int size, run_features& f)
{
  int windows = 0, starts = 0, finders = 0;
  constexpr int o = penalty_pad;  // feature index of row 0
  for (int w = 0; w < W; ++w) {
    const std::uint64_t valid = lane_mask(size, w);
    const std::uint64_t* p = m.plane[w] + o;  // p[i]: row i, -pad <= i < size + pad
    // Features of rows -pad .. size+pad-2; the pattern reads below reach rows -8 .. size+7.
    for (int i = -o; i < size + o - 1; ++i) {
      f.d2[o + i] = p[i] & p[i + 1];
      f.l2[o + i] = ~(p[i] | p[i + 1]) & valid;
    }
    for (int i = -o; i < size + o - 3; ++i) {
      f.d3[o + i] = f.d2[o + i] & p[i + 2];
      f.l4[o + i] = f.l2[o + i] & f.l2[o + i + 2];
    }
    for (int i = 2 - o; i < size + o - 3; ++i) {
      f.x1[o + i] = p[i] & ~(p[i - 1] | p[i + 1]);
      f.x2[o + i] = f.d2[o + i] & f.l2[o + i - 2] & f.l2[o + i + 2];
    }
    const std::uint64_t* d2 = f.d2 + o;
    const std::uint64_t* l2 = f.l2 + o;
    const std::uint64_t* d3 = f.d3 + o;
    const std::uint64_t* l4 = f.l4 + o;
    const std::uint64_t* x1 = f.x1 + o;
    const std::uint64_t* x2 = f.x2 + o;
    // N1: windows of five equal modules (dark and light windows never share a lane, so one
    // popcount covers both), and the windows that start a run: the module before differs, or
    // the window starts at the edge.
    for (int c = 0; c + 5 <= size; ++c) {
      const std::uint64_t d5 = d3[c] & d2[c + 3];
      const std::uint64_t l5 = l4[c] & ~p[c + 4] & valid;
      const std::uint64_t before_light_or_edge = c == 0 ? 0 : ~p[c - 1];
      windows += popcount64(d5 | l5);
      starts += popcount64((d5 & ~p[c - 1]) | (l5 & ~before_light_or_edge));
    }
    // N3, scale 1: 1 0 111 0 1 with a light module on each side, and 4 light before (a) or
    // after (b). Scale 2: 11 00 111111 00 11, 2 light on each side, 8 before or after.
    // core1 and core2 differ at row c + 1 (light vs dark): their lanes are disjoint.
    for (int c = 0; c + 7 <= size; ++c) {
      const std::uint64_t core1 = x1[c] & d3[c + 2] & x1[c + 6];
      std::uint64_t a = core1 & l4[c - 4];
      std::uint64_t b = core1 & l4[c + 7];
      if (c + 14 <= size) {
        const std::uint64_t core2 = x2[c] & d3[c + 4] & d3[c + 7] & x2[c + 12];
        a |= core2 & l4[c - 8] & l4[c - 4];
        b |= core2 & l4[c + 14] & l4[c + 18];
      }
      finders += popcount64(a) + popcount64(b);
    }
    // Scale >= 3: a centre run of at least 9 dark after 3 light (rare), checked line by line.
    for (int c = 0; c + 9 <= size; ++c) {
      std::uint64_t cand = l2[c - 3] & ~p[c - 1] & d3[c] & d3[c + 3] & d3[c + 6];
      while (cand) {
        const int lane = ctz64(cand);
        cand &= cand - 1;
        const int line = 64 * w + lane;
        finders += large_finder_like([&](int x) { return line_bit(other, line, size, x); }, c);
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
QRP_HD inline int penalty_fast_padded(const padded_matrix& m, const padded_matrix& t, int size,
                                      detail::run_features& scratch)
{
  int score = detail::column_penalty<W>(m, t, size, scratch) + detail::column_penalty<W>(t, m, size, scratch);
  // N2 on rows i, i+1: equal vertically, and equal to the right-hand neighbour horizontally.
  long long dark = 0;
  int blocks = 0;
  for (int w = 0; w < W; ++w) {
    const std::uint64_t* p = m.plane[w] + penalty_pad;
    const std::uint64_t* q = w + 1 < W ? m.plane[w + 1] + penalty_pad : nullptr;
    const std::uint64_t lanes = lane_mask(size - 1, w);
    for (int i = 0; i < size; ++i) {
      dark += popcount64(p[i]);
      if (i + 1 < size) blocks += detail::same_colour_blocks(p[i], p[i + 1], q ? q[i] : 0, q ? q[i + 1] : 0, lanes);
    }
  }
  return score + penalty_n2 * blocks + balance_penalty(dark, static_cast<long long>(size) * size);
}

// Copies rows (row-major, stride W) into a padded word-planar matrix, padding zeroed.
template <int W>
QRP_HD inline void load_padded(const std::uint64_t* rows, int size, padded_matrix& out)
{
  for (int w = 0; w < W; ++w) {
    std::uint64_t* plane = out.plane[w];
    for (int i = 0; i < padded_rows; ++i) plane[i] = 0;
    for (int i = 0; i < size; ++i) plane[penalty_pad + i] = rows[i * W + w];
  }
}

// Convenience form for tests and one-off use: pads and transposes, then scores.
// Needs ~30 KB of stack.
QRP_HD inline int penalty_fast(symbol_view s)
{
  padded_matrix m, t;
  detail::run_features scratch;
  std::uint64_t tr[spec::max_symbol_size * max_words];
  switch (s.stride()) {
    case 1:
      load_padded<1>(s.rows, s.size, m);
      transpose_matrix<1>(s.rows, tr, s.size);
      load_padded<1>(tr, s.size, t);
      return penalty_fast_padded<1>(m, t, s.size, scratch);
    case 2:
      load_padded<2>(s.rows, s.size, m);
      transpose_matrix<2>(s.rows, tr, s.size);
      load_padded<2>(tr, s.size, t);
      return penalty_fast_padded<2>(m, t, s.size, scratch);
    default:
      load_padded<3>(s.rows, s.size, m);
      transpose_matrix<3>(s.rows, tr, s.size);
      load_padded<3>(tr, s.size, t);
      return penalty_fast_padded<3>(m, t, s.size, scratch);
  }
}

}  // namespace qrplate::core
