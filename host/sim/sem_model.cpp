// The CPU runner of the SEM forward model: parameter checks, the per-tile set-up (jumps) and a
// loop over rows of the QRP_HD pieces in sem_pixel.hpp, on all cores by bands of rows.
#include "qrplate/sim/sem_model.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "qrplate/error.hpp"
#include "qrplate/sim/parameter_error.hpp"
#include "qrplate/sim/sem_pixel.hpp"

namespace qrplate::sim {
namespace {

// %g, as the range errors print values.
std::string number(double v) { return parameter_error::format(v); }

[[noreturn]] void fail(const char* name, double value, const std::string& rule)
{
  throw parameter_error("SEM model", name, value, rule);
}

void require(bool ok, const char* name, double value, const char* rule)
{
  if (!std::isfinite(value)) fail(name, value, "must be a finite number");
  if (!ok) fail(name, value, rule);
}

// More jumps than this in one tile is a parameter mistake (and would need unbounded memory).
constexpr double max_jumps_per_tile = 1e6;

// Upper bounds of the beam and scan parameters: ~100 x the harsh preset's (docs/SIMULATOR.md),
// far past any real SEM, and small enough that a tile's module window (the footprint plus these
// blurs and motions) stays a few MB; unbounded, a typo like 1e9 asked for terabytes.
constexpr double max_sigma_nm = 1000;
constexpr double max_halo_sigma_nm = 10000;
constexpr double max_dwell_us = 1000;
constexpr double max_flyback_us = 10000;
constexpr double max_drift_nm_per_s = 10000;
constexpr double max_jump_rate_per_s = 10000;
constexpr double max_jump_nm = 10000;
constexpr double max_jitter_nm = 1000;  // and vibration_nm
constexpr double max_vibration_hz = 1e6;

struct prepared_tile {
  tile_context ctx;
  std::vector<jump_event> jumps;
  std::vector<double> tables[3];  // core x, core y, halo
};

// Points t at a table of its weights when one fits (s wide enough against the module).
void tabulate(weight_table& t, double module_nm, std::vector<double>& store)
{
  if (t.k == 0 || !(t.s > 0)) return;
  const double n = std::ceil(table_points_per_sigma * module_nm / t.s);
  if (n > max_table_intervals) return;
  t.n = static_cast<int>(n);
  t.per_nm = t.n / module_nm;
  const int len = 2 * t.k + 1;
  store.resize(static_cast<std::size_t>(t.n + 1) * len);
  for (int q = 0; q <= t.n; ++q) axis_weights(q * module_nm / t.n, module_nm, t.s, t.k, store.data() + q * len);
  t.w = store.data();
}

prepared_tile prepare(const sem_params& p, const tile_pose& pose, const tile_spec& spec, const module_window& modules,
                      std::uint64_t seed)
{
  validate(p);
  validate(spec);
  require(true, "pose x_nm", pose.x_nm, "");
  require(true, "pose y_nm", pose.y_nm, "");
  require(true, "pose rotation_deg", pose.rotation_deg, "");
  require(pose.scale > 0, "pose scale", pose.scale, "must be > 0");
  require(modules.module_nm > 0, "module_nm", modules.module_nm, "must be > 0");
  if (modules.width < 0 || modules.height < 0 || (modules.width > 0 && modules.height > 0 && !modules.rows) ||
      (modules.width > 0 && modules.stride * 64 < static_cast<std::size_t>(modules.width)))
    throw invalid_argument("SEM model: module window of " + std::to_string(modules.width) + " x " +
                           std::to_string(modules.height) + " modules has no rows or a stride of " +
                           std::to_string(modules.stride) + " words, too short");

  prepared_tile t;
  t.ctx = make_tile_context(p, pose, spec, modules.module_nm, seed);
  if (t.ctx.probe.too_wide) {
    // Named after the largest of the widths that add up to it, so the command line can name
    // the option to lower.
    const char* name = "sigma_nm";
    double value = p.sigma_nm;
    if (p.sigma_y_nm > value) name = "sigma_y_nm", value = p.sigma_y_nm;
    if (p.edge_round_nm > value) name = "edge_round_nm", value = p.edge_round_nm;
    fail(name, value,
         "too wide for modules of " + number(modules.module_nm) + " nm: the probe's sigma, " +
             number(std::max(t.ctx.probe.core_x.s, t.ctx.probe.core_y.s)) +
             " nm with the wall rounding, must be at most " + number(max_reach * modules.module_nm / 5) + " nm");
  }
  tabulate(t.ctx.probe.core_x, modules.module_nm, t.tables[0]);
  tabulate(t.ctx.probe.core_y, modules.module_nm, t.tables[1]);
  tabulate(t.ctx.probe.halo, modules.module_nm, t.tables[2]);
  if (p.jump_rate_per_s > 0 && p.jump_nm > 0) {
    const double rate_per_us = p.jump_rate_per_s * 1e-6;
    if (rate_per_us * t.ctx.total_us > max_jumps_per_tile)
      fail("jump_rate_per_s", p.jump_rate_per_s, "gives more than 1e6 jumps in one tile");
    double time = 0, x = 0, y = 0;
    for (std::uint64_t k = 0;; ++k) {
      double gap, dx, dy;
      make_jump(seed, k, rate_per_us, p.jump_nm, gap, dx, dy);
      time += gap;
      if (time >= t.ctx.total_us) break;
      x += dx;
      y += dy;
      t.jumps.push_back({time, x, y});
    }
  }
  t.ctx.jumps = t.jumps.data();
  t.ctx.jump_count = static_cast<std::uint32_t>(t.jumps.size());
  return t;
}

void render_rows(const sem_params& p, const tile_context& c, const module_window& w, std::uint32_t begin,
                 std::uint32_t end, std::uint16_t* out, double* positions)
{
  for (std::uint32_t j = begin; j < end; ++j)
    render_row(p, c, w, j, out + static_cast<std::size_t>(j) * c.width,
               positions ? positions + 2 * static_cast<std::size_t>(j) * c.width : nullptr);
}

}  // namespace

void validate(const sem_params& p)
{
  require(p.film_level >= 0, "film_level", p.film_level, "must be >= 0");
  require(p.milled_level >= 0, "milled_level", p.milled_level, "must be >= 0");
  require(p.edge_gain >= 0, "edge_gain", p.edge_gain, "must be >= 0");
  require(p.edge_lambda_nm >= 0, "edge_lambda_nm", p.edge_lambda_nm, "must be >= 0 (0 = no edge brightening)");
  require(p.edge_round_nm >= 0, "edge_round_nm", p.edge_round_nm, "must be >= 0");
  require(p.grain_amplitude >= 0, "grain_amplitude", p.grain_amplitude, "must be >= 0");
  require(p.grain_nm > 0 || p.grain_amplitude == 0, "grain_nm", p.grain_nm, "must be > 0 when grain_amplitude > 0");
  require(p.sigma_nm >= 0 && p.sigma_nm <= max_sigma_nm, "sigma_nm", p.sigma_nm, "must be in 0..1000 nm");
  require(p.sigma_y_nm >= 0 && p.sigma_y_nm <= max_sigma_nm, "sigma_y_nm", p.sigma_y_nm,
          "must be in 0..1000 nm (0 = same as sigma_nm)");
  require(true, "astigmatism_deg", p.astigmatism_deg, "");
  require(p.halo_weight >= 0 && p.halo_weight <= 1, "halo_weight", p.halo_weight, "must be in 0..1");
  require((p.halo_sigma_nm > 0 || p.halo_weight == 0) && p.halo_sigma_nm <= max_halo_sigma_nm, "halo_sigma_nm",
          p.halo_sigma_nm, "must be at most 10000 nm, and > 0 when halo_weight > 0");
  require(p.dwell_us > 0 && p.dwell_us <= max_dwell_us, "dwell_us", p.dwell_us, "must be > 0 and at most 1000 us");
  require(p.flyback_us >= 0 && p.flyback_us <= max_flyback_us, "flyback_us", p.flyback_us, "must be in 0..10000 us");
  require(p.drift_nm_per_s >= 0 && p.drift_nm_per_s <= max_drift_nm_per_s, "drift_nm_per_s", p.drift_nm_per_s,
          "must be in 0..10000 nm/s");
  require(true, "drift_angle_deg", p.drift_angle_deg, "");
  require(p.jump_rate_per_s >= 0 && p.jump_rate_per_s <= max_jump_rate_per_s, "jump_rate_per_s", p.jump_rate_per_s,
          "must be in 0..10000 per s");
  require(p.jump_nm >= 0 && p.jump_nm <= max_jump_nm, "jump_nm", p.jump_nm, "must be in 0..10000 nm");
  require(p.jitter_nm >= 0 && p.jitter_nm <= max_jitter_nm, "jitter_nm", p.jitter_nm, "must be in 0..1000 nm");
  require(p.vibration_nm >= 0 && p.vibration_nm <= max_jitter_nm, "vibration_nm", p.vibration_nm,
          "must be in 0..1000 nm");
  require(p.vibration_hz >= 0 && p.vibration_hz <= max_vibration_hz, "vibration_hz", p.vibration_hz,
          "must be in 0..1e6 Hz");
  require(p.background_tilt >= 0 && p.background_tilt <= 2, "background_tilt", p.background_tilt, "must be in 0..2");
  require(p.charging > -1, "charging", p.charging, "must be > -1");
  require(p.beam_pA > 0, "beam_pA", p.beam_pA, "must be > 0");
  require(p.yield > 0, "yield", p.yield, "must be > 0");
  require(p.gain_cv >= 0, "gain_cv", p.gain_cv, "must be >= 0");
  require(p.lag >= 0 && p.lag < 1, "lag", p.lag, "must be at least 0 and below 1");
  require(p.read_noise_e >= 0, "read_noise_e", p.read_noise_e, "must be >= 0");
  require(p.black_level >= 0 && p.black_level < 1, "black_level", p.black_level, "must be at least 0 and below 1");
  require(p.full_scale_e >= 0, "full_scale_e", p.full_scale_e, "must be >= 0 (0 = automatic)");
  if (p.full_scale_e == 0 && !(std::max(p.film_level, p.milled_level) > 0))
    throw invalid_argument("SEM model: film_level and milled_level are both 0: set one > 0 or set full_scale_e");
  if (p.bits != 8 && p.bits != 16) fail("bits", p.bits, "must be 8 or 16");
}

void validate(const tile_spec& t)
{
  if (t.width == 0 || t.height == 0)
    throw invalid_argument("SEM model: tile of " + std::to_string(t.width) + " x " + std::to_string(t.height) +
                           " pixels: both must be > 0");
  require(t.pixel_nm > 0, "pixel_nm", t.pixel_nm, "must be > 0");
}

void render_tile_rows(const sem_params& p, const tile_pose& pose, const tile_spec& spec, const module_window& modules,
                      std::uint64_t seed, std::uint32_t row_begin, std::uint32_t row_end, std::uint16_t* out,
                      double* true_positions)
{
  const prepared_tile t = prepare(p, pose, spec, modules, seed);
  if (row_begin > row_end || row_end > spec.height)
    throw invalid_argument("SEM model: rows " + std::to_string(row_begin) + ".." + std::to_string(row_end) +
                           " outside a tile of " + std::to_string(spec.height) + " rows");
  render_rows(p, t.ctx, modules, row_begin, row_end, out, true_positions);
}

void render_tile(const sem_params& p, const tile_pose& pose, const tile_spec& spec, const module_window& modules,
                 std::uint64_t seed, std::uint16_t* out, double* true_positions)
{
  const prepared_tile t = prepare(p, pose, spec, modules, seed);
  // Bands of rows handed out dynamically; every row is a function of its index alone.
  constexpr std::uint32_t band = 16;
  const std::uint32_t bands = (spec.height + band - 1) / band;
  const unsigned threads = std::min<unsigned>(std::max(1u, std::thread::hardware_concurrency()), bands);
  std::atomic<std::uint32_t> next{0};
  auto worker = [&] {
    for (;;) {
      const std::uint32_t b = next.fetch_add(1, std::memory_order_relaxed);
      if (b >= bands) return;
      render_rows(p, t.ctx, modules, b * band, std::min(spec.height, (b + 1) * band), out, true_positions);
    }
  };
  std::vector<std::thread> pool;
  // Joined on every way out: a thread still joinable when the vector dies calls std::terminate.
  struct joiner {
    std::vector<std::thread>& pool;
    ~joiner()
    {
      for (auto& th : pool) th.join();
    }
  } join_all{pool};
  try {
    for (unsigned k = 1; k < threads; ++k) pool.emplace_back(worker);
  } catch (const std::system_error&) {  // the system would not start them all: work with those it did
  }
  worker();
}

}  // namespace qrplate::sim
