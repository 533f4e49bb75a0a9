// `qrplate simulate`: plate directory -> scan set directory of simulated SEM tiles.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "commands.hpp"
#include "qrplate/error.hpp"
#include "qrplate/sim/simulate.hpp"

namespace qrplate::cli {

namespace {

// One command-line flag per model parameter: name, unit and meaning, and where it goes.
struct sem_flag {
  const char* name;
  const char* help;
  double sim::sem_params::*field;
};
const sem_flag sem_flags[] = {
    {"--film-level", "Signal of unmilled film, relative SE yield (default 0.55)", &sim::sem_params::film_level},
    {"--milled-level", "Signal floor of milled modules (default 0.20; above film = bright milled)", &sim::sem_params::milled_level},
    {"--edge-gain", "Edge brightening a in a*exp(-d/lambda) inside milled features (default 0.30)", &sim::sem_params::edge_gain},
    {"--edge-lambda-nm", "Decay length lambda of the edge brightening, nm (default 4)", &sim::sem_params::edge_lambda_nm},
    {"--edge-round-nm", "Rounding of the milled walls, nm (default 3)", &sim::sem_params::edge_round_nm},
    {"--grain", "Film texture, relative standard deviation (default 0.02)", &sim::sem_params::grain_amplitude},
    {"--grain-nm", "Correlation length of the texture, nm (default 12)", &sim::sem_params::grain_nm},
    {"--sigma-nm", "Probe sigma, nm", &sim::sem_params::sigma_nm},
    {"--sigma-y-nm", "Probe sigma along the second axis, nm (0 = round probe)", &sim::sem_params::sigma_y_nm},
    {"--astigmatism-deg", "Angle of the probe's first axis, degrees", &sim::sem_params::astigmatism_deg},
    {"--halo", "Fraction of the signal in the broad halo", &sim::sem_params::halo_weight},
    {"--halo-nm", "Halo sigma, nm (default 30)", &sim::sem_params::halo_sigma_nm},
    {"--dwell-us", "Dwell time per pixel, us", &sim::sem_params::dwell_us},
    {"--flyback-us", "Line flyback time, us (default 20)", &sim::sem_params::flyback_us},
    {"--drift-nm-s", "Drift speed, nm/s", &sim::sem_params::drift_nm_per_s},
    {"--drift-deg", "Drift direction, degrees", &sim::sem_params::drift_angle_deg},
    {"--jump-rate", "Drift jumps per second", &sim::sem_params::jump_rate_per_s},
    {"--jump-nm", "Size of a drift jump, nm", &sim::sem_params::jump_nm},
    {"--jitter-nm", "Line jitter sigma along x, nm", &sim::sem_params::jitter_nm},
    {"--vibration-nm", "Vibration amplitude along x, nm", &sim::sem_params::vibration_nm},
    {"--vibration-hz", "Vibration frequency, Hz (default 50)", &sim::sem_params::vibration_hz},
    {"--background-tilt", "Brightness ramp across a tile, relative", &sim::sem_params::background_tilt},
    {"--charging", "Brightening by the end of the scan, relative", &sim::sem_params::charging},
    {"--current-pa", "Beam current, pA", &sim::sem_params::beam_pA},
    {"--yield", "Detected electrons per primary electron at signal 1 (default 1)", &sim::sem_params::yield},
    {"--gain-cv", "Detector gain noise, coefficient of variation", &sim::sem_params::gain_cv},
    {"--lag", "Detector lag along the fast axis, fraction 0..1", &sim::sem_params::lag},
    {"--read-noise-e", "Read noise sigma, electrons", &sim::sem_params::read_noise_e},
    {"--black-level", "Output offset, fraction of full scale (default 0.05)", &sim::sem_params::black_level},
    {"--full-scale-e", "Electrons mapped to full scale (0 = twice the film signal)", &sim::sem_params::full_scale_e},
};

}  // namespace

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
    double stage = -1, rotation = -1, scale = -1, overlap = -1, overscan = -1;
    double dust = -1, scratches = -1, missing = -1, contrast = -1;
    double sem_values[sizeof(sem_flags) / sizeof(sem_flags[0])] = {};
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
  for (std::size_t i = 0; i < sizeof(sem_flags) / sizeof(sem_flags[0]); ++i)
    cmd->add_option(sem_flags[i].name, a->sem_values[i], sem_flags[i].help)->group("Model (defaults: the preset's)");
  cmd->add_option("--stage-nm", a->stage, "Stage position error sigma in nm");
  cmd->add_option("--overscan-nm", a->overscan,
                  "Scan this far past the plate (or region) on every side (default: 3 x the stage error sigma)");
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
    for (std::size_t i = 0; i < sizeof(sem_flags) / sizeof(sem_flags[0]); ++i) set(sem_flags[i].name, a->sem_values[i], o.sem.*sem_flags[i].field);
    set("--stage-nm", a->stage, o.stage_sigma_nm);
    set("--overscan-nm", a->overscan, o.overscan_nm);
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
