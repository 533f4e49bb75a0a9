// Data segments (ISO 18004:2015 §7.4): numeric, alphanumeric, byte and ECI, their bit lengths,
// their encoding into the data bit stream, and the minimal split of a text into segments.
// Kanji mode is not produced: text outside the numeric and alphanumeric sets goes in byte mode.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/bit_writer.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

using spec::segment_mode;

// A run of the input text in one mode: text[begin, begin + length). For an ECI segment `begin`
// holds the assignment number and length is 0.
struct segment {
  segment_mode mode;
  std::uint32_t begin;
  std::uint32_t length;
};

QRP_HD constexpr bool is_numeric(std::uint8_t c) { return c >= '0' && c <= '9'; }

// ISO 18004:2015 Table 5: the value of an alphanumeric character, or -1.
QRP_HD constexpr int alphanumeric_value(std::uint8_t c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  switch (c) {
    case ' ': return 36;
    case '$': return 37;
    case '%': return 38;
    case '*': return 39;
    case '+': return 40;
    case '-': return 41;
    case '.': return 42;
    case '/': return 43;
    case ':': return 44;
    default: return -1;
  }
}

// Bits of the data part of a segment of `n` characters (without mode and count indicators).
QRP_HD constexpr long long segment_payload_bits(segment_mode mode, long long n)
{
  switch (mode) {
    case segment_mode::numeric: return 10 * (n / 3) + (n % 3 == 0 ? 0 : (n % 3 == 1 ? 4 : 7));
    case segment_mode::alphanumeric: return 11 * (n / 2) + 6 * (n % 2);
    case segment_mode::byte: return 8 * n;
    default: return 0;
  }
}

// ISO 18004:2015 §7.4.2.2: ECI designators take 8, 16 or 24 bits.
QRP_HD constexpr int eci_designator_bits(std::uint32_t assignment)
{
  return assignment < 128 ? 8 : (assignment < 16384 ? 16 : 24);
}

// Total bits of a segment in a symbol of `version`, or -1 when its character count does not
// fit the count indicator.
QRP_HD constexpr long long segment_bits(const segment& s, int version)
{
  if (s.mode == segment_mode::eci) return 4 + eci_designator_bits(s.begin);
  const int cc = spec::char_count_bits(s.mode, version);
  if (static_cast<long long>(s.length) >= (1LL << cc)) return -1;
  return 4 + cc + segment_payload_bits(s.mode, s.length);
}

QRP_HD inline long long total_segment_bits(const segment* segs, int count, int version)
{
  long long total = 0;
  for (int i = 0; i < count; ++i) {
    const long long b = segment_bits(segs[i], version);
    if (b < 0) return -1;
    total += b;
  }
  return total;
}

// Appends one segment (mode indicator, count, data) for a symbol of `version`.
QRP_HD inline void write_segment(bit_writer& out, const std::uint8_t* text, const segment& s, int version)
{
  out.append(static_cast<std::uint32_t>(s.mode), 4);
  if (s.mode == segment_mode::eci) {
    const std::uint32_t a = s.begin;
    if (a < 128) out.append(a, 8);
    else if (a < 16384) out.append(0x8000u | a, 16);
    else out.append(0xC00000u | a, 24);
    return;
  }
  out.append(s.length, spec::char_count_bits(s.mode, version));
  const std::uint8_t* p = text + s.begin;
  const std::uint32_t n = s.length;
  switch (s.mode) {
    case segment_mode::numeric: {
      std::uint32_t i = 0;
      for (; i + 3 <= n; i += 3)
        out.append(static_cast<std::uint32_t>((p[i] - '0') * 100 + (p[i + 1] - '0') * 10 + (p[i + 2] - '0')), 10);
      if (n - i == 2) out.append(static_cast<std::uint32_t>((p[i] - '0') * 10 + (p[i + 1] - '0')), 7);
      else if (n - i == 1) out.append(static_cast<std::uint32_t>(p[i] - '0'), 4);
      break;
    }
    case segment_mode::alphanumeric: {
      std::uint32_t i = 0;
      for (; i + 2 <= n; i += 2)
        out.append(static_cast<std::uint32_t>(alphanumeric_value(p[i]) * 45 + alphanumeric_value(p[i + 1])), 11);
      if (i < n) out.append(static_cast<std::uint32_t>(alphanumeric_value(p[i])), 6);
      break;
    }
    default:
      for (std::uint32_t i = 0; i < n; ++i) out.append(p[i], 8);
      break;
  }
}

// The split of text[0, length) into numeric, alphanumeric and byte segments with the fewest
// bits for symbols of `version`'s size class (the count indicator widths differ per class).
// Dynamic programme over characters; cost in sixths of a bit, because numeric costs 10/3 and
// alphanumeric 11/2 bits per character, rounded up when a segment ends.
//   scratch: 3 * length bytes. out: room for `length` segments (length >= 1).
// Returns the number of segments written (0 for empty text).
QRP_HD inline int make_segments_optimal(const std::uint8_t* text, std::uint32_t length, int version, segment* out,
                                        std::uint8_t* scratch)
{
  if (length == 0) return 0;
  constexpr int modes = 3;
  constexpr segment_mode mode_of[modes] = {segment_mode::numeric, segment_mode::alphanumeric, segment_mode::byte};
  constexpr long long char_cost[modes] = {20, 33, 48};  // sixths of a bit per character
  constexpr long long inf = 1LL << 60;
  long long head[modes];
  for (int m = 0; m < modes; ++m) head[m] = 6LL * (4 + spec::char_count_bits(mode_of[m], version));

  // cost[m]: cheapest encoding of the prefix whose last (open) segment has mode m.
  long long cost[modes];
  for (std::uint32_t i = 0; i < length; ++i) {
    const std::uint8_t c = text[i];
    const bool can[modes] = {is_numeric(c), alphanumeric_value(c) >= 0, true};
    long long next[modes];
    for (int m = 0; m < modes; ++m) {
      next[m] = inf;
      scratch[i * modes + m] = static_cast<std::uint8_t>(m);
      if (!can[m]) continue;
      if (i == 0) {
        next[m] = head[m] + char_cost[m];
        continue;
      }
      long long best = cost[m];  // continue the open segment
      for (int p = 0; p < modes; ++p) {
        if (p == m || cost[p] >= inf) continue;
        const long long closed = (cost[p] + 5) / 6 * 6 + head[m];
        if (closed < best) {
          best = closed;
          scratch[i * modes + m] = static_cast<std::uint8_t>(p);
        }
      }
      if (best < inf) next[m] = best + char_cost[m];
    }
    for (int m = 0; m < modes; ++m) cost[m] = next[m];
  }
  int mode = 0;
  for (int m = 1; m < modes; ++m)
    if ((cost[m] + 5) / 6 < (cost[mode] + 5) / 6) mode = m;

  // Walk back from the end, collecting segments in reverse, then reverse them in place.
  int count = 0;
  std::uint32_t end = length;
  for (std::uint32_t i = length; i-- > 0;) {
    const int prev = scratch[i * modes + mode];
    if (i == 0 || prev != mode) {
      out[count++] = segment{mode_of[mode], i, end - i};
      end = i;
      mode = prev;
    }
  }
  for (int a = 0, b = count - 1; a < b; ++a, --b) {
    const segment t = out[a];
    out[a] = out[b];
    out[b] = t;
  }
  return count;
}

}  // namespace qrplate::core
