// Drawing a symbol's function patterns (ISO 18004:2015 §6.3): finder patterns with separators,
// timing patterns, alignment patterns, the dark module, version information, the reserved
// format information area; and the data masks of §7.8.2.
// Matrices are `size` rows of W words (bit_matrix.hpp). Each routine writes two matrices:
// `dark` (module colours) and `reserved` (1 = function module, never masked or used for data).
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/spec/format_info.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

struct function_canvas {
  std::uint64_t* dark;
  std::uint64_t* reserved;
  int size;
  int stride;  // words per row

  QRP_HD void set(int row, int col, bool is_dark)
  {
    set_bit(dark + row * stride, col, is_dark);
    set_bit(reserved + row * stride, col, true);
  }
};

// A 7x7 finder pattern centred on (row, col) with its light separator ring, clipped to the symbol.
QRP_HD inline void draw_finder_pattern(function_canvas& c, int row, int col)
{
  for (int dy = -4; dy <= 4; ++dy) {
    for (int dx = -4; dx <= 4; ++dx) {
      const int r = row + dy, k = col + dx;
      if (r < 0 || r >= c.size || k < 0 || k >= c.size) continue;
      const int d = (dy < 0 ? -dy : dy) > (dx < 0 ? -dx : dx) ? (dy < 0 ? -dy : dy) : (dx < 0 ? -dx : dx);
      c.set(r, k, d != 2 && d != 4);  // rings: 0-1 dark core, 2 light, 3 dark, 4 separator
    }
  }
}

QRP_HD inline void draw_alignment_pattern(function_canvas& c, int row, int col)
{
  for (int dy = -2; dy <= 2; ++dy)
    for (int dx = -2; dx <= 2; ++dx) {
      const int d = (dy < 0 ? -dy : dy) > (dx < 0 ? -dx : dx) ? (dy < 0 ? -dy : dy) : (dx < 0 ? -dx : dx);
      c.set(row + dy, col + dx, d != 1);
    }
}

// The 15 format information bits of §7.9.1 in both copies, bit 14 first (Figure 25).
// With `reserve_only` the area is reserved and left light.
QRP_HD inline void draw_format_bits(function_canvas& c, std::uint32_t bits, bool reserve_only)
{
  const int n = c.size;
  auto bit = [&](int i) { return !reserve_only && ((bits >> i) & 1u); };
  for (int i = 0; i <= 5; ++i) c.set(i, 8, bit(i));  // bits 0..5 down column 8
  c.set(7, 8, bit(6));
  c.set(8, 8, bit(7));
  c.set(8, 7, bit(8));
  for (int i = 9; i < 15; ++i) c.set(8, 14 - i, bit(i));  // bits 9..14 leftwards along row 8
  for (int i = 0; i < 8; ++i) c.set(8, n - 1 - i, bit(i));  // second copy, top right
  for (int i = 8; i < 15; ++i) c.set(n - 15 + i, 8, bit(i));  // bottom left
}

// All function patterns of `version` except real format bits (reserved, light).
// dark/reserved: size * stride words each, zeroed by the caller.
QRP_HD inline void draw_function_patterns(int version, std::uint64_t* dark, std::uint64_t* reserved)
{
  const int n = spec::symbol_size(version);
  function_canvas c{dark, reserved, n, words_per_row(n)};
  for (int i = 0; i < n; ++i) {  // timing patterns, §6.3.5
    c.set(6, i, i % 2 == 0);
    c.set(i, 6, i % 2 == 0);
  }
  draw_finder_pattern(c, 3, 3);
  draw_finder_pattern(c, 3, n - 4);
  draw_finder_pattern(c, n - 4, 3);
  std::uint8_t pos[spec::max_alignment_positions];
  const int na = spec::alignment_positions(version, pos);
  for (int i = 0; i < na; ++i)
    for (int j = 0; j < na; ++j) {
      const bool on_finder = (i == 0 && j == 0) || (i == 0 && j == na - 1) || (i == na - 1 && j == 0);
      if (!on_finder) draw_alignment_pattern(c, pos[i], pos[j]);
    }
  draw_format_bits(c, 0, true);
  c.set(n - 8, 8, true);  // the dark module (§6.3.9) beside the second format copy
  if (version >= 7) {  // §7.10: two 6x3 blocks, bit 0 nearest the origin
    const std::uint32_t bits = spec::version_info_bits(version);
    for (int i = 0; i < 18; ++i) {
      const bool d = (bits >> i) & 1u;
      const int a = n - 11 + i % 3, b = i / 3;
      c.set(b, a, d);  // top right block: rows 0..5, columns n-11..n-9
      c.set(a, b, d);  // bottom left block
    }
  }
}

// ISO 18004:2015 Table 10: mask condition for module (i = row, j = column).
QRP_HD constexpr bool mask_bit(int mask, int i, int j)
{
  switch (mask) {
    case 0: return (i + j) % 2 == 0;
    case 1: return i % 2 == 0;
    case 2: return j % 3 == 0;
    case 3: return (i + j) % 3 == 0;
    case 4: return (i / 2 + j / 3) % 2 == 0;
    case 5: return (i * j) % 2 + (i * j) % 3 == 0;
    case 6: return ((i * j) % 2 + (i * j) % 3) % 2 == 0;
    default: return ((i + j) % 2 + (i * j) % 3) % 2 == 0;
  }
}

// Visits the data module positions in placement order (§7.7.3): two-column strips from the
// right edge, alternately upwards and downwards, skipping column 6 and function modules.
// f(row, col) is called once per data module, remainder bits included.
template <typename F>
QRP_HD inline void for_each_data_module(const std::uint64_t* reserved, int size, F&& f)
{
  const int stride = words_per_row(size);
  for (int right = size - 1; right >= 1; right -= 2) {
    if (right == 6) right = 5;  // the vertical timing pattern is skipped as a whole column
    const bool upward = ((right + 1) & 2) == 0;
    for (int v = 0; v < size; ++v) {
      const int row = upward ? size - 1 - v : v;
      for (int k = 0; k < 2; ++k) {
        const int col = right - k;
        if (!get_bit(reserved + row * stride, col)) f(row, col);
      }
    }
  }
}

}  // namespace qrplate::core
