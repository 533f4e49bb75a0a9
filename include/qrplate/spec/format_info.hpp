// Format information BCH(15,5) and version information BCH(18,6) (ISO 18004:2015 §7.9, §7.10,
// Annex C and D). Computed, not tabulated; the tests hold them to the standard's tables.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::spec {

inline constexpr std::uint32_t format_info_mask = 0x5412;  // ISO 18004:2015 §7.9.1
inline constexpr std::uint32_t format_generator = 0x537;   // x^10+x^8+x^5+x^4+x^2+x+1
inline constexpr std::uint32_t version_generator = 0x1F25; // x^12+x^11+x^10+x^9+x^8+x^5+x^2+1

// Remainder of `value << degree` divided by `generator` (of the given degree) over GF(2).
QRP_HD constexpr std::uint32_t bch_remainder(std::uint32_t value, std::uint32_t generator, int degree)
{
  std::uint32_t rem = value << degree;
  for (int bit = 31; bit >= degree; --bit)
    if (rem & (1u << bit)) rem ^= generator << (bit - degree);
  return rem;
}

// The 15-bit format information word for an error correction level and mask, masked with
// 0x5412; bit 14 is the most significant (first) bit.
QRP_HD constexpr std::uint32_t format_info_bits(ecc_level ecc, int mask)
{
  const std::uint32_t data = (format_ecc_bits(ecc) << 3) | static_cast<std::uint32_t>(mask);
  return ((data << 10) | bch_remainder(data, format_generator, 10)) ^ format_info_mask;
}

// The 18-bit version information word (versions 7..40), not masked; bit 17 is the MSB.
QRP_HD constexpr std::uint32_t version_info_bits(int version)
{
  const auto v = static_cast<std::uint32_t>(version);
  return (v << 12) | bch_remainder(v, version_generator, 12);
}

}  // namespace qrplate::spec
