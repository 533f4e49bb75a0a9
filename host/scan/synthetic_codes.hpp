// Codes drawn into one image at a known pose, in memory: the input of the read-core benchmark
// (`qrplate bench --decode`) and of the CPU/CUDA identity test of the read kernel. Not a SEM
// model (that is host/sim/): a box beam (2x2 sub-samples per pixel), two levels and Gaussian
// noise, enough for codes to read and for the read core's cost to be measured.
#pragma once

#include <cstdint>
#include <vector>

#include "qrplate/core/read_code.hpp"
#include "qrplate/qr.hpp"

namespace qrplate::scan {

struct synthetic_codes {
  const core::version_plan* plan = nullptr;
  double module_px = 0;
  std::vector<std::vector<std::uint8_t>> payloads;  // code i holds payloads[i] (byte mode)
  std::vector<std::uint16_t> pixels;                // width x height, row-major
  int width = 0, height = 0;
  core::affine_map to_pixel;       // lattice module coordinates -> pixels
  std::vector<core::code_map> maps;  // code i: the exact map (no anchor offsets)

  core::gray_view view() const { return {pixels.data(), width, height, static_cast<std::size_t>(width)}; }
  std::uint64_t pixel_count() const { return static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height); }
};

// columns x rows codes of version/ecc (random payloads of 60-100% of the capacity, masks 0-7 in
// turn) on a lattice of size + 4 modules pitch, drawn at module_px pixels per module rotated by
// rotation_deg, dark 12,000 / light 40,000 plus Gaussian noise of sigma noise. Deterministic in seed.
synthetic_codes make_synthetic_codes(int version, ecc_level ecc, double module_px, int columns, int rows,
                                     double rotation_deg, double noise, std::uint64_t seed);

}  // namespace qrplate::scan
