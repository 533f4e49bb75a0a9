// The barrier executor the cooperative kernels hand to their block bodies
// (core::encode_cooperative_block, core::read_cooperative_block): this thread's part of a phase,
// then the block's barrier. The tests' executor runs every thread of a block on the CPU instead.
#pragma once

#include <cuda_runtime.h>

namespace qrplate::kernels {

struct block_exec {
  template <typename F>
  __device__ void operator()(F&& f) const
  {
    f(static_cast<int>(threadIdx.x));
    __syncthreads();
  }
};

}  // namespace qrplate::kernels
