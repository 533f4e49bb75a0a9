#include "plate_options.hpp"

#include <cstdio>

#include "qrplate/plate/outer_code.hpp"
#include "qrplate/qr.hpp"

namespace qrplate::cli {

void add_plate_options(CLI::App& cmd, plate_args& a, const std::string& plate_help)
{
  cmd.add_option("--version", a.version, "QR Code version of the data codes, 1..40 (default: 40)")
      ->check(CLI::Range(1, 40));
  cmd.add_option("--ecc", a.ecc, "Error correction level of the data codes: L, M, Q or H (default: L)");
  cmd.add_option("--plate", a.plate, plate_help);
  cmd.add_option("--module-nm", a.module_nm, "Module pitch in nanometres (default: 49, the TU Wien/Cerabyte record)")
      ->check(CLI::Range(1.0, 1e6));
  cmd.add_option("--quiet", a.quiet, "Light modules between codes, 1..16 (default: 4, the ISO quiet zone; 1-3 warn)")
      ->check(CLI::Range(1, 16));
  cmd.add_option("--outer", a.outer,
                 "Outer erasure code across codes: K+M (K data + M parity frames per group, K+M <= 256) or none "
                 "(default: 239+16, 6.3% parity; smaller payloads get a proportionally smaller group)");
}

plate::geometry_options to_geometry(const plate_args& a, const CLI::App& cmd)
{
  plate::geometry_options g;
  g.version = a.version;
  g.ecc = parse_ecc_level(a.ecc);
  g.module_nm = a.module_nm;
  g.quiet = a.quiet;
  if (!a.plate.empty()) g.plate = plate::parse_plate_size(a.plate);
  const plate::outer_spec outer = plate::parse_outer_spec(a.outer);
  g.k = outer.k;
  g.m = outer.m;
  (void)cmd;
  if (a.quiet < 4)
    std::fprintf(stderr, "qrplate: warning: quiet zone of %d modules is below the 4 that ISO 18004 asks for\n", a.quiet);
  plate::validate(g);
  return g;
}

}  // namespace qrplate::cli
