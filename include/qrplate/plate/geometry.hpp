// Plate geometry: physical size, module pitch, the grid of code cells, where the bootstrap
// (header) codes sit, and the frame placement of the outer code. A contract: plate.json records
// it and the decoder rebuilds it from the manifest alone.
//
// Layout of a plate (units: modules; x right, y down, origin at the top-left module):
//   margin (4)          light border all round
//   top header strip    header codes (version 11-H, 61x61) at y = margin,
//                       x = margin + i * (61 + 4), i = 0 .. header_copies-1
//   data grid           code cell (row r, column c) has its top-left module at
//                       (grid_x + c * pitch, grid_y + r * pitch), pitch = code size + quiet;
//                       grid_x = margin, grid_y = margin + 61 + 4
//   bottom header strip header codes at y = height - margin - 61,
//                       x = width - margin - 61 - i * (61 + 4)
// The header codes hold the manifest (manifest.hpp) so a reader with only the plate and the QR
// standard recovers every parameter: they are always version 11, level H, mask automatic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "qrplate/plate/placement.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::plate {

inline constexpr int header_version = 11;
inline constexpr ecc_level header_ecc = ecc_level::H;
inline constexpr int header_size = 4 * header_version + 17;  // 61
inline constexpr int header_quiet = 4;
inline constexpr int header_pitch = header_size + header_quiet;
inline constexpr int plate_margin = 4;
inline constexpr int max_header_copies = 4;  // per strip
inline constexpr double dust_diameter_um = 100.0;
inline constexpr double small_plate_dust_fraction = 0.02;  // on plates too small for 100 um

struct plate_size_nm {
  double width = 0;
  double height = 0;
};

// "A4", "A5", "A3" (ISO 216, portrait), or "WxHum" / "WxHmm" / "WxHnm" (e.g. "500x300um").
// Throws qrplate::invalid_argument.
plate_size_nm parse_plate_size(std::string_view text);

struct geometry_options {
  int version = 40;
  ecc_level ecc = ecc_level::L;
  int quiet = 4;            // modules between codes, 1..16 (ISO asks for 4)
  double module_nm = 49.0;  // module pitch
  std::optional<plate_size_nm> plate;  // none: just large enough for the payload
  int k = 239;              // outer code: K data + M parity frames per group; m = 0: none
  int m = 16;
};

struct plate_geometry {
  double module_nm = 0;
  std::uint64_t width = 0;   // modules
  std::uint64_t height = 0;  // modules
  int version = 0;
  ecc_level ecc = ecc_level::L;
  int quiet = 0;
  int code_size = 0;
  int pitch = 0;
  std::uint32_t header_copies = 0;  // per strip (two strips)
  std::uint64_t grid_x = 0;
  std::uint64_t grid_y = 0;
  std::uint32_t columns = 0;
  std::uint64_t rows = 0;           // rows the plate offers (>= placement.rows())
  frame_placement placement;        // frames of this plate
  std::uint64_t capacity_frames = 0;  // data frames a plate of this size can hold

  std::uint64_t cell_x(std::uint32_t col) const { return grid_x + static_cast<std::uint64_t>(col) * pitch; }
  std::uint64_t cell_y(std::uint64_t row) const { return grid_y + row * pitch; }
  std::uint64_t header_x(int strip, std::uint32_t i) const;  // strip 0 = top, 1 = bottom
  std::uint64_t header_y(int strip) const;
  double width_um() const { return static_cast<double>(width) * module_nm / 1000.0; }
  double height_um() const { return static_cast<double>(height) * module_nm / 1000.0; }
};

// Validates the options (qrplate::invalid_argument with the reason).
void validate(const geometry_options& options);

// The dust window in cells for a code pitch: cells a 100 um disk can touch across.
std::uint32_t dust_window_cells(int pitch, double module_nm);

// Geometry of one plate holding `data_frames` data frames (of the payload, or of this plate's
// share when the plate size is fixed; pass at most capacity_frames then). Auto-sized plates are
// as small as the payload allows, near square. Throws qrplate::invalid_argument when the plate
// cannot hold a single group or is too large for a TIFF (2^32 pixels a side).
plate_geometry make_geometry(const geometry_options& options, std::uint64_t data_frames);

// Data frames one plate of the given fixed size holds (0 if none fit).
std::uint64_t plate_capacity_frames(const geometry_options& options);

}  // namespace qrplate::plate
