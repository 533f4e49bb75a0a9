// `qrplate qr`: one payload (TEXT, a file or standard input) -> one QR Code symbol, rendered.
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "qrplate/error.hpp"
#include "qrplate/image.hpp"
#include "qrplate/qr.hpp"
#include "qrplate/spec/versions.hpp"

namespace qrplate::cli {
namespace {

struct qr_args {
  std::string text;
  std::string input;
  std::string output;
  std::string format;
  std::string version = "auto";
  int min_version = spec::min_version;
  std::string ecc = "M";
  std::string mask = "auto";
  int scale = 8;
  int border = 4;
  int eci = -1;

  // Set from CLI11's option counts once parsing is done.
  bool have_text = false;
  bool have_input = false;
  bool have_min_version = false;
  bool have_format = false;
};

bool is_auto(std::string_view text) { return text == "auto" || text == "AUTO" || text == "Auto"; }

// Whole-string integer in [lo, hi]; "auto" is the caller's business. `what` names the setting in
// the message ("version 41 out of range 1..40 (or auto)").
int parse_int_in_range(std::string_view what, std::string_view text, int lo, int hi)
{
  int value = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(first, last, value);
  const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
  if (text.empty() || ec != std::errc() || end != last) {
    throw invalid_argument(std::string(what) + " '" + std::string(text) + "' is not auto or a number " + range);
  }
  if (value < lo || value > hi) {
    throw invalid_argument(std::string(what) + " " + std::to_string(value) + " out of range " + range + " (or auto)");
  }
  return value;
}

std::vector<std::uint8_t> read_all(std::FILE* file, const std::string& name)
{
  std::vector<std::uint8_t> bytes;
  std::uint8_t chunk[1 << 16];
  for (;;) {
    const std::size_t got = std::fread(chunk, 1, sizeof chunk, file);
    bytes.insert(bytes.end(), chunk, chunk + got);
    if (got < sizeof chunk) break;
  }
  if (std::ferror(file)) throw io_error("cannot read " + name + ": " + std::strerror(errno));
  return bytes;
}

std::vector<std::uint8_t> read_file(const std::string& path)
{
  if (path == "-") return read_all(stdin, "standard input");
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) throw io_error("cannot read " + path + ": " + std::strerror(errno));
  std::vector<std::uint8_t> bytes;
  try {
    bytes = read_all(file, path);
  } catch (...) {
    std::fclose(file);
    throw;
  }
  std::fclose(file);
  return bytes;
}

void run_qr(const qr_args& args)
{
  // Every setting is checked before the payload is read, so a typo never waits on stdin.
  qr_options options;
  options.ecc = parse_ecc_level(args.ecc);
  options.mask = is_auto(args.mask) ? auto_mask : parse_int_in_range("mask", args.mask, 0, 7);
  options.eci = args.eci;
  if (is_auto(args.version)) {
    options.min_version = args.min_version;
    options.max_version = spec::max_version;
  } else {
    if (args.have_min_version) {
      throw invalid_argument("--min-version only applies with --version auto; --version " + args.version +
                             " already fixes the version");
    }
    const int v = parse_int_in_range("version", args.version, spec::min_version, spec::max_version);
    options.min_version = v;
    options.max_version = v;
  }

  const bool to_stdout = args.output.empty() || args.output == "-";
  image_format format = image_format::text;
  if (args.have_format) {
    format = parse_image_format(args.format);
  } else if (!to_stdout) {
    format = image_format_from_path(args.output);
  }
  render_options render;
  render.scale = args.scale;
  render.border = args.border;

  if (args.have_text && args.have_input) {
    throw invalid_argument("give the payload either as TEXT or with --input FILE, not both");
  }
  qr_symbol symbol;
  if (args.have_text) {
    symbol = encode_text(args.text, options);
  } else {
    if (!args.have_input && isatty(STDIN_FILENO)) {
      // Waiting silently on a terminal looks like a hang.
      throw invalid_argument("no payload: give TEXT, --input FILE, or pipe the bytes into standard input");
    }
    const std::vector<std::uint8_t> bytes = read_file(args.have_input ? args.input : std::string("-"));
    symbol = encode_bytes(bytes.data(), bytes.size(), options);
  }

  write_symbol(symbol.view(), format, render, to_stdout ? std::string("-") : args.output);
  if (!to_stdout) {
    std::fprintf(stderr, "qrplate: version %d-%s mask %d, %dx%d modules -> %s\n", symbol.version,
                 to_string(symbol.ecc), symbol.mask, symbol.size, symbol.size, args.output.c_str());
  }
}

}  // namespace

void add_qr_command(CLI::App& app)
{
  CLI::App* cmd = app.add_subcommand(
    "qr", "Encode one payload (TEXT, --input FILE or standard input) as one QR Code symbol and render it");
  auto args = std::make_shared<qr_args>();

  CLI::Option* text =
    cmd->add_option("TEXT", args->text, "Payload text (put -- before a TEXT that starts with '-')")->type_name("");
  CLI::Option* input =
    cmd->add_option("-i,--input", args->input, "Read the payload bytes from FILE ('-' = standard input)")
      ->type_name("FILE");
  cmd->add_option("-o,--output", args->output,
                  "Write the image to OUT (default: standard output); written to OUT.tmp, then renamed")
    ->type_name("OUT");
  CLI::Option* format =
    cmd->add_option("-f,--format", args->format,
                    "Image format: png, pbm (binary P4), svg, text (Unicode half blocks, for a terminal) or\n"
                    "matrix (one line of 0/1 per module row, 1 = dark, no quiet zone). Default: from OUT's\n"
                    "extension (.png .pbm .svg .txt .matrix), else text")
      ->type_name("FORMAT");
  cmd->add_option("--version", args->version,
                  "Symbol version 1..40 (side 4N+17 modules), or auto: the smallest that holds the payload\n"
                  "(default: auto)")
    ->type_name("N|auto");
  CLI::Option* min_version =
    cmd->add_option("--min-version", args->min_version,
                    "With --version auto: the smallest version to consider, 1..40 (default: 1)")
      ->type_name("N")
      ->check(CLI::Range(spec::min_version, spec::max_version).description(""));
  cmd->add_option("--ecc", args->ecc,
                  "Error correction level: L (~7% of codewords recoverable), M (~15%), Q (~25%),\n"
                  "H (~30%) (default: M)")
    ->type_name("L|M|Q|H");
  cmd->add_option("--mask", args->mask,
                  "Data mask pattern 0..7, or auto: the lowest ISO 18004 penalty score (default: auto)")
    ->type_name("N|auto");
  cmd->add_option("--scale", args->scale, "Pixels per module for png, pbm and svg, 1..1000 (default: 8)")
    ->type_name("N")
    ->check(CLI::Range(1, 1000).description(""));
  cmd->add_option("--border", args->border,
                  "Quiet zone in modules around the symbol, 0..1000 (default: 4, the ISO minimum);\n"
                  "not drawn in matrix format")
    ->type_name("N")
    ->check(CLI::Range(0, 1000).description(""));
  cmd->add_option("--eci", args->eci,
                  "Write an ECI header with this assignment number first, 0..999999, e.g. 26 = UTF-8\n"
                  "(default: none)")
    ->type_name("N")
    ->check(CLI::Range(0, 999999).description(""));

  cmd->footer(
    "The payload is TEXT, else the bytes of --input FILE, else the bytes on standard input. TEXT is\n"
    "split into numeric, alphanumeric and byte segments for the shortest code (QR Code Model 2,\n"
    "ISO/IEC 18004); file and standard input bytes go in byte mode as they are, NUL included.\n"
    "\n"
    "Examples:\n"
    "  qrplate qr 'HELLO WORLD'                        show the code in the terminal\n"
    "  qrplate qr --input key.bin --ecc H -o key.png   a file's bytes as a PNG at level H\n"
    "  printf 'abc' | qrplate qr --version 5 --format svg > abc.svg\n"
    "\n"
    "On success nothing else is printed on standard output; with -o, one summary line goes to\n"
    "standard error. Exit status 0 on success, non-zero with a one-line reason otherwise.\n");

  cmd->callback([args, text, input, min_version, format]() {
    args->have_text = text->count() > 0;
    args->have_input = input->count() > 0;
    args->have_min_version = min_version->count() > 0;
    args->have_format = format->count() > 0;
    run_qr(*args);
  });
}

}  // namespace qrplate::cli
