// The spec layer (include/qrplate/spec) against the standard's own tables, typed in here as
// literals. Sources for the literals, none of them this project's code:
//   format information   ISO/IEC 18004 Annex C, Table C.1 (as also tabulated by ZXing's
//                        FormatInformation FORMAT_INFO_DECODE_LOOKUP)
//   version information  ISO/IEC 18004 Annex D, Table D.1 (ZXing's Version VERSION_DECODE_INFO)
//   codeword counts, block structure, alignment positions: ISO Tables 1, 7, 9 and Annex E, as
//                        tabulated independently by Project Nayuki's qrcodegen 1.8.0 (Python)
#include <gtest/gtest.h>

#include <cstdint>

#include "qrplate/spec/format_info.hpp"
#include "qrplate/spec/versions.hpp"

namespace {

using qrplate::ecc_level;
namespace spec = qrplate::spec;

constexpr ecc_level levels[4] = {ecc_level::L, ecc_level::M, ecc_level::Q, ecc_level::H};

// ---- ISO 18004 Annex C, Table C.1: format information after masking with 101010000010010 ------
// Rows in our enum order L, M, Q, H (indicator bits 01, 00, 11, 10); columns mask 0..7.
constexpr std::uint32_t format_table[4][8] = {
  {0x77C4, 0x72F3, 0x7DAA, 0x789D, 0x662F, 0x6318, 0x6C41, 0x6976},  // L (01)
  {0x5412, 0x5125, 0x5E7C, 0x5B4B, 0x45F9, 0x40CE, 0x4F97, 0x4AA0},  // M (00)
  {0x355F, 0x3068, 0x3F31, 0x3A06, 0x24B4, 0x2183, 0x2EDA, 0x2BED},  // Q (11)
  {0x1689, 0x13BE, 0x1CE7, 0x19D0, 0x0762, 0x0255, 0x0D0C, 0x083B},  // H (10)
};

TEST(FormatInfo, MatchesAnnexCTable)
{
  for (int e = 0; e < 4; ++e)
    for (int mask = 0; mask < 8; ++mask)
      EXPECT_EQ(spec::format_info_bits(levels[e], mask), format_table[e][mask]) << "level " << e << " mask " << mask;
}

TEST(FormatInfo, IndicatorBits)
{
  // ISO 18004 §7.9.1: L 01, M 00, Q 11, H 10.
  EXPECT_EQ(spec::format_ecc_bits(ecc_level::L), 1u);
  EXPECT_EQ(spec::format_ecc_bits(ecc_level::M), 0u);
  EXPECT_EQ(spec::format_ecc_bits(ecc_level::Q), 3u);
  EXPECT_EQ(spec::format_ecc_bits(ecc_level::H), 2u);
  // The five data bits sit unchanged (apart from the 0x5412 mask) at the top of the word.
  for (int e = 0; e < 4; ++e)
    for (int mask = 0; mask < 8; ++mask)
      EXPECT_EQ((format_table[e][mask] ^ 0x5412u) >> 10, (spec::format_ecc_bits(levels[e]) << 3) | unsigned(mask));
}

// ---- ISO 18004 Annex D, Table D.1: version information, versions 7..40 ------------------------
constexpr std::uint32_t version_table[34] = {
  0x07C94, 0x085BC, 0x09A99, 0x0A4D3, 0x0BBF6, 0x0C762, 0x0D847, 0x0E60D, 0x0F928,  //  7..15
  0x10B78, 0x1145D, 0x12A17, 0x13532, 0x149A6, 0x15683, 0x168C9, 0x177EC,           // 16..23
  0x18EC4, 0x191E1, 0x1AFAB, 0x1B08E, 0x1CC1A, 0x1D33F, 0x1ED75, 0x1F250,           // 24..31
  0x209D5, 0x216F0, 0x228BA, 0x2379F, 0x24B0B, 0x2542E, 0x26A64, 0x27541, 0x28C69,  // 32..40
};

TEST(VersionInfo, MatchesAnnexDTable)
{
  for (int v = 7; v <= 40; ++v) EXPECT_EQ(spec::version_info_bits(v), version_table[v - 7]) << "version " << v;
}

// ---- ISO 18004 Table 1 ---------------------------------------------------------------------------
TEST(Versions, SymbolSize)
{
  EXPECT_EQ(spec::symbol_size(1), 21);
  EXPECT_EQ(spec::symbol_size(2), 25);
  EXPECT_EQ(spec::symbol_size(7), 45);
  EXPECT_EQ(spec::symbol_size(14), 73);
  EXPECT_EQ(spec::symbol_size(40), 177);
  EXPECT_EQ(spec::max_symbol_size, 177);
  EXPECT_FALSE(spec::valid_version(0));
  EXPECT_TRUE(spec::valid_version(1));
  EXPECT_TRUE(spec::valid_version(40));
  EXPECT_FALSE(spec::valid_version(41));
}

constexpr int total_codewords[41] = {
  0,    26,   44,   70,   100,  134,  172,  196,  242,  292,  346,  404,  466,  532,
  581,  655,  733,  815,  901,  991,  1085, 1156, 1258, 1364, 1474, 1588, 1706, 1828,
  1921, 2051, 2185, 2323, 2465, 2611, 2761, 2876, 3034, 3196, 3362, 3532, 3706,
};
constexpr int remainder_bits[41] = {
  0, 0, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3, 3,
  4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0,
};

TEST(Versions, TotalCodewordsAndRemainderBits)
{
  // Spot values as printed in ISO Table 1.
  EXPECT_EQ(spec::num_total_codewords(1), 26);
  EXPECT_EQ(spec::num_total_codewords(2), 44);
  EXPECT_EQ(spec::num_total_codewords(7), 196);
  EXPECT_EQ(spec::num_total_codewords(10), 346);
  EXPECT_EQ(spec::num_total_codewords(14), 581);
  EXPECT_EQ(spec::num_total_codewords(27), 1828);
  EXPECT_EQ(spec::num_total_codewords(40), 3706);
  EXPECT_EQ(spec::num_remainder_bits(1), 0);
  EXPECT_EQ(spec::num_remainder_bits(2), 7);
  EXPECT_EQ(spec::num_remainder_bits(14), 3);
  EXPECT_EQ(spec::num_remainder_bits(21), 4);
  EXPECT_EQ(spec::num_remainder_bits(28), 3);
  EXPECT_EQ(spec::num_remainder_bits(40), 0);
  EXPECT_EQ(spec::max_total_codewords, 3706);
  for (int v = 1; v <= 40; ++v) {
    EXPECT_EQ(spec::num_total_codewords(v), total_codewords[v]) << "version " << v;
    EXPECT_EQ(spec::num_remainder_bits(v), remainder_bits[v]) << "version " << v;
    // Every module not taken by a function pattern is a codeword bit or a remainder bit.
    EXPECT_EQ(spec::num_raw_data_modules(v), total_codewords[v] * 8 + remainder_bits[v]) << "version " << v;
  }
}

// ---- ISO 18004 Table 7: data codewords, levels L, M, Q, H by version 1..40 ---------------------
constexpr int data_codewords[4][40] = {
  {19,   34,   55,   80,   108,  136,  156,  194,  232,  274,  324,  370,  428,  461,
   523,  589,  647,  721,  795,  861,  932,  1006, 1094, 1174, 1276, 1370, 1468, 1531,
   1631, 1735, 1843, 1955, 2071, 2191, 2306, 2434, 2566, 2702, 2812, 2956},
  {16,   28,   44,   64,   86,   108,  124,  154,  182,  216,  254,  290,  334,  365,
   415,  453,  507,  563,  627,  669,  714,  782,  860,  914,  1000, 1062, 1128, 1193,
   1267, 1373, 1455, 1541, 1631, 1725, 1812, 1914, 1992, 2102, 2216, 2334},
  {13,  22,  34,  48,  62,  76,  88,   110,  132,  154,  180,  206,  244,  261,
   295, 325, 367, 397, 445, 485, 512,  568,  614,  664,  718,  754,  808,  871,
   911, 985, 1033, 1115, 1171, 1231, 1286, 1354, 1426, 1502, 1582, 1666},
  {9,   16,  26,  36,  46,  60,  66,  86,  100, 122, 140, 158, 180, 197,
   223, 253, 283, 313, 341, 385, 406, 442, 464, 514, 538, 596, 628, 661,
   701, 745, 793, 845, 901, 961, 986, 1054, 1096, 1142, 1222, 1276},
};

TEST(Versions, DataCodewordsMatchTable7)
{
  for (int e = 0; e < 4; ++e)
    for (int v = 1; v <= 40; ++v)
      EXPECT_EQ(spec::num_data_codewords(v, levels[e]), data_codewords[e][v - 1]) << "version " << v << " level " << e;
  EXPECT_EQ(spec::max_data_codewords, 2956);
}

// ---- ISO 18004 Table 9: error correction blocks and codewords per block -------------------------
constexpr int ecc_blocks[4][40] = {
  {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8,
   8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25},
  {1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
   17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49},
  {1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20,
   23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68},
  {1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25,
   25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81},
};
constexpr int ecc_per_block[4][40] = {
  {7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28,
   28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
  {10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
   26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28},
  {13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30,
   28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
  {17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28,
   30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30},
};

TEST(Versions, BlockStructureMatchesTable9)
{
  int max_blocks = 0, max_block_data = 0;
  for (int e = 0; e < 4; ++e)
    for (int v = 1; v <= 40; ++v) {
      SCOPED_TRACE("version " + std::to_string(v) + " level " + std::to_string(e));
      EXPECT_EQ(spec::num_ecc_blocks(levels[e], v), ecc_blocks[e][v - 1]);
      EXPECT_EQ(spec::ecc_codewords_per_block(levels[e], v), ecc_per_block[e][v - 1]);
      const spec::block_layout b = spec::make_block_layout(v, levels[e]);
      EXPECT_EQ(b.blocks, ecc_blocks[e][v - 1]);
      EXPECT_EQ(b.ecc_per_block, ecc_per_block[e][v - 1]);
      EXPECT_EQ(b.total_codewords, total_codewords[v]);
      EXPECT_EQ(b.data_codewords, data_codewords[e][v - 1]);
      // The blocks partition the codewords: short ones first, long ones one data codeword longer.
      EXPECT_GE(b.short_blocks, 1);
      EXPECT_LE(b.short_blocks, b.blocks);
      EXPECT_EQ(b.short_blocks * b.short_data + (b.blocks - b.short_blocks) * (b.short_data + 1), b.data_codewords);
      EXPECT_LE(b.ecc_per_block, spec::max_ecc_codewords_per_block);
      if (b.blocks > max_blocks) max_blocks = b.blocks;
      const int longest = b.short_data + (b.short_blocks < b.blocks ? 1 : 0);
      if (longest > max_block_data) max_block_data = longest;
    }
  EXPECT_EQ(max_blocks, spec::max_blocks);
  EXPECT_EQ(max_block_data, spec::max_block_data_codewords);
}

struct layout_case {
  int version;
  ecc_level ecc;
  int short_blocks, short_data, long_blocks, long_data, ecc_per_block;
};

TEST(Versions, BlockLayoutExamplesFromTable9)
{
  // (count, data codewords) pairs as printed in ISO Table 9, e.g. 5-Q: 2 x (33,15) + 2 x (34,16).
  const layout_case cases[] = {
    {1, ecc_level::L, 1, 19, 0, 20, 7},     {1, ecc_level::H, 1, 9, 0, 10, 17},
    {5, ecc_level::Q, 2, 15, 2, 16, 18},    {5, ecc_level::H, 2, 11, 2, 12, 22},
    {14, ecc_level::H, 11, 12, 5, 13, 24},  {15, ecc_level::L, 5, 87, 1, 88, 22},
    {36, ecc_level::M, 6, 47, 34, 48, 28},  {40, ecc_level::L, 19, 118, 6, 119, 30},
    {40, ecc_level::H, 20, 15, 61, 16, 30},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("version " + std::to_string(c.version));
    const spec::block_layout b = spec::make_block_layout(c.version, c.ecc);
    EXPECT_EQ(b.blocks, c.short_blocks + c.long_blocks);
    EXPECT_EQ(b.short_blocks, c.short_blocks);
    EXPECT_EQ(b.short_data, c.short_data);
    if (c.long_blocks > 0) {
      EXPECT_EQ(b.short_data + 1, c.long_data);
    }
    EXPECT_EQ(b.ecc_per_block, c.ecc_per_block);
  }
}

// ---- ISO 18004 Annex E, Table E.1: alignment pattern centre coordinates ------------------------
constexpr std::uint8_t alignment_table[41][7] = {
  {},
  {},
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

TEST(Versions, AlignmentPositionsMatchAnnexE)
{
  EXPECT_EQ(spec::num_alignment_positions(1), 0);
  EXPECT_EQ(spec::num_alignment_positions(2), 2);
  EXPECT_EQ(spec::num_alignment_positions(6), 2);
  EXPECT_EQ(spec::num_alignment_positions(7), 3);
  EXPECT_EQ(spec::num_alignment_positions(14), 4);
  EXPECT_EQ(spec::num_alignment_positions(35), 7);
  EXPECT_EQ(spec::num_alignment_positions(40), 7);
  for (int v = 1; v <= 40; ++v) {
    SCOPED_TRACE("version " + std::to_string(v));
    std::uint8_t got[spec::max_alignment_positions] = {};
    const int n = spec::alignment_positions(v, got);
    ASSERT_EQ(n, spec::num_alignment_positions(v));
    for (int i = 0; i < n; ++i) EXPECT_EQ(got[i], alignment_table[v][i]) << "index " << i;
    // The last centre is 7 modules in from the far edge.
    if (n > 0) {
      EXPECT_EQ(got[n - 1], spec::symbol_size(v) - 7);
    }
  }
}

// ---- ISO 18004 Table 3: character count indicator bits ------------------------------------------
TEST(Versions, CharCountBitsMatchTable3)
{
  using qrplate::spec::segment_mode;
  struct row {
    segment_mode mode;
    int bits[3];  // versions 1-9, 10-26, 27-40
  };
  const row table[] = {
    {segment_mode::numeric, {10, 12, 14}},
    {segment_mode::alphanumeric, {9, 11, 13}},
    {segment_mode::byte, {8, 16, 16}},
    {segment_mode::kanji, {8, 10, 12}},
  };
  for (const auto& r : table) {
    for (int v : {1, 5, 9}) EXPECT_EQ(spec::char_count_bits(r.mode, v), r.bits[0]) << "version " << v;
    for (int v : {10, 20, 26}) EXPECT_EQ(spec::char_count_bits(r.mode, v), r.bits[1]) << "version " << v;
    for (int v : {27, 33, 40}) EXPECT_EQ(spec::char_count_bits(r.mode, v), r.bits[2]) << "version " << v;
  }
  // Mode indicators, ISO Table 2.
  EXPECT_EQ(static_cast<int>(segment_mode::numeric), 0b0001);
  EXPECT_EQ(static_cast<int>(segment_mode::alphanumeric), 0b0010);
  EXPECT_EQ(static_cast<int>(segment_mode::byte), 0b0100);
  EXPECT_EQ(static_cast<int>(segment_mode::kanji), 0b1000);
  EXPECT_EQ(static_cast<int>(segment_mode::eci), 0b0111);
}

}  // namespace
