// A tile kept in device memory (tile_passes_cuda.hpp's device_tile): the definition, for the CUDA
// glue that fills it (tile_passes_cuda.cu) and reads from it (read_codes_cuda.cu).
#pragma once

#include <cstdint>

#include "cuda/cuda_check.hpp"
#include "cuda/tile_passes_cuda.hpp"
#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/sample_symbol.hpp"

namespace qrplate::host {

// Device memory from the stream-ordered pool: allocated on the stream that fills it, handed back
// on the legacy default stream, which waits for no other work. Handing back never stalls the
// device (cudaFree would wait for every stream, the other threads' registration passes too), so
// whoever drops the last reference must have waited for the work that used it: the tile passes
// and the scan reader's reads are synchronous.
template <typename T>
class pooled_array {
 public:
  pooled_array(std::size_t count, cudaStream_t stream)
  {
    QRP_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void**>(&ptr_), (count ? count : 1) * sizeof(T), stream));
  }
  pooled_array(const pooled_array&) = delete;
  pooled_array& operator=(const pooled_array&) = delete;
  ~pooled_array()
  {
    cuda_tolerate(cudaFreeAsync(ptr_, nullptr));
  }
  T* data() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
};

struct device_tile {
  int width = 0, height = 0, shift = 0;
  pooled_array<std::uint16_t> pixels;  // width * height
  pooled_array<std::uint32_t> sums;    // (width + 1) * (height + 1), see core::integral_view

  device_tile(int w, int h, cudaStream_t stream)
      : width(w), height(h), pixels(static_cast<std::size_t>(w) * static_cast<std::size_t>(h), stream),
        sums((static_cast<std::size_t>(w) + 1) * (static_cast<std::size_t>(h) + 1), stream)
  {
  }
  core::gray_view image() const { return {pixels.data(), width, height, static_cast<std::size_t>(width)}; }
  core::integral_view integral() const { return {sums.data(), width, height, shift}; }
};

}  // namespace qrplate::host
