#include "scan/scan_reader.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_code.hpp"
#include "qrplate/core/sample_symbol.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/frame.hpp"
#include "scan/fast_sampling.hpp"
#include "util/parallel_for.hpp"
#if QRPLATE_WITH_CUDA
#include "cuda/read_codes_cuda.hpp"
#endif

namespace qrplate::scan {

struct scan_reader::workspace {
  std::vector<core::code_map> maps;  // one per tile a code is read from (at most core::max_across)
  workspace();
  std::vector<float> values = std::vector<float>(spec::max_symbol_size * spec::max_symbol_size);
  std::vector<std::uint8_t> valid = std::vector<std::uint8_t>(spec::max_symbol_size * spec::max_symbol_size);
  std::vector<std::uint8_t> confidence = std::vector<std::uint8_t>(spec::max_symbol_size * spec::max_symbol_size);
  std::vector<std::uint64_t> modules = std::vector<std::uint64_t>(spec::max_symbol_size * core::max_words);
  // Codes across tiles (~350 KB).
  std::unique_ptr<core::read_across_workspace> across = std::make_unique<core::read_across_workspace>();
  std::vector<std::uint8_t> bytes = std::vector<std::uint8_t>(spec::max_data_codewords);
  std::unique_ptr<core::decode_workspace> decode = std::make_unique<core::decode_workspace>();
  std::unique_ptr<core::read_code_workspace> read;  // batch_codes only (~210 KB)
};

namespace {

using core::interior;

// What register_against may change in a tile, to put back after a trial placement.
struct pose_snapshot {
  core::affine_map to_pixel, to_plate;
  double rms_px;
  int confirmed;
  bool registered, stitched;

  explicit pose_snapshot(const posed_tile& t)
      : to_pixel(t.to_pixel), to_plate(t.to_plate), rms_px(t.rms_px), confirmed(t.confirmed),
        registered(t.registered), stitched(t.stitched)
  {
  }
  void restore(posed_tile& t) const
  {
    t.to_pixel = to_pixel, t.to_plate = to_plate, t.rms_px = rms_px, t.confirmed = confirmed;
    t.registered = registered, t.stitched = stitched;
  }
};

// An evicted tile's buffer for the next load (`fresh`, an empty one, when none is left).
template <typename Buffer>
Buffer take_spare(std::vector<Buffer>& spares, std::mutex& mutex, Buffer fresh = Buffer())
{
  std::lock_guard<std::mutex> lock(mutex);
  if (spares.empty()) return fresh;
  Buffer buffer = std::move(spares.back());
  spares.pop_back();
  return buffer;
}

// Where the modules of one code lie in one tile (core::code_map): the tile's map, corrected by a
// smooth field of the offsets measured at the code's own finder and alignment patterns inside
// the tile. The tile's affine map already holds rotation, scale and the steady part of the drift;
// what is left is local (drift jumps, vibration, a fit's error far from the finders it used), so
// the offsets are interpolated (inverse distance, on a coarse grid) rather than fitted by one
// more affine, which a few anchors on one side of a code would tilt.
void measure_code(const posed_tile& t, const core::version_plan& plan, double x0, double y0, core::code_map& geo)
{
  measure_code_map_fast(t.anchor_view(), plan, x0, y0, geo);  // core::measure_code_map's bits
}

// The median (the upper one of an even count), of a copy.
double median_of(std::vector<double> v)
{
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// 1.4826 x the median absolute deviation: a Gaussian's sigma, robust to a few far outliers.
double robust_sigma(const std::vector<double>& v)
{
  const double m = median_of(v);
  std::vector<double> dev;
  dev.reserve(v.size());
  for (double x : v) dev.push_back(std::fabs(x - m));
  return 1.4826 * median_of(std::move(dev));
}

// The median step between the distinct values of `at` (closer than 1 nm counts as one); 0 when
// there are fewer than two.
double median_step_nm(std::vector<double> at)
{
  std::sort(at.begin(), at.end());
  std::vector<double> steps;
  for (std::size_t i = 1; i < at.size(); ++i)
    if (at[i] - at[i - 1] >= 1.0) steps.push_back(at[i] - at[i - 1]);
  return steps.empty() ? 0.0 : median_of(std::move(steps));
}

}  // namespace

scan_reader::workspace::workspace() : maps(core::max_across) {}

scan_reader::scan_reader(scan_set set, const plate::manifest& man, const scan_read_options& options)
    : set_(std::move(set)), man_(man), geo_(plate::geometry_of(man)), options_(options)
{
  threads_ = std::max(1u, options.threads ? options.threads : std::thread::hardware_concurrency());
  module_px_ = geo_.module_nm / set_.pixel_nm;
  if (module_px_ < 1.2)
    throw invalid_argument("scan pixels of " + std::to_string(set_.pixel_nm) + " nm are too coarse for modules of " +
                           std::to_string(geo_.module_nm) + " nm: at least 1.2 pixels per module are needed");
  if (module_px_ > 64)
    throw invalid_argument("scan pixels of " + std::to_string(set_.pixel_nm) + " nm are too fine for modules of " +
                           std::to_string(geo_.module_nm) + " nm: at most 64 pixels per module are supported");
  search_modules_ = options.registration.search_um * 1000.0 / geo_.module_nm + 2.0;
  // Until a tile is read its size is unknown: 4096 px is assumed (a larger guess only loads a
  // few tiles early, which the next eviction drops); the largest tile read replaces it.
  footprint_modules_ = 4096 / module_px_;
  bucket_nominal_ = std::max(64.0, 1024 / module_px_);
  for (std::size_t i = 0; i < set_.tiles.size(); ++i)
    nominal_index_[plane_key(static_cast<std::int64_t>(std::floor(set_.tiles[i].x_nm / geo_.module_nm / bucket_nominal_)),
                              static_cast<std::int64_t>(std::floor(set_.tiles[i].y_nm / geo_.module_nm / bucket_nominal_)))]
        .push_back(i);
  for (unsigned t = 0; t < threads_; ++t) {
    workspaces_.push_back(std::make_unique<workspace>());
    if (options_.batch_codes) workspaces_.back()->read = std::make_unique<core::read_code_workspace>();
  }
  if (options_.cuda && !options_.batch_codes) throw invalid_argument("scan_reader: cuda reads come in batches (batch_codes)");
  options_.overlap_batches = options_.overlap_batches && options_.batch_codes && options_.read_ahead_rows > 0;
  if (options_.overlap_batches) {
    batch_thread_ = std::make_unique<host::lasting_background_thread>();
    // The CPU's reads ahead run beside load_region's and read_cell's threads: workspaces of their own.
    if (!options_.cuda)
      for (unsigned t = 0; t < threads_; ++t) {
        background_workspaces_.push_back(std::make_unique<workspace>());
        background_workspaces_.back()->read = std::make_unique<core::read_code_workspace>();
      }
  }
  options_.registration.cuda = options_.cuda;  // and the passes over every pixel of a tile
  // With the GPU passes, 8-bit TIFF tiles keep the bytes they were read from: they go up as they
  // are, rather than narrowed again from the 16-bit samples; once registered, their buffers are
  // recycled (a fresh megabyte a tile costs page faults: 14-35% more time reading on this VM).
  if (options_.prefetch_bytes > 0)
    prefetch_ = std::make_unique<tile_prefetcher>(
        threads_, options_.prefetch_bytes, [this] { return take_spare(spare_pixels_, spare_mutex_); }, options_.cuda,
        [this] { return take_spare_bytes(); });
  stats_.tiles_listed = set_.tiles.size();
  {
    std::vector<double> ys;
    for (const scan_tile& t : set_.tiles) ys.push_back(t.y_nm);
    const double step_modules = median_step_nm(std::move(ys)) / geo_.module_nm;
    if (geo_.pitch > 0 && step_modules > 0)
      rows_per_prepare_ = static_cast<std::uint32_t>(std::clamp(std::floor(step_modules / geo_.pitch), 1.0, 64.0));
    if (options_.prepare_rows > 0) rows_per_prepare_ = options_.prepare_rows;
  }
}

scan_reader::~scan_reader() = default;

scan_read_stats scan_reader::stats() const
{
  scan_read_stats s = stats_;
  if (offsets_x_.size() >= 5)
    s.stage_sigma_nm = std::max(robust_sigma(offsets_x_), robust_sigma(offsets_y_)) * geo_.module_nm;
  if (tile_w_modules_ > 0) {
    std::vector<double> xs, ys;
    for (const scan_tile& t : set_.tiles) xs.push_back(t.x_nm), ys.push_back(t.y_nm);
    const double steps[2] = {median_step_nm(std::move(xs)), median_step_nm(std::move(ys))};
    const double sides[2] = {tile_w_modules_ * geo_.module_nm, tile_h_modules_ * geo_.module_nm};
    bool have = false;
    for (int axis = 0; axis < 2; ++axis)
      if (steps[axis] > 0 && (!have || sides[axis] - steps[axis] < s.planned_overlap_nm))
        s.planned_overlap_nm = sides[axis] - steps[axis], have = true;
  }
  s.tiles_host_integrals = dropped_host_integrals_;
  for (const std::unique_ptr<posed_tile>& t : cache_) s.tiles_host_integrals += t->device && t->integral_image_on_host();
  return s;
}

std::uint32_t scan_reader::strip_columns() const
{
  const double modules = options_.strip_px / module_px_;
  return static_cast<std::uint32_t>(std::max(1.0, std::floor(modules / std::max(1, geo_.pitch))));
}

void scan_reader::prepare(std::uint64_t row0, std::uint64_t row1, std::uint32_t col0, std::uint32_t col1,
                          std::uint64_t rows_end, const cell_region* next)
{
  // The tile work and the batch are timed apart (scan_read_stats); every exit goes through here.
  // (A wait for the background batch before a drop counts as batch time.)
  const auto start = std::chrono::steady_clock::now();
  const double waited = stats_.seconds_waiting_for_background;
  // The tiles of as many rows below too: their codes then have every tile that may see them, and
  // are read ahead in the background (read_first_attempts) while the cells of these rows are read.
  rows_end = std::max(rows_end, row1);
  // The next region is loaded (and its codes read ahead) with these columns' last rows only.
  const cell_region* at_end = row1 >= rows_end ? next : nullptr;
  load_region(row0, std::min(row1 + (row1 - row0), rows_end), col0, col1, at_end, rows_end, next);
  const double waited_in_load = stats_.seconds_waiting_for_background - waited;
  const auto loaded = std::chrono::steady_clock::now();
  if (options_.batch_codes) read_first_attempts(row0, row1, col0, col1, rows_end, at_end);
  stats_.seconds_tiles += std::chrono::duration<double>(loaded - start).count() - waited_in_load;
  stats_.seconds_code_batches +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - loaded).count() + waited_in_load;
}

void scan_reader::recycle_bytes(sim::gray_image& image)
{
  if (image.bytes.capacity() == 0) return;
  std::lock_guard<std::mutex> lock(spare_mutex_);
  spare_bytes_.push_back(std::move(image.bytes));
  image.bytes = host_array<std::uint8_t>();
}

// A recycled byte buffer, else a new one in pinned memory: the tile's upload then goes by DMA
// from the buffer the file was inflated into, with no copy into the staging.
host_array<std::uint8_t> scan_reader::take_spare_bytes()
{
  return take_spare(spare_bytes_, spare_mutex_, host_array<std::uint8_t>(host_memory::pinned));
}

void scan_reader::load_region(std::uint64_t row0, std::uint64_t row1, std::uint32_t col0, std::uint32_t col1,
                              const cell_region* also, std::uint64_t rows_end, const cell_region* then)
{
  const double n = geo_.code_size;
  const double margin = search_modules_ + 1;
  // A region's bounds (modules): the cells' extent and the search margin around it.
  using bounds = region_bounds;
  auto bounds_of = [&](std::uint64_t r0, std::uint64_t r1, std::uint32_t c0, std::uint32_t c1) {
    return bounds{static_cast<double>(geo_.cell_x(c0)) - margin,
                  static_cast<double>(geo_.cell_x(c1 == 0 ? 0 : c1 - 1)) + n + margin,
                  static_cast<double>(geo_.cell_y(r0)) - margin,
                  static_cast<double>(geo_.cell_y(r1 == 0 ? 0 : r1 - 1)) + n + margin};
  };
  const bounds main = bounds_of(row0, row1, col0, col1);
  const double x_lo = main.x_lo, x_hi = main.x_hi, y_lo = main.y_lo, y_hi = main.y_hi;
  // Where the rows swept in these columns end, when the caller says where the sweep goes then: the
  // files read ahead stop there and go on in `then` (the next unit's rows in these columns come
  // only after the other strips). Without it (a strip that holds its unit whole, whose next unit
  // is the band below) they go on below.
  const std::uint64_t end_row = std::min<std::uint64_t>(rows_end, geo_.placement.rows());
  const double y_end = then == nullptr ? std::numeric_limits<double>::infinity()
                       : end_row > row1 ? bounds_of(end_row - 1, end_row, col0, col1).y_hi
                                        : y_hi;
  std::optional<bounds> after;
  // (As far down as that region's prepare() will load: its rows and as many below, within its
  // unit's rows.)
  if (then != nullptr && then->row1 > then->row0 && then->col1 > then->col0) {
    const std::uint64_t then_end = std::max(then->row1, then->rows_end);
    after = bounds_of(then->row0, std::min(then->row1 + (then->row1 - then->row0), then_end), then->col0, then->col1);
  }
  const bounds* read_after = after ? &*after : nullptr;
  std::vector<bounds> regions = {main};
  if (also != nullptr && also->row1 > also->row0 && also->col1 > also->col0)
    regions.push_back(bounds_of(also->row0, also->row1, also->col0, also->col1));
  // Tiles no cell of the region needs (above these rows, or outside these columns) may go: the
  // least recently needed first, while the tiles held pass the cache budget.
  ++prepares_;
  std::vector<std::pair<std::uint64_t, posed_tile*>> idle;  // (last needed, tile)
  std::size_t held_bytes = 0;
  for (const std::unique_ptr<posed_tile>& t : cache_) {
    double x, y, lo_x = 1e300, hi_x = -1e300, hi_y = -1e300;
    for (double u : {0.0, static_cast<double>(t->image.width)})
      for (double v : {0.0, static_cast<double>(t->image.height)}) {
        t->to_plate.apply(u, v, x, y);
        lo_x = std::min(lo_x, x), hi_x = std::max(hi_x, x), hi_y = std::max(hi_y, y);
      }
    // Needed while either its registered or its nominal footprint reaches the region: the
    // loading below goes by the nominal one, and a tile dropped by one rule and read again by the
    // other would churn.
    const double nx = t->nominal_x_nm / geo_.module_nm, ny = t->nominal_y_nm / geo_.module_nm;
    bool needed = false;
    for (const bounds& b : regions) {
      const bool nominal = ny + footprint_modules_ >= b.y_lo && nx + footprint_modules_ >= b.x_lo && nx <= b.x_hi;
      needed = needed || (hi_y >= b.y_lo && hi_x >= b.x_lo && lo_x <= b.x_hi) || nominal;
    }
    std::uint64_t& last = last_needed_[t->index];
    if (needed) last = prepares_;
    else idle.push_back({last, t.get()});
    held_bytes += t->image.pixels.size() * sizeof(std::uint16_t) + t->integral_bytes();
  }
  std::sort(idle.begin(), idle.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->index < b.second->index;
  });
  std::unordered_set<const posed_tile*> dropped;
  for (const auto& [last, t] : idle) {
    if (held_bytes <= options_.cache_bytes) break;
    held_bytes -= t->image.pixels.size() * sizeof(std::uint16_t) + t->integral_bytes();
    dropped.insert(t);
  }
  // A tile the background batch reads stays until the batch is done (its results then go to
  // ahead_, whence the loop below takes those of the dropped tiles out again).
  if (background_ && std::any_of(dropped.begin(), dropped.end(), [&](const posed_tile* t) { return background_tiles_.count(t) > 0; })) {
    ++stats_.background_batches_waited_for_drops;
    finish_background_batch();
  }
  if (!dropped.empty()) {
    ++cache_generation_;
    for (auto it = ahead_.begin(); it != ahead_.end();) {
      const ahead_read& a = it->second;
      const bool gone = dropped.count(a.tile) ||
                        std::any_of(a.across.begin(), a.across.end(), [&](const posed_tile* t) { return dropped.count(t) > 0; });
      it = gone ? ahead_.erase(it) : std::next(it);
    }
  }
  std::unique_lock<std::mutex> spares_lock(spare_mutex_);  // the prefetch readers take spares meanwhile
  cache_.erase(std::remove_if(cache_.begin(), cache_.end(),
                              [&](std::unique_ptr<posed_tile>& t) {
                                if (!dropped.count(t.get())) return false;
                                dropped_host_integrals_ += t->device && t->integral_image_on_host();
                                keep_pose(*t);
                                cached_.erase(t->index);
                                last_needed_.erase(t->index);
                                spare_integrals_.push_back(std::move(t->integral));
                                spare_pixels_.push_back(std::move(t->image.pixels));
                                return true;
                              }),
               cache_.end());
  spares_lock.unlock();
  std::vector<std::size_t> load = tiles_reaching(x_lo, x_hi, y_lo, y_hi);
  if (regions.size() > 1) {
    const bounds& b = regions[1];
    const std::vector<std::size_t> more = tiles_reaching(b.x_lo, b.x_hi, b.y_lo, b.y_hi);
    load.insert(load.end(), more.begin(), more.end());
    std::sort(load.begin(), load.end());
    load.erase(std::unique(load.begin(), load.end()), load.end());
  }
  if (load.empty()) {
    index_tiles();  // the eviction above moved the cache
    read_tiles_ahead(x_lo, x_hi, y_hi, y_end, read_after);
    return;
  }
  const auto loading = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<posed_tile>> loaded(load.size());
  std::vector<std::string> errors(load.size());
  std::atomic<std::uint64_t> registered_ahead{0};
  // On the process's lasting threads: with cuda each registering thread keeps its GPU passes'
  // stream and buffers (tile_registration.cpp), which threads made per call would leave behind.
  host::lasting_team(threads_).run(load.size(), [&](unsigned t, std::size_t i) {
    const scan_tile& st = set_.tiles[load[i]];
    scan::prefetched_tile got;
    try {
      // Read ahead by the prefetcher (the same bytes; registered too once register_ahead began),
      // or now.
      std::optional<scan::prefetched_tile> ahead = prefetch_ ? prefetch_->take_tile(load[i]) : std::nullopt;
      if (ahead) got = std::move(*ahead);
      else
        got.image = sim::read_gray_image(st.file, take_spare(spare_pixels_, spare_mutex_), options_.cuda,
                                         options_.cuda ? take_spare_bytes() : host_array<std::uint8_t>());
    } catch (const std::exception& e) {
      errors[i] = e.what();
      return;
    }
    if (got.registration_error) std::rethrow_exception(got.registration_error);  // as if it failed here
    if (got.registered) {
      ++registered_ahead;
      loaded[i] = std::move(got.registered);
      return;
    }
    registration_options ro = options_.registration;
    ro.polarity = polarity_;
    loaded[i] = register_read_tile(load[i], std::move(got.image), ro, *workspaces_[t]);
  });
  stats_.tiles_registered_ahead += registered_ahead;
  const auto placing = std::chrono::steady_clock::now();
  stats_.seconds_loading_tiles += std::chrono::duration<double>(placing - loading).count();
  // Evictions lag the loads by a band: the spares wait for the next loads, as many as one batch
  // of loads takes (the rest goes back to the system).
  spare_limit_ = std::max(spare_limit_, load.size());
  {
    std::lock_guard<std::mutex> lock(spare_mutex_);
    if (spare_integrals_.size() > spare_limit_) spare_integrals_.resize(spare_limit_);
    if (spare_pixels_.size() > spare_limit_) spare_pixels_.resize(spare_limit_);
    if (spare_bytes_.size() > spare_limit_) spare_bytes_.resize(spare_limit_);
  }
  // The scan's polarity, from the first tiles that show it clearly (weighted by the finders they
  // matched); tiles of this batch registered the other way are registered again with it.
  if (polarity_ == 0) {
    int votes[2] = {0, 0};
    for (const auto& t : loaded)
      if (t && t->registered) votes[t->polarity > 0 ? 0 : 1] += t->matched;
    if (std::max(votes[0], votes[1]) >= 3 && votes[0] != votes[1]) polarity_ = votes[0] > votes[1] ? 1 : -1;
    if (polarity_ != 0)
      for (auto& t : loaded) {
        if (!t || t->polarity == polarity_) continue;
        registration_options ro = options_.registration;
        ro.polarity = polarity_;
        const std::size_t index = t->index;
        const std::uint64_t samples = t->uploaded_samples, bytes = t->uploaded_bytes, as_read = t->uploaded_as_read,
                            staged = t->uploaded_staged;
        const int moves = t->lattice_moves;
        const scan_tile& st = set_.tiles[index];
        t = std::make_unique<posed_tile>(
            register_tile(std::move(t->image), st, set_.pixel_nm, geo_, ro, std::move(t->integral)));
        t->index = index;
        t->uploaded_samples += samples;
        t->uploaded_bytes += bytes;
        t->uploaded_as_read += as_read;
        t->uploaded_staged += staged;
        correct_lattice(*t, *workspaces_[0]);
        t->lattice_moves += moves;
      }
  }
  // The scan's finder strength (the template response of its real finders), from tiles whose
  // pose matched two finders or more to the lattice: later tiles judge their detections by it.
  if (!(options_.registration.finder_strength > 0)) {
    std::vector<float> strengths;
    for (const auto* batch : {&loaded, &cache_})
      for (const auto& t : *batch)
        if (t && t->registered && t->matched >= 2) strengths.push_back(t->finder_strength);
    if (strengths.size() >= 3) {
      std::nth_element(strengths.begin(), strengths.begin() + static_cast<long>(strengths.size() / 2), strengths.end());
      options_.registration.finder_strength = strengths[strengths.size() / 2];
    }
  }
  start_registering_ahead();
  // A tile that read no frame and holds no real finder (its strongest detection well below the
  // scan's finders: a sliver at the plate's edge, the inside of a large code) was placed by
  // look-alikes or by the periodic grid of alignment patterns, either of which can be off by many
  // modules. Such a tile is placed instead by the image content it shares with a neighbour that
  // frames or two real finders placed (random data matches itself at one shift only); it keeps
  // its own pose where that fails. Tiles that three or more real finders placed are left alone:
  // stitching every unverified tile was slower and, through chains of stitched tiles, worse.
  {
    const float strong = options_.registration.finder_strength > 0 ? 0.6f * options_.registration.finder_strength
                                                                   : std::numeric_limits<float>::infinity();
    auto footprint = [&](const posed_tile& t, double& x0, double& y0, double& x1, double& y1) {
      x0 = t.nominal_x_nm / geo_.module_nm, y0 = t.nominal_y_nm / geo_.module_nm;
      x1 = x0 + t.image.width / module_px_, y1 = y0 + t.image.height / module_px_;
    };
    // A tile may serve as the reference when frames placed it, or two real finders did.
    auto placed = [&](const posed_tile& t) {
      return t.verified || (t.registered && t.matched >= 2 && t.finder_strength >= strong);
    };
    // The stage error expected, and how far from it to look: the placed tiles' median and
    // scatter once enough are known, else anywhere within the search radius.
    std::vector<double> ox = offsets_x_, oy = offsets_y_;
    for (const auto& t : loaded)
      if (t && placed(*t)) {
        double x, y;
        t->to_plate.apply(0, 0, x, y);
        ox.push_back(x - t->nominal_x_nm / geo_.module_nm), oy.push_back(y - t->nominal_y_nm / geo_.module_nm);
      }
    double expect_x = 0, expect_y = 0, stitch_search = search_modules_;
    if (ox.size() >= 5) {
      expect_x = median_of(ox), expect_y = median_of(oy);
      std::vector<double> dev;
      for (std::size_t i = 0; i < ox.size(); ++i) dev.push_back(std::hypot(ox[i] - expect_x, oy[i] - expect_y));
      stitch_search = std::min(search_modules_, std::max(4.0, 4 * 1.4826 * median_of(std::move(dev)) + 3));
    }
    // Passes, so that a stitched tile can place the one beyond it: each tile is tried against its
    // placed neighbours, most shared area first, each neighbour once. A tile that two finders
    // placed is checked the same way (two look-alikes can agree on a wrong pose): it keeps its
    // own pose unless the neighbour puts it more than 1.5 modules away; so is every unverified
    // tile when the stage's scatter reaches 0.4 code pitches, since then the median rule below
    // cannot tell a whole-pitch error from an honest stage error (harsh scans of small codes).
    // A tile the neighbour confirms counts as verified. Within a pass the tiles are tried in
    // parallel against the references the pass began with (a tile being tried is none), so the
    // outcome does not depend on the number of threads.
    const bool pitch_ambiguous = geo_.pitch > 0 && stitch_search >= 0.4 * geo_.pitch;
    std::vector<std::vector<const posed_tile*>> tried(loaded.size());
    std::vector<bool> confirmed(loaded.size(), false);
    for (bool changed = true; changed;) {
      changed = false;
      std::vector<std::size_t> candidates;
      std::vector<bool> doubtful(loaded.size(), false);
      for (std::size_t i = 0; i < loaded.size(); ++i) {
        const auto& t = loaded[i];
        if (!t || t->verified || t->stitched || t->pose_kept || confirmed[i]) continue;
        const bool weak = !t->registered || t->finder_strength < strong;
        doubtful[i] = !weak && (t->matched <= 2 || pitch_ambiguous);
        if (weak || doubtful[i]) candidates.push_back(i);
      }
      std::unordered_set<const posed_tile*> trying;
      for (std::size_t i : candidates) trying.insert(loaded[i].get());
      std::vector<const posed_tile*> references;
      for (const auto* batch : {&loaded, &cache_})
        for (const auto& other : *batch)
          if (other && !trying.count(other.get()) && (placed(*other) || other->stitched)) references.push_back(other.get());
      // Per candidate: 0 kept its own pose, 1 stitched, 2 confirmed (a doubtful tile that agreed).
      std::vector<int> outcome(candidates.size(), 0);
      host::lasting_team(threads_).run(candidates.size(), [&](unsigned, std::size_t k) {
        const std::size_t i = candidates[k];
        posed_tile& t = *loaded[i];
        double ax0, ay0, ax1, ay1;
        footprint(t, ax0, ay0, ax1, ay1);
        std::vector<std::pair<double, const posed_tile*>> neighbours;
        for (const posed_tile* other : references) {
          if (std::find(tried[i].begin(), tried[i].end(), other) != tried[i].end()) continue;
          double bx0, by0, bx1, by1;
          footprint(*other, bx0, by0, bx1, by1);
          const double area = std::max(0.0, std::min(ax1, bx1) - std::max(ax0, bx0)) * std::max(0.0, std::min(ay1, by1) - std::max(ay0, by0));
          if (area > 0) neighbours.push_back({area, other});
        }
        std::stable_sort(neighbours.begin(), neighbours.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        for (const auto& [area, neighbour] : neighbours) {
          tried[i].push_back(neighbour);
          const pose_snapshot before(t);
          if (!register_against(t, *neighbour, geo_, set_.pixel_nm, expect_x, expect_y, stitch_search,
                                options_.registration.cuda))
            continue;
          if (doubtful[i]) {
            double x0, y0, x1, y1;
            before.to_plate.apply(0.5 * t.image.width, 0.5 * t.image.height, x0, y0);
            t.to_plate.apply(0.5 * t.image.width, 0.5 * t.image.height, x1, y1);
            if (std::hypot(x1 - x0, y1 - y0) < 1.5) {
              before.restore(t);
              outcome[k] = 2;
              return;
            }
          }
          outcome[k] = 1;
          return;
        }
      });
      for (std::size_t k = 0; k < candidates.size(); ++k) {
        if (outcome[k] == 2) {
          confirmed[candidates[k]] = loaded[candidates[k]]->verified = true;
          ++stats_.tiles_confirmed_by_overlap;
        }
        if (outcome[k] == 1) ++stats_.tiles_stitched;
        // A confirmed tile is a reference for the next pass too.
        changed = changed || outcome[k] != 0;
      }
    }
  }
  // Tiles whose frames fixed their lattice position give the stage's error; the others follow
  // it. A registered tile that read no frame (an edge, codes it holds only in part) may sit a
  // whole pitch off: it is moved by the whole pitches that bring it nearest the verified tiles'
  // median error. A tile that could not be registered at all (too few finders: a margin, an
  // empty part of the plate) takes its nominal position plus that median: a stage's error is
  // partly common to all its moves (calibration, a scan.json that lies).
  // (Stitched tiles count: a placed neighbour placed them. Scans of large codes have few
  // verified tiles, and without the scatter a tile that look-alikes placed far off stays there.)
  for (const auto& t : loaded)
    if (t && !t->pose_kept && (t->verified || t->stitched)) {  // (a kept pose's offset is in already)
      double x, y;
      t->to_plate.apply(0, 0, x, y);
      offsets_x_.push_back(x - t->nominal_x_nm / geo_.module_nm);
      offsets_y_.push_back(y - t->nominal_y_nm / geo_.module_nm);
    }
  // The most recent placed tiles only (between recent_offsets and twice that many): a plate is
  // hundreds of millions of tiles, and every load takes medians of these.
  if (offsets_x_.size() > 2 * recent_offsets) {
    const auto old = static_cast<long>(offsets_x_.size() - recent_offsets);
    offsets_x_.erase(offsets_x_.begin(), offsets_x_.begin() + old);
    offsets_y_.erase(offsets_y_.begin(), offsets_y_.begin() + old);
  }
  if (!offsets_x_.empty()) {
    const double mx = median_of(offsets_x_), my = median_of(offsets_y_);
    // The stage's scatter (1.4826 MAD ~ sigma) bounds how far an honest tile sits from the median.
    std::vector<double> dev;
    for (std::size_t i = 0; i < offsets_x_.size(); ++i) dev.push_back(std::hypot(offsets_x_[i] - mx, offsets_y_[i] - my));
    const double spread = std::max(2.0, 3 * 1.4826 * median_of(std::move(dev)) + 2);  // modules
    const bool scatter_known = offsets_x_.size() >= 5;
    for (const auto& t : loaded) {
      if (!t || t->verified || t->stitched || t->pose_kept) continue;  // stitched: placed by a neighbour that was
      double x, y;
      t->to_plate.apply(0, 0, x, y);
      double ex = x - t->nominal_x_nm / geo_.module_nm - mx, ey = y - t->nominal_y_nm / geo_.module_nm - my;
      if (t->registered) {
        const double kx = std::round(ex / geo_.pitch), ky = std::round(ey / geo_.pitch);
        if (kx != 0 || ky != 0) {
          t->shift_on_plate(-kx * geo_.pitch, -ky * geo_.pitch);
          ++stats_.lattice_corrections;
          ex -= kx * geo_.pitch, ey -= ky * geo_.pitch;
        }
        if (!scatter_known || std::hypot(ex, ey) <= spread) continue;
        t->registered = false;  // a pose no honest stage error explains: a few look-alikes fooled it
      }
      t->shift_on_plate(-ex, -ey);  // nominal position plus the median error
      // Its own stage error is unknown, up to the scatter: its codes' finders are looked for that far.
      if (scatter_known) t->anchor_search_px = static_cast<int>(std::ceil(std::min(spread, 40.0) * module_px_));
    }
  }
  for (std::size_t i = 0; i < load.size(); ++i) {
    if (!loaded[i]) {
      unreadable_.insert(load[i]);
      ++stats_.tiles_unreadable;
      if (stats_.unreadable.size() < 20) stats_.unreadable.push_back(errors[i]);
      continue;
    }
    ++stats_.tiles_loaded;
    stats_.lattice_corrections += static_cast<std::uint64_t>(loaded[i]->lattice_moves);
    stats_.tile_samples_uploaded += loaded[i]->uploaded_samples;
    stats_.tile_bytes_uploaded += loaded[i]->uploaded_bytes;
    stats_.tile_samples_uploaded_as_read += loaded[i]->uploaded_as_read;
    stats_.tile_bytes_staged += loaded[i]->uploaded_staged;
    // A tile read again with its kept pose was counted at its first reading.
    stats_.tiles_pose_kept += loaded[i]->pose_kept;
    if (!loaded[i]->registered && !loaded[i]->pose_kept) ++stats_.tiles_unregistered;
    stats_.tiles_verified += loaded[i]->verified && !loaded[i]->pose_kept;
    tile_w_modules_ = std::max(tile_w_modules_, loaded[i]->image.width / module_px_);
    tile_h_modules_ = std::max(tile_h_modules_, loaded[i]->image.height / module_px_);
    // The guess goes once a tile is read: it only bounds which tiles are loaded and read ahead
    // (a guess of 4,096 px kept for 1,024-px tiles read ahead eight tile rows, not two).
    footprint_modules_ = std::max(tile_w_modules_, tile_h_modules_);
    cached_.insert(loaded[i]->index);
    cache_.push_back(std::move(loaded[i]));
  }
  ++cache_generation_;
  if (prefetch_) {
    const tile_prefetch_stats ps = prefetch_->stats();
    stats_.tiles_read_ahead = ps.taken;
    stats_.tiles_read_ahead_unused = ps.dropped;
  }
  stats_.max_tiles_in_memory = std::max<std::uint64_t>(stats_.max_tiles_in_memory, cache_.size());
  index_tiles();
  read_tiles_ahead(x_lo, x_hi, y_hi, y_end, read_after);
  stats_.seconds_placing_tiles += std::chrono::duration<double>(std::chrono::steady_clock::now() - placing).count();
}

void scan_reader::keep_pose(const posed_tile& t)
{
  std::lock_guard<std::mutex> lock(poses_mutex_);
  if (!kept_poses_.insert_or_assign(t.index, tile_pose::of(t)).second) return;
  kept_order_.push_back(t.index);
  if (kept_order_.size() > max_kept_poses) {
    kept_poses_.erase(kept_order_.front());
    kept_order_.pop_front();
  }
}

std::unique_ptr<posed_tile> scan_reader::register_read_tile(std::size_t index, sim::gray_image image,
                                                            const registration_options& ro, workspace& ws)
{
  // A tile let go before is given the pose its first reading found and placed: its registration
  // and placing would repeat that work (and, with other neighbours placed, might differ).
  std::optional<tile_pose> kept;
  {
    std::lock_guard<std::mutex> lock(poses_mutex_);
    const auto it = kept_poses_.find(index);
    if (it != kept_poses_.end()) kept = it->second;
  }
  if (kept) {
    auto tile = std::make_unique<posed_tile>(restore_tile(std::move(image), set_.tiles[index], *kept, set_.pixel_nm, geo_,
                                                          ro, take_spare(spare_integrals_, spare_mutex_)));
    tile->index = index;
    recycle_bytes(tile->image);
    return tile;
  }
  auto tile = std::make_unique<posed_tile>(register_tile(std::move(image), set_.tiles[index], set_.pixel_nm, geo_, ro,
                                                         take_spare(spare_integrals_, spare_mutex_)));
  tile->index = index;
  recycle_bytes(tile->image);
  correct_lattice(*tile, ws);
  return tile;
}

void scan_reader::start_registering_ahead()
{
  if (!prefetch_ || !options_.register_ahead || registering_ahead_) return;
  if (polarity_ == 0 || !(options_.registration.finder_strength > 0)) return;
  registering_ahead_ = true;
  // What load_region would register each tile with from now on: neither changes again.
  registration_options ro = options_.registration;
  ro.polarity = polarity_;
  prefetch_->register_with([this, ro](std::size_t index, sim::gray_image image) {
    std::unique_ptr<workspace> ws = take_spare(registrar_workspaces_, spare_mutex_);
    if (!ws) ws = std::make_unique<workspace>();
    std::unique_ptr<posed_tile> tile = register_read_tile(index, std::move(image), ro, *ws);
    std::lock_guard<std::mutex> lock(spare_mutex_);
    registrar_workspaces_.push_back(std::move(ws));
    return tile;
  });
}

std::vector<std::size_t> scan_reader::tiles_reaching(double x_lo, double x_hi, double y_lo, double y_hi) const
{
  std::vector<std::size_t> out;
  const double reach = footprint_modules_;
  for (auto by = static_cast<std::int64_t>(std::floor((y_lo - reach) / bucket_nominal_));
       by <= static_cast<std::int64_t>(std::floor(y_hi / bucket_nominal_)); ++by)
    for (auto bx = static_cast<std::int64_t>(std::floor((x_lo - reach) / bucket_nominal_));
         bx <= static_cast<std::int64_t>(std::floor(x_hi / bucket_nominal_)); ++bx) {
      const auto it = nominal_index_.find(plane_key(bx, by));
      if (it == nominal_index_.end()) continue;
      for (std::size_t i : it->second) {
        const double tx = set_.tiles[i].x_nm / geo_.module_nm, ty = set_.tiles[i].y_nm / geo_.module_nm;
        if (tx > x_hi || ty > y_hi || tx + reach < x_lo || ty + reach < y_lo) continue;
        if (cached_.count(i) || unreadable_.count(i)) continue;
        out.push_back(i);
      }
    }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool scan_reader::tile_may_come(double x0, double y0) const
{
  // As load_region reaches for a region of one code: it loads these when that code's row comes.
  const double n = geo_.code_size, margin = search_modules_ + 1;
  return !tiles_reaching(x0 - margin, x0 + n + margin, y0 - margin, y0 + n + margin).empty();
}

void scan_reader::read_tiles_ahead(double x_lo, double x_hi, double y_hi, double y_end, const region_bounds* then)
{
  if (!prefetch_) return;
  // The tiles the next two tile heights of rows below will load, nearest rows first, to the end of
  // these columns' rows, and with the reach left, those of the first rows of the region the sweep
  // goes to next (the next strip's); tiles asked for before and no longer among them (the sweep moved to
  // other columns) are let go.
  const double reach = 2 * footprint_modules_;
  std::vector<std::size_t> next =
      y_end > y_hi ? tiles_reaching(x_lo, x_hi, y_hi, std::min(y_hi + reach, y_end)) : std::vector<std::size_t>();
  auto nearest_rows_first = [&](std::size_t a, std::size_t b) {
    return std::make_pair(set_.tiles[a].y_nm, set_.tiles[a].x_nm) < std::make_pair(set_.tiles[b].y_nm, set_.tiles[b].x_nm);
  };
  std::stable_sort(next.begin(), next.end(), nearest_rows_first);
  const double left = reach - std::max(0.0, y_end - y_hi);
  if (then != nullptr && left > 0) {
    // Only as far as that region's own prepare() loads (the rows below may belong to another
    // unit, read after other strips).
    std::vector<std::size_t> more =
        tiles_reaching(then->x_lo, then->x_hi, then->y_lo, std::min(then->y_lo + left, then->y_hi));
    std::stable_sort(more.begin(), more.end(), nearest_rows_first);
    const std::unordered_set<std::size_t> have(next.begin(), next.end());
    for (std::size_t i : more)
      if (!have.count(i)) next.push_back(i);
  }
  const std::unordered_set<std::size_t> wanted(next.begin(), next.end());
  for (auto it = prefetched_.begin(); it != prefetched_.end();) {
    if (cached_.count(*it) || unreadable_.count(*it) || !wanted.count(*it)) {
      prefetch_->drop(*it);  // taken already (then a no-op), or not wanted now
      it = prefetched_.erase(it);
    } else {
      ++it;
    }
  }
  for (std::size_t i : next)
    if (prefetched_.insert(i).second) prefetch_->request(i, set_.tiles[i].file);
}

// Buckets of the plate (bucket_ modules square) -> the cached tiles that reach into them, so a
// code looks at the few tiles near it, not at every tile of a band across a wide plate.
void scan_reader::index_tiles()
{
  index_.clear();
  double side = 64;
  for (const auto& t : cache_) side = std::max(side, std::max(t->image.width, t->image.height) / module_px_);
  bucket_ = side;
  for (std::size_t i = 0; i < cache_.size(); ++i) {
    const posed_tile& t = *cache_[i];
    double lo_x = 1e300, hi_x = -1e300, lo_y = 1e300, hi_y = -1e300;
    for (double u : {0.0, static_cast<double>(t.image.width)})
      for (double v : {0.0, static_cast<double>(t.image.height)}) {
        double x, y;
        t.to_plate.apply(u, v, x, y);
        lo_x = std::min(lo_x, x), hi_x = std::max(hi_x, x), lo_y = std::min(lo_y, y), hi_y = std::max(hi_y, y);
      }
    for (auto by = static_cast<std::int64_t>(std::floor(lo_y / bucket_)); by <= static_cast<std::int64_t>(std::floor(hi_y / bucket_)); ++by)
      for (auto bx = static_cast<std::int64_t>(std::floor(lo_x / bucket_)); bx <= static_cast<std::int64_t>(std::floor(hi_x / bucket_)); ++bx)
        index_[plane_key(bx, by)].push_back(static_cast<std::uint32_t>(i));
  }
}

void scan_reader::correct_lattice(posed_tile& tile, workspace& ws)
{
  if (!tile.registered || geo_.pitch <= 0) return;
  // Cells that lie wholly inside the tile under its current pose, nearest the centre first.
  const double w = tile.image.width, h = tile.image.height, n = geo_.code_size;
  double cx, cy;
  tile.to_plate.apply(0.5 * w, 0.5 * h, cx, cy);
  std::vector<std::pair<double, std::pair<std::int64_t, std::int64_t>>> cells;
  const double gx = static_cast<double>(geo_.grid_x), gy = static_cast<double>(geo_.grid_y);
  const double span = 0.75 * std::max(w, h) / module_px_ + n;
  const auto c0 = static_cast<std::int64_t>(std::floor((cx - span - gx) / geo_.pitch));
  const auto c1 = static_cast<std::int64_t>(std::ceil((cx + span - gx) / geo_.pitch));
  const auto r0 = static_cast<std::int64_t>(std::floor((cy - span - gy) / geo_.pitch));
  const auto r1 = static_cast<std::int64_t>(std::ceil((cy + span - gy) / geo_.pitch));
  const plate::frame_placement& pl = geo_.placement;
  // The grid is taken one pitch past its edges and empty cells are tried too: under a pose that
  // is off by a pitch, the codes the tile holds carry the names of their neighbours.
  for (std::int64_t r = std::max<std::int64_t>(r0, -1); r <= r1 && r <= static_cast<std::int64_t>(pl.rows()); ++r)
    for (std::int64_t c = std::max<std::int64_t>(c0, -1); c <= c1 && c <= static_cast<std::int64_t>(geo_.columns); ++c) {
      const double x0 = gx + static_cast<double>(c) * geo_.pitch;
      const double y0 = gy + static_cast<double>(r) * geo_.pitch;
      bool inside = true;
      for (double dx : {-1.0, n + 1})
        for (double dy : {-1.0, n + 1}) {
          double u, v;
          tile.to_pixel.apply(x0 + dx, y0 + dy, u, v);
          inside = inside && interior(u, v, w, h) >= 2;
        }
      if (inside) cells.push_back({std::hypot(x0 + n / 2 - cx, y0 + n / 2 - cy), {r, c}});
    }
  std::sort(cells.begin(), cells.end());
  if (cells.size() > 8) cells.resize(8);  // the nearest eight at most
  std::map<std::pair<std::int64_t, std::int64_t>, int> votes;
  const std::uint16_t tag = plate::plate_tag_of(man_.plate_id);
  const std::vector<const posed_tile*> one = {&tile};
  // A tile registration left on the GPU: its cells read there, all in one launch (the loop below
  // may stop before the last; each reading is the one decode_in gives, core::read_code's).
  std::vector<core::code_outcome> outcomes;
  std::vector<std::uint8_t> bytes;
#if QRPLATE_WITH_CUDA
  if (options_.cuda && tile.device && !cells.empty()) {
    std::vector<double> origins;
    for (const auto& cell : cells) {
      origins.push_back(gx + static_cast<double>(cell.second.second) * geo_.pitch);
      origins.push_back(gy + static_cast<double>(cell.second.first) * geo_.pitch);
    }
    outcomes.resize(cells.size());
    bytes.resize(cells.size() * spec::max_data_codewords);
    const host::tile_read_request request{tile.view(), tile.device_anchor_view(), origins.data(), cells.size(),
                                          tile.device.get()};
    host::measure_and_read_tiles_cuda(host::version_plan_for(geo_.version, geo_.ecc), &request, 1, module_px_,
                                      options_.erasure_threshold, outcomes.data(), bytes.data(), host::scan_read_kernel);
  }
#endif
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const std::int64_t r = cells[i].second.first, c = cells[i].second.second;
    cell_read got;
    if (!outcomes.empty()) {
      if (!core::decoded(outcomes[i].result)) continue;
      const std::uint8_t* b = bytes.data() + i * spec::max_data_codewords;
      got.bytes.assign(b, b + outcomes[i].result.data_length);
    } else if (!decode_in(one, gx + static_cast<double>(c) * geo_.pitch, gy + static_cast<double>(r) * geo_.pitch, ws,
                          got)) {
      continue;
    }
    const plate::parsed_frame f = plate::parse_frame(got.bytes.data(), got.bytes.size());
    if (f.status != plate::frame_status::ok || f.header.plate_tag != tag) continue;
    std::uint64_t group;
    int member;
    if (f.header.kind == plate::frame_kind::data) {
      if (f.header.index >= pl.data_frames()) continue;
      group = f.header.index / pl.k(), member = static_cast<int>(f.header.index % pl.k());
    } else {
      if (pl.m() == 0) continue;
      group = f.header.index / pl.m(), member = pl.k() + static_cast<int>(f.header.index % pl.m());
    }
    if (group >= pl.groups()) continue;
    std::uint64_t true_row;
    std::uint32_t true_col;
    pl.cell_of(group, member, true_row, true_col);
    const std::pair<std::int64_t, std::int64_t> d{static_cast<std::int64_t>(true_col) - c, static_cast<std::int64_t>(true_row) - r};
    if (++votes[d] >= 3) break;
  }
  if (votes.empty()) return;
  auto best = std::max_element(votes.begin(), votes.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  // One frame alone could be a stray; two agreeing, or the only one there is, decide.
  int total = 0;
  for (const auto& v : votes) total += v.second;
  if (best->second < 2 && total > 1) return;
  tile.verified = true;
  if (best->first.first == 0 && best->first.second == 0) return;
  tile.shift_on_plate(static_cast<double>(best->first.first) * geo_.pitch, static_cast<double>(best->first.second) * geo_.pitch);
  ++tile.lattice_moves;  // counted when the tile is kept (one registered ahead may never be)
}

bool scan_reader::decode_in(const std::vector<const posed_tile*>& tiles, double x0, double y0, workspace& ws,
                            cell_read& out) const
{
  const core::version_plan& plan = host::version_plan_for(geo_.version, geo_.ecc);
  const std::size_t count = std::min<std::size_t>(tiles.size(), ws.maps.size());
  for (std::size_t i = 0; i < count; ++i) measure_code(*tiles[i], plan, x0, y0, ws.maps[i]);
  core::code_outcome o;
  if (count == 1) {
    // A code wholly inside one tile: the per-code core the CUDA read kernel runs too (its
    // sampling and thresholding by the CPU's fast paths, the same bits: scan/fast_sampling.hpp).
    sample_code_fast(plan, tiles[0]->view(), ws.maps[0], module_px_, ws.values.data(), ws.valid.data());
    o = decode_sampled_fast(plan, ws.values.data(), ws.valid.data(), options_.erasure_threshold, ws.modules.data(),
                            ws.confidence.data(), ws.bytes.data(), *ws.decode);
    if (!o.levels.ok) return false;
  } else {
    // Module by module from the tile that holds it farthest from its edges (core/read_across.hpp,
    // which the CUDA batches of such codes run too).
    core::gray_view images[core::max_across];
    for (std::size_t i = 0; i < count; ++i) images[i] = tiles[i]->view();
    o = read_code_across_fast(plan, images, ws.maps.data(), static_cast<int>(count), module_px_,
                              options_.erasure_threshold, ws.bytes.data(), *ws.across);
    if (!o.levels.ok) return false;
  }
  out.snr = o.snr;
  out.partly_sampled = o.levels.known < plan.known_count;
  out.result = o.result;
  if (!core::decoded(o.result)) return false;
  out.bytes.assign(ws.bytes.begin(), ws.bytes.begin() + o.result.data_length);
  out.decoded = true;
  return true;
}

void scan_reader::tiles_seeing(double x0, double y0, std::vector<std::pair<double, const posed_tile*>>& whole,
                               std::vector<const posed_tile*>& part) const
{
  whole.clear();
  part.clear();
  const double n = geo_.code_size;
  std::vector<std::uint32_t> near;
  for (auto by = static_cast<std::int64_t>(std::floor(y0 / bucket_)); by <= static_cast<std::int64_t>(std::floor((y0 + n) / bucket_)); ++by)
    for (auto bx = static_cast<std::int64_t>(std::floor(x0 / bucket_)); bx <= static_cast<std::int64_t>(std::floor((x0 + n) / bucket_)); ++bx) {
      const auto it = index_.find(plane_key(bx, by));
      if (it != index_.end()) near.insert(near.end(), it->second.begin(), it->second.end());
    }
  std::sort(near.begin(), near.end());
  near.erase(std::unique(near.begin(), near.end()), near.end());
  for (std::uint32_t ti : near) {
    const auto& t = cache_[ti];
    const double w = t->image.width, h = t->image.height;
    double lo_u = 1e300, hi_u = -1e300, lo_v = 1e300, hi_v = -1e300, margin = 1e300;
    for (double dx : {0.0, n})
      for (double dy : {0.0, n}) {
        double u, v;
        t->to_pixel.apply(x0 + dx, y0 + dy, u, v);
        lo_u = std::min(lo_u, u), hi_u = std::max(hi_u, u), lo_v = std::min(lo_v, v), hi_v = std::max(hi_v, v);
        margin = std::min(margin, interior(u, v, w, h));
      }
    if (hi_u <= 0 || hi_v <= 0 || lo_u >= w || lo_v >= h) continue;
    part.push_back(t.get());
    // Registered tiles first: an unregistered one sits where the stage said, which may be off.
    if (margin >= module_px_) whole.push_back({margin + (t->registered ? 1e6 : 0), t.get()});
  }
  std::sort(whole.begin(), whole.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
}

namespace {

// The tiles a code that no tile holds whole is read across, in the order read_cell tries them
// (registered tiles first, so that a tie in depth goes to them), at most core::max_across.
std::vector<const posed_tile*> across_order(std::vector<const posed_tile*> part)
{
  std::stable_sort(part.begin(), part.end(), [](const posed_tile* a, const posed_tile* b) { return a->registered > b->registered; });
  if (part.size() > static_cast<std::size_t>(core::max_across)) part.resize(core::max_across);
  return part;
}

// What a reading of a code gave, as decode_in leaves it in a cell_read.
cell_read to_cell_read(const core::code_outcome& o, const std::uint8_t* bytes, int tiles, int known_count)
{
  cell_read c;
  c.tiles = tiles;
  if (o.levels.ok) {  // as decode_in: a code without contrast leaves the result and SNR unset
    c.result = o.result;
    c.snr = o.snr;
    c.partly_sampled = o.levels.known < known_count;
    if (core::decoded(o.result)) {
      c.decoded = true;
      c.bytes.assign(bytes, bytes + o.result.data_length);
    }
  }
  return c;
}

}  // namespace

// The codes of one batch: those wholly inside a tile (jobs, read in the tile they sit deepest in)
// and those no tile holds whole but several see (across, read across those tiles,
// core/read_across.hpp); ahead marks a row below the prepared ones.
struct scan_reader::code_batch {
  struct job {
    std::uint64_t row;
    std::uint32_t col;
    const posed_tile* tile;  // the tile the code sits deepest in
    int tiles;               // tiles that see it
    bool ahead;
  };
  struct across_job {
    std::uint64_t row;
    std::uint32_t col;
    std::vector<const posed_tile*> tiles;  // across_order
    int part;                              // tiles that see it
    bool ahead;
  };
  std::vector<job> jobs;
  std::vector<across_job> across;
  // read_batch's results: per job, then per across job.
  std::vector<core::code_outcome> outcomes, across_outcomes;
  std::vector<std::uint8_t> bytes, across_bytes;  // spec::max_data_codewords a code

  bool empty() const { return jobs.empty() && across.empty(); }
  std::size_t codes() const { return jobs.size() + across.size(); }
};

void scan_reader::read_first_attempts(std::uint64_t row0, std::uint64_t row1, std::uint32_t col0, std::uint32_t col1,
                                      std::uint64_t rows_end, const cell_region* next)
{
  // The reads ahead of the last batch first: the cells below may now take them.
  finish_background_batch();
  first_.clear();
  code_batch now, below;  // the prepared rows; rows ahead
  std::vector<std::pair<double, const posed_tile*>> whole;
  std::vector<const posed_tile*> part;
  auto cell_wanted = [&](std::uint64_t row, std::uint32_t col) {
    return row < geo_.placement.rows() && col < geo_.columns &&
           geo_.placement.at(row, col).kind != plate::placement_slot::empty;
  };
  // Read-ahead entries of rows passed or of other columns will not be asked for.
  for (auto it = ahead_.begin(); it != ahead_.end();) {
    const ahead_read& a = it->second;
    it = a.row < row0 || a.col < col0 || a.col >= col1 ? ahead_.erase(it) : std::next(it);
  }
  for (std::uint64_t row = row0; row < row1; ++row)
    for (std::uint32_t col = col0; col < col1; ++col) {
      if (!cell_wanted(row, col)) continue;
      tiles_seeing(static_cast<double>(geo_.cell_x(col)), static_cast<double>(geo_.cell_y(row)), whole, part);
      if (whole.empty() && part.size() < 2) continue;
      std::vector<const posed_tile*> order = whole.empty() ? across_order(part) : std::vector<const posed_tile*>{};
      const auto ahead = ahead_.find(plane_key(col, static_cast<std::int64_t>(row)));
      if (ahead != ahead_.end() && (whole.empty() ? ahead->second.tile == nullptr && ahead->second.across == order
                                                  : ahead->second.tile == whole[0].second)) {
        // Read ahead in the tile(s) it would be read in now: that reading is this one.
        cell_read c = std::move(ahead->second.read);
        c.tiles = static_cast<int>(part.size());
        first_.emplace(ahead->first, std::move(c));
        ahead_.erase(ahead);
        ++stats_.codes_read_ahead;
        continue;
      }
      stats_.codes_read_ahead_again += ahead != ahead_.end();
      if (whole.empty()) now.across.push_back({row, col, std::move(order), static_cast<int>(part.size()), false});
      else now.jobs.push_back({row, col, whole[0].second, static_cast<int>(part.size()), false});
    }
  // A cell of a row below (or of the next region) into the batch of reads ahead, unless it was
  // read ahead in the tile(s) it would be read in now, or a tile that may see it is to come.
  auto read_ahead = [&](std::uint64_t row, std::uint32_t col) {
    if (!cell_wanted(row, col)) return;
    const auto x0 = static_cast<double>(geo_.cell_x(col)), y0 = static_cast<double>(geo_.cell_y(row));
    tiles_seeing(x0, y0, whole, part);
    if (whole.empty() && part.size() < 2) return;
    // A code waits until no tile that may see it is still to come: a new one may hold it
    // deeper, or change the tiles it is read across, and a reading ahead of it would be read
    // again. (prepare() loads the tiles of the next rows too, so the next group's are complete.)
    if (tile_may_come(x0, y0)) {
      ++stats_.codes_ahead_deferred;
      return;
    }
    std::vector<const posed_tile*> order = whole.empty() ? across_order(part) : std::vector<const posed_tile*>{};
    const auto ahead = ahead_.find(plane_key(col, static_cast<std::int64_t>(row)));
    if (ahead != ahead_.end() && (whole.empty() ? ahead->second.tile == nullptr && ahead->second.across == order
                                                : ahead->second.tile == whole[0].second))
      return;
    stats_.codes_read_ahead_again += ahead != ahead_.end();
    if (whole.empty()) below.across.push_back({row, col, std::move(order), 0, true});
    else below.jobs.push_back({row, col, whole[0].second, 0, true});
  };
  // Rows below, as far as options_.read_ahead_rows: those not looked at under the tiles held now
  // (when no tile came or went since the last batch, only the rows new to the window).
  const std::uint64_t ahead_end = std::min(row1 + options_.read_ahead_rows, rows_end);
  const bool same_window = ahead_generation_ == cache_generation_ && ahead_col0_ == col0 && ahead_col1_ == col1;
  for (std::uint64_t row = same_window ? std::max(row1, ahead_until_) : row1; row < ahead_end; ++row)
    for (std::uint32_t col = col0; col < col1; ++col) read_ahead(row, col);
  // The next strip's (or unit's) first rows, whose tiles load_region loaded too: their results
  // wait in ahead_ for that prepare() (which keeps the entries of its own columns).
  if (next != nullptr)
    for (std::uint64_t row = next->row0; row < next->row1; ++row)
      for (std::uint32_t col = next->col0; col < next->col1; ++col) read_ahead(row, col);
  ahead_generation_ = cache_generation_, ahead_col0_ = col0, ahead_col1_ = col1;
  ahead_until_ = same_window ? std::max(ahead_until_, ahead_end) : ahead_end;
  stats_.codes_read_across += now.across.size() + below.across.size();
  if (!options_.overlap_batches) {
    // One batch, read now (as many codes per GPU call as can be).
    now.jobs.insert(now.jobs.end(), below.jobs.begin(), below.jobs.end());
    for (auto& a : below.across) now.across.push_back(std::move(a));
    read_batch(now, workspaces_);
    keep_batch_results(now);
    return;
  }
  // The prepared rows now (on the batch thread with cuda, which keeps one GPU context), the rows
  // ahead in the background, until the next batch or a drop of a tile they read.
  if (!now.empty()) {
    if (options_.cuda) batch_thread_->run([&] { read_batch(now, workspaces_); });
    else read_batch(now, workspaces_);
    keep_batch_results(now);
  }
  if (below.empty()) return;
  background_ = std::make_unique<code_batch>(std::move(below));
  background_tiles_.clear();
  for (const auto& j : background_->jobs) background_tiles_.insert(j.tile);
  for (const auto& a : background_->across) background_tiles_.insert(a.tiles.begin(), a.tiles.end());
  stats_.codes_read_in_background += background_->codes();
  code_batch* b = background_.get();
  batch_thread_->start([this, b] { read_batch(*b, options_.cuda ? workspaces_ : background_workspaces_); });
}

void scan_reader::finish_background_batch()
{
  if (!background_) return;
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<code_batch> b = std::move(background_);
  background_tiles_.clear();
  batch_thread_->wait();
  stats_.seconds_waiting_for_background += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  keep_batch_results(*b);
}

void scan_reader::read_batch(code_batch& batch, const std::vector<std::unique_ptr<workspace>>& ws) const
{
  const core::version_plan& plan = host::version_plan_for(geo_.version, geo_.ecc);
  auto& across = batch.across;
  const std::size_t n = across.size();
  batch.across_outcomes.assign(n, core::code_outcome{});
  batch.across_bytes.assign(n * spec::max_data_codewords, 0);
  if (n > 0) {
    // The codes across tiles: core::read_code_across per code (its sampling by the CPU fast path,
    // scan/fast_sampling.hpp), on every thread or on the GPU.
    std::vector<core::code_outcome>& outcomes = batch.across_outcomes;
    std::vector<std::uint8_t>& bytes = batch.across_bytes;
    if (!options_.cuda) {
      host::parallel_for(threads_, n, [&](unsigned t, std::size_t i) {
        const code_batch::across_job& j = across[i];
        workspace& w = *ws[t];
        const auto x0 = static_cast<double>(geo_.cell_x(j.col)), y0 = static_cast<double>(geo_.cell_y(j.row));
        core::gray_view images[core::max_across];
        for (std::size_t k = 0; k < j.tiles.size(); ++k) {
          measure_code(*j.tiles[k], plan, x0, y0, w.maps[k]);
          images[k] = j.tiles[k]->view();
        }
        outcomes[i] = read_code_across_fast(plan, images, w.maps.data(), static_cast<int>(j.tiles.size()),
                                            module_px_, options_.erasure_threshold,
                                            bytes.data() + i * spec::max_data_codewords, *w.across);
      });
    } else {
#if QRPLATE_WITH_CUDA
      // Each tile once, where registration left it on the device (or uploaded for the call).
      std::vector<host::tile_read_request> requests;
      std::unordered_map<const posed_tile*, std::uint32_t> index;
      std::vector<core::across_code> codes(n);
      for (std::size_t i = 0; i < n; ++i) {
        codes[i].x0 = static_cast<double>(geo_.cell_x(across[i].col));
        codes[i].y0 = static_cast<double>(geo_.cell_y(across[i].row));
        codes[i].count = static_cast<std::uint32_t>(across[i].tiles.size());
        for (std::size_t k = 0; k < across[i].tiles.size(); ++k) {
          const posed_tile* t = across[i].tiles[k];
          const auto [it, fresh] = index.emplace(t, static_cast<std::uint32_t>(requests.size()));
          if (fresh)
            requests.push_back({t->view(), t->device ? t->device_anchor_view() : t->anchor_view(), nullptr, 0, t->device.get()});
          codes[i].tiles[k] = it->second;
        }
      }
      host::read_across_tiles_cuda(plan, requests.data(), requests.size(), codes.data(), n, module_px_,
                                   options_.erasure_threshold, outcomes.data(), bytes.data());
#else
      throw backend_unavailable("backend cuda: this qrplate was built without CUDA");
#endif
    }
  }
  auto& jobs = batch.jobs;
  // Tile by tile (the GPU reads the codes of many tiles per call, in this order), then cell order.
  std::stable_sort(jobs.begin(), jobs.end(), [](const code_batch::job& a, const code_batch::job& b) {
    return a.tile->index < b.tile->index;
  });
  const std::size_t count = jobs.size();
  batch.outcomes.assign(count, core::code_outcome{});
  batch.bytes.assign(count * spec::max_data_codewords, 0);
  if (count == 0) return;
  std::vector<core::code_outcome>& outcomes = batch.outcomes;
  std::vector<std::uint8_t>& bytes = batch.bytes;
  // On the CPU: the per-code anchor search and the read, on every thread. With CUDA: both on the
  // GPU, many tiles per launch (core::measure_code_map and core::read_code's pieces, the same
  // functions).
  if (!options_.cuda) {
    std::vector<core::code_map> maps(count);
    host::parallel_for(threads_, count, [&](unsigned t, std::size_t i) {
      const code_batch::job& j = jobs[i];
      measure_code(*j.tile, plan, static_cast<double>(geo_.cell_x(j.col)), static_cast<double>(geo_.cell_y(j.row)),
                   maps[i]);
      outcomes[i] = read_code_fast(plan, j.tile->view(), maps[i], module_px_, options_.erasure_threshold,
                                   bytes.data() + i * spec::max_data_codewords, *ws[t]->read);
    });
  } else {
#if QRPLATE_WITH_CUDA
    std::vector<double> origins(2 * count);
    for (std::size_t i = 0; i < count; ++i) {
      origins[2 * i] = static_cast<double>(geo_.cell_x(jobs[i].col));
      origins[2 * i + 1] = static_cast<double>(geo_.cell_y(jobs[i].row));
    }
    // Every tile's codes in one call: the GPU reads each tile where registration left it in
    // device memory (posed_tile::device), and the call uploads only tiles that have none.
    std::vector<host::tile_read_request> requests;
    for (std::size_t a = 0; a < count;) {
      std::size_t b = a;
      while (b < count && jobs[b].tile == jobs[a].tile) ++b;
      const posed_tile& t = *jobs[a].tile;
      requests.push_back({t.view(), t.device ? t.device_anchor_view() : t.anchor_view(), origins.data() + 2 * a, b - a,
                          t.device.get()});
      a = b;
    }
    host::measure_and_read_tiles_cuda(plan, requests.data(), requests.size(), module_px_, options_.erasure_threshold,
                                      outcomes.data(), bytes.data(), host::scan_read_kernel);
#else
    throw backend_unavailable("backend cuda: this qrplate was built without CUDA");
#endif
  }
}

void scan_reader::keep_batch_results(code_batch& batch)
{
  const int known = host::version_plan_for(geo_.version, geo_.ecc).known_count;
  for (std::size_t i = 0; i < batch.across.size(); ++i) {
    code_batch::across_job& a = batch.across[i];
    cell_read c = to_cell_read(batch.across_outcomes[i], batch.across_bytes.data() + i * spec::max_data_codewords, a.part, known);
    const std::uint64_t key = plane_key(a.col, static_cast<std::int64_t>(a.row));
    if (a.ahead) ahead_[key] = ahead_read{a.row, a.col, nullptr, std::move(c), std::move(a.tiles)};
    else first_.emplace(key, std::move(c));
  }
  for (std::size_t i = 0; i < batch.jobs.size(); ++i) {
    const code_batch::job& j = batch.jobs[i];
    cell_read c = to_cell_read(batch.outcomes[i], batch.bytes.data() + i * spec::max_data_codewords, j.tiles, known);
    const std::uint64_t key = plane_key(j.col, static_cast<std::int64_t>(j.row));
    if (j.ahead) ahead_[key] = ahead_read{j.row, j.col, j.tile, std::move(c), {}};
    else first_.emplace(key, std::move(c));
  }
}

void scan_reader::read_cell(unsigned thread, std::uint64_t row, std::uint32_t col, cell_read& out)
{
  out = cell_read{};
  workspace& ws = *workspaces_[thread];
  const double x0 = static_cast<double>(geo_.cell_x(col)), y0 = static_cast<double>(geo_.cell_y(row));
  // Tiles that see the code: wholly (by how far the code stays from the edges) or in part.
  std::vector<std::pair<double, const posed_tile*>> whole;
  std::vector<const posed_tile*> part;
  tiles_seeing(x0, y0, whole, part);
  out.tiles = static_cast<int>(part.size());
  if (part.empty()) return;
  cell_read attempt;
  bool have_failure = false;
  for (std::size_t i = 0; i < whole.size() && i < 3; ++i) {
    attempt = cell_read{};
    bool ok;
    const auto batched = i == 0 ? first_.find(plane_key(col, static_cast<std::int64_t>(row))) : first_.end();
    if (batched != first_.end()) {
      attempt = batched->second;  // read by read_first_attempts, the same way
      ok = attempt.decoded;
    } else {
      ok = decode_in({whole[i].second}, x0, y0, ws, attempt);
    }
    if (ok) {
      attempt.tiles = out.tiles;
      out = std::move(attempt);
      return;
    }
    if (!have_failure) {
      out.result = attempt.result, out.snr = attempt.snr, out.partly_sampled = attempt.partly_sampled;
      have_failure = true;
    }
  }
  if (whole.empty() || part.size() > 1) {
    // Registered tiles first, so that the margin rule prefers them on a tie.
    std::stable_sort(part.begin(), part.end(), [](const posed_tile* a, const posed_tile* b) { return a->registered > b->registered; });
    attempt = cell_read{};
    // A code no tile holds whole was read across its tiles by read_first_attempts (batch_codes).
    const auto batched = whole.empty() ? first_.find(plane_key(col, static_cast<std::int64_t>(row))) : first_.end();
    bool ok;
    if (batched != first_.end()) {
      attempt = batched->second;
      ok = attempt.decoded;
    } else {
      ok = decode_in(part, x0, y0, ws, attempt);
    }
    if (ok) {
      attempt.tiles = out.tiles;
      out = std::move(attempt);
      return;
    }
    if (!have_failure) out.result = attempt.result, out.snr = attempt.snr, out.partly_sampled = attempt.partly_sampled;
  }
}

}  // namespace qrplate::scan
