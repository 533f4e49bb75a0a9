// Reading SEM scan sets back to the bytes (issue #6): plates written by encode_plates, scanned by
// the simulator (presets clean / typical / harsh, several seeds), decoded by decode_plates. The
// payload is the oracle: the test compares the output with the bytes it encoded. Also the
// pieces: the threshold plane and polarity, tile registration against a rendered tile's true
// pose, scan.json parsing, and bad scan sets (corrupt, missing, tiny, noise tiles; positions
// that lie) which must never crash and never yield wrong bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/encode_symbol.hpp"
#include "qrplate/core/sample_symbol.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/decode_plate.hpp"
#include "qrplate/plate/encode_plate.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"
#include "qrplate/sim/sem_model.hpp"
#include "qrplate/sim/simulate.hpp"
#include "scan/scan_reader.hpp"
#if QRPLATE_WITH_CUDA
#include "cuda/tile_passes_cuda.hpp"
#endif
#include "scan/scan_set.hpp"
#include "scan/tile_registration.hpp"
#include "sim/scan_io.hpp"

namespace {

namespace fs = std::filesystem;
using namespace qrplate;

std::string temp(const std::string& name)
{
  return ::testing::TempDir() + "qrplate_scan_test_" + std::to_string(::getpid()) + "_" + name;
}

std::vector<char> read_file(const std::string& p)
{
  std::ifstream f(p, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// A plate of a few hundred version-10-M codes from a random payload.
struct plate_fixture {
  std::string dir, input;
  std::vector<char> payload;

  plate_fixture(const std::string& name, std::size_t bytes, std::uint64_t seed, int k = 0, int m = 0,
                void (*tweak)(plate::plate_encode_options&) = nullptr)
  {
    dir = temp(name);
    input = dir + ".in";
    fs::remove_all(dir);
    std::mt19937_64 rng(seed);
    payload.resize(bytes);
    for (char& c : payload) c = static_cast<char>(rng());
    std::ofstream(input, std::ios::binary).write(payload.data(), static_cast<std::streamsize>(payload.size()));
    plate::plate_encode_options o;
    o.geometry.version = 10;
    o.geometry.ecc = ecc_level::M;
    o.plate_id = 0x5CA40000 + seed;  // fixed: the film grain and every tag follow from it
    if (k > 0) {
      o.outer_given = true;
      o.geometry.k = k;
      o.geometry.m = m;
    }
    if (tweak) tweak(o);
    plate::encode_plates(input, dir, o);
  }
  ~plate_fixture()
  {
    fs::remove_all(dir);
    fs::remove(input);
  }
};

// Shared plates: the encode is cheap, but there is no reason to repeat it.
plate_fixture& small_plate()
{
  static plate_fixture p("plate", 56000, 11);  // ~320 codes, one outer group of 286+32
  return p;
}
plate_fixture& sturdy_plate()
{
  static plate_fixture p("sturdy", 40000, 12, 48, 24);  // ~300 codes in groups of 48+24
  return p;
}

// A plate 300 um wide and 40 um tall of version-3 codes (~12,000 scan pixels wide at 2 px/module).
void wide_plate(plate::plate_encode_options& o)
{
  o.geometry.version = 3;
  o.geometry.plate = plate::parse_plate_size("300x40um");
  o.plate_id = 0x5CA4F00D;
}

std::string scan(const plate_fixture& p, const std::string& name, const std::string& preset, double px, std::uint64_t seed,
                 void (*tweak)(sim::simulate_options&) = nullptr)
{
  const std::string out = temp("scan_" + name);
  fs::remove_all(out);
  sim::simulate_options o = sim::preset(preset);
  o.px_per_module = px;
  o.seed = seed;
  if (tweak) tweak(o);
  sim::simulate(p.dir, out, o);
  return out;
}

// A preset's scans without lost tiles, dust or scratches: what is left is the beam, the noise
// and the stage.
void without_defects(sim::simulate_options& o)
{
  o.missing_tile_rate = 0;
  o.dust_per_mm2 = 0;
  o.scratches_per_mm2 = 0;
}

// Code cells no tile covers whole (by truth.json's true poses, lost tiles left out): the
// simulator's tile grid starts at the plate's corner, so a stage error can leave a sliver of an
// edge code unscanned. A decoder cannot be asked to read those.
std::uint64_t uncovered_cells(const plate_fixture& p, const std::string& scan_dir)
{
  const std::vector<char> pt = read_file((fs::path(p.dir) / "plate.json").string());
  const plate::plate_geometry g = plate::geometry_of(plate::manifest_from_json(std::string(pt.begin(), pt.end())));
  const std::vector<char> tt = read_file((fs::path(scan_dir) / "truth.json").string());
  const nlohmann::json truth = nlohmann::json::parse(tt.begin(), tt.end());
  const double px = truth["pixel_nm"], side = truth["tile_px"];
  std::uint64_t uncovered = 0;
  for (std::uint64_t r = 0; r < g.placement.rows(); ++r)
    for (std::uint32_t c = 0; c < g.columns; ++c) {
      bool covered = false;
      for (const auto& t : truth["tiles"]) {
        if (t["missing"].get<bool>()) continue;
        const double rot = t["rotation_deg"].get<double>() * 3.14159265358979323846 / 180, s = t["scale"].get<double>() * px;
        bool inside = true;
        for (double dx : {0.0, 1.0 * g.code_size})
          for (double dy : {0.0, 1.0 * g.code_size}) {
            const double x = (static_cast<double>(g.cell_x(c)) + dx) * g.module_nm - t["x_nm"].get<double>();
            const double y = (static_cast<double>(g.cell_y(r)) + dy) * g.module_nm - t["y_nm"].get<double>();
            const double u = (x * std::cos(rot) + y * std::sin(rot)) / s, v = (-x * std::sin(rot) + y * std::cos(rot)) / s;
            inside = inside && u >= 1 && v >= 1 && u <= side - 1 && v <= side - 1;
          }
        if (inside) covered = true;
      }
      uncovered += !covered;
    }
  return uncovered;
}

// Decodes `scan_dir` and checks the result is complete and bit-exact.
// Two decodes of one scan read every code alike: the same counts, Reed-Solomon margins, SNR and
// lost frames (the bytes are compared by the callers).
void expect_same_reading(const plate::plate_decode_result& got, const plate::plate_decode_result& want)
{
  EXPECT_EQ(got.complete, want.complete);
  EXPECT_EQ(got.codes_clean, want.codes_clean);
  EXPECT_EQ(got.codes_corrected, want.codes_corrected);
  EXPECT_EQ(got.codes_erasure_assisted, want.codes_erasure_assisted);
  EXPECT_EQ(got.codes_unreadable, want.codes_unreadable);
  EXPECT_EQ(got.rs_symbols_corrected, want.rs_symbols_corrected);
  EXPECT_EQ(got.margin_histogram, want.margin_histogram);
  EXPECT_EQ(got.median_snr, want.median_snr);
  EXPECT_EQ(got.codes_not_scanned, want.codes_not_scanned);
  EXPECT_EQ(got.codes_partly_scanned, want.codes_partly_scanned);
  EXPECT_EQ(got.codes_unreadable_no_contrast, want.codes_unreadable_no_contrast);
  EXPECT_EQ(got.codes_unreadable_sampled, want.codes_unreadable_sampled);
  EXPECT_EQ(got.median_snr_unreadable, want.median_snr_unreadable);
  EXPECT_EQ(got.lost_frames, want.lost_frames);
}

// ... and placed its tiles alike: the same tiles read, left unregistered, stitched, verified by their
// frames, confirmed by a neighbour's overlap and moved by whole pitches; the same stage statistics.
void expect_same_tiles(const plate::plate_decode_result& got, const plate::plate_decode_result& want)
{
  EXPECT_EQ(got.tile_reads, want.tile_reads);
  EXPECT_EQ(got.tiles_unregistered, want.tiles_unregistered);
  EXPECT_EQ(got.tiles_stitched, want.tiles_stitched);
  EXPECT_EQ(got.tiles_verified_by_frames, want.tiles_verified_by_frames);
  EXPECT_EQ(got.tiles_confirmed_by_overlap, want.tiles_confirmed_by_overlap);
  EXPECT_EQ(got.lattice_corrections, want.lattice_corrections);
  EXPECT_EQ(got.stage_sigma_nm, want.stage_sigma_nm);
}

// Where a CUDA device exists (or the emulated runtime, tests/cuda_emulation), --backend cuda reads
// `scan_dir` as the CPU did (`cpu`, which wrote `cpu_out` or its .partial): the same reading, the
// same tiles, the same bytes.
// Returns the CUDA decode's tiles_host_integrals (0 without a device).
std::uint64_t expect_cuda_agrees(const std::string& scan_dir, const plate::plate_decode_result& cpu,
                                 const std::string& cpu_out, const std::string& what, int bytes_per_sample = 2)
{
  EXPECT_EQ(cpu.tile_samples_uploaded, 0u);
  EXPECT_EQ(cpu.tile_bytes_uploaded, 0u);
  EXPECT_EQ(cpu.tile_samples_uploaded_as_read, 0u);
  if (!cuda_backend_available()) return 0;
  SCOPED_TRACE(what + " with --backend cuda");
  plate::plate_decode_options o;
  o.backend = backend::cuda;
  const std::string out = scan_dir + ".cuda.out";
  plate::plate_decode_result g;
  EXPECT_NO_THROW(g = plate::decode_plates(scan_dir, out, o));
  expect_same_reading(g, cpu);
  EXPECT_EQ(cpu.tiles_host_integrals, 0u);  // the CPU's are its own
  EXPECT_EQ(g.tiles_unreadable, cpu.tiles_unreadable);
  EXPECT_EQ(g.tiles_unregistered, cpu.tiles_unregistered);
  EXPECT_EQ(g.tiles_stitched, cpu.tiles_stitched);
  EXPECT_EQ(g.lattice_corrections, cpu.lattice_corrections);
  EXPECT_EQ(g.stage_sigma_nm, cpu.stage_sigma_nm);  // the same poses, the same statistics
  EXPECT_EQ(g.planned_overlap_nm, cpu.planned_overlap_nm);
  // Every tile read went up once at least, at 1 byte a sample for 8-bit scans.
  EXPECT_GE(g.tile_samples_uploaded, g.tile_reads);
  EXPECT_EQ(g.tile_bytes_uploaded, g.tile_samples_uploaded * static_cast<std::uint64_t>(bytes_per_sample));
  // 8-bit TIFF tiles go up as the file held them (the reader kept their bytes), at least on their
  // first registration (a second one, under the scan's polarity, narrows); 16-bit ones never.
  if (bytes_per_sample == 1) {
    EXPECT_GT(g.tile_samples_uploaded_as_read, 0u);
    EXPECT_LE(g.tile_samples_uploaded_as_read, g.tile_samples_uploaded);
  } else {
    EXPECT_EQ(g.tile_samples_uploaded_as_read, 0u);
  }
  // The reader inflates 8-bit tiles into pinned buffers: those bytes go by DMA, and only the rest
  // (16-bit tiles, second registrations) passes through the staging.
  EXPECT_EQ(g.tile_bytes_staged, g.tile_bytes_uploaded - g.tile_samples_uploaded_as_read);
  EXPECT_EQ(cpu.tile_bytes_staged, 0u);
  const std::string suffix = cpu.complete ? "" : ".partial";
  EXPECT_TRUE(read_file(out + suffix) == read_file(cpu_out + suffix));
  fs::remove(out);
  fs::remove(out + ".partial");
  return g.tiles_host_integrals;
}

// host_integrals: where a device exists, the tiles whose integral image the CUDA decode had to
// build on the host (the others stay on the device only).
plate::plate_decode_result expect_exact(const plate_fixture& p, const std::string& scan_dir, const std::string& what,
                                        std::uint64_t* host_integrals = nullptr, int bytes_per_sample = 2)
{
  const std::string out = scan_dir + ".out";
  fs::remove(out);
  const plate::plate_decode_result r = plate::decode_plates(scan_dir, out, {});
  const std::uint64_t built = expect_cuda_agrees(scan_dir, r, out, what, bytes_per_sample);
  if (host_integrals != nullptr) *host_integrals = built;
  EXPECT_TRUE(r.scan) << what;
  EXPECT_TRUE(r.complete) << what << ": " << r.lost_frames << " frames lost, " << r.codes_unreadable << " of " << r.codes
                          << " codes unreadable";
  EXPECT_TRUE(r.digest_checked && r.digest_ok) << what;
  if (r.complete) {
    EXPECT_TRUE(read_file(out) == p.payload) << what;
  }
  fs::remove(out);
  fs::remove(out + ".partial");
  return r;
}

TEST(ScanDecode, CleanAndTypicalAtThreePixelsPerModuleAreBitExact)
{
  plate_fixture& p = small_plate();
  {
    const std::string s = scan(p, "clean", "clean", 3.0, 1);
    std::uint64_t host_integrals = 0;
    const plate::plate_decode_result r = expect_exact(p, s, "clean seed 1", &host_integrals);
    EXPECT_LE(r.codes_unreadable, uncovered_cells(p, s));  // a clean scan reads every code it holds
    // With CUDA every code of a clean scan reads on the GPU: no tile's integral image comes back.
    EXPECT_EQ(host_integrals, 0u);
    EXPECT_GT(r.median_snr, 5.0);
    fs::remove_all(s);
  }
  for (std::uint64_t seed : {1, 2, 3}) {
    const std::string s = scan(p, "typical" + std::to_string(seed), "typical", 3.0, seed);
    expect_exact(p, s, "typical seed " + std::to_string(seed));
    fs::remove_all(s);
  }
}

// A scan with 8-bit samples (what most microscopes write) reads as bit-exact as a 16-bit one, and
// with CUDA its tiles go up at 1 byte a sample (tile_passes_cuda narrows them; 16-bit scans take
// 2, checked by every other scan test).
TEST(ScanDecode, EightBitTypicalScanIsBitExact)
{
  plate_fixture& p = small_plate();
  const std::string s = scan(p, "typical8", "typical", 3.0, 4, [](sim::simulate_options& o) { o.sem.bits = 8; });
  const std::vector<char> text = read_file((fs::path(s) / "scan.json").string());
  const nlohmann::json sj = nlohmann::json::parse(text.begin(), text.end());
  int eight_bit_tiles = 0;
  for (const auto& t : sj["tiles"]) {
    const fs::path file = fs::path(s) / t["file"].get<std::string>();
    if (fs::exists(file)) eight_bit_tiles += sim::read_gray_image(file.string()).bits == 8;
  }
  EXPECT_GT(eight_bit_tiles, 10);
  expect_exact(p, s, "typical 8-bit", nullptr, 1);
  fs::remove_all(s);
}

TEST(ScanDecode, HarshAtFourPixelsPerModuleIsBitExact)
{
  // Harsh scans lose tiles (3%) and a tile holds ~16 codes: a plate whose outer code can take
  // that (48+24 groups, spread over the plate by the placement) comes back whole.
  plate_fixture& p = sturdy_plate();
  for (std::uint64_t seed : {1, 2}) {
    const std::string s = scan(p, "harsh" + std::to_string(seed), "harsh", 4.0, seed);
    expect_exact(p, s, "harsh seed " + std::to_string(seed));
    fs::remove_all(s);
  }
}

// The README's claim: typical scans read bit-exact down to 1.3 px/module. With a quarter-module
// spread of the off-centre samples at every scale, 1.5 px/module lost 12% of the codes and 1.4
// half of them; below 2 px/module core::sample_module now takes the depth-weighted mean of the
// pixels inside each module (gray_view::tent_mean).
TEST(ScanDecode, TypicalDownToOnePointThreePixelsPerModuleIsBitExact)
{
  plate_fixture& p = small_plate();
  for (double px : {2.0, 1.3}) {
    const std::string s = scan(p, "typical_low_px", "typical", px, 4);
    const plate::plate_decode_result r = expect_exact(p, s, "typical at " + std::to_string(px) + " px/module");
    EXPECT_LE(r.codes_unreadable * 50, r.codes) << px << " px/module";  // at most 2% lost before the outer code
    fs::remove_all(s);
  }
}

TEST(ScanDecode, BrightMilledModulesAreReadToo)
{
  plate_fixture& p = small_plate();
  const std::string s = scan(p, "bright", "clean", 3.0, 5, [](sim::simulate_options& o) {
    o.sem.milled_level = 0.8;  // milled brighter than the film: polarity reversed
    o.sem.film_level = 0.3;
  });
  expect_exact(p, s, "bright milled");
  fs::remove_all(s);
}

TEST(ScanDecode, WidePlateIsReadInColumnStripsWithBoundedMemory)
{
  // A plate 300 um wide and 40 um tall of version-3 codes: at 2 px/module its scan is ~12,000
  // pixels wide, so the reader sweeps it in two column strips of ~8,192 pixels and, without a
  // tile cache, never holds more than a strip's rows of tiles and the next strip's first ones. Its
  // code rows are prepared one at a time here (the automatic count, a tile row's worth, is at the
  // end).
  const plate_fixture p("wide", 12000, 21, 0, 0, wide_plate);
  const std::string s = scan(p, "wide", "clean", 2.0, 3);
  const std::string out = s + ".out";
  plate::plate_decode_options row_by_row;
  row_by_row.prepare_rows = 1;
  plate::plate_decode_options bounded = row_by_row;
  bounded.tile_cache_bytes = 0;  // only the current rows' tiles in memory
  const plate::plate_decode_result r = plate::decode_plates(s, out, bounded);
  EXPECT_TRUE(r.complete) << r.lost_frames << " frames lost";
  if (r.complete) {
    EXPECT_TRUE(read_file(out) == p.payload);
  }
  EXPECT_GT(r.tiles, 20u);
  // A strip's rows of tiles and, as it ends, the next strip's first row of tiles (loaded ahead):
  // on this plate two tile rows tall, never the other strip's lower row.
  EXPECT_LT(r.max_tiles_in_memory, r.tiles) << r.max_tiles_in_memory << " of " << r.tiles;
  EXPECT_LE(r.tile_reads, r.tiles + r.tiles / 3);  // tiles on the strips' edge are read twice, no more
  // With the default tile cache (1 GiB, more than this scan) every tile is read once, and the
  // payload is the same.
  const plate::plate_decode_result cached = plate::decode_plates(s, out + ".cached", row_by_row);
  EXPECT_TRUE(cached.complete);
  if (cached.complete) {
    EXPECT_TRUE(read_file(out + ".cached") == p.payload);
  }
  EXPECT_EQ(cached.tile_reads, cached.tiles);
  // Tile files read ahead by background threads (the default), one at a time, or not at all:
  // the same result. With the default, every tile below a strip's first tile row was read ahead
  // (two tile rows here: about half of the tiles).
  EXPECT_GE(r.tile_reads_ahead, r.tile_reads / 3) << r.tile_reads_ahead << " of " << r.tile_reads;
  // The read-ahead follows the sweep (the strip's rows to their unit's end, then the next strip's
  // first ones): no tile read ahead goes unused.
  EXPECT_EQ(r.tile_reads_ahead_unused, 0u);
  // Those the prefetcher's threads reached before their rows came were registered there too (any
  // after the first loads may be; how many depends on the machine's load).
  EXPECT_GT(r.tile_registrations_ahead, 0u) << r.tile_registrations_ahead << " of " << r.tile_reads;
  EXPECT_GT(r.tiles_verified_by_frames, r.tile_reads / 2) << r.tiles_verified_by_frames << " of " << r.tile_reads;
  // And with no read-ahead, one tile read ahead at a time, or read but not registered ahead: the
  // same tiles verified by their frames and placed alike.
  for (const std::size_t prefetch : {std::size_t{0}, std::size_t{1}, std::size_t{2}}) {
    SCOPED_TRACE(prefetch);
    plate::plate_decode_options o = bounded;
    o.tile_prefetch_bytes = prefetch == 2 ? bounded.tile_prefetch_bytes : prefetch;
    o.register_ahead = prefetch != 2;
    const plate::plate_decode_result a = plate::decode_plates(s, out + ".prefetch", o);
    expect_same_reading(a, r);
    expect_same_tiles(a, r);
    EXPECT_EQ(a.max_tiles_in_memory, r.max_tiles_in_memory);
    if (prefetch == 0) {
      EXPECT_EQ(a.tile_reads_ahead, 0u);
    } else {
      EXPECT_GT(a.tile_reads_ahead, 0u);
    }
    if (prefetch != 1) {
      EXPECT_EQ(a.tile_registrations_ahead, 0u);
    }
    EXPECT_TRUE(a.complete);
    if (a.complete) {
      EXPECT_TRUE(read_file(out + ".prefetch") == p.payload);
    }
    fs::remove(out + ".prefetch");
  }
  // Batches that read rows ahead (the cuda backend's way, here on the CPU), row by row across the
  // strips, with tiles dropped under the reads ahead: the cell-by-cell result exactly.
  const std::vector<char> json = read_file(p.dir + "/plate.json");
  const plate::plate_geometry geo = plate::geometry_of(plate::manifest_from_json(std::string(json.begin(), json.end())));
  // The cells that hold a code in the first `rows` rows of the decode's first strip (8,192 px of
  // scan at 2 px/module: that many code pitches of columns).
  const auto strip_columns = static_cast<std::uint32_t>(8192 / 2.0 / geo.pitch);
  ASSERT_LT(strip_columns, geo.columns);  // two strips
  auto first_strip_cells = [&](std::uint64_t rows) {
    std::uint64_t n = 0;
    for (std::uint64_t row = 0; row < std::min<std::uint64_t>(rows, geo.placement.band_rows()); ++row)
      for (std::uint32_t c = 0; c < strip_columns; ++c) n += geo.placement.at(row, c).kind != plate::placement_slot::empty;
    return n;
  };
  ASSERT_GT(geo.placement.rows(), geo.placement.bands());  // rows below the first, to read ahead
  for (const std::size_t cache : {std::size_t{0}, std::size_t{1} << 30}) {
    SCOPED_TRACE(cache);
    plate::plate_decode_options ahead = row_by_row;
    ahead.tile_cache_bytes = cache;
    ahead.batch_codes = true;
    ahead.read_ahead_rows = 8;
    const plate::plate_decode_result a = plate::decode_plates(s, out + ".ahead", ahead);
    const plate::plate_decode_result& x = cache ? cached : r;
    expect_same_reading(a, x);
    EXPECT_EQ(a.tile_reads, x.tile_reads);
    EXPECT_GT(a.codes_read_ahead, a.codes / 2);  // most codes come from reads ahead
    // A code is read ahead only once every tile that may see it is held (the row below's tiles
    // come with each row), so no reading ahead is made again in a deeper tile or across more
    // tiles; some waited for their tiles.
    EXPECT_EQ(a.codes_read_ahead_again, 0u);
    EXPECT_GT(a.codes_ahead_deferred, 0u);
    // And since each row's preparation loads the tiles of the row below, and a strip's last the
    // next strip's (or unit's) first row's, every code is read ahead but those of the decode's
    // first row in its first strip.
    EXPECT_LE(a.codes - a.codes_read_ahead, first_strip_cells(1)) << a.codes_read_ahead << " of " << a.codes;
    EXPECT_EQ(a.codes_read_in_background, 0u);   // the CPU's default: batches read whole
    EXPECT_TRUE(a.complete);
    if (a.complete) {
      EXPECT_TRUE(read_file(out + ".ahead") == p.payload);
    }
    fs::remove(out + ".ahead");
    // The reads ahead on the background thread while the next tiles are registered (the cuda
    // backend's default): the same reading (ScanReader.BackgroundReadsAreWaitedFor... drops tiles
    // under them).
    ahead.overlap_reads = 1;
    const plate::plate_decode_result o = plate::decode_plates(s, out + ".overlap", ahead);
    expect_same_reading(o, x);
    EXPECT_EQ(o.tile_reads, x.tile_reads);
    EXPECT_EQ(o.codes_read_ahead, a.codes_read_ahead);
    EXPECT_EQ(o.codes_read_ahead_again, a.codes_read_ahead_again);
    EXPECT_EQ(o.codes_ahead_deferred, a.codes_ahead_deferred);
    EXPECT_EQ(o.codes_read_across, a.codes_read_across);
    EXPECT_GT(o.codes_read_in_background, o.codes / 2);
    EXPECT_TRUE(o.complete);
    if (o.complete) {
      EXPECT_TRUE(read_file(out + ".overlap") == p.payload);
    }
    fs::remove(out + ".overlap");
  }
  // One strip as wide as the scan (strip_px): every tile is read once even without a tile cache,
  // a strip's rows of tiles are now all columns' (more tiles held at once), and the payload is the same.
  plate::plate_decode_options one_strip = bounded;
  one_strip.strip_px = 16384;
  const plate::plate_decode_result w = plate::decode_plates(s, out + ".wide", one_strip);
  EXPECT_TRUE(w.complete);
  if (w.complete) {
    EXPECT_TRUE(read_file(out + ".wide") == p.payload);
  }
  EXPECT_EQ(w.tile_reads, w.tiles);
  EXPECT_GT(w.max_tiles_in_memory, r.max_tiles_in_memory);
  one_strip.strip_px = 100;  // narrower than a tile: refused
  EXPECT_THROW(plate::decode_plates(s, out + ".narrow", one_strip), invalid_argument);
  // Rows prepared by the default count: as many as fit the step between the scan's rows of tiles
  // (scan.json; counted here from the nominal positions), so each preparation meets about one new
  // row of tiles; batched and read ahead, only the first such rows of the first strip are read
  // while the decode waits, and the reading is the cell-by-cell one.
  const nlohmann::json scan_json = nlohmann::json::parse(read_file(s + "/scan.json"));
  std::vector<double> ys;
  for (const auto& t : scan_json["tiles"]) ys.push_back(t["y_nm"].get<double>());
  std::sort(ys.begin(), ys.end());
  ys.erase(std::unique(ys.begin(), ys.end()), ys.end());
  ASSERT_GE(ys.size(), 2u);
  const auto tile_row_rows = static_cast<std::uint32_t>((ys[1] - ys[0]) / geo.module_nm / geo.pitch);
  ASSERT_GT(tile_row_rows, 1u);
  plate::plate_decode_options automatic;
  automatic.tile_cache_bytes = 0;
  const plate::plate_decode_result g = plate::decode_plates(s, out + ".auto", automatic);
  EXPECT_EQ(g.rows_per_prepare, tile_row_rows);
  EXPECT_EQ(r.rows_per_prepare, 1u);
  automatic.batch_codes = true;
  automatic.read_ahead_rows = 32;
  automatic.overlap_reads = 1;
  const plate::plate_decode_result gb = plate::decode_plates(s, out + ".auto_batched", automatic);
  expect_same_reading(gb, g);
  EXPECT_LE(gb.codes - gb.codes_read_ahead, first_strip_cells(tile_row_rows)) << gb.codes_read_ahead << " of "
                                                                               << gb.codes;
  EXPECT_EQ(gb.codes_read_ahead_again, 0u);
  automatic.prepare_rows = 65;  // out of range: refused
  EXPECT_THROW(plate::decode_plates(s, out + ".bad_rows", automatic), invalid_argument);
  EXPECT_FALSE(fs::exists(out + ".bad_rows"));
  fs::remove(out + ".auto");
  fs::remove(out + ".auto_batched");
  fs::remove(out + ".wide");
  fs::remove(out);
  fs::remove(out + ".cached");
  fs::remove_all(s);
}

// Version-40-L codes at 4 px/module are 708 px wide: with 1024-px tiles most codes lie across two
// to four tiles, and the tiles of the plate's last column hold slivers of codes with no finder
// of their own, only parts of a periodic grid of alignment patterns that a pose off by a grid
// step explains as well. Those tiles must be placed by the image content they share with their
// neighbours; before that, 4 of these 30 codes were lost (more than the 2 parity frames), and
// with the typical preset 2-8.
TEST(ScanDecode, LargeCodesAcrossTilesAtFourPixelsPerModule)
{
  const plate_fixture p("v40", 80000, 40, 0, 0, [](plate::plate_encode_options& o) {
    o.geometry.version = 40;
    o.geometry.ecc = ecc_level::L;
    o.plate_id = 0xBE7ECull;
  });
  // clean: every code; typical (stage error 10 modules, drift, rotation 0.5 deg): at most one
  // code lost, which the outer code restores (a sweep of seeds 1-4 lost 0-2).
  for (const char* preset : {"clean", "typical"}) {
    const std::string s = temp(std::string("scan_v40_") + preset);
    fs::remove_all(s);
    sim::simulate_options so = sim::preset(preset);
    so.px_per_module = 4.0;
    so.tile_px = 1024;
    so.seed = std::string(preset) == "clean" ? 5 : 3;
    sim::simulate(p.dir, s, so);
    const std::string out = s + ".out";
    const plate::plate_decode_result r = plate::decode_plates(s, out, {});
    EXPECT_TRUE(r.complete) << preset << ": " << r.lost_frames << " frames lost";
    if (r.complete) {
      EXPECT_TRUE(read_file(out) == p.payload) << preset;
    }
    EXPECT_LE(r.codes_unreadable, std::string(preset) == "clean" ? 0u : 1u) << preset << ": of " << r.codes;
    EXPECT_GE(r.tiles_stitched, 1u) << preset;
    expect_cuda_agrees(s, r, out, preset);
    fs::remove(out);
    fs::remove(out + ".partial");
    fs::remove_all(s);
  }
}

// Rewrites scan.json's tile positions through `move` (x_nm, y_nm, tile index).
template <typename Move>
void rewrite_positions(const std::string& dir, Move&& move)
{
  const std::string path = (fs::path(dir) / "scan.json").string();
  const std::vector<char> text = read_file(path);
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end());
  for (std::size_t i = 0; i < j["tiles"].size(); ++i) {
    double x = j["tiles"][i]["x_nm"], y = j["tiles"][i]["y_nm"];
    move(x, y, i);
    j["tiles"][i]["x_nm"] = x;
    j["tiles"][i]["y_nm"] = y;
  }
  std::ofstream(path) << j.dump(1);
}

TEST(ScanDecode, StagePositionsThatLieAreFoundOut)
{
  plate_fixture& p = small_plate();
  const std::string s = scan(p, "lies", "clean", 3.0, 6);
  const plate::plate_decode_result honest = expect_exact(p, s, "positions as scanned");
  const std::vector<char> text = read_file((fs::path(p.dir) / "plate.json").string());
  const nlohmann::json pj = nlohmann::json::parse(text.begin(), text.end());
  const double module_nm = pj["module_nm"];
  const double pitch_nm = static_cast<double>(pj["grid"]["pitch"]) * module_nm;
  // Every tile 2 um right and 1.5 um up of where scan.json says; one tile also off by a whole
  // code pitch in x and in y, which only the frames it holds can tell.
  rewrite_positions(s, [&](double& x, double& y, std::size_t i) {
    x -= 2000;
    y += 1500;
    if (i == 4) x += pitch_nm, y -= pitch_nm;
  });
  const plate::plate_decode_result r = expect_exact(p, s, "positions off by 2.5 um and a pitch");
  EXPECT_GE(r.lattice_corrections, 1u);
  EXPECT_LE(r.codes_unreadable, uncovered_cells(p, s)) << honest.codes_unreadable << " as scanned";
  if (cuda_backend_available()) {
    // The lattice check on the GPU (each tile's nearest cells read where registration left the
    // tile) moves the same tiles: the same decode.
    plate::plate_decode_options cuda;
    cuda.backend = backend::cuda;
    const plate::plate_decode_result g = plate::decode_plates(s, s + ".cuda", cuda);
    EXPECT_EQ(g.lattice_corrections, r.lattice_corrections);
    expect_same_reading(g, r);
    fs::remove(s + ".cuda");
    fs::remove(s + ".cuda.partial");
  }
  fs::remove_all(s);
}

// A plate 300 um wide and 80 um tall of version-3 codes: at 2 px/module two column strips, and
// for this payload two bands of the outer code (21 code rows each), so the sweep goes strip by
// strip within a band, then to the next band. The files read ahead follow it: a strip's rows to
// its band's end, then the next strip's first rows, never the next band's rows of the same strip
// (read long before they are needed, they were let go unused), and reading ahead reaches two
// tile heights, not the first guess at a tile's size (4,096 px) kept after the tiles said 1,024.
void tall_wide_plate(plate::plate_encode_options& o)
{
  o.geometry.version = 3;
  o.geometry.ecc = ecc_level::L;
  o.geometry.plate = plate::parse_plate_size("300x80um");
  o.plate_id = 0x5CA4F00E;
}

TEST(ScanDecode, FilesAreReadAheadAlongTheSweep)
{
  const plate_fixture p("tall_wide", 250000, 22, 0, 0, tall_wide_plate);
  const std::vector<char> json = read_file(p.dir + "/plate.json");
  const plate::plate_geometry geo = plate::geometry_of(plate::manifest_from_json(std::string(json.begin(), json.end())));
  ASSERT_GE(geo.placement.bands(), 2u);
  ASSERT_LT(static_cast<std::uint32_t>(8192 / 2.0 / geo.pitch), geo.columns);  // two strips
  const std::string s = scan(p, "tall_wide", "clean", 2.0, 5);
  const std::string out = s + ".out";
  const plate::plate_decode_result r = plate::decode_plates(s, out, {});
  EXPECT_TRUE(r.complete);
  if (r.complete) {
    EXPECT_TRUE(read_file(out) == p.payload);
  }
  EXPECT_EQ(r.tile_reads, r.tiles);  // the tile cache keeps the strips' edges
  EXPECT_EQ(r.tile_reads_ahead_unused, 0u);
  // Most tiles but those of the decode's first loads (the first strip's first rows and the rows
  // below they load with them) come read ahead: 34 of 56 here, 10 while the read-ahead went by
  // the first guess and not by the sweep, and 0 to 4 when it stopped at each band's end (a tile
  // still queued when its rows come is read by prepare() and not counted: hence the margin).
  EXPECT_GE(4 * r.tile_reads_ahead, r.tile_reads) << r.tile_reads_ahead << " of " << r.tile_reads;
  // Without a tile cache, memory is a strip's tiles (half the plate's tile columns) over the rows
  // a prepare() holds (its row group, the next group's, the next strip's first ones): well under
  // two thirds of the plate's 4 x 14 tiles. (While the first guess at a tile's size, 4,096 px,
  // set which tiles a region reaches, every prepare() held 52 of the 56.)
  plate::plate_decode_options bounded;
  bounded.tile_cache_bytes = 0;
  const plate::plate_decode_result b = plate::decode_plates(s, out + ".bounded", bounded);
  expect_same_reading(b, r);
  EXPECT_EQ(b.tile_reads_ahead_unused, 0u);
  // Tiles read again (the strips' and bands' edges) take the pose their first reading found and
  // are not registered or placed again: every reading beyond a tile's first, and the tiles are
  // placed, verified and confirmed as when each is read once.
  EXPECT_EQ(r.tile_reads_pose_kept, 0u);
  EXPECT_GT(b.tile_reads, r.tile_reads);
  EXPECT_EQ(b.tile_reads_pose_kept, b.tile_reads - r.tile_reads);
  EXPECT_EQ(b.tiles_unregistered, r.tiles_unregistered);
  EXPECT_EQ(b.tiles_stitched, r.tiles_stitched);
  EXPECT_EQ(b.tiles_verified_by_frames, r.tiles_verified_by_frames);
  EXPECT_EQ(b.tiles_confirmed_by_overlap, r.tiles_confirmed_by_overlap);
  EXPECT_EQ(b.lattice_corrections, r.lattice_corrections);
  EXPECT_EQ(b.stage_sigma_nm, r.stage_sigma_nm);
  EXPECT_LE(3 * b.max_tiles_in_memory, 2 * b.tiles) << b.max_tiles_in_memory << " of " << b.tiles;
  fs::remove(out);
  fs::remove(out + ".bounded");
  fs::remove_all(s);
}

// The prefetcher's threads register the tiles they read ahead once the first tiles settled the
// scan's polarity and finder strength (the default); registering each tile when its rows come
// reads the scan alike: the same codes, the same tiles placed, stitched and moved, the same stage
// statistics, the same bytes. The scan is a typical one whose positions lie, and a tile of its
// last row lies by a whole code pitch too, which only that tile's frames tell: a tile the
// prefetcher registers, so its lattice check runs there.
TEST(ScanDecode, RegisteringTilesAheadChangesNothing)
{
  plate_fixture& p = small_plate();
  const std::string s = scan(p, "ahead", "typical", 3.0, 7);
  const std::vector<char> text = read_file((fs::path(p.dir) / "plate.json").string());
  const nlohmann::json pj = nlohmann::json::parse(text.begin(), text.end());
  const double pitch_nm = static_cast<double>(pj["grid"]["pitch"]) * static_cast<double>(pj["module_nm"]);
  double last_row_y = 0;
  rewrite_positions(s, [&](double&, double& y, std::size_t) { last_row_y = std::max(last_row_y, y); });
  bool moved = false;
  rewrite_positions(s, [&](double& x, double& y, std::size_t) {
    if (!moved && y == last_row_y) x += pitch_nm, moved = true;  // the last row's first tile
    x -= 1500;
    y += 1000;
  });
  ASSERT_TRUE(moved);
  for (const unsigned threads : {1u, 2u}) {
    SCOPED_TRACE(threads);
    plate::plate_decode_options ahead;
    ahead.threads = threads;
    plate::plate_decode_options not_ahead = ahead;
    not_ahead.register_ahead = false;
    const plate::plate_decode_result a = plate::decode_plates(s, s + ".ahead", ahead);
    const plate::plate_decode_result n = plate::decode_plates(s, s + ".not_ahead", not_ahead);
    EXPECT_TRUE(a.complete);
    expect_same_reading(a, n);
    expect_same_tiles(a, n);
    EXPECT_GE(a.lattice_corrections, 1u);
    EXPECT_EQ(n.tile_registrations_ahead, 0u);
    // Any tile but those of the first loads, which settle the polarity and the finder strength,
    // may be (how many are depends on the machine's load: here 16 of 31 without other work).
    EXPECT_GT(a.tile_registrations_ahead, 0u) << a.tile_registrations_ahead << " of " << a.tile_reads;
    EXPECT_LE(a.tile_registrations_ahead, a.tile_reads_ahead);
    const std::string suffix = a.complete ? "" : ".partial";
    EXPECT_TRUE(read_file(s + ".ahead" + suffix) == read_file(s + ".not_ahead" + suffix));
    if (cuda_backend_available()) {
      // The GPU's registration passes and lattice reads on the prefetcher's threads.
      plate::plate_decode_options cuda = ahead;
      cuda.backend = backend::cuda;
      const plate::plate_decode_result g = plate::decode_plates(s, s + ".cuda", cuda);
      expect_same_reading(g, n);
      expect_same_tiles(g, n);
      EXPECT_GT(g.tile_registrations_ahead, 0u);
      EXPECT_TRUE(read_file(s + ".cuda" + suffix) == read_file(s + ".not_ahead" + suffix));
    }
    for (const char* out : {".ahead", ".not_ahead", ".cuda"}) {
      fs::remove(s + out);
      fs::remove(s + out + ".partial");
    }
  }
  fs::remove_all(s);
}

TEST(ScanDecode, BadTilesNeverCrashNorGiveWrongBytes)
{
  plate_fixture& p = small_plate();
  const std::string s = scan(p, "bad", "clean", 3.0, 7);
  const std::vector<char> text = read_file((fs::path(s) / "scan.json").string());
  const nlohmann::json sj = nlohmann::json::parse(text.begin(), text.end());
  auto tile = [&](int i) { return (fs::path(s) / sj["tiles"][i]["file"].get<std::string>()).string(); };
  // Truncated, deleted, 1x1, random noise, and an empty file.
  {
    std::vector<char> bytes = read_file(tile(1));
    bytes.resize(bytes.size() / 3);
    std::ofstream(tile(1), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  fs::remove(tile(3));
  {
    sim::gray_image one;
    one.width = one.height = 1;
    one.bits = 16;
    one.pixels = {1234};
    sim::write_gray_tiff(tile(5), one);
  }
  {
    sim::gray_image noise;
    noise.width = noise.height = 1024;
    noise.bits = 16;
    noise.pixels.resize(1024 * 1024);
    std::mt19937 rng(3);
    for (auto& v : noise.pixels) v = static_cast<std::uint16_t>(rng());
    sim::write_gray_tiff(tile(7), noise);
  }
  std::ofstream(tile(9), std::ios::binary | std::ios::trunc).flush();
  const std::string out = s + ".out";
  plate::plate_decode_result r;
  ASSERT_NO_THROW(r = plate::decode_plates(s, out, {}));
  expect_cuda_agrees(s, r, out, "bad tiles");  // a 1x1 tile and a noise tile through the GPU passes too
  EXPECT_EQ(r.tiles_unreadable, 3u);  // truncated, missing, empty
  EXPECT_EQ(r.tile_errors.size(), 3u);
  EXPECT_GT(r.codes_unreadable, 0u);
  // Why: codes inside the three unreadable tiles were never scanned, those on their edges partly;
  // those the noise tile holds were sampled there, at an SNR far below a clean scan's (garbage,
  // not noise).
  EXPECT_EQ(r.codes_unreadable, r.codes_not_scanned + r.codes_partly_scanned + r.codes_unreadable_no_contrast +
                                    r.codes_unreadable_sampled);
  EXPECT_GT(r.codes_not_scanned, 0u);
  EXPECT_GT(r.codes_partly_scanned, 0u);
  EXPECT_GT(r.codes_unreadable_sampled, 0u);
  EXPECT_LT(r.median_snr_unreadable, 0.3 * r.median_snr);
  if (r.complete) {
    EXPECT_TRUE(read_file(out) == p.payload);
  } else {
    EXPECT_FALSE(fs::exists(out));
    EXPECT_TRUE(fs::exists(out + ".partial"));
    EXPECT_GT(r.lost_frames, 0u);
  }
  fs::remove(out);
  fs::remove(out + ".partial");
  fs::remove_all(s);
}

// A harsh scan at 3 px/module is noise-bound: its unreadable codes were sampled where they lie,
// at about the SNR of those that decoded (the report tells this from coverage and placement).
TEST(ScanDecode, NoiseBoundLossesAreSampledAtTheDecodedCodesSnr)
{
  plate_fixture& p = small_plate();
  const std::string s = scan(p, "noise_bound", "harsh", 3.0, 1, without_defects);
  const std::string out = s + ".out";
  const plate::plate_decode_result r = plate::decode_plates(s, out, {});
  expect_cuda_agrees(s, r, out, "harsh at 3 px/module");
  EXPECT_GT(r.codes_unreadable, 0u);
  EXPECT_EQ(r.codes_unreadable, r.codes_not_scanned + r.codes_partly_scanned + r.codes_unreadable_no_contrast +
                                    r.codes_unreadable_sampled);
  // Most were sampled whole (a few lie where the stage error opened a gap between tiles).
  EXPECT_GE(r.codes_unreadable_sampled * 10, r.codes_unreadable * 8);
  EXPECT_GT(r.median_snr_unreadable, 0.8 * r.median_snr);
  EXPECT_LT(r.median_snr_unreadable, 1.05 * r.median_snr);
  // The coverage figures: the stage error the simulator drew (harsh: sigma 1 um per axis; the
  // estimate takes the larger axis over a few dozen tiles) and the overlap it planned.
  const sim::simulate_options harsh = sim::preset("harsh");
  EXPECT_GT(r.stage_sigma_nm, 0.7 * harsh.stage_sigma_nm);
  EXPECT_LT(r.stage_sigma_nm, 1.5 * harsh.stage_sigma_nm);
  const std::vector<char> text = read_file((fs::path(p.dir) / "plate.json").string());
  const double module_nm = nlohmann::json::parse(text.begin(), text.end())["module_nm"];
  const double tile_nm = harsh.tile_px * module_nm / 3.0;  // 3 px/module
  EXPECT_NEAR(r.planned_overlap_nm, harsh.overlap * tile_nm, 1.0);
  fs::remove(out);
  fs::remove(out + ".partial");
  fs::remove_all(s);
}

TEST(ScanDecode, ReportAndHeatmapOfAScan)
{
  plate_fixture& p = small_plate();
  const std::string s = scan(p, "heat", "typical", 3.0, 8, without_defects);
  plate::plate_decode_options o;
  o.heatmap = s + ".png";
  const plate::plate_decode_result r = plate::decode_plates(s, s + ".out", o);
  EXPECT_TRUE(r.complete);
  EXPECT_TRUE(fs::exists(o.heatmap));
  EXPECT_GT(r.tiles, 0u);
  EXPECT_EQ(r.tiles_unreadable, 0u);
  EXPECT_EQ(r.codes, r.codes_clean + r.codes_corrected + r.codes_unreadable + 0);
  std::uint64_t in_histogram = 0;
  for (auto c : r.margin_histogram) in_histogram += c;
  EXPECT_EQ(in_histogram, r.codes_clean + r.codes_corrected);
  EXPECT_GE(r.rs_symbols_corrected, r.codes_corrected);  // each corrected code changed a codeword at least
  fs::remove(o.heatmap);
  fs::remove(s + ".out");
  fs::remove_all(s);
}

// The reads ahead on the background thread (scan_read_options::overlap_batches) read tiles the
// next prepare() may drop: a region far to the right drops, without a tile cache, the tiles of the
// region on the left, whose reads ahead are then waited for first (and their results given up
// with the tiles). Every cell read after each prepare() is what a reader without the overlap
// reads, in the same order of prepare() calls: the same decodes, bytes and SNRs.
TEST(ScanReader, BackgroundReadsAreWaitedForBeforeTheirTilesAreDropped)
{
  const plate_fixture p("wide_overlap", 40000, 21, 0, 0, wide_plate);  // its first rows full
  const std::string s = scan(p, "wide_overlap", "typical", 2.0, 4);
  const std::vector<char> json = read_file(p.dir + "/plate.json");
  const plate::manifest man = plate::manifest_from_json(std::string(json.begin(), json.end()));
  const plate::plate_geometry geo = plate::geometry_of(man);
  ASSERT_GT(geo.columns, 150u);  // the plate's right end lies far beyond the left tiles' reach
  // Left, far right (drops the left tiles), left again one row down, and a second sweep.
  const std::uint32_t left = 0, right = geo.columns - 12;
  const struct {
    std::uint64_t row;
    std::uint32_t col0;
  } regions[] = {{0, left}, {0, right}, {1, left}, {1, right}, {2, left}, {2, right}};
  auto read_all = [&](bool overlap, scan::scan_read_stats& st) {
    scan::scan_read_options o;
    o.threads = 2;
    o.batch_codes = true;
    o.read_ahead_rows = 8;
    o.cache_bytes = 0;
    o.prefetch_bytes = 0;
    o.overlap_batches = overlap;
    scan::scan_reader reader(scan::read_scan_set(s), man, o);
    std::vector<scan::cell_read> cells;
    for (const auto& region : regions) {
      reader.prepare(region.row, region.row + 1, region.col0, region.col0 + 12);
      for (std::uint32_t c = region.col0; c < region.col0 + 12; ++c) {
        if (geo.placement.at(region.row, c).kind == plate::placement_slot::empty) continue;
        cells.emplace_back();
        reader.read_cell(c % 2, region.row, c, cells.back());
      }
    }
    st = reader.stats();
    return cells;
  };
  scan::scan_read_stats serial_stats, overlap_stats;
  const std::vector<scan::cell_read> serial = read_all(false, serial_stats);
  const std::vector<scan::cell_read> overlapped = read_all(true, overlap_stats);
  ASSERT_EQ(serial.size(), overlapped.size());
  std::size_t decoded = 0;
  for (std::size_t i = 0; i < serial.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(overlapped[i].decoded, serial[i].decoded);
    EXPECT_EQ(overlapped[i].bytes, serial[i].bytes);
    EXPECT_EQ(overlapped[i].snr, serial[i].snr);
    EXPECT_EQ(overlapped[i].tiles, serial[i].tiles);
    decoded += serial[i].decoded;
  }
  EXPECT_GE(serial.size(), 36u);
  EXPECT_GT(decoded, serial.size() * 9 / 10);
  EXPECT_EQ(serial_stats.codes_read_in_background, 0u);
  EXPECT_EQ(serial_stats.background_batches_waited_for_drops, 0u);
  EXPECT_GT(overlap_stats.codes_read_in_background, 0u);
  // Each jump from left to right dropped tiles the left region's reads ahead were reading.
  EXPECT_GE(overlap_stats.background_batches_waited_for_drops, 2u);
  EXPECT_EQ(overlap_stats.tiles_loaded, serial_stats.tiles_loaded);
  EXPECT_EQ(overlap_stats.codes_read_ahead, serial_stats.codes_read_ahead);
  fs::remove_all(s);
}

// Registration's GPU passes keep a stream, pinned staging and device buffers per host thread,
// never freed (the CUDA runtime may be gone before thread-local destructors run): a decode must
// register its tiles on threads that last (util/lasting_threads.hpp), not on threads made for
// each band of tiles, each of which left its set behind (megabytes a thread and band). A second
// decode with as many threads makes no new set; narrow strips and no tile cache give it many
// bands of loads to make them in.
TEST(ScanDecode, CudaRegistrationKeepsToLastingThreads)
{
  if (!cuda_backend_available()) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
#if QRPLATE_WITH_CUDA
  plate_fixture& p = small_plate();
  const std::string s = scan(p, "lasting", "clean", 3.0, 8);
  plate::plate_decode_options o;
  o.backend = backend::cuda;
  o.threads = 3;
  o.tile_cache_bytes = 0;
  o.strip_px = 1024;
  const plate::plate_decode_result first = plate::decode_plates(s, s + ".out", o);
  EXPECT_TRUE(first.complete);
  EXPECT_GT(first.tile_reads, first.tiles);  // tiles read again: more loads than tiles
  const std::uint64_t made = host::tile_passes_cuda::made();
  const plate::plate_decode_result second = plate::decode_plates(s, s + ".out", o);
  EXPECT_TRUE(second.complete);
  EXPECT_EQ(host::tile_passes_cuda::made(), made) << "registering threads made per call";
  fs::remove_all(s);
  fs::remove(s + ".out");
#endif
}

// Codes read in per-tile batches after each band's registration (what --backend cuda does, here
// on the CPU) give the same result as cell by cell: the same counts, margins, SNR and bytes. A
// harsh scan, so that corrections, erasures and failures are all in it. With a CUDA device,
// --backend cuda (registration's pixel passes and the reads on the GPU) gives that result too;
// without one it is a clear error, not a silent fallback.
TEST(ScanDecode, BatchedReadsAreTheCellByCellReads)
{
  plate_fixture& p = sturdy_plate();
  const std::string s = scan(p, "batched", "harsh", 4.0, 2);
  plate::plate_decode_options one, batched;
  // Strips narrower than the plate, so that rows are prepared one by one and the batches read
  // rows ahead within a strip (a strip as wide as the plate takes a band of rows at once).
  one.strip_px = 1024;
  batched = one;
  batched.batch_codes = true;
  const plate::plate_decode_result a = plate::decode_plates(s, s + ".a", one);
  const plate::plate_decode_result b = plate::decode_plates(s, s + ".b", batched);
  EXPECT_GT(a.codes_corrected, 0u);
  auto expect_same = [&](const plate::plate_decode_result& x, const std::string& x_out, const char* what) {
    SCOPED_TRACE(what);
    expect_same_reading(x, a);
    const std::string suffix = a.complete ? "" : ".partial";
    EXPECT_TRUE(read_file(s + ".a" + suffix) == read_file(x_out + suffix));
  };
  expect_same(b, s + ".b", "batched on the CPU");
  EXPECT_GT(b.codes_read_across, 0u);  // codes no tile holds whole are in the batches too
  EXPECT_EQ(a.codes_read_across, 0u);
  // The stage timings add up to no more than the whole, and the batches are timed where they run.
  for (const plate::plate_decode_result* x : {&a, &b}) {
    EXPECT_GT(x->seconds_tiles, 0);
    EXPECT_GT(x->seconds_cells, 0);
    EXPECT_LE(x->seconds_tiles + x->seconds_code_batches + x->seconds_cells, x->seconds);
  }
  EXPECT_GT(b.seconds_code_batches, 0);
  // Reading rows ahead (the cuda backend's default) changes when a code is read, never how.
  for (const int rows : {1, 6, 200}) {
    plate::plate_decode_options ahead = batched;
    ahead.read_ahead_rows = rows;
    const std::string out = s + ".ahead" + std::to_string(rows);
    const plate::plate_decode_result r = plate::decode_plates(s, out, ahead);
    expect_same(r, out, ("read ahead " + std::to_string(rows) + " rows").c_str());
    EXPECT_GT(r.codes_read_ahead, 0u) << rows;  // the rows below, within the strip
    fs::remove(out), fs::remove(out + ".partial");
    // The reads ahead in the background while the next tiles are registered: the same again.
    ahead.overlap_reads = 1;
    const plate::plate_decode_result o = plate::decode_plates(s, out, ahead);
    expect_same(o, out, ("read ahead " + std::to_string(rows) + " rows in the background").c_str());
    EXPECT_EQ(o.codes_read_ahead, r.codes_read_ahead) << rows;
    EXPECT_GT(o.codes_read_in_background, 0u) << rows;
    fs::remove(out), fs::remove(out + ".partial");
  }
  plate::plate_decode_options cuda = one;
  cuda.backend = backend::cuda;
  if (!cuda_backend_available()) {
    EXPECT_THROW(plate::decode_plates(s, s + ".c", cuda), backend_unavailable);
    EXPECT_FALSE(fs::exists(s + ".c.partial"));  // a decode that could not start leaves no file
  } else {
    // The GPU's registration passes and reads: the CPU decoder's result exactly (issue #7).
    const plate::plate_decode_result g = plate::decode_plates(s, s + ".c", cuda);
    expect_same(g, s + ".c", "--backend cuda");
    EXPECT_GT(g.codes_read_across, 0u);  // codes across tiles read on the GPU too
  }
  // Options out of range: a clear error, and no output file.
  for (int k = 0; k < 2; ++k) {
    plate::plate_decode_options bad = one;
    (k == 0 ? bad.erasure_threshold : bad.read_ahead_rows) = k == 0 ? 300 : -5;
    EXPECT_THROW(plate::decode_plates(s, s + ".bad", bad), qrplate::invalid_argument) << k;
    EXPECT_FALSE(fs::exists(s + ".bad.partial")) << k;
    EXPECT_FALSE(fs::exists(s + ".bad")) << k;
  }
  for (const char* x : {".a", ".b", ".c", ".a.partial", ".b.partial", ".c.partial"}) fs::remove(s + x);
  fs::remove_all(s);
}

// Drops scan.json's pointer to plate.json.
void forget_plate(const std::string& scan_dir)
{
  const std::vector<char> text = read_file((fs::path(scan_dir) / "scan.json").string());
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end());
  j.erase("plate");
  std::ofstream((fs::path(scan_dir) / "scan.json").string()) << j.dump();
}

TEST(ScanDecode, WithoutPlateJsonTheHeaderCodesAreRead)
{
  plate_fixture& p = small_plate();
  const std::string s = scan(p, "bootstrap", "typical", 3.0, 10, [](sim::simulate_options& o) { o.missing_tile_rate = 0; });
  forget_plate(s);
  const std::string out = s + ".out";
  const plate::plate_decode_result r = plate::decode_plates(s, out, {});
  EXPECT_TRUE(r.bootstrapped);
  EXPECT_TRUE(r.complete);
  EXPECT_FALSE(r.digest_checked);  // the header codes do not carry the payload's SHA-256
  EXPECT_TRUE(read_file(out) == p.payload);
  fs::remove(out);
  fs::remove_all(s);
}

TEST(ScanDecode, NoManifestAnywhereIsAClearError)
{
  plate_fixture& p = small_plate();
  // A patch from the middle of the plate: no header code in it.
  const std::string s = scan(p, "nojson", "clean", 3.0, 9, [](sim::simulate_options& o) { o.region = sim::module_region{300, 600, 200, 200}; });
  forget_plate(s);
  try {
    plate::decode_plates(s, s + ".out", {});
    ADD_FAILURE() << "decoded without a manifest";
  } catch (const invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--plate"), std::string::npos) << e.what();
  }
  // --plate names it.
  plate::plate_decode_options o;
  o.plate_json = (fs::path(p.dir) / "plate.json").string();
  const plate::plate_decode_result r = plate::decode_plates(s, s + ".out", o);
  EXPECT_FALSE(r.complete);  // a region of the plate: most frames are not in it
  EXPECT_GT(r.lost_frames, 0u);
  EXPECT_GT(r.codes_clean + r.codes_corrected, 0u);
  EXPECT_FALSE(fs::exists(s + ".out"));
  fs::remove(s + ".out.partial");
  fs::remove_all(s);
}

// ---------------------------------------------------------------------------------------------
// scan.json

struct scan_json_case {
  const char* text;
  const char* expect;  // part of the error message
};

TEST(ScanSet, MalformedScanJsonIsRefusedWithTheReason)
{
  const std::string dir = temp("json");
  fs::create_directories(dir);
  const scan_json_case cases[] = {
      {"{", "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {R"({"tiles": []})", "pixel_nm"},
      {R"({"pixel_nm": -3, "tiles": []})", "pixel_nm"},
      {R"({"pixel_nm": 16, "tiles": []})", "no tiles"},
      {R"({"pixel_nm": 16, "tiles": 5})", "tiles"},
      {R"({"pixel_nm": 16, "tiles": [{"x_nm": 0, "y_nm": 0}]})", "file"},
      {R"({"pixel_nm": 16, "tiles": [{"file": "a.tif", "x_nm": "zero", "y_nm": 0}]})", "x_nm"},
      {R"({"pixel_nm": 16, "tiles": [{"file": "../a.tif", "x_nm": 0, "y_nm": 0}]})", "inside the scan directory"},
      {R"({"pixel_nm": 16, "tiles": [{"file": "/etc/passwd", "x_nm": 0, "y_nm": 0}]})", "inside the scan directory"},
      {R"({"pixel_nm": 16, "tiles": [{"file": "a.tif", "x_nm": 0, "y_nm": 0}, {"file": "a.tif", "x_nm": 1, "y_nm": 0}]})",
       "twice"},
      {R"({"pixel_nm": 16, "plate": 7, "tiles": [{"file": "a.tif", "x_nm": 0, "y_nm": 0}]})", "plate"},
  };
  for (const auto& c : cases) {
    std::ofstream(fs::path(dir) / "scan.json") << c.text;
    try {
      scan::read_scan_set(dir);
      ADD_FAILURE() << "accepted " << c.text;
    } catch (const invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << c.text << " -> " << e.what();
    }
  }
  std::ofstream(fs::path(dir) / "scan.json") << R"({"pixel_nm": 16.5, "plate": "p/plate.json",
      "tiles": [{"file": "t1.tif", "x_nm": 10, "y_nm": -20.5}]})";
  const scan::scan_set s = scan::read_scan_set(dir);
  EXPECT_EQ(s.pixel_nm, 16.5);
  ASSERT_EQ(s.tiles.size(), 1u);
  EXPECT_EQ(s.tiles[0].file, (fs::path(dir) / "t1.tif").string());
  EXPECT_EQ(s.tiles[0].y_nm, -20.5);
  EXPECT_EQ(s.plate_json, (fs::path(dir) / "p/plate.json").string());
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// The pieces

// A symbol "sampled" with a brightness slope and noise, both polarities: threshold_symbol must
// give back its modules, and its confidences must rank the doubtful modules lowest.
TEST(SampleSymbol, ThresholdPlaneFollowsSlopeAndPolarity)
{
  const core::version_plan& plan = host::version_plan_for(5, ecc_level::Q);
  std::vector<std::uint8_t> data(60);
  std::mt19937 rng(5);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  std::vector<std::uint64_t> symbol(static_cast<std::size_t>(plan.size * plan.words));
  auto ws = std::make_unique<core::encode_workspace>();
  ASSERT_EQ(core::encode_byte_payload(plan, data.data(), static_cast<std::uint32_t>(data.size()), 3, *ws, symbol.data()), 3);
  const int n = plan.size;
  for (float polarity : {1.0f, -1.0f}) {
    std::vector<float> values(static_cast<std::size_t>(n * n));
    std::normal_distribution<float> noise(0, 3);
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) {
        const bool dark = core::get_bit(symbol.data() + r * plan.words, c);
        const float film = 100.0f + 1.5f * static_cast<float>(c) + 0.5f * static_cast<float>(r);  // a slope worth 70% of the contrast
        values[static_cast<std::size_t>(r * n + c)] = film + (dark ? -60.0f * polarity : 0.0f) + noise(rng);
      }
    values[static_cast<std::size_t>(20 * n + 20)] = 100.0f + 1.5f * 20 + 0.5f * 20 - 30.0f * polarity;  // right at the threshold
    std::vector<std::uint64_t> modules(static_cast<std::size_t>(n * plan.words));
    std::vector<std::uint8_t> confidence(static_cast<std::size_t>(n * n));
    const core::symbol_levels lv = core::threshold_symbol(plan, values.data(), nullptr, modules.data(), confidence.data());
    ASSERT_TRUE(lv.ok);
    EXPECT_NEAR(lv.dark - lv.light, -60.0f * polarity, 3.0f);
    EXPECT_EQ(lv.known_wrong, 0);
    int wrong = 0;
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c)
        if (!(r == 20 && c == 20))
          wrong += core::get_bit(modules.data() + r * plan.words, c) != core::get_bit(symbol.data() + r * plan.words, c);
    EXPECT_EQ(wrong, 0) << "polarity " << polarity;
    EXPECT_LT(confidence[static_cast<std::size_t>(20 * n + 20)], 40) << "polarity " << polarity;
    EXPECT_GT(confidence[0], 200);  // a finder module
  }
}

// The plane fit and the noise are summed in 32 interleaved lanes added up in lane order
// (sample_symbol.hpp), so that a GPU warp can sum a lane a thread: lanes computed in any order by
// any runner give the one-thread fit's doubles exactly. Values over eight decades, so that the
// order of the additions shows in the last bits (checked: the lanes added in reverse differ).
TEST(SampleSymbol, FitLanesAddUpToTheOneThreadFitInAnyRunOrder)
{
  const core::version_plan& plan = host::version_plan_for(40, ecc_level::L);
  const int n = plan.size;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> decade(-3.0f, 5.0f);
  std::vector<float> values(static_cast<std::size_t>(n * n));
  std::vector<std::uint8_t> valid(values.size());
  int reverse_differs = 0;
  for (int trial = 0; trial < 4; ++trial) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      values[i] = std::pow(10.0f, decade(rng));
      valid[i] = rng() % 10 != 0;
    }
    const core::plane_fit one = core::fit_brightness_plane(plan, values.data(), valid.data());
    ASSERT_TRUE(one.solved);

    core::plane_fit_sums lanes[core::plane_fit_lanes];
    int order[core::plane_fit_lanes];
    std::iota(order, order + core::plane_fit_lanes, 0);
    std::shuffle(order, order + core::plane_fit_lanes, rng);
    for (const int l : order) lanes[l] = core::plane_fit_lane(plan, values.data(), valid.data(), l);
    // Lane l: the known modules l, l + 32, ... that were sampled, in order (its value sum, by hand).
    int known = 0;
    for (int l = 0; l < core::plane_fit_lanes; ++l) {
      double sum = 0;
      int count = 0;
      for (int q = l; q < plan.known_count; q += 32)
        if (valid[plan.known[q]]) sum += values[plan.known[q]], ++count;
      ASSERT_EQ(lanes[l].s[0][4], sum) << "lane " << l;
      ASSERT_EQ(lanes[l].known, count) << "lane " << l;
      known += count;
    }
    core::plane_fit_sums total{}, reversed{};
    for (int l = 0; l < core::plane_fit_lanes; ++l) core::add_plane_fit_sums(total, lanes[l]);
    for (int l = core::plane_fit_lanes - 1; l >= 0; --l) core::add_plane_fit_sums(reversed, lanes[l]);
    const core::plane_fit lanes_fit = core::solve_brightness_plane(plan, total);
    EXPECT_EQ(one.levels.known, known);
    EXPECT_EQ(lanes_fit.levels.known, known);
    for (int k = 0; k < 4; ++k) EXPECT_EQ(lanes_fit.p[k], one.p[k]) << "trial " << trial << ", p" << k;
    const core::plane_fit reversed_fit = core::solve_brightness_plane(plan, reversed);
    reverse_differs += !std::equal(reversed_fit.p, reversed_fit.p + 4, one.p);

    core::plane_fit serial = one, laned = one;
    core::finish_levels(plan, serial, values.data(), valid.data());
    core::level_sums level_lanes[core::plane_fit_lanes];
    std::shuffle(order, order + core::plane_fit_lanes, rng);
    for (const int l : order) level_lanes[l] = core::levels_lane(plan, laned, values.data(), valid.data(), l);
    core::level_sums levels{0.0, 0};
    for (int l = 0; l < core::plane_fit_lanes; ++l) core::add_level_sums(levels, level_lanes[l]);
    core::set_levels(laned, levels);
    EXPECT_EQ(laned.sse, serial.sse) << "trial " << trial;
    EXPECT_EQ(laned.levels.noise, serial.levels.noise) << "trial " << trial;
    EXPECT_EQ(laned.levels.known_wrong, serial.levels.known_wrong) << "trial " << trial;
    EXPECT_TRUE(laned.levels.ok);
  }
  EXPECT_GT(reverse_differs, 0);  // the order of the lanes' additions matters for these values
}

// The small plate's geometry and its top-left 600 x 600 modules, for rendering tiles at chosen
// poses with the SEM model.
struct plate_window {
  plate::plate_geometry g;
  std::vector<std::uint64_t> window;
  sim::module_window mw{};

  plate_window()
  {
    plate_fixture& p = small_plate();
    const std::vector<char> json = read_file((fs::path(p.dir) / "plate.json").string());
    g = plate::geometry_of(plate::manifest_from_json(std::string(json.begin(), json.end())));
    sim::plate_image_reader reader((fs::path(p.dir) / "plate.tif").string());
    std::size_t stride = 0;
    reader.read_window(0, 0, 600, 600, window, stride);
    mw = sim::module_window{window.data(), stride, 0, 0, 600, 600, g.module_nm};
  }

  // 640 x 640 px tiles at 3 px/module: what the registration tests render.
  sim::tile_spec three_px_tile() const
  {
    sim::tile_spec spec;
    spec.width = spec.height = 640;
    spec.pixel_nm = g.module_nm / 3.0;
    return spec;
  }

  // A spec.width x spec.height tile of these modules rendered by the SEM model at `pose`.
  sim::gray_image render(const sim::sem_params& sem, const sim::tile_spec& spec, const sim::tile_pose& pose,
                         std::uint64_t seed) const
  {
    sim::gray_image img;
    img.width = spec.width;
    img.height = spec.height;
    img.bits = 16;
    img.pixels.resize(static_cast<std::size_t>(spec.width) * spec.height);
    sim::render_tile(sem, pose, spec, mw, seed, img.pixels.data());
    return img;
  }

  // The farthest (pixels) a registered map puts the plate points that the true pose shows at the
  // pixel positions `at` x `at` from those positions.
  double worst_pose_error(const core::affine_map& to_pixel, const sim::tile_pose& pose, double pixel_nm,
                          std::initializer_list<double> at) const
  {
    const double r = pose.rotation_deg * 3.14159265358979323846 / 180, s = pose.scale * pixel_nm;
    double worst = 0;
    for (double u : at)
      for (double v : at) {
        const double x = (pose.x_nm + s * (u * std::cos(r) - v * std::sin(r))) / g.module_nm;
        const double y = (pose.y_nm + s * (u * std::sin(r) + v * std::cos(r))) / g.module_nm;
        double fu, fv;
        to_pixel.apply(x, y, fu, fv);
        worst = std::max(worst, std::hypot(fu - u, fv - v));
      }
    return worst;
  }
};

// A tile rendered by the SEM model at a known pose (no noise, no drift): the registered map must
// put plate points within a fraction of a pixel of where the pose says.
TEST(TileRegistration, FindsTheTruePose)
{
  const plate_window pw;
  const plate::plate_geometry& g = pw.g;
  sim::sem_params sem;
  sem.noise = false;
  sem.drift_nm_per_s = 0;
  sem.jitter_nm = 0;
  sem.vibration_nm = 0;
  sim::tile_spec spec;
  spec.width = spec.height = 768;
  spec.pixel_nm = g.module_nm / 3.0;
  const sim::tile_pose cases[] = {{1500, 2800, 0.7, 1.006}, {2900, 1200, -1.1, 0.992}, {700, 3600, 0.0, 1.0}};
  for (const sim::tile_pose& c : cases) {
    // Nominal position 1 um off in x and y.
    const scan::scan_tile nominal{"t", c.x_nm + 1000, c.y_nm - 1000};
    const scan::posed_tile t = scan::register_tile(pw.render(sem, spec, c, 1), nominal, spec.pixel_nm, g, {});
    ASSERT_TRUE(t.registered) << c.x_nm;
    EXPECT_GT(t.matched, 10);
    EXPECT_LT(pw.worst_pose_error(t.to_pixel, c, spec.pixel_nm, {50.0, 384.0, 700.0}), 0.3)
        << "rms " << t.rms_px << " pose " << c.x_nm << "," << c.y_nm << " rotation " << c.rotation_deg;
  }
}


// Registration on the GPU (registration_options::cuda: its passes, vote, proposal keep and the
// batched confirm of every candidate pose) places a tile exactly where the CPU places it, the same
// doubles: noisy tiles at known poses, and tiles at the plate's corner whose nominal position is a
// code pitch off (a lattice alias among the candidates). It does not catch a wrong candidate order
// or one candidate's answers read for another: on these tiles, as on every scan tried, the same
// candidate wins either way.
TEST(TileRegistration, CudaRegistersAsTheCpu)
{
  if (!cuda_backend_available()) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
  const plate_window pw;
  const plate::plate_geometry& g = pw.g;
  sim::sem_params sem;
  const sim::tile_spec spec = pw.three_px_tile();
  const double pitch_nm = g.pitch * g.module_nm;
  struct tile_case {
    sim::tile_pose pose;
    double nominal_dx_nm, nominal_dy_nm;
  };
  const tile_case cases[] = {{{1500, 2800, 0.7, 1.006}, 1000, -1000},     {{2900, 1200, -1.1, 0.992}, -600, 300},
                             {{-300, -250, 0.4, 1.0}, pitch_nm, 0},        {{-300, -250, -0.3, 1.0}, 0, pitch_nm},
                             {{-300, -250, 0.0, 1.0}, pitch_nm, pitch_nm}, {{-200, 1500, 0.2, 1.0}, pitch_nm, 200}};
  int registered = 0;
  for (const tile_case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "pose " << c.pose.x_nm << "," << c.pose.y_nm << ", nominal off by "
                                      << c.nominal_dx_nm << "," << c.nominal_dy_nm);
    const scan::scan_tile nominal{"t", c.pose.x_nm + c.nominal_dx_nm, c.pose.y_nm + c.nominal_dy_nm};
    scan::registration_options cpu, gpu;
    gpu.cuda = true;
    const scan::posed_tile want = scan::register_tile(pw.render(sem, spec, c.pose, 3), nominal, spec.pixel_nm, g, cpu);
    const scan::posed_tile got = scan::register_tile(pw.render(sem, spec, c.pose, 3), nominal, spec.pixel_nm, g, gpu);
    ASSERT_NE(got.device, nullptr);
    EXPECT_EQ(got.registered, want.registered);
    EXPECT_EQ(got.polarity, want.polarity);
    EXPECT_EQ(got.contrast, want.contrast);
    EXPECT_EQ(got.matched, want.matched);
    EXPECT_EQ(got.confirmed, want.confirmed);
    EXPECT_EQ(got.rms_px, want.rms_px);
    EXPECT_EQ(got.finder_strength, want.finder_strength);
    for (int k = 0; k < 6; ++k) EXPECT_EQ(got.to_pixel.a[k], want.to_pixel.a[k]) << k;
    registered += want.registered;
  }
  EXPECT_GE(registered, 5);
}

// A tile read again is given the pose its first reading found (tile_pose::of, restore_tile):
// the pose fields as registered, and the integral image built again (on the host, or with CUDA on
// the device, where the GPU reads find it). That codes read through it read alike is
// FilesAreReadAheadAlongTheSweep's check.
TEST(TileRegistration, RestoredTileHasItsPoseAndPixelPasses)
{
  const plate_window pw;
  const plate::plate_geometry& g = pw.g;
  sim::sem_params sem;
  const sim::tile_spec spec = pw.three_px_tile();
  const sim::tile_pose pose{1500, 2800, 0.7, 1.006};
  const scan::scan_tile nominal{"t", pose.x_nm + 1000, pose.y_nm - 1000};
  for (const bool cuda : {false, true}) {
    if (cuda && !cuda_backend_available()) continue;
    SCOPED_TRACE(cuda ? "cuda" : "cpu");
    scan::registration_options ro;
    ro.cuda = cuda;
    scan::posed_tile first = scan::register_tile(pw.render(sem, spec, pose, 3), nominal, spec.pixel_nm, g, ro);
    ASSERT_TRUE(first.registered);
    first.verified = true;  // as placing may leave it
    first.anchor_search_px = 7;
    const scan::tile_pose kept = scan::tile_pose::of(first);
    const scan::posed_tile again =
        scan::restore_tile(pw.render(sem, spec, pose, 3), nominal, kept, spec.pixel_nm, g, ro);
    EXPECT_TRUE(again.pose_kept);
    EXPECT_FALSE(first.pose_kept);
    for (int k = 0; k < 6; ++k) {
      EXPECT_EQ(again.to_pixel.a[k], first.to_pixel.a[k]) << k;
      EXPECT_EQ(again.to_plate.a[k], first.to_plate.a[k]) << k;
    }
    EXPECT_EQ(again.registered, first.registered);
    EXPECT_TRUE(again.verified);
    EXPECT_EQ(again.anchor_search_px, 7);
    EXPECT_EQ(again.polarity, first.polarity);
    EXPECT_EQ(again.contrast, first.contrast);
    EXPECT_EQ(again.matched, first.matched);
    EXPECT_EQ(again.confirmed, first.confirmed);
    EXPECT_EQ(again.finder_strength, first.finder_strength);
    EXPECT_EQ(again.integral_shift, first.integral_shift);
    EXPECT_EQ(again.device != nullptr, cuda);
    // The integral image, as registering built it (on the host, or built there from the pixels).
    const core::integral_view a = again.integral_image(), b = first.integral_image();
    ASSERT_EQ(again.integral.size(), first.integral.size());
    EXPECT_TRUE(again.integral == first.integral);
    EXPECT_EQ(a.shift, b.shift);
  }
}

// Two tiles rendered at known poses that overlap by ~100 px: register_against places the second
// by the content it shares with the first (already placed), whatever its own finders say, to a
// fraction of a pixel; with nothing in common it declines and leaves the tile alone.
TEST(TileRegistration, OverlapWithAPlacedNeighbourGivesTheTruePose)
{
  const plate_window pw;
  const plate::plate_geometry& g = pw.g;
  sim::sem_params sem;
  sem.drift_nm_per_s = 0;
  sem.jitter_nm = 0;
  sem.vibration_nm = 0;
  sim::tile_spec spec;
  spec.width = spec.height = 512;
  spec.pixel_nm = g.module_nm / 3.0;
  auto render = [&](const sim::tile_pose& pose) { return pw.render(sem, spec, pose, 7); };
  const double step_nm = 412 * spec.pixel_nm;  // ~100 px of overlap
  const sim::tile_pose ref_pose{1500, 2000, 0.3, 1.0};
  const sim::tile_pose true_pose{1500 + step_nm + 260, 2000 - 180, -0.2, 1.0};  // stage error ~5 and ~4 modules
  const scan::scan_tile ref_tile{"a", ref_pose.x_nm, ref_pose.y_nm};
  const scan::scan_tile t_tile{"b", 1500 + step_nm, 2000};  // where the stage was told to go
  scan::registration_options ro;
  ro.polarity = 1;
  const scan::posed_tile ref = scan::register_tile(render(ref_pose), ref_tile, spec.pixel_nm, g, ro);
  ASSERT_TRUE(ref.registered);
  scan::posed_tile t = scan::register_tile(render(true_pose), t_tile, spec.pixel_nm, g, ro);
  t.to_pixel = t.to_pixel.shifted(-30, 20);  // as if its own finders had fooled it
  t.to_pixel.inverse(t.to_plate);
  ASSERT_TRUE(scan::register_against(t, ref, g, spec.pixel_nm, 0, 0, 12));
  EXPECT_TRUE(t.stitched && t.registered);
  EXPECT_LT(pw.worst_pose_error(t.to_pixel, true_pose, spec.pixel_nm, {10.0, 256.0, 500.0}), 0.5)
      << "rms " << t.rms_px << " confirmed " << t.confirmed;
  // A stage error beyond the search: the true shift is not among those tried.
  scan::posed_tile far = scan::register_tile(render(true_pose), t_tile, spec.pixel_nm, g, ro);
  EXPECT_FALSE(scan::register_against(far, ref, g, spec.pixel_nm, -40, 40, 6));
  EXPECT_FALSE(far.stitched);
  // A neighbour that shares no part of the plate.
  const scan::scan_tile away{"c", 1500 + 5 * step_nm, 2000};
  scan::posed_tile lone = scan::register_tile(render({away.x_nm, away.y_nm, 0, 1.0}), away, spec.pixel_nm, g, ro);
  EXPECT_FALSE(scan::register_against(lone, ref, g, spec.pixel_nm, 0, 0, 12));
}

// estimate_contrast (a histogram of module-box means) against the plain computation: every
// box mean, sorted, the 5th and 95th percentiles.
TEST(TileRegistration, ContrastMatchesSortedPercentiles)
{
  std::mt19937_64 rng(77);
  for (int trial = 0; trial < 6; ++trial) {
    sim::gray_image img;
    img.width = 200 + 37 * static_cast<std::uint32_t>(trial);
    img.height = 150 + 11 * static_cast<std::uint32_t>(trial);
    img.bits = 16;
    img.pixels.resize(static_cast<std::size_t>(img.width) * img.height);
    std::uniform_int_distribution<int> level(0, 65535), noise(-900, 900);
    const int lo = level(rng) / 2, hi = 32768 + level(rng) / 2;
    for (auto& v : img.pixels) v = static_cast<std::uint16_t>(std::clamp((rng() % 3 == 0 ? lo : hi) + noise(rng), 0, 65535));
    const double m = 2.0 + trial;
    std::vector<std::uint32_t> sums;
    const int shift = scan::build_integral(img, m, sums);
    EXPECT_EQ(shift, 0);
    const core::integral_view iv{sums.data(), static_cast<int>(img.width), static_cast<int>(img.height), shift};
    const int step = static_cast<int>(std::lround(m));
    std::vector<double> means;
    for (std::uint32_t y = 0; y + step <= img.height; y += step)
      for (std::uint32_t x = 0; x + step <= img.width; x += step) {
        double sum = 0;
        for (int j = 0; j < step; ++j)
          for (int i = 0; i < step; ++i) sum += img.pixels[(y + j) * img.width + x + i];
        means.push_back(sum / (step * step));
      }
    std::sort(means.begin(), means.end());
    const double expected = means[means.size() - 1 - means.size() / 20] - means[means.size() / 20];
    EXPECT_NEAR(scan::estimate_contrast(iv, m), expected, 1.0) << "trial " << trial;  // whole image units
  }
}

// The 32-bit integral image's box sums against plain sums of the pixels: exact wherever the
// builder needs no shift (finder boxes up to ~28 px/module on 16-bit pixels), and within the
// truncation of the low bits beyond that.
TEST(TileRegistration, IntegralBoxesMatchPlainSums)
{
  std::mt19937_64 rng(31);
  sim::gray_image img;
  img.width = 700;
  img.height = 650;
  img.bits = 16;
  img.pixels.resize(static_cast<std::size_t>(img.width) * img.height);
  for (auto& v : img.pixels) v = static_cast<std::uint16_t>(65535 - rng() % 64);  // near the top: the worst case
  for (double m : {1.5, 4.0, 27.0, 40.0, 70.0}) {
    std::vector<std::uint32_t> sums;
    const int shift = scan::build_integral(img, m, sums);
    EXPECT_EQ(shift == 0, m <= 28.0) << m;
    const core::integral_view iv{sums.data(), static_cast<int>(img.width), static_cast<int>(img.height), shift};
    const int side = 2 * core::round_to_int(4.5 * m);
    for (int trial = 0; trial < 40; ++trial) {
      const int w = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(std::min(side, 699)));
      const int h = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(std::min(side, 649)));
      const int x0 = static_cast<int>(rng() % static_cast<std::uint64_t>(img.width - w + 1));
      const int y0 = static_cast<int>(rng() % static_cast<std::uint64_t>(img.height - h + 1));
      double plain = 0;
      for (int y = y0; y < y0 + h; ++y)
        for (int x = x0; x < x0 + w; ++x) plain += img.pixels[static_cast<std::size_t>(y) * img.width + x];
      double area = 0;
      const double box = iv.box(x0, y0, x0 + w, y0 + h, area);
      EXPECT_EQ(area, static_cast<double>(w) * h);
      if (shift == 0) {
        EXPECT_EQ(box, plain) << "m " << m << " box " << w << "x" << h;
      } else {
        EXPECT_LE(plain - box, area * ((1 << shift) - 1)) << "m " << m;
        EXPECT_GE(plain - box, 0) << "m " << m;
      }
    }
  }
}

// core::round_to_int is std::lround, inline (halves away from zero), and safe out of range.
TEST(SampleSymbol, RoundToIntIsLround)
{
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> any(-5000, 5000);
  for (int i = 0; i < 100000; ++i) {
    const double x = i < 2000 ? (i - 1000) * 0.5 : any(rng);
    ASSERT_EQ(core::round_to_int(x), static_cast<int>(std::lround(x))) << x;
  }
  EXPECT_EQ(core::round_to_int(std::nan("")), -1000000000);
  EXPECT_EQ(core::round_to_int(1e300), 1000000000);
  EXPECT_EQ(core::round_to_int(-1e300), -1000000000);
}

}  // namespace
