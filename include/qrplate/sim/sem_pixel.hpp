// The per-pixel pieces of the SEM forward model (sem_model.hpp), as QRP_HD functions that a CPU
// loop (host/sim/sem_model.cpp) and, later, a CUDA kernel both call: a counter-based random
// number generator, the surface, the analytic probe blur, the scan geometry and the detector.
// Plain data and arithmetic only: no heap, no exceptions, fixed-size buffers.
//
// How the probe blur is computed, and what is approximated (image = surface * PSF):
//  - The PSF's covariance in plate axes is Sigma = R diag(sigma_nm^2, sigma_y_nm^2) R^T (R the
//    astigmatism angle plus the tile rotation), plus edge_round_nm^2 on the diagonal: a wall
//    rounded by a Gaussian composes with the Gaussian probe into one Gaussian. Only the diagonal
//    (sx^2, sy^2) is used, so the blurred module indicator is a sum over nearby milled modules of
//    products of normal-CDF differences (separable). Exact for every straight edge (its profile
//    depends only on the variance along its normal); at corners of an astigmatic PSF tilted
//    against the module axes the correlation term is dropped.
//  - Module neighbourhoods are cut at 5 core sigmas (3 halo sigmas) from the beam, with the tail
//    mass given to the outermost modules considered, so weights always sum to one; the
//    truncation error is below 3e-7 of the signal (core) and 3e-3 of the halo's share (halo).
//  - Edge brightening: the sharp term edge_gain * exp(-d/lambda) inside a feature, blurred
//    across the NEAREST edge only, as if that edge were straight and infinite (an exponentially
//    modified Gaussian, with the variance along that edge's normal). Exact for a straight edge;
//    near corners and where two edges are within a few lambda it is off: against a brute-force
//    convolution of the sharp surface at the defaults (random modules, film = 0.55) the error is
//    at most 0.021 and 0.003 rms, and just outside a convex corner of a milled feature the
//    brightening leaks up to 0.012 above the film level. Beyond one module from any edge the
//    term is taken as 0 (it is below edge_gain * exp(-module / lambda)).
//  - The halo sees only the film / milled levels (no edge brightening, no grain): the edge
//    term's area is ~lambda/module of a module's, so its halo share is below 1e-3 of the signal.
//  - Grain multiplies the blurred signal and is taken at the beam centre, unblurred: its
//    correlation length (12 nm) is well above the probe sigma (2 nm).
#pragma once

#include <cmath>
#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/sim/sem_model.hpp"

namespace qrplate::sim {

// -------------------------------------------------------------------------------------------
// Counter-based random numbers. Every draw is a function of (seed, stream, index) alone, so the
// image does not depend on thread count or order: SplitMix64's finaliser (Steele, Lea, Flood,
// "Fast splittable pseudorandom number generators", OOPSLA 2014) hashes the key into the start
// state of a short SplitMix64 sequence that one pixel (or line, or jump) draws from.

inline constexpr std::uint64_t golden_gamma = 0x9E3779B97F4A7C15ull;

QRP_HD inline std::uint64_t mix64(std::uint64_t z)
{
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// What a draw is for; part of the key so that streams never share values.
enum class rng_stream : std::uint64_t { pixel = 1, line = 2, jump = 3, tile = 4, grain = 5 };

QRP_HD inline std::uint64_t hash_key(std::uint64_t seed, rng_stream stream, std::uint64_t index)
{
  const std::uint64_t k = mix64(seed ^ (static_cast<std::uint64_t>(stream) * golden_gamma));
  return mix64(k + index * 0xD1B54A32D192ED03ull);
}

struct counter_rng {
  std::uint64_t state;

  QRP_HD std::uint64_t next_u64()
  {
    state += golden_gamma;
    return mix64(state);
  }
  // Uniform in (0, 1): never 0 or 1, so log() and 1/u are safe.
  QRP_HD double uniform() { return (static_cast<double>(next_u64() >> 11) + 0.5) * 0x1.0p-53; }
  // Two independent standard normals (Marsaglia's polar method: no sine or cosine).
  QRP_HD void normal_pair(double& z0, double& z1)
  {
    for (;;) {
      const double a = 2 * uniform() - 1, b = 2 * uniform() - 1, r2 = a * a + b * b;
      if (r2 >= 1 || r2 == 0) continue;
      const double f = std::sqrt(-2 * std::log(r2) / r2);
      z0 = a * f;
      z1 = b * f;
      return;
    }
  }
};

QRP_HD inline counter_rng make_rng(std::uint64_t seed, rng_stream stream, std::uint64_t index)
{
  return counter_rng{hash_key(seed, stream, index)};
}

// floor() for |v| < 2^63 without a libm call (baseline x86-64 has no rounding instruction).
QRP_HD inline double floor_fast(double v)
{
  const double t = static_cast<double>(static_cast<std::int64_t>(v));
  return t > v ? t - 1 : t;
}

// log(k!) : exact table below 10, Stirling's series above (error < 1e-12 there).
QRP_HD inline double log_factorial(double k)
{
  constexpr double table[10] = {0.0,
                                0.0,
                                0.69314718055994531,
                                1.79175946922805500,
                                3.17805383034794562,
                                4.78749174278204599,
                                6.57925121201010100,
                                8.52516136106541430,
                                10.60460290274525023,
                                12.80182748008146961};
  if (k < 10) return table[static_cast<int>(k)];
  const double r = 1.0 / k, r2 = r * r;
  return (k + 0.5) * std::log(k) - k + 0.91893853320467274 + r * (1.0 / 12 - r2 * (1.0 / 360 - r2 / 1260));
}

// An exact Poisson variate. Mean below 12: inversion by sequential search (one uniform). Above:
// Hormann's transformed rejection with squeeze, PTRS ("The transformed rejection method for
// generating Poisson random variables", Insurance: Mathematics and Economics 12, 1993),
// about 2.3 uniforms per variate.
QRP_HD inline double poisson(counter_rng& rng, double mean)
{
  if (!(mean > 0)) return 0;
  if (mean < 12) {
    const double u = rng.uniform();
    double p = std::exp(-mean), cdf = p, k = 0;
    while (u > cdf && k < 200) {
      k += 1;
      p *= mean / k;
      cdf += p;
    }
    return k;
  }
  const double slam = std::sqrt(mean);
  const double b = 0.931 + 2.53 * slam;
  const double a = -0.059 + 0.02483 * b;
  const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
  const double vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const double u = rng.uniform() - 0.5;
    const double v = rng.uniform();
    const double us = 0.5 - std::fabs(u);
    const double k = floor_fast((2 * a / us + b) * u + mean + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (std::log(v) + std::log(inv_alpha) - std::log(a / (us * us) + b) <=
        -mean + k * std::log(mean) - log_factorial(k))
      return k;
  }
}

// -------------------------------------------------------------------------------------------
// Surface and probe.

// Standard normal CDF; saturates outside +-8.3 where erfc leaves double precision anyway.
QRP_HD inline double normal_cdf(double z)
{
  if (z < -8.3) return 0;
  if (z > 8.3) return 1;
  return 0.5 * std::erfc(-z * 0.70710678118654752);
}

// The film texture g(x, y): value noise on a lattice of spacing grain_nm (lattice values hashed
// from the plate's grain_seed and the lattice point, cubic smoothstep interpolation). Its
// variance, averaged over positions, is 1: a lattice value's variance (uniform(-1,1) times
// sqrt(3): 1) times (35/26)^2 undoes the interpolation's average variance factor, the mean of
// (1-s)^2 + s^2 for s = 3t^2 - 2t^3, which is 26/35 per axis.
QRP_HD inline std::uint64_t grain_key(std::uint64_t grain_seed)
{
  return mix64(grain_seed ^ (static_cast<std::uint64_t>(rng_stream::grain) * golden_gamma));
}

// Lattice value from the column hash (mix64(key + ix * gamma)) and the row: uniform, variance
// (35/26)^2 (see film_grain).
QRP_HD inline double grain_lattice(std::uint64_t column_hash, std::int64_t iy)
{
  const std::uint64_t h = mix64(column_hash + static_cast<std::uint64_t>(iy) * 0xD1B54A32D192ED03ull);
  return (static_cast<double>(h >> 11) * 0x1.0p-52 - 1.0) * (1.7320508075688772 * 35.0 / 26.0);
}

QRP_HD inline double film_grain(std::uint64_t key, double grain_nm, double x, double y)
{
  const double gx = x / grain_nm, gy = y / grain_nm;
  const double fx = floor_fast(gx), fy = floor_fast(gy);
  const auto ix = static_cast<std::int64_t>(fx), iy = static_cast<std::int64_t>(fy);
  const double tx = gx - fx, ty = gy - fy;
  const double sx = tx * tx * (3 - 2 * tx), sy = ty * ty * (3 - 2 * ty);
  const std::uint64_t c0 = mix64(key + static_cast<std::uint64_t>(ix) * golden_gamma);
  const std::uint64_t c1 = mix64(key + static_cast<std::uint64_t>(ix + 1) * golden_gamma);
  const double v00 = grain_lattice(c0, iy), v10 = grain_lattice(c1, iy);
  const double v01 = grain_lattice(c0, iy + 1), v11 = grain_lattice(c1, iy + 1);
  const double top = v00 + sx * (v10 - v00), bot = v01 + sx * (v11 - v01);
  return top + sy * (bot - top);
}

// Weights of the 2k+1 module columns (or rows) around the beam under a 1-D Gaussian of std s;
// u = the beam's offset inside its module, m = module pitch. Tail mass goes to the end entries.
// s = 0: the sharp indicator of the module that holds u.
QRP_HD inline void axis_weights(double u, double m, double s, int k, double* w)
{
  double prev = 0;
  for (int q = 1; q <= 2 * k; ++q) {
    const double b = (q - k) * m - u;  // boundary between entries q-1 and q, relative to the beam
    const double f = s > 0 ? normal_cdf(b / s) : (b > 0 ? 1.0 : 0.0);
    w[q - 1] = f - prev;
    prev = f;
  }
  w[2 * k] = 1 - prev;
}

// axis_weights for one (s, k), tabulated over u in [0, m] at n + 1 points and interpolated
// linearly: the fast path (erfc costs more than the rest of a pixel). n = 0: no table, compute
// directly. The host builds tables with n >= 50 m / s, which keeps the interpolation error of a
// weight below 2 * 0.242 / (8 * 50^2) = 2.5e-5 (|Phi''| <= 0.242); a test holds it to the direct path.
struct weight_table {
  double s = 0;               // Gaussian std (nm)
  int k = 0;                  // reach: 2k + 1 weights per point
  int n = 0;                  // intervals; 0 = compute directly
  double per_nm = 0;          // n / m
  const double* w = nullptr;  // (n + 1) x (2k + 1): row q = axis_weights(q * m / n)
};

inline constexpr int table_points_per_sigma = 50;
inline constexpr int max_table_intervals = 1 << 14;

QRP_HD inline void table_weights(const weight_table& t, double u, double m, double* w)
{
  if (t.n == 0) {
    axis_weights(u, m, t.s, t.k, w);
    return;
  }
  double f = u * t.per_nm;
  f = f < 0 ? 0 : (f > t.n ? t.n : f);
  int q = static_cast<int>(f);
  if (q >= t.n) q = t.n - 1;
  const double a = f - q;
  const int len = 2 * t.k + 1;
  const double* r0 = t.w + static_cast<std::size_t>(q) * len;
  const double* r1 = r0 + len;
  for (int i = 0; i < len; ++i) w[i] = r0[i] + a * (r1[i] - r0[i]);
}

// The PSF in plate axes (see the top of this file) and the reach of the blur in modules, with
// direct (untabulated) weights; the host may point the tables at precomputed weights.
inline constexpr int max_reach = 8;  // modules; core at 5 sigma, halo at 3 sigma

struct probe_shape {
  weight_table core_x, core_y;  // core std along plate x and y, wall rounding included; reach k >= 1,
                                // so that the 3x3 edge search is always gathered
  weight_table halo;            // halo std (both axes); k = 0: no halo
  int reach = 1;                // max of the reaches: what a patch must hold
  bool too_wide = false;        // the core needs more than max_reach modules: refuse
};

QRP_HD inline probe_shape make_probe_shape(const sem_params& p, double rotation_deg, double module_nm)
{
  probe_shape s;
  const double sa = p.sigma_nm, sb = p.sigma_y_nm > 0 ? p.sigma_y_nm : p.sigma_nm;
  const double th = (rotation_deg + p.astigmatism_deg) * 0.017453292519943295;
  const double c = std::cos(th), n = std::sin(th), r2 = p.edge_round_nm * p.edge_round_nm;
  s.core_x.s = std::sqrt(sa * sa * c * c + sb * sb * n * n + r2);
  s.core_y.s = std::sqrt(sa * sa * n * n + sb * sb * c * c + r2);
  const double reach = std::ceil(5 * (s.core_x.s > s.core_y.s ? s.core_x.s : s.core_y.s) / module_nm);
  s.too_wide = !(reach <= max_reach);
  s.core_x.k = s.core_y.k = s.too_wide ? max_reach : (reach < 1 ? 1 : static_cast<int>(reach));
  if (p.halo_weight > 0) {
    s.halo.s = std::sqrt(p.halo_sigma_nm * p.halo_sigma_nm + r2);
    const double hr = std::ceil(3 * s.halo.s / module_nm);
    s.halo.k = hr > max_reach ? max_reach : (hr < 1 ? 1 : static_cast<int>(hr));
  }
  s.reach = s.core_x.k > s.halo.k ? s.core_x.k : s.halo.k;
  return s;
}

// The modules around the beam, gathered once per module the beam visits.
struct module_patch {
  std::int64_t col = 0, row = 0;
  bool valid = false;
  int reach = 0;
  std::uint32_t bits[2 * max_reach + 1] = {};  // bits[a] bit b = milled(col - reach + b, row - reach + a)
  bool centre = false;                         // the centre module is milled
  std::uint8_t other = 0;                      // 3x3 neighbours in the other state: bits W, E, N, S, NW, NE, SW, SE
  int core_uniform = 0;                        // the core's (2k+1)^2 modules: 0 all unmilled, 1 all milled, -1 mixed
  int halo_uniform = 0;                        // the same for the halo
};

enum : std::uint8_t { nb_w = 1, nb_e = 2, nb_n = 4, nb_s = 8, nb_nw = 16, nb_ne = 32, nb_sw = 64, nb_se = 128 };

// Bits milled(col_first + q, row) for q < count (count <= 32).
QRP_HD inline std::uint32_t window_row_bits(const module_window& w, std::int64_t row, std::int64_t col_first, int count)
{
  const std::int64_t r = row - w.y0;
  if (r < 0 || r >= w.height) return 0;
  const std::int64_t c = col_first - w.x0;
  const std::int64_t lo = c > 0 ? c : 0;
  const std::int64_t hi = c + count < w.width ? c + count : w.width;
  if (lo >= hi) return 0;
  const std::uint64_t* words = w.rows + static_cast<std::size_t>(r) * w.stride;
  const std::int64_t wi = lo >> 6;
  const int sh = static_cast<int>(lo & 63);
  std::uint64_t v = words[wi] >> sh;
  if (sh != 0 && ((hi - 1) >> 6) > wi) v |= words[wi + 1] << (64 - sh);
  v &= (std::uint64_t{1} << (hi - lo)) - 1;
  return static_cast<std::uint32_t>(v << (lo - c));
}

// The (2k+1)^2 modules around the centre: 0 all unmilled, 1 all milled, -1 mixed.
QRP_HD inline int patch_uniform(const module_patch& p, int k)
{
  const std::uint32_t mask = (2u << (2 * k)) - 1;
  const int shift = p.reach - k;
  bool any = false, all = true;
  for (int a = shift; a <= shift + 2 * k; ++a) {
    const std::uint32_t b = (p.bits[a] >> shift) & mask;
    any = any || b != 0;
    all = all && b == mask;
  }
  return all ? 1 : (any ? -1 : 0);
}

QRP_HD inline void gather_patch(const module_window& w, const probe_shape& ps, std::int64_t col, std::int64_t row,
                                module_patch& p)
{
  const int r = ps.reach;
  p.col = col;
  p.row = row;
  p.reach = r;
  p.valid = true;
  for (int a = 0; a <= 2 * r; ++a) p.bits[a] = window_row_bits(w, row - r + a, col - r, 2 * r + 1);
  const std::uint32_t up = p.bits[r - 1] >> (r - 1), mid = p.bits[r] >> (r - 1), down = p.bits[r + 1] >> (r - 1);
  p.centre = (mid >> 1) & 1u;
  const std::uint32_t flip = p.centre ? 7u : 0u;  // neighbours that differ from the centre become 1
  const std::uint32_t u3 = (up ^ flip) & 7u, m3 = (mid ^ flip) & 7u, d3 = (down ^ flip) & 7u;
  p.other = static_cast<std::uint8_t>((m3 & 1u) * nb_w | ((m3 >> 2) & 1u) * nb_e | ((u3 >> 1) & 1u) * nb_n |
                                      ((d3 >> 1) & 1u) * nb_s | (u3 & 1u) * nb_nw | ((u3 >> 2) & 1u) * nb_ne |
                                      (d3 & 1u) * nb_sw | ((d3 >> 2) & 1u) * nb_se);
  p.core_uniform = patch_uniform(p, ps.core_x.k);
  p.halo_uniform = ps.halo.k ? patch_uniform(p, ps.halo.k) : 0;
}

// Fraction of a Gaussian (std tx.s, ty.s along the plate axes; reach tx.k == ty.k) centred at
// (u, v) in the patch's centre module that falls on milled modules; `uniform` from the patch.
QRP_HD inline double blurred_fraction(const module_patch& p, int uniform, double u, double v, double m,
                                      const weight_table& tx, const weight_table& ty)
{
  if (uniform >= 0) return uniform;
  const int k = tx.k;
  double wx[2 * max_reach + 1], wy[2 * max_reach + 1];
  table_weights(tx, u, m, wx);
  table_weights(ty, v, m, wy);
  const int shift = p.reach - k;
  const std::uint32_t mask = (2u << (2 * k)) - 1;
  double sum = 0;
  for (int a = 0; a <= 2 * k; ++a) {
    const std::uint32_t b = (p.bits[shift + a] >> shift) & mask;
    if (b == 0) continue;
    double row = 1;  // the weights of a full row sum to one
    if (b != mask) {
      row = 0;
      // Branch-free: module patterns are random, a branch per module would mispredict.
      for (int q = 0; q <= 2 * k; ++q) row += wx[q] * static_cast<double>((b >> q) & 1u);
    }
    sum += wy[a] * row;
  }
  return sum;
}

// The nearest edge between the centre module's state and a neighbour of the other state (3x3):
// squared distance (infinity when all nine agree) and the squared x-component of its normal.
struct edge_info {
  double d2;
  double nx2;
  bool inside;  // the centre module is milled
};

QRP_HD inline edge_info nearest_edge(const module_patch& p, double u, double v, double m)
{
  edge_info e{HUGE_VAL, 1.0, p.centre};
  const std::uint8_t o = p.other;
  if (o == 0) return e;
  const double ue = m - u, vs = m - v;
  if ((o & nb_w) && u * u < e.d2) e = {u * u, 1.0, p.centre};
  if ((o & nb_e) && ue * ue < e.d2) e = {ue * ue, 1.0, p.centre};
  if ((o & nb_n) && v * v < e.d2) e = {v * v, 0.0, p.centre};
  if ((o & nb_s) && vs * vs < e.d2) e = {vs * vs, 0.0, p.centre};
  if (o & (nb_nw | nb_ne | nb_sw | nb_se)) {
    // A diagonal neighbour's nearest point is the shared corner.
    const double cx[4] = {u, ue, u, ue}, cy[4] = {v, v, vs, vs};
    for (int q = 0; q < 4; ++q) {
      if (!(o & (nb_nw << q))) continue;
      const double d2 = cx[q] * cx[q] + cy[q] * cy[q];
      if (d2 < e.d2) e = {d2, d2 > 0 ? cx[q] * cx[q] / d2 : 0.5, p.centre};
    }
  }
  return e;
}

// The sharp edge term exp(-x/lambda) for x >= 0 (x = signed distance into the feature along
// the edge's normal), 0 outside, convolved with a 1-D Gaussian of std s: the exponentially
// modified Gaussian exp(-x/lambda + s^2 / (2 lambda^2)) * Phi(x/s - s/lambda).
QRP_HD inline double blurred_edge_term(double x, double s, double lambda)
{
  if (!(lambda > 0)) return 0;
  if (!(s > 0)) return x >= 0 ? std::exp(-x / lambda) : 0.0;
  // Outside, the leak is below exp(-x^2 / (2 s^2)) / (|z| sqrt(2 pi)): under 1e-11 beyond 7 s.
  if (x < -7 * s) return 0;
  const double z = x / s - s / lambda;
  if (z < -20) {
    // exp(a) Phi(z) = exp(-x^2 / (2 s^2)) * Phi(z) exp(z^2 / 2), the latter by the Mills ratio series.
    const double iz2 = 1 / (z * z);
    return std::exp(-x * x / (2 * s * s)) * (1 - iz2 * (1 - 3 * iz2)) / (-z * 2.5066282746310002);
  }
  return std::exp(-x / lambda + s * s / (2 * lambda * lambda)) * normal_cdf(z);
}

// The sharp surface before wall rounding, probe and grain: film_level on the film, milled_level
// + edge_gain * exp(-d/lambda) inside a milled module (d from the 3x3 neighbourhood). The
// reference that tests blur numerically to hold probe_signal to.
QRP_HD inline double sharp_surface(const sem_params& p, const module_patch& patch, double u, double v, double m)
{
  if (!patch.centre) return p.film_level;
  const edge_info e = nearest_edge(patch, u, v, m);
  const bool edges = p.edge_gain > 0 && p.edge_lambda_nm > 0 && e.d2 < HUGE_VAL;
  return p.milled_level + (edges ? p.edge_gain * std::exp(-std::sqrt(e.d2) / p.edge_lambda_nm) : 0.0);
}

// The blurred surface (core and halo, no grain) at offset (u, v) inside the patch's centre
// module; the patch must come from gather_patch with the same probe shape.
QRP_HD inline double probe_signal(const sem_params& p, const probe_shape& ps, const module_patch& patch, double u,
                                  double v, double m)
{
  const double contrast = p.milled_level - p.film_level;
  double core = p.film_level + contrast * blurred_fraction(patch, patch.core_uniform, u, v, m, ps.core_x, ps.core_y);
  if (p.edge_gain > 0 && p.edge_lambda_nm > 0) {
    const edge_info e = nearest_edge(patch, u, v, m);
    if (e.d2 < HUGE_VAL) {
      const double d = std::sqrt(e.d2);
      const double sn = std::sqrt(e.nx2 * ps.core_x.s * ps.core_x.s + (1 - e.nx2) * ps.core_y.s * ps.core_y.s);
      core += p.edge_gain * blurred_edge_term(e.inside ? d : -d, sn, p.edge_lambda_nm);
    }
  }
  if (ps.halo.k == 0) return core;
  const double halo = p.film_level + contrast * blurred_fraction(patch, patch.halo_uniform, u, v, m, ps.halo, ps.halo);
  return (1 - p.halo_weight) * core + p.halo_weight * halo;
}

// -------------------------------------------------------------------------------------------
// Scan geometry, background and detector: everything a tile needs, precomputed once per tile.

// A drift jump: from t_us on, the beam is displaced by (x_nm, y_nm) in total by all jumps so far.
struct jump_event {
  double t_us;
  double x_nm, y_nm;
};

struct tile_context {
  probe_shape probe;
  double module_nm = 49, per_module_nm = 1.0 / 49;
  std::uint32_t width = 0, height = 0;
  double per_width = 0, per_height = 0;  // 1 / width, 1 / height
  std::uint64_t seed = 0;
  std::uint64_t grain_key = 0;  // grain_key(grain_seed)
  // Geometry: pixel centre (i + 0.5, j + 0.5) -> origin + fi * a + fj * b; scan x unit vector u.
  double ox = 0, oy = 0, ax = 0, ay = 0, bx = 0, by = 0, ux = 1, uy = 0;
  double dwell_us = 0, line_us = 0, total_us = 0;
  double drift_x_per_us = 0, drift_y_per_us = 0;
  double vibration_nm = 0, vibration_rad_per_us = 0, vibration_phase = 0;
  const jump_event* jumps = nullptr;  // sorted by time; filled by the host
  std::uint32_t jump_count = 0;
  // Background: factor (1 + ramp_i * (fi / width - 0.5) + ramp_j * (fj / height - 0.5)) *
  // (1 + charging_per_us * t).
  double ramp_i = 0, ramp_j = 0, charging_per_us = 0;
  // Detector.
  double dose_e = 0;  // mean detected electrons at signal 1.0: 6.24 * beam_pA * dwell_us * yield
  double black_dn = 0, dn_per_e = 0, max_dn = 65535;
};

// Everything but the jumps (which the host generates with make_jump) and the weight tables.
QRP_HD inline tile_context make_tile_context(const sem_params& p, const tile_pose& pose, const tile_spec& spec,
                                             double module_nm, std::uint64_t seed)
{
  constexpr double deg = 0.017453292519943295;
  tile_context c;
  c.probe = make_probe_shape(p, pose.rotation_deg, module_nm);
  c.module_nm = module_nm;
  c.per_module_nm = 1 / module_nm;
  c.width = spec.width;
  c.height = spec.height;
  c.per_width = 1.0 / spec.width;
  c.per_height = 1.0 / spec.height;
  c.seed = seed;
  c.grain_key = grain_key(p.grain_seed);
  const double cr = std::cos(pose.rotation_deg * deg), sr = std::sin(pose.rotation_deg * deg);
  const double step = pose.scale * spec.pixel_nm;
  c.ox = pose.x_nm;
  c.oy = pose.y_nm;
  c.ax = step * cr;
  c.ay = step * sr;
  c.bx = -step * sr;
  c.by = step * cr;
  c.ux = cr;
  c.uy = sr;
  c.dwell_us = p.dwell_us;
  c.line_us = spec.width * p.dwell_us + p.flyback_us;
  c.total_us = spec.height * c.line_us;
  const double v = p.drift_nm_per_s * 1e-6;
  c.drift_x_per_us = v * std::cos(p.drift_angle_deg * deg);
  c.drift_y_per_us = v * std::sin(p.drift_angle_deg * deg);
  c.vibration_nm = p.vibration_nm;
  c.vibration_rad_per_us = 6.283185307179586 * p.vibration_hz * 1e-6;
  counter_rng r = make_rng(seed, rng_stream::tile, 0);
  c.vibration_phase = 6.283185307179586 * r.uniform();
  // A ramp along a random direction, scaled so that it spans exactly background_tilt between
  // the tile's extreme corners.
  const double ra = 6.283185307179586 * r.uniform();
  const double rc = std::cos(ra), rs = std::sin(ra);
  c.ramp_i = p.background_tilt * rc / (std::fabs(rc) + std::fabs(rs));
  c.ramp_j = p.background_tilt * rs / (std::fabs(rc) + std::fabs(rs));
  c.charging_per_us = c.total_us > 0 ? p.charging / c.total_us : 0;
  // Goldstein et al., Scanning Electron Microscopy and X-Ray Microanalysis, eq. 5.19:
  // n = 6.24e6 electrons/pA/s * I * tau = 6.24 * I[pA] * tau[us].
  c.dose_e = 6.24 * p.beam_pA * p.dwell_us * p.yield;
  const double brighter = p.film_level > p.milled_level ? p.film_level : p.milled_level;
  const double full_scale = p.full_scale_e > 0 ? p.full_scale_e : 2 * c.dose_e * brighter;
  c.max_dn = p.bits == 8 ? 255 : 65535;
  c.black_dn = p.black_level * c.max_dn;
  c.dn_per_e = c.max_dn * (1 - p.black_level) / full_scale;
  return c;
}

// Jump k of a tile (k = 0, 1, ...): its gap after jump k-1 (exponential, rate per us) and
// displacement (jump_nm in a uniformly random direction).
QRP_HD inline void make_jump(std::uint64_t seed, std::uint64_t k, double rate_per_us, double jump_nm, double& gap_us,
                             double& dx, double& dy)
{
  counter_rng r = make_rng(seed, rng_stream::jump, k);
  gap_us = -std::log(r.uniform()) / rate_per_us;
  const double a = 6.283185307179586 * r.uniform();
  dx = jump_nm * std::cos(a);
  dy = jump_nm * std::sin(a);
}

// The fast-axis offset of line j (nm, Gaussian, one draw per line).
QRP_HD inline double line_jitter_nm(std::uint64_t seed, std::uint32_t j, double sigma_nm)
{
  if (!(sigma_nm > 0)) return 0;
  counter_rng r = make_rng(seed, rng_stream::line, j);
  double z0, z1;
  r.normal_pair(z0, z1);
  return sigma_nm * z0;
}

QRP_HD inline double acquisition_time_us(const tile_context& c, std::uint32_t i, std::uint32_t j)
{
  return j * c.line_us + i * c.dwell_us;
}

// The beam's true plate position for pixel (i, j) at time t_us.
QRP_HD inline void beam_position(const tile_context& c, std::uint32_t i, std::uint32_t j, double t_us, double jitter_nm,
                                 double& x, double& y)
{
  const double fi = i + 0.5, fj = j + 0.5;
  x = c.ox + fi * c.ax + fj * c.bx + c.drift_x_per_us * t_us;
  y = c.oy + fi * c.ay + fj * c.by + c.drift_y_per_us * t_us;
  if (c.jump_count != 0 && c.jumps[0].t_us <= t_us) {
    std::uint32_t lo = 0, hi = c.jump_count;  // last jump with t <= t_us is in [lo, hi)
    while (hi - lo > 1) {
      const std::uint32_t mid = (lo + hi) / 2;
      if (c.jumps[mid].t_us <= t_us)
        lo = mid;
      else
        hi = mid;
    }
    x += c.jumps[lo].x_nm;
    y += c.jumps[lo].y_nm;
  }
  double along = jitter_nm;
  if (c.vibration_nm != 0) along += c.vibration_nm * std::sin(c.vibration_rad_per_us * t_us + c.vibration_phase);
  x += along * c.ux;
  y += along * c.uy;
}

QRP_HD inline double background_factor(const tile_context& c, std::uint32_t i, std::uint32_t j, double t_us)
{
  const double ramp = c.ramp_i * ((i + 0.5) * c.per_width - 0.5) + c.ramp_j * ((j + 0.5) * c.per_height - 0.5);
  return (1 + ramp) * (1 + c.charging_per_us * t_us);
}

// The expected signal (relative yield) at plate position (x, y), background excluded. `patch`
// is a cache the caller keeps between calls (regathered when the beam changes module).
QRP_HD inline double surface_signal(const sem_params& p, const tile_context& c, const module_window& w,
                                    module_patch& patch, double x, double y)
{
  const double m = c.module_nm;
  const double fc = floor_fast(x * c.per_module_nm), fr = floor_fast(y * c.per_module_nm);
  const auto col = static_cast<std::int64_t>(fc), row = static_cast<std::int64_t>(fr);
  if (!patch.valid || patch.col != col || patch.row != row) gather_patch(w, c.probe, col, row, patch);
  double s = probe_signal(p, c.probe, patch, x - fc * m, y - fr * m, m);
  if (p.grain_amplitude > 0) s *= 1 + p.grain_amplitude * film_grain(c.grain_key, p.grain_nm, x, y);
  return s;
}

// Detected electrons for a mean of `mean_e`: Poisson count N, then gain noise (each electron's
// gain has CV gain_cv: given N, the total is Normal(N, sqrt(N) * gain_cv)). Also draws the read
// noise sample (electrons) that the caller adds after lag. Draws come from the pixel's own stream.
QRP_HD inline double detected_electrons(const sem_params& p, std::uint64_t seed, std::uint64_t pixel, double mean_e,
                                        double& read_e)
{
  counter_rng r = make_rng(seed, rng_stream::pixel, pixel);
  double e = poisson(r, mean_e);
  read_e = 0;
  if (p.gain_cv > 0 || p.read_noise_e > 0) {
    double z0, z1;
    r.normal_pair(z0, z1);
    if (e > 0) e += std::sqrt(e) * p.gain_cv * z0;
    read_e = p.read_noise_e * z1;
  }
  return e;
}

// Rounds to the nearest DN and clips to 0..max_dn.
QRP_HD inline std::uint16_t to_dn(const tile_context& c, double electrons)
{
  const double v = c.black_dn + electrons * c.dn_per_e + 0.5;
  if (!(v >= 1)) return 0;
  if (v >= c.max_dn) return static_cast<std::uint16_t>(c.max_dn);
  return static_cast<std::uint16_t>(static_cast<std::int32_t>(v));
}

// One tile row, left to right (lag makes the fast axis sequential). `positions` (x, y per pixel)
// may be null.
QRP_HD inline void render_row(const sem_params& p, const tile_context& c, const module_window& w, std::uint32_t j,
                              std::uint16_t* out, double* positions)
{
  module_patch patch;
  const double jitter = line_jitter_nm(c.seed, j, p.jitter_nm);
  double prev = 0;
  for (std::uint32_t i = 0; i < c.width; ++i) {
    const double t = acquisition_time_us(c, i, j);
    double x, y;
    beam_position(c, i, j, t, jitter, x, y);
    if (positions) {
      positions[2 * i] = x;
      positions[2 * i + 1] = y;
    }
    double s = surface_signal(p, c, w, patch, x, y) * background_factor(c, i, j, t);
    const double mean = c.dose_e * (s > 0 ? s : 0.0);
    double read = 0;
    const double e =
        p.noise ? detected_electrons(p, c.seed, static_cast<std::uint64_t>(j) * c.width + i, mean, read) : mean;
    // The detector starts a line settled on its first pixel.
    const double lagged = i == 0 ? e : (1 - p.lag) * e + p.lag * prev;
    prev = lagged;
    out[i] = to_dn(c, lagged + read);
  }
}

}  // namespace qrplate::sim
