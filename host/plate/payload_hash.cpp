#include "plate/payload_hash.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "io/read_only_file.hpp"
#include "qrplate/error.hpp"
#include "util/parallel_for.hpp"

namespace qrplate::plate {

sha256::sha256() : ctx_(EVP_MD_CTX_new())
{
  if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx_);
    throw std::runtime_error("SHA-256 init failed");
  }
}

sha256::~sha256() { EVP_MD_CTX_free(ctx_); }

void sha256::update(const std::uint8_t* p, std::size_t n)
{
  if (n && EVP_DigestUpdate(ctx_, p, n) != 1) throw std::runtime_error("SHA-256 update failed");
}

digest sha256::finish()
{
  digest out{};
  unsigned len = 0;
  if (EVP_DigestFinal_ex(ctx_, out.data(), &len) != 1 || len != out.size()) throw std::runtime_error("SHA-256 final failed");
  return out;
}

digest sha256_of(const std::uint8_t* p, std::size_t n)
{
  sha256 h;
  h.update(p, n);
  return h.finish();
}

sha256_tree::sha256_tree(std::uint64_t leaf_bytes, std::uint64_t payload_bytes)
    : leaves_(leaf_bytes ? payload_bytes / leaf_bytes + (payload_bytes % leaf_bytes != 0) : 0)
{
  if (leaf_bytes == 0) throw invalid_argument("sha256 tree: a leaf of 0 bytes");
  std::uint8_t head[4 + 1 + 8 + 8] = {'Q', 'R', 'P', 'T', 1};
  for (int i = 0; i < 8; ++i) {
    head[5 + i] = static_cast<std::uint8_t>(leaf_bytes >> (8 * i));
    head[13 + i] = static_cast<std::uint8_t>(payload_bytes >> (8 * i));
  }
  root_.update(head, sizeof head);
}

void sha256_tree::add_leaf(const digest& d)
{
  if (added_ == leaves_) throw std::logic_error("sha256 tree: more leaves than the payload has");
  root_.update(d.data(), d.size());
  ++added_;
}

digest sha256_tree::finish()
{
  if (added_ != leaves_) throw std::logic_error("sha256 tree: " + std::to_string(added_) + " of " +
                                                std::to_string(leaves_) + " leaves added");
  return root_.finish();
}

namespace {

constexpr std::size_t chunk_bytes = std::size_t{1} << 20;

// Feeds bytes [from, from + n) of the file to `h`, a chunk at a time (`progress` after each).
void hash_range(const host::read_only_file& f, const std::string& path, std::uint64_t from, std::uint64_t n, sha256& h,
                std::vector<std::uint8_t>& chunk, const hash_progress& progress = {})
{
  chunk.resize(chunk_bytes);
  while (n > 0) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(n, chunk.size()));
    const ssize_t got = ::pread(f.fd(), chunk.data(), want, static_cast<off_t>(from));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw io_error("cannot read " + path + ": " + std::strerror(errno));
    if (got == 0) throw io_error("cannot read " + path + ": it ends before the bytes to hash");
    h.update(chunk.data(), static_cast<std::size_t>(got));
    from += static_cast<std::uint64_t>(got);
    n -= static_cast<std::uint64_t>(got);
    if (progress) progress(from);
  }
}

}  // namespace

digest hash_file(const std::string& path, payload_hash_kind kind, std::uint64_t leaf_bytes, unsigned threads,
                 std::uint64_t bytes, const hash_progress& progress)
{
  const host::read_only_file f(path);
  if (bytes == whole_file) {
    struct stat st{};
    if (::fstat(f.fd(), &st) != 0) throw io_error("cannot stat " + path + ": " + std::strerror(errno));
    bytes = static_cast<std::uint64_t>(st.st_size);
  }
  if (kind == payload_hash_kind::sha256) {
    sha256 h;
    std::vector<std::uint8_t> chunk;
    hash_range(f, path, 0, bytes, h, chunk, progress);
    return h.finish();
  }
  sha256_tree tree(leaf_bytes, bytes);
  const unsigned n_threads = std::max(1u, threads ? threads : std::thread::hardware_concurrency());
  // Leaves in windows of a few per thread, added to the root in order: memory does not grow with
  // the payload, whatever the leaf size.
  const std::uint64_t window = 4ull * n_threads;
  std::vector<digest> leaves(static_cast<std::size_t>(std::min<std::uint64_t>(window, tree.leaves())));
  std::vector<std::vector<std::uint8_t>> chunks(n_threads);
  for (std::uint64_t first = 0; first < tree.leaves(); first += window) {
    const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(window, tree.leaves() - first));
    host::parallel_for(n_threads, count, [&](unsigned t, std::size_t i) {
      const std::uint64_t at = (first + i) * leaf_bytes;
      sha256 h;
      hash_range(f, path, at, std::min(leaf_bytes, bytes - at), h, chunks[t]);
      leaves[i] = h.finish();
    });
    for (std::size_t i = 0; i < count; ++i) tree.add_leaf(leaves[i]);
    if (progress) progress(std::min(bytes, (first + count) * leaf_bytes));
  }
  return tree.finish();
}

hash_progress_line::~hash_progress_line()
{
  if (shown_) std::fputc('\n', stderr);
}

hash_progress hash_progress_line::callback()
{
  return [this](std::uint64_t done) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(500) && done < total_) return;
    last_ = now;
    shown_ = true;
    const bool gb = total_ >= 10'000'000'000ull;
    const double unit = gb ? 1e9 : 1e6;
    std::fprintf(stderr, "\rqrplate: %s: %.1f of %.1f %s   ", label_.c_str(), static_cast<double>(done) / unit,
                 static_cast<double>(total_) / unit, gb ? "GB" : "MB");
    std::fflush(stderr);
  };
}

namespace {

constexpr std::uint64_t whole_block_bytes = std::uint64_t{4} << 20;      // SHA-256's hand-over unit
constexpr std::uint64_t max_streamed_leaves = std::uint64_t{1} << 22;    // 128 MiB of leaf digests

}  // namespace

streaming_digest::streaming_digest(payload_hash_kind kind, std::uint64_t leaf_bytes, std::uint64_t payload_bytes,
                                   unsigned threads)
    : block_bytes_(kind == payload_hash_kind::sha256 ? whole_block_bytes : leaf_bytes),
      payload_bytes_(payload_bytes)
{
  if (block_bytes_ == 0) throw invalid_argument("sha256 tree: a leaf of 0 bytes");
  unsigned workers = 1;
  if (kind == payload_hash_kind::sha256) {
    whole_ = std::make_unique<sha256>();
  } else {
    const std::uint64_t leaves = sha256_tree(block_bytes_, payload_bytes_).leaves();
    // Tiny leaves over a huge payload would need gigabytes of digests here: hash the file instead.
    if (leaves > max_streamed_leaves) {
      given_up_ = true;
      return;
    }
    leaves_.resize(static_cast<std::size_t>(leaves));
    workers = std::max(1u, threads ? threads : std::thread::hardware_concurrency());
  }
  max_queued_ = workers + 1;  // with one block a worker hashes and the one being filled: 2 x workers + 2 blocks at most
  try {
    for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { hash_blocks(); });
  } catch (...) {
    stop();
    throw;
  }
}

streaming_digest::~streaming_digest() { stop(); }

void streaming_digest::stop()
{
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_ = true;
  }
  changed_.notify_all();
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void streaming_digest::add(std::uint64_t offset, const std::uint8_t* p, std::size_t n)
{
  if (given_up_) return;
  if (offset != next_ || n > payload_bytes_ - next_) {
    given_up_ = true;
    return;
  }
  while (n > 0) {
    if (current_.capacity() < block_bytes_) {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!spares_.empty()) {
        current_ = std::move(spares_.back());
        spares_.pop_back();
        current_.clear();
      }
      lock.unlock();
      current_.reserve(static_cast<std::size_t>(block_bytes_));
    }
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, block_bytes_ - current_.size()));
    current_.insert(current_.end(), p, p + take);
    p += take;
    n -= take;
    next_ += take;
    if (current_.size() == block_bytes_) submit();
  }
}

void streaming_digest::submit()
{
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return queue_.size() < max_queued_ || error_; });
  queue_.emplace_back(blocks_submitted_++, std::move(current_));
  current_ = block();
  changed_.notify_all();
}

void streaming_digest::hash_blocks()
{
  for (;;) {
    std::pair<std::uint64_t, block> b;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return !queue_.empty() || closing_; });
      if (queue_.empty()) return;  // closing
      b = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
      changed_.notify_all();
    }
    try {
      if (whole_) whole_->update(b.second.data(), b.second.size());  // one thread: in order
      else leaves_[static_cast<std::size_t>(b.first)] = sha256_of(b.second.data(), b.second.size());
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    --busy_;
    spares_.push_back(std::move(b.second));
    changed_.notify_all();
  }
}

std::optional<digest> streaming_digest::finish()
{
  if (!given_up_ && next_ != payload_bytes_) given_up_ = true;  // bytes missing at the end
  if (!given_up_ && !current_.empty()) submit();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return (queue_.empty() && busy_ == 0) || error_; });
  }
  stop();
  if (error_) std::rethrow_exception(error_);
  if (given_up_) return std::nullopt;
  if (whole_) return whole_->finish();
  sha256_tree tree(block_bytes_, payload_bytes_);
  for (const digest& d : leaves_) tree.add_leaf(d);
  return tree.finish();
}

}  // namespace qrplate::plate
