// Options shared by `qrplate encode` and `qrplate plan`: code shape, plate geometry, outer code.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "qrplate/plate/geometry.hpp"

namespace qrplate::cli {

struct plate_args {
  int version = 40;
  std::string ecc = "L";
  std::string plate;  // empty: just large enough (encode) / A4 (plan)
  double module_nm = 49.0;
  int quiet = 4;
  std::string outer = "239+16";
  bool outer_given = false;
};

// Adds --version --ecc --plate --module-nm --quiet --outer to `cmd`.
void add_plate_options(CLI::App& cmd, plate_args& a, const std::string& plate_help);

// Parses and validates; prints a warning on stderr for a quiet zone under 4 modules.
plate::geometry_options to_geometry(const plate_args& a, const CLI::App& cmd);

}  // namespace qrplate::cli
