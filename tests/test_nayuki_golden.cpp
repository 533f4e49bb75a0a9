// Whole symbols and penalty scores held to an independent encoder: Project Nayuki's qrcodegen
// 1.8.0 (Python), through the vectors that tests/oracle/make_nayuki_golden.py wrote into
// tests/data. Nothing here is computed by the code under test.
//
//   nayuki_symbols.txt  version ecc payload_hex chosen_mask penalty_mask0..7 rows_hex... | '-'
//   nayuki_penalty.txt  size penalty rows_hex...
//
// rows_hex: a row is the integer sum(module[col] << col), written as ceil(size/4) hex digits,
// most significant first, so the last digit of a token holds columns 0..3.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "qrplate/core/penalty.hpp"
#include "qrplate/error.hpp"
#include "qrplate/qr.hpp"
#include "qrplate/spec/versions.hpp"
#include "qrplate/symbol.hpp"

namespace {

constexpr int expected_symbol_lines = 40 * 4 * 2;  // versions x levels x (short, full) payloads
constexpr int min_penalty_lines = 200;

struct golden_symbol {
  int line = 0;
  int version = 0;
  qrplate::ecc_level ecc = qrplate::ecc_level::L;
  std::vector<std::uint8_t> payload;
  int chosen_mask = -1;
  int penalty[8] = {};
  std::vector<std::string> rows;  // empty where the file stores '-'
};

struct golden_matrix {
  int line = 0;
  int size = 0;
  int penalty = 0;
  std::vector<std::string> rows;
};

int hex_value(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool parse_payload(const std::string& hex, std::vector<std::uint8_t>& out)
{
  out.clear();
  if (hex == "-") return true;
  if (hex.size() % 2 != 0) return false;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]);
    const int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return true;
}

bool parse_ecc(const std::string& s, qrplate::ecc_level& ecc)
{
  if (s == "L") ecc = qrplate::ecc_level::L;
  else if (s == "M") ecc = qrplate::ecc_level::M;
  else if (s == "Q") ecc = qrplate::ecc_level::Q;
  else if (s == "H") ecc = qrplate::ecc_level::H;
  else return false;
  return true;
}

const char* ecc_name(qrplate::ecc_level ecc)
{
  switch (ecc) {
    case qrplate::ecc_level::L: return "L";
    case qrplate::ecc_level::M: return "M";
    case qrplate::ecc_level::Q: return "Q";
    default: return "H";
  }
}

// Rows in the file's convention -> rows in qrplate's bit-packed layout (symbol.hpp). Returns false
// (with a message) on a malformed token, including a dark bit past column size-1.
bool pack_rows(const std::vector<std::string>& tokens, int size, std::vector<std::uint64_t>& out, std::string& error)
{
  const int digits = (size + 3) / 4;
  const int stride = qrplate::words_per_row(size);
  if (static_cast<int>(tokens.size()) != size) {
    error = "expected " + std::to_string(size) + " row tokens, found " + std::to_string(tokens.size());
    return false;
  }
  out.assign(qrplate::words_per_symbol(size), 0);
  for (int r = 0; r < size; ++r) {
    const std::string& t = tokens[static_cast<std::size_t>(r)];
    if (static_cast<int>(t.size()) != digits) {
      error = "row " + std::to_string(r) + ": " + std::to_string(t.size()) + " hex digits, expected " + std::to_string(digits);
      return false;
    }
    for (int d = 0; d < digits; ++d) {
      const int v = hex_value(t[static_cast<std::size_t>(digits - 1 - d)]);  // d-th digit from the right
      if (v < 0) {
        error = "row " + std::to_string(r) + ": bad hex digit";
        return false;
      }
      for (int b = 0; b < 4; ++b) {
        if (((v >> b) & 1) == 0) continue;
        const int col = 4 * d + b;
        if (col >= size) {
          error = "row " + std::to_string(r) + ": dark module past the last column";
          return false;
        }
        out[static_cast<std::size_t>(r * stride + col / 64)] |= std::uint64_t{1} << (col % 64);
      }
    }
  }
  return true;
}

std::vector<golden_symbol> load_symbols()
{
  std::vector<golden_symbol> result;
  const std::string path = QRPLATE_TEST_DATA "/nayuki_symbols.txt";
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path << " (regenerate with tests/oracle/make_nayuki_golden.py)";
    return result;
  }
  std::string text;
  int line_no = 0;
  while (std::getline(in, text)) {
    ++line_no;
    if (text.empty() || text[0] == '#') continue;
    std::istringstream ss(text);
    golden_symbol s;
    s.line = line_no;
    std::string ecc, payload, tok;
    bool ok = static_cast<bool>(ss >> s.version >> ecc >> payload >> s.chosen_mask);
    for (int m = 0; m < 8 && ok; ++m) ok = static_cast<bool>(ss >> s.penalty[m]);
    ok = ok && parse_ecc(ecc, s.ecc) && parse_payload(payload, s.payload) && qrplate::spec::valid_version(s.version) &&
         s.chosen_mask >= 0 && s.chosen_mask < 8;
    std::vector<std::string> rows;
    while (ok && ss >> tok) rows.push_back(tok);
    if (ok && rows.size() == 1 && rows[0] == "-") rows.clear();
    else if (ok && static_cast<int>(rows.size()) != qrplate::spec::symbol_size(s.version)) ok = false;
    if (!ok) {
      ADD_FAILURE() << path << ":" << line_no << ": malformed line";
      continue;
    }
    s.rows = std::move(rows);
    result.push_back(std::move(s));
  }
  return result;
}

std::vector<golden_matrix> load_matrices()
{
  std::vector<golden_matrix> result;
  const std::string path = QRPLATE_TEST_DATA "/nayuki_penalty.txt";
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path << " (regenerate with tests/oracle/make_nayuki_golden.py)";
    return result;
  }
  std::string text;
  int line_no = 0;
  while (std::getline(in, text)) {
    ++line_no;
    if (text.empty() || text[0] == '#') continue;
    std::istringstream ss(text);
    golden_matrix m;
    m.line = line_no;
    std::string tok;
    if (!(ss >> m.size >> m.penalty) || m.size < 1 || m.size > qrplate::spec::max_symbol_size) {
      ADD_FAILURE() << path << ":" << line_no << ": malformed line";
      continue;
    }
    while (ss >> tok) m.rows.push_back(tok);
    result.push_back(std::move(m));
  }
  return result;
}

qrplate::qr_symbol encode(const golden_symbol& g, int mask)
{
  qrplate::qr_options opts;
  opts.min_version = g.version;
  opts.max_version = g.version;
  opts.ecc = g.ecc;
  opts.mask = mask;
  return qrplate::encode_bytes(g.payload.data(), g.payload.size(), opts);
}

// First differing module, the number of differing modules, and whether padding bits are clean.
void expect_same_matrix(const qrplate::qr_symbol& got, const std::vector<std::uint64_t>& expected, int size)
{
  ASSERT_EQ(got.size, size);
  ASSERT_EQ(got.rows.size(), qrplate::words_per_symbol(size));
  const qrplate::symbol_view want{expected.data(), size};
  int differing = 0, first_r = -1, first_c = -1;
  for (int r = 0; r < size; ++r)
    for (int c = 0; c < size; ++c)
      if (got.module(r, c) != want.module(r, c)) {
        if (differing++ == 0) {
          first_r = r;
          first_c = c;
        }
      }
  EXPECT_EQ(differing, 0) << differing << " modules differ; first at row " << first_r << " col " << first_c
                          << ": expected " << (first_r >= 0 && want.module(first_r, first_c) ? "dark" : "light")
                          << ", got " << (first_r >= 0 && got.module(first_r, first_c) ? "dark" : "light");
  // symbol.hpp: bits past `size` in the last word of a row are 0.
  const int stride = qrplate::words_per_row(size);
  if (size % 64 != 0) {
    const std::uint64_t pad = ~std::uint64_t{0} << (size % 64);
    for (int r = 0; r < size; ++r)
      if (got.rows[static_cast<std::size_t>(r * stride + stride - 1)] & pad) {
        ADD_FAILURE() << "row " << r << " has bits set past column " << size - 1;
        break;
      }
  }
}

std::string describe(const golden_symbol& g)
{
  return "nayuki_symbols.txt:" + std::to_string(g.line) + " (version " + std::to_string(g.version) + "-" +
         ecc_name(g.ecc) + ", " + std::to_string(g.payload.size()) + " bytes)";
}

TEST(NayukiGolden, FilesHoldAllVectors)
{
  const auto symbols = load_symbols();
  EXPECT_EQ(static_cast<int>(symbols.size()), expected_symbol_lines);
  int stored = 0;
  for (const auto& s : symbols) stored += s.rows.empty() ? 0 : 1;
  EXPECT_GE(stored, 160);
  EXPECT_GE(static_cast<int>(load_matrices().size()), min_penalty_lines);
}

// Automatic mask choice (lowest penalty, first on ties) and the whole symbol as drawn.
TEST(NayukiGolden, AutoMaskSymbolsMatch)
{
  const auto symbols = load_symbols();
  ASSERT_FALSE(symbols.empty());
  for (const auto& g : symbols) {
    SCOPED_TRACE(describe(g));
    const qrplate::qr_symbol got = encode(g, qrplate::auto_mask);
    ASSERT_EQ(got.version, g.version);
    EXPECT_EQ(got.ecc, g.ecc);
    ASSERT_EQ(got.size, qrplate::spec::symbol_size(g.version));
    EXPECT_EQ(got.mask, g.chosen_mask) << "nayuki penalties by mask: " << g.penalty[0] << " " << g.penalty[1] << " "
                                       << g.penalty[2] << " " << g.penalty[3] << " " << g.penalty[4] << " "
                                       << g.penalty[5] << " " << g.penalty[6] << " " << g.penalty[7];
    if (g.rows.empty()) continue;
    std::vector<std::uint64_t> expected;
    std::string error;
    ASSERT_TRUE(pack_rows(g.rows, got.size, expected, error)) << error;
    if (got.mask == g.chosen_mask) {
      expect_same_matrix(got, expected, got.size);
    } else {
      // Separate a mask-choice bug from a drawing bug: draw with nayuki's mask pinned.
      SCOPED_TRACE("matrix compared with mask pinned to " + std::to_string(g.chosen_mask));
      expect_same_matrix(encode(g, g.chosen_mask), expected, got.size);
    }
  }
}

// ISO 18004 §7.8.3 score of the finished symbol for every mask, as nayuki computes it.
TEST(NayukiGolden, PenaltyOfEveryMaskMatches)
{
  const auto symbols = load_symbols();
  ASSERT_FALSE(symbols.empty());
  for (const auto& g : symbols) {
    SCOPED_TRACE(describe(g));
    for (int m = 0; m < 8; ++m) {
      SCOPED_TRACE("mask " + std::to_string(m));
      const qrplate::qr_symbol got = encode(g, m);
      ASSERT_EQ(got.mask, m);
      EXPECT_EQ(qrplate::core::penalty_reference(got.view()), g.penalty[m]) << "penalty_reference";
      EXPECT_EQ(qrplate::core::penalty_fast(got.view()), g.penalty[m]) << "penalty_fast";
    }
  }
}

// Random, biased, structured and crafted finder-like matrices (not QR symbols).
TEST(NayukiGolden, PenaltyOfArbitraryMatricesMatches)
{
  const auto matrices = load_matrices();
  ASSERT_FALSE(matrices.empty());
  for (const auto& g : matrices) {
    SCOPED_TRACE("nayuki_penalty.txt:" + std::to_string(g.line) + " (size " + std::to_string(g.size) + ")");
    std::vector<std::uint64_t> rows;
    std::string error;
    ASSERT_TRUE(pack_rows(g.rows, g.size, rows, error)) << error;
    const qrplate::symbol_view view{rows.data(), g.size};
    EXPECT_EQ(qrplate::core::penalty_reference(view), g.penalty) << "penalty_reference";
    EXPECT_EQ(qrplate::core::penalty_fast(view), g.penalty) << "penalty_fast";
  }
}

}  // namespace
