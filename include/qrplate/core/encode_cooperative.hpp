// One symbol encoded by a group of threads that cooperate: the GPU fast path of
// encode_byte_payload (encode_symbol.hpp), which stays its reference.
//
// The per-thread form needs ~30 KB of scratch per code, which on a GPU lives in global memory;
// here a group of `threads` threads (a thread block or a slice of one) shares ~98 KB (version
// 40; most of it the masked planes) of on-chip memory per code and splits every step over its
// threads:
//   data       one codeword per thread: each byte-mode codeword is a function of two payload
//              bytes, so the bit stream needs no serial writer;
//   parity     one RS block per thread, by the core's own table LFSR (rs_remainder, the
//              plan's table): a data codeword costs one 32-byte table row and a shift for all d
//              parity codewords, ~10x less work than a thread per parity codeword with d log/exp
//              products each (bench_encode's BM_cooperative_on_cpu rows time each phase on a
//              CPU core);
//   place      one matrix word per thread, gathered through per-version ops that take one
//              module or a row's pair of modules from the codeword buffer (interleaving folded
//              in);
//   transpose  one 8 x 8 bit tile per thread, transposed in a register;
//   mask       the symbol under each of the 8 masks, rows and columns, once per word, with
//              light lines around it (the penalty tasks read each line ~4.6 times);
//   score      one penalty task per thread: a mask, an orientation, a word column and 8 lines
//              of N1/N3 (read through a 37-word window of a masked plane, without bounds
//              checks), or a mask and 8 rows of N2 and dark modules;
//   total      one mask per thread: its tasks added up (integers: any order gives the same sum);
//   choose     one thread takes the lowest total (ties: lower mask);
//   write      one output word per thread.
// Phases are separated by barriers and a phase's threads never touch each other's output bytes, so
// the tests run the same phases on the CPU one thread after another, in shuffled orders and for
// several group sizes, and hold the result and the eight mask scores to the core.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/core/codewords.hpp"
#include "qrplate/core/encode_symbol.hpp"
#include "qrplate/core/gf256.hpp"
#include "qrplate/core/penalty.hpp"
#include "qrplate/core/reed_solomon.hpp"
#include "qrplate/core/version_plan.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

inline constexpr std::uint16_t no_source = 0xFFFF;
inline constexpr int penalty_chunk = 8;  // lines per penalty task
// The lines a penalty task reads around its chunk (run_penalty_chunk's window): c0 - 8 ..
// c0 + 28 for the chunk starting at line c0 (21 past its last line). The masked planes carry 8
// light lines before line 0 and 28 after the last line (a chunk starts at size - 1 at most), so
// the window is read without bounds checks.
inline constexpr int window_before = 8;
inline constexpr int window_after = penalty_chunk + 20;

// What the cooperative path needs of one (version, level) beyond its version_plan (~205 KB),
// shared read-only by every code of a batch.
struct cooperative_tables {
  // module_source[row * 64 * words + col]: bit 8b + t (t = 0 the most significant) of the
  // codeword buffer (data codewords in order, then the parity of block 0, 1, ...) that fills
  // module (row, col); no_source for function modules, remainder bits and lanes past the edge.
  // The placement's plain form, and what place_ops are built from.
  std::uint16_t module_source[max_matrix_words * 64];
  // The same as a gather per matrix word: place_ops[j * max_matrix_words + word], j <
  // place_count[word] (op-major: the threads of the place phase, a word each, read neighbouring
  // entries together, one 32-byte sector for 8 threads instead of one each), each
  // the module at a position from one bit of a buffer byte or, with place_op_pair, the modules at
  // position and position + 1 from two adjacent bits of one byte: the zigzag gives a row's two
  // modules of a column pair consecutive bits, so most data modules go two at a time.
  std::uint32_t place_ops[max_matrix_words * 64];
  std::uint8_t place_count[max_matrix_words];
};

// place_ops entries: bits 0-11 the buffer byte, 12-14 the right shift that brings the bit (or the
// pair's lower bit) to bit 0, 15 the pair flag, 16-21 the position in the word.
inline constexpr std::uint32_t place_op_pair = 1u << 15;
static_assert(spec::max_total_codewords <= 0xFFF, "a buffer byte fits 12 bits");

QRP_HD constexpr std::uint32_t place_op(unsigned source_bit, bool pair, int position)
{
  // bit 8b + t is bit 7 - t of byte b; a pair (source_bit at position + 1, the next bit at
  // position) ends one bit lower
  return (source_bit >> 3) | (7u - (source_bit & 7u) - (pair ? 1u : 0u)) << 12 | (pair ? place_op_pair : 0u) |
         static_cast<std::uint32_t>(position) << 16;
}

// First data codeword of block blk in the data codewords' order (short blocks come first).
QRP_HD inline int block_data_start(const spec::block_layout& b, int blk)
{
  return blk * b.short_data + (blk > b.short_blocks ? blk - b.short_blocks : 0);
}

QRP_HD inline void build_cooperative_tables(const version_plan& plan, cooperative_tables& t)
{
  const spec::block_layout& b = plan.layout;
  const int d = b.ecc_per_block;
  // Symbol order of the codewords (§7.6, as add_ecc_and_interleave writes them) to the buffer.
  for (int i = 0; i < max_matrix_words * 64; ++i) t.module_source[i] = no_source;
  int k = 0;  // codeword number in symbol order
  auto put = [&](int source) {
    for (int bit = 0; bit < 8; ++bit)
      t.module_source[plan.placement[8 * k + bit]] = static_cast<std::uint16_t>(8 * source + bit);
    ++k;
  };
  for (int i = 0; i < b.short_data; ++i)
    for (int blk = 0; blk < b.blocks; ++blk) put(block_data_start(b, blk) + i);
  for (int blk = b.short_blocks; blk < b.blocks; ++blk) put(block_data_start(b, blk) + b.short_data);
  for (int i = 0; i < d; ++i)
    for (int blk = 0; blk < b.blocks; ++blk) put(b.data_codewords + blk * d + i);

  // The gather ops, position by position: a right module (pos + 1) whose source is bit s and a
  // left one (pos) with bit s + 1 of the same byte make one op.
  for (int idx = 0; idx < max_matrix_words; ++idx) {
    const std::uint16_t* src = t.module_source + 64 * idx;
    std::uint32_t* ops = t.place_ops + idx;  // op j at ops[j * max_matrix_words]
    int count = 0;
    for (int pos = 0; pos < 64; ++pos) {
      const unsigned left = src[pos];
      if (left == no_source) continue;
      const unsigned right = pos + 1 < 64 ? src[pos + 1] : no_source;
      if (right != no_source && left == right + 1 && (right & 7u) != 7u) {
        ops[max_matrix_words * count++] = place_op(right, true, pos);
        ++pos;
      } else {
        ops[max_matrix_words * count++] = place_op(left, false, pos);
      }
    }
    t.place_count[idx] = static_cast<std::uint8_t>(count);
  }
}

// Where one code's shared memory holds what (byte offsets, each a multiple of 8).
struct cooperative_layout {
  int chunks;       // penalty tasks per word column: ceil(size / penalty_chunk)
  int run_tasks;    // 8 masks x 2 orientations x words x chunks (N1, N3)
  int block_tasks;  // 8 masks x chunks (N2 and dark modules, on rows)
  int plane_lines;  // lines of a masked plane: window_before + size + window_after
  std::uint32_t rows, cols, planes, runs, blocks, darks, result, codewords;  // where each region starts
  std::uint32_t bytes;  // per code
};

QRP_HD inline cooperative_layout make_cooperative_layout(const version_plan& plan)
{
  cooperative_layout l{};
  l.chunks = (plan.size + penalty_chunk - 1) / penalty_chunk;
  l.run_tasks = 8 * 2 * plan.words * l.chunks;
  l.block_tasks = 8 * l.chunks;
  std::uint32_t at = 0;
  auto take = [&at](std::uint32_t bytes) {
    const std::uint32_t offset = at;
    at = (at + bytes + 7u) & ~7u;
    return offset;
  };
  const std::uint32_t words = static_cast<std::uint32_t>(plan.size * plan.words);
  l.plane_lines = window_before + plan.size + window_after;
  l.rows = take(8 * words);
  l.cols = take(8 * words);
  l.planes = take(8 * 16 * static_cast<std::uint32_t>(plan.words * l.plane_lines));
  l.runs = take(4 * static_cast<std::uint32_t>(l.run_tasks));
  l.blocks = take(4 * static_cast<std::uint32_t>(l.block_tasks));
  l.darks = take(4 * static_cast<std::uint32_t>(l.block_tasks));
  l.result = take(4 * 9);  // mask used (-1: too long), then the eight scores
  l.codewords = take(static_cast<std::uint32_t>(plan.layout.total_codewords));
  l.bytes = at;
  return l;
}

// One code's shared memory, bound to a base address (8-byte aligned).
struct cooperative_code {
  std::uint64_t* rows;  // the unmasked symbol
  std::uint64_t* cols;  // its transpose
  // The symbol under each mask, as the penalty reads it: plane (mask, o, w) is word column w of
  // rows (o = 0) or cols (o = 1) XOR the mask's overlay, line by line, with light lines around;
  // plane(mask, o, w)[i] is line i, for -window_before <= i < size + window_after.
  std::uint64_t* planes;
  int* runs;
  int* blocks;
  int* darks;
  int* result;
  std::uint8_t* codewords;
};

// Line 0 of masked plane (mask, o, w) of a code whose rows have `words` words.
QRP_HD inline std::uint64_t* masked_plane(const cooperative_code& c, const cooperative_layout& l, int words, int mask,
                                          int o, int w)
{
  return c.planes + static_cast<std::ptrdiff_t>((mask * 2 + o) * words + w) * l.plane_lines + window_before;
}

QRP_HD inline cooperative_code bind_cooperative_code(void* base, const cooperative_layout& l)
{
  auto* b = static_cast<unsigned char*>(base);
  return {reinterpret_cast<std::uint64_t*>(b + l.rows),           reinterpret_cast<std::uint64_t*>(b + l.cols),
          reinterpret_cast<std::uint64_t*>(b + l.planes),
          reinterpret_cast<int*>(b + l.runs),             reinterpret_cast<int*>(b + l.blocks),
          reinterpret_cast<int*>(b + l.darks),            reinterpret_cast<int*>(b + l.result),
          reinterpret_cast<std::uint8_t*>(b + l.codewords)};
}

struct cooperative_job {
  const version_plan* plan;
  const cooperative_tables* tables;
  cooperative_layout layout;
  cooperative_code code;
  const std::uint8_t* payload;
  std::uint32_t length;
  int mask;            // auto_mask or 0..7
  std::uint64_t* out;  // size * words words
};

enum cooperative_phase : int {
  phase_data,
  phase_parity,
  phase_place,
  phase_transpose,
  phase_mask,
  phase_score,
  phase_total,
  phase_choose,
  phase_write,
  cooperative_phase_count
};

namespace detail {

// Byte-mode data codeword k (§7.4.5, §7.4.9, §7.4.10) of a payload that fits: header bytes, then
// each byte straddles two payload bytes (the 4-bit mode indicator shifts them by a nibble), the
// last nibble with four terminator bits, then pad codewords 0xEC, 0x11, ...
QRP_HD inline unsigned byte_mode_codeword(const std::uint8_t* payload, std::uint32_t length, int count_bits, int k)
{
  const int h = count_bits / 8;  // whole header bytes; the header has 8h + 4 bits
  const std::uint32_t header = (4u << count_bits) | length;
  if (k < h) return (header >> (8 * (h - 1 - k) + 4)) & 0xFFu;
  const std::int64_t j = k - h;  // payload byte whose high nibble ends this codeword
  if (j <= static_cast<std::int64_t>(length)) {
    const unsigned hi = j == 0 ? header & 0xFu : payload[j - 1] & 0xFu;
    const unsigned lo = j < static_cast<std::int64_t>(length) ? payload[j] >> 4 : 0u;
    return (hi << 4) | lo;
  }
  return ((j - length - 1) & 1) ? 0x11u : 0xECu;
}

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the transpose phase stores byte j of a word at its j-th byte address");

// The 8 x 8 bit matrix in x (bit 8r + c: row r, column c) transposed (bit 8c + r), by three
// rounds of swapping the off-diagonal halves of 2 x 2, 4 x 4 and 8 x 8 blocks.
QRP_HD constexpr std::uint64_t transpose_8x8(std::uint64_t x)
{
  std::uint64_t t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
  x ^= t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
  x ^= t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
  return x ^ t ^ (t << 28);
}

// N1 + N3 (weighted) of lines c0 .. c0 + penalty_chunk - 1 of one word column: the same counts
// as column_penalty (penalty.hpp) but read through a window of words, so that no per-line
// feature arrays are needed. word(i): the column's word at line i, 0 outside the symbol, for
// lines c0 - window_before .. c0 + window_after, and for the rare finder-like patterns of scale
// >= 3 at any line inside the symbol.
template <class Word>
QRP_HD inline int run_penalty_chunk(const Word& word, int c0, int size, std::uint64_t valid)
{
  constexpr int before = 8;                        // the patterns read lines c - 8 ..
  constexpr int span = penalty_chunk + before + 21;  // .. c + 21
  static_assert(before == window_before && span - before - 1 == window_after, "the planes' light lines cover the window");
  std::uint64_t p[span];
  QRP_UNROLL
  for (int j = 0; j < span; ++j) p[j] = word(c0 - before + j);
  int windows = 0, starts = 0, finders = 0;
  QRP_UNROLL
  for (int k = 0; k < penalty_chunk; ++k) {
    const int c = c0 + k;
    const std::uint64_t* r = p + before + k;  // r[i]: line c + i
    auto l2 = [&](int i) { return ~(r[i] | r[i + 1]) & valid; };
    auto l4 = [&](int i) { return l2(i) & l2(i + 2); };
    auto d3 = [&](int i) { return r[i] & r[i + 1] & r[i + 2]; };
    auto x1 = [&](int i) { return r[i] & ~(r[i - 1] | r[i + 1]); };
    auto x2 = [&](int i) { return r[i] & r[i + 1] & l2(i - 2) & l2(i + 2); };
    if (c + 5 <= size) {  // N1 as column_penalty counts it, from "module i equals module i + 1"
      auto same = [&](int i) { return ~(r[i] ^ r[i + 1]); };
      const std::uint64_t five = same(0) & same(1) & same(2) & same(3) & valid;  // lines c .. c+4 alike
      windows += popcount64(five);
      starts += popcount64(c == 0 ? five : five & ~same(-1));  // line c - 1 differs, or c is the first
    }
    if (c + 7 <= size) {  // N3 at scales 1 and 2
      const std::uint64_t core1 = x1(0) & d3(2) & x1(6);
      std::uint64_t a = core1 & l4(-4);
      std::uint64_t b = core1 & l4(7);
      if (c + 14 <= size) {
        const std::uint64_t core2 = x2(0) & d3(4) & d3(7) & x2(12);
        a |= core2 & l4(-8) & l4(-4);
        b |= core2 & l4(14) & l4(18);
      }
      finders += popcount64(a) + popcount64(b);
    }
    if (c + 9 <= size) {  // N3 at scale >= 3, lane by lane
      std::uint64_t cand = l2(-3) & ~r[-1] & d3(0) & d3(3) & d3(6);
      while (cand) {
        const int lane = ctz64(cand);
        cand &= cand - 1;
        finders += large_finder_like([&](int x) { return x >= 0 && x < size && ((word(x) >> lane) & 1u) != 0; }, c);
      }
    }
  }
  static_assert(penalty_n1 == 3, "windows + 2 * starts assumes N1 = 3");
  return windows + 2 * starts + penalty_n3 * finders;
}

}  // namespace detail

// Thread t of `threads` runs its share of one phase. Every thread of the group must run every
// phase, in order, with a barrier between phases.
QRP_HD inline void run_cooperative_phase(const cooperative_job& job, int phase, int t, int threads)
{
  const version_plan& plan = *job.plan;
  const cooperative_tables& tab = *job.tables;
  const cooperative_layout& lay = job.layout;
  const cooperative_code& c = job.code;
  const spec::block_layout& b = plan.layout;
  const int n = plan.size, W = plan.words, words = n * W;
  const bool fits = byte_mode_fits(job.length, plan.version, plan.ecc);
  const bool scoring = fits && job.mask == auto_mask;

  switch (phase) {
    case phase_data: {
      if (!fits) return;
      const int count_bits = spec::char_count_bits(segment_mode::byte, plan.version);
      for (int k = t; k < b.data_codewords; k += threads) {
        const unsigned v = detail::byte_mode_codeword(job.payload, job.length, count_bits, k);
        c.codewords[k] = static_cast<std::uint8_t>(v);
      }
      return;
    }
    case phase_parity: {
      if (!fits) return;
      const int d = b.ecc_per_block;
      for (int blk = t; blk < b.blocks; blk += threads) {
        const int len = blk < b.short_blocks ? b.short_data : b.short_data + 1;
        rs_remainder(c.codewords + block_data_start(b, blk), len, plan.rs, c.codewords + b.data_codewords + blk * d);
      }
      return;
    }
    case phase_place: {
      if (!fits) return;
      for (int idx = t; idx < words; idx += threads) {
        std::uint64_t word = plan.base[idx];
        const std::uint32_t* ops = tab.place_ops + idx;
        for (int j = 0, count = tab.place_count[idx]; j < count; ++j) {
          const std::uint32_t e = ops[j * max_matrix_words];
          const unsigned bits = (c.codewords[e & 0xFFFu] >> ((e >> 12) & 7u)) & (1u | ((e >> 14) & 2u));
          word |= static_cast<std::uint64_t>(bits) << (e >> 16);
        }
        c.rows[idx] = word;
      }
      return;
    }
    case phase_transpose: {
      if (!scoring) return;
      // An 8 x 8 tile per task: rows 8g .. 8g+7 of the column byte k, transposed in a register
      // and stored as byte g % 8 of the eight columns' words (distinct bytes per task, so tasks
      // never share a store). Row groups run to 8 W so that every byte of a column word is
      // written (zero past the last row).
      const int col_bytes = (n + 7) / 8, tiles = 8 * W * col_bytes;
      for (int q = t; q < tiles; q += threads) {
        const int g = q / col_bytes, k = q % col_bytes;
        std::uint64_t x = 0;  // bit 8r + c: module (8g + r, 8k + c)
        for (int r = 0; r < 8; ++r) {
          const int row = 8 * g + r;
          if (row < n) x |= ((c.rows[row * W + k / 8] >> (8 * (k % 8))) & 0xFFu) << (8 * r);
        }
        x = detail::transpose_8x8(x);  // bit 8c + r: the same module
        for (int cc = 0; cc < 8 && 8 * k + cc < n; ++cc)
          reinterpret_cast<std::uint8_t*>(c.cols + (8 * k + cc) * W + g / 8)[g % 8] =
              static_cast<std::uint8_t>(x >> (8 * cc));
      }
      return;
    }
    case phase_mask: {
      if (!scoring) return;
      // Every word of the 16 W planes, light lines included: the masked matrices the penalty
      // tasks read (each task reads 37 lines for its 8, so masking here, once per word, also
      // takes the XOR and the overlay's load out of the tasks). Plane by plane, the group's
      // threads over its lines: no divisions.
      for (int mask = 0; mask < 8; ++mask)
        for (int o = 0; o < 2; ++o) {
          const std::uint64_t* src = o ? c.cols : c.rows;
          const std::uint64_t* overlay = o ? plan.mask_cols[mask] : plan.mask_rows[mask];
          for (int w = 0; w < W; ++w) {
            std::uint64_t* plane = masked_plane(c, lay, W, mask, o, w);
            for (int i = t - window_before; i < n + window_after; i += threads)
              plane[i] = i >= 0 && i < n ? src[i * W + w] ^ overlay[i * W + w] : 0;
          }
        }
      return;
    }
    case phase_score: {
      if (!scoring) return;
      // The N2 tasks first: each reads ~3x a run task's lines, so the last round of tasks is
      // the lighter kind. Results go where phase_total looks for them, whatever the order.
      for (int q = t; q < lay.run_tasks + lay.block_tasks; q += threads) {
        if (q >= lay.block_tasks) {
          // Neighbouring threads take the same chunk of neighbouring planes: their loads are a
          // plane apart, an odd number of words (plane_lines = size + 36), so a half-warp's
          // 8-byte loads fall in 16 different bank pairs. (Chunk-fastest put them 8 lines, 64
          // bytes, apart: an 8-way bank conflict on every load of the window, H100 ncu 2026-11-24.)
          const int planes = 16 * W, p = (q - lay.block_tasks) % planes, chunk = (q - lay.block_tasks) / planes;
          const int w = p % W, orient = p / W % 2, mask = p / (2 * W);
          const std::uint64_t* plane = masked_plane(c, lay, W, mask, orient, w);
          auto word = [plane](int i) { return plane[i]; };  // light lines around the symbol
          // Stored in (mask, orientation, word column, chunk) order, as phase_total adds them up.
          c.runs[p * lay.chunks + chunk] = detail::run_penalty_chunk(word, chunk * penalty_chunk, n, lane_mask(n, w));
        } else {
          // Mask-fastest for the same reason: masks' row planes are 2 W planes apart, which puts
          // a half-warp's loads at most two to a bank pair (chunk-fastest: 8).
          const int mask = q % 8, chunk = q / 8;
          auto word = [&](int i, int w) { return masked_plane(c, lay, W, mask, 0, w)[i]; };
          int blocks = 0, dark = 0;
          for (int i = chunk * penalty_chunk; i < (chunk + 1) * penalty_chunk && i < n; ++i)
            for (int w = 0; w < W; ++w) {
              const std::uint64_t a = word(i, w);
              dark += popcount64(a);
              if (i + 1 == n) continue;
              const bool next = w + 1 < W;
              blocks += detail::same_colour_blocks(a, word(i + 1, w), next ? word(i, w + 1) : 0,
                                                   next ? word(i + 1, w + 1) : 0, lane_mask(n - 1, w));
            }
          c.blocks[mask * lay.chunks + chunk] = blocks;
          c.darks[mask * lay.chunks + chunk] = dark;
        }
      }
      return;
    }
    case phase_total: {
      if (!scoring) return;
      const int per_mask = 2 * W * lay.chunks;
      for (int mask = t; mask < 8; mask += threads) {
        int score = 0, blocks = 0;
        long long dark = 0;
        for (int j = 0; j < per_mask; ++j) score += c.runs[mask * per_mask + j];
        for (int j = 0; j < lay.chunks; ++j) {
          blocks += c.blocks[mask * lay.chunks + j];
          dark += c.darks[mask * lay.chunks + j];
        }
        c.result[1 + mask] = score + penalty_n2 * blocks + balance_penalty(dark, static_cast<long long>(n) * n);
      }
      return;
    }
    case phase_choose:
      if (t != 0) return;
      c.result[0] = scoring ? argmin_mask(c.result + 1) : (fits ? job.mask : -1);
      return;
    case phase_write: {
      const int mask = c.result[0];
      const std::uint64_t* overlay = mask >= 0 ? plan.mask_rows[mask] : nullptr;
      for (int idx = t; idx < words; idx += threads) job.out[idx] = overlay ? c.rows[idx] ^ overlay[idx] : 0;
      return;
    }
    default: return;
  }
}

// ---------------------------------------------------------------------------------------------
// The kernel's body: one thread block.

// Threads that share one code in the cooperative kernel: enough for the widest phase (the
// penalty tasks, ~ 2 * size * words) without idling most of them on small versions, and few
// enough codes per block that two blocks fit an SM's shared memory (the masked planes are 16
// per word column: sizes past 64 have two word columns, hence 128 threads, two codes a block).
// A guess to be tuned on a GPU; any divisor of cooperative_block_threads is correct.
inline constexpr int cooperative_block_threads = 256;
QRP_HD constexpr int cooperative_threads_per_code(int size)
{
  return size < 40 ? 32 : size <= 64 ? 64 : size < 120 ? 128 : 256;
}

// A batch as the cooperative kernel sees it (device pointers on the GPU).
struct cooperative_batch {
  const version_plan* plan;
  const cooperative_tables* tables;
  cooperative_layout layout;
  const std::uint8_t* bytes;
  const std::uint64_t* offsets;  // count + 1
  std::uint64_t count;
  int mask;      // auto_mask or 0..7
  int per_code;  // threads per code; divides the block's threads
  std::uint64_t* modules;
  std::uint8_t* masks;
  std::uint8_t* status;  // 0 ok, 1 too long (encode_status)
};

// One thread block: groups of per_code threads, a code each, round after round over the batch
// (grid-stride: block b takes codes b * groups .., then (b + grid) * groups ..), each group in its
// layout.bytes of `shared`. exec(f) runs f(thread) for every thread of the block and then waits for
// them all (a barrier): on the GPU each thread calls it with its own index (then
// __syncthreads); the tests call it on the CPU, running the block's threads one after another.
// Every thread reaches every exec, codes past the end included.
template <typename Exec>
QRP_HD void encode_cooperative_block(const cooperative_batch& b, std::uint64_t block, std::uint64_t grid,
                                     int block_threads, unsigned char* shared, Exec& exec)
{
  const int groups = block_threads / b.per_code;
  const std::size_t stride = words_per_symbol(b.plan->size);
  for (std::uint64_t first = block * groups; first < b.count; first += grid * groups) {
    // Thread `thread`'s code and its job; false past the end of the batch.
    auto job_of = [&](int thread, std::uint64_t& i, cooperative_job& job) {
      const int group = thread / b.per_code;
      i = first + static_cast<std::uint64_t>(group);
      if (i >= b.count) return false;
      job = cooperative_job{b.plan,
                            b.tables,
                            b.layout,
                            bind_cooperative_code(shared + static_cast<std::size_t>(group) * b.layout.bytes, b.layout),
                            b.bytes + b.offsets[i],
                            static_cast<std::uint32_t>(b.offsets[i + 1] - b.offsets[i]),
                            b.mask,
                            b.modules + i * stride};
      return true;
    };
    for (int phase = 0; phase < cooperative_phase_count; ++phase)
      exec([&](int thread) {
        std::uint64_t i;
        cooperative_job job;
        if (job_of(thread, i, job)) run_cooperative_phase(job, phase, thread % b.per_code, b.per_code);
      });
    exec([&](int thread) {
      std::uint64_t i;
      cooperative_job job;
      if (thread % b.per_code != 0 || !job_of(thread, i, job)) return;
      const int used = job.code.result[0];
      b.masks[i] = static_cast<std::uint8_t>(used < 0 ? 0 : used);
      b.status[i] = static_cast<std::uint8_t>(used < 0 ? 1 : 0);
    });
  }
}

}  // namespace qrplate::core

