// `qrplate decode`: back to the bytes from a plate directory (plate.tif), a scan set (scan.json +
// SEM tiles), or, for ordinary QR codes with no plate layout, an image or a directory of images.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "decode_images.hpp"
#include "interrupt.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/decode_plate.hpp"

namespace qrplate::cli {
namespace {

namespace fs = std::filesystem;

// A plate directory, a directory of plate-NNNN plates, or a scan set: the plate read path.
bool is_plate_input(const std::string& input)
{
  std::error_code ec;
  const fs::path p(input);
  if (!fs::is_directory(p, ec)) return false;
  if (fs::exists(p / "plate.tif", ec) || fs::exists(p / "scan.json", ec)) return true;
  for (const auto& e : fs::directory_iterator(p, ec))
    if (e.is_directory() && e.path().filename().string().rfind("plate-", 0) == 0 && fs::exists(e.path() / "plate.tif")) return true;
  return false;
}

// A directory that is neither a plate nor a scan set but holds part of one (plate.json without
// plate.tif, a scan set's truth.json without scan.json): reading its images as ordinary QR codes
// would "succeed" on the preview or contact sheet, so say what is missing instead.
void refuse_broken_plate_dir(const std::string& input)
{
  std::error_code ec;
  const fs::path p(input);
  if (!fs::is_directory(p, ec)) return;
  if (fs::exists(p / "truth.json", ec) || fs::exists(p / "contact_sheet.png", ec))
    throw io_error(input + " looks like a scan set (truth.json, contact_sheet.png) but has no scan.json: the tiles "
                           "cannot be placed without it");
  if (fs::exists(p / "plate.json", ec) || fs::exists(p / "preview.png", ec))
    throw io_error(input + " looks like a plate directory (plate.json, preview.png) but has no plate.tif; for a "
                           "scan set, scan.json is missing");
}

void write_report(const plate::plate_decode_result& r, const std::string& path)
{
  nlohmann::ordered_json j;
  j["complete"] = r.complete;
  j["input"] = r.scan ? "scan set" : "plate image";
  j["plates"] = r.plates;
  j["bootstrapped_from_header_codes"] = r.bootstrapped;
  j["payload_bytes"] = r.payload_bytes;
  j["codes"] = {{"holding_frames", r.codes},
                {"clean", r.codes_clean},
                {"rs_corrected", r.codes_corrected},
                {"erasure_assisted", r.codes_erasure_assisted},
                {"unreadable", r.codes_unreadable},
                {"not_scanned", r.codes_not_scanned},
                {"partly_scanned", r.codes_partly_scanned},
                {"unreadable_no_contrast", r.codes_unreadable_no_contrast},
                {"unreadable_sampled", r.codes_unreadable_sampled},
                {"frames_rejected", r.frames_rejected},
                {"rs_symbols_corrected", r.rs_symbols_corrected}};
  // How much of its own Reed-Solomon budget each decoded code had left (d - p - erasures - 2 errors,
  // least over its blocks): many codes near 0 mean the scan is close to its limit.
  nlohmann::ordered_json margins = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < r.margin_histogram.size(); ++i)
    margins[std::to_string(i) + (i + 1 == r.margin_histogram.size() ? "+" : "")] = r.margin_histogram[i];
  j["rs_margin_histogram"] = margins;
  if (r.scan) {
    j["median_snr"] = r.median_snr;
    j["median_snr_unreadable"] = r.median_snr_unreadable;
    j["tiles"] = {{"listed", r.tiles},
                  {"reads", r.tile_reads},
                  {"read_ahead", r.tile_reads_ahead},
                  {"registered_ahead", r.tile_registrations_ahead},
                  {"read_ahead_unused", r.tile_reads_ahead_unused},
                  {"reads_with_kept_pose", r.tile_reads_pose_kept},
                  {"rows_per_prepare", r.rows_per_prepare},
                  {"most_in_memory", r.max_tiles_in_memory},
                  {"unreadable", r.tiles_unreadable},
                  {"unregistered", r.tiles_unregistered},
                  {"moved_by_whole_pitches", r.lattice_corrections},
                  {"stage_error_sigma_um", r.stage_sigma_nm / 1000},
                  {"planned_overlap_um", r.planned_overlap_nm / 1000},
                  {"placed_by_overlap", r.tiles_stitched},
                  {"verified_by_frames", r.tiles_verified_by_frames},
                  {"confirmed_by_overlap", r.tiles_confirmed_by_overlap},
                  {"integrals_built_on_host", r.tiles_host_integrals},
                  {"pixels_uploaded", r.tile_samples_uploaded},
                  {"pixel_bytes_uploaded", r.tile_bytes_uploaded},
                  {"pixels_uploaded_as_read", r.tile_samples_uploaded_as_read},
                  {"pixel_bytes_staged", r.tile_bytes_staged}};
    // Batched first reads (--backend cuda): codes read ahead of their row and used, read again in
    // a deeper tile, read across tiles, passed over by a batch because a tile that may see them
    // was not loaded yet, read in the background while tiles were registered, and the seconds
    // spent waiting for those (near 0: registration hid the reads).
    j["code_batches"] = {{"codes_read_ahead", r.codes_read_ahead},
                         {"codes_read_ahead_again", r.codes_read_ahead_again},
                         {"codes_read_across", r.codes_read_across},
                         {"codes_ahead_deferred", r.codes_ahead_deferred},
                         {"codes_read_in_background", r.codes_read_in_background},
                         {"background_waits_for_drops", r.background_waits_for_drops},
                         {"seconds_waiting_for_background", r.seconds_waiting_for_background}};
  }
  j["tile_errors"] = r.tile_errors;  // scan tiles, or a plate image's TIFF tiles, that could not be read
  j["data_frames"] = {{"total", r.data_frames}, {"recovered_by_outer_code", r.recovered_by_outer}, {"lost", r.lost_frames}};
  j["frames_of_another_plate"] = r.frames_of_another_plate;
  j["plates_missing"] = r.plates_missing;
  j["lost_byte_ranges"] = nlohmann::ordered_json::array();
  for (const auto& [b, e] : r.lost_ranges) j["lost_byte_ranges"].push_back({b, e});
  // Not checked: the payload is incomplete, or the manifest came from the header codes (which do
  // not carry the digest). payload_hash: which digest plate.json gave (sha256 or sha256-tree).
  j["sha256"] = r.digest_checked ? (r.digest_ok ? "match" : "MISMATCH")
                                 : (!r.complete ? "not checked (payload incomplete)" : "not checked (no plate.json)");
  if (r.digest_checked) {
    j["payload_hash"] = to_string(r.payload_hash);
    j["digest_read_back"] = r.digest_read_back;  // false: hashed as written, no second read of the file
  }
  j["seconds"] = r.seconds;
  // Where they went, stage by stage (wall clock): what to look at first when a decode is slow.
  j["seconds_by_stage"] = {{"tiles", r.seconds_tiles},
                           {"code_batches", r.seconds_code_batches},
                           {"cells", r.seconds_cells},
                           {"frames", r.seconds_frames},
                           {"rest", r.seconds_rest()}};
  // Finishing the units (frames by group, outer code, writing): all of it, and what the sweep
  // waited for (the frames stage; the rest ran beside the next unit's reads).
  j["seconds_of_frames"] = {{"finishing", r.seconds_finishing_units}, {"waited_for", r.seconds_frames}};
  // The tiles' two main parts: loading them (what was not read and registered ahead) and placing
  // them against their neighbours.
  if (r.scan)
    j["seconds_of_tiles"] = {{"loading", r.seconds_loading_tiles}, {"placing", r.seconds_placing_tiles}};
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  f.close();  // a full disk shows at the flush
  if (!f) throw io_error("cannot write the report " + path + ": " + std::strerror(errno));
}

}  // namespace

void add_decode_command(CLI::App& app)
{
  struct decode_args {
    std::string input, output, report, heatmap, plate_json;
    unsigned threads = 0;
    bool no_progress = false;
    double search_um = 5.0, max_rotation = 1.5;
    int erasure_threshold = 64;
    std::string backend = "cpu";
    double tile_cache_mib = 1024;
    double prefetch_mib = 256;
    double strip_px = 8192;
    int prepare_rows = 0;
    bool serial_reads = false;
    bool no_register_ahead = false;
  };
  auto a = std::make_shared<decode_args>();
  CLI::App* cmd = app.add_subcommand(
      "decode", "Read a plate, a scan set of SEM tiles, or images of QR codes back to their contents");
  cmd->add_option("INPUT", a->input,
                  "A plate directory (plate.tif), a scan set directory (scan.json + tiles), or an image / a directory "
                  "of images holding ordinary QR codes")
      ->required();
  cmd->add_option("-o,--output", a->output,
                  "Plates and scan sets: the file to write the payload to (required). Images: a JSON file listing "
                  "the codes read (optional)");
  cmd->add_option("--plate", a->plate_json,
                  "The plate's plate.json or its directory: for a scan set (default: the one scan.json names, "
                  "else SCAN_DIR/plate.json) or a plate directory that lost its own");
  cmd->add_option("--report", a->report, "Write a JSON report: codes read, corrected, recovered, lost, tiles");
  cmd->add_option("--heatmap", a->heatmap,
                  "Write a PNG of the code grid: green clean, yellow corrected, orange restored by the outer "
                  "code, red lost, magenta rejected, white no frame");
  cmd->add_option("--search-um", a->search_um, "Scan sets: stage error searched around each tile's position (um)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  cmd->add_option("--max-rotation", a->max_rotation, "Scan sets: scan rotation searched, +- degrees")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--backend", a->backend,
                  "Scan sets: cpu, cuda (registration's passes over every pixel, its vote and anchor checks, and each "
                  "code's anchor search and read, on the GPU; fitting and stitching stay on the CPU) or auto (cuda "
                  "when a device "
                  "exists). Default cpu: on an H100 with 16 host cores cuda decoded 1.5-1.8x as fast as the CPU "
                  "with --strip-px 32768, but slower with the default strips (docs/PERFORMANCE.md)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--erasure-threshold", a->erasure_threshold,
                  "Scan sets: module confidence (0..255) below which a codeword may be erased; 0 = errors only")
      ->capture_default_str()
      ->check(CLI::Range(0, 255));
  cmd->add_option("--tile-cache", a->tile_cache_mib,
                  "Scan sets: MiB of tiles kept in memory beyond the rows being read, so that tiles on the edges of "
                  "column strips and outer-code bands are read once; 0 = only the current rows' tiles (least memory)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1048576.0));
  cmd->add_option("--prefetch", a->prefetch_mib,
                  "Scan sets: MiB of tiles that background threads read and decode (and, once the first tiles "
                  "showed the scan's polarity, register) ahead of the rows being read, following the sweep; "
                  "0 = read each file when its rows come (no read-ahead)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1048576.0));
  cmd->add_option("--strip-px", a->strip_px,
                  "Scan sets: width in scan pixels of the column strips the plate is read in; one strip's rows of "
                  "tiles are registered side by side, so a wider strip keeps more cores busy (large tiles, many "
                  "cores) and holds more tiles in memory (a marginal code may then be read from another tile)")
      ->capture_default_str()
      ->check(CLI::Range(plate::min_strip_px, plate::max_strip_px));
  cmd->add_option("--prepare-rows", a->prepare_rows,
                  "Scan sets: code rows of a strip narrower than the plate's unit whose tiles are loaded and "
                  "registered, and whose codes are read, at once; 0 = as many as fit the step between the scan's "
                  "rows of tiles, about one new row of tiles each time (a marginal code may be read from another "
                  "tile with another value)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  cmd->add_flag("--serial-reads", a->serial_reads,
               "Scan sets, --backend cuda: wait for each batch of code reads before registering the next tiles "
               "(default: the reads of the rows ahead run on the GPU while the host registers the next tiles); "
               "the same result, for measuring what the overlap gains");
  cmd->add_flag("--no-register-ahead", a->no_register_ahead,
               "Scan sets: register each tile when its rows come (default: once the first tiles showed the scan's "
               "polarity and finder strength, the --prefetch threads register the tiles they read ahead, while the "
               "codes of the rows before are read); the same result, for measuring what that gains");
  cmd->add_option("--threads", a->threads, "Threads, 0..1024 (default: 0 = every core)");
  cmd->add_flag("--no-progress", a->no_progress, "No progress line");
  cmd->footer(
      "\nPlates and scan sets: every code cell is read (a plate image module by module; a scan set's tiles\n"
      "registered on the plate's code lattice, each code refined from its own finder and alignment\n"
      "patterns, sampled, and decoded with errors and erasures), its frame checked (CRC32C, plate tag),\n"
      "missing frames restored by the outer code, and the payload checked against plate.json's SHA-256.\n"
      "A plate without plate.json is bootstrapped from its header codes (in a scan set: found in the\n"
      "tiles nearest the plate's corners; the payload's SHA-256 is then not checked).\n"
      "The output appears only when every byte is recovered (exit 0); otherwise the recovered part stays\n"
      "in OUT.partial and the lost byte ranges are reported (exit 1).\n\n"
      "Images: every QR code found (any encoder, ~1.5-20 px per module, either polarity, any rotation) is\n"
      "printed as FILE: vVERSION-LEVEL at (X, Y): CONTENT; exit 0 when at least one code was read.\n\n"
      "Examples:\n"
      "  qrplate decode plate -o restored.tar\n"
      "  qrplate decode scans -o restored.tar --report report.json --heatmap heat.png\n"
      "  qrplate decode scans -o restored.tar --plate plate/plate.json\n"
      "  qrplate decode photo.png\n");
  cmd->callback([a] {
    check_threads(a->threads);
    if (!is_plate_input(a->input)) {
      refuse_broken_plate_dir(a->input);
      if (!a->plate_json.empty() || !a->report.empty() || !a->heatmap.empty())
        throw invalid_argument(a->input + " is not a plate or scan set directory: --plate, --report and --heatmap apply to those");
      std::error_code ec;
      if (fs::is_directory(a->input, ec))
        std::fprintf(stderr, "qrplate: %s has no plate.tif or scan.json: reading its images as ordinary QR codes\n",
                     a->input.c_str());
      const int rc = decode_images(a->input, a->output, a->threads);
      if (rc != 0) throw exit_code_error{rc};
      return;
    }
    if (a->output.empty()) throw invalid_argument("no output file given (-o): where should the payload go?");
    plate::plate_decode_options o;
    o.threads = a->threads;
    o.heatmap = a->heatmap;
    o.report = a->report;  // checked with the other outputs before any work
    o.progress = !a->no_progress && ::isatty(STDERR_FILENO);
    o.plate_json = a->plate_json;
    o.search_um = a->search_um;
    o.max_rotation_deg = a->max_rotation;
    o.erasure_threshold = a->erasure_threshold;
    o.backend = parse_backend(a->backend);
    o.tile_cache_bytes = static_cast<std::size_t>(a->tile_cache_mib * 1048576.0);
    o.tile_prefetch_bytes = static_cast<std::size_t>(a->prefetch_mib * 1048576.0);
    o.strip_px = a->strip_px;
    o.prepare_rows = a->prepare_rows;
    if (a->serial_reads) o.overlap_reads = 0;
    o.register_ahead = !a->no_register_ahead;
    o.interrupt = &interrupt_signal;
    const plate::plate_decode_result r =
        run_interruptibly(a->output, "the partial file", [&] { return plate::decode_plates(a->input, a->output, o); });
    // The report and heatmap written or not, the payload is where the decode put it: a failure of
    // theirs is said last, after what became of the payload.
    std::vector<std::string> side_errors;
    if (!r.heatmap_error.empty()) side_errors.push_back("cannot write the heatmap " + r.heatmap_error);
    if (!a->report.empty()) {
      try {
        write_report(r, a->report);
      } catch (const std::exception& e) {
        side_errors.push_back(e.what());
      }
    }
    if (r.scan)
      std::fprintf(stderr,
                   "qrplate: %llu tiles (%llu unreadable, %llu not registered, %llu placed by overlap with a neighbour, %llu "
                   "moved by whole code pitches)\n",
                   static_cast<unsigned long long>(r.tiles), static_cast<unsigned long long>(r.tiles_unreadable),
                   static_cast<unsigned long long>(r.tiles_unregistered), static_cast<unsigned long long>(r.tiles_stitched),
                   static_cast<unsigned long long>(r.lattice_corrections));
    for (const std::string& e : r.tile_errors) std::fprintf(stderr, "qrplate: tile unreadable: %s\n", e.c_str());
    std::fprintf(stderr,
                 "qrplate: %llu codes: %llu clean, %llu corrected (%llu with erasures), %llu unreadable, %llu rejected; "
                 "%llu data frames, %llu restored by the outer code, %llu lost; %.2f s\n",
                 static_cast<unsigned long long>(r.codes), static_cast<unsigned long long>(r.codes_clean),
                 static_cast<unsigned long long>(r.codes_corrected), static_cast<unsigned long long>(r.codes_erasure_assisted),
                 static_cast<unsigned long long>(r.codes_unreadable), static_cast<unsigned long long>(r.frames_rejected),
                 static_cast<unsigned long long>(r.data_frames), static_cast<unsigned long long>(r.recovered_by_outer),
                 static_cast<unsigned long long>(r.lost_frames), r.seconds);
    if (r.scan && r.codes_unreadable > 0) {
      // Why they were lost: coverage, placement or noise (the SNR beside the decoded codes' says which).
      auto one_decimal = [](double x) {
        char text[32];
        std::snprintf(text, sizeof text, "%.1f", x);
        return std::string(text);
      };
      std::string snr;
      if (r.codes_unreadable_sampled > 0)
        snr = " (median SNR " + one_decimal(r.median_snr_unreadable) +
              (r.codes_clean + r.codes_corrected > 0 ? "; decoded codes " + one_decimal(r.median_snr) : "") + ")";
      std::fprintf(stderr,
                   "qrplate: unreadable codes: %llu not scanned, %llu partly scanned, %llu without contrast where the "
                   "tiles put them, %llu sampled whole but not decoded%s\n",
                   static_cast<unsigned long long>(r.codes_not_scanned),
                   static_cast<unsigned long long>(r.codes_partly_scanned),
                   static_cast<unsigned long long>(r.codes_unreadable_no_contrast),
                   static_cast<unsigned long long>(r.codes_unreadable_sampled), snr.c_str());
      // Two neighbours' relative error has sigma * sqrt(2): past half the overlap it opens gaps at
      // ~5% of the tiles' borders (the hint's trigger), past a third at ~0.3% (its advice).
      const double relative_nm = std::sqrt(2.0) * r.stage_sigma_nm, needed_nm = 3 * relative_nm;
      const std::uint64_t outside = r.codes_not_scanned + r.codes_partly_scanned;
      if (outside > 0 && r.stage_sigma_nm > 0 && 2 * relative_nm > r.planned_overlap_nm)
        std::fprintf(stderr,
                     "qrplate: hint: %llu code%s partly or wholly in no tile. The stage's position error (sigma %.2f "
                     "um, from the placed tiles) opens gaps in the %.2f um the tiles overlap: scan with %.1f um of "
                     "overlap or more (3 sigma of two neighbours' relative error)\n",
                     static_cast<unsigned long long>(outside), outside == 1 ? " lies" : "s lie", r.stage_sigma_nm / 1000,
                     r.planned_overlap_nm / 1000, needed_nm / 1000);
    }
    if (r.scan) {
      // With reads in the background, the batches' share is mostly the wait for them.
      char waited[64] = "";
      if (r.codes_read_in_background > 0)
        std::snprintf(waited, sizeof waited, " (%.2f s of it waiting for the reads ahead)", r.seconds_waiting_for_background);
      std::fprintf(stderr,
                   "qrplate: time: tiles %.2f s (loading %.2f s, %llu of %llu registered ahead; placing %.2f s), batched "
                   "code reads %.2f s%s, cells %.2f s, frames %.2f s (of %.2f s finishing them), the rest %.2f s\n",
                   r.seconds_tiles, r.seconds_loading_tiles, static_cast<unsigned long long>(r.tile_registrations_ahead),
                   static_cast<unsigned long long>(r.tile_reads), r.seconds_placing_tiles, r.seconds_code_batches, waited,
                   r.seconds_cells, r.seconds_frames, r.seconds_finishing_units, r.seconds_rest());
    }
    if (r.frames_of_another_plate > 0)
      std::fprintf(stderr,
                   "qrplate: warning: %llu frames read whole carry another plate's tag: the manifest (plate.json, "
                   "--plate) is not the one of the plate these %s show\n",
                   static_cast<unsigned long long>(r.frames_of_another_plate), r.scan ? "scans" : "images");
    if (!r.complete) {
      std::string what;
      if (!r.plates_missing.empty()) {
        std::string numbers;
        for (std::size_t i = 0; i < r.plates_missing.size() && i < 8; ++i)
          numbers += (i ? ", " : "") + std::to_string(r.plates_missing[i]);
        if (r.plates_missing.size() > 8) numbers += ", ...";
        what = std::to_string(r.plates_missing.size()) + " of the payload's " +
               std::to_string(r.plates_missing.size() + r.plates) + " plates not given (plate " + numbers + ")";
        if (r.lost_frames) what += " and ";
      }
      if (r.lost_frames || r.plates_missing.empty())
        what += r.lost_frames ? std::to_string(r.lost_frames) + " frames lost (" + std::to_string(r.lost_ranges.size()) +
                                    " byte ranges, see --report)"
                              : std::string(plate::display_name(r.payload_hash)) + " mismatch";
      for (const std::string& e : side_errors) std::fprintf(stderr, "qrplate: %s\n", e.c_str());
      throw io_error("payload incomplete: " + what + "; the recovered part is in " + a->output + ".partial");
    }
    std::fprintf(stderr, "qrplate: wrote %s (%llu bytes, %s %s)\n", a->output.c_str(),
                 static_cast<unsigned long long>(r.payload_bytes),
                 plate::display_name(r.payload_hash),
                 r.digest_checked ? "matches plate.json" : "not checked: no plate.json");
    if (!side_errors.empty()) {
      for (std::size_t i = 0; i + 1 < side_errors.size(); ++i) std::fprintf(stderr, "qrplate: %s\n", side_errors[i].c_str());
      throw io_error(side_errors.back() + " (the payload is complete in " + a->output + ")");
    }
  });
}

}  // namespace qrplate::cli
