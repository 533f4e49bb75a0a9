// The GPU fast path of encoding (core/encode_cooperative.hpp) run on the CPU: the same phase
// functions the CUDA kernel calls, each phase's threads one after another in a shuffled order,
// for several group sizes. Held to the per-code core (encode_byte_payload and its eight mask
// scores) and, for the penalty, to penalty_reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "qrplate/core/encode_cooperative.hpp"
#include "qrplate/core/encode_symbol.hpp"
#include "qrplate/core/penalty.hpp"
#include "qrplate/qr.hpp"
#include "thread_emulation.hpp"

namespace {

using namespace qrplate;

constexpr std::uint64_t garbage = 0xA5A5A5A5A5A5A5A5ull;  // what shared memory holds before a phase writes

struct emulated {
  std::vector<std::uint64_t> out;
  int mask = 0;
  int scores[8] = {};
};

// Runs every phase for threads 0..threads-1 in a new random order per phase: a phase that read
// another thread's output of the same phase, or memory no phase wrote, would show here.
emulated run_group(const core::version_plan& plan, const core::cooperative_tables& tables,
                   const std::vector<std::uint8_t>& payload, int mask, int threads, std::mt19937_64& rng,
                   const std::uint64_t* preset_rows = nullptr)
{
  const core::cooperative_layout layout = core::make_cooperative_layout(plan);
  std::vector<std::uint64_t> shared(layout.bytes / 8, garbage);
  emulated e;
  e.out.assign(static_cast<std::size_t>(plan.size * plan.words), garbage);
  core::cooperative_job job{&plan,
                            &tables,
                            layout,
                            core::bind_cooperative_code(shared.data(), layout),
                            payload.data(),
                            static_cast<std::uint32_t>(payload.size()),
                            mask,
                            e.out.data()};
  test::shuffled_threads exec{threads, rng};
  for (int phase = 0; phase < core::cooperative_phase_count; ++phase) {
    exec([&](int t) { core::run_cooperative_phase(job, phase, t, threads); });
    if (preset_rows && phase == core::phase_place)  // a test matrix in place of the placed symbol
      std::copy(preset_rows, preset_rows + plan.size * plan.words, job.code.rows);
  }
  e.mask = job.code.result[0];
  std::copy(job.code.result + 1, job.code.result + 9, e.scores);
  return e;
}

std::unique_ptr<core::cooperative_tables> tables_for(const core::version_plan& plan)
{
  auto t = std::make_unique<core::cooperative_tables>();
  core::build_cooperative_tables(plan, *t);
  return t;
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937_64& rng)
{
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

TEST(CooperativeEncode, DataCodewordsAreTheSerialWritersBytes)
{
  std::mt19937_64 rng(5);
  for (int v : {1, 9, 10, 26, 27, 40}) {
    for (auto ecc : {ecc_level::L, ecc_level::H}) {
      const int data = spec::num_data_codewords(v, ecc);
      const int count_bits = spec::char_count_bits(spec::segment_mode::byte, v);
      const int cap = max_byte_payload(v, ecc);
      for (int len : {0, 1, 2, cap / 2, cap - 2, cap - 1, cap}) {
        const auto payload = random_bytes(static_cast<std::size_t>(len), rng);
        std::vector<std::uint8_t> serial(static_cast<std::size_t>(data));
        ASSERT_TRUE(core::build_byte_mode_codewords(payload.data(), static_cast<std::uint32_t>(len), v, ecc,
                                                    serial.data()));
        for (int k = 0; k < data; ++k)
          ASSERT_EQ(core::detail::byte_mode_codeword(payload.data(), static_cast<std::uint32_t>(len), count_bits, k),
                    serial[static_cast<std::size_t>(k)])
              << "v" << v << " length " << len << " codeword " << k;
      }
      EXPECT_FALSE(core::byte_mode_fits(static_cast<std::uint32_t>(cap + 1), v, ecc));
      EXPECT_TRUE(core::byte_mode_fits(static_cast<std::uint32_t>(cap), v, ecc));
    }
  }
}

TEST(CooperativeEncode, Transpose8x8MovesEveryBitToItsMirror)
{
  std::mt19937_64 rng(13);
  for (int trial = 0; trial < 1000; ++trial) {
    const std::uint64_t x = trial < 64 ? std::uint64_t{1} << trial : rng();
    const std::uint64_t y = core::detail::transpose_8x8(x);
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c) ASSERT_EQ((y >> (8 * c + r)) & 1u, (x >> (8 * r + c)) & 1u) << std::hex << x;
  }
}

// The placement phase (gather ops, modules two at a time where a pair allows) against the plain
// gather through module_source, on random codeword buffers, for every version and level.
TEST(CooperativeEncode, PlaceOpsGatherWhatModuleSourceSays)
{
  std::mt19937_64 rng(14);
  long long ops = 0, modules = 0;
  for (int v = 1; v <= 40; ++v) {
    for (auto ecc : {ecc_level::L, ecc_level::M, ecc_level::Q, ecc_level::H}) {
      const core::version_plan& plan = host::version_plan_for(v, ecc);
      const auto tables = tables_for(plan);
      const int words = plan.size * plan.words;
      const core::cooperative_layout layout = core::make_cooperative_layout(plan);
      std::vector<std::uint64_t> shared(layout.bytes / 8, garbage);
      std::vector<std::uint64_t> out(static_cast<std::size_t>(words));
      const std::vector<std::uint8_t> payload;  // fits: the phase runs; the codewords are set below
      const core::cooperative_job job{&plan, tables.get(), layout, core::bind_cooperative_code(shared.data(), layout),
                                      payload.data(), 0, core::auto_mask, out.data()};
      for (int i = 0; i < plan.layout.total_codewords; ++i) job.code.codewords[i] = static_cast<std::uint8_t>(rng());
      const int threads = 1 + static_cast<int>(rng() % 200);
      test::shuffled_threads exec{threads, rng};
      exec([&](int t) { core::run_cooperative_phase(job, core::phase_place, t, threads); });
      for (int idx = 0; idx < words; ++idx) {
        std::uint64_t want = plan.base[idx];
        for (int bit = 0; bit < 64; ++bit) {
          const unsigned s = tables->module_source[64 * idx + bit];
          if (s == core::no_source) continue;
          want |= static_cast<std::uint64_t>((job.code.codewords[s >> 3] >> (7 - (s & 7))) & 1u) << bit;
          ++modules;
        }
        ASSERT_EQ(job.code.rows[idx], want) << "v" << v << "-" << to_string(ecc) << " word " << idx;
        ops += tables->place_count[idx];
      }
    }
  }
  // Most data modules go two at a time (not a requirement, the point of the ops).
  EXPECT_LT(static_cast<double>(ops), 0.6 * static_cast<double>(modules));
}

// The parity phase (a block per thread, the table LFSR) against the plain polynomial division,
// block by block, for short and long blocks and for group sizes below and above the block count.
TEST(CooperativeEncode, ParityIsEachBlocksRemainderByPlainDivision)
{
  std::mt19937_64 rng(12);
  for (int v : {1, 5, 14, 27, 40}) {
    for (auto ecc : {ecc_level::L, ecc_level::H}) {
      const core::version_plan& plan = host::version_plan_for(v, ecc);
      const auto tables = tables_for(plan);
      const spec::block_layout& b = plan.layout;
      const int d = b.ecc_per_block;
      if (d < 1 || d > core::rs_max_degree) FAIL() << "ECC block of " << d;  // (and tells g++ the bounds)
      std::uint8_t gen[core::rs_max_degree];
      core::rs_generator(d, gen);
      for (int threads : {1, 3, 64}) {
        const auto payload = random_bytes(rng() % (max_byte_payload(v, ecc) + 1), rng);
        const core::cooperative_layout layout = core::make_cooperative_layout(plan);
        std::vector<std::uint64_t> shared(layout.bytes / 8, garbage);
        std::vector<std::uint64_t> out(static_cast<std::size_t>(plan.size * plan.words));
        const core::cooperative_job job{&plan, tables.get(), layout, core::bind_cooperative_code(shared.data(), layout),
                                        payload.data(), static_cast<std::uint32_t>(payload.size()), core::auto_mask,
                                        out.data()};
        test::shuffled_threads exec{threads, rng};
        for (int phase : {core::phase_data, core::phase_parity})
          exec([&](int t) { core::run_cooperative_phase(job, phase, t, threads); });
        for (int blk = 0; blk < b.blocks; ++blk) {
          const int len = blk < b.short_blocks ? b.short_data : b.short_data + 1;
          std::uint8_t want[core::rs_max_degree];
          core::rs_remainder_reference(job.code.codewords + core::block_data_start(b, blk), len, gen, d, want);
          for (int i = 0; i < d; ++i)
            ASSERT_EQ(job.code.codewords[b.data_codewords + blk * d + i], want[i])
                << "v" << v << "-" << to_string(ecc) << " threads " << threads << " block " << blk << " i " << i;
        }
      }
    }
  }
}

// Every version and level, automatic mask: the same matrix, mask and eight scores as the core.
TEST(CooperativeEncode, EveryVersionAndLevelIsTheCore)
{
  const unsigned seed = 20261122;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  auto ws = std::make_unique<core::encode_workspace>();
  for (int v = 1; v <= 40; ++v) {
    for (auto ecc : {ecc_level::L, ecc_level::M, ecc_level::Q, ecc_level::H}) {
      const core::version_plan& plan = host::version_plan_for(v, ecc);
      const auto tables = tables_for(plan);
      const int cap = max_byte_payload(v, ecc);
      for (int threads : {1, 32, 96, 256}) {
        const int len = threads == 32 ? cap : (threads == 1 ? 0 : static_cast<int>(rng() % (cap + 1)));
        const auto payload = random_bytes(static_cast<std::size_t>(len), rng);
        std::vector<std::uint64_t> want(static_cast<std::size_t>(plan.size * plan.words));
        int want_scores[8];
        ASSERT_TRUE(core::build_byte_mode_codewords(payload.data(), static_cast<std::uint32_t>(len), v, ecc, ws->data));
        const int want_mask = core::encode_from_data_codewords(plan, *ws, core::auto_mask, want.data(), want_scores);
        const emulated got = run_group(plan, *tables, payload, core::auto_mask, threads, rng);
        SCOPED_TRACE(::testing::Message() << "v" << v << "-" << to_string(ecc) << " threads " << threads << " length "
                                          << len);
        ASSERT_EQ(got.mask, want_mask);
        for (int m = 0; m < 8; ++m) ASSERT_EQ(got.scores[m], want_scores[m]) << "mask " << m;
        ASSERT_EQ(got.out, want);
      }
    }
  }
}

TEST(CooperativeEncode, ForcedMasksAreTheCore)
{
  std::mt19937_64 rng(3);
  auto ws = std::make_unique<core::encode_workspace>();
  for (int v : {1, 7, 21, 40}) {
    const core::version_plan& plan = host::version_plan_for(v, ecc_level::Q);
    const auto tables = tables_for(plan);
    for (int mask = 0; mask < 8; ++mask) {
      const auto payload = random_bytes(rng() % (max_byte_payload(v, ecc_level::Q) + 1), rng);
      std::vector<std::uint64_t> want(static_cast<std::size_t>(plan.size * plan.words));
      ASSERT_EQ(core::encode_byte_payload(plan, payload.data(), static_cast<std::uint32_t>(payload.size()), mask, *ws,
                                          want.data()),
                mask);
      const emulated got = run_group(plan, *tables, payload, mask, 64, rng);
      ASSERT_EQ(got.mask, mask);
      ASSERT_EQ(got.out, want) << "v" << v << " mask " << mask;
    }
  }
}

TEST(CooperativeEncode, TooLongPayloadGivesAnAllLightMatrixAndNoMask)
{
  std::mt19937_64 rng(4);
  for (int v : {1, 40}) {
    const core::version_plan& plan = host::version_plan_for(v, ecc_level::M);
    const auto tables = tables_for(plan);
    const auto payload = random_bytes(static_cast<std::size_t>(max_byte_payload(v, ecc_level::M) + 1), rng);
    for (int mask : {core::auto_mask, 2}) {
      const emulated got = run_group(plan, *tables, payload, mask, 32, rng);
      EXPECT_EQ(got.mask, -1);
      EXPECT_EQ(got.out, std::vector<std::uint64_t>(got.out.size(), 0));
    }
  }
}

// The scoring phases on arbitrary matrices (a plan whose mask overlays are all light, so all
// eight scores are the matrix's own): the windowed N1/N3 counts and the N2 tasks against the
// plain run-length reference, with 1:1:3:1:1 patterns of scales 1..5 planted on some.
TEST(CooperativeEncode, ScoresArbitraryMatricesAsTheReference)
{
  const unsigned seed = 11;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  auto plan = std::make_unique<core::version_plan>();
  std::memset(plan.get(), 0, sizeof(core::version_plan));
  auto tables = std::make_unique<core::cooperative_tables>();  // no place ops: placement writes the base only
  for (int v : {1, 2, 10, 11, 12, 21, 28, 40}) {
    const int n = spec::symbol_size(v);
    const int w = words_per_row(n);
    plan->version = v;
    plan->ecc = ecc_level::L;
    plan->size = n;
    plan->words = w;
    plan->layout = spec::make_block_layout(v, ecc_level::L);
    for (int trial = 0; trial < 12; ++trial) {
      std::vector<std::uint64_t> rows(static_cast<std::size_t>(n * w), 0);
      const double density = trial < 2 ? 0.0 : (trial < 4 ? 0.97 : 0.5);
      std::bernoulli_distribution dark(density);
      for (int r = 0; r < n; ++r)
        for (int c = 0; c < n; ++c) core::set_bit(rows.data() + r * w, c, dark(rng));
      if (trial >= 6) {  // a finder-like pattern with light margins, in a row or a column
        const int scale = 1 + trial % 5, len = 7 * scale;
        const int line = static_cast<int>(rng() % n);
        const int at = trial == 7 ? 0 : (trial == 8 ? n - len : static_cast<int>(rng() % n) - scale);
        const bool along_row = trial % 2 == 0;
        auto set = [&](int k, bool value) {
          if (k < 0 || k >= n) return;
          along_row ? core::set_bit(rows.data() + line * w, k, value) : core::set_bit(rows.data() + k * w, line, value);
        };
        for (int k = at - 4 * scale; k < at + len + 4 * scale; ++k) set(k, false);
        const int runs[5] = {scale, scale, 3 * scale, scale, scale};
        int k = at;
        for (int r = 0; r < 5; ++r)
          for (int j = 0; j < runs[r]; ++j) set(k++, r % 2 == 0);
      }
      const int want = core::penalty_reference({rows.data(), n});
      const emulated got = run_group(*plan, *tables, {}, core::auto_mask, 48, rng, rows.data());
      for (int m = 0; m < 8; ++m) ASSERT_EQ(got.scores[m], want) << "v" << v << " trial " << trial << " mask " << m;
      ASSERT_EQ(got.out, rows);
    }
  }
}

// The kernel's whole body (core::encode_cooperative_block) over a small grid, block after block:
// rounds, groups, shared-memory slices, codes past the end and too-long payloads, against the
// per-code core.
TEST(CooperativeEncode, KernelBlocksOverAGridAreTheCore)
{
  std::mt19937_64 rng(9);
  auto ws = std::make_unique<core::encode_workspace>();
  constexpr int block_threads = 256;
  for (int v : {1, 10, 40}) {
    const core::version_plan& plan = host::version_plan_for(v, ecc_level::M);
    const auto tables = tables_for(plan);
    const core::cooperative_layout layout = core::make_cooperative_layout(plan);
    const int cap = max_byte_payload(v, ecc_level::M);
    std::vector<std::uint8_t> bytes;
    std::vector<std::uint64_t> offsets{0};
    const std::uint64_t count = 37;
    for (std::uint64_t i = 0; i < count; ++i) {
      const int len = i == 5 ? cap + 1 : static_cast<int>(rng() % (cap + 1));
      for (int k = 0; k < len; ++k) bytes.push_back(static_cast<std::uint8_t>(rng()));
      offsets.push_back(bytes.size());
    }
    const std::size_t stride = words_per_symbol(plan.size);
    for (int per_code : {32, 64, 256}) {
      for (unsigned grid : {1u, 3u}) {
        for (int mask : {core::auto_mask, 4}) {
          std::vector<std::uint64_t> modules(count * stride, garbage);
          std::vector<std::uint8_t> masks(count, 0xEE), status(count, 0xEE);
          const core::cooperative_batch batch{&plan, tables.get(), layout, bytes.data(), offsets.data(), count, mask,
                                              per_code, modules.data(), masks.data(), status.data()};
          std::vector<std::uint64_t> shared(static_cast<std::size_t>(block_threads / per_code) * layout.bytes / 8,
                                            garbage);
          test::shuffled_threads exec{block_threads, rng};
          for (unsigned block = 0; block < grid; ++block)
            core::encode_cooperative_block(batch, block, grid, block_threads,
                                           reinterpret_cast<unsigned char*>(shared.data()), exec);
          for (std::uint64_t i = 0; i < count; ++i) {
            SCOPED_TRACE(::testing::Message() << "v" << v << " per_code " << per_code << " grid " << grid << " mask "
                                              << mask << " code " << i);
            std::vector<std::uint64_t> want(stride);
            const int used = core::encode_byte_payload(plan, bytes.data() + offsets[i],
                                                       static_cast<std::uint32_t>(offsets[i + 1] - offsets[i]), mask,
                                                       *ws, want.data());
            ASSERT_EQ(status[i], used < 0 ? 1 : 0);
            ASSERT_EQ(masks[i], used < 0 ? 0 : used);
            ASSERT_TRUE(std::equal(want.begin(), want.end(), modules.begin() + static_cast<long>(i * stride)));
          }
        }
      }
    }
  }
}

TEST(CooperativeEncode, TwoBlocksOfEveryVersionFitAnSmsSharedMemory)
{
  // H100 (sm_90): 228 KB of shared memory per SM, 227 KB at most per block, 1 KB reserved per
  // resident block. The kernel asks for two resident blocks (__launch_bounds__); every version's
  // block (its codes' layouts side by side) must leave room for both.
  constexpr std::uint32_t per_sm = 228u * 1024u, per_block = 227u * 1024u, reserved = 1024u;
  for (int v = 1; v <= 40; ++v) {
    const core::version_plan& plan = host::version_plan_for(v, ecc_level::L);
    const core::cooperative_layout l = core::make_cooperative_layout(plan);
    EXPECT_EQ(l.bytes % 8, 0u);
    const int per_code = core::cooperative_threads_per_code(plan.size);
    ASSERT_EQ(core::cooperative_block_threads % per_code, 0) << "v" << v;
    const std::uint32_t block = static_cast<std::uint32_t>(core::cooperative_block_threads / per_code) * l.bytes;
    EXPECT_LE(block, per_block) << "v" << v;
    EXPECT_LE(2 * (block + reserved), per_sm) << "v" << v << ": " << block << " bytes a block";
  }
}

}  // namespace
