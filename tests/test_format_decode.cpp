// Format and version information reading by nearest valid word (core/format_decode.hpp).
// The valid words are the ISO tables themselves (Annex C Table C.1, Annex D Table D.1), written
// out here, so an error in spec::format_info_bits would also show. Flips of 1..3 bits are
// enumerated exhaustively; past that the reported distance is checked against a search written here.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

#include "qrplate/core/format_decode.hpp"

namespace {

using qrplate::ecc_level;
using qrplate::core::decode_format_info;
using qrplate::core::decode_version_info;

unsigned test_seed()
{
  static const unsigned seed = [] {
    const char* env = std::getenv("QRPLATE_TEST_SEED");
    const unsigned s = env ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : 20240612u;
    std::cout << "[ seed     ] QRPLATE_TEST_SEED=" << s << "\n";
    return s;
  }();
  return seed;
}

constexpr ecc_level levels[4] = {ecc_level::L, ecc_level::M, ecc_level::Q, ecc_level::H};

// ISO 18004 Annex C, Table C.1 (masked with 101010000010010); rows L, M, Q, H; columns mask 0..7.
constexpr std::uint32_t format_table[4][8] = {
    {0x77C4, 0x72F3, 0x7DAA, 0x789D, 0x662F, 0x6318, 0x6C41, 0x6976},
    {0x5412, 0x5125, 0x5E7C, 0x5B4B, 0x45F9, 0x40CE, 0x4F97, 0x4AA0},
    {0x355F, 0x3068, 0x3F31, 0x3A06, 0x24B4, 0x2183, 0x2EDA, 0x2BED},
    {0x1689, 0x13BE, 0x1CE7, 0x19D0, 0x0762, 0x0255, 0x0D0C, 0x083B},
};

// ISO 18004 Annex D, Table D.1: versions 7..40.
constexpr std::uint32_t version_table[34] = {
    0x07C94, 0x085BC, 0x09A99, 0x0A4D3, 0x0BBF6, 0x0C762, 0x0D847, 0x0E60D, 0x0F928, 0x10B78, 0x1145D, 0x12A17,
    0x13532, 0x149A6, 0x15683, 0x168C9, 0x177EC, 0x18EC4, 0x191E1, 0x1AFAB, 0x1B08E, 0x1CC1A, 0x1D33F, 0x1ED75,
    0x1F250, 0x209D5, 0x216F0, 0x228BA, 0x2379F, 0x24B0B, 0x2542E, 0x26A64, 0x27541, 0x28C69,
};

int bits_set(std::uint32_t x)
{
  int c = 0;
  for (int i = 0; i < 32; ++i) c += (x >> i) & 1u;
  return c;
}

struct nearest {
  int distance;
  int count;  // valid words at that distance
};

nearest nearest_format(std::uint32_t word)
{
  nearest n{99, 0};
  for (const auto& row : format_table)
    for (std::uint32_t w : row) {
      const int d = bits_set(word ^ w);
      if (d < n.distance)
        n = {d, 1};
      else if (d == n.distance)
        ++n.count;
    }
  return n;
}

nearest nearest_version(std::uint32_t word)
{
  nearest n{99, 0};
  for (std::uint32_t w : version_table) {
    const int d = bits_set(word ^ w);
    if (d < n.distance)
      n = {d, 1};
    else if (d == n.distance)
      ++n.count;
  }
  return n;
}

// Calls f(pattern) for every pattern of exactly k set bits among the low `width` bits.
template <class F>
void for_each_flip_pattern(int width, int k, F f)
{
  for (std::uint32_t x = 0; x < (1u << width); ++x)
    if (bits_set(x) == k) f(x);
}

// ---- Format information ----------------------------------------------------------------------------
TEST(FormatDecode, CodeHasMinimumDistanceSeven)
{
  int min_distance = 99;
  for (int a = 0; a < 32; ++a)
    for (int b = a + 1; b < 32; ++b)
      min_distance = std::min(min_distance, bits_set(format_table[a / 8][a % 8] ^ format_table[b / 8][b % 8]));
  EXPECT_EQ(min_distance, 7);
}

TEST(FormatDecode, EveryValidWordDecodesToItself)
{
  for (int e = 0; e < 4; ++e)
    for (int m = 0; m < 8; ++m) {
      ecc_level ecc = ecc_level::L;
      int mask = -1, distance = -1;
      ASSERT_TRUE(decode_format_info(format_table[e][m], ecc, mask, distance));
      EXPECT_EQ(ecc, levels[e]);
      EXPECT_EQ(mask, m);
      EXPECT_EQ(distance, 0);
    }
}

TEST(FormatDecode, UpToThreeFlippedBitsDecodeToTheWrittenWord)
{
  long checked = 0;
  for (int k = 1; k <= 3; ++k)
    for_each_flip_pattern(15, k, [&](std::uint32_t flips) {
      for (int e = 0; e < 4; ++e)
        for (int m = 0; m < 8; ++m) {
          ecc_level ecc = ecc_level::L;
          int mask = -1, distance = -1;
          const std::uint32_t read = format_table[e][m] ^ flips;
          ASSERT_TRUE(decode_format_info(read, ecc, mask, distance)) << std::hex << read;
          ASSERT_EQ(ecc, levels[e]) << std::hex << read;
          ASSERT_EQ(mask, m) << std::hex << read;
          ASSERT_EQ(distance, k) << std::hex << read;
          ++checked;
        }
    });
  EXPECT_EQ(checked, 32L * (15 + 105 + 455));
}

// Every 15-bit word: the reported distance is the true nearest distance; a word is returned
// exactly when it is the unique nearest within max_distance, and the one returned is at that distance.
TEST(FormatDecode, EveryFifteenBitWordReportsTheNearestDistance)
{
  int ambiguous = 0, past_three = 0;
  for (int max_distance : {3, 4, 7})
    for (std::uint32_t read = 0; read < (1u << 15); ++read) {
      const nearest expected = nearest_format(read);
      ecc_level ecc = ecc_level::L;
      int mask = -1, distance = -1;
      const bool ok = decode_format_info(read, ecc, mask, distance, max_distance);
      ASSERT_EQ(distance, expected.distance) << std::hex << read;
      ASSERT_EQ(ok, expected.distance <= max_distance && expected.count == 1) << std::hex << read;
      if (ok) {
        ASSERT_GE(mask, 0);
        ASSERT_LT(mask, 8);
        ASSERT_EQ(bits_set(read ^ format_table[static_cast<int>(ecc)][mask]), expected.distance) << std::hex << read;
      } else {
        ASSERT_EQ(mask, -1) << "outputs are left alone on failure";
      }
      if (max_distance == 3) {
        ambiguous += expected.count > 1;
        past_three += expected.distance > 3;
      }
    }
  // A perfect code would leave no word past 3; BCH(15,5) leaves many, some of them ties.
  EXPECT_GT(past_three, 0);
  EXPECT_GT(ambiguous, 0);
}

TEST(FormatDecode, FourOrMoreFlipsFailOrReportTheirDistance)
{
  std::mt19937 rng(test_seed());
  int failed = 0, other = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const int e = static_cast<int>(rng() % 4), m = static_cast<int>(rng() % 8);
    const int k = 4 + static_cast<int>(rng() % 4);
    std::uint32_t flips = 0;
    while (bits_set(flips) < k) flips |= 1u << (rng() % 15);
    const std::uint32_t read = format_table[e][m] ^ flips;
    ecc_level ecc = ecc_level::L;
    int mask = -1, distance = -1;
    const bool ok = decode_format_info(read, ecc, mask, distance);  // default max_distance 3
    ASSERT_EQ(distance, nearest_format(read).distance);
    if (!ok) {
      ++failed;
      ASSERT_GT(distance, 3);
    } else {
      // 4 flips are at least 3 from any other word, so a return is another word within 3.
      ASSERT_LE(distance, 3);
      ASSERT_TRUE(ecc != levels[e] || mask != m);
      ++other;
    }
  }
  std::cout << "[ info     ] 4..7 flipped format bits: " << failed << " rejected, " << other
            << " read as another word\n";
  EXPECT_GT(failed, 0);
  EXPECT_GT(other, 0);
}

TEST(FormatDecode, BitsAboveFifteenAreIgnored)
{
  ecc_level ecc = ecc_level::L;
  int mask = -1, distance = -1;
  ASSERT_TRUE(decode_format_info(0xFFFF8000u | format_table[2][5], ecc, mask, distance));
  EXPECT_EQ(ecc, ecc_level::Q);
  EXPECT_EQ(mask, 5);
  EXPECT_EQ(distance, 0);
}

// ---- Version information ---------------------------------------------------------------------------
TEST(VersionDecode, CodeHasMinimumDistanceEight)
{
  int min_distance = 99;
  for (int a = 0; a < 34; ++a)
    for (int b = a + 1; b < 34; ++b)
      min_distance = std::min(min_distance, bits_set(version_table[a] ^ version_table[b]));
  EXPECT_EQ(min_distance, 8);
}

TEST(VersionDecode, EveryValidWordDecodesToItself)
{
  for (int v = 7; v <= 40; ++v) {
    int version = -1, distance = -1;
    ASSERT_TRUE(decode_version_info(version_table[v - 7], version, distance));
    EXPECT_EQ(version, v);
    EXPECT_EQ(distance, 0);
  }
}

TEST(VersionDecode, UpToThreeFlippedBitsDecodeToTheWrittenWord)
{
  long checked = 0;
  for (int k = 1; k <= 3; ++k)
    for_each_flip_pattern(18, k, [&](std::uint32_t flips) {
      for (int v = 7; v <= 40; ++v) {
        int version = -1, distance = -1;
        const std::uint32_t read = version_table[v - 7] ^ flips;
        ASSERT_TRUE(decode_version_info(read, version, distance)) << std::hex << read;
        ASSERT_EQ(version, v) << std::hex << read;
        ASSERT_EQ(distance, k) << std::hex << read;
        ++checked;
      }
    });
  EXPECT_EQ(checked, 34L * (18 + 153 + 816));
}

TEST(VersionDecode, EveryEighteenBitWordReportsTheNearestDistance)
{
  int ties_at_four = 0;
  for (int max_distance : {3, 4})
    for (std::uint32_t read = 0; read < (1u << 18); ++read) {
      const nearest expected = nearest_version(read);
      int version = -1, distance = -1;
      const bool ok = decode_version_info(read, version, distance, max_distance);
      ASSERT_EQ(distance, expected.distance) << std::hex << read;
      ASSERT_EQ(ok, expected.distance <= max_distance && expected.count == 1) << std::hex << read;
      if (ok) {
        ASSERT_GE(version, 7);
        ASSERT_LE(version, 40);
        ASSERT_EQ(bits_set(read ^ version_table[version - 7]), expected.distance) << std::hex << read;
      } else {
        ASSERT_EQ(version, -1) << "outputs are left alone on failure";
      }
      if (max_distance == 4) ties_at_four += expected.distance == 4 && expected.count > 1;
    }
  EXPECT_GT(ties_at_four, 0) << "distance 8: words halfway between two versions exist and must be refused";
}

TEST(VersionDecode, FourOrMoreFlipsFailOrReportTheirDistance)
{
  std::mt19937 rng(test_seed() + 1);
  int failed = 0, other = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const int v = 7 + static_cast<int>(rng() % 34);
    const int k = 4 + static_cast<int>(rng() % 5);
    std::uint32_t flips = 0;
    while (bits_set(flips) < k) flips |= 1u << (rng() % 18);
    const std::uint32_t read = version_table[v - 7] ^ flips;
    int version = -1, distance = -1;
    const bool ok = decode_version_info(read, version, distance);
    ASSERT_EQ(distance, nearest_version(read).distance);
    if (!ok) {
      ++failed;
      ASSERT_GT(distance, 3);
    } else {
      ASSERT_LE(distance, 3);
      ASSERT_NE(version, v) << "4+ flips from v cannot be within 3 of v";
      ++other;
    }
  }
  std::cout << "[ info     ] 4..8 flipped version bits: " << failed << " rejected, " << other
            << " read as another version\n";
  EXPECT_GT(failed, 0);
}

}  // namespace
