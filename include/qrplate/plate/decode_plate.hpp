// Reading a plate back to the bytes (`qrplate decode`), from either
//  - a plate directory (plate.tif): the digital read path, one pixel per module, which verifies a
//    plate image before it is milled; or
//  - a scan set directory (scan.json + SEM tiles, `qrplate simulate` output or a microscope's):
//    tiles registered on the plate's code lattice, every code refined, sampled and decoded with
//    errors and erasures (host/scan/).
// Then, for both: every code's frame checked (CRC32C, plate tag), frames placed by index, missing
// data frames restored by the outer code group by group, and the payload checked against
// plate.json's SHA-256.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "qrplate/encode.hpp"
#include "qrplate/plate/manifest.hpp"

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
  // A file the caller writes the report to once the decode returns: only checked, before any
  // work, as out_file is (never an input, nor another output). Empty: none.
  std::string report;
  // The plate's plate.json (or its directory), for a scan set or one plate directory; empty: scan
  // sets take scan.json's "plate", else SCAN_DIR/plate.json; plate directories their plate.json.
  std::string plate_json;
  // Scan sets only.
  double search_um = 5.0;        // stage error searched around each tile's nominal position (radius)
  double max_rotation_deg = 1.5; // scan rotation searched, +-
  int erasure_threshold = 64;    // module confidence (0..255) below which a codeword may be erased; 0: no erasures
  // Where codes wholly inside one tile are read (core/read_code.hpp): cpu, cuda (registration's
  // passes over every pixel, and each code's anchor search and read, a batch per tile, on the
  // GPU, the codes no tile holds whole read across their tiles in a batch there too, and
  // registration's vote and anchor checks; its fitting and stitching stay on the host), or
  // automatic (cuda when a device exists). batch_codes: the CPU reads them in the same batches (what
  // the cuda backend does, for tests on machines without a GPU); same results either way.
  qrplate::backend backend = qrplate::backend::cpu;
  bool batch_codes = false;
  // Batches (cuda, batch_codes) also read the codes of up to this many rows below the rows being
  // read, where the tiles they need are already registered: one large GPU batch per band of tiles
  // instead of a small one per row of codes. Same results for any value. -1: 32 with cuda, else 0.
  int read_ahead_rows = -1;
  // Batches with reads ahead: those reads run on a background thread (cuda: the GPU reads) while
  // the host registers the next tiles, and are waited for at the next batch. Same results.
  // -1: with cuda, 0: never, 1: always (with batch_codes on the CPU too, for tests).
  int overlap_reads = -1;
  // Bytes of scan tiles kept in memory beyond those the rows being read need (least recently
  // needed dropped first), so that tiles on the edges of column strips and outer-code bands are
  // read and registered once. 0: memory is only the current rows' tiles.
  std::size_t tile_cache_bytes = std::size_t{1} << 30;
  // Bytes of tile images read and decoded ahead of the rows being read, by background threads
  // (as many as `threads`), while the codes of these rows are read. Same results. 0: off.
  std::size_t tile_prefetch_bytes = std::size_t{256} << 20;
  // tile_prefetch_bytes: once the first tiles settled the scan's polarity and finder strength,
  // those threads register the tiles they read ahead too (scan::scan_read_options::register_ahead),
  // so that the rows' own loading leaves only the placing against neighbours. Same results.
  bool register_ahead = true;
  // Width in scan pixels of the column strips the plate is read in (1,024..1,048,576): one strip's
  // rows of tiles are registered side by side, so a wider strip keeps more cores busy (large
  // tiles, many cores) and holds more tiles in memory. The registration order follows the strips,
  // so a marginal code may be read from another tile; not the number of threads.
  double strip_px = 8192;
  // Code rows of a strip prepared at once (its tiles loaded and registered, its codes batched)
  // when the strip is narrower than the plate's unit: 0 = as many as fit the step between the
  // scan's rows of tiles (scan.json), else 1..64. Like strip_px it sets the registration order.
  int prepare_rows = 0;
  // What follows a unit's reads (its frames by group, the outer code, the payload's bytes written,
  // the heatmap) runs on a background thread while the next unit's codes are read, one unit
  // behind; false: in place, the sweep waiting. Same results (units are finished in order).
  bool finish_units_in_background = true;
  // When not null and it turns non-zero (a signal's number, set by a handler), the decode stops at
  // its next group of code rows, removes its .partial file and throws qrplate::interrupted.
  const std::atomic<int>* interrupt = nullptr;
};
inline constexpr double min_strip_px = 1024, max_strip_px = 1048576;  // strip_px's range

struct plate_decode_result {
  std::uint64_t plates = 0;
  bool bootstrapped = false;        // manifest read from the header codes (no plate.json)
  std::uint64_t payload_bytes = 0;
  std::uint64_t codes = 0;          // code cells holding a frame
  std::uint64_t codes_clean = 0;
  std::uint64_t codes_corrected = 0;  // by the QR code's own Reed-Solomon
  std::uint64_t codes_erasure_assisted = 0;  // of the corrected: needed their low-confidence codewords erased
  std::uint64_t codes_unreadable = 0;
  std::uint64_t codes_not_scanned = 0;  // of the unreadable: no tile covered the code (scan sets)
  std::uint64_t rs_symbols_corrected = 0;  // codewords the codes' own Reed-Solomon changed, all codes together
  // Reed-Solomon budget left per decoded code (min over its blocks of d - p - (erasures + 2 errors)),
  // as a histogram: margin_histogram[i] codes had margin i (the last bin: that much or more).
  std::vector<std::uint64_t> margin_histogram;
  double median_snr = 0;  // scan sets: median over codes of (milled - film) / noise of the known modules
  // Scan sets: why the codes were unreadable. Of codes_unreadable, codes_not_scanned lay in no
  // tile; codes_partly_scanned partly in none (a missing tile, a gap the stage error opened: some
  // of their known modules were never sampled); codes_unreadable_no_contrast were wholly covered
  // but gave no brightness fit where the tiles' maps put them; codes_unreadable_sampled were
  // sampled whole and did not decode: noise when their median SNR is about the decoded codes',
  // a misplaced tile or damage when it is far below.
  std::uint64_t codes_partly_scanned = 0, codes_unreadable_no_contrast = 0, codes_unreadable_sampled = 0;
  double median_snr_unreadable = 0;  // over codes_unreadable_sampled
  bool scan = false;      // the input was a scan set
  std::uint64_t tiles = 0, tiles_unreadable = 0, tiles_unregistered = 0, lattice_corrections = 0;
  std::uint64_t tiles_stitched = 0;  // placed by their overlap with a neighbour (no finder of their own)
  // Tiles whose lattice position frames read in them confirmed, and those (not confirmed so) whose
  // pose a placed neighbour's overlap confirmed.
  std::uint64_t tiles_verified_by_frames = 0, tiles_confirmed_by_overlap = 0;
  // Scan sets: the stage's position error (sigma, nm; 0 when fewer than 5 tiles were placed by
  // their frames or a neighbour) and the overlap of neighbouring tiles scan.json plans (nm;
  // negative: gaps by design). When the error approaches the overlap, tiles leave gaps.
  double stage_sigma_nm = 0, planned_overlap_nm = 0;
  // Batches: codes read ahead of their row (read_ahead_rows) whose reading was used, and those read
  // again because a tile registered later held them deeper.
  std::uint64_t codes_read_ahead = 0, codes_read_ahead_again = 0;
  std::uint64_t codes_read_across = 0;  // batches: codes no tile holds whole, read across tiles (on the GPU with cuda)
  // Batches: codes not read ahead yet because a tile that may see them was not loaded (each time
  // a batch passed one over): they are read once every such tile is held.
  std::uint64_t codes_ahead_deferred = 0;
  // Code rows prepared at once (prepare_rows resolved; a band's where a strip held a unit whole),
  // the most over the units.
  std::uint32_t rows_per_prepare = 0;
  // overlap_reads: codes read ahead in the background while tiles were registered; background
  // batches waited for early (a tile they read was to be dropped); and the seconds the decode
  // waited for background batches (near 0: the registration hid the reads).
  std::uint64_t codes_read_in_background = 0, background_waits_for_drops = 0;
  double seconds_waiting_for_background = 0;
  std::uint64_t tiles_host_integrals = 0;  // cuda: tiles whose integral image a CPU path needed (built on the host)
  // cuda: tile samples sent to the GPU for registration, and the bytes that took (1 a sample for
  // 8-bit scans, 2 for 16-bit ones).
  std::uint64_t tile_samples_uploaded = 0, tile_bytes_uploaded = 0;
  // cuda: of those samples, the ones sent as an 8-bit TIFF tile's file held them (not narrowed
  // from 16-bit samples on the host).
  std::uint64_t tile_samples_uploaded_as_read = 0;
  // cuda: of tile_bytes_uploaded, those the host copied into pinned staging buffers first; the
  // rest went by DMA straight from the (pinned) buffers the 8-bit files were read into.
  std::uint64_t tile_bytes_staged = 0;
  std::uint64_t tile_reads = 0;
  std::uint64_t tile_reads_ahead = 0;  // of them, read ahead by the background readers (tile_prefetch_bytes)
  std::uint64_t tile_registrations_ahead = 0;  // of those, registered by them too (register_ahead)
  std::uint64_t tile_reads_ahead_unused = 0;  // read (and registered) ahead, then let go untaken: wasted
  // Tiles read again (on a strip's or band's edge, let go when the tile cache was full) that took
  // the pose their first reading found: neither registered nor placed again.
  std::uint64_t tile_reads_pose_kept = 0;
  std::uint64_t max_tiles_in_memory = 0;  // tiles held at once: one column strip's rows, plus the tile cache
  // The first few unreadable tiles, "path: reason": a scan set's tile images, or the TIFF tiles of
  // a plate image that failed to decode (their cells count as unreadable).
  std::vector<std::string> tile_errors;
  std::uint64_t frames_rejected = 0;  // decoded, but CRC or plate tag wrong
  std::uint64_t data_frames = 0;
  std::uint64_t recovered_by_outer = 0;
  std::uint64_t lost_frames = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> lost_ranges;  // payload byte ranges [begin, end)
  // Plates of the payload (1-based numbers) not among those given: their shares are in lost_ranges.
  std::vector<std::uint32_t> plates_missing;
  // Frames whose CRC held but whose plate tag is not the manifest's: scans of another plate, or
  // another plate's manifest (counted in frames_rejected too).
  std::uint64_t frames_of_another_plate = 0;
  // The payload's digest from plate.json (SHA-256, or the SHA-256 tree's root) checked against the
  // bytes written: not when the payload is incomplete or no plate.json was found.
  payload_hash_kind payload_hash = payload_hash_kind::sha256;
  bool digest_checked = false;
  bool digest_ok = false;
  // The check read the output file back (the bytes were not written in payload order, e.g. plates
  // given out of order): otherwise they were hashed as they were written.
  bool digest_read_back = false;
  bool complete = false;  // every byte recovered (and the digest matches when known)
  // The heatmap could not be written ("path: reason"): the decode went on, the payload unharmed.
  std::string heatmap_error;
  double seconds = 0;
  // Where the seconds went (wall clock; stages run one after another, each on every thread):
  // scan sets' tiles (reading the files not read ahead, registering, placing), the batched first
  // reads of codes wholly inside a tile (--backend cuda: the GPU's part), the code cells (each
  // cell's remaining reads and its frame), the frames (seconds_frames below); the rest (setting
  // up, the SHA-256 check) is seconds minus these.
  double seconds_tiles = 0, seconds_code_batches = 0, seconds_cells = 0;
  // Of seconds_tiles: loading (taking the tiles read ahead, reading and registering the others)
  // and placing them (polarity, stitching, whole-pitch moves, bookkeeping); the rest, dropping.
  double seconds_loading_tiles = 0, seconds_placing_tiles = 0;
  // Frames: what the sweep waited for of finishing its units (frames by group, outer code,
  // writing the payload); in seconds_finishing_units, all of that work, which with
  // finish_units_in_background runs beside the next unit's reads.
  double seconds_frames = 0, seconds_finishing_units = 0;
  double seconds_rest() const
  {
    const double rest = seconds - seconds_tiles - seconds_code_batches - seconds_cells - seconds_frames;
    return rest > 0 ? rest : 0;
  }
};

// Throws qrplate::invalid_argument when `output` (`what`: the option, for the message) is "-", a
// directory, a device or pipe, lies in a directory that does not exist, or is one of `inputs`.
void check_output_path(const std::string& output, const std::vector<std::string>& inputs, const std::string& what);

// Decodes PLATE_DIR (one plate, or plate-NNNN subdirectories) or a scan set into out_file, written under a
// temporary name and renamed only when the payload is complete; when it is not, the partial
// file is kept as out_file + ".partial" and the result says which byte ranges are lost.
// Throws qrplate::io_error / invalid_argument for unreadable or inconsistent input, plates of
// different payloads, and outputs (out_file, its .partial file, the heatmaps, options.report)
// that check_output_path refuses, that are a tile of the scan set, or that name one file twice,
// all checked before any work. Plates of the payload not given (a multi-plate payload's plate-NNNN missing) make the
// result incomplete, their shares lost byte ranges. options.plate_json: one plate's manifest (a
// plate.json or its directory) for a scan set or a single plate directory.
plate_decode_result decode_plates(const std::string& plate_dir, const std::string& out_file,
                                  const plate_decode_options& options);

}  // namespace qrplate::plate
