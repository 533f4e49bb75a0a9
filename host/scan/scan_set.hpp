// A scan set directory (DESIGN.md, "File formats"): scan.json with the pixel size and the nominal
// stage position of every tile, the tile images beside it, and optionally plate.json.
#pragma once

#include <string>
#include <vector>

namespace qrplate::scan {

struct scan_tile {
  std::string file;  // path of the image (resolved against the scan directory)
  double x_nm = 0;   // nominal plate position of the tile's top-left pixel corner
  double y_nm = 0;
};

struct scan_set {
  std::string dir;
  double pixel_nm = 0;
  std::string plate_json;  // scan.json's "plate" entry, resolved; may be empty or not exist
  std::vector<scan_tile> tiles;
};

// True when `dir` holds a scan.json.
bool is_scan_set(const std::string& dir);

// Parses dir/scan.json. Throws qrplate::invalid_argument naming the file and the entry for
// malformed JSON, a missing or non-positive pixel size, tiles without a file name or with
// non-finite positions, duplicate or path-escaping file names; io_error when unreadable.
// Tiles whose image is missing from disk are kept (the reader reports them as missing).
scan_set read_scan_set(const std::string& dir);

}  // namespace qrplate::scan
