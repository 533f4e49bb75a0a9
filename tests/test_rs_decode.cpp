// Reed-Solomon decoding with errors and erasures (core/rs_decode.hpp).
// Codewords come from the encoder (core::rs_remainder, itself held to ISO Annex I and the
// generator tables by test_reed_solomon). Outputs are judged by re-encoding, by syndromes
// computed with a field written here, and, on short blocks, by a brute-force oracle that tries
// every candidate error set and solves for the values by Gaussian elimination over the encoder's
// own parity map, so no locator, Chien or Forney code is shared with the decoder.
// Property tests print their seed (override with QRPLATE_TEST_SEED=<n>).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "qrplate/core/reed_solomon.hpp"
#include "qrplate/core/rs_decode.hpp"

namespace {

using qrplate::ecc_level;
using qrplate::core::misdecode_protection;
using qrplate::core::rs_decode;
using qrplate::core::rs_result;
using qrplate::core::rs_status;
using qrplate::core::rs_syndromes;
using bytes = std::vector<std::uint8_t>;

unsigned test_seed()
{
  static const unsigned seed = [] {
    const char* env = std::getenv("QRPLATE_TEST_SEED");
    const unsigned s = env ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : 20240611u;
    std::cout << "[ seed     ] QRPLATE_TEST_SEED=" << s << "\n";
    return s;
  }();
  return seed;
}

// ---- An independent GF(256): carry-less product reduced by x^8+x^4+x^3+x^2+1 ---------------------
unsigned slow_mul(unsigned a, unsigned b)
{
  unsigned product = 0;
  for (int i = 0; i < 8; ++i)
    if ((b >> i) & 1u) product ^= a << i;
  for (int bit = 14; bit >= 8; --bit)
    if ((product >> bit) & 1u) product ^= 0x11Du << (bit - 8);
  return product;
}

std::uint8_t fmul(std::uint8_t a, std::uint8_t b)
{
  return static_cast<std::uint8_t>(slow_mul(a, b));
}

std::uint8_t finv(std::uint8_t a)
{
  for (unsigned x = 1; x < 256; ++x)
    if (slow_mul(a, x) == 1) return static_cast<std::uint8_t>(x);
  return 0;
}

std::uint8_t falpha_pow(int e)
{
  unsigned x = 1;
  for (int i = 0; i < e % 255; ++i) x = slow_mul(x, 2);
  return static_cast<std::uint8_t>(x);
}

// ---- Encoding (the oracle that makes codewords) ---------------------------------------------------
const qrplate::core::rs_table& table_for(int degree)
{
  static std::unique_ptr<qrplate::core::rs_table> tables[qrplate::core::rs_max_degree + 1];
  if (!tables[degree]) {
    tables[degree] = std::make_unique<qrplate::core::rs_table>();
    qrplate::core::rs_make_table(degree, *tables[degree]);
  }
  return *tables[degree];
}

// data followed by its parity bytes
bytes encode(const bytes& data, int degree)
{
  bytes block = data;
  block.resize(data.size() + static_cast<std::size_t>(degree));
  qrplate::core::rs_remainder(data.data(), static_cast<int>(data.size()), table_for(degree),
                              block.data() + data.size());
  return block;
}

bool is_codeword(const bytes& block, int degree)
{
  const bytes data(block.begin(), block.end() - degree);
  return encode(data, degree) == block;
}

bytes random_codeword(std::mt19937& rng, int n, int degree)
{
  bytes data(static_cast<std::size_t>(n - degree));
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  return encode(data, degree);
}

// Syndromes r(alpha^k) with the field written here.
bytes reference_syndromes(const bytes& block, int degree)
{
  bytes s(static_cast<std::size_t>(degree));
  for (int k = 0; k < degree; ++k) {
    const std::uint8_t x = falpha_pow(k);
    std::uint8_t y = 0;
    for (std::uint8_t c : block) y = static_cast<std::uint8_t>(fmul(y, x) ^ c);
    s[static_cast<std::size_t>(k)] = y;
  }
  return s;
}

rs_result decode(bytes& block, int degree, const std::vector<int>& erasures, int protection = 0)
{
  bytes er;
  for (int p : erasures) er.push_back(static_cast<std::uint8_t>(p));
  return rs_decode(block.data(), static_cast<int>(block.size()), degree, er.data(), static_cast<int>(er.size()),
                   protection);
}

// `count` distinct positions in [0, n) that are not in `avoid`.
std::vector<int> pick_positions(std::mt19937& rng, int n, int count, const std::vector<int>& avoid = {})
{
  std::vector<int> all;
  for (int i = 0; i < n; ++i)
    if (std::find(avoid.begin(), avoid.end(), i) == avoid.end()) all.push_back(i);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(static_cast<std::size_t>(count));
  return all;
}

std::uint8_t nonzero(std::mt19937& rng)
{
  return static_cast<std::uint8_t>(1 + rng() % 255);
}

// Erasures get arbitrary values (sometimes the right one), errors a nonzero change.
bytes corrupt(const bytes& block, const std::vector<int>& erasures, const std::vector<int>& errors, std::mt19937& rng)
{
  bytes r = block;
  for (int p : erasures) r[static_cast<std::size_t>(p)] = static_cast<std::uint8_t>(rng());
  for (int p : errors) r[static_cast<std::size_t>(p)] ^= nonzero(rng);
  return r;
}

std::string describe(int n, int degree, int e, int t, int p = 0)
{
  return "n=" + std::to_string(n) + " degree=" + std::to_string(degree) + " e=" + std::to_string(e) +
         " t=" + std::to_string(t) + " p=" + std::to_string(p);
}

// ---- Brute-force oracle ---------------------------------------------------------------------------
// The unique codeword c with e + 2 * |{j not erased : c_j != r_j}| <= budget, if any. Tries every
// set T of non-erased positions in increasing size; with P = erasures + T it solves
// sum_{j in P} y_j f(u_j) = f(r) for y, where f(w) = parity(w's data) - w's parity is the
// encoder's (GF(256)-linear) parity check and u_j the unit vector at j.
class brute_force_decoder {
 public:
  brute_force_decoder(int n, int degree) : n_(n), d_(degree), columns_(static_cast<std::size_t>(n))
  {
    for (int j = 0; j < n; ++j) {
      bytes unit(static_cast<std::size_t>(n), 0);
      unit[static_cast<std::size_t>(j)] = 1;
      columns_[static_cast<std::size_t>(j)] = check(unit);
    }
  }

  std::optional<bytes> decode(const bytes& r, const std::vector<int>& erasures, int budget) const
  {
    const int e = static_cast<int>(erasures.size());
    if (e > budget) return std::nullopt;
    std::vector<int> free_positions;
    for (int j = 0; j < n_; ++j)
      if (std::find(erasures.begin(), erasures.end(), j) == erasures.end()) free_positions.push_back(j);
    const bytes rhs = check(r);
    for (int t = 0; e + 2 * t <= budget; ++t) {
      std::vector<int> chosen;
      std::optional<bytes> found;
      search(free_positions, 0, t, chosen, erasures, rhs, r, found);
      if (found) return found;
    }
    return std::nullopt;
  }

 private:
  bytes check(const bytes& w) const
  {
    bytes data(w.begin(), w.end() - d_);
    bytes c = encode(data, d_);
    bytes out(static_cast<std::size_t>(d_));
    for (int i = 0; i < d_; ++i) out[static_cast<std::size_t>(i)] = c[data.size() + i] ^ w[data.size() + i];
    return out;
  }

  void search(const std::vector<int>& free_positions, std::size_t from, int left, std::vector<int>& chosen,
              const std::vector<int>& erasures, const bytes& rhs, const bytes& r, std::optional<bytes>& found) const
  {
    if (found) return;
    if (left == 0) {
      std::vector<int> P = erasures;
      P.insert(P.end(), chosen.begin(), chosen.end());
      bytes y;
      if (!solve(P, rhs, y)) return;
      for (std::size_t i = erasures.size(); i < P.size(); ++i)
        if (y[i] == 0) return;  // not an error at this position: a smaller T covers it
      bytes c = r;
      for (std::size_t i = 0; i < P.size(); ++i) c[static_cast<std::size_t>(P[i])] ^= y[i];
      found = c;
      return;
    }
    for (std::size_t i = from; i < free_positions.size(); ++i) {
      chosen.push_back(free_positions[i]);
      search(free_positions, i + 1, left - 1, chosen, erasures, rhs, r, found);
      chosen.pop_back();
      if (found) return;
    }
  }

  // Gaussian elimination of the d_ x |P| system; false when inconsistent.
  bool solve(const std::vector<int>& P, const bytes& rhs, bytes& y) const
  {
    const std::size_t m = P.size(), rows = static_cast<std::size_t>(d_);
    std::vector<bytes> a(rows, bytes(m + 1));
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t c = 0; c < m; ++c) a[i][c] = columns_[static_cast<std::size_t>(P[c])][i];
      a[i][m] = rhs[i];
    }
    std::size_t row = 0;
    std::vector<std::size_t> pivot_row(m, rows);
    for (std::size_t c = 0; c < m && row < rows; ++c) {
      std::size_t p = row;
      while (p < rows && a[p][c] == 0) ++p;
      if (p == rows) continue;
      std::swap(a[p], a[row]);
      const std::uint8_t inv = finv(a[row][c]);
      for (auto& v : a[row]) v = fmul(v, inv);
      for (std::size_t i = 0; i < rows; ++i)
        if (i != row && a[i][c] != 0) {
          const std::uint8_t f = a[i][c];
          for (std::size_t k = 0; k <= m; ++k) a[i][k] ^= fmul(f, a[row][k]);
        }
      pivot_row[c] = row++;
    }
    for (std::size_t i = row; i < rows; ++i)
      if (a[i][m] != 0) return false;
    y.assign(m, 0);
    for (std::size_t c = 0; c < m; ++c)
      if (pivot_row[c] < rows) y[c] = a[pivot_row[c]][m];
    // A free column would make the solution non-unique; Vandermonde columns (|P| <= d) have none.
    for (std::size_t c = 0; c < m; ++c)
      if (pivot_row[c] == rows) return false;
    return true;
  }

  int n_, d_;
  std::vector<bytes> columns_;
};

// ---- ISO 18004 Annex I: the 1-M codeword of "01234567" -------------------------------------------
const bytes& annex_i_codeword()
{
  static const bytes c = {0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC,
                          0x11, 0xEC, 0x11, 0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55};
  return c;
}

TEST(RsDecode, AnnexIExampleIsCleanAndIsACodeword)
{
  bytes block = annex_i_codeword();
  ASSERT_TRUE(is_codeword(block, 10));  // the encoder agrees with the standard
  std::uint8_t s[10];
  EXPECT_TRUE(rs_syndromes(block.data(), 26, 10, s));
  const rs_result r = decode(block, 10, {}, 2);
  EXPECT_EQ(r.status, rs_status::clean);
  EXPECT_EQ(r.errors, 0);
  EXPECT_EQ(block, annex_i_codeword());
}

TEST(RsDecode, AnnexIFourErrorsCorrectedUnderProtection)
{
  const int p = misdecode_protection(1, ecc_level::M);
  ASSERT_EQ(p, 2);
  // A fixed pattern over data and parity, then random ones.
  {
    bytes block = annex_i_codeword();
    block[0] ^= 0xFF;
    block[7] ^= 0x01;
    block[15] ^= 0x80;
    block[25] ^= 0x5A;
    const rs_result r = decode(block, 10, {}, p);
    EXPECT_EQ(r.status, rs_status::corrected);
    EXPECT_EQ(r.errors, 4);
    EXPECT_EQ(r.erasures, 0);
    EXPECT_EQ(block, annex_i_codeword());
  }
  std::mt19937 rng(test_seed());
  for (int trial = 0; trial < 500; ++trial) {
    bytes block = corrupt(annex_i_codeword(), {}, pick_positions(rng, 26, 4), rng);
    const rs_result r = decode(block, 10, {}, p);
    ASSERT_EQ(r.status, rs_status::corrected) << "trial " << trial;
    ASSERT_EQ(r.errors, 4);
    ASSERT_EQ(block, annex_i_codeword()) << "trial " << trial;
  }
}

// With p = 2 a 1-M decoder may fix 4 errors. Five errors are then always detected: a codeword it
// could accept lies within 4 of the received word, so within 9 of the original, but distinct
// codewords are 11 apart. The same blocks are corrected with p = 0.
TEST(RsDecode, AnnexIFiveErrorsFailUnderProtectionAndAreCorrectedWithout)
{
  std::mt19937 rng(test_seed() + 1);
  for (int trial = 0; trial < 500; ++trial) {
    const bytes received = corrupt(annex_i_codeword(), {}, pick_positions(rng, 26, 5), rng);
    bytes block = received;
    const rs_result r = decode(block, 10, {}, 2);
    ASSERT_EQ(r.status, rs_status::failed) << "trial " << trial;
    ASSERT_EQ(block, received) << "a failed decode must leave the block as it was";
    const rs_result r0 = decode(block, 10, {}, 0);
    ASSERT_EQ(r0.status, rs_status::corrected) << "trial " << trial;
    ASSERT_EQ(r0.errors, 5);
    ASSERT_EQ(block, annex_i_codeword()) << "trial " << trial;
  }
}

TEST(RsDecode, AnnexIErasures)
{
  std::mt19937 rng(test_seed() + 2);
  for (int trial = 0; trial < 200; ++trial) {
    {  // ten erasures, all the parity allows without protection
      const auto er = pick_positions(rng, 26, 10);
      bytes block = corrupt(annex_i_codeword(), er, {}, rng);
      const rs_result r = decode(block, 10, er, 0);
      ASSERT_NE(r.status, rs_status::failed);
      ASSERT_EQ(block, annex_i_codeword());
    }
    {  // six erasures and one error: 6 + 2 = 8 = 10 - p
      const auto er = pick_positions(rng, 26, 6);
      const auto err = pick_positions(rng, 26, 1, er);
      bytes block = corrupt(annex_i_codeword(), er, err, rng);
      const rs_result r = decode(block, 10, er, 2);
      ASSERT_EQ(r.status, rs_status::corrected);
      ASSERT_EQ(r.errors, 1);
      ASSERT_EQ(r.erasures, 6);
      ASSERT_EQ(block, annex_i_codeword());
    }
    {  // nine erasures exceed 10 - p: refused before any arithmetic
      const auto er = pick_positions(rng, 26, 9);
      bytes block = corrupt(annex_i_codeword(), er, {}, rng);
      block[static_cast<std::size_t>(er[0])] ^= 1;  // surely not a codeword
      const bytes received = block;
      ASSERT_EQ(decode(block, 10, er, 2).status, rs_status::failed);
      ASSERT_EQ(block, received);
    }
  }
}

// ---- ISO 18004 Table 9, note -------------------------------------------------------------------
TEST(RsDecode, MisdecodeProtectionTable)
{
  EXPECT_EQ(misdecode_protection(1, ecc_level::L), 3);
  EXPECT_EQ(misdecode_protection(1, ecc_level::M), 2);
  EXPECT_EQ(misdecode_protection(1, ecc_level::Q), 1);
  EXPECT_EQ(misdecode_protection(1, ecc_level::H), 1);
  EXPECT_EQ(misdecode_protection(2, ecc_level::L), 2);
  EXPECT_EQ(misdecode_protection(3, ecc_level::L), 1);
  int nonzero_entries = 0;
  for (int v = 1; v <= 40; ++v)
    for (ecc_level ecc : {ecc_level::L, ecc_level::M, ecc_level::Q, ecc_level::H})
      nonzero_entries += misdecode_protection(v, ecc) != 0;
  EXPECT_EQ(nonzero_entries, 6);
}

// p = 3 on a degree-7 block leaves e + 2t <= 4. Patterns with 4 < e + 2t <= 7 are always
// detected: the original is the only codeword within weighted distance 7, and it is too far.
TEST(RsDecode, MisdecodeProtectionShrinksTheBudget)
{
  std::mt19937 rng(test_seed() + 3);
  const int degree = 7, p = 3;
  for (int n : {26, 44, 100, 255}) {
    for (int e = 0; e <= degree; ++e)
      for (int t = 0; e + 2 * t <= degree; ++t)
        for (int trial = 0; trial < 40; ++trial) {
          SCOPED_TRACE(describe(n, degree, e, t, p));
          const bytes original = random_codeword(rng, n, degree);
          const auto er = pick_positions(rng, n, e);
          const auto err = pick_positions(rng, n, t, er);
          const bytes received = corrupt(original, er, err, rng);
          bytes block = received;
          const rs_result r = decode(block, degree, er, p);
          if (e + 2 * t <= degree - p) {
            ASSERT_NE(r.status, rs_status::failed);
            ASSERT_EQ(block, original);
          } else if (received != original) {
            ASSERT_EQ(r.status, rs_status::failed);
            ASSERT_EQ(block, received);
          }
          // (received == original: every erasure kept its byte and t = 0, so it is clean)
        }
  }
}

// ---- Within the budget: every QR degree, many lengths, every (e, t) -----------------------------
TEST(RsDecode, ErrorsAndErasuresWithinBudgetAreCorrectedExactly)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 4);
  long decodes = 0;
  for (int degree = 7; degree <= 30; ++degree) {
    std::vector<int> lengths = {degree + 1, 2 * degree, 127, 128, 129, 255};
    lengths.push_back(degree + 1 + static_cast<int>(rng() % static_cast<unsigned>(255 - degree)));
    for (int n : lengths) {
      for (int e = 0; e <= degree; ++e)
        for (int t = 0; e + 2 * t <= degree; ++t) {
          if (e + t > n) continue;
          SCOPED_TRACE(describe(n, degree, e, t));
          const bytes original = random_codeword(rng, n, degree);
          const auto er = pick_positions(rng, n, e);
          const auto err = pick_positions(rng, n, t, er);
          bytes block = corrupt(original, er, err, rng);
          int changed_erasures = 0;
          for (int pos : er)
            changed_erasures += block[static_cast<std::size_t>(pos)] != original[static_cast<std::size_t>(pos)];
          const rs_result r = decode(block, degree, er);
          ++decodes;
          ASSERT_EQ(block, original);
          if (t == 0 && changed_erasures == 0) {
            ASSERT_EQ(r.status, rs_status::clean);
          } else {
            ASSERT_EQ(r.status, rs_status::corrected);
            ASSERT_EQ(r.errors, t);
            ASSERT_EQ(r.erasures, e);
          }
        }
    }
  }
  std::cout << "[ info     ] " << decodes << " decodes within the budget, all exact\n";
}

// Erasures on bytes that were right all along: they only spend budget.
TEST(RsDecode, ErasedButUnchangedBytes)
{
  std::mt19937 rng(test_seed() + 5);
  for (int degree : {7, 10, 17, 30})
    for (int n : {degree + 5, 255})
      for (int e = 0; e <= degree; ++e)
        for (int t = 0; e + 2 * t <= degree; ++t) {
          SCOPED_TRACE(describe(n, degree, e, t));
          const bytes original = random_codeword(rng, n, degree);
          const auto er = pick_positions(rng, n, e);
          const auto err = pick_positions(rng, n, t, er);
          bytes block = corrupt(original, {}, err, rng);  // erased bytes keep their values
          const rs_result r = decode(block, degree, er);
          ASSERT_EQ(block, original);
          ASSERT_EQ(r.status, t == 0 ? rs_status::clean : rs_status::corrected);
          ASSERT_EQ(r.errors, t);
        }
  // Half of the erasures right, half wrong.
  for (int trial = 0; trial < 300; ++trial) {
    const int degree = 7 + static_cast<int>(rng() % 24);
    const int n = degree + 1 + static_cast<int>(rng() % static_cast<unsigned>(255 - degree));
    const int e = static_cast<int>(rng() % static_cast<unsigned>(degree + 1));
    const int t = static_cast<int>(rng() % static_cast<unsigned>((degree - e) / 2 + 1));
    SCOPED_TRACE(describe(n, degree, e, t));
    const bytes original = random_codeword(rng, n, degree);
    const auto er = pick_positions(rng, n, e);
    const std::vector<int> wrong(er.begin(), er.begin() + e / 2);
    bytes block = original;
    for (int pos : wrong) block[static_cast<std::size_t>(pos)] ^= nonzero(rng);
    for (int pos : pick_positions(rng, n, t, er)) block[static_cast<std::size_t>(pos)] ^= nonzero(rng);
    const rs_result r = decode(block, degree, er);
    ASSERT_NE(r.status, rs_status::failed);
    ASSERT_EQ(block, original);
  }
}

// One error, then one erasure, at every position of a full-length block. The Forney magnitude
// carries the factor X = alpha^(n-1-j) because the generator's roots start at alpha^0; a decoder
// without it would only be right at j = n-1, where X = 1.
TEST(RsDecode, SingleErrorAndSingleErasureAtEveryPosition)
{
  std::mt19937 rng(test_seed() + 6);
  for (int degree : {7, 30})
    for (int n : {255, 200, degree + 1}) {
      const bytes original = random_codeword(rng, n, degree);
      for (int j = 0; j < n; ++j) {
        SCOPED_TRACE("n=" + std::to_string(n) + " degree=" + std::to_string(degree) + " position " + std::to_string(j));
        bytes block = original;
        block[static_cast<std::size_t>(j)] ^= nonzero(rng);
        rs_result r = decode(block, degree, {});
        ASSERT_EQ(r.status, rs_status::corrected);
        ASSERT_EQ(r.errors, 1);
        ASSERT_EQ(block, original);
        block[static_cast<std::size_t>(j)] ^= nonzero(rng);
        r = decode(block, degree, {j});
        ASSERT_EQ(r.status, rs_status::corrected);
        ASSERT_EQ(r.errors, 0);
        ASSERT_EQ(r.erasures, 1);
        ASSERT_EQ(block, original);
      }
    }
}

// ---- Beyond the budget --------------------------------------------------------------------------
// The decoder must never hand back a non-codeword, nor a codeword outside its budget of the
// received block, and must leave the block untouched when it fails. It may return another
// codeword inside that budget: bounded-distance decoding cannot tell. How often depends on the
// redundancy the erasures leave unspent, m = degree - p - e: a random word lands in some
// codeword's decoding sphere with probability about ((n-e)/256)^(m/2) / (m/2)! * 256^-(p + m%2),
// so error-only decoding (m = degree - p, at least 7) rarely miscorrects, while at m = 0 and p = 0
// (as many erasures as parity bytes) every word decodes. Rates per m are printed; the plate
// frame's CRC32C catches these.
TEST(RsDecode, BeyondTheBudgetFailsOrReturnsAnotherCodewordWithinTheBudget)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 7);
  const int degrees[] = {7, 10, 13, 15, 16, 17, 18, 20, 22, 24, 26, 28, 30};  // ISO Table 9
  constexpr int slots = qrplate::core::rs_max_degree + 1;
  long trials[slots] = {}, miscorrected[slots] = {};
  long total = 0, failed = 0, total_miscorrected = 0, errors_only = 0, errors_only_miscorrected = 0;
  for (int degree : degrees)
    for (int trial = 0; trial < 1500; ++trial) {
      const int n = trial % 3 == 0 ? 255 : degree + 1 + static_cast<int>(rng() % static_cast<unsigned>(255 - degree));
      const int p = trial % 5 == 0 ? static_cast<int>(rng() % 4) : 0;
      const int budget = degree - p;
      const int excess = 1 + static_cast<int>(rng() % 8);  // e + 2t = budget + excess
      const int e = trial % 2 == 0 ? 0 : static_cast<int>(rng() % static_cast<unsigned>(budget + 1));
      int t = (budget + excess - e + 1) / 2;
      if (e + t > n) t = n - e;
      SCOPED_TRACE(describe(n, degree, e, t, p));
      const bytes original = random_codeword(rng, n, degree);
      const auto er = pick_positions(rng, n, e);
      const auto err = pick_positions(rng, n, t, er);
      bytes received = original;
      for (int pos : er) received[static_cast<std::size_t>(pos)] ^= nonzero(rng);  // all erasures wrong
      for (int pos : err) received[static_cast<std::size_t>(pos)] ^= nonzero(rng);
      bytes block = received;
      const rs_result r = decode(block, degree, er, p);
      const int m = budget - e;
      ++total;
      ++trials[m];
      errors_only += e == 0;
      if (m == 0 && p == 0) {
        // degree erasures on an MDS code: exactly one codeword agrees with the rest of the block.
        ASSERT_EQ(r.status, rs_status::corrected);
      }
      if (r.status == rs_status::failed) {
        ++failed;
        ASSERT_EQ(block, received) << "a failed decode must leave the block as it was";
        continue;
      }
      ASSERT_EQ(r.status, rs_status::corrected);
      ASSERT_TRUE(is_codeword(block, degree)) << "returned bytes that are not a codeword";
      int changed_outside = 0;
      for (int j = 0; j < n; ++j)
        if (block[static_cast<std::size_t>(j)] != received[static_cast<std::size_t>(j)] &&
            std::find(er.begin(), er.end(), j) == er.end())
          ++changed_outside;
      ASSERT_EQ(r.errors, changed_outside);
      ASSERT_LE(e + 2 * changed_outside, budget) << "a correction outside the budget";
      ASSERT_NE(block, original) << "the original is outside the budget, so cannot be the unique answer";
      ++miscorrected[m];
      ++total_miscorrected;
      errors_only_miscorrected += e == 0;
    }
  // Fully random words (far past any budget), error-only decoding.
  long random_trials = 0, random_accepted = 0;
  for (int degree : degrees)
    for (int trial = 0; trial < 300; ++trial) {
      const int n = degree + 1 + static_cast<int>(rng() % static_cast<unsigned>(255 - degree));
      bytes block(static_cast<std::size_t>(n));
      for (auto& b : block) b = static_cast<std::uint8_t>(rng());
      const bytes received = block;
      const rs_result r = decode(block, degree, {});
      ++random_trials;
      if (r.status == rs_status::failed) {
        ASSERT_EQ(block, received);
      } else {
        ++random_accepted;
        ASSERT_TRUE(is_codeword(block, degree));
        ASSERT_LE(2 * r.errors, degree);
      }
    }
  std::cout << "[ info     ] beyond the budget: " << total << " blocks, " << failed << " failed, " << total_miscorrected
            << " miscorrected to another codeword; error-only: " << errors_only_miscorrected << " of " << errors_only
            << "; random words: " << random_accepted << " of " << random_trials << " accepted\n";
  std::cout << "[ info     ] miscorrections by unspent redundancy m = degree - p - e:";
  for (int m = 0; m < slots; ++m)
    if (trials[m] > 0) std::cout << " m" << m << "=" << miscorrected[m] << "/" << trials[m];
  std::cout << "\n";
  RecordProperty("miscorrections", static_cast<int>(total_miscorrected));
  RecordProperty("trials", static_cast<int>(total));
  EXPECT_GT(failed * 10, total * 8) << "failure must be the usual outcome past the budget";
  EXPECT_LT(errors_only_miscorrected * 100, errors_only) << "error-only miscorrection must stay under 1%";
  EXPECT_LT(random_accepted * 100, random_trials);
}

// ---- Against the brute-force oracle on short blocks ---------------------------------------------
// Any corruption weight, any erasures: the decoder must return exactly what the exhaustive
// search finds (the unique codeword within the budget, or none).
TEST(RsDecode, AgreesWithBruteForceOracle)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 8);
  long agreed_fix = 0, agreed_fail = 0, miscorrections = 0;
  struct shape {
    int n, degree;
  };
  for (shape s : {shape{9, 7}, shape{12, 7}, shape{14, 10}, shape{16, 8}, shape{11, 10}}) {
    const brute_force_decoder oracle(s.n, s.degree);
    for (int trial = 0; trial < 250; ++trial) {
      const int p = static_cast<int>(rng() % 3);
      const int budget = s.degree - p;
      const int e = static_cast<int>(rng() % static_cast<unsigned>(budget + 2));  // sometimes one too many
      const int weight = static_cast<int>(rng() % static_cast<unsigned>(s.n - e + 1));
      SCOPED_TRACE(describe(s.n, s.degree, e, weight, p));
      const bytes original = random_codeword(rng, s.n, s.degree);
      const auto er = pick_positions(rng, s.n, e);
      const bytes received = corrupt(original, er, pick_positions(rng, s.n, weight, er), rng);
      const std::optional<bytes> expected = oracle.decode(received, er, budget);
      bytes block = received;
      const rs_result r = decode(block, s.degree, er, p);
      if (expected) {
        ASSERT_NE(r.status, rs_status::failed);
        ASSERT_EQ(block, *expected);
        ++agreed_fix;
        miscorrections += *expected != original;
      } else {
        ASSERT_EQ(r.status, rs_status::failed);
        ASSERT_EQ(block, received);
        ++agreed_fail;
      }
    }
  }
  std::cout << "[ info     ] oracle agreement: " << agreed_fix << " decoded (" << miscorrections
            << " to another codeword), " << agreed_fail << " failed\n";
  EXPECT_GT(agreed_fix, 100);
  EXPECT_GT(agreed_fail, 100);
}

// ---- Syndromes ----------------------------------------------------------------------------------
TEST(RsDecode, SyndromesMatchReferenceAndPredictClean)
{
  std::mt19937 rng(test_seed() + 9);
  for (int trial = 0; trial < 2000; ++trial) {
    const int degree = 7 + static_cast<int>(rng() % 24);
    const int n = degree + 1 + static_cast<int>(rng() % static_cast<unsigned>(255 - degree));
    bytes block = random_codeword(rng, n, degree);
    const int flips = trial % 4 == 0 ? 0 : 1 + static_cast<int>(rng() % 3);
    for (int pos : pick_positions(rng, n, flips)) block[static_cast<std::size_t>(pos)] ^= nonzero(rng);
    bytes s(static_cast<std::size_t>(degree), 0xA5);
    const bool zero = rs_syndromes(block.data(), n, degree, s.data());
    ASSERT_EQ(s, reference_syndromes(block, degree)) << "trial " << trial;
    ASSERT_EQ(zero, flips == 0) << "trial " << trial;
    ASSERT_EQ(zero, is_codeword(block, degree));
    const bytes before = block;
    const rs_result r = decode(block, degree, {});
    ASSERT_EQ(r.status == rs_status::clean, zero);
    if (zero) {
      ASSERT_EQ(block, before);
    }
  }
}

// ---- Arguments ----------------------------------------------------------------------------------
TEST(RsDecode, InvalidArgumentsFailWithoutTouchingTheBlock)
{
  std::mt19937 rng(test_seed() + 10);
  bytes received = random_codeword(rng, 40, 10);
  received[3] ^= 1;
  received.resize(300, 0x77);  // room for the oversized n below
  auto expect_failed = [&](int n, int degree, std::vector<std::uint8_t> er, int count, int p, const char* why) {
    bytes block = received;
    const rs_result r = rs_decode(block.data(), n, degree, er.empty() ? nullptr : er.data(), count, p);
    EXPECT_EQ(r.status, rs_status::failed) << why;
    EXPECT_EQ(block, received) << why;
  };
  expect_failed(256, 10, {}, 0, 0, "n past 255");
  expect_failed(0, 10, {}, 0, 0, "empty block");
  expect_failed(40, 0, {}, 0, 0, "no parity");
  expect_failed(40, 31, {}, 0, 0, "degree past rs_max_degree");
  expect_failed(8, 10, {}, 0, 0, "degree past n");
  expect_failed(40, 10, {}, 0, -1, "negative protection");
  expect_failed(40, 10, {}, -1, 0, "negative erasure count");
  expect_failed(40, 10, {}, 2, 0, "erasures without positions");
  expect_failed(40, 10, {3, 40}, 2, 0, "erasure outside the block");
  expect_failed(40, 10, {}, 0, 10, "protection takes the whole parity");
  std::vector<std::uint8_t> eleven;
  for (int i = 0; i < 11; ++i) eleven.push_back(static_cast<std::uint8_t>(i));
  expect_failed(40, 10, eleven, 11, 0, "more erasures than parity");

  // Sanity: the same block decodes with valid arguments.
  bytes block = received;
  EXPECT_EQ(rs_decode(block.data(), 40, 10, nullptr, 0, 0).status, rs_status::corrected);
}

TEST(RsDecode, DuplicateErasuresCountOnce)
{
  std::mt19937 rng(test_seed() + 11);
  const int n = 60, degree = 10;
  for (int trial = 0; trial < 200; ++trial) {
    const bytes original = random_codeword(rng, n, degree);
    const auto er = pick_positions(rng, n, degree);  // the full budget...
    std::vector<int> listed = er;
    listed.insert(listed.end(), er.begin(), er.end());  // ...each listed twice
    std::shuffle(listed.begin(), listed.end(), rng);
    bytes block = corrupt(original, er, {}, rng);
    const rs_result r = decode(block, degree, listed);
    ASSERT_NE(r.status, rs_status::failed);
    ASSERT_EQ(block, original);
    if (r.status == rs_status::corrected) {
      ASSERT_EQ(r.erasures, degree);
    }
  }
}

}  // namespace
