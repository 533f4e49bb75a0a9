// Reading a plate image back to the bytes (`qrplate decode PLATE_DIR`): every code cell of
// plate.tif is sampled (one pixel per module), decoded by the per-code core, its frame checked
// (CRC32C, plate tag), frames placed by index, missing data frames restored by the outer code
// group by group, and the payload checked against plate.json's SHA-256. This is the digital
// read path: it verifies a plate image before it is milled, and it is the back half of reading
// SEM scans (which add registration and sampling in front of it).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qrplate::plate {

struct plate_decode_options {
  unsigned threads = 0;   // 0: every core
  bool progress = false;  // a progress line on stderr
  // A PNG of the plate's code grid, one pixel per cell (or per block of cells on big plates,
  // showing the worst), coloured by what happened to the cell: green clean, yellow corrected by
  // the code's own Reed-Solomon, orange unreadable but restored by the outer code, red lost,
  // magenta a frame rejected (CRC or plate tag), white no frame. Several plates: "-NNNN" is
  // inserted before the extension. Empty: none.
  std::string heatmap;
};

struct plate_decode_result {
  std::uint64_t plates = 0;
  bool bootstrapped = false;        // manifest read from the header codes (no plate.json)
  std::uint64_t payload_bytes = 0;
  std::uint64_t codes = 0;          // code cells holding a frame
  std::uint64_t codes_clean = 0;
  std::uint64_t codes_corrected = 0;  // by the QR code's own Reed-Solomon
  std::uint64_t codes_unreadable = 0;
  std::uint64_t frames_rejected = 0;  // decoded, but CRC or plate tag wrong
  std::uint64_t data_frames = 0;
  std::uint64_t recovered_by_outer = 0;
  std::uint64_t lost_frames = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> lost_ranges;  // payload byte ranges [begin, end)
  bool sha256_checked = false;
  bool sha256_ok = false;
  bool complete = false;  // every byte recovered (and the SHA-256 matches when known)
  double seconds = 0;
};

// Decodes PLATE_DIR (one plate, or plate-NNNN subdirectories) into out_file, written under a
// temporary name and renamed only when the payload is complete; when it is not, the partial
// file is kept as out_file + ".partial" and the result says which byte ranges are lost.
// Throws qrplate::io_error / invalid_argument for unreadable or inconsistent input.
plate_decode_result decode_plates(const std::string& plate_dir, const std::string& out_file,
                                  const plate_decode_options& options);

}  // namespace qrplate::plate
