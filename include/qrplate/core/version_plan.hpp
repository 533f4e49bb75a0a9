// Everything that is the same for every symbol of one (version, ECC level): block layout, the
// Reed-Solomon feedback table, the function patterns, the placement order of data bits, and per
// mask the XOR overlay (mask pattern on data modules plus that mask's format bits) in row and in
// column orientation. Built once, then shared read-only by every code of a batch (by every CPU
// thread, and on the GPU by every thread of a kernel).
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/core/function_patterns.hpp"
#include "qrplate/core/reed_solomon.hpp"
#include "qrplate/spec/format_info.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

inline constexpr int max_matrix_words = spec::max_symbol_size * max_words;
inline constexpr int max_known_modules = 1651;  // version 40: function modules less the 31 format modules

// True for the 31 modules of the format information of a size-n symbol (§7.9.1): their colour
// depends on the level and mask, so they cannot serve as known references.
QRP_HD constexpr bool is_format_module(int n, int row, int col)
{
  if (row == 8 && (col <= 8 || col >= n - 8)) return col != 6;
  if (col == 8 && (row <= 8 || row >= n - 7)) return row != 6;
  return false;
}
inline constexpr int max_data_modules = 29648;  // num_raw_data_modules(40)
static_assert(spec::num_raw_data_modules(40) == max_data_modules, "placement table size");

struct version_plan {
  int version;
  ecc_level ecc;
  int size;
  int words;  // words per row
  spec::block_layout layout;
  int data_modules;  // 8 * total codewords + remainder bits
  rs_table rs;
  std::uint64_t base[max_matrix_words];      // function pattern colours, format area light
  std::uint64_t reserved[max_matrix_words];  // 1 = function module
  std::uint64_t mask_rows[8][max_matrix_words];
  std::uint64_t mask_cols[8][max_matrix_words];
  // placement[k]: where data bit k goes, as row * 64 * words + column (fits 16 bits: < 33984).
  std::uint16_t placement[max_data_modules];
  // Most codewords fill a 2-wide, 4-high block of one column pair (§7.7.3): codeword k then
  // puts bits 7-2t and 6-2t at bits shift+1 and shift of word slot_first[k] + t * slot_step[k].
  // slot_shift[k] < 0 marks the others (turns, function patterns, a pair split across words),
  // which take the bit-by-bit path through `placement`.
  std::int32_t slot_first[spec::max_total_codewords];
  std::int16_t slot_step[spec::max_total_codewords];
  std::int8_t slot_shift[spec::max_total_codewords];
  // The modules of known colour (function patterns, format modules excluded) as r * size + c, in
  // row-major order: what a reader fits its brightness plane to.
  std::uint16_t known[max_known_modules];
  int known_count;
};

// Fills `plan` for a valid (version, ecc). ~150 KB: allocate it, don't put it on a stack.
QRP_HD inline void build_version_plan(int version, ecc_level ecc, version_plan& plan)
{
  const int n = spec::symbol_size(version);
  const int w = words_per_row(n);
  plan.version = version;
  plan.ecc = ecc;
  plan.size = n;
  plan.words = w;
  plan.layout = spec::make_block_layout(version, ecc);
  rs_make_table(plan.layout.ecc_per_block, plan.rs);
  for (int i = 0; i < max_matrix_words; ++i) plan.base[i] = plan.reserved[i] = 0;
  draw_function_patterns(version, plan.base, plan.reserved);

  int k = 0;
  for_each_data_module(plan.reserved, n, [&](int row, int col) {
    plan.placement[k++] = static_cast<std::uint16_t>(row * 64 * w + col);
  });
  plan.data_modules = k;

  for (int cw = 0; cw < plan.layout.total_codewords; ++cw) {
    const std::uint16_t* pos = plan.placement + 8 * cw;
    const int row0 = pos[0] / (64 * w), right = pos[0] % (64 * w);
    const int dir = pos[2] / (64 * w) - row0;
    bool regular = (dir == 1 || dir == -1) && right >= 1 && (right - 1) / 64 == right / 64;
    for (int t = 0; regular && t < 4; ++t) {
      const int row = row0 + t * dir;
      regular = pos[2 * t] == row * 64 * w + right && pos[2 * t + 1] == row * 64 * w + right - 1;
    }
    plan.slot_first[cw] = row0 * w + right / 64;
    plan.slot_step[cw] = static_cast<std::int16_t>(dir * w);
    plan.slot_shift[cw] = static_cast<std::int8_t>(regular ? (right - 1) % 64 : -1);
  }

  plan.known_count = 0;
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c)
      if (get_bit(plan.reserved + r * w, c) && !is_format_module(n, r, c) && plan.known_count < max_known_modules)
        plan.known[plan.known_count++] = static_cast<std::uint16_t>(r * n + c);

  std::uint64_t scratch[max_matrix_words];
  for (int mask = 0; mask < 8; ++mask) {
    std::uint64_t* rows = plan.mask_rows[mask];
    for (int i = 0; i < max_matrix_words; ++i) rows[i] = 0;
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c)
        if (!get_bit(plan.reserved + r * w, c) && mask_bit(mask, r, c)) set_bit(rows + r * w, c, true);
    function_canvas canvas{rows, scratch, n, w};
    draw_format_bits(canvas, spec::format_info_bits(ecc, mask), false);
    switch (w) {
      case 1: transpose_matrix<1>(rows, plan.mask_cols[mask], n); break;
      case 2: transpose_matrix<2>(rows, plan.mask_cols[mask], n); break;
      default: transpose_matrix<3>(rows, plan.mask_cols[mask], n); break;
    }
  }
}

}  // namespace qrplate::core
