// The blind reader (blind_reader.hpp has the pipeline in one paragraph). Coordinates: pixel
// (i, j) covers [i, i + 1) x [j, j + 1), so its centre is (i + 0.5, j + 0.5). Module coordinates
// (u, v) = (column, row) in module units, module (r, c) covering [c, c + 1) x [r, r + 1): a finder
// centre is at (3.5, 3.5), the symbol's outer corners at (0, 0) and (N, N).
#include "blind_reader.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/decode_symbol.hpp"
#include "qrplate/core/format_decode.hpp"
#include "qrplate/error.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::blind {
namespace {

constexpr double pi = 3.14159265358979323846;

// ---------------------------------------------------------------------------------------------
// Threads

unsigned thread_count(unsigned requested)
{
  if (requested != 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

// f(i) for i in [0, n), items handed out one at a time (their costs differ a lot).
template <typename F>
void parallel_for(std::size_t n, unsigned threads, F&& f)
{
  const unsigned t = static_cast<unsigned>(std::min<std::size_t>(threads, n));
  if (t <= 1) {
    for (std::size_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < n; i = next++) f(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (unsigned k = 1; k < t; ++k) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
}

// ---------------------------------------------------------------------------------------------
// Pixels, with the polarity folded in: `value` is small for the modules' dark colour.

struct pixels {
  const std::uint16_t* p = nullptr;
  int w = 0, h = 0;
  float full = 255;
  bool inverted = false;

  // Bilinear between pixel centres, edges replicated.
  float value(double x, double y) const
  {
    if (!std::isfinite(x) || !std::isfinite(y)) return full / 2;
    const double fx = std::clamp(x - 0.5, 0.0, static_cast<double>(w - 1));
    const double fy = std::clamp(y - 0.5, 0.0, static_cast<double>(h - 1));
    const int x0 = static_cast<int>(fx), y0 = static_cast<int>(fy);
    const int x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
    const float ax = static_cast<float>(fx - x0), ay = static_cast<float>(fy - y0);
    const std::uint16_t* r0 = p + static_cast<std::size_t>(y0) * static_cast<std::size_t>(w);
    const std::uint16_t* r1 = p + static_cast<std::size_t>(y1) * static_cast<std::size_t>(w);
    const float top = r0[x0] + ax * (static_cast<float>(r0[x1]) - r0[x0]);
    const float bottom = r1[x0] + ax * (static_cast<float>(r1[x1]) - r1[x0]);
    const float v = top + ay * (bottom - top);
    return inverted ? full - v : v;
  }
};

// ---------------------------------------------------------------------------------------------
// Binarisation: local mean of 8x8 block means over a 17x17-block window (136 px: the core and
// light ring of a 20 px/module finder still average to between its colours). Windows with
// almost no contrast (blank margins, uniform images) take the global mid-level instead, so
// that noise there does not turn into dark runs. Bit 1: dark for normal polarity (below the
// threshold), bit 2: dark for inverted polarity (above it); a pixel equal to the threshold is
// neither, which keeps uniform images empty.

constexpr int block_px = 8;
constexpr int window_blocks = 8;  // radius in blocks

void binarize_into(const sim::gray_image& img, unsigned threads, int shift, std::vector<std::uint8_t>& bits)
{
  const int w = static_cast<int>(img.width), h = static_cast<int>(img.height);
  const int bw = (w + block_px - 1) / block_px, bh = (h + block_px - 1) / block_px;
  std::vector<float> mean(static_cast<std::size_t>(bw) * bh);
  parallel_for(static_cast<std::size_t>(bh), threads, [&](std::size_t by) {
    const int y0 = static_cast<int>(by) * block_px, y1 = std::min(y0 + block_px, h);
    for (int bx = 0; bx < bw; ++bx) {
      const int x0 = bx * block_px, x1 = std::min(x0 + block_px, w);
      std::uint64_t sum = 0;
      for (int y = y0; y < y1; ++y) {
        const std::uint16_t* row = img.pixels.data() + static_cast<std::size_t>(y) * w;
        for (int x = x0; x < x1; ++x) sum += row[x];
      }
      mean[by * bw + bx] = static_cast<float>(static_cast<double>(sum) / ((y1 - y0) * (x1 - x0)));
    }
  });

  std::vector<float> sorted = mean;
  const std::size_t n = sorted.size();
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(n / 20), sorted.end());
  const float p5 = sorted[n / 20];
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(n - 1 - n / 20), sorted.end());
  const float p95 = sorted[n - 1 - n / 20];
  const float global = (p5 + p95) / 2;
  const float floor_contrast = std::max(0.15f * (p95 - p5), 1e-3f);

  // Window sums from an integral of block means; window min/max by two separable passes.
  std::vector<double> integral(static_cast<std::size_t>(bw + 1) * (bh + 1), 0.0);
  for (int y = 0; y < bh; ++y) {
    double row = 0;
    for (int x = 0; x < bw; ++x) {
      row += mean[static_cast<std::size_t>(y) * bw + x];
      integral[static_cast<std::size_t>(y + 1) * (bw + 1) + x + 1] = integral[static_cast<std::size_t>(y) * (bw + 1) + x + 1] + row;
    }
  }
  std::vector<float> rmin(mean.size()), rmax(mean.size()), cmin(mean.size()), cmax(mean.size());
  for (int y = 0; y < bh; ++y)
    for (int x = 0; x < bw; ++x) {
      float lo = std::numeric_limits<float>::max(), hi = -lo;
      for (int k = std::max(0, x - window_blocks); k <= std::min(bw - 1, x + window_blocks); ++k) {
        lo = std::min(lo, mean[static_cast<std::size_t>(y) * bw + k]);
        hi = std::max(hi, mean[static_cast<std::size_t>(y) * bw + k]);
      }
      rmin[static_cast<std::size_t>(y) * bw + x] = lo;
      rmax[static_cast<std::size_t>(y) * bw + x] = hi;
    }
  for (int y = 0; y < bh; ++y)
    for (int x = 0; x < bw; ++x) {
      float lo = std::numeric_limits<float>::max(), hi = -lo;
      for (int k = std::max(0, y - window_blocks); k <= std::min(bh - 1, y + window_blocks); ++k) {
        lo = std::min(lo, rmin[static_cast<std::size_t>(k) * bw + x]);
        hi = std::max(hi, rmax[static_cast<std::size_t>(k) * bw + x]);
      }
      cmin[static_cast<std::size_t>(y) * bw + x] = lo;
      cmax[static_cast<std::size_t>(y) * bw + x] = hi;
    }
  std::vector<float> threshold(mean.size());
  for (int y = 0; y < bh; ++y)
    for (int x = 0; x < bw; ++x) {
      const std::size_t i = static_cast<std::size_t>(y) * bw + x;
      if (cmax[i] - cmin[i] < floor_contrast) {
        threshold[i] = global;
        continue;
      }
      const int x0 = std::max(0, x - window_blocks), x1 = std::min(bw, x + window_blocks + 1);
      const int y0 = std::max(0, y - window_blocks), y1 = std::min(bh, y + window_blocks + 1);
      auto at = [&](int yy, int xx) { return integral[static_cast<std::size_t>(yy) * (bw + 1) + xx]; };
      const double s = at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0);
      threshold[i] = static_cast<float>(s / ((x1 - x0) * (y1 - y0)));
    }

  parallel_for(static_cast<std::size_t>(h), threads, [&](std::size_t yy) {
    const int y = static_cast<int>(yy);
    const std::uint16_t* row = img.pixels.data() + static_cast<std::size_t>(y) * w;
    std::uint8_t* out = bits.data() + static_cast<std::size_t>(y) * w;
    const float* t = threshold.data() + static_cast<std::size_t>(y / block_px) * bw;
    for (int x = 0; x < w; ++x) {
      const float v = row[x], th = t[x / block_px];
      out[x] = static_cast<std::uint8_t>(out[x] | (((v < th ? 1 : 0) | (v > th ? 2 : 0)) << shift));
    }
  });
}

// The image smoothed by the 3x3 binomial kernel (edges replicated): noise / 2.7 for a little
// blur, so that a noise pixel in a finder's one-module ring does not split the ring's run.
sim::gray_image smoothed(const sim::gray_image& img, unsigned threads)
{
  const int w = static_cast<int>(img.width), h = static_cast<int>(img.height);
  sim::gray_image out;
  out.width = img.width;
  out.height = img.height;
  out.bits = img.bits;
  out.pixels.resize(img.pixels.size());
  parallel_for(static_cast<std::size_t>(h), threads, [&](std::size_t yy) {
    const int y = static_cast<int>(yy);
    const std::uint16_t* rows[3] = {img.pixels.data() + static_cast<std::size_t>(std::max(y - 1, 0)) * w,
                                    img.pixels.data() + static_cast<std::size_t>(y) * w,
                                    img.pixels.data() + static_cast<std::size_t>(std::min(y + 1, h - 1)) * w};
    for (int x = 0; x < w; ++x) {
      const int xl = std::max(x - 1, 0), xr = std::min(x + 1, w - 1);
      std::uint32_t sum = 0;
      for (int k = 0; k < 3; ++k) {
        const std::uint32_t wk = k == 1 ? 2 : 1;
        sum += wk * (rows[k][xl] + 2u * rows[k][x] + rows[k][xr]);
      }
      out.pixels[static_cast<std::size_t>(y) * w + x] = static_cast<std::uint16_t>((sum + 8) / 16);
    }
  });
  return out;
}

// Bits 1/2: the image as it is (normal / inverted polarity); bits 4/8: the same of the smoothed
// image. Finder hits of both are pooled: sharp images at 1.5 px/module need the first, noisy
// ones the second.
std::vector<std::uint8_t> binarize(const sim::gray_image& img, unsigned threads)
{
  std::vector<std::uint8_t> bits(img.pixels.size(), 0);
  binarize_into(img, threads, 0, bits);
  binarize_into(smoothed(img, threads), threads, 2, bits);
  return bits;
}

// ---------------------------------------------------------------------------------------------
// Finder patterns (ISO 18004:2015 §6.3.3): dark-light-dark-light-dark runs in 1:1:3:1:1.

struct binary_view {
  const std::uint8_t* b;
  int w, h;
  std::uint8_t bit;
  bool dark(int x, int y) const { return (b[static_cast<std::size_t>(y) * w + x] & bit) != 0; }
};

// Loose on purpose: at 1.5 px/module a one-module run is 1 or 2 pixels, and blur and noise move
// every edge by about a pixel.
bool finder_ratio(const int len[5], double slack)
{
  const int total = len[0] + len[1] + len[2] + len[3] + len[4];
  if (total < 7) return false;
  const double u = total / 7.0;
  const double one = slack * (0.5 * u + 0.7), three = slack * (1.0 * u + 0.7);
  return std::abs(len[0] - u) <= one && std::abs(len[1] - u) <= one && std::abs(len[3] - u) <= one &&
         std::abs(len[4] - u) <= one && std::abs(len[2] - 3 * u) <= three;
}

// The five runs along the line through (x, y) in direction (dx, dy); (x, y) must be dark (in the
// centre run). centre: offset of the centre run's middle from (x, y) in steps. Runs longer than
// max_run fail (a large dark area is not a finder).
bool runs_through(const binary_view& bv, int x, int y, int dx, int dy, int max_run, int len[5], double& centre)
{
  if (!bv.dark(x, y)) return false;
  int back = 0, fwd = 0;
  auto inside = [&](int xx, int yy) { return xx >= 0 && yy >= 0 && xx < bv.w && yy < bv.h; };
  int cx = x - dx, cy = y - dy;
  while (inside(cx, cy) && bv.dark(cx, cy) && back <= max_run) { ++back; cx -= dx; cy -= dy; }
  int l1 = 0;
  while (inside(cx, cy) && !bv.dark(cx, cy) && l1 <= max_run) { ++l1; cx -= dx; cy -= dy; }
  int l0 = 0;
  while (inside(cx, cy) && bv.dark(cx, cy) && l0 <= max_run) { ++l0; cx -= dx; cy -= dy; }
  cx = x + dx;
  cy = y + dy;
  while (inside(cx, cy) && bv.dark(cx, cy) && fwd <= max_run) { ++fwd; cx += dx; cy += dy; }
  int l3 = 0;
  while (inside(cx, cy) && !bv.dark(cx, cy) && l3 <= max_run) { ++l3; cx += dx; cy += dy; }
  int l4 = 0;
  while (inside(cx, cy) && bv.dark(cx, cy) && l4 <= max_run) { ++l4; cx += dx; cy += dy; }
  len[0] = l0;
  len[1] = l1;
  len[2] = back + fwd + 1;
  len[3] = l3;
  len[4] = l4;
  if (l0 == 0 || l1 == 0 || l3 == 0 || l4 == 0) return false;
  for (int i = 0; i < 5; ++i)
    if (len[i] > max_run) return false;
  centre = (fwd - back) / 2.0;
  return true;
}

struct finder_hit {
  double x, y;  // centre, pixel coordinates
  double m;     // module size from the horizontal and vertical extents
  int row;      // the row scanned
};

struct finder {
  double x, y, m;
  int hits;
};

// Row y: every 1:1:3:1:1 run group, cross-checked vertically, horizontally again at the refined
// row, and diagonally.
void scan_row(const binary_view& bv, int y, std::vector<int>& runs, std::vector<finder_hit>& out)
{
  runs.clear();
  const std::uint8_t* row = bv.b + static_cast<std::size_t>(y) * bv.w;
  // runs: start positions of alternating runs; the first run's colour is that of pixel 0.
  const bool first_dark = (row[0] & bv.bit) != 0;
  runs.push_back(0);
  for (int x = 1; x < bv.w; ++x)
    if (((row[x] ^ row[x - 1]) & bv.bit) != 0) runs.push_back(x);
  runs.push_back(bv.w);
  const int count = static_cast<int>(runs.size()) - 1;
  for (int i = first_dark ? 0 : 1; i + 4 < count; i += 2) {
    int len[5];
    for (int k = 0; k < 5; ++k) len[k] = runs[i + k + 1] - runs[i + k];
    if (!finder_ratio(len, 1.0)) continue;
    const int htotal = runs[i + 5] - runs[i];
    const double cx = runs[i + 2] + len[2] / 2.0;
    // Beside the centre column too: one noise pixel in a ring would otherwise reject every row
    // of this finder at once (they all cross-check the same column).
    int xi = static_cast<int>(cx);
    int v[5];
    double off = 0;
    bool vertical = false;
    for (int shift : {0, -1, 1}) {
      const int xs = std::clamp(xi + shift, 0, bv.w - 1);
      if (runs_through(bv, xs, y, 0, 1, htotal, v, off) && finder_ratio(v, 1.0)) {
        vertical = true;
        xi = xs;
        break;
      }
    }
    if (!vertical) continue;
    const int vtotal = v[0] + v[1] + v[2] + v[3] + v[4];
    if (vtotal * 2 < htotal || htotal * 2 < vtotal) continue;
    const double cy = y + 0.5 + off;
    // Again horizontally through the refined centre, then diagonally, each on the line or one
    // pixel beside it (noise, as above).
    int hl[5];
    double hoff = 0;
    bool horizontal = false;
    int yi = static_cast<int>(cy);
    for (int shift : {0, -1, 1}) {
      const int ys = std::clamp(static_cast<int>(cy) + shift, 0, bv.h - 1);
      if (runs_through(bv, xi, ys, 1, 0, 2 * htotal, hl, hoff) && finder_ratio(hl, 1.0)) {
        horizontal = true;
        yi = ys;
        break;
      }
    }
    if (!horizontal) continue;
    const double cx2 = xi + 0.5 + hoff;
    const int h2 = hl[0] + hl[1] + hl[2] + hl[3] + hl[4];
    int d[5];
    double doff = 0;
    bool diagonal = false;
    for (int shift : {0, -1, 1}) {
      const int xs = std::clamp(static_cast<int>(cx2) + shift, 0, bv.w - 1);
      if (runs_through(bv, xs, yi, 1, 1, 2 * std::max(h2, vtotal), d, doff) && finder_ratio(d, 1.5)) {
        diagonal = true;
        break;
      }
    }
    if (!diagonal) continue;
    out.push_back(finder_hit{cx2, cy, (h2 + vtotal) / 14.0, y});
  }
}

// Hits of one finder come from consecutive rows and land within a fraction of a module of each
// other: greedy clustering over a hash grid.
std::vector<finder> cluster_hits(std::vector<finder_hit>& hits)
{
  std::sort(hits.begin(), hits.end(), [](const finder_hit& a, const finder_hit& b) {
    return a.y != b.y ? a.y < b.y : a.x < b.x;
  });
  struct acc {
    double sx, sy, sm;
    int n, first_row, last_row;
  };
  std::vector<acc> clusters;
  constexpr double cell = 32;
  std::unordered_map<std::uint64_t, std::vector<int>> grid;
  auto key = [](long long cx, long long cy) {
    return (static_cast<std::uint64_t>(cx + (1 << 30)) << 32) ^ static_cast<std::uint64_t>(cy + (1 << 30));
  };
  for (const finder_hit& h : hits) {
    const long long gx = static_cast<long long>(std::floor(h.x / cell)), gy = static_cast<long long>(std::floor(h.y / cell));
    const double limit = std::min(std::max(1.5, 0.75 * h.m), cell);
    int best = -1;
    double best_d = limit * limit;
    for (long long dy = -1; dy <= 1; ++dy)
      for (long long dx = -1; dx <= 1; ++dx) {
        auto it = grid.find(key(gx + dx, gy + dy));
        if (it == grid.end()) continue;
        for (int c : it->second) {
          const acc& a = clusters[static_cast<std::size_t>(c)];
          const double mx = a.sx / a.n, my = a.sy / a.n, mm = a.sm / a.n;
          if (h.m > 1.5 * mm || mm > 1.5 * h.m) continue;
          const double dd = (mx - h.x) * (mx - h.x) + (my - h.y) * (my - h.y);
          if (dd <= best_d) {
            best_d = dd;
            best = c;
          }
        }
      }
    if (best >= 0) {
      acc& a = clusters[static_cast<std::size_t>(best)];
      a.sx += h.x;
      a.sy += h.y;
      a.sm += h.m;
      ++a.n;
      a.first_row = std::min(a.first_row, h.row);
      a.last_row = std::max(a.last_row, h.row);
    } else {
      grid[key(gx, gy)].push_back(static_cast<int>(clusters.size()));
      clusters.push_back(acc{h.x, h.y, h.m, 1, h.row, h.row});
    }
  }
  std::vector<finder> candidates;
  candidates.reserve(clusters.size());
  for (const acc& a : clusters) {
    const double m = a.sm / a.n;
    // Every row through a finder's 3-module core sees the pattern: hits from rows spanning
    // much less than that are a plus-shaped bit of data (one module high) or noise.
    if (a.last_row - a.first_row + 1 < 2 * m - 2) continue;
    candidates.push_back(finder{a.sx / a.n, a.sy / a.n, m, a.n});
  }
  // Finders of real symbols never overlap (their centres are 8+ modules apart): of finders
  // closer than 5 modules keep the one with most hits. Thins noise, where "finders" crowd.
  std::stable_sort(candidates.begin(), candidates.end(), [](const finder& a, const finder& b) { return a.hits > b.hits; });
  std::vector<finder> out;
  std::unordered_map<std::uint64_t, std::vector<int>> kept;
  for (const finder& f : candidates) {
    const double r = 5 * f.m;
    const long long gx = static_cast<long long>(std::floor(f.x / cell)), gy = static_cast<long long>(std::floor(f.y / cell));
    const long long reach = static_cast<long long>(std::ceil(r / cell));
    bool suppressed = false;
    for (long long dy = -reach; dy <= reach && !suppressed; ++dy)
      for (long long dx = -reach; dx <= reach && !suppressed; ++dx) {
        auto it = kept.find(key(gx + dx, gy + dy));
        if (it == kept.end()) continue;
        for (int k : it->second) {
          const finder& o = out[static_cast<std::size_t>(k)];
          if (std::hypot(o.x - f.x, o.y - f.y) < 5 * std::min(o.m, f.m)) {
            suppressed = true;
            break;
          }
        }
      }
    if (suppressed) continue;
    kept[key(gx, gy)].push_back(static_cast<int>(out.size()));
    out.push_back(f);
  }
  return out;
}

std::vector<finder> find_finders(const std::vector<std::uint8_t>& bits, int w, int h, std::uint8_t bit_a,
                                 std::uint8_t bit_b, unsigned threads)
{
  const binary_view bva{bits.data(), w, h, bit_a}, bvb{bits.data(), w, h, bit_b};
  const int bands = static_cast<int>(std::min<unsigned>(threads * 4, static_cast<unsigned>(h)));
  std::vector<std::vector<finder_hit>> parts(static_cast<std::size_t>(std::max(bands, 1)));
  parallel_for(parts.size(), threads, [&](std::size_t band) {
    std::vector<int> runs;
    const int y0 = static_cast<int>(static_cast<long long>(h) * static_cast<long long>(band) / static_cast<long long>(parts.size()));
    const int y1 = static_cast<int>(static_cast<long long>(h) * static_cast<long long>(band + 1) / static_cast<long long>(parts.size()));
    for (int y = y0; y < y1; ++y) {
      scan_row(bva, y, runs, parts[band]);
      scan_row(bvb, y, runs, parts[band]);
    }
  });
  std::vector<finder_hit> hits;
  for (auto& p : parts) hits.insert(hits.end(), p.begin(), p.end());
  return cluster_hits(hits);
}

// ---------------------------------------------------------------------------------------------
// The module grid: an affine map from module coordinates to pixels, plus an optional bilinear
// correction on the alignment-pattern grid.

struct affine {
  double ox = 0, oy = 0, ux = 0, uy = 0, vx = 0, vy = 0;  // p = o + u * (ux, uy) + v * (vx, vy)
};

struct grid_model {
  affine a;
  int n = 0;                 // grid nodes per axis (0: no correction)
  double g[spec::max_alignment_positions] = {};  // node coordinates (module units, both axes)
  double rx[spec::max_alignment_positions][spec::max_alignment_positions] = {};
  double ry[spec::max_alignment_positions][spec::max_alignment_positions] = {};

  void map(double u, double v, double& x, double& y) const
  {
    x = a.ox + u * a.ux + v * a.vx;
    y = a.oy + u * a.uy + v * a.vy;
    if (n < 2) return;
    int i = 0, j = 0;
    double s = 0, t = 0;
    locate(u, j, s);
    locate(v, i, t);
    x += (1 - t) * ((1 - s) * rx[i][j] + s * rx[i][j + 1]) + t * ((1 - s) * rx[i + 1][j] + s * rx[i + 1][j + 1]);
    y += (1 - t) * ((1 - s) * ry[i][j] + s * ry[i][j + 1]) + t * ((1 - s) * ry[i + 1][j] + s * ry[i + 1][j + 1]);
  }

 private:
  void locate(double c, int& k, double& f) const
  {
    k = 0;
    while (k + 2 < n && c > g[k + 1]) ++k;
    f = std::clamp((c - g[k]) / (g[k + 1] - g[k]), 0.0, 1.0);
  }
};

affine affine_from_finders(double ax, double ay, double bx, double by, double cx, double cy, int size)
{
  affine f;
  const double span = size - 7;
  f.ux = (bx - ax) / span;
  f.uy = (by - ay) / span;
  f.vx = (cx - ax) / span;
  f.vy = (cy - ay) / span;
  f.ox = ax - 3.5 * f.ux - 3.5 * f.vx;
  f.oy = ay - 3.5 * f.uy - 3.5 * f.vy;
  return f;
}

struct point_pair {
  double u, v, x, y;
};

// Least-squares affine through the pairs (at least 3, not collinear); false if singular.
bool fit_affine(const std::vector<point_pair>& pts, affine& out)
{
  double s[3][3] = {}, bx[3] = {}, by[3] = {};
  for (const point_pair& p : pts) {
    const double q[3] = {1, p.u, p.v};
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) s[r][c] += q[r] * q[c];
      bx[r] += q[r] * p.x;
      by[r] += q[r] * p.y;
    }
  }
  // Cramer's rule on the 3x3 normal equations.
  auto det3 = [](const double m[3][3]) {
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  };
  const double d = det3(s);
  if (!(std::abs(d) > 1e-9)) return false;
  double sol[2][3];
  for (int axis = 0; axis < 2; ++axis) {
    const double* b = axis == 0 ? bx : by;
    for (int k = 0; k < 3; ++k) {
      double m[3][3];
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) m[r][c] = c == k ? b[r] : s[r][c];
      sol[axis][k] = det3(m) / d;
    }
  }
  out.ox = sol[0][0];
  out.ux = sol[0][1];
  out.vx = sol[0][2];
  out.oy = sol[1][0];
  out.uy = sol[1][1];
  out.vy = sol[1][2];
  return true;
}

// ---------------------------------------------------------------------------------------------
// Sampling

struct sampler {
  const pixels& px;
  const grid_model& model;
  double sub = 0;  // sub-sample offset in modules (0: centre only)

  // Mean of a few points around module coordinates (u, v): averages out noise where modules
  // are several pixels wide, stays at the centre where they are not.
  float at(double u, double v) const
  {
    double x, y;
    if (sub == 0) {
      model.map(u, v, x, y);
      return px.value(x, y);
    }
    float sum = 0;
    for (int i = -1; i <= 1; ++i)
      for (int j = -1; j <= 1; ++j) {
        model.map(u + j * sub, v + i * sub, x, y);
        sum += px.value(x, y);
      }
    return sum / 9;
  }
};

// Dark core (3x3) and light ring of the finder centred at module coordinates (cu, cv).
void finder_levels(const sampler& s, double cu, double cv, float& dark, float& light)
{
  float d = 0, l = 0;
  int nd = 0, nl = 0;
  for (int i = -2; i <= 2; ++i)
    for (int j = -2; j <= 2; ++j) {
      const float val = s.at(cu + j, cv + i);
      if (std::max(std::abs(i), std::abs(j)) <= 1) {
        d += val;
        ++nd;
      } else {
        l += val;
        ++nl;
      }
    }
  dark = d / static_cast<float>(nd);
  light = l / static_cast<float>(nl);
}

// Fraction of the timing modules (row 6 and column 6 between the separators, §6.3.5) that
// alternate as they should, each against the mean of its line; the worse of the two lines,
// since a wrong triple often runs one line along a neighbour's real timing pattern.
double timing_score(const sampler& s, int size)
{
  const int count = size - 16;  // modules 8 .. size - 9
  if (count <= 0) return 0;
  int worst = count;
  float vals[spec::max_symbol_size];
  for (int line = 0; line < 2; ++line) {
    float mean = 0;
    for (int k = 0; k < count; ++k) {
      const double along = 8 + k + 0.5;
      vals[k] = line == 0 ? s.at(along, 6.5) : s.at(6.5, along);
      mean += vals[k];
    }
    mean /= static_cast<float>(count);
    int good = 0;
    for (int k = 0; k < count; ++k) good += ((vals[k] < mean) == (k % 2 == 0)) ? 1 : 0;
    worst = std::min(worst, good);
  }
  return static_cast<double>(worst) / count;
}

// Reads both version blocks (§7.10) against the nearest finder's levels; 0 when neither decodes.
int read_version(const sampler& s, int size)
{
  int best_version = 0, best_distance = 4;
  for (int copy = 0; copy < 2; ++copy) {
    float dark, light;
    if (copy == 0)
      finder_levels(s, size - 3.5, 3.5, dark, light);
    else
      finder_levels(s, 3.5, size - 3.5, dark, light);
    const float mid = (dark + light) / 2;
    std::uint32_t bits = 0;
    for (int i = 0; i < 18; ++i) {
      const int a = size - 11 + i % 3, b = i / 3;
      const int row = copy == 0 ? b : a, col = copy == 0 ? a : b;
      if (s.at(col + 0.5, row + 0.5) < mid) bits |= 1u << i;
    }
    int version = 0, distance = 0;
    if (core::decode_version_info(bits, version, distance) && distance < best_distance) {
      best_distance = distance;
      best_version = version;
    }
  }
  return best_version;
}

// ---------------------------------------------------------------------------------------------
// One finder triple

struct thread_scratch {
  core::decode_workspace ws;
  std::vector<std::uint64_t> modules;
  std::vector<std::uint8_t> confidence;
  std::vector<float> values;
  std::vector<float> thresholds;
  std::vector<std::uint8_t> out;
};

// Finds the alignment patterns (§6.3.6) near where `model` puts them and refits: a least-squares
// affine through the finder centres and the patterns found, then the residuals of the patterns
// as a bilinear correction. Patterns are matched by the contrast of their light ring against
// their dark centre and outer ring, searched +-1.5 modules around the prediction.
grid_model refine_with_alignment(const pixels& px, const grid_model& start, int version, const point_pair finders[3],
                                 float gap)
{
  std::uint8_t pos[spec::max_alignment_positions];
  const int na = spec::alignment_positions(version, pos);
  if (na == 0) return start;
  grid_model probe = start;
  const sampler s{px, probe, 0};
  std::vector<point_pair> pts(finders, finders + 3);
  struct found {
    int i, j;
    double u, v, x, y;
  };
  std::vector<found> patterns;
  for (int i = 0; i < na; ++i)
    for (int j = 0; j < na; ++j) {
      if ((i == 0 && j == 0) || (i == 0 && j == na - 1) || (i == na - 1 && j == 0)) continue;
      const double u0 = pos[j] + 0.5, v0 = pos[i] + 0.5;
      double best = -1e30, bu = 0, bv = 0;
      for (int a = -6; a <= 6; ++a)
        for (int b = -6; b <= 6; ++b) {
          const double u = u0 + b * 0.25, v = v0 + a * 0.25;
          float dark = 0, light = 0;
          for (int y = -2; y <= 2; ++y)
            for (int x = -2; x <= 2; ++x) {
              const float val = s.at(u + x, v + y);
              if (std::max(std::abs(x), std::abs(y)) == 1)
                light += val;
              else
                dark += val;
            }
          const double score = light / 8.0 - dark / 17.0;
          if (score > best) {
            best = score;
            bu = u;
            bv = v;
          }
        }
      if (best < 0.35 * gap) continue;
      double x, y;
      probe.map(bu, bv, x, y);
      patterns.push_back(found{i, j, u0, v0, x, y});
      pts.push_back(point_pair{u0, v0, x, y});
    }
  if (patterns.empty()) return start;

  grid_model out;
  if (!fit_affine(pts, out.a)) return start;
  // One round of outlier removal: a pattern more than 0.75 module off the fit is a false match.
  const double module = std::sqrt(std::abs(out.a.ux * out.a.vy - out.a.uy * out.a.vx));
  auto residual = [&](const affine& f, const found& p, double& dx, double& dy) {
    dx = p.x - (f.ox + p.u * f.ux + p.v * f.vx);
    dy = p.y - (f.oy + p.u * f.uy + p.v * f.vy);
  };
  std::vector<point_pair> kept(finders, finders + 3);
  std::vector<found> good;
  for (const found& p : patterns) {
    double dx, dy;
    residual(out.a, p, dx, dy);
    if (dx * dx + dy * dy <= 0.5625 * module * module) {
      kept.push_back(point_pair{p.u, p.v, p.x, p.y});
      good.push_back(p);
    }
  }
  if (kept.size() != pts.size() && !fit_affine(kept, out.a)) return start;
  if (good.size() < 2 || na < 3) return out;  // too few for a correction grid
  out.n = na;
  for (int k = 0; k < na; ++k) out.g[k] = pos[k] + 0.5;
  for (const found& p : good) {
    double dx, dy;
    residual(out.a, p, dx, dy);
    out.rx[p.i][p.j] = dx;
    out.ry[p.i][p.j] = dy;
  }
  return out;
}

// Samples every module, thresholds it against a local two-means level, and decodes.
bool sample_and_decode(const pixels& px, const grid_model& model, int version, double sub, thread_scratch& t,
                       found_code& code, float dark_ref, float light_ref)
{
  const core::version_plan& plan = host::version_plan_for(version, ecc_level::L);
  const int n = plan.size;
  const sampler s{px, model, sub};
  t.values.resize(static_cast<std::size_t>(n) * n);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) t.values[static_cast<std::size_t>(r) * n + c] = s.at(c + 0.5, r + 0.5);

  // Global two-means from the finders' levels.
  float th = (dark_ref + light_ref) / 2, lo = dark_ref, hi = light_ref;
  for (int it = 0; it < 6; ++it) {
    double sl = 0, sh = 0;
    int nl = 0, nh = 0;
    for (float v : t.values)
      if (v < th) {
        sl += v;
        ++nl;
      } else {
        sh += v;
        ++nh;
      }
    if (nl == 0 || nh == 0) break;
    lo = static_cast<float>(sl / nl);
    hi = static_cast<float>(sh / nh);
    th = (lo + hi) / 2;
  }
  const float gap = hi - lo;
  if (!(gap > 0)) return false;

  // Local levels on blocks of ~12 modules (shading, uneven contrast across large symbols),
  // interpolated between block centres.
  const int nb = std::max(1, (n + 6) / 12);
  std::vector<float> block(static_cast<std::size_t>(nb) * nb, th);
  if (nb > 1) {
    for (int bi = 0; bi < nb; ++bi)
      for (int bj = 0; bj < nb; ++bj) {
        const int r0 = std::max(0, bi * n / nb - n / (2 * nb)), r1 = std::min(n, (bi + 1) * n / nb + n / (2 * nb));
        const int c0 = std::max(0, bj * n / nb - n / (2 * nb)), c1 = std::min(n, (bj + 1) * n / nb + n / (2 * nb));
        float bt = th;
        bool ok = false;
        for (int it = 0; it < 4; ++it) {
          double sl = 0, sh = 0;
          int nl = 0, nh = 0;
          for (int r = r0; r < r1; ++r)
            for (int c = c0; c < c1; ++c) {
              const float v = t.values[static_cast<std::size_t>(r) * n + c];
              if (v < bt) {
                sl += v;
                ++nl;
              } else {
                sh += v;
                ++nh;
              }
            }
          const int total = nl + nh;
          ok = nl * 6 >= total && nh * 6 >= total && (sh / nh - sl / nl) > 0.5 * gap;
          if (!ok) break;
          bt = static_cast<float>((sl / nl + sh / nh) / 2);
        }
        block[static_cast<std::size_t>(bi) * nb + bj] = ok ? bt : th;
      }
  }
  auto local = [&](int r, int c) {
    if (nb == 1) return th;
    const double fr = std::clamp((r + 0.5) * nb / n - 0.5, 0.0, nb - 1.0);
    const double fc = std::clamp((c + 0.5) * nb / n - 0.5, 0.0, nb - 1.0);
    const int i = std::min(static_cast<int>(fr), nb - 2), j = std::min(static_cast<int>(fc), nb - 2);
    const double a = fr - i, b = fc - j;
    const auto at = [&](int ii, int jj) { return static_cast<double>(block[static_cast<std::size_t>(ii) * nb + jj]); };
    return static_cast<float>((1 - a) * ((1 - b) * at(i, j) + b * at(i, j + 1)) + a * ((1 - b) * at(i + 1, j) + b * at(i + 1, j + 1)));
  };

  t.modules.assign(static_cast<std::size_t>(n) * plan.words, 0);
  t.confidence.resize(static_cast<std::size_t>(n) * n);
  const float half = gap / 2;
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) {
      const float v = t.values[static_cast<std::size_t>(r) * n + c];
      const float lt = local(r, c);
      if (v < lt) t.modules[static_cast<std::size_t>(r) * plan.words + c / 64] |= std::uint64_t{1} << (c % 64);
      const float conf = std::min(1.0f, std::abs(v - lt) / half);
      t.confidence[static_cast<std::size_t>(r) * n + c] = static_cast<std::uint8_t>(std::lround(255 * conf));
    }

  t.out.resize(core::max_decoded_length);
  const core::decode_result res = core::decode_symbol(plan, t.modules.data(), t.confidence.data(), 80, t.out.data(),
                                                      t.ws, core::max_decoded_length);
  if (res.status != core::decode_status::ok && res.status != core::decode_status::corrected &&
      res.status != core::decode_status::erasure_assisted)
    return false;
  code.version = version;
  code.ecc = res.ecc;
  code.mask = res.mask;
  code.status = res.status;
  code.content.assign(t.out.begin(), t.out.begin() + res.data_length);
  const double corner_u[4] = {0, static_cast<double>(n), static_cast<double>(n), 0};
  const double corner_v[4] = {0, 0, static_cast<double>(n), static_cast<double>(n)};
  for (int k = 0; k < 4; ++k) model.map(corner_u[k], corner_v[k], code.x[k], code.y[k]);
  code.module_px = (std::hypot(model.a.ux, model.a.uy) + std::hypot(model.a.vx, model.a.vy)) / 2;
  code.inverted = px.inverted;
  return true;
}

// A cheap gate before the full sampling (§7.9): both format copies decode to the same word, or
// one of them is within one bit of a valid word. A random area passes about 4% of the time, a
// real symbol nearly always (the full decode still gets both copies' readings).
bool format_plausible(const sampler& s, int size, float mid)
{
  std::uint64_t modules[spec::max_symbol_size * core::max_words] = {};
  const int w = words_per_row(size);
  auto put = [&](int row, int col) {
    if (s.at(col + 0.5, row + 0.5) < mid) core::set_bit(modules + row * w, col, true);
  };
  for (int i = 0; i <= 8; ++i) {
    put(i, 8);
    put(8, i);
  }
  for (int i = 0; i < 8; ++i) put(8, size - 1 - i);
  for (int i = 0; i < 7; ++i) put(size - 7 + i, 8);
  ecc_level ecc[2] = {ecc_level::L, ecc_level::L};
  int mask[2] = {-1, -1}, distance[2] = {16, 16};
  bool ok[2];
  for (int copy = 0; copy < 2; ++copy)
    ok[copy] = core::decode_format_info(core::read_format_bits(modules, size, copy), ecc[copy], mask[copy], distance[copy]);
  if (ok[0] && ok[1] && ecc[0] == ecc[1] && mask[0] == mask[1]) return true;
  return (ok[0] && distance[0] <= 1) || (ok[1] && distance[1] <= 1);
}

struct triple_outcome {
  bool timing_passed = false;
  bool decoded = false;
};

// a: the corner finder (top-left), b: top-right, c: bottom-left.
triple_outcome try_triple(const pixels& px, const finder& a, const finder& b, const finder& c, thread_scratch& t,
                          found_code& code)
{
  triple_outcome outcome;
  const double ab = std::hypot(b.x - a.x, b.y - a.y), ac = std::hypot(c.x - a.x, c.y - a.y);
  // The run lengths measure a finder's extent along the pixel axes: 1 / cos(theta) too long for
  // a code rotated by theta (folded into +-45 degrees).
  const double angle = std::atan2(b.y - a.y, b.x - a.x);
  const double fold = std::remainder(angle, pi / 2);
  const double m = (a.m + b.m + c.m) / 3 * std::cos(fold);
  const double est = (ab + ac) / 2 / m + 7;

  struct cand {
    int version;
    double score;
  };
  cand cands[8];
  int nc = 0;
  for (int v = spec::min_version; v <= spec::max_version; ++v) {
    const int size = spec::symbol_size(v);
    if (std::abs(size - est) > std::max(4.5, 0.15 * est)) continue;
    grid_model g;
    g.a = affine_from_finders(a.x, a.y, b.x, b.y, c.x, c.y, size);
    const sampler s{px, g, 0};
    const double score = timing_score(s, size);
    if (score < 0.75) continue;
    if (nc < 8) cands[nc++] = cand{v, score - 0.01 * std::abs(size - est) / 4};
  }
  if (nc == 0) return outcome;
  outcome.timing_passed = true;
  for (int i = 1; i < nc; ++i)  // insertion sort, best first (std::sort trips -Warray-bounds here)
    for (int j = i; j > 0 && cands[j].score > cands[j - 1].score; --j) std::swap(cands[j], cands[j - 1]);

  const point_pair finders[3] = {{3.5, 3.5, a.x, a.y}, {0, 3.5, b.x, b.y}, {3.5, 0, c.x, c.y}};
  int tried[4];
  int ntried = 0;
  for (int k = 0; k < nc && ntried < 2; ++k) {
    int version = cands[k].version;
    grid_model g;
    g.a = affine_from_finders(a.x, a.y, b.x, b.y, c.x, c.y, spec::symbol_size(version));
    if (version >= 7) {  // the version information settles the size (§7.10)
      const sampler s{px, g, 0};
      const int read = read_version(s, spec::symbol_size(version));
      if (read != 0 && read != version && std::abs(spec::symbol_size(read) - est) <= std::max(8.0, 0.3 * est)) {
        version = read;
        g.a = affine_from_finders(a.x, a.y, b.x, b.y, c.x, c.y, spec::symbol_size(version));
      }
    }
    if (std::find(tried, tried + ntried, version) != tried + ntried) continue;
    tried[ntried++] = version;
    const int size = spec::symbol_size(version);
    point_pair f[3] = {finders[0], finders[1], finders[2]};
    f[1].u = size - 3.5;
    f[2].v = size - 3.5;
    float dark, light;
    {
      const sampler s{px, g, 0};
      finder_levels(s, 3.5, 3.5, dark, light);
    }
    if (!(light > dark)) continue;
    const double module = std::sqrt(std::abs(g.a.ux * g.a.vy - g.a.uy * g.a.vx));
    const double sub = module >= 2.5 ? 0.22 : 0;
    if (!format_plausible(sampler{px, g, sub}, size, (dark + light) / 2)) continue;
    const grid_model refined = refine_with_alignment(px, g, version, f, light - dark);
    if (sample_and_decode(px, refined, version, sub, t, code, dark, light)) {
      outcome.decoded = true;
      return outcome;
    }
    if (refined.n != 0 || refined.a.ox != g.a.ox) {  // the refinement may have locked on wrong patterns
      if (sample_and_decode(px, g, version, sub, t, code, dark, light)) {
        outcome.decoded = true;
        return outcome;
      }
    }
  }
  return outcome;
}

// ---------------------------------------------------------------------------------------------
// Triples of finders

struct polarity_result {
  std::vector<found_code> codes;
  std::size_t finders = 0, candidates = 0, failed = 0;
};

polarity_result read_polarity(const pixels& px, const std::vector<finder>& fs, unsigned threads)
{
  polarity_result result;
  result.finders = fs.size();
  if (fs.size() < 3) return result;

  // Hash grid for the neighbour search.
  std::vector<double> ms;
  for (const finder& f : fs) ms.push_back(f.m);
  std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2), ms.end());
  const double cell = std::clamp(ms[ms.size() / 2] * 24, 16.0, 4096.0);
  const int gw = static_cast<int>(std::ceil(px.w / cell)) + 1, gh = static_cast<int>(std::ceil(px.h / cell)) + 1;
  std::vector<std::vector<int>> grid(static_cast<std::size_t>(gw) * gh);
  for (std::size_t i = 0; i < fs.size(); ++i) {
    const int gx = std::clamp(static_cast<int>(fs[i].x / cell), 0, gw - 1), gy = std::clamp(static_cast<int>(fs[i].y / cell), 0, gh - 1);
    grid[static_cast<std::size_t>(gy) * gw + gx].push_back(static_cast<int>(i));
  }

  constexpr std::size_t max_neighbours = 16;
  constexpr int max_triples_per_corner = 32;  // a timing check each: cheap
  std::vector<found_code> per_corner(fs.size());
  std::vector<char> ok(fs.size(), 0);
  std::atomic<std::size_t> candidates{0}, failed{0};
  const unsigned nthreads = static_cast<unsigned>(std::min<std::size_t>(threads, fs.size()));
  std::vector<thread_scratch> scratch(std::max(1u, nthreads));
  std::atomic<unsigned> next_scratch{0};

  auto work = [&](std::size_t ia, thread_scratch& t) {
    const finder& a = fs[ia];
    // A symbol's finders are 14 (version 1) to 170 (version 40) modules apart.
    const double rmin = 10 * a.m, rmax = 200 * a.m;
    std::vector<std::pair<double, int>> near;
    auto consider = [&](int j) {
      if (static_cast<std::size_t>(j) == ia) return;
      const finder& f = fs[static_cast<std::size_t>(j)];
      const double dx = f.x - a.x, dy = f.y - a.y, d2 = dx * dx + dy * dy;
      if (d2 < rmin * rmin || d2 > rmax * rmax) return;
      if (f.m > 1.45 * a.m || a.m > 1.45 * f.m) return;
      near.emplace_back(std::sqrt(d2), j);
    };
    const int gx0 = std::max(0, static_cast<int>((a.x - rmax) / cell)), gx1 = std::min(gw - 1, static_cast<int>((a.x + rmax) / cell));
    const int gy0 = std::max(0, static_cast<int>((a.y - rmax) / cell)), gy1 = std::min(gh - 1, static_cast<int>((a.y + rmax) / cell));
    if (static_cast<double>(gx1 - gx0 + 1) * (gy1 - gy0 + 1) > static_cast<double>(fs.size())) {
      for (std::size_t j = 0; j < fs.size(); ++j) consider(static_cast<int>(j));
    } else {
      for (int gy = gy0; gy <= gy1; ++gy)
        for (int gx = gx0; gx <= gx1; ++gx)
          for (int j : grid[static_cast<std::size_t>(gy) * gw + gx]) consider(j);
    }
    if (near.size() < 2) return;
    // The nearest compatible finders (a symbol's partners in a dense grid of small codes) and the
    // strongest ones (a large symbol's partners, behind false finders in its own data).
    if (near.size() > 2 * max_neighbours) {
      std::partial_sort(near.begin(), near.begin() + static_cast<std::ptrdiff_t>(max_neighbours), near.end());
      std::partial_sort(near.begin() + static_cast<std::ptrdiff_t>(max_neighbours),
                        near.begin() + static_cast<std::ptrdiff_t>(2 * max_neighbours), near.end(),
                        [&](const std::pair<double, int>& x, const std::pair<double, int>& y) {
                          const int hx = fs[static_cast<std::size_t>(x.second)].hits, hy = fs[static_cast<std::size_t>(y.second)].hits;
                          return hx != hy ? hx > hy : x < y;
                        });
      near.resize(2 * max_neighbours);
    }

    struct pair_score {
      double score;
      int b, c;
    };
    std::vector<pair_score> pairs;
    for (std::size_t p = 0; p < near.size(); ++p)
      for (std::size_t q = p + 1; q < near.size(); ++q) {
        const finder& b = fs[static_cast<std::size_t>(near[p].second)];
        const finder& c = fs[static_cast<std::size_t>(near[q].second)];
        const double ab = near[p].first, ac = near[q].first;
        const double ratio = ab / ac;
        if (ratio < 0.85 || ratio > 1.0 / 0.85) continue;
        const double bx = b.x - a.x, by = b.y - a.y, cx = c.x - a.x, cy = c.y - a.y;
        const double cosine = (bx * cx + by * cy) / (ab * ac);
        if (std::abs(cosine) > 0.2) continue;
        // The arm in modules must fit some version: 14..170 modules apart.
        const double arm = (ab + ac) / 2 / ((a.m + b.m + c.m) / 3);
        if (arm < 9 || arm > 200) continue;
        // Mirror-free orientation (§6.3.3): seen with y down, top-right follows top-left
        // clockwise, so (b - a) x (c - a) > 0 for b = top-right, c = bottom-left.
        const bool b_is_right = bx * cy - by * cx > 0;
        const int ib = b_is_right ? near[p].second : near[q].second;
        const int ic = b_is_right ? near[q].second : near[p].second;
        // Geometric error, rounded so that equally good pairs go shortest arm first: in a grid of
        // codes, equal-armed right angles repeat at every multiple of the pitch.
        const double error = std::round(40 * (std::abs(cosine) + std::abs(std::log(ratio)))) / 40;
        pairs.push_back(pair_score{error + 1e-4 * (ab + ac) / std::max(a.m, 1.0), ib, ic});
      }
    std::sort(pairs.begin(), pairs.end(), [](const pair_score& x, const pair_score& y) { return x.score < y.score; });
    int tried = 0;
    for (const pair_score& ps : pairs) {
      if (tried++ >= max_triples_per_corner) break;
      ++candidates;
      found_code code;
      const triple_outcome o = try_triple(px, a, fs[static_cast<std::size_t>(ps.b)], fs[static_cast<std::size_t>(ps.c)], t, code);
      if (o.decoded) {
        per_corner[ia] = std::move(code);
        ok[ia] = 1;
        return;
      }
      if (o.timing_passed) ++failed;
    }
  };

  if (nthreads <= 1) {
    for (std::size_t i = 0; i < fs.size(); ++i) work(i, scratch[0]);
  } else {
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
      thread_scratch& t = scratch[next_scratch++];
      for (std::size_t i = next++; i < fs.size(); i = next++) work(i, t);
    };
    std::vector<std::thread> pool;
    for (unsigned k = 1; k < nthreads; ++k) pool.emplace_back(worker);
    worker();
    for (auto& th : pool) th.join();
  }
  for (std::size_t i = 0; i < fs.size(); ++i)
    if (ok[i]) result.codes.push_back(std::move(per_corner[i]));
  result.candidates = candidates;
  result.failed = failed;
  return result;
}

double centre_x(const found_code& c) { return (c.x[0] + c.x[1] + c.x[2] + c.x[3]) / 4; }
double centre_y(const found_code& c) { return (c.y[0] + c.y[1] + c.y[2] + c.y[3]) / 4; }
double top(const found_code& c) { return std::min({c.y[0], c.y[1], c.y[2], c.y[3]}); }
double left(const found_code& c) { return std::min({c.x[0], c.x[1], c.x[2], c.x[3]}); }
double side(const found_code& c) { return std::hypot(c.x[1] - c.x[0], c.y[1] - c.y[0]); }

}  // namespace

blind_result read_codes(const sim::gray_image& image, const blind_options& options)
{
  if (image.bits != 8 && image.bits != 16)
    throw invalid_argument("invalid_argument: gray image bits " + std::to_string(image.bits) + " (8 or 16 allowed)");
  if (image.pixels.size() != static_cast<std::size_t>(image.width) * image.height)
    throw invalid_argument("invalid_argument: gray image has " + std::to_string(image.pixels.size()) +
                           " pixels, width * height = " +
                           std::to_string(static_cast<std::size_t>(image.width) * image.height));
  blind_result result;
  // Too small for the smallest finder pattern with its runs (7 px) in both directions.
  if (image.width < 7 || image.height < 7) return result;
  if (image.width > static_cast<std::uint32_t>(std::numeric_limits<int>::max() / 2) ||
      image.height > static_cast<std::uint32_t>(std::numeric_limits<int>::max() / 2))
    throw invalid_argument("invalid_argument: gray image side above 2^30 pixels");

  const unsigned threads = thread_count(options.threads);
  const int w = static_cast<int>(image.width), h = static_cast<int>(image.height);
  const std::vector<std::uint8_t> bits = binarize(image, threads);

  std::vector<found_code> all;
  for (int pol = 0; pol < (options.try_inverted ? 2 : 1); ++pol) {
    const pixels px{image.pixels.data(), w, h, image.bits == 8 ? 255.0f : 65535.0f, pol == 1};
    const std::vector<finder> fs = find_finders(bits, w, h, static_cast<std::uint8_t>(pol == 0 ? 1 : 2),
                                                static_cast<std::uint8_t>(pol == 0 ? 4 : 8), threads);
    polarity_result r = read_polarity(px, fs, threads);
    result.finders += r.finders;
    result.candidates += r.candidates;
    result.failed += r.failed;
    for (found_code& c : r.codes) all.push_back(std::move(c));
  }

  // The same symbol found twice (two corner candidates, or both polarities): keep the first.
  std::vector<found_code> unique;
  for (found_code& c : all) {
    bool dup = false;
    for (const found_code& u : unique)
      if (u.content == c.content && std::hypot(centre_x(u) - centre_x(c), centre_y(u) - centre_y(c)) < side(u) / 2) {
        dup = true;
        break;
      }
    if (!dup) unique.push_back(std::move(c));
  }

  // Reading order: rows of codes whose tops lie within half a code's side of the row's first.
  std::sort(unique.begin(), unique.end(), [](const found_code& a, const found_code& b) { return top(a) < top(b); });
  std::size_t start = 0;
  while (start < unique.size()) {
    std::size_t end = start + 1;
    const double limit = top(unique[start]) + side(unique[start]) / 2;
    while (end < unique.size() && top(unique[end]) <= limit) ++end;
    std::sort(unique.begin() + static_cast<std::ptrdiff_t>(start), unique.begin() + static_cast<std::ptrdiff_t>(end),
              [](const found_code& a, const found_code& b) { return left(a) < left(b); });
    start = end;
  }
  result.codes = std::move(unique);
  return result;
}

}  // namespace qrplate::blind
