// The plate read path: codes (from plate.tif, or from a scan set) -> frames -> outer code -> payload.
// Works unit by unit (a band of code rows by a block of columns, placement.hpp): a unit holds
// whole outer-code groups, so memory is one unit of frames whatever the plate's size, and a
// scan set's tiles are held only for the band being read.
#include "qrplate/plate/decode_plate.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "encode/version_plan_cache.hpp"
#include "io/png_file.hpp"
#include "plate/payload_hash.hpp"
#include "qrplate/core/decode_symbol.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/frame.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/plate/manifest.hpp"
#include "qrplate/plate/outer_code.hpp"
#include "blind/blind_reader.hpp"
#include "scan/scan_reader.hpp"
#include "scan/scan_set.hpp"
#include "sim/scan_io.hpp"
#include "util/lasting_threads.hpp"

namespace qrplate::plate {
namespace fs = std::filesystem;
namespace {

// The payload's digest plate.json gives, checked once every byte is back.
struct expected_digest {
  bool known = false;
  payload_hash_kind kind = payload_hash_kind::sha256;
  std::uint64_t leaf_bytes = default_tree_leaf_bytes;
  digest value{};
};

// One decoded code: the frame it carried (empty when unreadable or rejected).
struct cell_frame {
  enum { none, unreadable, rejected, data, parity } kind = none;
  bool corrected = false;
  bool erasures = false;
  bool not_scanned = false;
  bool partly_scanned = false;  // scan sets: the reading sampled only part of the code
  int margin = 0;
  int rs_symbols = 0;
  float snr = 0;
  std::uint64_t index = 0;
  std::vector<std::uint8_t> body;
};

// Decodes the code whose top-left module is (x, y): returns its byte-mode content.
bool read_code(sim::plate_image_reader& reader, const core::version_plan& plan, std::uint64_t x, std::uint64_t y,
               core::decode_workspace& ws, std::vector<std::uint64_t>& window, std::vector<std::uint8_t>& bytes,
               core::decode_result& r)
{
  std::size_t stride = 0;
  reader.read_window(static_cast<std::int64_t>(x), static_cast<std::int64_t>(y), static_cast<std::uint64_t>(plan.size),
                     static_cast<std::uint64_t>(plan.size), window, stride);
  bytes.resize(spec::max_data_codewords);
  r = core::decode_symbol(plan, window.data(), nullptr, 0, bytes.data(), ws);
  if (r.status == core::decode_status::failed || r.status == core::decode_status::bad_format) return false;
  bytes.resize(static_cast<std::size_t>(r.data_length));
  return true;
}

// The manifest from the header codes: the first copy that decodes and passes its CRC.
bool bootstrap(sim::plate_image_reader& reader, manifest& out)
{
  const core::version_plan& plan = host::version_plan_for(header_version, header_ecc);
  auto ws = std::make_unique<core::decode_workspace>();
  std::vector<std::uint64_t> window;
  std::vector<std::uint8_t> bytes;
  core::decode_result r{};
  const std::uint64_t w = reader.width(), h = reader.height();
  for (int strip = 0; strip < 2; ++strip)
    for (std::uint32_t i = 0; i < max_header_copies; ++i) {
      const std::uint64_t x = strip == 0 ? plate_margin + i * header_pitch : w - plate_margin - header_size - i * header_pitch;
      const std::uint64_t y = strip == 0 ? plate_margin : h - plate_margin - header_size;
      if (x + header_size > w || y + header_size > h || (strip == 1 && w < plate_margin + header_size + i * header_pitch)) continue;
      if (!read_code(reader, plan, x, y, *ws, window, bytes, r)) continue;
      try {
        out = manifest_from_binary(bytes.data(), bytes.size());
        return true;
      } catch (const invalid_argument&) {
        continue;  // not a manifest, or damaged: try the next copy
      }
    }
  return false;
}

// Where the codes of a plate come from: the plate image, or a scan set.
class code_source {
 public:
  virtual ~code_source() = default;
  virtual unsigned threads() const = 0;
  // Cells are read in column strips this wide (all of a unit's rows, top to bottom, then the
  // next strip); prepare() comes before each row group of a strip is read, rows_end the unit's
  // last row + 1, next the region the following prepare() asks for when it is not these columns'
  // next rows (null: those rows, a band at once, or none).
  virtual std::uint32_t strip_columns() const = 0;
  // Rows of a strip prepared at once when the strip is narrower than the unit (at least 1).
  virtual std::uint32_t rows_per_prepare() const = 0;
  virtual void prepare(std::uint64_t row0, std::uint64_t row1, std::uint32_t col0, std::uint32_t col1,
                       std::uint64_t rows_end, const scan::cell_region* next) = 0;
  // Reads the code of cell (row, col) on worker `thread`; fills f's reading fields and returns
  // the content when it decoded.
  virtual bool read(unsigned thread, std::uint64_t row, std::uint32_t col, cell_frame& f, std::vector<std::uint8_t>& bytes) = 0;
};

class image_source final : public code_source {
 public:
  image_source(const fs::path& tif, const plate_geometry& g, unsigned threads)
      : g_(g), plan_(host::version_plan_for(g.version, g.ecc))
  {
    for (unsigned t = 0; t < threads; ++t) {
      readers_.push_back(std::make_unique<sim::plate_image_reader>(tif.string()));
      workspaces_.push_back(std::make_unique<core::decode_workspace>());
      windows_.emplace_back();
    }
  }
  unsigned threads() const override { return static_cast<unsigned>(readers_.size()); }
  const sim::plate_image_reader& image() const { return *readers_.front(); }  // its size, for checks
  std::uint32_t strip_columns() const override { return ~std::uint32_t{0}; }  // a unit at once
  std::uint32_t rows_per_prepare() const override { return 1; }
  void prepare(std::uint64_t, std::uint64_t, std::uint32_t, std::uint32_t, std::uint64_t,
               const scan::cell_region*) override
  {
  }
  bool read(unsigned t, std::uint64_t row, std::uint32_t col, cell_frame& f, std::vector<std::uint8_t>& bytes) override
  {
    core::decode_result r{};
    try {
      if (!read_code(*readers_[t], plan_, g_.cell_x(col), g_.cell_y(row), *workspaces_[t], windows_[t], bytes, r))
        return false;
    } catch (const io_error& e) {
      // A damaged TIFF tile (bad compressed data): its cells are unreadable, as a scan set's
      // unreadable tile's are, and the outer code restores what it can; the first few reasons are
      // reported. A file that cannot be opened at all fails in the constructor instead.
      std::lock_guard<std::mutex> lock(errors_mutex_);
      if (errors_.size() < 20 && std::find(errors_.begin(), errors_.end(), e.what()) == errors_.end())
        errors_.push_back(e.what());
      return false;
    }
    f.corrected = r.status != core::decode_status::ok;
    f.margin = r.margin;
    f.rs_symbols = r.corrected_symbols;
    return true;
  }

 private:
  const plate_geometry& g_;
  const core::version_plan& plan_;
  std::vector<std::unique_ptr<sim::plate_image_reader>> readers_;
  std::vector<std::unique_ptr<core::decode_workspace>> workspaces_;
  std::vector<std::vector<std::uint64_t>> windows_;
  std::mutex errors_mutex_;
  std::vector<std::string> errors_;

 public:
  // The distinct reasons of parts of the image that could not be decoded (the first 20).
  std::vector<std::string> errors()
  {
    std::lock_guard<std::mutex> lock(errors_mutex_);
    return errors_;
  }
};

class scan_source final : public code_source {
 public:
  scan_source(scan::scan_set set, const manifest& man, const scan::scan_read_options& o) : reader_(std::move(set), man, o) {}
  unsigned threads() const override { return reader_.threads(); }
  std::uint32_t strip_columns() const override { return reader_.strip_columns(); }
  std::uint32_t rows_per_prepare() const override { return reader_.rows_per_prepare(); }
  void prepare(std::uint64_t row0, std::uint64_t row1, std::uint32_t col0, std::uint32_t col1,
               std::uint64_t rows_end, const scan::cell_region* next) override
  {
    reader_.prepare(row0, row1, col0, col1, rows_end, next);
  }
  bool read(unsigned t, std::uint64_t row, std::uint32_t col, cell_frame& f, std::vector<std::uint8_t>& bytes) override
  {
    scan::cell_read c;
    reader_.read_cell(t, row, col, c);
    f.not_scanned = c.tiles == 0;
    f.snr = c.snr;
    f.partly_scanned = c.partly_sampled;
    if (!c.decoded) return false;
    f.corrected = c.result.status != core::decode_status::ok;
    f.erasures = c.result.status == core::decode_status::erasure_assisted;
    f.margin = c.result.margin;
    f.rs_symbols = c.result.corrected_symbols;
    bytes = std::move(c.bytes);
    return true;
  }
  scan::scan_read_stats stats() const { return reader_.stats(); }

 private:
  scan::scan_reader reader_;
};

// What happened to a code cell, in increasing order of concern (a heatmap pixel shows the worst
// of its cells).
enum cell_state : std::uint8_t { state_none, state_clean, state_corrected, state_restored, state_rejected, state_lost };

struct heatmap {
  std::uint64_t factor = 1;
  std::uint32_t width = 0, height = 0;
  std::vector<std::uint8_t> worst;
  heatmap(std::uint32_t columns, std::uint64_t rows)
  {
    const std::uint64_t side = std::max<std::uint64_t>(columns, rows);
    factor = std::max<std::uint64_t>(1, (side + 1023) / 1024);
    width = static_cast<std::uint32_t>((columns + factor - 1) / factor);
    height = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, (rows + factor - 1) / factor));
    worst.assign(static_cast<std::size_t>(width) * height, state_none);
  }
  void mark(std::uint64_t row, std::uint32_t col, cell_state s)
  {
    std::uint8_t& w = worst[static_cast<std::size_t>(row / factor) * width + col / factor];
    w = std::max<std::uint8_t>(w, s);
  }
};

void write_heatmap(const heatmap& h, const std::string& path)
{
  static const std::uint8_t colour[6][3] = {
      {255, 255, 255}, {60, 170, 60}, {235, 205, 40}, {245, 140, 30}, {200, 60, 200}, {200, 20, 20}};
  std::vector<std::uint8_t> rgb(h.worst.size() * 3);
  for (std::size_t i = 0; i < h.worst.size(); ++i)
    for (int c = 0; c < 3; ++c) rgb[3 * i + c] = colour[h.worst[i]][c];
  host::write_png_file(path, rgb.data(), h.width, h.height, 3);
}

std::string read_text(const fs::path& p)
{
  std::error_code ec;
  if (fs::is_directory(p, ec)) throw io_error("cannot read " + p.string() + ": it is a directory");
  std::ifstream f(p, std::ios::binary);
  if (!f) throw io_error("cannot read " + p.string() + ": " + std::strerror(errno));
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// A manifest file, its errors naming the file (manifest_from_json's call every file plate.json).
manifest manifest_file(const fs::path& p)
{
  const std::string text = read_text(p);
  try {
    return manifest_from_json(text);
  } catch (const invalid_argument& e) {
    std::string why = e.what();
    for (const char* prefix : {"manifest: ", "plate.json: "})
      if (why.rfind(prefix, 0) == 0) why.erase(0, std::strlen(prefix));
    throw invalid_argument(p.string() + " is not a valid plate manifest: " + why);
  }
}

// --plate: a plate.json, or the plate directory holding it.
fs::path manifest_path(const std::string& given)
{
  std::error_code ec;
  return fs::is_directory(given, ec) ? fs::path(given) / "plate.json" : fs::path(given);
}

struct output_file {
  std::FILE* f = nullptr;
  std::string path;
  bool finished = false;  // the decode ran to its end: the file stays, as FILE or FILE.partial
  ~output_file()
  {
    if (f) std::fclose(f);
    // A decode that threw (bad options, no device, an unreadable manifest, a failed write) leaves
    // no .partial file behind: it would hold bytes without a report of what they are.
    if (!finished && !path.empty()) {
      std::error_code ignored;
      fs::remove(path, ignored);
    }
  }
  void write_at(std::uint64_t offset, const std::uint8_t* p, std::size_t n)
  {
    // Frames come in payload order: a seek only where they do not (a gap of lost frames, plates
    // out of order), as each seek flushes the stream's buffer, a write call per frame.
    const bool seek = offset != position;
    if ((seek && std::fseek(f, static_cast<long>(offset), SEEK_SET) != 0) || std::fwrite(p, 1, n, f) != n) {
      position = ~std::uint64_t{0};
      throw io_error("cannot write " + path + ": " + std::strerror(errno));
    }
    position = offset + n;
    if (digest) digest->add(offset, p, n);
  }
  std::uint64_t position = 0;  // where the stream stands: after the last write
  // Once the manifest says which digest to expect: the bytes written are hashed as they come (in
  // payload order, as units and plates are decoded), so the check needs no second read of the file.
  void expect_digest(const expected_digest& e, std::uint64_t payload_bytes, unsigned threads)
  {
    if (!digest && e.known) digest = std::make_unique<streaming_digest>(e.kind, e.leaf_bytes, payload_bytes, threads);
  }
  std::unique_ptr<streaming_digest> digest;
};

// The cells of one unit (a band of code rows x a block of columns: whole outer-code groups), as
// read.
struct unit_cells {
  std::uint64_t g0 = 0, g1 = 0, row0 = 0;
  std::uint32_t col0 = 0, width = 0;
  std::vector<cell_frame> found;  // band_rows x width, row by row
};

// What becomes of a unit's cells once they are read: their counts, their frames by group, the
// outer code's restorations, the payload's bytes written and the heatmap. One unit at a time, in
// the sweep's order (the payload is then written in order, as the streaming digest needs), either
// on a background thread while the codes of the next unit are read
// (plate_decode_options::finish_units_in_background) or in place. Until finish(), the frame
// fields of the result (codes, frames, lost ranges) are this object's: the caller leaves the
// result alone meanwhile.
class unit_finisher {
 public:
  unit_finisher(const manifest& man, output_file& out, plate_decode_result& res, bool background)
      : man_(man), g_(geometry_of(man)), pl_(g_.placement), body_(frame_body_bytes(g_.version, g_.ecc)),
        per_frame_(frame_data_bytes(g_.version, g_.ecc)), tag_(plate_tag_of(man.plate_id)), k_(pl_.k()), m_(pl_.m()),
        outer_(outer_spec{k_, m_}, static_cast<std::size_t>(body_)),
        map_(g_.columns, std::max<std::uint64_t>(pl_.rows(), 1)), out_(out), res_(res)
  {
    if (background) thread_ = std::make_unique<host::lasting_background_thread>();
  }
  std::uint16_t plate_tag() const { return tag_; }
  // Waits for the unit before (rethrowing what finishing it threw), then finishes this one: in the
  // background, or now.
  void submit(unit_cells unit)
  {
    const auto start = std::chrono::steady_clock::now();
    if (thread_) {
      thread_->wait();
      in_hand_ = std::move(unit);
      thread_->start([this] {
        finish_unit(in_hand_);
        in_hand_ = unit_cells{};  // its frames freed there too, not on the sweep's thread
      });
    } else {
      finish_unit(unit);
    }
    seconds_waited_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  // Waits for the last unit; then the heatmap, and the result's histogram, medians and seconds.
  void finish(const std::string& heatmap_path)
  {
    const auto start = std::chrono::steady_clock::now();
    if (thread_) thread_->wait();
    seconds_waited_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!heatmap_path.empty()) {
      // A heatmap that cannot be written (a full disk) must not cost the payload: it is noted and
      // the caller reports it once the payload is safe.
      try {
        write_heatmap(map_, heatmap_path);
      } catch (const std::exception& e) {
        if (res_.heatmap_error.empty()) res_.heatmap_error = heatmap_path + ": " + e.what();
      }
    }
    if (res_.margin_histogram.size() < margins_.size()) res_.margin_histogram.resize(margins_.size(), 0);
    for (std::size_t i = 0; i < margins_.size(); ++i) res_.margin_histogram[i] += margins_[i];
    auto median = [](std::vector<float>& v) {
      std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
      return static_cast<double>(v[v.size() / 2]);
    };
    if (!snrs_.empty()) res_.median_snr = median(snrs_);
    if (!unreadable_snrs_.empty()) res_.median_snr_unreadable = median(unreadable_snrs_);
    res_.seconds_finishing_units += seconds_finishing_;
    res_.seconds_frames += seconds_waited_;
  }

 private:
  void finish_unit(const unit_cells& u);

  const manifest& man_;
  const plate_geometry g_;
  const frame_placement& pl_;
  const int body_, per_frame_;
  const std::uint16_t tag_;
  const int k_, m_;
  outer_decoder outer_;
  heatmap map_;
  std::vector<std::uint64_t> margins_ = std::vector<std::uint64_t>(8, 0);
  std::vector<float> snrs_, unreadable_snrs_;
  output_file& out_;
  plate_decode_result& res_;
  double seconds_finishing_ = 0;  // in finish_unit (on the background thread, when there is one)
  double seconds_waited_ = 0;     // the caller's, in submit() and finish()
  unit_cells in_hand_;            // the unit the background thread finishes
  // Last: destroyed first, it waits for the unit in hand (which uses the members above).
  std::unique_ptr<host::lasting_background_thread> thread_;
};

void unit_finisher::finish_unit(const unit_cells& u)
{
  const auto start = std::chrono::steady_clock::now();
  const frame_placement& pl = pl_;
  const int k = k_, m = m_, body = body_, per_frame = per_frame_;
  plate_decode_result& res = res_;
  // Frames by position in their group; a frame is trusted by its own index and CRC, not by
  // the cell it was found in.
  const std::uint64_t groups = u.g1 - u.g0;
  std::vector<std::vector<std::uint8_t>> rows(groups * (k + m));
  for (const cell_frame& f : u.found) {
    if (f.kind == cell_frame::none) continue;
    ++res.codes;
    if (f.kind == cell_frame::unreadable) {
      ++res.codes_unreadable;
      if (f.not_scanned) {
        ++res.codes_not_scanned;
      } else if (f.partly_scanned) {
        ++res.codes_partly_scanned;
      } else if (res.scan && f.snr > 0) {  // plate images have no SNR
        ++res.codes_unreadable_sampled;
        unreadable_snrs_.push_back(f.snr);
      } else if (res.scan) {
        ++res.codes_unreadable_no_contrast;
      }
      continue;
    }
    f.corrected ? ++res.codes_corrected : ++res.codes_clean;
    if (f.erasures) ++res.codes_erasure_assisted;
    res.rs_symbols_corrected += static_cast<std::uint64_t>(f.rs_symbols);
    ++margins_[static_cast<std::size_t>(std::clamp(f.margin, 0, static_cast<int>(margins_.size()) - 1))];
    if (f.snr > 0) snrs_.push_back(f.snr);
    if (f.kind == cell_frame::rejected) {
      ++res.frames_rejected;
      continue;
    }
    std::uint64_t grp, member;
    if (f.kind == cell_frame::data) {
      grp = f.index / k, member = f.index % k;
    } else {
      if (m == 0) continue;
      grp = f.index / m, member = k + f.index % m;
    }
    if (grp < u.g0 || grp >= u.g1 || (f.kind == cell_frame::data && f.index >= pl.data_frames())) {
      ++res.frames_rejected;  // a valid frame outside this unit: not of this layout
      continue;
    }
    std::vector<std::uint8_t>& slot = rows[(grp - u.g0) * (k + m) + member];
    slot.assign(static_cast<std::size_t>(body), 0);
    if (f.kind == cell_frame::data) pad_data_body(f.body.data(), f.body.size(), slot.size(), slot.data());
    else std::memcpy(slot.data(), f.body.data(), std::min(f.body.size(), slot.size()));
  }
  // Group by group: virtual frames past the payload are known zero rows; restore the rest.
  std::vector<bool> group_ok(groups, true);
  std::vector<std::uint8_t> zero(static_cast<std::size_t>(body), 0);
  std::vector<std::vector<std::uint8_t>> restored(static_cast<std::size_t>(k), std::vector<std::uint8_t>(static_cast<std::size_t>(body)));
  for (std::uint64_t gi = 0; gi < groups; ++gi) {
    const std::uint64_t grp = u.g0 + gi;
    std::vector<const std::uint8_t*> frames(static_cast<std::size_t>(k + m), nullptr);
    std::vector<std::uint8_t*> restore(static_cast<std::size_t>(k), nullptr);
    bool missing = false;
    for (int j = 0; j < k + m; ++j) {
      const auto& r = rows[gi * (k + m) + j];
      const bool virtual_frame = j < k && grp * k + j >= pl.data_frames();
      frames[j] = virtual_frame ? zero.data() : (r.empty() ? nullptr : r.data());
      if (j < k && !frames[j]) {
        missing = true;
        restore[j] = restored[j].data();
      }
    }
    bool ok = true;
    if (missing) ok = m > 0 && outer_.recover(frames.data(), restore.data());
    group_ok[gi] = ok;
    for (int j = 0; j < k; ++j) {
      const std::uint64_t idx = grp * k + j;
      if (idx >= pl.data_frames()) break;
      ++res.data_frames;
      const std::uint64_t begin = man_.share_offset + idx * per_frame;
      const std::uint64_t len = std::min<std::uint64_t>(per_frame, man_.share_offset + man_.share_bytes - std::min(begin, man_.share_offset + man_.share_bytes));
      const std::uint8_t* b = frames[j] ? frames[j] : (ok ? restore[j] : nullptr);
      if (!frames[j] && ok) ++res.recovered_by_outer;
      if (!b) {
        ++res.lost_frames;
        if (!res.lost_ranges.empty() && res.lost_ranges.back().second == begin) res.lost_ranges.back().second = begin + len;
        else res.lost_ranges.emplace_back(begin, begin + len);
        continue;
      }
      const std::uint64_t stated = static_cast<std::uint64_t>(b[0]) | static_cast<std::uint64_t>(b[1]) << 8;
      if (stated != len) {
        // The frame's own length disagrees with the layout: treat as lost, never as data.
        ++res.lost_frames;
        res.lost_ranges.emplace_back(begin, begin + len);
        continue;
      }
      out_.write_at(begin, b + 2, static_cast<std::size_t>(len));
    }
  }
  const std::uint64_t cells = u.found.size();
  for (std::uint64_t c = 0; c < cells; ++c) {
    const cell_frame& f = u.found[c];
    const std::uint64_t row = u.row0 + c / u.width;
    const std::uint32_t col = u.col0 + static_cast<std::uint32_t>(c % u.width);
    cell_state st = state_none;
    switch (f.kind) {
      case cell_frame::none: break;
      case cell_frame::rejected: st = state_rejected; break;
      case cell_frame::unreadable: {
        const placement_slot slot = pl.at(row, col);  // whose frame this cell held
        st = slot.group >= u.g0 && slot.group < u.g1 && group_ok[slot.group - u.g0] ? state_restored : state_lost;
        break;
      }
      default: st = f.corrected ? state_corrected : state_clean; break;
    }
    map_.mark(row, col, st);
  }
  seconds_finishing_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The decode's progress on stderr, at most twice a second: the code cells swept of the plate's,
// their rate and the time left at that rate.
class sweep_progress {
 public:
  sweep_progress(bool on, std::uint64_t plate, std::uint64_t cells)
      : on_(on), plate_(plate), cells_(cells), start_(std::chrono::steady_clock::now())
  {
  }
  void update(std::uint64_t swept)
  {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (shown_ && swept < cells_ && now - last_ < std::chrono::milliseconds(500)) return;
    last_ = now, shown_ = true;
    const double s = std::chrono::duration<double>(now - start_).count();
    const double rate = s > 0 ? static_cast<double>(swept) / s : 0;
    std::fprintf(stderr, "\rqrplate: plate %llu: %llu of %llu code cells (%.0f%%), %.0f cells/s", static_cast<unsigned long long>(plate_),
                 static_cast<unsigned long long>(swept), static_cast<unsigned long long>(cells_),
                 cells_ ? 100.0 * static_cast<double>(swept) / static_cast<double>(cells_) : 100.0, rate);
    if (rate > 0 && swept < cells_) std::fprintf(stderr, ", %.0f s left", static_cast<double>(cells_ - swept) / rate);
    std::fputs("   ", stderr);
    std::fflush(stderr);
  }
  ~sweep_progress()
  {
    if (shown_) std::fputc('\n', stderr);
  }

 private:
  bool on_, shown_ = false;
  std::uint64_t plate_, cells_;
  std::chrono::steady_clock::time_point start_, last_{};
};

// Decodes the codes of one plate from `src` into `out`; adds to `res`.
void decode_cells(const manifest& man, code_source& src, output_file& out, const plate_decode_options& o,
                  plate_decode_result& res, const std::string& heatmap_path)
{
  const plate_geometry g = geometry_of(man);
  const frame_placement& pl = g.placement;
  const unsigned threads = src.threads();
  // The sweep's own figures, put into `res` once the finisher, which owns its frame fields, is done.
  std::uint32_t rows_per_prepare = res.rows_per_prepare;
  double seconds_cells = 0;

  // A unit (band x block) holds groups (the last band may end before the last blocks).
  auto unit_has_groups = [&](std::uint64_t band, std::uint32_t block) {
    const std::uint64_t g0 = std::min(pl.groups(), pl.first_group(band, block));
    return g0 < std::min(pl.groups(), g0 + pl.block_groups(block));
  };
  // How the sweep takes the strip of a block's columns that starts at s0: its end, and the code
  // rows each prepare() takes (a band at once when one strip holds the block's whole width).
  struct strip_sweep {
    std::uint32_t s1;
    bool whole_unit;
    std::uint64_t step;
  };
  auto sweep_of = [&](std::uint32_t block, std::uint32_t s0) {
    const std::uint32_t width = pl.block_width(block);
    strip_sweep sw{};
    const std::uint32_t strip = std::max<std::uint32_t>(1, std::min(src.strip_columns(), width));
    sw.s1 = std::min(width, s0 + strip);
    sw.whole_unit = s0 == 0 && sw.s1 == width && src.strip_columns() >= width;
    sw.step = sw.whole_unit ? pl.band_rows() : std::max<std::uint32_t>(1, src.rows_per_prepare());
    return sw;
  };
  // The first rows the sweep prepares in strip s0 of (band, block), when that strip is read a
  // group of rows at a time (none when it is a whole unit, a band of rows at once).
  auto first_rows = [&](std::uint64_t band, std::uint32_t block, std::uint32_t s0) -> std::optional<scan::cell_region> {
    const strip_sweep sw = sweep_of(block, s0);
    if (sw.whole_unit) return std::nullopt;
    const std::uint64_t row0 = band * pl.band_rows();
    return scan::cell_region{row0, row0 + std::min<std::uint64_t>(sw.step, pl.band_rows()), pl.block_x(block) + s0,
                             pl.block_x(block) + sw.s1, row0 + pl.band_rows()};
  };
  // What the sweep prepares after the last rows of strip s0 of (band, block): the next strip's
  // first rows, or the next unit's.
  auto after_strip = [&](std::uint64_t band, std::uint32_t block, std::uint32_t s0) -> std::optional<scan::cell_region> {
    const strip_sweep sw = sweep_of(block, s0);
    if (sw.s1 < pl.block_width(block)) return first_rows(band, block, sw.s1);
    for (std::uint64_t b = band, next_block = block + 1; b < pl.bands();) {
      if (next_block >= pl.blocks()) {
        ++b, next_block = 0;
        continue;
      }
      const auto nb = static_cast<std::uint32_t>(next_block);
      if (unit_has_groups(b, nb)) return first_rows(b, nb, 0);
      ++next_block;
    }
    return std::nullopt;
  };

  std::uint64_t total_cells = 0, swept = 0;
  for (std::uint64_t band = 0; band < pl.bands(); ++band)
    for (std::uint32_t block = 0; block < pl.blocks(); ++block)
      if (unit_has_groups(band, block))
        total_cells += std::min<std::uint64_t>(pl.band_rows(), pl.rows() - band * pl.band_rows()) * pl.block_width(block);
  sweep_progress progress(o.progress, res.plates + 1, total_cells);
  unit_finisher finisher(man, out, res, o.finish_units_in_background);
  const std::uint16_t tag = finisher.plate_tag();
  std::atomic<std::uint64_t> foreign{0};  // frames whose CRC held but whose tag is another plate's
  for (std::uint64_t band = 0; band < pl.bands(); ++band) {
    for (std::uint32_t block = 0; block < pl.blocks(); ++block) {
      if (!unit_has_groups(band, block)) continue;
      unit_cells unit;
      unit.g0 = std::min(pl.groups(), pl.first_group(band, block));
      unit.g1 = std::min(pl.groups(), unit.g0 + pl.block_groups(block));
      // Decode every cell of the unit, spread over the threads.
      const std::uint64_t row0 = unit.row0 = band * pl.band_rows();
      const std::uint32_t col0 = unit.col0 = pl.block_x(block), width = unit.width = pl.block_width(block);
      const std::uint64_t cells = static_cast<std::uint64_t>(pl.band_rows()) * width;
      unit.found.resize(cells);
      std::vector<cell_frame>& found = unit.found;
      // Column strip by strip, row by row within a strip (a scan set holds only the tiles of one
      // strip's rows in memory); the cells of a row segment are spread over the threads.
      for (std::uint32_t s0 = 0; s0 < width; s0 = sweep_of(block, s0).s1) {
        const strip_sweep sw = sweep_of(block, s0);
        const std::uint32_t s1 = sw.s1;
        const bool whole_unit = sw.whole_unit;
        const std::uint64_t step = sw.step;
        rows_per_prepare = std::max(rows_per_prepare, static_cast<std::uint32_t>(step));
        for (std::uint64_t r = 0; r < pl.band_rows(); r += step) {
          // Checked between row groups: a plate may be one unit.
          throw_if_interrupted(o.interrupt);
          const std::uint64_t r1 = std::min<std::uint64_t>(r + step, pl.band_rows());
          // What comes after the strip's last rows: the next strip's (or unit's) first ones, loaded
          // and read ahead with those last rows, so that they do not wait (and their files read
          // ahead before).
          const std::optional<scan::cell_region> next = !whole_unit ? after_strip(band, block, s0) : std::nullopt;
          src.prepare(row0 + r, row0 + r1, col0 + s0, col0 + s1, row0 + pl.band_rows(), next ? &*next : nullptr);
          const std::uint64_t segment = (r1 - r) * (s1 - s0);
          std::vector<std::vector<std::uint8_t>> bytes(threads);  // per thread, reused
          const auto cells_start = std::chrono::steady_clock::now();
          // On the process's lasting threads: a plate is thousands of row groups, and threads
          // made for each would cost a core's spawn and join per group.
          host::lasting_team(threads).run(segment, [&](unsigned t, std::size_t i) {
            const std::uint64_t rr = r + i / (s1 - s0);
            const std::uint32_t cc = s0 + static_cast<std::uint32_t>(i % (s1 - s0));
            const std::uint64_t row = row0 + rr;
            const std::uint32_t col = col0 + cc;
            if (pl.at(row, col).kind == placement_slot::empty) return;
            cell_frame& f = found[rr * width + cc];
            if (!src.read(t, row, col, f, bytes[t])) {
              f.kind = cell_frame::unreadable;
              return;
            }
            const parsed_frame pf = parse_frame(bytes[t].data(), bytes[t].size());
            if (pf.status != frame_status::ok || pf.header.plate_tag != tag) {
              if (pf.status == frame_status::ok) foreign.fetch_add(1, std::memory_order_relaxed);
              f.kind = cell_frame::rejected;
              return;
            }
            f.kind = pf.header.kind == frame_kind::data ? cell_frame::data : cell_frame::parity;
            f.index = pf.header.index;
            f.body.assign(pf.body, pf.body + pf.body_len);
          });
          seconds_cells += std::chrono::duration<double>(std::chrono::steady_clock::now() - cells_start).count();
          swept += (std::min(row0 + r1, pl.rows()) - std::min(row0 + r, pl.rows())) * (s1 - s0);  // the plate's cells
          progress.update(swept);
        }
      }
      // Its frames, outer code and payload bytes, while the next unit's codes are read.
      finisher.submit(std::move(unit));
    }
  }
  finisher.finish(heatmap_path);
  res.frames_of_another_plate += foreign;
  res.rows_per_prepare = rows_per_prepare;
  res.seconds_cells += seconds_cells;
}

// The manifest of a plate directory: --plate's, else its plate.json, else the header codes of
// plate.tif.
manifest plate_manifest(const fs::path& dir, const std::string& plate_json, plate_decode_result& res,
                        expected_digest& expect)
{
  manifest man;
  const fs::path json = !plate_json.empty() ? manifest_path(plate_json) : dir / "plate.json";
  if (!plate_json.empty() || fs::exists(json)) {
    man = manifest_file(json);
    expect = expected_digest{true, man.payload_hash, man.tree_leaf_bytes, man.payload_digest};
  } else {
    sim::plate_image_reader header_reader((dir / "plate.tif").string());
    if (!bootstrap(header_reader, man))
      throw invalid_argument("no plate.json in " + dir.string() + " and no header code on the plate could be read");
    res.bootstrapped = true;
  }
  return man;
}

// The plates one decode is given must be of one payload (plate id, plate count, payload size),
// each once; the shares of those not given are lost bytes, reported as such rather than found
// out as a digest mismatch.
class plate_set_check {
 public:
  void admit(const manifest& m, const fs::path& dir)
  {
    if (!first_) {
      first_ = m;
      first_dir_ = dir.string();
    } else if (m.plate_id != first_->plate_id || m.plate_count != first_->plate_count ||
               m.payload_bytes != first_->payload_bytes) {
      throw invalid_argument(dir.string() + " is a plate of another payload (" + describe(m) + ") than " + first_dir_ +
                             " (" + describe(*first_) + ")");
    }
    const auto [at, fresh] = numbers_.emplace(m.plate_number, dir.string());
    if (!fresh)
      throw invalid_argument(dir.string() + " and " + at->second + " are both plate " +
                             std::to_string(m.plate_number + 1) + " of the payload");
    shares_.emplace_back(m.share_offset, m.share_offset + m.share_bytes);
  }
  // The plate numbers (1-based) not given.
  std::vector<std::uint32_t> missing() const
  {
    std::vector<std::uint32_t> out;
    if (first_)
      for (std::uint32_t n = 0; n < first_->plate_count; ++n)
        if (!numbers_.count(static_cast<std::uint16_t>(n))) out.push_back(n + 1);
    return out;
  }
  // The payload's byte ranges no plate given holds.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> uncovered() const
  {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    if (!first_) return out;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> held = shares_;
    std::sort(held.begin(), held.end());
    std::uint64_t at = 0;
    for (const auto& [b, e] : held) {
      if (b > at) out.emplace_back(at, b);
      at = std::max(at, e);
    }
    if (at < first_->payload_bytes) out.emplace_back(at, first_->payload_bytes);
    return out;
  }

 private:
  static std::string describe(const manifest& m)
  {
    char text[96];
    std::snprintf(text, sizeof text, "plate id %016llx, %u plate%s, %llu bytes", static_cast<unsigned long long>(m.plate_id),
                  static_cast<unsigned>(m.plate_count), m.plate_count == 1 ? "" : "s",
                  static_cast<unsigned long long>(m.payload_bytes));
    return text;
  }
  std::optional<manifest> first_;
  std::string first_dir_;
  std::map<std::uint16_t, std::string> numbers_;  // plate number -> its directory
  std::vector<std::pair<std::uint64_t, std::uint64_t>> shares_;
};

// Decodes one plate directory into `out`.
void decode_one_plate(const fs::path& dir, output_file& out, const plate_decode_options& o, plate_decode_result& res,
                      expected_digest& expect, const std::string& heatmap_path, plate_set_check& plates)
{
  const manifest man = plate_manifest(dir, o.plate_json, res, expect);
  plates.admit(man, dir);
  res.payload_bytes = man.payload_bytes;
  out.expect_digest(expect, man.payload_bytes, o.threads);
  const plate_geometry g = geometry_of(man);
  const unsigned threads = std::max(1u, o.threads ? o.threads : std::thread::hardware_concurrency());
  image_source src(dir / "plate.tif", g, threads);
  if (src.image().width() != man.width || src.image().height() != man.height)
    throw invalid_argument((dir / "plate.tif").string() + " is " + std::to_string(src.image().width()) + " x " +
                           std::to_string(src.image().height()) + " modules, but its manifest says " +
                           std::to_string(man.width) + " x " + std::to_string(man.height) +
                           ": the image and the manifest are not of one plate");
  decode_cells(man, src, out, o, res, heatmap_path);
  for (const std::string& e : src.errors()) res.tile_errors.push_back(e);
}

// The manifest from a scan set's header codes (no plate.json): the header codes sit at the
// plate's top-left and bottom-right corners, so the tiles nearest those corners are searched
// first, by the blind reader (no layout is known yet, not even the module size).
bool bootstrap_from_scans(const scan::scan_set& set, manifest& out)
{
  std::vector<std::size_t> order(set.tiles.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return set.tiles[a].x_nm + set.tiles[a].y_nm < set.tiles[b].x_nm + set.tiles[b].y_nm;
  });
  std::vector<std::size_t> tries;
  for (std::size_t i = 0; i < order.size() && i < 3; ++i) tries.push_back(order[i]);
  for (std::size_t i = 0; i < order.size() && i < 3; ++i) tries.push_back(order[order.size() - 1 - i]);
  for (std::size_t t : tries) {
    sim::gray_image img;
    try {
      img = sim::read_gray_image(set.tiles[t].file);
    } catch (const io_error&) {
      continue;
    }
    for (const blind::found_code& c : blind::read_codes(img).codes) {
      if (c.version != header_version) continue;
      try {
        out = manifest_from_binary(c.content.data(), c.content.size());
        return true;
      } catch (const invalid_argument&) {
        continue;  // an ordinary code, or damaged
      }
    }
  }
  return false;
}

// Decodes a scan set into `out`.
void decode_scan_set(const fs::path& dir, scan::scan_set set, output_file& out, const plate_decode_options& o,
                     plate_decode_result& res, expected_digest& expect, plate_set_check& plates)
{
  std::string json = o.plate_json.empty() ? std::string() : manifest_path(o.plate_json).string();
  if (json.empty() && !set.plate_json.empty() && !fs::exists(set.plate_json))
    std::fprintf(stderr, "qrplate: warning: %s names the manifest %s, which does not exist\n", (dir / "scan.json").c_str(),
                 set.plate_json.c_str());
  if (json.empty() && !set.plate_json.empty() && fs::exists(set.plate_json)) json = set.plate_json;
  if (json.empty() && fs::exists(dir / "plate.json")) json = (dir / "plate.json").string();
  manifest man;
  if (!json.empty()) {
    man = manifest_file(json);
    expect = expected_digest{true, man.payload_hash, man.tree_leaf_bytes, man.payload_digest};
  } else {
    if (!bootstrap_from_scans(set, man))
      throw invalid_argument("no plate.json for the scan set " + dir.string() +
                             " and no header code could be read in the tiles at the plate's corners: pass --plate "
                             "PLATE_DIR/plate.json");
    res.bootstrapped = true;
  }
  plates.admit(man, dir);
  res.payload_bytes = man.payload_bytes;
  res.scan = true;
  scan::scan_read_options so;
  so.threads = o.threads;
  so.registration.search_um = o.search_um;
  so.registration.max_rotation_deg = o.max_rotation_deg;
  if (o.erasure_threshold < 0 || o.erasure_threshold > 255) throw invalid_argument("erasure threshold must be 0..255");
  so.erasure_threshold = static_cast<std::uint8_t>(o.erasure_threshold);
  if (!(o.search_um >= 0 && o.search_um <= 1000)) throw invalid_argument("stage search radius must be 0..1000 um");
  if (!(o.max_rotation_deg >= 0 && o.max_rotation_deg <= 10)) throw invalid_argument("rotation search must be 0..10 degrees");
  const backend where = resolve_backend(o.backend);
  if (where == backend::cuda && !cuda_backend_available())
    throw backend_unavailable("backend cuda: no CUDA device (or a qrplate built without CUDA); use --backend cpu");
  so.cuda = where == backend::cuda;
  so.cache_bytes = o.tile_cache_bytes;
  so.prefetch_bytes = o.tile_prefetch_bytes;
  so.register_ahead = o.register_ahead;
  if (!(o.strip_px >= min_strip_px && o.strip_px <= max_strip_px))
    throw invalid_argument("strip width must be 1024..1048576 pixels");
  so.strip_px = o.strip_px;
  if (o.prepare_rows < 0 || o.prepare_rows > 64) throw invalid_argument("prepare rows must be 0 (automatic) or 1..64");
  so.prepare_rows = static_cast<std::uint32_t>(o.prepare_rows);
  so.batch_codes = so.cuda || o.batch_codes;
  if (o.read_ahead_rows < -1 || o.read_ahead_rows > 4096) throw invalid_argument("read-ahead rows must be 0..4096 (or -1: automatic)");
  so.read_ahead_rows = static_cast<std::uint32_t>(o.read_ahead_rows >= 0 ? o.read_ahead_rows : so.cuda ? 32 : 0);
  if (o.overlap_reads < -1 || o.overlap_reads > 1) throw invalid_argument("overlap_reads must be -1, 0 or 1");
  so.overlap_batches = o.overlap_reads < 0 ? so.cuda : o.overlap_reads == 1;
  scan_source src(std::move(set), man, so);
  out.expect_digest(expect, man.payload_bytes, o.threads);
  decode_cells(man, src, out, o, res, o.heatmap);
  const scan::scan_read_stats st = src.stats();
  res.tiles = st.tiles_listed;
  res.tiles_unreadable = st.tiles_unreadable;
  res.tile_reads = st.tiles_loaded;
  res.tile_reads_ahead = st.tiles_read_ahead;
  res.tile_registrations_ahead = st.tiles_registered_ahead;
  res.tile_reads_ahead_unused = st.tiles_read_ahead_unused;
  res.tile_reads_pose_kept = st.tiles_pose_kept;
  res.seconds_tiles += st.seconds_tiles;
  res.seconds_loading_tiles += st.seconds_loading_tiles;
  res.seconds_placing_tiles += st.seconds_placing_tiles;
  res.seconds_code_batches += st.seconds_code_batches;
  res.max_tiles_in_memory = st.max_tiles_in_memory;
  res.tiles_unregistered = st.tiles_unregistered;
  res.lattice_corrections = st.lattice_corrections;
  res.tiles_stitched = st.tiles_stitched;
  res.tiles_verified_by_frames = st.tiles_verified - st.tiles_confirmed_by_overlap;
  res.tiles_confirmed_by_overlap = st.tiles_confirmed_by_overlap;
  res.stage_sigma_nm = st.stage_sigma_nm;
  res.planned_overlap_nm = st.planned_overlap_nm;
  res.codes_read_ahead = st.codes_read_ahead;
  res.codes_read_ahead_again = st.codes_read_ahead_again;
  res.codes_read_across = st.codes_read_across;
  res.codes_ahead_deferred = st.codes_ahead_deferred;
  res.codes_read_in_background = st.codes_read_in_background;
  res.background_waits_for_drops = st.background_batches_waited_for_drops;
  res.seconds_waiting_for_background = st.seconds_waiting_for_background;
  res.tiles_host_integrals = st.tiles_host_integrals;
  res.tile_samples_uploaded = st.tile_samples_uploaded;
  res.tile_bytes_uploaded = st.tile_bytes_uploaded;
  res.tile_samples_uploaded_as_read = st.tile_samples_uploaded_as_read;
  res.tile_bytes_staged = st.tile_bytes_staged;
  res.tile_errors = st.unreadable;
}

}  // namespace

namespace {

// The plate directories of `input` (one plate, or its plate-NNNN subdirectories), or the scan set.
std::vector<fs::path> plate_dirs(const std::string& input, bool& scan_set)
{
  std::vector<fs::path> dirs;
  std::error_code ec;
  scan_set = !fs::exists(fs::path(input) / "plate.tif", ec) && scan::is_scan_set(input);
  if (scan_set || fs::exists(fs::path(input) / "plate.tif", ec)) {
    dirs.push_back(input);
  } else if (fs::is_directory(input, ec)) {
    for (const auto& e : fs::directory_iterator(input, ec))
      if (e.is_directory() && e.path().filename().string().rfind("plate-", 0) == 0 && fs::exists(e.path() / "plate.tif"))
        dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
  }
  return dirs;
}

// True when `output` (an existing file) is one of the scan set's tiles. Compared by name below the
// set's directory, where read_scan_set keeps every tile: a set of millions of tiles costs no
// stat per tile.
bool is_tile_of(const scan::scan_set& set, const std::string& output)
{
  std::error_code ec;
  const fs::path rel = fs::weakly_canonical(output, ec).lexically_relative(fs::weakly_canonical(set.dir, ec));
  if (ec || rel.empty() || rel.begin()->string() == "..") return false;
  for (const scan::scan_tile& t : set.tiles)
    if (fs::path(t.file).lexically_relative(set.dir).lexically_normal() == rel) return true;
  return false;
}

}  // namespace

void check_output_path(const std::string& output, const std::vector<std::string>& inputs, const std::string& what)
{
  if (output == "-")
    throw invalid_argument(what + " -: decode writes to a file (out of order, then renamed when complete), not to "
                                  "standard output");
  std::error_code ec;
  const fs::file_status st = fs::status(output, ec);
  if (!fs::exists(st)) {
    const fs::path parent = fs::path(output).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw invalid_argument(what + " " + output + ": the directory " + parent.string() + " does not exist");
    return;
  }
  if (fs::is_directory(st)) throw invalid_argument(what + " " + output + " is a directory: give a file name");
  if (!fs::is_regular_file(st))
    throw invalid_argument(what + " " + output + " is not a regular file (a device or a pipe): decode writes a file "
                                                 "beside it and renames it into place; give a file name");
  for (const std::string& in : inputs) {
    std::error_code e2;
    if (fs::exists(in, e2) && fs::equivalent(output, in, e2))
      throw invalid_argument(what + " " + output + " is " + in + ", an input of this decode: writing it would destroy it");
  }
}

plate_decode_result decode_plates(const std::string& plate_dir, const std::string& out_file, const plate_decode_options& o)
{
  const auto start = std::chrono::steady_clock::now();
  plate_decode_result res;
  bool scan_set = false;
  const std::vector<fs::path> dirs = plate_dirs(plate_dir, scan_set);
  if (dirs.empty())
    throw io_error("no plate.tif or scan.json in " + plate_dir + " (nor plate-NNNN subdirectories with a plate.tif)");
  if (out_file.empty()) throw invalid_argument("no output file given (-o)");
  if (dirs.size() > 1 && !o.plate_json.empty())
    throw invalid_argument("--plate names one plate's manifest, but " + plate_dir + " holds " +
                           std::to_string(dirs.size()) + " plates (each with its own plate.json)");
  // A scan set is read once, here: its tiles are inputs the outputs are checked against.
  std::optional<scan::scan_set> set;
  if (scan_set) set = scan::read_scan_set(plate_dir);
  // Each plate's heatmap: with several plates, "-NNNN" before the extension.
  std::vector<std::string> map_paths(dirs.size(), o.heatmap);
  if (!o.heatmap.empty() && dirs.size() > 1)
    for (std::size_t i = 0; i < dirs.size(); ++i) {
      char suffix[24];
      std::snprintf(suffix, sizeof suffix, "-%04llu", static_cast<unsigned long long>(i + 1));
      const fs::path mp(o.heatmap);
      map_paths[i] = (mp.parent_path() / (mp.stem().string() + suffix + mp.extension().string())).string();
    }

  // Every output checked before any work: never an input (a manifest, a plate image, scan.json,
  // a tile), nor another output.
  std::vector<std::string> inputs;
  if (!o.plate_json.empty()) inputs.push_back(manifest_path(o.plate_json).string());
  for (const fs::path& d : dirs) {
    inputs.push_back((d / (scan_set ? "scan.json" : "plate.tif")).string());
    inputs.push_back((d / "plate.json").string());
  }
  if (set && !set->plate_json.empty()) inputs.push_back(set->plate_json);
  std::vector<std::pair<std::string, std::string>> outputs = {{"-o", out_file},
                                                              {"-o (its .partial file)", out_file + ".partial"}};
  for (const std::string& m : map_paths)
    if (!m.empty()) outputs.emplace_back("--heatmap", m);
  if (!o.report.empty()) outputs.emplace_back("--report", o.report);
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const auto& [what, path] = outputs[i];
    check_output_path(path, inputs, what);
    std::error_code ec;
    if (set && fs::exists(path, ec) && is_tile_of(*set, path))
      throw invalid_argument(what + " " + path + " is a tile of the scan set, an input of this decode: writing it "
                                                 "would destroy it");
    for (std::size_t k = 0; k < i; ++k)
      if (fs::weakly_canonical(path, ec) == fs::weakly_canonical(outputs[k].second, ec))
        throw invalid_argument(outputs[k].first + " and " + what + " name the same file, " + path);
  }

  output_file out;
  out.path = out_file + ".partial";
  out.f = std::fopen(out.path.c_str(), "wb");
  if (!out.f) throw io_error("cannot create " + out.path + ": " + std::strerror(errno));
  expected_digest expect;
  plate_set_check plates;
  for (std::size_t i = 0; i < dirs.size(); ++i) {
    if (set) decode_scan_set(dirs[i], std::move(*set), out, o, res, expect, plates);
    else decode_one_plate(dirs[i], out, o, res, expect, map_paths[i], plates);
    ++res.plates;
  }
  // Plates of the payload not given: their shares are lost (the digest is not checked).
  res.plates_missing = plates.missing();
  if (!res.plates_missing.empty()) {
    for (const auto& r : plates.uncovered()) res.lost_ranges.push_back(r);
    std::sort(res.lost_ranges.begin(), res.lost_ranges.end());
  }
  // The file is exactly the payload long, even where trailing frames were lost.
  if (std::fflush(out.f) != 0) throw io_error("cannot write " + out.path);
  std::fclose(out.f);
  out.f = nullptr;
  fs::resize_file(out.path, res.payload_bytes);
  out.finished = true;

  // The digest of the bytes as they were written; where they did not come in payload order (or a
  // manifest said nothing), the file is read back and hashed.
  const std::optional<digest> streamed = out.digest ? out.digest->finish() : std::nullopt;
  if (expect.known && res.lost_frames == 0 && res.plates_missing.empty()) {
    res.payload_hash = expect.kind;
    res.digest_checked = true;
    if (streamed) {
      res.digest_ok = *streamed == expect.value;
    } else {
      res.digest_read_back = true;
      // SHA-256 on one thread, the tree's leaves on every thread (plate/payload_hash.hpp), with a
      // progress line: SHA-256 of a terabyte is ~10 minutes of one core.
      std::optional<hash_progress_line> line;
      if (o.progress) line.emplace(std::string("checking the payload's ") + display_name(expect.kind), res.payload_bytes);
      res.digest_ok = hash_file(out.path, expect.kind, expect.leaf_bytes, o.threads, res.payload_bytes,
                                line ? line->callback() : hash_progress{}) == expect.value;
    }
  }
  res.complete = res.lost_frames == 0 && res.plates_missing.empty() && (!res.digest_checked || res.digest_ok);
  if (res.complete) {
    std::error_code ec;
    fs::rename(out.path, out_file, ec);
    if (ec) throw io_error("cannot rename " + out.path + " to " + out_file + ": " + ec.message());
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return res;
}

}  // namespace qrplate::plate
