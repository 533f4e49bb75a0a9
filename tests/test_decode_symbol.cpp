// The per-code decoding core (core/decode_symbol.hpp): format reading, codeword extraction (fast
// path held to the bit-by-bit reference), de-interleaving, Reed-Solomon correction with errors and
// erasures, the segment parser, and whole symbols written by our encoder and by Project Nayuki's
// qrcodegen (tests/data/nayuki_symbols.txt) read back to their payloads.
//
// Property tests print their seed (override with QRPLATE_TEST_SEED=<n>).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/bit_writer.hpp"
#include "qrplate/core/codewords.hpp"
#include "qrplate/core/decode_cooperative.hpp"
#include "qrplate/core/decode_symbol.hpp"
#include "qrplate/core/encode_symbol.hpp"
#include "qrplate/core/rs_decode.hpp"
#include "qrplate/core/segments.hpp"
#include "qrplate/error.hpp"
#include "qrplate/qr.hpp"
#include "qrplate/spec/format_info.hpp"
#include "qrplate/spec/versions.hpp"
#include "thread_emulation.hpp"

namespace {

namespace core = qrplate::core;
namespace spec = qrplate::spec;
using core::decode_error;
using core::decode_result;
using core::decode_status;
using qrplate::ecc_level;
using bytes = std::vector<std::uint8_t>;

constexpr ecc_level levels[4] = {ecc_level::L, ecc_level::M, ecc_level::Q, ecc_level::H};

unsigned test_seed()
{
  static const unsigned seed = [] {
    const char* env = std::getenv("QRPLATE_TEST_SEED");
    const unsigned s = env ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : 18004u;
    std::cout << "[ seed     ] QRPLATE_TEST_SEED=" << s << "\n";
    return s;
  }();
  return seed;
}

const char* level_name(ecc_level e)
{
  return qrplate::to_string(e);
}

std::string describe(int version, ecc_level ecc, int mask)
{
  return "version " + std::to_string(version) + "-" + level_name(ecc) + " mask " + std::to_string(mask);
}

const char* status_name(decode_status s)
{
  switch (s) {
    case decode_status::ok:
      return "ok";
    case decode_status::corrected:
      return "corrected";
    case decode_status::erasure_assisted:
      return "erasure_assisted";
    case decode_status::bad_format:
      return "bad_format";
    default:
      return "failed";
  }
}

bytes random_bytes(std::mt19937& rng, std::size_t n)
{
  bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng() & 0xFFu);
  return b;
}

qrplate::qr_symbol encode_fixed(const bytes& payload, int version, ecc_level ecc, int mask)
{
  qrplate::qr_options o;
  o.min_version = o.max_version = version;
  o.ecc = ecc;
  o.mask = mask;
  return qrplate::encode_bytes(payload.data(), payload.size(), o);
}

struct decoded {
  decode_result r;
  bytes content;
  bytes data_codewords;  // as corrected (the workspace's data codewords)
};

// Decodes `rows` (a symbol of `version`) with the plan of `plan_ecc`.
decoded decode(const std::vector<std::uint64_t>& rows, int version, ecc_level plan_ecc,
               const std::uint8_t* confidence = nullptr, std::uint8_t threshold = 0,
               int capacity = core::max_decoded_length)
{
  static const auto ws = std::make_unique<core::decode_workspace>();
  const core::version_plan& plan = qrplate::host::version_plan_for(version, plan_ecc);
  decoded d;
  d.content.assign(static_cast<std::size_t>(capacity) + 16, 0xA5);  // guard bytes past the capacity
  d.r = core::decode_symbol(plan, rows.data(), confidence, threshold, d.content.data(), *ws, capacity);
  for (int i = capacity; i < capacity + 16; ++i)
    EXPECT_EQ(d.content[static_cast<std::size_t>(i)], 0xA5) << "decode_symbol wrote past out_capacity";
  d.content.resize(static_cast<std::size_t>(d.r.data_length));
  if (d.r.mask >= 0) d.data_codewords.assign(ws->data, ws->data + spec::num_data_codewords(version, d.r.ecc));
  return d;
}

bool good(decode_status s)
{
  return s == decode_status::ok || s == decode_status::corrected || s == decode_status::erasure_assisted;
}

// ---- Independent restatements of the standard, for damaging symbols -----------------------------

// ISO 18004:2015 §7.6: interleaved position of byte i (data then ECC) of block blk.
int interleaved_index(int version, ecc_level ecc, int blk, int i)
{
  const int blocks = spec::num_ecc_blocks(ecc, version);
  const int ecc_per = spec::ecc_codewords_per_block(ecc, version);
  const int total = spec::num_total_codewords(version);
  const int short_blocks = blocks - total % blocks;
  const int short_data = total / blocks - ecc_per;
  const int data_total = total - blocks * ecc_per;
  const int data_len = short_data + (blk >= short_blocks ? 1 : 0);
  if (i < short_data) return i * blocks + blk;
  if (i < data_len) return short_data * blocks + (blk - short_blocks);
  return data_total + (i - data_len) * blocks + blk;
}

int block_length(int version, ecc_level ecc, int blk)
{
  const int blocks = spec::num_ecc_blocks(ecc, version);
  const int total = spec::num_total_codewords(version);
  return total / blocks + (blk >= blocks - total % blocks ? 1 : 0);
}

// ISO 18004:2015 Figure 25: (row, column) of format bit i (0 = least significant) in each copy.
void format_module(int copy, int i, int n, int& row, int& col)
{
  if (copy == 0) {
    if (i <= 5)
      row = i, col = 8;
    else if (i == 6)
      row = 7, col = 8;
    else if (i == 7)
      row = 8, col = 8;
    else if (i == 8)
      row = 8, col = 7;
    else
      row = 8, col = 14 - i;
  } else {
    if (i <= 7)
      row = 8, col = n - 1 - i;
    else
      row = n - 15 + i, col = 8;
  }
}

void set_module(std::vector<std::uint64_t>& rows, int n, int row, int col, bool dark)
{
  const int w = qrplate::words_per_row(n);
  std::uint64_t& word = rows[static_cast<std::size_t>(row * w + col / 64)];
  const std::uint64_t bit = std::uint64_t{1} << (col % 64);
  word = dark ? (word | bit) : (word & ~bit);
}

bool get_module(const std::vector<std::uint64_t>& rows, int n, int row, int col)
{
  return (rows[static_cast<std::size_t>(row * qrplate::words_per_row(n) + col / 64)] >> (col % 64)) & 1u;
}

void write_format_copy(std::vector<std::uint64_t>& rows, int n, int copy, std::uint32_t bits)
{
  for (int i = 0; i < 15; ++i) {
    int r, c;
    format_module(copy, i, n, r, c);
    set_module(rows, n, r, c, (bits >> i) & 1u);
  }
}

int nearest_format_distance(std::uint32_t word)
{
  int best = 99;
  for (ecc_level e : levels)
    for (int m = 0; m < 8; ++m)
      best = std::min(best, __builtin_popcount((word ^ spec::format_info_bits(e, m)) & 0x7FFFu));
  return best;
}

// Flips a random non-empty subset of codeword cw's eight modules (placement order of the plan)
// and marks them in `conf` (if given) with a confidence in [lo, hi].
void damage_codeword(std::vector<std::uint64_t>& rows, const core::version_plan& plan, int cw, std::mt19937& rng,
                     std::vector<std::uint8_t>* conf, int lo, int hi)
{
  unsigned pattern = 0;
  while (pattern == 0) pattern = rng() & 0xFFu;
  const int row_bits = 64 * plan.words;
  for (int t = 0; t < 8; ++t) {
    if (!((pattern >> t) & 1u)) continue;
    const int pos = plan.placement[8 * cw + t];
    const int r = pos / row_bits, c = pos % row_bits;
    set_module(rows, plan.size, r, c, !get_module(rows, plan.size, r, c));
    if (conf)
      (*conf)[static_cast<std::size_t>(r * plan.size + c)] =
          static_cast<std::uint8_t>(lo + static_cast<int>(rng() % static_cast<unsigned>(hi - lo + 1)));
  }
}

// k distinct random byte indices of a block of length n.
std::vector<int> pick(std::mt19937& rng, int n, int k)
{
  std::vector<int> all(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) all[static_cast<std::size_t>(i)] = i;
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(static_cast<std::size_t>(std::min(n, k)));
  return all;
}

int random_length(std::mt19937& rng, int capacity)
{
  return (rng() % 4 == 0) ? capacity : static_cast<int>(rng() % static_cast<unsigned>(capacity + 1));
}

// ---- Pieces ------------------------------------------------------------------------------------

TEST(DecodeSymbol, ReadsFormatAndVersionBitsOfEncodedSymbols)
{
  const bytes payload = {'q', 'r'};
  for (int v : {1, 2, 6, 7, 13, 27, 40})
    for (ecc_level e : levels)
      for (int mask = 0; mask < 8; ++mask) {
        SCOPED_TRACE(describe(v, e, mask));
        const auto s = encode_fixed(payload, v, e, mask);
        for (int copy = 0; copy < 2; ++copy) {
          EXPECT_EQ(core::read_format_bits(s.rows.data(), s.size, copy), spec::format_info_bits(e, mask));
          if (v >= 7) {
            EXPECT_EQ(core::read_version_bits(s.rows.data(), s.size, copy), spec::version_info_bits(v));
          }
        }
      }
}

// The ISO 18004:2015 §7.9.1 example: level M, mask 101 gives 100000011001110 after masking.
TEST(DecodeSymbol, FormatBitsMatchTheStandardExample)
{
  std::vector<std::uint64_t> rows(qrplate::words_per_symbol(21), 0);
  const std::uint32_t example = 0x40CE;  // 100 0000 1100 1110
  for (int copy = 0; copy < 2; ++copy) {
    write_format_copy(rows, 21, copy, example);
    EXPECT_EQ(core::read_format_bits(rows.data(), 21, copy), example);
  }
  core::format_reading r[2];
  int nearest = -1;
  ASSERT_EQ(core::read_format_info(rows.data(), 21, r, nearest), 1);
  EXPECT_EQ(r[0].ecc, ecc_level::M);
  EXPECT_EQ(r[0].mask, 5);
  EXPECT_EQ(nearest, 0);
}

TEST(DecodeSymbol, ExtractFastPathMatchesReference)
{
  std::mt19937 rng(test_seed() + 1);
  auto ref = std::make_unique<std::uint8_t[]>(spec::max_total_codewords);
  auto fast = std::make_unique<std::uint8_t[]>(spec::max_total_codewords);
  for (int v = 1; v <= 40; ++v) {
    const auto& plan = qrplate::host::version_plan_for(v, levels[rng() % 4]);
    std::vector<std::uint64_t> rows(qrplate::words_per_symbol(plan.size));
    for (auto& w : rows) w = (static_cast<std::uint64_t>(rng()) << 32) | rng();
    for (int mask = 0; mask < 8; ++mask) {
      SCOPED_TRACE(describe(v, plan.ecc, mask));
      core::extract_codewords(plan, rows.data(), mask, fast.get());
      core::extract_codewords_reference(plan, rows.data(), mask, ref.get());
      ASSERT_TRUE(std::equal(fast.get(), fast.get() + plan.layout.total_codewords, ref.get()));
    }
  }
}

// extract_codewords undoes place_codewords + masking for every version and mask.
TEST(DecodeSymbol, ExtractInvertsPlacement)
{
  std::mt19937 rng(test_seed() + 2);
  auto ws = std::make_unique<core::encode_workspace>();
  auto got = std::make_unique<std::uint8_t[]>(spec::max_total_codewords);
  for (int v = 1; v <= 40; ++v) {
    const auto& plan = qrplate::host::version_plan_for(v, ecc_level::Q);
    const int total = plan.layout.total_codewords;
    const bytes cw = random_bytes(rng, static_cast<std::size_t>(total));
    core::place_codewords_reference(plan, cw.data(), ws->rows);
    for (int mask = 0; mask < 8; ++mask) {
      std::vector<std::uint64_t> masked(qrplate::words_per_symbol(plan.size));
      for (std::size_t i = 0; i < masked.size(); ++i) masked[i] = ws->rows[i];
      for (int r = 0; r < plan.size; ++r)  // ISO Table 10 applied here, not through the plan
        for (int c = 0; c < plan.size; ++c)
          if (!core::get_bit(plan.reserved + r * plan.words, c) && core::mask_bit(mask, r, c))
            set_module(masked, plan.size, r, c, !get_module(masked, plan.size, r, c));
      core::extract_codewords(plan, masked.data(), mask, got.get());
      ASSERT_TRUE(std::equal(got.get(), got.get() + total, cw.begin())) << describe(v, plan.ecc, mask);
    }
  }
}

TEST(DecodeSymbol, DeinterleaveInvertsAddEccAndInterleave)
{
  std::mt19937 rng(test_seed() + 3);
  auto interleaved = std::make_unique<std::uint8_t[]>(spec::max_total_codewords);
  auto blocks = std::make_unique<std::uint8_t[]>(spec::max_total_codewords);
  for (int v = 1; v <= 40; ++v)
    for (ecc_level e : levels) {
      SCOPED_TRACE(describe(v, e, 0));
      const auto& plan = qrplate::host::version_plan_for(v, e);
      const spec::block_layout b = plan.layout;
      const bytes data = random_bytes(rng, static_cast<std::size_t>(b.data_codewords));
      core::add_ecc_and_interleave(data.data(), v, e, plan.rs, interleaved.get());
      core::deinterleave(interleaved.get(), b, blocks.get());
      std::uint8_t gen[core::rs_max_degree];
      core::rs_generator(b.ecc_per_block, gen);
      int data_offset = 0;
      for (int blk = 0; blk < b.blocks; ++blk) {
        const int off = core::block_offset(b, blk), len = core::block_data_length(b, blk);
        ASSERT_EQ(len + b.ecc_per_block, block_length(v, e, blk));
        ASSERT_TRUE(std::equal(blocks.get() + off, blocks.get() + off + len, data.begin() + data_offset));
        std::uint8_t parity[core::rs_max_degree];
        core::rs_remainder_reference(data.data() + data_offset, len, gen, b.ecc_per_block, parity);
        ASSERT_TRUE(std::equal(parity, parity + b.ecc_per_block, blocks.get() + off + len)) << "block " << blk;
        for (int i = 0; i < len + b.ecc_per_block; ++i) {
          const int k = interleaved_index(v, e, blk, i);
          ASSERT_EQ(blocks[static_cast<std::size_t>(off + i)], interleaved[static_cast<std::size_t>(k)]);
          // The one-codeword form the cooperative decoder uses lands k at the same place.
          ASSERT_EQ(core::deinterleaved_position(b, k), off + i) << "block " << blk << " byte " << i;
        }
        data_offset += len;
      }
      ASSERT_EQ(data_offset, b.data_codewords);
    }
}

// The clean-block fast check agrees with the syndromes (rs_syndromes is the reference).
TEST(DecodeSymbol, BlockIsCodewordMatchesSyndromes)
{
  std::mt19937 rng(test_seed() + 4);
  for (int degree : {7, 10, 13, 17, 22, 26, 28, 30}) {
    core::rs_table table;
    core::rs_make_table(degree, table);
    for (int trial = 0; trial < 200; ++trial) {
      const int len = 1 + static_cast<int>(rng() % 120);
      bytes block = random_bytes(rng, static_cast<std::size_t>(len + degree));
      core::rs_remainder(block.data(), len, table, block.data() + len);
      if (trial % 2) block[rng() % block.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
      std::uint8_t s[core::rs_max_degree];
      const bool clean = core::rs_syndromes(block.data(), len + degree, degree, s);
      EXPECT_EQ(core::block_is_codeword(block.data(), len, table), clean);
      EXPECT_EQ(clean, trial % 2 == 0);
    }
  }
}

// ---- The segment parser on hand-built bit streams ------------------------------------------------

struct stream {
  bytes data = bytes(64, 0);
  core::bit_writer w{data.data(), 64 * 8};
  void put(std::uint32_t v, int n) { w.append(v, n); }
  core::segment_parse parse(int version = 1, int capacity = core::max_decoded_length)
  {
    out.assign(static_cast<std::size_t>(capacity), 0);
    const int codewords = (w.length + 7) / 8;
    const auto r = core::parse_segments(data.data(), codewords, version, out.data(), capacity);
    out.resize(static_cast<std::size_t>(r.length));
    return r;
  }
  bytes out;
};

// ISO 18004:2015 §7.4.6 examples: 点 (Shift JIS 935F) -> 0x0D9F, 茗 (E4AA) -> 0x1AAA.
TEST(SegmentParser, KanjiGivesShiftJisBytes)
{
  stream s;
  s.put(8, 4);
  s.put(2, 8);
  s.put(0x0D9F, 13);
  s.put(0x1AAA, 13);
  s.put(0, 4);
  const auto r = s.parse();
  ASSERT_EQ(r.error, decode_error::none);
  EXPECT_EQ(s.out, (bytes{0x93, 0x5F, 0xE4, 0xAA}));
}

// ISO 18004:2015 §7.4.4 example: 01234567 -> 0000001100 0101011001 1000011 in numeric mode.
TEST(SegmentParser, NumericExampleOfTheStandard)
{
  stream s;
  s.put(1, 4);
  s.put(8, 10);
  s.put(0b0000001100, 10);
  s.put(0b0101011001, 10);
  s.put(0b1000011, 7);
  const auto r = s.parse();
  ASSERT_EQ(r.error, decode_error::none);
  EXPECT_EQ(std::string(s.out.begin(), s.out.end()), "01234567");
}

// §7.4.5 example: AC-42 -> 00111001110 11100111001 000010.
TEST(SegmentParser, AlphanumericExampleOfTheStandard)
{
  stream s;
  s.put(2, 4);
  s.put(5, 9);
  s.put(0b00111001110, 11);
  s.put(0b11100111001, 11);
  s.put(0b000010, 6);
  s.put(0, 4);
  const auto r = s.parse();
  ASSERT_EQ(r.error, decode_error::none);
  EXPECT_EQ(std::string(s.out.begin(), s.out.end()), "AC-42");
}

TEST(SegmentParser, SkipsEciStructuredAppendAndFnc1)
{
  stream s;
  s.put(3, 4);
  s.put(0x1234, 16);  // structured append
  s.put(7, 4);
  s.put(0x80u | (1000 >> 8), 8);  // ECI 1000, two-byte designator
  s.put(1000 & 0xFF, 8);
  s.put(5, 4);  // FNC1 first
  s.put(4, 4);
  s.put(2, 8);
  s.put('a', 8);
  s.put(0, 8);
  s.put(9, 4);  // FNC1 second, application indicator
  s.put(37, 8);
  s.put(7, 4);
  s.put(5, 8);  // a second ECI: the first is reported
  s.put(1, 4);
  s.put(2, 10);
  s.put(42, 7);
  const auto r = s.parse();
  ASSERT_EQ(r.error, decode_error::none);
  EXPECT_EQ(r.eci, 1000);
  EXPECT_EQ(s.out, (bytes{'a', 0, '4', '2'}));
}

// Byte segments starting at every bit offset (a numeric prefix of 0..11 digits shifts them).
TEST(SegmentParser, ByteSegmentsAtEveryBitOffset)
{
  std::mt19937 rng(test_seed() + 5);
  for (int digits = 0; digits <= 11; ++digits)
    for (int len : {0, 1, 2, 7, 33}) {
      bytes data(128, 0);
      core::bit_writer w{data.data(), 128 * 8};
      std::string expected;
      if (digits > 0) {
        w.append(1, 4);
        w.append(static_cast<std::uint32_t>(digits), 10);
        int left = digits;
        for (; left >= 3; left -= 3) w.append(123, 10), expected += "123";
        if (left == 2) w.append(45, 7), expected += "45";
        if (left == 1) w.append(6, 4), expected += "6";
      }
      w.append(4, 4);
      w.append(static_cast<std::uint32_t>(len), 8);
      for (int i = 0; i < len; ++i) {
        const auto b = static_cast<std::uint8_t>(rng() & 0xFFu);
        w.append(b, 8);
        expected += static_cast<char>(b);
      }
      w.append(0, 4);
      const int codewords = (w.length + 7) / 8;  // end on the last byte actually used
      bytes out(256);
      const auto r = core::parse_segments(data.data(), codewords, 1, out.data(), 256);
      ASSERT_EQ(r.error, decode_error::none) << digits << " digits, " << len << " bytes";
      EXPECT_EQ(std::string(out.begin(), out.begin() + r.length), expected) << digits << " digits, " << len << " bytes";
    }
}

TEST(SegmentParser, RejectsMalformedStreams)
{
  {
    stream s;  // numeric group of three above 999
    s.put(1, 4), s.put(3, 10), s.put(1000, 10);
    EXPECT_EQ(s.parse().error, decode_error::bitstream);
  }
  {
    stream s;  // numeric pair above 99
    s.put(1, 4), s.put(2, 10), s.put(100, 7);
    EXPECT_EQ(s.parse().error, decode_error::bitstream);
  }
  {
    stream s;  // alphanumeric pair 45 * 45
    s.put(2, 4), s.put(2, 9), s.put(2025, 11);
    EXPECT_EQ(s.parse().error, decode_error::bitstream);
  }
  {
    stream s;  // undefined mode indicator 0110
    s.put(6, 4);
    EXPECT_EQ(s.parse().error, decode_error::bitstream);
  }
  {
    stream s;  // ECI designator 1110xxxx
    s.put(7, 4), s.put(0xE0, 8);
    EXPECT_EQ(s.parse().error, decode_error::bitstream);
  }
  {
    stream s;  // byte count past the end of 2 codewords
    s.put(4, 4), s.put(200, 8);
    const auto r = core::parse_segments(s.data.data(), 2, 1, s.data.data() + 32, 32);
    EXPECT_EQ(r.error, decode_error::bitstream);
  }
}

TEST(SegmentParser, EndsWithoutTerminatorAndStopsAtCapacity)
{
  bytes out(8);
  stream full;  // 3 digits in exactly 3 codewords: no room for a terminator
  full.put(1, 4), full.put(3, 10), full.put(987, 10);
  auto r = core::parse_segments(full.data.data(), 3, 1, out.data(), 8);
  ASSERT_EQ(r.error, decode_error::none);
  EXPECT_EQ(std::string(out.begin(), out.begin() + r.length), "987");

  stream cut;  // 3 bytes announced, 2.5 present in 4 codewords
  cut.put(4, 4), cut.put(3, 8), cut.put('x', 8), cut.put('y', 8), cut.put('z' >> 4, 4);
  r = core::parse_segments(cut.data.data(), 4, 1, out.data(), 8);
  EXPECT_EQ(r.error, decode_error::bitstream);

  stream two;  // 2 bytes and a terminator in 4 codewords; capacity 1 is too small
  two.put(4, 4), two.put(2, 8), two.put('x', 8), two.put('y', 8), two.put(0, 4);
  r = core::parse_segments(two.data.data(), 4, 1, out.data(), 2);
  EXPECT_EQ(r.error, decode_error::none);
  EXPECT_EQ(r.length, 2);
  r = core::parse_segments(two.data.data(), 4, 1, out.data(), 1);
  EXPECT_EQ(r.error, decode_error::output_full);
  EXPECT_EQ(r.length, 0);
}

// ---- Whole symbols: round trips through our encoder ---------------------------------------------

TEST(DecodeSymbol, RoundTripEveryVersionLevelAndMask)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 10);
  for (int v = 1; v <= 40; ++v)
    for (ecc_level e : levels)
      for (int mask = 0; mask < 8; ++mask) {
        SCOPED_TRACE(describe(v, e, mask));
        const bytes payload =
            random_bytes(rng, static_cast<std::size_t>(random_length(rng, qrplate::max_byte_payload(v, e))));
        const auto s = encode_fixed(payload, v, e, mask);
        ASSERT_EQ(s.mask, mask);
        // With the plan of the symbol's level (fast clean check) and of another level.
        for (ecc_level plan_ecc : {e, levels[(static_cast<int>(e) + 1 + mask % 3) % 4]}) {
          const decoded d = decode(s.rows, v, plan_ecc, nullptr, 0, spec::max_data_codewords);
          ASSERT_EQ(d.r.status, decode_status::ok)
              << status_name(d.r.status) << " (plan level " << level_name(plan_ecc) << ")";
          EXPECT_EQ(d.r.error, decode_error::none);
          EXPECT_EQ(d.r.ecc, e);
          EXPECT_EQ(d.r.mask, mask);
          EXPECT_EQ(d.r.format_distance, 0);
          EXPECT_EQ(d.r.corrected_symbols, 0);
          EXPECT_EQ(d.r.erasures, 0);
          EXPECT_EQ(d.r.eci, -1);
          EXPECT_EQ(d.r.margin, spec::ecc_codewords_per_block(e, v) - core::misdecode_protection(v, e));
          ASSERT_EQ(d.content, payload);
        }
      }
}

// The core encoder entry point (core::encode_byte_payload with a cached plan) reads back too.
TEST(DecodeSymbol, RoundTripThroughTheCoreEncoder)
{
  std::mt19937 rng(test_seed() + 11);
  auto ews = std::make_unique<core::encode_workspace>();
  for (int v = 1; v <= 40; ++v) {
    const ecc_level e = levels[rng() % 4];
    const auto& plan = qrplate::host::version_plan_for(v, e);
    const bytes payload =
        random_bytes(rng, static_cast<std::size_t>(random_length(rng, qrplate::max_byte_payload(v, e))));
    std::vector<std::uint64_t> rows(qrplate::words_per_symbol(plan.size));
    const int mask = core::encode_byte_payload(plan, payload.data(), static_cast<std::uint32_t>(payload.size()),
                                               core::auto_mask, *ews, rows.data());
    ASSERT_GE(mask, 0);
    const decoded d = decode(rows, v, e);
    ASSERT_EQ(d.r.status, decode_status::ok) << describe(v, e, mask);
    EXPECT_EQ(d.r.mask, mask);
    EXPECT_EQ(d.content, payload);
  }
}

std::string random_text(std::mt19937& rng, int pieces)
{
  static const std::string alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
  std::string t;
  for (int p = 0; p < pieces; ++p) {
    const int len = 1 + static_cast<int>(rng() % 30);
    const int kind = static_cast<int>(rng() % 3);
    for (int i = 0; i < len; ++i) {
      if (kind == 0)
        t += static_cast<char>('0' + rng() % 10);
      else if (kind == 1)
        t += alnum[rng() % alnum.size()];
      else
        t += static_cast<char>(rng() & 0xFFu);
    }
  }
  return t;
}

TEST(DecodeSymbol, TextPayloadsWithEci)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 12);
  std::vector<std::string> texts = {
      "0",
      "12",
      "123",
      "0123456789012345678901234567890123456789",
      "HELLO WORLD",
      "AC-42 $%*+-./:",
      "https://example.org/qrplate?x=1",
      "Gr\xC3\xBC\xC3\x9F"
      "e 2024",
      std::string("nul\0byte", 8),
      "3141592653589793238462643383279502884197169399375105820974944592ABCDEFabcdef",
  };
  for (int i = 0; i < 60; ++i) texts.push_back(random_text(rng, 1 + static_cast<int>(rng() % 8)));
  const int ecis[] = {-1, 3, 26, 127, 128, 16383, 16384, 999999};
  int checked = 0;
  for (const std::string& text : texts)
    for (int eci : ecis) {
      qrplate::qr_options o;
      o.ecc = levels[rng() % 4];
      o.eci = eci;
      o.mask = static_cast<int>(rng() % 8);
      // Automatic version, or one forced into each count-width class (1-9, 10-26, 27-40).
      const int forced[] = {0, 9, 10, 26, 27, 40};
      const int f = forced[rng() % 6];
      if (f != 0) o.min_version = o.max_version = f;
      qrplate::qr_symbol s;
      try {
        s = qrplate::encode_text(text, o);
      } catch (const qrplate::data_too_long&) {  // too long for the forced version: any version
        o.min_version = 1;
        o.max_version = 40;
        s = qrplate::encode_text(text, o);
      }
      SCOPED_TRACE(describe(s.version, s.ecc, s.mask) + " eci " + std::to_string(eci) + " text of " +
                   std::to_string(text.size()) + " bytes");
      const decoded d = decode(s.rows, s.version, ecc_level::L);
      ASSERT_EQ(d.r.status, decode_status::ok) << status_name(d.r.status);
      EXPECT_EQ(d.r.eci, eci);
      EXPECT_EQ(d.r.ecc, s.ecc);
      EXPECT_EQ(std::string(d.content.begin(), d.content.end()), text);
      ++checked;
    }
  EXPECT_EQ(checked, static_cast<int>(texts.size()) * 8);
}

// 7089 digits fill 40-L (ISO Table 7): more than spec::max_data_codewords bytes of content.
TEST(DecodeSymbol, NumericCapacityNeedsTheLargerBuffer)
{
  std::mt19937 rng(test_seed() + 13);
  std::string digits;
  for (int i = 0; i < core::max_decoded_length; ++i) digits += static_cast<char>('0' + rng() % 10);
  qrplate::qr_options o;
  o.min_version = o.max_version = 40;
  o.ecc = ecc_level::L;
  const auto s = qrplate::encode_text(digits, o);
  decoded d = decode(s.rows, 40, ecc_level::L, nullptr, 0, core::max_decoded_length);
  ASSERT_EQ(d.r.status, decode_status::ok);
  EXPECT_EQ(std::string(d.content.begin(), d.content.end()), digits);
  d = decode(s.rows, 40, ecc_level::L, nullptr, 0, spec::max_data_codewords);
  EXPECT_EQ(d.r.status, decode_status::failed);
  EXPECT_EQ(d.r.error, decode_error::output_full);
  EXPECT_EQ(d.r.data_length, 0);
}

// A Kanji segment in a whole symbol (our encoder writes none: the bit stream is built here).
TEST(DecodeSymbol, KanjiSymbol)
{
  const auto& plan = qrplate::host::version_plan_for(1, ecc_level::H);
  auto ws = std::make_unique<core::encode_workspace>();
  const int data_codewords = spec::num_data_codewords(1, ecc_level::H);
  for (int i = 0; i < data_codewords; ++i) ws->data[i] = 0;
  core::bit_writer w{ws->data, data_codewords * 8};
  w.append(8, 4);
  w.append(2, 8);
  w.append(0x0D9F, 13);
  w.append(0x1AAA, 13);
  core::finish_data_codewords(w, data_codewords);
  std::vector<std::uint64_t> rows(qrplate::words_per_symbol(plan.size));
  const int mask = core::encode_from_data_codewords(plan, *ws, 3, rows.data());
  const decoded d = decode(rows, 1, ecc_level::M);
  ASSERT_EQ(d.r.status, decode_status::ok);
  EXPECT_EQ(d.r.mask, mask);
  EXPECT_EQ(d.content, (bytes{0x93, 0x5F, 0xE4, 0xAA}));
}

TEST(DecodeSymbol, FullConfidenceChangesNothing)
{
  std::mt19937 rng(test_seed() + 14);
  for (int v : {1, 5, 17, 40}) {
    const bytes payload = random_bytes(rng, 10);
    const auto s = encode_fixed(payload, v, ecc_level::M, 2);
    const std::vector<std::uint8_t> conf(static_cast<std::size_t>(s.size * s.size), 255);
    const decoded d = decode(s.rows, v, ecc_level::M, conf.data(), 255);
    EXPECT_EQ(d.r.status, decode_status::ok);
    EXPECT_EQ(d.content, payload);
  }
}

// ---- Injected errors and erasures -----------------------------------------------------------------

struct damage_plan {
  int version;
  ecc_level ecc;
  int mask;
  bytes payload;
  qrplate::qr_symbol symbol;
  bytes data;  // the data codewords written
};

damage_plan make_case(std::mt19937& rng, int v, ecc_level e)
{
  damage_plan c{v, e, static_cast<int>(rng() % 8), {}, {}, {}};
  c.payload = random_bytes(rng, static_cast<std::size_t>(random_length(rng, qrplate::max_byte_payload(v, e))));
  c.symbol = encode_fixed(c.payload, v, e, c.mask);
  c.data.resize(static_cast<std::size_t>(spec::num_data_codewords(v, e)));
  EXPECT_TRUE(core::build_byte_mode_codewords(c.payload.data(), static_cast<std::uint32_t>(c.payload.size()), v, e,
                                              c.data.data()));
  return c;
}

// t = floor((d - p) / 2) errors in every block: corrected, exactly.
TEST(DecodeSymbol, CorrectsErrorsUpToTheBudget)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 20);
  for (int v = 1; v <= 40; ++v)
    for (ecc_level e : levels) {
      damage_plan c = make_case(rng, v, e);
      SCOPED_TRACE(describe(v, e, c.mask));
      const auto& plan = qrplate::host::version_plan_for(v, e);
      const int d = spec::ecc_codewords_per_block(e, v), p = core::misdecode_protection(v, e);
      const int t = (d - p) / 2;
      auto rows = c.symbol.rows;
      int damaged = 0;
      for (int blk = 0; blk < spec::num_ecc_blocks(e, v); ++blk)
        for (int i : pick(rng, block_length(v, e, blk), t)) {
          damage_codeword(rows, plan, interleaved_index(v, e, blk, i), rng, nullptr, 0, 0);
          ++damaged;
        }
      const decoded r = decode(rows, v, levels[rng() % 4]);
      ASSERT_EQ(r.r.status, decode_status::corrected) << status_name(r.r.status);
      EXPECT_EQ(r.r.corrected_symbols, damaged);
      EXPECT_EQ(r.r.erasures, 0);
      EXPECT_EQ(r.r.margin, (d - p) - 2 * t);
      ASSERT_EQ(r.content, c.payload);
    }
}

// d - p - 2 damaged codewords per block, their modules marked low: about twice the errors-only
// budget, corrected with erasures; without the confidences the same symbol fails.
TEST(DecodeSymbol, ErasuresDoubleTheBudget)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 21);
  constexpr std::uint8_t threshold = 128;
  for (int v = 1; v <= 40; ++v)
    for (ecc_level e : levels) {
      damage_plan c = make_case(rng, v, e);
      SCOPED_TRACE(describe(v, e, c.mask));
      const auto& plan = qrplate::host::version_plan_for(v, e);
      const int d = spec::ecc_codewords_per_block(e, v), p = core::misdecode_protection(v, e);
      const int cap = d - p - 2;
      const int blocks = spec::num_ecc_blocks(e, v);
      auto rows = c.symbol.rows;
      std::vector<std::uint8_t> conf(static_cast<std::size_t>(plan.size * plan.size));
      for (auto& x : conf) x = static_cast<std::uint8_t>(threshold + rng() % (256 - threshold));
      for (int blk = 0; blk < blocks; ++blk)
        for (int i : pick(rng, block_length(v, e, blk), cap))
          damage_codeword(rows, plan, interleaved_index(v, e, blk, i), rng, &conf, 0, threshold - 1);
      const decoded r = decode(rows, v, e, conf.data(), threshold);
      const bool needs_erasures = cap > (d - p) / 2;
      ASSERT_EQ(r.r.status, needs_erasures ? decode_status::erasure_assisted : decode_status::corrected)
          << status_name(r.r.status);
      EXPECT_EQ(r.r.corrected_symbols, blocks * cap);
      EXPECT_EQ(r.r.erasures, needs_erasures ? blocks * cap : 0);
      if (needs_erasures) {
        EXPECT_EQ(r.r.margin, 2);
      }
      ASSERT_EQ(r.content, c.payload);
      if (needs_erasures) {
        const decoded blind = decode(rows, v, e);  // errors-only: past the budget
        EXPECT_EQ(blind.r.status, decode_status::failed) << status_name(blind.r.status);
        EXPECT_EQ(blind.r.error, decode_error::reed_solomon);
      }
    }
}

// Erasures and errors together (e + 2t <= d - p - 2), and more low-confidence codewords than the
// cap: the least confident ones (the damaged ones here) are kept.
TEST(DecodeSymbol, ErasuresWithErrorsAndTooManyCandidates)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 22);
  constexpr std::uint8_t threshold = 128;
  for (int v = 1; v <= 40; ++v)
    for (ecc_level e : levels) {
      damage_plan c = make_case(rng, v, e);
      SCOPED_TRACE(describe(v, e, c.mask));
      const auto& plan = qrplate::host::version_plan_for(v, e);
      const int d = spec::ecc_codewords_per_block(e, v), p = core::misdecode_protection(v, e);
      const int cap = d - p - 2;
      const int blocks = spec::num_ecc_blocks(e, v);
      for (int variant = 0; variant < 2; ++variant) {
        auto rows = c.symbol.rows;
        std::vector<std::uint8_t> conf(static_cast<std::size_t>(plan.size * plan.size), 255);
        int damaged = 0;
        for (int blk = 0; blk < blocks; ++blk) {
          const int n = block_length(v, e, blk);
          if (variant == 0) {  // cap - 2 erasures and one error outside them
            const auto where = pick(rng, n, cap - 1);
            for (std::size_t k = 0; k < where.size(); ++k)
              damage_codeword(rows, plan, interleaved_index(v, e, blk, where[k]), rng, k == 0 ? nullptr : &conf, 0,
                              threshold - 1);
            damaged += static_cast<int>(where.size());
          } else {  // cap damaged codewords at confidence <= 20, up to 10 more flagged (60..120) but right
            const auto where = pick(rng, n, cap + 10);
            for (int k = 0; k < cap; ++k)
              damage_codeword(rows, plan, interleaved_index(v, e, blk, where[static_cast<std::size_t>(k)]), rng, &conf,
                              0, 20);
            damaged += cap;
            for (std::size_t k = static_cast<std::size_t>(cap); k < where.size(); ++k) {
              const int pos = plan.placement[8 * interleaved_index(v, e, blk, where[k]) + static_cast<int>(rng() % 8)];
              const int row = pos / (64 * plan.words), col = pos % (64 * plan.words);
              conf[static_cast<std::size_t>(row * plan.size + col)] = static_cast<std::uint8_t>(60 + rng() % 61);
            }
          }
        }
        const decoded r = decode(rows, v, e, conf.data(), threshold);
        ASSERT_TRUE(good(r.r.status)) << "variant " << variant << ": " << status_name(r.r.status);
        EXPECT_EQ(r.r.corrected_symbols, damaged) << "variant " << variant;
        ASSERT_EQ(r.content, c.payload) << "variant " << variant;
      }
    }
}

// Generalized minimum distance: more low-confidence codewords than the cap, and not every damaged
// one among the cap least confident. Per block: a damaged codewords at confidence 0..10, right
// ones at 30..50 enough to fill the cap, and b = 1..3 damaged ones at 60..120 (below the
// threshold). Errors-only sees a + b > (d - p) / 2 errors; erasing the cap least confident leaves
// the b outside (cap + 2b > cap); erasing cap - 2b of them (all a damaged ones and some right
// ones) leaves room for the b as errors. One erasure trial (the policy before GMD) fails here.
TEST(DecodeSymbol, FewerErasuresFindTheErrorsTheCapLeavesOut)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 24);
  constexpr std::uint8_t threshold = 128;
  int tested = 0;
  for (int v = 1; v <= 40; ++v)
    for (ecc_level e : levels) {
      const int d = spec::ecc_codewords_per_block(e, v), p = core::misdecode_protection(v, e);
      const int budget = d - p, cap = budget - core::erasure_reserve;
      const int most_b = (budget + 1) / 2 - 3;  // cap - 2b >= a needs ceil(budget / 2) >= 3 + b
      if (most_b < 1) continue;
      damage_plan c = make_case(rng, v, e);
      SCOPED_TRACE(describe(v, e, c.mask));
      const auto& plan = qrplate::host::version_plan_for(v, e);
      const int blocks = spec::num_ecc_blocks(e, v);
      auto rows = c.symbol.rows;
      std::vector<std::uint8_t> conf(static_cast<std::size_t>(plan.size * plan.size), 255);
      int damaged = 0, erasures = 0;
      for (int blk = 0; blk < blocks; ++blk) {
        const int b = 1 + static_cast<int>(rng() % static_cast<unsigned>(std::min(3, most_b)));
        const int a = budget / 2 + 1 - b;
        const int right = cap - a + 2;
        const auto where = pick(rng, block_length(v, e, blk), a + right + b);
        ASSERT_EQ(static_cast<int>(where.size()), a + right + b);
        for (int k = 0; k < a + right + b; ++k) {
          const int cw = interleaved_index(v, e, blk, where[static_cast<std::size_t>(k)]);
          if (k < a) {
            damage_codeword(rows, plan, cw, rng, &conf, 0, 10);
          } else if (k < a + right) {  // right, one module at 30..50
            const int pos = plan.placement[8 * cw + static_cast<int>(rng() % 8)];
            const int row = pos / (64 * plan.words), col = pos % (64 * plan.words);
            conf[static_cast<std::size_t>(row * plan.size + col)] = static_cast<std::uint8_t>(30 + rng() % 21);
          } else {
            damage_codeword(rows, plan, cw, rng, &conf, 60, 120);
          }
        }
        damaged += a + b;
        erasures += cap - 2 * b;  // the first trial that fits: cap, cap - 2, ... down to cap - 2b
      }
      const decoded blind = decode(rows, v, e);
      EXPECT_EQ(blind.r.status, decode_status::failed) << status_name(blind.r.status);
      const decoded r = decode(rows, v, e, conf.data(), threshold);
      ASSERT_EQ(r.r.status, decode_status::erasure_assisted) << status_name(r.r.status);
      EXPECT_EQ(r.r.corrected_symbols, damaged);
      EXPECT_EQ(r.r.erasures, erasures);
      EXPECT_EQ(r.r.margin, core::erasure_reserve);
      ASSERT_EQ(r.content, c.payload);
      ++tested;
    }
  EXPECT_GE(tested, 150);  // of the 160 versions and levels, those whose budget allows the case
}

// Past the budget: reported as failed, or miscorrected to another codeword, counted by comparing
// the corrected data codewords with those written (a miscorrection that only touches padding
// still yields the right payload). Errors-only decoding must essentially never miscorrect; with
// erasures at the cap (2 codewords of redundancy left) some blocks do.
TEST(DecodeSymbol, BeyondTheBudgetFails)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 23);
  constexpr std::uint8_t threshold = 128;
  int trials = 0, failed[3] = {0, 0, 0}, wrong[3] = {0, 0, 0};
  for (int round = 0; round < 3; ++round)
    for (int v = 1; v <= 40; ++v)
      for (ecc_level e : levels) {
        damage_plan c = make_case(rng, v, e);
        SCOPED_TRACE(describe(v, e, c.mask));
        const auto& plan = qrplate::host::version_plan_for(v, e);
        const int d = spec::ecc_codewords_per_block(e, v), p = core::misdecode_protection(v, e);
        const int blocks = spec::num_ecc_blocks(e, v);
        const int victim = static_cast<int>(rng() % static_cast<unsigned>(blocks));
        const int n = block_length(v, e, victim);
        ++trials;
        // Errors only: floor((d - p) / 2) + 1 .. + 4 damaged codewords in one block.
        {
          auto rows = c.symbol.rows;
          for (int i : pick(rng, n, (d - p) / 2 + 1 + static_cast<int>(rng() % 4)))
            damage_codeword(rows, plan, interleaved_index(v, e, victim, i), rng, nullptr, 0, 0);
          const decoded r = decode(rows, v, e);
          if (r.r.status == decode_status::failed)
            ++failed[0];
          else if (r.data_codewords != c.data)
            ++wrong[0];
          else
            ADD_FAILURE() << "beyond the budget but decoded right: " << status_name(r.r.status);
        }
        // Erasures at the cap plus one or two errors outside them: e + 2t = d - p or d - p + 2,
        // past what the erasure pass accepts (d - p - erasure_reserve).
        {
          auto rows = c.symbol.rows;
          std::vector<std::uint8_t> conf(static_cast<std::size_t>(plan.size * plan.size), 255);
          const int errors = 1 + round % 2;
          const auto where = pick(rng, n, d - p - core::erasure_reserve + errors);
          for (std::size_t k = 0; k < where.size(); ++k)
            damage_codeword(rows, plan, interleaved_index(v, e, victim, where[k]), rng,
                            static_cast<int>(k) < errors ? nullptr : &conf, 0, 10);
          const decoded r = decode(rows, v, e, conf.data(), threshold);
          if (r.r.status == decode_status::failed || r.r.status == decode_status::bad_format)
            ++failed[1];
          else if (r.data_codewords != c.data)
            ++wrong[1];
          else
            ADD_FAILURE() << "beyond the budget but decoded right: " << status_name(r.r.status);
        }
        // More damaged codewords than the cap (cap + 1 .. cap + 3), at confidences mixed with those
        // of as many right but doubtful ones, all below the threshold: whatever prefix a GMD trial
        // erases (x damaged of D), e + 2t >= 2D - x >= D > cap, so every trial is past the budget.
        {
          auto rows = c.symbol.rows;
          std::vector<std::uint8_t> conf(static_cast<std::size_t>(plan.size * plan.size), 255);
          const int cap = d - p - core::erasure_reserve;
          const int bad = cap + 1 + static_cast<int>(rng() % 3);
          const auto where = pick(rng, n, 2 * bad);
          for (std::size_t k = 0; k < where.size(); ++k) {
            const int cw = interleaved_index(v, e, victim, where[k]);
            if (static_cast<int>(k) < bad) {
              damage_codeword(rows, plan, cw, rng, &conf, 0, 120);
            } else {
              const int pos = plan.placement[8 * cw + static_cast<int>(rng() % 8)];
              const int row = pos / (64 * plan.words), col = pos % (64 * plan.words);
              conf[static_cast<std::size_t>(row * plan.size + col)] = static_cast<std::uint8_t>(rng() % 121);
            }
          }
          const decoded r = decode(rows, v, e, conf.data(), threshold);
          if (r.r.status == decode_status::failed || r.r.status == decode_status::bad_format)
            ++failed[2];
          else if (r.data_codewords != c.data)
            ++wrong[2];
          else
            ADD_FAILURE() << "beyond every GMD trial but decoded right: " << status_name(r.r.status);
        }
      }
  std::cout << "[ beyond   ] " << trials << " symbols; errors-only: " << failed[0] << " failed, " << wrong[0]
            << " wrong; erasures at the cap + 1 or 2 errors: " << failed[1] << " failed, " << wrong[1]
            << " wrong; every GMD trial past it: " << failed[2] << " failed, " << wrong[2] << " wrong\n";
  EXPECT_EQ(wrong[0], 0);
  EXPECT_LE(wrong[1], trials / 100);  // the reserve keeps two syndromes as a check
  EXPECT_LE(wrong[2], trials / 100);  // up to cap / 2 trials a block, each held to the same budget
}

// Noise with valid format information: every block fails (no crash, nothing written past `out`).
// Valid blocks holding random data codewords: the parser either reads them or reports a
// bitstream error, never more than out_capacity bytes.
TEST(DecodeSymbol, NoiseAndRandomBitStreams)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 24);
  auto ews = std::make_unique<core::encode_workspace>();
  int parsed = 0, rejected = 0;
  for (int v = 1; v <= 40; ++v)
    for (int trial = 0; trial < 8; ++trial) {
      const ecc_level e = levels[rng() % 4];
      const int mask = static_cast<int>(rng() % 8);
      SCOPED_TRACE(describe(v, e, mask) + " trial " + std::to_string(trial));
      const auto& plan = qrplate::host::version_plan_for(v, e);
      std::vector<std::uint64_t> rows(qrplate::words_per_symbol(plan.size));
      for (auto& w : rows) w = (static_cast<std::uint64_t>(rng()) << 32) | rng();
      for (int copy = 0; copy < 2; ++copy) write_format_copy(rows, plan.size, copy, spec::format_info_bits(e, mask));
      std::vector<std::uint8_t> conf(static_cast<std::size_t>(plan.size * plan.size));
      for (auto& x : conf) x = static_cast<std::uint8_t>(rng() & 0xFFu);
      decoded r = decode(rows, v, e, trial % 2 ? conf.data() : nullptr, 128);
      EXPECT_EQ(r.r.status, decode_status::failed) << status_name(r.r.status);
      EXPECT_EQ(r.r.error, decode_error::reed_solomon);

      const int data_codewords = spec::num_data_codewords(v, e);
      for (int i = 0; i < data_codewords; ++i) ews->data[i] = static_cast<std::uint8_t>(rng() & 0xFFu);
      if (trial % 4 == 0) ews->data[0] = static_cast<std::uint8_t>(0x10u | (ews->data[0] & 0x0Fu));  // numeric
      core::encode_from_data_codewords(plan, *ews, mask, rows.data());
      r = decode(rows, v, e, nullptr, 0, 1 + static_cast<int>(rng() % spec::max_data_codewords));
      if (r.r.status == decode_status::ok) {
        ++parsed;
      } else {
        ++rejected;
        EXPECT_EQ(r.r.status, decode_status::failed);
        EXPECT_TRUE(r.r.error == decode_error::bitstream || r.r.error == decode_error::output_full);
      }
    }
  std::cout << "[ random   ] random data codewords: " << parsed << " parsed, " << rejected << " rejected\n";
  EXPECT_GT(rejected, 0);
}

// ---- Format information damage ----------------------------------------------------------------------

TEST(DecodeSymbol, FormatDamagedInOneCopyDestroyedInTheOther)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 30);
  int tried_second = 0;
  for (int trial = 0; trial < 480; ++trial) {
    const int v = 1 + trial % 40;
    const ecc_level e = levels[(trial / 40) % 4];
    damage_plan c = make_case(rng, v, e);
    SCOPED_TRACE(describe(v, e, c.mask) + " trial " + std::to_string(trial));
    const int n = c.symbol.size;
    const int kept = static_cast<int>(rng() % 2);
    const int flips = 1 + static_cast<int>(rng() % 3);
    std::uint32_t word = spec::format_info_bits(e, c.mask);
    for (int i : pick(rng, 15, flips)) word ^= 1u << i;
    auto rows = c.symbol.rows;
    write_format_copy(rows, n, kept, word);
    const std::uint32_t junk = rng() & 0x7FFFu;
    write_format_copy(rows, n, 1 - kept, junk);
    const decoded r = decode(rows, v, levels[rng() % 4]);
    ASSERT_EQ(r.r.status, decode_status::ok) << status_name(r.r.status) << " junk " << junk;
    EXPECT_EQ(r.r.ecc, e);
    EXPECT_EQ(r.r.mask, c.mask);
    EXPECT_LE(r.r.format_distance, flips);
    ASSERT_EQ(r.content, c.payload);
    if (nearest_format_distance(junk) <= flips &&
        nearest_format_distance(junk ^ spec::format_info_bits(e, c.mask)) != 0)
      ++tried_second;
  }
  std::cout << "[ format   ] " << tried_second << " of 480 symbols had a junk copy at least as near to a wrong word\n";
  EXPECT_GT(tried_second, 0);  // the fallback to the second reading was exercised
}

// decode_cooperative.hpp's phases run on the CPU (each phase's threads one after another in a new
// random order, scratch filled with garbage first), held to decode_symbol on symbols damaged every
// way the tests above use: errors and erasures up to and past the budget, noise, format copies
// damaged or destroyed, the plan of another level (no fast clean check), small output buffers.
TEST(DecodeSymbol, CooperativeDecodeIsDecodeSymbol)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 40);
  std::mt19937_64 order_rng(seed);
  auto ws = std::make_unique<core::decode_workspace>();
  auto state = std::make_unique<core::cooperative_decode_state>();
  int outcomes[5] = {0, 0, 0, 0, 0};  // ok, corrected, erasure_assisted, failed, bad_format
  for (int trial = 0; trial < 400; ++trial) {
    const int v = 1 + static_cast<int>(rng() % 40);
    const ecc_level e = levels[rng() % 4];
    damage_plan c = make_case(rng, v, e);
    const ecc_level plan_ecc = rng() % 3 == 0 ? levels[rng() % 4] : e;
    const auto& plan = qrplate::host::version_plan_for(v, plan_ecc);
    const int n = plan.size;
    auto rows = c.symbol.rows;
    std::vector<std::uint8_t> conf(static_cast<std::size_t>(n * n), 255);
    const int mode = trial % 5;
    if (mode == 1 || mode == 2) {  // codewords damaged per block, up to past the budget, some flagged
      const int d = spec::ecc_codewords_per_block(e, v), p = core::misdecode_protection(v, e);
      for (int blk = 0; blk < spec::num_ecc_blocks(e, v); ++blk) {
        const int k = static_cast<int>(rng() % static_cast<unsigned>(d - p + 3));
        for (int i : pick(rng, block_length(v, e, blk), k))
          damage_codeword(rows, plan, interleaved_index(v, e, blk, i), rng, mode == 2 ? &conf : nullptr, 0, 200);
      }
    } else if (mode == 3) {  // noise: modules flipped anywhere, format included
      const int flips = static_cast<int>(rng() % static_cast<unsigned>(n * n / 40 + 1));
      for (int i = 0; i < flips; ++i) {
        const int r = static_cast<int>(rng() % n), col = static_cast<int>(rng() % n);
        set_module(rows, n, r, col, !get_module(rows, n, r, col));
      }
    } else if (mode == 4) {  // format: one copy junk, sometimes both
      write_format_copy(rows, n, static_cast<int>(rng() % 2), rng() & 0x7FFFu);
      if (rng() % 3 == 0) write_format_copy(rows, n, static_cast<int>(rng() % 2), rng() & 0x7FFFu);
    }
    const bool with_conf = rng() % 2 == 0;
    const std::uint8_t threshold = with_conf ? 128 : 0;
    const int capacity = rng() % 8 == 0 ? static_cast<int>(c.payload.size() / 2) : core::max_decoded_length;
    const decoded want = decode(rows, v, plan_ecc, with_conf ? conf.data() : nullptr, threshold, capacity);
    for (const int threads : {1, 5, 64}) {
      SCOPED_TRACE(describe(v, e, c.mask) + " trial " + std::to_string(trial) + " mode " + std::to_string(mode) +
                   " threads " + std::to_string(threads));
      std::memset(static_cast<void*>(ws.get()), 0xA5, sizeof(core::decode_workspace));
      std::memset(static_cast<void*>(state.get()), 0xA5, sizeof(core::cooperative_decode_state));
      bytes content(static_cast<std::size_t>(capacity) + 16, 0xA5);
      const core::cooperative_decode_job job{&plan, rows.data(), with_conf ? conf.data() : nullptr, threshold,
                                             content.data(), capacity, ws.get(), state.get()};
      qrplate::test::run_phases(core::cooperative_decode_phase_count, threads, order_rng, [&](int phase, int t, int k) {
        core::run_cooperative_decode_phase(job, phase, t, k);
      });
      const decode_result& got = state->result;
      ASSERT_EQ(status_name(got.status), status_name(want.r.status));
      ASSERT_EQ(static_cast<int>(got.error), static_cast<int>(want.r.error));
      ASSERT_EQ(got.ecc, want.r.ecc);
      ASSERT_EQ(got.mask, want.r.mask);
      ASSERT_EQ(got.format_distance, want.r.format_distance);
      ASSERT_EQ(got.corrected_symbols, want.r.corrected_symbols);
      ASSERT_EQ(got.erasures, want.r.erasures);
      ASSERT_EQ(got.margin, want.r.margin);
      ASSERT_EQ(got.data_length, want.r.data_length);
      ASSERT_EQ(got.eci, want.r.eci);
      for (int i = capacity; i < capacity + 16; ++i) ASSERT_EQ(content[static_cast<std::size_t>(i)], 0xA5);
      content.resize(static_cast<std::size_t>(got.data_length));
      ASSERT_EQ(content, want.content);
    }
    const int k = good(want.r.status) ? static_cast<int>(want.r.status) : (want.r.status == decode_status::failed ? 3 : 4);
    ++outcomes[k < 5 ? k : 4];
  }
  // Every kind of outcome was compared.
  for (int k = 0; k < 5; ++k) EXPECT_GT(outcomes[k], 0) << "outcome kind " << k;
}

// The cooperative decoder notes byte segments' runs while one thread parses and copies them on
// every thread afterwards, up to max_byte_runs; past that the parsing thread copies them. Text
// payloads of 1 to 16 byte segments between numeric and alphanumeric ones (ECI too), held to
// decode_symbol's content.
TEST(DecodeSymbol, CooperativeDecodeOfManySegments)
{
  std::mt19937 rng(test_seed() + 41);
  std::mt19937_64 order_rng(test_seed());
  auto ws = std::make_unique<core::decode_workspace>();
  auto state = std::make_unique<core::cooperative_decode_state>();
  int past_the_runs = 0;  // symbols with more byte segments than runs noted
  for (int byte_segments = 1; byte_segments <= 16; ++byte_segments) {
    std::string text;  // "<bytes>0123456789012HELLO WORLD ..." per segment
    for (int k = 0; k < byte_segments; ++k) {
      text += "\xC3\xBC";
      text += k % 2 ? "3141592653589793" : "QRPLATE ARCHIVE ";
    }
    qrplate::qr_options o;
    o.ecc = levels[rng() % 4];
    o.eci = byte_segments % 3 == 0 ? 26 : -1;
    const qrplate::qr_symbol s = qrplate::encode_text(text, o);
    // How many byte segments the encoder made (its optimal split), so the test knows what it covers.
    std::vector<core::segment> segs(text.size());
    std::vector<std::uint8_t> scratch(3 * text.size());
    const int count = core::make_segments_optimal(reinterpret_cast<const std::uint8_t*>(text.data()),
                                                  static_cast<std::uint32_t>(text.size()), s.version, segs.data(),
                                                  scratch.data());
    const int byte_count = static_cast<int>(std::count_if(
        segs.begin(), segs.begin() + count, [](const core::segment& g) { return g.mode == spec::segment_mode::byte; }));
    past_the_runs += byte_count > core::max_byte_runs;
    const decoded want = decode(s.rows, s.version, s.ecc);
    ASSERT_EQ(want.r.status, decode_status::ok);
    ASSERT_EQ(std::string(want.content.begin(), want.content.end()), text);
    const core::version_plan& plan = qrplate::host::version_plan_for(s.version, s.ecc);
    for (const int threads : {1, 7, 64}) {
      SCOPED_TRACE(describe(s.version, s.ecc, s.mask) + ", " + std::to_string(byte_count) + " byte segments, threads " +
                   std::to_string(threads));
      std::memset(static_cast<void*>(ws.get()), 0xA5, sizeof(core::decode_workspace));
      std::memset(static_cast<void*>(state.get()), 0xA5, sizeof(core::cooperative_decode_state));
      bytes content(core::max_decoded_length, 0xA5);
      const core::cooperative_decode_job job{&plan, s.rows.data(), nullptr, 0, content.data(),
                                             core::max_decoded_length, ws.get(), state.get()};
      qrplate::test::run_phases(core::cooperative_decode_phase_count, threads, order_rng, [&](int phase, int t, int k) {
        core::run_cooperative_decode_phase(job, phase, t, k);
      });
      ASSERT_EQ(state->result.status, decode_status::ok);
      ASSERT_EQ(state->result.eci, o.eci);
      ASSERT_EQ(state->result.data_length, want.r.data_length);
      content.resize(static_cast<std::size_t>(state->result.data_length));
      ASSERT_EQ(content, want.content);
    }
  }
  EXPECT_GT(past_the_runs, 3);
}

TEST(DecodeSymbol, FormatCopiesDisagreeingAtEqualDistance)
{
  std::mt19937 rng(test_seed() + 31);
  for (int trial = 0; trial < 80; ++trial) {
    const int v = 1 + static_cast<int>(rng() % 40);
    const ecc_level e = levels[rng() % 4];
    damage_plan c = make_case(rng, v, e);
    SCOPED_TRACE(describe(v, e, c.mask) + " trial " + std::to_string(trial));
    const int other_mask = (c.mask + 1 + static_cast<int>(rng() % 7)) % 8;
    const ecc_level other_ecc = levels[rng() % 4];
    const int true_copy = static_cast<int>(rng() % 2);
    std::uint32_t good_word = spec::format_info_bits(e, c.mask),
                  bad_word = spec::format_info_bits(other_ecc, other_mask);
    for (int i : pick(rng, 15, 2)) good_word ^= 1u << i;
    for (int i : pick(rng, 15, 2)) bad_word ^= 1u << i;
    auto rows = c.symbol.rows;
    write_format_copy(rows, c.symbol.size, true_copy, good_word);
    write_format_copy(rows, c.symbol.size, 1 - true_copy, bad_word);
    decoded r = decode(rows, v, e);
    ASSERT_EQ(r.r.status, decode_status::ok) << status_name(r.r.status);
    EXPECT_EQ(r.r.mask, c.mask);
    EXPECT_EQ(r.r.ecc, e);
    EXPECT_EQ(r.r.format_distance, 2);
    ASSERT_EQ(r.content, c.payload);

    // Two wrong readings: neither decodes, and the format is reported as the problem.
    const int third_mask = (c.mask + 1 + static_cast<int>(rng() % 7)) % 8;
    write_format_copy(rows, c.symbol.size, true_copy, spec::format_info_bits(e, third_mask));
    write_format_copy(rows, c.symbol.size, 1 - true_copy, spec::format_info_bits(other_ecc, other_mask));
    if (third_mask == other_mask && e == other_ecc) continue;  // one reading, simply wrong
    r = decode(rows, v, e);
    EXPECT_EQ(r.r.status, decode_status::bad_format) << status_name(r.r.status);
    EXPECT_EQ(r.r.data_length, 0);
  }
}

// QR generators are nested (all roots from alpha^0), so a single-block level-H symbol is also a
// valid level-L symbol of the same mask. A copy that reads (L, mask) exactly must not win over
// one that reads (H, mask) with 3 bit errors when the symbol is level H, and the reverse.
TEST(DecodeSymbol, NestedLevelsPreferTheHigherLevelThatDecodes)
{
  std::mt19937 rng(test_seed() + 33);
  int nested = 0;
  for (int v = 1; v <= 40; ++v)
    for (ecc_level low : levels)
      for (ecc_level high : levels) {
        if (static_cast<int>(high) <= static_cast<int>(low)) continue;
        for (const bool truth_high : {true, false}) {
          const ecc_level e = truth_high ? high : low;
          damage_plan c = make_case(rng, v, e);
          SCOPED_TRACE(describe(v, e, c.mask) + (truth_high ? " read also as " : " read also as ") +
                       level_name(truth_high ? low : high));
          const ecc_level other = truth_high ? low : high;
          std::uint32_t true_word = spec::format_info_bits(e, c.mask);
          for (int i : pick(rng, 15, 3)) true_word ^= 1u << i;
          const int true_copy = static_cast<int>(rng() % 2);
          auto rows = c.symbol.rows;
          write_format_copy(rows, c.symbol.size, true_copy, true_word);
          write_format_copy(rows, c.symbol.size, 1 - true_copy, spec::format_info_bits(other, c.mask));
          const decoded r = decode(rows, v, e);
          ASSERT_EQ(r.r.status, decode_status::ok) << status_name(r.r.status);
          EXPECT_EQ(r.r.ecc, e);
          EXPECT_EQ(r.r.mask, c.mask);
          ASSERT_EQ(r.content, c.payload);
          // Count the cases where the wrong, lower reading alone decodes too (the nesting at work).
          if (truth_high) {
            auto only_low = c.symbol.rows;
            for (int copy = 0; copy < 2; ++copy)
              write_format_copy(only_low, c.symbol.size, copy, spec::format_info_bits(low, c.mask));
            nested += decode(only_low, v, e).r.status == decode_status::ok ? 1 : 0;
          }
        }
      }
  std::cout << "[ nested   ] " << nested << " higher-level symbols also decode as their lower level\n";
  EXPECT_GT(nested, 0);
}

TEST(DecodeSymbol, BothFormatCopiesDestroyed)
{
  std::mt19937 rng(test_seed() + 32);
  std::vector<std::uint32_t> far;  // words at least 4 bits from every format word
  for (std::uint32_t w = 0; w < 0x8000u; ++w)
    if (nearest_format_distance(w) >= 4) far.push_back(w);
  ASSERT_FALSE(far.empty());
  for (int trial = 0; trial < 120; ++trial) {
    const int v = 1 + static_cast<int>(rng() % 40);
    const ecc_level e = levels[rng() % 4];
    damage_plan c = make_case(rng, v, e);
    SCOPED_TRACE(describe(v, e, c.mask));
    auto rows = c.symbol.rows;
    write_format_copy(rows, c.symbol.size, 0, far[rng() % far.size()]);
    write_format_copy(rows, c.symbol.size, 1, far[rng() % far.size()]);
    const decoded r = decode(rows, v, e);
    EXPECT_EQ(r.r.status, decode_status::bad_format);
    EXPECT_EQ(r.r.error, decode_error::format);
    EXPECT_EQ(r.r.mask, -1);
    EXPECT_GE(r.r.format_distance, 4);
    EXPECT_EQ(r.r.data_length, 0);
  }
}

// ---- An independent encoder: Project Nayuki's qrcodegen -----------------------------------------------

int hex_value(char ch)
{
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

TEST(DecodeSymbol, ReadsEveryNayukiSymbol)
{
  const std::string path = QRPLATE_TEST_DATA "/nayuki_symbols.txt";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot open " << path;
  std::string line;
  int line_no = 0, matrices = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    int version = 0, chosen_mask = -1, penalty = 0;
    std::string ecc_text, payload_hex, tok;
    ASSERT_TRUE(static_cast<bool>(ss >> version >> ecc_text >> payload_hex >> chosen_mask)) << "line " << line_no;
    for (int m = 0; m < 8; ++m) ASSERT_TRUE(static_cast<bool>(ss >> penalty)) << "line " << line_no;
    std::vector<std::string> tokens;
    while (ss >> tok) tokens.push_back(tok);
    if (tokens.size() == 1 && tokens[0] == "-") continue;
    const ecc_level ecc = qrplate::parse_ecc_level(ecc_text);
    const int n = spec::symbol_size(version);
    ASSERT_EQ(static_cast<int>(tokens.size()), n) << "line " << line_no;
    bytes payload;
    if (payload_hex != "-")
      for (std::size_t i = 0; i + 1 < payload_hex.size(); i += 2)
        payload.push_back(static_cast<std::uint8_t>(hex_value(payload_hex[i]) * 16 + hex_value(payload_hex[i + 1])));
    std::vector<std::uint64_t> rows(qrplate::words_per_symbol(n), 0);
    const int digits = (n + 3) / 4;
    for (int r = 0; r < n; ++r) {
      const std::string& t = tokens[static_cast<std::size_t>(r)];
      ASSERT_EQ(static_cast<int>(t.size()), digits) << "line " << line_no;
      for (int dgt = 0; dgt < digits; ++dgt) {
        const int val = hex_value(t[static_cast<std::size_t>(digits - 1 - dgt)]);
        ASSERT_GE(val, 0) << "line " << line_no;
        for (int b = 0; b < 4; ++b)
          if ((val >> b) & 1) set_module(rows, n, r, 4 * dgt + b, true);
      }
    }
    SCOPED_TRACE("nayuki_symbols.txt:" + std::to_string(line_no) + " " + describe(version, ecc, chosen_mask));
    // The plan of another level on purpose: the level must come from the symbol.
    const decoded d = decode(rows, version, levels[(static_cast<int>(ecc) + 2) % 4]);
    ASSERT_EQ(d.r.status, decode_status::ok) << status_name(d.r.status);
    EXPECT_EQ(d.r.ecc, ecc);
    EXPECT_EQ(d.r.mask, chosen_mask);
    EXPECT_EQ(d.r.format_distance, 0);
    EXPECT_EQ(d.content, payload);
    ++matrices;
  }
  EXPECT_EQ(matrices, 200);
}

}  // namespace
