// The plate encoder's input: the payload read ahead and hashed (plate/payload_hash.hpp) on
// threads of their own.
#pragma once

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "plate/payload_hash.hpp"
#include "qrplate/error.hpp"

namespace qrplate::plate {

inline constexpr std::size_t payload_block_bytes = std::size_t{4} << 20;  // read and hashed at a time
inline constexpr std::size_t payload_blocks_ahead = 2;                    // waiting for each stage
static_assert(payload_block_bytes == default_tree_leaf_bytes, "a block is a leaf of the SHA-256 tree");
// What the reader holds at most: the blocks waiting for the hashers and for the consumer, the
// ones being read, hashed (one a hashing thread) and handed out (blocks are recycled, so no more
// are ever made).
inline double payload_read_ahead_bytes(unsigned hash_threads)
{
  return (2 * payload_blocks_ahead + std::max(1u, hash_threads) + 2) * static_cast<double>(payload_block_bytes);
}

// Sequential reader of the payload's `size` bytes, in stages on threads of their own: one reads
// blocks ahead, hashing threads hash them, and read() hands them out in order as soon as they are
// hashed. SHA-256 cannot be split: one thread hashes the blocks in order (~0.6-0.8 s a GB here,
// the plate encoder's serial floor, docs/PERFORMANCE.md). For the SHA-256 tree each block is a
// leaf, hashed by any of `hash_threads` threads, and read() adds the leaves' digests to the root
// in order. Blocks are recycled (no fresh pages to fault in a block).
class payload_reader {
 public:
  // Reads `size` bytes of `path`, blocks of `block_bytes` (the tree's leaf size), at most `depth`
  // waiting for each of the hashers and the consumer.
  payload_reader(const std::string& path, std::uint64_t size, payload_hash_kind kind = payload_hash_kind::sha256,
                 unsigned hash_threads = 1, std::size_t block_bytes = payload_block_bytes,
                 std::size_t depth = payload_blocks_ahead)
      : path_(path), size_(size), kind_(kind), block_bytes_(std::max<std::size_t>(1, block_bytes)),
        depth_(std::max<std::size_t>(1, depth)),
        hashers_(kind == payload_hash_kind::sha256 ? 1 : std::max(1u, hash_threads))
  {
    if (kind_ == payload_hash_kind::sha256) whole_ = std::make_unique<sha256>();
    else tree_ = std::make_unique<sha256_tree>(block_bytes_, size_);
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) throw io_error("cannot open " + path + ": " + std::strerror(errno));
    try {
      reader_ = std::thread([this] { read_ahead(); });
      for (unsigned i = 0; i < hashers_; ++i) hashing_threads_.emplace_back([this] { hash_ahead(); });
    } catch (...) {
      stop();
      throw;
    }
  }
  ~payload_reader() { stop(); }
  payload_reader(const payload_reader&) = delete;
  payload_reader& operator=(const payload_reader&) = delete;

  // The next n bytes. Throws qrplate::io_error when the file cannot be read or ends early.
  void read(std::uint8_t* out, std::size_t n)
  {
    while (n > 0) {
      if (at_ == current_.size()) next_block();
      const std::size_t take = std::min(n, current_.size() - at_);
      std::memcpy(out, current_.data() + at_, take);
      at_ += take;
      out += take;
      n -= take;
    }
  }

  // Waits until every byte has been read and hashed, and returns the payload's digest (of the
  // kind given). Throws qrplate::io_error for a read error, std::logic_error when bytes are left
  // unread.
  digest finish()
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return hashed_all_ || error_ || stalled(); });
    if (error_) std::rethrow_exception(error_);
    if (!hashed_all_ || !hashed_.empty() || at_ != current_.size()) throw std::logic_error("the payload was not read to its end");
    return whole_ ? whole_->finish() : tree_->finish();
  }

 private:
  using block = std::vector<std::uint8_t>;
  struct hashed_block {
    block bytes;
    digest leaf{};  // the tree's
  };

  // Blocks hashed or being hashed, not yet handed out: the hashers take no more than this.
  std::size_t hashed_capacity() const { return depth_ + hashers_; }
  // Nothing can move until read() takes a block: the read-ahead is full.
  bool stalled() const { return hashing_ == 0 && hashed_.size() >= hashed_capacity(); }

  void stop()
  {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    changed_.notify_all();
    if (reader_.joinable()) reader_.join();
    for (std::thread& t : hashing_threads_)
      if (t.joinable()) t.join();
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }

  void next_block()
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return hashed_.count(next_out_) || error_ || hashed_all_; });
    const auto next = hashed_.find(next_out_);
    if (next == hashed_.end()) {
      if (error_) std::rethrow_exception(error_);
      throw io_error("cannot read " + path_ + ": read past its " + std::to_string(size_) + " bytes");
    }
    if (current_.capacity() > 0) spares_.push_back(std::move(current_));
    current_ = std::move(next->second.bytes);
    if (tree_) tree_->add_leaf(next->second.leaf);  // in order, whichever thread hashed it
    hashed_.erase(next);
    ++next_out_;
    at_ = 0;
    changed_.notify_all();
  }

  // Stage 1: blocks from the file, into read_.
  void read_ahead()
  {
    try {
      for (std::uint64_t done = 0; done < size_;) {
        block b;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          changed_.wait(lock, [&] { return read_.size() < depth_ || closing_; });
          if (closing_) return;
          if (!spares_.empty()) {
            b = std::move(spares_.back());
            spares_.pop_back();
          }
        }
        b.resize(static_cast<std::size_t>(std::min<std::uint64_t>(block_bytes_, size_ - done)));
        if (std::fread(b.data(), 1, b.size(), file_) != b.size())
          throw io_error("cannot read " + path_ + ": " + (std::ferror(file_) ? std::strerror(errno) : "file shrank while reading"));
        done += b.size();
        std::lock_guard<std::mutex> lock(mutex_);
        read_.emplace_back(read_count_++, std::move(b));
        changed_.notify_all();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      read_all_ = true;
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
    changed_.notify_all();
  }

  // Stage 2: blocks of read_ hashed, into hashed_ by their place in the file. SHA-256 has one
  // such thread, which takes and hashes the blocks in order; the tree's leaves may finish in any.
  void hash_ahead()
  {
    try {
      for (;;) {
        std::pair<std::uint64_t, block> b;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          changed_.wait(lock, [&] {
            return (!read_.empty() && hashing_ + hashed_.size() < hashed_capacity()) || (read_.empty() && read_all_) ||
                   error_ || closing_;
          });
          if (closing_ || (read_.empty() && error_)) return;
          if (read_.empty()) {  // read_all_
            if (++hashers_done_ == hashers_) hashed_all_ = true;
            break;
          }
          b = std::move(read_.front());
          read_.pop_front();
          ++hashing_;
          changed_.notify_all();
        }
        hashed_block h;
        if (whole_) whole_->update(b.second.data(), b.second.size());
        else h.leaf = sha256_of(b.second.data(), b.second.size());
        h.bytes = std::move(b.second);
        std::lock_guard<std::mutex> lock(mutex_);
        --hashing_;
        hashed_.emplace(b.first, std::move(h));
        changed_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
    changed_.notify_all();
  }

  std::string path_;
  std::uint64_t size_;
  payload_hash_kind kind_;
  std::size_t block_bytes_, depth_;
  unsigned hashers_;
  std::unique_ptr<sha256> whole_;      // sha256: fed in order by the one hashing thread
  std::unique_ptr<sha256_tree> tree_;  // sha256_tree: the leaves' digests, added by read() in order
  std::FILE* file_ = nullptr;
  block current_;  // the consumer's, outside the lock
  std::size_t at_ = 0;
  std::uint64_t next_out_ = 0;  // the place of the block read() takes next
  std::mutex mutex_;
  std::condition_variable changed_;                      // any of the below changed
  std::deque<std::pair<std::uint64_t, block>> read_;     // read (with their places), waiting for a hasher
  std::map<std::uint64_t, hashed_block> hashed_;         // hashed, waiting for read()
  std::vector<block> spares_;                            // handed out, for the reader to refill
  std::uint64_t read_count_ = 0;                         // blocks read so far
  std::size_t hashing_ = 0;                              // blocks a hasher holds
  unsigned hashers_done_ = 0;
  bool read_all_ = false, hashed_all_ = false, closing_ = false;
  std::exception_ptr error_;
  std::thread reader_;
  std::vector<std::thread> hashing_threads_;
};

}  // namespace qrplate::plate
