// Registration's confirm step, one expected anchor at a time (host/scan/tile_registration.cpp):
// under a candidate pose, does the tile show the finder or alignment pattern the plate's lattice
// puts there, and where exactly? QRP_HD, so that the CPU loop and the CUDA kernel
// (kernels/decode/registration_kernels.cu) give the same answers.
#pragma once

#include <cmath>

#include "qrplate/config.hpp"
#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/sample_symbol.hpp"

namespace qrplate::core {

// An anchor the plate's lattice expects: a finder (or else an alignment) pattern's centre, in
// plate module coordinates.
struct expected_anchor {
  double x = 0, y = 0;
  bool finder = false;
};

// What the tile shows of it: predicted when the pose puts its search window inside the tile,
// found when the template answers there with at least the minimum response, at (u, v) pixels.
struct anchor_answer {
  bool predicted = false, found = false;
  double u = 0, v = 0;
};

// The search radius (pixels) around a predicted anchor at m pixels per module.
QRP_HD inline int confirm_radius(double m) { return static_cast<int>(std::ceil(0.6 * m)) + 1; }

// sign: +1 milled modules dark, -1 bright. finder and alignment: the probes of the tile's
// integral image `iv` at m pixels per module.
QRP_HD inline anchor_answer confirm_anchor(const integral_view& iv, const affine_map& to_pixel, const expected_anchor& a,
                                           double m, float sign, float min_response, const pattern_probe<4>& finder,
                                           const pattern_probe<3>& alignment)
{
  anchor_answer r;
  const int radius = confirm_radius(m);
  double u, v;
  to_pixel.apply(a.x, a.y, u, v);
  const double reach = (a.finder ? 4.5 : 2.5) * m + radius + 2;
  if (u < reach || v < reach || u > iv.width - reach || v > iv.height - reach) return r;
  r.predicted = true;
  auto response = [&](int px, int py) { return sign * (a.finder ? finder(px, py) : alignment(px, py)); };
  if (!find_anchor(response, u, v, radius, min_response)) return r;
  r.found = true;
  r.u = u, r.v = v;
  return r;
}

}  // namespace qrplate::core
