// The CPU backend of batch encoding: every core loops over the shared per-code core.
#pragma once

#include "qrplate/encode.hpp"

namespace qrplate::host {

// out is already reset to (version, ecc, count); options are validated.
void encode_cpu(const payload_batch_view& payloads, const batch_encode_options& options, symbol_batch& out);

}  // namespace qrplate::host
