// Codes no tile holds whole (read_across.hpp), read by a group of threads that cooperate: the
// GPU's kernel for them, with measure_and_read_across (one code on one thread) as its reference,
// the same outcome and bytes bit for bit.
//
// One thread reading a whole code is latency all the way (a v40 code: 31,329 modules of five
// bilinear samples each in several maps, on one GPU thread): the scan reader waits for those
// batches as long as their slowest code takes. Here a block takes a code and splits what splits:
//   measure   each tile's map in turn, by the cooperative read's measure phases
//             (read_cooperative.hpp: anchor rows and anchors over the threads)
//   sample    one module per thread at a time (sample_across_module: its deepest image)
//   finish    one thread: the whole code's fit, each tile's own fit, the decode, and the second
//             decode from overlapping readings when the first fails (finish_code_across)
// Phases are separated by barriers. The tests run the block body on the CPU, threads one after
// another in shuffled orders, and hold each outcome and its bytes to measure_and_read_across.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_cooperative.hpp"

namespace qrplate::core {

// What one block shares while it reads a code across tiles (~15 KB): the measure phases' state.
struct cooperative_across_shared {
  cooperative_measure_state measure;
};

// One thread block: code block, block + grid, ... of the batch, one at a time, all block_threads
// threads on each, with b.workspaces[block] and the max_across maps at b.maps + block * max_across.
// exec as in read_cooperative_block: f(thread) for every thread, then a barrier.
template <typename Exec>
QRP_HD void read_across_cooperative_block(const across_read_batch& b, std::uint64_t block, std::uint64_t grid,
                                          int block_threads, cooperative_across_shared& shared, Exec& exec)
{
  const version_plan& plan = *b.plan;
  const int n = plan.size;
  const double reach = sample_reach(b.module_px);
  code_map* maps = b.maps + block * max_across;
  read_across_workspace& ws = b.workspaces[block];
  for (std::uint64_t i = block; i < b.count; i += grid) {
    const across_code& code = b.codes[i];
    const int count = code.count < static_cast<std::uint32_t>(max_across) ? static_cast<int>(code.count) : max_across;
    for (int k = 0; k < count; ++k) {
      cooperative_read_job job{};
      job.plan = b.plan;
      job.tile = b.tiles + code.tiles[k];
      job.x0 = code.x0;
      job.y0 = code.y0;
      job.measured = maps + k;
      job.measure = &shared.measure;
      for (int phase = read_phase_measure_base; phase < read_phase_sample; ++phase)
        exec([&](int thread) { run_cooperative_measure_phase(job, phase, thread, block_threads); });
    }
    // Each thread its own copy of the code's images (a few words each).
    exec([&](int thread) {
      gray_view images[max_across];
      for (int k = 0; k < count; ++k) images[k] = b.images[code.tiles[k]];
      for (int k = thread; k < n * n; k += block_threads)
        sample_across_module(images, maps, count, b.module_px, reach, n, k, ws);
    });
    exec([&](int thread) {
      if (thread != 0) return;
      gray_view images[max_across];
      for (int k = 0; k < count; ++k) images[k] = b.images[code.tiles[k]];
      b.outcomes[i] = finish_code_across(plan, images, maps, count, b.module_px, b.erasure_threshold,
                                         b.bytes + i * spec::max_data_codewords, ws);
    });
  }
}

}  // namespace qrplate::core
