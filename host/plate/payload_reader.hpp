// The plate encoder's input: the payload read ahead and hashed (SHA-256) on a thread of its own.
#pragma once

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "qrplate/error.hpp"

namespace qrplate::plate {

inline constexpr std::size_t payload_block_bytes = std::size_t{4} << 20;  // read and hashed at a time
inline constexpr std::size_t payload_blocks_ahead = 2;                    // waiting for each stage
// What the reader holds at most: the blocks waiting for the hasher and for the consumer, the ones
// being read, hashed and handed out (blocks are recycled, so no more are ever made).
inline constexpr double payload_read_ahead_bytes = (2 * payload_blocks_ahead + 3) * static_cast<double>(payload_block_bytes);

// Streaming SHA-256 (OpenSSL EVP).
class sha256 {
 public:
  sha256() : ctx_(EVP_MD_CTX_new())
  {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) throw std::runtime_error("SHA-256 init failed");
  }
  ~sha256() { EVP_MD_CTX_free(ctx_); }
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  void update(const std::uint8_t* p, std::size_t n)
  {
    if (n && EVP_DigestUpdate(ctx_, p, n) != 1) throw std::runtime_error("SHA-256 update failed");
  }
  std::array<std::uint8_t, 32> finish()
  {
    std::array<std::uint8_t, 32> out{};
    unsigned len = 0;
    if (EVP_DigestFinal_ex(ctx_, out.data(), &len) != 1 || len != 32) throw std::runtime_error("SHA-256 final failed");
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Sequential reader of the payload's `size` bytes, in three stages on their own threads: one reads
// blocks ahead, one hashes them in order (SHA-256 cannot be split: ~0.6-0.8 s a GB on one core
// here, the plate encoder's serial floor, docs/PERFORMANCE.md), and read() hands them out in order
// as soon as they are hashed. Blocks are recycled (no fresh pages to fault in a block).
class payload_reader {
 public:
  // Reads `size` bytes of `path`, blocks of `block_bytes`, at most `depth` waiting for each of the
  // hasher and the consumer.
  payload_reader(const std::string& path, std::uint64_t size, sha256& hash, std::size_t block_bytes = payload_block_bytes,
                 std::size_t depth = payload_blocks_ahead)
      : path_(path), size_(size), hash_(hash), block_bytes_(std::max<std::size_t>(1, block_bytes)),
        depth_(std::max<std::size_t>(1, depth))
  {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) throw io_error("cannot open " + path + ": " + std::strerror(errno));
    reader_ = std::thread([this] { read_ahead(); });
    hasher_ = std::thread([this] { hash_ahead(); });
  }
  ~payload_reader()
  {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    changed_.notify_all();
    reader_.join();
    hasher_.join();
    std::fclose(file_);
  }
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

  // Waits until every byte has been read and hashed (the hash is then complete). Throws
  // qrplate::io_error for a read error, std::logic_error when bytes are left unread.
  void finish()
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return hashed_all_ || error_ || hashed_.size() == depth_; });
    if (error_) std::rethrow_exception(error_);
    if (!hashed_all_ || !hashed_.empty() || at_ != current_.size()) throw std::logic_error("the payload was not read to its end");
  }

 private:
  using block = std::vector<std::uint8_t>;

  void next_block()
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !hashed_.empty() || error_ || hashed_all_; });
    if (hashed_.empty()) {
      if (error_) std::rethrow_exception(error_);
      throw io_error("cannot read " + path_ + ": read past its " + std::to_string(size_) + " bytes");
    }
    if (current_.capacity() > 0) spares_.push_back(std::move(current_));
    current_ = std::move(hashed_.front());
    hashed_.pop_front();
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
        read_.push_back(std::move(b));
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

  // Stage 2: blocks of read_ hashed in order, into hashed_.
  void hash_ahead()
  {
    try {
      for (;;) {
        block b;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          changed_.wait(lock, [&] { return !read_.empty() || read_all_ || error_ || closing_; });
          if (closing_ || (read_.empty() && error_)) return;
          if (read_.empty()) {  // read_all_
            hashed_all_ = true;
            break;
          }
          b = std::move(read_.front());
          read_.pop_front();
          changed_.notify_all();
        }
        hash_.update(b.data(), b.size());
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return hashed_.size() < depth_ || closing_; });
        if (closing_) return;
        hashed_.push_back(std::move(b));
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
  sha256& hash_;
  std::size_t block_bytes_, depth_;
  std::FILE* file_ = nullptr;
  block current_;  // the consumer's, outside the lock
  std::size_t at_ = 0;
  std::mutex mutex_;
  std::condition_variable changed_;  // any of the below changed
  std::deque<block> read_, hashed_;  // read and waiting for the hasher; hashed and waiting for read()
  std::vector<block> spares_;        // handed out, for the reader to refill
  bool read_all_ = false, hashed_all_ = false, closing_ = false;
  std::exception_ptr error_;
  std::thread reader_, hasher_;
};

}  // namespace qrplate::plate
