#include "qrplate/plate/manifest.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "qrplate/error.hpp"
#include "qrplate/plate/frame.hpp"
#include "qrplate/qr.hpp"

namespace qrplate::plate {
namespace {

struct writer {
  std::vector<std::uint8_t>& out;
  void put(std::uint64_t v, int bytes)
  {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
};

struct reader {
  const std::uint8_t* p;
  std::uint64_t get(int bytes)
  {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    p += bytes;
    return v;
  }
};

invalid_argument bad(const std::string& why) { return invalid_argument("manifest: " + why); }

// A JSON number that must be a non-negative integer no larger than `max`.
std::uint64_t unsigned_at(const nlohmann::json& v, std::uint64_t max = ~std::uint64_t{0})
{
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() > max)
    throw bad("plate.json: " + v.dump() + " is not an integer in 0.." + std::to_string(max));
  return v.get<std::uint64_t>();
}

}  // namespace

std::string to_hex(const std::uint8_t* bytes, std::size_t n)
{
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += digits[bytes[i] >> 4];
    s += digits[bytes[i] & 15];
  }
  return s;
}

manifest make_manifest(const plate_geometry& g, std::uint64_t plate_id, std::uint16_t plate_number,
                       std::uint16_t plate_count, std::uint64_t share_offset, std::uint64_t share_bytes,
                       std::uint64_t payload_bytes)
{
  manifest m;
  m.plate_id = plate_id;
  m.plate_number = plate_number;
  m.plate_count = plate_count;
  m.module_nm = g.module_nm;
  m.width = g.width;
  m.height = g.height;
  m.version = g.version;
  m.ecc = g.ecc;
  m.quiet = g.quiet;
  m.header_copies = g.header_copies;
  m.grid_x = g.grid_x;
  m.grid_y = g.grid_y;
  m.columns = g.columns;
  m.rows = g.rows;
  m.band_rows = g.placement.band_rows();
  m.groups_per_band = g.placement.groups_per_band();
  m.block_columns = g.placement.block_columns();
  m.k = g.placement.k();
  m.m = g.placement.m();
  m.dust_window = g.placement.window();
  m.data_frames = g.placement.data_frames();
  m.share_offset = share_offset;
  m.share_bytes = share_bytes;
  m.payload_bytes = payload_bytes;
  return m;
}

plate_geometry geometry_of(const manifest& m)
{
  if (!spec::valid_version(m.version)) throw bad("code version " + std::to_string(m.version) + " out of range");
  plate_geometry g;
  g.module_nm = m.module_nm;
  g.width = m.width;
  g.height = m.height;
  g.version = m.version;
  g.ecc = m.ecc;
  g.quiet = m.quiet;
  g.code_size = spec::symbol_size(m.version);
  g.pitch = g.code_size + m.quiet;
  g.header_copies = m.header_copies;
  g.grid_x = m.grid_x;
  g.grid_y = m.grid_y;
  g.columns = m.columns;
  g.rows = m.rows;
  if (m.block_columns == 0) throw bad("columns per block must be positive");
  g.placement = frame_placement(m.columns, m.data_frames, m.k, m.m, m.dust_window, m.block_columns);
  if (g.placement.band_rows() != m.band_rows || g.placement.groups_per_band() != m.groups_per_band ||
      g.placement.block_columns() != m.block_columns)
    throw bad("band layout does not match the placement rule (band rows " + std::to_string(m.band_rows) + ")");
  if (g.placement.rows() > m.rows) throw bad("the frames need more rows than the plate has");
  // The grid and header strips must lie inside the plate as the geometry rules draw them.
  if (m.columns == 0) throw bad("grid has no columns");
  if (m.quiet < 1 || m.quiet > 16) throw bad("quiet zone out of range");
  if (m.header_copies < 1 || m.header_copies > max_header_copies) throw bad("header copies out of range 1..4");
  const auto pitch = static_cast<std::uint64_t>(g.pitch);
  if (m.grid_x + m.columns * pitch - m.quiet + plate_margin > m.width)
    throw bad("grid of " + std::to_string(m.columns) + " columns is wider than the plate");
  if (m.grid_y + m.rows * pitch + header_quiet + header_size + plate_margin > m.height + m.quiet)
    throw bad("grid of " + std::to_string(m.rows) + " rows runs into the bottom header strip");
  if (plate_margin + static_cast<std::uint64_t>(m.header_copies) * header_pitch - header_quiet + plate_margin > m.width)
    throw bad("header copies do not fit the plate width");
  g.capacity_frames = m.data_frames;
  return g;
}

std::vector<std::uint8_t> to_binary(const manifest& m)
{
  std::vector<std::uint8_t> out;
  out.reserve(manifest_bytes);
  writer w{out};
  for (char c : {'Q', 'R', 'P', 'M'}) w.put(static_cast<std::uint8_t>(c), 1);
  w.put(manifest_format_version, 1);
  w.put(m.plate_id, 8);
  w.put(m.plate_number, 2);
  w.put(m.plate_count, 2);
  w.put(static_cast<std::uint64_t>(std::llround(m.module_nm * 1000.0)), 4);
  w.put(m.width, 8);
  w.put(m.height, 8);
  w.put(static_cast<std::uint64_t>(m.version), 1);
  w.put(static_cast<std::uint64_t>(m.ecc), 1);
  w.put(static_cast<std::uint64_t>(m.quiet), 1);
  w.put(m.header_copies, 1);
  w.put(m.grid_x, 8);
  w.put(m.grid_y, 8);
  w.put(m.columns, 4);
  w.put(m.rows, 8);
  w.put(m.band_rows, 4);
  w.put(m.groups_per_band, 4);
  w.put(m.block_columns, 4);
  w.put(static_cast<std::uint64_t>(m.k), 2);
  w.put(static_cast<std::uint64_t>(m.m), 2);
  w.put(m.dust_window, 2);
  w.put(m.data_frames, 8);
  w.put(m.share_offset, 8);
  w.put(m.share_bytes, 8);
  w.put(m.payload_bytes, 8);
  w.put(crc32c(out.data(), out.size()), 4);
  if (out.size() != manifest_bytes) throw std::logic_error("manifest layout size mismatch");
  return out;
}

manifest manifest_from_binary(const std::uint8_t* bytes, std::size_t n)
{
  if (n != manifest_bytes) throw bad("expected " + std::to_string(manifest_bytes) + " bytes, got " + std::to_string(n));
  if (std::memcmp(bytes, "QRPM", 4) != 0) throw bad("not a qrplate manifest (magic)");
  reader r{bytes + manifest_bytes - 4};
  if (r.get(4) != crc32c(bytes, manifest_bytes - 4)) throw bad("CRC mismatch");
  reader in{bytes + 4};
  if (in.get(1) != manifest_format_version) throw bad("unsupported manifest format version");
  manifest m;
  m.plate_id = in.get(8);
  m.plate_number = static_cast<std::uint16_t>(in.get(2));
  m.plate_count = static_cast<std::uint16_t>(in.get(2));
  m.module_nm = static_cast<double>(in.get(4)) / 1000.0;
  m.width = in.get(8);
  m.height = in.get(8);
  m.version = static_cast<int>(in.get(1));
  const auto ecc = in.get(1);
  if (ecc > 3) throw bad("ECC level out of range");
  m.ecc = static_cast<ecc_level>(ecc);
  m.quiet = static_cast<int>(in.get(1));
  m.header_copies = static_cast<std::uint32_t>(in.get(1));
  m.grid_x = in.get(8);
  m.grid_y = in.get(8);
  m.columns = static_cast<std::uint32_t>(in.get(4));
  m.rows = in.get(8);
  m.band_rows = static_cast<std::uint32_t>(in.get(4));
  m.groups_per_band = static_cast<std::uint32_t>(in.get(4));
  m.block_columns = static_cast<std::uint32_t>(in.get(4));
  m.k = static_cast<int>(in.get(2));
  m.m = static_cast<int>(in.get(2));
  m.dust_window = static_cast<std::uint32_t>(in.get(2));
  m.data_frames = in.get(8);
  m.share_offset = in.get(8);
  m.share_bytes = in.get(8);
  m.payload_bytes = in.get(8);
  return m;
}

std::string to_json(const manifest& m, const image_info& image)
{
  nlohmann::ordered_json j;
  j["format"] = "qrplate";
  j["format_version"] = manifest_format_version;
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(m.plate_id));
  j["plate_id"] = id;
  j["plate"] = {{"number", m.plate_number + 1}, {"count", m.plate_count}};
  j["module_nm"] = m.module_nm;
  j["size_modules"] = {{"width", m.width}, {"height", m.height}};
  j["size_um"] = {{"width", static_cast<double>(m.width) * m.module_nm / 1000.0},
                  {"height", static_cast<double>(m.height) * m.module_nm / 1000.0}};
  j["code"] = {{"version", m.version}, {"ecc", to_string(m.ecc)}, {"quiet_zone", m.quiet}, {"mode", "byte"}};
  j["grid"] = {{"columns", m.columns}, {"rows", m.rows}, {"pitch", spec::symbol_size(m.version) + m.quiet},
               {"origin", {{"x", m.grid_x}, {"y", m.grid_y}}}};
  j["header_codes"] = {{"version", header_version}, {"ecc", to_string(header_ecc)}, {"size", header_size},
                       {"pitch", header_pitch}, {"copies_per_strip", m.header_copies},
                       {"top", {{"x", plate_margin}, {"y", plate_margin}, {"step_x", header_pitch}}},
                       {"bottom", {{"x", m.width - plate_margin - header_size}, {"y", m.height - plate_margin - header_size},
                                   {"step_x", -header_pitch}}}};
  j["framing"] = {{"header_bytes", frame_header_bytes}, {"body_bytes", frame_body_bytes(m.version, m.ecc)},
                  {"data_bytes", frame_data_bytes(m.version, m.ecc)}, {"crc", "crc32c"}};
  j["outer_code"] = {{"k", m.k}, {"m", m.m}, {"band_rows", m.band_rows}, {"groups_per_band", m.groups_per_band},
                     {"block_columns", m.block_columns}, {"dust_window_cells", m.dust_window}};
  j["data_frames"] = m.data_frames;
  j["payload"]["bytes"] = m.payload_bytes;
  if (m.payload_hash == payload_hash_kind::sha256)
    j["payload"]["sha256"] = to_hex(m.payload_digest.data(), 32);
  else
    j["payload"]["sha256_tree"] = {{"leaf_bytes", m.tree_leaf_bytes}, {"root", to_hex(m.payload_digest.data(), 32)}};
  j["payload"]["share_offset"] = m.share_offset;
  j["payload"]["share_bytes"] = m.share_bytes;
  j["image"] = {{"file", image.file}, {"format", "BigTIFF, 1 bit per module, MinIsWhite (1 = dark = milled)"},
                {"tile_width", image.tile_width}, {"tile_height", image.tile_height},
                {"compression", image.compression}, {"preview", image.preview}};
  return j.dump(2) + "\n";
}

const char* to_string(payload_hash_kind kind)
{
  return kind == payload_hash_kind::sha256 ? "sha256" : "sha256-tree";
}

const char* display_name(payload_hash_kind kind)
{
  return kind == payload_hash_kind::sha256 ? "SHA-256" : "SHA-256 tree";
}

payload_hash_kind parse_payload_hash(const std::string& name)
{
  if (name == "sha256") return payload_hash_kind::sha256;
  if (name == "sha256-tree") return payload_hash_kind::sha256_tree;
  throw invalid_argument("payload hash '" + name + "' is not one of sha256, sha256-tree");
}

namespace {

// 64 hex digits, no more and no other characters (std::stoul would take "1g" as 1).
std::array<std::uint8_t, 32> digest_from_hex(const std::string& hex, const char* what)
{
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw bad(std::string("plate.json: ") + what + " must be 64 hex digits");
  };
  if (hex.size() != 64) throw bad(std::string("plate.json: ") + what + " must be 64 hex digits");
  std::array<std::uint8_t, 32> out{};
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  return out;
}

}  // namespace

manifest manifest_from_json(const std::string& text, image_info* image)
{
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
    if (j.at("format") != "qrplate") throw bad("not a qrplate manifest");
    if (static_cast<int>(unsigned_at(j.at("format_version"), 0xFFFF)) != manifest_format_version) throw bad("unsupported format version");
    manifest m;
    const std::string id = j.at("plate_id").get<std::string>();
    if (id.empty() || id.size() > 16 || id.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
      throw bad("plate.json: plate_id \"" + id + "\" must be 1 to 16 hex digits");
    m.plate_id = std::stoull(id, nullptr, 16);
    // Whole numbers only: a float here (3e99) cast to an integer is undefined (fuzz_manifest_json).
    const auto number = static_cast<long long>(unsigned_at(j.at("plate").at("number"), 0xFFFF));
    const auto count = static_cast<long long>(unsigned_at(j.at("plate").at("count"), 0xFFFF));
    if (count < 1 || count > 65535) throw bad("plate count " + std::to_string(count) + " out of range 1..65535");
    if (number < 1 || number > count) throw bad("plate number " + std::to_string(number) + " out of range 1.." + std::to_string(count));
    m.plate_number = static_cast<std::uint16_t>(number - 1);
    m.plate_count = static_cast<std::uint16_t>(count);
    m.module_nm = j.at("module_nm").get<double>();
    m.width = unsigned_at(j.at("size_modules").at("width"));
    m.height = unsigned_at(j.at("size_modules").at("height"));
    m.version = static_cast<int>(unsigned_at(j.at("code").at("version"), 0xFFFF));
    m.ecc = parse_ecc_level(j.at("code").at("ecc").get<std::string>());
    m.quiet = static_cast<int>(unsigned_at(j.at("code").at("quiet_zone"), 0xFFFF));
    m.header_copies = static_cast<std::uint32_t>(unsigned_at(j.at("header_codes").at("copies_per_strip"), 0xFFFFFFFFull));
    m.grid_x = unsigned_at(j.at("grid").at("origin").at("x"));
    m.grid_y = unsigned_at(j.at("grid").at("origin").at("y"));
    m.columns = static_cast<std::uint32_t>(unsigned_at(j.at("grid").at("columns"), 0xFFFFFFFFull));
    m.rows = unsigned_at(j.at("grid").at("rows"));
    m.band_rows = static_cast<std::uint32_t>(unsigned_at(j.at("outer_code").at("band_rows"), 0xFFFFFFFFull));
    m.groups_per_band = static_cast<std::uint32_t>(unsigned_at(j.at("outer_code").at("groups_per_band"), 0xFFFFFFFFull));
    m.block_columns = static_cast<std::uint32_t>(unsigned_at(j.at("outer_code").at("block_columns"), 0xFFFFFFFFull));
    m.k = static_cast<int>(unsigned_at(j.at("outer_code").at("k"), 0xFFFF));
    m.m = static_cast<int>(unsigned_at(j.at("outer_code").at("m"), 0xFFFF));
    // 16 bits, as the header codes carry it; wider windows would also make the band search run for hours.
    m.dust_window = static_cast<std::uint32_t>(unsigned_at(j.at("outer_code").at("dust_window_cells"), 0xFFFF));
    m.data_frames = unsigned_at(j.at("data_frames"));
    m.payload_bytes = unsigned_at(j.at("payload").at("bytes"));
    m.share_offset = unsigned_at(j.at("payload").at("share_offset"));
    m.share_bytes = unsigned_at(j.at("payload").at("share_bytes"));
    // The payload's numbers against each other and the frames: a size the frames cannot hold
    // would otherwise show only as a SHA-256 mismatch, or as a terabyte output file.
    if (m.share_bytes > m.payload_bytes || m.share_offset > m.payload_bytes - m.share_bytes)
      throw bad("plate.json: this plate's share of the payload (bytes " + std::to_string(m.share_offset) + " + " +
                std::to_string(m.share_bytes) + ") lies past the payload's " + std::to_string(m.payload_bytes) + " bytes");
    if (m.version >= 1 && m.version <= 40) {
      const auto per_frame = static_cast<std::uint64_t>(frame_data_bytes(m.version, m.ecc));
      if (per_frame > 0 && (m.share_bytes + per_frame - 1) / per_frame > m.data_frames)
        throw bad("plate.json: share_bytes " + std::to_string(m.share_bytes) + " is more than its " +
                  std::to_string(m.data_frames) + " data frames of " + std::to_string(per_frame) + " bytes hold");
    }
    const nlohmann::json& payload = j.at("payload");
    if (payload.contains("sha256") == payload.contains("sha256_tree"))
      throw bad("plate.json: the payload needs one digest, sha256 or sha256_tree");
    if (payload.contains("sha256")) {
      m.payload_hash = payload_hash_kind::sha256;
      m.payload_digest = digest_from_hex(payload.at("sha256").get<std::string>(), "sha256");
    } else {
      const nlohmann::json& tree = payload.at("sha256_tree");
      m.payload_hash = payload_hash_kind::sha256_tree;
      m.tree_leaf_bytes = unsigned_at(tree.at("leaf_bytes"));
      if (m.tree_leaf_bytes < min_tree_leaf_bytes || m.tree_leaf_bytes > max_tree_leaf_bytes)
        throw bad("plate.json: sha256_tree leaf_bytes " + std::to_string(m.tree_leaf_bytes) + " out of range " +
                  std::to_string(min_tree_leaf_bytes) + ".." + std::to_string(max_tree_leaf_bytes));
      m.payload_digest = digest_from_hex(tree.at("root").get<std::string>(), "sha256_tree root");
    }
    if (image) {
      image->file = j.at("image").at("file").get<std::string>();
      image->tile_width = static_cast<std::uint32_t>(unsigned_at(j.at("image").at("tile_width"), 0xFFFFFFFFull));
      image->tile_height = static_cast<std::uint32_t>(unsigned_at(j.at("image").at("tile_height"), 0xFFFFFFFFull));
      image->compression = j.at("image").at("compression").get<std::string>();
      image->preview = j.at("image").at("preview").get<std::string>();
    }
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("plate.json: ") + e.what());
  } catch (const std::logic_error& e) {  // stoull / stoul
    if (dynamic_cast<const invalid_argument*>(&e)) throw;
    throw bad(std::string("plate.json: bad number: ") + e.what());
  }
}

}  // namespace qrplate::plate
