// The CUDA backend of batch encoding, seen from plain C++ (no CUDA types here).
#pragma once

#include "qrplate/encode.hpp"

namespace qrplate::host {

bool cuda_device_present();  // probed once

// The kernel behind encode_cuda: the cooperative one (core/encode_cooperative.hpp), or the
// plain one thread per code over the per-code core, kept as its reference on the GPU.
enum class cuda_encode_kernel { cooperative, per_thread };

// Same contract as encode_cpu; results are byte-identical to it.
void encode_cuda(const payload_batch_view& payloads, const batch_encode_options& options, symbol_batch& out,
                 cuda_encode_kernel kernel = cuda_encode_kernel::cooperative);

}  // namespace qrplate::host
