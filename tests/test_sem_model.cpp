// The SEM forward model (qrplate/sim/sem_model.hpp, sem_pixel.hpp). Expected values come from
// the physics and the documented formulas, computed here: the Poisson law for the dose of
// Goldstein eq. 5.19, 2.563 sigma as the 10-90 % width of a Gaussian-blurred edge, the pose
// transform, the acquisition-time formula, and a brute-force convolution of the sharp surface
// that the analytic probe blur is held to. Seeded; the seed is printed (override with
// QRPLATE_TEST_SEED=<n>).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "qrplate/error.hpp"
#include "qrplate/sim/parameter_error.hpp"
#include "qrplate/sim/sem_model.hpp"
#include "qrplate/sim/sem_pixel.hpp"

namespace {

namespace sim = qrplate::sim;
using sim::module_window;
using sim::sem_params;
using sim::tile_pose;
using sim::tile_spec;

unsigned test_seed()
{
  static const unsigned seed = [] {
    const char* env = std::getenv("QRPLATE_TEST_SEED");
    const unsigned s = env ? static_cast<unsigned>(std::strtoul(env, nullptr, 10)) : 20240917u;
    std::cout << "[ seed     ] QRPLATE_TEST_SEED=" << s << "\n";
    return s;
  }();
  return seed;
}

constexpr double pi = 3.141592653589793;
constexpr double deg = pi / 180;

// An owned module map (the view is module_window).
struct module_map {
  std::int64_t width, height;
  std::size_t stride;
  std::vector<std::uint64_t> words;

  module_map(std::int64_t w, std::int64_t h)
      : width(w),
        height(h),
        stride(static_cast<std::size_t>((w + 63) / 64)),
        words(stride * static_cast<std::size_t>(h))
  {
  }
  void set(std::int64_t col, std::int64_t row)
  {
    words[static_cast<std::size_t>(row) * stride + static_cast<std::size_t>(col / 64)] |= std::uint64_t{1}
                                                                                          << (col % 64);
  }
  module_window window(double module_nm = 49.0) const { return {words.data(), stride, 0, 0, width, height, module_nm}; }
};

// Everything that is not under test switched off: no noise, no grain, no distortion, no
// background, no lag.
sem_params quiet()
{
  sem_params p;
  p.noise = false;
  p.grain_amplitude = 0;
  p.drift_nm_per_s = 0;
  p.jitter_nm = 0;
  p.vibration_nm = 0;
  p.background_tilt = 0;
  p.charging = 0;
  p.lag = 0;
  return p;
}

struct rendered {
  std::vector<std::uint16_t> dn;
  std::vector<double> pos;
};

rendered render(const sem_params& p, const tile_pose& pose, const tile_spec& spec, const module_window& w,
                std::uint64_t seed)
{
  rendered r;
  r.dn.resize(static_cast<std::size_t>(spec.width) * spec.height);
  r.pos.resize(2 * r.dn.size());
  sim::render_tile(p, pose, spec, w, seed, r.dn.data(), r.pos.data());
  return r;
}

// The documented DN mapping, inverted: DN = black * max + electrons * max * (1 - black) / full_scale,
// full_scale = 2 * n * yield * max(film, milled) when 0, n = 6.24 * beam_pA * dwell_us.
struct dn_mapping {
  double dose;  // n * yield
  double black, per_e;
};

dn_mapping mapping(const sem_params& p)
{
  const double max_dn = p.bits == 8 ? 255 : 65535;
  const double dose = 6.24 * p.beam_pA * p.dwell_us * p.yield;
  const double fs = p.full_scale_e > 0 ? p.full_scale_e : 2 * dose * std::max(p.film_level, p.milled_level);
  return {dose, p.black_level * max_dn, max_dn * (1 - p.black_level) / fs};
}

double electrons(const dn_mapping& m, double dn)
{
  return (dn - m.black) / m.per_e;
}
double signal(const dn_mapping& m, double dn)
{
  return electrons(m, dn) / m.dose;
}
double expected_dn(const dn_mapping& m, double level)
{
  return m.black + m.dose * level * m.per_e;
}

struct moments {
  double mean, var, skew;
};

moments sample_moments(const std::vector<double>& v)
{
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double m2 = 0, m3 = 0;
  for (double x : v) {
    const double d = x - mean;
    m2 += d * d;
    m3 += d * d * d;
  }
  m2 /= static_cast<double>(v.size());
  m3 /= static_cast<double>(v.size());
  return {mean, m2 * static_cast<double>(v.size()) / static_cast<double>(v.size() - 1), m3 / std::pow(m2, 1.5)};
}

// ---------------------------------------------------------------------------------------------
// Parameter checks

TEST(SemModel, ValidateRejectsBadParameters)
{
  EXPECT_NO_THROW(sim::validate(sem_params{}));
  EXPECT_NO_THROW(sim::validate(tile_spec{}));
  auto bad = [](auto change) {
    sem_params p;
    change(p);
    return p;
  };
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.sigma_nm = -1; })), qrplate::invalid_argument);
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.sigma_y_nm = -0.5; })), qrplate::invalid_argument);
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.bits = 12; })), qrplate::invalid_argument);
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.lag = 1; })), qrplate::invalid_argument);
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.lag = 1.5; })), qrplate::invalid_argument);
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.dwell_us = -1; })), qrplate::invalid_argument);
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.dwell_us = 0; })), qrplate::invalid_argument);
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.halo_weight = 1.5; })), qrplate::invalid_argument);
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.beam_pA = 0; })), qrplate::invalid_argument);
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.film_level = std::nan(""); })), qrplate::invalid_argument);
  EXPECT_THROW(sim::validate(bad([](sem_params& p) { p.black_level = 1; })), qrplate::invalid_argument);
  tile_spec zero;
  zero.pixel_nm = 0;
  EXPECT_THROW(sim::validate(zero), qrplate::invalid_argument);
  tile_spec empty;
  empty.width = 0;
  EXPECT_THROW(sim::validate(empty), qrplate::invalid_argument);

  // render_tile checks too, and refuses a probe too wide for the 5-sigma neighbourhood.
  std::vector<std::uint16_t> out(16);
  const tile_spec small{4, 4, 10.0};
  EXPECT_THROW(
      sim::render_tile(bad([](sem_params& p) { p.sigma_nm = -1; }), tile_pose{}, small, module_window{}, 1, out.data()),
      qrplate::invalid_argument);
  EXPECT_THROW(sim::render_tile(bad([](sem_params& p) { p.sigma_nm = 100; }), tile_pose{}, small, module_window{}, 1,
                                out.data()),
               qrplate::invalid_argument);
  tile_pose flat;
  flat.scale = 0;
  EXPECT_THROW(sim::render_tile(sem_params{}, flat, small, module_window{}, 1, out.data()), qrplate::invalid_argument);
  try {
    sim::validate(bad([](sem_params& p) { p.sigma_nm = -1; }));
  } catch (const qrplate::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("sigma_nm"), std::string::npos) << e.what();
  }
}

// The upper bounds (about 100 x the harsh preset) hold at their limit and refuse past it, and a
// refusal names the member: the command line names its option from it.
TEST(SemModel, RangeErrorsNameTheParameter)
{
  struct bound {
    double sem_params::*field;
    const char* name;
    double limit;
  };
  const bound bounds[] = {
      {&sem_params::sigma_nm, "sigma_nm", 1000},
      {&sem_params::sigma_y_nm, "sigma_y_nm", 1000},
      {&sem_params::halo_sigma_nm, "halo_sigma_nm", 1e4},
      {&sem_params::dwell_us, "dwell_us", 1000},
      {&sem_params::flyback_us, "flyback_us", 1e4},
      {&sem_params::drift_nm_per_s, "drift_nm_per_s", 1e4},
      {&sem_params::jump_rate_per_s, "jump_rate_per_s", 1e4},
      {&sem_params::jump_nm, "jump_nm", 1e4},
      {&sem_params::jitter_nm, "jitter_nm", 1000},
      {&sem_params::vibration_nm, "vibration_nm", 1000},
      {&sem_params::vibration_hz, "vibration_hz", 1e6},
  };
  for (const bound& b : bounds) {
    sem_params p;
    p.*b.field = b.limit;
    EXPECT_NO_THROW(sim::validate(p)) << b.name << " = " << b.limit;
    p.*b.field = b.limit * 1.001;
    try {
      sim::validate(p);
      ADD_FAILURE() << b.name << " = " << p.*b.field << " accepted";
    } catch (const sim::parameter_error& e) {
      EXPECT_EQ(e.name(), b.name);
      EXPECT_EQ(e.value(), b.limit * 1.001);
      EXPECT_NE(std::string(e.what()).find(std::string("SEM model: ") + b.name + " = "), std::string::npos) << e.what();
    }
  }
  // The probe too wide for the modules is named by its wider axis.
  std::vector<std::uint16_t> out(16);
  const tile_spec small{4, 4, 10.0};
  sem_params wide;
  wide.sigma_y_nm = 100;
  try {
    sim::render_tile(wide, tile_pose{}, small, module_window{}, 1, out.data());
    ADD_FAILURE() << "a 100 nm probe accepted for 49 nm modules";
  } catch (const sim::parameter_error& e) {
    EXPECT_EQ(e.name(), "sigma_y_nm") << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Detector noise against the Poisson model for the dose

// Pearson chi-square of integer samples (up to DN rounding, `rounding` electrons) against
// Poisson(mean), bins with >= 20 expected merged. Returns chi2 and the degrees of freedom.
std::pair<double, int> poisson_chi2(const std::vector<double>& counts, double mean, double rounding)
{
  const auto n = static_cast<double>(counts.size());
  const int lo = std::max(0, static_cast<int>(mean - 5 * std::sqrt(mean)) - 1);
  const int hi = static_cast<int>(mean + 6 * std::sqrt(mean)) + 2;
  std::vector<double> pmf(hi + 1);
  for (int k = 0; k <= hi; ++k) pmf[k] = std::exp(k * std::log(mean) - mean - std::lgamma(k + 1.0));
  std::vector<double> observed(hi + 1);
  std::size_t fractional = 0;
  for (double c : counts) {
    const int k = static_cast<int>(std::lround(c));
    fractional += std::fabs(c - k) > rounding;
    observed[std::clamp(k, lo, hi)] += 1;
  }
  EXPECT_EQ(fractional, 0u) << "shot noise without gain noise gives whole electrons";
  // Bins lo..hi with tails folded in, then merge neighbours until each expects >= 20.
  std::vector<double> e, o;
  double ce = 0, co = 0;
  for (int k = lo; k <= hi; ++k) {
    double pk = pmf[k];
    if (k == lo)
      for (int j = 0; j < lo; ++j) pk += pmf[j];
    if (k == hi) {
      double tail = 1;
      for (int j = 0; j < hi; ++j) tail -= pmf[j];
      pk = std::max(tail, 0.0);
    }
    ce += pk * n;
    co += observed[k];
    if (ce >= 20) {
      e.push_back(ce);
      o.push_back(co);
      ce = co = 0;
    }
  }
  if (ce > 0) {
    e.back() += ce;
    o.back() += co;
  }
  double chi2 = 0;
  for (std::size_t i = 0; i < e.size(); ++i) chi2 += (o[i] - e[i]) * (o[i] - e[i]) / e[i];
  return {chi2, static_cast<int>(e.size()) - 1};
}

// A flat film (no milled modules), noise on, everything else that adds variance off.
sem_params flat_noise()
{
  sem_params p = quiet();
  p.noise = true;
  p.gain_cv = 0;
  p.read_noise_e = 0;
  return p;
}

std::vector<double> flat_electrons(const sem_params& p, std::uint32_t size, std::uint64_t seed)
{
  const tile_spec spec{size, size, 20.0};
  const rendered r = render(p, tile_pose{}, spec, module_window{}, seed);
  const dn_mapping m = mapping(p);
  std::vector<double> e(r.dn.size());
  for (std::size_t i = 0; i < e.size(); ++i) e[i] = electrons(m, r.dn[i]);
  return e;
}

TEST(SemModel, ShotNoiseIsPoissonForTheDoseLargeMean)
{
  // Defaults: n = 6.24 * 50 pA * 1 us = 312 electrons, mean detected 312 * 1.0 * 0.55 = 171.6,
  // through the default DN mapping (full scale 2 x film). The branch for large means.
  const sem_params p = flat_noise();
  const std::vector<double> e = flat_electrons(p, 512, test_seed());
  const double mean = 6.24 * 50 * 1 * 1.0 * 0.55;
  const moments s = sample_moments(e);
  const auto n = static_cast<double>(e.size());
  EXPECT_NEAR(s.mean, mean, 5 * std::sqrt(mean / n));
  EXPECT_NEAR(s.var / mean, 1.0, 5 * std::sqrt((1 / mean + 2) / n));
  // Poisson skewness 1/sqrt(mean) = 0.076; a normal approximation would give 0.
  EXPECT_NEAR(s.skew, 1 / std::sqrt(mean), 5 * std::sqrt(6 / n));
  const auto [chi2, df] = poisson_chi2(e, mean, 0.5 / mapping(p).per_e + 1e-9);
  EXPECT_LT(chi2, df + 6 * std::sqrt(2.0 * df)) << "df " << df;
}

TEST(SemModel, ShotNoiseIsPoissonForTheDoseSmallMean)
{
  // 1 pA, 1 us, yield 0.5: n = 6.24, mean 6.24 * 0.5 * 0.55 = 1.716 (the inversion branch).
  sem_params p = flat_noise();
  p.beam_pA = 1;
  p.yield = 0.5;
  p.full_scale_e = 40;
  const std::vector<double> e = flat_electrons(p, 512, test_seed() + 1);
  const double mean = 6.24 * 1 * 1 * 0.5 * 0.55;
  const moments s = sample_moments(e);
  const auto n = static_cast<double>(e.size());
  EXPECT_NEAR(s.mean, mean, 5 * std::sqrt(mean / n));
  EXPECT_NEAR(s.var / mean, 1.0, 5 * std::sqrt((1 / mean + 2) / n));
  const auto [chi2, df] = poisson_chi2(e, mean, 0.5 / mapping(p).per_e + 1e-9);
  EXPECT_LT(chi2, df + 6 * std::sqrt(2.0 * df)) << "df " << df;
  // P(0) = exp(-mean) exactly.
  const double zeros = static_cast<double>(std::count_if(e.begin(), e.end(), [](double x) { return x < 0.5; }));
  EXPECT_NEAR(zeros / n, std::exp(-mean), 5 * std::sqrt(std::exp(-mean) / n));
}

TEST(SemModel, GainNoiseAndReadNoiseAddVariance)
{
  // Mean 20 electrons (6.24 * I * 1 us * 0.55 = 20), full scale wide enough that nothing clips.
  sem_params p = flat_noise();
  p.beam_pA = 20 / (6.24 * 0.55);
  p.full_scale_e = 200;
  p.black_level = 0.3;
  const double mean = 20;
  const double tol = 0.03;  // relative; the standard error of a variance of 262144 samples is ~0.3 %

  p.gain_cv = 0.5;
  moments s = sample_moments(flat_electrons(p, 512, test_seed() + 2));
  EXPECT_NEAR(s.mean, mean, 0.05);
  EXPECT_NEAR(s.var / (mean * (1 + 0.25)), 1.0, tol) << "gain noise multiplies the variance by 1 + cv^2";

  p.gain_cv = 0;
  p.read_noise_e = 4;
  s = sample_moments(flat_electrons(p, 512, test_seed() + 3));
  EXPECT_NEAR(s.mean, mean, 0.05);
  EXPECT_NEAR(s.var / (mean + 16), 1.0, tol) << "read noise adds its square";

  p.gain_cv = 0.3;
  p.read_noise_e = 2;
  s = sample_moments(flat_electrons(p, 512, test_seed() + 4));
  EXPECT_NEAR(s.var / (mean * (1 + 0.09) + 4), 1.0, tol);
}

TEST(SemModel, LagIsARecursiveFilterAlongTheFastAxis)
{
  // Noise off: the lagged row must be out_i = (1 - lag) s_i + lag out_{i-1}, out_0 = s_0, of the
  // unlagged row, over a row that crosses milled and unmilled modules.
  module_map map(40, 4);
  for (int c = 0; c < 40; c += 3) map.set(c, 1);
  sem_params p = quiet();
  const tile_spec spec{600, 2, 3.0};
  const tile_pose pose{0, 60, 0, 1};
  const rendered sharp = render(p, pose, spec, map.window(), 5);
  p.lag = 0.6;
  const rendered lagged = render(p, pose, spec, map.window(), 5);
  const dn_mapping m = mapping(p);
  double prev = 0, max_err = 0;
  for (std::uint32_t i = 0; i < spec.width; ++i) {
    const double s = electrons(m, sharp.dn[i]);
    prev = i == 0 ? s : (1 - 0.6) * s + 0.6 * prev;
    max_err = std::max(max_err, std::fabs(electrons(m, lagged.dn[i]) - prev));
  }
  EXPECT_LT(max_err, 2 / m.per_e);  // two DN of rounding
  EXPECT_NE(sharp.dn, lagged.dn);
}

// ---------------------------------------------------------------------------------------------
// Probe: edge width, contrast, the analytic blur against a brute-force convolution

// x where the profile (sampled at xs) first crosses `level`, by linear interpolation.
double crossing(const std::vector<double>& xs, const std::vector<double>& v, double level)
{
  for (std::size_t i = 1; i < v.size(); ++i)
    if ((v[i - 1] - level) * (v[i] - level) <= 0 && v[i] != v[i - 1])
      return xs[i - 1] + (level - v[i - 1]) / (v[i] - v[i - 1]) * (xs[i] - xs[i - 1]);
  ADD_FAILURE() << "no crossing of " << level;
  return 0;
}

// The 10-90 % width of an edge scanned along `vertical_edge` ? x : y, with 0.5 nm pixels.
double edge_width(const sem_params& p, bool vertical_edge)
{
  // Milled: columns >= 10 (vertical edge at x = 490 nm) or rows >= 10 (horizontal, y = 490 nm).
  module_map map(20, 20);
  for (int r = 0; r < 20; ++r)
    for (int c = 0; c < 20; ++c)
      if ((vertical_edge ? c : r) >= 10) map.set(c, r);
  const std::uint32_t n = 200;
  const tile_spec spec{vertical_edge ? n : 1u, vertical_edge ? 1u : n, 0.5};
  // The scan line runs through the middle of module row (column) 5.
  const tile_pose pose{vertical_edge ? 440.0 : 5.5 * 49, vertical_edge ? 5.5 * 49 : 440.0, 0, 1};
  const rendered r = render(p, pose, spec, map.window(), 9);
  const dn_mapping m = mapping(p);
  std::vector<double> xs(n), frac(n);
  const double film = expected_dn(m, p.film_level), milled = expected_dn(m, p.milled_level);
  for (std::uint32_t i = 0; i < n; ++i) {
    xs[i] = r.pos[2 * i + (vertical_edge ? 0 : 1)];
    frac[i] = (r.dn[i] - film) / (milled - film);
  }
  EXPECT_NEAR(frac.front(), 0, 1e-3);
  EXPECT_NEAR(frac.back(), 1, 1e-3);
  return crossing(xs, frac, 0.9) - crossing(xs, frac, 0.1);
}

TEST(SemModel, EdgeWidthIs2563SigmaForAGaussianProbe)
{
  // 10-90 % of a Gaussian-blurred step: 2 * 1.28155 sigma = 2.563 sigma.
  constexpr double k1090 = 2 * 1.2815515655446004;
  sem_params p = quiet();
  p.edge_round_nm = 0;
  p.edge_gain = 0;
  p.halo_weight = 0;
  p.sigma_nm = 4;
  EXPECT_NEAR(edge_width(p, true), k1090 * 4, 0.02 * k1090 * 4);
  EXPECT_NEAR(edge_width(p, false), k1090 * 4, 0.02 * k1090 * 4);

  // Astigmatism: sigma 4 along x, 1.5 along y; turned by 90 degrees the widths swap.
  p.sigma_y_nm = 1.5;
  EXPECT_NEAR(edge_width(p, true), k1090 * 4, 0.02 * k1090 * 4);
  EXPECT_NEAR(edge_width(p, false), k1090 * 1.5, 0.02 * k1090 * 1.5);
  p.astigmatism_deg = 90;
  EXPECT_NEAR(edge_width(p, true), k1090 * 1.5, 0.02 * k1090 * 1.5);
  EXPECT_NEAR(edge_width(p, false), k1090 * 4, 0.02 * k1090 * 4);
  // At 45 degrees an edge sees the variance along its normal: (4^2 + 1.5^2) / 2.
  p.astigmatism_deg = 45;
  const double s45 = std::sqrt((16 + 2.25) / 2);
  EXPECT_NEAR(edge_width(p, true), k1090 * s45, 0.02 * k1090 * s45);

  // Wall rounding (a Gaussian of sigma edge_round_nm) composes with the probe.
  p.sigma_y_nm = 0;
  p.astigmatism_deg = 0;
  p.edge_round_nm = 3;
  EXPECT_NEAR(edge_width(p, true), k1090 * 5, 0.02 * k1090 * 5);
}

TEST(SemModel, EdgeBrighteningDecaysWithLambdaInsideMilledFeatures)
{
  // A sharp probe (sigma 0, no rounding): inside the milled half-plane the level is
  // milled + gain * exp(-d / lambda), d = distance to the edge; the film is flat up to the edge.
  sem_params p = quiet();
  p.sigma_nm = 0;
  p.edge_round_nm = 0;
  p.halo_weight = 0;
  p.edge_gain = 0.3;
  p.edge_lambda_nm = 4;
  module_map map(20, 20);
  for (int r = 0; r < 20; ++r)
    for (int c = 10; c < 20; ++c) map.set(c, r);
  const tile_spec spec{160, 1, 0.5};
  const rendered r = render(p, tile_pose{450.0, 5.5 * 49, 0, 1}, spec, map.window(), 3);
  const dn_mapping m = mapping(p);
  for (std::uint32_t i = 0; i < spec.width; ++i) {
    const double x = r.pos[2 * i], d = x - 490;
    const double want = d > 0 ? p.milled_level + 0.3 * std::exp(-d / 4) : p.film_level;
    EXPECT_NEAR(signal(m, r.dn[i]), want, 1e-4) << "x = " << x;
  }
}

TEST(SemModel, ModuleInteriorAndFilmLevelsMatchTheContrast)
{
  // A 5x5 block of milled modules: the centre module is more than two modules from any edge,
  // so neither probe, halo nor edge brightening reach it; the film far away is flat.
  for (const bool bright : {false, true}) {
    SCOPED_TRACE(bright ? "bright milled" : "dark milled");
    sem_params p = quiet();  // default probe, halo and edge brightening stay on
    if (bright) {
      p.film_level = 0.2;
      p.milled_level = 0.6;
    }
    module_map map(30, 30);
    for (int r = 10; r < 15; ++r)
      for (int c = 10; c < 15; ++c) map.set(c, r);
    const tile_spec spec{200, 200, 4.0};
    const rendered r = render(p, tile_pose{}, spec, map.window(), 11);
    const dn_mapping m = mapping(p);
    double sum_in = 0, sum_film = 0, n_in = 0, n_film = 0;
    for (std::size_t k = 0; k < r.dn.size(); ++k) {
      const double x = r.pos[2 * k] / 49, y = r.pos[2 * k + 1] / 49;
      if (x > 12.25 && x < 12.75 && y > 12.25 && y < 12.75) {
        sum_in += r.dn[k];
        n_in += 1;
      } else if (x < 6 && y < 6) {
        sum_film += r.dn[k];
        n_film += 1;
      }
    }
    ASSERT_GT(n_in, 10);
    ASSERT_GT(n_film, 10);
    EXPECT_NEAR(sum_in / n_in, expected_dn(m, p.milled_level), 1.0);
    EXPECT_NEAR(sum_film / n_film, expected_dn(m, p.film_level), 1.0);
    // The DN mapping itself: film at black + film / (2 max(film, milled)) of the span.
    const double span = 65535 * (1 - p.black_level);
    EXPECT_NEAR(sum_film / n_film,
                65535 * p.black_level + span * p.film_level / (2 * std::max(p.film_level, p.milled_level)), 1.0);
  }
}

// The sharp surface, written independently of sem_pixel.hpp: film outside milled modules,
// milled + gain * exp(-d / lambda) inside, d = distance to the nearest unmilled module.
double sharp_surface(const sem_params& p, const module_window& w, double x, double y)
{
  const double m = w.module_nm;
  const auto c = static_cast<std::int64_t>(std::floor(x / m)), r = static_cast<std::int64_t>(std::floor(y / m));
  if (!w.milled(c, r)) return p.film_level;
  if (p.edge_gain == 0) return p.milled_level;
  double d = 1e300;
  for (std::int64_t dr = -2; dr <= 2; ++dr)
    for (std::int64_t dc = -2; dc <= 2; ++dc) {
      if (w.milled(c + dc, r + dr)) continue;
      const double x0 = static_cast<double>(c + dc) * m, y0 = static_cast<double>(r + dr) * m;
      const double ex = x < x0 ? x0 - x : std::max(0.0, x - x0 - m);
      const double ey = y < y0 ? y0 - y : std::max(0.0, y - y0 - m);
      d = std::min(d, std::hypot(ex, ey));
    }
  return p.milled_level + p.edge_gain * std::exp(-d / p.edge_lambda_nm);
}

double phi(double z)
{
  return 0.5 * std::erfc(-z / std::sqrt(2.0));
}

// The sharp surface convolved with an isotropic Gaussian of std s (core) plus a halo, by
// quadrature on cells aligned with the module grid (so no cell straddles a module edge), each
// cell weighted by its exact Gaussian mass.
double reference_signal(const sem_params& p, const module_window& w, double x, double y)
{
  auto blur = [&](double s, double cell, bool edges) {
    const int i0 = static_cast<int>(std::floor((x - 5.5 * s) / cell)),
              i1 = static_cast<int>(std::ceil((x + 5.5 * s) / cell));
    const int j0 = static_cast<int>(std::floor((y - 5.5 * s) / cell)),
              j1 = static_cast<int>(std::ceil((y + 5.5 * s) / cell));
    std::vector<double> wx(i1 - i0), wy(j1 - j0);
    for (int i = i0; i < i1; ++i) wx[i - i0] = phi(((i + 1) * cell - x) / s) - phi((i * cell - x) / s);
    for (int j = j0; j < j1; ++j) wy[j - j0] = phi(((j + 1) * cell - y) / s) - phi((j * cell - y) / s);
    double sum = 0, mass = 0;
    for (int j = j0; j < j1; ++j)
      for (int i = i0; i < i1; ++i) {
        const double wt = wx[i - i0] * wy[j - j0];
        if (wt < 1e-13) continue;
        sem_params q = p;
        if (!edges) q.edge_gain = 0;
        sum += wt * sharp_surface(q, w, (i + 0.5) * cell, (j + 0.5) * cell);
        mass += wt;
      }
    return sum / mass;
  };
  const double s = std::hypot(p.sigma_nm, p.edge_round_nm);
  const double core = blur(s, w.module_nm / 250, true);
  if (p.halo_weight == 0) return core;
  return (1 - p.halo_weight) * core +
         p.halo_weight * blur(std::hypot(p.halo_sigma_nm, p.edge_round_nm), w.module_nm / 50, false);
}

struct blur_errors {
  double max_abs = 0, rms = 0;
};

// Renders a tile over `map` and compares `samples` random pixels with reference_signal.
blur_errors compare_with_reference(const sem_params& p, const module_map& map, int samples, std::mt19937_64& rng)
{
  const tile_spec spec{300, 300, 1.9};
  const tile_pose pose{30, 40, 0, 1};
  const rendered r = render(p, pose, spec, map.window(), 1);
  const dn_mapping m = mapping(p);
  blur_errors e;
  for (int t = 0; t < samples; ++t) {
    const std::size_t k = rng() % r.dn.size();
    const double err = signal(m, r.dn[k]) - reference_signal(p, map.window(), r.pos[2 * k], r.pos[2 * k + 1]);
    e.max_abs = std::max(e.max_abs, std::fabs(err));
    e.rms += err * err;
  }
  e.rms = std::sqrt(e.rms / samples);
  return e;
}

TEST(SemModel, AnalyticBlurMatchesBruteForceConvolution)
{
  std::mt19937_64 rng(test_seed());
  module_map random_map(14, 14);
  for (int r = 0; r < 14; ++r)
    for (int c = 0; c < 14; ++c)
      if (rng() & 1) random_map.set(c, r);
  // Stripes two modules wide: straight edges only, far apart against lambda.
  module_map stripes(14, 14);
  for (int r = 0; r < 14; ++r)
    for (int c = 0; c < 14; ++c)
      if ((c / 2) % 2) stripes.set(c, r);

  sem_params p = quiet();
  // The module indicator alone (edge brightening off), probe + rounding + halo: exact up to the
  // weight tables (2.5e-5) and DN rounding.
  p.edge_gain = 0;
  blur_errors e = compare_with_reference(p, random_map, 150, rng);
  EXPECT_LT(e.max_abs, 2e-4) << "indicator, random modules";
  // Edge brightening along straight edges: the exponentially modified Gaussian is exact.
  p.edge_gain = 0.3;
  p.halo_weight = 0;
  e = compare_with_reference(p, stripes, 150, rng);
  EXPECT_LT(e.max_abs, 5e-4) << "edge brightening, straight edges";
  // Random modules, corners included: the nearest-edge approximation (sem_pixel.hpp) is off
  // near corners (measured: max 0.021, rms 0.003 at the defaults).
  e = compare_with_reference(p, random_map, 200, rng);
  std::cout << "[ blur     ] random modules with edge brightening: max |error| " << e.max_abs << ", rms " << e.rms
            << " (signal units, film = 0.55)\n";
  EXPECT_LT(e.max_abs, 0.05);
  EXPECT_LT(e.rms, 0.01);
}

TEST(SemModel, WeightTablesMatchDirectWeights)
{
  // The interpolated tables against axis_weights computed directly, as the host builds them.
  std::mt19937_64 rng(test_seed());
  for (const double s : {0.5, 2.0, 3.6, 30.0}) {
    const double m = 49;
    const int k = static_cast<int>(std::ceil(5 * s / m));
    sim::weight_table t;
    t.s = s;
    t.k = k;
    t.n = static_cast<int>(std::ceil(sim::table_points_per_sigma * m / s));
    t.per_nm = t.n / m;
    std::vector<double> store(static_cast<std::size_t>(t.n + 1) * (2 * k + 1));
    for (int q = 0; q <= t.n; ++q) sim::axis_weights(q * m / t.n, m, s, k, store.data() + q * (2 * k + 1));
    t.w = store.data();
    double worst = 0;
    for (int i = 0; i < 2000; ++i) {
      const double u = std::uniform_real_distribution<double>(0, m)(rng);
      double a[2 * sim::max_reach + 1], b[2 * sim::max_reach + 1];
      sim::table_weights(t, u, m, a);
      sim::axis_weights(u, m, s, k, b);
      double sum = 0;
      for (int q = 0; q <= 2 * k; ++q) {
        worst = std::max(worst, std::fabs(a[q] - b[q]));
        sum += a[q];
      }
      EXPECT_NEAR(sum, 1.0, 1e-12);
    }
    EXPECT_LT(worst, 2.5e-5) << "s = " << s;
  }
}

// ---------------------------------------------------------------------------------------------
// Geometry: pose, feature position, scan distortions

// The documented pose transform of pixel centre (i, j).
void pose_transform(const tile_pose& pose, double pixel_nm, double i, double j, double& x, double& y)
{
  const double c = std::cos(pose.rotation_deg * deg), s = std::sin(pose.rotation_deg * deg);
  const double step = pose.scale * pixel_nm, fi = i + 0.5, fj = j + 0.5;
  x = pose.x_nm + step * (fi * c - fj * s);
  y = pose.y_nm + step * (fi * s + fj * c);
}

TEST(SemModel, TruePositionsArePoseTransformedPixelCentres)
{
  const sem_params p = quiet();
  for (const tile_pose pose : {tile_pose{1234.5, 2345.25, 0.7, 1.004}, tile_pose{-300, 50, -25, 0.97}}) {
    const tile_spec spec{64, 48, 12.0};
    const rendered r = render(p, pose, spec, module_window{}, 2);
    for (std::uint32_t j = 0; j < spec.height; ++j)
      for (std::uint32_t i = 0; i < spec.width; ++i) {
        double x, y;
        pose_transform(pose, spec.pixel_nm, i, j, x, y);
        const std::size_t k = static_cast<std::size_t>(j) * spec.width + i;
        ASSERT_NEAR(r.pos[2 * k], x, 1e-6) << i << "," << j;
        ASSERT_NEAR(r.pos[2 * k + 1], y, 1e-6) << i << "," << j;
      }
  }
}

TEST(SemModel, AMilledModuleAppearsWherePosePredicts)
{
  std::mt19937_64 rng(test_seed());
  const sem_params p = quiet();  // default probe, halo and edge brightening: all symmetric
  module_map map(60, 60);
  map.set(30, 40);
  const double cx = 30.5 * 49, cy = 40.5 * 49;  // the module's centre
  for (int trial = 0; trial < 4; ++trial) {
    tile_pose pose;
    pose.rotation_deg = std::uniform_real_distribution<double>(-30, 30)(rng);
    pose.scale = std::uniform_real_distribution<double>(0.98, 1.02)(rng);
    const tile_spec spec{64, 64, 6.0};
    // Put the module centre at pixel coordinates (fi, fj) (continuous, pixel centres at k + 0.5).
    const double fi = std::uniform_real_distribution<double>(24, 40)(rng);
    const double fj = std::uniform_real_distribution<double>(24, 40)(rng);
    const double c = std::cos(pose.rotation_deg * deg), s = std::sin(pose.rotation_deg * deg);
    const double step = pose.scale * spec.pixel_nm;
    pose.x_nm = cx - step * (fi * c - fj * s);
    pose.y_nm = cy - step * (fi * s + fj * c);
    const rendered r = render(p, pose, spec, map.window(), 4);
    const double film = expected_dn(mapping(p), p.film_level);
    double sw = 0, si = 0, sj = 0;
    for (std::uint32_t j = 0; j < spec.height; ++j)
      for (std::uint32_t i = 0; i < spec.width; ++i) {
        const double w = std::max(0.0, film - r.dn[static_cast<std::size_t>(j) * spec.width + i]);
        sw += w;
        si += w * (i + 0.5);
        sj += w * (j + 0.5);
      }
    ASSERT_GT(sw, 0);
    EXPECT_NEAR(si / sw, fi, 0.05) << "rotation " << pose.rotation_deg << " scale " << pose.scale;
    EXPECT_NEAR(sj / sw, fj, 0.05) << "rotation " << pose.rotation_deg << " scale " << pose.scale;
  }
}

// Offsets of the true positions from the pose transform, and each pixel's acquisition time
// t = j * (width * dwell + flyback) + i * dwell (us).
struct offsets {
  std::vector<double> dx, dy, t;
};

offsets distortion(const sem_params& p, const tile_pose& pose, const tile_spec& spec, std::uint64_t seed)
{
  const rendered r = render(p, pose, spec, module_window{}, seed);
  offsets o;
  for (std::uint32_t j = 0; j < spec.height; ++j)
    for (std::uint32_t i = 0; i < spec.width; ++i) {
      double x, y;
      pose_transform(pose, spec.pixel_nm, i, j, x, y);
      const std::size_t k = static_cast<std::size_t>(j) * spec.width + i;
      o.dx.push_back(r.pos[2 * k] - x);
      o.dy.push_back(r.pos[2 * k + 1] - y);
      o.t.push_back(j * (spec.width * p.dwell_us + p.flyback_us) + i * p.dwell_us);
    }
  return o;
}

TEST(SemModel, DriftIsVelocityTimesAcquisitionTime)
{
  sem_params p = quiet();
  p.drift_nm_per_s = 2000;
  p.drift_angle_deg = 30;
  const tile_pose pose{100, 200, 3, 1};
  const offsets o = distortion(p, pose, tile_spec{64, 64, 10.0}, 6);
  for (std::size_t k = 0; k < o.t.size(); ++k) {
    ASSERT_NEAR(o.dx[k], 2000e-6 * o.t[k] * std::cos(30 * deg), 1e-6);
    ASSERT_NEAR(o.dy[k], 2000e-6 * o.t[k] * std::sin(30 * deg), 1e-6);
  }
}

TEST(SemModel, LineJitterIsOneGaussianDrawPerLineAlongTheScanX)
{
  sem_params p = quiet();
  p.jitter_nm = 2;
  const tile_pose pose{0, 0, 10, 1};
  const tile_spec spec{8, 2048, 10.0};
  const offsets o = distortion(p, pose, spec, test_seed());
  const double ux = std::cos(10 * deg), uy = std::sin(10 * deg);
  std::vector<double> along;
  for (std::uint32_t j = 0; j < spec.height; ++j) {
    const std::size_t k0 = static_cast<std::size_t>(j) * spec.width;
    const double a = o.dx[k0] * ux + o.dy[k0] * uy;
    for (std::uint32_t i = 0; i < spec.width; ++i) {
      ASSERT_NEAR(o.dx[k0 + i], a * ux, 1e-9) << "constant within line " << j;
      ASSERT_NEAR(o.dy[k0 + i], a * uy, 1e-9) << "constant within line " << j;
    }
    along.push_back(a);
  }
  const moments s = sample_moments(along);
  EXPECT_NEAR(s.mean, 0, 5 * 2 / std::sqrt(2048.0));
  EXPECT_NEAR(std::sqrt(s.var), 2, 5 * 2 / std::sqrt(2 * 2048.0));
}

TEST(SemModel, VibrationIsASinusoidInAcquisitionTime)
{
  sem_params p = quiet();
  p.vibration_nm = 3;
  p.vibration_hz = 1e4;  // period 100 us
  const tile_pose pose{0, 0, -4, 1};
  const offsets o = distortion(p, pose, tile_spec{256, 64, 10.0}, 8);
  const double ux = std::cos(-4 * deg), uy = std::sin(-4 * deg), w = 2 * pi * 1e4 * 1e-6;
  // Least squares along = a sin(w t) + b cos(w t).
  double ss = 0, cc = 0, sc = 0, as = 0, ac = 0;
  std::vector<double> along(o.t.size());
  for (std::size_t k = 0; k < o.t.size(); ++k) {
    along[k] = o.dx[k] * ux + o.dy[k] * uy;
    EXPECT_NEAR(o.dx[k] * uy - o.dy[k] * ux, 0, 1e-9) << "along the scan's x only";
    const double sn = std::sin(w * o.t[k]), cs = std::cos(w * o.t[k]);
    ss += sn * sn;
    cc += cs * cs;
    sc += sn * cs;
    as += along[k] * sn;
    ac += along[k] * cs;
  }
  const double det = ss * cc - sc * sc;
  const double a = (as * cc - ac * sc) / det, b = (ac * ss - as * sc) / det;
  EXPECT_NEAR(std::hypot(a, b), 3, 1e-6);
  for (std::size_t k = 0; k < o.t.size(); ++k)
    ASSERT_NEAR(along[k], a * std::sin(w * o.t[k]) + b * std::cos(w * o.t[k]), 1e-6);
}

TEST(SemModel, JumpsArePoissonInTimeWithFixedSize)
{
  sem_params p = quiet();
  p.jump_rate_per_s = 100;
  p.jump_nm = 7;
  const tile_spec spec{256, 256, 10.0};
  const double tile_s = 256 * (256 * 1.0 + 20) * 1e-6;
  int steps = 0, exact = 0;
  double sx = 0, sy = 0;
  const int tiles = 40;
  for (int tile = 0; tile < tiles; ++tile) {
    const offsets o = distortion(p, tile_pose{}, spec, test_seed() * 100ull + tile);
    EXPECT_NEAR(std::hypot(o.dx[0], o.dy[0]), 0, 1e-9);
    for (std::size_t k = 1; k < o.t.size(); ++k) {
      const double ddx = o.dx[k] - o.dx[k - 1], ddy = o.dy[k] - o.dy[k - 1], d = std::hypot(ddx, ddy);
      if (d < 1e-6) continue;
      ++steps;
      if (std::fabs(d - 7) < 1e-6) {
        ++exact;
        sx += ddx / d;
        sy += ddy / d;
      }
    }
  }
  const double expected = tiles * 100 * tile_s;  // ~282
  EXPECT_NEAR(steps, expected, 5 * std::sqrt(expected));
  EXPECT_GE(exact, steps - 3) << "two jumps within one pixel are rare";
  EXPECT_LT(std::hypot(sx, sy) / exact, 5 / std::sqrt(2.0 * exact)) << "directions uniform";
}

// ---------------------------------------------------------------------------------------------
// Background, grain, output format

TEST(SemModel, BackgroundTiltAndChargingScaleTheSignal)
{
  sem_params p = quiet();
  p.halo_weight = 0;
  const tile_spec spec{128, 128, 10.0};
  p.background_tilt = 0.2;
  rendered r = render(p, tile_pose{}, spec, module_window{}, 12);
  dn_mapping m = mapping(p);
  double lo = 1e9, hi = 0;
  for (auto v : r.dn) {
    lo = std::min(lo, signal(m, v) / p.film_level);
    hi = std::max(hi, signal(m, v) / p.film_level);
  }
  // A linear ramp spanning 0.2 corner to corner, centred on 1; pixel centres miss the corners by
  // half a pixel.
  EXPECT_NEAR(hi - lo, 0.2 * (1 - 1.0 / 128), 2e-4);
  EXPECT_NEAR((hi + lo) / 2, 1, 2e-4);

  p.background_tilt = 0;
  p.charging = 0.25;
  r = render(p, tile_pose{}, spec, module_window{}, 12);
  m = mapping(p);
  const double total = 128 * (128 * p.dwell_us + p.flyback_us);
  for (std::uint32_t j = 0; j < spec.height; j += 17)
    for (std::uint32_t i = 0; i < spec.width; i += 13) {
      const double t = j * (128 * p.dwell_us + p.flyback_us) + i * p.dwell_us;
      EXPECT_NEAR(signal(m, r.dn[j * spec.width + i]) / p.film_level, 1 + 0.25 * t / total, 1e-4);
    }
}

TEST(SemModel, GrainHasUnitVarianceAndIsAPropertyOfThePlate)
{
  // The texture field itself: mean 0, variance 1 averaged over positions, decorrelated beyond
  // a lattice spacing.
  std::mt19937_64 rng(test_seed());
  std::uniform_real_distribution<double> pos(-1e6, 1e6);
  const std::uint64_t key = sim::grain_key(42);
  std::vector<double> g, near, far;
  for (int i = 0; i < 200000; ++i) {
    const double x = pos(rng), y = pos(rng);
    g.push_back(sim::film_grain(key, 12, x, y));
    near.push_back(g.back() * sim::film_grain(key, 12, x + 1, y));
    far.push_back(g.back() * sim::film_grain(key, 12, x + 30, y + 30));
  }
  const moments s = sample_moments(g);
  EXPECT_NEAR(s.mean, 0, 0.02);
  EXPECT_NEAR(s.var, 1, 0.03);
  EXPECT_GT(sample_moments(near).mean, 0.8);
  EXPECT_NEAR(sample_moments(far).mean, 0, 0.02);

  // Rendered: relative std of a flat film = grain_amplitude; tiles with different seeds that
  // overlap see the same texture.
  sem_params p = quiet();
  p.halo_weight = 0;
  p.grain_amplitude = 0.05;
  p.grain_seed = 7;
  const tile_spec spec{256, 256, 40.0};
  const rendered a = render(p, tile_pose{}, spec, module_window{}, 1);
  const dn_mapping m = mapping(p);
  std::vector<double> rel;
  for (auto v : a.dn) rel.push_back(signal(m, v) / p.film_level - 1);
  EXPECT_NEAR(std::sqrt(sample_moments(rel).var), 0.05, 0.005);
  const rendered b = render(p, tile_pose{10 * 40.0, 7 * 40.0, 0, 1}, spec, module_window{}, 2);
  for (std::uint32_t j = 0; j + 7 < spec.height; j += 5)
    for (std::uint32_t i = 0; i + 10 < spec.width; i += 5)
      ASSERT_EQ(b.dn[j * spec.width + i], a.dn[(j + 7) * spec.width + i + 10]) << i << "," << j;
  p.grain_seed = 8;
  const rendered c = render(p, tile_pose{}, spec, module_window{}, 1);
  EXPECT_NE(a.dn, c.dn);
}

TEST(SemModel, EightBitOutputUsesTheFullRange)
{
  sem_params p = quiet();
  p.bits = 8;
  p.halo_weight = 0;
  module_map map(10, 10);
  for (int r = 3; r < 8; ++r)
    for (int c = 0; c < 10; ++c) map.set(c, r);
  const rendered r = render(p, tile_pose{}, tile_spec{100, 100, 5.0}, map.window(), 1);
  const dn_mapping m = mapping(p);
  EXPECT_NEAR(expected_dn(m, p.film_level), 0.05 * 255 + 0.95 * 255 / 2, 1e-9);
  // Film at row 2 (y = 12.5 nm), 130 nm from the milled rows; the milled floor is the darkest level.
  EXPECT_NEAR(r.dn[2 * 100 + 50], expected_dn(m, p.film_level), 0.5);
  EXPECT_NEAR(*std::min_element(r.dn.begin(), r.dn.end()), expected_dn(m, p.milled_level), 0.5);
  // Clipping: a dose far above full scale saturates at 255.
  p.full_scale_e = 10;
  p.noise = true;
  const rendered s = render(p, tile_pose{}, tile_spec{16, 16, 5.0}, module_window{}, 1);
  for (auto v : s.dn) EXPECT_EQ(v, 255);
}

// ---------------------------------------------------------------------------------------------
// Determinism

TEST(SemModel, DeterministicBySeedAndIndependentOfThreading)
{
  std::mt19937_64 rng(test_seed());
  module_map map(64, 64);
  for (int r = 0; r < 64; ++r)
    for (int c = 0; c < 64; ++c)
      if (rng() & 1) map.set(c, r);
  sem_params p;  // everything on
  p.jump_rate_per_s = 200;
  p.jump_nm = 3;
  const tile_spec spec{173, 131, 14.0};
  const tile_pose pose{20, 30, 0.4, 1.003};
  const rendered a = render(p, pose, spec, map.window(), 99);
  const rendered b = render(p, pose, spec, map.window(), 99);
  EXPECT_EQ(a.dn, b.dn);
  EXPECT_EQ(a.pos, b.pos);
  const rendered c = render(p, pose, spec, map.window(), 100);
  std::size_t differ = 0;
  for (std::size_t k = 0; k < a.dn.size(); ++k) differ += a.dn[k] != c.dn[k];
  EXPECT_GT(differ, a.dn.size() * 9 / 10);

  // Any split of the rows renders the same bytes.
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<std::uint32_t> cuts{0, spec.height};
    for (int k = 0; k < 3; ++k) cuts.push_back(static_cast<std::uint32_t>(rng() % (spec.height + 1)));
    std::sort(cuts.begin(), cuts.end());
    std::vector<std::uint16_t> dn(a.dn.size(), 0);
    std::vector<double> pos(a.pos.size(), 0);
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k)
      sim::render_tile_rows(p, pose, spec, map.window(), 99, cuts[k], cuts[k + 1], dn.data(), pos.data());
    EXPECT_EQ(dn, a.dn);
    EXPECT_EQ(pos, a.pos);
  }
  EXPECT_THROW(sim::render_tile_rows(p, pose, spec, map.window(), 99, 10, spec.height + 1, nullptr),
               qrplate::invalid_argument);
}

}  // namespace
