// A whole scan set made on the spot: random bytes encoded into a plate (plate::encode_plates),
// scanned by the SEM simulator (sim::simulate), its tiles optionally rewritten as uncompressed
// 8-bit TIFFs (what a microscope writing raw frames gives, and the tile format the GPU readback's
// end-to-end target is stated for). The input of the whole-decode rows of `qrplate bench --scan`
// and of bench_decode's BM_decode_plate rows: every stage of `qrplate decode` on a scan set, on
// files that exist only for the measurement.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qrplate/encode.hpp"
#include "qrplate/plate/geometry.hpp"

namespace qrplate::scan {

struct synthetic_scan_options {
  int version = 10;
  ecc_level ecc = ecc_level::M;
  std::uint64_t payload_bytes = 100000;  // with `plate`: 0 fills it
  // The plate's size; none: just large enough for the payload, near square. A plate wider than
  // the decoder's column strips is read row by row within each strip, as a real plate is (one
  // only a strip wide is read a band of rows at once). The payload must fit one plate.
  std::optional<plate::plate_size_nm> plate;
  double px_per_module = 3;
  std::uint32_t tile_px = 1024;
  bool raw8 = true;        // 8-bit samples, tiles uncompressed; false: the simulator's 16-bit deflate
  std::uint64_t seed = 7;  // payload, plate id and scan
  unsigned threads = 0;    // for encoding and simulating; 0: every core
  // When not 0: refuse (qrplate::invalid_argument, before simulating) a scan whose tiles would
  // take more bytes than this on disk, by an estimate from the plate's size.
  std::uint64_t max_scan_bytes = 0;
};

struct synthetic_scan {
  std::string plate_dir, scan_dir;
  std::string payload_file;             // the bytes the plate holds
  std::vector<std::string> tile_files;  // the tiles the simulator wrote (none missing: the clean preset)
  std::uint64_t payload_bytes = 0;
  double plate_width_um = 0, plate_height_um = 0;  // the plate encoded
  std::uint32_t code_columns = 0;                  // of its grid
  std::uint64_t scan_pixels = 0;      // of all tiles
  std::uint64_t scan_file_bytes = 0;  // the tile files' sizes together
  std::uint64_t code_cells = 0;       // cells of the plate's grid that hold a code (frames and header codes)
};

// Writes payload.bin, plate/ and scan/ into `dir` (created if missing; plate/ and scan/ must not
// exist). The scan: the simulator's "clean" preset (stage error, rotation, scale, beam blur and
// shot noise; no dust or missing tiles) at px_per_module, tiles of tile_px. Deterministic in the
// options. Throws invalid_argument for a scan over max_scan_bytes or a payload that does not fit
// the given plate, and what encode_plates and
// simulate throw (qrplate::invalid_argument for options
// they refuse, io_error for files).
synthetic_scan make_synthetic_scan(const std::string& dir, const synthetic_scan_options& options);

// The payload make_synthetic_scan would encode (options.payload_bytes, or what fills the plate),
// or the invalid_argument it would throw for it: for checking options before any work.
std::uint64_t synthetic_scan_payload(const synthetic_scan_options& options);

}  // namespace qrplate::scan
