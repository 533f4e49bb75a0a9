// CPU fast paths of the per-code core (include/qrplate/core/), each the same bits as its
// reference, which the GPU kernels run:
//  - module sampling, core::sample_code and core::sample_across_module's loop (a fifth of a CPU
//    scan decode): four modules of a row at once with AVX2, the same IEEE double and float
//    operations in the same order;
//  - core::measure_code_map, compiled for AVX2 (its node grid's divisions four to a vector);
//  - thresholding, core::threshold_word (a tenth of a v40 decode, most of it codes across tiles,
//    whose parts are thresholded again each): four modules at a time, without a branch a module.
// tests/test_fast_sampling.cpp holds them to the references on random maps and images. Elsewhere
// (no AVX2, another compiler or CPU, under sanitizers) the references run.
#pragma once

#include <cstdint>

#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_code.hpp"

namespace qrplate::scan {

// core::sample_code's contract and results; the fast path when avx2_fast_paths_available().
int sample_code_fast(const core::version_plan& plan, const core::gray_view& img, const core::code_map& map,
                     double module_px, float* values, std::uint8_t* valid);

// core::sample_across_module for every module k < n * n of a size-n code, into ws.values, valid
// and source: the same bits.
void sample_across_fast(const core::gray_view* images, const core::code_map* maps, int count, double module_px, int n,
                        core::read_across_workspace& ws);

// core::threshold_symbol's contract and bits, its rows thresholded four modules at a time.
core::symbol_levels threshold_symbol_fast(const core::version_plan& plan, const float* values,
                                          const std::uint8_t* valid, std::uint64_t* modules, std::uint8_t* confidence);

// core::decode_sampled with its thresholding by threshold_symbol_fast: the same outcome.
core::code_outcome decode_sampled_fast(const core::version_plan& plan, const float* values, const std::uint8_t* valid,
                                       std::uint8_t erasure_threshold, std::uint64_t* modules,
                                       std::uint8_t* confidence, std::uint8_t* out, core::decode_workspace& ws);

// core::read_code by sample_code_fast and decode_sampled_fast: the same outcome.
core::code_outcome read_code_fast(const core::version_plan& plan, const core::gray_view& img,
                                  const core::code_map& map, double module_px, std::uint8_t erasure_threshold,
                                  std::uint8_t* out, core::read_code_workspace& ws);

// core::read_code_across with its sampling (step 1) by sample_across_fast and its thresholdings
// by threshold_symbol_fast's rows: the same outcome.
core::code_outcome read_code_across_fast(const core::version_plan& plan, const core::gray_view* images,
                                         const core::code_map* maps, int count, double module_px,
                                         std::uint8_t erasure_threshold, std::uint8_t* out,
                                         core::read_across_workspace& ws);

// core::measure_code_map compiled for AVX2 where the CPU has it: the same map bit for bit.
void measure_code_map_fast(const core::tile_anchor_view& tile, const core::version_plan& plan, double x0, double y0,
                           core::code_map& out);

// True when the fast paths above take their AVX2 paths (built for it, and the CPU has it).
bool avx2_fast_paths_available();

}  // namespace qrplate::scan
