// Reading one code that lies wholly inside one image, given where its modules are: sampling
// every module, the threshold plane, Reed-Solomon with erasures. The per-code core of the scan
// reader (host/scan/scan_reader.cpp) and of the CUDA read kernel (kernels/decode/), so that both
// give the same statuses and the same bytes.
//
//   code_map            where the modules of one code lie in one tile: the tile's affine map
//                       moved to the code's origin, plus a smooth field of offsets measured at
//                       the code's own finder and alignment patterns (host/scan measures it)
//   sample_code         sample_module at every module centre the map puts far enough inside
//                       the image; the others are marked not sampled
//   decode_sampled      threshold_symbol, then decode_symbol with low-confidence codewords as
//                       erasures
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/decode_symbol.hpp"
#include "qrplate/core/sample_symbol.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

// The tile's map moved to the code's origin (module (0, 0) of the code at plate module
// (x0, y0): base = to_pixel.shifted(x0, y0)), corrected by offsets interpolated bilinearly
// between nodes every `step` modules. anchors = 0: no correction (the offsets are not read).
struct code_map {
  static constexpr int step = 4;  // modules between grid nodes
  static constexpr int max_nodes = (spec::max_symbol_size + step) / step + 1;
  affine_map base;
  int nodes = 0;    // per axis
  int anchors = 0;  // anchors the offsets were measured at
  float du[max_nodes][max_nodes], dv[max_nodes][max_nodes];

  QRP_HD void apply(double x, double y, double& u, double& v) const
  {
    base.apply(x, y, u, v);
    if (anchors == 0) return;
    const double top = nodes - 1.001;
    double gx = x / step, gy = y / step;
    gx = gx < 0 ? 0 : (gx > top ? top : gx);
    gy = gy < 0 ? 0 : (gy > top ? top : gy);
    const int ix = static_cast<int>(gx), iy = static_cast<int>(gy);
    const double fx = gx - ix, fy = gy - iy;
    const double u_top = du[iy][ix] + fx * (du[iy][ix + 1] - du[iy][ix]);
    const double u_bottom = du[iy + 1][ix] + fx * (du[iy + 1][ix + 1] - du[iy + 1][ix]);
    const double v_top = dv[iy][ix] + fx * (dv[iy][ix + 1] - dv[iy][ix]);
    const double v_bottom = dv[iy + 1][ix] + fx * (dv[iy + 1][ix + 1] - dv[iy + 1][ix]);
    u += u_top + fy * (u_bottom - u_top);
    v += v_top + fy * (v_bottom - v_top);
  }
};

// Pixels a module's four samples reach beyond its centre, plus the bilinear neighbour: a module
// whose centre is nearer an image edge than this is not sampled.
QRP_HD inline double sample_reach(double module_px) { return 0.25 * module_px + 1.0; }

// Distance of (u, v) to the nearest edge of a w x h image (negative outside).
QRP_HD inline double interior(double u, double v, double w, double h)
{
  const double a = u < w - u ? u : w - u, b = v < h - v ? v : h - v;
  return a < b ? a : b;
}

// Samples module (r, c) of a size-n code through `map` into values[r * n + c] and valid (1:
// sampled, 0: too near the image's edge; value 0); reach = sample_reach(module_px). Returns valid.
QRP_HD inline bool sample_code_module(const gray_view& img, const code_map& map, double module_px, double reach, int n,
                                      int r, int c, float* values, std::uint8_t* valid)
{
  const int k = r * n + c;
  double u, v;
  map.apply(c + 0.5, r + 0.5, u, v);
  const bool inside = interior(u, v, img.width, img.height) > reach;
  valid[k] = inside ? 1 : 0;
  values[k] = inside ? sample_module_inside(img, u, v, module_px) : 0.0f;
  return inside;
}

// Samples every module of a size-n code (sample_code_module). Returns the modules sampled.
QRP_HD inline int sample_code(const version_plan& plan, const gray_view& img, const code_map& map, double module_px,
                              float* values, std::uint8_t* valid)
{
  const int n = plan.size;
  const double reach = sample_reach(module_px);
  int sampled = 0;
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) sampled += sample_code_module(img, map, module_px, reach, n, r, c, values, valid);
  return sampled;
}

// What reading one code gave.
struct code_outcome {
  decode_result result{};  // status failed with error none when the code had no contrast
  symbol_levels levels{};
  float snr = 0;  // |dark - light| / noise of the known modules
};

// True for the statuses whose bytes are the code's content.
QRP_HD inline bool decoded(const decode_result& r)
{
  return r.status == decode_status::ok || r.status == decode_status::corrected ||
         r.status == decode_status::erasure_assisted;
}

// What a code's levels alone say: failed (error none) when there was no contrast, else the SNR;
// the result is decode_symbol's to fill.
QRP_HD inline code_outcome levels_outcome(const symbol_levels& levels)
{
  code_outcome o;
  o.levels = levels;
  if (!o.levels.ok) {
    o.result.status = decode_status::failed;
    o.result.error = decode_error::none;
    return o;
  }
  const float contrast = o.levels.dark - o.levels.light;
  o.snr = o.levels.noise > 0 ? (contrast < 0 ? -contrast : contrast) / o.levels.noise : 0;
  return o;
}

// decode_sampled's second half, on modules already thresholded (levels: what threshold_symbol
// returned for them).
QRP_HD inline code_outcome decode_thresholded(const version_plan& plan, const symbol_levels& levels,
                                              std::uint8_t erasure_threshold, const std::uint64_t* modules,
                                              const std::uint8_t* confidence, std::uint8_t* out, decode_workspace& ws)
{
  code_outcome o = levels_outcome(levels);
  if (o.levels.ok) o.result = decode_symbol(plan, modules, confidence, erasure_threshold, out, ws);
  return o;
}

// Thresholds sampled values (threshold_symbol) and decodes them (decode_symbol, modules whose
// confidence is below erasure_threshold may become erasures). modules, confidence: as
// threshold_symbol writes them; out: spec::max_data_codewords bytes.
QRP_HD inline code_outcome decode_sampled(const version_plan& plan, const float* values, const std::uint8_t* valid,
                                          std::uint8_t erasure_threshold, std::uint64_t* modules,
                                          std::uint8_t* confidence, std::uint8_t* out, decode_workspace& ws)
{
  const symbol_levels levels = threshold_symbol(plan, values, valid, modules, confidence);
  return decode_thresholded(plan, levels, erasure_threshold, modules, confidence, out, ws);
}

// Everything one reading of one code needs besides the image (sized for version 40).
struct read_code_workspace {
  float values[spec::max_symbol_size * spec::max_symbol_size];
  std::uint8_t valid[spec::max_symbol_size * spec::max_symbol_size];
  std::uint8_t confidence[spec::max_symbol_size * spec::max_symbol_size];
  std::uint64_t modules[spec::max_symbol_size * max_words];
  decode_workspace decode;
};

// sample_code, then decode_sampled: one code wholly inside one image.
QRP_HD inline code_outcome read_code(const version_plan& plan, const gray_view& img, const code_map& map,
                                     double module_px, std::uint8_t erasure_threshold, std::uint8_t* out,
                                     read_code_workspace& ws)
{
  sample_code(plan, img, map, module_px, ws.values, ws.valid);
  return decode_sampled(plan, ws.values, ws.valid, erasure_threshold, ws.modules, ws.confidence, out, ws.decode);
}

}  // namespace qrplate::core
