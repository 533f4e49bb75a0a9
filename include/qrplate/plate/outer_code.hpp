// The outer erasure code: frames are taken in groups of K data frames followed by M parity
// frames, and a systematic Reed-Solomon code over GF(256) runs across the frames of a group, one
// byte position at a time. Any K of the K+M frames of a group give back all K data bodies, so a
// group survives the loss of any M codes (unreadable, failed CRC, scratched off).
//
// Coding rows are `width` bytes: a data row is the frame's data body (length prefix + payload)
// zero-padded to width (pad_data_body in frame.hpp); a parity row is a parity frame's body. The
// plate layer uses width = frame_body_bytes(version, ecc).
//
// The code (a contract: parity on a plate must be recomputable by other tools): the generator is
// the (K+M) x K matrix [I; C] with C[i][j] = 1 / ((K + i) XOR j) in GF(2^8) modulo 0x11D
// (i = 0..M-1, j = 0..K-1), the Cauchy matrix of ISA-L's gf_gen_cauchy1_matrix. Parity row i,
// byte b = XOR over j of C[i][j] * data[j][b]. Every square submatrix of a Cauchy matrix is
// invertible, so the code is MDS for K + M <= 256. The field polynomial is the QR one
// (x^8+x^4+x^3+x^2+1, qrplate/core/gf256.hpp), which is also ISA-L's.
//
// A short last group (fewer than K data frames left) is coded with its absent data rows taken as
// all-zero; a decoder passes a zero row for them as present.
//
// Fast path: ISA-L (ec_init_tables / ec_encode_data, gf_invert_matrix). References beside it:
// outer_encode_reference and outer_recover_reference, table-free, held to the fast path by tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qrplate::plate {

inline constexpr int max_outer_frames = 256;  // K + M: the field has 256 elements

struct outer_spec {
  int k = 0;  // data frames per group
  int m = 0;  // parity frames per group; 0: no outer code
};

constexpr bool operator==(outer_spec a, outer_spec b)
{
  return a.k == b.k && a.m == b.m;
}
constexpr bool operator!=(outer_spec a, outer_spec b)
{
  return !(a == b);
}

// "K+M" (decimal, e.g. "239+16") or "none" (any case) -> {1, 0}. "K+0" also means no outer code
// and reads as {1, 0}, so parse_outer_spec(to_string(s)) == s. Throws qrplate::invalid_argument
// unless 1 <= K, 0 <= M, K + M <= 256.
outer_spec parse_outer_spec(std::string_view text);

// "239+16", or "none" when m == 0.
std::string to_string(outer_spec spec);

// Throws qrplate::invalid_argument unless 1 <= k, 0 <= m, k + m <= 256.
void validate(outer_spec spec);

// Computes the M parity rows of a group. Tables are built once; encode is const and may be
// called from many threads at once.
class outer_encoder {
 public:
  // Throws qrplate::invalid_argument for an invalid spec or a width outside 1..INT_MAX.
  outer_encoder(outer_spec spec, std::size_t width);

  // data: k pointers to width bytes; parity: m pointers to width bytes (written). With m == 0
  // nothing is written.
  void encode(const std::uint8_t* const* data, std::uint8_t* const* parity) const;

  outer_spec spec() const { return spec_; }
  std::size_t width() const { return width_; }

 private:
  outer_spec spec_;
  std::size_t width_;
  std::vector<unsigned char> tables_;  // ISA-L expanded tables of the parity rows, 32 * k * m bytes
};

// Restores missing data rows of a group. recover is const and may be called from many threads.
class outer_decoder {
 public:
  // Throws qrplate::invalid_argument for an invalid spec or a width outside 1..INT_MAX.
  outer_decoder(outer_spec spec, std::size_t width);

  // frames: k + m pointers (data rows 0..k-1, then parity rows 0..m-1), nullptr = missing.
  // restore: k pointers; for every missing data row i, restore[i] receives its width bytes
  // (restore[i] of a present row is neither read nor written, and may be null). Restore buffers
  // must not overlap the present rows.
  // Returns true when every data row is present or restored (at least k rows present); false
  // when fewer than k rows are present, and then nothing is written.
  // Throws qrplate::invalid_argument for a null array or a null restore[i] of a missing row.
  bool recover(const std::uint8_t* const* frames, std::uint8_t* const* restore) const;

  outer_spec spec() const { return spec_; }
  std::size_t width() const { return width_; }

 private:
  outer_spec spec_;
  std::size_t width_;
  std::vector<unsigned char> matrix_;  // the (k + m) x k generator [I; C], row-major
};

// Table-free references (core::gf_mul, coefficients computed here, Gauss-Jordan elimination):
// same contracts as outer_encoder::encode and outer_decoder::recover.
void outer_encode_reference(outer_spec spec, std::size_t width, const std::uint8_t* const* data,
                            std::uint8_t* const* parity);
bool outer_recover_reference(outer_spec spec, std::size_t width, const std::uint8_t* const* frames,
                             std::uint8_t* const* restore);

}  // namespace qrplate::plate
