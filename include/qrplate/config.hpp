// Build-wide macros shared by g++ and nvcc.
#pragma once

// QRP_HD marks per-item functions that both backends call: __host__ __device__ under nvcc,
// nothing under a plain C++ compiler (CCCL's _CCCL_HOST_DEVICE, RAFT's _RAFT_HOST_DEVICE).
#if defined(__CUDACC__)
#define QRP_HD __host__ __device__
#else
#define QRP_HD
#endif

#if defined(__CUDA_ARCH__)
#define QRP_ASSUME(cond) ((void)0)
#else
#include <cassert>
#define QRP_ASSUME(cond) assert(cond)
#endif

// Full unrolling where nvcc needs it to keep a small array in registers (indices must become
// constants); g++ decides for itself.
#if defined(__CUDA_ARCH__)
#define QRP_UNROLL _Pragma("unroll")
#else
#define QRP_UNROLL
#endif
