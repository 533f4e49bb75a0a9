#include "scan/tile_registration.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <unordered_map>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "qrplate/core/anchor_confirm.hpp"
#include "qrplate/core/pose_vote.hpp"
#include "qrplate/core/tile_passes.hpp"
#include "qrplate/error.hpp"
#if QRPLATE_WITH_CUDA
#include "cuda/tile_passes_cuda.hpp"
#endif

namespace qrplate::scan {
namespace {

constexpr double pi = 3.14159265358979323846;


struct pose_guess {
  int score = -1;
  double value = -1e300;  // score less the prior's penalty
  double rotation = 0;  // radians
  double sx = 0, sy = 0;  // shift, modules
};

// A registration's vote lists, kept by each thread between tiles (register_tile).
struct vote_scratch {
  std::vector<std::pair<double, double>> reachable;
  std::vector<pose_guess> guesses;
  std::vector<int> votes;
  std::vector<std::uint32_t> touched;
};

// An expected anchor of the plate's lattice: a finder or an alignment pattern centre (modules).
using anchor_point = core::expected_anchor;

// A confirmed anchor: its plate position and where the tile shows it.
struct anchor_pair {
  double x, y, u, v;
};

struct fitted_pose {
  bool ok = false;
  core::affine_map to_pixel, to_plate;
  int finders_matched = 0;
  int confirmed = 0;
  int predicted = 0;    // anchors the pose puts inside the tile (confirmed or not)
  int unexplained = 0;  // strong finder detections the pose puts nowhere near an expected finder
  std::vector<anchor_pair> pairs;
  double sx = 0, sy = 0;  // the proposal's shift (modules), for the prior
};

core::affine_map fit_rigid(const std::vector<double>& ex, const std::vector<double>& ey, const std::vector<double>& du,
                           const std::vector<double>& dv, double m);
core::affine_map fit_pose(const std::vector<double>& ex, const std::vector<double>& ey, const std::vector<double>& du,
                          const std::vector<double>& dv, double m);

// The nominal map rotated about (cx, cy) and shifted by the guess, refined by least squares over
// the finder detections it matches (tolerance tightening from 2 modules to 0.8).
fitted_pose fit_to_finders(const core::affine_map& nominal_plate, double cx, double cy, const pose_guess& gu,
                           const std::vector<finder_detection>& dets, const finder_index& index, double m)
{
  fitted_pose f;
  const double ca = std::cos(gu.rotation), sa = std::sin(gu.rotation);
  const core::affine_map& pl = nominal_plate;  // plate = c + R (nominal(u, v) - c) + s
  f.to_plate.a[1] = ca * pl.a[1] - sa * pl.a[4];
  f.to_plate.a[2] = ca * pl.a[2] - sa * pl.a[5];
  f.to_plate.a[0] = cx + ca * (pl.a[0] - cx) - sa * (pl.a[3] - cy) + gu.sx;
  f.to_plate.a[4] = sa * pl.a[1] + ca * pl.a[4];
  f.to_plate.a[5] = sa * pl.a[2] + ca * pl.a[5];
  f.to_plate.a[3] = cy + sa * (pl.a[0] - cx) + ca * (pl.a[3] - cy) + gu.sy;
  if (!f.to_plate.inverse(f.to_pixel)) return f;
  std::vector<double> ex, ey, du, dv;
  for (double tolerance : {2.0, 1.2, 0.8, 0.8}) {
    ex.clear(), ey.clear(), du.clear(), dv.clear();
    for (const finder_detection& d : dets) {
      double x, y;
      f.to_plate.apply(d.u, d.v, x, y);
      const long e = index.nearest(x, y, tolerance);
      if (e < 0) continue;
      ex.push_back(index.points()[static_cast<std::size_t>(e)].first);
      ey.push_back(index.points()[static_cast<std::size_t>(e)].second);
      du.push_back(d.u);
      dv.push_back(d.v);
    }
    if (ex.empty()) break;
    const core::affine_map fitted = fit_pose(ex, ey, du, dv, m);
    core::affine_map inv;
    if (!fitted.inverse(inv)) break;
    f.to_pixel = fitted;
    f.to_plate = inv;
    f.finders_matched = static_cast<int>(ex.size());
  }
  f.ok = f.finders_matched > 0;
  return f;
}

// Counts the anchors the pose puts inside the tile that the tile shows (template response of the
// plate's polarity within a module of the prediction), and keeps them with their measured
// positions.
// The pairs, the confirmed and the predicted count of f from the answers for `anchors`.
void tally_answers(const std::vector<anchor_point>& anchors, const core::anchor_answer* answers, fitted_pose& f)
{
  f.pairs.clear();
  f.confirmed = 0;
  f.predicted = 0;
  for (std::size_t i = 0; i < anchors.size(); ++i) {
    f.predicted += answers[i].predicted;
    if (!answers[i].found) continue;
    ++f.confirmed;
    f.pairs.push_back({anchors[i].x, anchors[i].y, answers[i].u, answers[i].v});
  }
}

#if QRPLATE_WITH_CUDA
// This host thread's GPU passes: their stream and device buffers serve tile after tile. Never
// freed, as the CUDA runtime may be gone before thread-local destructors run at exit; so tiles
// are registered on threads that last (util/lasting_threads.hpp), never on threads made per call.
host::tile_passes_cuda& this_threads_passes()
{
  thread_local host::tile_passes_cuda* const kept = new host::tile_passes_cuda();
  return *kept;
}
#endif

// Under the pose f.to_pixel, the anchors t shows (core::confirm_anchor): on the GPU when
// registration's passes left t there (registration_options::cuda), else on the CPU; the same
// answers either way.
void confirm_anchors(const posed_tile& t, int sign, double m, float min_response, const std::vector<anchor_point>& anchors,
                     fitted_pose& f)
{
  std::vector<core::anchor_answer> answers(anchors.size());
#if QRPLATE_WITH_CUDA
  if (t.device) {
    this_threads_passes().confirm_anchors(*t.device, f.to_pixel, anchors.data(), anchors.size(), m,
                                          static_cast<float>(sign), min_response, answers.data());
    tally_answers(anchors, answers.data(), f);
    return;
  }
#endif
  const core::integral_view iv = t.integral_image();
  const core::pattern_probe<4> finder(iv, m);
  const core::pattern_probe<3> alignment(iv, m);
  for (std::size_t i = 0; i < anchors.size(); ++i)
    answers[i] = core::confirm_anchor(iv, f.to_pixel, anchors[i], m, static_cast<float>(sign), min_response, finder,
                                      alignment);
  tally_answers(anchors, answers.data(), f);
}

#if QRPLATE_WITH_CUDA
// The answers confirm_anchors would give for every fit that is ok, on the GPU in one launch
// (t.device is set): a tile's 8-10 candidate poses would otherwise each cost an upload of the same
// anchors and a round trip. Fit k's answers start at answers[at[k] * anchors.size()] (at[k]: -1
// for a fit that is not ok); tally_answers turns them into the fit's counts.
void confirm_anchors_on_device(const posed_tile& t, int sign, double m, float min_response,
                               const std::vector<anchor_point>& anchors, const std::vector<fitted_pose>& fits,
                               std::vector<core::anchor_answer>& answers, std::vector<long>& at)
{
  std::vector<core::affine_map> poses;
  at.assign(fits.size(), -1);
  for (std::size_t k = 0; k < fits.size(); ++k)
    if (fits[k].ok) at[k] = static_cast<long>(poses.size()), poses.push_back(fits[k].to_pixel);
  answers.resize(anchors.size() * poses.size());
  if (poses.empty()) return;
  this_threads_passes().confirm_anchors(*t.device, poses.data(), poses.size(), anchors.data(), anchors.size(), m,
                                        static_cast<float>(sign), min_response, answers.data());
}
#endif

// The map from plate points (ex, ey) to pixels (du, dv): affine when the points span both axes
// and the fit stays near a similarity (rotation, scale within 5%, the small shear of drift), else
// rigid at the nominal scale. An affine fit to points in a narrow band (one column of a large
// code's alignment patterns at a tile's edge) can pass a loose scale check with a wild shear.
core::affine_map fit_pose(const std::vector<double>& ex, const std::vector<double>& ey, const std::vector<double>& du,
                          const std::vector<double>& dv, double m)
{
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (std::size_t i = 0; i < ex.size(); ++i) x0 = std::min(x0, ex[i]), x1 = std::max(x1, ex[i]), y0 = std::min(y0, ey[i]), y1 = std::max(y1, ey[i]);
  core::affine_map f;
  if (ex.size() >= 3 && x1 - x0 >= 20 && y1 - y0 >= 20 &&
      core::fit_affine(ex.data(), ey.data(), du.data(), dv.data(), nullptr, static_cast<int>(ex.size()), f)) {
    const double sxs = std::hypot(f.a[1], f.a[4]), sys = std::hypot(f.a[2], f.a[5]);
    if (std::fabs(sxs / m - 1) <= 0.05 && std::fabs(sys / m - 1) <= 0.05 && std::fabs(f.a[1] - f.a[5]) <= 0.03 * m &&
        std::fabs(f.a[2] + f.a[4]) <= 0.03 * m)
      return f;
  }
  return fit_rigid(ex, ey, du, dv, m);
}

// Least-squares rotation and shift (scale fixed at m pixels per module) from plate points
// (ex, ey) to pixels (du, dv): 2-D Procrustes. One point gives a shift at the current angle 0.
core::affine_map fit_rigid(const std::vector<double>& ex, const std::vector<double>& ey, const std::vector<double>& du,
                           const std::vector<double>& dv, double m)
{
  const double n = static_cast<double>(ex.size());
  double mx = 0, my = 0, mu = 0, mv = 0;
  for (std::size_t i = 0; i < ex.size(); ++i) mx += ex[i], my += ey[i], mu += du[i], mv += dv[i];
  mx /= n, my /= n, mu /= n, mv /= n;
  double dot = 0, cross = 0;
  for (std::size_t i = 0; i < ex.size(); ++i) {
    const double px = (ex[i] - mx) * m, py = (ey[i] - my) * m, qu = du[i] - mu, qv = dv[i] - mv;
    dot += px * qu + py * qv;
    cross += px * qv - py * qu;
  }
  const double a = ex.size() >= 2 && (dot != 0 || cross != 0) ? std::atan2(cross, dot) : 0.0;
  const double c = std::cos(a) * m, s = std::sin(a) * m;
  core::affine_map f;
  f.a[1] = c, f.a[2] = -s, f.a[4] = s, f.a[5] = c;
  f.a[0] = mu - (c * mx - s * my);
  f.a[3] = mv - (s * mx + c * my);
  return f;
}

// The final map: least squares over the confirmed anchors (affine when they span the tile, rigid
// at the nominal scale when they lie on a line), into t's pose with its residual. Look-alikes
// among the anchors pull a least-squares fit: it is refitted without the worst while one sits
// more than a third of a module (and a pixel) off. False (t unchanged) for a singular fit.
bool settle_pose(posed_tile& t, const std::vector<anchor_pair>& pairs, const core::affine_map& start, double m)
{
  std::vector<double> ex, ey, du, dv;
  for (const auto& c : pairs) ex.push_back(c.x), ey.push_back(c.y), du.push_back(c.u), dv.push_back(c.v);
  core::affine_map fitted = start;
  while (!ex.empty()) {
    fitted = fit_pose(ex, ey, du, dv, m);
    std::size_t worst = ex.size();
    double worst_d = std::max(1.0, m / 3);
    for (std::size_t i = 0; i < ex.size(); ++i) {
      double u, v;
      fitted.apply(ex[i], ey[i], u, v);
      const double d = std::hypot(u - du[i], v - dv[i]);
      if (d > worst_d) worst_d = d, worst = i;
    }
    if (worst == ex.size() || ex.size() <= 2) break;
    ex.erase(ex.begin() + static_cast<long>(worst)), ey.erase(ey.begin() + static_cast<long>(worst));
    du.erase(du.begin() + static_cast<long>(worst)), dv.erase(dv.begin() + static_cast<long>(worst));
  }
  core::affine_map inv;
  if (!fitted.inverse(inv)) return false;
  t.to_pixel = fitted;
  t.to_plate = inv;
  double sse = 0;
  for (std::size_t i = 0; i < ex.size(); ++i) {
    double u, v;
    t.to_pixel.apply(ex[i], ey[i], u, v);
    sse += (u - du[i]) * (u - du[i]) + (v - dv[i]) * (v - dv[i]);
  }
  t.rms_px = ex.empty() ? 0 : std::sqrt(sse / static_cast<double>(ex.size()));
  return true;
}

}  // namespace

core::integral_view posed_tile::integral_image() const
{
  std::lock_guard<std::mutex> lock(*integral_mutex);
  if (!integral_on_host) {
    if (build_integral(image, module_px, integral) != integral_shift)
      throw std::logic_error("posed_tile: the host integral's shift is not the device's (a bug in qrplate)");
    integral_on_host = true;
  }
  return {integral.data(), static_cast<int>(image.width), static_cast<int>(image.height), integral_shift};
}

void posed_tile::shift_on_plate(double dx, double dy)
{
  to_pixel = to_pixel.shifted(-dx, -dy);
  to_pixel.inverse(to_plate);
}

int integral_shift(int bits, double module_px)
{
  // The largest box summed: the finder template's (9 modules, a pixel either side).
  const double side = 2.0 * core::round_to_int(4.5 * std::max(module_px, 1.0)) + 2;
  const double top = bits == 8 ? 255.0 : 65535.0;
  int shift = 0;
  while (shift < 16 && side * side * std::floor(top / (1u << shift)) >= 4294967296.0) ++shift;
  return shift;
}

namespace {

// Row y + 1 of the table from row y (above) and the image's row p: here[x + 1] = above[x + 1] +
// row + the sum of p[0..x] >> shift, modulo 2^32 (see core::integral_view); row: the sum before
// p[0] (0 for a whole row). here[0] is the caller's.
void integral_row_reference(const std::uint16_t* p, const std::uint32_t* above, std::uint32_t* here, std::size_t w,
                            int shift, std::uint32_t row = 0)
{
  for (std::size_t x = 0; x < w; ++x) {
    row += static_cast<std::uint32_t>(p[x] >> shift);
    here[x + 1] = above[x + 1] + row;
  }
}

// The same, eight pixels at a time: each half's four running sums in two shifted adds, the sum
// before them (carry, in every lane) added, the row above added.
void integral_row(const std::uint16_t* p, const std::uint32_t* above, std::uint32_t* here, std::size_t w, int shift)
{
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128(), count = _mm_cvtsi32_si128(shift);
  __m128i carry = zero;
  std::size_t x = 0;
  for (; x + 8 <= w; x += 8) {
    const __m128i px = _mm_srl_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + x)), count);
    __m128i half[2] = {_mm_unpacklo_epi16(px, zero), _mm_unpackhi_epi16(px, zero)};
    for (int k = 0; k < 2; ++k) {
      __m128i v = half[k];
      v = _mm_add_epi32(v, _mm_slli_si128(v, 4));
      v = _mm_add_epi32(v, _mm_slli_si128(v, 8));
      v = _mm_add_epi32(v, carry);
      carry = _mm_shuffle_epi32(v, 0xff);  // lane 3 everywhere
      const std::size_t at = x + 1 + 4 * static_cast<std::size_t>(k);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(here + at),
                       _mm_add_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(above + at)), v));
    }
  }
  // The last pixels, by the reference, from the running sum.
  integral_row_reference(p + x, above + x, here + x, w - x, shift, static_cast<std::uint32_t>(_mm_cvtsi128_si32(carry)));
#else
  integral_row_reference(p, above, here, w, shift);
#endif
}

template <class Row>
int build_integral_by(const sim::gray_image& img, double module_px, std::vector<std::uint32_t>& sums, Row row)
{
  const std::size_t w = img.width, h = img.height, w1 = w + 1;
  const int shift = integral_shift(img.bits, module_px);
  // Every entry is written below: a recycled buffer of the right size is not cleared first.
  if (sums.size() != w1 * (h + 1)) sums.resize(w1 * (h + 1));
  std::fill(sums.begin(), sums.begin() + static_cast<long>(w1), 0u);
  for (std::size_t y = 0; y < h; ++y) {
    std::uint32_t* here = sums.data() + (y + 1) * w1;
    here[0] = 0;
    row(img.pixels.data() + y * w, sums.data() + y * w1, here, w, shift);
  }
  return shift;
}

}  // namespace

int build_integral(const sim::gray_image& img, double module_px, std::vector<std::uint32_t>& sums)
{
  return build_integral_by(img, module_px, sums, integral_row);
}

int build_integral_reference(const sim::gray_image& img, double module_px, std::vector<std::uint32_t>& sums)
{
  return build_integral_by(img, module_px, sums,
                           [](const std::uint16_t* p, const std::uint32_t* above, std::uint32_t* here, std::size_t w,
                              int shift) { integral_row_reference(p, above, here, w, shift); });
}

double estimate_contrast(const core::integral_view& iv, double m)
{
  // Module-sized box means in a histogram of whole image units (the pixels are 16-bit): two
  // percentiles in one pass over it, where sorting the means cost ~4% of a decode. The histogram
  // (256 KiB) is this thread's, kept between tiles: a fresh one is fresh pages, which the kernel
  // zeroes page by page on first touch.
  const core::contrast_grid grid = core::contrast_grid::make(iv, m);
  thread_local std::vector<std::uint32_t> histogram;
  histogram.assign(core::contrast_histogram_bins, 0);
  for (int j = 0; j < grid.rows; ++j)
    for (int i = 0; i < grid.columns; ++i) ++histogram[static_cast<std::size_t>(grid.bin(iv, i, j))];
  return core::contrast_from_histogram(histogram.data(), grid.boxes());
}

namespace {

// The finder template's response at every half-module step of the tile (core::finder_scan_plan:
// core::finder_response with its rounding and clipping hoisted out), kept where it passes
// min_response with the sign asked (+1 or -1; 0: both, into out[0] for + and out[1] for -), in
// row-major order. The scan over the whole tile is most of registration's time, so both signs
// come from one pass.
void scan_finder_responses(const core::integral_view& iv, double m, double min_response, int sign,
                           std::vector<finder_detection> out[2])
{
  const core::finder_scan_plan plan = core::finder_scan_plan::make(iv, m);
  const auto threshold = static_cast<float>(min_response);
  for (int j = 0; j < plan.rows; ++j) {
    const std::uint32_t* rows[8];
    plan.rows_of(iv, j, rows);
    for (int i = 0; i < plan.columns; ++i) {
      const float r = plan.response_in_row(rows, i);
      const double x = plan.x(i), y = plan.y(j);
      if (sign >= 0 && r >= threshold) out[0].push_back({x, y, r});
      if (sign <= 0 && -r >= threshold) out[1].push_back({x, y, -r});
    }
  }
}

// Non-maximum suppression of one sign's candidates (strongest first, nothing else within 3.5
// modules), each survivor refined to the best whole pixel nearby and a parabola through its
// neighbours; strongest first.
std::vector<finder_detection> suppress_and_refine(const posed_tile& t, double m, int sign,
                                                  std::vector<finder_detection> candidates)
{
  std::vector<finder_detection> found;
  std::sort(candidates.begin(), candidates.end(),
            [](const finder_detection& a, const finder_detection& b) { return a.response > b.response; });
  const double radius = 3.5 * m;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> taken;
  auto cell = [&](double v) { return static_cast<std::int64_t>(std::floor(v / radius)); };
  for (const finder_detection& c : candidates) {
    bool near = false;
    for (std::int64_t dy = -1; dy <= 1 && !near; ++dy)
      for (std::int64_t dx = -1; dx <= 1 && !near; ++dx) {
        const auto it = taken.find(plane_key(cell(c.u) + dx, cell(c.v) + dy));
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
    taken[plane_key(cell(c.u), cell(c.v))].push_back(static_cast<std::uint32_t>(found.size()));
    found.push_back(c);
  }
  const int step = std::max(1, static_cast<int>(std::lround(m / 2)));
#if QRPLATE_WITH_CUDA
  if (t.device) {
    // The same climb on the GPU, where registration left the tile's integral image.
    std::vector<double> uv(2 * found.size());
    std::vector<float> responses(found.size());
    for (std::size_t i = 0; i < found.size(); ++i) uv[2 * i] = found[i].u, uv[2 * i + 1] = found[i].v, responses[i] = found[i].response;
    this_threads_passes().refine_detections(*t.device, m, sign, step, uv.data(), responses.data(), found.size());
    for (std::size_t i = 0; i < found.size(); ++i) found[i].u = uv[2 * i], found[i].v = uv[2 * i + 1], found[i].response = responses[i];
  } else
#endif
  {
    const auto s = static_cast<float>(sign);
    const core::pattern_probe<4> probe(t.integral_image(), m);
    for (finder_detection& f : found)
      find_anchor([&](int px, int py) { return s * probe(px, py); }, f.u, f.v, step,
                  -std::numeric_limits<float>::infinity(), &f.response);
  }
  std::sort(found.begin(), found.end(), [](const finder_detection& a, const finder_detection& b) { return a.response > b.response; });
  return found;
}

}  // namespace

namespace {

// Finder and alignment pattern centres of every code (data grid and header codes) with its
// top-left module in or near [x0, x1) x [y0, y1).
std::vector<anchor_point> expected_anchors(const plate::plate_geometry& g, double x0, double y0, double x1, double y1)
{
  std::vector<anchor_point> out;
  auto add = [&](double cx, double cy, int version) {
    const int size = spec::symbol_size(version);
    if (cx + size < x0 || cy + size < y0 || cx >= x1 || cy >= y1) return;
    auto put = [&](double x, double y, bool finder) {
      if (x >= x0 && x < x1 && y >= y0 && y < y1) out.push_back({x, y, finder});
    };
    put(cx + 3.5, cy + 3.5, true);
    put(cx + size - 3.5, cy + 3.5, true);
    put(cx + 3.5, cy + size - 3.5, true);
    std::uint8_t pos[spec::max_alignment_positions];
    const int na = spec::alignment_positions(version, pos);
    for (int i = 0; i < na; ++i)
      for (int j = 0; j < na; ++j) {
        const bool on_finder = (i == 0 && j == 0) || (i == 0 && j == na - 1) || (i == na - 1 && j == 0);
        if (!on_finder) put(cx + pos[j] + 0.5, cy + pos[i] + 0.5, false);
      }
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
            g.version);
  }
  for (int strip = 0; strip < 2; ++strip)
    for (std::uint32_t i = 0; i < g.header_copies; ++i)
      add(static_cast<double>(g.header_x(strip, i)), static_cast<double>(g.header_y(strip)), plate::header_version);
  return out;
}

}  // namespace

std::vector<std::pair<double, double>> expected_finders(const plate::plate_geometry& g, double x0, double y0, double x1,
                                                        double y1)
{
  std::vector<std::pair<double, double>> out;
  for (const anchor_point& a : expected_anchors(g, x0, y0, x1, y1))
    if (a.finder) out.emplace_back(a.x, a.y);
  return out;
}

void sort_in_loop_order(std::vector<core::pose_vote_entry>& entries)
{
  std::sort(entries.begin(), entries.end(), [](const core::pose_vote_entry& a, const core::pose_vote_entry& b) {
    return a.rotation != b.rotation ? a.rotation < b.rotation : a.first_pair < b.first_pair;
  });
}

double keep_proposals_worth_checking(std::vector<core::pose_vote_entry>& entries)
{
  if (entries.empty()) return 0;
  const core::pose_vote_entry* best = &entries.front();
  for (const core::pose_vote_entry& e : entries)
    if (core::better_proposal(e, *best)) best = &e;
  const double cutoff = core::proposal_cutoff(*best);
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [&](const core::pose_vote_entry& e) { return e.value < cutoff; }),
                entries.end());
  sort_in_loop_order(entries);
  return cutoff;
}

namespace {

// The passes over every pixel that the code reads need too: the integral image and (unless
// `contrast` is false: a tile whose contrast is known) the contrast; with o.cuda both on the
// device in one pass, where the tile stays for the GPU reads. False: no contrast, or modules under
// a pixel.
bool pixel_passes(posed_tile& t, const registration_options& o, bool contrast = true)
{
  const double m = t.module_px;
  if (!o.cuda) {
    t.integral_shift = build_integral(t.image, m, t.integral);
    if (contrast) t.contrast = estimate_contrast(t.integral_image(), m);
    return t.contrast > 0 && m >= 1.0;
  }
#if QRPLATE_WITH_CUDA
  host::tile_passes_cuda& gpu = this_threads_passes();
  t.integral_shift = integral_shift(t.image.bits, m);
  // The integral image stays on the device; the host builds its own only if a CPU path needs it.
  const std::uint64_t sent = gpu.uploaded_bytes(), staged = gpu.staged_bytes();
  // An 8-bit file's bytes, where the reader kept them (read_gray_image's keep_bytes), go up as
  // they are; the device widens them. The caller may recycle them after (the scan reader does).
  const bool have_bytes = !t.image.bytes.empty() && t.image.bytes.size() == t.image.pixels.size();
  t.contrast = gpu.integral_and_contrast(t.image.pixels.data(), static_cast<int>(t.image.width),
                                         static_cast<int>(t.image.height), t.integral_shift, m, nullptr,
                                         have_bytes ? t.image.bytes.data() : nullptr);
  t.uploaded_bytes += gpu.uploaded_bytes() - sent;
  t.uploaded_staged += gpu.staged_bytes() - staged;
  t.uploaded_samples += static_cast<std::uint64_t>(t.image.width) * t.image.height;
  if (have_bytes) t.uploaded_as_read += static_cast<std::uint64_t>(t.image.width) * t.image.height;
  t.integral_on_host = false;
  t.device = gpu.keep_tile();  // the scan reader's GPU reads use it: no second upload
  return t.contrast > 0 && m >= 1.0;
#else
  throw backend_unavailable("backend cuda: this qrplate was built without CUDA");
#endif
}

// A tile's fields from its scan.json entry, its pixels and the integral's storage, at its
// nominal pose: module X at pixel (X * module_nm - x_nm) / pixel_nm.
posed_tile nominal_tile(sim::gray_image image, const scan_tile& tile, double pixel_nm, const plate::plate_geometry& g,
                        std::vector<std::uint32_t> integral_buffer)
{
  posed_tile t;
  t.file = tile.file;
  t.nominal_x_nm = tile.x_nm;
  t.nominal_y_nm = tile.y_nm;
  t.image = std::move(image);
  t.integral = std::move(integral_buffer);
  const double m = g.module_nm / pixel_nm;
  t.module_px = m;
  t.to_pixel.a[0] = -tile.x_nm / pixel_nm;
  t.to_pixel.a[1] = m;
  t.to_pixel.a[2] = 0;
  t.to_pixel.a[3] = -tile.y_nm / pixel_nm;
  t.to_pixel.a[4] = 0;
  t.to_pixel.a[5] = m;
  t.to_pixel.inverse(t.to_plate);
  return t;
}

}  // namespace

bool tile_passes(posed_tile& t, const registration_options& o, std::vector<finder_detection> dets[2])
{
  const double m = t.module_px;
  dets[0].clear();
  dets[1].clear();
  if (!pixel_passes(t, o)) return false;
  if (!o.cuda) {
    scan_finder_responses(t.integral_image(), m, 0.3 * t.contrast, o.polarity, dets);
  } else {
#if QRPLATE_WITH_CUDA
    host::tile_passes_cuda& gpu = this_threads_passes();
    std::vector<std::uint32_t> positions[2];
    std::vector<float> responses[2];
    gpu.finder_candidates(m, static_cast<float>(0.3 * t.contrast), o.polarity, positions, responses);
    // The candidates as the CPU scan lists them (row-major), responses from the same integral.
    const core::integral_view dims{nullptr, static_cast<int>(t.image.width), static_cast<int>(t.image.height),
                                   t.integral_shift};
    const core::finder_scan_plan plan = core::finder_scan_plan::make(dims, m);
    for (int k = 0; k < 2; ++k)
      for (std::size_t q = 0; q < positions[k].size(); ++q) {
        const std::uint32_t p = positions[k][q];
        const int i = static_cast<int>(p % static_cast<std::uint32_t>(plan.columns));
        const int j = static_cast<int>(p / static_cast<std::uint32_t>(plan.columns));
        const float r = responses[k][q];
        dets[k].push_back({static_cast<double>(plan.x(i)), static_cast<double>(plan.y(j)), k == 0 ? r : -r});
      }
#endif
  }
  return true;
}

tile_pose tile_pose::of(const posed_tile& t)
{
  tile_pose p;
  p.contrast = t.contrast;
  p.polarity = t.polarity;
  p.to_pixel = t.to_pixel, p.to_plate = t.to_plate;
  p.registered = t.registered, p.verified = t.verified, p.stitched = t.stitched;
  p.matched = t.matched, p.confirmed = t.confirmed, p.anchor_search_px = t.anchor_search_px;
  p.rms_px = t.rms_px;
  p.finder_strength = t.finder_strength;
  return p;
}

void tile_pose::put_on(posed_tile& t) const
{
  t.contrast = contrast;
  t.polarity = polarity;
  t.to_pixel = to_pixel, t.to_plate = to_plate;
  t.registered = registered, t.verified = verified, t.stitched = stitched;
  t.matched = matched, t.confirmed = confirmed, t.anchor_search_px = anchor_search_px;
  t.rms_px = rms_px;
  t.finder_strength = finder_strength;
}

posed_tile restore_tile(sim::gray_image image, const scan_tile& tile, const tile_pose& pose, double pixel_nm,
                        const plate::plate_geometry& g, const registration_options& o,
                        std::vector<std::uint32_t> integral_buffer)
{
  posed_tile t = nominal_tile(std::move(image), tile, pixel_nm, g, std::move(integral_buffer));
  pose.put_on(t);
  pixel_passes(t, o, false);  // (with CUDA the device's pass finds the contrast again: the same pixels)
  t.contrast = pose.contrast;
  t.pose_kept = true;
  return t;
}

posed_tile register_tile(sim::gray_image image, const scan_tile& tile, double pixel_nm, const plate::plate_geometry& g,
                         const registration_options& o, std::vector<std::uint32_t> integral_buffer)
{
  posed_tile t = nominal_tile(std::move(image), tile, pixel_nm, g, std::move(integral_buffer));
  const double m = t.module_px;
  std::vector<finder_detection> signed_dets[2];
  if (!tile_passes(t, o, signed_dets)) return t;

  const double w = t.image.width, h = t.image.height;
  const double search = o.search_um * 1000.0 / g.module_nm + 2.0;
  const double prior_modules = std::max(4.0, 0.5 * search);  // a shift this far costs one vote
  const double tx0 = tile.x_nm / g.module_nm, ty0 = tile.y_nm / g.module_nm;
  const double tx1 = tx0 + w / m, ty1 = ty0 + h / m;
  const finder_index index(expected_finders(g, tx0 - search, ty0 - search, tx1 + search, ty1 + search));
  if (index.points().empty()) return t;
  const double cx = 0.5 * (tx0 + tx1), cy = 0.5 * (ty0 + ty1);
  const double half_diag = 0.5 * std::hypot(tx1 - tx0, ty1 - ty0);
  const double rot_step = std::min(0.5 * pi / 180, 0.5 / std::max(half_diag, 1.0));
  const int rot_steps = static_cast<int>(std::ceil(o.max_rotation_deg * pi / 180 / rot_step));

  // Polarity: real finders answer with the full contrast, data that half-resembles a finder (of
  // either sign) with half of it or less, so the sign whose strongest detections are stronger
  // is the plate's. Counting matches instead would let dozens of weak inverted look-alikes in a
  // data region outvote a handful of real finders.
  // A scan's polarity is one for all its tiles: once known it is not asked of a tile that holds
  // a single real finder (its second strongest detection is then a look-alike of either sign),
  // and only that sign is looked for.
  float strength[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    if (o.polarity != 0 && k != (o.polarity > 0 ? 0 : 1)) continue;
    signed_dets[k] = suppress_and_refine(t, m, k == 0 ? 1 : -1, std::move(signed_dets[k]));
    // The second strongest: robust to one stray, and a tile at the edge of the codes may hold
    // only two real finders.
    const std::vector<finder_detection>& d = signed_dets[k];
    if (!d.empty()) strength[k] = d[std::min<std::size_t>(1, d.size() - 1)].response;  // strongest first
  }
  const int k = o.polarity != 0 ? (o.polarity > 0 ? 0 : 1) : (strength[0] >= strength[1] ? 0 : 1);
  if (!(strength[k] > 0)) return t;
  const int sign = k == 0 ? 1 : -1;
  std::vector<finder_detection> dets = std::move(signed_dets[k]);
  // Keep the detections near the strongest: real finders answer alike, while data that
  // half-resembles a finder (dense version-11 header codes do) answers at half strength or less.
  // The percentile contrast alone is no yardstick: noise inflates it on dark, noisy scans, and a
  // nearly empty tile deflates it.
  // A tile holding a single real finder (a sliver at the plate's edge, or the corner of a large
  // code) has a look-alike for its second strongest detection: once the scan's finder strength
  // is known, the tile's own strongest detection, up to that, is the yardstick instead. Else
  // dozens of look-alikes pass the floor, each votes for its own shift, and the right pose may
  // never be proposed.
  float reference = strength[k];
  if (o.finder_strength > 0) reference = std::max(reference, std::min(o.finder_strength, dets.front().response));
  const float floor_response = 0.6f * reference;
  dets.erase(std::remove_if(dets.begin(), dets.end(), [&](const finder_detection& d) { return d.response < floor_response; }),
             dets.end());
  t.polarity = sign;
  t.finder_strength = reference;

  // Vote: every (detection, expected finder within the search radius) pair proposes a shift,
  // for each rotation; the best few (rotation, shift) proposals go on to be checked.
  std::vector<std::pair<double, double>> p(dets.size());
  for (std::size_t i = 0; i < dets.size(); ++i) t.to_plate.apply(dets[i].u, dets[i].v, p[i].first, p[i].second);
  // The expected finders each detection can reach at some rotation (a rotation about the tile's
  // centre moves it by at most max_rotation x its distance from the centre).
  const double search2 = search * search;
  const double max_angle = rot_steps * rot_step;
  // The vote's lists are this thread's, kept between tiles: a 1-Mpixel tile's CPU vote lists
  // ~20,000 proposals (~0.8 MB), its grid ~45,000 bins and the reachable finders as many pairs,
  // and fresh vectors of that size are fresh pages each tile (a quarter of a CPU registration
  // went to the page faults of these and of the contrast's histogram before).
  thread_local vote_scratch scratch;
  std::vector<std::size_t> reach_begin(p.size() + 1, 0);
  std::vector<std::pair<double, double>>& reachable = scratch.reachable;
  reachable.clear();
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double r = search + max_angle * std::hypot(p[i].first - cx, p[i].second - cy) + 1;
    for (const auto& e : index.points()) {
      const double dx = e.first - p[i].first, dy = e.second - p[i].second;
      if (dx * dx + dy * dy <= r * r) reachable.push_back(e);
    }
    reach_begin[i + 1] = reachable.size();
  }
  // Votes in a dense grid of 1-module shift bins (core/pose_vote.hpp), cleared bin by bin after
  // each rotation. When registration runs on the GPU (the tile was kept there), two launches vote
  // every rotation there and two more keep the proposals worth checking (below); only those come
  // back, and are put in the order this loop lists them.
  core::pose_vote_grid grid;
  grid.cx = cx, grid.cy = cy, grid.search2 = search2, grid.prior_modules = prior_modules;
  grid.bins_half = static_cast<int>(std::ceil(search)) + 1;
  grid.bins_side = 2 * grid.bins_half + 2;  // one spare row and column for the 2x2 scores
  std::vector<pose_guess>& guesses = scratch.guesses;
  guesses.clear();
  // The proposals worth checking are those within reach of the best (see below): `cutoff`, from
  // the first proposal of the highest value in the CPU loop's order.
  double cutoff = 0;
#if QRPLATE_WITH_CUDA
  // The GPU holds a vote grid per rotation at once (8 bytes a bin): up to 32 M bins of them, so a
  // search radius far beyond the default votes on the CPU.
  constexpr std::size_t max_gpu_vote_bins = std::size_t{1} << 25;
  if (t.device && grid.bins() * static_cast<std::size_t>(2 * rot_steps + 1) <= max_gpu_vote_bins) {
    std::vector<double> turns;  // (cos, sin) per rotation, the host's libm: the CPU loop's values
    for (int ri = -rot_steps; ri <= rot_steps; ++ri) {
      const double a = ri * rot_step;
      turns.push_back(std::cos(a));
      turns.push_back(std::sin(a));
    }
    std::vector<double> points, finders;
    std::vector<std::uint32_t> owner;
    for (std::size_t i = 0; i < p.size(); ++i) {
      points.push_back(p[i].first), points.push_back(p[i].second);
      for (std::size_t j = reach_begin[i]; j < reach_begin[i + 1]; ++j) owner.push_back(static_cast<std::uint32_t>(i));
    }
    for (const auto& e : reachable) finders.push_back(e.first), finders.push_back(e.second);
    std::vector<core::pose_vote_entry> entries;
    cutoff = this_threads_passes().proposals_worth_checking(grid, points.data(), p.size(), finders.data(),
                                                            owner.data(), owner.size(), turns.data(),
                                                            2 * rot_steps + 1, entries);
    if (entries.empty()) return t;
    sort_in_loop_order(entries);
    for (const core::pose_vote_entry& e : entries)
      guesses.push_back({e.score, e.value, (static_cast<int>(e.rotation) - rot_steps) * rot_step, e.sx, e.sy});
  } else
#endif
  {
    std::vector<int>& votes = scratch.votes;
    votes.assign(grid.bins(), 0);
    std::vector<std::uint32_t>& touched = scratch.touched;
    for (int ri = -rot_steps; ri <= rot_steps; ++ri) {
      const double a = ri * rot_step, ca = std::cos(a), sa = std::sin(a);
      touched.clear();
      for (std::size_t i = 0; i < p.size(); ++i) {
        double qx, qy;
        grid.turn(p[i].first, p[i].second, ca, sa, qx, qy);
        for (std::size_t j = reach_begin[i]; j < reach_begin[i + 1]; ++j) {
          std::uint32_t bin;
          if (!grid.bin_of(qx, qy, reachable[j].first, reachable[j].second, bin)) continue;
          if (votes[bin]++ == 0) touched.push_back(bin);
        }
      }
      // A prior on the stage error: a far shift must earn its distance in votes.
      for (std::uint32_t bin : touched) {
        pose_guess guess;
        grid.proposal(votes.data(), bin, guess.score, guess.sx, guess.sy, guess.value);
        guess.rotation = a;
        guesses.push_back(guess);
      }
      for (std::uint32_t bin : touched) votes[bin] = 0;
    }
    if (guesses.empty()) return t;
    const pose_guess top = *std::max_element(guesses.begin(), guesses.end(),
                                             [](const pose_guess& a, const pose_guess& b) { return a.value < b.value; });
    cutoff = top.value - std::max(3.0, 0.5 * top.score);
  }
  // The proposals worth checking: the best by value, one per place (a shift and its neighbours
  // at the next rotation are one proposal). Only those within reach of the best are sorted.
  guesses.erase(std::remove_if(guesses.begin(), guesses.end(), [&](const pose_guess& gu) { return gu.value < cutoff; }),
                guesses.end());
  std::sort(guesses.begin(), guesses.end(), [](const pose_guess& a, const pose_guess& b) {
    if (a.value != b.value) return a.value > b.value;
    if (a.rotation != b.rotation) return a.rotation < b.rotation;
    return a.sy != b.sy ? a.sy < b.sy : a.sx < b.sx;
  });
  std::vector<pose_guess> shortlist;
  for (const pose_guess& gu : guesses) {
    if (shortlist.size() >= 12) break;
    bool seen = false;
    for (const pose_guess& s2 : shortlist) seen = seen || (std::fabs(s2.sx - gu.sx) <= 2 && std::fabs(s2.sy - gu.sy) <= 2);
    if (!seen) shortlist.push_back(gu);
  }

  // Each proposal is fitted to the finders it matches, then judged by what a pose must explain:
  // the finder AND alignment patterns of every code it puts inside the tile. Large codes leave
  // a tile only two or three finders, which several poses explain, but dozens of alignment
  // patterns, which only the right one does.
  const std::vector<anchor_point> anchors = expected_anchors(g, tx0 - search, ty0 - search, tx1 + search, ty1 + search);
  const core::affine_map nominal_plate = t.to_plate;
  fitted_pose best;
  // On the GPU every proposal is fitted and confirmed up front, in one launch (the loop below may
  // stop early and not use them all: a few thousand threads more, against a round trip each); on
  // the CPU each in turn, only as far as the loop goes.
  std::vector<fitted_pose> fits;
  std::vector<core::anchor_answer> answers;
  std::vector<long> answers_at;
#if QRPLATE_WITH_CUDA
  if (t.device) {
    for (const pose_guess& gu : shortlist) fits.push_back(fit_to_finders(nominal_plate, cx, cy, gu, dets, index, m));
    confirm_anchors_on_device(t, sign, m, 0.5f * reference, anchors, fits, answers, answers_at);
  }
#endif
  for (std::size_t q = 0; q < shortlist.size(); ++q) {
    const pose_guess& gu = shortlist[q];
    const bool ready = q < fits.size();
    fitted_pose f = ready ? std::move(fits[q]) : fit_to_finders(nominal_plate, cx, cy, gu, dets, index, m);
    if (!f.ok) continue;
    if (ready)
      tally_answers(anchors, answers.data() + static_cast<std::size_t>(answers_at[q]) * anchors.size(), f);
    else
      confirm_anchors(t, sign, m, 0.5f * reference, anchors, f);
    // A strong detection the pose leaves without a finder is evidence against it: inside a large
    // code the alignment patterns repeat every ~28 modules, so a pose off by that much confirms as
    // many of them, but it cannot explain the code's real finder.
    f.unexplained = 0;
    for (const finder_detection& d : dets) {
      if (d.response < 0.85f * reference) continue;
      double x, y;
      f.to_plate.apply(d.u, d.v, x, y);
      if (index.nearest(x, y, 1.5) < 0) ++f.unexplained;
    }
    const double f_value = f.confirmed - 5.0 * f.unexplained - (gu.sx * gu.sx + gu.sy * gu.sy) / (prior_modules * prior_modules);
    const double b_value = best.confirmed - 5.0 * best.unexplained - (best.sx * best.sx + best.sy * best.sy) / (prior_modules * prior_modules);
    if (!best.ok || f_value > b_value + 0.5 ||
        (f_value > b_value - 0.5 && gu.sx * gu.sx + gu.sy * gu.sy < best.sx * best.sx + best.sy * best.sy)) {
      best = std::move(f);
      best.sx = gu.sx, best.sy = gu.sy;
    }
    // A pose that shows nearly every anchor it predicts and leaves no strong detection
    // unexplained is not beaten by the weaker proposals after it (a whole-pitch shift of it is
    // the lattice check's business): checking them was a third of registration's time.
    if (best.ok && best.unexplained == 0 && best.confirmed >= 8 && 10 * best.confirmed >= 9 * best.predicted) break;
  }
  if (!best.ok) return t;
  if (!settle_pose(t, best.pairs, best.to_pixel, m)) return t;
  t.matched = best.finders_matched;
  t.confirmed = best.confirmed;
  // Two finders, or one with alignment patterns around it, pin a tile down.
  t.registered = t.matched >= 2 || (t.matched >= 1 && t.confirmed >= 4);
  return t;
}

void sparse_correlations(const stitch_patch& p, double* scores)
{
  // The samples the shifts read, as doubles: the patch's even rows and columns (ad), once; and for
  // each dy, b's at the shifts' offsets, which are all even (reach + dx and reach + dy are), so
  // bd[r][c] = b[reach + dy + 4 r][2 c]: lane k of a set of shifts starting at dx0 reads
  // bd[r][c0 + 2 q + k] for patch sample (2 r, 2 q) (c0 = (reach + dx0) / 2), four neighbours in
  // memory for four lanes.
  const int rows = (p.ph + 1) / 2, columns = (p.pw + 1) / 2;
  const int b_columns = (p.bw + 1) / 2;
  const auto side = static_cast<std::size_t>(p.reach) + 1;
  std::vector<double> ad(static_cast<std::size_t>(rows) * columns), bd(static_cast<std::size_t>(rows) * b_columns);
  for (int r = 0; r < rows; ++r)
    for (int q = 0; q < columns; ++q) ad[static_cast<std::size_t>(r) * columns + q] = p.a[static_cast<std::size_t>(2 * r) * p.pw + 2 * q];
  // outside_before[r][c]: NaN samples in bd[r][0, c), to tell a set of lanes that meets none.
  std::vector<int> outside_before(static_cast<std::size_t>(rows) * (b_columns + 1), 0);
  // Most shifts see only samples inside the tile: their count and patch sums (sa, saa) are then
  // the same for every shift, summed here once in sparse_correlation's order (so the same
  // doubles), and a pass needs only the three sums that involve b. Shifts go in lanes of four,
  // each lane summing in sparse_correlation's order. A set of lanes that meets a NaN (outside
  // the tile) is summed with the count and patch sums per lane, as sparse_correlation does.
  constexpr int lanes = 4;
  double full_count = 0, full_sa = 0, full_saa = 0;
  for (const double av : ad) full_count += 1, full_sa += av, full_saa += av * av;
  auto score = [&](double count, double sa, double saa, double sb, double sbb, double sab) {
    const double va = saa - sa * sa / count, vb = sbb - sb * sb / count;
    return count >= 0.25 * p.min_count && va > 0 && vb > 0 ? (sab - sa * sb / count) / std::sqrt(va * vb) : -2.0;
  };
  for (int dy = -p.reach; dy <= p.reach; dy += 2) {
    double* out = scores + static_cast<std::size_t>(dy + p.reach) / 2 * side;
    for (int r = 0; r < rows; ++r) {
      const float* brow = p.b + static_cast<std::size_t>(p.reach + dy + 4 * r) * p.bw;
      int* before = outside_before.data() + static_cast<std::size_t>(r) * (b_columns + 1);
      for (int c = 0; c < b_columns; ++c) {
        bd[static_cast<std::size_t>(r) * b_columns + c] = brow[2 * c];
        before[c + 1] = before[c] + std::isnan(brow[2 * c]);
      }
    }
    for (int dx0 = -p.reach; dx0 <= p.reach; dx0 += 2 * lanes) {
      const int used = std::min(lanes, (p.reach - dx0) / 2 + 1);
      const int c0 = (p.reach + dx0) / 2;
      if (used < lanes) {  // the row's last few shifts
        for (int k = 0; k < used; ++k) out[c0 + k] = sparse_correlation(p, dx0 + 2 * k, dy);
        continue;
      }
      bool outside = false;
      for (int r = 0; r < rows && !outside; ++r) {
        const int* before = outside_before.data() + static_cast<std::size_t>(r) * (b_columns + 1);
        outside = before[c0 + 2 * (columns - 1) + lanes] != before[c0];
      }
      // Two lanes per SSE2 register (the GCC/Clang vector extension): packed IEEE adds and
      // multiplies, the same doubles as the scalar ones, lane by lane. Outside the tile a lane
      // adds +0 (its sample masked to all-zero bits) to each sum, which leaves the sum as it was:
      // the sums start at +0 and never become -0, and x + (-0) is x.
      using pair = double __attribute__((vector_size(16)));
      using bits = long long __attribute__((vector_size(16)));
      constexpr int halves = lanes / 2;
      pair n[halves] = {}, sa[halves] = {}, saa[halves] = {}, sb[halves] = {}, sbb[halves] = {}, sab[halves] = {};
      const pair one = {1.0, 1.0};
      auto accumulate = [&](auto masked) {
        for (int r = 0; r < rows; ++r) {
          const double* brow = bd.data() + static_cast<std::size_t>(r) * b_columns + c0;
          const double* arow = ad.data() + static_cast<std::size_t>(r) * columns;
          for (int q = 0; q < columns; ++q) {
            const pair av = {arow[q], arow[q]};
            const pair aa = av * av;
            for (int h = 0; h < halves; ++h) {
              pair bv;
              std::memcpy(&bv, brow + 2 * q + 2 * h, sizeof bv);
              if constexpr (decltype(masked)::value) {
                const bits in = bv == bv;  // all ones where the sample is inside the tile
                bv = reinterpret_cast<pair>(reinterpret_cast<bits>(bv) & in);
                n[h] += reinterpret_cast<pair>(reinterpret_cast<bits>(one) & in);
                sa[h] += reinterpret_cast<pair>(reinterpret_cast<bits>(av) & in);
                saa[h] += reinterpret_cast<pair>(reinterpret_cast<bits>(aa) & in);
              }
              sb[h] += bv, sbb[h] += bv * bv, sab[h] += av * bv;
            }
          }
        }
      };
      if (outside) {
        accumulate(std::true_type{});
      } else {
        accumulate(std::false_type{});
      }
      for (int k = 0; k < lanes; ++k) {
        const int h = k / 2, e = k % 2;
        out[c0 + k] = outside ? score(n[h][e], sa[h][e], saa[h][e], sb[h][e], sbb[h][e], sab[h][e])
                              : score(full_count, full_sa, full_saa, sb[h][e], sbb[h][e], sab[h][e]);
      }
    }
  }
}

bool register_against(posed_tile& t, const posed_tile& ref, const plate::plate_geometry& g, double pixel_nm,
                      double expect_x, double expect_y, double search_modules, bool cuda)
{
  const double m = t.module_px;
  if (!(m >= 1.0) || !(ref.module_px >= 1.0) || ref.image.width == 0 || t.image.width == 0) return false;
  if (!(search_modules >= 0) || search_modules > 1000) return false;
  // The nominal map of t (stage position, no rotation): module X at pixel (X module_nm - x_nm) / pixel_nm.
  core::affine_map nominal;
  nominal.a[0] = -t.nominal_x_nm / pixel_nm, nominal.a[1] = m, nominal.a[2] = 0;
  nominal.a[3] = -t.nominal_y_nm / pixel_nm, nominal.a[4] = 0, nominal.a[5] = m;
  auto bounds = [](const core::affine_map& to_plate, double w, double h, double inset, double& x0, double& y0, double& x1,
                   double& y1) {
    x0 = y0 = 1e300, x1 = y1 = -1e300;
    for (double u : {0.0, w})
      for (double v : {0.0, h}) {
        double x, y;
        to_plate.apply(u, v, x, y);
        x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
      }
    x0 += inset, y0 += inset, x1 -= inset, y1 -= inset;
  };
  // The plate rectangle both see: ref's placed footprint (2 modules in from its edges) and t's
  // nominal one moved by the expected stage error (plate point X at pixel nominal(X - error)).
  core::affine_map expected = nominal.shifted(-expect_x, -expect_y), expected_plate;
  if (!expected.inverse(expected_plate)) return false;
  double rx0, ry0, rx1, ry1, tx0, ty0, tx1, ty1;
  bounds(ref.to_plate, ref.image.width, ref.image.height, 2 + 2.0 / ref.module_px, rx0, ry0, rx1, ry1);
  bounds(expected_plate, t.image.width, t.image.height, 1 + 2.0 / m, tx0, ty0, tx1, ty1);
  const double x0 = std::max(rx0, tx0), y0 = std::max(ry0, ty0), x1 = std::min(rx1, tx1), y1 = std::min(ry1, ty1);
  // A patch of at most 64 x 64 modules: random data correlates with itself only at the true
  // shift, and a patch this small stays within about a module of a rigid shift under the
  // rotations scans have.
  const int cw = std::min(512, static_cast<int>(std::floor(x1 - x0))), ch = std::min(512, static_cast<int>(std::floor(y1 - y0)));
  const int pw = std::min(64, cw), ph = std::min(64, ch);
  if (pw < 8 || ph < 8 || pw * ph < 300) return false;
  // ref's module values (module centres) over the common part; the patch is the window of it
  // with the most contrast (the common strip may run off the plate's edge onto bare film).
  const core::gray_view rv = ref.view(), tv = t.view();
  const double cx0 = std::floor(x0), cy0 = std::floor(y0);
  std::vector<float> common(static_cast<std::size_t>(cw) * ch);
  for (int j = 0; j < ch; ++j)
    for (int i = 0; i < cw; ++i) {
      double u, v;
      ref.to_pixel.apply(cx0 + i + 0.5, cy0 + j + 0.5, u, v);
      common[static_cast<std::size_t>(j) * cw + i] = rv.bilinear(u, v);
    }
  int wx = 0, wy = 0;
  double most = -1;
  for (int oy = 0; oy + ph <= ch; oy += std::max(1, std::min(8, ch - ph)))
    for (int ox = 0; ox + pw <= cw; ox += std::max(1, std::min(8, cw - pw))) {
      double sum = 0, sq = 0;
      for (int j = 0; j < ph; j += 2)
        for (int i = 0; i < pw; i += 2) {
          const double value = common[static_cast<std::size_t>(oy + j) * cw + ox + i];
          sum += value, sq += value * value;
        }
      const double var = sq - sum * sum / (0.25 * pw * ph);
      if (var > most) most = var, wx = ox, wy = oy;
    }
  const double px0 = cx0 + wx, py0 = cy0 + wy;
  std::vector<float> a(static_cast<std::size_t>(pw) * ph);
  double a_sum = 0, a_sq = 0;
  for (int j = 0; j < ph; ++j)
    for (int i = 0; i < pw; ++i) {
      const float value = common[static_cast<std::size_t>(wy + j) * cw + wx + i];
      a[static_cast<std::size_t>(j) * pw + i] = value;
      a_sum += value, a_sq += static_cast<double>(value) * value;
    }
  const double n = static_cast<double>(a.size());
  const double a_var = a_sq - a_sum * a_sum / n;
  if (!(a_var > 0)) return false;
  const int reach = 2 * static_cast<int>(std::ceil(search_modules));  // half-module steps
  const int bw = 2 * pw + 2 * reach, bh = 2 * ph + 2 * reach;
  std::vector<float> b(static_cast<std::size_t>(bw) * bh);
  for (int j = 0; j < bh; ++j)
    for (int i = 0; i < bw; ++i) {
      double u, v;
      expected.apply(px0 + 0.5 * (i - reach) + 0.5, py0 + 0.5 * (j - reach) + 0.5, u, v);
      const bool inside = u >= 0.5 && v >= 0.5 && u <= t.image.width - 0.5 && v <= t.image.height - 0.5;
      b[static_cast<std::size_t>(j) * bw + i] = inside ? tv.bilinear(u, v) : std::numeric_limits<float>::quiet_NaN();
    }
  // Normalised cross-correlation of the patch with t at a shift of (dx, dy) half modules, over
  // the samples that fall inside t (the strip two tiles share is narrower than the stage error
  // searched): at least half the patch, else -2. Computed once per shift, on demand.
  const int side = 2 * reach + 1;
  std::vector<double> score(static_cast<std::size_t>(side) * side, std::numeric_limits<double>::quiet_NaN());
  // At least a fifth of the patch: a stage error larger than the overlap leaves only part of the
  // patch inside t at the true shift. Fewer samples correlate by chance more: see the acceptance.
  const double min_count = std::max(120.0, 0.2 * static_cast<double>(a.size()));
  std::vector<float> counts(score.size(), 0);
  auto at = [&](int dx, int dy) {
    if (std::abs(dx) > reach || std::abs(dy) > reach) return -2.0;
    double& r = score[static_cast<std::size_t>(dy + reach) * side + (dx + reach)];
    if (!std::isnan(r)) return r;
    double count = 0, sa = 0, saa = 0, sb = 0, sbb = 0, sab = 0;
    for (int j = 0; j < ph; ++j) {
      const float* row = b.data() + static_cast<std::size_t>(2 * j + reach + dy) * bw + (reach + dx);
      const float* arow = a.data() + static_cast<std::size_t>(j) * pw;
      for (int i = 0; i < pw; ++i) {
        const double bv = row[2 * i];
        if (std::isnan(bv)) continue;
        const double av = arow[i];
        count += 1, sa += av, saa += av * av, sb += bv, sbb += bv * bv, sab += av * bv;
      }
    }
    const double va = saa - sa * sa / count, vb = sbb - sb * sb / count;
    r = count >= min_count && va > 0 && vb > 0 ? (sab - sa * sb / count) / std::sqrt(va * vb) : -2.0;
    counts[static_cast<std::size_t>(dy + reach) * side + (dx + reach)] = static_cast<float>(count);
    return r;
  };
  // Whole-module shifts on a quarter of the patch first (a shift half a module off the true one
  // still correlates at about half the peak, well above the rest), then the half-module shifts
  // around the best three on the whole patch. The coarse pass was ~90% of a stitch (and stitching
  // half of a v40 scan's decode): sparse_correlations runs four shifts at once, the GPU a thread
  // per shift.
  const stitch_patch patch{a.data(), pw, ph, b.data(), bw, reach, min_count};
  const auto side_coarse = static_cast<std::size_t>(reach) + 1;
  std::vector<double> coarse_scores(side_coarse * side_coarse);
#if QRPLATE_WITH_CUDA
  if (cuda) {
    this_threads_passes().stitch_scores(patch, coarse_scores.data());
  } else
#endif
  {
    (void)cuda;
    sparse_correlations(patch, coarse_scores.data());
  }
  std::vector<std::pair<double, std::pair<int, int>>> coarse;
  for (int dy = -reach; dy <= reach; dy += 2)
    for (int dx = -reach; dx <= reach; dx += 2)
      coarse.push_back({coarse_scores[static_cast<std::size_t>(dy + reach) / 2 * side_coarse + static_cast<std::size_t>(dx + reach) / 2], {dx, dy}});
  std::sort(coarse.begin(), coarse.end(), [](const auto& l, const auto& r) { return l.first > r.first; });
  double best = -2, second = -2;
  int best_dx = 0, best_dy = 0;
  for (std::size_t k = 0; k < std::min<std::size_t>(3, coarse.size()); ++k)
    for (int ddy = -1; ddy <= 1; ++ddy)
      for (int ddx = -1; ddx <= 1; ++ddx) {
        const int dx = coarse[k].second.first + ddx, dy = coarse[k].second.second + ddy;
        const double r = at(dx, dy);
        if (r > best) best = r, best_dx = dx, best_dy = dy;
      }
  // The runner-up away from the peak (a module's neighbours share part of it), on the whole patch
  // among the best eight coarse shifts away from it.
  int runners = 0;
  for (const auto& c : coarse) {
    if (std::abs(c.second.first - best_dx) <= 2 && std::abs(c.second.second - best_dy) <= 2) continue;
    second = std::max(second, at(c.second.first, c.second.second));
    if (++runners == 8) break;
  }
  // Random data correlates with a shifted copy of itself at ~1/sqrt(n) (0.03-0.06 here, up to
  // ~0.2 at the worst of many shifts): the peak must stand well clear of that and of the rest.
  // and, over n samples, 6 standard deviations of chance (1/sqrt(n)) clear of zero.
  const double best_count = counts[static_cast<std::size_t>(best_dy + reach) * side + (best_dx + reach)];
  if (!(best >= 0.35 && best * std::sqrt(best_count) >= 6 && best >= 1.6 * std::max(second, 0.05))) return false;
  auto vertex = [](double l, double c, double r) {
    const double den = l - 2 * c + r;
    return den < 0 && l > -2 && r > -2 ? std::clamp(0.5 * (l - r) / den, -0.5, 0.5) : 0.0;
  };
  // t shows ref's plate point X where the expected map puts X + (shift / 2): the stage error is
  // the expected one less that.
  const double sx = -expect_x + 0.5 * (best_dx + vertex(at(best_dx - 1, best_dy), best, at(best_dx + 1, best_dy)));
  const double sy = -expect_y + 0.5 * (best_dy + vertex(at(best_dx, best_dy - 1), best, at(best_dx, best_dy + 1)));
  fitted_pose f;
  f.to_pixel = nominal.shifted(sx, sy);
  const double w = t.image.width, h = t.image.height;
  double fx0, fy0, fx1, fy1;
  core::affine_map shifted_plate;
  if (!f.to_pixel.inverse(shifted_plate)) return false;
  bounds(shifted_plate, w, h, 0, fx0, fy0, fx1, fy1);
  const std::vector<anchor_point> anchors = expected_anchors(g, fx0 - 5, fy0 - 5, fx1 + 5, fy1 + 5);
  confirm_anchors(t, t.polarity, m, 0.5f * t.finder_strength, anchors, f);
  if (f.pairs.size() >= 3) {
    if (!settle_pose(t, f.pairs, f.to_pixel, m)) return false;
    // The shift came with no rotation: anchors far from the patch may have been out of reach.
    // Each refit brings more of them within a module; confirm again from it, twice.
    for (int round = 0; round < 2; ++round) {
      fitted_pose again;
      again.to_pixel = t.to_pixel;
      confirm_anchors(t, t.polarity, m, 0.5f * t.finder_strength, anchors, again);
      if (again.pairs.size() <= f.pairs.size()) break;
      if (!settle_pose(t, again.pairs, again.to_pixel, m)) break;
      f = std::move(again);
    }
  } else {
    t.to_pixel = f.to_pixel;
    t.to_plate = shifted_plate;
    t.rms_px = 0;
  }
  t.confirmed = f.confirmed;
  t.registered = true;
  t.stitched = true;
  return true;
}

}  // namespace qrplate::scan
