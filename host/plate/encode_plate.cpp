// The plate encode pipeline. Per plate: header codes, then unit after unit (a band of code rows
// by a block of columns, the span of its outer-code groups, placement.hpp):
//   read payload -> frames (header, CRC32C) -> outer parity per group -> batch encode (backend)
//   -> raster of the unit -> [writer thread] tiled BigTIFF (tiles written as they complete)
//   + preview.
// The writer thread takes finished rasters from a queue of two, so encoding the next unit
// overlaps compressing and writing this one. Memory: a few unit rasters and one unit of codes,
// plus the TIFF tiles still waiting for their lower neighbours (about one row of tiles): bounded
// by the block width and the tile height, not by the plate's width or the payload.
#include "qrplate/plate/encode_plate.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "io/staging_dir.hpp"
#include "plate/payload_reader.hpp"
#include "plate/preview.hpp"
#include "plate/tiff_writer.hpp"
#include "qrplate/core/bit_matrix.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/frame.hpp"
#include "qrplate/plate/manifest.hpp"
#include "qrplate/plate/outer_code.hpp"
#include "qrplate/qr.hpp"
#include "util/thread_team.hpp"

namespace qrplate::plate {
namespace fs = std::filesystem;
namespace {

using clock_type = std::chrono::steady_clock;

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return b == 0 ? 0 : (a + b - 1) / b; }

std::string mib(double bytes)
{
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
  return buf;
}

// ORs a symbol into a raster of `words` words per row with its top-left module at (x, y).
void blit(symbol_view s, std::uint64_t x, std::uint64_t y, std::uint64_t* raster, std::size_t words)
{
  for (int i = 0; i < s.size; ++i)
    core::or_bits(raster + (y + static_cast<std::uint64_t>(i)) * words, x, s.rows + static_cast<std::size_t>(i) * s.stride(), 0,
                  static_cast<std::uint64_t>(s.size));
}

// Raster rows handed to the writer thread.
struct raster_chunk {
  std::uint64_t x0 = 0, y0 = 0, width = 0;  // where the rectangle sits on the plate
  std::size_t rows = 0;
  std::size_t stride = 0;  // words per row
  std::vector<std::uint64_t> words;
  bool recycle = false;  // a unit's raster: its buffer goes back for the next unit
};

// Writes chunks on its own thread; at most `depth` chunks wait. Errors surface in push()/finish().
class image_sink {
 public:
  image_sink(const std::string& dir, const plate_geometry& g, const plate_encode_options& o, host::thread_team& team)
      : discard_(o.discard)
  {
    if (!discard_) {
      tiff_options t;
      t.tile_width = o.tile_width;
      t.tile_height = o.tile_height;
      t.compression = parse_tiff_compression(o.compression);
      t.team = &team;
      tiff_ = std::make_unique<tiled_bilevel_writer>(dir + "/plate.tif", g.width, g.height, t);
      tiff_->set_resolution_nm(g.module_nm);
      preview_ = std::make_unique<preview_builder>(g.width, g.height, 2048, &team);
      preview_path_ = dir + "/preview.png";
    }
    thread_ = std::thread([this] { run(); });
  }
  ~image_sink()
  {
    if (thread_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        closing_ = true;
        queue_.clear();
      }
      ready_.notify_all();
      thread_.join();
    }
  }
  image_sink(const image_sink&) = delete;
  image_sink& operator=(const image_sink&) = delete;

  // A raster buffer the writer is done with (its contents stale), or an empty one: recycling
  // them saves the page faults of a fresh buffer per unit (tens of MB each).
  std::vector<std::uint64_t> take_spare()
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (spares_.empty()) return {};
    std::vector<std::uint64_t> words = std::move(spares_.back());
    spares_.pop_back();
    return words;
  }

  void push(raster_chunk chunk)
  {
    std::unique_lock<std::mutex> lock(mutex_);
    space_.wait(lock, [&] { return queue_.size() < depth || error_; });
    rethrow_locked();
    queue_.push_back(std::move(chunk));
    ready_.notify_one();
  }

  void finish()
  {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    ready_.notify_all();
    thread_.join();
    std::lock_guard<std::mutex> lock(mutex_);
    rethrow_locked();
    if (!discard_) {
      tiff_->finish();
      preview_->write_png(preview_path_);
    }
  }

 private:
  static constexpr std::size_t depth = 2;

  void rethrow_locked()
  {
    if (error_) std::rethrow_exception(error_);
  }

  void run()
  {
    for (;;) {
      raster_chunk chunk;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return !queue_.empty() || closing_; });
        if (queue_.empty()) return;
        chunk = std::move(queue_.front());
        queue_.pop_front();
      }
      space_.notify_one();
      try {
        if (!discard_ && chunk.rows) {
          tiff_->put_region(chunk.x0, chunk.y0, chunk.width, chunk.rows, chunk.words.data(), chunk.stride);
          preview_->add_region(chunk.x0, chunk.y0, chunk.width, chunk.rows, chunk.words.data(), chunk.stride);
        }
        std::lock_guard<std::mutex> lock(mutex_);
        if (chunk.recycle && spares_.size() < depth) spares_.push_back(std::move(chunk.words));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = std::current_exception();
        queue_.clear();
        space_.notify_all();
        return;
      }
    }
  }

  bool discard_;
  std::unique_ptr<tiled_bilevel_writer> tiff_;
  std::unique_ptr<preview_builder> preview_;
  std::string preview_path_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::deque<raster_chunk> queue_;
  std::vector<std::vector<std::uint64_t>> spares_;
  bool closing_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

class progress_line {
 public:
  progress_line(bool on, std::uint64_t total) : on_(on), total_(total), start_(clock_type::now()) {}
  void update(std::uint64_t done, std::uint64_t codes, bool force = false)
  {
    if (!on_) return;
    const auto now = clock_type::now();
    if (!force && now - last_ < std::chrono::milliseconds(500)) return;
    last_ = now;
    const double s = std::chrono::duration<double>(now - start_).count();
    const double rate = s > 0 ? static_cast<double>(done) / s : 0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
    std::fprintf(stderr, "\rqrplate: %s of %s, %llu codes, %s/s, ETA %.0f s   ", mib(static_cast<double>(done)).c_str(),
                 mib(static_cast<double>(total_)).c_str(), static_cast<unsigned long long>(codes), mib(rate).c_str(), eta);
    std::fflush(stderr);
  }
  void done()
  {
    if (on_) std::fputc('\n', stderr);
  }

 private:
  bool on_;
  std::uint64_t total_;
  clock_type::time_point start_, last_{};
};

struct run_state {
  const plate_encode_options& o;
  host::thread_team& team;  // the main thread's stages and the writer's share it
  payload_reader& in;
  progress_line& progress;
  std::uint64_t payload_read = 0;
  std::uint64_t codes = 0;
  plate_encode_result& result;
};

// Encodes one plate: its share of the payload is the next `share_bytes` bytes of the reader.
void encode_one_plate(run_state& st, const plate_geometry& g, const manifest& man, const std::string& dir)
{
  const plate_encode_options& o = st.o;
  const frame_placement& pl = g.placement;
  const std::size_t full_words = (g.width + 63) / 64;
  const int body = frame_body_bytes(g.version, g.ecc);
  const int per_frame = frame_data_bytes(g.version, g.ecc);
  const std::uint16_t tag = plate_tag_of(man.plate_id);
  const int k = pl.k(), m = pl.m();
  const std::uint64_t band_px = static_cast<std::uint64_t>(pl.band_rows()) * g.pitch;

  // Pixel columns of block b: the first takes the left margin, the last the right one.
  auto block_x0 = [&](std::uint32_t b) { return b == 0 ? 0 : g.cell_x(pl.block_x(b)); };
  auto block_x1 = [&](std::uint32_t b) { return b + 1 == pl.blocks() ? g.width : g.cell_x(pl.block_x(b + 1)); };

  const double need = encode_memory_bytes(g, o.tile_height, o.threads, o.hash);
  if (need > static_cast<double>(o.buffer_bytes))
    throw invalid_argument("this plate needs " + mib(need) + " of working memory, more than --buffer " +
                           mib(static_cast<double>(o.buffer_bytes)) + ": raise --buffer, or lower --tile or --threads");

  image_sink sink(dir, g, o, st.team);
  const std::uint64_t chunk_rows = std::max<std::uint64_t>(1, (64ull << 20) / (full_words * 8));

  // Header codes: the binary manifest, version 11-H.
  const std::vector<std::uint8_t> man_bytes = to_binary(man);
  qr_options ho;
  ho.min_version = ho.max_version = header_version;
  ho.ecc = header_ecc;
  const qr_symbol header = encode_bytes(man_bytes.data(), man_bytes.size(), ho);
  st.result.header_codes += 2ull * g.header_copies;

  // Full-width rows [y0, y1) that hold no data codes: margins, header strips, unused grid rows.
  auto emit_plain_rows = [&](std::uint64_t y0, std::uint64_t y1) {
    for (std::uint64_t y = y0; y < y1;) {
      const std::uint64_t n = std::min(chunk_rows, y1 - y);
      raster_chunk c;
      c.x0 = 0;
      c.y0 = y;
      c.width = g.width;
      c.rows = n;
      c.stride = full_words;
      c.words.assign(n * full_words, 0);
      for (int strip = 0; strip < 2; ++strip) {
        const std::uint64_t hy = g.header_y(strip);
        if (hy + header_size <= y || hy >= y + n) continue;
        // Draw the strip into a scratch raster and copy the rows that fall in [y, y+n).
        std::vector<std::uint64_t> scratch(static_cast<std::size_t>(header_size) * full_words, 0);
        for (std::uint32_t i = 0; i < g.header_copies; ++i) blit(header.view(), g.header_x(strip, i), 0, scratch.data(), full_words);
        for (std::uint64_t r = std::max(y, hy); r < std::min(y + n, hy + header_size); ++r)
          for (std::size_t w = 0; w < full_words; ++w) c.words[(r - y) * full_words + w] |= scratch[(r - hy) * full_words + w];
      }
      sink.push(std::move(c));
      y += n;
    }
  };

  emit_plain_rows(0, g.grid_y);

  outer_encoder outer(outer_spec{k, m}, static_cast<std::size_t>(body));
  // Frames, parity and the raster are built a group / a code row per task on every core: with a
  // GPU encoding, this loop's serial work would otherwise bound the whole encode (docs/PERFORMANCE.md).
  host::thread_team& team = st.team;
  struct scratch {  // a team member's own
    std::vector<std::uint8_t> short_body;  // the plate's last data body, zero-padded to the width
    std::vector<const std::uint8_t*> dp;
    std::vector<std::uint8_t*> pp;
  };
  std::vector<scratch> scratches(team.size());
  for (scratch& sc : scratches) {
    sc.short_body.resize(static_cast<std::size_t>(body));
    sc.dp.resize(static_cast<std::size_t>(k));
    sc.pp.resize(static_cast<std::size_t>(m));
  }
  const std::vector<std::uint8_t> zero_body(static_cast<std::size_t>(body), 0);  // virtual frames past the data
  // With a GPU encoding, the frames go up and the matrices come down by DMA from pinned memory:
  // no staging copies on this (serial) loop's thread.
  const host_memory memory = resolve_backend(o.where) == backend::cuda ? host_memory::pinned : host_memory::pageable;
  host_array<std::uint8_t> frame_bytes(memory);
  std::vector<std::uint64_t> offsets;
  batch_encode_options bo;
  bo.version = g.version;
  bo.ecc = g.ecc;
  bo.where = o.where;
  bo.threads = o.threads;
  symbol_batch symbols(memory);
  std::uint64_t share_left = man.share_bytes;
  const std::size_t parity_frame_bytes = frame_header_bytes + static_cast<std::size_t>(body);

  for (std::uint64_t band = 0; band < pl.bands(); ++band) {
    for (std::uint32_t block = 0; block < pl.blocks(); ++block) {
      throw_if_interrupted(o.interrupt);
      const std::uint64_t g0 = std::min(pl.groups(), pl.first_group(band, block));
      const std::uint64_t g1 = std::min(pl.groups(), g0 + pl.block_groups(block));
      const std::uint64_t d0 = std::min(pl.data_frames(), g0 * k);
      const std::uint64_t d1 = std::min(pl.data_frames(), g1 * k);
      const std::uint64_t p0 = g0 * m, p1 = g1 * m;
      // The unit's frames, data frames d0..d1 then parity frames p0..p1, laid out first (every
      // data frame is full but the plate's last): each payload is read straight to its place in
      // its frame, and each task then frames its group in place, the outer code reading the data
      // bodies where they lie and writing the parity bodies into their frames.
      offsets.assign(1, 0);
      for (std::uint64_t idx = d0; idx < d1; ++idx) {
        const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(per_frame, share_left));
        share_left -= len;
        offsets.push_back(offsets.back() + frame_header_bytes + data_length_bytes + len);
      }
      for (std::uint64_t pi = p0; pi < p1; ++pi) offsets.push_back(offsets.back() + parity_frame_bytes);
      frame_bytes.resize(static_cast<std::size_t>(offsets.back()));
      for (std::uint64_t i = 0; i < d1 - d0; ++i) {
        const std::size_t payload_len = offsets[i + 1] - offsets[i] - frame_header_bytes - data_length_bytes;
        st.in.read(frame_bytes.data() + offsets[i] + frame_header_bytes + data_length_bytes, payload_len);
        st.payload_read += payload_len;
      }

      team.run(static_cast<std::size_t>(g1 - g0), [&](unsigned member, std::size_t gi) {
        scratch& sc = scratches[member];
        const std::uint64_t grp = g0 + gi;
        for (int j = 0; j < k; ++j) {
          const std::uint64_t idx = grp * k + static_cast<std::uint64_t>(j);
          if (idx >= d1) {
            sc.dp[j] = zero_body.data();
            continue;
          }
          const std::size_t i = static_cast<std::size_t>(idx - d0);
          std::uint8_t* frame = frame_bytes.data() + offsets[i];
          std::uint8_t* in_place = frame + frame_header_bytes;
          const std::size_t blen = make_data_body(in_place + data_length_bytes,
                                                  offsets[i + 1] - offsets[i] - frame_header_bytes - data_length_bytes, in_place);
          write_frame(frame_header{frame_kind::data, tag, idx}, in_place, blen, frame);
          if (blen == static_cast<std::size_t>(body)) {
            sc.dp[j] = in_place;
          } else {
            pad_data_body(in_place, blen, static_cast<std::size_t>(body), sc.short_body.data());
            sc.dp[j] = sc.short_body.data();
          }
        }
        if (m == 0) return;
        for (int j = 0; j < m; ++j) {
          const std::uint64_t pi = grp * m + static_cast<std::uint64_t>(j);
          sc.pp[j] = frame_bytes.data() + offsets[static_cast<std::size_t>((d1 - d0) + (pi - p0))] + frame_header_bytes;
        }
        outer.encode(sc.dp.data(), sc.pp.data());
        for (int j = 0; j < m; ++j) {
          const std::uint64_t pi = grp * m + static_cast<std::uint64_t>(j);
          write_frame(frame_header{frame_kind::parity, tag, pi}, sc.pp[j], static_cast<std::size_t>(body),
                      sc.pp[j] - frame_header_bytes);
        }
      });

      encode(payload_batch_view{frame_bytes.data(), offsets.data(), offsets.size() - 1}, bo, symbols);
      for (std::uint64_t i = 0; i < symbols.count(); ++i)
        if (symbols.status()[i] != encode_status::ok) throw std::logic_error("a frame did not fit its code");
      st.codes += symbols.count();
      st.result.data_frames += d1 - d0;
      st.result.parity_frames += p1 - p0;

      // Raster of the unit: B code rows of `pitch` pixel rows, the block's pixel columns; a code
      // row per task (its pixel rows are its own).
      raster_chunk c;
      c.x0 = block_x0(block);
      c.y0 = g.cell_y(band * pl.band_rows());
      c.width = block_x1(block) - c.x0;
      c.rows = band_px;
      c.stride = (c.width + 63) / 64;
      c.recycle = true;
      c.words = sink.take_spare();
      c.words.resize(band_px * c.stride);  // stale contents: each task clears its own rows
      const std::uint64_t row0 = band * pl.band_rows();
      const std::uint32_t col0 = pl.block_x(block), col1 = col0 + pl.block_width(block);
      team.run(pl.band_rows(), [&](unsigned, std::size_t r) {
        const std::size_t rows_words = static_cast<std::size_t>(g.pitch) * c.stride;
        std::fill_n(c.words.begin() + static_cast<std::ptrdiff_t>(r * rows_words), rows_words, std::uint64_t{0});
        for (std::uint32_t col = col0; col < col1; ++col) {
          const placement_slot slot = pl.at(row0 + r, col);
          if (slot.kind == placement_slot::empty) continue;
          const std::uint64_t sym = slot.kind == placement_slot::data ? slot.index - d0 : (d1 - d0) + (slot.index - p0);
          blit(symbols.symbol(sym), g.cell_x(col) - c.x0, static_cast<std::uint64_t>(r) * g.pitch, c.words.data(), c.stride);
        }
      });
      sink.push(std::move(c));
      st.progress.update(st.payload_read, st.codes);
    }
  }
  emit_plain_rows(g.cell_y(pl.rows()), g.height);
  sink.finish();
  st.result.modules += g.width * g.height;
}

// Copies standard input to `path`; returns the byte count.
std::uint64_t spool_stdin(const std::string& path)
{
  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (!out) throw io_error("cannot create " + path + ": " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  std::uint64_t total = 0;
  for (;;) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), stdin);
    if (n && std::fwrite(buf.data(), 1, n, out) != n) {
      std::fclose(out);
      throw io_error("cannot write " + path + ": " + std::strerror(errno));
    }
    total += n;
    if (n < buf.size()) break;
  }
  const bool read_error = std::ferror(stdin);
  if (std::fclose(out) != 0) throw io_error("cannot write " + path + ": " + std::strerror(errno));
  if (read_error) throw io_error("cannot read standard input");
  return total;
}

void write_text_file(const std::string& path, const std::string& text)
{
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) throw io_error("cannot write " + path);
}

}  // namespace

double encode_memory_bytes(const plate_geometry& g, std::uint32_t tile_height, unsigned threads, payload_hash_kind hash)
{
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const frame_placement& pl = g.placement;
  const std::uint32_t last = pl.blocks() - 1;
  const std::uint64_t widest_cells = std::max(pl.block_width(0), pl.block_width(last));
  const double widest_px = static_cast<double>(widest_cells * g.pitch + 2 * plate_margin);
  const double band_px = static_cast<double>(pl.band_rows()) * g.pitch;
  const double unit_frames = static_cast<double>(pl.band_rows()) * static_cast<double>(widest_cells);
  const double body = frame_body_bytes(g.version, g.ecc) + frame_header_bytes;
  const double tile_bytes = static_cast<double>(tile_height) * tile_height / 8.0;  // square tiles, as qrplate encode makes
  const double pointers = 8.0 * (g.placement.k() + g.placement.m());
  // Unit rasters: one being drawn, two queued for the writer, one being written (recycled, so no
  // more are ever made).
  return 4.0 * band_px * (widest_px + 64) / 8.0
         // codes; frames counted twice (the second once the CUDA driver's staging, which pinned
         // frames no longer need; kept as headroom, so plans made before stay valid)
         + unit_frames * (static_cast<double>(words_per_symbol(g.code_size)) * 8.0 + 2.0 * body)
         + static_cast<double>(tile_height) * static_cast<double>(g.width) / 8.0     // tiles awaiting the next band
         + threads * (body + pointers                                                // a thread's group scratch
                      + 2.0 * tiles_per_thread_round * tile_bytes)                  // and tiles packed and deflated
         + payload_read_ahead_bytes(hash == payload_hash_kind::sha256 ? 1 : threads);
}

void effective_outer(const plate_encode_options& o, std::uint64_t data_frames, int& k, int& m)
{
  k = o.geometry.k;
  m = o.geometry.m;
  if (m == 0) {
    k = 1;
    return;
  }
  if (!o.outer_given && data_frames < static_cast<std::uint64_t>(k)) {
    const int small_k = static_cast<int>(std::max<std::uint64_t>(1, data_frames));
    m = std::max(1, static_cast<int>(ceil_div(static_cast<std::uint64_t>(m) * small_k, static_cast<std::uint64_t>(k))));
    k = small_k;
  }
}

plate_encode_result encode_plates(const std::string& input, const std::string& out_dir, const plate_encode_options& o)
{
  validate(o.geometry);
  {
    tiff_options t;
    t.tile_width = o.tile_width;
    t.tile_height = o.tile_height;
    t.compression = parse_tiff_compression(o.compression);
    validate(t);
  }
  const auto start = clock_type::now();
  plate_encode_result result;
  if (out_dir.empty()) throw invalid_argument("no output directory given (-o)");
  std::error_code ec;
  if (!o.discard && fs::exists(out_dir, ec))
    throw invalid_argument("output " + out_dir + " already exists; remove it or choose another -o");  // before reading stdin

  struct stat info{};
  if (input != "-" && ::stat(input.c_str(), &info) != 0) throw io_error("cannot read " + input + ": " + std::strerror(errno));
  if (input != "-" && S_ISDIR(info.st_mode)) throw invalid_argument("input " + input + " is a directory, not a file");

  // Everything goes under a temporary directory beside out_dir, renamed at the end.
  host::staging_dir stage(out_dir, !o.discard);
  const fs::path& staging = stage.path();

  // The payload size must be known before the first header code is drawn: standard input (or
  // any non-regular file) is copied to the staging directory first.
  std::string path = input;
  std::uint64_t size = 0;
  if (input == "-" || !S_ISREG(info.st_mode)) {
    path = (staging / "input.spool").string();
    if (input == "-") {
      size = spool_stdin(path);
    } else {
      std::ifstream src(input, std::ios::binary);
      std::ofstream dst(path, std::ios::binary);
      dst << src.rdbuf();
      if (!src.good() && !src.eof()) throw io_error("cannot read " + input);
      dst.close();
      size = fs::file_size(path);
    }
  } else {
    size = static_cast<std::uint64_t>(info.st_size);
  }
  result.payload_bytes = size;

  const int per_frame = frame_data_bytes(o.geometry.version, o.geometry.ecc);
  const std::uint64_t total_frames = ceil_div(size, static_cast<std::uint64_t>(per_frame));
  geometry_options geo = o.geometry;
  effective_outer(o, total_frames, geo.k, geo.m);
  result.k = geo.k;
  result.m = geo.m;

  // Split over plates: a fixed plate size holds capacity frames; an automatic one holds all.
  std::uint64_t per_plate = total_frames;
  std::uint64_t plates = 1;
  if (geo.plate) {
    per_plate = plate_capacity_frames(geo);
    if (per_plate == 0) throw invalid_argument("plate too small for a single group of codes");
    plates = std::max<std::uint64_t>(1, ceil_div(total_frames, per_plate));
    if (plates > 65535) throw data_too_long("payload needs " + std::to_string(plates) + " plates; at most 65535");
  }
  result.plates = plates;
  const std::uint64_t plate_id = o.plate_id ? o.plate_id : (static_cast<std::uint64_t>(std::random_device{}()) << 32 | std::random_device{}());

  host::thread_team team(o.threads);
  // The tree's leaves hashed on as many threads as the team has (they mostly wait for the GPU, or
  // share the cores with the CPU encoder; SHA-256 is ~2% of a CPU encode's work).
  payload_reader reader(path, size, o.hash, team.size());
  progress_line progress(o.progress, size);
  run_state st{o, team, reader, progress, 0, 0, result};
  std::vector<manifest> manifests;
  std::vector<std::string> dirs;
  for (std::uint64_t p = 0; p < plates; ++p) {
    const std::uint64_t first = p * per_plate;
    const std::uint64_t frames = std::min(per_plate, total_frames - std::min(total_frames, first));
    const std::uint64_t offset = std::min<std::uint64_t>(size, first * per_frame);
    const std::uint64_t share = std::min<std::uint64_t>(size - offset, frames * per_frame);
    const plate_geometry g = make_geometry(geo, frames);
    manifest man = make_manifest(g, plate_id, static_cast<std::uint16_t>(p), static_cast<std::uint16_t>(plates), offset,
                                 share, size);
    std::string dir = staging.string();
    if (plates > 1) {
      char name[32];
      std::snprintf(name, sizeof name, "plate-%04llu", static_cast<unsigned long long>(p + 1));
      dir = (staging / name).string();
      fs::create_directories(dir);
    }
    encode_one_plate(st, g, man, dir);
    manifests.push_back(man);
    dirs.push_back(dir);
  }
  progress.update(st.payload_read, st.codes, true);
  progress.done();

  const digest payload_digest = reader.finish();
  result.hash = o.hash;
  result.digest_hex = to_hex(payload_digest.data(), payload_digest.size());
  std::error_code rm;
  fs::remove(staging / "input.spool", rm);
  image_info image;
  image.tile_width = o.tile_width;
  image.tile_height = o.tile_height;
  image.compression = o.compression;
  for (std::size_t i = 0; i < manifests.size(); ++i) {
    manifests[i].payload_hash = o.hash;
    manifests[i].tree_leaf_bytes = payload_block_bytes;
    manifests[i].payload_digest = payload_digest;
    if (!o.discard) write_text_file(dirs[i] + "/plate.json", to_json(manifests[i], image));
  }
  if (!o.discard) {
    stage.commit();
    const fs::path& target = stage.target();
    for (std::size_t i = 0; i < dirs.size(); ++i)
      result.plate_dirs.push_back(plates > 1 ? (target / fs::path(dirs[i]).filename()).string() : target.string());
  }
  result.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  return result;
}

}  // namespace qrplate::plate
