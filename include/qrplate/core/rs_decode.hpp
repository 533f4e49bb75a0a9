// Reed-Solomon decoding of one QR Code block with errors and erasures (ISO 18004:2015 §7.5.2;
// the misdecode protection of Table 9). The inverse of reed_solomon.hpp.
//
// Conventions, shared with the encoder: the block is data followed by `degree` parity bytes,
// byte 0 the highest coefficient, so byte j is the coefficient of x^(n-1-j) and its error
// locator is X = alpha^(n-1-j). The generator's roots are alpha^0 .. alpha^(degree-1), so the
// syndromes are S_k = r(alpha^k), k = 0..degree-1.
//
// Steps, each a plain loop over caller- or stack-held arrays of at most rs_max_degree + 1 bytes:
//   1. syndromes (all zero: the block is a codeword, returned untouched as `clean`);
//   2. erasure locator Gamma(x) = prod (1 - X_j x) over the distinct erased positions;
//   3. Berlekamp-Massey started from Gamma (Blahut's errata form), which yields the errata
//      locator Lambda = Gamma * sigma and its length L = e + t;
//   4. Chien search over the n positions of the block: every root must be one of them;
//   5. Forney: Omega = Lambda * S mod x^L and, because the first root is alpha^0,
//      Y = X * Omega(X^-1) / Lambda'(X^-1)   (the X^(1-b) factor with b = 0);
//   6. acceptance: e + 2 * (errors outside the erasures) <= degree - p, and the correction
//      pattern's syndromes must equal S, i.e. the corrected block is a codeword (syndromes are
//      linear, so checking the pattern costs degree * L products instead of n * degree and needs
//      no restore). With L distinct roots in the block and 2L - e <= degree this already follows
//      from steps 3-5; the check stays as a cheap guard.
// The block is written only after step 6 passes, so `failed` always leaves it as it was.
//
// Guarantee: whenever the true corruption has e + 2t <= degree - p, the result is the original
// block (a second codeword within that budget cannot exist: the code's minimum distance is
// degree + 1). Past the budget the decoder reports `failed` unless the received block lies within
// the budget of another codeword, which it then returns as `corrected`; that miscorrection is
// inherent in bounded-distance decoding and is caught downstream by the plate frame's CRC32C.
// Its rate depends on the redundancy left unspent, m = degree - p - e: error-only decoding of QR
// blocks (m >= 7) almost never miscorrects, but erasures spend detection capacity: on long
// blocks about 1/(m/2)! of such words decode for even m, 256x fewer for odd m, 256^-p fewer
// with protection, and with p = 0 and e = degree every block "decodes"
// (tests/test_rs_decode.cpp measures it). Callers that can afford it should leave m >= 7.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/gf256.hpp"
#include "qrplate/core/reed_solomon.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

inline constexpr int rs_max_block = 255;  // a Reed-Solomon block over GF(256) has at most 255 bytes

enum class rs_status : std::uint8_t { clean, corrected, failed };

struct rs_result {
  rs_status status;
  int errors;    // bytes outside the erasures that were changed
  int erasures;  // distinct erased positions the decoder used (0 when the block was clean)
};

// ISO 18004:2015 Table 9, note: the small symbols keep p codewords of their error correction for
// misdecode protection, so a decoder corrects only e + 2t <= degree - p.
QRP_HD constexpr int misdecode_protection(int version, ecc_level ecc)
{
  if (version == 1) {
    switch (ecc) {
      case ecc_level::L:
        return 3;
      case ecc_level::M:
        return 2;
      default:
        return 1;  // Q, H
    }
  }
  if (version == 2 && ecc == ecc_level::L) return 2;
  if (version == 3 && ecc == ecc_level::L) return 1;
  return 0;
}

namespace rs_detail {

// exp[i] = alpha^i for i in 0..509 (doubled so a sum of two logs needs no reduction);
// log[a] for a != 0 (log[0] is unused and 0).
struct gf_lut {
  std::uint8_t exp[512];
  std::uint8_t log[256];
};

QRP_HD constexpr gf_lut make_gf_lut()
{
  gf_lut t{};
  std::uint8_t x = 1;
  for (int i = 0; i < 255; ++i) {
    t.exp[i] = x;
    t.exp[i + 255] = x;
    t.log[x] = static_cast<std::uint8_t>(i);
    x = gf_mul(x, 2);
  }
  t.exp[510] = t.exp[0];
  t.exp[511] = t.exp[1];
  return t;
}

// A static constexpr local, not a namespace-scope array: nvcc lets device code read only these.
QRP_HD inline const gf_lut& lut()
{
  static constexpr gf_lut table = make_gf_lut();
  return table;
}

QRP_HD inline std::uint8_t mul(std::uint8_t a, std::uint8_t b)
{
  const gf_lut& t = lut();
  return (a == 0 || b == 0) ? std::uint8_t{0} : t.exp[t.log[a] + t.log[b]];
}

// a / b for b != 0.
QRP_HD inline std::uint8_t divide(std::uint8_t a, std::uint8_t b)
{
  const gf_lut& t = lut();
  return a == 0 ? std::uint8_t{0} : t.exp[t.log[a] + 255 - t.log[b]];
}

// alpha^e for e >= 0.
QRP_HD inline std::uint8_t alpha_pow(int e)
{
  return lut().exp[e % 255];
}

// p(x) = c[0] + c[1] x + ... + c[deg] x^deg at x = alpha^e (e in 0..254).
QRP_HD inline std::uint8_t eval_at_alpha_pow(const std::uint8_t* c, int deg, int e)
{
  const gf_lut& t = lut();
  std::uint8_t y = 0;
  int power = 0;  // e * i mod 255
  for (int i = 0; i <= deg; ++i) {
    if (c[i] != 0) y ^= t.exp[t.log[c[i]] + power];
    power += e;
    if (power >= 255) power -= 255;
  }
  return y;
}

}  // namespace rs_detail

// syndromes[k] = r(alpha^k) for k = 0..degree-1 (caller array of `degree` bytes), with
// r(x) = block[0] x^(n-1) + ... + block[n-1]. Returns true when all are zero, i.e. the block is a
// codeword. Requires 1 <= degree <= n <= 255. The batched paths run this on every block and
// rs_decode only on the blocks where it returns false.
QRP_HD inline bool rs_syndromes(const std::uint8_t* block, int n, int degree, std::uint8_t* syndromes)
{
  const rs_detail::gf_lut& t = rs_detail::lut();
  std::uint8_t any = 0;
  for (int k = 0; k < degree; ++k) {
    std::uint8_t s = 0;  // Horner: s = s * alpha^k + byte
    for (int i = 0; i < n; ++i) s = static_cast<std::uint8_t>((s == 0 ? 0 : t.exp[t.log[s] + k]) ^ block[i]);
    syndromes[k] = s;
    any |= s;
  }
  return any == 0;
}

// Decodes block[0..n-1] (data then `degree` parity bytes) in place.
//   n: 1..255; degree: 1..min(n, rs_max_degree).
//   erasure_positions[0..erasure_count-1]: indices of bytes known to be unreliable (their values
//     are ignored; they may also be right). Duplicates count once; an index >= n fails the call.
//   misdecode_protection: p >= 0; corrects e erasures and t errors when e + 2t <= degree - p.
// Returns `clean` (block untouched, counts 0) when the block already is a codeword, `corrected`
// with the counts, or `failed` with the block untouched. Stack use: about 6 * (rs_max_degree + 1)
// bytes plus a 32-byte erasure bitmap; no heap.
QRP_HD inline rs_result rs_decode(std::uint8_t* block, int n, int degree, const std::uint8_t* erasure_positions,
                                  int erasure_count, int misdecode_protection = 0)
{
  using rs_detail::alpha_pow;
  using rs_detail::divide;
  using rs_detail::mul;
  constexpr int D = rs_max_degree;
  rs_result result{rs_status::failed, 0, 0};

  if (block == nullptr || n < 1 || n > rs_max_block || degree < 1 || degree > D || degree > n) return result;
  if (misdecode_protection < 0 || erasure_count < 0 || (erasure_count > 0 && erasure_positions == nullptr))
    return result;
  const int budget = degree - misdecode_protection;  // e + 2t must not exceed this

  // 1. Syndromes.
  std::uint8_t S[D];
  if (rs_syndromes(block, n, degree, S)) {
    result.status = rs_status::clean;
    return result;
  }
  if (budget <= 0) return result;

  // 2. Distinct erasures and their locator Gamma(x), lowest coefficient first.
  std::uint32_t erased[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::uint8_t lambda[D + 1];  // errata locator, starts as Gamma
  for (int i = 0; i <= D; ++i) lambda[i] = 0;
  lambda[0] = 1;
  int e = 0;
  for (int i = 0; i < erasure_count; ++i) {
    const int pos = erasure_positions[i];
    if (pos >= n) return result;
    const std::uint32_t bit = 1u << (pos & 31);
    if (erased[pos >> 5] & bit) continue;
    erased[pos >> 5] |= bit;
    if (++e > budget) {
      result.erasures = e;
      return result;
    }
    // lambda *= (1 + X x), X = alpha^(n-1-pos)
    const std::uint8_t X = alpha_pow(n - 1 - pos);
    for (int j = e; j > 0; --j) lambda[j] ^= mul(lambda[j - 1], X);
  }
  result.erasures = e;

  // 3. Berlekamp-Massey from Gamma (Blahut). Invariants: deg lambda <= L and deg(x B) <= r+1+e-L,
  // so every degree stays <= degree <= D.
  std::uint8_t B[D + 1];
  for (int i = 0; i <= D; ++i) B[i] = lambda[i];
  int L = e;
  for (int r = e; r < degree; ++r) {
    std::uint8_t delta = 0;
    for (int j = 0; j <= L && j <= r; ++j) delta ^= mul(lambda[j], S[r - j]);
    for (int i = D; i > 0; --i) B[i] = B[i - 1];  // B = x B
    B[0] = 0;
    if (delta == 0) continue;
    std::uint8_t T[D + 1];
    for (int i = 0; i <= D; ++i) T[i] = static_cast<std::uint8_t>(lambda[i] ^ mul(delta, B[i]));
    if (2 * L <= r + e) {
      for (int i = 0; i <= D; ++i) B[i] = divide(lambda[i], delta);
      L = r + 1 + e - L;
    }
    for (int i = 0; i <= D; ++i) lambda[i] = T[i];
  }
  if (L > degree || 2 * L - e > budget) return result;  // more errata than the budget allows
  int deg = L;
  while (deg > 0 && lambda[deg] == 0) --deg;
  if (deg != L) return result;

  // 4. Chien search: byte j is a root position when lambda(X_j^-1) = 0, X_j^-1 = alpha^(255-(n-1-j)).
  std::uint8_t where[D];
  int roots = 0;
  for (int j = 0; j < n; ++j) {
    const int inv_exp = (255 - (n - 1 - j)) % 255;
    if (rs_detail::eval_at_alpha_pow(lambda, L, inv_exp) != 0) continue;
    if (roots == L) return result;  // cannot happen for deg L; guards the array
    where[roots++] = static_cast<std::uint8_t>(j);
  }
  if (roots != L) return result;  // some roots are not positions of this block

  // 5. Forney. Omega = lambda * S mod x^L (deg Omega < L for a consistent errata pattern; a
  // wrong Omega in an inconsistent case is caught by step 6).
  std::uint8_t omega[D];
  for (int k = 0; k < L; ++k) {
    std::uint8_t acc = 0;
    for (int i = 0; i <= k; ++i) acc ^= mul(lambda[i], S[k - i]);
    omega[k] = acc;
  }
  std::uint8_t dlambda[D];  // formal derivative: in characteristic 2 only odd powers survive
  for (int i = 0; i < L; ++i) dlambda[i] = (i % 2 == 0) ? lambda[i + 1] : std::uint8_t{0};
  std::uint8_t magnitude[D];
  int errors = 0;
  for (int l = 0; l < L; ++l) {
    const int j = where[l];
    const int x_exp = n - 1 - j;
    const int inv_exp = (255 - x_exp) % 255;
    const std::uint8_t num = rs_detail::eval_at_alpha_pow(omega, L - 1, inv_exp);
    const std::uint8_t den = rs_detail::eval_at_alpha_pow(dlambda, L - 1, inv_exp);
    if (den == 0) return result;
    magnitude[l] = mul(alpha_pow(x_exp), divide(num, den));  // the X^(1-b) factor, b = 0
    if (magnitude[l] != 0 && !(erased[j >> 5] & (1u << (j & 31)))) ++errors;
  }

  // 6. Acceptance: the pattern must reproduce every syndrome and fit the budget.
  if (e + 2 * errors > budget) return result;
  for (int k = 0; k < degree; ++k) {
    std::uint8_t s = 0;
    for (int l = 0; l < L; ++l) s ^= mul(magnitude[l], alpha_pow((n - 1 - where[l]) * k));
    if (s != S[k]) return result;
  }
  for (int l = 0; l < L; ++l) block[where[l]] ^= magnitude[l];
  result.status = rs_status::corrected;
  result.errors = errors;
  return result;
}

}  // namespace qrplate::core
