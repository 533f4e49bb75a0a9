// The CPU fast path of core::sample_code (include/qrplate/core/read_code.hpp), the module
// sampling that was a fifth of a CPU scan decode: four modules of a row at once with AVX2 where
// the CPU has it, the same IEEE double and float operations in the same order as the reference,
// so values and valid come out bit for bit the same (tests/test_fast_sampling.cpp holds them to
// core::sample_code on random maps and images). Elsewhere (no AVX2, another compiler or CPU,
// under sanitizers) it is core::sample_code itself.
#pragma once

#include <cstdint>

#include "qrplate/core/read_code.hpp"

namespace qrplate::scan {

// core::sample_code's contract and results; the fast path when avx2_sampling_available().
int sample_code_fast(const core::version_plan& plan, const core::gray_view& img, const core::code_map& map,
                     double module_px, float* values, std::uint8_t* valid);

// True when sample_code_fast takes the AVX2 path (built for it and the CPU has it).
bool avx2_sampling_available();

}  // namespace qrplate::scan
