#include "scan/tile_prefetch.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

namespace qrplate::scan {

namespace {

// What a read is assumed to hold before any image has been decoded: a 1024 x 1024 16-bit tile.
constexpr std::size_t first_estimate_bytes = std::size_t{2} << 20;

std::size_t image_bytes(const sim::gray_image& img)
{
  return img.pixels.size() * sizeof(std::uint16_t) + img.bytes.size();
}

}  // namespace

std::size_t tile_prefetcher::held_bytes(const prefetched_tile& t)
{
  if (!t.registered) return image_bytes(t.image);
  return image_bytes(t.registered->image) + t.registered->integral.size() * sizeof(std::uint32_t);
}

tile_prefetcher::tile_prefetcher(unsigned threads, std::size_t budget_bytes,
                                 std::function<std::vector<std::uint16_t>()> spare, bool keep_bytes,
                                 std::function<host_array<std::uint8_t>()> spare_bytes)
    : budget_(budget_bytes), spare_(std::move(spare)), keep_bytes_(keep_bytes), spare_bytes_(std::move(spare_bytes))
{
  try {
    for (unsigned t = 0; t < threads; ++t) {
      readers_.push_back(std::make_unique<host::lasting_background_thread>());
      readers_.back()->start([this] { run_reader(); });
    }
  } catch (...) {
    // No destructor runs after a throwing constructor: the readers already started stop here.
    stop();
    throw;
  }
}

tile_prefetcher::~tile_prefetcher()
{
  stop();
}

void tile_prefetcher::stop()
{
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  readers_.clear();  // each waits for its reader's loop to end
}

std::size_t tile_prefetcher::estimate() const
{
  return largest_bytes_ ? largest_bytes_ : first_estimate_bytes;
}

bool tile_prefetcher::front_fits() const
{
  // With nothing held or in flight any tile may start, so a budget below one tile still
  // progresses, one tile at a time.
  return held_bytes_ + in_flight_bytes_ + estimate() <= budget_ || (held_bytes_ == 0 && in_flight_bytes_ == 0);
}

sim::gray_image tile_prefetcher::read(const std::string& file) const
{
  return sim::read_gray_image(file, spare_ ? spare_() : std::vector<std::uint16_t>{}, keep_bytes_,
                              keep_bytes_ && spare_bytes_ ? spare_bytes_() : host_array<std::uint8_t>());
}

void tile_prefetcher::run_reader()
{
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stopping_ || !to_register_.empty() || (!queue_.empty() && front_fits()); });
    if (stopping_) return;
    // Held tiles waiting for their registration first: they were asked for before any queued.
    const bool registering = !to_register_.empty();
    std::list<std::size_t>& from = registering ? to_register_ : queue_;
    const std::size_t index = from.front();
    from.pop_front();
    tile& t = tiles_.at(index);
    sim::gray_image image;
    if (registering) {
      // Its bytes move from held to in flight until the registered tile is held again.
      t.awaiting_registration = false;
      t.reserved = held_bytes(t.held);
      held_bytes_ -= t.reserved;
      image = std::move(t.held.image);
      t.held = prefetched_tile();
    } else {
      t.reserved = estimate();
    }
    t.state = tile_state::reading;
    in_flight_bytes_ += t.reserved;
    const std::size_t reserved = t.reserved;
    const std::string file = t.file;
    lock.unlock();
    std::exception_ptr error;
    prefetched_tile got = work_on(index, registering ? std::string() : file, std::move(image), error);
    lock.lock();
    if (got.registered) {
      ++stats_.registered;
      if (registering) ++stats_.registered_held;
    }
    in_flight_bytes_ -= reserved;
    // Only this reader erases a tile being read (drop() marks it), so it is still there.
    const auto it = tiles_.find(index);
    if (it->second.dropped) {
      ++stats_.dropped;
      tiles_.erase(it);
    } else if (error) {
      it->second.state = tile_state::failed;
      it->second.error = error;
      ++stats_.failed;
    } else {
      const std::size_t bytes = held_bytes(got);
      largest_bytes_ = std::max(largest_bytes_, bytes);
      held_bytes_ += bytes;
      stats_.max_bytes_held = std::max(stats_.max_bytes_held, held_bytes_);
      it->second.state = tile_state::held;
      it->second.held = std::move(got);
      if (!it->second.held.registered && !it->second.held.registration_error && registrar_) {
        // register_with came while the file was being read, after this reader looked: register
        // it next rather than hand out an image the registrar was meant to see.
        it->second.awaiting_registration = true;
        it->second.register_at = to_register_.insert(to_register_.end(), index);
      }
    }
    done_cv_.notify_all();
    // The estimate reserved may be more than the image now held, or nothing is held at all.
    work_cv_.notify_all();
  }
}

prefetched_tile tile_prefetcher::work_on(std::size_t index, const std::string& file, sim::gray_image image,
                                         std::exception_ptr& error)
{
  prefetched_tile got;
  if (!file.empty()) {
    try {
      image = read(file);
    } catch (...) {
      error = std::current_exception();
      return got;
    }
  }
  tile_registrar registrar;
  {
    // Looked at after the read: a register_with during it still registers this tile.
    std::lock_guard<std::mutex> lock(mutex_);
    registrar = registrar_;
  }
  if (!registrar) {
    got.image = std::move(image);
    return got;
  }
  try {
    got.registered = registrar(index, std::move(image));
  } catch (...) {
    got.registration_error = std::current_exception();
  }
  return got;
}

void tile_prefetcher::request(std::size_t index, const std::string& file)
{
  if (readers_.empty()) return;  // nobody would read it: take() misses and the caller reads the file
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto [it, inserted] = tiles_.try_emplace(index);
    if (!inserted) {
      // Dropped while being read and wanted again: the read under way serves it (still one
      // request in the stats).
      it->second.dropped = false;
      return;
    }
    it->second.file = file;
    it->second.order = next_order_++;
    it->second.queued_at = queue_.insert(queue_.end(), index);
    ++stats_.requested;
  }
  work_cv_.notify_one();  // readers are alike: one of them can start it, or none can yet
}

void tile_prefetcher::register_with(tile_registrar registrar)
{
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (registrar_ || !registrar) return;
    registrar_ = std::move(registrar);
    // The images held now were read before it: the readers register them, in request order.
    std::vector<std::pair<std::uint64_t, std::size_t>> held;
    for (const auto& [index, t] : tiles_)
      if (t.state == tile_state::held && !t.held.registered && !t.held.registration_error) held.emplace_back(t.order, index);
    std::sort(held.begin(), held.end());
    for (const auto& [order, index] : held) {
      tile& t = tiles_.at(index);
      t.awaiting_registration = true;
      t.register_at = to_register_.insert(to_register_.end(), index);
    }
  }
  work_cv_.notify_all();
}

std::optional<sim::gray_image> tile_prefetcher::take(std::size_t index)
{
  std::optional<prefetched_tile> t = take_tile(index);
  if (!t) return std::nullopt;
  if (t->registration_error) std::rethrow_exception(t->registration_error);
  if (t->registered) return std::move(t->registered->image);
  return std::move(t->image);
}

std::optional<prefetched_tile> tile_prefetcher::take_tile(std::size_t index)
{
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = tiles_.end();
  done_cv_.wait(lock, [&] {
    it = tiles_.find(index);
    return it == tiles_.end() || it->second.state != tile_state::reading || it->second.dropped;
  });
  if (it == tiles_.end() || it->second.dropped) {
    ++stats_.missed;
    return std::nullopt;
  }
  tile& t = it->second;
  if (t.state == tile_state::queued) {
    // Read here rather than wait: the budget may be full of tiles only this caller will free,
    // and the caller would otherwise sit idle while the readers reach the tile.
    const std::string file = std::move(t.file);
    queue_.erase(t.queued_at);
    tiles_.erase(it);
    ++stats_.read_inline;
    lock.unlock();
    try {
      prefetched_tile got;
      got.image = read(file);
      return got;
    } catch (...) {
      std::lock_guard<std::mutex> relock(mutex_);
      ++stats_.failed;
      throw;
    }
  }
  if (t.state == tile_state::failed) {
    const std::exception_ptr error = t.error;
    tiles_.erase(it);
    lock.unlock();
    std::rethrow_exception(error);
  }
  if (t.awaiting_registration) to_register_.erase(t.register_at);  // the caller registers it
  prefetched_tile got = std::move(t.held);
  held_bytes_ -= held_bytes(got);
  tiles_.erase(it);
  ++stats_.taken;
  lock.unlock();
  work_cv_.notify_all();
  return got;
}

void tile_prefetcher::cancel_queued()
{
  std::lock_guard<std::mutex> lock(mutex_);
  for (std::size_t index : queue_) tiles_.erase(index);
  stats_.cancelled += queue_.size();
  queue_.clear();
}

void tile_prefetcher::forget(std::unordered_map<std::size_t, tile>::iterator it)
{
  tile& t = it->second;
  switch (t.state) {
    case tile_state::queued:
      queue_.erase(t.queued_at);
      ++stats_.cancelled;
      tiles_.erase(it);
      return;
    case tile_state::reading:
      t.dropped = true;  // its reader counts and erases it
      return;
    case tile_state::held:
      if (t.awaiting_registration) to_register_.erase(t.register_at);
      held_bytes_ -= held_bytes(t.held);
      ++stats_.dropped;
      tiles_.erase(it);
      return;
    case tile_state::failed:
      ++stats_.dropped;
      tiles_.erase(it);
      return;
  }
}

void tile_prefetcher::drop(std::size_t index)
{
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = tiles_.find(index);
    if (it == tiles_.end()) return;
    forget(it);
  }
  work_cv_.notify_all();
  done_cv_.notify_all();  // a take() waiting for this tile's read misses now
}

void tile_prefetcher::drop_all()
{
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = tiles_.begin(); it != tiles_.end();) forget(std::exchange(it, std::next(it)));
  }
  work_cv_.notify_all();
  done_cv_.notify_all();
}

tile_prefetch_stats tile_prefetcher::stats() const
{
  std::lock_guard<std::mutex> lock(mutex_);
  tile_prefetch_stats s = stats_;
  s.bytes_held = held_bytes_;
  return s;
}

}  // namespace qrplate::scan
