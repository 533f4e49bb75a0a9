// `qrplate simulate` end to end: a small plate is scanned; the scans are checked against what
// the simulator says it did (truth.json) and read by an independent decoder (zxing-cpp).
#include <gtest/gtest.h>
#include <unistd.h>

#define ZX_USE_UTF8 1  // zxing-cpp 1.4: opt in to the std::string API now, silencing its notice
#include <ZXing/ReadBarcode.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qrplate/error.hpp"
#include "qrplate/plate/decode_plate.hpp"
#include "qrplate/plate/encode_plate.hpp"
#include "qrplate/plate/frame.hpp"
#include "qrplate/plate/manifest.hpp"
#include "qrplate/sim/simulate.hpp"
#include "scan/synthetic_scan.hpp"
#include "sim/scan_io.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qrplate;
constexpr double kPi = 3.14159265358979323846;

std::string temp_dir(const std::string& name)
{
  return ::testing::TempDir() + "qrplate_sim_test_" + std::to_string(::getpid()) + "_" + name;
}

nlohmann::json read_json(const fs::path& p)
{
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

// A small plate (v5-M codes, ~40 of them) shared by the tests.
class Simulate : public ::testing::Test {
 protected:
  static void SetUpTestSuite()
  {
    plate_dir_ = temp_dir("plate");
    fs::remove_all(plate_dir_);
    const std::string input = temp_dir("payload.bin");
    std::mt19937_64 rng(5);
    std::vector<char> payload(2000);
    for (char& c : payload) c = static_cast<char>(rng());
    std::ofstream(input, std::ios::binary).write(payload.data(), static_cast<std::streamsize>(payload.size()));
    plate::plate_encode_options o;
    o.geometry.version = 5;
    o.geometry.ecc = ecc_level::M;
    o.plate_id = 0x1234;
    plate::encode_plates(input, plate_dir_, o);
    fs::remove(input);
  }
  static void TearDownTestSuite() { fs::remove_all(plate_dir_); }

  static sim::simulate_options clean(double px_per_module)
  {
    sim::simulate_options o = sim::preset("clean");
    o.px_per_module = px_per_module;
    o.tile_px = 512;
    o.threads = 2;
    return o;
  }

  static std::string plate_dir_;
};
std::string Simulate::plate_dir_;

TEST_F(Simulate, ScanSetFilesAndTruthAgree)
{
  const std::string out = temp_dir("scan_a");
  fs::remove_all(out);
  sim::simulate_options o = clean(3);
  o.seed = 11;
  const sim::simulate_result r = sim::simulate(plate_dir_, out, o);
  const auto scan = read_json(fs::path(out) / "scan.json");
  const auto truth = read_json(fs::path(out) / "truth.json");
  EXPECT_GT(r.tiles, 1u);
  EXPECT_DOUBLE_EQ(scan["pixel_nm"].get<double>(), 49.0 / 3);
  ASSERT_EQ(scan["tiles"].size(), r.tiles);
  ASSERT_EQ(truth["tiles"].size(), r.tiles + r.missing);
  for (std::size_t i = 0; i < scan["tiles"].size(); ++i) {
    const auto& s = scan["tiles"][i];
    const auto& t = truth["tiles"][i];
    EXPECT_EQ(s["file"], t["file"]);
    EXPECT_DOUBLE_EQ(s["x_nm"].get<double>(), t["nominal_x_nm"].get<double>());  // scan.json: nominal only
    // the clean preset's stage error is 200 nm: 6 sigma
    EXPECT_LT(std::abs(t["x_nm"].get<double>() - t["nominal_x_nm"].get<double>()), 1200.0);
    EXPECT_LE(std::abs(t["rotation_deg"].get<double>()), 0.2 + 1e-12);
    const sim::gray_image img = sim::read_gray_image((fs::path(out) / s["file"].get<std::string>()).string());
    EXPECT_EQ(img.width, 512u);
    EXPECT_EQ(img.bits, 16);
  }
  EXPECT_TRUE(fs::exists(fs::path(out) / "contact_sheet.png"));
  fs::remove_all(out);
}

TEST_F(Simulate, SameSeedSameScansOtherSeedOtherScans)
{
  sim::simulate_options o = clean(2.5);
  const std::string a = temp_dir("seed_a"), b = temp_dir("seed_b"), c = temp_dir("seed_c");
  for (const auto& d : {a, b, c}) fs::remove_all(d);
  o.seed = 3;
  sim::simulate(plate_dir_, a, o);
  o.threads = 1;  // a different split of the work must not matter
  sim::simulate(plate_dir_, b, o);
  o.seed = 4;
  sim::simulate(plate_dir_, c, o);
  const auto tile = read_json(fs::path(a) / "scan.json")["tiles"][0]["file"].get<std::string>();
  const auto ia = sim::read_gray_image((fs::path(a) / tile).string());
  const auto ib = sim::read_gray_image((fs::path(b) / tile).string());
  const auto ic = sim::read_gray_image((fs::path(c) / tile).string());
  EXPECT_EQ(ia.pixels, ib.pixels);
  EXPECT_NE(ia.pixels, ic.pixels);
  EXPECT_EQ(read_json(fs::path(a) / "truth.json"), read_json(fs::path(b) / "truth.json"));
  for (const auto& d : {a, b, c}) fs::remove_all(d);
}

// Crops each code cell out of the tiles (where the truth pose puts it wholly inside a tile) and
// asks zxing-cpp to read it: the bytes must be the frame the plate layout puts in that cell.
TEST_F(Simulate, CleanScansReadBackWithZxing)
{
  const std::string out = temp_dir("scan_zx");
  fs::remove_all(out);
  sim::simulate_options o = clean(4);
  o.seed = 21;
  sim::simulate(plate_dir_, out, o);
  std::ifstream pj(fs::path(plate_dir_) / "plate.json");
  const std::string text((std::istreambuf_iterator<char>(pj)), std::istreambuf_iterator<char>());
  const plate::manifest man = plate::manifest_from_json(text);
  const plate::plate_geometry g = plate::geometry_of(man);
  const auto truth = read_json(fs::path(out) / "truth.json");
  const double px = truth["pixel_nm"].get<double>();
  int read = 0, tried = 0;
  std::vector<bool> seen(static_cast<std::size_t>(g.columns * g.rows), false);
  for (const auto& t : truth["tiles"]) {
    if (t["missing"].get<bool>()) continue;
    const sim::gray_image img = sim::read_gray_image((fs::path(out) / t["file"].get<std::string>()).string());
    const double tx = t["x_nm"], ty = t["y_nm"], rot = t["rotation_deg"].get<double>() * kPi / 180, sc = t["scale"];
    for (std::uint64_t row = 0; row < g.rows; ++row)
      for (std::uint32_t col = 0; col < g.columns; ++col) {
        const plate::placement_slot slot = g.placement.at(row, col);
        if (slot.kind == plate::placement_slot::empty || seen[row * g.columns + col]) continue;
        // The cell with a quiet zone of 3 modules, in tile pixels (inverse of the pose).
        const double margin = 3 * man.module_nm;
        const double x0 = static_cast<double>(g.cell_x(col)) * man.module_nm - margin;
        const double y0 = static_cast<double>(g.cell_y(row)) * man.module_nm - margin;
        const double side = g.code_size * man.module_nm + 2 * margin;
        double minu = 1e300, maxu = -1e300, minv = 1e300, maxv = -1e300;
        for (double dx : {0.0, side})
          for (double dy : {0.0, side}) {
            const double X = x0 + dx - tx, Y = y0 + dy - ty;
            const double u = (X * std::cos(rot) + Y * std::sin(rot)) / (px * sc);
            const double v = (-X * std::sin(rot) + Y * std::cos(rot)) / (px * sc);
            minu = std::min(minu, u), maxu = std::max(maxu, u), minv = std::min(minv, v), maxv = std::max(maxv, v);
          }
        if (minu < 0 || minv < 0 || maxu >= img.width || maxv >= img.height) continue;
        ++tried;
        const auto u0 = static_cast<int>(minu), v0 = static_cast<int>(minv);
        const int w = static_cast<int>(maxu) - u0 + 1, h = static_cast<int>(maxv) - v0 + 1;
        std::vector<std::uint8_t> crop(static_cast<std::size_t>(w * h));
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x)
            crop[static_cast<std::size_t>(y * w + x)] = static_cast<std::uint8_t>(img.pixels[(v0 + y) * img.width + (u0 + x)] >> 8);
        ZXing::DecodeHints hints;
        hints.setFormats(ZXing::BarcodeFormat::QRCode);
        hints.setTryHarder(true);
        const ZXing::Result res = ZXing::ReadBarcode({crop.data(), w, h, ZXing::ImageFormat::Lum}, hints);
        if (!res.isValid()) continue;
        const auto& bytes = res.bytes();
        const plate::parsed_frame f = plate::parse_frame(bytes.data(), bytes.size());
        ASSERT_EQ(f.status, plate::frame_status::ok) << "cell " << row << "," << col;
        EXPECT_EQ(f.header.index, slot.index) << "cell " << row << "," << col;
        EXPECT_EQ(f.header.kind == plate::frame_kind::data, slot.kind == plate::placement_slot::data);
        seen[row * g.columns + col] = true;
        ++read;
      }
  }
  std::printf("[ zxing    ] %d of %d code cells cropped from clean scans read back\n", read, tried);
  ASSERT_GT(tried, 0) << "no code cell lies wholly inside a tile: the test plate or tiles are too small";
  EXPECT_GE(read, tried * 9 / 10) << read << " of " << tried << " crops read";
  fs::remove_all(out);
}

TEST_F(Simulate, DefectsAreWhereTruthSaysAndDestroyCells)
{
  const std::string out = temp_dir("scan_dust");
  fs::remove_all(out);
  sim::simulate_options o = clean(3);
  o.seed = 8;
  o.dust_per_mm2 = 4e4;  // a few particles on this tiny plate
  o.dust_diameter_um = 1.0;
  o.scratches_per_mm2 = 1e3;
  const sim::simulate_result r = sim::simulate(plate_dir_, out, o);
  const auto truth = read_json(fs::path(out) / "truth.json");
  ASSERT_GT(r.dust, 0u);
  // A cell under two defects is destroyed once: the count is of distinct cells, so it can never
  // exceed the plate's (a dense scratch field once reported 4 million on a plate of 1,023).
  std::set<std::pair<std::int64_t, std::int64_t>> cells;
  std::uint64_t listed = 0;
  for (const auto& d : truth["defects"])
    for (const auto& c : d["destroyed_cells"]) {
      cells.insert({c["row"].get<std::int64_t>(), c["column"].get<std::int64_t>()});
      ++listed;
    }
  EXPECT_EQ(cells.size(), r.destroyed_cells);
  EXPECT_GT(listed, cells.size()) << "no cell under two defects: the distinct count goes untested (seed 8)";
  // The centre of each dust particle is bright (dust level) in every tile that covers it.
  const double px = truth["pixel_nm"].get<double>();
  int checked = 0;
  for (const auto& d : truth["defects"]) {
    if (d["type"] != "dust") continue;
    for (const auto& t : truth["tiles"]) {
      if (t["missing"].get<bool>()) continue;
      const double rot = t["rotation_deg"].get<double>() * kPi / 180, sc = t["scale"];
      const double X = d["x_nm"].get<double>() - t["x_nm"].get<double>(), Y = d["y_nm"].get<double>() - t["y_nm"].get<double>();
      const double u = (X * std::cos(rot) + Y * std::sin(rot)) / (px * sc), v = (-X * std::sin(rot) + Y * std::cos(rot)) / (px * sc);
      if (u < 5 || v < 5 || u > 507 || v > 507) continue;
      const sim::gray_image img = sim::read_gray_image((fs::path(out) / t["file"].get<std::string>()).string());
      const auto value = img.pixels[static_cast<std::size_t>(v) * img.width + static_cast<std::size_t>(u)];
      EXPECT_GT(value, 0.75 * 65535) << "dust at " << d["x_nm"] << "," << d["y_nm"];
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
  fs::remove_all(out);
}

TEST_F(Simulate, BadParametersAreRefused)
{
  const std::string out = temp_dir("scan_bad");
  fs::remove_all(out);
  sim::simulate_options o = clean(3);
  o.sem.sigma_nm = -1;
  EXPECT_THROW(sim::simulate(plate_dir_, out, o), qrplate::invalid_argument);
  o = clean(3);
  o.overlap = 1.0;
  EXPECT_THROW(sim::simulate(plate_dir_, out, o), qrplate::invalid_argument);
  o = clean(3);
  o.pixel_nm = 0;
  o.px_per_module = 0;
  EXPECT_THROW(sim::simulate(plate_dir_, out, o), qrplate::invalid_argument);
  EXPECT_THROW(sim::preset("dirty"), qrplate::invalid_argument);
  EXPECT_THROW(sim::parse_region("1,2,3"), qrplate::invalid_argument);
  EXPECT_THROW(sim::simulate("/nonexistent-plate", out, clean(3)), qrplate::io_error);
  EXPECT_FALSE(fs::exists(out));
}

// Each range error names its own member, so `qrplate simulate` can name the option; values that
// once reached the allocator (or a std::terminate) are refused before anything is written.
TEST_F(Simulate, RangeErrorsNameTheirParameter)
{
  const std::string out = temp_dir("scan_range");
  fs::remove_all(out);
  auto refused = [&](auto change) -> std::string {
    sim::simulate_options o = clean(3);
    change(o);
    try {
      sim::simulate(plate_dir_, out, o);
    } catch (const sim::parameter_error& e) {
      return e.name();
    }
    return "(not refused)";
  };
  using opts = sim::simulate_options;
  EXPECT_EQ(refused([](opts& o) { o.missing_tile_rate = 1; }), "missing_tile_rate");
  EXPECT_EQ(refused([](opts& o) { o.stage_sigma_nm = -5; }), "stage_sigma_nm");
  EXPECT_EQ(refused([](opts& o) { o.rotation_max_deg = 90; }), "rotation_max_deg");
  EXPECT_EQ(refused([](opts& o) { o.scale_max = 0.2; }), "scale_max");
  EXPECT_EQ(refused([](opts& o) { o.dust_per_mm2 = 1e12; }), "dust_per_mm2");
  EXPECT_EQ(refused([](opts& o) { o.scratches_per_mm2 = 1e9; }), "scratches_per_mm2");
  EXPECT_EQ(refused([](opts& o) { o.threads = 4294967295u; }), "threads");
  EXPECT_EQ(refused([](opts& o) { o.sem.sigma_nm = 1e9; }), "sigma_nm");
  // Within their own ranges, too far together: 10 um/s over a 268 s tile (1000 us dwell).
  EXPECT_EQ(refused([](opts& o) {
              o.sem.drift_nm_per_s = 1e4;
              o.sem.dwell_us = 1000;
            }),
            "drift_nm_per_s");
  EXPECT_FALSE(fs::exists(out));
}

// A set interrupt flag stops the tiles and leaves nothing behind, neither the output nor its
// staging directory.
TEST_F(Simulate, InterruptLeavesNothing)
{
  const std::string out = temp_dir("scan_interrupted");
  fs::remove_all(out);
  std::atomic<int> flag{15};
  sim::simulate_options o = clean(3);
  o.interrupt = &flag;
  try {
    sim::simulate(plate_dir_, out, o);
    ADD_FAILURE() << "an interrupted simulate returned";
  } catch (const qrplate::interrupted& e) {
    EXPECT_EQ(e.signal, 15);
  }
  EXPECT_FALSE(fs::exists(out));
  for (const auto& entry : fs::directory_iterator(fs::path(out).parent_path()))
    EXPECT_EQ(entry.path().filename().string().find("scan_interrupted.partial-"), std::string::npos) << entry.path();
}

}  // namespace

namespace {

TEST_F(Simulate, RegionAndEightBitTiles)
{
  const std::string out = temp_dir("scan_region");
  fs::remove_all(out);
  const auto plate_json = read_json(fs::path(plate_dir_) / "plate.json");
  const auto pw = plate_json["size_modules"]["width"].get<std::uint64_t>();
  const auto ph = plate_json["size_modules"]["height"].get<std::uint64_t>();
  ASSERT_GT(pw, 100u);
  ASSERT_GT(ph, 60u);
  const std::uint64_t rx = 30, ry = 20, rw = pw - 60, rh = ph - 40;  // inside the plate
  const auto nm = [](std::uint64_t modules) { return static_cast<double>(modules) * 49.0; };
  sim::simulate_options o = clean(3);
  o.seed = 5;
  o.sem.bits = 8;
  o.tile_px = 256;
  o.overscan_nm = 0;  // the grid starts exactly at the region's corner
  o.region = sim::parse_region(std::to_string(rx) + "," + std::to_string(ry) + "," + std::to_string(rw) + "x" +
                               std::to_string(rh));
  const sim::simulate_result r = sim::simulate(plate_dir_, out, o);
  const auto scan = read_json(fs::path(out) / "scan.json");
  const double px = scan["pixel_nm"].get<double>();
  // Nominal tile corners start at the region's corner and step by 90% of a tile.
  ASSERT_GT(r.tiles, 0u);
  EXPECT_DOUBLE_EQ(scan["tiles"][0]["x_nm"].get<double>(), nm(rx));
  EXPECT_DOUBLE_EQ(scan["tiles"][0]["y_nm"].get<double>(), nm(ry));
  for (const auto& t : scan["tiles"]) {
    EXPECT_GE(t["x_nm"].get<double>(), nm(rx));
    EXPECT_LT(t["x_nm"].get<double>(), nm(rx + rw));  // every tile starts inside the region
    EXPECT_LT(t["y_nm"].get<double>(), nm(ry + rh));
  }
  const double side = 256 * px, step = side * 0.9;
  const auto count = [&](double extent) {
    return extent <= side ? std::size_t{1} : static_cast<std::size_t>(std::ceil((extent - side) / step) + 1);
  };
  EXPECT_EQ(r.tiles + r.missing, count(nm(rw)) * count(nm(rh)));
  const sim::gray_image img =
      sim::read_gray_image((fs::path(out) / scan["tiles"][0]["file"].get<std::string>()).string());
  EXPECT_EQ(img.bits, 8);
  std::uint16_t top = 0;
  for (auto v : img.pixels) top = std::max(top, v);
  EXPECT_LE(top, 255);
  EXPECT_GT(top, 100);  // not blank
  fs::remove_all(out);
}

// scan::make_synthetic_scan (the scan sets `qrplate bench --scan` and bench_decode decode): its
// raw 8-bit tiles are what it says, its counts are the files', and the scan decodes to its payload.
scan::synthetic_scan_options small_synthetic_scan()
{
  scan::synthetic_scan_options o;
  o.version = 5;
  o.ecc = ecc_level::M;
  o.payload_bytes = 3000;
  o.tile_px = 512;
  o.threads = 2;
  return o;
}

TEST(SyntheticScan, RawEightBitTilesDecodeToThePayload)
{
  const std::string dir = temp_dir("synthetic");
  fs::remove_all(dir);
  scan::synthetic_scan_options o = small_synthetic_scan();
  o.max_scan_bytes = 40u << 20;  // room enough: refused only when over
  const scan::synthetic_scan s = scan::make_synthetic_scan(dir, o);
  ASSERT_FALSE(s.tile_files.empty());
  std::uint64_t pixels = 0, file_bytes = 0;
  for (const std::string& f : s.tile_files) {
    const sim::gray_image img = sim::read_gray_image(f);
    EXPECT_EQ(img.bits, 8) << f;
    pixels += img.pixels.size();
    // Uncompressed: every sample's byte is in the file (the simulator's deflate makes them smaller).
    EXPECT_GE(fs::file_size(f), img.pixels.size()) << f;
    file_bytes += fs::file_size(f);
  }
  EXPECT_EQ(s.scan_pixels, pixels);
  EXPECT_EQ(s.scan_file_bytes, file_bytes);
  EXPECT_EQ(fs::file_size(s.payload_file), 3000u);

  plate::plate_decode_options d;
  d.threads = 2;
  const std::string out = dir + "/restored.bin";
  const plate::plate_decode_result r = plate::decode_plates(s.scan_dir, out, d);
  EXPECT_TRUE(r.complete);
  std::ifstream a(s.payload_file, std::ios::binary), b(out, std::ios::binary);
  const std::string want((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
  const std::string got((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, want);
  // Frames and header codes: every code cell the plate holds, and no more.
  EXPECT_GE(s.code_cells, r.codes);
  EXPECT_LE(s.code_cells, r.codes + 16);
  // The byte limit's estimate is not below what the tiles took: a scan of exactly that size is
  // refused (before simulating).
  o.max_scan_bytes = s.scan_file_bytes;
  EXPECT_THROW(scan::make_synthetic_scan(dir + "/again", o), invalid_argument);
  fs::remove_all(dir);
}

TEST(SyntheticScan, RefusesAScanOverItsByteLimitBeforeSimulating)
{
  const std::string dir = temp_dir("synthetic_limit");
  fs::remove_all(dir);
  scan::synthetic_scan_options o = small_synthetic_scan();
  o.max_scan_bytes = 1u << 20;  // the scan above takes several MB
  EXPECT_THROW(scan::make_synthetic_scan(dir, o), invalid_argument);
  EXPECT_FALSE(fs::exists(dir + "/scan"));
  fs::remove_all(dir);
}

}  // namespace
