// Frames: the unit of payload on a plate. One frame is the byte-mode payload of one QR code; it
// says which plate it belongs to, where it sits in the stream, and carries a CRC32C so that a code
// which Reed-Solomon "corrected" into wrong bytes is caught before the outer erasure decode.
//
// On-plate layout, format version 1. This is a contract: other tools read it. All integers are
// little-endian.
//
//   offset  size  field
//   0       1     (format_version << 4) | kind; format_version = 1; kind 0 = data, 1 = parity
//   1       2     plate tag: the low 16 bits of the 64-bit plate id
//   3       8     frame index: data frames 0..D-1; parity frames are numbered separately 0..P-1
//   11      4     CRC-32C (Castagnoli, reflected, init and final XOR 0xFFFFFFFF; crc32c("123456789")
//                 == 0xE3069283) over bytes 0..10 followed by the body
//   15      ...   body
//
//   Data body:   2-byte payload length L, then L payload bytes. Nothing follows: the byte count of
//                the QR code's byte-mode segment delimits the frame, so short last frames stay short.
//   Parity body: exactly `width` parity bytes (width = frame_body_bytes of the plate's version and
//                ECC level), the outer code's output for one group (outer_code.hpp).
//
// For the outer code a data body is zero-padded to `width` (pad_data_body); the padding is never
// written on the plate, and the length prefix tells a recovered body's payload apart from it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "qrplate/spec/versions.hpp"

namespace qrplate::plate {

inline constexpr int frame_format_version = 1;
inline constexpr int frame_header_bytes = 15;
inline constexpr int data_length_bytes = 2;  // the data body's payload length prefix

enum class frame_kind : std::uint8_t { data = 0, parity = 1 };

struct frame_header {
  frame_kind kind = frame_kind::data;
  std::uint16_t plate_tag = 0;
  std::uint64_t index = 0;
};

// The plate tag written in every frame: the low 16 bits of the plate id.
constexpr std::uint16_t plate_tag_of(std::uint64_t plate_id)
{
  return static_cast<std::uint16_t>(plate_id & 0xFFFFu);
}

// Body bytes per frame in one code of (version, ecc): the byte-mode capacity less the header.
// Throws qrplate::invalid_argument when the code is too small to hold a header and a data body
// with at least one payload byte (capacity < frame_header_bytes + 3), or the version is invalid.
int frame_body_bytes(int version, ecc_level ecc);

// Payload bytes per data frame: frame_body_bytes less the 2-byte length prefix.
int frame_data_bytes(int version, ecc_level ecc);

// Standard CRC-32C, chainable: crc32c(b, nb, crc32c(a, na)) == crc32c(a || b). Fast path: ISA-L
// crc32_iscsi (which keeps the raw register: no inversion on entry or exit, hence the ~ around it).
std::uint32_t crc32c(const std::uint8_t* data, std::size_t n, std::uint32_t crc = 0);
// Bitwise reference of crc32c (polynomial 0x82F63B78, reflected), for tests.
std::uint32_t crc32c_reference(const std::uint8_t* data, std::size_t n, std::uint32_t crc = 0);

// Writes header + body into out (capacity >= frame_header_bytes + body_len) and returns the
// byte count. body may be out + frame_header_bytes (a body built in place). Throws
// qrplate::invalid_argument for an unknown kind, a null pointer with a nonzero length, or a data
// body whose length prefix does not match body_len - 2 (such a frame would never parse).
std::size_t write_frame(const frame_header& h, const std::uint8_t* body, std::size_t body_len, std::uint8_t* out);

enum class frame_status : std::uint8_t {
  ok,
  too_short,    // fewer than frame_header_bytes bytes
  bad_version,  // high nibble of byte 0 is not frame_format_version
  bad_kind,     // low nibble of byte 0 is neither data nor parity
  bad_crc,      // CRC-32C mismatch
  bad_length,   // data frame: body shorter than the prefix, or prefix != body_len - 2
};
const char* to_string(frame_status s);

struct parsed_frame {
  frame_status status = frame_status::too_short;
  frame_header header;                 // as read; trustworthy only when status == ok
  const std::uint8_t* body = nullptr;  // points into the parsed bytes (data: includes the prefix)
  std::size_t body_len = 0;
};

// Checks, in this order, reporting the first failure: too_short, bad_version, bad_kind,
// bad_length (data frames), bad_crc. The cheap structural checks come first, so that a truncated
// data frame reads as bad_length rather than as a CRC failure. A parity body's length is not
// checked here (the frame does not know the width); the caller compares it with the width.
// When n >= frame_header_bytes, header/body are filled even on failure, for reports.
parsed_frame parse_frame(const std::uint8_t* bytes, std::size_t n);

// Builds a data body (length prefix + payload) into body_out (capacity >= len + 2) and returns
// its size. Throws qrplate::invalid_argument if len > 65535.
std::size_t make_data_body(const std::uint8_t* payload, std::size_t len, std::uint8_t* body_out);

// Copies a data body into out and zero-fills it to `width` bytes (the outer code's fixed row
// width). out may equal body. Throws qrplate::invalid_argument if body_len > width.
void pad_data_body(const std::uint8_t* body, std::size_t body_len, std::size_t width, std::uint8_t* out);

}  // namespace qrplate::plate
