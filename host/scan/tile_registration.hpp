// Where a scan tile lies on the plate: finds the tile's finder patterns and fits the affine map
// from plate module coordinates to the tile's pixels (stage error of micrometres, rotation of a
// degree or so, scale error of a percent, and the shear that drift during the scan adds).
//
// The nominal stage position only seeds the search. Finder patterns are found with a box-sum
// template on an integral image (core/sample_symbol.hpp), both polarities; every detection votes
// for a (rotation, shift) that lands it on an expected finder of the plate's code lattice; the
// best vote seeds an iterated least-squares affine fit over the matched finders. A lattice is
// periodic, so a shift by whole code pitches scores alike: the one nearest the nominal position
// wins here, and the scan reader corrects the rest from the frames it decodes (a frame knows
// its own cell).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/pose_vote.hpp"
#include "qrplate/core/stitch_correlation.hpp"
#include "qrplate/core/sample_symbol.hpp"
#include "qrplate/plate/geometry.hpp"
#include "scan/scan_set.hpp"
#include "sim/scan_io.hpp"

namespace qrplate::host {
struct device_tile;  // cuda/tile_passes_cuda.hpp
}

namespace qrplate::scan {

struct registration_options {
  double search_um = 5.0;          // stage error searched around the nominal position (radius)
  double max_rotation_deg = 1.5;   // scan rotation searched, +-
  int polarity = 0;                // +1 milled modules dark, -1 bright, 0 unknown (decided per tile)
  float finder_strength = 0;       // the scan's real finders' template response, 0: not known yet
  bool cuda = false;               // the passes over every pixel (integral, contrast, finder scan) on the GPU
};

// A finder pattern found in a tile: its centre in pixels and its template response
// (positive: milled modules dark).
struct finder_detection {
  double u = 0, v = 0;
  float response = 0;
};

// A key for a hash map over a grid of the plane: cell (x, y).
inline std::uint64_t plane_key(std::int64_t x, std::int64_t y)
{
  return (static_cast<std::uint64_t>(x) << 32) ^ (static_cast<std::uint64_t>(y) & 0xffffffffu);
}

using core::find_anchor;  // core/code_anchors.hpp: shared with the CUDA read kernels

struct posed_tile {
  std::size_t index = 0;  // in the scan set's tile list
  std::string file;
  double nominal_x_nm = 0, nominal_y_nm = 0;
  sim::gray_image image;
  // (width + 1) * (height + 1), see core::integral_view. With registration_options::cuda it stays
  // on the device (`device`) and integral_on_host is false: integral_image() builds it here, from
  // `image` (scan::build_integral: the same sums), the first time a CPU path asks, so that the
  // tiles only the GPU reads never cost its 4 bytes a pixel of PCIe and host memory.
  mutable std::vector<std::uint32_t> integral;
  mutable bool integral_on_host = true;
  std::shared_ptr<std::mutex> integral_mutex = std::make_shared<std::mutex>();
  int integral_shift = 0;
  double module_px = 0;          // nominal pixels per module
  double contrast = 0;           // film vs milled, image units (robust estimate)
  int polarity = 1;              // +1 milled modules dark, -1 bright
  core::affine_map to_pixel;     // plate module coordinates -> pixel coordinates
  core::affine_map to_plate;     // its inverse
  bool registered = false;       // false: nominal pose (too few finders matched)
  bool verified = false;         // lattice position confirmed: by frames read in it, or by a placed neighbour's overlap
  int matched = 0;               // of them, matched to the lattice
  int confirmed = 0;             // finder and alignment patterns the pose predicts and the tile shows (used in the fit)
  double rms_px = 0;             // fit residual
  float finder_strength = 0;     // template response of this tile's real finders (second strongest)
  bool stitched = false;          // placed by its overlap with a neighbour (register_against), not by its own finders
  int anchor_search_px = 0;      // per-code anchor search radius beyond the usual (unverified tiles), 0: usual
  int lattice_moves = 0;         // times its own frames moved it by whole code pitches (scan_reader)
  // With registration_options::cuda: `image` and `integral` as the GPU passes left them in device
  // memory, for the GPU code reads (null when no device memory could be spared: they upload).
  std::shared_ptr<const host::device_tile> device;
  // With registration_options::cuda: the samples sent to the device for this tile's passes (each
  // registration of it sends them again) and the bytes the link carried for them (1 a sample for
  // 8-bit chunks, 2 for 16-bit ones: tile_passes_cuda::uploaded_bytes).
  std::uint64_t uploaded_samples = 0, uploaded_bytes = 0;
  // Of uploaded_samples, those sent as the file held them (sim::gray_image::bytes), not narrowed.
  std::uint64_t uploaded_as_read = 0;
  // Of uploaded_bytes, those the host copied into the pinned staging first (all but bytes read
  // into pinned buffers, which go by DMA: tile_passes_cuda::staged_bytes).
  std::uint64_t uploaded_staged = 0;
  // Read again with the pose its first reading was given (restore_tile): neither registered nor
  // placed again.
  bool pose_kept = false;

  core::gray_view view() const
  {
    return {image.pixels.data(), static_cast<int>(image.width), static_cast<int>(image.height), image.width};
  }
  // The host integral image (built here first if it was on the device only; thread-safe).
  core::integral_view integral_image() const;
  bool integral_image_on_host() const
  {
    std::lock_guard<std::mutex> lock(*integral_mutex);
    return integral_on_host;
  }
  // Bytes the host integral takes once built.
  std::size_t integral_bytes() const
  {
    return (static_cast<std::size_t>(image.width) + 1) * (static_cast<std::size_t>(image.height) + 1) *
           sizeof(std::uint32_t);
  }
  // What the per-code anchor search (core::measure_code_map) needs of the tile.
  core::tile_anchor_view anchor_view() const
  {
    return {integral_image(), to_pixel, module_px, contrast, polarity, anchor_search_px, finder_strength};
  }
  // The same for the GPU reads of a tile kept on the device: the host integral is not built for
  // it (iv.sums is null while it is on the device only).
  core::tile_anchor_view device_anchor_view() const
  {
    std::lock_guard<std::mutex> lock(*integral_mutex);
    const core::integral_view iv{integral_on_host ? integral.data() : nullptr, static_cast<int>(image.width),
                                 static_cast<int>(image.height), integral_shift};
    return {iv, to_pixel, module_px, contrast, polarity, anchor_search_px, finder_strength};
  }
  // Moves the tile on the plate (by whole lattice steps, or by a borrowed stage error): what was
  // taken for plate point X is X + (dx, dy).
  void shift_on_plate(double dx, double dy);
};

// What registering and placing a tile decided: kept when the tile is let go, so that reading it
// again (a tile on a strip's or a band's edge that the tile cache could not hold) skips
// registration and placing (restore_tile). About 150 bytes a tile.
struct tile_pose {
  double contrast = 0;
  int polarity = 1;
  core::affine_map to_pixel, to_plate;
  bool registered = false, verified = false, stitched = false;
  int matched = 0, confirmed = 0, anchor_search_px = 0;
  double rms_px = 0;
  float finder_strength = 0;
  static tile_pose of(const posed_tile& t);
  void put_on(posed_tile& t) const;  // of()'s fields back
};

// The shift (core::integral_view) that keeps the largest box registration sums (the finder
// template's, 9 modules and a pixel either side) below 2^32 for samples of `bits` bits.
int integral_shift(int bits, double module_px);

// Summed-area table of an image for boxes up to the finder template at module_px pixels per
// module (sums gets (w + 1) * (h + 1) entries); returns the shift (integral_shift). Each row's
// running sum eight pixels at a time (SSE2); build_integral_reference, a pixel at a time, gives
// the same table (sums modulo 2^32, in any order).
int build_integral(const sim::gray_image& img, double module_px, std::vector<std::uint32_t>& sums);
int build_integral_reference(const sim::gray_image& img, double module_px, std::vector<std::uint32_t>& sums);

// Robust film/milled contrast: the spread (95th - 5th percentile) of module-sized box means.
double estimate_contrast(const core::integral_view& iv, double module_px);

// Centres (plate module coordinates) of every finder pattern of the plate inside the rectangle
// [x0, x1) x [y0, y1) (modules): three per code cell, and those of the header codes.
std::vector<std::pair<double, double>> expected_finders(const plate::plate_geometry& g, double x0, double y0, double x1,
                                                        double y1);

// The passes over every pixel of a tile that registration starts with (core/tile_passes.hpp):
// the integral image (t.integral, t.integral_shift), the contrast (t.contrast) and, unless the
// tile has no contrast or modules under a pixel (then false), the finder template's candidates
// at 0.3 x the contrast, row-major: sign + into dets[0], - into dets[1] (one of them when
// o.polarity is set). On the GPU when o.cuda (the same results). t.image and t.module_px must be
// set; t.integral is storage.
bool tile_passes(posed_tile& t, const registration_options& o, std::vector<finder_detection> dets[2]);

// The vote's proposals (in any order) that registration goes on to check: those within
// max(3, score / 2) of the best value, the best being the first of the highest value in the CPU
// loop's order (core::better_proposal, core::proposal_cutoff). Keeps them in that order (so what
// follows sees the CPU loop's list less what it drops) and returns the cutoff. The plain form of
// what the GPU does before the proposals come back (tile_passes_cuda::proposals_worth_checking):
// a tile has tens of thousands of proposals and a few dozen worth checking.
double keep_proposals_worth_checking(std::vector<core::pose_vote_entry>& entries);
// Sorts proposals into the CPU loop's order: by rotation, then by first pair.
void sort_in_loop_order(std::vector<core::pose_vote_entry>& entries);

// Registers one tile. Never throws for image content: a tile it cannot place keeps the nominal
// pose with registered = false.
// integral_buffer: storage for the tile's integral image (a recycled tile's, so that a scan
// does not page in 8 MB of fresh memory per tile); any size, empty for a fresh one.
posed_tile register_tile(sim::gray_image image, const scan_tile& tile, double pixel_nm, const plate::plate_geometry& g,
                         const registration_options& options, std::vector<std::uint32_t> integral_buffer = {});

// A tile read again, given the pose it was given before (tile_pose::of): only the integral image
// is built (with options.cuda on the device, where the tile stays, the contrast in the same pass),
// no finder scan, vote or fit; pose_kept is set. The pixels and scan.json entry
// must be those the pose was found for.
posed_tile restore_tile(sim::gray_image image, const scan_tile& tile, const tile_pose& pose, double pixel_nm,
                        const plate::plate_geometry& g, const registration_options& options,
                        std::vector<std::uint32_t> integral_buffer = {});

// The plate's expected finders near a tile (plate module coordinates), for registration's
// nearest-finder lookups.
class finder_index {
 public:
  // A dense grid of 8-module cells over the points' bounding box, each cell's points in index
  // order (a hash map of cells cost ~a third of a GPU registration's host time in its lookups).
  explicit finder_index(std::vector<std::pair<double, double>> points) : points_(std::move(points))
  {
    if (points_.empty()) return;
    std::int64_t x1 = std::numeric_limits<std::int64_t>::min(), y1 = x1;
    x0_ = y0_ = std::numeric_limits<std::int64_t>::max();
    for (const auto& p : points_) {
      x0_ = std::min(x0_, cell(p.first)), x1 = std::max(x1, cell(p.first));
      y0_ = std::min(y0_, cell(p.second)), y1 = std::max(y1, cell(p.second));
    }
    columns_ = x1 - x0_ + 1, rows_ = y1 - y0_ + 1;
    start_.assign(static_cast<std::size_t>(columns_ * rows_) + 1, 0);
    for (const auto& p : points_) ++start_[slot(cell(p.first), cell(p.second)) + 1];
    for (std::size_t c = 1; c < start_.size(); ++c) start_[c] += start_[c - 1];
    order_.resize(points_.size());
    std::vector<std::uint32_t> fill(start_.begin(), start_.end() - 1);
    for (std::size_t i = 0; i < points_.size(); ++i)
      order_[fill[slot(cell(points_[i].first), cell(points_[i].second))]++] = static_cast<std::uint32_t>(i);
  }
  const std::vector<std::pair<double, double>>& points() const { return points_; }
  // Index of the nearest point within `radius` (<= 8) of (x, y), or -1 (of points at the same
  // distance, the last in cell order: (dy, dx) over the 3 x 3 cells, each cell's in index order).
  long nearest(double x, double y, double radius) const
  {
    long best = -1;
    double best_d2 = radius * radius;
    const std::int64_t cx = cell(x), cy = cell(y);
    for (std::int64_t dy = -1; dy <= 1; ++dy)
      for (std::int64_t dx = -1; dx <= 1; ++dx) {
        const std::int64_t gx = cx + dx, gy = cy + dy;
        if (points_.empty() || gx < x0_ || gy < y0_ || gx >= x0_ + columns_ || gy >= y0_ + rows_) continue;
        const std::size_t s = slot(gx, gy);
        for (std::uint32_t k = start_[s]; k < start_[s + 1]; ++k) {
          const std::uint32_t i = order_[k];
          const double ex = points_[i].first - x, ey = points_[i].second - y;
          const double d2 = ex * ex + ey * ey;
          if (d2 <= best_d2) best_d2 = d2, best = i;
        }
      }
    return best;
  }

 private:
  static std::int64_t cell(double v) { return static_cast<std::int64_t>(std::floor(v / 8.0)); }
  std::size_t slot(std::int64_t gx, std::int64_t gy) const { return static_cast<std::size_t>((gy - y0_) * columns_ + (gx - x0_)); }
  std::vector<std::pair<double, double>> points_;
  std::int64_t x0_ = 0, y0_ = 0, columns_ = 0, rows_ = 0;
  std::vector<std::uint32_t> start_, order_;  // cell s holds order_[start_[s], start_[s + 1])
};

// Stitching's coarse pass (register_against): core/stitch_correlation.hpp's patch and its plain
// reference, shift by shift.
using core::sparse_correlation;
using core::stitch_patch;
// scores[((dy + reach) / 2) * (reach + 1) + (dx + reach) / 2] = sparse_correlation(p, dx, dy) for
// every dx, dy in -reach, -reach + 2, ..., reach: the same doubles, several shifts per pass over
// the patch (the CPU's way; with CUDA a kernel does every shift, tile_passes_cuda::stitch_scores,
// into the same layout).
void sparse_correlations(const stitch_patch& p, double* scores);

// Places t by the image content it shares with `ref`, a neighbour already placed: ref's pixels
// over a patch of the plate both see are correlated with t's at every whole-module shift of t's
// nominal stage position within search_modules; the peak (which random data makes unique, unlike
// the periodic alignment grid inside a large code) is refined by the finder and alignment
// patterns it predicts. For a tile its own finders cannot place: a sliver at the plate's edge
// that holds no finder, only parts of codes. False (t unchanged) when the tiles share too little
// or the correlation has no clear peak.
// The shifts tried are those within search_modules of (expect_x, expect_y) (modules, the stage
// error expected: the median of the placed tiles').
// cuda: the coarse correlation on the GPU (tile_passes_cuda::stitch_scores: the same scores).
bool register_against(posed_tile& t, const posed_tile& ref, const plate::plate_geometry& g, double pixel_nm,
                      double expect_x, double expect_y, double search_modules, bool cuda = false);

}  // namespace qrplate::scan
