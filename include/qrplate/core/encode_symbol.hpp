// One symbol from its data codewords: error correction and interleaving, placement, the eight
// masks scored with the ISO penalty (or a forced mask), and the final matrix. The per-code entry
// point that the CPU backend loops over and the CUDA kernels call.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/core/codewords.hpp"
#include "qrplate/core/penalty.hpp"
#include "qrplate/core/version_plan.hpp"

namespace qrplate::core {

inline constexpr int auto_mask = -1;

// Scratch for one symbol (~30 KB). One per CPU thread.
struct encode_workspace {
  std::uint8_t data[spec::max_data_codewords];
  std::uint8_t codewords[spec::max_total_codewords];
  std::uint64_t rows[max_matrix_words];  // unmasked symbol: function patterns and data
  std::uint64_t cols[max_matrix_words];  // its transpose
  padded_matrix m;
  padded_matrix t;
  detail::run_features features;
};

// Writes the unmasked symbol (function patterns + codewords, format area light) into ws.rows.
QRP_HD inline void place_codewords(const version_plan& plan, const std::uint8_t* codewords, std::uint64_t* rows)
{
  const int words = plan.size * plan.words;
  for (int i = 0; i < words; ++i) rows[i] = plan.base[i];
  // The remainder bits after the last codeword stay light.
  for (int cw = 0; cw < plan.layout.total_codewords; ++cw) {
    const unsigned byte = codewords[cw];
    const int shift = plan.slot_shift[cw];
    if (shift >= 0) {
      std::uint64_t* word = rows + plan.slot_first[cw];
      const int step = plan.slot_step[cw];
      word[0] |= static_cast<std::uint64_t>((byte >> 6) & 3u) << shift;
      word[step] |= static_cast<std::uint64_t>((byte >> 4) & 3u) << shift;
      word[2 * step] |= static_cast<std::uint64_t>((byte >> 2) & 3u) << shift;
      word[3 * step] |= static_cast<std::uint64_t>(byte & 3u) << shift;
      continue;
    }
    for (int t = 0; t < 8; ++t) {
      const unsigned pos = plan.placement[8 * cw + t];
      rows[pos >> 6] |= static_cast<std::uint64_t>((byte >> (7 - t)) & 1u) << (pos & 63);
    }
  }
}

// Plain reference for place_codewords: every bit through the placement table.
QRP_HD inline void place_codewords_reference(const version_plan& plan, const std::uint8_t* codewords,
                                             std::uint64_t* rows)
{
  const int words = plan.size * plan.words;
  for (int i = 0; i < words; ++i) rows[i] = plan.base[i];
  const int bits = plan.layout.total_codewords * 8;
  for (int k = 0; k < bits; ++k) {
    const unsigned pos = plan.placement[k];
    rows[pos >> 6] |= static_cast<std::uint64_t>((codewords[k >> 3] >> (7 - (k & 7))) & 1u) << (pos & 63);
  }
}

// Penalty of each of the eight masks applied to ws.rows / ws.cols.
template <int W>
QRP_HD inline void score_masks(const version_plan& plan, encode_workspace& ws, int scores[8])
{
  const int n = plan.size;
  for (int w = 0; w < W; ++w)
    for (int i = 0; i < padded_rows; ++i) ws.m.plane[w][i] = ws.t.plane[w][i] = 0;
  for (int mask = 0; mask < 8; ++mask) {
    const std::uint64_t* mr = plan.mask_rows[mask];
    const std::uint64_t* mc = plan.mask_cols[mask];
    for (int i = 0; i < n; ++i)
      for (int w = 0; w < W; ++w) {
        ws.m.plane[w][penalty_pad + i] = ws.rows[i * W + w] ^ mr[i * W + w];
        ws.t.plane[w][penalty_pad + i] = ws.cols[i * W + w] ^ mc[i * W + w];
      }
    scores[mask] = penalty_fast_padded<W>(ws.m, ws.t, n, ws.features);
  }
}

// The mask with the lowest penalty; ties go to the lower mask number.
QRP_HD inline int argmin_mask(const int scores[8])
{
  int best = 0;
  for (int mask = 1; mask < 8; ++mask)
    if (scores[mask] < scores[best]) best = mask;
  return best;
}

// From data codewords in ws.data to the final symbol in out (size * words words).
// mask: auto_mask or 0..7. scores (optional, 8 entries) receives every mask's penalty when the
// mask is automatic. Returns the mask used.
QRP_HD inline int encode_from_data_codewords(const version_plan& plan, encode_workspace& ws, int mask,
                                             std::uint64_t* out, int* scores = nullptr)
{
  add_ecc_and_interleave(ws.data, plan.version, plan.ecc, plan.rs, ws.codewords);
  place_codewords(plan, ws.codewords, ws.rows);
  if (mask == auto_mask) {
    int local[8];
    int* s = scores ? scores : local;
    switch (plan.words) {
      case 1:
        transpose_matrix<1>(ws.rows, ws.cols, plan.size);
        score_masks<1>(plan, ws, s);
        break;
      case 2:
        transpose_matrix<2>(ws.rows, ws.cols, plan.size);
        score_masks<2>(plan, ws, s);
        break;
      default:
        transpose_matrix<3>(ws.rows, ws.cols, plan.size);
        score_masks<3>(plan, ws, s);
        break;
    }
    mask = argmin_mask(s);
  }
  const std::uint64_t* overlay = plan.mask_rows[mask];
  const int words = plan.size * plan.words;
  for (int i = 0; i < words; ++i) out[i] = ws.rows[i] ^ overlay[i];
  return mask;
}

// One byte-mode payload to a symbol. Returns the mask used, or -1 when the payload does not fit
// (out is then left all light).
QRP_HD inline int encode_byte_payload(const version_plan& plan, const std::uint8_t* payload, std::uint32_t length,
                                      int mask, encode_workspace& ws, std::uint64_t* out)
{
  if (!build_byte_mode_codewords(payload, length, plan.version, plan.ecc, ws.data)) {
    for (int i = 0; i < plan.size * plan.words; ++i) out[i] = 0;
    return -1;
  }
  return encode_from_data_codewords(plan, ws, mask, out);
}

}  // namespace qrplate::core
