// Reading format information (ISO 18004:2015 §7.9, Annex C) and version information (§7.10,
// Annex D) by nearest valid word. The BCH(15,5) format code has minimum distance 7 and the
// BCH(18,6) version code minimum distance 8, so up to 3 bit errors always lead back to the word
// that was written; the standard's recommended decoding (Annex C.2, D.2) is exactly this
// nearest-word search over the 32 and 34 valid words.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/spec/format_info.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

// Number of differing bits between two words (POPC on a GPU).
QRP_HD inline int hamming_distance(std::uint32_t a, std::uint32_t b) { return popcount64(a ^ b); }

namespace detail {
// The 32 valid format words, level * 8 + mask, computed at compile time (a code read looks at all
// of them twice; computing each word there was most of the read's format step).
struct format_words {
  std::uint32_t word[32];
  QRP_HD constexpr format_words() : word{}
  {
    for (int k = 0; k < 32; ++k) word[k] = spec::format_info_bits(static_cast<ecc_level>(k >> 3), k & 7);
  }
};
}  // namespace detail

// bits15: the 15 format bits as read (bit 14 first, still masked with 0x5412; higher bits are
// ignored). Finds the valid word nearest to it. `distance` always receives that nearest distance.
// Returns true, with `ecc` and `mask` of the nearest word, when the distance is <= max_distance
// and no other valid word is equally near (a tie is only possible past 3 errors); otherwise
// returns false and leaves `ecc` and `mask` unchanged.
QRP_HD inline bool decode_format_info(std::uint32_t bits15, ecc_level& ecc, int& mask, int& distance,
                                      int max_distance = 3)
{
  constexpr detail::format_words words;
  const std::uint32_t read = bits15 & 0x7FFFu;
  int best = 16, ties = 0, best_level = 0, best_mask = 0;
  QRP_UNROLL
  for (int level = 0; level < 4; ++level)
    QRP_UNROLL
    for (int m = 0; m < 8; ++m) {
      const int d = hamming_distance(read, words.word[level * 8 + m]);
      if (d < best) {
        best = d;
        ties = 1;
        best_level = level;
        best_mask = m;
      } else if (d == best) {
        ++ties;
      }
    }
  distance = best;
  if (best > max_distance || ties != 1) return false;
  ecc = static_cast<ecc_level>(best_level);
  mask = best_mask;
  return true;
}

// bits18: the 18 version bits as read (bit 17 first, not masked; higher bits are ignored).
// Same contract as decode_format_info over the words of versions 7..40.
QRP_HD inline bool decode_version_info(std::uint32_t bits18, int& version, int& distance, int max_distance = 3)
{
  const std::uint32_t read = bits18 & 0x3FFFFu;
  int best = 19, ties = 0, best_version = 0;
  for (int v = 7; v <= spec::max_version; ++v) {
    const int d = hamming_distance(read, spec::version_info_bits(v));
    if (d < best) {
      best = d;
      ties = 1;
      best_version = v;
    } else if (d == best) {
      ++ties;
    }
  }
  distance = best;
  if (best > max_distance || ties != 1) return false;
  version = best_version;
  return true;
}

}  // namespace qrplate::core
