// Sub-commands of the `qrplate` program. Each lives in its own cmd_<name>.cpp and registers itself
// on the top-level app; its callback throws qrplate exceptions, which main() turns into a
// one-line "qrplate: <reason>" and exit status 1.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "qrplate/error.hpp"

namespace qrplate::cli {

// Thrown by a command that has already said what went wrong (on stdout / stderr) and only needs
// main() to exit with `code`.
struct exit_code_error {
  int code;
};

// Every command's `--threads` bound: more is a typo, and each thread holds its buffers.
inline constexpr unsigned max_threads = 1024;
inline void check_threads(unsigned threads)
{
  if (threads > max_threads)
    throw invalid_argument("--threads " + std::to_string(threads) + " out of range 0.." + std::to_string(max_threads));
}

void add_qr_command(CLI::App& app);      // `qrplate qr`: one payload -> one QR Code image
void add_plan_command(CLI::App& app);    // `qrplate plan`: what a plate holds
void add_encode_command(CLI::App& app);  // `qrplate encode`: bytes -> plate directory
void add_simulate_command(CLI::App& app);  // `qrplate simulate`: plate -> simulated SEM scans
void add_decode_command(CLI::App& app);    // `qrplate decode`: plate, scan set or images -> bytes
void add_bench_command(CLI::App& app);     // `qrplate bench`: encode throughput on this machine
void add_hash_command(CLI::App& app);      // `qrplate hash`: a file's payload digest, or checked against a plate

}  // namespace qrplate::cli
