// The plate manifest: every parameter a reader needs, carried twice — in the header codes on
// the plate itself (binary, below) and in plate.json (human-readable, plus the same fields).
//
// Binary form (all integers little-endian), written into each header code (version 11-H, byte
// mode). The payload's SHA-256 is only in plate.json: the header codes are drawn before the
// payload has been read.
//   off size field
//     0   4  magic "QRPM"
//     4   1  manifest format version (1)
//     5   8  plate id (random 64-bit, shared by all plates of one payload)
//    13   4  plate number k (0-based) and plate count n, 2 bytes each
//    17   4  module pitch in picometres
//    21  16  plate width and height in modules, 8 bytes each
//    37   4  code version, ECC level (0 L, 1 M, 2 Q, 3 H), quiet zone, header copies per strip
//    41  20  grid x, grid y (8 bytes each), columns (4)
//    61   8  grid rows
//    69  12  band rows (4), groups per band (4), columns per block (4)
//    81   6  outer K (2), outer M (2), dust window in cells (2)
//    87   8  data frames on this plate
//    95   8  byte offset of this plate's share in the payload
//   103   8  bytes of this plate's share
//   111   8  payload bytes in total
//   119   4  CRC32C of bytes 0..118
//   = 123 bytes (version 11-H holds 137)
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "qrplate/plate/geometry.hpp"

namespace qrplate::plate {

inline constexpr int manifest_bytes = 123;
inline constexpr std::uint8_t manifest_format_version = 1;

// How plate.json's payload digest is made (docs/FORMAT.md, "Payload hash").
enum class payload_hash_kind : std::uint8_t {
  sha256,       // SHA-256 of the whole payload (what sha256sum prints); one core's rate
  sha256_tree,  // the root of a SHA-256 tree over leaves of tree_leaf_bytes, hashed on every core
};
inline constexpr std::uint64_t default_tree_leaf_bytes = std::uint64_t{4} << 20;
// Leaf sizes a plate.json may give: from 4 KiB (bounded digest traffic) to 4 GiB.
inline constexpr std::uint64_t min_tree_leaf_bytes = std::uint64_t{1} << 12, max_tree_leaf_bytes = std::uint64_t{1} << 32;
// "sha256" or "sha256-tree" (the command line's names).
const char* to_string(payload_hash_kind kind);
// Throws qrplate::invalid_argument for another name.
payload_hash_kind parse_payload_hash(const std::string& name);
// "SHA-256" or "SHA-256 tree", for messages.
const char* display_name(payload_hash_kind kind);

struct manifest {
  std::uint64_t plate_id = 0;
  std::uint16_t plate_number = 0;  // 0-based
  std::uint16_t plate_count = 1;
  double module_nm = 49.0;         // stored in picometres
  std::uint64_t width = 0, height = 0;
  int version = 40;
  ecc_level ecc = ecc_level::L;
  int quiet = 4;
  std::uint32_t header_copies = 0;
  std::uint64_t grid_x = 0, grid_y = 0;
  std::uint32_t columns = 0;
  std::uint64_t rows = 0;
  std::uint32_t band_rows = 0, groups_per_band = 0, block_columns = 0;
  int k = 1, m = 0;
  std::uint32_t dust_window = 0;
  std::uint64_t data_frames = 0;
  std::uint64_t share_offset = 0, share_bytes = 0, payload_bytes = 0;
  // plate.json only (the header codes are drawn before the payload has been read): the payload's
  // digest, SHA-256 of the whole or the SHA-256 tree's root over leaves of tree_leaf_bytes.
  payload_hash_kind payload_hash = payload_hash_kind::sha256;
  std::uint64_t tree_leaf_bytes = default_tree_leaf_bytes;
  std::array<std::uint8_t, 32> payload_digest{};
};

// The manifest of a plate laid out by `g`.
manifest make_manifest(const plate_geometry& g, std::uint64_t plate_id, std::uint16_t plate_number,
                       std::uint16_t plate_count, std::uint64_t share_offset, std::uint64_t share_bytes,
                       std::uint64_t payload_bytes);

// The geometry (placement included) the manifest describes; throws qrplate::invalid_argument
// for an inconsistent manifest.
plate_geometry geometry_of(const manifest& m);

std::vector<std::uint8_t> to_binary(const manifest& m);
// Throws qrplate::invalid_argument ("manifest: ...") for a wrong size, magic, version or CRC.
manifest manifest_from_binary(const std::uint8_t* bytes, std::size_t n);

// plate.json text (the binary fields by name, the SHA-256, file names and tiling) and back.
struct image_info {
  std::string file = "plate.tif";
  std::uint32_t tile_width = 512, tile_height = 512;
  std::string compression = "deflate";
  std::string preview = "preview.png";
};
std::string to_json(const manifest& m, const image_info& image);
manifest manifest_from_json(const std::string& text, image_info* image = nullptr);

std::string to_hex(const std::uint8_t* bytes, std::size_t n);

}  // namespace qrplate::plate
