// qrplate's CUDA emulation: cub::BlockScan's InclusiveSum, the one piece of it qrplate calls,
// with the same contract (every thread of a block of BLOCK_DIM_X calls it; the caller syncs before
// reusing the storage), computed by thread 0 between two barriers.
#pragma once

#include <cstdlib>

#include <cuda_runtime.h>

namespace cub {

template <typename T, int BLOCK_DIM_X>
class BlockScan {
 public:
  struct TempStorage {
    T values[BLOCK_DIM_X];
  };
  explicit BlockScan(TempStorage& storage) : storage_(storage) {}

  void InclusiveSum(T input, T& inclusive, T& aggregate)
  {
    const ::qrplate_emu::thread_position& p = ::qrplate_emu::current();
    if (p.block_dim.x * p.block_dim.y * p.block_dim.z != BLOCK_DIM_X) std::abort();  // as CUB: undefined
    const unsigned t = p.thread_idx.x;
    storage_.values[t] = input;
    __syncthreads();
    if (t == 0)
      for (int i = 1; i < BLOCK_DIM_X; ++i) storage_.values[i] = storage_.values[i] + storage_.values[i - 1];
    __syncthreads();
    inclusive = storage_.values[t];
    aggregate = storage_.values[BLOCK_DIM_X - 1];
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
