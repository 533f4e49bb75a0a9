// The outer erasure code (qrplate/plate/outer_code.hpp). The documented code (generator [I; C],
// C[i][j] = 1 / ((K + i) XOR j) over GF(2^8) mod 0x11D) is recomputed here with field arithmetic
// written in this file, and held against ISA-L, the fast path and the references. Erasure
// patterns are exhaustive for small groups and seeded-random for 239+16; the seed is printed
// (override with QRPLATE_TEST_SEED=<n>).
#include <gtest/gtest.h>

#include <isa-l/erasure_code.h>

#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "qrplate/core/gf256.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/outer_code.hpp"

namespace {

namespace plate = qrplate::plate;
using plate::outer_decoder;
using plate::outer_encoder;
using plate::outer_spec;
using bytes = std::vector<std::uint8_t>;

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

// ---- An independent GF(256): carry-less product, then long division by x^8+x^4+x^3+x^2+1 ----
std::uint8_t slow_mul(unsigned a, unsigned b)
{
  unsigned product = 0;
  for (int i = 0; i < 8; ++i)
    if ((b >> i) & 1u) product ^= a << i;
  for (int bit = 14; bit >= 8; --bit)
    if ((product >> bit) & 1u) product ^= 0x11Du << (bit - 8);
  return static_cast<std::uint8_t>(product);
}

std::uint8_t slow_inverse(unsigned a)
{
  for (unsigned x = 1; x < 256; ++x)
    if (slow_mul(a, x) == 1) return static_cast<std::uint8_t>(x);
  return 0;
}

// Parity rows as the header documents them.
std::vector<bytes> oracle_parity(outer_spec spec, const std::vector<bytes>& data)
{
  const std::size_t width = data[0].size();
  std::vector<bytes> parity(spec.m, bytes(width, 0));
  for (int i = 0; i < spec.m; ++i)
    for (int j = 0; j < spec.k; ++j) {
      const std::uint8_t c = slow_inverse(static_cast<unsigned>((spec.k + i) ^ j));
      for (std::size_t b = 0; b < width; ++b) parity[i][b] ^= slow_mul(c, data[j][b]);
    }
  return parity;
}

std::vector<bytes> random_rows(std::mt19937& rng, int count, std::size_t width)
{
  std::vector<bytes> rows(count, bytes(width));
  for (auto& row : rows)
    for (auto& b : row) b = static_cast<std::uint8_t>(rng());
  return rows;
}

std::vector<const std::uint8_t*> const_pointers(const std::vector<bytes>& rows)
{
  std::vector<const std::uint8_t*> p;
  for (const auto& r : rows) p.push_back(r.data());
  return p;
}

std::vector<std::uint8_t*> pointers(std::vector<bytes>& rows)
{
  std::vector<std::uint8_t*> p;
  for (auto& r : rows) p.push_back(r.data());
  return p;
}

struct group {
  outer_spec spec;
  std::size_t width;
  std::vector<bytes> data, parity;
};

group make_group(std::mt19937& rng, outer_spec spec, std::size_t width)
{
  group g{spec, width, random_rows(rng, spec.k, width), std::vector<bytes>(spec.m, bytes(width, 0x5A))};
  outer_encoder(spec, width).encode(const_pointers(g.data).data(), pointers(g.parity).data());
  return g;
}

constexpr std::uint8_t sentinel = 0xA5;

// Erases the rows flagged in `erased` (size k + m), recovers with the fast path and the reference,
// and checks the outcome: bit-exact data when at most m rows are gone, otherwise false and
// untouched restore buffers.
void check_pattern(const group& g, const outer_decoder& dec, const std::vector<bool>& erased, bool with_reference,
                   const std::string& what)
{
  const int k = g.spec.k, n = g.spec.k + g.spec.m;
  std::vector<const std::uint8_t*> frames(n);
  int lost = 0;
  for (int r = 0; r < n; ++r) {
    frames[r] = erased[r] ? nullptr : (r < k ? g.data[r].data() : g.parity[r - k].data());
    lost += erased[r] ? 1 : 0;
  }
  const bool recoverable = lost <= g.spec.m;
  for (int pass = 0; pass < (with_reference ? 2 : 1); ++pass) {
    std::vector<bytes> restore(k, bytes(g.width, sentinel));
    const bool ok = pass == 0
                        ? dec.recover(frames.data(), pointers(restore).data())
                        : plate::outer_recover_reference(g.spec, g.width, frames.data(), pointers(restore).data());
    const char* who = pass == 0 ? "fast" : "reference";
    ASSERT_EQ(ok, recoverable) << who << " " << what;
    for (int i = 0; i < k; ++i) {
      if (recoverable && erased[i])
        ASSERT_EQ(restore[i], g.data[i]) << who << " data row " << i << " " << what;
      else
        ASSERT_EQ(restore[i], bytes(g.width, sentinel)) << who << " wrote restore[" << i << "] " << what;
    }
  }
}

std::string describe(const std::vector<bool>& erased)
{
  std::string s = "erased {";
  for (std::size_t r = 0; r < erased.size(); ++r)
    if (erased[r]) s += " " + std::to_string(r);
  return s + " }";
}

// ---- The field and the matrix are the documented ones ----

TEST(OuterCode, IsalFieldIsTheQrField)
{
  for (unsigned a = 0; a < 256; ++a)
    for (unsigned b = 0; b < 256; ++b) {
      const std::uint8_t expected = slow_mul(a, b);
      ASSERT_EQ(gf_mul(static_cast<unsigned char>(a), static_cast<unsigned char>(b)), expected) << a << "*" << b;
      ASSERT_EQ(qrplate::core::gf_mul(static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b)), expected);
    }
}

TEST(OuterCode, IsalCauchyMatrixIsTheDocumentedOne)
{
  for (const outer_spec spec : {outer_spec{1, 1}, outer_spec{4, 2}, outer_spec{10, 4}, outer_spec{239, 16},
                                outer_spec{1, 255}, outer_spec{255, 1}, outer_spec{128, 128}}) {
    const int n = spec.k + spec.m;
    std::vector<unsigned char> a(static_cast<std::size_t>(n) * spec.k);
    gf_gen_cauchy1_matrix(a.data(), n, spec.k);
    for (int r = 0; r < n; ++r)
      for (int j = 0; j < spec.k; ++j) {
        const std::uint8_t expected = r < spec.k ? (r == j ? 1 : 0) : slow_inverse(static_cast<unsigned>(r ^ j));
        ASSERT_EQ(a[static_cast<std::size_t>(r) * spec.k + j], expected)
            << plate::to_string(spec) << " row " << r << " col " << j;
      }
  }
}

TEST(OuterCode, SmallGoldenParity)
{
  // 2+1: parity = d0 / (2 xor 0) + d1 / (2 xor 1) = d0 * inv(2) + d1 * inv(3), inv(2) = 0x8E, inv(3) = 0xF4.
  ASSERT_EQ(slow_mul(2, 0x8E), 1);
  ASSERT_EQ(slow_mul(3, 0xF4), 1);
  const bytes d0 = {0x00, 0x01, 0x02, 0xFF}, d1 = {0x01, 0x00, 0x03, 0xFF};
  bytes p(4);
  const std::uint8_t* data[] = {d0.data(), d1.data()};
  std::uint8_t* parity[] = {p.data()};
  outer_encoder({2, 1}, 4).encode(data, parity);
  for (int b = 0; b < 4; ++b) EXPECT_EQ(p[b], slow_mul(d0[b], 0x8E) ^ slow_mul(d1[b], 0xF4)) << "byte " << b;
  EXPECT_EQ(p[0], 0xF4);
  EXPECT_EQ(p[1], 0x8E);
}

// ---- Fast path, reference and oracle agree ----

TEST(OuterCode, EncodeFastMatchesReferenceAndOracle)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  const outer_spec specs[] = {{1, 1}, {2, 1}, {4, 2}, {10, 4}, {1, 255}, {255, 1}, {239, 16}};
  const std::size_t widths[] = {1, 2, 15, 16, 17, 31, 32, 33, 63, 65, 129, 2938};
  for (const outer_spec spec : specs)
    for (const std::size_t width : widths) {
      if (spec.k + spec.m > 16 && width < 2938 && width != 33) continue;  // keep the slow oracle affordable
      const auto data = random_rows(rng, spec.k, width);
      std::vector<bytes> fast(spec.m, bytes(width, 0x11)), ref(spec.m, bytes(width, 0x22));
      outer_encoder(spec, width).encode(const_pointers(data).data(), pointers(fast).data());
      plate::outer_encode_reference(spec, width, const_pointers(data).data(), pointers(ref).data());
      ASSERT_EQ(fast, ref) << plate::to_string(spec) << " width " << width;
      if (spec.k * spec.m * width <= 300000) {
        ASSERT_EQ(fast, oracle_parity(spec, data)) << plate::to_string(spec) << " width " << width;
      }
    }
}

TEST(OuterCode, EncoderIsReusableAndThreadSafe)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 1);
  const outer_spec spec{20, 6};
  const std::size_t width = 1000;
  const outer_encoder enc(spec, width);
  constexpr int threads = 8, rounds = 20;
  std::vector<std::vector<bytes>> data(threads * rounds), parity(threads * rounds);
  for (auto& d : data) d = random_rows(rng, spec.k, width);
  for (auto& p : parity) p.assign(spec.m, bytes(width, 0));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int r = 0; r < rounds; ++r) {
        const int i = t * rounds + r;
        enc.encode(const_pointers(data[i]).data(), pointers(parity[i]).data());
      }
    });
  for (auto& th : pool) th.join();
  for (std::size_t i = 0; i < data.size(); ++i) {
    std::vector<bytes> ref(spec.m, bytes(width, 0));
    plate::outer_encode_reference(spec, width, const_pointers(data[i]).data(), pointers(ref).data());
    ASSERT_EQ(parity[i], ref) << "group " << i;
  }
}

// ---- Erasure recovery ----

TEST(OuterCode, ExhaustiveErasures4Plus2)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 2);
  for (const std::size_t width : {1u, 17u, 33u, 100u}) {
    const group g = make_group(rng, {4, 2}, width);
    const outer_decoder dec(g.spec, width);
    for (unsigned mask = 0; mask < (1u << 6); ++mask) {
      std::vector<bool> erased(6);
      for (int r = 0; r < 6; ++r) erased[r] = (mask >> r) & 1u;
      check_pattern(g, dec, erased, true, describe(erased) + " width " + std::to_string(width));
      if (HasFatalFailure()) return;
    }
  }
}

TEST(OuterCode, ExhaustiveErasures10Plus4)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 3);
  const group g = make_group(rng, {10, 4}, 65);
  const outer_decoder dec(g.spec, g.width);
  for (unsigned mask = 0; mask < (1u << 14); ++mask) {
    std::vector<bool> erased(14);
    for (int r = 0; r < 14; ++r) erased[r] = (mask >> r) & 1u;
    check_pattern(g, dec, erased, true, describe(erased));
    if (HasFatalFailure()) return;
  }
}

TEST(OuterCode, RandomErasures239Plus16)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 4);
  const outer_spec spec{239, 16};
  const std::size_t width = 2938;  // frame_body_bytes(40, L)
  const group g = make_group(rng, spec, width);
  ASSERT_EQ(g.parity, oracle_parity(spec, g.data)) << "encoder disagrees with the documented code";
  const outer_decoder dec(spec, width);
  const int n = spec.k + spec.m;

  std::vector<std::vector<bool>> patterns;
  auto with = [n](std::initializer_list<int> rows) {
    std::vector<bool> e(n);
    for (int r : rows) e[r] = true;
    return e;
  };
  std::vector<bool> first16(n), last16(n), data17(n);
  for (int r = 0; r < 16; ++r) first16[r] = last16[n - 1 - r] = true;
  for (int r = 0; r < 17; ++r) data17[r * 14] = true;
  patterns.push_back(first16);  // the worst case: every parity row in use
  patterns.push_back(last16);   // parity only: nothing to restore
  patterns.push_back(data17);   // one too many
  patterns.push_back(with({0, 238, 239, 254}));
  for (int trial = 0; trial < 40; ++trial) {
    const int lost = trial < 30 ? 1 + static_cast<int>(rng() % 16) : 17 + static_cast<int>(rng() % 10);
    std::vector<bool> e(n);
    for (int c = 0; c < lost;) {
      const int r = static_cast<int>(rng() % n);
      if (e[r]) continue;
      e[r] = true;
      ++c;
    }
    patterns.push_back(e);
  }
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    check_pattern(g, dec, patterns[i], i < 4, describe(patterns[i]));  // the slow reference on the fixed ones
    if (HasFatalFailure()) return;
  }
}

TEST(OuterCode, NoOuterCode)
{
  const outer_spec none = plate::parse_outer_spec("none");
  const bytes d(8, 3);
  const std::uint8_t* frames_present[] = {d.data()};
  const std::uint8_t* frames_missing[] = {nullptr};
  bytes out(8, sentinel);
  std::uint8_t* restore[] = {out.data()};
  outer_encoder(none, 8).encode(frames_present, nullptr);  // nothing to do, nothing touched
  const outer_decoder dec(none, 8);
  EXPECT_TRUE(dec.recover(frames_present, restore));
  EXPECT_FALSE(dec.recover(frames_missing, restore));
  EXPECT_EQ(out, bytes(8, sentinel));
}

TEST(OuterCode, RejectsMisuse)
{
  EXPECT_THROW(outer_encoder({0, 1}, 10), qrplate::invalid_argument);
  EXPECT_THROW(outer_encoder({200, 57}, 10), qrplate::invalid_argument);
  EXPECT_THROW(outer_encoder({4, -1}, 10), qrplate::invalid_argument);
  EXPECT_THROW(outer_encoder({4, 2}, 0), qrplate::invalid_argument);
  EXPECT_THROW(outer_decoder({4, 2}, 0), qrplate::invalid_argument);
  EXPECT_NO_THROW(outer_encoder({255, 1}, 1));
  EXPECT_NO_THROW(outer_decoder({1, 255}, 1));

  const outer_decoder dec({2, 1}, 4);
  bytes a(4), b(4);
  const std::uint8_t* frames[] = {nullptr, a.data(), b.data()};
  std::uint8_t* restore[] = {nullptr, nullptr};
  EXPECT_THROW(dec.recover(frames, restore), qrplate::invalid_argument);  // missing row 0, nowhere to put it
  EXPECT_THROW(dec.recover(nullptr, restore), qrplate::invalid_argument);
}

// ---- K+M text ----

TEST(OuterSpec, Parse)
{
  EXPECT_EQ(plate::parse_outer_spec("239+16"), (outer_spec{239, 16}));
  EXPECT_EQ(plate::parse_outer_spec("4+2"), (outer_spec{4, 2}));
  EXPECT_EQ(plate::parse_outer_spec("1+255"), (outer_spec{1, 255}));
  EXPECT_EQ(plate::parse_outer_spec("none"), (outer_spec{1, 0}));
  EXPECT_EQ(plate::parse_outer_spec("NONE"), (outer_spec{1, 0}));
  EXPECT_EQ(plate::parse_outer_spec("10+0"), (outer_spec{1, 0}));
  for (const char* bad : {"0+4", "200+100", "abc", "5+", "-1+2", "+4", "", "4+-2", "4 +2", "4+2+1", "256+1",
                          "99999999999999999999+1", "4+2 "}) {
    try {
      plate::parse_outer_spec(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const qrplate::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("\"") + bad + "\""), std::string::npos)
          << "message does not quote the input: " << e.what();
    }
  }
  try {
    plate::parse_outer_spec("200+100");
  } catch (const qrplate::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
  }
}

TEST(OuterSpec, ToStringRoundTrips)
{
  EXPECT_EQ(plate::to_string(outer_spec{239, 16}), "239+16");
  EXPECT_EQ(plate::to_string(outer_spec{1, 0}), "none");
  for (const outer_spec s : {outer_spec{239, 16}, outer_spec{1, 0}, outer_spec{1, 255}, outer_spec{255, 1}})
    EXPECT_EQ(plate::parse_outer_spec(plate::to_string(s)), s);
}

}  // namespace
