// GF(256) arithmetic and Reed-Solomon error correction codewords (ISO 18004:2015 §7.5.2).
// Golden values: the ISO Annex I worked example, the well-known "HELLO WORLD" 1-M example, and the
// generator polynomials of ISO Annex A. Property checks use field arithmetic written here, not the
// code under test, and print their seed (override with QRPLATE_TEST_SEED=<n>).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "qrplate/core/gf256.hpp"
#include "qrplate/core/reed_solomon.hpp"

namespace {

using qrplate::core::gf_mul;
using qrplate::core::rs_generator;
using qrplate::core::rs_make_table;
using qrplate::core::rs_remainder;
using qrplate::core::rs_remainder_reference;
using qrplate::core::rs_table;

// ---- An independent GF(256): carry-less product, then long division by x^8+x^4+x^3+x^2+1 ----
unsigned slow_mul(unsigned a, unsigned b)
{
  unsigned product = 0;  // up to degree 14
  for (int i = 0; i < 8; ++i)
    if ((b >> i) & 1u) product ^= a << i;
  for (int bit = 14; bit >= 8; --bit)
    if ((product >> bit) & 1u) product ^= 0x11Du << (bit - 8);
  return product;
}

struct field_tables {
  std::uint8_t exp[512];
  int log[256];
  field_tables()
  {
    unsigned x = 1;
    for (int i = 0; i < 255; ++i) {
      exp[i] = static_cast<std::uint8_t>(x);
      exp[i + 255] = static_cast<std::uint8_t>(x);
      log[x] = i;
      x = slow_mul(x, 2);
    }
    exp[510] = exp[0];
    exp[511] = exp[1];
    log[0] = -1;
  }
  std::uint8_t mul(std::uint8_t a, std::uint8_t b) const
  {
    if (a == 0 || b == 0) return 0;
    return exp[log[a] + log[b]];
  }
};

const field_tables& gf()
{
  static const field_tables t;
  return t;
}

// Evaluates c[0] x^(n-1) + ... + c[n-1] at x (Horner).
std::uint8_t poly_eval(const std::vector<std::uint8_t>& c, std::uint8_t x)
{
  std::uint8_t y = 0;
  for (std::uint8_t coeff : c) y = static_cast<std::uint8_t>(gf().mul(y, x) ^ coeff);
  return y;
}

unsigned test_seed()
{
  static const unsigned seed = [] {
    const char* env = std::getenv("QRPLATE_TEST_SEED");
    const unsigned s = env ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : 20240601u;
    std::cout << "[ seed     ] QRPLATE_TEST_SEED=" << s << "\n";
    return s;
  }();
  return seed;
}

std::vector<std::uint8_t> ecc_reference(const std::vector<std::uint8_t>& data, int degree)
{
  std::vector<std::uint8_t> gen(static_cast<std::size_t>(degree));
  rs_generator(degree, gen.data());
  std::vector<std::uint8_t> ecc(static_cast<std::size_t>(degree), 0xA5);
  rs_remainder_reference(data.data(), static_cast<int>(data.size()), gen.data(), degree, ecc.data());
  return ecc;
}

std::vector<std::uint8_t> ecc_fast(const std::vector<std::uint8_t>& data, int degree)
{
  auto table = std::make_unique<rs_table>();
  rs_make_table(degree, *table);
  std::vector<std::uint8_t> ecc(static_cast<std::size_t>(degree), 0x5A);
  rs_remainder(data.data(), static_cast<int>(data.size()), *table, ecc.data());
  return ecc;
}

// ---- GF(256) --------------------------------------------------------------------------------------
TEST(GF256, ExhaustiveAgainstShiftAndAdd)
{
  for (unsigned a = 0; a < 256; ++a)
    for (unsigned b = 0; b < 256; ++b) {
      const unsigned got = gf_mul(static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b));
      if (got != slow_mul(a, b)) {
        FAIL() << "gf_mul(" << a << ", " << b << ") = " << got << ", expected " << slow_mul(a, b);
      }
    }
}

TEST(GF256, FieldProperties)
{
  for (unsigned a = 0; a < 256; ++a) {
    const auto x = static_cast<std::uint8_t>(a);
    EXPECT_EQ(gf_mul(x, 1), x);
    EXPECT_EQ(gf_mul(1, x), x);
    EXPECT_EQ(gf_mul(x, 0), 0);
    int inverses = 0;
    for (unsigned b = 0; b < 256; ++b) {
      const auto y = static_cast<std::uint8_t>(b);
      ASSERT_EQ(gf_mul(x, y), gf_mul(y, x)) << a << " * " << b;
      if (gf_mul(x, y) == 1) ++inverses;
    }
    EXPECT_EQ(inverses, a == 0 ? 0 : 1) << "element " << a;
  }
  // alpha = 2 is primitive for 0x11D: its powers run through all 255 non-zero elements.
  std::vector<bool> seen(256, false);
  std::uint8_t p = 1;
  for (int i = 0; i < 255; ++i) {
    EXPECT_FALSE(seen[p]) << "alpha^" << i;
    seen[p] = true;
    p = gf_mul(p, 2);
  }
  EXPECT_EQ(p, 1);
  EXPECT_EQ(gf_mul(0x80, 2), 0x1D);  // x^8 = x^4 + x^3 + x^2 + 1
  // Associativity and distributivity on a seeded sample.
  std::mt19937 rng(test_seed());
  for (int i = 0; i < 20000; ++i) {
    const auto a = static_cast<std::uint8_t>(rng());
    const auto b = static_cast<std::uint8_t>(rng());
    const auto c = static_cast<std::uint8_t>(rng());
    ASSERT_EQ(gf_mul(gf_mul(a, b), c), gf_mul(a, gf_mul(b, c)));
    ASSERT_EQ(gf_mul(a, static_cast<std::uint8_t>(b ^ c)), gf_mul(a, b) ^ gf_mul(a, c));
  }
}

// ---- Generator polynomials, ISO 18004 Annex A (exponents of alpha, x^degree first) -------------
TEST(ReedSolomon, GeneratorPolynomialsMatchAnnexA)
{
  const std::vector<std::vector<int>> annex_a = {
    {0, 87, 229, 146, 149, 238, 102, 21},                                          // degree 7
    {0, 251, 67, 46, 61, 118, 70, 64, 94, 32, 45},                                 // degree 10
    {0, 74, 152, 176, 100, 86, 100, 106, 104, 130, 218, 206, 140, 78},             // degree 13
    {0,   41,  173, 145, 152, 216, 31,  179, 182, 50,  48,  110, 86,  239, 96, 222,  // degree 30
     125, 42,  173, 226, 193, 224, 130, 156, 37,  251, 216, 238, 40,  192, 180},
  };
  for (const auto& exps : annex_a) {
    const int degree = static_cast<int>(exps.size()) - 1;
    SCOPED_TRACE("degree " + std::to_string(degree));
    std::vector<std::uint8_t> gen(static_cast<std::size_t>(degree));
    rs_generator(degree, gen.data());
    for (int i = 0; i < degree; ++i)
      EXPECT_EQ(gen[static_cast<std::size_t>(i)], gf().exp[exps[static_cast<std::size_t>(i + 1)]])
          << "coefficient of x^" << degree - 1 - i << " (alpha^" << exps[static_cast<std::size_t>(i + 1)] << ")";
  }
}

TEST(ReedSolomon, GeneratorRootsAreConsecutivePowersOfAlpha)
{
  for (int degree = 1; degree <= qrplate::core::rs_max_degree; ++degree) {
    SCOPED_TRACE("degree " + std::to_string(degree));
    std::vector<std::uint8_t> g(static_cast<std::size_t>(degree) + 1);
    g[0] = 1;  // the omitted leading coefficient
    rs_generator(degree, g.data() + 1);
    for (int i = 0; i < degree; ++i) EXPECT_EQ(poly_eval(g, gf().exp[i]), 0) << "root alpha^" << i;
    EXPECT_NE(poly_eval(g, gf().exp[degree]), 0) << "alpha^degree must not be a root";
  }
}

// ---- Worked examples --------------------------------------------------------------------------------
TEST(ReedSolomon, AnnexIExample01234567VersionOneM)
{
  // ISO/IEC 18004 Annex I: "01234567" as 1-M; 16 data codewords, 10 error correction codewords.
  const std::vector<std::uint8_t> data = {0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11,
                                          0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11};
  const std::vector<std::uint8_t> expected = {0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55};
  EXPECT_EQ(ecc_reference(data, 10), expected);
  EXPECT_EQ(ecc_fast(data, 10), expected);
}

TEST(ReedSolomon, HelloWorldVersionOneM)
{
  // "HELLO WORLD" in alphanumeric mode at 1-M (Thonky's QR Code tutorial).
  const std::vector<std::uint8_t> data = {0x20, 0x5B, 0x0B, 0x78, 0xD1, 0x72, 0xDC, 0x4D,
                                          0x43, 0x40, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11};
  const std::vector<std::uint8_t> expected = {0xC4, 0x23, 0x27, 0x77, 0xEB, 0xD7, 0xE7, 0xE2, 0x5D, 0x17};
  EXPECT_EQ(ecc_reference(data, 10), expected);
  EXPECT_EQ(ecc_fast(data, 10), expected);
}

// ---- Seeded properties -------------------------------------------------------------------------------
// Every degree 1..30 and every block length 0..255-degree (so every size just past a power of
// two): the table-driven LFSR equals the plain division, and data || ecc is a codeword, i.e. it
// vanishes at alpha^0 .. alpha^(degree-1).
TEST(ReedSolomon, FastEqualsReferenceAndYieldsCodewords)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  auto table = std::make_unique<rs_table>();
  for (int degree = 1; degree <= qrplate::core::rs_max_degree; ++degree) {
    std::vector<std::uint8_t> gen(static_cast<std::size_t>(degree));
    rs_generator(degree, gen.data());
    rs_make_table(degree, *table);
    for (int length = 0; length <= 255 - degree; ++length) {
      std::vector<std::uint8_t> data(static_cast<std::size_t>(length));
      for (auto& b : data) b = static_cast<std::uint8_t>(rng());
      std::vector<std::uint8_t> ref(static_cast<std::size_t>(degree), 0xA5);
      std::vector<std::uint8_t> fast(static_cast<std::size_t>(degree), 0x5A);
      rs_remainder_reference(data.data(), length, gen.data(), degree, ref.data());
      rs_remainder(data.data(), length, *table, fast.data());
      ASSERT_EQ(fast, ref) << "degree " << degree << " length " << length;
      std::vector<std::uint8_t> codeword = data;
      codeword.insert(codeword.end(), ref.begin(), ref.end());
      for (int i = 0; i < degree; ++i)
        ASSERT_EQ(poly_eval(codeword, gf().exp[i]), 0)
            << "degree " << degree << " length " << length << ": not a codeword at alpha^" << i;
    }
  }
}

TEST(ReedSolomon, EmptyAndZeroDataGiveZeroRemainder)
{
  for (int degree : {1, 7, 8, 9, 16, 17, 30}) {
    const std::vector<std::uint8_t> zeros(std::size_t{40}, 0);
    EXPECT_EQ(ecc_reference({}, degree), std::vector<std::uint8_t>(static_cast<std::size_t>(degree), 0));
    EXPECT_EQ(ecc_fast({}, degree), std::vector<std::uint8_t>(static_cast<std::size_t>(degree), 0));
    EXPECT_EQ(ecc_fast(zeros, degree), std::vector<std::uint8_t>(static_cast<std::size_t>(degree), 0));
  }
}

// Linearity: ecc(a ^ b) = ecc(a) ^ ecc(b), and a single 1 at the end yields the generator itself
// (x^degree mod g(x) = g(x) - x^degree).
TEST(ReedSolomon, LinearAndUnitImpulse)
{
  std::mt19937 rng(test_seed() + 1);
  for (int degree : {7, 10, 13, 15, 16, 17, 18, 20, 22, 24, 26, 28, 30}) {
    SCOPED_TRACE("degree " + std::to_string(degree));
    std::vector<std::uint8_t> gen(static_cast<std::size_t>(degree));
    rs_generator(degree, gen.data());
    EXPECT_EQ(ecc_fast({1}, degree), gen);
    std::vector<std::uint8_t> a(std::size_t{100}), b(std::size_t{100}), c(std::size_t{100});
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = static_cast<std::uint8_t>(rng());
      b[i] = static_cast<std::uint8_t>(rng());
      c[i] = static_cast<std::uint8_t>(a[i] ^ b[i]);
    }
    const auto ea = ecc_fast(a, degree), eb = ecc_fast(b, degree), ec = ecc_fast(c, degree);
    for (int i = 0; i < degree; ++i) {
      const auto k = static_cast<std::size_t>(i);
      EXPECT_EQ(ec[k], ea[k] ^ eb[k]) << "byte " << i;
    }
  }
}

}  // namespace
