// The `qrplate` command-line program: parses the command line and dispatches to sub-commands.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.hpp"

namespace {

// Set by CMake from project(qrplate VERSION ...).
#ifndef QRPLATE_VERSION
#define QRPLATE_VERSION "unknown"
#endif
constexpr const char* qrplate_version = QRPLATE_VERSION;

// The contract is one line per failure, so a multi-line message is folded onto one.
std::string one_line(std::string text)
{
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  for (char& ch : text) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  return text;
}

}  // namespace

int main(int argc, char** argv)
{
  CLI::App app(
    "qrplate turns bytes into plates of QR codes, for archival storage milled into ceramic or glass,\n"
    "and plates back into bytes. This build offers: `qr` (one payload as one QR Code image), `plan`\n"
    "(what a plate holds), `encode` (bytes into a self-describing plate image), `decode` (a plate\n"
    "image, or SEM scans of it, back into the bytes; also ordinary QR codes in images), `simulate`\n"
    "(realistic SEM scans of a plate), `bench` (encode and decode throughput on this machine) and `hash`\n"
    "(a file's payload digest as plate.json holds it, or the file checked against a plate).",
    "qrplate");
  // Set before any sub-command is added: sub-commands copy it when they are created.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "qrplate: " + one_line(e.what()) + " (run with --help for usage)\n";
  });
  app.set_version_flag("--version", std::string("qrplate ") + qrplate_version, "Print the program version and exit");
  app.require_subcommand(1);

  qrplate::cli::add_qr_command(app);
  qrplate::cli::add_plan_command(app);
  qrplate::cli::add_encode_command(app);
  qrplate::cli::add_simulate_command(app);
  qrplate::cli::add_decode_command(app);
  qrplate::cli::add_bench_command(app);
  qrplate::cli::add_hash_command(app);

  // A first word that is no command (a typo, `verify`): CLI11 would only say that a subcommand is
  // required, so name the word and the commands there are.
  if (argc > 1 && argv[1][0] == '-') {
    const std::string flag = argv[1];
    if (flag != "-h" && flag != "--help" && flag != "--version") {
      std::fprintf(stderr, "qrplate: unknown option '%s' before the command (run with --help for usage)\n", argv[1]);
      return 109;
    }
  } else if (argc > 1) {
    bool known = false;
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->check_name(argv[1]);
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "qrplate: unknown command '%s': the commands are %s (run with --help for usage)\n", argv[1],
                   names.c_str());
      return 109;  // CLI11's exit status for an argument it does not know
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const qrplate::cli::exit_code_error& e) {
    std::fflush(stdout);
    return e.code;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "qrplate: %s\n", one_line(e.what()).c_str());
    return 1;
  }
  return 0;
}
