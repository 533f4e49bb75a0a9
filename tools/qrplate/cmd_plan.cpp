// `qrplate plan`: what a plate holds for a code shape, pitch and size: codes, capacity, density,
// image size, overheads. Pure arithmetic over the same geometry the encoder uses.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "plate_options.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/encode_plate.hpp"
#include "qrplate/plate/frame.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/qr.hpp"

namespace qrplate::cli {

void add_plan_command(CLI::App& app)
{
  struct plan_args {
    plate_args plate;
    double bytes = -1;
    bool json = false;
    unsigned threads = 0;
    std::string hash = "sha256";
  };
  auto args = std::make_shared<plan_args>();
  CLI::App* cmd = app.add_subcommand("plan", "Show what a plate holds: codes, payload capacity, density, image size, overheads");
  add_plate_options(*cmd, args->plate, "Plate size: A3, A4, A5 or WxH with a unit, e.g. 500x300um (default: A4); not "
                                       "with --bytes");
  cmd->add_option("--bytes", args->bytes,
                  "Plan the smallest plate for a payload of this many bytes (0..1e18) instead of a plate of a given "
                  "--plate size");
  cmd->add_option("--threads", args->threads,
                  "Threads `qrplate encode` would use, for its memory figure, 0..1024 (default: 0 = every core; each "
                  "adds ~1.7 MB)");
  cmd->add_option("--hash", args->hash,
                  "The digest `qrplate encode --hash` would make, for its memory figure: sha256 or sha256-tree (4 MiB "
                  "more a thread beyond the first) (default: sha256)");
  cmd->add_flag("--json", args->json, "Print JSON for scripts");
  cmd->footer("\nExamples:\n"
              "  qrplate plan                                   A4 at 49 nm with version 40-L codes\n"
              "  qrplate plan --version 3 --plate 1x1mm --json\n"
              "  qrplate plan --bytes 8e9 --version 10 --ecc M\n");
  cmd->callback([args, cmd] {
    plate_args pa = args->plate;
    check_threads(args->threads);
    if (cmd->count("--plate") && pa.plate.empty())
      throw invalid_argument("--plate '': give a size: A3, A4, A5 or WxH with a unit, e.g. 500x300um");
    const bool auto_size = cmd->count("--bytes") > 0;
    if (auto_size) {
      if (!(args->bytes >= 0 && args->bytes <= 1e18)) {
        char v[32];
        std::snprintf(v, sizeof v, "%g", args->bytes);
        throw invalid_argument(std::string("--bytes ") + v + ": must be a number of bytes in 0..1e18");
      }
      // Both would mean two plans (the smallest plate, or how many of the given size): ask which.
      if (!pa.plate.empty())
        throw invalid_argument("--bytes and --plate: give one (--bytes plans the smallest plate for the payload, "
                               "--plate a plate of that size)");
    } else if (pa.plate.empty()) {
      pa.plate = "A4";
    }
    plate::geometry_options o = to_geometry(pa, *cmd);
    const int per_frame = plate::frame_data_bytes(o.version, o.ecc);
    const int byte_cap = max_byte_payload(o.version, o.ecc);
    std::uint64_t frames = 0;
    if (auto_size) {
      frames = (static_cast<std::uint64_t>(args->bytes) + per_frame - 1) / per_frame;
      if (cmd->count("--outer") == 0 && o.m > 0 && frames < static_cast<std::uint64_t>(o.k)) {
        const int k = static_cast<int>(std::max<std::uint64_t>(frames, 1));
        o.m = std::max(1, (o.m * k + o.k - 1) / o.k);
        o.k = k;
      }
    } else {
      frames = plate::plate_capacity_frames(o);
      if (frames == 0) throw invalid_argument("plate " + pa.plate + " is too small for one group of codes");
    }
    const plate::plate_geometry g = plate::make_geometry(o, frames);
    const auto& pl = g.placement;
    const double area_um2 = g.width_um() * g.height_um();
    const std::uint64_t payload_bytes = frames * static_cast<std::uint64_t>(per_frame);
    const double payload = static_cast<double>(payload_bytes);
    const std::uint64_t cells = static_cast<std::uint64_t>(g.columns) * g.rows;
    const double module_um = o.module_nm / 1000.0;
    const double own_quiet_side = (g.code_size + 8) * module_um;  // a lone code with its 4-module quiet zone
    const double raw_density = byte_cap * 8.0 / (own_quiet_side * own_quiet_side);
    const double payload_density = area_um2 > 0 ? payload * 8.0 / area_um2 : 0;
    const double frame_overhead = static_cast<double>(byte_cap - per_frame) / byte_cap;
    const double outer_overhead = pl.m() ? static_cast<double>(pl.m()) / (pl.k() + pl.m()) : 0.0;
    nlohmann::ordered_json j;
    j["plate"] = {{"size_um", {{"width", g.width_um()}, {"height", g.height_um()}}},
                  {"size_modules", {{"width", g.width}, {"height", g.height}}}, {"module_nm", o.module_nm}};
    j["codes"] = {{"version", o.version}, {"ecc", to_string(o.ecc)}, {"size", g.code_size}, {"pitch", g.pitch},
                  {"columns", g.columns}, {"rows", g.rows}, {"cells", cells},
                  {"data_frames", frames}, {"parity_frames", pl.parity_frames()},
                  {"header_codes", 2 * g.header_copies}};
    j["outer_code"] = {{"k", pl.k()}, {"m", pl.m()}, {"band_rows", pl.band_rows()},
                       {"groups_per_band", pl.groups_per_band()}, {"dust_window_cells", pl.window()}};
    // Counts are JSON integers (scripts compare them with integer tools); ratios stay floats.
    j["capacity_bytes"] = payload_bytes;
    j["density_bit_per_um2"] = {{"payload", payload_density}, {"raw_symbol", raw_density}};
    j["overhead"] = {{"frame_header_bytes", byte_cap - per_frame}, {"frame_fraction", frame_overhead},
                     {"outer_fraction", outer_overhead},
                     {"unused_cell_fraction", cells ? 1.0 - static_cast<double>(frames + pl.parity_frames()) / static_cast<double>(cells) : 0.0}};
    const unsigned threads = args->threads != 0 ? args->threads : std::max(1u, std::thread::hardware_concurrency());
    const double memory = plate::encode_memory_bytes(g, 512, threads, plate::parse_payload_hash(args->hash));
    j["encode_memory_bytes"] = static_cast<std::uint64_t>(std::ceil(memory));
    j["image"] = {{"pixels", {{"width", g.width}, {"height", g.height}}},
                  {"uncompressed_bytes", (static_cast<std::uint64_t>(g.width) * g.height + 7) / 8}};
    if (args->json) {
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    auto human = [](double b) {
      const char* unit[] = {"B", "kB", "MB", "GB", "TB", "PB"};
      int u = 0;
      while (b >= 1000 && u < 5) b /= 1000, ++u;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3g %s", b, unit[u]);
      return std::string(buf);
    };
    std::printf("plate        %.6g x %.6g um (%llu x %llu modules of %g nm)\n", g.width_um(), g.height_um(),
                static_cast<unsigned long long>(g.width), static_cast<unsigned long long>(g.height), o.module_nm);
    std::printf("codes        version %d-%s, %dx%d modules, pitch %d: %u columns x %llu rows = %llu cells\n", o.version,
                to_string(o.ecc), g.code_size, g.code_size, g.pitch, g.columns, static_cast<unsigned long long>(g.rows),
                static_cast<unsigned long long>(cells));
    std::printf("frames       %llu data + %llu parity (outer %d+%d, bands of %u rows), %u header codes\n",
                static_cast<unsigned long long>(frames), static_cast<unsigned long long>(pl.parity_frames()), pl.k(), pl.m(),
                pl.band_rows(), 2 * g.header_copies);
    std::printf("capacity     %s of payload (%.0f bytes)\n", human(payload).c_str(), payload);
    std::printf("density      %.1f bit/um2 of payload over the plate; %.1f bit/um2 raw (one %d-%s symbol of %d bytes\n"
                "             with its own 4-module quiet zone, the measure of single-code records)\n",
                payload_density, raw_density, o.version, to_string(o.ecc), byte_cap);
    std::printf("overhead     frame header %d of %d bytes per code (%.1f%%), outer parity %.1f%% of frames, "
                "unused cells %.1f%%\n",
                byte_cap - per_frame, byte_cap, 100 * frame_overhead, 100 * outer_overhead,
                100 * j["overhead"]["unused_cell_fraction"].get<double>());
    std::printf("image        %llu x %llu pixels, %s uncompressed at 1 bit/module\n",
                static_cast<unsigned long long>(g.width), static_cast<unsigned long long>(g.height),
                human(static_cast<double>(g.width) * static_cast<double>(g.height) / 8.0).c_str());
    std::printf("memory       %s for `qrplate encode` (512-pixel tiles, %u thread%s; --buffer must allow it)\n",
                human(memory).c_str(), threads, threads == 1 ? "" : "s");
  });
}

}  // namespace qrplate::cli
