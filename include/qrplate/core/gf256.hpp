// Arithmetic in GF(2^8) with the QR Code field polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D),
// ISO 18004:2015 §7.5.2. Table-free, so it runs unchanged on host and device; hot loops use
// the per-generator tables of reed_solomon.hpp instead.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"

namespace qrplate::core {

inline constexpr unsigned gf_polynomial = 0x11D;

// Product of a and b (shift-and-add, reduced modulo 0x11D at every step).
QRP_HD constexpr std::uint8_t gf_mul(std::uint8_t a, std::uint8_t b)
{
  unsigned acc = 0;
  unsigned x = a;
  for (int bit = 0; bit < 8; ++bit) {
    acc ^= x & (0u - ((b >> bit) & 1u));
    x = (x << 1) ^ (gf_polynomial & (0u - (x >> 7)));
  }
  return static_cast<std::uint8_t>(acc);
}

// alpha^e for the primitive element alpha = 2.
QRP_HD constexpr std::uint8_t gf_exp2(int e)
{
  std::uint8_t r = 1;
  for (int i = 0; i < e % 255; ++i) r = gf_mul(r, 2);
  return r;
}

}  // namespace qrplate::core
