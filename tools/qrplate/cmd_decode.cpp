// `qrplate decode`: a plate image (plate directory) -> the original bytes. Reading SEM scan sets
// is the next step of the decoder (issue #6); this is the digital read path.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/decode_plate.hpp"

namespace qrplate::cli {

void add_decode_command(CLI::App& app)
{
  struct decode_args {
    std::string input, output, report, heatmap;
    unsigned threads = 0;
    bool no_progress = false;
  };
  auto a = std::make_shared<decode_args>();
  CLI::App* cmd = app.add_subcommand(
      "decode", "Read a plate directory (plate.tif; plate.json optional) back to the original bytes");
  cmd->add_option("PLATE_DIR", a->input, "Plate directory written by `qrplate encode` (or one holding plate-NNNN/)")->required();
  cmd->add_option("-o,--output", a->output, "File to write the payload to")->required();
  cmd->add_option("--report", a->report, "Write a JSON report: codes read, corrected, recovered, lost");
  cmd->add_option("--heatmap", a->heatmap,
                  "Write a PNG of the code grid: green clean, yellow corrected, orange restored by the outer "
                  "code, red lost, magenta rejected, white no frame");
  cmd->add_option("--threads", a->threads, "Threads (default: every core)");
  cmd->add_flag("--no-progress", a->no_progress, "No progress line");
  cmd->footer(
      "\nEvery code cell of plate.tif is decoded (QR Reed-Solomon), its frame checked (CRC32C, plate tag),\n"
      "missing frames restored by the outer code, and the payload checked against plate.json's SHA-256;\n"
      "without plate.json the manifest is read from the plate's header codes. The output appears only\n"
      "when every byte is recovered (exit 0); otherwise the recovered part stays in OUT.partial and the\n"
      "lost byte ranges are reported (exit 1). Reading SEM scan sets (qrplate simulate output) is not\n"
      "built yet.\n\n"
      "Examples:\n"
      "  qrplate decode plate -o restored.tar\n"
      "  qrplate decode plates -o restored.bin --report report.json --heatmap heat.png\n");
  cmd->callback([a] {
    plate::plate_decode_options o;
    o.threads = a->threads;
    o.heatmap = a->heatmap;
    o.progress = !a->no_progress && ::isatty(STDERR_FILENO);
    const plate::plate_decode_result r = plate::decode_plates(a->input, a->output, o);
    if (!a->report.empty()) {
      nlohmann::ordered_json j;
      j["complete"] = r.complete;
      j["plates"] = r.plates;
      j["bootstrapped_from_header_codes"] = r.bootstrapped;
      j["payload_bytes"] = r.payload_bytes;
      j["codes"] = {{"holding_frames", r.codes}, {"clean", r.codes_clean}, {"rs_corrected", r.codes_corrected},
                    {"unreadable", r.codes_unreadable}, {"frames_rejected", r.frames_rejected}};
      j["data_frames"] = {{"total", r.data_frames}, {"recovered_by_outer_code", r.recovered_by_outer}, {"lost", r.lost_frames}};
      j["lost_byte_ranges"] = nlohmann::ordered_json::array();
      for (const auto& [b, e] : r.lost_ranges) j["lost_byte_ranges"].push_back({b, e});
      j["sha256"] = r.sha256_checked ? (r.sha256_ok ? "match" : "MISMATCH") : "not checked (no plate.json)";
      j["seconds"] = r.seconds;
      std::ofstream f(a->report);
      f << j.dump(2) << "\n";
      if (!f) throw io_error("cannot write " + a->report);
    }
    std::fprintf(stderr,
                 "qrplate: %llu codes: %llu clean, %llu corrected, %llu unreadable, %llu rejected; %llu data frames, %llu "
                 "restored by the outer code, %llu lost; %.2f s\n",
                 static_cast<unsigned long long>(r.codes), static_cast<unsigned long long>(r.codes_clean),
                 static_cast<unsigned long long>(r.codes_corrected), static_cast<unsigned long long>(r.codes_unreadable),
                 static_cast<unsigned long long>(r.frames_rejected), static_cast<unsigned long long>(r.data_frames),
                 static_cast<unsigned long long>(r.recovered_by_outer), static_cast<unsigned long long>(r.lost_frames),
                 r.seconds);
    if (!r.complete) {
      std::string what = r.lost_frames ? std::to_string(r.lost_frames) + " frames lost (" +
                                             std::to_string(r.lost_ranges.size()) + " byte ranges, see --report)"
                                       : "SHA-256 mismatch";
      throw io_error("payload incomplete: " + what + "; the recovered part is in " + a->output + ".partial");
    }
    std::fprintf(stderr, "qrplate: wrote %s (%llu bytes, SHA-256 %s)\n", a->output.c_str(),
                 static_cast<unsigned long long>(r.payload_bytes),
                 r.sha256_checked ? "matches plate.json" : "not checked: no plate.json");
  });
}

}  // namespace qrplate::cli
