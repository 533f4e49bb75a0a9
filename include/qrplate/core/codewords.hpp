// From segments to the final codeword sequence of a symbol (ISO 18004:2015 §7.4.9, §7.4.10,
// §7.5, §7.6): terminator, bit padding, pad codewords 0xEC/0x11, split into blocks, Reed-Solomon
// per block, and interleaving.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/bit_writer.hpp"
#include "qrplate/core/reed_solomon.hpp"
#include "qrplate/core/segments.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

// Terminator (up to four 0 bits, §7.4.9), zero bits to the byte boundary, then alternating pad
// codewords 11101100 and 00010001 (§7.4.10) until `data_codewords` bytes are filled.
QRP_HD inline void finish_data_codewords(bit_writer& w, int data_codewords)
{
  const int capacity = data_codewords * 8;
  const int terminator = capacity - w.length < 4 ? capacity - w.length : 4;
  w.append(0, terminator);
  w.append(0, (8 - (w.length & 7)) & 7);
  for (std::uint32_t pad = 0xEC; w.length < capacity; pad ^= 0xEC ^ 0x11) w.append(pad, 8);
}

// Writes the data codewords of `segs` for (version, ecc) into out[num_data_codewords].
// Returns false when the segments do not fit.
QRP_HD inline bool build_data_codewords(const std::uint8_t* text, const segment* segs, int count, int version,
                                        ecc_level ecc, std::uint8_t* out)
{
  const int data_codewords = spec::num_data_codewords(version, ecc);
  const long long bits = total_segment_bits(segs, count, version);
  if (bits < 0 || bits > 8LL * data_codewords) return false;
  for (int i = 0; i < data_codewords; ++i) out[i] = 0;
  bit_writer w{out, data_codewords * 8};
  for (int i = 0; i < count; ++i) write_segment(w, text, segs[i], version);
  finish_data_codewords(w, data_codewords);
  return !w.overflow;
}

// Whether `length` bytes fit one byte-mode segment of (version, ecc).
QRP_HD inline bool byte_mode_fits(std::uint32_t length, int version, ecc_level ecc)
{
  const int cc = spec::char_count_bits(segment_mode::byte, version);
  return 4 + cc + 8LL * length <= 8LL * spec::num_data_codewords(version, ecc);
}

// Fast path for one byte-mode segment: payload bytes shifted by the 4-bit mode indicator.
// Returns false when `length` bytes do not fit.
QRP_HD inline bool build_byte_mode_codewords(const std::uint8_t* payload, std::uint32_t length, int version,
                                             ecc_level ecc, std::uint8_t* out)
{
  const int data_codewords = spec::num_data_codewords(version, ecc);
  const int cc = spec::char_count_bits(segment_mode::byte, version);
  if (!byte_mode_fits(length, version, ecc)) return false;
  // Header: 0100 + count; with an 8-bit count the payload starts at bit 12, with 16 at bit 20.
  int k = 0;
  const std::uint32_t header = (4u << cc) | length;  // 12 or 20 bits
  std::uint32_t carry;  // the pending high nibble position is always 4 bits into a byte
  if (cc == 8) {
    out[k++] = static_cast<std::uint8_t>(header >> 4);
    carry = (header & 0xFu) << 4;
  } else {
    out[k++] = static_cast<std::uint8_t>(header >> 12);
    out[k++] = static_cast<std::uint8_t>(header >> 4);
    carry = (header & 0xFu) << 4;
  }
  for (std::uint32_t i = 0; i < length; ++i) {
    out[k++] = static_cast<std::uint8_t>(carry | (payload[i] >> 4));
    carry = static_cast<std::uint32_t>(payload[i] & 0xFu) << 4;
  }
  // The last nibble plus the first terminator bits: 4 data bits then 4 zero bits fill the byte.
  if (k < data_codewords) out[k++] = static_cast<std::uint8_t>(carry);
  // Terminator rest (at most 4 bits, already byte-aligned if it fit) and pad codewords.
  for (std::uint8_t pad = 0xEC; k < data_codewords; pad ^= 0xEC ^ 0x11) out[k++] = pad;
  return true;
}

// Splits data[num_data_codewords] into blocks, appends each block's ECC codewords and
// interleaves (§7.6): data codewords column by column over the blocks (short blocks have no
// codeword in the last column), then ECC codewords likewise.
// `table` must be built for the level's ECC degree. out: num_total_codewords(version) bytes.
QRP_HD inline void add_ecc_and_interleave(const std::uint8_t* data, int version, ecc_level ecc, const rs_table& table,
                                          std::uint8_t* out)
{
  const spec::block_layout b = spec::make_block_layout(version, ecc);
  const int long_data = b.short_data + 1;
  int offset = 0;  // start of this block in data
  for (int blk = 0; blk < b.blocks; ++blk) {
    const bool is_short = blk < b.short_blocks;
    const int len = is_short ? b.short_data : long_data;
    std::uint8_t parity[rs_max_degree];
    rs_remainder(data + offset, len, table, parity);
    for (int i = 0; i < len; ++i) {
      // Column i of the data part: every block contributes, except short blocks at i == short_data.
      const int pos = i < b.short_data ? i * b.blocks + blk : b.short_data * b.blocks + (blk - b.short_blocks);
      out[pos] = data[offset + i];
    }
    for (int i = 0; i < b.ecc_per_block; ++i) out[b.data_codewords + i * b.blocks + blk] = parity[i];
    offset += len;
  }
}

}  // namespace qrplate::core
