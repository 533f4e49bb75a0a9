// The CUDA backend of batch encoding, seen from plain C++ (no CUDA types here).
#pragma once

#include <cstdint>
#include <memory>

#include "qrplate/encode.hpp"

namespace qrplate::host {

bool cuda_device_present();  // probed once

// The kernel behind encode_cuda: the cooperative one (core/encode_cooperative.hpp), or the
// plain one thread per code over the per-code core, kept as its reference on the GPU.
enum class cuda_encode_kernel { cooperative, per_thread };

// Same contract as encode_cpu; results are byte-identical to it.
void encode_cuda(const payload_batch_view& payloads, const batch_encode_options& options, symbol_batch& out,
                 cuda_encode_kernel kernel = cuda_encode_kernel::cooperative);

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
