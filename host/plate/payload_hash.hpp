// The payload's hash in plate.json: SHA-256 of the whole payload (what `sha256sum` prints), or
// the SHA-256 tree (docs/FORMAT.md), whose leaves are hashed on every core. SHA-256 cannot be
// split, so the first binds a plate encode to one core's SHA-256 rate (~1.3 GB/s here), and a
// decode's final check too; the tree lifts that floor and changes nothing else.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "qrplate/plate/manifest.hpp"

namespace qrplate::plate {

using digest = std::array<std::uint8_t, 32>;

// Streaming SHA-256 (OpenSSL EVP).
class sha256 {
 public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  void update(const std::uint8_t* p, std::size_t n);
  digest finish();

 private:
  EVP_MD_CTX* ctx_;
};

digest sha256_of(const std::uint8_t* p, std::size_t n);

// The tree's root from its leaves' digests, given in order: SHA-256 of "QRPT", the byte 1, the
// leaf size and the payload's size (8 bytes each, little-endian), then every leaf's SHA-256.
// Leaf i is bytes [i * leaf_bytes, (i + 1) * leaf_bytes) of the payload (the last one shorter;
// an empty payload has none).
class sha256_tree {
 public:
  // Throws qrplate::invalid_argument for a leaf size of 0.
  sha256_tree(std::uint64_t leaf_bytes, std::uint64_t payload_bytes);
  std::uint64_t leaves() const { return leaves_; }
  void add_leaf(const digest& d);
  // Throws std::logic_error unless exactly leaves() leaves were added.
  digest finish();

 private:
  sha256 root_;
  std::uint64_t leaves_, added_ = 0;
};

// The payload hash of a file's first `bytes` bytes (its whole size when bytes is all ones): SHA-256
// on one thread, the tree's leaves on up to `threads` (0: every core). `progress`, when given, is
// called on the calling thread with the bytes hashed so far, often (a terabyte takes minutes).
// Throws qrplate::io_error when the file cannot be read or is shorter.
inline constexpr std::uint64_t whole_file = ~std::uint64_t{0};
using hash_progress = std::function<void(std::uint64_t bytes_hashed)>;
digest hash_file(const std::string& path, payload_hash_kind kind, std::uint64_t leaf_bytes, unsigned threads,
                 std::uint64_t bytes = whole_file, const hash_progress& progress = {});

// hash_file's progress as a line on stderr ("\rqrplate: <label>: 1.2 of 3.4 GB"), at most twice a
// second; the line is ended when this goes out of scope, if anything was shown.
class hash_progress_line {
 public:
  hash_progress_line(std::string label, std::uint64_t total) : label_(std::move(label)), total_(total) {}
  ~hash_progress_line();
  hash_progress_line(const hash_progress_line&) = delete;
  hash_progress_line& operator=(const hash_progress_line&) = delete;
  hash_progress callback();

 private:
  std::string label_;
  std::uint64_t total_;
  std::chrono::steady_clock::time_point last_{};
  bool shown_ = false;
};

// The payload's digest of bytes handed over in order as they are written (decode's output), so
// that the check needs no second read of the file. Blocks (the tree's leaves; 4 MiB for SHA-256)
// are hashed by background threads while the caller goes on: one for SHA-256, in order, and up
// to `threads` (0: every core) for the leaves.
class streaming_digest {
 public:
  streaming_digest(payload_hash_kind kind, std::uint64_t leaf_bytes, std::uint64_t payload_bytes, unsigned threads);
  ~streaming_digest();
  streaming_digest(const streaming_digest&) = delete;
  streaming_digest& operator=(const streaming_digest&) = delete;
  // Bytes [offset, offset + n). Anything but the next bytes in order (a gap, a rewrite, past the
  // payload) and it gives up: finish() then has no digest, and the caller hashes the file.
  void add(std::uint64_t offset, const std::uint8_t* p, std::size_t n);
  // The digest, or nothing when the bytes did not come in order or did not reach payload_bytes.
  // Rethrows what a hashing thread threw.
  std::optional<digest> finish();
  bool given_up() const { return given_up_; }

 private:
  using block = std::vector<std::uint8_t>;
  void submit();
  void hash_blocks();
  void stop();

  std::uint64_t block_bytes_, payload_bytes_, next_ = 0, blocks_submitted_ = 0;
  bool given_up_ = false;
  block current_;
  std::unique_ptr<sha256> whole_;
  std::vector<digest> leaves_;  // the tree's, by place
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::pair<std::uint64_t, block>> queue_;
  std::vector<block> spares_;
  std::size_t busy_ = 0, max_queued_ = 2;
  bool closing_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

}  // namespace qrplate::plate
