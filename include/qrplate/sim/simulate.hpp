// `qrplate simulate`: a plate directory -> a scan set directory of realistic SEM tiles
// (tiles + scan.json with the nominal stage positions + truth.json with the true geometry and
// the defects), deterministic for a seed. The per-pixel model is in sem_model.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "qrplate/sim/parameter_error.hpp"
#include "qrplate/sim/sem_model.hpp"

namespace qrplate::sim {

// A rectangle of the plate in modules.
struct module_region {
  std::uint64_t x = 0, y = 0, width = 0, height = 0;
};
module_region parse_region(std::string_view text);  // "X,Y,WxH" in modules, e.g. "0,0,2000x1500"

struct simulate_options {
  sem_params sem;
  double pixel_nm = 0;  // pixel size; 0 = module_nm / px_per_module
  double px_per_module = 3.0;
  std::uint32_t tile_px = 1024;   // tile side in pixels
  double overlap = 0.10;          // fraction of a tile shared with its neighbour, 0..<0.9
  double stage_sigma_nm = 500;    // stage position error (Gaussian sigma per axis), 0..100000
  // The tile grid covers the region plus this much on every side, as an operator scans past a
  // plate's edges so that stage error cannot leave an edge unscanned. < 0: 3 x stage_sigma_nm.
  double overscan_nm = -1;
  double rotation_max_deg = 0.5;  // scan rotation against the plate, uniform in +-, 0..10
  double scale_max = 0.005;       // pixel size error, uniform in +-, 0..<0.2
  double dust_per_mm2 = 0;        // dust particles (opaque disks), 0..1e6
  double dust_diameter_um = 2.0;  // mean diameter (exponential distribution)
  double scratches_per_mm2 = 0;   // scratches (long thin strips), 0..1e5
  double scratch_width_nm = 200;
  double scratch_length_um = 50;
  double missing_tile_rate = 0;         // probability that a tile is missing from the scan set, 0..<1
  std::optional<module_region> region;  // default: the whole plate
  std::uint64_t seed = 1;
  unsigned threads = 0;  // 0: every core; at most 1024 (and no more are started than there are tiles)
  bool progress = false;
  // When not null and it turns non-zero (a signal number, set by a signal handler), the tiles
  // stop being rendered, the partial output is removed and simulate throws qrplate::interrupted.
  const std::atomic<int>* interrupt = nullptr;
};

// "clean", "typical", "harsh" (documented in docs/SIMULATOR.md and in the code).
simulate_options preset(std::string_view name);

struct simulate_result {
  std::uint64_t tiles = 0, missing = 0, pixels = 0;
  std::uint64_t dust = 0, scratches = 0, destroyed_cells = 0;
  double pixel_nm = 0;
  double seconds = 0;
};

// Throws sim::parameter_error (a parameter out of its range, named), qrplate::invalid_argument
// (other bad input, with a one-line reason), io_error, or qrplate::interrupted.
// out_dir must not exist; it is written under a temporary name and renamed at the end.
simulate_result simulate(const std::string& plate_dir, const std::string& out_dir, const simulate_options& o);

}  // namespace qrplate::sim
