// Frame header, CRC-32C and data bodies (layout in qrplate/plate/frame.hpp).
#include "qrplate/plate/frame.hpp"

#include <isa-l/crc.h>

#include <climits>
#include <cstring>
#include <string>

#include "qrplate/error.hpp"
#include "qrplate/qr.hpp"

namespace qrplate::plate {
namespace {

constexpr int crc_offset = 11;  // bytes 0..10 are covered, then the body

void store_le(std::uint8_t* p, std::uint64_t v, int bytes)
{
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint64_t load_le(const std::uint8_t* p, int bytes)
{
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

}  // namespace

int frame_body_bytes(int version, ecc_level ecc)
{
  const int capacity = max_byte_payload(version, ecc);  // validates version
  const int body = capacity - frame_header_bytes;
  if (body < data_length_bytes + 1)
    throw invalid_argument("version " + std::to_string(version) + "-" + to_string(ecc) + " holds " +
                           std::to_string(capacity) + " bytes per code; a frame needs at least " +
                           std::to_string(frame_header_bytes + data_length_bytes + 1) +
                           " (choose a larger version or a lower ECC level)");
  return body;
}

int frame_data_bytes(int version, ecc_level ecc)
{
  return frame_body_bytes(version, ecc) - data_length_bytes;
}

std::uint32_t crc32c(const std::uint8_t* data, std::size_t n, std::uint32_t crc)
{
  // crc32_iscsi takes an int length and a non-const pointer (it only reads).
  std::uint32_t reg = ~crc;
  auto* p = const_cast<unsigned char*>(data);
  while (n > 0) {
    const std::size_t chunk = n < std::size_t{INT_MAX} ? n : std::size_t{1} << 30;
    reg = crc32_iscsi(p, static_cast<int>(chunk), reg);
    p += chunk;
    n -= chunk;
  }
  return ~reg;
}

std::uint32_t crc32c_reference(const std::uint8_t* data, std::size_t n, std::uint32_t crc)
{
  std::uint32_t reg = ~crc;
  for (std::size_t i = 0; i < n; ++i) {
    reg ^= data[i];
    for (int bit = 0; bit < 8; ++bit) reg = (reg >> 1) ^ (0x82F63B78u & (0u - (reg & 1u)));
  }
  return ~reg;
}

std::size_t write_frame(const frame_header& h, const std::uint8_t* body, std::size_t body_len, std::uint8_t* out)
{
  if (h.kind != frame_kind::data && h.kind != frame_kind::parity)
    throw invalid_argument("frame kind " + std::to_string(static_cast<int>(h.kind)) +
                           " is neither data (0) nor parity (1)");
  if (out == nullptr || (body == nullptr && body_len > 0)) throw invalid_argument("write_frame: null buffer");
  if (h.kind == frame_kind::data) {
    if (body_len < static_cast<std::size_t>(data_length_bytes) ||
        load_le(body, data_length_bytes) != body_len - data_length_bytes)
      throw invalid_argument("write_frame: data body of " + std::to_string(body_len) +
                             " bytes does not start with its payload length (use make_data_body)");
  }
  std::uint8_t* out_body = out + frame_header_bytes;
  if (body_len > 0 && body != out_body) std::memmove(out_body, body, body_len);
  out[0] = static_cast<std::uint8_t>((frame_format_version << 4) | static_cast<int>(h.kind));
  store_le(out + 1, h.plate_tag, 2);
  store_le(out + 3, h.index, 8);
  std::uint32_t crc = crc32c(out, crc_offset);
  crc = crc32c(out_body, body_len, crc);
  store_le(out + crc_offset, crc, 4);
  return frame_header_bytes + body_len;
}

const char* to_string(frame_status s)
{
  switch (s) {
    case frame_status::ok:
      return "ok";
    case frame_status::too_short:
      return "too_short";
    case frame_status::bad_version:
      return "bad_version";
    case frame_status::bad_kind:
      return "bad_kind";
    case frame_status::bad_crc:
      return "bad_crc";
    case frame_status::bad_length:
      return "bad_length";
  }
  return "unknown";
}

parsed_frame parse_frame(const std::uint8_t* bytes, std::size_t n)
{
  parsed_frame r;
  if (bytes == nullptr || n < static_cast<std::size_t>(frame_header_bytes)) {
    r.status = frame_status::too_short;
    return r;
  }
  const int version = bytes[0] >> 4;
  const int kind = bytes[0] & 0x0F;
  r.header.kind = static_cast<frame_kind>(kind);
  r.header.plate_tag = static_cast<std::uint16_t>(load_le(bytes + 1, 2));
  r.header.index = load_le(bytes + 3, 8);
  r.body = bytes + frame_header_bytes;
  r.body_len = n - frame_header_bytes;

  if (version != frame_format_version) {
    r.status = frame_status::bad_version;
  } else if (kind != static_cast<int>(frame_kind::data) && kind != static_cast<int>(frame_kind::parity)) {
    r.status = frame_status::bad_kind;
  } else if (kind == static_cast<int>(frame_kind::data) &&
             (r.body_len < static_cast<std::size_t>(data_length_bytes) ||
              load_le(r.body, data_length_bytes) != r.body_len - data_length_bytes)) {
    r.status = frame_status::bad_length;
  } else {
    std::uint32_t crc = crc32c(bytes, crc_offset);
    crc = crc32c(r.body, r.body_len, crc);
    r.status = crc == load_le(bytes + crc_offset, 4) ? frame_status::ok : frame_status::bad_crc;
  }
  return r;
}

std::size_t make_data_body(const std::uint8_t* payload, std::size_t len, std::uint8_t* body_out)
{
  if (len > 0xFFFF)
    throw invalid_argument("data frame payload of " + std::to_string(len) +
                           " bytes exceeds the 65535 of its length field");
  if (body_out == nullptr || (payload == nullptr && len > 0)) throw invalid_argument("make_data_body: null buffer");
  if (len > 0) std::memmove(body_out + data_length_bytes, payload, len);
  store_le(body_out, len, data_length_bytes);
  return len + data_length_bytes;
}

void pad_data_body(const std::uint8_t* body, std::size_t body_len, std::size_t width, std::uint8_t* out)
{
  if (body_len > width)
    throw invalid_argument("data body of " + std::to_string(body_len) + " bytes is wider than the outer code width " +
                           std::to_string(width));
  if (out == nullptr || (body == nullptr && body_len > 0)) throw invalid_argument("pad_data_body: null buffer");
  if (body_len > 0 && body != out) std::memmove(out, body, body_len);
  std::memset(out + body_len, 0, width - body_len);
}

}  // namespace qrplate::plate
