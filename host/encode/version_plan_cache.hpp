// Shared, lazily built version plans: one per (version, ECC level), built on first use and kept
// for the life of the process (160 at most, ~150 KB each).
#pragma once

#include <memory>

#include "qrplate/core/encode_cooperative.hpp"
#include "qrplate/core/version_plan.hpp"

namespace qrplate::host {

// Thread-safe. Throws qrplate::invalid_argument for a version outside 1..40.
const core::version_plan& version_plan_for(int version, ecc_level ecc);

// The cooperative (GPU) path's tables of the same plan (~72 KB each), built on first use.
const core::cooperative_tables& cooperative_tables_for(int version, ecc_level ecc);

}  // namespace qrplate::host
