// A tile kept in device memory (tile_passes_cuda.hpp's device_tile): the definition, for the CUDA
// glue that fills it (tile_passes_cuda.cu) and reads from it (read_codes_cuda.cu).
#pragma once

#include <cstdint>

#include "cuda/cuda_check.hpp"
#include "cuda/tile_passes_cuda.hpp"
#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/sample_symbol.hpp"

namespace qrplate::host {

struct device_tile {
  int width = 0, height = 0, shift = 0;
  // cudaMalloc'd: cudaFree waits for the device, so a tile dropped by the scan reader cannot be
  // freed under a read still running on another stream.
  device_buffer<std::uint16_t> pixels;  // width * height
  device_buffer<std::uint32_t> sums;    // (width + 1) * (height + 1), see core::integral_view

  device_tile(int w, int h)
      : width(w), height(h), pixels(static_cast<std::size_t>(w) * static_cast<std::size_t>(h)),
        sums((static_cast<std::size_t>(w) + 1) * (static_cast<std::size_t>(h) + 1))
  {
  }
  core::gray_view image() const { return {pixels.data(), width, height, static_cast<std::size_t>(width)}; }
  core::integral_view integral() const { return {sums.data(), width, height, shift}; }
};

}  // namespace qrplate::host
