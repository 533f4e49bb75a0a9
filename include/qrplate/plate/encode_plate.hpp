// `qrplate encode`: bytes in, self-describing plates out (plate.json, plate.tif, preview.png),
// streaming band by band in bounded memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "qrplate/encode.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"

namespace qrplate::plate {

struct plate_encode_options {
  geometry_options geometry;
  bool outer_given = false;  // the user chose K+M: do not shrink it for a small payload
  std::uint32_t tile_width = 512;
  std::uint32_t tile_height = 512;
  std::string compression = "deflate";  // none | deflate | g4
  bool discard = false;                 // run everything, write nothing
  backend where = backend::automatic;
  unsigned threads = 0;                 // 0: every core
  std::uint64_t buffer_bytes = 2ull << 30;  // bound on the pipeline's working memory
  bool progress = false;                // a progress line on stderr
  std::uint64_t plate_id = 0;           // 0: random
  // The payload's digest in plate.json: SHA-256 (one core: ~1.3 GB/s here, the encoder's floor
  // when the codes are encoded on a GPU) or the SHA-256 tree (its leaves on every thread).
  payload_hash_kind hash = payload_hash_kind::sha256;
  // When not null and it turns non-zero (a signal's number, set by a handler), the encode stops
  // at its next unit of codes, removes its staging directory and throws qrplate::interrupted.
  const std::atomic<int>* interrupt = nullptr;
};

struct plate_encode_result {
  std::uint64_t payload_bytes = 0;
  std::uint64_t plates = 0;
  std::uint64_t data_frames = 0;
  std::uint64_t parity_frames = 0;
  std::uint64_t header_codes = 0;
  std::uint64_t modules = 0;  // pixels of all plate images
  double seconds = 0;
  payload_hash_kind hash = payload_hash_kind::sha256;
  std::string digest_hex;  // the payload's digest of that kind, as in plate.json
  std::vector<std::string> plate_dirs;  // final paths (empty with discard)
  int k = 0, m = 0;                     // outer code used
};

// Encodes `input` ("-" = standard input) into `out_dir`: one plate directly in out_dir, or
// plate-0001, plate-0002, ... subdirectories when a fixed plate size needs several. Everything
// is written under a temporary name next to out_dir and renamed at the end; out_dir must not
// exist. Throws qrplate::invalid_argument / io_error / data_too_long with a one-line reason.
plate_encode_result encode_plates(const std::string& input, const std::string& out_dir,
                                  const plate_encode_options& options);

// Working memory the encoder needs for a plate (checked against buffer_bytes): four unit
// rasters, one unit of codes and frames, the row of TIFF tiles awaiting the next band,
// each thread's scratch (0: every core) and the payload read ahead (a block more a thread for
// the SHA-256 tree's hashers).
double encode_memory_bytes(const plate_geometry& g, std::uint32_t tile_height, unsigned threads = 0,
                           payload_hash_kind hash = payload_hash_kind::sha256);

// The outer code a payload of `data_frames` frames gets: the requested K+M, or, for payloads
// smaller than one group when the user did not choose, K = data_frames and M scaled down in
// proportion (at least 1).
void effective_outer(const plate_encode_options& options, std::uint64_t data_frames, int& k, int& m);

}  // namespace qrplate::plate
