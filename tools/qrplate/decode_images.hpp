// `qrplate decode IMAGE|DIR` without a plate layout: every ordinary QR code in an image, or in
// each image of a directory, found and read by the blind reader (host/blind/blind_reader.hpp).
#pragma once

#include <string>

namespace qrplate::cli {

// input: one image file (PNG, TIFF, PGM: what sim::read_gray_image reads), or a directory whose
// *.png, *.tif, *.tiff, *.pgm files (extension case-insensitive, not recursive) are read in
// name order. For each code found, one line on stdout:
//   FILE: vVERSION-LEVEL at (X, Y): CONTENT
// (X, Y) = the symbol's top-left outer corner in pixels; CONTENT as text when it is printable
// UTF-8 (no control characters), else "hex:" and lowercase hex digits. Codes within an image come
// in reading order.
// output_json: when non-empty, a JSON array is written there (one object per code: file,
// version, ecc, mask, status, inverted, module_px, corners [[x, y] x 4: top-left, top-right,
// bottom-right, bottom-left], content and encoding "text" or "hex"); written to a temporary
// name and renamed, so the path never holds a partial list.
// threads: 0 = every core.
// A file that cannot be read gives one line "qrplate: FILE: reason" on stderr and the run goes
// on with the others. Returns 0 when at least one code was read overall and every file could be
// read; 1 otherwise (no code at all, an unreadable file, no image in the directory, no such
// path). Throws qrplate::io_error when the JSON file cannot be written.
int decode_images(const std::string& input, const std::string& output_json_or_empty, unsigned threads);

}  // namespace qrplate::cli
