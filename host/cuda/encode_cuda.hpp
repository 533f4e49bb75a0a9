// The CUDA backend of batch encoding, seen from plain C++ (no CUDA types here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cuda/pinned_memory.hpp"  // cuda_device_present
#include "qrplate/encode.hpp"

namespace qrplate::host {


// Payload and result bytes encode_cuda has copied through its own pinned staging buffers since
// the process started (all threads): what pinned payloads and results save (tests, benchmarks).
std::uint64_t cuda_encode_staged_bytes();

// The kernel behind encode_cuda: the cooperative one (core/encode_cooperative.hpp), or the
// plain one thread per code over the per-code core, kept as its reference on the GPU.
enum class cuda_encode_kernel { cooperative, per_thread };

// Same contract as encode_cpu; results are byte-identical to it. chunk_codes: codes per chunk
// (0: as many as fill 32 MiB of matrices; tests pass a few to make many chunks of a small batch).
void encode_cuda(const payload_batch_view& payloads, const batch_encode_options& options, symbol_batch& out,
                 cuda_encode_kernel kernel = cuda_encode_kernel::cooperative, std::uint64_t chunk_codes = 0);

// For `qrplate bench`: one batch uploaded once and encoded in GPU memory (cooperative kernel),
// so that run() measures what the kernel does with data already on the device.
class resident_encode {
 public:
  resident_encode(const payload_batch_view& payloads, const batch_encode_options& options);
  ~resident_encode();
  resident_encode(const resident_encode&) = delete;
  resident_encode& operator=(const resident_encode&) = delete;

  double run();                  // seconds of one encode of the batch, by CUDA events
  std::uint64_t failed() const;  // codes of the last run whose status is not ok

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace qrplate::host
