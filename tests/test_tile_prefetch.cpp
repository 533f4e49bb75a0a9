// The read-ahead of scan tiles (host/scan/tile_prefetch): every image take() gives is held to the
// pixels the test wrote into that tile's file (PGM by hand, TIFF with write_gray_tiff) and to
// read_gray_image of the file, so a prefetcher that hands out another tile's image is caught.
// Budget tests look at the peak of the bytes held while nothing is taken. Waits for background
// reads poll the stats (eventually), with a deadline far beyond what the reads need.

#include <unistd.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "qrplate/error.hpp"
#include "scan/tile_prefetch.hpp"
#include "sim/scan_io.hpp"
#include "util/parallel_for.hpp"

namespace {

using qrplate::scan::tile_prefetcher;
using qrplate::sim::gray_image;
using qrplate::sim::read_gray_image;

// ctest runs test cases as parallel processes: the pid and the test's name keep their files apart.
class temp_dir {
 public:
  temp_dir()
  {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    std::replace(name.begin(), name.end(), '/', '_');
    path_ =
        std::filesystem::temp_directory_path() / ("qrplate_tile_prefetch_" + std::to_string(::getpid()) + "_" + name);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    std::filesystem::create_directories(path_);
  }
  ~temp_dir()
  {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

gray_image random_gray(std::uint32_t width, std::uint32_t height, int bits, std::uint64_t seed)
{
  std::mt19937_64 rng(seed);
  gray_image img;
  img.width = width, img.height = height, img.bits = bits;
  img.pixels.resize(static_cast<std::size_t>(width) * height);
  const std::uint64_t levels = bits == 8 ? 256 : 65536;
  for (auto& p : img.pixels) p = static_cast<std::uint16_t>(rng() % levels);
  return img;
}

void write_bytes(const std::string& path, const std::string& bytes)
{
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Binary PGM: maxval 255 for 8 bits, 65535 (big-endian samples) for 16.
void write_pgm(const std::string& path, const gray_image& img)
{
  std::string bytes = "P5\n" + std::to_string(img.width) + " " + std::to_string(img.height) + "\n" +
                      (img.bits == 8 ? "255" : "65535") + "\n";
  for (std::uint16_t v : img.pixels) {
    if (img.bits == 16) bytes += static_cast<char>(v >> 8);
    bytes += static_cast<char>(v & 0xff);
  }
  write_bytes(path, bytes);
}

::testing::AssertionResult same_image(const gray_image& got, const gray_image& want)
{
  if (got.width != want.width || got.height != want.height || got.bits != want.bits)
    return ::testing::AssertionFailure() << got.width << "x" << got.height << " " << got.bits << " bit, want "
                                         << want.width << "x" << want.height << " " << want.bits << " bit";
  const auto diff = std::mismatch(got.pixels.begin(), got.pixels.end(), want.pixels.begin(), want.pixels.end());
  if (diff.first != got.pixels.end() || diff.second != want.pixels.end())
    return ::testing::AssertionFailure() << "pixels differ from sample " << (diff.first - got.pixels.begin()) << " of "
                                         << got.pixels.size() << " (want " << want.pixels.size() << ")";
  return ::testing::AssertionSuccess();
}

// Tiles of one size (8 and 16 bit alternating: the same bytes once decoded), each file's content
// from its own seed.
struct tile_files {
  std::vector<std::string> paths;
  std::vector<gray_image> images;  // what each file holds
  std::size_t bytes = 0;           // of one decoded image
};

tile_files write_tiles(const temp_dir& dir, std::size_t count, std::uint32_t width, std::uint32_t height)
{
  tile_files tiles;
  for (std::size_t i = 0; i < count; ++i) {
    tiles.images.push_back(random_gray(width, height, i % 2 ? 8 : 16, 1000 + i));
    tiles.paths.push_back(dir.file("tile_" + std::to_string(i) + ".pgm"));
    write_pgm(tiles.paths.back(), tiles.images.back());
  }
  tiles.bytes = static_cast<std::size_t>(width) * height * 2;
  return tiles;
}

template <typename Pred>
bool eventually(Pred pred)
{
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::string io_error_of(const std::function<void()>& fn)
{
  try {
    fn();
  } catch (const qrplate::io_error& e) {
    return e.what();
  }
  return "(no io_error)";
}

constexpr std::size_t lots = std::size_t{64} << 20;

// (reader threads, a recycled buffer full of another image's values for every read)
class TakeMatchesDirectRead : public ::testing::TestWithParam<std::tuple<unsigned, bool>> {};

TEST_P(TakeMatchesDirectRead, InRequestOrderAndReversed)
{
  const auto [threads, spare] = GetParam();
  temp_dir dir;
  // Sizes and formats vary; the TIFFs go through the recycled-buffer path of read_gray_image.
  std::vector<gray_image> images = {random_gray(64, 48, 8, 1),    random_gray(300, 200, 16, 2),
                                    random_gray(257, 129, 16, 3), random_gray(100, 77, 8, 4),
                                    random_gray(1, 1, 16, 5),     random_gray(211, 64, 16, 6)};
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < images.size(); ++i) {
    paths.push_back(dir.file("t" + std::to_string(i) + (i % 3 == 2 ? ".tif" : ".pgm")));
    if (i % 3 == 2)
      qrplate::sim::write_gray_tiff(paths.back(), images[i], /*deflate=*/i != 5);
    else
      write_pgm(paths.back(), images[i]);
  }
  std::function<std::vector<std::uint16_t>()> give;
  if (spare) give = [] { return std::vector<std::uint16_t>(300 * 200 + 17, 0xbeef); };
  for (bool reversed : {false, true}) {
    SCOPED_TRACE(reversed ? "taken in reverse" : "taken in request order");
    tile_prefetcher pf(threads, lots, give);
    for (std::size_t i = 0; i < paths.size(); ++i) pf.request(10 + i, paths[i]);
    for (std::size_t k = 0; k < paths.size(); ++k) {
      const std::size_t i = reversed ? paths.size() - 1 - k : k;
      const std::optional<gray_image> got = pf.take(10 + i);
      ASSERT_TRUE(got.has_value()) << paths[i];
      EXPECT_TRUE(same_image(*got, images[i])) << paths[i];
      EXPECT_TRUE(same_image(*got, read_gray_image(paths[i]))) << paths[i];
    }
    const auto st = pf.stats();
    EXPECT_EQ(st.requested, paths.size());
    EXPECT_EQ(st.taken + st.read_inline, paths.size());
    EXPECT_EQ(st.missed, 0u);
    EXPECT_EQ(st.failed, 0u);
    EXPECT_EQ(st.bytes_held, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, TakeMatchesDirectRead,
                         ::testing::Combine(::testing::Values(1u, 3u), ::testing::Bool()));

TEST(TilePrefetch, TakeMissesTilesNeverRequestedOrAlreadyTaken)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 2, 64, 48);
  tile_prefetcher pf(2, lots);
  pf.request(7, tiles.paths[0]);
  pf.request(7, tiles.paths[1]);  // already queued: ignored, tile 7 stays the first file
  ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held == tiles.bytes; }));
  EXPECT_FALSE(pf.take(8).has_value());
  const auto got = pf.take(7);
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(same_image(*got, tiles.images[0]));
  EXPECT_FALSE(pf.take(7).has_value());
  const auto st = pf.stats();
  EXPECT_EQ(st.requested, 1u);
  EXPECT_EQ(st.taken, 1u);  // read in the background before the take
  EXPECT_EQ(st.read_inline, 0u);
  EXPECT_EQ(st.missed, 2u);
  EXPECT_EQ(st.bytes_held, 0u);
}

// A registrar for the tests: a posed_tile of the image with `integral_words` words of integral
// image, each the tile's index; tile `fails` (if any) throws.
constexpr std::size_t integral_words = 100;
constexpr std::size_t no_tile = ~std::size_t{0};

std::unique_ptr<qrplate::scan::posed_tile> test_registration(std::size_t index, gray_image image, std::size_t fails)
{
  if (index == fails) throw qrplate::invalid_argument("tile " + std::to_string(index) + " does not register");
  auto t = std::make_unique<qrplate::scan::posed_tile>();
  t->index = index;
  t->image = std::move(image);
  t->integral.assign(integral_words, static_cast<std::uint32_t>(index));
  return t;
}

// register_with: tiles read after it come registered (by the registrar, on the readers' threads),
// and so do those read before it, held meanwhile; a registered tile counts its host integral image
// against the budget; a registrar's throw comes back as the tile's registration_error, not as a
// failed read; take() of a registered tile gives its image; a second register_with changes nothing.
TEST(TilePrefetch, TilesComeRegisteredOnceRegisterWithIsSet)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 5, 64, 48);
  tile_prefetcher pf(2, lots);
  pf.request(0, tiles.paths[0]);
  pf.request(1, tiles.paths[1]);
  ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held == 2 * tiles.bytes; }));
  std::atomic<int> calls{0};
  pf.register_with([&](std::size_t index, gray_image image) {
    ++calls;
    return test_registration(index, std::move(image), 4);
  });
  pf.register_with([&](std::size_t, gray_image) -> std::unique_ptr<qrplate::scan::posed_tile> {
    ADD_FAILURE() << "the second registrar was called";
    return nullptr;
  });
  for (std::size_t i = 2; i < 5; ++i) pf.request(i, tiles.paths[i]);
  const std::size_t registered_bytes = tiles.bytes + integral_words * sizeof(std::uint32_t);
  ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held == 4 * registered_bytes; })) << pf.stats().bytes_held;
  ASSERT_TRUE(eventually([&] { return calls == 5; }));
  EXPECT_EQ(pf.stats().registered, 4u);
  EXPECT_EQ(pf.stats().registered_held, 2u);  // 0 and 1, read before register_with
  for (std::size_t i : {0u, 1u, 2u}) {
    std::optional<qrplate::scan::prefetched_tile> got = pf.take_tile(i);
    ASSERT_TRUE(got.has_value() && got->registered) << i;
    EXPECT_FALSE(got->registration_error);
    EXPECT_EQ(got->registered->index, i);
    EXPECT_EQ(got->registered->integral, std::vector<std::uint32_t>(integral_words, static_cast<std::uint32_t>(i)));
    EXPECT_TRUE(same_image(got->registered->image, tiles.images[i])) << i;
    EXPECT_TRUE(got->image.pixels.empty());
  }
  const std::optional<gray_image> three = pf.take(3);  // the registered tile's image
  ASSERT_TRUE(three.has_value());
  EXPECT_TRUE(same_image(*three, tiles.images[3]));
  std::optional<qrplate::scan::prefetched_tile> four = pf.take_tile(4);
  ASSERT_TRUE(four.has_value());
  EXPECT_FALSE(four->registered);
  ASSERT_TRUE(four->registration_error);
  try {
    std::rethrow_exception(four->registration_error);
  } catch (const qrplate::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "tile 4 does not register");
  }
  const auto st = pf.stats();
  EXPECT_EQ(st.failed, 0u);  // every file read
  EXPECT_EQ(st.taken, 5u);
  EXPECT_EQ(st.bytes_held, 0u);
}

// Held tiles are registered in request order, one reader at a time each; one taken before its
// registration starts comes as its image (the caller registers it), one being registered is waited
// for, and one dropped while being registered is let go.
TEST(TilePrefetch, HeldTilesTakenBeforeTheirRegistrationComeAsImages)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 4, 40, 24);
  tile_prefetcher pf(1, lots);
  for (std::size_t i = 0; i < 4; ++i) pf.request(i, tiles.paths[i]);
  ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held == 4 * tiles.bytes; }));
  std::mutex order_mutex;
  std::vector<std::size_t> order;
  std::atomic<bool> in_zero{false}, release{false};
  pf.register_with([&](std::size_t index, gray_image image) {
    {
      std::lock_guard<std::mutex> lock(order_mutex);
      order.push_back(index);
    }
    if (index == 0) {
      in_zero = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return test_registration(index, std::move(image), no_tile);
  });
  ASSERT_TRUE(eventually([&] { return in_zero.load(); }));
  // Tile 0 is being registered; 1 to 3 wait their turn behind it.
  std::optional<qrplate::scan::prefetched_tile> two = pf.take_tile(2);
  ASSERT_TRUE(two.has_value());
  EXPECT_FALSE(two->registered);
  EXPECT_TRUE(same_image(two->image, tiles.images[2]));
  pf.drop(3);
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    release = true;
  });
  std::optional<qrplate::scan::prefetched_tile> zero = pf.take_tile(0);  // waits for the registration
  releaser.join();
  ASSERT_TRUE(zero.has_value() && zero->registered);
  EXPECT_TRUE(same_image(zero->registered->image, tiles.images[0]));
  std::optional<qrplate::scan::prefetched_tile> one = pf.take_tile(1);
  ASSERT_TRUE(one.has_value());
  if (!one->registered) {
    // The take may come before the reader reaches it: then it must be the image.
    EXPECT_TRUE(same_image(one->image, tiles.images[1]));
  } else {
    EXPECT_TRUE(same_image(one->registered->image, tiles.images[1]));
  }
  {
    std::lock_guard<std::mutex> lock(order_mutex);
    ASSERT_FALSE(order.empty());
    EXPECT_EQ(order[0], 0u);
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
    for (std::size_t i : order) EXPECT_TRUE(i == 0 || i == 1) << i;  // 2 taken and 3 dropped first
  }
  EXPECT_EQ(pf.stats().bytes_held, 0u);
  EXPECT_EQ(pf.stats().dropped, 1u);
}

TEST(TilePrefetch, NoThreadsMeansEveryTakeMisses)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 1, 64, 48);
  tile_prefetcher pf(0, lots);
  pf.request(0, tiles.paths[0]);
  EXPECT_FALSE(pf.take(0).has_value());
  const auto st = pf.stats();
  EXPECT_EQ(st.requested, 0u);
  EXPECT_EQ(st.missed, 1u);
}

TEST(TilePrefetch, FailedReadRethrowsItsErrorAndOthersGoOn)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 3, 80, 60);
  const std::string missing = dir.file("missing.pgm");
  const std::string corrupt = dir.file("corrupt.pgm");
  write_bytes(corrupt, "P5\n4 4\n255\n" + std::string(10, '\x10'));  // 10 of 16 samples
  const std::string missing_error = io_error_of([&] { read_gray_image(missing); });
  const std::string corrupt_error = io_error_of([&] { read_gray_image(corrupt); });
  ASSERT_NE(missing_error, "(no io_error)");
  ASSERT_NE(corrupt_error, "(no io_error)");

  tile_prefetcher pf(2, lots);
  pf.request(0, tiles.paths[0]);
  pf.request(1, missing);
  pf.request(2, tiles.paths[1]);
  pf.request(3, corrupt);
  pf.request(4, tiles.paths[2]);
  // The readers, not take(), meet both failures.
  ASSERT_TRUE(eventually([&] { return pf.stats().failed == 2 && pf.stats().bytes_held == 3 * tiles.bytes; }));
  EXPECT_TRUE(same_image(pf.take(0).value(), tiles.images[0]));
  EXPECT_EQ(io_error_of([&] { pf.take(1); }), missing_error);
  EXPECT_FALSE(pf.take(1).has_value());  // the failure was taken
  EXPECT_TRUE(same_image(pf.take(2).value(), tiles.images[1]));
  EXPECT_EQ(io_error_of([&] { pf.take(3); }), corrupt_error);
  EXPECT_TRUE(same_image(pf.take(4).value(), tiles.images[2]));
  // And the prefetcher still reads after them.
  pf.request(1, tiles.paths[1]);
  EXPECT_TRUE(same_image(pf.take(1).value(), tiles.images[1]));
  const auto st = pf.stats();
  EXPECT_EQ(st.failed, 2u);
  EXPECT_EQ(st.missed, 1u);
}

TEST(TilePrefetch, TakeOfAQueuedTileReadsItInline)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 2, 64, 48);
  const std::string corrupt = dir.file("corrupt.pgm");
  write_bytes(corrupt, "P5\n4 4\n255\n" + std::string(3, '\x10'));
  // A budget of 1 byte: while tile 0 is read or held, nothing else may start.
  tile_prefetcher pf(1, 1);
  pf.request(0, tiles.paths[0]);
  pf.request(1, tiles.paths[1]);
  pf.request(2, corrupt);
  ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held == tiles.bytes; }));
  EXPECT_TRUE(same_image(pf.take(1).value(), tiles.images[1]));
  EXPECT_EQ(io_error_of([&] { pf.take(2); }), io_error_of([&] { read_gray_image(corrupt); }));
  EXPECT_TRUE(same_image(pf.take(0).value(), tiles.images[0]));
  const auto st = pf.stats();
  EXPECT_EQ(st.read_inline, 2u);
  EXPECT_EQ(st.taken, 1u);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(st.max_bytes_held, tiles.bytes);
}

// keep_bytes (the GPU decode's prefetcher): an 8-bit TIFF tile comes with its bytes
// (read_gray_image's keep_bytes), which count in the bytes held (3 a pixel; 2 for 16-bit tiles).
TEST(TilePrefetch, KeepBytesHandsOverEightBitTiffBytesAndCountsThem)
{
  temp_dir dir;
  const gray_image eight = random_gray(64, 48, 8, 11), sixteen = random_gray(64, 48, 16, 12);
  const std::string p8 = dir.file("t8.tif"), p16 = dir.file("t16.tif");
  qrplate::sim::write_gray_tiff(p8, eight);
  qrplate::sim::write_gray_tiff(p16, sixteen);
  for (const bool keep : {false, true}) {
    SCOPED_TRACE(keep ? "keep_bytes" : "without keep_bytes");
    tile_prefetcher pf(2, lots, {}, keep);
    pf.request(0, p8);
    pf.request(1, p16);
    const std::size_t want_held = 64 * 48 * (keep ? 3 : 2) + 64 * 48 * 2;
    ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held == want_held; })) << pf.stats().bytes_held;
    const std::optional<gray_image> got8 = pf.take(0), got16 = pf.take(1);
    ASSERT_TRUE(got8.has_value() && got16.has_value());
    EXPECT_TRUE(same_image(*got8, eight));
    EXPECT_TRUE(same_image(*got16, sixteen));
    EXPECT_TRUE(got16->bytes.empty());
    if (!keep) {
      EXPECT_TRUE(got8->bytes.empty());
      continue;
    }
    ASSERT_EQ(got8->bytes.size(), eight.pixels.size());
    for (std::size_t i = 0; i < eight.pixels.size(); ++i) ASSERT_EQ(got8->bytes[i], eight.pixels[i]) << i;
    EXPECT_EQ(pf.stats().bytes_held, 0u);
  }
}

TEST(TilePrefetch, BudgetBoundsTheBytesHeld)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 20, 64, 48);
  const std::size_t budget = tiles.bytes * 5 / 2;
  std::atomic<int> reads{0};
  tile_prefetcher pf(3, budget, [&] {
    ++reads;
    return std::vector<std::uint16_t>{};
  });
  for (std::size_t i = 0; i < 20; ++i) pf.request(i, tiles.paths[i]);
  // Two tiles fit; give the readers time to (wrongly) read more.
  ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held >= 2 * tiles.bytes; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_LE(pf.stats().max_bytes_held, budget);
  EXPECT_EQ(reads.load(), 2);
  for (std::size_t i = 0; i < 20; ++i) {
    const auto got = pf.take(i);
    ASSERT_TRUE(got.has_value()) << i;
    EXPECT_TRUE(same_image(*got, tiles.images[i])) << i;
  }
  const auto st = pf.stats();
  EXPECT_LE(st.max_bytes_held, budget);
  EXPECT_EQ(st.taken + st.read_inline, 20u);
  EXPECT_EQ(st.bytes_held, 0u);
}

TEST(TilePrefetch, BudgetBelowOneTileReadsOneAtATime)
{
  temp_dir dir;
  // Different sizes: the largest bounds what may be held at once.
  std::vector<gray_image> images;
  std::vector<std::string> paths;
  std::size_t largest = 0;
  for (std::uint32_t i = 0; i < 10; ++i) {
    images.push_back(random_gray(64 + 23 * i, 48 + 15 * i, 16, 50 + i));
    paths.push_back(dir.file("t" + std::to_string(i) + ".pgm"));
    write_pgm(paths.back(), images.back());
    largest = std::max(largest, images.back().pixels.size() * 2);
  }
  std::atomic<int> reads{0};
  tile_prefetcher pf(3, 100, [&] {
    ++reads;
    return std::vector<std::uint16_t>{};
  });
  for (std::size_t i = 0; i < images.size(); ++i) pf.request(i, paths[i]);
  ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held > 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(reads.load(), 1);
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto got = pf.take(i);
    ASSERT_TRUE(got.has_value()) << i;
    EXPECT_TRUE(same_image(*got, images[i])) << i;
  }
  EXPECT_LE(pf.stats().max_bytes_held, largest);
}

TEST(TilePrefetch, CancelQueuedForgetsTilesNotStarted)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 6, 64, 48);
  std::atomic<int> reads{0};
  tile_prefetcher pf(1, 1, [&] {
    ++reads;
    return std::vector<std::uint16_t>{};
  });
  for (std::size_t i = 0; i < 6; ++i) pf.request(i, tiles.paths[i]);
  ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held == tiles.bytes; }));  // tile 0; the rest wait
  pf.cancel_queued();
  EXPECT_EQ(pf.stats().cancelled, 5u);
  for (std::size_t i = 1; i < 6; ++i) EXPECT_FALSE(pf.take(i).has_value()) << i;
  EXPECT_TRUE(same_image(pf.take(0).value(), tiles.images[0]));  // held tiles stay
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(reads.load(), 1);  // nothing cancelled was read once budget was free
  EXPECT_EQ(pf.stats().missed, 5u);
}

TEST(TilePrefetch, DropForgetsHeldTilesAndFreesTheirBudget)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 5, 64, 48);
  {
    tile_prefetcher pf(2, lots);
    for (std::size_t i = 0; i < 4; ++i) pf.request(i, tiles.paths[i]);
    ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held == 4 * tiles.bytes; }));
    pf.drop(1);
    EXPECT_EQ(pf.stats().bytes_held, 3 * tiles.bytes);
    EXPECT_FALSE(pf.take(1).has_value());
    pf.drop_all();
    EXPECT_EQ(pf.stats().bytes_held, 0u);
    for (std::size_t i : {0u, 2u, 3u}) EXPECT_FALSE(pf.take(i).has_value()) << i;
    const auto st = pf.stats();
    EXPECT_EQ(st.dropped, 4u);
    EXPECT_EQ(st.missed, 4u);
    // Dropped tiles may be requested again.
    pf.request(2, tiles.paths[2]);
    EXPECT_TRUE(same_image(pf.take(2).value(), tiles.images[2]));
  }
  {
    // Budget for one tile: dropping the held one must let the reader go on to the next.
    std::atomic<int> reads{0};
    tile_prefetcher pf(1, 1, [&] {
      ++reads;
      return std::vector<std::uint16_t>{};
    });
    pf.request(0, tiles.paths[0]);
    pf.request(4, tiles.paths[4]);
    ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held == tiles.bytes; }));
    pf.drop(0);
    ASSERT_TRUE(eventually([&] { return reads.load() == 2 && pf.stats().bytes_held == tiles.bytes; }));
    EXPECT_TRUE(same_image(pf.take(4).value(), tiles.images[4]));
    EXPECT_FALSE(pf.take(0).has_value());
    const auto st = pf.stats();
    EXPECT_EQ(st.taken, 1u);
    EXPECT_EQ(st.read_inline, 0u);
  }
}

TEST(TilePrefetch, DestructorReturnsWithTilesQueuedAndHeld)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 5, 64, 48);
  std::atomic<int> reads{0};
  auto count = [&] {
    ++reads;
    return std::vector<std::uint16_t>{};
  };
  {
    tile_prefetcher pf(3, 1, count);
    for (std::size_t i = 0; i < 200; ++i) pf.request(i, tiles.paths[i % 5]);
    ASSERT_TRUE(eventually([&] { return pf.stats().bytes_held == tiles.bytes; }));
  }
  EXPECT_EQ(reads.load(), 1);
  reads = 0;
  {
    // Destroyed at once, mid-reads, with images held and most tiles queued.
    tile_prefetcher pf(3, 8 * tiles.bytes, count);
    for (std::size_t i = 0; i < 200; ++i) pf.request(i, tiles.paths[i % 5]);
  }
  // No reader outlives the prefetcher.
  const int after = reads.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(reads.load(), after);
}

TEST(TilePrefetch, ConcurrentTakersGetTheirOwnTiles)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 200, 64, 48);
  const std::size_t budget = 8 * tiles.bytes;
  tile_prefetcher pf(3, budget);
  for (std::size_t i = 0; i < 200; ++i) pf.request(i, tiles.paths[i]);
  // Four callers, as the scan reader's parallel_for takes tiles: interleaved, disjoint sets of 50.
  std::vector<std::optional<gray_image>> got(200);
  qrplate::host::parallel_for(4, 4, [&](unsigned, std::size_t caller) {
    for (std::size_t i = caller; i < 200; i += 4) got[i] = pf.take(i);
  });
  for (std::size_t i = 0; i < 200; ++i) {
    ASSERT_TRUE(got[i].has_value()) << i;
    EXPECT_TRUE(same_image(*got[i], tiles.images[i])) << i;
  }
  const auto st = pf.stats();
  EXPECT_EQ(st.taken + st.read_inline, 200u);
  EXPECT_EQ(st.missed, 0u);
  EXPECT_LE(st.max_bytes_held, budget);
  EXPECT_EQ(st.bytes_held, 0u);
}

// Requests, takes, drops and cancels racing: whatever take() returns is the tile's own image (a
// miss is read directly, as the scan reader will), and every request ends exactly once.
TEST(TilePrefetch, RacingRequestsTakesAndDropsStayConsistent)
{
  temp_dir dir;
  const tile_files tiles = write_tiles(dir, 200, 64, 48);
  tile_prefetcher pf(3, 4 * tiles.bytes);
  std::atomic<bool> requests_done{false};
  std::vector<std::optional<gray_image>> got(200);
  qrplate::host::parallel_for(4, 4, [&](unsigned, std::size_t role) {
    if (role == 0) {
      for (std::size_t i = 0; i < 200; ++i) {
        pf.request(i, tiles.paths[i]);
        if (i % 50 == 49) pf.cancel_queued();
      }
      requests_done = true;
    } else if (role == 3) {
      std::mt19937 rng(7);
      while (!requests_done) {
        pf.drop(rng() % 200);
        std::this_thread::yield();
      }
    } else {
      for (std::size_t i = role - 1; i < 200; i += 2) {
        got[i] = pf.take(i);
        if (!got[i]) got[i] = read_gray_image(tiles.paths[i]);
      }
    }
  });
  pf.drop_all();
  for (std::size_t i = 0; i < 200; ++i) EXPECT_TRUE(same_image(*got[i], tiles.images[i])) << i;
  // A tile dropped while being read is counted when its read ends.
  const auto ended = [&] {
    const auto st = pf.stats();
    return st.requested == st.taken + st.read_inline + st.cancelled + st.dropped;
  };
  EXPECT_TRUE(eventually(ended));
  const auto st = pf.stats();
  EXPECT_EQ(st.bytes_held, 0u);
  EXPECT_EQ(st.failed, 0u);
}

}  // namespace
