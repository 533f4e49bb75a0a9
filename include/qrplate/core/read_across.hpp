// Reading one code that no single image holds whole: it lies across several tiles of a scan. The
// per-code core of the scan reader's reading of such codes (host/scan/scan_reader.cpp, decode_in)
// and of the CUDA kernel that reads them in batches (kernels/decode/), so that both give the same
// statuses and bytes.
//
//   1. every module is sampled in the image that holds its centre farthest from its edges (and
//      at least sample_reach inside); modules no image holds so are not sampled;
//   2. threshold_symbol over all of them: the levels, polarity and SNR of the code;
//   3. tiles differ in brightness (charging, background tilt), so each image's part of the code,
//      where it holds at least 40 known modules and agrees on the polarity, is thresholded again
//      on its own and those modules take that part's bits and confidences;
//   4. decode_symbol with low-confidence modules as erasures;
//   5. only if that fails: modules that two or more images hold (tiles overlap) take the mean of
//      those images' readings, and decode_symbol again. Each image's own fit over every module it
//      holds gives a signed confidence (+ a milled module, - film); the mean's sign is the bit,
//      its size the confidence. Two independent looks at a module halve its noise's variance:
//      harsh scans at 3 px/module lose ~25-30% fewer codes (docs/DECODER.md). Only as a second
//      try because it samples every module once more in every image: done for every code, it
//      made clean v40-L decodes (most codes across tiles) ~40% slower, for nothing.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/code_anchors.hpp"
#include "qrplate/core/read_code.hpp"

namespace qrplate::core {

// The most images one code is read from (scan_reader::workspace holds as many maps).
inline constexpr int max_across = 8;

// One code of a batch of such codes: module (0, 0) at plate module (x0, y0), lying in the
// batch's tiles tiles[0..count) (count <= max_across; the order is read_code_across's).
struct across_code {
  double x0 = 0, y0 = 0;
  std::uint32_t count = 0;
  std::uint32_t tiles[max_across] = {};
};

struct read_across_workspace {
  static constexpr int cells = spec::max_symbol_size * spec::max_symbol_size;
  float values[cells];
  std::uint8_t valid[cells];
  std::uint8_t source[cells];  // the image each module was sampled in
  std::uint8_t part[cells];    // one image's part of the code
  std::uint8_t confidence[cells];
  std::uint8_t part_confidence[cells];
  std::int16_t reading_sum[cells];  // step 5: the images' signed confidences, added up
  std::uint8_t readers[cells];       // step 5: the images whose reading a module has
  std::uint64_t modules[spec::max_symbol_size * max_words];
  std::uint64_t part_modules[spec::max_symbol_size * max_words];
  decode_workspace decode;
};

// One image's own fit of its part of a code is used (steps 3 and 5 of read_code_across) when it
// rests on at least 40 known modules and agrees with the whole code's fit lv on the polarity.
QRP_HD inline bool own_fit_usable(const symbol_levels& own, const symbol_levels& lv)
{
  return own.ok && own.known >= 40 && (own.dark - own.light) * (lv.dark - lv.light) > 0;
}

// Step 5 of read_code_across: where two or more of the images hold a module (at least
// sample_reach inside), its bit and confidence become the mean of their readings. Each image is
// sampled over every module it holds and thresholded on its own fit (at least 40 known modules,
// the polarity of lv), as a signed confidence; an image without such a fit gives none. Uses
// ws.values, ws.part, ws.part_modules and ws.part_confidence as scratch. Returns whether any
// module changed hands so (false: nothing to decode again).
// threshold_rows: as threshold_symbol_with takes it.
template <class ThresholdRows = threshold_rows_plainly>
QRP_HD inline bool combine_overlapping_readings(const version_plan& plan, const gray_view* images, const code_map* maps,
                                                int count, double module_px, const symbol_levels& lv,
                                                read_across_workspace& ws,
                                                const ThresholdRows& threshold_rows = ThresholdRows{})
{
  if (count < 2) return false;
  const int n = plan.size, cells = n * n;
  for (int k = 0; k < cells; ++k) ws.reading_sum[k] = 0, ws.readers[k] = 0;
  for (int i = 0; i < count; ++i) {
    if (sample_code(plan, images[i], maps[i], module_px, ws.values, ws.part) == 0) continue;  // every module it holds
    const symbol_levels own =
        threshold_symbol_with(plan, ws.values, ws.part, ws.part_modules, ws.part_confidence, threshold_rows);
    if (!own_fit_usable(own, lv)) continue;
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) {
        const int k = r * n + c;
        if (!ws.part[k]) continue;
        const int confidence = ws.part_confidence[k];
        ws.reading_sum[k] = static_cast<std::int16_t>(ws.reading_sum[k] +
                                                      (get_bit(ws.part_modules + r * plan.words, c) ? confidence : -confidence));
        ++ws.readers[k];
      }
  }
  bool averaged = false;
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) {
      const int k = r * n + c;
      if (ws.readers[k] < 2) continue;
      const int sum = ws.reading_sum[k], mean_size = (sum < 0 ? -sum : sum) / ws.readers[k];
      set_bit(ws.modules + r * plan.words, c, sum > 0);
      ws.confidence[k] = static_cast<std::uint8_t>(mean_size);
      averaged = true;
    }
  return averaged;
}

// Step 1 of read_code_across for module k = r * n + c of a size-n code: sampled in the image
// that holds its centre farthest inside (at least `reach`; the first such image on a tie), into
// ws.values, ws.valid and ws.source. Modules are independent: the cooperative kernel
// (read_across_cooperative.hpp) gives each thread its own.
QRP_HD inline void sample_across_module(const gray_view* images, const code_map* maps, int count, double module_px,
                                        double reach, int n, int k, read_across_workspace& ws)
{
  const int r = k / n, c = k % n;
  int best = -1;
  double best_margin = reach, bu = 0, bv = 0;
  for (int i = 0; i < count; ++i) {
    double u, v;
    maps[i].apply(c + 0.5, r + 0.5, u, v);
    const double margin = interior(u, v, images[i].width, images[i].height);
    if (margin > best_margin) best_margin = margin, best = i, bu = u, bv = v;
  }
  ws.valid[k] = best >= 0 ? 1 : 0;
  ws.source[k] = static_cast<std::uint8_t>(best < 0 ? 0 : best);
  // (Deeper than reach: sample_module_inside's value is sample_module's, without the edge clamps.)
  ws.values[k] = best >= 0 ? sample_module_inside(images[best], bu, bv, module_px) : 0.0f;
}

// Steps 2-5 of read_code_across, once every module is sampled (sample_across_module); each
// thresholding's rows by threshold_rows (threshold_symbol_with).
template <class ThresholdRows = threshold_rows_plainly>
QRP_HD inline code_outcome finish_code_across(const version_plan& plan, const gray_view* images, const code_map* maps,
                                              int count, double module_px, std::uint8_t erasure_threshold,
                                              std::uint8_t* out, read_across_workspace& ws,
                                              const ThresholdRows& threshold_rows = ThresholdRows{})
{
  const int n = plan.size;
  const symbol_levels lv = threshold_symbol_with(plan, ws.values, ws.valid, ws.modules, ws.confidence, threshold_rows);
  if (!lv.ok) return levels_outcome(lv);
  const int cells = n * n;
  for (int i = 0; i < count; ++i) {
    int here = 0;
    for (int k = 0; k < cells; ++k) {
      ws.part[k] = ws.valid[k] && ws.source[k] == i ? 1 : 0;
      here += ws.part[k];
    }
    if (here == 0 || here == cells) continue;
    const symbol_levels part =
        threshold_symbol_with(plan, ws.values, ws.part, ws.part_modules, ws.part_confidence, threshold_rows);
    if (!own_fit_usable(part, lv)) continue;
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) {
        const int k = r * n + c;
        if (!ws.part[k]) continue;
        set_bit(ws.modules + r * plan.words, c, get_bit(ws.part_modules + r * plan.words, c));
        ws.confidence[k] = ws.part_confidence[k];
      }
  }
  code_outcome o = decode_thresholded(plan, lv, erasure_threshold, ws.modules, ws.confidence, out, ws.decode);
  if (!decoded(o.result) && combine_overlapping_readings(plan, images, maps, count, module_px, lv, ws, threshold_rows))
    o = decode_thresholded(plan, lv, erasure_threshold, ws.modules, ws.confidence, out, ws.decode);
  return o;
}

// Reads the code whose modules images[i] shows through maps[i], i < count (1..max_across; the
// order decides ties: the first image that holds a module deepest samples it). out:
// spec::max_data_codewords bytes. levels.ok false: no contrast (the result is then decode_status
// failed with error none, as read_code gives).
QRP_HD inline code_outcome read_code_across(const version_plan& plan, const gray_view* images, const code_map* maps,
                                            int count, double module_px, std::uint8_t erasure_threshold,
                                            std::uint8_t* out, read_across_workspace& ws)
{
  const int n = plan.size;
  const double reach = sample_reach(module_px);
  for (int k = 0; k < n * n; ++k) sample_across_module(images, maps, count, module_px, reach, n, k, ws);
  return finish_code_across(plan, images, maps, count, module_px, erasure_threshold, out, ws);
}

// A batch of codes across tiles, as the CUDA kernel reads it (read_across_cooperative.hpp; the
// CPU batch, one code per call of measure_and_read_across): each code's map is measured in each
// of its tiles (measure_code_map on tiles[k].iv), then read_code_across. maps: max_across
// scratch maps per worker (a GPU block).
struct across_read_batch {
  const version_plan* plan = nullptr;
  const gray_view* images = nullptr;         // per tile
  const tile_anchor_view* tiles = nullptr;   // per tile
  const across_code* codes = nullptr;
  std::uint64_t count = 0;
  double module_px = 0;
  std::uint8_t erasure_threshold = 0;
  read_across_workspace* workspaces = nullptr;  // one per worker (a GPU block)
  code_map* maps = nullptr;                     // max_across per worker
  std::uint8_t* bytes = nullptr;                // count x spec::max_data_codewords
  code_outcome* outcomes = nullptr;             // count
};

// Code i of the batch on worker w (its workspace and maps).
QRP_HD inline void measure_and_read_across(const across_read_batch& b, std::uint64_t i, std::uint64_t w)
{
  const across_code& code = b.codes[i];
  const int count = code.count < static_cast<std::uint32_t>(max_across) ? static_cast<int>(code.count) : max_across;
  code_map* maps = b.maps + w * max_across;
  gray_view images[max_across];
  for (int k = 0; k < count; ++k) {
    images[k] = b.images[code.tiles[k]];
    measure_code_map(b.tiles[code.tiles[k]], *b.plan, code.x0, code.y0, maps[k]);
  }
  b.outcomes[i] = read_code_across(*b.plan, images, maps, count, b.module_px, b.erasure_threshold,
                                   b.bytes + i * spec::max_data_codewords, b.workspaces[w]);
}

}  // namespace qrplate::core
