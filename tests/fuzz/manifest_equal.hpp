// Field-by-field equality of two manifests (manifest has no operator==), for the round trips.
#pragma once

#include "qrplate/plate/manifest.hpp"

namespace qrplate::fuzz {

inline bool same_manifest(const plate::manifest& a, const plate::manifest& b, bool with_digest)
{
  return a.plate_id == b.plate_id && a.plate_number == b.plate_number && a.plate_count == b.plate_count &&
         a.module_nm == b.module_nm && a.width == b.width && a.height == b.height && a.version == b.version &&
         a.ecc == b.ecc && a.quiet == b.quiet && a.header_copies == b.header_copies && a.grid_x == b.grid_x &&
         a.grid_y == b.grid_y && a.columns == b.columns && a.rows == b.rows && a.band_rows == b.band_rows &&
         a.groups_per_band == b.groups_per_band && a.block_columns == b.block_columns && a.k == b.k && a.m == b.m &&
         a.dust_window == b.dust_window && a.data_frames == b.data_frames && a.share_offset == b.share_offset &&
         a.share_bytes == b.share_bytes && a.payload_bytes == b.payload_bytes &&
         (!with_digest || (a.payload_hash == b.payload_hash && a.payload_digest == b.payload_digest &&
                           (a.payload_hash == plate::payload_hash_kind::sha256 || a.tree_leaf_bytes == b.tree_leaf_bytes)));
}

}  // namespace qrplate::fuzz
