// host_array (qrplate/host_memory.hpp): vector-like growth, the kinds of memory it holds.
#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

#include "qrplate/encode.hpp"
#include "qrplate/host_memory.hpp"

namespace {

using namespace qrplate;

TEST(HostArray, GrowsLikeAVectorAndOverwritesOnlyWhenAsked)
{
  for (const host_memory kind : {host_memory::pageable, host_memory::pinned}) {
    host_array<std::uint32_t> a(kind);
    EXPECT_EQ(a.size(), 0u);
    a.resize(3);
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(a[i], 0u);  // value-initialised, as a vector
    a[0] = 7;
    a[1] = 8;
    a[2] = 9;
    a.resize(1000);  // grows: the first elements move along, the new ones are zero
    EXPECT_EQ(a[0], 7u);
    EXPECT_EQ(a[2], 9u);
    for (std::size_t i = 3; i < 1000; ++i) ASSERT_EQ(a[i], 0u) << i;
    if (a.memory() == host_memory::pageable) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % 64, 0u);
    }
    a[999] = 5;
    a.resize_for_overwrite(1000);  // same size: nothing touched
    EXPECT_EQ(a[999], 5u);
    a.resize(10);
    a.resize(1000);  // within capacity, but past the size: zero again, as a vector
    EXPECT_EQ(a[999], 0u);
    EXPECT_EQ(a[2], 9u);
    a.resize_for_overwrite(2000);  // grows without clearing: the kept prefix still moves
    EXPECT_EQ(a.size(), 2000u);
    EXPECT_EQ(a[1], 8u);

    host_array<std::uint32_t> b(std::move(a));
    EXPECT_EQ(b.size(), 2000u);
    EXPECT_EQ(b[0], 7u);
    EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): a moved-from array is empty
  }
}

// Pinned memory is what a CUDA device can give; without one (or in a build without the CUDA
// backend) an array asked for pinned memory says it holds pageable memory.
TEST(HostArray, PinnedMemoryOnlyWhereACudaDeviceGivesIt)
{
  host_array<std::uint8_t> a(host_memory::pinned);
  a.resize(4096);
  EXPECT_EQ(a.memory(), cuda_backend_available() ? host_memory::pinned : host_memory::pageable);
  host_array<std::uint8_t> b;
  b.resize(4096);
  EXPECT_EQ(b.memory(), host_memory::pageable);
  symbol_batch batch(host_memory::pinned);
  batch.reset(3, ecc_level::L, 10);
  EXPECT_EQ(batch.memory(), a.memory());
  EXPECT_STREQ(to_string(host_memory::pinned), "pinned");
  EXPECT_STREQ(to_string(host_memory::pageable), "pageable");
}

}  // namespace
