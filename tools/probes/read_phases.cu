// Probe kernels for tools/sass-count.sh: each phase of the cooperative read kernel
// (core::run_cooperative_read_phase, core/read_cooperative.hpp) as a kernel of its own, so that
// the instructions and the local-memory traffic (stack arrays) of each phase can be counted
// without a GPU. Not built by CMake; nothing calls these kernels.
#include "qrplate/core/read_cooperative.hpp"

using namespace qrplate;

template <int Phase>
__global__ void read_phase(core::cooperative_read_job job)
{
  core::run_cooperative_read_phase(job, Phase, static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x));
}

#define QRP_PROBE(k) template __global__ void read_phase<k>(core::cooperative_read_job);
QRP_PROBE(0) QRP_PROBE(1) QRP_PROBE(2) QRP_PROBE(3) QRP_PROBE(4) QRP_PROBE(5) QRP_PROBE(6)
QRP_PROBE(7) QRP_PROBE(8) QRP_PROBE(9) QRP_PROBE(10) QRP_PROBE(11) QRP_PROBE(12) QRP_PROBE(13)
QRP_PROBE(14) QRP_PROBE(15) QRP_PROBE(16) QRP_PROBE(17) QRP_PROBE(18) QRP_PROBE(19) QRP_PROBE(20)
QRP_PROBE(21) QRP_PROBE(22) QRP_PROBE(23) QRP_PROBE(24) QRP_PROBE(25)
static_assert(core::cooperative_read_phase_count == 26, "a probe per phase");
