// Batch encoding: N payloads of one (version, ECC level) into N bit-packed symbols.
// The CPU backend runs on every core; the CUDA backend (qrplate_cuda) mirrors this API.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qrplate/host_memory.hpp"
#include "qrplate/spec/versions.hpp"
#include "qrplate/symbol.hpp"

namespace qrplate {

enum class backend : std::uint8_t { automatic, cpu, cuda };

const char* to_string(backend b);
backend parse_backend(std::string_view text);  // "auto", "cpu", "cuda"
bool cuda_backend_available();                  // built with CUDA and a device is present
// The CUDA device in words (name, compute capability, SMs, memory, driver and runtime versions),
// for labelling measured figures; "" when cuda_backend_available() is false.
std::string cuda_device_description();
backend resolve_backend(backend b);             // automatic -> cuda where available, else cpu; others as given

// N payloads, concatenated: payload i is bytes[offsets[i], offsets[i + 1]).
struct payload_batch_view {
  const std::uint8_t* bytes = nullptr;
  const std::uint64_t* offsets = nullptr;  // count + 1 entries, offsets[0] == 0
  std::uint64_t count = 0;
};

// Per-item outcome: a payload that does not fit is reported, not thrown.
enum class encode_status : std::uint8_t { ok = 0, too_long = 1 };

struct batch_encode_options {
  int version = 40;
  ecc_level ecc = ecc_level::L;
  int mask = -1;  // -1: automatic (lowest ISO penalty), 0..7: forced
  backend where = backend::automatic;
  unsigned threads = 0;  // CPU backend: 0 = every core
};

// Owner of the results of one batch: count symbols of one version, in the layout of symbol.hpp,
// stored one after another (symbol i starts at word i * words_per_symbol()). A batch in pinned
// memory (host_memory.hpp) receives the CUDA backend's results by DMA, without the host copy
// out of its staging; memory() says what was had. Reusing one batch for many encodes keeps its
// memory (pinned allocations cost milliseconds).
class symbol_batch {
 public:
  explicit symbol_batch(host_memory memory = host_memory::pageable) : modules_(memory), masks_(memory), status_(memory) {}

  // Sizes the batch for count symbols; their contents are unspecified until encode() writes
  // every word, mask and status (it always does).
  void reset(int version, ecc_level ecc, std::uint64_t count);
  host_memory memory() const { return modules_.memory(); }

  int version() const { return version_; }
  ecc_level ecc() const { return ecc_; }
  int size() const { return spec::symbol_size(version_); }
  std::uint64_t count() const { return count_; }
  std::size_t words_per_symbol() const { return qrplate::words_per_symbol(size()); }

  symbol_view symbol(std::uint64_t i) const { return {modules_.data() + i * words_per_symbol(), size()}; }
  std::uint64_t* modules() { return modules_.data(); }
  const std::uint64_t* modules() const { return modules_.data(); }
  std::uint8_t* masks() { return masks_.data(); }
  const std::uint8_t* masks() const { return masks_.data(); }
  encode_status* status() { return status_.data(); }
  const encode_status* status() const { return status_.data(); }

 private:
  int version_ = 1;
  ecc_level ecc_ = ecc_level::L;
  std::uint64_t count_ = 0;
  host_array<std::uint64_t> modules_;
  host_array<std::uint8_t> masks_;
  host_array<encode_status> status_;
};

// Encodes every payload in byte mode. Payloads in pinned memory (the first and last byte of
// the batch's bytes in page-locked memory, from host_array or any CUDA allocation) go to the GPU
// by DMA without staging. Throws qrplate::invalid_argument for a bad version,
// level, mask or malformed offsets, qrplate::backend_unavailable when `where` is cuda and none
// can be used. Items that do not fit get encode_status::too_long and an all-light matrix.
void encode(const payload_batch_view& payloads, const batch_encode_options& options, symbol_batch& out);

}  // namespace qrplate
