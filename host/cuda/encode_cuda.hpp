// The CUDA backend of batch encoding, seen from plain C++ (no CUDA types here).
#pragma once

#include "qrplate/encode.hpp"

namespace qrplate::host {

bool cuda_device_present();  // probed once

// Same contract as encode_cpu; results are byte-identical to it.
void encode_cuda(const payload_batch_view& payloads, const batch_encode_options& options, symbol_batch& out);

}  // namespace qrplate::host
