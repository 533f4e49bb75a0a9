// Stream-ordered batch encoding on data already in GPU memory (builds with the CUDA backend
// only; include <cuda_runtime_api.h> is needed, as is linking qrplate_host). The host-memory API
// (qrplate/encode.hpp, backend::cuda) is a streaming driver over this.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "qrplate/encode.hpp"

namespace qrplate::cuda {

// Device pointers: payload i is bytes[offsets[i], offsets[i + 1]).
struct device_payloads {
  const std::uint8_t* bytes = nullptr;
  const std::uint64_t* offsets = nullptr;  // count + 1 entries
  std::uint64_t count = 0;
};

// Device pointers, count entries each (modules: count * words_per_symbol words, symbol.hpp's
// layout); what symbol_batch holds, in GPU memory.
struct device_symbols {
  std::uint64_t* modules = nullptr;
  std::uint8_t* masks = nullptr;
  encode_status* status = nullptr;
};

// Owner of one (version, level)'s tables in the memory of the device current at construction
// (~220 KB). Move-only; encode_async may be called from several host threads at once.
class device_encoder {
 public:
  // Throws qrplate::invalid_argument for a bad version or level, backend_unavailable when no
  // device can be used.
  device_encoder(int version, ecc_level ecc);
  ~device_encoder();
  device_encoder(device_encoder&&) noexcept;
  device_encoder& operator=(device_encoder&&) noexcept;

  int version() const;
  ecc_level ecc() const;
  std::size_t words_per_symbol() const;

  // Enqueues the encoding of `in` into `out` on `stream` (mask: -1 automatic, 0..7 forced) and
  // returns at once; results are there when the stream gets past this point. Items that do not
  // fit get encode_status::too_long and an all-light matrix, as on the host. Returns the status
  // of the launch (cudaErrorInvalidValue for a mask outside -1..7).
  cudaError_t encode_async(const device_payloads& in, int mask, const device_symbols& out,
                           cudaStream_t stream = nullptr) const noexcept;

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace qrplate::cuda
