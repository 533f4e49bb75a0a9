// Codes no tile holds whole (read_across.hpp), read by a group of threads that cooperate: the
// GPU's kernel for them, with measure_and_read_across (one code on one thread) as its reference,
// the same outcome and bytes bit for bit.
//
// One thread reading a whole code is latency all the way (a v40 code: 31,329 modules of five
// bilinear samples each in several maps, on one GPU thread): the scan reader waits for those
// batches as long as their slowest code takes. Here a block takes a code and splits what splits
// (finish_code_across's steps, in its order):
//   measure   each tile's map in turn, by the cooperative read's measure phases
//             (read_cooperative.hpp: anchor rows and anchors over the threads)
//   sample    one module per thread at a time (sample_across_module: its deepest image)
//   threshold the whole code's fit, threshold and levels (run_cooperative_threshold_phase);
//             one thread keeps the levels
//   parts     for each image: its part, a lane of modules per thread; one thread counts it; if
//             the part is neither empty nor whole, its own threshold (the same phases, into the
//             part's planes) and, where its fit is usable, its bits and confidences taken, a
//             matrix word per thread
//   decode    decode_cooperative.hpp's phases (nothing without contrast)
//   finish    one thread: the outcome; only if the decode failed, the overlapping readings
//             combined and decoded again, serially (combine_overlapping_readings: rare)
// Phases are separated by barriers. The tests run the block body on the CPU, threads one after
// another in shuffled orders, and hold each outcome and its bytes to measure_and_read_across.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/read_across.hpp"
#include "qrplate/core/read_cooperative.hpp"

namespace qrplate::core {

// What one block shares while it reads a code across tiles (~22 KB).
struct cooperative_across_shared {
  cooperative_measure_state measure;
  plane_fit fit;  // the whole code's, then each part's
  plane_fit_sums fit_lanes[plane_fit_lanes];
  level_sums level_lanes[plane_fit_lanes];
  int part_lanes[plane_fit_lanes];  // modules of the part in each lane
  symbol_levels levels;             // the whole code's fit (finish_code_across's lv)
  bool part_used;                   // this part is neither empty nor the whole code
  cooperative_decode_state decode;
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
    gray_view images[max_across];
    for (int k = 0; k < count; ++k) images[k] = b.images[code.tiles[k]];
    exec([&](int thread) {
      for (int k = thread; k < n * n; k += block_threads)
        sample_across_module(images, maps, count, b.module_px, reach, n, k, ws);
    });
    const cooperative_threshold_job whole{ws.values, ws.valid, ws.modules, ws.confidence,
                                          &shared.fit, shared.fit_lanes, shared.level_lanes};
    for (int stage = 0; stage < cooperative_threshold_stages; ++stage)
      exec([&](int thread) { run_cooperative_threshold_phase(plan, whole, stage, thread, block_threads); });
    exec([&](int thread) {
      if (thread == 0) shared.levels = shared.fit.levels;
    });
    if (shared.levels.ok) {
      const int cells = n * n, W = plan.words;
      for (int part = 0; part < count; ++part) {
        exec([&](int thread) {
          for (int l = thread; l < plane_fit_lanes; l += block_threads) {
            int here = 0;
            for (int k = l; k < cells; k += plane_fit_lanes) {
              ws.part[k] = ws.valid[k] && ws.source[k] == part ? 1 : 0;
              here += ws.part[k];
            }
            shared.part_lanes[l] = here;
          }
        });
        exec([&](int thread) {
          if (thread != 0) return;
          int here = 0;
          for (int l = 0; l < plane_fit_lanes; ++l) here += shared.part_lanes[l];
          shared.part_used = here != 0 && here != cells;
        });
        if (!shared.part_used) continue;
        const cooperative_threshold_job own{ws.values, ws.part, ws.part_modules, ws.part_confidence,
                                            &shared.fit, shared.fit_lanes, shared.level_lanes};
        for (int stage = 0; stage < cooperative_threshold_stages; ++stage)
          exec([&](int thread) { run_cooperative_threshold_phase(plan, own, stage, thread, block_threads); });
        exec([&](int thread) {
          if (!own_fit_usable(shared.fit.levels, shared.levels)) return;
          for (int idx = thread; idx < n * W; idx += block_threads) {
            const int r = idx / W, w = idx % W;
            for (int c = 64 * w; c < 64 * w + 64 && c < n; ++c) {
              const int k = r * n + c;
              if (!ws.part[k]) continue;
              set_bit(ws.modules + r * W, c, get_bit(ws.part_modules + r * W, c));
              ws.confidence[k] = ws.part_confidence[k];
            }
          }
        });
      }
      std::uint8_t* out = b.bytes + i * spec::max_data_codewords;
      const cooperative_decode_job d{&plan, ws.modules, ws.confidence, b.erasure_threshold, out,
                                     spec::max_data_codewords, &ws.decode, &shared.decode};
      for (int phase = 0; phase < cooperative_decode_phase_count; ++phase)
        exec([&](int thread) { run_cooperative_decode_phase(d, phase, thread, block_threads); });
    }
    exec([&](int thread) {
      if (thread != 0) return;
      const symbol_levels& lv = shared.levels;
      code_outcome o = levels_outcome(lv);
      if (lv.ok) {
        o.result = shared.decode.result;
        std::uint8_t* out = b.bytes + i * spec::max_data_codewords;
        if (!decoded(o.result) && combine_overlapping_readings(plan, images, maps, count, b.module_px, lv, ws))
          o = decode_thresholded(plan, lv, b.erasure_threshold, ws.modules, ws.confidence, out, ws.decode);
      }
      b.outcomes[i] = o;
    });
  }
}

}  // namespace qrplate::core
