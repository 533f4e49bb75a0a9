// Small bit-matrix helpers shared by placement, masking and penalty scoring. A matrix here is
// rows of `W` 64-bit words (W = words_per_row(size) <= 3), module (i, j) at bit j % 64 of word
// j / 64 of row i, 1 = dark: the layout of symbol.hpp.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/spec/versions.hpp"
#include "qrplate/symbol.hpp"

namespace qrplate::core {

inline constexpr int max_words = 3;  // words_per_row(177)

QRP_HD inline int popcount64(std::uint64_t x)
{
#if defined(__CUDA_ARCH__)
  return __popcll(x);
#else
  return __builtin_popcountll(x);
#endif
}

// Index of the lowest set bit; x != 0.
QRP_HD inline int ctz64(std::uint64_t x)
{
#if defined(__CUDA_ARCH__)
  return __ffsll(static_cast<long long>(x)) - 1;
#else
  return __builtin_ctzll(x);
#endif
}

QRP_HD inline void set_bit(std::uint64_t* row, int col, bool value)
{
  const std::uint64_t m = std::uint64_t{1} << (col & 63);
  row[col >> 6] = value ? (row[col >> 6] | m) : (row[col >> 6] & ~m);
}

QRP_HD inline bool get_bit(const std::uint64_t* row, int col) { return (row[col >> 6] >> (col & 63)) & 1u; }

// Mask of the valid lanes of word w of a row of `size` modules.
QRP_HD inline std::uint64_t lane_mask(int size, int w)
{
  const int rest = size - 64 * w;
  return rest >= 64 ? ~std::uint64_t{0} : (rest <= 0 ? 0 : (std::uint64_t{1} << rest) - 1);
}

// ORs n bits of src starting at bit sbit into dst starting at bit dbit (LSB-first words). Reads
// only the source words that hold the n bits.
QRP_HD inline void or_bits(std::uint64_t* dst, std::uint64_t dbit, const std::uint64_t* src, std::uint64_t sbit,
                           std::uint64_t n)
{
  while (n > 0) {
    const std::uint64_t take = n < 64 - (dbit & 63) ? n : 64 - (dbit & 63);
    const std::uint64_t sw = sbit >> 6, so = sbit & 63;
    std::uint64_t v = src[sw] >> so;
    if (so != 0 && so + take > 64) v |= src[sw + 1] << (64 - so);
    if (take < 64) v &= (std::uint64_t{1} << take) - 1;
    dst[dbit >> 6] |= v << (dbit & 63);
    dbit += take;
    sbit += take;
    n -= take;
  }
}

// Transposes a 64x64 bit block in place: bit j of a[i] <-> bit i of a[j]. Six rounds of
// swapping off-diagonal sub-blocks of halving size.
QRP_HD inline void transpose64(std::uint64_t a[64])
{
  std::uint64_t m = 0x00000000FFFFFFFFull;
  for (int width = 32; width != 0; width >>= 1, m ^= m << width) {
    for (int k = 0; k < 64; k = (k + width + 1) & ~width) {
      const std::uint64_t t = ((a[k] >> width) ^ a[k + width]) & m;
      a[k] ^= t << width;
      a[k + width] ^= t;
    }
  }
}

// dst (size rows, stride W) = transpose of src (size rows, stride W).
template <int W>
QRP_HD inline void transpose_matrix(const std::uint64_t* src, std::uint64_t* dst, int size)
{
  std::uint64_t block[64];
  for (int bi = 0; bi < W; ++bi) {      // block row: source rows 64*bi ..
    for (int bj = 0; bj < W; ++bj) {    // block column: source word bj
      for (int r = 0; r < 64; ++r) {
        const int row = 64 * bi + r;
        block[r] = row < size ? src[row * W + bj] : 0;
      }
      transpose64(block);
      for (int r = 0; r < 64; ++r) {
        const int row = 64 * bj + r;
        if (row < size) dst[row * W + bi] = block[r];
      }
    }
  }
}

}  // namespace qrplate::core
