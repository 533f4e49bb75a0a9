// The steady clock's own cost around a call: the least of many empty timings. The benchmarks that
// time a cooperative kernel's phases thread by thread on the CPU (bench_encode,
// bench_read_cooperative) take it off every call, or phases that do nothing on most threads
// would add it once per thread to the work.
#pragma once

#include <algorithm>
#include <chrono>

namespace qrplate::bench {

inline double steady_clock_cost()
{
  double cost = 1e30;
  for (int k = 0; k < 10000; ++k) {
    const auto start = std::chrono::steady_clock::now();
    cost = std::min(cost, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return cost;
}

}  // namespace qrplate::bench
