// Systematic Reed-Solomon encoding for QR Code blocks (ISO 18004:2015 §7.5.2): the error
// correction codewords are the remainder of data(x) * x^d divided by the generator
// g(x) = (x - a^0)(x - a^1)...(x - a^(d-1)).
//
// Two forms: rs_remainder_reference is the plain polynomial division; rs_remainder runs the
// same division as a byte-wide LFSR whose feedback products come from a 256-entry table per
// generator, so one data codeword costs one table row XOR and a 32-byte shift.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/gf256.hpp"

namespace qrplate::core {

inline constexpr int rs_max_degree = 30;  // the largest ECC block in QR Code (ISO Table 9)

// gen[0..degree-1]: coefficients of x^(degree-1) .. x^0 of g(x); the leading 1 is omitted.
QRP_HD inline void rs_generator(int degree, std::uint8_t* gen)
{
  for (int i = 0; i < degree; ++i) gen[i] = 0;
  gen[degree - 1] = 1;  // start from g(x) = 1, stored right-aligned
  std::uint8_t root = 1;
  for (int i = 0; i < degree; ++i) {
    // multiply by (x - root) == (x + root)
    for (int j = 0; j < degree; ++j) {
      gen[j] = gf_mul(gen[j], root);
      if (j + 1 < degree) gen[j] ^= gen[j + 1];
    }
    root = gf_mul(root, 2);
  }
}

// Plain division: ecc[0..degree-1] = data(x) * x^degree mod g(x), highest coefficient first.
QRP_HD inline void rs_remainder_reference(const std::uint8_t* data, int length, const std::uint8_t* gen,
                                          int degree, std::uint8_t* ecc)
{
  for (int i = 0; i < degree; ++i) ecc[i] = 0;
  for (int k = 0; k < length; ++k) {
    const std::uint8_t factor = static_cast<std::uint8_t>(data[k] ^ ecc[0]);
    for (int i = 0; i + 1 < degree; ++i) ecc[i] = static_cast<std::uint8_t>(ecc[i + 1] ^ gf_mul(gen[i], factor));
    ecc[degree - 1] = gf_mul(gen[degree - 1], factor);
  }
}

// Feedback table of one generator: rows[f] holds gen[i] * f for i = 0..degree-1, byte i of the
// 32-byte row at bit 8*(i%8) of word i/8 (little-endian lanes, so a byte shift is a word shift).
struct rs_table {
  std::uint64_t rows[256][4];
  int degree;
};

QRP_HD inline void rs_make_table(int degree, rs_table& t)
{
  std::uint8_t gen[rs_max_degree];
  rs_generator(degree, gen);
  t.degree = degree;
  for (int f = 0; f < 256; ++f) {
    for (int w = 0; w < 4; ++w) t.rows[f][w] = 0;
    for (int i = 0; i < degree; ++i)
      t.rows[f][i / 8] |= static_cast<std::uint64_t>(gf_mul(gen[i], static_cast<std::uint8_t>(f))) << (8 * (i % 8));
  }
}

// The remainder as the LFSR leaves it: byte i (0 = highest coefficient) at bit 8*(i%8) of word
// i/8. Four named words, picked by selects: indexed by a variable, an array of them lives in a
// GPU thread's local memory (the encode kernel's parity phase, the read kernel's block check).
struct rs_remainder_words {
  std::uint64_t w0, w1, w2, w3;

  QRP_HD std::uint8_t byte(int i) const
  {
    const int w = i >> 3;
    const std::uint64_t word = w == 0 ? w0 : w == 1 ? w1 : w == 2 ? w2 : w3;
    return static_cast<std::uint8_t>(word >> (8 * (i & 7)));
  }
};

QRP_HD inline rs_remainder_words rs_remainder_of(const std::uint8_t* data, int length, const rs_table& t)
{
  std::uint64_t r0 = 0, r1 = 0, r2 = 0, r3 = 0;
  for (int k = 0; k < length; ++k) {
    const unsigned f = (data[k] ^ static_cast<unsigned>(r0)) & 0xFFu;
    const std::uint64_t* row = t.rows[f];
    r0 = ((r0 >> 8) | (r1 << 56)) ^ row[0];
    r1 = ((r1 >> 8) | (r2 << 56)) ^ row[1];
    r2 = ((r2 >> 8) | (r3 << 56)) ^ row[2];
    r3 = (r3 >> 8) ^ row[3];
  }
  return rs_remainder_words{r0, r1, r2, r3};
}

// Same result as rs_remainder_reference with the generator of t.degree.
QRP_HD inline void rs_remainder(const std::uint8_t* data, int length, const rs_table& t, std::uint8_t* ecc)
{
  const rs_remainder_words r = rs_remainder_of(data, length, t);
  for (int i = 0; i < t.degree; ++i) ecc[i] = r.byte(i);
}

}  // namespace qrplate::core
