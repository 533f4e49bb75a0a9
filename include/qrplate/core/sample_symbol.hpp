// Reading the modules of one code out of a grayscale scan: the per-code steps between
// registration and decode_symbol (DESIGN.md, read path), as QRP_HD functions on small views so
// the CPU decoder and the CUDA kernels run the same code.
//
//   pattern responses   finder and alignment templates scored with box sums over an integral
//                       image (O(1) per position), to find and refine anchors;
//   affine_map          plate/code module coordinates -> pixel coordinates;
//   sample_module       below 2 px/module the depth-weighted mean of the pixels inside the
//                       module (tent_mean), else the mean of five bilinear samples (the centre,
//                       and four off-centre ones from 3 px/module up: sample_spread);
//   threshold_symbol    a brightness plane fitted to the modules whose colour is known (function
//                       patterns), which gives the threshold, the polarity (milled dark or bright)
//                       and a confidence per module for the erasure pass of decode_symbol.
//
// Pixel coordinates are continuous: pixel (i, j) covers [i, i + 1) x [j, j + 1), its centre is
// (i + 0.5, j + 0.5). Module coordinates likewise: module (col, row) covers [col, col + 1) x
// [row, row + 1).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/core/version_plan.hpp"

namespace qrplate::core {

// A grayscale image, row-major (larger = brighter).
struct gray_view {
  const std::uint16_t* pixels = nullptr;
  int width = 0, height = 0;
  std::size_t stride = 0;  // samples per row

  // Bilinear value at continuous (u, v); the caller keeps (u, v) at least half a pixel inside.
  QRP_HD float bilinear(double u, double v) const
  {
    const double x = u - 0.5, y = v - 0.5;
    int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y));
    double fx = x - x0, fy = y - y0;
    if (x0 < 0) x0 = 0, fx = 0;
    if (y0 < 0) y0 = 0, fy = 0;
    if (x0 >= width - 1) x0 = width - 2 < 0 ? 0 : width - 2, fx = width > 1 ? 1 : 0;
    if (y0 >= height - 1) y0 = height - 2 < 0 ? 0 : height - 2, fy = height > 1 ? 1 : 0;
    const std::uint16_t* p = pixels + static_cast<std::size_t>(y0) * stride + x0;
    const std::size_t dx = width > 1 ? 1 : 0, dy = height > 1 ? stride : 0;
    const double top = p[0] + fx * (static_cast<double>(p[dx]) - p[0]);
    const double bottom = p[dy] + fx * (static_cast<double>(p[dy + dx]) - p[dy]);
    return static_cast<float>(top + fy * (bottom - top));
  }

  // The mean of the pixels whose centres lie within h of (u, v) on both axes, each weighted by
  // how deep inside that square it lies, (h - |dx|) (h - |dy|); pixels past the image's edge are
  // left out. For h = 1 these are bilinear()'s weights; for smaller squares it keeps to the pixels that
  // belong to the square, where a bilinear sample would lean on the pixels beyond it. With
  // h >= 0.5 some pixel always qualifies unless (u, v) is outside the image (then 0).
  QRP_HD float tent_mean(double u, double v, double h) const
  {
    // floor and ceil by truncation (a libm call each without SSE4.1, in the loop over every
    // module): the same integers for coordinates within int's range.
    auto floor_int = [](double x) {
      const int t = static_cast<int>(x);
      return t - (x < t ? 1 : 0);
    };
    auto ceil_int = [](double x) {
      const int t = static_cast<int>(x);
      return t + (x > t ? 1 : 0);
    };
    const int i0 = ceil_int(u - h - 0.5), i1 = floor_int(u + h - 0.5);
    const int j0 = ceil_int(v - h - 0.5), j1 = floor_int(v + h - 0.5);
    double weights = 0, sum = 0;
    for (int j = j0 < 0 ? 0 : j0; j <= j1 && j < height; ++j) {
      const double wy = h - std::fabs(j + 0.5 - v);
      if (!(wy > 0)) continue;
      for (int i = i0 < 0 ? 0 : i0; i <= i1 && i < width; ++i) {
        const double wx = h - std::fabs(i + 0.5 - u);
        if (!(wx > 0)) continue;
        weights += wx * wy;
        sum += wx * wy * pixels[static_cast<std::size_t>(j) * stride + i];
      }
    }
    return weights > 0 ? static_cast<float>(sum / weights) : 0.0f;
  }

  // bilinear() for a point whose four neighbours are inside the image (u and v at least 1 pixel
  // from every edge): the same arithmetic without floor and clamps, so the same value, bit for
  // bit (truncation is floor for the positive coordinates left). The sampling of every module of
  // every code runs through here.
  QRP_HD float bilinear_inside(double u, double v) const
  {
    const double x = u - 0.5, y = v - 0.5;
    const int x0 = static_cast<int>(x), y0 = static_cast<int>(y);
    const double fx = x - x0, fy = y - y0;
    const std::uint16_t* p = pixels + static_cast<std::size_t>(y0) * stride + x0;
    const double top = p[0] + fx * (static_cast<double>(p[1]) - p[0]);
    const double bottom = p[stride] + fx * (static_cast<double>(p[stride + 1]) - p[stride]);
    return static_cast<float>(top + fy * (bottom - top));
  }
};

// Nearest integer, halves away from zero (std::lround's rule), inline: the template responses
// round a dozen coordinates per call, and the libm call was ~5% of a decode. Out of int's range
// (or NaN) it answers a far-away value instead of undefined behaviour: callers clip boxes.
QRP_HD inline int round_to_int(double x)
{
  if (!(x > -1e9 && x < 1e9)) return x > 0 ? 1000000000 : -1000000000;
  return x >= 0 ? static_cast<int>(x + 0.5) : -static_cast<int>(0.5 - x);
}

// Summed-area table: sums[y * (width + 1) + x] = the sum of (pixel >> shift) over [0, x) x [0, y),
// modulo 2^32. Box sums are taken in the same modular arithmetic, so they are exact while the
// true box sum stays below 2^32: the builder picks `shift` so that it does for the largest box
// used (a 16-bit image needs no shift up to ~28 px/module). Half the memory of doubles, and
// integer adds: building it was the largest share of registering a tile.
struct integral_view {
  const std::uint32_t* sums = nullptr;
  int width = 0, height = 0;
  int shift = 0;

  // Sum and pixel count of [x0, x1) x [y0, y1) clipped to the image.
  QRP_HD double box(int x0, int y0, int x1, int y1, double& area) const
  {
    x0 = x0 < 0 ? 0 : (x0 > width ? width : x0);
    x1 = x1 < 0 ? 0 : (x1 > width ? width : x1);
    y0 = y0 < 0 ? 0 : (y0 > height ? height : y0);
    y1 = y1 < 0 ? 0 : (y1 > height ? height : y1);
    if (x1 <= x0 || y1 <= y0) {
      area = 0;
      return 0;
    }
    area = static_cast<double>(x1 - x0) * (y1 - y0);
    const std::size_t w = static_cast<std::size_t>(width) + 1;
    const std::uint32_t sum = sums[y1 * w + x1] - sums[y0 * w + x1] - sums[y1 * w + x0] + sums[y0 * w + x0];
    return static_cast<double>(sum) * static_cast<double>(1u << shift);
  }
  // A square centred on the pixel corner nearest (cx, cy) (continuous coordinates: the corner
  // between pixels cx - 1 and cx), half-side h rounded to whole pixels. Rounding the half-side,
  // not the two edges, keeps the box symmetric about its centre whatever h is: rounding both
  // edges of an odd width moves the centre by half a pixel.
  QRP_HD double square(double cx, double cy, double h, double& area) const
  {
    const int x = round_to_int(cx), y = round_to_int(cy);
    const int r = round_to_int(h) < 1 ? 1 : round_to_int(h);
    return box(x - r, y - r, x + r, y + r, area);
  }
};

// Finder pattern (ISO 18004:2015 §6.3.3) centred on (cx, cy), m pixels per module: the mean of
// its light modules (the 5x5 ring and the 1-module separator around the 7x7) minus the mean of
// its dark ones (7x7 ring, 3x3 core). About +contrast on a finder when milled modules are dark,
// -contrast when they are bright, near 0 over data. Rotation up to a few degrees and scale
// errors of a few percent cost little: the template is 9 modules wide.
QRP_HD inline float finder_response(const integral_view& iv, double cx, double cy, double m)
{
  double a9, a7, a5, a3;
  const double s9 = iv.square(cx, cy, 4.5 * m, a9), s7 = iv.square(cx, cy, 3.5 * m, a7);
  const double s5 = iv.square(cx, cy, 2.5 * m, a5), s3 = iv.square(cx, cy, 1.5 * m, a3);
  const double dark = s7 - s5 + s3, dark_area = a7 - a5 + a3;
  const double light = s9 - dark, light_area = a9 - dark_area;
  if (dark_area <= 0 || light_area <= 0) return 0;
  return static_cast<float>(light / light_area - dark / dark_area);
}

// Alignment pattern (§6.3.6): the 3x3 light ring minus the 5x5 dark ring and the centre module.
QRP_HD inline float alignment_response(const integral_view& iv, double cx, double cy, double m)
{
  double a5, a3, a1;
  const double s5 = iv.square(cx, cy, 2.5 * m, a5), s3 = iv.square(cx, cy, 1.5 * m, a3);
  const double s1 = iv.square(cx, cy, 0.5 * m, a1);
  const double dark = s5 - s3 + s1, dark_area = a5 - a3 + a1;
  const double light = s3 - s1, light_area = a3 - a1;
  if (dark_area <= 0 || light_area <= 0) return 0;
  return static_cast<float>(light / light_area - dark / dark_area);
}

// The squares of a finder template (4: 9, 7, 5 and 3 modules) or an alignment template (3: 5, 3
// and 1 module) at m pixels per module, with whole-pixel half-sides as integral_view::square
// rounds them, and the templates' arithmetic over their sums: finder_response and
// alignment_response with the rounding hoisted out, for callers that probe many positions (the
// anchor searches, the finder scan over a whole tile). Boxes = 4 for a finder, 3 for an alignment
// pattern.
template <int Boxes>
struct pattern_boxes {
  int half[4] = {};  // box half-sides
  double dark_area = 0, light_area = 0;

  QRP_HD explicit pattern_boxes(double m = 1.0)
  {
    double area[4] = {};
    for (int k = 0; k < Boxes; ++k) {
      const int r = round_to_int((Boxes == 4 ? 4.5 - k : 2.5 - k) * m);
      half[k] = r < 1 ? 1 : r;
      area[k] = static_cast<double>(2 * half[k]) * (2 * half[k]);
    }
    dark_area = Boxes == 4 ? area[1] - area[2] + area[3] : area[0] - area[1] + area[2];
    light_area = Boxes == 4 ? area[0] - dark_area : area[1] - area[2];
  }

  // Whether every box centred on pixel corner (x, y) lies inside the image.
  QRP_HD bool inside(const integral_view& iv, int x, int y) const
  {
    return x - half[0] >= 0 && y - half[0] >= 0 && x + half[0] <= iv.width && y + half[0] <= iv.height;
  }
  // The integral image rows the boxes centred on row y use: row_ptrs[2 k] above box k,
  // row_ptrs[2 k + 1] below it.
  QRP_HD void rows_at(const integral_view& iv, int y, const std::uint32_t* row_ptrs[8]) const
  {
    const std::size_t w1 = static_cast<std::size_t>(iv.width) + 1;
    for (int k = 0; k < Boxes; ++k) {
      row_ptrs[2 * k] = iv.sums + static_cast<std::size_t>(y - half[k]) * w1;
      row_ptrs[2 * k + 1] = iv.sums + static_cast<std::size_t>(y + half[k]) * w1;
    }
  }
  // False for scales so small that the squares coincide (the plain functions answer 0 there).
  QRP_HD bool valid() const { return dark_area > 0 && light_area > 0; }
  // The template's response at column x of the row whose rows_at are given (boxes inside, valid()):
  // finder_response's or alignment_response's value, bit for bit. unit = 2^iv.shift.
  QRP_HD float response(const std::uint32_t* const row_ptrs[8], int x, double unit) const
  {
    double s[Boxes];
    for (int k = 0; k < Boxes; ++k) {
      const int r = half[k];
      const std::uint32_t* top = row_ptrs[2 * k];
      const std::uint32_t* bottom = row_ptrs[2 * k + 1];
      const std::uint32_t sum = bottom[x + r] - top[x + r] - bottom[x - r] + top[x - r];  // modulo 2^32
      s[k] = static_cast<double>(sum) * unit;
    }
    const double dark = Boxes == 4 ? s[1] - s[2] + s[3] : s[0] - s[1] + s[2];
    const double light = Boxes == 4 ? s[0] - dark : s[1] - s[2];
    return static_cast<float>(light / light_area - dark / dark_area);
  }
};

// finder_response (Boxes = 4) or alignment_response (3) at whole-pixel centres: the same value,
// from pattern_boxes where every box lies inside the image, from the plain function elsewhere.
template <int Boxes>
struct pattern_probe {
  integral_view iv;
  double module_px = 0;
  pattern_boxes<Boxes> boxes;

  QRP_HD pattern_probe(const integral_view& view, double m) : iv(view), module_px(m), boxes(m) {}

  QRP_HD float operator()(int x, int y) const
  {
    if (!boxes.inside(iv, x, y)) {
      return Boxes == 4 ? finder_response(iv, x, y, module_px) : alignment_response(iv, x, y, module_px);
    }
    if (!boxes.valid()) return 0;
    const std::uint32_t* row_ptrs[8];
    boxes.rows_at(iv, y, row_ptrs);
    return boxes.response(row_ptrs, x, static_cast<double>(1u << iv.shift));
  }
};

// (u, v) = (a[0] + a[1] x + a[2] y, a[3] + a[4] x + a[5] y).
struct affine_map {
  double a[6] = {0, 1, 0, 0, 0, 1};

  QRP_HD void apply(double x, double y, double& u, double& v) const
  {
    u = a[0] + a[1] * x + a[2] * y;
    v = a[3] + a[4] * x + a[5] * y;
  }
  QRP_HD double determinant() const { return a[1] * a[5] - a[2] * a[4]; }
  // The inverse map; false when singular.
  QRP_HD bool inverse(affine_map& out) const
  {
    const double det = determinant();
    if (!(std::fabs(det) > 1e-12)) return false;
    const double i1 = a[5] / det, i2 = -a[2] / det, i4 = -a[4] / det, i5 = a[1] / det;
    out.a[1] = i1, out.a[2] = i2, out.a[4] = i4, out.a[5] = i5;
    out.a[0] = -(i1 * a[0] + i2 * a[3]);
    out.a[3] = -(i4 * a[0] + i5 * a[3]);
    return true;
  }
  // This map applied after translating module coordinates by (dx, dy): x -> map(x + dx).
  QRP_HD affine_map shifted(double dx, double dy) const
  {
    affine_map r = *this;
    r.a[0] += a[1] * dx + a[2] * dy;
    r.a[3] += a[4] * dx + a[5] * dy;
    return r;
  }
};

// Least-squares affine map from n points (x, y) to (u, v), weights w (null: 1). False when the
// points do not span two dimensions.
QRP_HD inline bool fit_affine(const double* x, const double* y, const double* u, const double* v, const double* w, int n,
                              affine_map& out)
{
  // Normal equations of [1 x y] with the centroid removed, for conditioning.
  double sw = 0, mx = 0, my = 0;
  for (int i = 0; i < n; ++i) {
    const double wi = w ? w[i] : 1.0;
    sw += wi, mx += wi * x[i], my += wi * y[i];
  }
  if (n < 3 || !(sw > 0)) return false;
  mx /= sw, my /= sw;
  double sxx = 0, sxy = 0, syy = 0, sxu = 0, syu = 0, sxv = 0, syv = 0, su = 0, sv = 0;
  for (int i = 0; i < n; ++i) {
    const double wi = w ? w[i] : 1.0, dx = x[i] - mx, dy = y[i] - my;
    sxx += wi * dx * dx, sxy += wi * dx * dy, syy += wi * dy * dy;
    sxu += wi * dx * u[i], syu += wi * dy * u[i], sxv += wi * dx * v[i], syv += wi * dy * v[i];
    su += wi * u[i], sv += wi * v[i];
  }
  const double det = sxx * syy - sxy * sxy;
  if (!(det > 1e-9 * (sxx + syy) * (sxx + syy)) || !(sxx > 0) || !(syy > 0)) return false;
  const double b1 = (syy * sxu - sxy * syu) / det, b2 = (sxx * syu - sxy * sxu) / det;
  const double c1 = (syy * sxv - sxy * syv) / det, c2 = (sxx * syv - sxy * sxv) / det;
  out.a[1] = b1, out.a[2] = b2, out.a[4] = c1, out.a[5] = c2;
  out.a[0] = su / sw - b1 * mx - b2 * my;
  out.a[3] = sv / sw - c1 * mx - c2 * my;
  return true;
}

// How far (pixels, along each axis) from a module's centre sample_module takes its four
// off-centre samples, at m >= 2 pixels per module: a quarter module from 3 px/module up, none at
// 2 px/module, a linear ramp between. Off-centre samples average the noise away where a module
// spans many pixels (harsh scans at 3-4 px/module lose 2-3x more codes with smaller spreads, or
// with a heavier centre), but below 3 px/module their bilinear footprint reaches into the
// neighbouring modules.
QRP_HD inline double sample_spread(double m)
{
  if (m <= 2.0) return 0.0;
  if (m < 3.0) return 0.75 * (m - 2.0);
  return 0.25 * m;
}

// The value of a module whose centre maps to (u, v), m pixels per module.
//  - From 2 px/module up: the mean of five bilinear samples, at the centre and sample_spread(m)
//    from it diagonally, so the module's edges (blur, the bright walls of milled features) weigh
//    little and no neighbour leaks in (the centre sample alone at 2 px/module).
//  - Below 2 px/module: gray_view::tent_mean over the module's own square, the pixels whose
//    centres fall inside it weighted by their depth. An SEM pixel is a point sample of the beam
//    spot, and at 1.3-1.9 px/module the four pixels around the module's centre that a bilinear
//    sample blends often belong to its neighbours. Typical scans (v10-M, 339 codes): with a
//    quarter-module spread everywhere 12% of the codes were lost at 1.5 px/module and half at
//    1.4; with the centre sample alone every code read at 1.4, ~25% lost at 1.3; with the tent,
//    every code reads at 1.3 and the codes need about a third of the corrections at 1.4.
// The two overloads give the same value bit for bit; _inside skips the edge clamps of bilinear()
// for a centre at least sample_reach(m) (read_code.hpp) from every edge.
namespace detail {

template <bool Inside>
QRP_HD inline float sample_module_with(const gray_view& img, double u, double v, double m)
{
  if (m < 2.0) return img.tent_mean(u, v, 0.5 * m);
  auto at = [&img](double x, double y) {
    if constexpr (Inside) {
      return img.bilinear_inside(x, y);
    } else {
      return img.bilinear(x, y);
    }
  };
  const double q = sample_spread(m);
  if (q == 0) return at(u, v);
  return (at(u - q, v - q) + at(u + q, v - q) + at(u - q, v + q) + at(u + q, v + q) + at(u, v)) / 5.0f;
}

}  // namespace detail

// The plain form, clamped at the image's edges: what sample_module_inside (which every reader
// uses, for modules at least sample_reach(m) inside) is tested against.
QRP_HD inline float sample_module(const gray_view& img, double u, double v, double m)
{
  return detail::sample_module_with<false>(img, u, v, m);
}

QRP_HD inline float sample_module_inside(const gray_view& img, double u, double v, double m)
{
  return detail::sample_module_with<true>(img, u, v, m);
}

// What threshold_symbol learnt about a code.
struct symbol_levels {
  float dark = 0, light = 0;  // fitted levels at the symbol's centre (dark = a milled module)
  float noise = 0;            // RMS residual of the known modules around the fit
  int known = 0;              // known modules used
  int known_wrong = 0;        // known modules that read as the wrong colour
  bool ok = false;            // false: no contrast (blank, or nothing sampled)
};

// The brightness plane of one code, fitted to its known modules (threshold_symbol's first
// step): value = p[0] + p[1] * x + p[2] * y + p[3] * dark, x and y in [-1, 1].
struct plane_fit {
  symbol_levels levels;  // known, and light/dark once solved; noise, known_wrong, ok: finish_levels
  double p[4] = {0, 0, 0, 0};
  double half = 0, inv_half = 0;  // module coordinate -> [-1, 1]: (c - half) * inv_half
  bool solved = false;            // a plane with contrast: modules can be thresholded
  double sse = 0;                 // finish_levels: the known modules' squared residuals, summed
};

// The fit's sums over the known modules are taken in plane_fit_lanes interleaved lanes (lane l:
// the known modules l, l + 32, l + 64, ... in that order), then the lanes are added in lane order.
// Every runner gets the same doubles whether one thread sums every lane (the CPU) or 32 threads a
// lane each (the cooperative read kernel, read_cooperative.hpp), where a single serial sum kept a
// pass over a few thousand modules on one GPU thread while the group waited.
inline constexpr int plane_fit_lanes = 32;

// One lane's (or all lanes') normal equations of the 4-parameter model: with g = (1, x, y, dark),
// s[a][b] = sum of g[a] g[b] for a <= b (the fit mirrors the rest), s[a][4] = sum of g[a] value.
struct plane_fit_sums {
  double s[4][5];
  int known;
};

// Module coordinate -> [-1, 1]: (c - half) * inv_half.
QRP_HD inline double plane_half(int n) { return 0.5 * (n - 1); }

// Lane `lane`'s sums over the known modules (function patterns, format modules excluded) that
// were sampled.
QRP_HD inline plane_fit_sums plane_fit_lane(const version_plan& plan, const float* values, const std::uint8_t* valid,
                                            int lane)
{
  const int n = plan.size, w = plan.words;
  const double half = plane_half(n), inv_half = 1.0 / half;
  // `s` is only touched at constant indices (the loops unrolled), so that a GPU thread keeps it
  // in registers: indexing by a variable put such a matrix in local memory, ~40 local loads and
  // stores per known module.
  plane_fit_sums s{};
  for (int q = lane; q < plan.known_count; q += plane_fit_lanes) {
    const int i = plan.known[q], r = i / n, c = i - r * n;
    if (valid && !valid[i]) continue;
    const double g[4] = {1.0, (c - half) * inv_half, (r - half) * inv_half, get_bit(plan.base + r * w, c) ? 1.0 : 0.0};
    QRP_UNROLL
    for (int a = 0; a < 4; ++a) {
      QRP_UNROLL
      for (int b = a; b < 4; ++b) s.s[a][b] += g[a] * g[b];
      s.s[a][4] += g[a] * values[i];
    }
    ++s.known;
  }
  return s;
}

// total += lane (the lanes are added in lane order, starting from zeros).
QRP_HD inline void add_plane_fit_sums(plane_fit_sums& total, const plane_fit_sums& lane)
{
  QRP_UNROLL
  for (int a = 0; a < 4; ++a) {
    QRP_UNROLL
    for (int b = a; b < 5; ++b) total.s[a][b] += lane.s[a][b];
  }
  total.known += lane.known;
}

// Fits value = c0 + cx * x + cy * y + cd * dark to the sums of all lanes (added in lane order to
// zeros), so a brightness slope across the code (charging, background tilt) moves the threshold
// with it, and the sign of cd is the polarity.
QRP_HD inline plane_fit solve_brightness_plane(const version_plan& plan, const plane_fit_sums& sum)
{
  plane_fit f;
  f.half = plane_half(plan.size);
  // Reciprocals, not divisions, in the loops over every module: three divisions per module were
  // a third of the per-code read time.
  f.inv_half = 1.0 / f.half;
  f.levels.known = sum.known;
  if (sum.known < 8) return f;
  double m[4][5];
  QRP_UNROLL
  for (int a = 0; a < 4; ++a) {
    QRP_UNROLL
    for (int b = 0; b < 5; ++b) m[a][b] = b < a ? sum.s[b][a] : sum.s[a][b];
  }
  // Gaussian elimination with partial pivoting.
  for (int col = 0; col < 4; ++col) {
    int piv = col;
    for (int r = col + 1; r < 4; ++r)
      if (std::fabs(m[r][col]) > std::fabs(m[piv][col])) piv = r;
    if (!(std::fabs(m[piv][col]) > 1e-12)) return f;
    for (int k = 0; k < 5; ++k) {
      const double t = m[col][k];
      m[col][k] = m[piv][k];
      m[piv][k] = t;
    }
    for (int r = 0; r < 4; ++r) {
      if (r == col) continue;
      const double g = m[r][col] / m[col][col];
      for (int k = col; k < 5; ++k) m[r][k] -= g * m[col][k];
    }
  }
  for (int i = 0; i < 4; ++i) f.p[i] = m[i][4] / m[i][i];
  f.levels.light = static_cast<float>(f.p[0]);
  f.levels.dark = static_cast<float>(f.p[0] + f.p[3]);  // p[3]: milled minus film
  f.solved = 0.5 * std::fabs(f.p[3]) > 0;
  return f;
}

// The fit over the known modules by one thread: every lane in order, then solve_brightness_plane.
QRP_HD inline plane_fit fit_brightness_plane(const version_plan& plan, const float* values, const std::uint8_t* valid)
{
  plane_fit_sums sum{};
  for (int l = 0; l < plane_fit_lanes; ++l) add_plane_fit_sums(sum, plane_fit_lane(plan, values, valid, l));
  return solve_brightness_plane(plan, sum);
}

// The threshold along row r (the plane's level halfway between film and milled), and a value's
// distance above the threshold at column c of that row.
QRP_HD inline double plane_row_level(const plane_fit& f, int r)
{
  return f.p[0] + f.p[2] * ((r - f.half) * f.inv_half) + 0.5 * f.p[3];
}
QRP_HD inline double plane_residual(const plane_fit& f, double row_level, int c, float value)
{
  return value - (row_level + f.p[1] * ((c - f.half) * f.inv_half));
}

// Columns [c0, c1) of row r (within one word) of a solved fit thresholded: their bits (1 =
// milled) at c & 63, and their confidences (confidence: the whole symbol's, plan.size^2 bytes).
// Unsampled modules: 0, 0.
QRP_HD inline std::uint64_t threshold_columns(const version_plan& plan, const plane_fit& f, const float* values,
                                              const std::uint8_t* valid, int r, int c0, int c1,
                                              std::uint8_t* confidence)
{
  const int n = plan.size;
  const double contrast = f.p[3];
  const double scale = 255.0 / (0.5 * std::fabs(contrast));
  const double row_level = plane_row_level(f, r);
  std::uint64_t word = 0;
  for (int c = c0; c < c1; ++c) {
    const std::size_t i = static_cast<std::size_t>(r) * n + c;
    if (valid && !valid[i]) {
      confidence[i] = 0;
      continue;
    }
    const double d = plane_residual(f, row_level, c, values[i]);
    const bool milled = contrast < 0 ? d < 0 : d > 0;
    if (milled) word |= std::uint64_t{1} << (c & 63);
    const double conf = scale * std::fabs(d);
    confidence[i] = static_cast<std::uint8_t>(conf > 255.0 ? 255.0 : conf);
  }
  return word;
}

// Word w of row r of the thresholded modules (1 = milled) of a solved fit, and the confidences of
// its modules (threshold_columns over the word's columns).
QRP_HD inline std::uint64_t threshold_word(const version_plan& plan, const plane_fit& f, const float* values,
                                           const std::uint8_t* valid, int r, int w, std::uint8_t* confidence)
{
  const int end = 64 * w + 64 < plan.size ? 64 * w + 64 : plan.size;
  return threshold_columns(plan, f, values, valid, r, 64 * w, end, confidence);
}

// The fit's noise (RMS residual of the known modules around the two levels) and the known
// modules read as the wrong colour, summed in the lanes of plane_fit_lanes like the fit.
struct level_sums {
  double sse;
  int wrong;
};

QRP_HD inline level_sums levels_lane(const version_plan& plan, const plane_fit& f, const float* values,
                                     const std::uint8_t* valid, int lane)
{
  const int n = plan.size, w = plan.words;
  const double contrast = f.p[3];
  level_sums s{0.0, 0};
  for (int q = lane; q < plan.known_count; q += plane_fit_lanes) {
    const int i = plan.known[q], r = i / n, c = i - r * n;
    if (valid && !valid[i]) continue;
    const double d = plane_residual(f, plane_row_level(f, r), c, values[i]);
    const bool milled = contrast < 0 ? d < 0 : d > 0;
    const bool dark = get_bit(plan.base + r * w, c);
    if (dark != milled) ++s.wrong;
    const double e = d - (dark ? 0.5 : -0.5) * contrast;
    s.sse += e * e;
  }
  return s;
}

QRP_HD inline void add_level_sums(level_sums& total, const level_sums& lane)
{
  total.sse += lane.sse;
  total.wrong += lane.wrong;
}

// The noise and wrong modules from the sums of all lanes (added in lane order to zeros); levels.ok.
QRP_HD inline void set_levels(plane_fit& f, const level_sums& sum)
{
  f.sse = sum.sse;
  f.levels.known_wrong = sum.wrong;
  f.levels.noise = static_cast<float>(std::sqrt(sum.sse / f.levels.known));
  f.levels.ok = true;
}

// By one thread: every lane in order, then set_levels.
QRP_HD inline void finish_levels(const version_plan& plan, plane_fit& f, const float* values, const std::uint8_t* valid)
{
  level_sums sum{0.0, 0};
  for (int l = 0; l < plane_fit_lanes; ++l) add_level_sums(sum, levels_lane(plan, f, values, valid, l));
  set_levels(f, sum);
}

// Row r of a solved fit thresholded word by word (threshold_word): plan.words words into
// row_words, the row's confidences into confidence (the whole symbol's). The reference that the
// GPU runs; threshold_symbol_with takes any row thresholder that gives the same bits (the CPU's
// AVX2 one, host/scan/fast_sampling.cpp).
struct threshold_rows_plainly {
  QRP_HD void operator()(const version_plan& plan, const plane_fit& f, const float* values, const std::uint8_t* valid,
                         int r, std::uint64_t* row_words, std::uint8_t* confidence) const
  {
    for (int k = 0; k < plan.words; ++k) row_words[k] = threshold_word(plan, f, values, valid, r, k, confidence);
  }
};

// threshold_symbol with its rows thresholded by threshold_rows (threshold_rows_plainly's contract
// and bits).
template <class ThresholdRows>
QRP_HD inline symbol_levels threshold_symbol_with(const version_plan& plan, const float* values,
                                                  const std::uint8_t* valid, std::uint64_t* modules,
                                                  std::uint8_t* confidence, const ThresholdRows& threshold_rows)
{
  const int n = plan.size, w = plan.words;
  plane_fit f = fit_brightness_plane(plan, values, valid);
  if (!f.solved) {
    for (int i = 0; i < n * w; ++i) modules[i] = 0;
    for (int i = 0; i < n * n; ++i) confidence[i] = 0;
    return f.levels;
  }
  for (int r = 0; r < n; ++r) threshold_rows(plan, f, values, valid, r, modules + r * w, confidence);
  finish_levels(plan, f, values, valid);
  return f.levels;
}

// Thresholds the sampled values of one symbol: fit_brightness_plane, threshold_word for every
// word, finish_levels. values: plan.size^2 floats, row-major; valid: null or one byte per module
// (0 = not sampled: reads as light with confidence 0). modules: plan.size rows of plan.words
// words (1 = milled). confidence: plan.size^2 bytes, 255 * |value - threshold| / (|cd| / 2),
// capped at 255. Without a solved fit, all modules light with confidence 0.
QRP_HD inline symbol_levels threshold_symbol(const version_plan& plan, const float* values, const std::uint8_t* valid,
                                             std::uint64_t* modules, std::uint8_t* confidence)
{
  return threshold_symbol_with(plan, values, valid, modules, confidence, threshold_rows_plainly{});
}

}  // namespace qrplate::core
