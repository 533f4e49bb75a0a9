// `qrplate encode`: bytes (a file or standard input) -> self-describing plate directory.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "commands.hpp"
#include "interrupt.hpp"
#include "plate_options.hpp"
#include "qrplate/encode.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/encode_plate.hpp"

namespace qrplate::cli {
namespace {

struct encode_args {
  std::string input;
  std::string output;
  plate_args plate;
  std::string backend = "auto";
  unsigned threads = 0;
  std::uint32_t tile = 512;
  std::string compression = "deflate";
  double buffer_mib = 2048;
  bool discard = false;
  bool quiet_progress = false;
  std::string plate_id;  // hex; empty: random
  std::string hash = "sha256";
};

// "--plate-id 1a2b...": up to 16 hex digits, not zero.
std::uint64_t parse_plate_id(const std::string& text)
{
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &used, 16);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || text.size() > 16 || v == 0 || text.find_first_of("+- ") != std::string::npos)
    throw invalid_argument("--plate-id must be 1 to 16 hex digits, not zero (got '" + text + "')");
  return v;
}

std::uint64_t parse_buffer(double mib)
{
  if (!(mib >= 16 && mib <= 1 << 24)) throw invalid_argument("--buffer must be 16 .. 16777216 MiB");
  return static_cast<std::uint64_t>(mib * 1048576.0);
}

}  // namespace

void add_encode_command(CLI::App& app)
{
  auto args = std::make_shared<encode_args>();
  CLI::App* cmd = app.add_subcommand(
      "encode", "Encode a file or standard input into a plate directory (plate.json, plate.tif, preview.png)");
  cmd->add_option("INPUT", args->input, "Payload file, or - for standard input")->required();
  cmd->add_option("-o,--output", args->output, "Plate directory to create (must not exist)");
  add_plate_options(*cmd, args->plate,
                    "Plate size: A3, A4, A5 or WxH with a unit, e.g. 500x300um or 20x20mm (default: just large "
                    "enough for the payload); a payload larger than one plate becomes several");
  cmd->add_option("--backend", args->backend, "auto, cpu or cuda (default: auto: CUDA when a device exists)");
  cmd->add_option("--threads", args->threads,
                  "CPU threads for the batch encoder (CPU backend), and for the one team that frames, rasterises and "
                  "compresses beside it, 0..1024 (default: 0 = every core)");
  cmd->add_option("--tile", args->tile, "TIFF tile side in pixels, a multiple of 16 (default: 512)");
  cmd->add_option("--compression", args->compression,
                  "TIFF compression: deflate (~97% of raw size for random payloads, on every core), none (fastest), or "
                  "g4 (CCITT Group 4: twice raw size on QR codes, slow, one thread) (default: deflate)");
  cmd->add_option("--buffer", args->buffer_mib, "Working memory bound in MiB (default: 2048; `qrplate plan` says what a plate needs: 1.2 GB for A3)");
  cmd->add_option("--plate-id", args->plate_id,
                  "Plate id as hex (default: random); fixes the frames' plate tag, for reproducible plates");
  cmd->add_option("--hash", args->hash,
                  "The payload's digest in plate.json: sha256 (of the whole payload, what sha256sum prints; one core, "
                  "~1-2 GB/s) or sha256-tree (SHA-256 of each 4 MiB leaf on every thread, then of the leaves' "
                  "digests: for encodes faster than one core hashes, e.g. with --backend cuda) (default: sha256)");
  cmd->add_flag("--discard", args->discard, "Run the whole pipeline but write nothing (throughput measurement)");
  cmd->add_flag("--no-progress", args->quiet_progress, "No progress line (it is shown only on a terminal anyway)");
  cmd->footer(
      "\nThe payload is cut into frames, one per QR code (byte mode), each with a 15-byte header (format,\n"
      "plate tag, 64-bit frame index, CRC32C) and its length; groups of K data frames get M parity\n"
      "frames (Reed-Solomon across frames), spread over bands of code rows and blocks of columns so\n"
      "that a 100 um dust particle or a scratch along a row of codes costs no group more than M frames,\n"
      "and random loss at half the parity rate rarely does (3e-3 of groups at 239+16). Header codes\n"
      "(version 11-H) at the top and bottom carry the manifest. plate.json also holds the payload's\n"
      "digest (--hash), which qrplate decode checks.\n"
      "See docs/FORMAT.md.\n\n"
      "Examples:\n"
      "  qrplate encode archive.tar -o plate               one plate, just large enough\n"
      "  qrplate encode big.bin -o plates --plate A4        as many A4 plates as needed\n"
      "  head -c 1G /dev/urandom | qrplate encode - -o p --discard   measure throughput\n"
      "  qrplate encode big.bin -o p --backend cuda --hash sha256-tree --compression none   fastest\n");
  cmd->callback([args, cmd] {
    if (args->output.empty() && !args->discard) throw invalid_argument("no output directory: give -o PLATE_DIR (or --discard)");
    check_threads(args->threads);
    if (cmd->count("--plate") && args->plate.plate.empty())
      throw invalid_argument(
          "--plate '': give a size: A3, A4, A5 or WxH with a unit, e.g. 500x300um (or leave it out)");
    plate::plate_encode_options o;
    o.geometry = to_geometry(args->plate, *cmd);
    o.outer_given = cmd->count("--outer") > 0;
    o.where = parse_backend(args->backend);
    o.threads = args->threads;
    o.tile_width = o.tile_height = args->tile;
    o.compression = args->compression;
    o.buffer_bytes = parse_buffer(args->buffer_mib);
    o.discard = args->discard;
    o.hash = plate::parse_payload_hash(args->hash);
    if (!args->plate_id.empty()) o.plate_id = parse_plate_id(args->plate_id);
    o.progress = !args->quiet_progress && ::isatty(STDERR_FILENO);
    const std::string out = args->output.empty() ? std::string("discarded-plate") : args->output;
    o.interrupt = &interrupt_signal;
    const plate::plate_encode_result r =
        run_interruptibly(out, "the partial plate", [&] { return plate::encode_plates(args->input, out, o); });
    const double mb = static_cast<double>(r.payload_bytes) / 1e6;
    std::fprintf(stderr,
                 "qrplate: %.3f MB in %llu plate(s): %llu data + %llu parity frames (outer %d+%d), %llu header codes, "
                 "%.2f s (%.1f MB/s)%s\n",
                 mb, static_cast<unsigned long long>(r.plates), static_cast<unsigned long long>(r.data_frames),
                 static_cast<unsigned long long>(r.parity_frames), r.k, r.m, static_cast<unsigned long long>(r.header_codes),
                 r.seconds, r.seconds > 0 ? mb / r.seconds : 0.0, args->discard ? ", nothing written (--discard)" : "");
    for (const auto& d : r.plate_dirs) std::fprintf(stderr, "qrplate: wrote %s (plate.json, plate.tif, preview.png)\n", d.c_str());
    std::fprintf(stderr, "qrplate: payload %s %s\n", to_string(r.hash), r.digest_hex.c_str());
  });
}

}  // namespace qrplate::cli
