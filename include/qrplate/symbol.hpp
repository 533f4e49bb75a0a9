// Bit-packed QR symbol matrices: the layout every backend writes and every consumer reads.
//
// Layout contract: a symbol of side `size` is `size` rows of `words_per_row(size)` 64-bit words;
// module (row i, column j) is bit (j % 64) of word (j / 64) of row i, least significant bit
// first. 1 = dark. Bits past `size` in the last word of a row are 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "qrplate/config.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate {

QRP_HD constexpr int words_per_row(int size) { return (size + 63) / 64; }
QRP_HD constexpr std::size_t words_per_symbol(int size)
{
  return static_cast<std::size_t>(size) * static_cast<std::size_t>(words_per_row(size));
}

// A non-owning view of one symbol (pointer + size), cheap to copy.
struct symbol_view {
  const std::uint64_t* rows = nullptr;
  int size = 0;

  QRP_HD int stride() const { return words_per_row(size); }
  QRP_HD bool module(int row, int col) const
  {
    return (rows[row * stride() + (col >> 6)] >> (col & 63)) & 1u;
  }
};

// One encoded symbol, owning its modules.
struct qr_symbol {
  int version = 0;
  ecc_level ecc = ecc_level::L;
  int mask = 0;
  int size = 0;
  std::vector<std::uint64_t> rows;  // words_per_symbol(size) words, layout above

  symbol_view view() const { return {rows.data(), size}; }
  bool module(int row, int col) const { return view().module(row, col); }
};

}  // namespace qrplate
