// Read-ahead of scan tile images: background threads decode the files of tiles the scan reader
// will need soon, so that a band's prepare() takes the decoded image instead of inflating the
// file at the moment it needs it; once the reader gives them the means (register_with), they
// register the tiles too (those they read before it included), so that prepare() finds them
// registered. Only when a file is decoded
// and a tile registered changes, not what comes of it, so decode results cannot change. Memory
// is bounded by a byte budget over tiles held and being read.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "scan/tile_registration.hpp"
#include "sim/scan_io.hpp"
#include "util/lasting_threads.hpp"

namespace qrplate::scan {

struct tile_prefetch_stats {
  std::uint64_t requested = 0;     // tiles queued by request()
  std::uint64_t taken = 0;         // take() hits: images a reader had read (or was reading)
  std::uint64_t read_inline = 0;   // take() of a tile still queued: the caller read it
  std::uint64_t missed = 0;        // take() of a tile never requested, already taken, cancelled or dropped
  std::uint64_t cancelled = 0;     // queued tiles forgotten before a read started (cancel_queued, drop)
  std::uint64_t dropped = 0;       // tiles forgotten after their read started (drop, drop_all)
  std::uint64_t failed = 0;        // reads that threw, by readers or inline
  std::uint64_t registered = 0;    // tiles the readers registered (register_with), taken or not
  std::uint64_t registered_held = 0;  // of them: tiles read before register_with, registered after
  std::size_t bytes_held = 0;      // bytes of decoded images waiting to be taken, now
  std::size_t max_bytes_held = 0;  // the most of them at once
};

// What a reader made of a tile: its image, or the tile registered from it (register_with).
struct prefetched_tile {
  sim::gray_image image;               // read, not registered (empty when `registered` is set)
  std::unique_ptr<posed_tile> registered;  // read and registered by the readers
  // The registration threw (`image` is then gone): the caller rethrows it where a registration
  // of its own would have thrown, rather than take it for an unreadable file.
  std::exception_ptr registration_error;
};

// Registers a tile the readers read: tile `index` of the scan set, its image. Called on the
// readers' threads, concurrently; a throw becomes prefetched_tile::registration_error.
using tile_registrar = std::function<std::unique_ptr<posed_tile>(std::size_t index, sim::gray_image image)>;

// Thread-safe: every member but the destructor may be called from any thread concurrently.
class tile_prefetcher {
 public:
  // `threads` background readers (0: none: request() is a no-op and every take() misses), lent by
  // the process's lasting threads (a registration's GPU passes stay with the thread that ran them:
  // util/lasting_threads.hpp). At most budget_bytes of tiles are held or being read at once,
  // counting an image as pixels.size() * 2 bytes (a registered tile: and its host integral image);
  // a read in flight counts as the largest image the readers decoded so far (2 MiB, a
  // 1024 x 1024 16-bit tile, before the first), so only an image larger than all before it can
  // pass the budget, by the difference. A reader starts the next tile only while it fits, or
  // when nothing is held or in flight: a budget below one tile still reads one at a time. Held
  // images keep their budget until taken or dropped, so tiles that will not be taken must be
  // dropped, or the read-ahead stalls (take() still works: it reads queued tiles itself).
  // `spare` (may be empty) gives a recycled pixel buffer for read_gray_image(path, storage); it is
  // called from the readers and from take(), concurrently, so it must be thread-safe.
  // keep_bytes: read_gray_image's (8-bit TIFF tiles keep their bytes too, for a GPU upload; an
  // image counts pixels.size() * 2 + bytes.size() bytes); `spare_bytes` (may be empty) gives the
  // recycled buffers for those, called as `spare` is.
  tile_prefetcher(unsigned threads, std::size_t budget_bytes, std::function<std::vector<std::uint16_t>()> spare = {},
                  bool keep_bytes = false, std::function<host_array<std::uint8_t>()> spare_bytes = {});
  // Stops and joins the readers, each after the read it is in; queued tiles are never read.
  ~tile_prefetcher();
  tile_prefetcher(const tile_prefetcher&) = delete;
  tile_prefetcher& operator=(const tile_prefetcher&) = delete;

  // Queues tile `index` (image `file`); readers start tiles in request order. Ignored when the
  // tile is already queued, being read, held or failed (its error waits to be taken).
  void request(std::size_t index, const std::string& file);
  // From now on each tile a reader reads is registered by `registrar` once read, those being read
  // now included; the readers register the tiles already held too (before they start new reads,
  // in request order), and a take() of one not yet started gives its image unregistered. Set it
  // once the registration of a tile no longer depends on which tiles came before it. Only the
  // first call counts: the registrar cannot change, so no tile is registered two ways.
  void register_with(tile_registrar registrar);
  // The image of tile `index` if it was requested, and forgets the tile (a second take() misses):
  //  - held: returned at once; being read or registered: waits for the reader;
  //  - still queued: read by the calling thread (it leaves the queue), so a take() never waits
  //    for the budget or for the readers to reach it;
  //  - failed: rethrows the read's exception (qrplate::io_error with read_gray_image's message);
  //  - never requested, cancelled or dropped: std::nullopt; the caller reads the file itself.
  std::optional<sim::gray_image> take(std::size_t index);
  // As take(), but a tile the readers registered comes registered (take() gives its image alone).
  // A tile take_tile() reads itself (still queued) comes unregistered.
  std::optional<prefetched_tile> take_tile(std::size_t index);
  // Forgets the queued tiles no reader has started; tiles being read or held stay.
  void cancel_queued();
  // Forgets tile `index` (drop) or every tile (drop_all), whatever its state, and frees its budget;
  // a tile being read is discarded when its read ends.
  void drop(std::size_t index);
  void drop_all();

  tile_prefetch_stats stats() const;

 private:
  // reading: a reader is reading the file, or registering the image it held (register_with).
  enum class tile_state { queued, reading, held, failed };
  struct tile {
    tile_state state = tile_state::queued;
    std::string file;
    std::uint64_t order = 0;                     // request order
    std::list<std::size_t>::iterator queued_at;  // in queue_, while queued
    bool awaiting_registration = false;          // held: its image is in to_register_, at:
    std::list<std::size_t>::iterator register_at;
    std::size_t reserved = 0;                    // reading: bytes counted in flight
    bool dropped = false;                        // reading: forget it when the read ends
    prefetched_tile held;                        // held
    std::exception_ptr error;                    // failed
  };

  void run_reader();
  // A reader's work on one tile once mutex_ is released: read its `file` and register the image
  // if a registrar is set by then, or (file empty) register the held `image`.
  prefetched_tile work_on(std::size_t index, const std::string& file, sim::gray_image image, std::exception_ptr& error);
  void stop();  // stops and joins the readers
  // True when a reader may start the front of the queue (see the constructor).
  bool front_fits() const;
  std::size_t estimate() const;
  sim::gray_image read(const std::string& file) const;
  // What a held tile counts against the budget.
  static std::size_t held_bytes(const prefetched_tile& t);
  // Forgets one tile; the caller holds mutex_.
  void forget(std::unordered_map<std::size_t, tile>::iterator it);

  const std::size_t budget_;
  const std::function<std::vector<std::uint16_t>()> spare_;
  const bool keep_bytes_;
  const std::function<host_array<std::uint8_t>()> spare_bytes_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;  // readers: a request, freed budget, or stop
  std::condition_variable done_cv_;  // take(): a read ended or a tile being read was dropped
  std::unordered_map<std::size_t, tile> tiles_;
  std::list<std::size_t> queue_;  // queued tile indices, oldest first
  std::list<std::size_t> to_register_;  // held tiles read before register_with, oldest first
  std::uint64_t next_order_ = 0;
  std::size_t held_bytes_ = 0, in_flight_bytes_ = 0;
  std::size_t largest_bytes_ = 0;  // the largest tile the readers held so far
  bool stopping_ = false;
  tile_registrar registrar_;  // empty: the readers only read
  tile_prefetch_stats stats_;
  std::vector<std::unique_ptr<host::lasting_background_thread>> readers_;
};

}  // namespace qrplate::scan
