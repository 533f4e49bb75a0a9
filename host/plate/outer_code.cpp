// Outer erasure code across frames: ISA-L fast path and table-free references
// (contract in qrplate/plate/outer_code.hpp).
#include "qrplate/plate/outer_code.hpp"

#include <isa-l/erasure_code.h>

#include <cctype>
#include <climits>
#include <cstring>
#include <string>
#include <utility>

#include "qrplate/core/gf256.hpp"
#include "qrplate/error.hpp"

namespace qrplate::plate {
namespace {

using core::gf_mul;

void check_width(std::size_t width)
{
  if (width < 1 || width > static_cast<std::size_t>(INT_MAX))
    throw invalid_argument("outer code width " + std::to_string(width) + " out of range 1.." + std::to_string(INT_MAX));
}

// Decimal digits only, no sign; -1 when empty or not all digits, a capped value when huge.
long parse_count(std::string_view s)
{
  if (s.empty()) return -1;
  long v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return -1;
    if (v < 1000000) v = v * 10 + (c - '0');
  }
  return v;
}

// Indices of the first k present rows, in row order (data rows first: they need no arithmetic).
int pick_survivors(int k, int n, const std::uint8_t* const* frames, int* rows)
{
  int count = 0;
  for (int r = 0; r < n && count < k; ++r)
    if (frames[r] != nullptr) rows[count++] = r;
  return count;
}

void check_recover_args(outer_spec spec, const std::uint8_t* const* frames, std::uint8_t* const* restore)
{
  if (frames == nullptr || restore == nullptr) throw invalid_argument("outer recover: null frame or restore array");
  for (int i = 0; i < spec.k; ++i)
    if (frames[i] == nullptr && restore[i] == nullptr)
      throw invalid_argument("outer recover: data row " + std::to_string(i) + " is missing and has no restore buffer");
}

// ---- Table-free GF(256) for the references ----

std::uint8_t gf_inverse(std::uint8_t a)  // a^254 = a^-1 for a != 0 (the group has order 255)
{
  std::uint8_t result = 1;
  std::uint8_t base = a;
  for (unsigned e = 254; e != 0; e >>= 1) {
    if (e & 1u) result = gf_mul(result, base);
    base = gf_mul(base, base);
  }
  return result;
}

// Row r of the generator [I; C] (r < k: identity row).
std::uint8_t generator_entry(int k, int r, int j)
{
  if (r < k) return r == j ? 1 : 0;
  return gf_inverse(static_cast<std::uint8_t>(r ^ j));
}

// Gauss-Jordan inversion of the n x n matrix a (destroyed) into inv; false when singular.
bool invert_reference(std::vector<std::uint8_t>& a, std::vector<std::uint8_t>& inv, int n)
{
  inv.assign(static_cast<std::size_t>(n) * n, 0);
  for (int i = 0; i < n; ++i) inv[static_cast<std::size_t>(i) * n + i] = 1;
  auto at = [n](std::vector<std::uint8_t>& m, int r, int c) -> std::uint8_t& {
    return m[static_cast<std::size_t>(r) * n + c];
  };
  for (int col = 0; col < n; ++col) {
    int pivot = col;
    while (pivot < n && at(a, pivot, col) == 0) ++pivot;
    if (pivot == n) return false;
    if (pivot != col)
      for (int c = 0; c < n; ++c) {
        std::swap(at(a, pivot, c), at(a, col, c));
        std::swap(at(inv, pivot, c), at(inv, col, c));
      }
    const std::uint8_t scale = gf_inverse(at(a, col, col));
    for (int c = 0; c < n; ++c) {
      at(a, col, c) = gf_mul(at(a, col, c), scale);
      at(inv, col, c) = gf_mul(at(inv, col, c), scale);
    }
    for (int r = 0; r < n; ++r) {
      const std::uint8_t f = at(a, r, col);
      if (r == col || f == 0) continue;
      for (int c = 0; c < n; ++c) {
        at(a, r, c) ^= gf_mul(f, at(a, col, c));
        at(inv, r, c) ^= gf_mul(f, at(inv, col, c));
      }
    }
  }
  return true;
}

}  // namespace

void validate(outer_spec spec)
{
  if (spec.k < 1)
    throw invalid_argument("outer code K (data frames per group) is " + std::to_string(spec.k) +
                           "; it must be at least 1");
  if (spec.m < 0)
    throw invalid_argument("outer code M (parity frames per group) is " + std::to_string(spec.m) +
                           "; it must be at least 0");
  if (spec.k + spec.m > max_outer_frames)
    throw invalid_argument("outer code " + std::to_string(spec.k) + "+" + std::to_string(spec.m) + " has " +
                           std::to_string(spec.k + spec.m) + " frames per group; GF(256) allows at most 256");
}

outer_spec parse_outer_spec(std::string_view text)
{
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "none") return {1, 0};

  const std::string quoted = "outer code \"" + std::string(text) + "\": ";
  const std::size_t plus = text.find('+');
  const long k = plus == std::string_view::npos ? -1 : parse_count(text.substr(0, plus));
  const long m = plus == std::string_view::npos ? -1 : parse_count(text.substr(plus + 1));
  if (k < 0 || m < 0)
    throw invalid_argument(quoted + "expected K+M with decimal K >= 1, M >= 0 (e.g. 239+16), or none");
  if (k < 1) throw invalid_argument(quoted + "K (data frames per group) must be at least 1");
  if (k + m > max_outer_frames)
    throw invalid_argument(quoted + "K+M = " + std::to_string(k + m) + " frames per group; GF(256) allows at most 256");
  if (m == 0) return {1, 0};
  return {static_cast<int>(k), static_cast<int>(m)};
}

std::string to_string(outer_spec spec)
{
  if (spec.m == 0) return "none";
  return std::to_string(spec.k) + "+" + std::to_string(spec.m);
}

// ---- ISA-L fast path ----

outer_encoder::outer_encoder(outer_spec spec, std::size_t width) : spec_(spec), width_(width)
{
  validate(spec);
  check_width(width);
  if (spec.m == 0) return;
  const int n = spec.k + spec.m;
  std::vector<unsigned char> matrix(static_cast<std::size_t>(n) * spec.k);
  gf_gen_cauchy1_matrix(matrix.data(), n, spec.k);
  tables_.resize(32u * static_cast<std::size_t>(spec.k) * spec.m);
  ec_init_tables(spec.k, spec.m, matrix.data() + static_cast<std::size_t>(spec.k) * spec.k, tables_.data());
}

void outer_encoder::encode(const std::uint8_t* const* data, std::uint8_t* const* parity) const
{
  if (spec_.m == 0) return;
  if (data == nullptr || parity == nullptr) throw invalid_argument("outer encode: null data or parity array");
  for (int j = 0; j < spec_.k; ++j)
    if (data[j] == nullptr) throw invalid_argument("outer encode: data row " + std::to_string(j) + " is null");
  for (int i = 0; i < spec_.m; ++i)
    if (parity[i] == nullptr) throw invalid_argument("outer encode: parity row " + std::to_string(i) + " is null");
  // ISA-L takes non-const pointers for its sources and tables; it only reads them.
  ec_encode_data(static_cast<int>(width_), spec_.k, spec_.m, const_cast<unsigned char*>(tables_.data()),
                 const_cast<unsigned char**>(data), const_cast<unsigned char**>(parity));
}

outer_decoder::outer_decoder(outer_spec spec, std::size_t width) : spec_(spec), width_(width)
{
  validate(spec);
  check_width(width);
  const int n = spec.k + spec.m;
  matrix_.resize(static_cast<std::size_t>(n) * spec.k);
  gf_gen_cauchy1_matrix(matrix_.data(), n, spec.k);
}

bool outer_decoder::recover(const std::uint8_t* const* frames, std::uint8_t* const* restore) const
{
  check_recover_args(spec_, frames, restore);
  const int k = spec_.k;
  const int n = k + spec_.m;

  std::vector<int> missing;
  for (int i = 0; i < k; ++i)
    if (frames[i] == nullptr) missing.push_back(i);
  if (missing.empty()) return true;

  std::vector<int> rows(k);
  if (pick_survivors(k, n, frames, rows.data()) < k) return false;

  // The survivors are the k - e present data rows, then e parity rows (pick_survivors takes data
  // rows first). Parity row a is s_a = sum_i C[a][i] d_i, so with M[a][b] = C[a][missing b],
  // M d_missing = s + C_present d_present (GF(2^8): minus is plus), and each missing row is
  //   d_missing[j] = sum_a Minv[j][a] s_a + sum_i (sum_a Minv[j][a] C[a][i]) d_i.
  // Only the e x e matrix M is inverted: inverting all k x k survivor rows (e.g. 239 x 239, ~14 M
  // multiplies) cost ~25 ms a group, more than restoring its frames.
  const int nmiss = static_cast<int>(missing.size());
  const int present = k - nmiss;
  const auto coefficient = [&](int row, int column) {
    return matrix_[static_cast<std::size_t>(row) * k + static_cast<std::size_t>(column)];
  };
  const std::size_t ee = static_cast<std::size_t>(nmiss) * nmiss;
  std::vector<unsigned char> sub(ee), sub_inv(ee);
  for (int a = 0; a < nmiss; ++a)
    for (int b = 0; b < nmiss; ++b) sub[static_cast<std::size_t>(a) * nmiss + b] = coefficient(rows[present + a], missing[b]);
  if (gf_invert_matrix(sub.data(), sub_inv.data(), nmiss) != 0) return false;  // cannot happen for an MDS code

  std::vector<unsigned char> decode_rows(static_cast<std::size_t>(nmiss) * k);
  std::vector<unsigned char*> sources(k), outputs(nmiss);
  for (int j = 0; j < nmiss; ++j) {
    unsigned char* row = &decode_rows[static_cast<std::size_t>(j) * k];
    const unsigned char* inv = &sub_inv[static_cast<std::size_t>(j) * nmiss];
    for (int s = 0; s < present; ++s) {
      std::uint8_t c = 0;
      for (int a = 0; a < nmiss; ++a) c ^= core::gf_mul(inv[a], coefficient(rows[present + a], rows[s]));
      row[s] = c;
    }
    for (int a = 0; a < nmiss; ++a) row[present + a] = inv[a];
    outputs[j] = restore[missing[j]];
  }
  for (int r = 0; r < k; ++r) sources[r] = const_cast<unsigned char*>(frames[rows[r]]);
  std::vector<unsigned char> tables(32u * static_cast<std::size_t>(k) * nmiss);
  ec_init_tables(k, nmiss, decode_rows.data(), tables.data());
  ec_encode_data(static_cast<int>(width_), k, nmiss, tables.data(), sources.data(), outputs.data());
  return true;
}

// ---- References ----

void outer_encode_reference(outer_spec spec, std::size_t width, const std::uint8_t* const* data,
                            std::uint8_t* const* parity)
{
  validate(spec);
  check_width(width);
  for (int i = 0; i < spec.m; ++i) {
    std::uint8_t* out = parity[i];
    std::memset(out, 0, width);
    for (int j = 0; j < spec.k; ++j) {
      const std::uint8_t c = generator_entry(spec.k, spec.k + i, j);
      for (std::size_t b = 0; b < width; ++b) out[b] ^= gf_mul(c, data[j][b]);
    }
  }
}

bool outer_recover_reference(outer_spec spec, std::size_t width, const std::uint8_t* const* frames,
                             std::uint8_t* const* restore)
{
  validate(spec);
  check_width(width);
  check_recover_args(spec, frames, restore);
  const int k = spec.k;
  const int n = k + spec.m;
  bool any_missing = false;
  for (int i = 0; i < k; ++i) any_missing = any_missing || frames[i] == nullptr;
  if (!any_missing) return true;

  std::vector<int> rows(k);
  if (pick_survivors(k, n, frames, rows.data()) < k) return false;
  std::vector<std::uint8_t> b(static_cast<std::size_t>(k) * k), b_inv;
  for (int r = 0; r < k; ++r)
    for (int j = 0; j < k; ++j) b[static_cast<std::size_t>(r) * k + j] = generator_entry(k, rows[r], j);
  if (!invert_reference(b, b_inv, k)) return false;

  for (int i = 0; i < k; ++i) {
    if (frames[i] != nullptr) continue;
    std::uint8_t* out = restore[i];
    std::memset(out, 0, width);
    for (int r = 0; r < k; ++r) {
      const std::uint8_t c = b_inv[static_cast<std::size_t>(i) * k + r];
      if (c == 0) continue;
      for (std::size_t x = 0; x < width; ++x) out[x] ^= gf_mul(c, frames[rows[r]][x]);
    }
  }
  return true;
}

}  // namespace qrplate::plate
