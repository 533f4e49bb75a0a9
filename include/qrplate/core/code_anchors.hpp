// The per-code anchor search between registration and reading (DESIGN.md, read path): a code's
// own finder and alignment patterns, found near where the tile's pose puts them, give the
// offsets of its code_map (read_code.hpp). QRP_HD, so that the scan reader (host/scan) and the
// CUDA read kernels (kernels/decode) measure the same maps.
//
//   find_anchor        climbs a template response to its best whole pixel near a prediction,
//                      then to a fraction of a pixel;
//   measure_code_map   the code's map: the tile's pose moved to the code's origin, plus offsets
//                      interpolated between the anchors that answered.
#pragma once

#include <cmath>
#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/read_code.hpp"
#include "qrplate/core/sample_symbol.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

// Climbs a template response (response(px, py) at whole pixels) to its best within +-radius of
// (u, v) (the start wins ties), then to a fraction of a pixel with a parabola through the
// neighbours on each axis. False, leaving (u, v) alone, when the best is below min_response.
template <typename Response>
QRP_HD bool find_anchor(Response response, double& u, double& v, int radius, float min_response,
                        float* best_response = nullptr)
{
  const int bu = round_to_int(u), bv = round_to_int(v);
  float best = response(bu, bv);
  int bx = bu, by = bv;
  for (int dy = -radius; dy <= radius; ++dy)
    for (int dx = -radius; dx <= radius; ++dx) {
      const float r = response(bu + dx, bv + dy);
      if (r > best) best = r, bx = bu + dx, by = bv + dy;
    }
  if (!(best >= min_response)) return false;
  auto vertex = [](float a, float b, float c) {
    const float den = a - 2 * b + c;
    if (!(den < 0)) return 0.0f;
    const float t = 0.5f * (a - c) / den;
    return t < -0.5f ? -0.5f : (t > 0.5f ? 0.5f : t);
  };
  u = static_cast<double>(bx) + vertex(response(bx - 1, by), best, response(bx + 1, by));
  v = static_cast<double>(by) + vertex(response(bx, by - 1), best, response(bx, by + 1));
  if (best_response) *best_response = best;
  return true;
}

// What the anchor search needs of a registered tile.
struct tile_anchor_view {
  integral_view iv;           // the tile's integral image (its width and height are the tile's)
  affine_map to_pixel;        // plate module coordinates -> the tile's pixels
  double module_px = 0;       // nominal pixels per module
  double contrast = 0;        // film vs milled, image units
  int polarity = 1;           // +1 milled modules dark, -1 bright
  int anchor_search_px = 0;   // a wider first search for the code's finders (unconfirmed tiles), 0: none
  float finder_strength = 0;  // the tile's real finders' template response
};

// The map of the code whose module (0, 0) is plate module (x0, y0), as seen in tile t: t's pose
// shifted to the code, corrected by the offsets of the code's finder and alignment patterns that
// answer within ~0.8 module of where the pose puts them (anchors far from the others' median
// offset are dropped), interpolated on code_map's node grid. anchors = 0 when none answered.
QRP_HD inline void measure_code_map(const tile_anchor_view& t, const version_plan& plan, double x0, double y0,
                                    code_map& geo)
{
  geo.base = t.to_pixel.shifted(x0, y0);
  geo.anchors = 0;
  const int n = plan.size;
  const double m = t.module_px;
  const double w = t.iv.width, h = t.iv.height;
  const integral_view& iv = t.iv;
  const int radius = static_cast<int>(std::ceil(0.8 * m)) + 1;
  const float min_response = static_cast<float>(0.3 * t.contrast);
  const float sign = static_cast<float>(t.polarity);
  constexpr int max_anchors = 3 + spec::max_alignment_positions * spec::max_alignment_positions;
  double ax[max_anchors], ay[max_anchors], ru[max_anchors], rv[max_anchors];
  int count = 0;
  const pattern_probe<4> finder_probe(iv, m);
  const pattern_probe<3> alignment_probe(iv, m);
  auto finder = [&](int px, int py) { return sign * finder_probe(px, py); };
  auto alignment = [&](int px, int py) { return sign * alignment_probe(px, py); };
  auto add = [&](double x, double y, bool is_finder) {
    double u0, v0;
    geo.base.apply(x, y, u0, v0);
    const double reach = (is_finder ? 4.5 : 2.5) * m + radius + 2;
    if (interior(u0, v0, w, h) < reach) return;
    double u = u0, v = v0;
    const bool ok = is_finder ? find_anchor(finder, u, v, radius, min_response)
                              : find_anchor(alignment, u, v, radius, min_response);
    if (!ok) return;
    ax[count] = x, ay[count] = y, ru[count] = u - u0, rv[count] = v - v0;
    ++count;
  };
  // A tile whose place no frame confirmed may be off by more than a module: its codes' own
  // finders are looked for farther out first (the strongest answer wins), and the code's map
  // moves by their mean offset before the usual, tight search of every anchor.
  if (t.anchor_search_px > radius && t.finder_strength > 0) {
    double su = 0, sv = 0;
    int found = 0;
    const float strong = 0.5f * t.finder_strength;
    const double corners[3][2] = {{3.5, 3.5}, {n - 3.5, 3.5}, {3.5, n - 3.5}};
    for (const auto& corner : corners) {
      double u0, v0;
      geo.base.apply(corner[0], corner[1], u0, v0);
      if (interior(u0, v0, w, h) < 4.5 * m + 2) continue;
      double u = u0, v = v0;
      // Keep the search inside the tile: the template must not hang over an edge.
      const int edge = static_cast<int>(std::floor(interior(u0, v0, w, h) - 4.5 * m - 2));
      const int wide = t.anchor_search_px < edge ? t.anchor_search_px : edge;
      const int r = radius > wide ? radius : wide;
      if (!find_anchor(finder, u, v, r, strong)) continue;
      su += u - u0, sv += v - v0;
      ++found;
    }
    if (found > 0) geo.base.a[0] += su / found, geo.base.a[3] += sv / found;
  }
  add(3.5, 3.5, true);
  add(n - 3.5, 3.5, true);
  add(3.5, n - 3.5, true);
  std::uint8_t pos[spec::max_alignment_positions];
  const int na = spec::alignment_positions(plan.version, pos);
  for (int i = 0; i < na; ++i)
    for (int j = 0; j < na; ++j) {
      const bool on_finder = (i == 0 && j == 0) || (i == 0 && j == na - 1) || (i == na - 1 && j == 0);
      if (!on_finder) add(pos[j] + 0.5, pos[i] + 0.5, false);
    }
  if (count == 0) return;
  // Anchors far from the others' median offset latched onto something else: drop them.
  if (count >= 3) {
    double mu[max_anchors], mv[max_anchors];
    for (int i = 0; i < count; ++i) {  // sorted copies (insertion sort: a few dozen values)
      int k = i;
      for (; k > 0 && mu[k - 1] > ru[i]; --k) mu[k] = mu[k - 1];
      mu[k] = ru[i];
      k = i;
      for (; k > 0 && mv[k - 1] > rv[i]; --k) mv[k] = mv[k - 1];
      mv[k] = rv[i];
    }
    const double cu = mu[count / 2], cv = mv[count / 2];
    const double limit = 0.6 * m;
    int kept = 0;
    for (int i = 0; i < count; ++i) {
      const double du = ru[i] - cu, dv = rv[i] - cv;
      if (du * du + dv * dv <= limit * limit) ax[kept] = ax[i], ay[kept] = ay[i], ru[kept] = ru[i], rv[kept] = rv[i], ++kept;
    }
    count = kept;
  }
  geo.anchors = count;
  const int nodes = (n + code_map::step - 1) / code_map::step + 1;
  geo.nodes = nodes < code_map::max_nodes ? nodes : code_map::max_nodes;
  const double soft = 9.0;  // (3 modules)^2: how far an anchor's own offset dominates
  for (int iy = 0; iy < geo.nodes; ++iy)
    for (int ix = 0; ix < geo.nodes; ++ix) {
      const double x = ix * code_map::step, y = iy * code_map::step;
      double sw = 0, su = 0, sv = 0;
      for (int i = 0; i < count; ++i) {
        const double d2 = (x - ax[i]) * (x - ax[i]) + (y - ay[i]) * (y - ay[i]);
        const double wi = 1.0 / (d2 + soft);
        sw += wi, su += wi * ru[i], sv += wi * rv[i];
      }
      geo.du[iy][ix] = static_cast<float>(sw > 0 ? su / sw : 0);
      geo.dv[iy][ix] = static_cast<float>(sw > 0 ? sv / sw : 0);
    }
}

}  // namespace qrplate::core
