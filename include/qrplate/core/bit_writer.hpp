// An MSB-first bit appender over a caller-provided byte buffer (QR bit streams are big-endian).
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"

namespace qrplate::core {

struct bit_writer {
  std::uint8_t* bytes;  // capacity_bits / 8 bytes, zeroed by the caller
  int capacity_bits;
  int length = 0;       // bits written so far
  bool overflow = false;

  // Appends the low `count` bits of `value`, most significant first (count 0..31).
  QRP_HD void append(std::uint32_t value, int count)
  {
    if (length + count > capacity_bits) {
      overflow = true;
      return;
    }
    for (int i = count - 1; i >= 0; --i, ++length)
      bytes[length >> 3] = static_cast<std::uint8_t>(bytes[length >> 3] | (((value >> i) & 1u) << (7 - (length & 7))));
  }
};

}  // namespace qrplate::core
