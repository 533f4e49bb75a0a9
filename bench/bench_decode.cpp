// Decoding scan sets (issue #6): qrplate's scan-set reader beside zxing-cpp and ZBar, on one core,
// in one binary and one run, on the same simulated SEM images.
//
// Per case (v10-M or v40-L codes, 2, 3 or 4 px/module) the setup, done once and shared by the
// rows of the case: a plate of random data (~110 v10-M codes or ~30 v40-L codes, plus 8 header
// codes), encoded with qrplate::plate::encode_plates in a temporary directory; a scan set of it
// simulated with the "clean" preset (1024 px tiles, 10% overlap, stage error, rotation
// +-0.2 deg, scale +-0.2%; 16-bit deflate TIFF tiles + scan.json + truth.json).
//
//   BM_decode_scan/v40-L/px:4/qrplate            plate::decode_plates(scan set) with threads = 1:
//                                                reading and inflating the TIFF tiles (from the
//                                                page cache), registering every tile on the code
//                                                lattice, refining, sampling and decoding every
//                                                code, the outer code and the SHA-256; an
//                                                incomplete payload is an error
//   BM_decode_scan/v40-L/px:4/qrplate_cuda       the same with --backend cuda (registration's pixel
//                                                passes, anchor search and reads on the GPU; wall
//                                                clock; skipped without a CUDA device)
//   BM_decode_scan/v40-L/px:4/qrplate_raw_tiles  the first row on a copy of the scan set with
//                                                uncompressed TIFF tiles (no inflate)
//   BM_decode_scan/v40-L/px:4/read_tiles         only sim::read_gray_image of every (deflate)
//                                                tile: the file-reading share of the first row;
//                                                its codes/s (code cells per pass) is the ceiling
//                                                file reading alone puts on any decoder
//   BM_decode_scan/v40-L/px:4/read_raw_tiles     the same for the uncompressed copy
//   BM_decode_scan/v40-L/px:4/zxing_pure_crops   zxing-cpp 1.4 ReadBarcode (QRCode, isPure,
//                                                no tryHarder / tryRotate) on pre-cut 8-bit crops:
//                                                one axis-aligned crop per code cell that lies
//                                                wholly inside some tile (code + 2-module quiet
//                                                zone, placed from the TRUE tile pose in
//                                                truth.json). Only the ReadBarcode calls are
//                                                timed: zxing-cpp is spared finding, registering
//                                                and cutting the codes, and the file reading
//   BM_decode_scan/v40-L/px:4/zbar_tiles         ZBar 0.23 zbar_scan_image on every whole tile,
//                                                8-bit (tiles in memory; only the scan is timed)
//
// Counters: items_per_second is codes/s (codes decoded: ours, the code cells whose frame came
// back; zxing-cpp, crops read; ZBar, QR symbols found), scan_px_per_s is scan pixels/s (all
// pixels of all tiles; for the zxing-cpp row, the pixels of its crops). codes, crops, tiles:
// per pass. Every row runs on one thread, and the rates (but the cuda row's, wall clock) are per
// CPU second of the whole process (MeasureProcessCPUTime), i.e. per core: on a shared machine the
// wall-clock time ("Time") also counts the time other work held the core.
//
// A whole machine on a larger plate (400 kB of v10-M: ~2,100 codes, ~120 tiles of the "clean"
// preset at 3 px/module), wall clock, as `qrplate decode` runs by default (every core, tile files
// read and decoded ahead by background threads):
//   BM_decode_plate/v10-M/px:3/kB:400/deflate16/qrplate_all_cores       on the CPU
//   BM_decode_plate/v10-M/px:3/kB:400/deflate16/qrplate_cuda_all_cores  with --backend cuda (after
//                                                   one untimed decode: CUDA's start-up)
//   BM_decode_plate/v10-M/px:3/kB:400/deflate16/read_tiles_all_cores    only reading the tile
//                                                   files, on every core: their ceiling
//   BM_decode_plate/v10-M/px:3/kB:400/raw8/...      the same scan simulated with 8-bit samples,
//                                                   tiles uncompressed (the PCIe target is
//                                                   for 8-bit tiles)
//   BM_decode_plate/v10-M/px:3/kB:400/raw8_2048px/... the same in tiles of 2,048 px (4 Mpixel):
//                                                   the host's work per pixel falls with larger
//                                                   tiles (docs/PERFORMANCE.md, "The host's share
//                                                   of a GPU decode, second pass"); no file-reading
//                                                   row (the files are raw8's, 4x larger)
//
// Registration alone, on the tiles of those raw8 scans (read into memory first, with their bytes
// kept as the GPU decode keeps them), one thread, polarity known (as after a scan's first tiles):
//   BM_register_tiles/v10-M/px:3/raw8_1024px/cpu     scan::register_tile on the CPU
//   BM_register_tiles/v10-M/px:3/raw8_1024px/cuda    with registration_options::cuda (the passes,
//                                                   vote, keep, contrast and confirm on the GPU)
//   .../raw8_2048px/{cpu,cuda}                       the same in 2,048-px tiles
// Counters: host_cpu_ms_per_Mpx, the process's CPU time per Mpixel registered (with a GPU: the
// host's share, including CUDA's spinning while it waits, the default for one context), and
// wall_ms_per_tile; what a decode's host threads must give per tile, beside the GPU.
//
// Google Benchmark appends "/iterations:N" or "/min_time:1.000" and "/process_time" or
// "/real_time"; filter on the prefix. 8-bit images for the peers are the 16-bit tiles' top bytes.

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
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "qrplate/encode.hpp"
#include "qrplate/plate/decode_plate.hpp"
#include "qrplate/plate/encode_plate.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"
#include "qrplate/plate/outer_code.hpp"
#include "qrplate/qr.hpp"
#include "qrplate/sim/simulate.hpp"
#include "cuda/narrow_samples.hpp"
#include "scan/scan_set.hpp"
#include "scan/synthetic_scan.hpp"
#include "scan/tile_registration.hpp"
#include "stitch_bench_patch.hpp"
#include "sim/scan_io.hpp"
#include "util/parallel_for.hpp"

namespace {

namespace fs = std::filesystem;
using qrplate::ecc_level;

constexpr double pi = 3.14159265358979323846;
constexpr std::uint32_t tile_px = 1024;
constexpr double crop_quiet_modules = 2.0;  // quiet zone around each zxing-cpp crop
constexpr benchmark::IterationCount decode_iterations = 3;  // one pass takes 0.5-3 s here
constexpr double peer_min_time_s = 1.0;

struct scan_case {
  int version;
  ecc_level ecc;
  int px_per_module;
};

// Payload per code shape: ~110 v10-M codes, ~30 v40-L codes (the plate also holds 8 header codes).
std::size_t payload_bytes(int version) { return version == 10 ? 20000 : 80000; }

std::string case_name(const scan_case& c)
{
  return "v" + std::to_string(c.version) + "-" + qrplate::to_string(c.ecc) + "/px:" + std::to_string(c.px_per_module);
}

// The temporary directory of the whole run, removed at exit.
struct work_root {
  fs::path path;
  work_root() : path(fs::temp_directory_path() / ("qrplate_bench_decode_" + std::to_string(::getpid())))
  {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~work_root()
  {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  work_root(const work_root&) = delete;
  work_root& operator=(const work_root&) = delete;
};

const fs::path& root()
{
  static const work_root r;
  return r.path;
}

std::string read_text(const fs::path& p)
{
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + p.string());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// One plate per code shape, shared by its px/module cases.
std::string plate_for(const scan_case& c)
{
  static std::map<int, std::string> plates;
  auto it = plates.find(c.version);
  if (it != plates.end()) return it->second;
  const std::string name = "v" + std::to_string(c.version) + "-" + qrplate::to_string(c.ecc);
  const fs::path input = root() / (name + ".bin");
  std::vector<char> payload(payload_bytes(c.version));
  std::mt19937_64 rng(0xDEC0DEull + static_cast<std::uint64_t>(c.version));
  for (char& b : payload) b = static_cast<char>(rng());
  std::ofstream(input, std::ios::binary).write(payload.data(), static_cast<std::streamsize>(payload.size()));
  qrplate::plate::plate_encode_options o;
  o.geometry.version = c.version;
  o.geometry.ecc = c.ecc;
  o.plate_id = 0xBE7C4ull + static_cast<std::uint64_t>(c.version);
  const std::string dir = (root() / ("plate_" + name)).string();
  qrplate::plate::encode_plates(input.string(), dir, o);
  fs::remove(input);
  return plates[c.version] = dir;
}

struct image8 {
  std::vector<std::uint8_t> pixels;
  int width = 0, height = 0;
};

image8 to_8bit(const qrplate::sim::gray_image& img)
{
  image8 out;
  out.width = static_cast<int>(img.width);
  out.height = static_cast<int>(img.height);
  out.pixels.resize(img.pixels.size());
  const int shift = img.bits == 16 ? 8 : 0;
  for (std::size_t i = 0; i < img.pixels.size(); ++i) out.pixels[i] = static_cast<std::uint8_t>(img.pixels[i] >> shift);
  return out;
}

struct prepared_case {
  std::string error;  // setup failed: why (every row of the case is skipped with it)
  std::string scan_dir, raw_scan_dir, out_file;
  std::vector<std::string> tile_files, raw_tile_files;  // of scan_dir, raw_scan_dir
  std::uint64_t scan_pixels = 0;
  std::uint64_t code_cells = 0;  // cells holding a frame (data or parity)
  std::vector<image8> tiles;     // 8-bit, for ZBar
  std::vector<image8> crops;     // 8-bit, one per code cell wholly inside a tile, for zxing-cpp
  std::uint64_t crop_pixels = 0;
};

// Cuts, for every code cell wholly inside `tile` (and not cut before), the axis-aligned box
// around the code and its quiet zone under the tile's true pose.
void cut_crops(const image8& tile, const nlohmann::json& pose, double pixel_nm, const qrplate::plate::plate_geometry& g,
               std::vector<bool>& cut, prepared_case& pc)
{
  const double tx = pose.at("x_nm").get<double>(), ty = pose.at("y_nm").get<double>();
  const double r = pose.at("rotation_deg").get<double>() * pi / 180, sc = pose.at("scale").get<double>();
  const double cr = std::cos(r), sr = std::sin(r), unit = sc * pixel_nm;
  const double margin = crop_quiet_modules * g.module_nm;
  const double side = g.code_size * g.module_nm + 2 * margin;
  for (std::uint64_t row = 0; row < g.rows; ++row)
    for (std::uint32_t col = 0; col < g.columns; ++col) {
      const std::size_t cell = static_cast<std::size_t>(row * g.columns + col);
      if (cut[cell] || g.placement.at(row, col).kind == qrplate::plate::placement_slot::empty) continue;
      const double x0 = static_cast<double>(g.cell_x(col)) * g.module_nm - margin;
      const double y0 = static_cast<double>(g.cell_y(row)) * g.module_nm - margin;
      double minu = 1e300, maxu = -1e300, minv = 1e300, maxv = -1e300;
      for (const double dx : {0.0, side})
        for (const double dy : {0.0, side}) {
          const double X = x0 + dx - tx, Y = y0 + dy - ty;
          const double u = (X * cr + Y * sr) / unit, v = (-X * sr + Y * cr) / unit;
          minu = std::min(minu, u), maxu = std::max(maxu, u), minv = std::min(minv, v), maxv = std::max(maxv, v);
        }
      const double u0 = std::floor(minu), v0 = std::floor(minv), u1 = std::ceil(maxu), v1 = std::ceil(maxv);
      if (u0 < 0 || v0 < 0 || u1 > tile.width || v1 > tile.height) continue;
      image8 crop;
      crop.width = static_cast<int>(u1 - u0);
      crop.height = static_cast<int>(v1 - v0);
      crop.pixels.resize(static_cast<std::size_t>(crop.width) * static_cast<std::size_t>(crop.height));
      const auto cu = static_cast<std::size_t>(u0), cv = static_cast<std::size_t>(v0);
      for (std::size_t y = 0; y < static_cast<std::size_t>(crop.height); ++y)
        std::copy_n(tile.pixels.begin() + static_cast<std::ptrdiff_t>((cv + y) * static_cast<std::size_t>(tile.width) + cu),
                    crop.width, crop.pixels.begin() + static_cast<std::ptrdiff_t>(y * static_cast<std::size_t>(crop.width)));
      pc.crop_pixels += crop.pixels.size();
      pc.crops.push_back(std::move(crop));
      cut[cell] = true;
    }
}

prepared_case prepare(const scan_case& c)
{
  prepared_case pc;
  const std::string plate_dir = plate_for(c);
  const fs::path dir = root() / ("v" + std::to_string(c.version) + "_px" + std::to_string(c.px_per_module));
  fs::create_directories(dir);
  pc.scan_dir = (dir / "scan").string();
  pc.raw_scan_dir = (dir / "scan_raw").string();
  pc.out_file = (dir / "payload.out").string();

  qrplate::sim::simulate_options so = qrplate::sim::preset("clean");
  so.px_per_module = c.px_per_module;
  so.tile_px = tile_px;
  so.seed = 100 + static_cast<std::uint64_t>(c.px_per_module);
  so.threads = 0;  // setup only: every core
  qrplate::sim::simulate(plate_dir, pc.scan_dir, so);

  const qrplate::plate::manifest man =
      qrplate::plate::manifest_from_json(read_text(fs::path(plate_dir) / "plate.json"));
  const qrplate::plate::plate_geometry g = qrplate::plate::geometry_of(man);
  for (std::uint64_t row = 0; row < g.rows; ++row)
    for (std::uint32_t col = 0; col < g.columns; ++col)
      pc.code_cells += g.placement.at(row, col).kind != qrplate::plate::placement_slot::empty;

  const nlohmann::json truth = nlohmann::json::parse(read_text(fs::path(pc.scan_dir) / "truth.json"));
  const double pixel_nm = truth.at("pixel_nm").get<double>();
  fs::create_directories(pc.raw_scan_dir);
  fs::copy_file(fs::path(pc.scan_dir) / "scan.json", fs::path(pc.raw_scan_dir) / "scan.json");
  fs::copy_file(fs::path(pc.scan_dir) / "truth.json", fs::path(pc.raw_scan_dir) / "truth.json");
  std::vector<bool> cut(static_cast<std::size_t>(g.rows * g.columns), false);
  for (const auto& t : truth.at("tiles")) {
    if (t.at("missing").get<bool>()) continue;
    const std::string file = t.at("file").get<std::string>();
    pc.tile_files.push_back((fs::path(pc.scan_dir) / file).string());
    const qrplate::sim::gray_image img = qrplate::sim::read_gray_image(pc.tile_files.back());
    pc.raw_tile_files.push_back((fs::path(pc.raw_scan_dir) / file).string());
    qrplate::sim::write_gray_tiff(pc.raw_tile_files.back(), img, /*deflate=*/false);
    pc.scan_pixels += img.pixels.size();
    pc.tiles.push_back(to_8bit(img));
    cut_crops(pc.tiles.back(), t, pixel_nm, g, cut, pc);
  }
  if (pc.tiles.empty()) throw std::runtime_error("the simulator wrote no tiles");
  return pc;
}

const prepared_case& prepared(const scan_case& c)
{
  static std::map<std::string, prepared_case> cache;
  const std::string key = case_name(c);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  prepared_case pc;
  try {
    pc = prepare(c);
  } catch (const std::exception& e) {
    pc = prepared_case{};
    pc.error = "setup of " + key + " failed: " + e.what();
  }
  return cache[key] = std::move(pc);
}

void set_rates(benchmark::State& state, std::uint64_t codes_per_pass, std::uint64_t pixels_per_pass)
{
  state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(codes_per_pass));
  state.counters["scan_px_per_s"] =
      benchmark::Counter(static_cast<double>(pixels_per_pass), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["codes"] = static_cast<double>(codes_per_pass);
}

// ---------------------------------------------------------------------------------------------

// One decode before the timed ones: the CUDA context, the per-thread streams and device buffers.
void warm_up_cuda(const std::string& scan_dir, const std::string& out_file,
                  const qrplate::plate::plate_decode_options& options)
{
  try {
    (void)qrplate::plate::decode_plates(scan_dir, out_file, options);
  } catch (const std::exception&) {
    // the timed decodes report it
  }
  fs::remove(out_file);
  fs::remove(out_file + ".partial");
}

// threads 1: one decoding thread and no tile read-ahead (a per-core figure: background readers
// would only add process CPU time); 0: every core, with the default read-ahead (wall clock).
void bm_qrplate(benchmark::State& state, scan_case c, bool raw_tiles, qrplate::backend where, unsigned threads)
{
  if (where == qrplate::backend::cuda && !qrplate::cuda_backend_available()) {
    state.SkipWithError("no CUDA device (or built without CUDA)");
    return;
  }
  const prepared_case& pc = prepared(c);
  if (!pc.error.empty()) {
    state.SkipWithError(pc.error.c_str());
    return;
  }
  qrplate::plate::plate_decode_options options;
  options.threads = threads;
  if (threads == 1) options.tile_prefetch_bytes = 0;
  options.progress = false;
  options.backend = where;
  const std::string& scan_dir = raw_tiles ? pc.raw_scan_dir : pc.scan_dir;
  qrplate::plate::plate_decode_result result;
  if (where == qrplate::backend::cuda) warm_up_cuda(scan_dir, pc.out_file, options);
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove(pc.out_file);
    fs::remove(pc.out_file + ".partial");
    state.ResumeTiming();
    try {
      result = qrplate::plate::decode_plates(scan_dir, pc.out_file, options);
    } catch (const std::exception& e) {
      state.SkipWithError((std::string("decode_plates threw: ") + e.what()).c_str());
      break;
    }
    if (!result.complete) {
      const std::string why = "incomplete: " + std::to_string(result.codes - result.codes_unreadable) + " of " +
                              std::to_string(result.codes) + " codes read (" +
                              std::to_string(result.codes_not_scanned) + " not scanned), " +
                              std::to_string(result.tiles_unregistered) + " of " + std::to_string(result.tiles) +
                              " tiles unregistered, " + std::to_string(result.lost_frames) + " frames lost";
      state.SkipWithError(why.c_str());
      break;
    }
  }
  if (!result.complete) return;
  set_rates(state, result.codes - result.codes_unreadable, pc.scan_pixels);
  state.counters["tiles"] = static_cast<double>(result.tiles);
  state.counters["corrected"] = static_cast<double>(result.codes_corrected);
}

void bm_read_tiles(benchmark::State& state, scan_case c, bool raw_tiles)
{
  const prepared_case& pc = prepared(c);
  if (!pc.error.empty()) {
    state.SkipWithError(pc.error.c_str());
    return;
  }
  for (auto _ : state) {
    for (const std::string& file : raw_tiles ? pc.raw_tile_files : pc.tile_files) {
      qrplate::sim::gray_image img = qrplate::sim::read_gray_image(file);
      benchmark::DoNotOptimize(img.pixels.data());
    }
  }
  // codes/s here: the code cells of the scan per pass, i.e. the most codes/s any decoder that
  // reads these files on one core could reach (the file reading's ceiling).
  set_rates(state, pc.code_cells, pc.scan_pixels);
  state.counters["tiles"] = static_cast<double>(pc.tile_files.size());
}

// ---------------------------------------------------------------------------------------------
// A larger plate, whole machine.

struct large_case {
  std::string error, scan_dir, out_file;
  std::vector<std::string> tile_files;
  std::uint64_t scan_pixels = 0, code_cells = 0;
};

// raw8: the scan simulated with 8-bit samples and its tiles rewritten uncompressed (what a
// microscope writing raw 8-bit frames gives): the form the PCIe target is stated for.
// tile: the tiles' side in pixels.
large_case make_large_plate(bool raw8, std::uint32_t tile)
{
  large_case c;
  try {
    qrplate::scan::synthetic_scan_options so;
    so.version = 10;
    so.ecc = ecc_level::M;
    so.payload_bytes = 400000;
    so.px_per_module = 3;
    so.tile_px = tile;
    so.raw8 = raw8;
    so.seed = 7;
    so.threads = 0;  // setup only: every core
    const fs::path dir = root() / ((raw8 ? "large_raw8_" : "large_") + std::to_string(tile));
    fs::remove_all(dir);
    const qrplate::scan::synthetic_scan s = qrplate::scan::make_synthetic_scan(dir.string(), so);
    c.scan_dir = s.scan_dir;
    c.out_file = (dir / "payload.out").string();
    c.tile_files = s.tile_files;
    c.scan_pixels = s.scan_pixels;
    c.code_cells = s.code_cells;
  } catch (const std::exception& e) {
    c.error = std::string("setup of the large plate failed: ") + e.what();
  }
  return c;
}

const large_case& large_plate(bool raw8, std::uint32_t tile = tile_px)
{
  if (raw8 && tile == 2 * tile_px) {
    static const large_case raw_large_tiles = make_large_plate(true, 2 * tile_px);
    return raw_large_tiles;
  }
  if (tile != tile_px) throw std::logic_error("bench_decode: no large plate of that tile size");
  if (raw8) {
    static const large_case raw = make_large_plate(true, tile_px);
    return raw;
  }
  static const large_case deflate16 = make_large_plate(false, tile_px);
  return deflate16;
}

void bm_large_plate(benchmark::State& state, qrplate::backend where, bool raw8, std::uint32_t tile)
{
  if (where == qrplate::backend::cuda && !qrplate::cuda_backend_available()) {
    state.SkipWithError("no CUDA device (or built without CUDA)");
    return;
  }
  const large_case& lc = large_plate(raw8, tile);
  if (!lc.error.empty()) {
    state.SkipWithError(lc.error.c_str());
    return;
  }
  qrplate::plate::plate_decode_options options;
  options.threads = 0;
  options.progress = false;
  options.backend = where;
  if (where == qrplate::backend::cuda) warm_up_cuda(lc.scan_dir, lc.out_file, options);
  qrplate::plate::plate_decode_result result;
  for (auto _ : state) {
    try {
      result = qrplate::plate::decode_plates(lc.scan_dir, lc.out_file, options);
    } catch (const std::exception& e) {
      state.SkipWithError((std::string("decode_plates threw: ") + e.what()).c_str());
      return;
    }
    if (!result.complete) {
      state.SkipWithError(("incomplete: " + std::to_string(result.lost_frames) + " frames lost").c_str());
      return;
    }
  }
  set_rates(state, result.codes - result.codes_unreadable, lc.scan_pixels);
  state.counters["tiles"] = static_cast<double>(result.tiles);
  state.counters["tiles_read_ahead"] = static_cast<double>(result.tile_reads_ahead);
}

void bm_large_read_tiles(benchmark::State& state, bool raw8)
{
  const large_case& lc = large_plate(raw8);
  if (!lc.error.empty()) {
    state.SkipWithError(lc.error.c_str());
    return;
  }
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  for (auto _ : state)
    qrplate::host::parallel_for(threads, lc.tile_files.size(), [&](unsigned, std::size_t i) {
      qrplate::sim::gray_image img = qrplate::sim::read_gray_image(lc.tile_files[i]);
      benchmark::DoNotOptimize(img.pixels.data());
    });
  set_rates(state, lc.code_cells, lc.scan_pixels);
  state.counters["tiles"] = static_cast<double>(lc.tile_files.size());
}

// Registration of every tile of the raw8 plate's scan (tile side `tile`), one thread.
void bm_register_tiles(benchmark::State& state, bool cuda, std::uint32_t tile)
{
  if (cuda && !qrplate::cuda_backend_available()) {
    state.SkipWithError("no CUDA device (or built without CUDA)");
    return;
  }
  const large_case& lc = large_plate(true, tile);
  if (!lc.error.empty()) {
    state.SkipWithError(lc.error.c_str());
    return;
  }
  const qrplate::scan::scan_set set = qrplate::scan::read_scan_set(lc.scan_dir);
  const fs::path plate_json = fs::path(lc.scan_dir).parent_path() / "plate" / "plate.json";
  const qrplate::plate::plate_geometry g =
      qrplate::plate::geometry_of(qrplate::plate::manifest_from_json(read_text(plate_json)));
  std::vector<qrplate::sim::gray_image> images;
  double pixels = 0;
  for (const qrplate::scan::scan_tile& t : set.tiles) {
    images.push_back(qrplate::sim::read_gray_image(t.file, {}, cuda));
    pixels += static_cast<double>(images.back().pixels.size());
  }
  qrplate::scan::registration_options ro;
  ro.polarity = 1;
  ro.cuda = cuda;
  int registered = 0;
  auto pass = [&] {
    registered = 0;
    for (std::size_t i = 0; i < images.size(); ++i) {
      qrplate::scan::posed_tile t = qrplate::scan::register_tile(std::move(images[i]), set.tiles[i], set.pixel_nm, g, ro);
      registered += t.registered;
      images[i] = std::move(t.image);  // the bytes stay with it: the next pass sends them again
    }
  };
  pass();  // warm-up: buffers, CUDA's start-up
  timespec cpu0{}, cpu1{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
  std::int64_t passes = 0;
  for (auto _ : state) {
    pass();
    ++passes;
  }
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
  const double cpu_s = static_cast<double>(cpu1.tv_sec - cpu0.tv_sec) + 1e-9 * static_cast<double>(cpu1.tv_nsec - cpu0.tv_nsec);
  state.counters["tiles"] = static_cast<double>(images.size());
  state.counters["registered"] = registered;
  state.counters["host_cpu_ms_per_Mpx"] = passes ? 1e3 * cpu_s / (static_cast<double>(passes) * pixels / 1e6) : 0;
  state.counters["wall_ms_per_tile"] =
      benchmark::Counter(static_cast<double>(images.size()), benchmark::Counter::kIsIterationInvariantRate |
                                                                 benchmark::Counter::kInvert);
  state.counters["scan_px_per_s"] =
      benchmark::Counter(pixels, benchmark::Counter::kIsIterationInvariantRate);
}

// ---------------------------------------------------------------------------------------------

void bm_zxing_pure_crops(benchmark::State& state, scan_case c)
{
  const prepared_case& pc = prepared(c);
  if (!pc.error.empty()) {
    state.SkipWithError(pc.error.c_str());
    return;
  }
  ZXing::DecodeHints hints;
  hints.setFormats(ZXing::BarcodeFormat::QRCode).setIsPure(true).setTryHarder(false).setTryRotate(false);
  std::uint64_t read = 0;
  for (auto _ : state) {
    read = 0;
    for (const image8& crop : pc.crops) {
      const ZXing::Result res =
          ZXing::ReadBarcode({crop.pixels.data(), crop.width, crop.height, ZXing::ImageFormat::Lum}, hints);
      read += res.isValid();
    }
  }
  set_rates(state, read, pc.crop_pixels);
  state.counters["crops"] = static_cast<double>(pc.crops.size());
  state.counters["cells"] = static_cast<double>(pc.code_cells);
}

void bm_zbar_tiles(benchmark::State& state, scan_case c)
{
  const prepared_case& pc = prepared(c);
  if (!pc.error.empty()) {
    state.SkipWithError(pc.error.c_str());
    return;
  }
  const std::unique_ptr<zbar::zbar_image_scanner_t, void (*)(zbar::zbar_image_scanner_t*)> scanner(
      zbar::zbar_image_scanner_create(), zbar::zbar_image_scanner_destroy);
  zbar::zbar_image_scanner_set_config(scanner.get(), zbar::ZBAR_NONE, zbar::ZBAR_CFG_ENABLE, 0);
  zbar::zbar_image_scanner_set_config(scanner.get(), zbar::ZBAR_QRCODE, zbar::ZBAR_CFG_ENABLE, 1);
  zbar::zbar_image_scanner_set_config(scanner.get(), zbar::ZBAR_QRCODE, zbar::ZBAR_CFG_BINARY, 1);
  std::uint64_t found = 0;
  for (auto _ : state) {
    found = 0;
    for (const image8& tile : pc.tiles) {
      zbar::zbar_image_t* image = zbar::zbar_image_create();
      zbar::zbar_image_set_format(image, zbar_fourcc('Y', '8', '0', '0'));
      zbar::zbar_image_set_size(image, static_cast<unsigned>(tile.width), static_cast<unsigned>(tile.height));
      zbar::zbar_image_set_data(image, tile.pixels.data(), tile.pixels.size(), nullptr);
      if (zbar::zbar_scan_image(scanner.get(), image) > 0)
        for (auto s = zbar::zbar_image_first_symbol(image); s != nullptr; s = zbar::zbar_symbol_next(s))
          found += zbar::zbar_symbol_get_type(s) == zbar::ZBAR_QRCODE;
      zbar::zbar_image_destroy(image);
    }
  }
  set_rates(state, found, pc.scan_pixels);
  state.counters["tiles"] = static_cast<double>(pc.tiles.size());
}

// What a GPU decode's tile upload costs the host (tile_passes_cuda): filling pinned staging with
// a 16 Mpixel tile's samples narrowed to bytes (8-bit scans: half the PCIe bytes) beside copying
// them as they are (16-bit scans, and what the driver's own staging of pageable memory costs).
void bm_tile_staging(benchmark::State& state, bool narrow)
{
  const std::size_t n = std::size_t{1} << 24;
  std::vector<std::uint16_t> samples(n);
  std::mt19937 rng(5);
  for (auto& v : samples) v = static_cast<std::uint16_t>(rng() & 0xffu);
  std::vector<std::uint16_t> staging(n);
  for (auto _ : state) {
    if (narrow) {
      if (!qrplate::host::narrow_samples(samples.data(), n, reinterpret_cast<std::uint8_t*>(staging.data()))) {
        state.SkipWithError("8-bit samples did not narrow (a bug in qrplate)");
        return;
      }
    } else {
      std::memcpy(staging.data(), samples.data(), n * sizeof(std::uint16_t));
    }
    benchmark::DoNotOptimize(staging.data());
    benchmark::ClobberMemory();
  }
  state.counters["pixels_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(state.iterations() * static_cast<benchmark::IterationCount>(n * sizeof(std::uint16_t)));
}

// The outer code restoring a group's lost frames (plate::outer_decoder::recover), 239 + 16 frames
// of a v40-L frame body: once per group with a loss, which on a real scan is most groups.
void bm_outer_recover(benchmark::State& state, int lost)
{
  const qrplate::plate::outer_spec spec{239, 16};
  const std::size_t width = 2938;  // frame_body_bytes(40, L)
  const int n = spec.k + spec.m;
  std::mt19937 rng(11);
  std::vector<std::vector<std::uint8_t>> rows(static_cast<std::size_t>(n), std::vector<std::uint8_t>(width));
  for (int r = 0; r < spec.k; ++r)
    for (auto& b : rows[static_cast<std::size_t>(r)]) b = static_cast<std::uint8_t>(rng());
  std::vector<const std::uint8_t*> data;
  std::vector<std::uint8_t*> parity;
  for (int r = 0; r < spec.k; ++r) data.push_back(rows[static_cast<std::size_t>(r)].data());
  for (int r = spec.k; r < n; ++r) parity.push_back(rows[static_cast<std::size_t>(r)].data());
  qrplate::plate::outer_encoder(spec, width).encode(data.data(), parity.data());
  // Lost: data rows spread over the group (each needs a parity row to come back).
  std::vector<const std::uint8_t*> frames;
  for (const auto& r : rows) frames.push_back(r.data());
  std::vector<std::vector<std::uint8_t>> restored(static_cast<std::size_t>(spec.k));
  std::vector<std::uint8_t*> restore(static_cast<std::size_t>(spec.k), nullptr);
  for (int e = 0; e < lost; ++e) {
    const auto r = static_cast<std::size_t>(e * (spec.k / lost));
    frames[r] = nullptr;
    restored[r].resize(width);
    restore[r] = restored[r].data();
  }
  const qrplate::plate::outer_decoder decoder(spec, width);
  for (auto _ : state) {
    if (!decoder.recover(frames.data(), restore.data())) {
      state.SkipWithError("recover failed (a bug in qrplate)");
      return;
    }
    benchmark::ClobberMemory();
  }
  for (std::size_t r = 0; r < restore.size(); ++r)
    if (restore[r] != nullptr && restored[r] != rows[r]) {
      state.SkipWithError("restored a frame wrongly (a bug in qrplate)");
      return;
    }
  state.SetItemsProcessed(state.iterations());  // groups
}

// Stitching's coarse pass (scan::register_against) over stitch_bench_patch.hpp's patch: the
// reference shift by shift, and four shifts at a time (what register_against runs on the CPU).
void bm_stitch_coarse(benchmark::State& state, bool lanes)
{
  const qrplate::bench::stitch_bench_patch fixture;
  const qrplate::core::stitch_patch patch = fixture.patch();
  const int reach = patch.reach;
  std::vector<double> scores(fixture.shifts());
  for (auto _ : state) {
    if (lanes) {
      qrplate::scan::sparse_correlations(patch, scores.data());
    } else {
      for (int dy = -reach; dy <= reach; dy += 2)
        for (int dx = -reach; dx <= reach; dx += 2)
          scores[static_cast<std::size_t>(dy + reach) / 2 * (reach + 1) + static_cast<std::size_t>(dx + reach) / 2] =
              qrplate::scan::sparse_correlation(patch, dx, dy);
    }
    benchmark::DoNotOptimize(scores.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(scores.size()));  // shifts
}

// ---------------------------------------------------------------------------------------------

bool register_all()
{
  benchmark::RegisterBenchmark("BM_stitch_coarse/64x64/reach:40/reference", bm_stitch_coarse, false)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_stitch_coarse/64x64/reach:40/lanes", bm_stitch_coarse, true)
      ->Unit(benchmark::kMicrosecond);
  for (const int lost : {1, 4, 16})
    benchmark::RegisterBenchmark(("BM_outer_recover/239+16/v40-L/lost:" + std::to_string(lost)).c_str(),
                                 bm_outer_recover, lost)
        ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_tile_staging/px:16M/narrow_to_bytes", bm_tile_staging, true)->UseRealTime();
  benchmark::RegisterBenchmark("BM_tile_staging/px:16M/copy_samples", bm_tile_staging, false)->UseRealTime();
  for (const int px : {2, 3, 4})
    for (const scan_case c : {scan_case{10, ecc_level::M, px}, scan_case{40, ecc_level::L, px}}) {
      const std::string prefix = "BM_decode_scan/" + case_name(c) + "/";
      benchmark::RegisterBenchmark((prefix + "qrplate").c_str(), bm_qrplate, c, false, qrplate::backend::cpu, 1u)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime()
          ->Iterations(decode_iterations);
      // The same with --backend cuda (skipped without a device): wall-clock time, the GPU's share
      // is not process CPU time.
      benchmark::RegisterBenchmark((prefix + "qrplate_cuda").c_str(), bm_qrplate, c, false, qrplate::backend::cuda, 1u)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Iterations(decode_iterations);
      benchmark::RegisterBenchmark((prefix + "qrplate_raw_tiles").c_str(), bm_qrplate, c, true, qrplate::backend::cpu, 1u)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime()
          ->Iterations(decode_iterations);
      benchmark::RegisterBenchmark((prefix + "read_tiles").c_str(), bm_read_tiles, c, false)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime()
          ->Iterations(decode_iterations);
      benchmark::RegisterBenchmark((prefix + "read_raw_tiles").c_str(), bm_read_tiles, c, true)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime()
          ->Iterations(decode_iterations);
      benchmark::RegisterBenchmark((prefix + "zxing_pure_crops").c_str(), bm_zxing_pure_crops, c)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime()
          ->MinTime(peer_min_time_s);
      benchmark::RegisterBenchmark((prefix + "zbar_tiles").c_str(), bm_zbar_tiles, c)
          ->Unit(benchmark::kMillisecond)
          ->MeasureProcessCPUTime()
          ->MinTime(peer_min_time_s);
    }
  for (const int variant : {0, 1, 2}) {  // deflate16, raw8, raw8 in 2,048-px tiles
    const bool raw8 = variant > 0;
    const std::uint32_t tile = variant == 2 ? 2 * tile_px : tile_px;
    const std::string large = std::string("BM_decode_plate/v10-M/px:3/kB:400/") +
                              (variant == 0 ? "deflate16/" : variant == 1 ? "raw8/" : "raw8_2048px/");
    benchmark::RegisterBenchmark((large + "qrplate_all_cores").c_str(), bm_large_plate, qrplate::backend::cpu, raw8,
                                 tile)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(decode_iterations);
    benchmark::RegisterBenchmark((large + "qrplate_cuda_all_cores").c_str(), bm_large_plate, qrplate::backend::cuda,
                                 raw8, tile)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(decode_iterations);
    if (variant < 2)
      benchmark::RegisterBenchmark((large + "read_tiles_all_cores").c_str(), bm_large_read_tiles, raw8)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Iterations(decode_iterations);
  }
  for (const std::uint32_t tile : {tile_px, 2 * tile_px})
    for (const bool cuda : {false, true})
      benchmark::RegisterBenchmark(("BM_register_tiles/v10-M/px:3/raw8_" + std::to_string(tile) + "px/" +
                                    (cuda ? "cuda" : "cpu"))
                                       .c_str(),
                                   bm_register_tiles, cuda, tile)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MeasureProcessCPUTime()
          ->Iterations(decode_iterations);
  return true;
}

[[maybe_unused]] const bool registered = register_all();

}  // namespace

BENCHMARK_MAIN();
