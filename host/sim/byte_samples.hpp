// One row of an 8-bit TIFF strip made 16-bit samples (scan_io.cpp's deflate fast path): with the
// horizontal predictor, each byte is the difference from its left neighbour modulo 256, so the
// row is a running sum; then every sample widened. The fast path takes sixteen bytes at a time
// (SSE2: a prefix sum in four shifted adds, the previous block's last sum carried in), where the
// reference's one add per byte waits for the last (~5% of a CPU scan decode of the simulator's
// 8-bit tiles). tests/test_scan_io.cpp holds them equal on random rows.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qrplate::sim {

// dst[x] = the row's sample x for x < width: src[x] itself, or with `predictor` the sum of
// src[0..x] modulo 256. With write_back the undone bytes also replace src (a row kept as bytes).
void row_bytes_to_samples(std::uint8_t* src, std::uint16_t* dst, std::size_t width, bool predictor, bool write_back);

// The same, a byte at a time; sum: the running sum before src[0] (0 for a whole row).
void row_bytes_to_samples_reference(std::uint8_t* src, std::uint16_t* dst, std::size_t width, bool predictor,
                                    bool write_back, std::uint8_t sum = 0);

// A 16-bit row under the horizontal predictor made samples in place: row[x] = the sum of
// row[0..x] modulo 2^16 (eight at a time; the reference, one at a time, from the running sum
// `sum` before row[0]).
void undo_row_predictor(std::uint16_t* row, std::size_t width);
void undo_row_predictor_reference(std::uint16_t* row, std::size_t width, std::uint16_t sum = 0);

}  // namespace qrplate::sim
