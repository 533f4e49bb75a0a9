// ISO/IEC 18004:2015 facts about QR Code Model 2 symbol versions 1-40, as tables and formulas.
// Every accessor is QRP_HD: the tables live in static constexpr locals because nvcc forbids
// device code from indexing a namespace-scope host constexpr array.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"

namespace qrplate {

// Error correction level. The enumerator order (L, M, Q, H) is the index order of the tables
// below; the two-bit value written into the format information is format_ecc_bits().
enum class ecc_level : std::uint8_t { L = 0, M = 1, Q = 2, H = 3 };

namespace spec {

inline constexpr int min_version = 1;
inline constexpr int max_version = 40;
inline constexpr int max_symbol_size = 177;        // 4 * 40 + 17
inline constexpr int max_total_codewords = 3706;   // version 40
inline constexpr int max_data_codewords = 2956;    // version 40-L
inline constexpr int max_ecc_codewords_per_block = 30;
inline constexpr int max_blocks = 81;              // version 40-H
inline constexpr int max_block_data_codewords = 123;  // long blocks of versions 27-L, 37-L, 38-L
inline constexpr int max_alignment_positions = 7;  // per axis, version 35+

QRP_HD constexpr bool valid_version(int version) { return version >= min_version && version <= max_version; }

// ISO 18004:2015 §5.3.1: a version-v symbol has 4v + 17 modules per side.
QRP_HD constexpr int symbol_size(int version) { return 4 * version + 17; }

// ISO 18004:2015 §6.4.1 Table 1: the two-bit error correction indicator of the format info.
QRP_HD constexpr std::uint32_t format_ecc_bits(ecc_level ecc)
{
  switch (ecc) {
    case ecc_level::L: return 1;
    case ecc_level::M: return 0;
    case ecc_level::Q: return 3;
    default: return 2;  // H
  }
}

// ISO 18004:2015 Table 9: error correction codewords per block, by level (L, M, Q, H) then
// version (index 0 unused).
QRP_HD inline int ecc_codewords_per_block(ecc_level ecc, int version)
{
  static constexpr std::int8_t table[4][41] = {
    {-1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28,
     28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
    {-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
     26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28},
    {-1, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30,
     28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
    {-1, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28,
     30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
  };
  return table[static_cast<int>(ecc)][version];
}

// ISO 18004:2015 Table 9: number of error correction blocks, by level then version.
QRP_HD inline int num_ecc_blocks(ecc_level ecc, int version)
{
  static constexpr std::int8_t table[4][41] = {
    {-1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8,
     8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25},
    {-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
     17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49},
    {-1, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20,
     23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68},
    {-1, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25,
     25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81},
  };
  return table[static_cast<int>(ecc)][version];
}

// Number of alignment patterns per axis (ISO 18004:2015 Annex E): 0 for version 1.
QRP_HD constexpr int num_alignment_positions(int version) { return version == 1 ? 0 : version / 7 + 2; }

// ISO 18004:2015 Annex E Table E.1: row/column coordinates of alignment pattern centres.
// Writes num_alignment_positions(version) values to out and returns that count.
QRP_HD inline int alignment_positions(int version, std::uint8_t out[max_alignment_positions])
{
  static constexpr std::uint8_t table[41][max_alignment_positions] = {
    {0},
    {0},
    {6, 18},
    {6, 22},
    {6, 26},
    {6, 30},
    {6, 34},
    {6, 22, 38},
    {6, 24, 42},
    {6, 26, 46},
    {6, 28, 50},
    {6, 30, 54},
    {6, 32, 58},
    {6, 34, 62},
    {6, 26, 46, 66},
    {6, 26, 48, 70},
    {6, 26, 50, 74},
    {6, 30, 54, 78},
    {6, 30, 56, 82},
    {6, 30, 58, 86},
    {6, 34, 62, 90},
    {6, 28, 50, 72, 94},
    {6, 26, 50, 74, 98},
    {6, 30, 54, 78, 102},
    {6, 28, 54, 80, 106},
    {6, 32, 58, 84, 110},
    {6, 30, 58, 86, 114},
    {6, 34, 62, 90, 118},
    {6, 26, 50, 74, 98, 122},
    {6, 30, 54, 78, 102, 126},
    {6, 26, 52, 78, 104, 130},
    {6, 30, 56, 82, 108, 134},
    {6, 34, 60, 86, 112, 138},
    {6, 30, 58, 86, 114, 142},
    {6, 34, 62, 90, 118, 146},
    {6, 30, 54, 78, 102, 126, 150},
    {6, 24, 50, 76, 102, 128, 154},
    {6, 28, 54, 80, 106, 132, 158},
    {6, 32, 58, 84, 110, 136, 162},
    {6, 26, 54, 82, 110, 138, 166},
    {6, 30, 58, 86, 114, 142, 170},
  };
  const int n = num_alignment_positions(version);
  for (int i = 0; i < n; ++i) out[i] = table[version][i];
  return n;
}

// Modules available for data and error correction codewords, remainder bits included:
// the symbol minus finder patterns with separators and format info (225), timing patterns,
// alignment patterns, and version information from version 7 on (ISO 18004:2015 Table 1).
QRP_HD constexpr int num_raw_data_modules(int version)
{
  const int size = symbol_size(version);
  int result = size * size - 3 * 64 - 31 - 2 * (size - 16);  // finders+separators+format, timing
  if (version >= 2) {
    const int n = num_alignment_positions(version);
    result -= (n * n - 3) * 25;  // the three corners with finders have no alignment pattern
    result += (n - 2) * 2 * 5;   // alignment patterns on the timing rows overlap them by 5 each
    if (version >= 7) result -= 36;  // two 6x3 version information blocks
  }
  return result;
}

// ISO 18004:2015 Table 1: total codewords and remainder bits.
QRP_HD constexpr int num_total_codewords(int version) { return num_raw_data_modules(version) / 8; }
QRP_HD constexpr int num_remainder_bits(int version) { return num_raw_data_modules(version) % 8; }

// ISO 18004:2015 Table 7: data codewords at a given level.
QRP_HD inline int num_data_codewords(int version, ecc_level ecc)
{
  return num_total_codewords(version) - ecc_codewords_per_block(ecc, version) * num_ecc_blocks(ecc, version);
}

// Block structure (ISO 18004:2015 §7.5.2, Table 9): the total codewords split into
// num_ecc_blocks blocks; the first `short_blocks` hold `short_data` data codewords, the rest
// one more. Every block has the same number of error correction codewords.
struct block_layout {
  int blocks;
  int short_blocks;
  int short_data;  // data codewords in a short block; long blocks have short_data + 1
  int ecc_per_block;
  int total_codewords;
  int data_codewords;
};

QRP_HD inline block_layout make_block_layout(int version, ecc_level ecc)
{
  block_layout b{};
  b.blocks = num_ecc_blocks(ecc, version);
  b.ecc_per_block = ecc_codewords_per_block(ecc, version);
  b.total_codewords = num_total_codewords(version);
  b.data_codewords = b.total_codewords - b.blocks * b.ecc_per_block;
  b.short_blocks = b.blocks - b.total_codewords % b.blocks;
  b.short_data = b.total_codewords / b.blocks - b.ecc_per_block;
  return b;
}

// Data encoding modes (ISO 18004:2015 §7.4, Table 2: mode indicators).
enum class segment_mode : std::uint8_t { numeric = 1, alphanumeric = 2, byte = 4, kanji = 8, eci = 7 };

// ISO 18004:2015 Table 3: bits of the character count indicator.
QRP_HD constexpr int char_count_bits(segment_mode mode, int version)
{
  const int cls = version <= 9 ? 0 : (version <= 26 ? 1 : 2);
  switch (mode) {
    case segment_mode::numeric: return cls == 0 ? 10 : (cls == 1 ? 12 : 14);
    case segment_mode::alphanumeric: return cls == 0 ? 9 : (cls == 1 ? 11 : 13);
    case segment_mode::byte: return cls == 0 ? 8 : 16;
    case segment_mode::kanji: return cls == 0 ? 8 : (cls == 1 ? 10 : 12);
    default: return 0;
  }
}

}  // namespace spec
}  // namespace qrplate
