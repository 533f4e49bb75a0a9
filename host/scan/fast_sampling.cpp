#include "scan/fast_sampling.hpp"

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

// The pixel pairs (p[i], p[i + 1]) at i = index[l] + offset, one 32-bit lane each (little-endian:
// p[i] in the low half). Four scalar loads: AVX2's gathers were slower on the AMD EPYC this was
// measured on (microcoded there).
inline __m128i pixel_pairs(const std::uint16_t* pixels, const std::int64_t* index, std::size_t offset)
{
  std::uint32_t w[4];
  for (int l = 0; l < 4; ++l) std::memcpy(&w[l], pixels + index[l] + offset, sizeof w[l]);
  return _mm_set_epi32(static_cast<int>(w[3]), static_cast<int>(w[2]), static_cast<int>(w[1]), static_cast<int>(w[0]));
}

// gray_view::bilinear_inside at four points, each at least a pixel inside the image: the pixel
// pairs (x0, x0 + 1) of rows y0 and y0 + 1 come as one 32-bit load each.
QRP_AVX2 inline __m128 bilinear_inside4(const core::gray_view& img, __m256d u, __m256d v)
{
  const __m256d half = _mm256_set1_pd(0.5);
  const __m256d x = _mm256_sub_pd(u, half), y = _mm256_sub_pd(v, half);
  const __m128i x0 = _mm256_cvttpd_epi32(x), y0 = _mm256_cvttpd_epi32(y);
  const __m256d fx = _mm256_sub_pd(x, _mm256_cvtepi32_pd(x0)), fy = _mm256_sub_pd(y, _mm256_cvtepi32_pd(y0));
  // y0 * stride + x0 as size_t: y0 >= 0 and stride < 2^32 (an image of that many samples a row
  // is refused long before), so the unsigned 32 x 32 -> 64-bit product is the reference's.
  const __m256i stride = _mm256_set1_epi64x(static_cast<long long>(img.stride));
  const __m256i at = _mm256_add_epi64(_mm256_mul_epu32(_mm256_cvtepi32_epi64(y0), stride), _mm256_cvtepi32_epi64(x0));
  alignas(32) std::int64_t index[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(index), at);
  const __m128i upper = pixel_pairs(img.pixels, index, 0), lower = pixel_pairs(img.pixels, index, img.stride);
  const __m128i low16 = _mm_set1_epi32(0xffff);
  const __m256d p00 = _mm256_cvtepi32_pd(_mm_and_si128(upper, low16)), p01 = _mm256_cvtepi32_pd(_mm_srli_epi32(upper, 16));
  const __m256d p10 = _mm256_cvtepi32_pd(_mm_and_si128(lower, low16)), p11 = _mm256_cvtepi32_pd(_mm_srli_epi32(lower, 16));
  const __m256d top = _mm256_add_pd(p00, _mm256_mul_pd(fx, _mm256_sub_pd(p01, p00)));
  const __m256d bottom = _mm256_add_pd(p10, _mm256_mul_pd(fx, _mm256_sub_pd(p11, p10)));
  return _mm256_cvtpd_ps(_mm256_add_pd(top, _mm256_mul_pd(fy, _mm256_sub_pd(bottom, top))));
}

// One component of code_map::apply's offset field at four columns: table[iy][ix..ix+1] and
// table[iy+1][ix..ix+1], the neighbours' difference taken in float as the reference does.
QRP_AVX2 inline __m256d offset4(const float (*table)[core::code_map::max_nodes], int iy, __m128i ix, __m256d fx,
                                double fy)
{
  const __m128i ix1 = _mm_add_epi32(ix, _mm_set1_epi32(1));
  const __m128 t0 = _mm_i32gather_ps(table[iy], ix, 4), t1 = _mm_i32gather_ps(table[iy], ix1, 4);
  const __m128 b0 = _mm_i32gather_ps(table[iy + 1], ix, 4), b1 = _mm_i32gather_ps(table[iy + 1], ix1, 4);
  const __m256d top = _mm256_add_pd(_mm256_cvtps_pd(t0), _mm256_mul_pd(fx, _mm256_cvtps_pd(_mm_sub_ps(t1, t0))));
  const __m256d bottom = _mm256_add_pd(_mm256_cvtps_pd(b0), _mm256_mul_pd(fx, _mm256_cvtps_pd(_mm_sub_ps(b1, b0))));
  return _mm256_add_pd(top, _mm256_mul_pd(_mm256_set1_pd(fy), _mm256_sub_pd(bottom, top)));
}

// a < b ? a : b, as written (NaN picks b).
QRP_AVX2 inline __m256d pick_less(__m256d a, __m256d b)
{
  return _mm256_blendv_pd(b, a, _mm256_cmp_pd(a, b, _CMP_LT_OQ));
}

// core::sample_code for m > 2 px/module (five bilinear samples a module), four columns at a time.
QRP_AVX2 int sample_code_avx2(const core::version_plan& plan, const core::gray_view& img, const core::code_map& map,
                              double m, float* values, std::uint8_t* valid)
{
  const int n = plan.size;
  const double reach = core::sample_reach(m), q = core::sample_spread(m);
  const double w = img.width, h = img.height;
  const double* a = map.base.a;
  const double top_node = map.nodes - 1.001;
  const __m256d lane = _mm256_set_pd(3.5, 2.5, 1.5, 0.5), qv = _mm256_set1_pd(q);
  const __m256d wv = _mm256_set1_pd(w), hv = _mm256_set1_pd(h), reachv = _mm256_set1_pd(reach);
  int sampled = 0;
  for (int r = 0; r < n; ++r) {
    const double y = r + 0.5;
    const double a2y = a[2] * y, a5y = a[5] * y;
    // code_map::apply's row terms.
    double gy = y / core::code_map::step;
    gy = gy < 0 ? 0 : (gy > top_node ? top_node : gy);
    const int iy = static_cast<int>(gy);
    const double fy = gy - iy;
    int c = 0;
    for (; c + 4 <= n; c += 4) {
      const int k = r * n + c;
      const __m256d x = _mm256_add_pd(_mm256_set1_pd(static_cast<double>(c)), lane);  // c + 0.5 etc., exact
      __m256d u = _mm256_add_pd(_mm256_add_pd(_mm256_set1_pd(a[0]), _mm256_mul_pd(_mm256_set1_pd(a[1]), x)),
                                _mm256_set1_pd(a2y));
      __m256d v = _mm256_add_pd(_mm256_add_pd(_mm256_set1_pd(a[3]), _mm256_mul_pd(_mm256_set1_pd(a[4]), x)),
                                _mm256_set1_pd(a5y));
      if (map.anchors != 0) {
        __m256d gx = _mm256_div_pd(x, _mm256_set1_pd(core::code_map::step));
        const __m256d topv = _mm256_set1_pd(top_node), zero = _mm256_setzero_pd();
        // gx < 0 ? 0 : (gx > top ? top : gx), as written.
        const __m256d below = _mm256_cmp_pd(gx, zero, _CMP_LT_OQ), above = _mm256_cmp_pd(gx, topv, _CMP_GT_OQ);
        gx = _mm256_blendv_pd(_mm256_blendv_pd(gx, topv, above), zero, below);
        const __m128i ix = _mm256_cvttpd_epi32(gx);
        const __m256d fx = _mm256_sub_pd(gx, _mm256_cvtepi32_pd(ix));
        u = _mm256_add_pd(u, offset4(map.du, iy, ix, fx, fy));
        v = _mm256_add_pd(v, offset4(map.dv, iy, ix, fx, fy));
      }
      // interior(u, v, w, h) > reach, as written.
      const __m256d depth = pick_less(pick_less(u, _mm256_sub_pd(wv, u)), pick_less(v, _mm256_sub_pd(hv, v)));
      const int inside = _mm256_movemask_pd(_mm256_cmp_pd(depth, reachv, _CMP_GT_OQ));
      if (inside == 0xf) {
        const __m256d ul = _mm256_sub_pd(u, qv), uh = _mm256_add_pd(u, qv);
        const __m256d vl = _mm256_sub_pd(v, qv), vh = _mm256_add_pd(v, qv);
        __m128 sum = _mm_add_ps(bilinear_inside4(img, ul, vl), bilinear_inside4(img, uh, vl));
        sum = _mm_add_ps(sum, bilinear_inside4(img, ul, vh));
        sum = _mm_add_ps(sum, bilinear_inside4(img, uh, vh));
        sum = _mm_add_ps(sum, bilinear_inside4(img, u, v));
        _mm_storeu_ps(values + k, _mm_div_ps(sum, _mm_set1_ps(5.0f)));
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

}  // namespace
#endif

bool avx2_sampling_available()
{
#if QRP_AVX2_SAMPLING
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
#else
  return false;
#endif
}

int sample_code_fast(const core::version_plan& plan, const core::gray_view& img, const core::code_map& map,
                     double module_px, float* values, std::uint8_t* valid)
{
#if QRP_AVX2_SAMPLING
  // At 2 px/module and below a module is one sample or a tent mean: the reference does those.
  if (module_px > 2.0 && avx2_sampling_available())
    return sample_code_avx2(plan, img, map, module_px, values, valid);
#endif
  return core::sample_code(plan, img, map, module_px, values, valid);
}

}  // namespace qrplate::scan
