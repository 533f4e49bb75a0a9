// Frames (qrplate/plate/frame.hpp): CRC-32C golden vectors (RFC 3720 §B.4 and the "123456789"
// check value), the byte layout against a frame assembled here by hand, and corruption of every
// kind the reader must catch. Expected CRCs come from a bitwise CRC written in this file, not from
// the code under test. Property checks print their seed (override with QRPLATE_TEST_SEED=<n>).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "qrplate/error.hpp"
#include "qrplate/plate/frame.hpp"

namespace {

namespace plate = qrplate::plate;
using plate::frame_header;
using plate::frame_header_bytes;
using plate::frame_kind;
using plate::frame_status;
using qrplate::ecc_level;

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

// MSB-first long division by the unreflected Castagnoli polynomial 0x1EDC6F41, on bit-reversed
// bytes: a different formulation from the library's reflected shift register.
std::uint32_t reverse_bits32(std::uint32_t v)
{
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i) r |= ((v >> i) & 1u) << (31 - i);
  return r;
}

std::uint32_t oracle_crc32c(const std::vector<std::uint8_t>& bytes)
{
  std::uint32_t reg = 0xFFFFFFFFu;
  for (const std::uint8_t byte : bytes) {
    for (int i = 0; i < 8; ++i) {  // reflected input: least significant bit first
      const std::uint32_t in = (byte >> i) & 1u;
      const std::uint32_t top = (reg >> 31) ^ in;
      reg = (reg << 1) ^ (top ? 0x1EDC6F41u : 0u);
    }
  }
  return reverse_bits32(reg) ^ 0xFFFFFFFFu;
}

std::uint32_t crc_of(const std::vector<std::uint8_t>& v)
{
  return plate::crc32c(v.data(), v.size());
}

std::vector<std::uint8_t> random_bytes(std::mt19937& rng, std::size_t n)
{
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

std::vector<std::uint8_t> make_data_frame(const frame_header& h, const std::vector<std::uint8_t>& payload)
{
  std::vector<std::uint8_t> body(payload.size() + 2);
  const std::size_t body_len = plate::make_data_body(payload.data(), payload.size(), body.data());
  std::vector<std::uint8_t> frame(frame_header_bytes + body_len);
  frame.resize(plate::write_frame(h, body.data(), body_len, frame.data()));
  return frame;
}

std::vector<std::uint8_t> make_parity_frame(const frame_header& h, const std::vector<std::uint8_t>& body)
{
  std::vector<std::uint8_t> frame(frame_header_bytes + body.size());
  frame.resize(plate::write_frame(h, body.data(), body.size(), frame.data()));
  return frame;
}

// Replaces bytes 11..14 with the CRC of the rest, as a well-meaning but different writer would.
void reseal(std::vector<std::uint8_t>& frame)
{
  std::vector<std::uint8_t> covered(frame.begin(), frame.begin() + 11);
  covered.insert(covered.end(), frame.begin() + frame_header_bytes, frame.end());
  const std::uint32_t crc = oracle_crc32c(covered);
  for (int i = 0; i < 4; ++i) frame[11 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
}

// ---- CRC-32C ----

TEST(Crc32c, CheckValueAndEmpty)
{
  const std::string check = "123456789";
  EXPECT_EQ(plate::crc32c(reinterpret_cast<const std::uint8_t*>(check.data()), check.size()), 0xE3069283u);
  EXPECT_EQ(plate::crc32c(nullptr, 0), 0u);
  EXPECT_EQ(plate::crc32c_reference(reinterpret_cast<const std::uint8_t*>(check.data()), check.size()), 0xE3069283u);
  EXPECT_EQ(plate::crc32c_reference(nullptr, 0), 0u);
  EXPECT_EQ(oracle_crc32c(std::vector<std::uint8_t>(check.begin(), check.end())), 0xE3069283u);  // the oracle itself
}

TEST(Crc32c, Rfc3720Vectors)
{
  // RFC 3720 §B.4 (iSCSI CRC-32C examples); the RFC lists the CRC in wire order, these are values.
  std::vector<std::uint8_t> v(32);
  std::fill(v.begin(), v.end(), 0x00);
  EXPECT_EQ(crc_of(v), 0x8A9136AAu);
  std::fill(v.begin(), v.end(), 0xFF);
  EXPECT_EQ(crc_of(v), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(crc_of(v), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<std::uint8_t>(31 - i);
  EXPECT_EQ(crc_of(v), 0x113FDB5Cu);
}

TEST(Crc32c, FastMatchesReferenceAndOracle)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const std::size_t n :
       {1u, 2u, 3u, 7u, 8u, 9u, 15u, 16u, 17u, 31u, 33u, 63u, 65u, 255u, 257u, 1025u, 2953u, 4097u}) {
    const auto v = random_bytes(rng, n);
    const std::uint32_t expected = oracle_crc32c(v);
    EXPECT_EQ(plate::crc32c(v.data(), n), expected) << "n=" << n;
    EXPECT_EQ(plate::crc32c_reference(v.data(), n), expected) << "n=" << n;
  }
}

TEST(Crc32c, Chains)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 1);
  for (int trial = 0; trial < 200; ++trial) {
    const auto v = random_bytes(rng, rng() % 300);
    const std::size_t cut = v.empty() ? 0 : rng() % (v.size() + 1);
    const std::uint32_t whole = oracle_crc32c(v);
    EXPECT_EQ(plate::crc32c(v.data() + cut, v.size() - cut, plate::crc32c(v.data(), cut)), whole) << "cut " << cut;
    EXPECT_EQ(plate::crc32c_reference(v.data() + cut, v.size() - cut, plate::crc32c_reference(v.data(), cut)), whole);
  }
}

// ---- Capacities ----

TEST(Frame, BodyBytesFromIsoTable7)
{
  // ISO 18004:2015 Table 7, byte-mode capacities: 40-L 2953, 3-L 53, 2-L 32, 1-L 17, 1-H 7.
  EXPECT_EQ(plate::frame_body_bytes(40, ecc_level::L), 2953 - 15);
  EXPECT_EQ(plate::frame_data_bytes(40, ecc_level::L), 2953 - 15 - 2);
  EXPECT_EQ(plate::frame_body_bytes(3, ecc_level::L), 53 - 15);
  EXPECT_EQ(plate::frame_data_bytes(3, ecc_level::L), 53 - 15 - 2);
  EXPECT_EQ(plate::frame_body_bytes(2, ecc_level::L), 32 - 15);
  EXPECT_THROW(plate::frame_body_bytes(1, ecc_level::L), qrplate::invalid_argument);  // 17 - 15 = 2 < 3
  EXPECT_THROW(plate::frame_body_bytes(1, ecc_level::H), qrplate::invalid_argument);
  EXPECT_THROW(plate::frame_data_bytes(1, ecc_level::H), qrplate::invalid_argument);
  EXPECT_THROW(plate::frame_body_bytes(41, ecc_level::L), qrplate::invalid_argument);
  EXPECT_THROW(plate::frame_body_bytes(0, ecc_level::L), qrplate::invalid_argument);
}

// ---- Layout ----

TEST(Frame, DataLayoutByteByByte)
{
  const frame_header h{frame_kind::data, plate::plate_tag_of(0x1122334455667788ull), 0x0102030405060708ull};
  const auto frame = make_data_frame(h, {'a', 'b', 'c'});
  std::vector<std::uint8_t> expected = {0x10, 0x88, 0x77, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
  const std::vector<std::uint8_t> body = {0x03, 0x00, 'a', 'b', 'c'};
  std::vector<std::uint8_t> covered = expected;
  covered.insert(covered.end(), body.begin(), body.end());
  const std::uint32_t crc = oracle_crc32c(covered);
  for (int i = 0; i < 4; ++i) expected.push_back(static_cast<std::uint8_t>(crc >> (8 * i)));
  expected.insert(expected.end(), body.begin(), body.end());
  EXPECT_EQ(frame, expected);
}

TEST(Frame, ParityLayoutByteByByte)
{
  const frame_header h{frame_kind::parity, 0xBEEF, 5};
  const std::vector<std::uint8_t> body = {0xDE, 0xAD, 0x00, 0xFF};
  const auto frame = make_parity_frame(h, body);
  std::vector<std::uint8_t> expected = {0x11, 0xEF, 0xBE, 5, 0, 0, 0, 0, 0, 0, 0};
  std::vector<std::uint8_t> covered = expected;
  covered.insert(covered.end(), body.begin(), body.end());
  const std::uint32_t crc = oracle_crc32c(covered);
  for (int i = 0; i < 4; ++i) expected.push_back(static_cast<std::uint8_t>(crc >> (8 * i)));
  expected.insert(expected.end(), body.begin(), body.end());
  EXPECT_EQ(frame, expected);
}

TEST(Frame, BodyBuiltInPlace)
{
  std::vector<std::uint8_t> buf(frame_header_bytes + 2 + 4);
  const std::uint8_t payload[] = {9, 8, 7, 6};
  const std::size_t body_len = plate::make_data_body(payload, 4, buf.data() + frame_header_bytes);
  const frame_header h{frame_kind::data, 1, 2};
  ASSERT_EQ(plate::write_frame(h, buf.data() + frame_header_bytes, body_len, buf.data()), buf.size());
  EXPECT_EQ(buf, make_data_frame(h, {9, 8, 7, 6}));
}

// ---- Round trips ----

TEST(Frame, RoundTrip)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed + 2);
  for (const std::size_t n : {0u, 1u, 2u, 17u, 255u, 256u, 257u, 2936u}) {
    const frame_header h{frame_kind::data, static_cast<std::uint16_t>(rng()), rng()};
    std::mt19937 byte_rng(static_cast<unsigned>(rng()));
    const auto payload = random_bytes(byte_rng, n);
    const auto frame = make_data_frame(h, payload);
    ASSERT_EQ(frame.size(), frame_header_bytes + 2 + n);
    const auto p = plate::parse_frame(frame.data(), frame.size());
    ASSERT_EQ(p.status, frame_status::ok) << plate::to_string(p.status);
    EXPECT_EQ(p.header.kind, frame_kind::data);
    EXPECT_EQ(p.header.plate_tag, h.plate_tag);
    EXPECT_EQ(p.header.index, h.index);
    ASSERT_EQ(p.body_len, n + 2);
    EXPECT_EQ(p.body, frame.data() + frame_header_bytes);
    EXPECT_EQ(std::vector<std::uint8_t>(p.body + 2, p.body + p.body_len), payload);
  }
  for (const std::size_t n : {0u, 1u, 38u, 2938u}) {
    const frame_header h{frame_kind::parity, static_cast<std::uint16_t>(rng()), rng()};
    std::mt19937 byte_rng(static_cast<unsigned>(rng()));
    const auto body = random_bytes(byte_rng, n);
    const auto frame = make_parity_frame(h, body);
    const auto p = plate::parse_frame(frame.data(), frame.size());
    ASSERT_EQ(p.status, frame_status::ok) << plate::to_string(p.status);
    EXPECT_EQ(p.header.kind, frame_kind::parity);
    EXPECT_EQ(p.header.plate_tag, h.plate_tag);
    EXPECT_EQ(p.header.index, h.index);
    EXPECT_EQ(std::vector<std::uint8_t>(p.body, p.body + p.body_len), body);
  }
}

// ---- Corruption ----

TEST(Frame, EverySingleBitFlipIsDetected)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 3);
  const std::vector<std::vector<std::uint8_t>> frames = {
      make_data_frame({frame_kind::data, 0x1234, 77}, random_bytes(rng, 36)),
      make_data_frame({frame_kind::data, 0xFFFF, ~0ull}, {}),
      make_parity_frame({frame_kind::parity, 0, 3}, random_bytes(rng, 38)),
      make_data_frame({frame_kind::data, 42, 1ull << 40}, random_bytes(rng, 2936)),
  };
  for (const auto& good : frames) {
    ASSERT_EQ(plate::parse_frame(good.data(), good.size()).status, frame_status::ok);
    for (std::size_t bit = 0; bit < 8 * good.size(); ++bit) {
      auto bad = good;
      bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      const auto s = plate::parse_frame(bad.data(), bad.size()).status;
      ASSERT_NE(s, frame_status::ok) << "bit " << bit << " of a " << good.size() << "-byte frame";
      if (bit / 8 >= 1 && bit / 8 < 15) {  // tag, index, CRC
        EXPECT_EQ(s, frame_status::bad_crc) << "bit " << bit;
      }
    }
  }
}

TEST(Frame, RandomMultiBitErrorsAreDetected)
{
  // CRC-32C has Hamming distance >= 4 far beyond a frame's length: all 2- and 3-bit errors are caught.
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 4);
  const auto good = make_parity_frame({frame_kind::parity, 7, 9}, random_bytes(rng, 2938));
  for (int trial = 0; trial < 20000; ++trial) {
    auto bad = good;
    const int flips = 2 + trial % 2;
    std::vector<std::size_t> bits;
    while (static_cast<int>(bits.size()) < flips) {
      const std::size_t b = rng() % (8 * bad.size());
      if (std::find(bits.begin(), bits.end(), b) == bits.end()) bits.push_back(b);
    }
    for (const std::size_t b : bits) bad[b / 8] ^= static_cast<std::uint8_t>(1u << (b % 8));
    ASSERT_NE(plate::parse_frame(bad.data(), bad.size()).status, frame_status::ok) << "trial " << trial;
  }
}

TEST(Frame, TruncatedAndExtended)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed + 5);
  const auto data = make_data_frame({frame_kind::data, 1, 2}, random_bytes(rng, 40));
  for (std::size_t n = 0; n < data.size(); ++n) {
    const auto s = plate::parse_frame(data.data(), n).status;
    EXPECT_EQ(s, n < 15 ? frame_status::too_short : frame_status::bad_length) << "n=" << n;
  }
  auto longer = data;
  longer.push_back(0);
  EXPECT_EQ(plate::parse_frame(longer.data(), longer.size()).status, frame_status::bad_length);

  const auto parity = make_parity_frame({frame_kind::parity, 1, 2}, random_bytes(rng, 40));
  for (std::size_t n = 0; n < parity.size(); ++n) {
    const auto s = plate::parse_frame(parity.data(), n).status;
    EXPECT_EQ(s, n < 15 ? frame_status::too_short : frame_status::bad_crc) << "n=" << n;
  }
  longer = parity;
  longer.push_back(0);
  EXPECT_EQ(plate::parse_frame(longer.data(), longer.size()).status, frame_status::bad_crc);
  EXPECT_EQ(plate::parse_frame(nullptr, 0).status, frame_status::too_short);
}

TEST(Frame, WrongVersionAndKindEvenWithValidCrc)
{
  const auto good = make_data_frame({frame_kind::data, 3, 4}, {1, 2, 3});
  for (int version = 0; version < 16; ++version) {
    if (version == plate::frame_format_version) continue;
    auto bad = good;
    bad[0] = static_cast<std::uint8_t>((version << 4) | (bad[0] & 0x0F));
    EXPECT_EQ(plate::parse_frame(bad.data(), bad.size()).status, frame_status::bad_version) << version;
    reseal(bad);
    EXPECT_EQ(plate::parse_frame(bad.data(), bad.size()).status, frame_status::bad_version) << version;
  }
  for (int kind = 2; kind < 16; ++kind) {
    auto bad = good;
    bad[0] = static_cast<std::uint8_t>(0x10 | kind);
    reseal(bad);
    EXPECT_EQ(plate::parse_frame(bad.data(), bad.size()).status, frame_status::bad_kind) << kind;
  }
  // A resealed data frame whose length prefix lies.
  auto bad = good;
  bad[frame_header_bytes] = 2;
  reseal(bad);
  EXPECT_EQ(plate::parse_frame(bad.data(), bad.size()).status, frame_status::bad_length);
  // The resealing itself is sound: an untouched frame resealed stays ok.
  auto same = good;
  reseal(same);
  EXPECT_EQ(same, good);
}

// ---- Bodies and misuse ----

TEST(Frame, DataBodyAndPadding)
{
  const std::uint8_t payload[] = {0xAA, 0xBB, 0xCC};
  std::uint8_t body[5];
  ASSERT_EQ(plate::make_data_body(payload, 3, body), 5u);
  EXPECT_EQ(body[0], 3);
  EXPECT_EQ(body[1], 0);
  EXPECT_EQ(body[2], 0xAA);
  EXPECT_EQ(body[4], 0xCC);

  std::vector<std::uint8_t> padded(9, 0x77);
  plate::pad_data_body(body, 5, padded.size(), padded.data());
  EXPECT_EQ(padded, (std::vector<std::uint8_t>{3, 0, 0xAA, 0xBB, 0xCC, 0, 0, 0, 0}));

  std::vector<std::uint8_t> in_place = {3, 0, 0xAA, 0xBB, 0xCC, 0x55, 0x55};
  plate::pad_data_body(in_place.data(), 5, in_place.size(), in_place.data());
  EXPECT_EQ(in_place, (std::vector<std::uint8_t>{3, 0, 0xAA, 0xBB, 0xCC, 0, 0}));

  std::vector<std::uint8_t> big(70000), big_body(70002);
  EXPECT_EQ(plate::make_data_body(big.data(), 65535, big_body.data()), 65537u);
  EXPECT_EQ(big_body[0], 0xFF);
  EXPECT_EQ(big_body[1], 0xFF);
  EXPECT_THROW(plate::make_data_body(big.data(), 65536, big_body.data()), qrplate::invalid_argument);
  EXPECT_THROW(plate::pad_data_body(body, 5, 4, padded.data()), qrplate::invalid_argument);
}

TEST(Frame, WriteRejectsMisuse)
{
  std::vector<std::uint8_t> out(64);
  const std::uint8_t bad_body[] = {5, 0, 1};  // claims 5 payload bytes, holds 1
  EXPECT_THROW(plate::write_frame({frame_kind::data, 0, 0}, bad_body, 3, out.data()), qrplate::invalid_argument);
  EXPECT_THROW(plate::write_frame({frame_kind::data, 0, 0}, bad_body, 1, out.data()), qrplate::invalid_argument);
  EXPECT_THROW(plate::write_frame({static_cast<frame_kind>(2), 0, 0}, bad_body, 3, out.data()),
               qrplate::invalid_argument);
  EXPECT_NO_THROW(plate::write_frame({frame_kind::parity, 0, 0}, bad_body, 3, out.data()));
}

}  // namespace
