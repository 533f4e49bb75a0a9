// `qrplate simulate`: plate directory -> scan set directory of simulated SEM tiles.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "commands.hpp"
#include "qrplate/error.hpp"
#include "qrplate/sim/simulate.hpp"

namespace qrplate::cli {

void add_simulate_command(CLI::App& app)
{
  struct sim_args {
    std::string plate, output, preset = "typical", region;
    double px_per_module = 0, pixel_nm = 0;
    std::uint64_t seed = 1;
    std::uint32_t tile = 1024;
    int bits = 16;
    unsigned threads = 0;
    bool no_progress = false;
    // model overrides (negative / NaN = keep the preset's value)
    double sigma = -1, current = -1, dwell = -1, drift = -1, stage = -1, rotation = -1, scale = -1, overlap = -1;
    double dust = -1, scratches = -1, missing = -1, jitter = -1, vibration = -1, halo = -1, contrast = -1;
    bool bright_milled = false;
  };
  auto a = std::make_shared<sim_args>();
  CLI::App* cmd = app.add_subcommand("simulate", "Simulate tiled SEM scans of a plate (tiles, scan.json, truth.json)");
  cmd->add_option("PLATE_DIR", a->plate, "Plate directory written by `qrplate encode`")->required();
  cmd->add_option("-o,--output", a->output, "Scan set directory to create (must not exist)")->required();
  cmd->add_option("--preset", a->preset, "clean, typical or harsh (default: typical); docs/SIMULATOR.md lists their numbers");
  cmd->add_option("--px-per-module", a->px_per_module, "Pixels per module (default 3); or give --pixel-nm");
  cmd->add_option("--pixel-nm", a->pixel_nm, "Pixel size in nm (overrides --px-per-module)");
  cmd->add_option("--seed", a->seed, "Random seed: the same seed gives the same scans (default 1)");
  cmd->add_option("--region", a->region, "Part of the plate to scan, X,Y,WxH in modules (default: all of it)");
  cmd->add_option("--tile", a->tile, "Tile side in pixels (default 1024)");
  cmd->add_option("--bits", a->bits, "8 or 16 bit tiles (default 16)");
  cmd->add_option("--threads", a->threads, "Threads (default: every core)");
  cmd->add_option("--sigma-nm", a->sigma, "Probe sigma in nm");
  cmd->add_option("--current-pa", a->current, "Beam current in pA");
  cmd->add_option("--dwell-us", a->dwell, "Dwell time per pixel in us");
  cmd->add_option("--drift-nm-s", a->drift, "Drift in nm/s");
  cmd->add_option("--jitter-nm", a->jitter, "Line jitter sigma in nm");
  cmd->add_option("--vibration-nm", a->vibration, "Vibration amplitude in nm");
  cmd->add_option("--halo", a->halo, "Fraction of the signal in the broad halo");
  cmd->add_option("--stage-nm", a->stage, "Stage position error sigma in nm");
  cmd->add_option("--rotation-deg", a->rotation, "Scan rotation, uniform in +- this many degrees");
  cmd->add_option("--scale-error", a->scale, "Pixel size error, uniform in +- this fraction");
  cmd->add_option("--overlap", a->overlap, "Overlap of neighbouring tiles, fraction 0..0.9 (default 0.1)");
  cmd->add_option("--dust-per-mm2", a->dust, "Dust particles per mm2");
  cmd->add_option("--scratches-per-mm2", a->scratches, "Scratches per mm2");
  cmd->add_option("--missing-tiles", a->missing, "Fraction of tiles missing from the scan set");
  cmd->add_option("--contrast", a->contrast, "Film minus milled signal (0..1)");
  cmd->add_flag("--bright-milled", a->bright_milled, "Milled modules appear brighter than the film");
  cmd->add_flag("--no-progress", a->no_progress, "No progress line");
  cmd->footer("\nExamples:\n"
              "  qrplate simulate plate -o scans                         typical scans at 3 px/module\n"
              "  qrplate simulate plate -o clean --preset clean --px-per-module 4 --seed 7\n"
              "  qrplate simulate plate -o part --region 0,0,2000x1500 --preset harsh\n");
  cmd->callback([a, cmd] {
    sim::simulate_options o = sim::preset(a->preset);
    if (cmd->count("--px-per-module")) o.px_per_module = a->px_per_module;
    if (cmd->count("--pixel-nm")) o.pixel_nm = a->pixel_nm;
    if (cmd->count("--px-per-module") && !(a->px_per_module > 0)) throw invalid_argument("--px-per-module must be positive");
    if (cmd->count("--pixel-nm") && !(a->pixel_nm > 0)) throw invalid_argument("--pixel-nm must be positive");
    o.seed = a->seed;
    o.tile_px = a->tile;
    o.sem.bits = a->bits;
    o.threads = a->threads;
    o.progress = !a->no_progress && ::isatty(STDERR_FILENO);
    if (!a->region.empty()) o.region = sim::parse_region(a->region);
    auto set = [&](const char* name, double v, double& field) {
      if (cmd->count(name)) field = v;
    };
    set("--sigma-nm", a->sigma, o.sem.sigma_nm);
    set("--current-pa", a->current, o.sem.beam_pA);
    set("--dwell-us", a->dwell, o.sem.dwell_us);
    set("--drift-nm-s", a->drift, o.sem.drift_nm_per_s);
    set("--jitter-nm", a->jitter, o.sem.jitter_nm);
    set("--vibration-nm", a->vibration, o.sem.vibration_nm);
    set("--halo", a->halo, o.sem.halo_weight);
    set("--stage-nm", a->stage, o.stage_sigma_nm);
    set("--rotation-deg", a->rotation, o.rotation_max_deg);
    set("--scale-error", a->scale, o.scale_max);
    set("--overlap", a->overlap, o.overlap);
    set("--dust-per-mm2", a->dust, o.dust_per_mm2);
    set("--scratches-per-mm2", a->scratches, o.scratches_per_mm2);
    set("--missing-tiles", a->missing, o.missing_tile_rate);
    if (cmd->count("--contrast")) o.sem.milled_level = o.sem.film_level - a->contrast;
    if (a->bright_milled) o.sem.milled_level = 2 * o.sem.film_level - o.sem.milled_level;
    const sim::simulate_result r = sim::simulate(a->plate, a->output, o);
    std::fprintf(stderr,
                 "qrplate: %llu tiles (%llu missing) of %u px at %.2f nm/px, %llu dust, %llu scratches destroying %llu code "
                 "cells, %.2f s (%.2f tiles/s, %.1f Mpixel/s) -> %s\n",
                 static_cast<unsigned long long>(r.tiles), static_cast<unsigned long long>(r.missing), o.tile_px, r.pixel_nm,
                 static_cast<unsigned long long>(r.dust), static_cast<unsigned long long>(r.scratches),
                 static_cast<unsigned long long>(r.destroyed_cells), r.seconds, r.seconds > 0 ? static_cast<double>(r.tiles) / r.seconds : 0.0,
                 r.seconds > 0 ? static_cast<double>(r.pixels) / r.seconds / 1e6 : 0.0, a->output.c_str());
  });
}

}  // namespace qrplate::cli
