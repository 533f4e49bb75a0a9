// One sampled symbol back to its content: the encode steps of encode_symbol.hpp undone in reverse
// order. Format information (ISO 18004:2015 §7.9.2, nearest valid word per copy), unmasking and
// reading the codewords in placement order (§7.8, §7.7.3), de-interleaving (§7.6), Reed-Solomon
// correction per block with errors and erasures (§7.5.2, rs_decode.hpp), and the segment parser
// (§7.4) for numeric, alphanumeric, byte, Kanji and ECI segments. The per-code entry point that
// the CPU decoder loops over and the CUDA kernels call, once the modules of a code are sampled.
//
// Erasure policy (per block, only when the caller passes module confidences):
//   1. A block whose parity matches its data is clean and left alone.
//   2. Otherwise it is decoded errors-only first (e + 2t <= d - p with e = 0): this keeps the whole
//      detection margin, and low-confidence modules that were read right cost nothing.
//   3. Only when that fails, codewords holding a module whose confidence is below the threshold
//      become erasures, at most d - p - 2 of them (erasure_reserve = 2); past that cap the least
//      confident are kept (a codeword's confidence is that of its least confident module; ties go
//      to the earlier byte of the block). This pass accepts a correction only when
//      e + 2t <= d - p - 2: the reserve applies to everything it spends, not just to the erasures,
//      so that two syndromes are left to check the result. A block corrected this way makes the
//      symbol `erasure_assisted`.
//   4. When that fails too, generalized minimum distance decoding (Forney): the same pass with
//      the 2, 4, 6, ... most confident of those erasures given back as unknowns, first fit
//      accepted. Where more codewords are doubtful than the cap, an error among the more
//      confident ones is left outside the erasures and costs two of the budget; erasing fewer
//      leaves room for it. The trials' erasure sets are nested, each held to the same budget, so
//      a block step 3 corrects comes out as before. Harsh scans at 3-4 px/module (v10-M, noise
//      bound) lose 10-25% fewer codes (docs/DECODER.md). A failing block costs up to cap / 2
//      Berlekamp-Massey runs; a block that step 2 or 3 corrects, none more.
// Why the reserve covers the errors too: erasures spend detection capacity (rs_decode.hpp). With
// e = d - p - 2 erasures and one more error allowed (e + 2t = d - p), 83 of 480 symbols with one
// block really beyond repair (cap erasures + 2 errors) came back "corrected" to a wrong codeword
// when this file was written; with e + 2t <= d - p - 2 none of them did (test_decode_symbol's
// BeyondTheBudgetFails), and a random wrong block passes with probability about n / 2^24 or less. What still slips
// through is caught by the segment parser (sometimes) and the plate frame's CRC32C.
//
// Format information: each copy is decoded alone to its nearest valid word (<= 3 bit errors).
// When the copies agree, or only one decodes, that reading is used. When they decode to different
// words, one is tried first and the other only if the symbol fails to decode with the first
// (Reed-Solomon or segment parsing): a destroyed copy lands within 3 bits of some valid word more
// than half the time, and the data codewords then tell which copy was right. The nearer reading
// goes first, except that of two readings with the same mask the higher level goes first: the
// generators are nested (g_L divides g_H, all start at alpha^0), so with the same block split a
// level-H symbol is also a valid level-L one (same content, a weaker code, a wrong `ecc`), while
// a level-L symbol is almost never a level-H codeword. If neither reading decodes, bad_format.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/core/format_decode.hpp"
#include "qrplate/core/function_patterns.hpp"
#include "qrplate/core/reed_solomon.hpp"
#include "qrplate/core/rs_decode.hpp"
#include "qrplate/core/segments.hpp"
#include "qrplate/core/version_plan.hpp"
#include "qrplate/spec/format_info.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

// Redundancy (in codewords) that the erasure pass leaves unspent, for detection: it corrects
// e erasures and t errors only when e + 2t <= d - p - erasure_reserve.
inline constexpr int erasure_reserve = 2;

// The longest content a symbol can decode to: 7089 digits, numeric mode in 40-L (ISO Table 7).
// Byte-mode payloads never exceed spec::max_data_codewords.
inline constexpr int max_decoded_length = 7089;

enum class decode_status : std::uint8_t {
  ok,                // every block was a codeword as read
  corrected,         // some block needed errors-only correction, none needed erasures
  erasure_assisted,  // some block could be corrected only with its low-confidence codewords as erasures
  bad_format,        // no format reading within 3 bits, or two disagreeing readings that both fail
  failed,            // a block beyond repair, a malformed bit stream, or content larger than `out`
};

// Why a symbol failed (none for the three good statuses).
enum class decode_error : std::uint8_t { none, format, reed_solomon, bitstream, output_full };

struct decode_result {
  decode_status status;
  decode_error error;
  ecc_level ecc;          // from the format information (meaningful unless bad_format with no reading)
  int mask;               // 0..7, or -1 when no format reading was found
  int format_distance;    // bit errors of the format copy used; with bad_format the nearest distance seen
  int corrected_symbols;  // codewords whose value the Reed-Solomon decoder changed
  int erasures;           // erasures used, summed over the blocks decoded with erasures
  int margin;             // min over blocks of (d - p) - (erasures + 2 * errors): correction budget left
  int data_length;        // bytes written to `out` (0 unless the status is ok/corrected/erasure_assisted)
  int eci;                // assignment number of the first ECI segment, -1 when there is none
};

// Scratch for one symbol (~18 KB). One per CPU thread or GPU thread.
struct decode_workspace {
  std::uint8_t codewords[spec::max_total_codewords];         // interleaved, in placement order
  std::uint8_t confidence[spec::max_total_codewords];        // per codeword: its least module confidence
  std::uint8_t blocks[spec::max_total_codewords];            // block-major: data then ECC of each block
  std::uint8_t block_confidence[spec::max_total_codewords];  // `confidence` in block-major order
  std::uint8_t data[spec::max_data_codewords];               // corrected data codewords in order
};

// ---------------------------------------------------------------------------------------------
// Format and version information as read

// The 15 format bits of one copy as they stand in the symbol (bit 14 first, still masked with
// 0x5412): copy 0 around the top-left finder, copy 1 split between the top-right and
// bottom-left finders (ISO 18004:2015 §7.9.1, Figure 25; the positions of draw_format_bits).
QRP_HD inline std::uint32_t read_format_bits(const std::uint64_t* modules, int size, int copy)
{
  const int w = words_per_row(size);
  auto at = [&](int row, int col) -> std::uint32_t { return get_bit(modules + row * w, col) ? 1u : 0u; };
  std::uint32_t bits = 0;
  if (copy == 0) {
    for (int i = 0; i <= 5; ++i) bits |= at(i, 8) << i;
    bits |= at(7, 8) << 6;
    bits |= at(8, 8) << 7;
    bits |= at(8, 7) << 8;
    for (int i = 9; i < 15; ++i) bits |= at(8, 14 - i) << i;
  } else {
    for (int i = 0; i < 8; ++i) bits |= at(8, size - 1 - i) << i;
    for (int i = 8; i < 15; ++i) bits |= at(size - 15 + i, 8) << i;
  }
  return bits;
}

// The 18 version bits of one copy (versions 7+, §7.10): copy 0 the top-right 6x3 block, copy 1
// the bottom-left one; bit 0 nearest the origin.
QRP_HD inline std::uint32_t read_version_bits(const std::uint64_t* modules, int size, int copy)
{
  const int w = words_per_row(size);
  std::uint32_t bits = 0;
  for (int i = 0; i < 18; ++i) {
    const int a = size - 11 + i % 3, b = i / 3;
    const int row = copy == 0 ? b : a, col = copy == 0 ? a : b;
    bits |= (get_bit(modules + row * w, col) ? 1u : 0u) << i;
  }
  return bits;
}

struct format_reading {
  ecc_level ecc;
  int mask;
  int distance;
};

// The distinct format readings of the two copies, in the order to try them (the nearer first,
// copy 0 at equal distance; but with the same mask the higher level first, see the top of this
// file); returns how many (0..2). `nearest` receives the smaller nearest-word distance.
// read_format_info in two steps (the cooperative decoder reads the copies on two threads): one
// copy's reading (true when it decodes), then the two readings combined.
QRP_HD inline bool read_format_copy(const std::uint64_t* modules, int size, int copy, format_reading& r)
{
  r = format_reading{ecc_level::L, -1, 16};
  return decode_format_info(read_format_bits(modules, size, copy), r.ecc, r.mask, r.distance);
}

QRP_HD inline int combine_format_readings(const format_reading r[2], const bool ok[2], format_reading out[2],
                                          int& nearest)
{
  nearest = r[0].distance < r[1].distance ? r[0].distance : r[1].distance;
  if (ok[0] && ok[1]) {
    if (r[0].ecc == r[1].ecc && r[0].mask == r[1].mask) {
      out[0] = r[0];
      out[0].distance = nearest;
      return 1;
    }
    const int first = r[0].mask == r[1].mask ? (r[1].ecc > r[0].ecc ? 1 : 0) : (r[1].distance < r[0].distance ? 1 : 0);
    out[0] = r[first];
    out[1] = r[1 - first];
    return 2;
  }
  if (ok[0] || ok[1]) {
    out[0] = r[ok[0] ? 0 : 1];
    return 1;
  }
  return 0;
}

QRP_HD inline int read_format_info(const std::uint64_t* modules, int size, format_reading out[2], int& nearest)
{
  format_reading r[2];
  bool ok[2];
  for (int copy = 0; copy < 2; ++copy) ok[copy] = read_format_copy(modules, size, copy, r[copy]);
  return combine_format_readings(r, ok, out, nearest);
}

// ---------------------------------------------------------------------------------------------
// Codewords out of the matrix (§7.7.3 and §7.8 undone)

// Unmasks the data modules and reads plan.layout.total_codewords bytes in placement order into
// codewords[] (interleaved order; remainder bits ignored). Only data modules are read, where
// plan.mask_rows[mask] is the mask pattern whatever plan.ecc is (its format bits lie on
// function modules), so the plan of any level of this version serves.
// Codeword cw (placement order) of the symbol unmasked by `overlay` (plan.mask_rows[mask]).
QRP_HD inline std::uint8_t extract_codeword(const version_plan& plan, const std::uint64_t* modules,
                                            const std::uint64_t* overlay, int cw)
{
  const int shift = plan.slot_shift[cw];
  unsigned byte = 0;
  if (shift >= 0) {  // a 2-wide, 4-high block: two bits from each of four words
    const int first = plan.slot_first[cw], step = plan.slot_step[cw];
    for (int t = 0; t < 4; ++t) {
      const int i = first + t * step;
      byte = (byte << 2) | static_cast<unsigned>(((modules[i] ^ overlay[i]) >> shift) & 3u);
    }
    return static_cast<std::uint8_t>(byte);
  }
  for (int t = 0; t < 8; ++t) {
    const unsigned pos = plan.placement[8 * cw + t];
    byte = (byte << 1) | static_cast<unsigned>(((modules[pos >> 6] ^ overlay[pos >> 6]) >> (pos & 63)) & 1u);
  }
  return static_cast<std::uint8_t>(byte);
}

QRP_HD inline void extract_codewords(const version_plan& plan, const std::uint64_t* modules, int mask,
                                     std::uint8_t* codewords)
{
  const std::uint64_t* overlay = plan.mask_rows[mask];
  const int total = plan.layout.total_codewords;
  for (int cw = 0; cw < total; ++cw) {
    codewords[cw] = extract_codeword(plan, modules, overlay, cw);
  }
}

// Plain reference for extract_codewords: every bit through the placement table, unmasked with
// the mask condition of ISO Table 10 itself.
QRP_HD inline void extract_codewords_reference(const version_plan& plan, const std::uint64_t* modules, int mask,
                                               std::uint8_t* codewords)
{
  const int row_bits = 64 * plan.words;
  const int total = plan.layout.total_codewords;
  for (int cw = 0; cw < total; ++cw) codewords[cw] = 0;
  for (int k = 0; k < 8 * total; ++k) {
    const int pos = plan.placement[k];
    const int row = pos / row_bits, col = pos % row_bits;
    const bool dark = get_bit(modules + row * plan.words, col) != mask_bit(mask, row, col);
    if (dark) codewords[k >> 3] = static_cast<std::uint8_t>(codewords[k >> 3] | (0x80u >> (k & 7)));
  }
}

// out[cw] = the least confidence of codeword cw's eight modules (interleaved order).
// confidence: one byte per module, row-major, size * size.
QRP_HD inline std::uint8_t codeword_confidence_of(const version_plan& plan, const std::uint8_t* confidence, int cw)
{
  const int row_bits = 64 * plan.words;
  std::uint8_t least = 255;
  for (int t = 0; t < 8; ++t) {
    const int pos = plan.placement[8 * cw + t];
    const int row = pos / row_bits, col = pos - row * row_bits;
    const std::uint8_t c = confidence[row * plan.size + col];
    if (c < least) least = c;
  }
  return least;
}

QRP_HD inline void codeword_confidence(const version_plan& plan, const std::uint8_t* confidence, std::uint8_t* out)
{
  const int total = plan.layout.total_codewords;
  for (int cw = 0; cw < total; ++cw) out[cw] = codeword_confidence_of(plan, confidence, cw);
}

// ---------------------------------------------------------------------------------------------
// Blocks (§7.6 undone)

// Start of block `blk` in the block-major buffer: short blocks first, each data then ECC.
QRP_HD inline int block_offset(const spec::block_layout& b, int blk)
{
  const int extra = blk > b.short_blocks ? blk - b.short_blocks : 0;
  return blk * (b.short_data + b.ecc_per_block) + extra;
}

QRP_HD inline int block_data_length(const spec::block_layout& b, int blk)
{
  return blk < b.short_blocks ? b.short_data : b.short_data + 1;
}

// Where codeword k of the symbol order lands in the block-major buffer of deinterleave (one
// codeword at a time, for the cooperative decoder; deinterleave is the reference).
QRP_HD inline int deinterleaved_position(const spec::block_layout& b, int k)
{
  const int full = b.short_data * b.blocks;  // data columns every block has
  if (k < full) return block_offset(b, k % b.blocks) + k / b.blocks;
  if (k < b.data_codewords) return block_offset(b, b.short_blocks + (k - full)) + b.short_data;
  const int e = k - b.data_codewords, blk = e % b.blocks;
  return block_offset(b, blk) + block_data_length(b, blk) + e / b.blocks;
}

// The inverse of add_ecc_and_interleave's interleaving: codewords[total] in symbol order to
// blocks[total], block by block (block_offset), each its data codewords then its ECC codewords.
QRP_HD inline void deinterleave(const std::uint8_t* codewords, const spec::block_layout& b, std::uint8_t* blocks)
{
  int k = 0;
  for (int i = 0; i < b.short_data; ++i)  // data columns every block has
    for (int blk = 0; blk < b.blocks; ++blk) blocks[block_offset(b, blk) + i] = codewords[k++];
  for (int blk = b.short_blocks; blk < b.blocks; ++blk)  // the long blocks' last data codeword
    blocks[block_offset(b, blk) + b.short_data] = codewords[k++];
  for (int i = 0; i < b.ecc_per_block; ++i)
    for (int blk = 0; blk < b.blocks; ++blk)
      blocks[block_offset(b, blk) + block_data_length(b, blk) + i] = codewords[k++];
}

// Clean-block check by re-encoding: a systematic block is a codeword exactly when its parity is
// the remainder of its data. One table row per byte, against degree Horner passes for the
// syndromes; rs_decode's syndrome test is the reference.
QRP_HD inline bool block_is_codeword(const std::uint8_t* block, int data_length, const rs_table& table)
{
  const rs_remainder_words parity = rs_remainder_of(block, data_length, table);  // in registers
  unsigned diff = 0;
  for (int i = 0; i < table.degree; ++i) diff |= static_cast<unsigned>(parity.byte(i) ^ block[data_length + i]);
  return diff == 0;
}

struct block_outcome {
  bool ok;
  bool used_erasures;
  int changed;   // bytes changed
  int erasures;  // erasures used
  int spent;     // erasures + 2 * errors
};

// Corrects one block in place by the policy at the top of this file. conf: the block's codeword
// confidences, or null. The block is unchanged when the outcome is not ok.
QRP_HD inline block_outcome correct_block(std::uint8_t* block, int n, int degree, int protection,
                                          const std::uint8_t* conf, std::uint8_t threshold)
{
  block_outcome o{false, false, 0, 0, 0};
  rs_result r = rs_decode(block, n, degree, nullptr, 0, protection);
  if (r.status == rs_status::clean) {
    o.ok = true;
    return o;
  }
  if (r.status == rs_status::corrected) {
    o.ok = true;
    o.changed = r.errors;
    o.spent = 2 * r.errors;
    return o;
  }
  const int cap = degree - protection - erasure_reserve;
  if (conf == nullptr || cap <= 0) return o;

  std::uint8_t pos[rs_max_block];
  std::uint8_t level[rs_max_block];
  int count = 0;
  for (int j = 0; j < n; ++j)
    if (conf[j] < threshold) {
      pos[count] = static_cast<std::uint8_t>(j);
      level[count++] = conf[j];
    }
  if (count == 0) return o;
  // The `top` least confident first (partial selection sort, earlier byte on ties), so that every
  // prefix of pos is the e least confident candidates.
  const int top = count < cap ? count : cap;
  for (int i = 0; i < top; ++i) {
    int best = i;
    for (int j = i + 1; j < count; ++j)
      if (level[j] < level[best] || (level[j] == level[best] && pos[j] < pos[best])) best = j;
    const std::uint8_t p = pos[i], l = level[i];
    pos[i] = pos[best];
    level[i] = level[best];
    pos[best] = p;
    level[best] = l;
  }
  // Steps 3 and 4 of the policy: the `top` least confident erased, then two fewer at a time (an
  // erasure spends one codeword of the budget, an error two).
  for (int e = top; e > 0; e -= 2) {
    std::uint8_t before[rs_max_degree];
    for (int i = 0; i < e; ++i) before[i] = block[pos[i]];
    r = rs_decode(block, n, degree, pos, e, protection + erasure_reserve);
    if (r.status != rs_status::corrected) continue;
    o.ok = true;
    o.used_erasures = true;
    o.changed = r.errors;
    for (int i = 0; i < e; ++i) o.changed += block[pos[i]] != before[i] ? 1 : 0;
    o.erasures = r.erasures;
    o.spent = r.erasures + 2 * r.errors;
    return o;
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Segments (§7.4 undone)

// MSB-first reader over the data codewords.
struct bit_reader {
  const std::uint8_t* bytes;
  int length;  // bits
  int pos = 0;

  QRP_HD int remaining() const { return length - pos; }

  // The next `count` bits (0..24), most significant first; requires count <= remaining().
  QRP_HD std::uint32_t read(int count)
  {
    std::uint32_t value = 0;
    while (count > 0) {
      const int avail = 8 - (pos & 7);
      const int take = count < avail ? count : avail;
      const std::uint32_t bits = (static_cast<std::uint32_t>(bytes[pos >> 3]) >> (avail - take)) & ((1u << take) - 1u);
      value = (value << take) | bits;
      pos += take;
      count -= take;
    }
    return value;
  }
};

// ISO 18004:2015 Table 5: the character of an alphanumeric value 0..44.
QRP_HD inline std::uint8_t alphanumeric_char(unsigned value)
{
  static constexpr char table[46] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
  return static_cast<std::uint8_t>(table[value]);
}

struct segment_parse {
  decode_error error;  // none, bitstream or output_full
  int length;          // bytes written
  int eci;             // first ECI assignment, -1 if none
};

// Parses the data bit stream data[0, data_codewords) of a `version` symbol into out[capacity]
// until the terminator (or fewer than 4 bits left). Numeric and alphanumeric segments give their
// characters, byte segments their bytes, Kanji segments the two Shift JIS bytes of each
// character (§7.4.6); ECI designators (§7.4.2.2) are skipped, the first assignment reported;
// structured append headers (§8) and FNC1 indicators (§7.4.8) are skipped. A mode indicator
// outside these, a count running past the end or an invalid numeric/alphanumeric group is a
// bitstream error.
//
// A byte segment's bytes are handed to copy_bytes(to, data, bit, count): out[n, n + count) is to
// receive `count` bytes of the stream from bit `bit` on (byte_of_run); parse_segments copies
// them at once, the cooperative decoder spreads the copies over its threads afterwards.
template <typename ByteCopy>
QRP_HD inline segment_parse parse_segments_with(const std::uint8_t* data, int data_codewords, int version,
                                                std::uint8_t* out, int capacity, ByteCopy&& copy_bytes)
{
  segment_parse result{decode_error::none, 0, -1};
  bit_reader in{data, 8 * data_codewords};
  int n = 0;
  auto fail = [&](decode_error e) {
    result.error = e;
    result.length = 0;
    return result;
  };
  while (in.remaining() >= 4) {
    const std::uint32_t mode = in.read(4);
    if (mode == 0) break;  // terminator (§7.4.9)
    if (mode == static_cast<std::uint32_t>(segment_mode::eci)) {
      if (in.remaining() < 8) return fail(decode_error::bitstream);
      const std::uint32_t first = in.read(8);
      std::uint32_t assignment;
      if ((first & 0x80u) == 0) {
        assignment = first;
      } else if ((first & 0xC0u) == 0x80u) {
        if (in.remaining() < 8) return fail(decode_error::bitstream);
        assignment = ((first & 0x3Fu) << 8) | in.read(8);
      } else if ((first & 0xE0u) == 0xC0u) {
        if (in.remaining() < 16) return fail(decode_error::bitstream);
        assignment = ((first & 0x1Fu) << 16) | in.read(16);
      } else {
        return fail(decode_error::bitstream);
      }
      if (result.eci < 0) result.eci = static_cast<int>(assignment);
      continue;
    }
    if (mode == 3) {  // structured append: symbol position, total, parity
      if (in.remaining() < 16) return fail(decode_error::bitstream);
      in.read(16);
      continue;
    }
    if (mode == 5) continue;  // FNC1 in first position
    if (mode == 9) {          // FNC1 in second position: application indicator
      if (in.remaining() < 8) return fail(decode_error::bitstream);
      in.read(8);
      continue;
    }
    segment_mode m;
    switch (mode) {
      case 1:
        m = segment_mode::numeric;
        break;
      case 2:
        m = segment_mode::alphanumeric;
        break;
      case 4:
        m = segment_mode::byte;
        break;
      case 8:
        m = segment_mode::kanji;
        break;
      default:
        return fail(decode_error::bitstream);
    }
    const int cc = spec::char_count_bits(m, version);
    if (in.remaining() < cc) return fail(decode_error::bitstream);
    const long long count = in.read(cc);
    const long long bits = m == segment_mode::kanji ? 13 * count : segment_payload_bits(m, count);
    if (bits > in.remaining()) return fail(decode_error::bitstream);
    const long long produced = m == segment_mode::kanji ? 2 * count : count;
    if (produced > capacity - n) return fail(decode_error::output_full);
    switch (m) {
      case segment_mode::numeric: {
        long long left = count;
        for (; left >= 3; left -= 3) {
          const std::uint32_t v = in.read(10);
          if (v > 999) return fail(decode_error::bitstream);
          out[n++] = static_cast<std::uint8_t>('0' + v / 100);
          out[n++] = static_cast<std::uint8_t>('0' + v / 10 % 10);
          out[n++] = static_cast<std::uint8_t>('0' + v % 10);
        }
        if (left == 2) {
          const std::uint32_t v = in.read(7);
          if (v > 99) return fail(decode_error::bitstream);
          out[n++] = static_cast<std::uint8_t>('0' + v / 10);
          out[n++] = static_cast<std::uint8_t>('0' + v % 10);
        } else if (left == 1) {
          const std::uint32_t v = in.read(4);
          if (v > 9) return fail(decode_error::bitstream);
          out[n++] = static_cast<std::uint8_t>('0' + v);
        }
        break;
      }
      case segment_mode::alphanumeric: {
        long long left = count;
        for (; left >= 2; left -= 2) {
          const std::uint32_t v = in.read(11);
          if (v >= 45 * 45) return fail(decode_error::bitstream);
          out[n++] = alphanumeric_char(v / 45);
          out[n++] = alphanumeric_char(v % 45);
        }
        if (left == 1) {
          const std::uint32_t v = in.read(6);
          if (v >= 45) return fail(decode_error::bitstream);
          out[n++] = alphanumeric_char(v);
        }
        break;
      }
      case segment_mode::byte:  // whole bytes at a fixed bit offset
        copy_bytes(out + n, data, in.pos, static_cast<int>(count));
        n += static_cast<int>(count);
        in.pos += static_cast<int>(8 * count);
        break;
      default: {  // Kanji: 13 bits = (high byte - base) * 0xC0 + low byte (§7.4.6)
        for (long long i = 0; i < count; ++i) {
          const std::uint32_t v = in.read(13);
          const std::uint32_t packed = ((v / 0xC0u) << 8) | (v % 0xC0u);
          const std::uint32_t sjis = packed + (packed < 0x1F00u ? 0x8140u : 0xC140u);
          out[n++] = static_cast<std::uint8_t>(sjis >> 8);
          out[n++] = static_cast<std::uint8_t>(sjis & 0xFFu);
        }
        break;
      }
    }
  }
  result.length = n;
  return result;
}

// Byte i of a run of whole bytes that starts at bit `bit` of the stream: two codewords' bits
// unless the run is byte-aligned (a run's last byte may read the codeword after it).
QRP_HD inline std::uint8_t byte_of_run(const std::uint8_t* data, int bit, int i)
{
  const int shift = bit & 7;
  const std::uint8_t* src = data + (bit >> 3);
  return shift == 0 ? src[i] : static_cast<std::uint8_t>((src[i] << shift) | (src[i + 1] >> (8 - shift)));
}

// parse_segments_with's copy_bytes that copies a run at once.
struct copy_byte_run {
  QRP_HD void operator()(std::uint8_t* to, const std::uint8_t* stream, int bit, int count) const
  {
    for (int i = 0; i < count; ++i) to[i] = byte_of_run(stream, bit, i);
  }
};

QRP_HD inline segment_parse parse_segments(const std::uint8_t* data, int data_codewords, int version, std::uint8_t* out,
                                           int capacity)
{
  return parse_segments_with(data, data_codewords, version, out, capacity, copy_byte_run{});
}

// ---------------------------------------------------------------------------------------------
// The whole symbol

// One block of decode_with_format in ws.blocks: left alone when the fast check finds it clean
// (the plan's feedback table, when the plan is of the symbol's level), else corrected in place by
// the erasure policy. A clean block's outcome is ok with nothing changed or spent.
QRP_HD inline block_outcome decode_block(const version_plan& plan, const spec::block_layout& b, ecc_level ecc, int blk,
                                         bool use_confidence, std::uint8_t erasure_threshold, decode_workspace& ws)
{
  const int off = block_offset(b, blk);
  const int len = block_data_length(b, blk);
  std::uint8_t* block = ws.blocks + off;
  if (plan.ecc == ecc && block_is_codeword(block, len, plan.rs)) return block_outcome{true, false, 0, 0, 0};
  return correct_block(block, len + b.ecc_per_block, b.ecc_per_block, misdecode_protection(plan.version, ecc),
                       use_confidence ? ws.block_confidence + off : nullptr, erasure_threshold);
}

// The blocks' outcomes added up in block order, as decode_with_format stops at the first failure.
struct block_tally {
  bool any_corrected = false, any_erasures = false;

  // Adds block outcome o to result (budget: d - p); false when the block failed.
  QRP_HD bool add(const block_outcome& o, int budget, decode_result& result)
  {
    if (!o.ok) return false;
    any_corrected |= o.changed > 0;
    any_erasures |= o.used_erasures;
    result.corrected_symbols += o.changed;
    result.erasures += o.erasures;
    const int left = budget - o.spent;
    if (left < result.margin) result.margin = left;
    return true;
  }
};

// Where block blk's data codewords start in the data codewords in order (ws.data).
QRP_HD inline int block_data_offset(const spec::block_layout& b, int blk)
{
  return blk * b.short_data + (blk > b.short_blocks ? blk - b.short_blocks : 0);
}

// Where data codeword k of the symbol order (k < b.data_codewords) lands in the data codewords
// in order: deinterleaved_position without the ECC codewords of the blocks before it.
QRP_HD inline int deinterleaved_data_position(const spec::block_layout& b, int k)
{
  const int full = b.short_data * b.blocks;
  if (k < full) return block_data_offset(b, k % b.blocks) + k / b.blocks;
  return block_data_offset(b, b.short_blocks + (k - full)) + b.short_data;
}

// finish_decode after its first step (ws.data holds the data codewords in order), byte segments
// handed to copy_bytes as in parse_segments_with.
template <typename ByteCopy>
QRP_HD inline decode_result finish_gathered(const version_plan& plan, const spec::block_layout& b,
                                            const block_tally& tally, std::uint8_t* out, int out_capacity,
                                            decode_workspace& ws, decode_result result, ByteCopy&& copy_bytes)
{
  const segment_parse parsed =
      parse_segments_with(ws.data, b.data_codewords, plan.version, out, out_capacity, copy_bytes);
  result.eci = parsed.eci;
  if (parsed.error != decode_error::none) {
    result.error = parsed.error;
    return result;
  }
  result.error = decode_error::none;
  result.data_length = parsed.length;
  result.status = tally.any_erasures ? decode_status::erasure_assisted
                                     : (tally.any_corrected ? decode_status::corrected : decode_status::ok);
  return result;
}

// After every block is ok: the data codewords in order, the segment parser, the status.
QRP_HD inline decode_result finish_decode(const version_plan& plan, const spec::block_layout& b,
                                          const block_tally& tally, std::uint8_t* out, int out_capacity,
                                          decode_workspace& ws, decode_result result)
{
  int d = 0;  // next data codeword
  for (int blk = 0; blk < b.blocks; ++blk) {
    const std::uint8_t* block = ws.blocks + block_offset(b, blk);
    for (int i = 0, len = block_data_length(b, blk); i < len; ++i) ws.data[d++] = block[i];
  }
  return finish_gathered(plan, b, tally, out, out_capacity, ws, result, copy_byte_run{});
}

// The result of decode_with_format before any block is decoded.
QRP_HD inline decode_result initial_result(const version_plan& plan, const format_reading& format)
{
  decode_result result{
      decode_status::failed, decode_error::reed_solomon, format.ecc, format.mask, format.distance, 0, 0, 0, 0, -1};
  result.margin = spec::ecc_codewords_per_block(format.ecc, plan.version) - misdecode_protection(plan.version, format.ecc);
  return result;
}

// Decodes with one format reading. `use_confidence`: ws.confidence holds the codeword confidences.
QRP_HD inline decode_result decode_with_format(const version_plan& plan, const std::uint64_t* modules,
                                               bool use_confidence, std::uint8_t erasure_threshold,
                                               const format_reading& format, std::uint8_t* out, int out_capacity,
                                               decode_workspace& ws)
{
  decode_result result = initial_result(plan, format);
  const spec::block_layout b = spec::make_block_layout(plan.version, format.ecc);
  const int degree = b.ecc_per_block;
  const int protection = misdecode_protection(plan.version, format.ecc);

  extract_codewords(plan, modules, format.mask, ws.codewords);
  deinterleave(ws.codewords, b, ws.blocks);
  if (use_confidence) deinterleave(ws.confidence, b, ws.block_confidence);
  block_tally tally;
  for (int blk = 0; blk < b.blocks; ++blk) {
    const block_outcome o = decode_block(plan, b, format.ecc, blk, use_confidence, erasure_threshold, ws);
    if (!tally.add(o, degree - protection, result)) return result;
  }
  return finish_decode(plan, b, tally, out, out_capacity, ws, result);
}

// Decodes one sampled symbol.
//   plan: a version_plan of the symbol's version, any level (the level is read from the symbol).
//   modules: the symbol in the symbol.hpp layout (plan.size rows of plan.words words, 1 = dark).
//   confidence: null, or plan.size * plan.size bytes row-major (0 = no idea .. 255 = certain);
//     modules below erasure_threshold mark their codeword as a candidate erasure (policy above).
//   out: out_capacity bytes; receives the decoded content. Byte-mode content never exceeds
//     spec::max_data_codewords; numeric and alphanumeric text may need up to max_decoded_length.
//     Content that does not fit is `failed` with error output_full. On failure `out` may hold
//     partial content, and data_length is 0.
QRP_HD inline decode_result decode_symbol(const version_plan& plan, const std::uint64_t* modules,
                                          const std::uint8_t* confidence, std::uint8_t erasure_threshold,
                                          std::uint8_t* out, decode_workspace& ws,
                                          int out_capacity = spec::max_data_codewords)
{
  format_reading readings[2];
  int nearest = 16;
  const int count = read_format_info(modules, plan.size, readings, nearest);
  if (count == 0)
    return decode_result{decode_status::bad_format, decode_error::format, ecc_level::L, -1, nearest, 0, 0, 0, 0, -1};

  const bool use_confidence = confidence != nullptr && erasure_threshold > 0;
  if (use_confidence) codeword_confidence(plan, confidence, ws.confidence);
  decode_result first{};
  for (int i = 0; i < count; ++i) {
    const decode_result r =
        decode_with_format(plan, modules, use_confidence, erasure_threshold, readings[i], out, out_capacity, ws);
    if (r.status != decode_status::failed || r.error == decode_error::output_full) return r;
    if (i == 0) first = r;
  }
  if (count == 2) {  // two readings, neither decodes: the format is in doubt
    first.status = decode_status::bad_format;
    first.error = decode_error::format;
  }
  return first;
}

}  // namespace qrplate::core
