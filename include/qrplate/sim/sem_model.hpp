// The forward model of a scanning-electron-microscope image of a milled plate, pixel by pixel
// (issue #5): surface (milled map, rounded edges, secondary-electron edge brightening, grain),
// probe (Gaussian PSF, astigmatism, halo), scan distortion by acquisition time (drift, jumps,
// jitter, vibration), background and charging, and the detector (shot noise from the dose,
// yield, gain noise, lag along the fast axis, read noise, brightness/contrast, clipping).
// Every parameter has its unit in its name or comment and a default. The per-pixel pieces are
// QRP_HD functions in sem_pixel.hpp, so a CUDA renderer can come later; render_tile is the CPU
// loop over them.
//
// Coordinates. Plate: nm, origin at the top-left corner of module (0, 0), x right, y down.
// Angles (rotation_deg, astigmatism_deg, drift_angle_deg) turn from the plate's +x towards its
// +y: angle a is the plate direction (cos a, sin a) (counter-clockwise in the usual maths
// picture with y up; clockwise on a screen that shows the plate with y down).
//
// The model, in the order it is applied:
//  1. Surface. Sharp: inside a milled module (module_window) the level is milled_level +
//     edge_gain * exp(-d / edge_lambda_nm), d = distance to the nearest feature edge (taken
//     from the 3x3 module neighbourhood, so exact up to one module); film_level elsewhere.
//     Walls are rounded by smoothing this sharp surface with a Gaussian of sigma edge_round_nm.
//     Everything times (1 + grain_amplitude * g), g a unit-variance value-noise field on a
//     grain_nm lattice.
//  2. Probe. The surface convolved with (1 - halo_weight) * core + halo_weight * halo, core a
//     Gaussian (sigma_nm, sigma_y_nm, astigmatism_deg), halo an isotropic Gaussian.
//     Computed analytically; the approximations are listed in sem_pixel.hpp (exact for straight
//     edges; corners, grain and the halo's view of edges are approximated).
//  3. Scan. Pixel (i, j) is acquired at t = j * (width * dwell + flyback) + i * dwell; the beam
//     sits at pose(pixel centre) + drift(t) + jitter(line j) + vibration(t).
//  4. Background: signal * (1 + background_tilt * ramp) * (1 + charging * t / t_total).
//  5. Detector: Poisson count of n * yield * signal electrons (n = 6.24 * beam_pA * dwell_us),
//     gain noise, lag (out_0 = s_0: a line starts settled), read noise, then
//     DN = black_level * max + electrons * max * (1 - black_level) / full_scale_e, rounded and
//     clipped to 0..max (max = 255 or 65535).
#pragma once

#include <cstddef>
#include <cstdint>

#include "qrplate/config.hpp"

namespace qrplate::sim {

struct sem_params {
  // 1. Surface. Signal levels are secondary-electron yields relative to the film (0..1 scale).
  double film_level = 0.55;       // unmilled film, >= 0
  double milled_level = 0.20;     // milled module floor, >= 0 (polarity: set above film_level for bright)
  double edge_gain = 0.30;        // a in a*exp(-d/lambda): brightening inside a milled feature near its edge, >= 0
  double edge_lambda_nm = 4.0;    // lambda, decay length of the edge brightening (nm); 0 = none
  double edge_round_nm = 3.0;     // wall rounding: the sharp surface is smoothed by a Gaussian of this sigma (nm)
  double grain_amplitude = 0.02;  // film texture, relative standard deviation (spatial average); 0 = none
  double grain_nm = 12.0;         // correlation length of the grain: lattice spacing of the value noise (nm)
  std::uint64_t grain_seed = 0;   // seed of the texture: a property of the plate, not of a tile, so that
                                  // overlapping tiles (rendered with different seeds) see the same grain
  // 2. Probe.
  double sigma_nm = 2.0;         // Gaussian probe sigma along its first axis (nm), >= 0
  double sigma_y_nm = 0.0;       // along the second axis (nm); 0 = same as sigma_nm (astigmatism when different)
  double astigmatism_deg = 0.0;  // angle of the first axis against the scan's x
  double halo_weight = 0.03;     // fraction of the signal in a broad halo, 0..1
  double halo_sigma_nm = 30.0;   // halo sigma (nm), > 0 when halo_weight > 0
  // 3. Scan timing and distortion.
  double dwell_us = 1.0;          // per pixel, > 0
  double flyback_us = 20.0;       // per line, beam returning to the left, >= 0
  double drift_nm_per_s = 20.0;   // slow stage/beam drift, constant velocity within a tile, >= 0
  double drift_angle_deg = 30.0;  // its direction on the plate (see the angle convention above)
  double jump_rate_per_s = 0.0;   // occasional drift jumps (Poisson rate), >= 0
  double jump_nm = 0.0;           // size of each jump (nm), in a uniformly random direction
  double jitter_nm = 0.5;         // line-to-line jitter along the scan's x (Gaussian sigma, nm, one draw per line)
  double vibration_nm = 0.5;      // amplitude of a sinusoidal vibration along the scan's x (nm)
  double vibration_hz = 50.0;     // its frequency; the phase is drawn per tile from the seed
  // 4. Background.
  double background_tilt = 0.04;  // relative brightness change across a tile (linear ramp, corner to corner
                                  // along a direction drawn per tile), 0..2
  double charging = 0.03;         // relative brightening at the end of the scan (linear in time), > -1
  // 5. Detector.
  double beam_pA = 50.0;      // probe current (pA), > 0
  double yield = 1.0;         // detected electrons per primary electron at signal 1.0, > 0
  double gain_cv = 0.3;       // detector gain noise: coefficient of variation per electron, >= 0
  double lag = 0.1;           // fraction of a pixel's signal that leaks into the next (fast axis), 0..<1
  double read_noise_e = 1.0;  // additive read noise, sigma in electron equivalents, >= 0
  double black_level = 0.05;  // output offset, fraction of full scale, 0..<1
  double full_scale_e = 0.0;  // electrons mapped to full scale; 0 = 2 x the mean signal of the brighter
                              // of film and milled floor (= 2 x film at the defaults)
  int bits = 16;              // 8 or 16 bit output
  bool noise = true;          // false: the expected image (no shot, gain or read noise), for tests and previews
};

// Where a tile really is: plate coordinates (nm) of the top-left corner of pixel (0, 0);
// rotation of the scan's x axis against the plate's (degrees, from +x towards +y, see above);
// scale (1 + error) of the pixel size. Pixel (i, j)'s centre lies at
//   (x_nm, y_nm) + scale * pixel_nm * ((i + 0.5) * (cos r, sin r) + (j + 0.5) * (-sin r, cos r)),
// and plate point (X, Y) at pixel coordinates u = (dX cos r + dY sin r) / (scale * pixel_nm),
// v = (-dX sin r + dY cos r) / (scale * pixel_nm), (dX, dY) = (X - x_nm, Y - y_nm).
struct tile_pose {
  double x_nm = 0;
  double y_nm = 0;
  double rotation_deg = 0;
  double scale = 1;
};

struct tile_spec {
  std::uint32_t width = 2048;  // pixels
  std::uint32_t height = 2048;
  double pixel_nm = 16.0;  // nominal pixel size
};

// A window of the plate's module map (1 = milled): module (col, row) of the plate is bit
// (col - x0) % 64 of word (col - x0) / 64 of row (row - y0); outside the window = not milled.
struct module_window {
  const std::uint64_t* rows = nullptr;
  std::size_t stride = 0;  // words per row
  std::int64_t x0 = 0, y0 = 0;
  std::int64_t width = 0, height = 0;
  double module_nm = 49.0;

  QRP_HD bool milled(std::int64_t col, std::int64_t row) const
  {
    const std::int64_t c = col - x0, r = row - y0;
    if (c < 0 || r < 0 || c >= width || r >= height) return false;
    return (rows[static_cast<std::size_t>(r) * stride + static_cast<std::size_t>(c >> 6)] >> (c & 63)) & 1u;
  }
};

// Validates parameters (qrplate::invalid_argument with a one-line reason: negative sigma, zero
// pixel size, bits not 8/16, ...).
void validate(const sem_params& p);
void validate(const tile_spec& t);

// Renders one tile into out (width * height values, row-major; 8-bit values use 0..255).
// Deterministic for (params, pose, spec, window, seed), whatever the thread count: every random
// draw is a hash of (seed, what, index). `true_positions`, when not null, receives for each pixel
// centre its true plate position in nm (x, y interleaved) after all scan distortions, for tests
// and truth files. Runs on all hardware threads (bands of rows). Throws
// qrplate::invalid_argument for bad parameters, and for a probe too wide for the module pitch
// (core sigma above 8/5 of a module).
void render_tile(const sem_params& p, const tile_pose& pose, const tile_spec& spec, const module_window& modules,
                 std::uint64_t seed, std::uint16_t* out, double* true_positions = nullptr);

// Renders rows [row_begin, row_end) of the same tile on the calling thread, into
// out + row_begin * width (and true_positions + 2 * row_begin * width): byte-identical to those
// rows of render_tile. For callers that run tiles in parallel themselves, or stream bands.
void render_tile_rows(const sem_params& p, const tile_pose& pose, const tile_spec& spec, const module_window& modules,
                      std::uint64_t seed, std::uint32_t row_begin, std::uint32_t row_end, std::uint16_t* out,
                      double* true_positions = nullptr);

}  // namespace qrplate::sim
