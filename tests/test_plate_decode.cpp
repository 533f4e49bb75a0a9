// The digital read path end to end: plates written by encode_plates, damaged in known ways,
// read back by decode_plates. The damage is applied to the image (plate.tif rewritten), so
// everything between the pixels and the bytes is exercised.
#include <gtest/gtest.h>
#include <png.h>
#include <tiffio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "plate/tiff_writer.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/decode_plate.hpp"
#include "qrplate/plate/encode_plate.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"
#include "sim/scan_io.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qrplate;

std::string temp(const std::string& name)
{
  return ::testing::TempDir() + "qrplate_decode_test_" + std::to_string(::getpid()) + "_" + name;
}

std::vector<char> random_bytes(std::size_t n, std::uint64_t seed)
{
  std::mt19937_64 rng(seed);
  std::vector<char> v(n);
  for (char& c : v) c = static_cast<char>(rng());
  return v;
}

std::vector<char> read_file(const std::string& p)
{
  std::ifstream f(p, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The RGB pixels of a heatmap PNG (libpng's simplified API), width and height.
std::vector<std::uint8_t> read_rgb_png(const std::string& path, std::uint32_t& w, std::uint32_t& h)
{
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str())) return {};
  img.format = PNG_FORMAT_RGB;
  std::vector<std::uint8_t> px(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, px.data(), 0, nullptr)) return {};
  w = img.width;
  h = img.height;
  return px;
}

struct plate_fixture {
  std::string dir, input;
  std::vector<char> payload;
  plate::manifest man;
  plate::plate_geometry geo;

  plate_fixture(const std::string& name, std::size_t bytes, std::uint64_t seed, int version = 10,
                ecc_level ecc = ecc_level::M, const std::string& plate_size = "")
  {
    dir = temp(name);
    input = dir + ".in";
    fs::remove_all(dir);
    payload = random_bytes(bytes, seed);
    std::ofstream(input, std::ios::binary).write(payload.data(), static_cast<std::streamsize>(payload.size()));
    plate::plate_encode_options o;
    o.geometry.version = version;
    o.geometry.ecc = ecc;
    if (!plate_size.empty()) o.geometry.plate = plate::parse_plate_size(plate_size);
    plate::encode_plates(input, dir, o);
    std::ifstream pj(fs::path(dir) / "plate.json");
    man = plate::manifest_from_json(std::string((std::istreambuf_iterator<char>(pj)), std::istreambuf_iterator<char>()));
    geo = plate::geometry_of(man);
  }
  ~plate_fixture()
  {
    fs::remove_all(dir);
    fs::remove(input);
  }

  // Rewrites plate.tif after `edit` changed the module image (row-major words, 1 = milled).
  template <typename Edit>
  void damage(Edit&& edit)
  {
    const std::string tif = (fs::path(dir) / "plate.tif").string();
    std::vector<std::uint64_t> bits;
    std::size_t stride = 0;
    {
      sim::plate_image_reader r(tif);
      r.read_window(0, 0, man.width, man.height, bits, stride);
    }
    edit(bits, stride);
    plate::tiled_bilevel_writer w(tif, man.width, man.height, {});
    w.append_rows(bits.data(), man.height, stride);
    w.finish();
  }
  // Clears (to light) the whole code in cell (row, col).
  void erase_cell(std::vector<std::uint64_t>& bits, std::size_t stride, std::uint64_t row, std::uint32_t col) const
  {
    for (int y = 0; y < geo.code_size; ++y)
      for (int x = 0; x < geo.code_size; ++x) {
        const std::uint64_t px = geo.cell_x(col) + x, py = geo.cell_y(row) + y;
        bits[py * stride + px / 64] &= ~(std::uint64_t{1} << (px % 64));
      }
  }
};

TEST(PlateDecode, RoundTripIsBitExact)
{
  plate_fixture p("rt", 123457, 1);
  const std::string out = temp("rt.out");
  const plate::plate_decode_result r = plate::decode_plates(p.dir, out, {});
  EXPECT_TRUE(r.complete);
  EXPECT_TRUE(r.digest_checked);
  EXPECT_TRUE(r.digest_ok);
  EXPECT_FALSE(r.digest_read_back);  // hashed as written
  EXPECT_EQ(r.codes_unreadable, 0u);
  EXPECT_EQ(r.lost_frames, 0u);
  EXPECT_EQ(read_file(out), p.payload);
  fs::remove(out);
}

TEST(PlateDecode, BootstrapsFromHeaderCodesWithoutPlateJson)
{
  plate_fixture p("boot", 5000, 2, 5, ecc_level::Q);
  fs::remove(fs::path(p.dir) / "plate.json");
  // Damage the first header copies: the reader must go on to the next ones.
  p.damage([&](std::vector<std::uint64_t>& bits, std::size_t stride) {
    for (std::uint64_t y = plate::plate_margin; y < plate::plate_margin + plate::header_size; ++y)
      for (std::uint64_t x = plate::plate_margin; x < plate::plate_margin + 2 * plate::header_pitch; ++x)
        bits[y * stride + x / 64] &= ~(std::uint64_t{1} << (x % 64));
  });
  const std::string out = temp("boot.out");
  const plate::plate_decode_result r = plate::decode_plates(p.dir, out, {});
  EXPECT_TRUE(r.bootstrapped);
  EXPECT_TRUE(r.complete);
  EXPECT_FALSE(r.digest_checked);  // the SHA-256 is only in plate.json
  EXPECT_EQ(read_file(out), p.payload);
  fs::remove(out);
}

// One loss event at a time: the placement bounds each to at most M members of any group (two
// events together may exceed M, which is what the outer code's budget means).
class PlateDecodeDamage : public ::testing::TestWithParam<int> {};

TEST_P(PlateDecodeDamage, IsRepaired)
{
  const int event = GetParam();  // 0: dust window, 1: scratch along a row
  plate_fixture p("damage" + std::to_string(event), 200000, 3 + event);
  const auto& pl = p.geo.placement;
  std::mt19937_64 rng(33 + event);
  const std::uint32_t w = pl.window();
  const std::uint64_t r0 = rng() % (pl.rows() - w + 1), scratch_row = rng() % pl.rows();
  const std::uint32_t c0 = static_cast<std::uint32_t>(rng() % (p.geo.columns - w + 1));
  p.damage([&](std::vector<std::uint64_t>& bits, std::size_t stride) {
    if (event == 0) {
      for (std::uint64_t r = r0; r < r0 + w; ++r)
        for (std::uint32_t c = c0; c < c0 + w; ++c) p.erase_cell(bits, stride, r, c);
    } else {
      for (std::uint32_t c = 0; c < p.geo.columns; ++c) p.erase_cell(bits, stride, scratch_row, c);
    }
    // and a few flipped modules in every code: the QR code's own Reed-Solomon fixes those
    for (std::uint64_t r = 0; r < pl.rows(); ++r)
      for (std::uint32_t c = 0; c < p.geo.columns; ++c)
        for (int k = 0; k < 3; ++k) {
          const std::uint64_t x = p.geo.cell_x(c) + 9 + rng() % (p.geo.code_size - 18);
          const std::uint64_t y = p.geo.cell_y(r) + 9 + rng() % (p.geo.code_size - 18);
          bits[y * stride + x / 64] ^= std::uint64_t{1} << (x % 64);
        }
  });
  const std::string out = temp("damage.out"), map = temp("damage.png");
  plate::plate_decode_options o;
  o.heatmap = map;
  const plate::plate_decode_result r = plate::decode_plates(p.dir, out, o);
  EXPECT_TRUE(r.complete);
  // The heatmap shows the erased cells as restored by the outer code (orange), others green or
  // yellow, and nothing red.
  std::uint32_t hw = 0, hh = 0;
  const std::vector<std::uint8_t> px = read_rgb_png(map, hw, hh);
  ASSERT_EQ(hw, p.geo.columns);
  ASSERT_EQ(hh, pl.rows());
  const std::uint64_t er = event == 0 ? r0 : scratch_row;
  const std::uint32_t ec = event == 0 ? c0 : 0;
  const std::uint8_t* cell = &px[(er * hw + ec) * 3];
  if (pl.at(er, ec).kind != plate::placement_slot::empty) {
    EXPECT_EQ(cell[0], 245);  // orange: restored
    EXPECT_EQ(cell[1], 140);
  }
  for (std::size_t i = 0; i < px.size(); i += 3) EXPECT_FALSE(px[i] == 200 && px[i + 1] == 20) << "a red (lost) cell";
  fs::remove(map);
  EXPECT_GT(r.codes_unreadable, 0u);
  EXPECT_GT(r.recovered_by_outer, 0u);
  EXPECT_GT(r.codes_corrected, 0u);
  EXPECT_EQ(read_file(out), p.payload);
  fs::remove(out);
}

INSTANTIATE_TEST_SUITE_P(Events, PlateDecodeDamage, ::testing::Values(0, 1),
                         [](const ::testing::TestParamInfo<int>& i) { return i.param == 0 ? "dust" : "scratch"; });

// A TIFF tile of plate.tif whose compressed bytes are garbage (a bad sector, a torn copy): its
// cells are unreadable, the reason is reported, and the outer code restores them; the decode goes
// on rather than fail on the first cell that touches the tile.
TEST(PlateDecode, ADamagedTiffTileLeavesOnlyItsCellsUnreadable)
{
  plate_fixture p("badtile", 150000, 9);
  const std::string tif = (fs::path(p.dir) / "plate.tif").string();
  {
    // Tiles of 128 x 128 modules (a few codes each), so that one lost tile is damage the outer code
    // is laid out to repair, like a dust grain.
    std::vector<std::uint64_t> bits;
    std::size_t stride = 0;
    {
      sim::plate_image_reader r(tif);
      r.read_window(0, 0, p.man.width, p.man.height, bits, stride);
    }
    plate::tiff_options small;
    small.tile_width = small.tile_height = 128;
    plate::tiled_bilevel_writer w(tif, p.man.width, p.man.height, small);
    w.append_rows(bits.data(), p.man.height, stride);
    w.finish();
  }
  toff_t offset = 0;
  tmsize_t length = 0;
  std::uint32_t tiles = 0;
  {
    TIFF* t = TIFFOpen(tif.c_str(), "r");
    ASSERT_NE(t, nullptr);
    ASSERT_TRUE(TIFFIsTiled(t));
    tiles = TIFFNumberOfTiles(t);
    ASSERT_GT(tiles, 4u);
    const std::uint32_t victim = tiles / 2;
    offset = TIFFGetStrileOffset(t, victim);
    length = static_cast<tmsize_t>(TIFFGetStrileByteCount(t, victim));
    TIFFClose(t);
  }
  ASSERT_GT(length, 64);
  {
    std::fstream f(tif, std::ios::in | std::ios::out | std::ios::binary);
    std::mt19937_64 rng(5);
    for (tmsize_t k = 8; k + 8 < length; k += 5) {
      f.seekp(static_cast<std::streamoff>(offset + static_cast<toff_t>(k)));
      f.put(static_cast<char>(rng()));
    }
    ASSERT_TRUE(f.good());
  }
  const std::string out = temp("badtile.out");
  const plate::plate_decode_result r = plate::decode_plates(p.dir, out, {});
  ASSERT_EQ(r.tile_errors.size(), 1u);
  EXPECT_NE(r.tile_errors[0].find("cannot decode tile " + std::to_string(tiles / 2) + " of " + tif), std::string::npos)
      << r.tile_errors[0];
  EXPECT_GT(r.codes_unreadable, 0u);
  EXPECT_LT(r.codes_unreadable, r.codes / 4);  // that tile's cells, not the plate's
  EXPECT_TRUE(r.complete);
  EXPECT_GT(r.recovered_by_outer, 0u);
  EXPECT_EQ(read_file(out), p.payload);
  fs::remove(out);
}

// A heatmap that cannot be written (here: a file in /proc, which nobody can create) is noted in
// the result; the payload is still decoded, checked and renamed into place.
TEST(PlateDecode, AHeatmapThatCannotBeWrittenCostsNotThePayload)
{
  plate_fixture p("noheat", 5000, 12, 5, ecc_level::Q);
  const std::string out = temp("noheat.out");
  plate::plate_decode_options o;
  o.heatmap = "/proc/qrplate-test-heatmap.png";
  const plate::plate_decode_result r = plate::decode_plates(p.dir, out, o);
  EXPECT_TRUE(r.complete);
  EXPECT_NE(r.heatmap_error.find("/proc/qrplate-test-heatmap.png"), std::string::npos) << r.heatmap_error;
  EXPECT_EQ(read_file(out), p.payload);
  fs::remove(out);
}

// An interrupt (a signal's number in options.interrupt, as the command's handler sets it) stops
// the decode with qrplate::interrupted and leaves neither the output nor its .partial file; the
// same goes for an encode, whose staging directory goes too.
TEST(PlateDecode, AnInterruptStopsEncodeAndDecodeAndLeavesNothing)
{
  plate_fixture p("interrupt", 20000, 13, 5, ecc_level::M);
  std::atomic<int> signal_number{15};
  const std::string out = temp("interrupt.out");
  plate::plate_decode_options o;
  o.interrupt = &signal_number;
  try {
    plate::decode_plates(p.dir, out, o);
    ADD_FAILURE() << "the decode was not interrupted";
  } catch (const qrplate::interrupted& e) {
    EXPECT_EQ(e.signal, 15);
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".partial"));
  signal_number = 0;  // not interrupted: the same options decode
  EXPECT_TRUE(plate::decode_plates(p.dir, out, o).complete);
  EXPECT_EQ(read_file(out), p.payload);
  fs::remove(out);

  const std::string dir = temp("interrupt.plate");
  fs::remove_all(dir);
  plate::plate_encode_options eo;
  eo.geometry.version = 5;
  eo.interrupt = &signal_number;
  signal_number = 2;
  EXPECT_THROW(plate::encode_plates(p.input, dir, eo), qrplate::interrupted);
  EXPECT_FALSE(fs::exists(dir));
  for (const auto& e : fs::directory_iterator(fs::path(dir).parent_path()))
    EXPECT_EQ(e.path().filename().string().rfind(fs::path(dir).filename().string() + ".partial", 0), std::string::npos)
        << "left behind: " << e.path();
}

TEST(PlateDecode, TooMuchDamageIsReportedNeverWrong)
{
  plate_fixture p("lost", 60000, 4);
  const auto& pl = p.geo.placement;
  // Erase M + 1 members of group 0, data frames among them.
  p.damage([&](std::vector<std::uint64_t>& bits, std::size_t stride) {
    for (int member = 0; member <= pl.m(); ++member) {
      std::uint64_t row;
      std::uint32_t col;
      pl.cell_of(0, member, row, col);
      p.erase_cell(bits, stride, row, col);
    }
  });
  const std::string out = temp("lost.out"), map = temp("lost.png");
  plate::plate_decode_options o;
  o.heatmap = map;
  const plate::plate_decode_result r = plate::decode_plates(p.dir, out, o);
  EXPECT_FALSE(r.complete);
  std::uint32_t hw = 0, hh = 0;
  const std::vector<std::uint8_t> px = read_rgb_png(map, hw, hh);
  ASSERT_FALSE(px.empty());
  for (int member = 0; member <= pl.m(); ++member) {
    std::uint64_t row;
    std::uint32_t col;
    pl.cell_of(0, member, row, col);
    EXPECT_EQ(px[(row * hw + col) * 3], 200) << "member " << member << " not red";
    EXPECT_EQ(px[(row * hw + col) * 3 + 1], 20);
  }
  fs::remove(map);
  EXPECT_FALSE(fs::exists(out));
  ASSERT_TRUE(fs::exists(out + ".partial"));
  EXPECT_EQ(r.lost_frames, static_cast<std::uint64_t>(pl.m() + 1));
  ASSERT_FALSE(r.lost_ranges.empty());
  // Every byte outside the lost ranges is right; the lost ranges are where group 0's frames are.
  const std::vector<char> got = read_file(out + ".partial");
  ASSERT_EQ(got.size(), p.payload.size());
  std::vector<bool> lost(got.size(), false);
  for (const auto& [b, e] : r.lost_ranges)
    for (std::uint64_t i = b; i < e; ++i) lost[i] = true;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!lost[i]) {
      ASSERT_EQ(got[i], p.payload[i]) << "byte " << i;
    }
  }
  fs::remove(out + ".partial");
}

// What follows a unit's reads (frames, outer code, writing, heatmap) runs one unit behind on a
// background thread by default: the same result, file and heatmap as finishing each in place,
// with a group lost in one unit and codes restored by the outer code in others.
TEST(PlateDecode, UnitsFinishedInTheBackgroundGiveTheSameResult)
{
  plate_fixture p("units", 400000, 6, 3, ecc_level::L, "200x200um");  // 6 bands
  const auto& pl = p.geo.placement;
  ASSERT_GT(pl.bands() * pl.blocks(), 2u) << "the plate must have several units";
  std::mt19937_64 rng(61);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> erased;
  p.damage([&](std::vector<std::uint64_t>& bits, std::size_t stride) {
    // Group 1 lost (M + 1 of its members), and a data frame in every unit restored.
    for (int member = 0; member <= pl.m(); ++member) {
      std::uint64_t row;
      std::uint32_t col;
      pl.cell_of(1, member, row, col);
      p.erase_cell(bits, stride, row, col);
    }
    for (std::uint64_t unit = 0; unit < pl.bands() * pl.blocks(); ++unit) {
      const std::uint64_t band = unit / pl.blocks();
      const auto block = static_cast<std::uint32_t>(unit % pl.blocks());
      const std::uint64_t row = band * pl.band_rows() + rng() % pl.band_rows();
      const std::uint32_t col = pl.block_x(block) + static_cast<std::uint32_t>(rng() % pl.block_width(block));
      if (row >= pl.rows() || pl.at(row, col).kind != plate::placement_slot::data || pl.at(row, col).group == 1) continue;
      p.erase_cell(bits, stride, row, col);
      erased.push_back({row, col});
    }
  });
  ASSERT_GE(erased.size(), 2u);
  plate::plate_decode_result r[2];
  std::vector<char> bytes[2];
  std::vector<std::uint8_t> maps[2];
  for (int background = 0; background < 2; ++background) {
    const std::string out = temp("units.out"), map = temp("units.png");
    plate::plate_decode_options o;
    o.heatmap = map;
    o.finish_units_in_background = background == 1;
    r[background] = plate::decode_plates(p.dir, out, o);
    bytes[background] = read_file(out + ".partial");
    std::uint32_t hw = 0, hh = 0;
    maps[background] = read_rgb_png(map, hw, hh);
    fs::remove(out + ".partial");
    fs::remove(map);
  }
  for (const plate::plate_decode_result& x : r) {
    EXPECT_FALSE(x.complete);
    EXPECT_EQ(x.lost_frames, static_cast<std::uint64_t>(pl.m() + 1));
    EXPECT_GE(x.recovered_by_outer, erased.size());
    EXPECT_FALSE(x.digest_read_back);
  }
  EXPECT_EQ(r[1].codes, r[0].codes);
  EXPECT_EQ(r[1].codes_unreadable, r[0].codes_unreadable);
  EXPECT_EQ(r[1].codes_clean, r[0].codes_clean);
  EXPECT_EQ(r[1].codes_corrected, r[0].codes_corrected);
  EXPECT_EQ(r[1].data_frames, r[0].data_frames);
  EXPECT_EQ(r[1].recovered_by_outer, r[0].recovered_by_outer);
  EXPECT_EQ(r[1].lost_frames, r[0].lost_frames);
  EXPECT_EQ(r[1].lost_ranges, r[0].lost_ranges);
  EXPECT_EQ(r[1].margin_histogram, r[0].margin_histogram);
  EXPECT_EQ(bytes[1], bytes[0]);
  ASSERT_FALSE(maps[0].empty());
  EXPECT_EQ(maps[1], maps[0]);
  // Every byte outside the lost ranges is the payload's.
  ASSERT_EQ(bytes[1].size(), p.payload.size());
  std::vector<bool> lost(p.payload.size(), false);
  for (const auto& [b, e] : r[1].lost_ranges)
    for (std::uint64_t i = b; i < e; ++i) lost[i] = true;
  for (std::size_t i = 0; i < p.payload.size(); ++i) {
    if (!lost[i]) {
      ASSERT_EQ(bytes[1][i], p.payload[i]) << "byte " << i;
    }
  }
  // The sweep waited for less than all of the finishing (the last unit's, at least, it waits for).
  EXPECT_GT(r[1].seconds_finishing_units, 0);
  EXPECT_GE(r[0].seconds_frames, r[0].seconds_finishing_units);
}

// The progress line: the code cells swept of the plate's, ending at all of them, on one line
// rewritten in place and ended once.
TEST(PlateDecode, ProgressLineEndsAtEveryCell)
{
  plate_fixture p("progress", 60000, 7);
  const std::string out = temp("progress.out");
  plate::plate_decode_options o;
  o.progress = true;
  ::testing::internal::CaptureStderr();
  const plate::plate_decode_result r = plate::decode_plates(p.dir, out, o);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(r.complete);
  const std::uint64_t cells = p.geo.placement.rows() * p.geo.columns;
  const std::string last = "plate 1: " + std::to_string(cells) + " of " + std::to_string(cells) + " code cells (100%)";
  const std::size_t at = err.rfind('\r');
  ASSERT_NE(at, std::string::npos) << err;
  EXPECT_EQ(err.compare(at + 1, 9 + last.size(), "qrplate: " + last), 0) << err;
  EXPECT_EQ(err.back(), '\n');
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  fs::remove(out);
}

TEST(PlateDecode, SeveralPlates)
{
  const std::string dir = temp("multi"), input = dir + ".in";
  fs::remove_all(dir);
  const std::vector<char> payload = random_bytes(150000, 5);
  std::ofstream(input, std::ios::binary).write(payload.data(), static_cast<std::streamsize>(payload.size()));
  plate::plate_encode_options o;
  o.geometry.version = 10;
  o.geometry.ecc = ecc_level::M;
  o.geometry.plate = plate::parse_plate_size("120x100um");
  const auto e = plate::encode_plates(input, dir, o);
  ASSERT_GT(e.plates, 1u);
  const std::string out = temp("multi.out");
  const plate::plate_decode_result r = plate::decode_plates(dir, out, {});
  EXPECT_EQ(r.plates, e.plates);
  EXPECT_TRUE(r.complete);
  EXPECT_TRUE(r.digest_ok);
  EXPECT_FALSE(r.digest_read_back);  // the plates' shares come in payload order
  EXPECT_EQ(read_file(out), payload);
  fs::remove_all(dir);
  fs::remove(input);
  fs::remove(out);
}

TEST(PlateDecode, TreeDigestIsCheckedAndAMismatchFails)
{
  const std::string dir = temp("tree"), input = dir + ".in";
  fs::remove_all(dir);
  const std::vector<char> payload = random_bytes(150000, 9);
  std::ofstream(input, std::ios::binary).write(payload.data(), static_cast<std::streamsize>(payload.size()));
  plate::plate_encode_options o;
  o.geometry.version = 10;
  o.geometry.ecc = ecc_level::M;
  o.hash = plate::payload_hash_kind::sha256_tree;
  plate::encode_plates(input, dir, o);
  const std::string out = temp("tree.out");
  const plate::plate_decode_result r = plate::decode_plates(dir, out, {});
  EXPECT_TRUE(r.complete);
  EXPECT_TRUE(r.digest_checked);
  EXPECT_TRUE(r.digest_ok);
  EXPECT_EQ(r.payload_hash, plate::payload_hash_kind::sha256_tree);
  EXPECT_FALSE(r.digest_read_back);
  EXPECT_EQ(read_file(out), payload);
  fs::remove(out);

  // Another root in plate.json: every frame decodes, the bytes are right, and the decode still
  // refuses them (FILE.partial only), as it would bytes that differ from the root.
  const fs::path json = fs::path(dir) / "plate.json";
  std::string text;
  {
    std::ifstream f(json);
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  const std::size_t at = text.find("\"root\": \"");
  ASSERT_NE(at, std::string::npos);
  char& digit = text[at + 9];
  digit = digit == '0' ? '1' : '0';
  std::ofstream(json) << text;
  const plate::plate_decode_result bad = plate::decode_plates(dir, out, {});
  EXPECT_EQ(bad.lost_frames, 0u);
  EXPECT_TRUE(bad.digest_checked);
  EXPECT_FALSE(bad.digest_ok);
  EXPECT_FALSE(bad.complete);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(read_file(out + ".partial"), payload);
  fs::remove(out + ".partial");
  fs::remove_all(dir);
  fs::remove(input);
}

TEST(PlateDecode, NotAPlateIsAnError)
{
  EXPECT_THROW(plate::decode_plates("/nonexistent-plate-dir", temp("x.out"), {}), qrplate::io_error);
}

}  // namespace
