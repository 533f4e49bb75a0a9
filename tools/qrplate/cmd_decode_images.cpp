// decode_images.hpp: the blind reader over image files, for `qrplate decode IMAGE|DIR`.
#include "decode_images.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "blind/blind_reader.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/decode_plate.hpp"
#include "qrplate/qr.hpp"

namespace qrplate::cli {
namespace {

namespace fs = std::filesystem;

bool is_image_name(const fs::path& p)
{
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".tif" || ext == ".tiff" || ext == ".pgm";
}

// Printable UTF-8: well-formed sequences (no overlong forms, no surrogates, <= U+10FFFF) and no
// control characters (C0, DEL, C1), so that one code stays one line of output.
bool printable_utf8(const std::vector<std::uint8_t>& s)
{
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned c = s[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7F) return false;
      ++i;
      continue;
    }
    int extra;
    unsigned cp;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<std::size_t>(extra) >= s.size()) return false;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      const unsigned d = s[i + static_cast<std::size_t>(k)];
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static const unsigned min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F)) return false;
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

std::string to_hex(const std::vector<std::uint8_t>& s)
{
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * s.size());
  for (std::uint8_t b : s) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

const char* status_name(core::decode_status s)
{
  switch (s) {
    case core::decode_status::ok: return "ok";
    case core::decode_status::corrected: return "corrected";
    case core::decode_status::erasure_assisted: return "erasure_assisted";
    default: return "failed";
  }
}

}  // namespace

int decode_images(const std::string& input, const std::string& output_json_or_empty, unsigned threads)
{
  std::vector<std::string> files;
  bool trouble = false;
  std::error_code ec;
  if (fs::is_directory(input, ec)) {
    for (const fs::directory_entry& e : fs::directory_iterator(input, ec))
      if (e.is_regular_file(ec) && is_image_name(e.path())) files.push_back(e.path().string());
    if (ec) {
      std::fprintf(stderr, "qrplate: %s: cannot list the directory: %s\n", input.c_str(), ec.message().c_str());
      return 1;
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      std::fprintf(stderr, "qrplate: %s: no images (*.png, *.tif, *.tiff, *.pgm) in the directory\n", input.c_str());
      return 1;
    }
  } else if (fs::exists(input, ec)) {
    files.push_back(input);
  } else {
    std::fprintf(stderr, "qrplate: %s: no such file or directory\n", input.c_str());
    return 1;
  }

  // The JSON list must not replace one of the images it lists.
  if (!output_json_or_empty.empty()) plate::check_output_path(output_json_or_empty, files, "-o");

  blind::blind_options options;
  options.threads = threads;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  std::size_t found = 0;
  for (const std::string& file : files) {
    blind::blind_result r;
    try {
      r = blind::read_codes(sim::read_gray_image(file), options);
    } catch (const std::exception& e) {
      // read_gray_image's messages name the path already; others get it in front.
      const std::string what = e.what();
      if (what.find(file) != std::string::npos)
        std::fprintf(stderr, "qrplate: %s\n", what.c_str());
      else
        std::fprintf(stderr, "qrplate: %s: %s\n", file.c_str(), what.c_str());
      trouble = true;
      continue;
    }
    // Said on stderr, so that a silent image is never taken for one that was not looked at.
    if (r.codes.empty()) std::fprintf(stderr, "qrplate: %s: no QR code found\n", file.c_str());
    for (const blind::found_code& c : r.codes) {
      ++found;
      const bool text = printable_utf8(c.content);
      const std::string content = text ? std::string(c.content.begin(), c.content.end()) : to_hex(c.content);
      std::printf("%s: v%d-%s at (%.1f, %.1f): %s%s\n", file.c_str(), c.version, to_string(c.ecc), c.x[0], c.y[0],
                  text ? "" : "hex:", content.c_str());
      if (!output_json_or_empty.empty()) {
        nlohmann::ordered_json j;
        j["file"] = file;
        j["version"] = c.version;
        j["ecc"] = to_string(c.ecc);
        j["mask"] = c.mask;
        j["status"] = status_name(c.status);
        j["inverted"] = c.inverted;
        j["module_px"] = c.module_px;
        j["corners"] = nlohmann::ordered_json::array();
        for (int k = 0; k < 4; ++k) j["corners"].push_back({c.x[k], c.y[k]});
        j["content"] = content;
        j["encoding"] = text ? "text" : "hex";
        list.push_back(std::move(j));
      }
    }
  }
  std::fflush(stdout);

  if (!output_json_or_empty.empty()) {
    const std::string tmp = output_json_or_empty + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << list.dump(2) << '\n';
      out.close();
      if (!out) throw io_error("cannot write " + tmp + ": " + std::strerror(errno));
    }
    fs::rename(tmp, output_json_or_empty, ec);
    if (ec) throw io_error("cannot rename " + tmp + " to " + output_json_or_empty + ": " + ec.message());
  }
  if (found == 0 && files.size() > 1)
    std::fprintf(stderr, "qrplate: no QR code found in any of the %zu images\n", files.size());
  return found > 0 && !trouble ? 0 : 1;
}

}  // namespace qrplate::cli
