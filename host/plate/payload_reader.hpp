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
inline constexpr std::size_t payload_blocks_ahead = 4;
// What the reader holds at most: the blocks ahead, the one being filled and the one being handed
// out (blocks are recycled, so no more are ever made).
inline constexpr double payload_read_ahead_bytes = (payload_blocks_ahead + 2) * static_cast<double>(payload_block_bytes);

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

// Sequential reader of the payload's `size` bytes. A thread of its own reads them ahead in blocks
// and hashes them (SHA-256 cannot be split: it would otherwise be serial work of the encoding
// loop, ~0.8 s a GB on one core here, docs/PERFORMANCE.md); read() hands them out in order.
class payload_reader {
 public:
  // Reads `size` bytes of `path` ahead, `depth` blocks of `block_bytes` at most.
  payload_reader(const std::string& path, std::uint64_t size, sha256& hash, std::size_t block_bytes = payload_block_bytes,
                 std::size_t depth = payload_blocks_ahead)
      : path_(path), size_(size), hash_(hash), block_bytes_(std::max<std::size_t>(1, block_bytes)),
        depth_(std::max<std::size_t>(1, depth))
  {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) throw io_error("cannot open " + path + ": " + std::strerror(errno));
    thread_ = std::thread([this] { read_ahead(); });
  }
  ~payload_reader()
  {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    space_.notify_all();
    thread_.join();
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
    ready_.wait(lock, [&] { return done_ || error_ || blocks_.size() == depth_; });
    if (error_) std::rethrow_exception(error_);
    if (!done_ || !blocks_.empty() || at_ != current_.size()) throw std::logic_error("the payload was not read to its end");
  }

 private:
  void next_block()
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [&] { return !blocks_.empty() || error_ || done_; });
    if (blocks_.empty()) {
      if (error_) std::rethrow_exception(error_);
      throw io_error("cannot read " + path_ + ": read past its " + std::to_string(size_) + " bytes");
    }
    if (current_.capacity() > 0 && spares_.size() < depth_) spares_.push_back(std::move(current_));
    current_ = std::move(blocks_.front());
    blocks_.pop_front();
    at_ = 0;
    space_.notify_one();
  }

  void read_ahead()
  {
    try {
      for (std::uint64_t done = 0; done < size_;) {
        std::vector<std::uint8_t> block;
        {
          std::lock_guard<std::mutex> lock(mutex_);  // a block handed out before: no fresh pages to fault in
          if (!spares_.empty()) {
            block = std::move(spares_.back());
            spares_.pop_back();
          }
        }
        block.resize(static_cast<std::size_t>(std::min<std::uint64_t>(block_bytes_, size_ - done)));
        if (std::fread(block.data(), 1, block.size(), file_) != block.size())
          throw io_error("cannot read " + path_ + ": " + (std::ferror(file_) ? std::strerror(errno) : "file shrank while reading"));
        hash_.update(block.data(), block.size());
        done += block.size();
        std::unique_lock<std::mutex> lock(mutex_);
        space_.wait(lock, [&] { return blocks_.size() < depth_ || closing_; });
        if (closing_) return;
        blocks_.push_back(std::move(block));
        ready_.notify_one();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
    ready_.notify_all();
  }

  std::string path_;
  std::uint64_t size_;
  sha256& hash_;
  std::size_t block_bytes_, depth_;
  std::FILE* file_ = nullptr;
  std::vector<std::uint8_t> current_;
  std::size_t at_ = 0;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::deque<std::vector<std::uint8_t>> blocks_;
  std::vector<std::vector<std::uint8_t>> spares_;  // blocks handed out, for the reader to refill
  bool done_ = false, closing_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace qrplate::plate
