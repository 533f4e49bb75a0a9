#include "scan/synthetic_scan.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include <nlohmann/json.hpp>

#include "qrplate/error.hpp"
#include "qrplate/plate/encode_plate.hpp"
#include "qrplate/plate/frame.hpp"
#include "qrplate/plate/manifest.hpp"
#include "qrplate/sim/simulate.hpp"
#include "sim/scan_io.hpp"

namespace qrplate::scan {

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p)
{
  std::ifstream in(p, std::ios::binary);
  if (!in) throw io_error("cannot read " + p.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

std::uint64_t synthetic_scan_payload(const synthetic_scan_options& options)
{
  std::uint64_t bytes = options.payload_bytes;
  if (options.plate) {
    plate::geometry_options g;
    g.version = options.version;
    g.ecc = options.ecc;
    g.plate = options.plate;
    const std::uint64_t holds =
        plate::plate_capacity_frames(g) * static_cast<std::uint64_t>(plate::frame_data_bytes(options.version, options.ecc));
    if (holds == 0) throw invalid_argument("synthetic scan: the plate is too small for one group of codes");
    if (bytes == 0) bytes = holds;
    if (bytes > holds)
      throw invalid_argument("synthetic scan: " + std::to_string(bytes) + " bytes do not fit one plate of that size (it "
                             "holds " + std::to_string(holds) + ")");
  }
  if (bytes == 0) throw invalid_argument("synthetic scan: the payload must hold at least one byte");
  return bytes;
}

synthetic_scan make_synthetic_scan(const std::string& dir, const synthetic_scan_options& options)
{
  synthetic_scan s;
  s.payload_bytes = synthetic_scan_payload(options);
  plate::plate_encode_options eo;
  eo.geometry.version = options.version;
  eo.geometry.ecc = options.ecc;
  eo.geometry.plate = options.plate;
  const fs::path root(dir);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw io_error("cannot create " + root.string() + ": " + ec.message());
  s.payload_file = (root / "payload.bin").string();
  s.plate_dir = (root / "plate").string();
  s.scan_dir = (root / "scan").string();
  {
    std::vector<char> payload(s.payload_bytes);
    std::mt19937_64 rng(options.seed);
    for (char& b : payload) b = static_cast<char>(rng());
    std::ofstream out(s.payload_file, std::ios::binary);
    out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
    if (!out.flush()) throw io_error("cannot write " + s.payload_file);
  }

  eo.plate_id = 0x5CA40000ull + options.seed;  // a fixed plate tag: the same plate every time
  eo.threads = options.threads;
  plate::encode_plates(s.payload_file, s.plate_dir, eo);
  const plate::plate_geometry g =
      plate::geometry_of(plate::manifest_from_json(read_text(fs::path(s.plate_dir) / "plate.json")));
  s.plate_width_um = static_cast<double>(g.width) * g.module_nm / 1000;
  s.plate_height_um = static_cast<double>(g.height) * g.module_nm / 1000;
  s.code_columns = g.columns;
  if (options.max_scan_bytes != 0) {
    // The tile grid covers the plate and reaches past its edges (overscan, whole tiles), and
    // neighbours overlap by a tenth on each axis: about (side + a tile) per axis, x 1.25. A
    // byte a sample, two for 16-bit (deflate saves little on noisy scans).
    const double tile = options.tile_px;
    const double pixels = (static_cast<double>(g.width) * options.px_per_module + tile) *
                          (static_cast<double>(g.height) * options.px_per_module + tile) * 1.25;
    const double bytes = pixels * (options.raw8 ? 1 : 2);
    if (bytes > static_cast<double>(options.max_scan_bytes))
      throw invalid_argument("synthetic scan: its tiles would take about " +
                             std::to_string(static_cast<long long>(bytes / 1e6)) + " MB, more than the " +
                             std::to_string(options.max_scan_bytes / 1000000) +
                             " MB allowed (a smaller payload or fewer pixels per module)");
  }

  sim::simulate_options so = sim::preset("clean");
  so.px_per_module = options.px_per_module;
  so.tile_px = options.tile_px;
  so.seed = options.seed;
  so.threads = options.threads;
  if (options.raw8) so.sem.bits = 8;
  sim::simulate(s.plate_dir, s.scan_dir, so);

  for (std::uint64_t row = 0; row < g.rows; ++row)
    for (std::uint32_t col = 0; col < g.columns; ++col)
      s.code_cells += g.placement.at(row, col).kind != plate::placement_slot::empty;

  const nlohmann::json truth = nlohmann::json::parse(read_text(fs::path(s.scan_dir) / "truth.json"));
  for (const auto& t : truth.at("tiles")) {
    if (t.at("missing").get<bool>()) continue;
    s.tile_files.push_back((fs::path(s.scan_dir) / t.at("file").get<std::string>()).string());
    const sim::gray_image img = sim::read_gray_image(s.tile_files.back());
    if (options.raw8) sim::write_gray_tiff(s.tile_files.back(), img, /*deflate=*/false);
    s.scan_pixels += img.pixels.size();
    s.scan_file_bytes += fs::file_size(s.tile_files.back());
  }
  return s;
}

}  // namespace qrplate::scan
