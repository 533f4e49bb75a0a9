// Stitching's coarse pass (host/scan/tile_registration.cpp, register_against): the normalised
// cross-correlation of a patch of one tile's module values with the other tile's samples at a
// shift. QRP_HD, so that the CPU (shift by shift here, or scan::sparse_correlations' lanes,
// the same doubles) and the CUDA kernel (a thread per shift) give the same scores.
#pragma once

#include <cmath>

#include "qrplate/config.hpp"

namespace qrplate::core {

// A patch of pw x ph module values of the placed tile (a, row-major) against half-module samples
// of the tile being placed (b: (2 pw + 2 reach) x (2 ph + 2 reach), row-major with bw columns,
// NaN where they fall outside that tile), shifted by up to +-reach half modules. min_count: the
// samples inside the tile a shift needs (a quarter of it for this pass).
struct stitch_patch {
  const float* a;
  int pw, ph;
  const float* b;
  int bw;
  int reach;
  double min_count;
};

// The correlation at the shift (dx, dy) over every other row and column of the patch, the
// samples outside the tile left out; -2 where fewer than min_count / 4 are inside or either side
// is flat.
QRP_HD inline double sparse_correlation(const stitch_patch& p, int dx, int dy)
{
  double count = 0, sa = 0, saa = 0, sb = 0, sbb = 0, sab = 0;
  for (int j = 0; j < p.ph; j += 2) {
    const float* row = p.b + static_cast<long long>(2 * j + p.reach + dy) * p.bw + (p.reach + dx);
    const float* arow = p.a + static_cast<long long>(j) * p.pw;
    for (int i = 0; i < p.pw; i += 2) {
      const double bv = row[2 * i];
      if (bv != bv) continue;  // NaN: outside the tile
      const double av = arow[i];
      count += 1, sa += av, saa += av * av, sb += bv, sbb += bv * bv, sab += av * bv;
    }
  }
  const double va = saa - sa * sa / count, vb = sbb - sb * sb / count;
  return count >= 0.25 * p.min_count && va > 0 && vb > 0 ? (sab - sa * sb / count) / std::sqrt(va * vb) : -2.0;
}

}  // namespace qrplate::core
