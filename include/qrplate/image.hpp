// Rendering one symbol for people and for other decoders: PNG, PBM, SVG, terminal text and a
// plain 0/1 module matrix. Every renderer draws `border` light modules of quiet zone around the
// symbol (ISO 18004:2015 §6.3.8 asks for 4) and `scale` pixels per module.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qrplate/symbol.hpp"

namespace qrplate {

enum class image_format : std::uint8_t { png, pbm, svg, text, matrix };

image_format parse_image_format(std::string_view name);        // "png", "pbm", "svg", "text", "matrix"
image_format image_format_from_path(std::string_view path);    // by extension; throws if unknown

struct render_options {
  int scale = 8;   // pixels per module, 1..1000 (png, pbm, svg)
  int border = 4;  // quiet zone in modules, 0..1000
};

// 8-bit grayscale raster, row-major, width == height == (size + 2 * border) * scale;
// dark modules are 0, light 255.
struct gray_image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;
};
gray_image rasterize(symbol_view symbol, const render_options& options);

// Each returns the whole file's bytes. Throws qrplate::invalid_argument for bad options.
std::vector<std::uint8_t> render_png(symbol_view symbol, const render_options& options);
std::string render_pbm(symbol_view symbol, const render_options& options);  // binary P4
std::string render_svg(symbol_view symbol, const render_options& options);
std::string render_text(symbol_view symbol, int border);                   // UTF-8 half blocks
std::string render_matrix(symbol_view symbol);  // one line per row of '0'/'1', 1 = dark, no border

// Renders in `format` and writes to `path` ("-" = standard output). Throws qrplate::io_error.
void write_symbol(symbol_view symbol, image_format format, const render_options& options, const std::string& path);

}  // namespace qrplate
