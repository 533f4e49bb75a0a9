// Single-symbol encoding: text or bytes to one QR Code Model 2 symbol (ISO/IEC 18004:2015).
// For millions of symbols of one shape, use the batch API in encode.hpp.
#pragma once

#include <cstdint>
#include <string_view>

#include "qrplate/spec/versions.hpp"
#include "qrplate/symbol.hpp"

namespace qrplate {

inline constexpr int auto_mask = -1;

struct qr_options {
  // The version is the smallest in [min_version, max_version] that holds the data at `ecc`.
  // Set both to one value to fix the version.
  int min_version = 1;
  int max_version = 40;
  ecc_level ecc = ecc_level::M;
  int mask = auto_mask;  // auto_mask: lowest ISO penalty; 0..7: forced
  int eci = -1;          // -1: no ECI header; 0..999999: ECI assignment number written first
};

// Text: split into numeric, alphanumeric and byte segments so that the bit stream is shortest
// (any bytes are accepted; bytes outside the numeric/alphanumeric sets go in byte mode).
qr_symbol encode_text(std::string_view text, const qr_options& options = {});

// Binary: one byte-mode segment, any byte values 0..255, NUL included.
qr_symbol encode_bytes(const std::uint8_t* data, std::size_t length, const qr_options& options = {});

// Name of an ECC level ("L", "M", "Q", "H") and the reverse (case-insensitive; throws
// qrplate::invalid_argument for anything else).
const char* to_string(ecc_level ecc);
ecc_level parse_ecc_level(std::string_view text);

// Byte-mode capacity: the largest byte payload one symbol of (version, ecc) holds.
int max_byte_payload(int version, ecc_level ecc);

}  // namespace qrplate
