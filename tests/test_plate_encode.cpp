// End to end through encode_plates (qrplate/plate/encode_plate.hpp): small plates are written
// to a temporary directory, plate.tif is read back with libtiff (not the writer's buffers),
// every code cell of the grid plate.json describes is cut out and decoded by zxing-cpp, and
// each decoded frame must be the one the placement puts there; the data frames give back the
// payload byte for byte, the header codes give back the manifest, and the outer code restores
// the data after dust, scratches and random loss. Seeded; the seed is printed (override with
// QRPLATE_TEST_SEED=<n>).
#define ZX_USE_UTF8 1  // zxing-cpp 1.4: Result::ecLevel() as std::string, without the transition #pragma
#include <gtest/gtest.h>

#include <ZXing/BarcodeFormat.h>
#include <ZXing/DecodeHints.h>
#include <ZXing/ImageView.h>
#include <ZXing/ReadBarcode.h>
#include <ZXing/Result.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <stdlib.h>
#include <tiffio.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fuzz/manifest_equal.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/encode_plate.hpp"
#include "qrplate/plate/frame.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"
#include "qrplate/plate/outer_code.hpp"
#include "plate/payload_reader.hpp"

namespace {

namespace fs = std::filesystem;
namespace plate = qrplate::plate;
using bytes = std::vector<std::uint8_t>;
using plate::placement_slot;
using qrplate::ecc_level;

unsigned test_seed()
{
  static const unsigned seed = [] {
    const char* env = std::getenv("QRPLATE_TEST_SEED");
    const unsigned s = env ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : 20240613u;
    std::cout << "[ seed     ] QRPLATE_TEST_SEED=" << s << "\n";
    return s;
  }();
  return seed;
}

// ---------------------------------------------------------------------------------------------
// Files

// A fresh directory under the test temp dir, removed with everything in it at the end.
class temp_dir {
 public:
  temp_dir()
  {
    std::string pattern = ::testing::TempDir() + "qrplate_plate_test_XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~temp_dir()
  {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// One directory for the plates encoded once and shared by several tests.
const fs::path& shared_dir()
{
  static temp_dir dir;
  return dir.path();
}

void write_file(const fs::path& path, const bytes& data)
{
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

std::string read_text(const fs::path& path)
{
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bytes random_bytes(std::mt19937_64& rng, std::size_t n)
{
  bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

std::array<std::uint8_t, 32> sha256_of(const bytes& data)
{
  std::array<std::uint8_t, 32> out{};
  unsigned len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 || len != 32)
    throw std::runtime_error("EVP_Digest failed");
  return out;
}

std::string hex(const std::array<std::uint8_t, 32>& d)
{
  std::string s;
  char buf[3];
  for (std::uint8_t b : d) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    s += buf;
  }
  return s;
}

std::vector<std::string> entries(const fs::path& dir)
{
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// ---------------------------------------------------------------------------------------------
// plate.tif, read with libtiff

struct bitmap {
  std::uint64_t width = 0, height = 0;
  std::vector<std::uint8_t> dark;  // one byte per module: 1 = dark

  bool at(std::uint64_t x, std::uint64_t y) const { return dark[y * width + x] != 0; }
  std::uint64_t dark_in(std::uint64_t x, std::uint64_t y, std::uint64_t w, std::uint64_t h) const
  {
    std::uint64_t n = 0;
    for (std::uint64_t i = y; i < std::min(height, y + h); ++i)
      for (std::uint64_t j = x; j < std::min(width, x + w); ++j) n += dark[i * width + j];
    return n;
  }
};

struct tiff_facts {
  bool big_tiff_magic = false;  // bytes 0..3 of the file: "II" 43 0 or "MM" 0 43
  bool big_tiff = false;        // TIFFIsBigTIFF
  bool tiled = false;
  std::uint32_t width = 0, height = 0, tile_width = 0, tile_height = 0;
  std::uint16_t bits = 0, samples = 0, photometric = 0, fill_order = 0, compression = 0;
};

// Reads the whole image; returns an empty string or what went wrong.
std::string read_tiff(const fs::path& path, bitmap& out, tiff_facts& facts)
{
  {
    std::ifstream f(path, std::ios::binary);
    unsigned char head[4] = {};
    f.read(reinterpret_cast<char*>(head), 4);
    facts.big_tiff_magic = (head[0] == 'I' && head[1] == 'I' && head[2] == 43 && head[3] == 0) ||
                           (head[0] == 'M' && head[1] == 'M' && head[2] == 0 && head[3] == 43);
  }
  std::unique_ptr<TIFF, void (*)(TIFF*)> tif(TIFFOpen(path.c_str(), "r"), [](TIFF* t) {
    if (t) TIFFClose(t);
  });
  if (!tif) return "TIFFOpen failed for " + path.string();
  facts.big_tiff = TIFFIsBigTIFF(tif.get()) != 0;
  facts.tiled = TIFFIsTiled(tif.get()) != 0;
  TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &facts.width);
  TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &facts.height);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_BITSPERSAMPLE, &facts.bits);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLESPERPIXEL, &facts.samples);
  TIFFGetField(tif.get(), TIFFTAG_PHOTOMETRIC, &facts.photometric);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_FILLORDER, &facts.fill_order);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_COMPRESSION, &facts.compression);
  if (!facts.tiled) return "plate.tif is not tiled";
  TIFFGetField(tif.get(), TIFFTAG_TILEWIDTH, &facts.tile_width);
  TIFFGetField(tif.get(), TIFFTAG_TILELENGTH, &facts.tile_height);
  if (facts.bits != 1 || facts.samples != 1) return "not a 1-bit image";
  if (facts.fill_order != FILLORDER_MSB2LSB) return "unexpected FillOrder";
  out.width = facts.width;
  out.height = facts.height;
  out.dark.assign(out.width * out.height, 0);
  const tmsize_t tile_bytes = TIFFTileSize(tif.get());
  const tmsize_t row_bytes = TIFFTileRowSize(tif.get());
  std::vector<std::uint8_t> tile(static_cast<std::size_t>(tile_bytes));
  // MinIsWhite: a 1 bit is black, i.e. dark. (Anything else is reported by the caller.)
  const std::uint8_t one_is_dark = facts.photometric == PHOTOMETRIC_MINISWHITE ? 1 : 0;
  for (std::uint32_t ty = 0; ty < facts.height; ty += facts.tile_height)
    for (std::uint32_t tx = 0; tx < facts.width; tx += facts.tile_width) {
      if (TIFFReadTile(tif.get(), tile.data(), tx, ty, 0, 0) < 0)
        return "TIFFReadTile failed at " + std::to_string(tx) + "," + std::to_string(ty);
      for (std::uint32_t r = 0; r < facts.tile_height && ty + r < facts.height; ++r)
        for (std::uint32_t c = 0; c < facts.tile_width && tx + c < facts.width; ++c) {
          const std::uint8_t bit = (tile[r * row_bytes + c / 8] >> (7 - c % 8)) & 1u;
          out.dark[static_cast<std::size_t>(ty + r) * out.width + tx + c] = bit == one_is_dark ? 1 : 0;
        }
    }
  return {};
}

// ---------------------------------------------------------------------------------------------
// zxing-cpp

struct zx_result {
  bool found = false;
  bytes data;
  std::string ec_level;
  std::string error;
};

// Cuts the size x size modules at (x, y) out of the plate, renders them at 3 px per module with a
// 4-module quiet zone (0 = dark) and decodes with zxing-cpp.
zx_result zxing_read(const bitmap& bm, std::uint64_t x, std::uint64_t y, int size)
{
  constexpr int scale = 3, quiet = 4;
  const int side = (size + 2 * quiet) * scale;
  std::vector<std::uint8_t> px(static_cast<std::size_t>(side) * side, 255);
  for (int i = 0; i < size; ++i)
    for (int j = 0; j < size; ++j) {
      if (!bm.at(x + j, y + i)) continue;
      for (int dy = 0; dy < scale; ++dy)
        for (int dx = 0; dx < scale; ++dx)
          px[static_cast<std::size_t>((quiet + i) * scale + dy) * side + (quiet + j) * scale + dx] = 0;
    }
  zx_result out;
  for (bool pure : {true, false}) {
    ZXing::DecodeHints hints;
    hints.setFormats(ZXing::BarcodeFormat::QRCode)
        .setTryHarder(!pure)
        .setTryRotate(false)
        .setTryDownscale(false)
        .setIsPure(pure)
        .setBinarizer(ZXing::Binarizer::FixedThreshold);
    const ZXing::Result r = ZXing::ReadBarcode(ZXing::ImageView(px.data(), side, side, ZXing::ImageFormat::Lum), hints);
    if (r.isValid()) {
      out.found = true;
      out.data.assign(r.bytes().begin(), r.bytes().end());  // raw bytes, no character set
      out.ec_level = r.ecLevel();
      return out;
    }
    out.error = r.error() ? ZXing::ToString(r.error()) : std::string("no symbol found");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A plate decoded from its files

struct cell {
  std::uint64_t row = 0;
  std::uint32_t col = 0;
};

struct decoded_plate {
  fs::path dir;
  std::string json_text;
  plate::manifest man;
  plate::plate_geometry g;
  tiff_facts tiff;
  std::map<std::uint64_t, bytes> data;    // data frame index -> body (length prefix + payload)
  std::map<std::uint64_t, bytes> parity;  // parity frame index -> body
  std::map<std::uint64_t, cell> data_cell;
  std::vector<plate::manifest> headers;  // every header code copy, top strip then bottom
  std::uint64_t codes_read = 0, empty_cells = 0;
  std::vector<std::string> problems;  // everything that did not match; empty = a good plate
  std::uint64_t more_problems = 0;

  void problem(const std::string& what)
  {
    if (problems.size() < 30)
      problems.push_back(what);
    else
      ++more_problems;
  }
  std::string report() const
  {
    std::string s;
    for (const auto& p : problems) s += "  " + p + "\n";
    if (more_problems) s += "  ... and " + std::to_string(more_problems) + " more\n";
    return s;
  }
};

const char* ecc_name(ecc_level e)
{
  switch (e) {
    case ecc_level::L:
      return "L";
    case ecc_level::M:
      return "M";
    case ecc_level::Q:
      return "Q";
    default:
      return "H";
  }
}

// Reads plate.json and plate.tif of `dir` and decodes every cell and every header code.
decoded_plate read_plate(const fs::path& dir)
{
  decoded_plate p;
  p.dir = dir;
  p.json_text = read_text(dir / "plate.json");
  try {
    p.man = plate::manifest_from_json(p.json_text);
    p.g = plate::geometry_of(p.man);
  } catch (const std::exception& e) {
    p.problem(std::string("plate.json: ") + e.what());
    return p;
  }
  const plate::plate_geometry& g = p.g;
  bitmap bm;
  const std::string err = read_tiff(dir / "plate.tif", bm, p.tiff);
  if (!err.empty()) {
    p.problem(err);
    return p;
  }
  if (bm.width != p.man.width || bm.height != p.man.height) {
    p.problem("plate.tif is " + std::to_string(bm.width) + "x" + std::to_string(bm.height) + ", plate.json says " +
              std::to_string(p.man.width) + "x" + std::to_string(p.man.height));
    return p;
  }
  const int size = g.code_size;
  const std::uint16_t tag = plate::plate_tag_of(p.man.plate_id);
  const auto body_width = static_cast<std::size_t>(plate::frame_body_bytes(g.version, g.ecc));
  std::uint64_t ink_accounted = 0;

  // Every cell of the grid the plate offers (rows past the placement's must be empty too).
  for (std::uint64_t r = 0; r < g.rows; ++r)
    for (std::uint32_t c = 0; c < g.columns; ++c) {
      const std::uint64_t x = g.cell_x(c), y = g.cell_y(r);
      const std::string where = "cell (" + std::to_string(r) + ", " + std::to_string(c) + ")";
      if (x + size > bm.width || y + size > bm.height) {
        p.problem(where + " lies outside the image");
        continue;
      }
      const std::uint64_t ink = bm.dark_in(x, y, size, size);
      ink_accounted += ink;
      const placement_slot s = g.placement.at(r, c);
      if (s.kind == placement_slot::empty) {
        ++p.empty_cells;
        if (ink != 0) p.problem(where + " should be blank, has " + std::to_string(ink) + " dark modules");
        continue;
      }
      const zx_result z = zxing_read(bm, x, y, size);
      if (!z.found) {
        p.problem(where + ": zxing: " + z.error);
        continue;
      }
      ++p.codes_read;
      if (z.ec_level != ecc_name(g.ecc)) p.problem(where + ": EC level " + z.ec_level);
      const plate::parsed_frame f = plate::parse_frame(z.data.data(), z.data.size());
      if (f.status != plate::frame_status::ok) {
        p.problem(where + ": parse_frame: " + plate::to_string(f.status));
        continue;
      }
      if (f.header.plate_tag != tag) p.problem(where + ": plate tag " + std::to_string(f.header.plate_tag));
      const bool is_data = f.header.kind == plate::frame_kind::data;
      if (is_data != (s.kind == placement_slot::data) || f.header.index != s.index) {
        p.problem(where + ": holds " + (is_data ? "data " : "parity ") + std::to_string(f.header.index) +
                  ", the placement says " + (s.kind == placement_slot::data ? "data " : "parity ") +
                  std::to_string(s.index));
        continue;
      }
      bytes body(f.body, f.body + f.body_len);
      if (is_data) {
        if (!p.data.emplace(s.index, std::move(body)).second) p.problem(where + ": data frame seen twice");
        p.data_cell[s.index] = cell{r, c};
      } else {
        if (body.size() != body_width) p.problem(where + ": parity body of " + std::to_string(body.size()) + " bytes");
        if (!p.parity.emplace(s.index, std::move(body)).second) p.problem(where + ": parity frame seen twice");
      }
    }
  if (p.data.size() != p.man.data_frames)
    p.problem("decoded " + std::to_string(p.data.size()) + " data frames of " + std::to_string(p.man.data_frames));
  if (p.parity.size() != g.placement.parity_frames())
    p.problem("decoded " + std::to_string(p.parity.size()) + " parity frames of " +
              std::to_string(g.placement.parity_frames()));

  // Header codes, at the positions plate.json gives (read here from the JSON itself).
  try {
    const nlohmann::json j = nlohmann::json::parse(p.json_text);
    const auto& hc = j.at("header_codes");
    const int hsize = hc.at("size").get<int>();
    if (hsize != 61) p.problem("header code size " + std::to_string(hsize));
    const auto copies = hc.at("copies_per_strip").get<std::uint32_t>();
    if (copies < 1) p.problem("no header codes");
    for (const char* strip : {"top", "bottom"}) {
      const auto x0 = hc.at(strip).at("x").get<std::int64_t>();
      const auto y0 = hc.at(strip).at("y").get<std::int64_t>();
      const auto step = hc.at(strip).at("step_x").get<std::int64_t>();
      for (std::uint32_t i = 0; i < copies; ++i) {
        const std::int64_t x = x0 + static_cast<std::int64_t>(i) * step;
        const std::string where = std::string(strip) + " header code " + std::to_string(i);
        if (x < 0 || y0 < 0 || static_cast<std::uint64_t>(x + hsize) > bm.width ||
            static_cast<std::uint64_t>(y0 + hsize) > bm.height) {
          p.problem(where + " lies outside the image");
          continue;
        }
        ink_accounted += bm.dark_in(static_cast<std::uint64_t>(x), static_cast<std::uint64_t>(y0), hsize, hsize);
        const zx_result z = zxing_read(bm, static_cast<std::uint64_t>(x), static_cast<std::uint64_t>(y0), hsize);
        if (!z.found) {
          p.problem(where + ": zxing: " + z.error);
          continue;
        }
        if (z.ec_level != "H") p.problem(where + ": EC level " + z.ec_level);
        try {
          const plate::manifest h = plate::manifest_from_binary(z.data.data(), z.data.size());
          if (!qrplate::fuzz::same_manifest(h, p.man, false)) p.problem(where + " differs from plate.json");
          p.headers.push_back(h);
        } catch (const std::exception& e) {
          p.problem(where + ": " + e.what());
        }
      }
    }
  } catch (const nlohmann::json::exception& e) {
    p.problem(std::string("plate.json header_codes: ") + e.what());
  }
  // No ink outside the codes: every dark module of the image lies in a code cell or header code.
  const std::uint64_t ink_total = bm.dark_in(0, 0, bm.width, bm.height);
  if (ink_total != ink_accounted)
    p.problem(std::to_string(ink_total - ink_accounted) + " dark modules lie outside every code");
  return p;
}

// The data frames' payloads in index order; checks every frame but the last is full.
bytes reassemble(decoded_plate& p)
{
  bytes out;
  const auto per_frame = static_cast<std::size_t>(plate::frame_data_bytes(p.g.version, p.g.ecc));
  for (std::uint64_t i = 0; i < p.man.data_frames; ++i) {
    const auto it = p.data.find(i);
    if (it == p.data.end()) {
      p.problem("data frame " + std::to_string(i) + " missing");
      continue;
    }
    const bytes& body = it->second;
    const std::size_t len = body.size() >= 2 ? static_cast<std::size_t>(body[0] | body[1] << 8) : 0;
    if (body.size() != len + 2) p.problem("data frame " + std::to_string(i) + " length prefix");
    if (i + 1 < p.man.data_frames && len != per_frame) p.problem("data frame " + std::to_string(i) + " not full");
    out.insert(out.end(), body.begin() + 2, body.end());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoding

plate::plate_encode_options small_options(int version, ecc_level ecc, std::uint64_t plate_id)
{
  plate::plate_encode_options o;
  o.geometry.version = version;
  o.geometry.ecc = ecc;
  o.threads = 2;
  o.plate_id = plate_id;
  return o;
}

struct encoded_case {
  std::string name;
  bytes payload;
  plate::plate_encode_result result;
  std::string error;  // an exception from encode_plates
  decoded_plate plate;
  bytes reassembled;
};

// Encodes and decodes the plates shared by the tests below, once.
const encoded_case& shared_case(const std::string& name)
{
  static std::map<std::string, std::unique_ptr<encoded_case>> cache;
  auto& slot = cache[name];
  if (slot) return *slot;
  slot = std::make_unique<encoded_case>();
  encoded_case& c = *slot;
  c.name = name;
  std::mt19937_64 rng(test_seed() + std::hash<std::string>{}(name));
  plate::plate_encode_options o;
  if (name == "v10M-default") {  // default outer code, scaled down to the payload
    c.payload = random_bytes(rng, 20000);
    o = small_options(10, ecc_level::M, rng() | 1);
  } else if (name == "v10M-none") {  // --outer none, CCITT G4, small tiles
    c.payload = random_bytes(rng, 20000);
    o = small_options(10, ecc_level::M, rng() | 1);
    o.geometry.k = 1;
    o.geometry.m = 0;
    o.outer_given = true;
    o.compression = "g4";
    o.tile_width = o.tile_height = 64;
  } else if (name == "v5M-20+4") {  // several groups and bands, uncompressed, odd tiles
    c.payload = random_bytes(rng, 12000);
    o = small_options(5, ecc_level::M, rng() | 1);
    o.geometry.k = 20;
    o.geometry.m = 4;
    o.outer_given = true;
    o.compression = "none";
    o.tile_width = 128;
    o.tile_height = 32;
  } else {
    throw std::logic_error("unknown case " + name);
  }
  const fs::path input = shared_dir() / (name + ".bin");
  write_file(input, c.payload);
  try {
    c.result = plate::encode_plates(input.string(), (shared_dir() / name).string(), o);
  } catch (const std::exception& e) {
    c.error = e.what();
    return c;
  }
  c.plate = read_plate(shared_dir() / name);
  c.reassembled = reassemble(c.plate);
  return c;
}

#define REQUIRE_GOOD_CASE(c)                          \
  ASSERT_EQ((c).error, "") << "encode_plates failed"; \
  ASSERT_TRUE((c).plate.problems.empty()) << (c).plate.report()

// ---------------------------------------------------------------------------------------------
// Tests: cells, header codes, payload

// Test names from case names: letters and digits only.
std::string case_name(const ::testing::TestParamInfo<const char*>& param)
{
  std::string s = param.param;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

class SharedPlate : public ::testing::TestWithParam<const char*> {};

TEST_P(SharedPlate, EveryCellHoldsItsFrameAndThePayloadComesBack)
{
  const encoded_case& c = shared_case(GetParam());
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(test_seed()));
  ASSERT_EQ(c.error, "");
  const decoded_plate& p = c.plate;
  EXPECT_TRUE(p.problems.empty()) << p.report();
  // The image: BigTIFF, 1 bit, MinIsWhite, the size plate.json gives, tiled and compressed as asked.
  EXPECT_TRUE(p.tiff.big_tiff_magic);
  EXPECT_TRUE(p.tiff.big_tiff);
  EXPECT_TRUE(p.tiff.tiled);
  EXPECT_EQ(p.tiff.bits, 1);
  EXPECT_EQ(p.tiff.samples, 1);
  EXPECT_EQ(p.tiff.photometric, PHOTOMETRIC_MINISWHITE);
  EXPECT_EQ(p.tiff.width, p.man.width);
  EXPECT_EQ(p.tiff.height, p.man.height);
  plate::image_info image;
  plate::manifest_from_json(p.json_text, &image);
  EXPECT_EQ(p.tiff.tile_width, image.tile_width);
  EXPECT_EQ(p.tiff.tile_height, image.tile_height);
  const std::string name = GetParam();
  if (image.compression == "none") {
    EXPECT_EQ(p.tiff.compression, COMPRESSION_NONE);
  } else if (image.compression == "g4") {
    EXPECT_EQ(p.tiff.compression, COMPRESSION_CCITTFAX4);
  } else {
    EXPECT_EQ(image.compression, "deflate");
    EXPECT_TRUE(p.tiff.compression == COMPRESSION_ADOBE_DEFLATE || p.tiff.compression == COMPRESSION_DEFLATE);
  }
  EXPECT_TRUE(fs::exists(p.dir / "preview.png"));

  // The payload, byte for byte, and its SHA-256.
  EXPECT_EQ(c.reassembled.size(), c.payload.size());
  EXPECT_TRUE(c.reassembled == c.payload) << "reassembled payload differs";
  EXPECT_EQ(p.man.payload_digest, sha256_of(c.payload));
  EXPECT_EQ(c.result.digest_hex, hex(sha256_of(c.payload)));
  EXPECT_EQ(p.man.payload_bytes, c.payload.size());
  EXPECT_EQ(p.man.share_offset, 0u);
  EXPECT_EQ(p.man.share_bytes, c.payload.size());
  EXPECT_EQ(p.man.plate_number, 0);
  EXPECT_EQ(p.man.plate_count, 1);

  // Counts: frames, codes, what the result reports.
  const auto per_frame = static_cast<std::uint64_t>(plate::frame_data_bytes(p.g.version, p.g.ecc));
  const std::uint64_t frames = (c.payload.size() + per_frame - 1) / per_frame;
  EXPECT_EQ(p.man.data_frames, frames);
  EXPECT_EQ(c.result.data_frames, frames);
  EXPECT_EQ(c.result.parity_frames, p.g.placement.parity_frames());
  EXPECT_EQ(c.result.plates, 1u);
  EXPECT_EQ(c.result.payload_bytes, c.payload.size());
  EXPECT_EQ(c.result.header_codes, 2ull * p.man.header_copies);
  EXPECT_EQ(c.result.modules, p.man.width * p.man.height);
  EXPECT_EQ(p.codes_read, frames + p.g.placement.parity_frames());
  EXPECT_EQ(p.codes_read + p.empty_cells, p.g.rows * p.g.columns);
  EXPECT_GE(p.man.header_copies, 1u);
  EXPECT_EQ(p.headers.size(), 2ull * p.man.header_copies);
  EXPECT_EQ(c.result.k, p.man.k);
  EXPECT_EQ(c.result.m, p.man.m);
  ASSERT_EQ(c.result.plate_dirs.size(), 1u);
  EXPECT_TRUE(fs::equivalent(c.result.plate_dirs[0], p.dir));

  if (name == "v10M-default") {
    // Not chosen by the user: K shrinks to the payload's frames, M in proportion (>= 1).
    EXPECT_EQ(p.man.k, static_cast<int>(frames));
    EXPECT_GE(p.man.m, 1);
    EXPECT_NEAR(p.man.m, 16.0 * static_cast<double>(frames) / 239.0, 1.0);
  } else if (name == "v10M-none") {
    EXPECT_EQ(p.man.k, 1);
    EXPECT_EQ(p.man.m, 0);
    EXPECT_EQ(p.g.placement.parity_frames(), 0u);
    // No outer code and one column block (5 columns): plain row-major order.
    EXPECT_EQ(p.g.placement.blocks(), 1u);
    for (const auto& [index, at] : p.data_cell) {
      EXPECT_EQ(at.row * p.g.columns + at.col, index) << "data frame " << index;
    }
  } else {
    EXPECT_EQ(p.man.k, 20);
    EXPECT_EQ(p.man.m, 4);
    EXPECT_GT(p.g.placement.groups(), 1u);
  }
}

TEST_P(SharedPlate, HeaderCodesHoldTheManifest)
{
  const encoded_case& c = shared_case(GetParam());
  REQUIRE_GOOD_CASE(c);
  const decoded_plate& p = c.plate;
  const plate::manifest from_json = plate::manifest_from_json(p.json_text);
  ASSERT_EQ(p.headers.size(), 2ull * from_json.header_copies);
  for (std::size_t i = 0; i < p.headers.size(); ++i) {
    SCOPED_TRACE("header code " + std::to_string(i));
    const plate::manifest& h = p.headers[i];
    EXPECT_TRUE(qrplate::fuzz::same_manifest(h, from_json, false));
    EXPECT_EQ(h.plate_id, from_json.plate_id);
    EXPECT_EQ(h.data_frames, from_json.data_frames);
    EXPECT_EQ(h.band_rows, from_json.band_rows);
    // A reader with only the plate rebuilds the same grid from a header code.
    const plate::plate_geometry g = plate::geometry_of(h);
    EXPECT_EQ(g.columns, p.g.columns);
    EXPECT_EQ(g.rows, p.g.rows);
    EXPECT_EQ(g.placement.groups_per_band(), p.g.placement.groups_per_band());
  }
  // The header positions of plate.json are those of the geometry.
  const nlohmann::json j = nlohmann::json::parse(p.json_text);
  EXPECT_EQ(j["header_codes"]["top"]["x"].get<std::uint64_t>(), p.g.header_x(0, 0));
  EXPECT_EQ(j["header_codes"]["top"]["y"].get<std::uint64_t>(), p.g.header_y(0));
  EXPECT_EQ(j["header_codes"]["bottom"]["x"].get<std::uint64_t>(), p.g.header_x(1, 0));
  EXPECT_EQ(j["header_codes"]["bottom"]["y"].get<std::uint64_t>(), p.g.header_y(1));
}

INSTANTIATE_TEST_SUITE_P(Plates, SharedPlate, ::testing::Values("v10M-default", "v10M-none", "v5M-20+4"), case_name);

// ---------------------------------------------------------------------------------------------
// Recovery with the outer code, from the decoded plate

// The data body of frame i as the encoder must have built it: length prefix + payload slice,
// zero-padded to the coding width.
bytes expected_row(const bytes& share, std::uint64_t i, std::size_t per_frame, std::size_t width)
{
  const std::size_t off = static_cast<std::size_t>(i) * per_frame;
  const std::size_t len = std::min(per_frame, share.size() - off);
  bytes row(width, 0);
  row[0] = static_cast<std::uint8_t>(len & 0xFF);
  row[1] = static_cast<std::uint8_t>(len >> 8);
  std::copy(share.begin() + static_cast<std::ptrdiff_t>(off), share.begin() + static_cast<std::ptrdiff_t>(off + len),
            row.begin() + 2);
  return row;
}

struct recovery_tally {
  std::uint64_t groups_hit = 0;  // groups that lost at least one member
  std::uint64_t recovered = 0;   // of those, restored
  std::uint64_t refused = 0;     // lost more than M: reported
  std::uint64_t data_lost = 0;   // data frames lost in all
};

// Loses every frame in `lost` cells and runs the outer decoder on every group, from the frames
// read off the plate. Groups that lost <= M must come back bit-exact, others must be refused
// without a byte written.
void recover_without(const decoded_plate& p, const bytes& share, const std::vector<cell>& lost, recovery_tally& tally)
{
  const plate::frame_placement& pl = p.g.placement;
  const int k = pl.k(), m = pl.m();
  const auto width = static_cast<std::size_t>(plate::frame_body_bytes(p.g.version, p.g.ecc));
  const auto per_frame = static_cast<std::size_t>(plate::frame_data_bytes(p.g.version, p.g.ecc));
  std::set<std::uint64_t> data_lost, parity_lost, groups;
  for (const cell& c : lost) {
    const placement_slot s = pl.at(c.row, c.col);
    if (s.kind == placement_slot::empty) continue;
    (s.kind == placement_slot::data ? data_lost : parity_lost).insert(s.index);
    groups.insert(s.group);
  }
  tally.data_lost += data_lost.size();
  const plate::outer_decoder dec({k, m}, width);
  const bytes zero(width, 0);
  for (std::uint64_t g : groups) {
    ++tally.groups_hit;
    std::vector<bytes> rows(static_cast<std::size_t>(k + m));
    std::vector<const std::uint8_t*> frames(static_cast<std::size_t>(k + m), nullptr);
    int missing = 0;
    for (int j = 0; j < k; ++j) {
      const std::uint64_t i = g * k + j;
      if (i >= pl.data_frames()) {
        frames[j] = zero.data();  // virtual frame: a zero row, present
      } else if (data_lost.count(i)) {
        ++missing;
      } else {
        const bytes& body = p.data.at(i);
        rows[j].resize(width);
        plate::pad_data_body(body.data(), body.size(), width, rows[j].data());
        frames[j] = rows[j].data();
      }
    }
    for (int j = 0; j < m; ++j) {
      const std::uint64_t i = g * m + j;
      if (parity_lost.count(i))
        ++missing;
      else
        frames[k + j] = p.parity.at(i).data();
    }
    std::vector<bytes> restored(static_cast<std::size_t>(k), bytes(width, 0xA5));
    std::vector<std::uint8_t*> restore(static_cast<std::size_t>(k));
    for (int j = 0; j < k; ++j) restore[j] = restored[j].data();
    const bool ok = dec.recover(frames.data(), restore.data());
    if (missing <= m) {
      ASSERT_TRUE(ok) << "group " << g << " lost " << missing << " of " << k << "+" << m;
      for (int j = 0; j < k; ++j) {
        const std::uint64_t i = g * k + j;
        if (i < pl.data_frames() && data_lost.count(i)) {
          ASSERT_TRUE(restored[j] == expected_row(share, i, per_frame, width))
              << "data frame " << i << " restored wrong";
        }
      }
      ++tally.recovered;
    } else {
      ASSERT_FALSE(ok) << "group " << g << " lost " << missing << " > M = " << m << " yet recover succeeded";
      for (int j = 0; j < k; ++j) ASSERT_TRUE(restored[j] == bytes(width, 0xA5)) << "a refused recover wrote row " << j;
      ++tally.refused;
    }
  }
}

class Recovery : public ::testing::TestWithParam<const char*> {};

// (a) dust: a window x window square of cells anywhere, every position.
TEST_P(Recovery, DustWindowAnywhere)
{
  const encoded_case& c = shared_case(GetParam());
  REQUIRE_GOOD_CASE(c);
  const plate::frame_placement& pl = c.plate.g.placement;
  const std::uint64_t w = pl.window();
  EXPECT_EQ(w, c.plate.man.dust_window);
  recovery_tally t;
  for (std::uint64_t r0 = 0; r0 + std::min<std::uint64_t>(w, pl.rows()) <= pl.rows(); ++r0)
    for (std::uint64_t c0 = 0; c0 + std::min<std::uint64_t>(w, pl.columns()) <= pl.columns(); ++c0) {
      std::vector<cell> lost;
      for (std::uint64_t r = r0; r < std::min(pl.rows(), r0 + w); ++r)
        for (std::uint64_t col = c0; col < std::min<std::uint64_t>(pl.columns(), c0 + w); ++col)
          lost.push_back({r, static_cast<std::uint32_t>(col)});
      SCOPED_TRACE("window at row " + std::to_string(r0) + " col " + std::to_string(c0));
      recover_without(c.plate, c.payload, lost, t);
      if (HasFatalFailure()) return;
    }
  std::cout << "[ dust     ] " << GetParam() << ": window " << w << ", " << t.groups_hit << " group hits, "
            << t.data_lost << " data frames restored\n";
  EXPECT_EQ(t.refused, 0u);
  EXPECT_GT(t.data_lost, 0u);
}

// (b) a scratch: one whole row, every row.
TEST_P(Recovery, WholeRowAnywhere)
{
  const encoded_case& c = shared_case(GetParam());
  REQUIRE_GOOD_CASE(c);
  const plate::frame_placement& pl = c.plate.g.placement;
  recovery_tally t;
  for (std::uint64_t r = 0; r < c.plate.g.rows; ++r) {
    std::vector<cell> lost;
    for (std::uint32_t col = 0; col < pl.columns(); ++col) lost.push_back({r, col});
    SCOPED_TRACE("row " + std::to_string(r));
    recover_without(c.plate, c.payload, lost, t);
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(t.refused, 0u);
  EXPECT_GT(t.data_lost, 0u);
}

// (c) random loss at half the parity rate, many times over.
TEST_P(Recovery, RandomLossAtHalfTheParityRate)
{
  const encoded_case& c = shared_case(GetParam());
  REQUIRE_GOOD_CASE(c);
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed ^ 0xC0FFEEu);
  const plate::frame_placement& pl = c.plate.g.placement;
  std::bernoulli_distribution lose(static_cast<double>(pl.m()) / (2.0 * (pl.k() + pl.m())));
  recovery_tally t;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<cell> lost;
    for (std::uint64_t r = 0; r < pl.rows(); ++r)
      for (std::uint32_t col = 0; col < pl.columns(); ++col)
        if (lose(rng)) lost.push_back({r, col});
    recover_without(c.plate, c.payload, lost, t);
    if (HasFatalFailure()) return;
  }
  std::cout << "[ random   ] " << GetParam() << ": " << t.recovered << " group hits restored, " << t.refused
            << " beyond M reported\n";
  EXPECT_GT(t.recovered, 0u);
  EXPECT_GT(t.data_lost, 0u);
}

// M + 1 lost members of one group: reported, never wrong bytes; M lost: restored.
TEST_P(Recovery, OneMemberBeyondMIsReported)
{
  const encoded_case& c = shared_case(GetParam());
  REQUIRE_GOOD_CASE(c);
  std::mt19937_64 rng(test_seed() ^ 0xBADu);
  const plate::frame_placement& pl = c.plate.g.placement;
  const int m = pl.m();
  for (std::uint64_t g = 0; g < pl.groups(); ++g) {
    SCOPED_TRACE("group " + std::to_string(g));
    std::vector<cell> members;  // the group's members that are on the plate
    for (int j = 0; j < pl.k() + m; ++j) {
      if (j < pl.k() && g * pl.k() + j >= pl.data_frames()) continue;
      cell at;
      pl.cell_of(g, j, at.row, at.col);
      members.push_back(at);
    }
    ASSERT_GE(members.size(), static_cast<std::size_t>(m + 1));
    std::shuffle(members.begin(), members.end(), rng);
    recovery_tally at_m, beyond;
    recover_without(c.plate, c.payload, std::vector<cell>(members.begin(), members.begin() + m), at_m);
    if (HasFatalFailure()) return;
    recover_without(c.plate, c.payload, std::vector<cell>(members.begin(), members.begin() + m + 1), beyond);
    if (HasFatalFailure()) return;
    EXPECT_EQ(at_m.recovered, 1u);
    EXPECT_EQ(beyond.refused, 1u);
    EXPECT_EQ(beyond.recovered, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Plates, Recovery, ::testing::Values("v10M-default", "v5M-20+4"), case_name);

// ---------------------------------------------------------------------------------------------
// Several plates

TEST(PlateEncode, FixedPlateSizeSplitsOverThreePlates)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed ^ 0x3A7Eu);
  temp_dir tmp;
  plate::plate_encode_options o = small_options(5, ecc_level::M, rng() | 1);
  o.geometry.k = 20;
  o.geometry.m = 4;
  o.outer_given = true;
  // 10 columns by 12 rows of version-5 codes (pitch 41): 414 x 626 modules.
  const double nm = o.geometry.module_nm;
  o.geometry.plate = plate::plate_size_nm{(8 + 10 * 41 - 4) * nm + 1, (69 + 12 * 41 - 4 + 4 + 61 + 4) * nm + 1};
  const std::uint64_t capacity = plate::plate_capacity_frames(o.geometry);
  ASSERT_GT(capacity, 0u);
  ASSERT_LT(capacity, 120u);
  const auto per_frame = static_cast<std::uint64_t>(plate::frame_data_bytes(5, ecc_level::M));
  const bytes payload = random_bytes(rng, static_cast<std::size_t>(2 * capacity * per_frame + 1000));
  const fs::path input = tmp.path() / "in.bin", out = tmp.path() / "out";
  write_file(input, payload);
  const plate::plate_encode_result result = plate::encode_plates(input.string(), out.string(), o);
  EXPECT_EQ(result.plates, 3u);
  EXPECT_EQ(entries(out), (std::vector<std::string>{"plate-0001", "plate-0002", "plate-0003"}));
  ASSERT_EQ(result.plate_dirs.size(), 3u);
  EXPECT_EQ(result.digest_hex, hex(sha256_of(payload)));

  bytes joined;
  std::uint64_t next_offset = 0, frames = 0;
  for (int i = 0; i < 3; ++i) {
    const fs::path dir = out / ("plate-000" + std::to_string(i + 1));
    SCOPED_TRACE(dir.string());
    EXPECT_TRUE(fs::equivalent(result.plate_dirs[i], dir));
    EXPECT_EQ(entries(dir), (std::vector<std::string>{"plate.json", "plate.tif", "preview.png"}));
    decoded_plate p = read_plate(dir);
    ASSERT_TRUE(p.problems.empty()) << p.report();
    const bytes share = reassemble(p);
    ASSERT_TRUE(p.problems.empty()) << p.report();
    EXPECT_EQ(p.man.plate_number, i);
    EXPECT_EQ(p.man.plate_count, 3);
    EXPECT_EQ(p.man.plate_id, o.plate_id);
    EXPECT_EQ(p.man.payload_bytes, payload.size());
    EXPECT_EQ(p.man.payload_digest, sha256_of(payload));
    EXPECT_EQ(p.man.share_offset, next_offset);
    EXPECT_EQ(p.man.share_bytes, share.size());
    EXPECT_EQ(p.man.data_frames,
              i < 2 ? capacity : (payload.size() - 2 * capacity * per_frame + per_frame - 1) / per_frame);
    // Every plate has the fixed size.
    EXPECT_EQ(p.man.width, 414u);
    EXPECT_EQ(p.man.height, 626u);
    EXPECT_EQ(p.headers.size(), 2ull * p.man.header_copies);
    // The JSON numbers plates from 1.
    EXPECT_EQ(nlohmann::json::parse(p.json_text)["plate"]["number"].get<int>(), i + 1);
    next_offset += share.size();
    frames += p.man.data_frames;
    joined.insert(joined.end(), share.begin(), share.end());
  }
  EXPECT_EQ(next_offset, payload.size());
  EXPECT_EQ(frames, result.data_frames);
  EXPECT_TRUE(joined == payload) << "the three shares do not make the payload";

  // Frames, parity, rasters, tiles and the preview are built on several threads: the plates'
  // files must be the same bytes for any thread count.
  for (unsigned threads : {1u, 3u}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    plate::plate_encode_options again = o;
    again.threads = threads;
    const fs::path other = tmp.path() / ("out" + std::to_string(threads));
    plate::encode_plates(input.string(), other.string(), again);
    for (int i = 0; i < 3; ++i) {
      const std::string plate_dir = "plate-000" + std::to_string(i + 1);
      for (const char* file : {"plate.json", "plate.tif", "preview.png"})
        EXPECT_TRUE(read_text(other / plate_dir / file) == read_text(out / plate_dir / file)) << plate_dir << "/" << file;
    }
  }
}

// The encoder's input: read ahead in blocks on a thread of its own, handed out in order in any
// piece sizes, hashed whole.
fs::path written(const temp_dir& tmp, const bytes& payload)
{
  const fs::path input = tmp.path() / "in.bin";
  write_file(input, payload);
  return input;
}

// The SHA-256 tree by its definition (docs/FORMAT.md), written out here: the head and every
// leaf's digest in one buffer, hashed at once (the code under test streams them).
std::array<std::uint8_t, 32> tree_of(const bytes& data, std::uint64_t leaf)
{
  bytes all = {'Q', 'R', 'P', 'T', 1};
  for (const std::uint64_t v : {leaf, static_cast<std::uint64_t>(data.size())})
    for (int i = 0; i < 8; ++i) all.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  for (std::size_t at = 0; at < data.size(); at += leaf) {
    const bytes piece(data.begin() + static_cast<long>(at),
                      data.begin() + static_cast<long>(std::min<std::size_t>(data.size(), at + leaf)));
    const auto d = sha256_of(piece);
    all.insert(all.end(), d.begin(), d.end());
  }
  return sha256_of(all);
}

TEST(PayloadHash, TreeRootsAreThoseOfTheDefinition)
{
  // Known answers, from Python's hashlib over the definition in docs/FORMAT.md.
  bytes pattern(10000);
  for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<std::uint8_t>(i * 7 + 3);
  struct known {
    std::size_t bytes;
    std::uint64_t leaf;
    const char* root;
  };
  for (const known k : {known{10000, 4096, "4f79be0c86a584a524b31a26114aac6c80b3f9a0b2812abcb472b5c4ad5f30f5"},
                        known{10000, 8192, "b7f742e6ce0598ea3fbdbe023c157ee4dfef5a20adaef118009e927226a6e621"},
                        known{10000, 10000, "0615274fb125d87c0fe8ab1e29fca2fdd459e55a967cd2e2ba108ba1121c5ee5"},
                        known{0, 4u << 20, "ec94d32354e48faec401f5d1fa0d816e8677188f8f0f837b70852233b8416f8e"}}) {
    SCOPED_TRACE(std::to_string(k.bytes) + " bytes, leaves of " + std::to_string(k.leaf));
    const bytes data(pattern.begin(), pattern.begin() + static_cast<long>(k.bytes));
    EXPECT_EQ(hex(tree_of(data, k.leaf)), k.root);  // the test's own reference agrees
    plate::sha256_tree tree(k.leaf, data.size());
    for (std::size_t at = 0; at < data.size(); at += k.leaf)
      tree.add_leaf(plate::sha256_of(data.data() + at, std::min<std::size_t>(k.leaf, data.size() - at)));
    EXPECT_EQ(hex(tree.finish()), k.root);
  }
  const bytes abc = {'a', 'b', 'c'};
  EXPECT_EQ(hex(plate::sha256_of(abc.data(), abc.size())),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2's example
  EXPECT_EQ(hex(tree_of(abc, 4u << 20)), "6fa36108d63688d55da017afbd5ab25e81a7c89d091a35765d6ed52c3265be0f");
  // Leaves counted, not assumed.
  plate::sha256_tree short_tree(4096, 10000);
  EXPECT_EQ(short_tree.leaves(), 3u);
  EXPECT_THROW(short_tree.finish(), std::logic_error);
  EXPECT_THROW(plate::sha256_tree(0, 10), qrplate::invalid_argument);
}

TEST(PayloadHash, FilesHashAsTheirBytesOnAnyNumberOfThreads)
{
  temp_dir tmp;
  std::mt19937_64 rng(test_seed() ^ 0x7EEu);
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4095}, std::size_t{4096},
                                 std::size_t{4097}, std::size_t{300000}}) {
    const bytes payload = random_bytes(rng, size);
    const fs::path input = tmp.path() / ("h" + std::to_string(size));
    write_file(input, payload);
    SCOPED_TRACE(std::to_string(size) + " bytes");
    EXPECT_EQ(plate::hash_file(input.string(), plate::payload_hash_kind::sha256, 4096, 3), sha256_of(payload));
    for (const unsigned threads : {1u, 2u, 5u})
      EXPECT_EQ(plate::hash_file(input.string(), plate::payload_hash_kind::sha256_tree, 4096, threads),
                tree_of(payload, 4096));
    if (size > 10) {  // a prefix, as decode hashes the payload's length of its output
      const bytes head(payload.begin(), payload.begin() + 10);
      EXPECT_EQ(plate::hash_file(input.string(), plate::payload_hash_kind::sha256_tree, 4096, 2, 10),
                tree_of(head, 4096));
      EXPECT_THROW(plate::hash_file(input.string(), plate::payload_hash_kind::sha256, 4096, 1, size + 1),
                   qrplate::io_error);
    }
  }
  EXPECT_THROW(plate::hash_file((tmp.path() / "missing").string(), plate::payload_hash_kind::sha256, 4096, 1),
               qrplate::io_error);
  // Progress: rising, on the calling thread, ending at the bytes hashed.
  const bytes big = random_bytes(rng, (std::size_t{5} << 20) + 77);
  const fs::path input = tmp.path() / "big";
  write_file(input, big);
  for (const auto kind : {plate::payload_hash_kind::sha256, plate::payload_hash_kind::sha256_tree}) {
    SCOPED_TRACE(plate::to_string(kind));
    std::vector<std::uint64_t> seen;
    const auto caller = std::this_thread::get_id();
    bool other_thread = false;
    const auto d = plate::hash_file(input.string(), kind, 4096, 2, plate::whole_file, [&](std::uint64_t done) {
      seen.push_back(done);
      other_thread |= std::this_thread::get_id() != caller;
    });
    EXPECT_EQ(d, kind == plate::payload_hash_kind::sha256 ? sha256_of(big) : tree_of(big, 4096));
    ASSERT_GE(seen.size(), 2u);
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    EXPECT_EQ(seen.back(), big.size());
    EXPECT_FALSE(other_thread);
  }
}

TEST(PayloadHash, BytesHashedAsTheyAreWrittenGiveTheFilesDigest)
{
  std::mt19937_64 rng(test_seed() ^ 0x57EAu);
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{70001}}) {
    const bytes payload = random_bytes(rng, size);
    for (const auto kind : {plate::payload_hash_kind::sha256, plate::payload_hash_kind::sha256_tree}) {
      for (const unsigned threads : {1u, 3u}) {
        SCOPED_TRACE(std::to_string(size) + " bytes, " + plate::to_string(kind) + ", " + std::to_string(threads) +
                     " threads");
        plate::streaming_digest d(kind, 4096, payload.size(), threads);
        std::uniform_int_distribution<std::size_t> piece(0, 9000);  // pieces across leaves and within them
        for (std::size_t at = 0; at < payload.size();) {
          const std::size_t n = std::min(piece(rng), payload.size() - at);
          d.add(at, payload.data() + at, n);
          at += n;
        }
        const auto got = d.finish();
        ASSERT_TRUE(got.has_value());
        EXPECT_EQ(*got, kind == plate::payload_hash_kind::sha256 ? sha256_of(payload) : tree_of(payload, 4096));
      }
    }
  }
  // Out of order, rewritten, short or past the end: no digest (decode then reads the file back).
  const bytes payload = random_bytes(rng, 10000);
  for (const auto kind : {plate::payload_hash_kind::sha256, plate::payload_hash_kind::sha256_tree}) {
    SCOPED_TRACE(plate::to_string(kind));
    {
      plate::streaming_digest d(kind, 4096, payload.size(), 2);
      d.add(5000, payload.data() + 5000, 5000);
      d.add(0, payload.data(), 5000);
      EXPECT_FALSE(d.finish().has_value());
    }
    {
      plate::streaming_digest d(kind, 4096, payload.size(), 2);
      d.add(0, payload.data(), 6000);
      d.add(5000, payload.data() + 5000, 5000);
      EXPECT_FALSE(d.finish().has_value());
    }
    {
      plate::streaming_digest d(kind, 4096, payload.size(), 2);
      d.add(0, payload.data(), 9999);
      EXPECT_FALSE(d.finish().has_value());
    }
    {
      plate::streaming_digest d(kind, 4096, payload.size() - 1, 2);
      d.add(0, payload.data(), 10000);
      EXPECT_FALSE(d.finish().has_value());
    }
  }
  // Leaves too small for the payload to keep their digests in memory: left to the file's hash.
  plate::streaming_digest tiny(plate::payload_hash_kind::sha256_tree, 4096, std::uint64_t{1} << 40, 2);
  EXPECT_TRUE(tiny.given_up());
}

TEST(PayloadReader, HandsOutTheFileInOrderAndHashesIt)
{
  temp_dir tmp;
  std::mt19937_64 rng(test_seed() ^ 0x9EADu);
  const bytes payload = random_bytes(rng, 100000);
  const fs::path input = written(tmp, payload);
  struct shape {
    std::size_t block, depth;
    unsigned hashers;  // the tree's; SHA-256 always has one
  };
  for (const shape sh : {shape{1, 1, 1}, shape{7, 2, 3}, shape{4096, 4, 2}, shape{4096, 1, 8}, shape{1 << 20, 4, 4}}) {
    for (const auto kind : {plate::payload_hash_kind::sha256, plate::payload_hash_kind::sha256_tree}) {
      SCOPED_TRACE(std::string(plate::to_string(kind)) + ", blocks of " + std::to_string(sh.block) + ", " +
                   std::to_string(sh.depth) + " ahead, " + std::to_string(sh.hashers) + " hashers");
      // Blocks of a byte: the first 3,000 bytes only (a hand-off per byte is slow), read as a payload
      // of that size.
      const bytes data(payload.begin(), payload.begin() + (sh.block == 1 ? 3000 : static_cast<long>(payload.size())));
      plate::payload_reader reader(input.string(), data.size(), kind, sh.hashers, sh.block, sh.depth);
      bytes got(data.size());
      std::uniform_int_distribution<std::size_t> piece(0, 5000);
      for (std::size_t at = 0; at < got.size();) {
        const std::size_t n = std::min(piece(rng), got.size() - at);
        reader.read(got.data() + at, n);
        at += n;
      }
      const auto d = reader.finish();
      EXPECT_TRUE(got == data);
      EXPECT_EQ(d, kind == plate::payload_hash_kind::sha256 ? sha256_of(data) : tree_of(data, sh.block));
    }
  }
}

TEST(PayloadReader, ShortFilesAndUnreadBytesAreErrorsNotHangs)
{
  temp_dir tmp;
  std::mt19937_64 rng(test_seed() ^ 0x5407u);
  const bytes payload = random_bytes(rng, 10000);
  const fs::path input = written(tmp, payload);
  bytes got(payload.size() + 10);
  for (const auto kind : {plate::payload_hash_kind::sha256, plate::payload_hash_kind::sha256_tree}) {
    SCOPED_TRACE(plate::to_string(kind));
    {
      // A file that shrank after its size was taken: the missing bytes are an io_error.
      plate::payload_reader reader(input.string(), payload.size() + 10, kind, 3, 1000, 2);
      EXPECT_THROW(reader.read(got.data(), got.size()), qrplate::io_error);
    }
    {
      // Reading past the size it was given.
      plate::payload_reader reader(input.string(), payload.size(), kind, 3, 1000, 2);
      EXPECT_THROW(reader.read(got.data(), got.size()), qrplate::io_error);
    }
    {
      // finish() with most of the file unread (the read-ahead full): a logic error, not a wait.
      plate::payload_reader reader(input.string(), payload.size(), kind, 3, 1000, 2);
      reader.read(got.data(), 500);
      EXPECT_THROW(reader.finish(), std::logic_error);
    }
    {
      // Destroyed with everything unread: the read-ahead and hashing threads stop.
      plate::payload_reader reader(input.string(), payload.size(), kind, 4, 100, 1);
    }
  }
}

TEST(PlateEncode, TreeDigestCoversThePayloadAcrossPlates)
{
  // Two leaves of 4 MiB (the last short) over two plates, v40-L: plate.json and the result carry
  // the tree's root, the one the definition gives for these bytes.
  temp_dir tmp;
  std::mt19937_64 rng(test_seed() ^ 0x76EEu);
  const bytes payload = random_bytes(rng, (std::size_t{4} << 20) + 123);
  const fs::path input = tmp.path() / "in.bin", out = tmp.path() / "out";
  write_file(input, payload);
  plate::plate_encode_options o = small_options(40, ecc_level::L, 0x7EE);
  o.compression = "none";
  o.geometry.plate = plate::parse_plate_size("300x300um");
  o.hash = plate::payload_hash_kind::sha256_tree;
  const plate::plate_encode_result result = plate::encode_plates(input.string(), out.string(), o);
  ASSERT_GE(result.plates, 2u);
  EXPECT_EQ(result.hash, plate::payload_hash_kind::sha256_tree);
  const std::string root = hex(tree_of(payload, 4u << 20));
  EXPECT_EQ(result.digest_hex, root);
  EXPECT_NE(root, hex(sha256_of(payload)));
  for (const std::string& dir : result.plate_dirs) {
    SCOPED_TRACE(dir);
    const decoded_plate p = read_plate(dir);
    EXPECT_EQ(p.man.payload_hash, plate::payload_hash_kind::sha256_tree);
    EXPECT_EQ(p.man.tree_leaf_bytes, 4u << 20);
    EXPECT_EQ(hex(p.man.payload_digest), root);
  }
}

// ---------------------------------------------------------------------------------------------
// Edge cases

TEST(PlateEncode, PayloadSizesAtFrameBoundaries)
{
  const unsigned seed = test_seed();
  SCOPED_TRACE("QRPLATE_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed ^ 0xED6Eu);
  temp_dir tmp;
  const std::size_t per_frame = static_cast<std::size_t>(plate::frame_data_bytes(5, ecc_level::M));
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, per_frame - 1, per_frame, per_frame + 1, 2 * per_frame - 1,
                           2 * per_frame, std::size_t{777}, 16 * per_frame + 3}) {
    SCOPED_TRACE("payload of " + std::to_string(size) + " bytes");
    const bytes payload = random_bytes(rng, size);
    const fs::path input = tmp.path() / ("in-" + std::to_string(size));
    const fs::path out = tmp.path() / ("out-" + std::to_string(size));
    write_file(input, payload);
    plate::plate_encode_result result;
    ASSERT_NO_THROW(result =
                        plate::encode_plates(input.string(), out.string(), small_options(5, ecc_level::M, rng() | 1)));
    decoded_plate p = read_plate(out);
    const bytes back = reassemble(p);
    ASSERT_TRUE(p.problems.empty()) << p.report();
    EXPECT_TRUE(back == payload);
    EXPECT_EQ(p.man.payload_bytes, size);
    EXPECT_EQ(p.man.data_frames, (size + per_frame - 1) / per_frame);
    EXPECT_EQ(result.data_frames, p.man.data_frames);
    EXPECT_EQ(p.man.payload_digest, sha256_of(payload));
    EXPECT_EQ(p.headers.size(), 2ull * p.man.header_copies);
    EXPECT_GE(p.man.header_copies, 1u);
    if (size == 0) {
      // Header codes only: no frame anywhere.
      EXPECT_EQ(p.codes_read, 0u);
      EXPECT_EQ(result.parity_frames, 0u);
      EXPECT_EQ(hex(p.man.payload_digest), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
  }
}

TEST(PlateEncode, ExistingOutputIsRefusedAndLeftAlone)
{
  temp_dir tmp;
  const fs::path input = tmp.path() / "in.bin", out = tmp.path() / "out";
  write_file(input, bytes(1000, 0x5A));
  fs::create_directory(out);
  write_file(out / "keep.txt", bytes{'k', 'e', 'e', 'p'});
  EXPECT_THROW(plate::encode_plates(input.string(), out.string(), small_options(5, ecc_level::M, 7)),
               qrplate::invalid_argument);
  EXPECT_EQ(entries(out), std::vector<std::string>{"keep.txt"});
  EXPECT_EQ(read_text(out / "keep.txt"), "keep");
  EXPECT_EQ(entries(tmp.path()), (std::vector<std::string>{"in.bin", "out"}));  // no *.partial-* sibling
  // An existing file is refused too.
  const fs::path file = tmp.path() / "file";
  write_file(file, bytes{1, 2, 3});
  EXPECT_THROW(plate::encode_plates(input.string(), file.string(), small_options(5, ecc_level::M, 7)),
               qrplate::invalid_argument);
  EXPECT_EQ(fs::file_size(file), 3u);
}

bool has_partial(const fs::path& dir)
{
  for (const std::string& name : entries(dir))
    if (name.find(".partial-") != std::string::npos) return true;
  return false;
}

TEST(PlateEncode, MissingInputLeavesNothingBehind)
{
  temp_dir tmp;
  const fs::path out = tmp.path() / "out";
  EXPECT_THROW(
      plate::encode_plates((tmp.path() / "no-such-file").string(), out.string(), small_options(5, ecc_level::M, 7)),
      qrplate::io_error);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(has_partial(tmp.path()));
  EXPECT_TRUE(entries(tmp.path()).empty());
}

TEST(PlateEncode, FailureAfterStagingLeavesNothingBehind)
{
  temp_dir tmp;
  const fs::path input = tmp.path() / "in.bin", out = tmp.path() / "out";
  write_file(input, bytes(3000, 0x11));
  plate::plate_encode_options o = small_options(5, ecc_level::M, 7);
  o.buffer_bytes = 1;  // refused once the plate's band size is known, after the staging directory exists
  EXPECT_THROW(plate::encode_plates(input.string(), out.string(), o), qrplate::invalid_argument);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(has_partial(tmp.path()));
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"in.bin"});
}

// A directory is not a payload: it must be refused with a typed error, not encoded as an empty
// payload.
TEST(PlateEncode, DirectoryAsInputIsRefused)
{
  temp_dir tmp;
  const fs::path out = tmp.path() / "out";
  fs::create_directory(tmp.path() / "dir");
  bool typed_error = false;
  try {
    plate::encode_plates((tmp.path() / "dir").string(), out.string(), small_options(5, ecc_level::M, 7));
  } catch (const qrplate::io_error&) {
    typed_error = true;
  } catch (const qrplate::invalid_argument&) {
    typed_error = true;
  }
  EXPECT_TRUE(typed_error) << "encode_plates took a directory as its input";
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(has_partial(tmp.path()));
}

TEST(PlateEncode, DiscardWritesNothing)
{
  temp_dir tmp;
  std::mt19937_64 rng(test_seed() ^ 0xD15Cu);
  const bytes payload = random_bytes(rng, 5000);
  const fs::path input = tmp.path() / "in.bin", out = tmp.path() / "out";
  write_file(input, payload);
  plate::plate_encode_options o = small_options(5, ecc_level::M, 7);
  o.discard = true;
  const plate::plate_encode_result r = plate::encode_plates(input.string(), out.string(), o);
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"in.bin"});
  EXPECT_TRUE(r.plate_dirs.empty());
  EXPECT_EQ(r.payload_bytes, payload.size());
  const auto per_frame = static_cast<std::size_t>(plate::frame_data_bytes(5, ecc_level::M));
  EXPECT_EQ(r.data_frames, (payload.size() + per_frame - 1) / per_frame);
  EXPECT_GT(r.parity_frames, 0u);
  EXPECT_EQ(r.digest_hex, hex(sha256_of(payload)));
}

}  // namespace
