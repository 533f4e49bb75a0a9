// The plate encoder's host stages, the part of `qrplate encode` a GPU does not take over: writing
// plate.tif (packing, compressing and writing tiles) and the preview. With the CUDA backend these
// decide the end-to-end rate, so each is measured per core and on every core, in one run.
//
//   BM_plate_tiff/deflate/threads:1     plate.tif from band x block rectangles, one thread
//   BM_plate_tiff/deflate/threads:all   the same, tiles compressed on every core
//   BM_plate_tiff/{none,g4}/...          the other compressions (g4 runs on one thread always)
//   BM_plate_preview/threads:{1,all}    preview.png's block counts over the same rectangles
//   BM_payload_read/{sha256,sha256-tree}/threads:all   the payload read ahead and hashed as the
//                                       encoder takes it (plate/payload_reader.hpp), 256 MiB
//                                       from the page cache: SHA-256 on one thread, the tree's
//                                       leaves on every core; bytes_per_second is payload
//   BM_payload_check/{sha256,sha256-tree}/threads:all  decode's final check of its output file
//                                       (plate::hash_file), the same file
//
// The image is a plate of real v40-L codes (random payloads, automatic mask, 4-module quiet
// zones), 8,192 modules a side (~8 MB of 1-bit pixels, 2,025 codes), cut into rectangles of
// 17 code rows by the whole width, as the encoder's units arrive (`qrplate encode` gives a 256 MB
// payload's plate bands of 17 code rows and blocks of all its 360 columns). The file goes to $TMPDIR (or
// /tmp): on a page cache, so this is the CPU's share, not the disk's. bytes_per_second counts the
// image's 1-bit bytes; payload_bytes_per_second the payload those codes carry (2,953 B a code).

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "plate/payload_hash.hpp"
#include "plate/payload_reader.hpp"
#include "plate/preview.hpp"
#include "plate/tiff_writer.hpp"
#include "qrplate/encode.hpp"
#include "util/thread_team.hpp"

namespace {

constexpr int version = 40;
constexpr int code_side = 177;
constexpr int quiet = 4;
constexpr int pitch = code_side + quiet;
constexpr std::uint64_t plate_side = 8192;
constexpr int cells = static_cast<int>(plate_side / pitch);  // 45 codes a side
constexpr int band_codes = 17, block_codes = 45;  // the encoder's units on a plate this size: bands of 17 code rows, whole rows
constexpr double payload_per_code = 2953;

// One rectangle of the plate, bit 0 of each row at its left edge (the encoder's raster chunks).
struct rectangle {
  std::uint64_t x0 = 0, y0 = 0, width = 0, rows = 0;
  std::size_t stride = 0;
  std::vector<std::uint64_t> words;
};

struct plate_image {
  std::vector<rectangle> parts;
  std::uint64_t codes = 0;
};

const plate_image& image()
{
  static const plate_image img = [] {
    std::mt19937_64 rng(2026);
    const int n = cells * cells;
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(n) * static_cast<std::size_t>(payload_per_code));
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
    std::vector<std::uint64_t> offsets(static_cast<std::size_t>(n) + 1);
    for (int i = 0; i <= n; ++i) offsets[static_cast<std::size_t>(i)] = static_cast<std::uint64_t>(i) * 2953u;
    qrplate::batch_encode_options o;
    o.version = version;
    o.ecc = qrplate::ecc_level::L;
    qrplate::symbol_batch symbols;
    qrplate::encode({bytes.data(), offsets.data(), static_cast<std::size_t>(n)}, o, symbols);

    plate_image out;
    out.codes = static_cast<std::uint64_t>(n);
    auto cell_x = [](int c) { return static_cast<std::uint64_t>(c) * pitch + quiet; };
    // Bands of code rows by blocks of code columns; the last band and block take the margin.
    auto edge = [](int unit, int per_unit) {
      return (unit + 1) * per_unit >= cells ? plate_side : static_cast<std::uint64_t>((unit + 1) * per_unit) * pitch;
    };
    for (int band = 0; band * band_codes < cells; ++band) {
      const std::uint64_t y0 = static_cast<std::uint64_t>(band * band_codes) * pitch, y1 = edge(band, band_codes);
      for (int block = 0; block * block_codes < cells; ++block) {
        rectangle r;
        r.x0 = static_cast<std::uint64_t>(block * block_codes) * pitch;
        r.y0 = y0;
        r.width = edge(block, block_codes) - r.x0;
        r.rows = y1 - y0;
        r.stride = static_cast<std::size_t>((r.width + 63) / 64);
        r.words.assign(r.stride * r.rows, 0);
        for (int cr = band * band_codes; cr < (band + 1) * band_codes && cr < cells; ++cr) {
          for (int cc = block * block_codes; cc < (block + 1) * block_codes && cc < cells; ++cc) {
            const qrplate::symbol_view s = symbols.symbol(static_cast<std::size_t>(cr * cells + cc));
            for (int i = 0; i < code_side; ++i)
              for (int j = 0; j < code_side; ++j)
                if (s.module(i, j)) {
                  const std::uint64_t x = cell_x(cc) + static_cast<std::uint64_t>(j) - r.x0;
                  const std::uint64_t y = cell_x(cr) + static_cast<std::uint64_t>(i) - r.y0;
                  r.words[y * r.stride + x / 64] |= std::uint64_t{1} << (x % 64);
                }
          }
        }
        out.parts.push_back(std::move(r));
      }
    }
    return out;
  }();
  return img;
}

std::string temp_file()
{
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/qrplate_bench_plate_" + std::to_string(::getpid()) + ".tif";
}

void set_rates(benchmark::State& state)
{
  const double iterations = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(iterations * plate_side * plate_side / 8));
  state.counters["payload_bytes_per_second"] =
      benchmark::Counter(iterations * static_cast<double>(image().codes) * payload_per_code, benchmark::Counter::kIsRate);
}

void bm_plate_tiff(benchmark::State& state, qrplate::plate::tiff_compression compression, unsigned threads)
{
  const plate_image& img = image();
  qrplate::host::thread_team team(threads);
  qrplate::plate::tiff_options opt;
  opt.tile_width = opt.tile_height = 512;  // qrplate encode's default
  opt.compression = compression;
  opt.team = &team;
  const std::string path = temp_file();
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    qrplate::plate::tiled_bilevel_writer w(path, plate_side, plate_side, opt);
    for (const rectangle& r : img.parts) w.put_region(r.x0, r.y0, r.width, r.rows, r.words.data(), r.stride);
    w.finish();
    state.PauseTiming();
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f != nullptr) {
      std::fseek(f, 0, SEEK_END);
      bytes = static_cast<std::uint64_t>(std::ftell(f));
      std::fclose(f);
    }
    std::remove(path.c_str());
    state.ResumeTiming();
  }
  set_rates(state);
  state.counters["file_over_raw"] = static_cast<double>(bytes) / (static_cast<double>(plate_side * plate_side) / 8);
}

void bm_plate_preview(benchmark::State& state, unsigned threads)
{
  const plate_image& img = image();
  qrplate::host::thread_team team(threads);
  for (auto _ : state) {
    qrplate::plate::preview_builder p(plate_side, plate_side, 2048, &team);
    for (const rectangle& r : img.parts) p.add_region(r.x0, r.y0, r.width, r.rows, r.words.data(), r.stride);
    benchmark::DoNotOptimize(p.pixels());
  }
  set_rates(state);
}

// A 256 MiB file of random bytes in $TMPDIR (or /tmp), written once, removed at exit.
const std::string& payload_file()
{
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string p = std::string(dir && *dir ? dir : "/tmp") + "/qrplate_bench_payload_" + std::to_string(::getpid());
    std::FILE* f = std::fopen(p.c_str(), "wb");
    if (!f) return std::string();
    std::mt19937_64 rng(7);
    std::vector<std::uint64_t> block(1 << 17);  // 1 MiB
    bool ok = true;
    for (int i = 0; i < 256 && ok; ++i) {
      for (auto& w : block) w = rng();
      ok = std::fwrite(block.data(), sizeof(std::uint64_t), block.size(), f) == block.size();
    }
    ok = std::fclose(f) == 0 && ok;
    if (!ok) {
      std::remove(p.c_str());
      return std::string();
    }
    std::atexit([] { std::remove(payload_file().c_str()); });
    return p;
  }();
  return path;
}
constexpr std::uint64_t payload_bytes = std::uint64_t{256} << 20;

void bm_payload_read(benchmark::State& state, qrplate::plate::payload_hash_kind kind)
{
  if (payload_file().empty()) {
    state.SkipWithError("cannot write the payload file");
    return;
  }
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::uint8_t> frame(2936);  // a v40-L frame's data bytes at a time, as the encoder takes them
  for (auto _ : state) {
    qrplate::plate::payload_reader reader(payload_file(), payload_bytes, kind, threads);
    for (std::uint64_t at = 0; at < payload_bytes; at += frame.size())
      reader.read(frame.data(), static_cast<std::size_t>(std::min<std::uint64_t>(frame.size(), payload_bytes - at)));
    benchmark::DoNotOptimize(reader.finish());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<benchmark::IterationCount>(payload_bytes));
}

void bm_payload_check(benchmark::State& state, qrplate::plate::payload_hash_kind kind)
{
  if (payload_file().empty()) {
    state.SkipWithError("cannot write the payload file");
    return;
  }
  for (auto _ : state)
    benchmark::DoNotOptimize(
        qrplate::plate::hash_file(payload_file(), kind, qrplate::plate::default_tree_leaf_bytes, 0));
  state.SetBytesProcessed(state.iterations() * static_cast<benchmark::IterationCount>(payload_bytes));
}

bool register_all()
{
  using qrplate::plate::tiff_compression;
  for (auto c : {tiff_compression::deflate, tiff_compression::none, tiff_compression::ccitt_g4}) {
    for (unsigned threads : {1u, 0u}) {
      if (c == tiff_compression::ccitt_g4 && threads != 1) continue;  // libtiff's codec, one thread
      const std::string name = std::string("BM_plate_tiff/") + qrplate::plate::to_string(c) +
                               (threads == 1 ? "/threads:1" : "/threads:all");
      benchmark::RegisterBenchmark(name.c_str(), bm_plate_tiff, c, threads)->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  }
  for (unsigned threads : {1u, 0u}) {
    benchmark::RegisterBenchmark(threads == 1 ? "BM_plate_preview/threads:1" : "BM_plate_preview/threads:all",
                                 bm_plate_preview, threads)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (auto kind : {qrplate::plate::payload_hash_kind::sha256, qrplate::plate::payload_hash_kind::sha256_tree}) {
    const std::string k = qrplate::plate::to_string(kind);
    benchmark::RegisterBenchmark(("BM_payload_read/" + k + "/threads:all").c_str(), bm_payload_read, kind)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("BM_payload_check/" + k + "/threads:all").c_str(), bm_payload_check, kind)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  return true;
}

[[maybe_unused]] const bool registered = register_all();

}  // namespace

BENCHMARK_MAIN();
