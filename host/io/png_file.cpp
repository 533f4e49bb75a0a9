#include "io/png_file.hpp"

#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "qrplate/error.hpp"

namespace qrplate::host {
namespace {

// libpng reports errors by longjmp, which must not cross frames holding C++ objects with
// destructors: encode() and the callbacks hold only plain data.
struct png_status {
  char message[256] = {};
};

void on_error(png_structp png, png_const_charp message)
{
  auto* status = static_cast<png_status*>(png_get_error_ptr(png));
  std::snprintf(status->message, sizeof status->message, "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

bool encode(std::FILE* file, const std::uint8_t* pixels, std::uint32_t width, std::uint32_t height, int channels,
            png_status& status)
{
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &status, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (png == nullptr || info == nullptr) {
    png_destroy_write_struct(&png, &info);
    std::snprintf(status.message, sizeof status.message, "cannot create a PNG writer");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, file);
  png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);  // the default stops at 10^6 pixels a side
  png_set_IHDR(png, info, width, height, 8, channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const std::size_t row_bytes = static_cast<std::size_t>(width) * static_cast<std::size_t>(channels);
  for (std::uint32_t y = 0; y < height; ++y) png_write_row(png, pixels + y * row_bytes);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

void write_png_file(const std::string& path, const std::uint8_t* pixels, std::uint32_t width, std::uint32_t height,
                    int channels)
{
  if (width == 0 || height == 0 || (channels != 1 && channels != 3))
    throw invalid_argument("cannot write " + path + ": a PNG needs a positive size and 1 or 3 channels");
  // Regular files go through path.tmp and a rename, so a file at `path` is always whole. Anything
  // else that exists (a device, a pipe) is written in place: renaming over it would replace it.
  std::error_code ec;
  const bool in_place = std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec);
  const std::string target = in_place ? path : path + ".tmp";
  errno = 0;
  std::FILE* file = std::fopen(target.c_str(), "wb");
  if (file == nullptr) throw io_error("cannot create " + path + ": " + std::strerror(errno));
  png_status status;
  const bool encoded = encode(file, pixels, width, height, channels, status);
  errno = 0;
  const bool flushed = encoded && std::fflush(file) == 0 && std::ferror(file) == 0;
  const int flush_err = errno;
  const bool closed = std::fclose(file) == 0;
  const int close_err = errno;
  if (!encoded || !flushed || !closed) {
    if (!in_place) std::filesystem::remove(target, ec);
    const std::string reason = !encoded ? std::string(status.message) : std::strerror(!flushed ? flush_err : close_err);
    throw io_error("cannot write " + path + ": " + reason);
  }
  if (in_place) return;
  std::filesystem::rename(target, path, ec);
  if (ec) {
    std::filesystem::remove(target, ec);
    throw io_error("cannot write " + path + ": " + ec.message());
  }
}

}  // namespace qrplate::host
