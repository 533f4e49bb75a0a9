// The blind reader: ordinary QR codes found and decoded in a grayscale image with no known
// layout (any encoder, any count per image, ~1.5 to 20 pixels per module, any rotation, either
// polarity, noise). Used by `qrplate decode IMAGE|DIR` and to find a plate's header codes in SEM
// scan tiles, where the plate geometry is not known yet.
//
// Pipeline (blind_reader.cpp): a local-mean threshold (block means, so that memory stays one byte
// per pixel) -> finder patterns by the 1:1:3:1:1 run scan (ISO 18004:2015 §6.3.3, Annex E step
// 1), cross-checked vertically, horizontally again and diagonally -> clusters of hits -> triples
// of finders near a right angle with equal arms (bounded: the 16 nearest compatible finders of
// each corner) -> the size from the timing patterns (§6.3.5) tried over the sizes the finder
// distance allows, the version information (§7.10) for versions 7+ -> an affine grid through the
// finder centres, refined by a least-squares fit to the alignment patterns found near their
// predicted places plus a bilinear residual correction -> module means, a local two-means
// threshold, confidences from the distance to it -> core::decode_symbol.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "qrplate/core/decode_symbol.hpp"
#include "qrplate/spec/versions.hpp"
#include "sim/scan_io.hpp"

namespace qrplate::blind {

struct blind_options {
  unsigned threads = 0;      // 0 = every core
  bool try_inverted = true;  // also look for light-on-dark codes
};

struct found_code {
  // Pixel coordinates of the outer corners of the module grid, in symbol order: top-left,
  // top-right, bottom-right, bottom-left (the top-left is the corner of the finder at the right
  // angle, whatever the code's rotation in the image).
  double x[4] = {}, y[4] = {};
  int version = 0;
  ecc_level ecc = ecc_level::L;
  int mask = 0;
  core::decode_status status = core::decode_status::ok;  // ok, corrected or erasure_assisted
  std::vector<std::uint8_t> content;                     // as decode_symbol writes it
  double module_px = 0;                                  // pixels per module (mean of both axes)
  bool inverted = false;                                 // light modules on a dark ground
};

struct blind_result {
  std::vector<found_code> codes;  // reading order (rows of codes by their top, then left to right)
  std::size_t finders = 0;        // finder pattern candidates, both polarities
  std::size_t candidates = 0;     // finder triples examined (timing checked)
  std::size_t failed = 0;         // triples that passed the timing check but did not decode
};

// Never throws for image content (any size, including empty, uniform or random images: those
// return no codes). Throws qrplate::invalid_argument for an image that breaks the gray_image
// contract (pixels.size() != width * height, bits not 8 or 16).
blind_result read_codes(const sim::gray_image& image, const blind_options& options = {});

}  // namespace qrplate::blind
