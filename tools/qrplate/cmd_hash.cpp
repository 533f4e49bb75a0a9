// `qrplate hash`: a file's payload digest as plate.json holds it (SHA-256, or the SHA-256 tree that
// sha256sum cannot compute), or checked against a plate's plate.json: an archive can be held to
// its plate without decoding the plate.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "commands.hpp"
#include "plate/payload_hash.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/manifest.hpp"

namespace qrplate::cli {
namespace {

namespace fs = std::filesystem;

// PLATE_DIR, PLATE_DIR/plate-0001 (a payload over several plates: each holds the same digest) or
// a plate.json itself.
plate::manifest plate_json_of(const std::string& where)
{
  fs::path json = where;
  if (fs::is_directory(json)) {
    if (fs::exists(json / "plate.json")) json /= "plate.json";
    else if (fs::exists(json / "plate-0001" / "plate.json")) json = json / "plate-0001" / "plate.json";
    else throw invalid_argument("--plate: no plate.json in " + where + " (nor in " + where + "/plate-0001)");
  }
  std::ifstream f(json);
  if (!f) throw io_error("cannot read " + json.string());
  return plate::manifest_from_json(std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()));
}

}  // namespace

void add_hash_command(CLI::App& app)
{
  struct hash_args {
    std::string file;
    std::string hash = "sha256";
    std::string plate;
    unsigned threads = 0;
  };
  auto args = std::make_shared<hash_args>();
  CLI::App* cmd = app.add_subcommand(
      "hash", "Print a file's payload digest as plate.json holds it, or check the file against a plate's plate.json");
  cmd->add_option("FILE", args->file, "The file (an archive, or what qrplate decode restored)")->required();
  cmd->add_option("--hash", args->hash,
                  "sha256 (what sha256sum prints) or sha256-tree (4 MiB leaves, docs/FORMAT.md) (default: sha256)");
  cmd->add_option("--plate", args->plate,
                  "PLATE_DIR or its plate.json: check FILE against the digest there, of the kind it names (exit 0 "
                  "when it matches, 1 when not)");
  cmd->add_option("--threads", args->threads, "Threads for the tree's leaves, 0..1024 (default: 0 = every core)");
  cmd->footer(
      "\nExamples:\n"
      "  qrplate hash archive.tar --hash sha256-tree      the root `qrplate encode --hash sha256-tree` writes\n"
      "  qrplate hash archive.tar --plate plates          does archive.tar hold what the plates hold?\n");
  cmd->callback([args, cmd] {
    check_threads(args->threads);
    if (!args->plate.empty() && cmd->count("--hash"))
      throw invalid_argument("--hash and --plate: give one (the plate's plate.json names its kind)");
    plate::payload_hash_kind kind = plate::parse_payload_hash(args->hash);
    std::uint64_t leaf = plate::default_tree_leaf_bytes;
    plate::manifest man;
    if (!args->plate.empty()) {
      man = plate_json_of(args->plate);
      kind = man.payload_hash;
      leaf = man.tree_leaf_bytes;
    }
    std::error_code ec;
    // The tree's leaves are hashed side by side from a file of known size: a pipe cannot be.
    if (args->file == "-" || (fs::exists(args->file, ec) && !fs::is_regular_file(args->file, ec)))
      throw invalid_argument(args->file + ": hash reads a regular file (of known size, its leaves on every thread), "
                                          "not standard input or a pipe: save the stream to a file first");
    const auto size = fs::file_size(args->file, ec);
    if (ec) throw io_error("cannot read " + args->file + ": " + ec.message());
    // A progress line on a terminal: SHA-256 of a terabyte is ~10 minutes of one core.
    std::optional<plate::hash_progress_line> line;
    if (::isatty(STDERR_FILENO)) line.emplace(std::string("hashing ") + args->file, size);
    const plate::digest d =
        plate::hash_file(args->file, kind, leaf, args->threads, size, line ? line->callback() : plate::hash_progress{});
    line.reset();
    const std::string hex = plate::to_hex(d.data(), d.size());
    if (args->plate.empty()) {
      std::printf("%s  %s\n", hex.c_str(), args->file.c_str());  // sha256sum's layout
      return;
    }
    if (size != man.payload_bytes || d != man.payload_digest) {
      std::printf("%s: does NOT match %s (%s %s, %llu bytes; plate.json: %s, %llu bytes)\n", args->file.c_str(),
                  args->plate.c_str(), to_string(kind), hex.c_str(), static_cast<unsigned long long>(size),
                  plate::to_hex(man.payload_digest.data(), 32).c_str(), static_cast<unsigned long long>(man.payload_bytes));
      std::fflush(stdout);
      throw exit_code_error{1};
    }
    std::printf("%s: matches %s (%s %s, %llu bytes)\n", args->file.c_str(), args->plate.c_str(), to_string(kind),
                hex.c_str(), static_cast<unsigned long long>(size));
  });
}

}  // namespace qrplate::cli
