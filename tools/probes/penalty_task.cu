// Probe kernels for tools/sass-count.sh: one penalty task of the cooperative encode kernel
// (core::detail::run_penalty_chunk, 8 lines of one word column) with each way of reading its
// window, so that the instructions nvcc makes of them can be counted without a GPU. Not built
// by CMake; nothing calls these kernels.
#include "qrplate/core/encode_cooperative.hpp"

using namespace qrplate;

// The window as the kernel read it until 2026-11-23: bounds-checked, each word XORed with the
// mask's overlay as it is read.
__global__ void penalty_task_checked_xor(const std::uint64_t* src, const std::uint64_t* overlay, int n, int W, int w,
                                         int c0, int* out)
{
  auto word = [&](int i) -> std::uint64_t { return i >= 0 && i < n ? src[i * W + w] ^ overlay[i * W + w] : 0; };
  out[threadIdx.x] = core::detail::run_penalty_chunk(word, c0, n, core::lane_mask(n, w));
}

// As it reads it now: a masked plane with light lines around the symbol (phase_mask).
__global__ void penalty_task_masked_plane(const std::uint64_t* plane, int n, int w, int c0, int* out)
{
  auto word = [plane](int i) { return plane[i]; };
  out[threadIdx.x] = core::detail::run_penalty_chunk(word, c0, n, core::lane_mask(n, w));
}
