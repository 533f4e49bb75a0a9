// Running the cooperative GPU paths' phases on the CPU (core/encode_cooperative.hpp,
// read_cooperative.hpp, decode_cooperative.hpp): a group's threads one after another, in a new
// random order for every phase, so that a phase that read what another thread writes in the
// same phase would give different results from run to run and order to order.
#pragma once

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace qrplate::test {

// The barrier executor of the kernels' block bodies: f(thread) for every thread, shuffled.
struct shuffled_threads {
  int threads;
  std::mt19937_64& rng;
  template <typename F>
  void operator()(F&& f)
  {
    std::vector<int> order(static_cast<std::size_t>(threads));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    for (int t : order) f(t);
  }
};

// phase_fn(phase, t, threads) for phases 0..phases-1, each over every thread, shuffled.
template <typename PhaseFn>
void run_phases(int phases, int threads, std::mt19937_64& rng, PhaseFn&& phase_fn)
{
  shuffled_threads exec{threads, rng};
  for (int phase = 0; phase < phases; ++phase) exec([&](int t) { phase_fn(phase, t, threads); });
}

}  // namespace qrplate::test
