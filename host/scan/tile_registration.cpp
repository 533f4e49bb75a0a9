#include "scan/tile_registration.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace qrplate::scan {
namespace {

constexpr double pi = 3.14159265358979323846;

std::uint64_t cell_key(std::int64_t x, std::int64_t y)
{
  return (static_cast<std::uint64_t>(x) << 32) ^ (static_cast<std::uint64_t>(y) & 0xffffffffu);
}

// The expected finders in a hash grid of 8-module cells, for nearest-neighbour lookups.
class finder_index {
 public:
  explicit finder_index(std::vector<std::pair<double, double>> points) : points_(std::move(points))
  {
    for (std::size_t i = 0; i < points_.size(); ++i)
      cells_[cell_key(cell(points_[i].first), cell(points_[i].second))].push_back(static_cast<std::uint32_t>(i));
  }
  const std::vector<std::pair<double, double>>& points() const { return points_; }
  // Index of the nearest point within `radius` (<= 8) of (x, y), or -1.
  long nearest(double x, double y, double radius) const
  {
    long best = -1;
    double best_d2 = radius * radius;
    const std::int64_t cx = cell(x), cy = cell(y);
    for (std::int64_t dy = -1; dy <= 1; ++dy)
      for (std::int64_t dx = -1; dx <= 1; ++dx) {
        const auto it = cells_.find(cell_key(cx + dx, cy + dy));
        if (it == cells_.end()) continue;
        for (std::uint32_t i : it->second) {
          const double ex = points_[i].first - x, ey = points_[i].second - y;
          const double d2 = ex * ex + ey * ey;
          if (d2 <= best_d2) best_d2 = d2, best = i;
        }
      }
    return best;
  }

 private:
  static std::int64_t cell(double v) { return static_cast<std::int64_t>(std::floor(v / 8.0)); }
  std::vector<std::pair<double, double>> points_;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> cells_;
};

struct pose_guess {
  int score = -1;
  double rotation = 0;  // radians
  double sx = 0, sy = 0;  // shift, modules
};

}  // namespace

void posed_tile::shift_on_plate(double dx, double dy)
{
  to_pixel = to_pixel.shifted(-dx, -dy);
  to_pixel.inverse(to_plate);
}

void build_integral(const sim::gray_image& img, std::vector<double>& sums)
{
  const std::size_t w = img.width, h = img.height;
  sums.assign((w + 1) * (h + 1), 0.0);
  for (std::size_t y = 0; y < h; ++y) {
    double row = 0;
    const std::uint16_t* p = img.pixels.data() + y * w;
    double* above = sums.data() + y * (w + 1);
    double* here = above + (w + 1);
    for (std::size_t x = 0; x < w; ++x) {
      row += p[x];
      here[x + 1] = above[x + 1] + row;
    }
  }
}

double estimate_contrast(const core::integral_view& iv, double m)
{
  const int step = std::max(1, static_cast<int>(std::lround(m)));
  std::vector<float> means;
  for (int y = 0; y + step <= iv.height; y += step)
    for (int x = 0; x + step <= iv.width; x += step) {
      double area = 0;
      const double s = iv.box(x, y, x + step, y + step, area);
      if (area > 0) means.push_back(static_cast<float>(s / area));
    }
  if (means.size() < 20) return 0;
  const std::size_t lo = means.size() / 20, hi = means.size() - 1 - means.size() / 20;
  std::nth_element(means.begin(), means.begin() + static_cast<long>(lo), means.end());
  const float a = means[lo];
  std::nth_element(means.begin(), means.begin() + static_cast<long>(hi), means.end());
  return static_cast<double>(means[hi]) - a;
}

std::vector<finder_detection> detect_finders(const core::integral_view& iv, double m, double min_response, int sign_int)
{
  const float sign = static_cast<float>(sign_int);
  std::vector<finder_detection> found;
  const int step = std::max(1, static_cast<int>(m / 2));
  const int margin = static_cast<int>(std::ceil(4.5 * m)) + 1;
  if (iv.width <= 2 * margin || iv.height <= 2 * margin) return found;
  std::vector<finder_detection> candidates;
  for (int y = margin; y < iv.height - margin; y += step)
    for (int x = margin; x < iv.width - margin; x += step) {
      const float r = sign * core::finder_response(iv, x, y, m);
      if (r >= min_response) candidates.push_back({static_cast<double>(x), static_cast<double>(y), r});
    }
  // Non-maximum suppression: strongest first, nothing else within 3.5 modules.
  std::sort(candidates.begin(), candidates.end(),
            [](const finder_detection& a, const finder_detection& b) { return a.response > b.response; });
  const double radius = 3.5 * m;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> taken;
  auto cell = [&](double v) { return static_cast<std::int64_t>(std::floor(v / radius)); };
  for (const finder_detection& c : candidates) {
    bool near = false;
    for (std::int64_t dy = -1; dy <= 1 && !near; ++dy)
      for (std::int64_t dx = -1; dx <= 1 && !near; ++dx) {
        const auto it = taken.find(cell_key(cell(c.u) + dx, cell(c.v) + dy));
        if (it == taken.end()) continue;
        for (std::uint32_t i : it->second) {
          const double ex = found[i].u - c.u, ey = found[i].v - c.v;
          if (ex * ex + ey * ey < radius * radius) {
            near = true;
            break;
          }
        }
      }
    if (near) continue;
    taken[cell_key(cell(c.u), cell(c.v))].push_back(static_cast<std::uint32_t>(found.size()));
    found.push_back(c);
  }
  // Refine each to the best whole pixel nearby, then a parabola through its neighbours.
  for (finder_detection& f : found) {
    int bx = static_cast<int>(f.u), by = static_cast<int>(f.v);
    float best = f.response;
    for (int dy = -step; dy <= step; ++dy)
      for (int dx = -step; dx <= step; ++dx) {
        const float r = sign * core::finder_response(iv, bx + dx, by + dy, m);
        if (r > best) best = r, f.u = bx + dx, f.v = by + dy;
      }
    bx = static_cast<int>(f.u), by = static_cast<int>(f.v);
    auto vertex = [](float a, float b, float c) {
      const float den = a - 2 * b + c;
      return den < 0 ? std::clamp(0.5f * (a - c) / den, -0.5f, 0.5f) : 0.0f;
    };
    const float l = sign * core::finder_response(iv, bx - 1, by, m), r = sign * core::finder_response(iv, bx + 1, by, m);
    const float t = sign * core::finder_response(iv, bx, by - 1, m), b = sign * core::finder_response(iv, bx, by + 1, m);
    f.u = static_cast<double>(bx) + vertex(l, best, r);
    f.v = static_cast<double>(by) + vertex(t, best, b);
    f.response = best;
  }
  std::sort(found.begin(), found.end(), [](const finder_detection& a, const finder_detection& b) { return a.response > b.response; });
  return found;
}

std::vector<std::pair<double, double>> expected_finders(const plate::plate_geometry& g, double x0, double y0, double x1,
                                                        double y1)
{
  std::vector<std::pair<double, double>> out;
  auto add = [&](double cx, double cy, int size) {
    const double near = 3.5, far = size - 3.5;
    const std::pair<double, double> centres[3] = {{cx + near, cy + near}, {cx + far, cy + near}, {cx + near, cy + far}};
    for (const auto& p : centres)
      if (p.first >= x0 && p.first < x1 && p.second >= y0 && p.second < y1) out.push_back(p);
  };
  if (g.pitch > 0 && g.columns > 0 && g.rows > 0) {
    const double gx = static_cast<double>(g.grid_x), gy = static_cast<double>(g.grid_y);
    const auto c0 = static_cast<std::int64_t>(std::max(0.0, std::floor((x0 - gx - g.code_size) / g.pitch)));
    const auto c1 = static_cast<std::int64_t>(std::min<double>(g.columns, std::ceil((x1 - gx) / g.pitch) + 1));
    const auto r0 = static_cast<std::int64_t>(std::max(0.0, std::floor((y0 - gy - g.code_size) / g.pitch)));
    const auto r1 = static_cast<std::int64_t>(std::min<double>(static_cast<double>(g.rows), std::ceil((y1 - gy) / g.pitch) + 1));
    for (std::int64_t r = r0; r < r1; ++r)
      for (std::int64_t c = c0; c < c1; ++c)
        add(static_cast<double>(g.cell_x(static_cast<std::uint32_t>(c))), static_cast<double>(g.cell_y(static_cast<std::uint64_t>(r))),
            g.code_size);
  }
  for (int strip = 0; strip < 2; ++strip)
    for (std::uint32_t i = 0; i < g.header_copies; ++i)
      add(static_cast<double>(g.header_x(strip, i)), static_cast<double>(g.header_y(strip)), plate::header_size);
  return out;
}

posed_tile register_tile(sim::gray_image image, const scan_tile& tile, double pixel_nm, const plate::plate_geometry& g,
                         const registration_options& o)
{
  posed_tile t;
  t.file = tile.file;
  t.nominal_x_nm = tile.x_nm;
  t.nominal_y_nm = tile.y_nm;
  t.image = std::move(image);
  build_integral(t.image, t.integral);
  const double m = g.module_nm / pixel_nm;
  t.module_px = m;
  // Nominal pose: module X at pixel (X * module_nm - x_nm) / pixel_nm.
  t.to_pixel.a[0] = -tile.x_nm / pixel_nm;
  t.to_pixel.a[1] = m;
  t.to_pixel.a[2] = 0;
  t.to_pixel.a[3] = -tile.y_nm / pixel_nm;
  t.to_pixel.a[4] = 0;
  t.to_pixel.a[5] = m;
  t.to_pixel.inverse(t.to_plate);
  const core::integral_view iv = t.integral_image();
  t.contrast = estimate_contrast(iv, m);
  if (!(t.contrast > 0) || m < 1.0) return t;

  const double w = t.image.width, h = t.image.height;
  const double search = o.search_um * 1000.0 / g.module_nm + 2.0;
  const double tx0 = tile.x_nm / g.module_nm, ty0 = tile.y_nm / g.module_nm;
  const double tx1 = tx0 + w / m, ty1 = ty0 + h / m;
  const finder_index index(expected_finders(g, tx0 - search, ty0 - search, tx1 + search, ty1 + search));
  if (index.points().empty()) return t;
  const double cx = 0.5 * (tx0 + tx1), cy = 0.5 * (ty0 + ty1);
  const double half_diag = 0.5 * std::hypot(tx1 - tx0, ty1 - ty0);
  const double rot_step = std::min(0.5 * pi / 180, 0.5 / std::max(half_diag, 1.0));
  const int rot_steps = static_cast<int>(std::ceil(o.max_rotation_deg * pi / 180 / rot_step));

  int best_sign = 0;
  std::vector<finder_detection> best_dets;
  std::vector<std::pair<std::size_t, long>> best_pairs;
  pose_guess best_guess;
  for (int sign : {1, -1}) {
    std::vector<finder_detection> dets = detect_finders(iv, m, 0.3 * t.contrast, sign);
    if (dets.empty()) continue;
    // Keep the detections near the strongest: real finders answer alike (the median of the top
    // five, robust to a stray), while data that half-resembles a finder (dense version-11 header
    // codes do) answers at half strength or less. The percentile contrast alone is no yardstick:
    // noise inflates it on dark, noisy scans, and a nearly empty tile deflates it.
    {
      std::vector<float> top;
      for (std::size_t i = 0; i < dets.size() && i < 5; ++i) top.push_back(dets[i].response);  // sorted strongest first
      std::nth_element(top.begin(), top.begin() + static_cast<long>(top.size() / 2), top.end());
      const float floor_response = 0.6f * top[top.size() / 2];
      dets.erase(std::remove_if(dets.begin(), dets.end(), [&](const finder_detection& d) { return d.response < floor_response; }),
                 dets.end());
    }
    // Nominal plate coordinates of the detections.
    std::vector<std::pair<double, double>> p(dets.size());
    for (std::size_t i = 0; i < dets.size(); ++i) t.to_plate.apply(dets[i].u, dets[i].v, p[i].first, p[i].second);
    // Vote: every (detection, expected finder within the search radius) pair proposes a shift.
    pose_guess guess;
    const double search2 = search * search;
    for (int ri = -rot_steps; ri <= rot_steps; ++ri) {
      const double a = ri * rot_step, ca = std::cos(a), sa = std::sin(a);
      std::unordered_map<std::uint64_t, int> votes;
      for (const auto& q0 : p) {
        const double qx = cx + ca * (q0.first - cx) - sa * (q0.second - cy);
        const double qy = cy + sa * (q0.first - cx) + ca * (q0.second - cy);
        for (const auto& e : index.points()) {
          const double sx = e.first - qx, sy = e.second - qy;
          if (sx * sx + sy * sy > search2) continue;
          ++votes[cell_key(static_cast<std::int64_t>(std::floor(sx)), static_cast<std::int64_t>(std::floor(sy)))];
        }
      }
      for (const auto& [key, n] : votes) {
        const auto kx = static_cast<std::int32_t>(key >> 32), ky = static_cast<std::int32_t>(key & 0xffffffffu);
        // A shift on a bin edge splits its votes: score 2x2 bins together.
        int score = n;
        for (const auto& [dx, dy] : {std::pair<int, int>{1, 0}, {0, 1}, {1, 1}}) {
          const auto it = votes.find(cell_key(kx + dx, ky + dy));
          if (it != votes.end()) score += it->second;
        }
        const double sx = kx + 1.0, sy = ky + 1.0;
        // Lattice shifts score alike (within noise): the nearer to nominal wins those.
        const int slack = std::max(2, guess.score / 10);
        const bool better = score > guess.score + slack ||
                            (score >= guess.score - slack &&
                             sx * sx + sy * sy < guess.sx * guess.sx + guess.sy * guess.sy - 1.0);
        if (guess.score < 0 || better) guess = {score, a, sx, sy};
      }
    }
    // Pairs under the guess.
    std::vector<std::pair<std::size_t, long>> pairs;
    const double ca = std::cos(guess.rotation), sa = std::sin(guess.rotation);
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double qx = cx + ca * (p[i].first - cx) - sa * (p[i].second - cy) + guess.sx;
      const double qy = cy + sa * (p[i].first - cx) + ca * (p[i].second - cy) + guess.sy;
      const long e = index.nearest(qx, qy, 2.0);
      if (e >= 0) pairs.emplace_back(i, e);
    }
    if (pairs.size() > best_pairs.size()) {
      best_sign = sign;
      best_dets = std::move(dets);
      best_pairs = std::move(pairs);
      best_guess = guess;
    }
  }
  if (best_sign == 0 || best_pairs.empty()) return t;
  t.polarity = best_sign;
  t.finders = static_cast<int>(best_dets.size());
  t.rotation_deg = best_guess.rotation * 180 / pi;

  // Seed: the nominal map, rotated about the tile centre and shifted by the vote.
  {
    const double ca = std::cos(best_guess.rotation), sa = std::sin(best_guess.rotation);
    // plate = c + R (nominal(u, v) - c) + s
    core::affine_map plate = t.to_plate;
    core::affine_map seeded;
    seeded.a[1] = ca * plate.a[1] - sa * plate.a[4];
    seeded.a[2] = ca * plate.a[2] - sa * plate.a[5];
    seeded.a[0] = cx + ca * (plate.a[0] - cx) - sa * (plate.a[3] - cy) + best_guess.sx;
    seeded.a[4] = sa * plate.a[1] + ca * plate.a[4];
    seeded.a[5] = sa * plate.a[2] + ca * plate.a[5];
    seeded.a[3] = cy + sa * (plate.a[0] - cx) + ca * (plate.a[3] - cy) + best_guess.sy;
    t.to_plate = seeded;
    t.to_plate.inverse(t.to_pixel);
  }
  // Iterated least squares over the matched finders; the tolerance tightens as the fit improves.
  std::vector<double> ex, ey, du, dv;
  int matched = static_cast<int>(best_pairs.size());
  for (double tolerance : {2.0, 1.2, 0.8, 0.8}) {
    ex.clear(), ey.clear(), du.clear(), dv.clear();
    for (const finder_detection& d : best_dets) {
      double x, y;
      t.to_plate.apply(d.u, d.v, x, y);
      const long e = index.nearest(x, y, tolerance);
      if (e < 0) continue;
      ex.push_back(index.points()[static_cast<std::size_t>(e)].first);
      ey.push_back(index.points()[static_cast<std::size_t>(e)].second);
      du.push_back(d.u);
      dv.push_back(d.v);
    }
    core::affine_map fitted;
    if (ex.size() < 3 || !core::fit_affine(ex.data(), ey.data(), du.data(), dv.data(), nullptr, static_cast<int>(ex.size()), fitted))
      break;
    // An affine map far from a similarity (a few finders on a line) is not trusted.
    const double sxs = std::hypot(fitted.a[1], fitted.a[4]), sys = std::hypot(fitted.a[2], fitted.a[5]);
    if (std::fabs(sxs / m - 1) > 0.05 || std::fabs(sys / m - 1) > 0.05) break;
    core::affine_map inv;
    if (!fitted.inverse(inv)) break;
    t.to_pixel = fitted;
    t.to_plate = inv;
    matched = static_cast<int>(ex.size());
  }
  double sse = 0;
  for (std::size_t i = 0; i < ex.size(); ++i) {
    double u, v;
    t.to_pixel.apply(ex[i], ey[i], u, v);
    sse += (u - du[i]) * (u - du[i]) + (v - dv[i]) * (v - dv[i]);
  }
  t.rms_px = ex.empty() ? 0 : std::sqrt(sse / static_cast<double>(ex.size()));
  t.matched = matched;
  double px, py;
  t.to_plate.apply(0, 0, px, py);
  t.shift_modules[0] = px - tx0;
  t.shift_modules[1] = py - ty0;
  t.registered = matched >= 2;
  return t;
}

}  // namespace qrplate::scan
