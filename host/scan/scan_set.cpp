#include "scan/scan_set.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "qrplate/error.hpp"

namespace qrplate::scan {
namespace fs = std::filesystem;

bool is_scan_set(const std::string& dir)
{
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / "scan.json", ec);
}

scan_set read_scan_set(const std::string& dir)
{
  const fs::path json_path = fs::path(dir) / "scan.json";
  std::ifstream f(json_path, std::ios::binary);
  if (!f) throw io_error("cannot read " + json_path.string());
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::string where = json_path.string() + ": ";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw invalid_argument(where + "not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw invalid_argument(where + "not a JSON object");
  scan_set s;
  s.dir = dir;
  const auto px = j.find("pixel_nm");
  if (px == j.end() || !px->is_number() || !(px->get<double>() > 0) || !std::isfinite(px->get<double>()))
    throw invalid_argument(where + "\"pixel_nm\" must be a positive number");
  s.pixel_nm = px->get<double>();
  if (const auto p = j.find("plate"); p != j.end()) {
    if (!p->is_string()) throw invalid_argument(where + "\"plate\" must be a path");
    const fs::path pp(p->get<std::string>());
    s.plate_json = (pp.is_absolute() ? pp : fs::path(dir) / pp).string();
  }
  const auto tiles = j.find("tiles");
  if (tiles == j.end() || !tiles->is_array()) throw invalid_argument(where + "\"tiles\" must be an array");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < tiles->size(); ++i) {
    const nlohmann::json& t = (*tiles)[i];
    const std::string at = where + "tiles[" + std::to_string(i) + "]: ";
    if (!t.is_object()) throw invalid_argument(at + "not an object");
    const auto file = t.find("file");
    const auto x = t.find("x_nm"), y = t.find("y_nm");
    if (file == t.end() || !file->is_string() || file->get<std::string>().empty())
      throw invalid_argument(at + "\"file\" must be a file name");
    if (x == t.end() || y == t.end() || !x->is_number() || !y->is_number() || !std::isfinite(x->get<double>()) ||
        !std::isfinite(y->get<double>()) || std::fabs(x->get<double>()) > 1e12 || std::fabs(y->get<double>()) > 1e12)
      throw invalid_argument(at + "\"x_nm\" and \"y_nm\" must be finite numbers (nm)");
    const fs::path name(file->get<std::string>());
    // Tiles live in the scan directory: no absolute paths, no way out of it.
    if (name.is_absolute() || name.lexically_normal().string().rfind("..", 0) == 0)
      throw invalid_argument(at + "\"file\" must name a file inside the scan directory");
    if (!seen.insert(name.lexically_normal().string()).second)
      throw invalid_argument(at + "file " + name.string() + " is listed twice");
    s.tiles.push_back({(fs::path(dir) / name).string(), x->get<double>(), y->get<double>()});
  }
  if (s.tiles.empty()) throw invalid_argument(where + "no tiles");
  return s;
}

}  // namespace qrplate::scan
