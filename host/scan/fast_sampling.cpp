#include "scan/fast_sampling.hpp"

#include <cassert>
#include <cmath>
#include <cstring>

// GCC only (the target attribute and __builtin_cpu_supports as it documents them); not under the
// sanitizers, whose runtimes start after the CPU checks may run.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define QRP_AVX2_SAMPLING 1
#include <immintrin.h>
#else
#define QRP_AVX2_SAMPLING 0
#endif

namespace qrplate::scan {

#if QRP_AVX2_SAMPLING
namespace {

// AVX2 alone, not FMA: a fused multiply-add rounds once where the reference rounds twice, so
// nothing here may be contracted into one.
#define QRP_AVX2 __attribute__((target("avx2")))

// The pixel pairs (p[i], p[i + 1]) at i = index[l] of lane l's image, one 32-bit lane each
// (little-endian: p[i] in the low half). Scalar loads: AVX2's gathers were slower on the AMD
// EPYC this was measured on (microcoded there), and the lanes may read different images.
inline __m128i pixel_pairs(const std::uint16_t* const* pixels, const std::size_t* index)
{
  std::uint32_t w[4];
  for (int l = 0; l < 4; ++l) std::memcpy(&w[l], pixels[l] + index[l], sizeof w[l]);
  return _mm_set_epi32(static_cast<int>(w[3]), static_cast<int>(w[2]), static_cast<int>(w[1]), static_cast<int>(w[0]));
}

// gray_view::bilinear_inside at four points, lane l's in *lanes[l], each at least a pixel inside
// its image: the pixel pairs (x0, x0 + 1) of rows y0 and y0 + 1 come as one 32-bit load each.
QRP_AVX2 inline __m128 bilinear_inside4(const core::gray_view* const* lanes, __m256d u, __m256d v)
{
  const __m256d half = _mm256_set1_pd(0.5);
  const __m256d x = _mm256_sub_pd(u, half), y = _mm256_sub_pd(v, half);
  const __m128i x0 = _mm256_cvttpd_epi32(x), y0 = _mm256_cvttpd_epi32(y);
  const __m256d fx = _mm256_sub_pd(x, _mm256_cvtepi32_pd(x0)), fy = _mm256_sub_pd(y, _mm256_cvtepi32_pd(y0));
  alignas(16) std::int32_t xs[4], ys[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(xs), x0);
  _mm_store_si128(reinterpret_cast<__m128i*>(ys), y0);
  const std::uint16_t* upper_rows[4];
  const std::uint16_t* lower_rows[4];
  std::size_t index[4];
  for (int l = 0; l < 4; ++l) {
    index[l] = static_cast<std::size_t>(ys[l]) * lanes[l]->stride + static_cast<std::size_t>(xs[l]);
    upper_rows[l] = lanes[l]->pixels;
    lower_rows[l] = lanes[l]->pixels + lanes[l]->stride;
  }
  const __m128i upper = pixel_pairs(upper_rows, index), lower = pixel_pairs(lower_rows, index);
  const __m128i low16 = _mm_set1_epi32(0xffff);
  const __m256d p00 = _mm256_cvtepi32_pd(_mm_and_si128(upper, low16)), p01 = _mm256_cvtepi32_pd(_mm_srli_epi32(upper, 16));
  const __m256d p10 = _mm256_cvtepi32_pd(_mm_and_si128(lower, low16)), p11 = _mm256_cvtepi32_pd(_mm_srli_epi32(lower, 16));
  const __m256d top = _mm256_add_pd(p00, _mm256_mul_pd(fx, _mm256_sub_pd(p01, p00)));
  const __m256d bottom = _mm256_add_pd(p10, _mm256_mul_pd(fx, _mm256_sub_pd(p11, p10)));
  return _mm256_cvtpd_ps(_mm256_add_pd(top, _mm256_mul_pd(fy, _mm256_sub_pd(bottom, top))));
}

// sample_module_inside at four centres for m > 2 (five taps): the taps' floats summed in the
// reference's order, then divided by 5.
QRP_AVX2 inline __m128 sample_inside4(const core::gray_view* const* lanes, __m256d u, __m256d v, double q)
{
  const __m256d qv = _mm256_set1_pd(q);
  const __m256d ul = _mm256_sub_pd(u, qv), uh = _mm256_add_pd(u, qv);
  const __m256d vl = _mm256_sub_pd(v, qv), vh = _mm256_add_pd(v, qv);
  __m128 sum = _mm_add_ps(bilinear_inside4(lanes, ul, vl), bilinear_inside4(lanes, uh, vl));
  sum = _mm_add_ps(sum, bilinear_inside4(lanes, ul, vh));
  sum = _mm_add_ps(sum, bilinear_inside4(lanes, uh, vh));
  sum = _mm_add_ps(sum, bilinear_inside4(lanes, u, v));
  return _mm_div_ps(sum, _mm_set1_ps(5.0f));
}

// One component of code_map::apply's offset field at four columns that lie between the same two
// nodes ix and ix + 1 of row iy: table[iy][ix..ix+1] and table[iy+1][ix..ix+1], the neighbours'
// difference taken in float as the reference does.
QRP_AVX2 inline __m256d offset4(const float (*table)[core::code_map::max_nodes], int iy, int ix, __m256d fx, double fy)
{
  const float t0 = table[iy][ix], t1 = table[iy][ix + 1], b0 = table[iy + 1][ix], b1 = table[iy + 1][ix + 1];
  const __m256d top = _mm256_add_pd(_mm256_set1_pd(t0), _mm256_mul_pd(fx, _mm256_set1_pd(t1 - t0)));
  const __m256d bottom = _mm256_add_pd(_mm256_set1_pd(b0), _mm256_mul_pd(fx, _mm256_set1_pd(b1 - b0)));
  return _mm256_add_pd(top, _mm256_mul_pd(_mm256_set1_pd(fy), _mm256_sub_pd(bottom, top)));
}

// Columns c .. c + 3 as doubles (c + 0.5 etc.: exact).
QRP_AVX2 inline __m256d columns4(int c)
{
  return _mm256_add_pd(_mm256_set1_pd(static_cast<double>(c)), _mm256_set_pd(3.5, 2.5, 1.5, 0.5));
}

// code_map::apply at the module centres of columns c .. c + 3 (c a multiple of 4) of the row at
// y, as written.
static_assert(core::code_map::step == 4, "apply4 takes four columns between two nodes of the offset field");
QRP_AVX2 inline void apply4(const core::code_map& map, int c, double y, __m256d& u, __m256d& v)
{
  assert(c % 4 == 0);
  const __m256d x = columns4(c);
  const double* a = map.base.a;
  u = _mm256_add_pd(_mm256_add_pd(_mm256_set1_pd(a[0]), _mm256_mul_pd(_mm256_set1_pd(a[1]), x)),
                    _mm256_set1_pd(a[2] * y));
  v = _mm256_add_pd(_mm256_add_pd(_mm256_set1_pd(a[3]), _mm256_mul_pd(_mm256_set1_pd(a[4]), x)),
                    _mm256_set1_pd(a[5] * y));
  if (map.anchors == 0) return;
  const double top = map.nodes - 1.001;
  double gy = y / core::code_map::step;
  gy = gy < 0 ? 0 : (gy > top ? top : gy);
  const int iy = static_cast<int>(gy);
  const double fy = gy - iy;
  __m256d gx = _mm256_div_pd(x, _mm256_set1_pd(core::code_map::step));
  const __m256d topv = _mm256_set1_pd(top), zero = _mm256_setzero_pd();
  // gx < 0 ? 0 : (gx > top ? top : gx), as written.
  const __m256d below = _mm256_cmp_pd(gx, zero, _CMP_LT_OQ), above = _mm256_cmp_pd(gx, topv, _CMP_GT_OQ);
  gx = _mm256_blendv_pd(_mm256_blendv_pd(gx, topv, above), zero, below);
  const __m128i ix = _mm256_cvttpd_epi32(gx);
  const __m256d fx = _mm256_sub_pd(gx, _mm256_cvtepi32_pd(ix));
  // Every lane has the same ix: with c = 4j the lanes' gx are j + 0.125 .. j + 0.875, all below
  // top = nodes - 1.001 when j <= nodes - 2 (ix = j), else all clamped to it (ix = nodes - 2).
  // So one node pair serves the four: four loads, where gathering each lane's took sixteen.
  const int ix0 = _mm_cvtsi128_si32(ix);
  u = _mm256_add_pd(u, offset4(map.du, iy, ix0, fx, fy));
  v = _mm256_add_pd(v, offset4(map.dv, iy, ix0, fx, fy));
}

// a < b ? a : b, as written (NaN picks b).
QRP_AVX2 inline __m256d pick_less(__m256d a, __m256d b)
{
  return _mm256_blendv_pd(b, a, _mm256_cmp_pd(a, b, _CMP_LT_OQ));
}

// interior(u, v, w, h) at four points, as written.
QRP_AVX2 inline __m256d interior4(__m256d u, __m256d v, const core::gray_view& img)
{
  const __m256d w = _mm256_set1_pd(img.width), h = _mm256_set1_pd(img.height);
  return pick_less(pick_less(u, _mm256_sub_pd(w, u)), pick_less(v, _mm256_sub_pd(h, v)));
}

// core::sample_code for m > 2 px/module (five bilinear samples a module), four columns at a time.
QRP_AVX2 int sample_code_avx2(const core::version_plan& plan, const core::gray_view& img, const core::code_map& map,
                              double m, float* values, std::uint8_t* valid)
{
  const int n = plan.size;
  const double reach = core::sample_reach(m), q = core::sample_spread(m);
  const __m256d reachv = _mm256_set1_pd(reach);
  const core::gray_view* const lanes[4] = {&img, &img, &img, &img};
  int sampled = 0;
  for (int r = 0; r < n; ++r) {
    int c = 0;
    for (; c + 4 <= n; c += 4) {
      const int k = r * n + c;
      __m256d u, v;
      apply4(map, c, r + 0.5, u, v);
      const int inside = _mm256_movemask_pd(_mm256_cmp_pd(interior4(u, v, img), reachv, _CMP_GT_OQ));
      if (inside == 0xf) {
        _mm_storeu_ps(values + k, sample_inside4(lanes, u, v, q));
        for (int l = 0; l < 4; ++l) valid[k + l] = 1;
        sampled += 4;
        continue;
      }
      // Near an edge: each module as the reference samples it, from the same (u, v).
      alignas(32) double us[4], vs[4];
      _mm256_store_pd(us, u);
      _mm256_store_pd(vs, v);
      for (int l = 0; l < 4; ++l) {
        const bool in = (inside >> l) & 1;
        valid[k + l] = in ? 1 : 0;
        values[k + l] = in ? core::sample_module_inside(img, us[l], vs[l], m) : 0.0f;
        sampled += in;
      }
    }
    for (; c < n; ++c) sampled += core::sample_code_module(img, map, m, reach, n, r, c, values, valid);
  }
  return sampled;
}

// core::sample_across_module over every module of a size-n code for m > 2 px/module, four
// columns at a time: each lane takes the image that holds its module deepest (the first on a
// tie), then the four are sampled each in its own image.
QRP_AVX2 void sample_across_avx2(const core::gray_view* images, const core::code_map* maps, int count, double m, int n,
                                 core::read_across_workspace& ws)
{
  const double reach = core::sample_reach(m), q = core::sample_spread(m);
  for (int r = 0; r < n; ++r) {
    int c = 0;
    for (; c + 4 <= n; c += 4) {
      const int k = r * n + c;
      __m256d best = _mm256_set1_pd(-1.0), best_margin = _mm256_set1_pd(reach);
      __m256d bu = _mm256_setzero_pd(), bv = _mm256_setzero_pd();
      for (int i = 0; i < count; ++i) {
        __m256d u, v;
        apply4(maps[i], c, r + 0.5, u, v);
        const __m256d margin = interior4(u, v, images[i]);
        const __m256d deeper = _mm256_cmp_pd(margin, best_margin, _CMP_GT_OQ);  // margin > best_margin
        best_margin = _mm256_blendv_pd(best_margin, margin, deeper);
        best = _mm256_blendv_pd(best, _mm256_set1_pd(i), deeper);
        bu = _mm256_blendv_pd(bu, u, deeper);
        bv = _mm256_blendv_pd(bv, v, deeper);
      }
      alignas(16) std::int32_t source[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(source), _mm256_cvttpd_epi32(best));
      bool all = true;
      const core::gray_view* lanes[4];
      for (int l = 0; l < 4; ++l) {
        ws.valid[k + l] = source[l] >= 0 ? 1 : 0;
        ws.source[k + l] = static_cast<std::uint8_t>(source[l] < 0 ? 0 : source[l]);
        all = all && source[l] >= 0;
        lanes[l] = &images[source[l] < 0 ? 0 : source[l]];
      }
      if (all) {
        _mm_storeu_ps(ws.values + k, sample_inside4(lanes, bu, bv, q));
        continue;
      }
      alignas(32) double us[4], vs[4];
      _mm256_store_pd(us, bu);
      _mm256_store_pd(vs, bv);
      for (int l = 0; l < 4; ++l)
        ws.values[k + l] = source[l] >= 0 ? core::sample_module_inside(*lanes[l], us[l], vs[l], m) : 0.0f;
    }
    for (; c < n; ++c) core::sample_across_module(images, maps, count, m, reach, n, r * n + c, ws);
  }
}

// core::threshold_word for every word of row r, four modules at a time: the same double
// operations in the same order (value - (row_level + p1 * ((c - half) * inv_half))), the bit by
// the residual's sign, the confidence truncated from min(scale * |d|, 255) as the reference's
// cast does. No branch on the bit: the reference's `if (milled)` mispredicts on every other
// module of a code's random-looking data.
QRP_AVX2 void threshold_row_avx2(const core::version_plan& plan, const core::plane_fit& f, const float* values,
                                 const std::uint8_t* valid, int r, std::uint64_t* row_words, std::uint8_t* confidence)
{
  const int n = plan.size;
  const double contrast = f.p[3];
  const double scale = 255.0 / (0.5 * std::fabs(contrast));
  const double row_level = core::plane_row_level(f, r);
  const __m256d half = _mm256_set1_pd(f.half), inv_half = _mm256_set1_pd(f.inv_half), p1 = _mm256_set1_pd(f.p[1]);
  const __m256d level = _mm256_set1_pd(row_level), scalev = _mm256_set1_pd(scale), cap = _mm256_set1_pd(255.0);
  const __m256d zero = _mm256_setzero_pd(), magnitude = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffff));
  const __m128i lane_columns = _mm_set_epi32(3, 2, 1, 0), byte_of_each = _mm_set1_epi32(0x0c080400);
  for (int k = 0; k < plan.words; ++k) {
    const int end = 64 * k + 64 < n ? 64 * k + 64 : n;
    std::uint64_t word = 0;
    int c = 64 * k;
    for (; c + 4 <= end; c += 4) {
      const std::size_t i = static_cast<std::size_t>(r) * n + c;
      const __m256d x = _mm256_mul_pd(
          _mm256_sub_pd(_mm256_cvtepi32_pd(_mm_add_epi32(_mm_set1_epi32(c), lane_columns)), half), inv_half);
      const __m256d d =
          _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(values + i)), _mm256_add_pd(level, _mm256_mul_pd(p1, x)));
      __m256d milled = contrast < 0 ? _mm256_cmp_pd(d, zero, _CMP_LT_OQ) : _mm256_cmp_pd(d, zero, _CMP_GT_OQ);
      __m256d conf = _mm256_mul_pd(scalev, _mm256_and_pd(d, magnitude));
      conf = _mm256_blendv_pd(conf, cap, _mm256_cmp_pd(conf, cap, _CMP_GT_OQ));  // conf > 255 ? 255 : conf
      __m128i conf32 = _mm256_cvttpd_epi32(conf);
      if (valid) {
        std::uint32_t bytes;
        std::memcpy(&bytes, valid + i, sizeof bytes);
        const __m128i sampled = _mm_xor_si128(
            _mm_cmpeq_epi32(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(static_cast<int>(bytes))), _mm_setzero_si128()),
            _mm_set1_epi32(-1));
        conf32 = _mm_and_si128(conf32, sampled);
        milled = _mm256_and_pd(milled, _mm256_castsi256_pd(_mm256_cvtepi32_epi64(sampled)));
      }
      word |= static_cast<std::uint64_t>(_mm256_movemask_pd(milled)) << (c & 63);
      // Each lane's low byte, as the reference's cast to std::uint8_t keeps.
      const std::uint32_t packed = static_cast<std::uint32_t>(_mm_cvtsi128_si32(_mm_shuffle_epi8(conf32, byte_of_each)));
      std::memcpy(confidence + i, &packed, sizeof packed);
    }
    // The last column of the row (every width is 1 mod 4), by the reference.
    if (c < end) word |= core::threshold_columns(plan, f, values, valid, r, c, end, confidence);
    row_words[k] = word;
  }
}

// core::threshold_rows_plainly's contract, by threshold_row_avx2.
struct threshold_rows_avx2 {
  void operator()(const core::version_plan& plan, const core::plane_fit& f, const float* values,
                  const std::uint8_t* valid, int r, std::uint64_t* row_words, std::uint8_t* confidence) const
  {
    threshold_row_avx2(plan, f, values, valid, r, row_words, confidence);
  }
};

// core::measure_code_map compiled for AVX2 (flatten: everything it calls inlined here): the
// compiler may not reassociate, contract (no FMA in the target) or otherwise change IEEE
// arithmetic, so the map is the reference's bit for bit, with the node grid's inverse-distance
// weights (a division per node and anchor, most of its time) four to a vector instead of two.
__attribute__((target("avx2"), flatten)) void measure_code_map_avx2(const core::tile_anchor_view& tile,
                                                                    const core::version_plan& plan, double x0,
                                                                    double y0, core::code_map& out)
{
  core::measure_code_map(tile, plan, x0, y0, out);
}

}  // namespace
#endif

void measure_code_map_fast(const core::tile_anchor_view& tile, const core::version_plan& plan, double x0, double y0,
                           core::code_map& out)
{
#if QRP_AVX2_SAMPLING
  if (avx2_fast_paths_available()) {
    measure_code_map_avx2(tile, plan, x0, y0, out);
    return;
  }
#endif
  core::measure_code_map(tile, plan, x0, y0, out);
}

bool avx2_fast_paths_available()
{
#if QRP_AVX2_SAMPLING
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
#else
  return false;
#endif
}

void sample_across_fast(const core::gray_view* images, const core::code_map* maps, int count, double module_px, int n,
                        core::read_across_workspace& ws)
{
#if QRP_AVX2_SAMPLING
  if (module_px > 2.0 && avx2_fast_paths_available()) {
    sample_across_avx2(images, maps, count, module_px, n, ws);
    return;
  }
#endif
  const double reach = core::sample_reach(module_px);
  for (int k = 0; k < n * n; ++k) core::sample_across_module(images, maps, count, module_px, reach, n, k, ws);
}

core::code_outcome read_code_across_fast(const core::version_plan& plan, const core::gray_view* images,
                                         const core::code_map* maps, int count, double module_px,
                                         std::uint8_t erasure_threshold, std::uint8_t* out,
                                         core::read_across_workspace& ws)
{
  sample_across_fast(images, maps, count, module_px, plan.size, ws);
#if QRP_AVX2_SAMPLING
  if (avx2_fast_paths_available())
    return core::finish_code_across(plan, images, maps, count, module_px, erasure_threshold, out, ws,
                                    threshold_rows_avx2{});
#endif
  return core::finish_code_across(plan, images, maps, count, module_px, erasure_threshold, out, ws);
}

core::symbol_levels threshold_symbol_fast(const core::version_plan& plan, const float* values,
                                          const std::uint8_t* valid, std::uint64_t* modules, std::uint8_t* confidence)
{
#if QRP_AVX2_SAMPLING
  if (avx2_fast_paths_available())
    return core::threshold_symbol_with(plan, values, valid, modules, confidence, threshold_rows_avx2{});
#endif
  return core::threshold_symbol(plan, values, valid, modules, confidence);
}

core::code_outcome decode_sampled_fast(const core::version_plan& plan, const float* values, const std::uint8_t* valid,
                                       std::uint8_t erasure_threshold, std::uint64_t* modules,
                                       std::uint8_t* confidence, std::uint8_t* out, core::decode_workspace& ws)
{
  const core::symbol_levels levels = threshold_symbol_fast(plan, values, valid, modules, confidence);
  return core::decode_thresholded(plan, levels, erasure_threshold, modules, confidence, out, ws);
}

int sample_code_fast(const core::version_plan& plan, const core::gray_view& img, const core::code_map& map,
                     double module_px, float* values, std::uint8_t* valid)
{
#if QRP_AVX2_SAMPLING
  // At 2 px/module and below a module is one sample or a tent mean: the reference does those.
  if (module_px > 2.0 && avx2_fast_paths_available())
    return sample_code_avx2(plan, img, map, module_px, values, valid);
#endif
  return core::sample_code(plan, img, map, module_px, values, valid);
}

core::code_outcome read_code_fast(const core::version_plan& plan, const core::gray_view& img,
                                  const core::code_map& map, double module_px, std::uint8_t erasure_threshold,
                                  std::uint8_t* out, core::read_code_workspace& ws)
{
  sample_code_fast(plan, img, map, module_px, ws.values, ws.valid);
  return decode_sampled_fast(plan, ws.values, ws.valid, erasure_threshold, ws.modules, ws.confidence, out, ws.decode);
}

}  // namespace qrplate::scan
