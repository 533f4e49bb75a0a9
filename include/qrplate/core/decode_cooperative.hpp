// decode_symbol (decode_symbol.hpp) by a group of threads that cooperate, with the same result
// and bytes: the decoding half of the GPU's cooperative read (read_cooperative.hpp).
//
// The per-codeword and per-block work is spread over the group; what must follow an order stays
// with one thread:
//   copies      the two format copies on two threads (read_format_copy)
//   format      one thread: the copies combined (the readings to try, in order)
//   confidence  one codeword per thread: its least module confidence
//   extract a   one codeword per thread: unmasked with reading a's mask and written straight to
//               its place in the block-major buffer (deinterleaved_position) and, a data
//               codeword, in the data codewords in order (finish_decode's first step)
//   blocks a    one block per thread: decode_block (the fast clean check, else errors and
//               erasures), every block, where the serial decoder stops at the first failure;
//               a block that was corrected copies its data codewords again
//   finish a    one thread: the blocks' outcomes added up in order up to the first failure (so
//               the counts are the serial decoder's), then the segment parser, which notes the
//               byte segments' runs instead of copying them (up to max_byte_runs)
// for reading a = 0, then 1 when the first fails and a second exists (the phases of a reading
// that is not needed do nothing), then
//   copy        one output byte per thread at a time: the noted runs of the decoded reading.
// Phases are separated by barriers.
#pragma once

#include <cstdint>

#include "qrplate/config.hpp"
#include "qrplate/core/decode_symbol.hpp"
#include "qrplate/core/version_plan.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::core {

// A byte segment's run as parse_segments_with hands it over: out[at, at + count) from bit `bit`.
struct byte_run {
  int at, bit, count;
};
inline constexpr int max_byte_runs = 8;  // more byte segments are copied by the parsing thread

// Shared by the group (~1.6 KB).
struct cooperative_decode_state {
  format_reading copies[2];  // each format copy's reading
  bool copy_ok[2];
  format_reading readings[2];
  int count;    // format readings (0..2)
  int nearest;  // nearest-word distance of the format copies
  bool use_confidence;
  bool done;  // `result` is final
  block_outcome blocks[spec::max_blocks];
  decode_result first;   // the first reading's failure
  decode_result result;  // decode_symbol's result once done
  byte_run runs[max_byte_runs];  // noted by the last finish phase that parsed
  int run_count;
};

struct cooperative_decode_job {
  const version_plan* plan;
  const std::uint64_t* modules;
  const std::uint8_t* confidence;  // null: no erasures
  std::uint8_t erasure_threshold;
  std::uint8_t* out;
  int out_capacity;
  decode_workspace* ws;  // the group's
  cooperative_decode_state* state;
};

enum cooperative_decode_phase : int {
  decode_phase_copies,
  decode_phase_format,
  decode_phase_confidence,
  decode_phase_extract_first,
  decode_phase_blocks_first,
  decode_phase_finish_first,
  decode_phase_extract_second,
  decode_phase_blocks_second,
  decode_phase_finish_second,
  decode_phase_copy,
  cooperative_decode_phase_count
};

// Thread t of `threads` runs its share of one phase; every thread runs every phase, in order,
// with a barrier between phases. The result is state->result after the last phase.
QRP_HD inline void run_cooperative_decode_phase(const cooperative_decode_job& job, int phase, int t, int threads)
{
  const version_plan& plan = *job.plan;
  cooperative_decode_state& st = *job.state;
  decode_workspace& ws = *job.ws;
  const int total = plan.layout.total_codewords;
  if (phase == decode_phase_copies) {
    for (int copy = t; copy < 2; copy += threads)
      st.copy_ok[copy] = read_format_copy(job.modules, plan.size, copy, st.copies[copy]);
    return;
  }
  if (phase == decode_phase_format) {
    if (t != 0) return;
    st.count = combine_format_readings(st.copies, st.copy_ok, st.readings, st.nearest);
    st.use_confidence = job.confidence != nullptr && job.erasure_threshold > 0;
    st.done = st.count == 0;
    if (st.done)
      st.result = decode_result{decode_status::bad_format, decode_error::format, ecc_level::L, -1, st.nearest, 0, 0, 0, 0,
                                -1};
    return;
  }
  if (phase == decode_phase_copy) {
    if (!st.done || st.result.data_length == 0) return;  // nothing decoded: out's content is not the result
    for (int k = 0; k < st.run_count; ++k) {
      const byte_run r = st.runs[k];
      for (int i = t; i < r.count; i += threads) job.out[r.at + i] = byte_of_run(ws.data, r.bit, i);
    }
    return;
  }
  // A finish phase is thread 0's, and thread 0 may set `done` there: the others leave without
  // reading it. Read through volatile: a plain read lets the compiler fold the two returns into
  // one test and load `done` on every thread first, while thread 0 writes it (compute-sanitizer
  // racecheck saw exactly that on an H100, 2026-11-24).
  if ((phase == decode_phase_finish_first || phase == decode_phase_finish_second) && t != 0) return;
  if (static_cast<const volatile bool&>(st.done)) return;
  if (phase == decode_phase_confidence) {
    if (!st.use_confidence) return;
    for (int cw = t; cw < total; cw += threads) ws.confidence[cw] = codeword_confidence_of(plan, job.confidence, cw);
    return;
  }
  const int a = phase >= decode_phase_extract_second ? 1 : 0;
  if (a >= st.count) return;
  const format_reading& format = st.readings[a];
  const spec::block_layout b = spec::make_block_layout(plan.version, format.ecc);
  switch (phase - (a ? decode_phase_extract_second : decode_phase_extract_first)) {
    case 0: {  // extract
      const std::uint64_t* overlay = plan.mask_rows[format.mask];
      for (int k = t; k < total; k += threads) {
        const int pos = deinterleaved_position(b, k);
        const std::uint8_t value = extract_codeword(plan, job.modules, overlay, k);
        ws.blocks[pos] = value;
        if (k < b.data_codewords) ws.data[deinterleaved_data_position(b, k)] = value;
        if (st.use_confidence) ws.block_confidence[pos] = ws.confidence[k];
      }
      return;
    }
    case 1:  // blocks
      for (int blk = t; blk < b.blocks; blk += threads) {
        const block_outcome o = decode_block(plan, b, format.ecc, blk, st.use_confidence, job.erasure_threshold, ws);
        st.blocks[blk] = o;
        if (o.ok && o.spent == 0) continue;  // clean: the block is as extracted
        const std::uint8_t* block = ws.blocks + block_offset(b, blk);
        std::uint8_t* data = ws.data + block_data_offset(b, blk);
        for (int i = 0, len = block_data_length(b, blk); i < len; ++i) data[i] = block[i];
      }
      return;
    case 2: {  // finish (thread 0 alone: see above)
      decode_result r = initial_result(plan, format);
      const int budget = b.ecc_per_block - misdecode_protection(plan.version, format.ecc);
      block_tally tally;
      bool all_ok = true;
      for (int blk = 0; blk < b.blocks && all_ok; ++blk) all_ok = tally.add(st.blocks[blk], budget, r);
      st.run_count = 0;
      if (all_ok)
        r = finish_gathered(plan, b, tally, job.out, job.out_capacity, ws, r,
                            [&](std::uint8_t* to, const std::uint8_t* stream, int bit, int count) {
                              if (st.run_count < max_byte_runs)
                                st.runs[st.run_count++] = byte_run{static_cast<int>(to - job.out), bit, count};
                              else
                                copy_byte_run{}(to, stream, bit, count);
                            });
      if (r.status != decode_status::failed || r.error == decode_error::output_full) {
        st.result = r;
        st.done = true;
        return;
      }
      if (a == 0) st.first = r;
      if (a + 1 == st.count) {  // no reading decodes: as decode_symbol reports it
        st.result = st.first;
        if (st.count == 2) {
          st.result.status = decode_status::bad_format;
          st.result.error = decode_error::format;
        }
        st.done = true;
      }
      return;
    }
    default: return;
  }
}

}  // namespace qrplate::core
