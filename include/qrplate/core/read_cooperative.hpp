// One code read by a group of threads that cooperate: the GPU fast path of read_code
// (read_code.hpp), which stays its reference, with the same outcome and bytes bit for bit.
//
// Sampling every module is most of a read (five bilinear samples, or a depth-weighted mean, per
// module), so it is spread over the group, as is everything else that splits into independent
// pieces: a phase one thread runs while the others wait costs the block as much as a phase that
// keeps all of them busy as long. The floating-point sums over the known modules (the plane
// fit's normal equations, the noise) are taken in 32 lanes, a lane per thread, which one thread
// adds up in lane order, as the CPU does. Phases (one thread: only short steps that need order):
//   measure    (optional) the code's map from its own anchors (measure_code_map):
//     base        one thread: the tile's pose moved to the code (code_map_base's start)
//     wide rows   on a tile that asks for it (unconfirmed), the three finders' wide search, one
//                 row per thread (anchor_row_best; past max_wide_rows rows a finder, the base
//                 thread searched them whole)
//     wide pick   one thread: each finder's pick from its rows, the base moved by their mean
//     rows        one row of one anchor's search per thread (anchor_row_best)
//     anchors     one anchor per thread: its pick from its rows (pick_anchor), or past
//                 max_anchor_rows rows its whole search (measure_anchor)
//     keep        one answered anchor per thread, placed by a count of those before it
//     median      one anchor per thread: the offsets ranked count / 2 (anchor_rank)
//     near        one thread: the anchors near the medians (keep_near_median)
//     nodes       one node of the offset grid per thread (interpolate_node)
//   sample     one module per thread at a time (sample_code_module)
//   fit lanes  one lane of the plane fit's sums per thread (plane_fit_lanes = 32 lanes: a warp)
//   fit        one thread: the lanes added up and solve_brightness_plane
//   threshold  one matrix word per thread (threshold_word; all light without a fit)
//   levels lanes  one lane of the noise sums per thread
//   levels     one thread: the lanes added up and set_levels
//   decode     decode_cooperative.hpp's phases (nothing without contrast)
//   outcome    one thread: levels_outcome and the decode's result
// Phases are separated by barriers. The tests run the phases on the CPU one thread after another
// in shuffled orders and hold the outcome and bytes to read_code.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/decode_cooperative.hpp"
#include "qrplate/core/read_code.hpp"
#include "qrplate/core/sample_symbol.hpp"
#include "qrplate/core/version_plan.hpp"

namespace qrplate::core {

// Anchor searches of up to this many rows (radius 7: module_px <= 7.5) are split by row over the
// group; wider ones are each searched whole by one thread.
inline constexpr int max_anchor_rows = 15;

// A tile's wide first search for a code's finders (code_map_base) is split by row over the group
// up to this many rows a finder (radius 127 px); wider ones are one thread's.
inline constexpr int max_wide_rows = 255;

// Shared by the group while it measures a map (~14.7 KB).
struct cooperative_measure_state {
  wide_finder_search finders[3];  // the wide search, when `wide`
  bool wide;
  float wide_best[3][max_wide_rows];  // anchor_row_best of each finder's rows
  int wide_x[3][max_wide_rows];
  float row_best[max_code_anchors][max_anchor_rows];  // anchor_row_best of each anchor's rows
  int row_x[max_code_anchors][max_anchor_rows];
  double du[max_code_anchors], dv[max_code_anchors];
  bool found[max_code_anchors];
  code_anchor_set kept;
  double cu, cv;  // the kept anchors' median offsets
};

struct cooperative_read_job {
  const version_plan* plan;
  gray_view image;
  const code_map* map;            // the code's map, when given (tile == nullptr)
  const tile_anchor_view* tile;   // else: measure the map in this tile (its integral image) ...
  double x0, y0;                  // ... for the code whose module (0, 0) is plate module (x0, y0)
  code_map* measured;             // ... into this scratch map
  double module_px;
  std::uint8_t erasure_threshold;
  read_code_workspace* ws;  // the group's scratch (values, valid, confidence, modules, decode)
  plane_fit* fit;           // shared by the group
  plane_fit_sums* fit_lanes;   // shared by the group: plane_fit_lanes
  level_sums* level_lanes;     // shared by the group: plane_fit_lanes
  cooperative_decode_state* decode;  // shared by the group
  cooperative_measure_state* measure;  // shared by the group (with tile)
  std::uint8_t* out;        // spec::max_data_codewords bytes
  code_outcome* outcome;
};

enum cooperative_read_phase : int {
  read_phase_measure_base,
  read_phase_measure_wide_rows,
  read_phase_measure_wide_pick,
  read_phase_measure_rows,
  read_phase_measure_anchors,
  read_phase_measure_keep,
  read_phase_measure_median,
  read_phase_measure_near,
  read_phase_measure_nodes,
  read_phase_sample,
  read_phase_fit_lanes,
  read_phase_fit,
  read_phase_threshold,
  read_phase_levels_lanes,
  read_phase_levels,
  read_phase_decode,  // the first of cooperative_decode_phase_count phases
  read_phase_outcome = read_phase_decode + cooperative_decode_phase_count,
  cooperative_read_phase_count
};

// The measure phases (read_phase_measure_base .. read_phase_measure_nodes) alone: they use the
// job's plan, tile, x0, y0, measured and measure, so the kernel that reads codes across tiles
// (read_across_cooperative.hpp) measures each tile's map with them too.
QRP_HD inline void run_cooperative_measure_phase(const cooperative_read_job& job, int phase, int t, int threads)
{
  const version_plan& plan = *job.plan;
  const int n = plan.size;
  switch (phase) {
    case read_phase_measure_base: {
      if (!job.tile || t != 0) return;
      cooperative_measure_state& m = *job.measure;
      code_map& geo = *job.measured;
      geo.base = job.tile->to_pixel.shifted(job.x0, job.y0);
      geo.anchors = 0;
      m.wide = start_wide_finder_search(*job.tile, plan, geo.base, m.finders);
      for (int k = 0; k < 3 && m.wide; ++k)
        if (m.finders[k].searched && 2 * m.finders[k].radius + 1 > max_wide_rows) {  // too wide to split
          m.wide = false;
          code_map_base(*job.tile, plan, job.x0, job.y0, geo);
        }
      return;
    }
    case read_phase_measure_wide_rows: {
      if (!job.tile || !job.measure->wide) return;
      cooperative_measure_state& m = *job.measure;
      int rows[3], tasks = 0;
      for (int k = 0; k < 3; ++k) tasks += rows[k] = m.finders[k].searched ? 2 * m.finders[k].radius + 1 : 0;
      for (int task = t; task < tasks; task += threads) {
        int k = 0, row = task;
        while (row >= rows[k]) row -= rows[k++];
        const wide_finder_search& f = m.finders[k];
        with_anchor_response(*job.tile, true, [&](auto finder) {
          anchor_row_best(finder, f.bu, f.bv, f.radius, row - f.radius, m.wide_best[k][row], m.wide_x[k][row]);
        });
      }
      return;
    }
    case read_phase_measure_wide_pick: {  // code_map_base's ending: the finders found, the mean offset
      if (!job.tile || !job.measure->wide || t != 0) return;
      const cooperative_measure_state& m = *job.measure;
      double su = 0, sv = 0;
      int found = 0;
      with_anchor_response(*job.tile, true, [&](auto finder) {
        for (int k = 0; k < 3; ++k) {
          const wide_finder_search& f = m.finders[k];
          double u, v;
          if (!f.searched || !pick_from_rows(finder, f.bu, f.bv, f.radius, m.wide_best[k], m.wide_x[k],
                                             wide_finder_min(*job.tile), u, v))
            continue;
          su += u - f.u0, sv += v - f.v0;
          ++found;
        }
      });
      move_base_by(job.measured->base, su, sv, found);
      return;
    }
    case read_phase_measure_rows: {
      if (!job.tile) return;
      const int rows = 2 * anchor_radius(job.tile->module_px) + 1;
      if (rows > max_anchor_rows) return;  // read_phase_measure_anchors searches whole anchors
      cooperative_measure_state& m = *job.measure;
      for (int task = t, tasks = code_anchor_count(plan) * rows; task < tasks; task += threads) {
        const int k = task / rows, row = task % rows;
        double x, y;
        bool is_finder;
        code_anchor_at(plan, k, x, y, is_finder);
        anchor_search s;
        if (!start_anchor_search(*job.tile, job.measured->base, x, y, is_finder, s)) continue;
        with_anchor_response(*job.tile, is_finder, [&](auto response) {
          anchor_row_best(response, s.bu, s.bv, s.radius, row - s.radius, m.row_best[k][row], m.row_x[k][row]);
        });
      }
      return;
    }
    case read_phase_measure_anchors: {
      if (!job.tile) return;
      cooperative_measure_state& m = *job.measure;
      const bool by_rows = 2 * anchor_radius(job.tile->module_px) + 1 <= max_anchor_rows;
      for (int k = t, count = code_anchor_count(plan); k < count; k += threads) {
        double x, y;
        bool is_finder;
        code_anchor_at(plan, k, x, y, is_finder);
        if (!by_rows) {
          m.found[k] = measure_anchor(*job.tile, job.measured->base, x, y, is_finder, m.du[k], m.dv[k]);
          continue;
        }
        anchor_search s;
        m.found[k] = start_anchor_search(*job.tile, job.measured->base, x, y, is_finder, s) &&
                     pick_anchor(*job.tile, s, m.row_best[k], m.row_x[k], m.du[k], m.dv[k]);
      }
      return;
    }
    case read_phase_measure_keep: {  // the anchors that answered, in order, as measure_code_map keeps them
      if (!job.tile) return;
      cooperative_measure_state& m = *job.measure;
      code_anchor_set& a = m.kept;
      const int count = code_anchor_count(plan);
      for (int k = t; k < count; k += threads) {  // each to its place: the answers before it
        if (!m.found[k]) continue;
        int place = 0;
        for (int j = 0; j < k; ++j) place += m.found[j];
        bool is_finder;
        code_anchor_at(plan, k, a.ax[place], a.ay[place], is_finder);
        a.ru[place] = m.du[k], a.rv[place] = m.dv[k];
      }
      if (t == 0) {
        a.count = 0;
        for (int k = 0; k < count; ++k) a.count += m.found[k];
      }
      return;
    }
    case read_phase_measure_median: {  // keep_consistent_anchors' medians: the offsets ranked count / 2
      if (!job.tile) return;
      cooperative_measure_state& m = *job.measure;
      const code_anchor_set& a = m.kept;
      if (a.count < 3) return;
      for (int i = t; i < a.count; i += threads) {
        if (anchor_rank(a.ru, a.count, i) == a.count / 2) m.cu = a.ru[i];
        if (anchor_rank(a.rv, a.count, i) == a.count / 2) m.cv = a.rv[i];
      }
      return;
    }
    case read_phase_measure_near: {
      if (!job.tile || t != 0) return;
      cooperative_measure_state& m = *job.measure;
      code_anchor_set& a = m.kept;
      if (a.count == 0) return;  // job.measured->anchors stays 0
      if (a.count >= 3) keep_near_median(a, m.cu, m.cv, job.tile->module_px);
      job.measured->anchors = a.count;
      job.measured->nodes = code_map_nodes(n);
      return;
    }
    case read_phase_measure_nodes: {
      if (!job.tile || job.measured->anchors == 0) return;
      const int nodes = job.measured->nodes;
      for (int k = t; k < nodes * nodes; k += threads) interpolate_node(job.measure->kept, k % nodes, k / nodes, *job.measured);
      return;
    }
    default: return;
  }
}

// threshold_symbol (sample_symbol.hpp) by the group, over any sampled values: the plane fit's
// lanes, the fit (one thread), the threshold a matrix word per thread (all light without a fit),
// the noise lanes and the levels (one thread). The read's fit .. levels phases, and the kernel
// for codes across tiles (read_across_cooperative.hpp) thresholds a code's parts with them.
inline constexpr int cooperative_threshold_stages = 5;
struct cooperative_threshold_job {
  const float* values;
  const std::uint8_t* valid;
  std::uint64_t* modules;
  std::uint8_t* confidence;
  plane_fit* fit;             // shared by the group; fit->levels is threshold_symbol's result
  plane_fit_sums* fit_lanes;  // shared by the group: plane_fit_lanes
  level_sums* level_lanes;    // shared by the group: plane_fit_lanes
};

QRP_HD inline void run_cooperative_threshold_phase(const version_plan& plan, const cooperative_threshold_job& j, int stage,
                                                   int t, int threads)
{
  const int n = plan.size, W = plan.words;
  switch (stage) {
    case 0:
      for (int l = t; l < plane_fit_lanes; l += threads) j.fit_lanes[l] = plane_fit_lane(plan, j.values, j.valid, l);
      return;
    case 1: {
      if (t != 0) return;
      plane_fit_sums sum{};
      for (int l = 0; l < plane_fit_lanes; ++l) add_plane_fit_sums(sum, j.fit_lanes[l]);
      *j.fit = solve_brightness_plane(plan, sum);
      return;
    }
    case 2: {
      const plane_fit& f = *j.fit;
      for (int idx = t; idx < n * W; idx += threads) {
        const int r = idx / W, w = idx % W;
        if (f.solved) {
          j.modules[idx] = threshold_word(plan, f, j.values, j.valid, r, w, j.confidence);
        } else {
          j.modules[idx] = 0;
          for (int c = 64 * w; c < 64 * w + 64 && c < n; ++c) j.confidence[r * n + c] = 0;
        }
      }
      return;
    }
    case 3:
      if (!j.fit->solved) return;
      for (int l = t; l < plane_fit_lanes; l += threads) j.level_lanes[l] = levels_lane(plan, *j.fit, j.values, j.valid, l);
      return;
    case 4: {
      if (t != 0 || !j.fit->solved) return;
      level_sums sum{0.0, 0};
      for (int l = 0; l < plane_fit_lanes; ++l) add_level_sums(sum, j.level_lanes[l]);
      set_levels(*j.fit, sum);
      return;
    }
    default: return;
  }
}

static_assert(read_phase_levels - read_phase_fit_lanes + 1 == cooperative_threshold_stages,
              "the read's fit .. levels phases are the threshold's stages, in order");

// Thread t of `threads` runs its share of one phase. Every thread of the group must run every
// phase, in order, with a barrier between phases.
QRP_HD inline void run_cooperative_read_phase(const cooperative_read_job& job, int phase, int t, int threads)
{
  if (phase < read_phase_sample) {
    run_cooperative_measure_phase(job, phase, t, threads);
    return;
  }
  const version_plan& plan = *job.plan;
  read_code_workspace& ws = *job.ws;
  const int n = plan.size;
  switch (phase) {
    case read_phase_sample: {
      const code_map& map = job.tile ? *job.measured : *job.map;
      const double reach = sample_reach(job.module_px);
      for (int k = t; k < n * n; k += threads)
        sample_code_module(job.image, map, job.module_px, reach, n, k / n, k % n, ws.values, ws.valid);
      return;
    }
    case read_phase_fit_lanes:
    case read_phase_fit:
    case read_phase_threshold:
    case read_phase_levels_lanes:
    case read_phase_levels: {
      const cooperative_threshold_job j{ws.values, ws.valid, ws.modules, ws.confidence, job.fit, job.fit_lanes,
                                        job.level_lanes};
      run_cooperative_threshold_phase(plan, j, phase - read_phase_fit_lanes, t, threads);
      return;
    }
    case read_phase_outcome:
      if (t != 0) return;
      *job.outcome = levels_outcome(job.fit->levels);
      if (job.fit->levels.ok) job.outcome->result = job.decode->result;
      return;
    default: {
      if (phase < read_phase_decode || phase >= read_phase_outcome || !job.fit->levels.ok) return;
      const cooperative_decode_job d{&plan, ws.modules, ws.confidence, job.erasure_threshold,
                                     job.out, spec::max_data_codewords, &ws.decode, job.decode};
      run_cooperative_decode_phase(d, phase - read_phase_decode, t, threads);
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The kernel's body: one thread block.

// The codes of one or more images (tiles) as the cooperative read kernel sees them (device
// pointers on the GPU): code i lies in image tile_of[i] (every code in image 0 when tile_of is
// null), so one launch can read the codes of many tiles.
struct cooperative_read_batch {
  const version_plan* plan;
  const gray_view* images;         // per tile
  const std::uint32_t* tile_of;    // per code, or null
  const code_map* maps;            // code i's map, when not measuring
  bool measure;                    // measure each map in tiles[tile_of[i]] at origins[2 i], origins[2 i + 1]
  const tile_anchor_view* tiles;   // per tile, when measuring
  const double* origins;
  std::uint64_t count;
  double module_px;
  std::uint8_t erasure_threshold;
  read_code_workspace* workspaces;  // one per block
  code_map* scratch_maps;           // one per block, when measuring
  std::uint8_t* bytes;              // count x spec::max_data_codewords
  code_outcome* outcomes;
};

// What one block shares while it reads a code (~22 KB).
struct cooperative_read_shared {
  plane_fit fit;
  plane_fit_sums fit_lanes[plane_fit_lanes];
  level_sums level_lanes[plane_fit_lanes];
  cooperative_decode_state decode;
  cooperative_measure_state measure;
};

// One thread block: code block, block + grid, ... of the batch, one at a time, all block_threads
// threads on each. exec as in encode_cooperative_block: f(thread) for every thread, then a barrier.
template <typename Exec>
QRP_HD void read_cooperative_block(const cooperative_read_batch& b, std::uint64_t block, std::uint64_t grid,
                                   int block_threads, cooperative_read_shared& shared, Exec& exec)
{
  for (std::uint64_t i = block; i < b.count; i += grid) {
    const std::uint32_t k = b.tile_of ? b.tile_of[i] : 0;
    cooperative_read_job job{};
    job.plan = b.plan;
    job.image = b.images[k];
    job.map = b.measure ? nullptr : b.maps + i;
    job.tile = b.measure ? b.tiles + k : nullptr;
    job.x0 = b.measure ? b.origins[2 * i] : 0;
    job.y0 = b.measure ? b.origins[2 * i + 1] : 0;
    job.measured = b.measure ? b.scratch_maps + block : nullptr;
    job.module_px = b.module_px;
    job.erasure_threshold = b.erasure_threshold;
    job.ws = b.workspaces + block;
    job.fit = &shared.fit;
    job.fit_lanes = shared.fit_lanes;
    job.level_lanes = shared.level_lanes;
    job.decode = &shared.decode;
    job.measure = &shared.measure;
    job.out = b.bytes + i * spec::max_data_codewords;
    job.outcome = b.outcomes + i;
    for (int phase = 0; phase < cooperative_read_phase_count; ++phase)
      exec([&](int thread) { run_cooperative_read_phase(job, phase, thread, block_threads); });
  }
}

}  // namespace qrplate::core

