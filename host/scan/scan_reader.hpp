// Reading the code cells of a plate out of a scan set: tiles are loaded, registered
// (tile_registration.hpp) and checked against the frames they hold (a frame names its own cell,
// which resolves the whole-pitch ambiguity of the lattice), row band by row band, so only the
// tiles a band of code rows touches are in memory. Each code is then refined locally from its
// own finder and alignment patterns, sampled (core/sample_symbol.hpp) and decoded with erasures
// (core/decode_symbol.hpp). A code lying across tiles is sampled module by module from the tile
// that holds each module farthest from its edges.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "qrplate/core/decode_symbol.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"
#include "scan/scan_set.hpp"
#include "scan/tile_prefetch.hpp"
#include "scan/tile_registration.hpp"
#include "util/lasting_threads.hpp"

namespace qrplate::scan {

struct scan_read_options {
  unsigned threads = 0;  // 0: every core
  registration_options registration;
  // Modules whose confidence (0..255, see threshold_symbol) is below this may become erasures.
  std::uint8_t erasure_threshold = 64;
  // Codes wholly inside a tile read in one batch per tile after each prepare() (their first
  // attempt: the tile they sit deepest in), on the CPU or with CUDA; false: cell by cell.
  bool batch_codes = false;
  bool cuda = false;  // the batches on the GPU (needs batch_codes), and registration's passes over every pixel
  // batch_codes: each batch also reads ahead the first attempts of up to this many code rows below
  // the prepared ones (within the unit's rows, prepare()'s rows_end), for cells every tile that may
  // see them is held for (prepare() loads the next rows' tiles too), so that a GPU gets its reads in
  // the background instead of in a small batch it is waited for per row. A read-ahead result is
  // used only if the cell's deepest tile is still that tile when its row is prepared (else the
  // cell is read again), so the results are those of reading it then: the same for any value.
  std::uint32_t read_ahead_rows = 0;
  // read_ahead_rows: the reads ahead of a batch run on a background thread (with cuda: the GPU
  // reads) while the next prepare() loads and registers tiles; they are waited for at the next
  // batch, or sooner when that prepare() is to drop a tile they read. prepare() still returns
  // only once the prepared rows' own first attempts are read. Changes when codes are read,
  // never what. false: each batch whole before prepare() returns.
  bool overlap_batches = false;
  // Bytes of tiles (pixels and integral images) kept in memory beyond those the prepared region
  // needs, least recently needed dropped first: a tile on a strip's or a band's edge is then read
  // and registered once, not once per strip and band. 0: only the region's tiles stay.
  // With cuda, every tile held is also held in device memory (its pixels and integral image, as
  // registration's passes left them there), so this bounds the GPU's share too.
  std::size_t cache_bytes = std::size_t{1} << 30;
  // Bytes of tile images that background threads (as many as `threads`) read ahead of the rows
  // being read: the files of the next two tile heights of rows, decoded while the codes of these
  // rows are read (scan/tile_prefetch.hpp). Changes when a file is read, never what. 0: off.
  std::size_t prefetch_bytes = std::size_t{256} << 20;
  // Width of the column strips the plate is read in, in scan pixels (strip_columns()). A strip's
  // rows of tiles are what one prepare() registers side by side, so wider strips keep more
  // threads busy where tiles are large or cores many, and hold more tiles in memory. The order in
  // which tiles are registered follows the strips, so a marginal code may be read from another
  // tile (the same bytes when it reads); results do not depend on the number of threads.
  double strip_px = 8192;
  // Code rows of a strip narrower than the plate prepared at once (prepare()'s callers ask
  // rows_per_prepare()); 0: as many as fit the step between the scan's rows of tiles.
  std::uint32_t prepare_rows = 0;
  // prefetch_bytes: once the first tiles settled the scan's polarity and finder strength (after
  // which a tile's registration depends on nothing but the tile), the prefetcher's threads
  // register the tiles they read ahead too, and check their lattice against their frames, while
  // the codes of the rows before are read; prepare() then only places them against their
  // neighbours. Changes when a tile is registered, never how. false: prepare() registers each.
  bool register_ahead = true;
};

// Rows [row0, row1) of code columns [col0, col1).
struct cell_region {
  std::uint64_t row0 = 0, row1 = 0;
  std::uint32_t col0 = 0, col1 = 0;
  std::uint64_t rows_end = 0;  // where the rows swept in these columns end (its unit's; 0: row1)
};

// One code cell as read.
struct cell_read {
  bool decoded = false;
  core::decode_result result{};
  std::vector<std::uint8_t> bytes;  // content when decoded
  int tiles = 0;                    // tiles that covered the code (0: none: not scanned)
  float snr = 0;                    // (milled - film) / noise of the known modules, of the reading used
  // The reading used sampled only part of the code's known modules: part of the code lies in no
  // tile (a missing or unreadable tile, a gap the stage error opened). Its SNR says little then.
  bool partly_sampled = false;
};

struct scan_read_stats {
  std::uint64_t tiles_listed = 0, tiles_loaded = 0, tiles_unreadable = 0, tiles_unregistered = 0;
  std::uint64_t max_tiles_in_memory = 0;  // the most tiles held at once
  std::uint64_t tiles_stitched = 0;       // placed by the image content they share with a placed neighbour
  // Lattice position confirmed: by frames read in them, or (of those, tiles_confirmed_by_overlap) by
  // a placed neighbour's overlap agreeing with their own pose.
  std::uint64_t tiles_verified = 0, tiles_confirmed_by_overlap = 0;
  std::uint64_t lattice_corrections = 0;  // tiles moved by whole code pitches (their frames, or their neighbours, said so)
  std::uint64_t tiles_read_ahead = 0;        // of tiles_loaded, read by the prefetcher (prefetch_bytes)
  std::uint64_t tiles_registered_ahead = 0;  // of those, registered by it too (register_ahead)
  // Tiles the prefetcher read (and registered) that were let go before any prepare() took them:
  // work wasted, as the sweep went elsewhere first (near 0 when the read-ahead follows the sweep).
  std::uint64_t tiles_read_ahead_unused = 0;
  // Of tiles_loaded, tiles read again (let go before: a strip's or a band's edge the tile cache
  // could not hold) that took the pose their first reading found, not registered or placed again.
  std::uint64_t tiles_pose_kept = 0;
  // seconds_tiles' two main parts: loading (taking the tiles read ahead, reading and registering
  // the others: the part register_ahead moves off prepare()) and placing (polarity, stitching,
  // whole-pitch moves, bookkeeping: by neighbours, so in prepare()).
  double seconds_loading_tiles = 0, seconds_placing_tiles = 0;
  double seconds_tiles = 0;          // prepare() without its batches: loading, registering, placing
  double seconds_code_batches = 0;   // batch_codes: the batched first reads (read_first_attempts)
  std::uint64_t codes_read_ahead = 0;        // read_ahead_rows: first attempts read ahead and used
  std::uint64_t codes_read_ahead_again = 0;  // read ahead, then again in a tile that holds them deeper
  std::uint64_t codes_read_across = 0;       // batch_codes: codes no tile holds whole, read across tiles in batches
  // read_ahead_rows: codes not read ahead because a tile that may see them was not loaded yet
  // (each time a batch passed one over).
  std::uint64_t codes_ahead_deferred = 0;
  // overlap_batches: codes read ahead on the background thread while tiles were registered; and
  // the background batches waited for early because the next prepare() was to drop a tile they
  // read; and the seconds prepare() waited for background batches (included in seconds_code_batches).
  std::uint64_t codes_read_in_background = 0, background_batches_waited_for_drops = 0;
  double seconds_waiting_for_background = 0;
  std::uint64_t tiles_host_integrals = 0;    // cuda: tiles whose integral image a CPU path needed (built on the host)
  // cuda: tile samples sent to the device for registration, and the bytes the link carried for
  // them (1 a sample where a chunk's samples fit in 8 bits, else 2; see tile_passes_cuda).
  std::uint64_t tile_samples_uploaded = 0, tile_bytes_uploaded = 0;
  // cuda: of those samples, the ones sent as the (8-bit TIFF) file held them, not narrowed again.
  std::uint64_t tile_samples_uploaded_as_read = 0;
  // cuda: of tile_bytes_uploaded, those the host copied into pinned staging first (the rest went
  // by DMA from the pinned buffers the 8-bit files were read into).
  std::uint64_t tile_bytes_staged = 0;
  std::vector<std::string> unreadable;    // "file: reason", the first few
  // The scan's coverage, for advice when codes lie partly in no tile (0: unknown). The stage's
  // position error, sigma per axis (1.4826 MAD of the placed tiles' offsets from nominal, the
  // larger axis; from 5 such tiles on; of the last 4,096 to 8,192 tiles placed), and the overlap of neighbouring tiles as scan.json plans
  // it (a tile's width or height less the median step between its distinct x or y positions, the
  // smaller of the two; negative: gaps by design).
  double stage_sigma_nm = 0, planned_overlap_nm = 0;
};

class scan_reader {
 public:
  scan_reader(scan_set set, const plate::manifest& man, const scan_read_options& options);
  ~scan_reader();
  scan_reader(const scan_reader&) = delete;
  scan_reader& operator=(const scan_reader&) = delete;

  unsigned threads() const { return threads_; }
  // Loads and registers (on all threads) every tile that the cells of rows [row0, row1) and
  // columns [col0, col1) may need, and drops tiles above row0 or outside those columns, the least
  // recently needed first, while more than options.cache_bytes of them are held. Memory is then
  // the tiles of one such region plus that budget. The plate is meant to be swept in column
  // strips (strip_columns() wide), rows in increasing order within a strip; a tile on a strip's
  // edge that the budget could not keep is read once for each strip. The tiles of as many rows
  // below (row1 on) are loaded too, so that their codes can be read ahead; rows_end: where the
  // rows swept in these columns end (a unit of the outer code), past which nothing is loaded or
  // read ahead. next: the region the sweep asks for once these columns' rows end (the next
  // strip's first rows, or the next unit's), given on any prepare() of the strip: the last one
  // (row1 >= rows_end) loads its tiles too and reads its codes ahead, so that a strip's first rows
  // need not be read while the caller waits; the ones before read its files ahead when the rows
  // left in these columns are fewer than the read-ahead's reach.
  void prepare(std::uint64_t row0, std::uint64_t row1, std::uint32_t col0, std::uint32_t col1,
               std::uint64_t rows_end = ~std::uint64_t{0}, const cell_region* next = nullptr);
  // Code columns per strip: about options.strip_px pixels of scan (at least one column).
  std::uint32_t strip_columns() const;
  // Code rows of a strip to prepare at once: as many as fit the step between the scan's rows of
  // tiles (scan.json's positions; at least 1), so that each prepare() meets about one new row of
  // tiles, and its batch, which the next prepare() waits for, holds that row's codes.
  std::uint32_t rows_per_prepare() const { return rows_per_prepare_; }
  // Reads one code cell of the prepared rows. Thread-safe for distinct thread indices < threads().
  void read_cell(unsigned thread, std::uint64_t row, std::uint32_t col, cell_read& out);

  scan_read_stats stats() const;

 private:
  struct workspace;
  struct tile_slot;
  // prepare() without the batch: drops, loads and registers the region's tiles.
  // `also`: a second region whose tiles are loaded and kept too (prepare()'s next, at the strip's
  // end); `then`: the region after rows_end, whose files are read ahead once these rows run out.
  // rows_end: where the rows swept in these columns end (prepare()'s): no file is read ahead past it.
  void load_region(std::uint64_t row0, std::uint64_t row1, std::uint32_t col0, std::uint32_t col1,
                   const cell_region* also = nullptr, std::uint64_t rows_end = 0, const cell_region* then = nullptr);
  // A registered tile's file bytes (sim::gray_image::bytes, sent up by its GPU passes) go to the
  // spares for the next reads.
  void recycle_bytes(sim::gray_image& image);
  bool decode_in(const std::vector<const posed_tile*>& tiles, double x0, double y0, workspace& ws, cell_read& out) const;
  // The tiles that see the code at (x0, y0): wholly (deepest first, registered before not) and
  // in part.
  void tiles_seeing(double x0, double y0, std::vector<std::pair<double, const posed_tile*>>& whole,
                    std::vector<const posed_tile*>& part) const;
  void read_first_attempts(std::uint64_t row0, std::uint64_t row1, std::uint32_t col0, std::uint32_t col1,
                           std::uint64_t rows_end, const cell_region* next);
  // The codes of one batch, and what reading them gave (scan_reader.cpp).
  struct code_batch;
  // Reads a batch's codes: on the CPU with the given workspaces (one per thread), or on the GPU.
  // Touches nothing of the reader but const tiles, so it may run on the background thread.
  void read_batch(code_batch& batch, const std::vector<std::unique_ptr<workspace>>& ws) const;
  // A read batch's results into first_ (the prepared rows) and ahead_ (rows below).
  void keep_batch_results(code_batch& batch);
  // Waits for the background batch, if one runs, and keeps its results.
  void finish_background_batch();
  void correct_lattice(posed_tile& tile, workspace& ws);
  // A tile read: registered with `ro`, its file's bytes recycled, its lattice checked against its
  // frames. What depends on the tile alone: prepare()'s threads and the prefetcher's run it alike.
  std::unique_ptr<posed_tile> register_read_tile(std::size_t index, sim::gray_image image, const registration_options& ro,
                                                 workspace& ws);
  // A tile let go: its pose, for a reading of it again (register_read_tile).
  void keep_pose(const posed_tile& t);
  // Once polarity_ and the finder strength are known: the prefetcher registers what it reads.
  void start_registering_ahead();
  void index_tiles();
  // Tiles not held (nor unreadable) whose nominal footprint reaches [x_lo, x_hi] x [y_lo, y_hi]
  // (modules), ascending.
  std::vector<std::size_t> tiles_reaching(double x_lo, double x_hi, double y_lo, double y_hi) const;
  // Whether a tile not held (nor unreadable) may yet see part of the code at (x0, y0): one that
  // load_region would load for it (scan.json's place within registration's search radius).
  bool tile_may_come(double x0, double y0) const;
  // Asks the prefetcher for the tiles that the next prepare() calls will load: below y_hi, to y_end
  // at most, and as far into `then` (x_lo, x_hi, y_lo of its bounds) as the reach left allows.
  struct region_bounds {
    double x_lo, x_hi, y_lo, y_hi;  // modules
  };
  void read_tiles_ahead(double x_lo, double x_hi, double y_hi, double y_end, const region_bounds* then);

  scan_set set_;
  plate::manifest man_;
  plate::plate_geometry geo_;
  scan_read_options options_;
  unsigned threads_ = 1;
  double module_px_ = 0, search_modules_ = 0;
  std::uint32_t rows_per_prepare_ = 1;
  int polarity_ = 0;              // the scan's, once the first tiles showed it (registration_options)
  double footprint_modules_ = 0;  // the largest tile side read so far (modules), at least a first guess
  double tile_w_modules_ = 0, tile_h_modules_ = 0;  // the widest and tallest tile read so far (modules), 0 before any
  double bucket_nominal_ = 64;     // nominal_index_'s bucket side (modules)
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> nominal_index_;  // tiles by nominal position
  std::unordered_set<std::size_t> cached_, unreadable_;                       // tile indices
  std::vector<std::unique_ptr<posed_tile>> cache_;
  std::unordered_map<std::size_t, std::uint64_t> last_needed_;  // tile index -> the last prepare() whose region it reached
  std::uint64_t prepares_ = 0;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> index_;  // see index_tiles
  double bucket_ = 64;
  // Placed tiles' position errors (modules), of the last recent_offsets to 2 x recent_offsets
  // tiles placed: the stage error the next tiles are judged by, and the report's.
  std::vector<double> offsets_x_, offsets_y_;
  static constexpr std::size_t recent_offsets = 4096;
  std::vector<std::unique_ptr<workspace>> workspaces_;
  // register_ahead: workspaces for the prefetcher's threads' lattice checks, one per thread at a
  // time (taken and given back under spare_mutex_).
  std::vector<std::unique_ptr<workspace>> registrar_workspaces_;
  bool registering_ahead_ = false;
  // Evicted tiles' buffers (integral images, pixels), reused by the next loads.
  std::vector<std::vector<std::uint32_t>> spare_integrals_;
  std::vector<std::vector<std::uint16_t>> spare_pixels_;
  std::vector<host_array<std::uint8_t>> spare_bytes_;  // 8-bit files' bytes, once uploaded (cuda)
  host_array<std::uint8_t> take_spare_bytes();
  std::size_t spare_limit_ = 0;  // the most tiles one prepare() loaded
  std::unordered_map<std::uint64_t, cell_read> first_;  // batch_codes: first attempts of the prepared cells
  // read_ahead_rows: first attempts of cells below the prepared rows, and the tile each was read in.
  struct ahead_read {
    std::uint64_t row;
    std::uint32_t col;
    const posed_tile* tile;  // held: entries of a tile are erased when it is dropped; null: across
    cell_read read;
    std::vector<const posed_tile*> across;  // a code no tile held whole: the tiles it was read across
  };
  std::unordered_map<std::uint64_t, ahead_read> ahead_;
  std::uint64_t cache_generation_ = 0;  // counts changes of cache_ (loads, drops)
  // Rows [row1 of the last batch, ahead_until_) of columns [ahead_col0_, ahead_col1_) were looked
  // at for read-ahead under cache generation ahead_generation_.
  std::uint64_t ahead_until_ = 0, ahead_generation_ = ~std::uint64_t{0};
  std::uint32_t ahead_col0_ = 0, ahead_col1_ = 0;
  std::mutex spare_mutex_;
  scan_read_stats stats_;
  std::uint64_t dropped_host_integrals_ = 0;  // of tiles dropped from cache_ (scan_read_stats::tiles_host_integrals)
  std::unordered_set<std::size_t> prefetched_;  // tiles asked of prefetch_ and not dropped
  // The poses of tiles let go (keep_pose), the last max_kept_poses of them (~40 MB: two rows of
  // tiles across an A4 plate many times over), for registering none of them twice.
  std::mutex poses_mutex_;
  std::unordered_map<std::size_t, tile_pose> kept_poses_;
  std::deque<std::size_t> kept_order_;  // oldest first
  static constexpr std::size_t max_kept_poses = std::size_t{1} << 18;
  // overlap_batches: the batch of reads ahead in flight on batch_thread_ (null: none), the tiles
  // it reads (none of them is dropped before it is done), and the CPU's workspaces for it.
  std::unique_ptr<code_batch> background_;
  std::unordered_set<const posed_tile*> background_tiles_;
  std::vector<std::unique_ptr<workspace>> background_workspaces_;
  // The thread the batches run on with overlap_batches (with cuda, every batch: one GPU context),
  // lent by the process (util/lasting_threads.hpp); after the tiles and workspaces, so that it
  // finishes its job before they go.
  std::unique_ptr<host::lasting_background_thread> batch_thread_;
  // Last: its readers take spare buffers, so it goes (and joins them) before they do.
  std::unique_ptr<tile_prefetcher> prefetch_;
};

}  // namespace qrplate::scan
