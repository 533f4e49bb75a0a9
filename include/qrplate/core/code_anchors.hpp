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
#include <limits>

#include "qrplate/config.hpp"
#include "qrplate/core/read_code.hpp"
#include "qrplate/core/sample_symbol.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

// From the best whole pixel (bx, by) with response best, to a fraction of a pixel: the vertex
// of a parabola through the neighbours on each axis (at most half a pixel).
template <typename Response>
QRP_HD void refine_anchor(Response response, int bx, int by, float best, double& u, double& v)
{
  auto vertex = [](float a, float b, float c) {
    const float den = a - 2 * b + c;
    if (!(den < 0)) return 0.0f;
    const float t = 0.5f * (a - c) / den;
    return t < -0.5f ? -0.5f : (t > 0.5f ? 0.5f : t);
  };
  u = static_cast<double>(bx) + vertex(response(bx - 1, by), best, response(bx + 1, by));
  v = static_cast<double>(by) + vertex(response(bx, by - 1), best, response(bx, by + 1));
}

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
  refine_anchor(response, bx, by, best, u, v);
  if (best_response) *best_response = best;
  return true;
}

// find_anchor in pieces, for a group of threads: the best of row dy of the search (dx from
// -radius up, the first of equal responses; best = -infinity when no response is a number), a
// thread a row; then, in row order, a row replaces the start's response only when it is
// greater, which picks the pixel find_anchor's raster-order climb picks (then refine_anchor).
template <typename Response>
QRP_HD void anchor_row_best(Response response, int bu, int bv, int radius, int dy, float& best, int& bx)
{
  best = -std::numeric_limits<float>::infinity();
  bx = bu;
  for (int dx = -radius; dx <= radius; ++dx) {
    const float r = response(bu + dx, bv + dy);
    if (r > best) best = r, bx = bu + dx;
  }
}

// The pick: rows (2 * radius + 1 of them, dy = -radius first) against the start (bu, bv), then
// min_response and refine_anchor, as find_anchor ends.
template <typename Response>
QRP_HD bool pick_from_rows(Response response, int bu, int bv, int radius, const float* row_best, const int* row_x,
                           float min_response, double& u, double& v)
{
  float best = response(bu, bv);
  int bx = bu, by = bv;
  for (int row = 0; row < 2 * radius + 1; ++row)
    if (row_best[row] > best) best = row_best[row], bx = row_x[row], by = bv - radius + row;
  if (!(best >= min_response)) return false;
  refine_anchor(response, bx, by, best, u, v);
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

// measure_code_map in pieces, so that the cooperative reader (read_cooperative.hpp) can spread
// the anchors and the node grid over its threads; measure_code_map runs them in order.

inline constexpr int max_code_anchors = 3 + spec::max_alignment_positions * spec::max_alignment_positions;

// The anchors to look for, in order: the three finders, then the alignment patterns not on a
// finder, row by row. Anchor k's centre in code modules (x, y).
QRP_HD inline int code_anchor_count(const version_plan& plan)
{
  std::uint8_t pos[spec::max_alignment_positions];
  const int na = spec::alignment_positions(plan.version, pos);
  return na > 0 ? na * na : 3;  // na * na - 3 alignment patterns, plus 3 finders
}

QRP_HD inline void code_anchor_at(const version_plan& plan, int k, double& x, double& y, bool& is_finder)
{
  const int n = plan.size;
  x = y = 0;
  is_finder = k < 3;
  if (is_finder) {
    x = k == 1 ? n - 3.5 : 3.5;
    y = k == 2 ? n - 3.5 : 3.5;
    return;
  }
  std::uint8_t pos[spec::max_alignment_positions];
  const int na = spec::alignment_positions(plan.version, pos);
  int seen = 3;
  for (int i = 0; i < na; ++i)
    for (int j = 0; j < na; ++j) {
      const bool on_finder = (i == 0 && j == 0) || (i == 0 && j == na - 1) || (i == na - 1 && j == 0);
      if (on_finder || seen++ != k) continue;
      x = pos[j] + 0.5;
      y = pos[i] + 0.5;
      return;
    }
}

// How far from its predicted place an anchor may answer (pixels).
QRP_HD inline int anchor_radius(double module_px) { return static_cast<int>(std::ceil(0.8 * module_px)) + 1; }

// f(response) with the anchor's template response (the finder's or an alignment pattern's).
template <typename F>
QRP_HD void with_anchor_response(const tile_anchor_view& t, bool is_finder, F&& f)
{
  const float sign = static_cast<float>(t.polarity);
  if (is_finder) {
    const pattern_probe<4> probe(t.iv, t.module_px);
    f([&](int px, int py) { return sign * probe(px, py); });
  } else {
    const pattern_probe<3> probe(t.iv, t.module_px);
    f([&](int px, int py) { return sign * probe(px, py); });
  }
}

// The wide first search for a code's three finders (code_map_base), in pieces for the
// cooperative read: where each search starts and how far it reaches.
struct wide_finder_search {
  double u0, v0;   // where the base puts the finder
  int bu, bv;      // the whole pixel the search starts from
  int radius;
  bool searched;   // false: too near the tile's edge to be looked for
};

// False when t asks for no wide search (a confirmed tile); else each finder's search in s.
QRP_HD inline bool start_wide_finder_search(const tile_anchor_view& t, const version_plan& plan, const affine_map& base,
                                            wide_finder_search s[3])
{
  const int n = plan.size;
  const double m = t.module_px;
  const double w = t.iv.width, h = t.iv.height;
  const int radius = anchor_radius(m);
  if (!(t.anchor_search_px > radius && t.finder_strength > 0)) return false;
  const double corners[3][2] = {{3.5, 3.5}, {n - 3.5, 3.5}, {3.5, n - 3.5}};
  for (int k = 0; k < 3; ++k) {
    wide_finder_search& f = s[k];
    base.apply(corners[k][0], corners[k][1], f.u0, f.v0);
    f.searched = !(interior(f.u0, f.v0, w, h) < 4.5 * m + 2);
    if (!f.searched) continue;
    // Keep the search inside the tile: the template must not hang over an edge.
    const int edge = static_cast<int>(std::floor(interior(f.u0, f.v0, w, h) - 4.5 * m - 2));
    const int wide = t.anchor_search_px < edge ? t.anchor_search_px : edge;
    f.radius = radius > wide ? radius : wide;
    f.bu = round_to_int(f.u0), f.bv = round_to_int(f.v0);
  }
  return true;
}

// What a wide search accepts: half the tile's real finders' response.
QRP_HD inline float wide_finder_min(const tile_anchor_view& t) { return 0.5f * t.finder_strength; }

// The base moved by the mean offset of the finders found.
QRP_HD inline void move_base_by(affine_map& base, double su, double sv, int found)
{
  if (found > 0) base.a[0] += su / found, base.a[3] += sv / found;
}

// geo.base: t's pose moved to the code's origin. A tile whose place no frame confirmed may be
// off by more than a module: its codes' own finders are looked for farther out first (the
// strongest answer wins), and the code's map moves by their mean offset before the usual, tight
// search of every anchor. geo.anchors = 0.
QRP_HD inline void code_map_base(const tile_anchor_view& t, const version_plan& plan, double x0, double y0,
                                 code_map& geo)
{
  geo.base = t.to_pixel.shifted(x0, y0);
  geo.anchors = 0;
  wide_finder_search s[3];
  if (!start_wide_finder_search(t, plan, geo.base, s)) return;
  double su = 0, sv = 0;
  int found = 0;
  with_anchor_response(t, true, [&](auto finder) {
    for (int k = 0; k < 3; ++k) {
      if (!s[k].searched) continue;
      double u = s[k].u0, v = s[k].v0;
      if (!find_anchor(finder, u, v, s[k].radius, wide_finder_min(t))) continue;
      su += u - s[k].u0, sv += v - s[k].v0;
      ++found;
    }
  });
  move_base_by(geo.base, su, sv, found);
}

// An anchor's search (measure_anchor), in pieces for the cooperative read (read_cooperative.hpp):
// its start (false: the anchor lies too near the tile's edge to be looked for), and the pick from
// its rows' bests (anchor_row_best) in row order; with_anchor_response gives its template.
struct anchor_search {
  double u0, v0;  // where base puts the anchor
  int bu, bv;     // the whole pixel the search starts from
  int radius;
  bool is_finder;
};

QRP_HD inline bool start_anchor_search(const tile_anchor_view& t, const affine_map& base, double x, double y,
                                       bool is_finder, anchor_search& s)
{
  const double m = t.module_px;
  s.radius = anchor_radius(m);
  s.is_finder = is_finder;
  base.apply(x, y, s.u0, s.v0);
  const double reach = (is_finder ? 4.5 : 2.5) * m + s.radius + 2;
  if (interior(s.u0, s.v0, t.iv.width, t.iv.height) < reach) return false;
  s.bu = round_to_int(s.u0), s.bv = round_to_int(s.v0);
  return true;
}

// What an anchor must answer with: 0.3 of the tile's contrast.
QRP_HD inline float anchor_min_response(const tile_anchor_view& t) { return static_cast<float>(0.3 * t.contrast); }

// The offset (du, dv) pixels of the anchor at code module (x, y) from where base puts it, when
// it answers within anchor_radius with at least anchor_min_response and lies far enough inside
// the tile.
QRP_HD inline bool measure_anchor(const tile_anchor_view& t, const affine_map& base, double x, double y, bool is_finder,
                                  double& du, double& dv)
{
  anchor_search s;
  if (!start_anchor_search(t, base, x, y, is_finder, s)) return false;
  bool ok = false;
  with_anchor_response(t, is_finder, [&](auto response) {
    double u = s.u0, v = s.v0;
    ok = find_anchor(response, u, v, s.radius, anchor_min_response(t));
    if (ok) du = u - s.u0, dv = v - s.v0;
  });
  return ok;
}

// measure_anchor's ending from the rows' bests: 2 * radius + 1 of them (best, bx), dy = -radius first.
QRP_HD inline bool pick_anchor(const tile_anchor_view& t, const anchor_search& s, const float* row_best,
                               const int* row_x, double& du, double& dv)
{
  bool ok = false;
  with_anchor_response(t, s.is_finder, [&](auto response) {
    double u, v;
    ok = pick_from_rows(response, s.bu, s.bv, s.radius, row_best, row_x, anchor_min_response(t), u, v);
    if (ok) du = u - s.u0, dv = v - s.v0;
  });
  return ok;
}

// Anchors that answered, in anchor order: positions (ax, ay) in code modules, offsets (ru, rv).
struct code_anchor_set {
  double ax[max_code_anchors], ay[max_code_anchors], ru[max_code_anchors], rv[max_code_anchors];
  int count = 0;
};

// keep_consistent_anchors' second half: drops the anchors farther than 0.6 module from the
// median offset (cu, cv).
QRP_HD inline void keep_near_median(code_anchor_set& a, double cu, double cv, double module_px)
{
  const double limit = 0.6 * module_px;
  int kept = 0;
  for (int i = 0; i < a.count; ++i) {
    const double du = a.ru[i] - cu, dv = a.rv[i] - cv;
    if (du * du + dv * dv <= limit * limit)
      a.ax[kept] = a.ax[i], a.ay[kept] = a.ay[i], a.ru[kept] = a.ru[i], a.rv[kept] = a.rv[i], ++kept;
  }
  a.count = kept;
}

// Anchors far from the others' median offset latched onto something else: drops them (from 3
// anchors up). The median of each offset is element count / 2 of its sorted copy (insertion
// sort: a few dozen values); the cooperative read takes it by rank instead (anchor_rank).
QRP_HD inline void keep_consistent_anchors(code_anchor_set& a, double module_px)
{
  if (a.count < 3) return;
  double mu[max_code_anchors], mv[max_code_anchors];
  for (int i = 0; i < a.count; ++i) {
    int k = i;
    for (; k > 0 && mu[k - 1] > a.ru[i]; --k) mu[k] = mu[k - 1];
    mu[k] = a.ru[i];
    k = i;
    for (; k > 0 && mv[k - 1] > a.rv[i]; --k) mv[k] = mv[k - 1];
    mv[k] = a.rv[i];
  }
  keep_near_median(a, mu[a.count / 2], mv[a.count / 2], module_px);
}

// Where value i of v[0, count) lands in a stable ascending sort (ties keep index order), so
// that each of a group's threads can place one value and the one whose rank is count / 2 is
// keep_consistent_anchors' median, without one thread sorting (offsets are finite numbers).
QRP_HD inline int anchor_rank(const double* v, int count, int i)
{
  int rank = 0;
  for (int j = 0; j < count; ++j) rank += v[j] < v[i] || (v[j] == v[i] && j < i);
  return rank;
}

// Node grid side of a size-n code's map.
QRP_HD inline int code_map_nodes(int n)
{
  const int nodes = (n + code_map::step - 1) / code_map::step + 1;
  return nodes < code_map::max_nodes ? nodes : code_map::max_nodes;
}

// The offset at node (ix, iy): the anchors' offsets weighted by 1 / (distance^2 + 9).
QRP_HD inline void interpolate_node(const code_anchor_set& a, int ix, int iy, code_map& geo)
{
  const double soft = 9.0;  // (3 modules)^2: how far an anchor's own offset dominates
  const double x = ix * code_map::step, y = iy * code_map::step;
  double sw = 0, su = 0, sv = 0;
  for (int i = 0; i < a.count; ++i) {
    const double d2 = (x - a.ax[i]) * (x - a.ax[i]) + (y - a.ay[i]) * (y - a.ay[i]);
    const double wi = 1.0 / (d2 + soft);
    sw += wi, su += wi * a.ru[i], sv += wi * a.rv[i];
  }
  geo.du[iy][ix] = static_cast<float>(sw > 0 ? su / sw : 0);
  geo.dv[iy][ix] = static_cast<float>(sw > 0 ? sv / sw : 0);
}

// The map of the code whose module (0, 0) is plate module (x0, y0), as seen in tile t: t's pose
// shifted to the code (code_map_base), corrected by the offsets of the code's finder and
// alignment patterns that answer within ~0.8 module of where the pose puts them (anchors far
// from the others' median offset are dropped), interpolated on code_map's node grid. anchors = 0
// when none answered.
QRP_HD inline void measure_code_map(const tile_anchor_view& t, const version_plan& plan, double x0, double y0,
                                    code_map& geo)
{
  code_map_base(t, plan, x0, y0, geo);
  code_anchor_set a;
  for (int k = 0, count = code_anchor_count(plan); k < count; ++k) {
    double x, y, du, dv;
    bool is_finder;
    code_anchor_at(plan, k, x, y, is_finder);
    if (!measure_anchor(t, geo.base, x, y, is_finder, du, dv)) continue;
    a.ax[a.count] = x, a.ay[a.count] = y, a.ru[a.count] = du, a.rv[a.count] = dv;
    ++a.count;
  }
  if (a.count == 0) return;
  keep_consistent_anchors(a, t.module_px);
  geo.anchors = a.count;
  geo.nodes = code_map_nodes(plan.size);
  for (int iy = 0; iy < geo.nodes; ++iy)
    for (int ix = 0; ix < geo.nodes; ++ix) interpolate_node(a, ix, iy, geo);
}

}  // namespace qrplate::core
