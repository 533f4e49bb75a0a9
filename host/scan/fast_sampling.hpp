// The CPU fast path of core::sample_code (include/qrplate/core/read_code.hpp) and of
// core::sample_across_module's loop (read_across.hpp), the module sampling that was a fifth of a
// CPU scan decode: four modules of a row at once with AVX2 where
// the CPU has it, the same IEEE double and float operations in the same order as the reference,
// so values, valid (and source) come out bit for bit the same (tests/test_fast_sampling.cpp holds
// them to the reference on random maps and images). Elsewhere (no AVX2, another compiler or CPU,
// under sanitizers) it is core::sample_code itself.
#pragma once

#include <cstdint>

#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_code.hpp"

namespace qrplate::scan {

// core::sample_code's contract and results; the fast path when avx2_sampling_available().
int sample_code_fast(const core::version_plan& plan, const core::gray_view& img, const core::code_map& map,
                     double module_px, float* values, std::uint8_t* valid);

// core::sample_across_module for every module k < n * n of a size-n code, into ws.values, valid
// and source: the same bits.
void sample_across_fast(const core::gray_view* images, const core::code_map* maps, int count, double module_px, int n,
                        core::read_across_workspace& ws);

// core::read_code_across with its sampling (step 1) by sample_across_fast: the same outcome.
core::code_outcome read_code_across_fast(const core::version_plan& plan, const core::gray_view* images,
                                         const core::code_map* maps, int count, double module_px,
                                         std::uint8_t erasure_threshold, std::uint8_t* out,
                                         core::read_across_workspace& ws);

// True when the fast paths takes the AVX2 path (built for it and the CPU has it).
bool avx2_sampling_available();

}  // namespace qrplate::scan
