// The passes of tile registration that visit every pixel (host/scan/tile_registration.cpp), as
// QRP_HD pieces so that the CPU loops and the CUDA kernels (kernels/decode/registration_kernels.cu)
// compute the same values:
//
//   contrast_grid        module-sized boxes on a whole-module grid; each box mean falls into a
//                        histogram bin of whole image units, and two percentiles of the
//                        histogram give the tile's film/milled contrast;
//   finder_scan_plan     the finder template's boxes at one scale, hoisted out of
//                        core::finder_response for a scan over a half-module grid of the tile;
//                        finder_scan_response gives core::finder_response's value (same boxes,
//                        same double arithmetic) for positions the grid's margin keeps inside.
//
// The integral image itself (core::integral_view) is a sum modulo 2^32: the CPU builds it row by
// row, the GPU by a row scan and a column scan, and modular sums agree in any order.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/sample_symbol.hpp"

namespace qrplate::core {

// Boxes of step x step pixels (step = module_px rounded, at least 1) at (x, y) = (i * step,
// j * step), i < columns, j < rows.
struct contrast_grid {
  int step = 1;
  int columns = 0, rows = 0;
  double inverse_area = 0;  // 2^shift / step^2: a box's sum -> mean in image units

  QRP_HD static contrast_grid make(const integral_view& iv, double module_px)
  {
    contrast_grid g;
    const double rounded = module_px < 1.0 ? 1.0 : static_cast<double>(round_to_int(module_px));
    g.step = static_cast<int>(rounded);
    if (iv.width < g.step || iv.height < g.step) return g;
    g.columns = iv.width / g.step;
    g.rows = iv.height / g.step;
    g.inverse_area = static_cast<double>(1u << iv.shift) / (static_cast<double>(g.step) * g.step);
    return g;
  }
  QRP_HD std::size_t boxes() const { return static_cast<std::size_t>(columns) * rows; }

  // The histogram bin (0..65535) of box (i, j).
  QRP_HD int bin(const integral_view& iv, int i, int j) const
  {
    const std::size_t w1 = static_cast<std::size_t>(iv.width) + 1;
    const int x = i * step, y = j * step;
    const std::uint32_t* top = iv.sums + static_cast<std::size_t>(y) * w1;
    const std::uint32_t* bottom = iv.sums + static_cast<std::size_t>(y + step) * w1;
    const std::uint32_t sum = bottom[x + step] - top[x + step] - bottom[x] + top[x];  // modulo 2^32
    const double mean = static_cast<double>(sum) * inverse_area;
    return mean < 0.0 ? 0 : (mean > 65535.0 ? 65535 : static_cast<int>(mean));
  }
};

// Bins of the contrast histogram: one per whole image unit of a 16-bit sample (contrast_grid::bin).
constexpr int contrast_histogram_bins = 65536;

// The ranks (0-based) of the 5th and 95th percentile of `count` box means (count >= 20).
QRP_HD inline void contrast_ranks(std::size_t count, std::size_t& lo, std::size_t& hi)
{
  lo = count / 20;
  hi = count - 1 - count / 20;
}

// The spread between the 5th and 95th percentile of a histogram of `count` box means (bins of
// whole image units, 65536 of them); 0 for fewer than 20 boxes. (On the GPU:
// kernels::launch_contrast_percentiles finds the same two bins.)
inline double contrast_from_histogram(const std::uint32_t* histogram, std::size_t count)
{
  if (count < 20) return 0;
  std::size_t lo = 0, hi = 0;
  contrast_ranks(count, lo, hi);
  std::size_t seen = 0;
  int a = -1, b = -1;
  for (int v = 0; v < contrast_histogram_bins && b < 0; ++v) {
    seen += histogram[v];
    if (a < 0 && seen > lo) a = v;
    if (seen > hi) b = v;
  }
  return static_cast<double>(b - a);
}

// The finder template (core::finder_response) at module_px, scanned over the positions
// (margin + i * step, margin + j * step), i < columns, j < rows: a half-module grid whose margin
// keeps every box inside the image.
struct finder_scan_plan {
  int step = 1, margin = 0;
  int columns = 0, rows = 0;  // 0: the tile is too small for a finder
  pattern_boxes<4> finder;
  double unit = 1;  // 2^shift

  QRP_HD static finder_scan_plan make(const integral_view& iv, double module_px)
  {
    finder_scan_plan p;
    const double m = module_px;
    // A finder's response falls off over about a module from its centre: a step of half a module
    // still lands near every peak, which the refinement then climbs.
    p.step = round_to_int(m / 2) < 1 ? 1 : round_to_int(m / 2);
    p.margin = static_cast<int>(std::ceil(4.5 * m)) + 2;
    p.finder = pattern_boxes<4>(m);
    p.unit = static_cast<double>(1u << iv.shift);
    // No candidates where the template is degenerate (finder_response answers 0 there) or does
    // not fit.
    if (!p.finder.valid() || iv.width <= 2 * p.margin || iv.height <= 2 * p.margin) return p;
    p.columns = (iv.width - 2 * p.margin + p.step - 1) / p.step;
    p.rows = (iv.height - 2 * p.margin + p.step - 1) / p.step;
    return p;
  }
  QRP_HD std::size_t positions() const { return static_cast<std::size_t>(columns) * rows; }
  QRP_HD int x(int i) const { return margin + i * step; }
  QRP_HD int y(int j) const { return margin + j * step; }

  // The integral image rows of grid row j's boxes (pattern_boxes::rows_at), once per row.
  QRP_HD void rows_of(const integral_view& iv, int j, const std::uint32_t* row_ptrs[8]) const
  {
    finder.rows_at(iv, y(j), row_ptrs);
  }
  // core::finder_response at grid position (i, j) of the row whose rows_of are given.
  QRP_HD float response_in_row(const std::uint32_t* const row_ptrs[8], int i) const
  {
    return finder.response(row_ptrs, x(i), unit);
  }
  QRP_HD float response(const integral_view& iv, int i, int j) const
  {
    const std::uint32_t* row_ptrs[8];
    rows_of(iv, j, row_ptrs);
    return response_in_row(row_ptrs, i);
  }
};

}  // namespace qrplate::core
