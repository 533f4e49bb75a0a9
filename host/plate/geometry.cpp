#include "qrplate/plate/geometry.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "qrplate/error.hpp"

namespace qrplate::plate {
namespace {

constexpr std::uint64_t max_tiff_side = 0xFFFFFFFFull;

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

// Header copies per strip that fit a plate `width` modules wide.
std::uint32_t copies_for_width(std::uint64_t width)
{
  const std::uint64_t room = width >= 2 * plate_margin ? width - 2 * plate_margin + header_quiet : 0;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(max_header_copies, room / header_pitch));
}

std::uint64_t grid_top() { return plate_margin + header_pitch; }

// Rows of codes between the strips of a plate `height` modules high.
std::uint64_t rows_for_height(std::uint64_t height, int pitch, int quiet)
{
  // last code row ends at grid_y + rows * pitch - quiet; then header_quiet + header + margin
  const std::uint64_t below = header_quiet + header_size + plate_margin;
  if (height < grid_top() + below) return 0;
  return (height - grid_top() - below + quiet) / pitch;
}

// Builds the placement for `columns`: against the 100 um dust window; where the plate is too
// small to spread groups that wide, against a disk holding 2% of its `cells` codes; and if even
// that cannot be met within `max_rows` rows, against ever smaller windows (the window reached is
// recorded in the manifest and shown by `qrplate plan`).
frame_placement place(std::uint32_t columns, std::uint64_t data_frames, const geometry_options& o, int pitch,
                      std::uint64_t cells, std::uint64_t max_rows = ~std::uint64_t{0})
{
  constexpr double pi = 3.14159265358979323846;
  const std::uint32_t physical = dust_window_cells(pitch, o.module_nm);
  const double diameter = std::sqrt(small_plate_dust_fraction * static_cast<double>(cells) * 4.0 / pi);
  std::uint32_t window = physical;
  for (;;) {
    try {
      frame_placement p(columns, data_frames, o.k, o.m, window);
      if (p.band_rows() <= max_rows) return p;
    } catch (const invalid_argument&) {
      if (window <= 1) throw;
    }
    if (window <= 1) throw invalid_argument("no band of at most " + std::to_string(max_rows) + " rows holds a group");
    const auto small = static_cast<std::uint32_t>(std::max(1.0, std::ceil(diameter)));
    window = window > small ? small : window / 2;
  }
}

}  // namespace

plate_size_nm parse_plate_size(std::string_view text)
{
  std::string t(text);
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "a3") return {297e6, 420e6};
  if (t == "a4") return {210e6, 297e6};
  if (t == "a5") return {148e6, 210e6};
  const auto bad = [&] {
    return invalid_argument("plate size '" + std::string(text) + "' is not A3, A4, A5 or WxH with a unit (um, mm, nm), e.g. 500x300um");
  };
  double scale = 0;
  if (t.size() > 2 && t.compare(t.size() - 2, 2, "um") == 0) scale = 1e3;
  else if (t.size() > 2 && t.compare(t.size() - 2, 2, "mm") == 0) scale = 1e6;
  else if (t.size() > 2 && t.compare(t.size() - 2, 2, "nm") == 0) scale = 1;
  else throw bad();
  const std::string body = t.substr(0, t.size() - 2);
  const auto x = body.find('x');
  if (x == std::string::npos) throw bad();
  try {
    std::size_t used_w = 0, used_h = 0;
    const double w = std::stod(body.substr(0, x), &used_w);
    const double h = std::stod(body.substr(x + 1), &used_h);
    if (used_w != x || used_h != body.size() - x - 1 || !(w > 0) || !(h > 0) || !std::isfinite(w) || !std::isfinite(h))
      throw bad();
    return {w * scale, h * scale};
  } catch (const std::logic_error&) {
    throw bad();
  }
}

void validate(const geometry_options& o)
{
  if (!spec::valid_version(o.version)) throw invalid_argument("version " + std::to_string(o.version) + " out of range 1..40");
  if (static_cast<unsigned>(o.ecc) > 3u) throw invalid_argument("unknown error correction level");
  if (o.quiet < 1 || o.quiet > 16) throw invalid_argument("quiet zone " + std::to_string(o.quiet) + " out of range 1..16 modules");
  if (!(o.module_nm >= 1.0 && o.module_nm <= 1e6)) throw invalid_argument("module pitch must be 1 nm .. 1 mm");
  if (o.k < 1 || o.m < 0 || o.k + o.m > 256)
    throw invalid_argument("outer code " + std::to_string(o.k) + "+" + std::to_string(o.m) + " out of range (K >= 1, K+M <= 256)");
  if (o.plate && (!(o.plate->width > 0) || !(o.plate->height > 0))) throw invalid_argument("plate size must be positive");
}

std::uint32_t dust_window_cells(int pitch, double module_nm)
{
  const double pitch_um = pitch * module_nm / 1000.0;
  return static_cast<std::uint32_t>(std::ceil(dust_diameter_um / pitch_um)) + 1;  // a disk can touch one more
}

std::uint64_t plate_geometry::header_x(int strip, std::uint32_t i) const
{
  return strip == 0 ? plate_margin + static_cast<std::uint64_t>(i) * header_pitch
                    : width - plate_margin - header_size - static_cast<std::uint64_t>(i) * header_pitch;
}

std::uint64_t plate_geometry::header_y(int strip) const
{
  return strip == 0 ? plate_margin : height - plate_margin - header_size;
}

std::uint64_t plate_capacity_frames(const geometry_options& o)
{
  validate(o);
  if (!o.plate) throw invalid_argument("plate capacity needs a plate size");
  const int pitch = spec::symbol_size(o.version) + o.quiet;
  const auto width = static_cast<std::uint64_t>(o.plate->width / o.module_nm);
  const auto height = static_cast<std::uint64_t>(o.plate->height / o.module_nm);
  if (width < 2 * plate_margin + header_size || copies_for_width(width) == 0) return 0;
  const std::uint64_t cols = (width - 2 * plate_margin + o.quiet) / pitch;
  const std::uint64_t rows = rows_for_height(height, pitch, o.quiet);
  if (cols == 0 || rows == 0 || cols > 0xFFFFFFFFull) return 0;
  frame_placement p;
  try {
    p = place(static_cast<std::uint32_t>(cols), 0, o, pitch, cols * rows, rows);
  } catch (const invalid_argument&) {
    return 0;
  }
  const std::uint64_t bands = rows / p.band_rows();
  return bands * p.groups_per_band() * static_cast<std::uint64_t>(p.k());
}

plate_geometry make_geometry(const geometry_options& o, std::uint64_t data_frames)
{
  validate(o);
  plate_geometry g;
  g.module_nm = o.module_nm;
  g.version = o.version;
  g.ecc = o.ecc;
  g.quiet = o.quiet;
  g.code_size = spec::symbol_size(o.version);
  g.pitch = g.code_size + o.quiet;
  g.grid_x = plate_margin;
  g.grid_y = grid_top();
  const std::uint64_t min_width = 2 * plate_margin + header_size;

  if (o.plate) {
    g.width = static_cast<std::uint64_t>(o.plate->width / o.module_nm);
    g.height = static_cast<std::uint64_t>(o.plate->height / o.module_nm);
    if (g.width > max_tiff_side || g.height > max_tiff_side)
      throw invalid_argument("plate of " + std::to_string(g.width) + "x" + std::to_string(g.height) +
                             " modules exceeds the 2^32 pixels a TIFF side can have");
    g.capacity_frames = plate_capacity_frames(o);
    if (g.capacity_frames == 0)
      throw invalid_argument("plate too small: not one group of codes fits (" + std::to_string(g.width) + "x" +
                             std::to_string(g.height) + " modules)");
    if (data_frames > g.capacity_frames) throw invalid_argument("more data frames than the plate holds");
    const std::uint64_t cols = (g.width - 2 * plate_margin + o.quiet) / g.pitch;
    g.columns = static_cast<std::uint32_t>(cols);
    g.rows = rows_for_height(g.height, g.pitch, o.quiet);
    g.placement = place(g.columns, data_frames, o, g.pitch, cols * g.rows, g.rows);
  } else {
    // Near-square: among column counts around the square root of the frames, the smallest area
    // (within 0.5%, since band rounding makes many nearly equal) with the squarest shape.
    const std::uint64_t n = static_cast<std::uint64_t>(o.k + o.m);
    const std::uint64_t frames =
        o.m == 0 ? std::max<std::uint64_t>(data_frames, 1)
                 : ceil_div(std::max<std::uint64_t>(data_frames, 1), static_cast<std::uint64_t>(o.k)) * n;
    const auto root = static_cast<std::uint64_t>(std::ceil(std::sqrt(static_cast<double>(frames))));
    struct candidate {
      std::uint64_t cols, rows, width, height;
      frame_placement p;
    };
    std::vector<candidate> found;
    std::uint64_t best_area = 0;
    for (std::uint64_t cols = std::max<std::uint64_t>(1, root / 2); cols <= 2 * root + 2; ++cols) {
      candidate c{cols, 0, 0, 0, {}};
      try {
        // Bands taller than a few plate widths would make a strip, not a plate: such small plates
        // take the smaller dust windows instead.
        c.p = place(static_cast<std::uint32_t>(cols), data_frames, o, g.pitch, frames, 4 * cols + 32);
      } catch (const invalid_argument&) {
        continue;
      }
      c.rows = std::max<std::uint64_t>(c.p.rows(), 1);
      c.width = std::max(min_width, 2 * plate_margin + cols * g.pitch - o.quiet);
      c.height = grid_top() + c.rows * g.pitch - o.quiet + header_quiet + header_size + plate_margin;
      if (best_area == 0 || c.width * c.height < best_area) best_area = c.width * c.height;
      found.push_back(c);
    }
    double best_shape = 0;
    for (const candidate& c : found) {
      if (static_cast<double>(c.width * c.height) > 1.005 * static_cast<double>(best_area)) continue;
      const double shape = std::fabs(std::log(static_cast<double>(c.width) / static_cast<double>(c.height)));
      if (g.columns == 0 || shape < best_shape) {
        best_shape = shape;
        g.width = c.width;
        g.height = c.height;
        g.columns = static_cast<std::uint32_t>(c.cols);
        g.rows = c.rows;
        g.placement = c.p;
      }
    }
    if (best_area == 0) throw invalid_argument("no plate layout found for " + std::to_string(data_frames) + " frames");
    if (g.width > max_tiff_side || g.height > max_tiff_side)
      throw invalid_argument("payload too large for one plate image; give --plate to split it over plates");
    g.capacity_frames = data_frames;
  }
  g.header_copies = copies_for_width(g.width);
  return g;
}

}  // namespace qrplate::plate
