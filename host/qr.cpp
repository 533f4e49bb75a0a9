// Single-symbol encoding on the host: validation, version choice and segmentation around the
// shared per-code core.
#include "qrplate/qr.hpp"

#include <cctype>
#include <memory>
#include <string>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/codewords.hpp"
#include "qrplate/core/encode_symbol.hpp"
#include "qrplate/core/segments.hpp"
#include "qrplate/error.hpp"

namespace qrplate {
namespace {

void validate(const qr_options& o)
{
  if (!spec::valid_version(o.min_version))
    throw invalid_argument("min_version " + std::to_string(o.min_version) + " out of range 1..40");
  if (!spec::valid_version(o.max_version))
    throw invalid_argument("version " + std::to_string(o.max_version) + " out of range 1..40");
  if (o.min_version > o.max_version)
    throw invalid_argument("min_version " + std::to_string(o.min_version) + " is above max_version " +
                           std::to_string(o.max_version));
  if (static_cast<unsigned>(o.ecc) > 3u) throw invalid_argument("unknown error correction level");
  if (o.mask < auto_mask || o.mask > 7)
    throw invalid_argument("mask " + std::to_string(o.mask) + " out of range 0..7 (or automatic)");
  if (o.eci < -1 || o.eci > 999999) throw invalid_argument("ECI " + std::to_string(o.eci) + " out of range 0..999999");
}

std::string range_name(const qr_options& o)
{
  const std::string level = to_string(o.ecc);
  if (o.min_version == o.max_version) return "version " + std::to_string(o.max_version) + "-" + level;
  return "versions " + std::to_string(o.min_version) + ".." + std::to_string(o.max_version) + " at level " + level;
}

// Encodes prepared segments in the smallest fitting version; `segments_for(version)` returns
// the segments to use for that version (they may differ between the three count-width classes).
template <typename SegmentsFor>
qr_symbol encode_segments(const std::uint8_t* text, const qr_options& o, SegmentsFor&& segments_for,
                          const std::string& what)
{
  validate(o);
  for (int v = o.min_version; v <= o.max_version; ++v) {
    const std::vector<core::segment>& segs = segments_for(v);
    const long long bits = core::total_segment_bits(segs.data(), static_cast<int>(segs.size()), v);
    if (bits < 0 || bits > 8LL * spec::num_data_codewords(v, o.ecc)) continue;

    const core::version_plan& plan = host::version_plan_for(v, o.ecc);
    auto ws = std::make_unique<core::encode_workspace>();
    if (!core::build_data_codewords(text, segs.data(), static_cast<int>(segs.size()), v, o.ecc, ws->data))
      throw std::logic_error("qrplate: segments that fit did not encode");
    qr_symbol out;
    out.version = v;
    out.ecc = o.ecc;
    out.size = plan.size;
    out.rows.assign(words_per_symbol(plan.size), 0);
    out.mask = core::encode_from_data_codewords(plan, *ws, o.mask, out.rows.data());
    return out;
  }
  throw data_too_long(what + " does not fit " + range_name(o) + " (at most " +
                      std::to_string(spec::num_data_codewords(o.max_version, o.ecc) * 8) + " data bits)");
}

}  // namespace

qr_symbol encode_text(std::string_view text, const qr_options& o)
{
  validate(o);
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data());
  const auto length = static_cast<std::uint32_t>(text.size());
  if (text.size() > 1u << 20) throw data_too_long("text of " + std::to_string(text.size()) + " bytes is too long");
  // Count-indicator widths differ for versions 1-9, 10-26, 27-40: segment once per class.
  std::vector<core::segment> per_class[3];
  std::vector<std::uint8_t> scratch(3 * static_cast<std::size_t>(length) + 3);
  const int representative[3] = {1, 10, 27};
  for (int c = 0; c < 3; ++c) {
    auto& segs = per_class[c];
    if (o.eci >= 0) segs.push_back({spec::segment_mode::eci, static_cast<std::uint32_t>(o.eci), 0});
    std::vector<core::segment> found(length + 1);
    const int n = core::make_segments_optimal(bytes, length, representative[c], found.data(), scratch.data());
    segs.insert(segs.end(), found.begin(), found.begin() + n);
  }
  auto segments_for = [&](int v) -> const std::vector<core::segment>& {
    return per_class[v <= 9 ? 0 : (v <= 26 ? 1 : 2)];
  };
  return encode_segments(bytes, o, segments_for, "text of " + std::to_string(text.size()) + " bytes");
}

qr_symbol encode_bytes(const std::uint8_t* data, std::size_t length, const qr_options& o)
{
  validate(o);
  if (length > 1u << 20) throw data_too_long("payload of " + std::to_string(length) + " bytes is too long");
  std::vector<core::segment> segs;
  if (o.eci >= 0) segs.push_back({spec::segment_mode::eci, static_cast<std::uint32_t>(o.eci), 0});
  segs.push_back({spec::segment_mode::byte, 0, static_cast<std::uint32_t>(length)});
  auto segments_for = [&](int) -> const std::vector<core::segment>& { return segs; };
  return encode_segments(data, o, segments_for, "payload of " + std::to_string(length) + " bytes");
}

const char* to_string(ecc_level ecc)
{
  switch (ecc) {
    case ecc_level::L: return "L";
    case ecc_level::M: return "M";
    case ecc_level::Q: return "Q";
    case ecc_level::H: return "H";
  }
  return "?";
}

ecc_level parse_ecc_level(std::string_view text)
{
  if (text.size() == 1) {
    switch (std::toupper(static_cast<unsigned char>(text[0]))) {
      case 'L': return ecc_level::L;
      case 'M': return ecc_level::M;
      case 'Q': return ecc_level::Q;
      case 'H': return ecc_level::H;
      default: break;
    }
  }
  throw invalid_argument("unknown error correction level '" + std::string(text) + "' (expected L, M, Q or H)");
}

int max_byte_payload(int version, ecc_level ecc)
{
  if (!spec::valid_version(version)) throw invalid_argument("version " + std::to_string(version) + " out of range 1..40");
  const int bits = 8 * spec::num_data_codewords(version, ecc) - 4 - spec::char_count_bits(spec::segment_mode::byte, version);
  return bits / 8;
}

}  // namespace qrplate
