// Independent oracles: encoders and decoders that nobody here wrote.
//
//  1. Whole symbols, bit for bit, against libqrencode with the mask pinned: every version (1-40),
//     every level (L, M, Q, H) and every mask (0-7), through both the single-symbol API and the
//     CPU batch backend. Automatic masks are not compared: libqrencode scores the ISO penalty
//     rules its own way, so its choice is no reference for ours. Empty payloads are compared
//     outside the data region only (libqrencode cannot write an empty byte segment); part 2
//     reads their content back.
//  2. Every symbol we write is read back to the exact bytes by zxing-cpp and by ZBar (binary
//     mode): again every version x level x mask (1280 symbols per decoder), plus one symbol with
//     the automatic mask per (version, level) and a few encode_text cases.
//
// Payloads are seeded random binary data (every byte value, NULs included). The seed is printed
// with every failure; set QRPLATE_ORACLE_SEED to rerun with another one. Each (version, level,
// mask) case draws from its own generator seeded from (seed, test, version, level, mask), so
// one case can be reproduced without the others.
//
// Reading what other encoders write with our own decoder belongs to the decoder issue.

// zbar.h comes before the zxing-cpp headers: under C++ it also pulls in ZBar's C++ wrappers,
// whose FormatError / UnsupportedError classes zxing-cpp's Error.h redefines as macros. It puts
// the C API in namespace zbar.
#include <zbar.h>

#define ZX_USE_UTF8 1  // zxing-cpp 1.4: Result::text() as UTF-8, without the transition #pragma
#include <ZXing/BarcodeFormat.h>
#include <ZXing/DecodeHints.h>
#include <ZXing/ImageView.h>
#include <ZXing/ReadBarcode.h>
#include <ZXing/Result.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "qrplate/encode.hpp"
#include "qrplate/error.hpp"
#include "qrplate/image.hpp"
#include "qrplate/qr.hpp"
#include "qrplate/spec/versions.hpp"
#include "qrplate/symbol.hpp"
#include "qrencode_support.hpp"

// Exported by libqrencode 4.x but declared only in its internal header (qrencode_inner.h).
// QRcode_encodeInput(input) is QRcode_encodeMask(input, -1); 0..7 force that mask.
extern "C" QRcode* QRcode_encodeMask(QRinput* input, int mask);

namespace {

using bytes = std::vector<std::uint8_t>;
using qrplate::ecc_level;

constexpr ecc_level all_levels[] = {ecc_level::L, ecc_level::M, ecc_level::Q, ecc_level::H};
constexpr std::uint64_t default_seed = 0x51D0'2024'0C0D'E5EDull;

std::uint64_t oracle_seed()
{
  static const std::uint64_t seed = []() -> std::uint64_t {
    if (const char* text = std::getenv("QRPLATE_ORACLE_SEED")) return std::strtoull(text, nullptr, 0);
    return default_seed;
  }();
  return seed;
}

std::string version_name(const ::testing::TestParamInfo<int>& param) { return "v" + std::to_string(param.param); }

std::string seed_note()
{
  return "QRPLATE_ORACLE_SEED=" + std::to_string(oracle_seed()) + " (set it to reproduce)";
}

// One generator per case, so that a failing case can be rerun alone.
std::mt19937_64 case_rng(std::uint32_t test_tag, int version, ecc_level ecc, int mask)
{
  const std::uint64_t seed = oracle_seed();
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32), test_tag,
                    static_cast<std::uint32_t>(version), static_cast<std::uint32_t>(ecc),
                    static_cast<std::uint32_t>(mask + 1)};
  return std::mt19937_64(seq);
}

// Lengths: the edges (full capacity, one short of it, empty, one byte) on masks 0-3, uniform
// in [0, capacity] on the others. Every byte value may appear; payloads of two or more bytes
// are made to hold at least one NUL and one 0xFF.
bytes random_payload(std::mt19937_64& rng, int capacity, int mask)
{
  std::size_t length = 0;
  switch (mask) {
    case 0: length = static_cast<std::size_t>(capacity); break;
    case 1: length = static_cast<std::size_t>(capacity > 0 ? capacity - 1 : 0); break;
    case 2: length = 0; break;
    case 3: length = capacity > 0 ? 1 : 0; break;
    default: length = std::uniform_int_distribution<std::size_t>(0, static_cast<std::size_t>(capacity))(rng);
  }
  bytes payload(length);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : payload) b = static_cast<std::uint8_t>(byte(rng));
  if (length >= 2) {
    std::uniform_int_distribution<std::size_t> at(0, length - 1);
    payload[at(rng)] = 0x00;
    payload[at(rng)] = 0xFF;
  }
  return payload;
}

std::string hex_head(const bytes& data, std::size_t limit = 24)
{
  std::string out;
  char buf[4];
  for (std::size_t i = 0; i < data.size() && i < limit; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", data[i]);
    out += buf;
  }
  if (data.size() > limit) out += "...";
  return out;
}

// Text for a failure message: printable ASCII as is, anything else as \xNN.
std::string printable(std::string_view text)
{
  std::string out;
  char buf[5];
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (u >= 0x20 && u < 0x7F) {
      out += ch;
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  return out;
}

std::string case_name(int version, ecc_level ecc, int mask)
{
  return "v" + std::to_string(version) + "-" + qrplate::to_string(ecc) + " mask " +
         (mask < 0 ? std::string("auto") : std::to_string(mask));
}

// Which function pattern or region holds a module (ISO 18004:2015 §6.3), written here from the
// standard rather than taken from the encoder: it names the place of a mismatch, and it marks the
// data region that an empty payload leaves out of the comparison.
enum class region { finder, dark_module, format_info, version_info, alignment, timing, data };

const char* region_name(region r)
{
  switch (r) {
    case region::finder: return "finder pattern or separator";
    case region::dark_module: return "dark module";
    case region::format_info: return "format information";
    case region::version_info: return "version information";
    case region::alignment: return "alignment pattern";
    case region::timing: return "timing pattern";
    default: return "data and error correction region";
  }
}

region region_of(int version, int row, int col)
{
  const int size = qrplate::spec::symbol_size(version);
  const auto in_finder = [&](int r, int c) {
    return (r < 8 && c < 8) || (r < 8 && c >= size - 8) || (r >= size - 8 && c < 8);
  };
  if (in_finder(row, col)) return region::finder;
  if (row == size - 8 && col == 8) return region::dark_module;
  if ((row == 8 && (col <= 8 || col >= size - 8)) || (col == 8 && (row <= 8 || row >= size - 8)))
    return region::format_info;
  const auto in_version_block = [&](int r, int c) { return r < 6 && c >= size - 11 && c < size - 8; };
  if (version >= 7 && (in_version_block(row, col) || in_version_block(col, row))) return region::version_info;
  std::uint8_t centres[qrplate::spec::max_alignment_positions] = {};
  const int n = qrplate::spec::alignment_positions(version, centres);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      const int r = centres[i], c = centres[j];
      if (in_finder(r, c)) continue;
      if (row >= r - 2 && row <= r + 2 && col >= c - 2 && col <= c + 2) return region::alignment;
    }
  if (row == 6 || col == 6) return region::timing;
  return region::data;
}

// ---------------------------------------------------------------------------------------------
// libqrencode

using qrplate::oracle::qrcode_ptr;
using qrplate::oracle::qrencode_level;
using qrplate::oracle::qrinput_ptr;

// One byte-mode segment at `version` (libqrencode moves to a larger version when the data does
// not fit: callers check QRcode::version). Null when libqrencode refuses.
qrcode_ptr libqrencode_encode(const bytes& payload, int version, ecc_level ecc, int mask)
{
  qrinput_ptr input(QRinput_new2(version, qrencode_level(ecc)));
  if (!input) return nullptr;
  // libqrencode rejects an empty segment (QRinput_append with size 0), so the empty payload goes
  // in as an input with no segment at all: a different, equally valid bit stream (terminator and
  // padding only) from ours (a byte-mode segment with count 0). Callers compare only the
  // function patterns, format and version information of empty payloads.
  if (!payload.empty() &&
      QRinput_append(input.get(), QR_MODE_8, static_cast<int>(payload.size()), payload.data()) != 0)
    return nullptr;
  return qrcode_ptr(QRcode_encodeMask(input.get(), mask));
}

enum class compare_scope { whole_symbol, function_patterns_only };

// Empty when the matrices agree (within `scope`); otherwise where and how they first differ.
// libqrencode: width * width bytes, row-major, bit 0 = dark (the other bits tag the region).
std::string compare_with_libqrencode(const qrplate::symbol_view ours, const QRcode& ref, int version,
                                     compare_scope scope)
{
  if (ours.size != ref.width)
    return "size " + std::to_string(ours.size) + " vs libqrencode " + std::to_string(ref.width);
  int differing = 0;
  int first_row = -1, first_col = -1;
  for (int row = 0; row < ours.size; ++row)
    for (int col = 0; col < ours.size; ++col) {
      const bool theirs = (ref.data[row * ref.width + col] & 1u) != 0;
      if (ours.module(row, col) == theirs) continue;
      if (scope == compare_scope::function_patterns_only && region_of(version, row, col) == region::data) continue;
      if (differing++ == 0) {
        first_row = row;
        first_col = col;
      }
    }
  if (differing == 0) return {};
  std::ostringstream out;
  out << differing << " of " << ours.size * ours.size << " modules differ; first at (row " << first_row << ", col "
      << first_col << ") in the " << region_name(region_of(version, first_row, first_col)) << ": ours "
      << (ours.module(first_row, first_col) ? "dark" : "light") << ", libqrencode "
      << ((ref.data[first_row * ref.width + first_col] & 1u) ? "dark" : "light");
  return out.str();
}

// ---------------------------------------------------------------------------------------------
// Decoders

struct decoded {
  bool found = false;
  bytes data;
  std::string detail;  // decoder error, or the EC level it reported
};

decoded read_with_zxing(const qrplate::gray_image& image)
{
  const ZXing::ImageView view(image.pixels.data(), image.width, image.height, ZXing::ImageFormat::Lum);
  ZXing::DecodeHints hints;
  // A synthetic upright image at integral scale: no rotation, downscaling or harder search,
  // and a fixed threshold (our pixels are 0 or 255).
  hints.setFormats(ZXing::BarcodeFormat::QRCode)
      .setTryHarder(false)
      .setTryRotate(false)
      .setTryDownscale(false)
      .setBinarizer(ZXing::Binarizer::FixedThreshold);
  const ZXing::Result result = ZXing::ReadBarcode(view, hints);
  decoded out;
  if (!result.isValid()) {
    out.detail = result.error() ? ZXing::ToString(result.error()) : std::string("no symbol found");
    return out;
  }
  out.found = true;
  out.data.assign(result.bytes().begin(), result.bytes().end());
  out.detail = result.ecLevel();
  return out;
}

class zbar_reader {
 public:
  zbar_reader() : scanner_(zbar::zbar_image_scanner_create())
  {
    zbar::zbar_image_scanner_set_config(scanner_, zbar::ZBAR_NONE, zbar::ZBAR_CFG_ENABLE, 0);
    zbar::zbar_image_scanner_set_config(scanner_, zbar::ZBAR_QRCODE, zbar::ZBAR_CFG_ENABLE, 1);
    // Binary mode: the payload bytes come back as they are, with no guessed text conversion.
    zbar::zbar_image_scanner_set_config(scanner_, zbar::ZBAR_QRCODE, zbar::ZBAR_CFG_BINARY, 1);
  }
  ~zbar_reader() { zbar::zbar_image_scanner_destroy(scanner_); }
  zbar_reader(const zbar_reader&) = delete;
  zbar_reader& operator=(const zbar_reader&) = delete;

  decoded read(const qrplate::gray_image& image)
  {
    zbar::zbar_image_t* zimage = zbar::zbar_image_create();
    zbar::zbar_image_set_format(zimage, zbar_fourcc('Y', '8', '0', '0'));
    zbar::zbar_image_set_size(zimage, static_cast<unsigned>(image.width), static_cast<unsigned>(image.height));
    zbar::zbar_image_set_data(zimage, image.pixels.data(), image.pixels.size(), nullptr);
    const int count = zbar::zbar_scan_image(scanner_, zimage);
    decoded out;
    int symbols = 0;
    for (auto s = zbar::zbar_image_first_symbol(zimage); s != nullptr; s = zbar::zbar_symbol_next(s)) {
      if (zbar::zbar_symbol_get_type(s) != zbar::ZBAR_QRCODE) continue;
      if (symbols++ == 0) {
        const char* data = zbar::zbar_symbol_get_data(s);
        out.data.assign(data, data + zbar::zbar_symbol_get_data_length(s));
        out.found = true;
      }
    }
    if (symbols > 1) {
      out.found = false;
      out.detail = std::to_string(symbols) + " QR symbols found in one image";
    } else if (!out.found) {
      out.detail = count < 0 ? "zbar_scan_image failed" : "no symbol found";
    }
    zbar::zbar_image_destroy(zimage);
    return out;
  }

 private:
  zbar::zbar_image_scanner_t* scanner_;
};

// Empty when both decoders read `expected` back; otherwise what went wrong, per decoder.
std::string read_back_errors(zbar_reader& zbar_scanner, const qrplate::gray_image& image, const bytes& expected,
                             const char* expected_level)
{
  std::string errors;
  const auto check = [&](const char* who, const decoded& got) {
    if (!got.found) {
      errors += std::string(who) + ": " + got.detail + "; ";
    } else if (got.data != expected) {
      std::size_t at = 0;
      while (at < got.data.size() && at < expected.size() && got.data[at] == expected[at]) ++at;
      errors += std::string(who) + ": read " + std::to_string(got.data.size()) + " bytes (" + hex_head(got.data) +
                "), first difference at byte " + std::to_string(at) + "; ";
    }
  };
  const decoded by_zxing = read_with_zxing(image);
  check("zxing-cpp", by_zxing);
  if (by_zxing.found && expected_level != nullptr && by_zxing.detail != expected_level)
    errors += "zxing-cpp: EC level " + by_zxing.detail + ", expected " + expected_level + "; ";
  check("ZBar", zbar_scanner.read(image));
  return errors;
}

// 2, 3 or 4 px per module, rotating so that each (version, level) meets all three. zxing-cpp
// 1.4's detector does not find version-40 symbols at 2 px per module (libqrencode's fail the
// same way), so version 40 is drawn at 3 or 4.
int render_scale(int version, ecc_level ecc, int mask)
{
  const int step = version + static_cast<int>(ecc) + mask + 1;  // mask is -1 (automatic) to 7
  if (version == qrplate::spec::max_version) return 3 + step % 2;
  return 2 + step % 3;
}

// ---------------------------------------------------------------------------------------------
// 1. Bit-identical to libqrencode with the mask pinned.

class LibqrencodeOracle : public ::testing::TestWithParam<int> {};

TEST_P(LibqrencodeOracle, CapacityMatches)
{
  // The largest payload libqrencode keeps at this version is the one we report, and one byte
  // more is refused by us and moved to a larger version (or refused at 40) by libqrencode.
  const int version = GetParam();
  for (const ecc_level ecc : all_levels) {
    SCOPED_TRACE(case_name(version, ecc, 0));
    const int capacity = qrplate::max_byte_payload(version, ecc);
    const bytes full(static_cast<std::size_t>(capacity), 0xA5);
    const qrcode_ptr fits = libqrencode_encode(full, version, ecc, 0);
    ASSERT_NE(fits, nullptr);
    EXPECT_EQ(fits->version, version) << "libqrencode needs a larger symbol for " << capacity << " bytes";

    const bytes over(static_cast<std::size_t>(capacity) + 1, 0xA5);
    const qrcode_ptr larger = libqrencode_encode(over, version, ecc, 0);
    if (version < qrplate::spec::max_version) {
      ASSERT_NE(larger, nullptr);
      EXPECT_GT(larger->version, version) << "libqrencode holds " << capacity + 1 << " bytes at this version";
    } else {
      EXPECT_EQ(larger, nullptr) << "libqrencode holds " << capacity + 1 << " bytes in version 40";
    }
    qrplate::qr_options options;
    options.min_version = options.max_version = version;
    options.ecc = ecc;
    EXPECT_THROW(qrplate::encode_bytes(over.data(), over.size(), options), qrplate::data_too_long);
  }
}

TEST_P(LibqrencodeOracle, PinnedMaskSymbolsAreBitIdentical)
{
  const int version = GetParam();
  SCOPED_TRACE(seed_note());
  for (const ecc_level ecc : all_levels) {
    const int capacity = qrplate::max_byte_payload(version, ecc);
    for (int mask = 0; mask < 8; ++mask) {
      std::mt19937_64 rng = case_rng(1, version, ecc, mask);
      const bytes payload = random_payload(rng, capacity, mask);
      SCOPED_TRACE(case_name(version, ecc, mask) + ", " + std::to_string(payload.size()) + "-byte payload " +
                   hex_head(payload));

      const qrcode_ptr ref = libqrencode_encode(payload, version, ecc, mask);
      ASSERT_NE(ref, nullptr) << "libqrencode failed";
      ASSERT_EQ(ref->version, version) << "libqrencode moved the payload to another version";

      qrplate::qr_options options;
      options.min_version = options.max_version = version;
      options.ecc = ecc;
      options.mask = mask;
      const qrplate::qr_symbol single = qrplate::encode_bytes(payload.data(), payload.size(), options);
      EXPECT_EQ(single.version, version);
      EXPECT_EQ(single.ecc, ecc);
      EXPECT_EQ(single.mask, mask);
      const compare_scope scope =
          payload.empty() ? compare_scope::function_patterns_only : compare_scope::whole_symbol;
      const std::string single_diff = compare_with_libqrencode(single.view(), *ref, version, scope);
      EXPECT_TRUE(single_diff.empty()) << "encode_bytes: " << single_diff;

      // The batch path (CPU backend, one thread) must write the same symbol.
      const std::uint64_t offsets[2] = {0, payload.size()};
      qrplate::payload_batch_view batch;
      batch.bytes = payload.data();
      batch.offsets = offsets;
      batch.count = 1;
      qrplate::batch_encode_options batch_options;
      batch_options.version = version;
      batch_options.ecc = ecc;
      batch_options.mask = mask;
      batch_options.where = qrplate::backend::cpu;
      batch_options.threads = 1;
      qrplate::symbol_batch out;
      qrplate::encode(batch, batch_options, out);
      ASSERT_EQ(out.count(), 1u);
      ASSERT_EQ(out.status()[0], qrplate::encode_status::ok);
      EXPECT_EQ(out.masks()[0], mask);
      const std::string batch_diff = compare_with_libqrencode(out.symbol(0), *ref, version, scope);
      EXPECT_TRUE(batch_diff.empty()) << "batch encode (cpu): " << batch_diff;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVersions, LibqrencodeOracle, ::testing::Range(1, 41), version_name);

// ---------------------------------------------------------------------------------------------
// 2. What we write, zxing-cpp and ZBar read back to the exact bytes.

class DecoderOracle : public ::testing::TestWithParam<int> {};

TEST_P(DecoderOracle, EveryLevelAndMaskReadsBack)
{
  // Coverage: 4 levels x (masks 0-7 + automatic) at this version, each at 2, 3 or 4 px per
  // module (rotating) with the 4-module quiet zone, read by both decoders.
  const int version = GetParam();
  SCOPED_TRACE(seed_note());
  zbar_reader zbar_scanner;
  for (const ecc_level ecc : all_levels) {
    const int capacity = qrplate::max_byte_payload(version, ecc);
    for (int mask = -1; mask < 8; ++mask) {
      std::mt19937_64 rng = case_rng(2, version, ecc, mask);
      // The automatic-mask case takes a uniform length (mask -1 falls to the default branch).
      const bytes payload = random_payload(rng, capacity, mask);
      qrplate::qr_options options;
      options.min_version = options.max_version = version;
      options.ecc = ecc;
      options.mask = mask;
      const qrplate::qr_symbol symbol = qrplate::encode_bytes(payload.data(), payload.size(), options);
      qrplate::render_options render;
      render.scale = render_scale(version, ecc, mask);
      render.border = 4;
      const qrplate::gray_image image = qrplate::rasterize(symbol.view(), render);
      const std::string errors = read_back_errors(zbar_scanner, image, payload, qrplate::to_string(ecc));
      EXPECT_TRUE(errors.empty()) << case_name(version, ecc, mask) << " (mask used " << symbol.mask << "), "
                                  << render.scale << " px/module, " << payload.size() << "-byte payload "
                                  << hex_head(payload) << ": " << errors;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVersions, DecoderOracle, ::testing::Range(1, 41), version_name);

TEST(DecoderOracleText, MixedSegmentsReadBack)
{
  // encode_text splits into numeric, alphanumeric and byte segments; both decoders must join
  // them back into the original bytes.
  static constexpr char nul_inside[] = "nul\0inside 12345678901234 TAIL";
  const std::string with_nul(nul_inside, sizeof nul_inside - 1);
  const std::string texts[] = {
      "HELLO WORLD",
      "01234567890123456789012345678901234567890123456789",
      "Order 4711: ABC-DEF/99 $12.50 + 00000000000000000001 qty; caf\xC3\xA9 \xE2\x82\xAC" "5 HTTPS://EXAMPLE.COM/X",
      with_nul,
  };
  zbar_reader zbar_scanner;
  for (const std::string& text : texts) {
    for (const ecc_level ecc : all_levels) {
      qrplate::qr_options options;
      options.ecc = ecc;
      const qrplate::qr_symbol symbol = qrplate::encode_text(text, options);
      qrplate::render_options render;
      render.scale = 3;
      render.border = 4;
      const qrplate::gray_image image = qrplate::rasterize(symbol.view(), render);
      const bytes expected(text.begin(), text.end());
      const std::string errors = read_back_errors(zbar_scanner, image, expected, qrplate::to_string(ecc));
      EXPECT_TRUE(errors.empty()) << "encode_text(\"" << printable(text) << "\") at "
                                  << case_name(symbol.version, ecc, symbol.mask) << ": " << errors;
    }
  }
}

}  // namespace
