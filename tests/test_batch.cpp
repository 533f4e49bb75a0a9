// The batch API: results equal single-code results, every thread count gives the same bytes,
// statuses and errors are as documented.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "qrplate/encode.hpp"
#include "qrplate/error.hpp"
#include "qrplate/qr.hpp"

namespace {

using namespace qrplate;

struct payloads {
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint64_t> offsets{0};
  void add(const std::vector<std::uint8_t>& p)
  {
    bytes.insert(bytes.end(), p.begin(), p.end());
    offsets.push_back(bytes.size());
  }
  payload_batch_view view() const { return {bytes.data(), offsets.data(), offsets.size() - 1}; }
};

payloads random_payloads(int version, ecc_level ecc, int count, std::mt19937_64& rng)
{
  payloads p;
  const int cap = max_byte_payload(version, ecc);
  for (int i = 0; i < count; ++i) {
    std::vector<std::uint8_t> one(i == 0 ? cap : (i == 1 ? 0 : rng() % (cap + 1)));
    for (auto& b : one) b = static_cast<std::uint8_t>(rng());
    p.add(one);
  }
  return p;
}

TEST(Batch, EqualsSingleCodeEncoding)
{
  std::mt19937_64 rng(11);
  for (int v : {1, 3, 10, 27, 40}) {
    for (auto ecc : {ecc_level::L, ecc_level::M, ecc_level::Q, ecc_level::H}) {
      for (int mask : {-1, 5}) {
        const payloads p = random_payloads(v, ecc, 70, rng);
        batch_encode_options o;
        o.version = v;
        o.ecc = ecc;
        o.mask = mask;
        o.where = backend::cpu;
        symbol_batch out;
        encode(p.view(), o, out);
        ASSERT_EQ(out.count(), 70u);
        for (std::uint64_t i = 0; i < out.count(); ++i) {
          qr_options q;
          q.min_version = q.max_version = v;
          q.ecc = ecc;
          q.mask = mask;
          const auto one = encode_bytes(p.bytes.data() + p.offsets[i], p.offsets[i + 1] - p.offsets[i], q);
          SCOPED_TRACE(::testing::Message() << "v" << v << "-" << to_string(ecc) << " mask " << mask << " item " << i);
          ASSERT_EQ(out.status()[i], encode_status::ok);
          ASSERT_EQ(out.masks()[i], one.mask);
          const symbol_view s = out.symbol(i);
          ASSERT_EQ(s.size, one.size);
          for (std::size_t w = 0; w < out.words_per_symbol(); ++w) ASSERT_EQ(s.rows[w], one.rows[w]) << "word " << w;
        }
      }
    }
  }
}

// The same checks on every backend; the CUDA instance skips where no device exists (or the
// build has no CUDA backend). CPU and CUDA results must be byte-identical to the single-code path.
template <backend B>
struct on_backend {
  static constexpr backend value = B;
};
template <typename T>
class BatchOnBackend : public ::testing::Test {};
using backends = ::testing::Types<on_backend<backend::cpu>, on_backend<backend::cuda>>;
TYPED_TEST_SUITE(BatchOnBackend, backends);

TYPED_TEST(BatchOnBackend, ByteIdenticalToSingleCodeEncoding)
{
  if (TypeParam::value == backend::cuda && !cuda_backend_available()) GTEST_SKIP() << "no CUDA device";
  std::mt19937_64 rng(21);
  for (int v : {2, 9, 10, 26, 27, 40}) {
    for (int mask : {-1, 3}) {
      const payloads p = random_payloads(v, ecc_level::M, 300, rng);
      batch_encode_options o;
      o.version = v;
      o.ecc = ecc_level::M;
      o.mask = mask;
      o.where = TypeParam::value;
      symbol_batch out;
      encode(p.view(), o, out);
      for (std::uint64_t i = 0; i < out.count(); ++i) {
        qr_options q;
        q.min_version = q.max_version = v;
        q.ecc = ecc_level::M;
        q.mask = mask;
        const auto one = encode_bytes(p.bytes.data() + p.offsets[i], p.offsets[i + 1] - p.offsets[i], q);
        SCOPED_TRACE(::testing::Message() << to_string(TypeParam::value) << " v" << v << " mask " << mask << " item " << i);
        ASSERT_EQ(out.status()[i], encode_status::ok);
        ASSERT_EQ(out.masks()[i], one.mask);
        for (std::size_t w = 0; w < out.words_per_symbol(); ++w) ASSERT_EQ(out.symbol(i).rows[w], one.rows[w]);
      }
    }
  }
}

// symbol_batch::reset does not clear: a batch reused for other payloads (of other lengths, some
// too long) must come out as a fresh one, so every backend has to write every word, mask and
// status. A backend that skipped the padding bits of a row, or a too-long item's matrix, would
// leave the first batch's bits behind.
TYPED_TEST(BatchOnBackend, AReusedBatchIsWrittenWhole)
{
  if (TypeParam::value == backend::cuda && !cuda_backend_available()) GTEST_SKIP() << "no CUDA device";
  std::mt19937_64 rng(22);
  for (int v : {4, 21, 40}) {
    batch_encode_options o;
    o.version = v;
    o.ecc = ecc_level::L;
    o.where = TypeParam::value;
    const payloads first = random_payloads(v, ecc_level::L, 120, rng);
    payloads second;  // all bits of the first batch set where they can be; too long every 7th item
    for (int i = 0; i < 120; ++i) {
      const int cap = max_byte_payload(v, ecc_level::L);
      second.add(std::vector<std::uint8_t>(i % 7 == 3 ? cap + 1 : rng() % (cap + 1), static_cast<std::uint8_t>(rng())));
    }
    symbol_batch reused, fresh;
    encode(first.view(), o, reused);
    std::fill_n(reused.modules(), reused.count() * reused.words_per_symbol(), ~std::uint64_t{0});
    std::fill_n(reused.masks(), reused.count(), std::uint8_t{0xee});
    std::fill_n(reinterpret_cast<std::uint8_t*>(reused.status()), reused.count(), std::uint8_t{0x77});
    encode(second.view(), o, reused);
    o.where = backend::cpu;
    encode(second.view(), o, fresh);
    SCOPED_TRACE(::testing::Message() << to_string(TypeParam::value) << " v" << v);
    ASSERT_EQ(reused.count(), fresh.count());
    for (std::uint64_t i = 0; i < fresh.count(); ++i) {
      ASSERT_EQ(reused.status()[i], fresh.status()[i]) << "item " << i;
      ASSERT_EQ(reused.masks()[i], fresh.masks()[i]) << "item " << i;
      for (std::size_t w = 0; w < fresh.words_per_symbol(); ++w)
        ASSERT_EQ(reused.symbol(i).rows[w], fresh.symbol(i).rows[w]) << "item " << i << " word " << w;
    }
    ASSERT_EQ(fresh.status()[3], encode_status::too_long);
    // The fresh batch's bits are the single-code encoder's: the comparison is not of two wrong
    // results (a too-long item is all light).
    qr_options q;
    q.min_version = q.max_version = v;
    q.ecc = ecc_level::L;
    const auto one = encode_bytes(second.bytes.data() + second.offsets[0], second.offsets[1] - second.offsets[0], q);
    for (std::size_t w = 0; w < fresh.words_per_symbol(); ++w) ASSERT_EQ(fresh.symbol(0).rows[w], one.rows[w]);
    for (std::size_t w = 0; w < fresh.words_per_symbol(); ++w) ASSERT_EQ(fresh.symbol(3).rows[w], 0u);
  }
}

TEST(Batch, EveryThreadCountGivesTheSameBytes)
{
  std::mt19937_64 rng(12);
  const payloads p = random_payloads(12, ecc_level::Q, 1000, rng);
  batch_encode_options o;
  o.version = 12;
  o.ecc = ecc_level::Q;
  o.where = backend::cpu;
  symbol_batch first;
  o.threads = 1;
  encode(p.view(), o, first);
  for (unsigned threads : {2u, 3u, 8u, 0u}) {
    symbol_batch again;
    o.threads = threads;
    encode(p.view(), o, again);
    ASSERT_EQ(again.count(), first.count());
    for (std::uint64_t i = 0; i < first.count(); ++i) ASSERT_EQ(again.masks()[i], first.masks()[i]);
    for (std::size_t w = 0; w < first.count() * first.words_per_symbol(); ++w)
      ASSERT_EQ(again.modules()[w], first.modules()[w]) << "threads " << threads;
  }
}

TEST(Batch, PayloadTooLongIsAStatusNotAnException)
{
  payloads p;
  p.add(std::vector<std::uint8_t>(17, 'a'));  // 1-L holds 17 bytes
  p.add(std::vector<std::uint8_t>(18, 'b'));  // one too many
  p.add({});
  batch_encode_options o;
  o.version = 1;
  o.ecc = ecc_level::L;
  o.where = backend::cpu;
  symbol_batch out;
  encode(p.view(), o, out);
  EXPECT_EQ(out.status()[0], encode_status::ok);
  EXPECT_EQ(out.status()[1], encode_status::too_long);
  EXPECT_EQ(out.status()[2], encode_status::ok);
  const symbol_view bad = out.symbol(1);
  for (std::size_t w = 0; w < out.words_per_symbol(); ++w) EXPECT_EQ(bad.rows[w], 0u);  // all light
}

TEST(Batch, EmptyBatch)
{
  const std::uint64_t zero = 0;
  batch_encode_options o;
  o.where = backend::cpu;
  symbol_batch out;
  encode({nullptr, &zero, 0}, o, out);
  EXPECT_EQ(out.count(), 0u);
}

TEST(Batch, BadOptionsThrowTypedErrors)
{
  payloads p;
  p.add({1, 2, 3});
  symbol_batch out;
  batch_encode_options o;
  o.where = backend::cpu;
  o.version = 41;
  EXPECT_THROW(encode(p.view(), o, out), qrplate::invalid_argument);
  o.version = 0;
  EXPECT_THROW(encode(p.view(), o, out), qrplate::invalid_argument);
  o.version = 5;
  o.mask = 8;
  EXPECT_THROW(encode(p.view(), o, out), qrplate::invalid_argument);
  o.mask = -2;
  EXPECT_THROW(encode(p.view(), o, out), qrplate::invalid_argument);
  o.mask = -1;
  std::vector<std::uint64_t> decreasing{0, 3, 2};
  std::vector<std::uint8_t> bytes(3);
  EXPECT_THROW(encode({bytes.data(), decreasing.data(), 2}, o, out), qrplate::invalid_argument);
  std::vector<std::uint64_t> not_from_zero{1, 3};
  EXPECT_THROW(encode({bytes.data(), not_from_zero.data(), 1}, o, out), qrplate::invalid_argument);
}

TEST(Batch, CudaBackendIsReportedWhenUnavailable)
{
  if (cuda_backend_available()) GTEST_SKIP() << "a CUDA device is present";
  payloads p;
  p.add({1});
  batch_encode_options o;
  o.where = backend::cuda;
  symbol_batch out;
  EXPECT_THROW(encode(p.view(), o, out), qrplate::backend_unavailable);
  o.where = backend::automatic;  // falls back to the CPU
  EXPECT_NO_THROW(encode(p.view(), o, out));
  EXPECT_EQ(out.status()[0], encode_status::ok);
}

TEST(Batch, BackendNames)
{
  EXPECT_EQ(resolve_backend(backend::cpu), backend::cpu);
  EXPECT_EQ(resolve_backend(backend::cuda), backend::cuda);  // as given: encode() says if it is unavailable
  EXPECT_EQ(resolve_backend(backend::automatic), cuda_backend_available() ? backend::cuda : backend::cpu);
  EXPECT_EQ(parse_backend("auto"), backend::automatic);
  EXPECT_EQ(parse_backend("cpu"), backend::cpu);
  EXPECT_EQ(parse_backend("cuda"), backend::cuda);
  EXPECT_THROW(parse_backend("gpu"), qrplate::invalid_argument);
  EXPECT_STREQ(to_string(backend::cuda), "cuda");
}

}  // namespace
