// qrplate's CUDA emulation: cub::DeviceSelect::If with CUB's two-call protocol (the first call,
// temp == nullptr, asks for the scratch size) and stream order; the selection keeps input order.
#pragma once

#include <cstddef>

#include <cuda_runtime.h>

namespace cub {

struct DeviceSelect {
  template <typename In, typename Out, typename Count, typename N, typename Pred>
  static cudaError_t If(void* temp, std::size_t& temp_bytes, In in, Out out, Count* selected, N n, Pred pred,
                        cudaStream_t stream = nullptr)
  {
    constexpr std::size_t needed = 256;
    if (temp == nullptr) {
      temp_bytes = needed;
      return cudaSuccess;
    }
    if (temp_bytes < needed || !::qrplate_emu::is_device_range(temp, needed)) return cudaErrorInvalidValue;
    if (n > 0 && !::qrplate_emu::is_device_range(selected, sizeof(Count))) return cudaErrorInvalidValue;
    return ::qrplate_emu::enqueue(stream, "cub::DeviceSelect::If", [=] {
      Count kept = 0;
      for (N i = 0; i < n; ++i)
        if (pred(in[i])) out[kept++] = in[i];
      *selected = kept;
    });
  }
};

}  // namespace cub
