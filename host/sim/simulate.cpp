// The scan simulator's driver: tile layout over the plate (nominal stage grid with overlap),
// true poses (stage error, rotation, scale), defects in plate coordinates, rendering of every
// tile by the per-pixel model on all cores, and the scan set files.
#include "qrplate/sim/simulate.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <new>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "qrplate/error.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"
#include "io/staging_dir.hpp"
#include "sim/scan_io.hpp"

namespace qrplate::sim {
namespace fs = std::filesystem;
namespace {

constexpr double pi = 3.14159265358979323846;

struct defect {
  enum kind_t { dust, scratch } kind;
  double x0, y0, x1, y1;  // dust: centre (x0, y0); scratch: from (x0, y0) to (x1, y1); nm
  double size;            // dust: radius; scratch: half width; nm
};

bool inside(const defect& d, double x, double y)
{
  if (d.kind == defect::dust) return (x - d.x0) * (x - d.x0) + (y - d.y0) * (y - d.y0) <= d.size * d.size;
  const double dx = d.x1 - d.x0, dy = d.y1 - d.y0;
  const double len2 = dx * dx + dy * dy;
  const double t = len2 > 0 ? std::clamp(((x - d.x0) * dx + (y - d.y0) * dy) / len2, 0.0, 1.0) : 0.0;
  const double px = d.x0 + t * dx - x, py = d.y0 + t * dy - y;
  return px * px + py * py <= d.size * d.size;
}

// Bounding box of a defect, nm.
void bounds(const defect& d, double& x0, double& y0, double& x1, double& y1)
{
  x0 = std::min(d.x0, d.kind == defect::dust ? d.x0 : d.x1) - d.size;
  x1 = std::max(d.x0, d.kind == defect::dust ? d.x0 : d.x1) + d.size;
  y0 = std::min(d.y0, d.kind == defect::dust ? d.y0 : d.y1) - d.size;
  y1 = std::max(d.y0, d.kind == defect::dust ? d.y0 : d.y1) + d.size;
}

std::uint64_t mix(std::uint64_t a, std::uint64_t b)
{
  std::uint64_t z = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct tile_job {
  std::uint32_t index;
  std::uint32_t ix, iy;
  double nominal_x, nominal_y;
  tile_pose pose;
  bool missing;
  std::string file;
};

void require(bool ok, const char* name, double value, const char* rule)
{
  if (!ok) throw parameter_error("simulate", name, value, std::isfinite(value) ? rule : "must be a finite number");
}

// Generous bounds (the harsh preset has 100 dust particles and 5 scratches per mm2): past them
// the plate is all defect, and a count that does not fit memory follows soon after.
constexpr double max_dust_per_mm2 = 1e6;
constexpr double max_scratches_per_mm2 = 1e5;
// Defects are held in memory and every tile looks at each: more over the scanned area is a mistake.
constexpr double max_defects = 1e7;
// How far the beam may wander from its raster during one tile (drift, jumps).
constexpr double max_travel_nm = 1e5;
constexpr unsigned max_threads = 1024;

}  // namespace

module_region parse_region(std::string_view text)
{
  module_region r;
  unsigned long long x = 0, y = 0, w = 0, h = 0;
  char tail = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%llu,%llu,%llux%llu%c", &x, &y, &w, &h, &tail) != 4 || w == 0 || h == 0)
    throw invalid_argument("region '" + s + "' is not X,Y,WxH in modules (e.g. 0,0,2000x1500)");
  r.x = x;
  r.y = y;
  r.width = w;
  r.height = h;
  return r;
}

simulate_options preset(std::string_view name)
{
  simulate_options o;
  sem_params& p = o.sem;
  if (name == "clean") {
    // A slow, careful scan: 100 pA x 2 us = 1248 primary electrons per pixel, a sharp probe,
    // a quiet stage (200 nm), no defects.
    p.beam_pA = 100;
    p.dwell_us = 2;
    p.sigma_nm = 1.5;
    p.drift_nm_per_s = 2;
    p.jitter_nm = 0.2;
    p.vibration_nm = 0.2;
    p.halo_weight = 0.02;
    o.stage_sigma_nm = 200;
    o.rotation_max_deg = 0.2;
    o.scale_max = 0.002;
  } else if (name == "typical") {
    // Production speed: 50 pA x 1 us = 312 electrons per pixel, half of them detected at full
    // signal, sigma 2 nm, drift 20 nm/s,
    // stage 500 nm, rotation 0.5 deg, some dust (20 per mm2), rare scratches, 1% tiles lost.
    p.beam_pA = 50;
    p.dwell_us = 1;
    p.yield = 0.5;
    p.sigma_nm = 2;
    p.drift_nm_per_s = 20;
    p.jitter_nm = 0.5;
    p.vibration_nm = 1;
    o.stage_sigma_nm = 500;
    o.rotation_max_deg = 0.5;
    o.scale_max = 0.005;
    o.dust_per_mm2 = 20;
    o.scratches_per_mm2 = 1;
    o.missing_tile_rate = 0.01;
  } else if (name == "harsh") {
    // A fast scan of a dirty plate: 20 pA x 0.5 us = 62 electrons per pixel, 30% detected, a wider,
    // astigmatic probe with more halo, drift 100 nm/s with jumps, strong vibration, stage
    // 1 um, rotation 1 deg, dust 100 per mm2, scratches 5 per mm2, 3% tiles lost.
    p.beam_pA = 20;
    p.dwell_us = 0.5;
    p.yield = 0.3;
    p.sigma_nm = 4;
    p.sigma_y_nm = 5.5;
    p.astigmatism_deg = 30;
    p.halo_weight = 0.08;
    p.drift_nm_per_s = 100;
    p.jump_rate_per_s = 0.5;
    p.jump_nm = 20;
    p.jitter_nm = 2;
    p.vibration_nm = 3;
    p.background_tilt = 0.1;
    p.charging = 0.08;
    p.gain_cv = 0.5;
    o.stage_sigma_nm = 1000;
    o.rotation_max_deg = 1.0;
    o.scale_max = 0.01;
    o.dust_per_mm2 = 100;
    o.scratches_per_mm2 = 5;
    o.missing_tile_rate = 0.03;
  } else {
    throw invalid_argument("unknown preset '" + std::string(name) + "' (expected clean, typical or harsh)");
  }
  return o;
}

simulate_result simulate(const std::string& plate_dir, const std::string& out_dir, const simulate_options& o)
{
  const auto start = std::chrono::steady_clock::now();
  validate(o.sem);
  auto in = [](double v, double lo, double hi) { return v >= lo && v <= hi; };  // false for NaN
  require(o.pixel_nm >= 0 && std::isfinite(o.pixel_nm), "pixel_nm", o.pixel_nm,
          "must be positive (0 = from px_per_module)");
  require(o.px_per_module > 0 && std::isfinite(o.px_per_module), "px_per_module", o.px_per_module, "must be positive");
  require(o.tile_px >= 16 && o.tile_px <= 16384, "tile_px", o.tile_px, "must be in 16..16384 pixels");
  require(o.overlap >= 0 && o.overlap < 0.9, "overlap", o.overlap, "must be at least 0 and below 0.9");
  require(in(o.stage_sigma_nm, 0, 1e5), "stage_sigma_nm", o.stage_sigma_nm, "must be in 0..100000 nm");
  require(in(o.rotation_max_deg, 0, 10), "rotation_max_deg", o.rotation_max_deg, "must be in 0..10 degrees");
  require(o.scale_max >= 0 && o.scale_max < 0.2, "scale_max", o.scale_max, "must be at least 0 and below 0.2");
  require(in(o.dust_per_mm2, 0, max_dust_per_mm2), "dust_per_mm2", o.dust_per_mm2, "must be in 0..1e6 per mm2");
  require(in(o.scratches_per_mm2, 0, max_scratches_per_mm2), "scratches_per_mm2", o.scratches_per_mm2,
          "must be in 0..1e5 per mm2");
  require(o.dust_diameter_um > 0 && std::isfinite(o.dust_diameter_um), "dust_diameter_um", o.dust_diameter_um,
          "must be positive");
  require(o.scratch_width_nm > 0 && std::isfinite(o.scratch_width_nm), "scratch_width_nm", o.scratch_width_nm,
          "must be positive");
  require(o.scratch_length_um > 0 && std::isfinite(o.scratch_length_um), "scratch_length_um", o.scratch_length_um,
          "must be positive");
  require(o.missing_tile_rate >= 0 && o.missing_tile_rate < 1, "missing_tile_rate", o.missing_tile_rate,
          "must be at least 0 and below 1");
  require(std::isfinite(o.overscan_nm) && o.overscan_nm < 1e7, "overscan_nm", o.overscan_nm,
          "must be a finite number of nm below 1e7 (1 cm)");
  require(o.threads <= max_threads, "threads", o.threads, "must be in 0..1024");
  // The beam's travel during one tile widens the module window every tile reads: bounded, so a
  // slow scan with fast drift is refused here rather than by the allocator.
  const double tile_seconds = o.tile_px * (o.tile_px * o.sem.dwell_us + o.sem.flyback_us) * 1e-6;
  const double drift_nm = o.sem.drift_nm_per_s * tile_seconds;
  const double jumps_nm = o.sem.jump_rate_per_s * tile_seconds * o.sem.jump_nm * 3;
  if (drift_nm > max_travel_nm)
    throw parameter_error("simulate", "drift_nm_per_s", o.sem.drift_nm_per_s,
                          "drifts the beam " + parameter_error::format(drift_nm / 1000) + " um during one tile's " +
                              parameter_error::format(tile_seconds) +
                              " s scan: at most 100 um (lower it, the dwell time or the tile size)");
  if (jumps_nm > max_travel_nm)
    throw parameter_error("simulate", "jump_rate_per_s", o.sem.jump_rate_per_s,
                          "with jumps of " + parameter_error::format(o.sem.jump_nm) + " nm moves the beam ~" +
                              parameter_error::format(jumps_nm / 1000) + " um during one tile's " +
                              parameter_error::format(tile_seconds) +
                              " s scan: at most 100 um (lower it, the jump size, the dwell time or the tile size)");

  // The plate.
  const fs::path plate_json = fs::path(plate_dir) / "plate.json";
  std::ifstream pj(plate_json);
  if (!pj) throw io_error("cannot read " + plate_json.string() + " (is " + plate_dir + " a plate directory?)");
  const std::string text((std::istreambuf_iterator<char>(pj)), std::istreambuf_iterator<char>());
  plate::image_info image;
  const plate::manifest man = plate::manifest_from_json(text, &image);
  const plate::plate_geometry geo = plate::geometry_of(man);
  sem_params sem = o.sem;
  sem.grain_seed = man.plate_id;  // the film texture belongs to the plate: every tile sees the same grain
  const double module_nm = man.module_nm;
  const double pixel_nm = o.pixel_nm > 0 ? o.pixel_nm : module_nm / o.px_per_module;
  tile_spec spec;
  spec.width = spec.height = o.tile_px;
  spec.pixel_nm = pixel_nm;
  validate(spec);

  module_region region{0, 0, man.width, man.height};
  if (o.region) {
    region = *o.region;
    if (region.x >= man.width || region.y >= man.height)
      throw invalid_argument("region starts outside the plate (" + std::to_string(man.width) + "x" +
                             std::to_string(man.height) + " modules)");
    region.width = std::min(region.width, man.width - region.x);
    region.height = std::min(region.height, man.height - region.y);
  }
  const double overscan = o.overscan_nm >= 0 ? o.overscan_nm : 3 * o.stage_sigma_nm;
  const double rx0 = static_cast<double>(region.x) * module_nm - overscan, ry0 = static_cast<double>(region.y) * module_nm - overscan;
  const double rw = static_cast<double>(region.width) * module_nm + 2 * overscan;
  const double rh = static_cast<double>(region.height) * module_nm + 2 * overscan;
  const double footprint = o.tile_px * pixel_nm;
  const double step = footprint * (1.0 - o.overlap);
  const auto across = static_cast<std::uint32_t>(rw <= footprint ? 1 : std::ceil((rw - footprint) / step) + 1);
  const auto down = static_cast<std::uint32_t>(rh <= footprint ? 1 : std::ceil((rh - footprint) / step) + 1);
  if (static_cast<double>(across) * down > 1e7) throw invalid_argument("more than 10 million tiles: choose a --region or larger pixels");

  // Tiles: nominal grid, true poses.
  std::mt19937_64 rng(mix(o.seed, 1));
  std::normal_distribution<double> stage(0.0, o.stage_sigma_nm);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::vector<tile_job> jobs;
  for (std::uint32_t iy = 0; iy < down; ++iy)
    for (std::uint32_t ix = 0; ix < across; ++ix) {
      tile_job j;
      j.index = static_cast<std::uint32_t>(jobs.size());
      j.ix = ix;
      j.iy = iy;
      j.nominal_x = rx0 + ix * step;
      j.nominal_y = ry0 + iy * step;
      j.pose.x_nm = j.nominal_x + stage(rng);
      j.pose.y_nm = j.nominal_y + stage(rng);
      j.pose.rotation_deg = o.rotation_max_deg * unit(rng);
      j.pose.scale = 1.0 + o.scale_max * unit(rng);
      j.missing = u01(rng) < o.missing_tile_rate;
      char name[64];
      std::snprintf(name, sizeof name, "tile_r%04u_c%04u.tif", iy, ix);
      j.file = name;
      jobs.push_back(j);
    }

  // Defects over the scanned area (Poisson counts), in plate nm.
  std::vector<defect> defects;
  const double area_mm2 = (rw + footprint) * (rh + footprint) * 1e-12;
  auto bound_count = [&](const char* name, double per_mm2, const char* what) {
    if (per_mm2 * area_mm2 > max_defects)
      throw parameter_error("simulate", name, per_mm2,
                            "gives ~" + parameter_error::format(per_mm2 * area_mm2) + " " + what + " over the " +
                                parameter_error::format(area_mm2) +
                                " mm2 scanned: at most 1e7 (lower the rate or scan a smaller region)");
  };
  bound_count("dust_per_mm2", o.dust_per_mm2, "dust particles");
  bound_count("scratches_per_mm2", o.scratches_per_mm2, "scratches");
  std::poisson_distribution<long> n_dust(o.dust_per_mm2 * area_mm2), n_scratch(o.scratches_per_mm2 * area_mm2);
  std::exponential_distribution<double> dust_d(1.0 / (o.dust_diameter_um * 1000.0));
  const long dusts = o.dust_per_mm2 > 0 ? n_dust(rng) : 0;
  for (long i = 0; i < dusts; ++i)
    defects.push_back({defect::dust, rx0 + u01(rng) * rw, ry0 + u01(rng) * rh, 0, 0, std::max(50.0, dust_d(rng) / 2)});
  const long scratches = o.scratches_per_mm2 > 0 ? n_scratch(rng) : 0;
  for (long i = 0; i < scratches; ++i) {
    const double x = rx0 + u01(rng) * rw, y = ry0 + u01(rng) * rh, a = u01(rng) * pi;
    const double half = o.scratch_length_um * 500.0;
    defects.push_back({defect::scratch, x - half * std::cos(a), y - half * std::sin(a), x + half * std::cos(a),
                       y + half * std::sin(a), o.scratch_width_nm / 2});
  }

  // Output directory, written under a temporary name.
  host::staging_dir output(out_dir);
  const fs::path& staging = output.path();

  // Render on every core; each thread has its own plate reader (it caches TIFF tiles).
  const fs::path plate_tif = fs::path(plate_dir) / image.file;
  // No more threads than tiles to render: each holds a tile's buffers (18 bytes a pixel).
  const auto rendered =
      static_cast<std::size_t>(std::count_if(jobs.begin(), jobs.end(), [](const tile_job& j) { return !j.missing; }));
  const unsigned threads = static_cast<unsigned>(std::clamp<std::size_t>(
      rendered, 1, std::max(1u, o.threads ? o.threads : std::thread::hardware_concurrency())));
  std::atomic<std::size_t> next{0};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  std::vector<gray_image> sheet(std::min<std::size_t>(jobs.size(), 6));
  std::atomic<std::uint64_t> done{0};
  const int bits = o.sem.bits;
  // Footprint margin for distortions: drift over a tile, jumps, jitter, vibration, the PSF halo.
  const double margin_nm = drift_nm + jumps_nm + 4 * (o.sem.jitter_nm + o.sem.vibration_nm) + 4 * o.sem.halo_sigma_nm +
                           4 * std::max(o.sem.sigma_nm, o.sem.sigma_y_nm) + 2 * module_nm;

  auto worker = [&] {
    try {
      plate_image_reader reader(plate_tif.string());
      std::vector<std::uint64_t> window;
      std::vector<double> positions(static_cast<std::size_t>(o.tile_px) * o.tile_px * 2);
      gray_image img;
      img.width = img.height = o.tile_px;
      img.bits = bits;
      img.pixels.resize(static_cast<std::size_t>(o.tile_px) * o.tile_px);
      for (;;) {
        const std::size_t i = next.fetch_add(1);
        if (i >= jobs.size()) return;
        throw_if_interrupted(o.interrupt);
        const tile_job& j = jobs[i];
        if (j.missing) continue;
        // Module window covering the rotated, scaled footprint plus the margin.
        const double c = std::cos(j.pose.rotation_deg * pi / 180), s = std::sin(j.pose.rotation_deg * pi / 180);
        const double side = footprint * j.pose.scale;
        double minx = j.pose.x_nm, maxx = j.pose.x_nm, miny = j.pose.y_nm, maxy = j.pose.y_nm;
        for (double u : {0.0, side})
          for (double v : {0.0, side}) {
            const double x = j.pose.x_nm + u * c - v * s, y = j.pose.y_nm + u * s + v * c;
            minx = std::min(minx, x), maxx = std::max(maxx, x), miny = std::min(miny, y), maxy = std::max(maxy, y);
          }
        const auto mx0 = static_cast<std::int64_t>(std::floor((minx - margin_nm) / module_nm));
        const auto my0 = static_cast<std::int64_t>(std::floor((miny - margin_nm) / module_nm));
        const auto mx1 = static_cast<std::int64_t>(std::ceil((maxx + margin_nm) / module_nm));
        const auto my1 = static_cast<std::int64_t>(std::ceil((maxy + margin_nm) / module_nm));
        std::size_t stride = 0;
        reader.read_window(mx0, my0, static_cast<std::uint64_t>(mx1 - mx0), static_cast<std::uint64_t>(my1 - my0), window, stride);
        module_window mw;
        mw.rows = window.data();
        mw.stride = stride;
        mw.x0 = mx0;
        mw.y0 = my0;
        mw.width = mx1 - mx0;
        mw.height = my1 - my0;
        mw.module_nm = module_nm;
        // Tiles run in parallel here, so each is rendered on this thread alone.
        render_tile_rows(sem, j.pose, spec, mw, mix(o.seed, 1000 + j.index), 0, o.tile_px, img.pixels.data(),
                         positions.data());
        // Defects hide what is under them: dust is a bright, noisy blob; a scratch a dark strip.
        std::vector<const defect*> here;
        for (const defect& d : defects) {
          double x0, y0, x1, y1;
          bounds(d, x0, y0, x1, y1);
          if (x1 >= minx - margin_nm && x0 <= maxx + margin_nm && y1 >= miny - margin_nm && y0 <= maxy + margin_nm) here.push_back(&d);
        }
        if (!here.empty()) {
          const double full = bits == 8 ? 255.0 : 65535.0;
          std::mt19937_64 drng(mix(o.seed, 5000000 + j.index));
          std::normal_distribution<double> speckle(0.0, 0.05 * full);
          for (std::size_t p = 0; p < img.pixels.size(); ++p) {
            const double x = positions[2 * p], y = positions[2 * p + 1];
            for (const defect* d : here) {
              if (!inside(*d, x, y)) continue;
              const double level = d->kind == defect::dust ? 0.92 * full : 0.08 * full;
              img.pixels[p] = static_cast<std::uint16_t>(std::clamp(level + speckle(drng), 0.0, full));
              break;
            }
          }
        }
        write_gray_tiff((staging / j.file).string(), img);
        if (i < sheet.size()) sheet[i] = img;
        const std::uint64_t n = ++done;
        if (o.progress) {
          std::fprintf(stderr, "\rqrplate: simulated %llu of %zu tiles   ", static_cast<unsigned long long>(n), jobs.size());
          std::fflush(stderr);
        }
      }
    } catch (...) {
      std::exception_ptr e = std::current_exception();
      try {
        throw;
      } catch (const std::bad_alloc&) {
        e = std::make_exception_ptr(std::runtime_error(
            "out of memory rendering tiles of " + std::to_string(o.tile_px) + " px on " + std::to_string(threads) +
            " threads (each holds ~" + std::to_string(18ull * o.tile_px * o.tile_px / 1000000 + 1) +
            " MB): give fewer --threads or a smaller --tile"));
      } catch (...) {
      }
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = e;
      next = jobs.size();
    }
  };
  std::vector<std::thread> pool;
  try {
    pool.reserve(threads - 1);
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  } catch (const std::system_error&) {
    // The system would not start them all (its thread limit, no memory for a stack): work with
    // those it did, as host::parallel_for and thread_team do.
  } catch (...) {
    // Anything else (no memory for a thread's state): stop the started ones after their tile and
    // join them, or their destructors would call std::terminate.
    next = jobs.size();
    for (auto& t : pool) t.join();
    throw std::runtime_error("could not start " + std::to_string(threads) +
                             " simulation threads (out of memory): give fewer --threads");
  }
  worker();
  for (auto& t : pool) t.join();
  if (o.progress) std::fputc('\n', stderr);
  if (failure) std::rethrow_exception(failure);

  // Which code cells the defects destroy (cells whose square meets the defect).
  simulate_result result;
  // A cell under several defects is destroyed once: the count is of distinct cells.
  std::vector<std::uint64_t> destroyed;
  nlohmann::ordered_json dj = nlohmann::ordered_json::array();
  const double pitch_nm = geo.pitch * module_nm, code_nm = geo.code_size * module_nm;
  for (const defect& d : defects) {
    double x0, y0, x1, y1;
    bounds(d, x0, y0, x1, y1);
    nlohmann::ordered_json cells = nlohmann::ordered_json::array();
    const double gx = static_cast<double>(geo.grid_x) * module_nm, gy = static_cast<double>(geo.grid_y) * module_nm;
    const auto c0 = static_cast<std::int64_t>(std::floor((x0 - gx) / pitch_nm)), c1 = static_cast<std::int64_t>(std::floor((x1 - gx) / pitch_nm));
    const auto r0 = static_cast<std::int64_t>(std::floor((y0 - gy) / pitch_nm)), r1 = static_cast<std::int64_t>(std::floor((y1 - gy) / pitch_nm));
    for (std::int64_t r = std::max<std::int64_t>(0, r0); r <= r1 && r < static_cast<std::int64_t>(geo.rows); ++r)
      for (std::int64_t cc = std::max<std::int64_t>(0, c0); cc <= c1 && cc < static_cast<std::int64_t>(geo.columns); ++cc) {
        // Sample the code square on a fine grid: a defect touching it destroys it.
        const double cx = gx + static_cast<double>(cc) * pitch_nm, cy = gy + static_cast<double>(r) * pitch_nm;
        bool hit = false;
        for (int a = 0; a <= 16 && !hit; ++a)
          for (int b = 0; b <= 16 && !hit; ++b) hit = inside(d, cx + code_nm * a / 16, cy + code_nm * b / 16);
        if (hit) {
          cells.push_back({{"row", r}, {"column", cc}});
          destroyed.push_back(static_cast<std::uint64_t>(r) * geo.columns + static_cast<std::uint64_t>(cc));
        }
      }
    nlohmann::ordered_json e;
    if (d.kind == defect::dust) {
      e = {{"type", "dust"}, {"x_nm", d.x0}, {"y_nm", d.y0}, {"radius_nm", d.size}};
      ++result.dust;
    } else {
      e = {{"type", "scratch"}, {"x0_nm", d.x0}, {"y0_nm", d.y0}, {"x1_nm", d.x1}, {"y1_nm", d.y1}, {"width_nm", 2 * d.size}};
      ++result.scratches;
    }
    e["destroyed_cells"] = cells;
    dj.push_back(e);
  }

  std::sort(destroyed.begin(), destroyed.end());
  result.destroyed_cells =
      static_cast<std::uint64_t>(std::unique(destroyed.begin(), destroyed.end()) - destroyed.begin());

  nlohmann::ordered_json scan, truth;
  scan["pixel_nm"] = pixel_nm;
  scan["plate"] = fs::absolute(plate_json).string();
  scan["tiles"] = nlohmann::ordered_json::array();
  truth["seed"] = o.seed;
  truth["pixel_nm"] = pixel_nm;
  truth["tile_px"] = o.tile_px;
  truth["tiles"] = nlohmann::ordered_json::array();
  for (const tile_job& j : jobs) {
    nlohmann::ordered_json t = {{"file", j.file}, {"nominal_x_nm", j.nominal_x}, {"nominal_y_nm", j.nominal_y},
                                {"x_nm", j.pose.x_nm}, {"y_nm", j.pose.y_nm}, {"rotation_deg", j.pose.rotation_deg},
                                {"scale", j.pose.scale}, {"missing", j.missing}};
    truth["tiles"].push_back(t);
    if (j.missing) {
      ++result.missing;
      continue;
    }
    scan["tiles"].push_back({{"file", j.file}, {"x_nm", j.nominal_x}, {"y_nm", j.nominal_y}});
    ++result.tiles;
  }
  truth["defects"] = dj;
  {
    std::ofstream f(staging / "scan.json");
    f << scan.dump(2) << "\n";
    std::ofstream g(staging / "truth.json");
    g << truth.dump(2) << "\n";
    if (!f || !g) throw io_error("cannot write scan.json / truth.json in " + staging.string());
  }
  std::vector<gray_image> shown;
  for (auto& t : sheet)
    if (!t.pixels.empty()) shown.push_back(std::move(t));
  if (!shown.empty()) write_contact_sheet((staging / "contact_sheet.png").string(), shown);

  throw_if_interrupted(o.interrupt);  // the staging directory goes with the unwinding
  output.commit();
  result.pixels = result.tiles * static_cast<std::uint64_t>(o.tile_px) * o.tile_px;
  result.pixel_nm = pixel_nm;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace qrplate::sim
