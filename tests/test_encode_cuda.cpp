// The CUDA encode backend's own pieces (CUDA builds only; every test that needs a device skips
// without one): both kernels against the CPU backend, and the stream-ordered device API.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <random>
#include <vector>

#include "cuda/cuda_check.hpp"
#include "cuda/encode_cuda.hpp"
#include "qrplate/cuda/device_encoder.hpp"
#include "qrplate/encode.hpp"
#include "qrplate/error.hpp"
#include "qrplate/host_memory.hpp"
#include "qrplate/qr.hpp"

namespace {

using namespace qrplate;

struct payloads {
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint64_t> offsets{0};
  payload_batch_view view() const { return {bytes.data(), offsets.data(), offsets.size() - 1}; }
};

// count payloads: full capacity, empty, one byte too long, then random lengths.
payloads random_payloads(int version, ecc_level ecc, int count, std::mt19937_64& rng)
{
  payloads p;
  const int cap = max_byte_payload(version, ecc);
  for (int i = 0; i < count; ++i) {
    const int len = i == 0 ? cap : i == 1 ? 0 : i == 2 ? cap + 1 : static_cast<int>(rng() % (cap + 1));
    for (int k = 0; k < len; ++k) p.bytes.push_back(static_cast<std::uint8_t>(rng()));
    p.offsets.push_back(p.bytes.size());
  }
  return p;
}

void expect_same(const symbol_batch& a, const symbol_batch& b)
{
  ASSERT_EQ(a.count(), b.count());
  for (std::uint64_t i = 0; i < a.count(); ++i) {
    ASSERT_EQ(a.status()[i], b.status()[i]) << "item " << i;
    ASSERT_EQ(a.masks()[i], b.masks()[i]) << "item " << i;
    for (std::size_t w = 0; w < a.words_per_symbol(); ++w)
      ASSERT_EQ(a.symbol(i).rows[w], b.symbol(i).rows[w]) << "item " << i << " word " << w;
  }
}

TEST(CudaEncode, BothKernelsAreTheCpuBackend)
{
  if (!cuda_backend_available()) GTEST_SKIP() << "no CUDA device";
  std::mt19937_64 rng(31);
  for (int v : {1, 5, 9, 10, 19, 20, 26, 27, 33, 40}) {
    for (auto ecc : {ecc_level::L, ecc_level::H}) {
      for (int mask : {-1, 6}) {
        // 2500 codes: several rounds of the grid-stride loop and more than one driver chunk for
        // the large versions; groups past the end of the batch in the last round.
        const payloads p = random_payloads(v, ecc, 2500, rng);
        batch_encode_options o;
        o.version = v;
        o.ecc = ecc;
        o.mask = mask;
        o.where = backend::cpu;
        symbol_batch cpu, coop, plain;
        encode(p.view(), o, cpu);
        coop.reset(v, ecc, p.view().count);
        plain.reset(v, ecc, p.view().count);
        host::encode_cuda(p.view(), o, coop, host::cuda_encode_kernel::cooperative);
        host::encode_cuda(p.view(), o, plain, host::cuda_encode_kernel::per_thread);
        SCOPED_TRACE(::testing::Message() << "v" << v << "-" << to_string(ecc) << " mask " << mask);
        ASSERT_EQ(cpu.status()[2], encode_status::too_long);
        expect_same(coop, cpu);
        expect_same(plain, cpu);
      }
    }
  }
}

TEST(CudaEncode, DeviceEncoderOnDeviceMemoryIsTheCpuBackend)
{
  if (!cuda_backend_available()) GTEST_SKIP() << "no CUDA device";
  std::mt19937_64 rng(32);
  const int v = 12;
  const payloads p = random_payloads(v, ecc_level::Q, 777, rng);
  batch_encode_options o;
  o.version = v;
  o.ecc = ecc_level::Q;
  o.where = backend::cpu;
  symbol_batch cpu;
  encode(p.view(), o, cpu);

  const cuda::device_encoder encoder(v, ecc_level::Q);
  ASSERT_EQ(encoder.words_per_symbol(), cpu.words_per_symbol());
  const std::uint64_t n = cpu.count();
  host::device_buffer<std::uint8_t> bytes(p.bytes.size()), masks(n), status(n);
  host::device_buffer<std::uint64_t> offsets(n + 1), modules(n * cpu.words_per_symbol());
  QRP_CUDA_TRY(cudaMemcpy(bytes.data(), p.bytes.data(), p.bytes.size(), cudaMemcpyHostToDevice));
  QRP_CUDA_TRY(cudaMemcpy(offsets.data(), p.offsets.data(), (n + 1) * 8, cudaMemcpyHostToDevice));
  host::stream_owner stream;
  const cuda::device_symbols out{modules.data(), masks.data(), reinterpret_cast<encode_status*>(status.data())};
  ASSERT_EQ(encoder.encode_async({bytes.data(), offsets.data(), n}, -1, out, stream.get()), cudaSuccess);
  EXPECT_EQ(encoder.encode_async({bytes.data(), offsets.data(), n}, 8, out, stream.get()), cudaErrorInvalidValue);
  QRP_CUDA_TRY(cudaStreamSynchronize(stream.get()));

  symbol_batch gpu;
  gpu.reset(v, ecc_level::Q, n);
  QRP_CUDA_TRY(cudaMemcpy(gpu.modules(), modules.data(), n * cpu.words_per_symbol() * 8, cudaMemcpyDeviceToHost));
  QRP_CUDA_TRY(cudaMemcpy(gpu.masks(), masks.data(), n, cudaMemcpyDeviceToHost));
  QRP_CUDA_TRY(cudaMemcpy(gpu.status(), status.data(), n, cudaMemcpyDeviceToHost));
  expect_same(gpu, cpu);
}

// Payloads and results in pinned memory go by DMA without the staging copies, pageable ones
// through them, in every combination; the bytes are the CPU backend's either way. Small chunks
// (5 codes) make each lane carry several, so results land at each chunk's own place in the
// caller's memory. The staged byte count says which path each buffer took.
TEST(CudaEncode, PinnedMemorySkipsTheStagingAndGivesTheSameBytes)
{
  if (!cuda_backend_available()) GTEST_SKIP() << "no CUDA device";
  std::mt19937_64 rng(34);
  const int v = 7;
  const payloads p = random_payloads(v, ecc_level::H, 61, rng);
  batch_encode_options o;
  o.version = v;
  o.ecc = ecc_level::H;
  o.where = backend::cpu;
  symbol_batch cpu;
  encode(p.view(), o, cpu);
  const std::uint64_t n = cpu.count();
  const std::uint64_t result_bytes = n * cpu.words_per_symbol() * 8 + 2 * n;  // matrices, masks, statuses

  host_array<std::uint8_t> pinned_bytes(host_memory::pinned);
  pinned_bytes.resize(p.bytes.size());
  ASSERT_EQ(pinned_bytes.memory(), host_memory::pinned);
  std::copy(p.bytes.begin(), p.bytes.end(), pinned_bytes.data());
  for (const host_memory in : {host_memory::pageable, host_memory::pinned}) {
    for (const host_memory out : {host_memory::pageable, host_memory::pinned}) {
      SCOPED_TRACE(::testing::Message() << "payloads " << to_string(in) << ", results " << to_string(out));
      const payload_batch_view view{in == host_memory::pinned ? pinned_bytes.data() : p.bytes.data(), p.offsets.data(), n};
      symbol_batch gpu(out);
      gpu.reset(v, ecc_level::H, n);
      ASSERT_EQ(gpu.memory(), out);
      const std::uint64_t before = host::cuda_encode_staged_bytes();
      host::encode_cuda(view, o, gpu, host::cuda_encode_kernel::cooperative, 5);
      const std::uint64_t staged = host::cuda_encode_staged_bytes() - before;
      EXPECT_EQ(staged, (in == host_memory::pinned ? 0 : p.bytes.size()) + (out == host_memory::pinned ? 0 : result_bytes));
      expect_same(gpu, cpu);
    }
  }
}

// A failed CUDA call that was caught (here: out of memory) must not be blamed on the next
// launch, which reads the host thread's last-error slot (the emulation found this).
TEST(CudaEncode, ACaughtCudaErrorDoesNotFailTheNextEncode)
{
  if (!cuda_backend_available()) GTEST_SKIP() << "no CUDA device";
  EXPECT_THROW(host::device_buffer<std::uint8_t>(std::size_t{1} << 42), host::cuda_error);  // 4 TiB: no GPU has it
  std::mt19937_64 rng(33);
  const payloads p = random_payloads(5, ecc_level::M, 50, rng);
  batch_encode_options o;
  o.version = 5;
  o.ecc = ecc_level::M;
  o.where = backend::cpu;
  symbol_batch cpu, gpu;
  encode(p.view(), o, cpu);
  o.where = backend::cuda;
  ASSERT_NO_THROW(encode(p.view(), o, gpu));
  expect_same(gpu, cpu);
}

// QRPLATE_CUDA_SYNC's values (cuda_device_present applies them before the first context).
TEST(CudaSyncPreference, NamesMapToScheduleFlags)
{
  unsigned flags = 99;
  ASSERT_TRUE(host::cuda_sync_flags("spin", flags));
  EXPECT_EQ(flags, unsigned{cudaDeviceScheduleSpin});
  ASSERT_TRUE(host::cuda_sync_flags("yield", flags));
  EXPECT_EQ(flags, unsigned{cudaDeviceScheduleYield});
  ASSERT_TRUE(host::cuda_sync_flags("block", flags));
  EXPECT_EQ(flags, unsigned{cudaDeviceScheduleBlockingSync});
  ASSERT_TRUE(host::cuda_sync_flags("auto", flags));
  EXPECT_EQ(flags, unsigned{cudaDeviceScheduleAuto});
  flags = 99;
  ASSERT_TRUE(host::cuda_sync_flags("", flags));
  EXPECT_EQ(flags, unsigned{cudaDeviceScheduleAuto});
  flags = 99;
  EXPECT_FALSE(host::cuda_sync_flags("Block", flags));
  EXPECT_FALSE(host::cuda_sync_flags("blocking", flags));
  EXPECT_EQ(flags, 99u);  // untouched when the name is unknown
}

TEST(CudaEncode, DeviceEncoderWithoutADeviceSaysSo)
{
  if (cuda_backend_available()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_THROW(cuda::device_encoder(10, ecc_level::M), backend_unavailable);
  EXPECT_THROW(cuda::device_encoder(41, ecc_level::M), invalid_argument);
}

}  // namespace
