// `qrplate bench`: encode throughput on the user's machine, per backend and code shape, from
// synthetic full-capacity payloads held in memory (no disk). Each row: calibrate a batch of about
// 50 ms, warm up once, then time batches of encode() for --seconds and report the median rate.
// `--decode`: the per-code read core on codes drawn in memory (see run_decode_row).
// `--scan`: whole decodes of a scan set simulated for the purpose (see run_scan_row).
#include <signal.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "qrplate/encode.hpp"
#include "qrplate/error.hpp"
#include "qrplate/plate/decode_plate.hpp"
#include "qrplate/plate/geometry.hpp"
#include "qrplate/qr.hpp"
#include "qrplate/spec/versions.hpp"
#include "io/page_cache.hpp"
#include "io/read_only_file.hpp"
#include "scan/synthetic_codes.hpp"
#include "scan/synthetic_scan.hpp"
#include "scan/tile_registration.hpp"
#include "sim/scan_io.hpp"
#include "util/parallel_for.hpp"
#if QRPLATE_WITH_CUDA
#include "cuda/encode_cuda.hpp"
#include "cuda/read_codes_cuda.hpp"
#endif

#ifndef QRPLATE_VERSION
#define QRPLATE_VERSION "unknown"
#endif

namespace qrplate::cli {
namespace {

using clock_type = std::chrono::steady_clock;

constexpr double target_batch_seconds = 0.05;                  // default batch: about this long
constexpr double calibrated_seconds = 0.01;                    // a calibration batch this long predicts well enough
constexpr std::uint64_t auto_batch_memory = 1ull << 30;        // cap on one default batch's working memory
constexpr int min_runs = 3;                                    // so that a median means something
constexpr std::uint64_t payload_seed = 0x71722d62656e6368ull;  // fixed: every run encodes the same bytes

struct bench_args {
  std::string backend = "all";
  std::string shapes = "3-L,10-M,25-Q,40-L";
  std::string mask = "auto";
  unsigned threads = 0;
  double seconds = 1.0;
  std::uint64_t batch = 0;  // 0: calibrated
  bool quick = false;
  bool json = false;
  bool decode = false;
  std::string px = "2,3,4";  // --decode, --scan: pixels per module
  bool scan = false;
  std::uint64_t scan_kb = 100;  // --scan: payload per scan set, kB
  std::string scan_plate;       // --scan: the plate's size, WxH with a unit (empty: just large enough)
  std::uint32_t tile_px = 1024;  // --scan
  std::string strip_px = "8192";  // --scan: qrplate decode --strip-px, comma-separated
  std::string prepare_rows = "0";  // --scan: qrplate decode --prepare-rows, comma-separated
  std::string scratch;          // --scan: where the scan sets go (default: scratch_dir())
  bool from_disk = false;       // --scan: the scan set's files dropped from the page cache before each decode
  bool serial_reads = false;    // --scan: each CUDA row again with qrplate decode's --serial-reads
  bool no_register_ahead = false;  // --scan: qrplate decode's --no-register-ahead, every row
};

struct shape {
  int version;
  ecc_level ecc;
};

struct row_result {
  backend where;
  shape s;
  int mask;
  unsigned threads;  // CPU backend only
  std::uint64_t batch;
  int payload_bytes;  // per code
  int runs;
  double median_batch_s;
  double codes_per_s;  // median of the per-batch rates
  double codes_per_s_min;
  double codes_per_s_max;
  bool device_resident;  // CUDA: payloads and matrices stay in GPU memory
  host_memory memory;    // data host: where payloads and matrices were (pinned: CUDA's DMA reads them)
};

std::string shape_name(const shape& s)
{
  return std::to_string(s.version) + "-" + to_string(s.ecc);
}

std::string_view trim(std::string_view text)
{
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

// "40-L" -> {40, L}; a comma-separated list of them.
std::vector<shape> parse_shapes(std::string_view list)
{
  std::vector<shape> shapes;
  const std::string expected = " (expected VERSION-LEVEL, e.g. 40-L: version 1..40, level L, M, Q or H)";
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    const std::size_t dash = item.find('-');
    if (item.empty() || dash == std::string_view::npos) {
      throw invalid_argument("shape '" + std::string(item) + "' is not a code shape" + expected);
    }
    int version = 0;
    const std::string_view v = item.substr(0, dash);
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), version);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size()) {
      throw invalid_argument("shape '" + std::string(item) + "': version '" + std::string(v) + "' is not a number" +
                             expected);
    }
    if (!spec::valid_version(version)) {
      throw invalid_argument("shape '" + std::string(item) + "': version " + std::to_string(version) +
                             " out of range 1..40");
    }
    const std::string_view level = item.substr(dash + 1);
    if (level.size() != 1 || std::string_view("LMQHlmqh").find(level[0]) == std::string_view::npos) {
      throw invalid_argument("shape '" + std::string(item) + "': level '" + std::string(level) +
                             "' is not L, M, Q or H");
    }
    shapes.push_back({version, parse_ecc_level(level)});
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return shapes;
}

int parse_mask(const std::string& text)
{
  if (text == "auto") return -1;
  if (text.size() == 1 && text[0] >= '0' && text[0] <= '7') return text[0] - '0';
  throw invalid_argument("mask '" + text + "' is not auto or a number 0..7");
}

std::string mask_name(int mask)
{
  return mask < 0 ? std::string("auto") : std::to_string(mask);
}

// A requested CUDA backend that cannot run is an error, with the library's own reason (no CUDA
// in this build, or no device): encode() of an empty batch says which.
void require_cuda()
{
  if (cuda_backend_available()) return;
  batch_encode_options o;
  o.where = backend::cuda;
  const std::uint64_t offsets[1] = {0};
  symbol_batch out;
  encode({nullptr, offsets, 0}, o, out);
  throw backend_unavailable("backend cuda: not available on this machine");
}

std::vector<backend> parse_backends(const std::string& text)
{
  if (text == "all") {
    std::vector<backend> list{backend::cpu};
    if (cuda_backend_available()) list.push_back(backend::cuda);
    return list;
  }
  if (text != "auto" && text != "cpu" && text != "cuda") {
    throw invalid_argument("unknown backend '" + text + "' (expected all, auto, cpu or cuda)");
  }
  const backend b = resolve_backend(parse_backend(text));
  if (b == backend::cuda) require_cuda();
  return {b};
}

unsigned resolved_threads(unsigned requested)
{
  return requested ? requested : std::max(1u, std::thread::hardware_concurrency());
}

// Working memory of one code in a batch: payload, its offset, the matrix, mask and status.
std::uint64_t bytes_per_code(const shape& s)
{
  const int size = spec::symbol_size(s.version);
  return static_cast<std::uint64_t>(max_byte_payload(s.version, s.ecc)) + sizeof(std::uint64_t) +
         words_per_symbol(size) * sizeof(std::uint64_t) + 2;
}

double physical_memory_bytes()
{
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

// Full-capacity random payloads for one shape; grows on demand. The generator restarts from the
// same seed, so the first n codes are the same whatever the final size.
class payload_pool {
 public:
  payload_pool(int payload_bytes, host_memory memory)
      : payload_bytes_(static_cast<std::uint64_t>(payload_bytes)), bytes_(memory)
  {
  }

  payload_batch_view view(std::uint64_t count)
  {
    if (offsets_.empty() || count + 1 > offsets_.size()) fill(count);
    return {bytes_.data(), offsets_.data(), count};
  }

 private:
  void fill(std::uint64_t count)
  {
    std::mt19937_64 rng(payload_seed);
    bytes_.resize(count * payload_bytes_);
    std::size_t i = 0;
    for (; i + 8 <= bytes_.size(); i += 8) {
      std::uint64_t word = rng();
      for (int b = 0; b < 8; ++b, word >>= 8) bytes_[i + b] = static_cast<std::uint8_t>(word);
    }
    for (std::uint64_t word = rng(); i < bytes_.size(); ++i, word >>= 8) bytes_[i] = static_cast<std::uint8_t>(word);
    offsets_.resize(count + 1);
    for (std::uint64_t k = 0; k <= count; ++k) offsets_[k] = k * payload_bytes_;
  }

  std::uint64_t payload_bytes_;
  host_array<std::uint8_t> bytes_;
  std::vector<std::uint64_t> offsets_;
};

// Progress goes to stderr, and only on a terminal: redirected output stays clean.
class progress_line {
 public:
  progress_line() : on_(::isatty(STDERR_FILENO) != 0) {}
  ~progress_line() { clear(); }
  void show(const std::string& text)
  {
    if (!on_) return;
    std::fprintf(stderr, "\r\033[Kqrplate bench: %s", text.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void clear()
  {
    if (!shown_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    shown_ = false;
  }

 private:
  bool on_;
  bool shown_ = false;
};

double median_of(std::vector<double> values)
{
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// Runs `once` (which returns the seconds it took) at least min_runs times and until `seconds`
// have passed, showing the count every 8 runs; the seconds of each run.
template <typename Once>
std::vector<double> timed_runs(Once once, double seconds, progress_line& progress, const std::string& what)
{
  std::vector<double> times;
  const auto start = clock_type::now();
  auto elapsed = [&] { return std::chrono::duration<double>(clock_type::now() - start).count(); };
  while (static_cast<int>(times.size()) < min_runs || elapsed() < seconds) {
    times.push_back(once());
    if (times.size() % 8 == 1) progress.show(what + std::to_string(times.size()));
  }
  return times;
}

// items / seconds for every run.
std::vector<double> rates_of(const std::vector<double>& times, double items)
{
  std::vector<double> rates;
  rates.reserve(times.size());
  for (double t : times) rates.push_back(items / std::max(t, 1e-12));
  return rates;
}

row_result run_row(backend where, const shape& s, const bench_args& args, int mask, double seconds,
                   progress_line& progress, const std::string& label, bool device_resident)
{
  batch_encode_options o;
  o.version = s.version;
  o.ecc = s.ecc;
  o.mask = mask;
  o.where = where;
  o.threads = args.threads;
  const unsigned threads = resolved_threads(args.threads);
  const int payload_bytes = max_byte_payload(s.version, s.ecc);
  // Pinned for the CUDA backend, as `qrplate encode` keeps its frames and matrices: DMA, no staging.
  const host_memory memory = where == backend::cuda ? host_memory::pinned : host_memory::pageable;
  payload_pool pool(payload_bytes, memory);
  symbol_batch out(memory);

#if QRPLATE_WITH_CUDA
  std::unique_ptr<host::resident_encode> resident;  // the batch in GPU memory, for device rows
  std::uint64_t resident_n = 0;
#endif
  auto timed_encode = [&](std::uint64_t n) {
    const payload_batch_view v = pool.view(n);
#if QRPLATE_WITH_CUDA
    if (device_resident) {
      if (resident_n != n) {
        resident.reset();
        resident = std::make_unique<host::resident_encode>(v, o);
        resident_n = n;
      }
      return resident->run();
    }
#endif
    const auto t0 = clock_type::now();
    encode(v, o, out);
    return std::chrono::duration<double>(clock_type::now() - t0).count();
  };

  // Batch size: as given, or grown from a small batch until one takes long enough to predict
  // the size of a ~50 ms batch. The calibration batches also warm caches, threads and devices.
  std::uint64_t batch = args.batch;
  if (batch == 0) {
    progress.show(label + ": calibrating");
    // Enough chunks for every CPU thread to take several; a GPU needs far more to fill up.
    const std::uint64_t min_batch = where == backend::cpu ? 64ull * threads : 1024;
    const std::uint64_t max_batch = std::max(min_batch, auto_batch_memory / bytes_per_code(s));
    std::uint64_t n = min_batch;
    double t = timed_encode(n);
    while (t < calibrated_seconds && n < max_batch) {
      const double grow = std::clamp(target_batch_seconds / std::max(t, 1e-6), 2.0, 64.0);
      n = std::min(max_batch, static_cast<std::uint64_t>(static_cast<double>(n) * grow));
      t = timed_encode(n);
    }
    const double ideal = static_cast<double>(n) * target_batch_seconds / std::max(t, 1e-9);
    batch = std::clamp(static_cast<std::uint64_t>(ideal), min_batch, max_batch);
  }

  progress.show(label + ": warming up, batch " + std::to_string(batch));
  timed_encode(batch);
  std::uint64_t failed = 0;
#if QRPLATE_WITH_CUDA
  if (device_resident) failed = resident->failed();
#endif
  if (!device_resident)
    for (std::uint64_t i = 0; i < batch; ++i) failed += out.status()[i] != encode_status::ok;
  if (failed) {
    throw std::logic_error("bench: " + std::to_string(failed) + " of " + std::to_string(batch) + " payloads of " +
                           std::to_string(payload_bytes) + " bytes did not fit version " + shape_name(s) +
                           " (a bug in qrplate)");
  }

  const std::vector<double> times =
      timed_runs([&] { return timed_encode(batch); }, seconds, progress, label + ": timing, batch ");
  const std::vector<double> rates = rates_of(times, static_cast<double>(batch));
  row_result r{};
  r.where = where;
  r.s = s;
  r.mask = mask;
  r.threads = threads;
  r.batch = batch;
  r.payload_bytes = payload_bytes;
  r.runs = static_cast<int>(times.size());
  r.median_batch_s = median_of(times);
  r.codes_per_s = median_of(rates);
  r.codes_per_s_min = *std::min_element(rates.begin(), rates.end());
  r.codes_per_s_max = *std::max_element(rates.begin(), rates.end());
  r.device_resident = device_resident;
  r.memory = out.memory();
  return r;
}

// ---------------------------------------------------------------------------------------------
// The machine, so that a pasted table says where it was measured.

std::string cpu_model()
{
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  // x86 says "model name"; some ARM kernels say "Model" or "Hardware" instead.
  for (const char* key : {"model name", "Model", "Hardware"}) {
    in.clear();
    in.seekg(0);
    while (std::getline(in, line)) {
      if (line.rfind(key, 0) != 0) continue;
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      const std::string_view value = trim(std::string_view(line).substr(colon + 1));
      if (!value.empty()) return std::string(value);
    }
  }
  return "unknown CPU";
}

std::string architecture()
{
  utsname u{};
  return ::uname(&u) == 0 ? std::string(u.machine) : std::string("unknown");
}

std::string utc_now()
{
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Output.

std::string with_commas(double value)
{
  std::string digits = std::to_string(static_cast<unsigned long long>(value + 0.5));
  for (int at = static_cast<int>(digits.size()) - 3; at > 0; at -= 3) digits.insert(static_cast<std::size_t>(at), ",");
  return digits;
}

// MB below 1 GB, GB above: payload rates read at a glance.
std::string human_bytes(double bytes)
{
  char text[32];
  if (bytes >= 1e9) {
    std::snprintf(text, sizeof text, "%.2f GB", bytes / 1e9);
  } else {
    std::snprintf(text, sizeof text, "%.1f MB", bytes / 1e6);
  }
  return text;
}

// "; GPU: <name, sm, SMs, memory, driver, runtime>" where a CUDA device was found, for the
// header line of every table (the figures' label).
std::string gpu_note(const nlohmann::ordered_json& machine)
{
  return machine.contains("gpu") && machine["gpu"].is_string() ? "; GPU: " + machine["gpu"].get<std::string>() : "";
}

void print_table_header(const nlohmann::ordered_json& machine, double seconds)
{
  std::printf("qrplate %s bench, %s: %s (%s, %u logical cores%s), %.3g s per row\n",
              machine["qrplate"].get<std::string>().c_str(), machine["date"].get<std::string>().c_str(),
              machine["cpu"].get<std::string>().c_str(), machine["arch"].get<std::string>().c_str(),
              machine["logical_cores"].get<unsigned>(), gpu_note(machine).c_str(), seconds);
  std::printf("%-7s  %-5s  %-4s  %7s  %-6s  %9s  %5s  %13s  %-29s  %s\n", "backend", "shape", "mask", "threads", "data",
              "batch", "runs", "codes/s", "(min .. max)", "payload");
  std::fflush(stdout);
}

void print_table_row(const row_result& r)
{
  const std::string threads = r.where == backend::cpu ? std::to_string(r.threads) : std::string("-");
  const std::string range = "(" + with_commas(r.codes_per_s_min) + " .. " + with_commas(r.codes_per_s_max) + ")";
  std::printf("%-7s  %-5s  %-4s  %7s  %-6s  %9llu  %5d  %13s  %-29s  %s\n", to_string(r.where),
              shape_name(r.s).c_str(), mask_name(r.mask).c_str(), threads.c_str(), r.device_resident ? "device" : "host",
              static_cast<unsigned long long>(r.batch), r.runs,
              with_commas(r.codes_per_s).c_str(), range.c_str(),
              (human_bytes(r.codes_per_s * r.payload_bytes) + "/s").c_str());
  std::fflush(stdout);
}

nlohmann::ordered_json row_json(const row_result& r)
{
  nlohmann::ordered_json j;
  j["backend"] = to_string(r.where);
  j["version"] = r.s.version;
  j["ecc"] = to_string(r.s.ecc);
  j["mask"] = r.mask < 0 ? nlohmann::ordered_json("auto") : nlohmann::ordered_json(r.mask);
  j["threads"] = r.where == backend::cpu ? nlohmann::ordered_json(r.threads) : nlohmann::ordered_json(nullptr);
  j["data"] = r.device_resident ? "device" : "host";
  j["host_memory"] = r.device_resident ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(to_string(r.memory));
  j["batch"] = r.batch;
  j["payload_bytes_per_code"] = r.payload_bytes;
  j["codes_per_s"] = r.codes_per_s;
  j["codes_per_s_min"] = r.codes_per_s_min;
  j["codes_per_s_max"] = r.codes_per_s_max;
  j["payload_bytes_per_s"] = r.codes_per_s * r.payload_bytes;
  j["median_batch_s"] = r.median_batch_s;
  j["runs"] = r.runs;
  return j;
}

// --decode: the per-code read core (core/read_code.hpp: sampling every module, the threshold
// plane, Reed-Solomon with erasures, the segment parser) on codes drawn in memory at a known
// pose. The maps are given, so this is the part of `qrplate decode` after registration and the
// per-code anchor search, and what the CUDA read kernel runs.
struct decode_row {
  backend where;
  shape s;
  double px;
  unsigned threads;
  std::uint64_t codes;  // per pass
  int runs;
  double codes_per_s, codes_per_s_min, codes_per_s_max;
  double pixels_per_code;
  double passes_pixels_per_s;  // registration's passes over every pixel (scan::tile_passes), one tile
  double kernel_codes_per_s;   // CUDA: the read kernel alone, image and maps in GPU memory (0 on the CPU)
};

// "2,3,4" -> numbers, each in [lo, hi] (option names the list in the error).
std::vector<double> parse_number_list(std::string_view list, const char* option, double lo, double hi)
{
  std::vector<double> out;
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string item(trim(list.substr(0, comma)));
    double v = 0;
    std::size_t used = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || !(v >= lo && v <= hi)) {
      char range[64];
      std::snprintf(range, sizeof range, "%.15g to %.15g", lo, hi);
      throw invalid_argument(std::string(option) + ": '" + item + "' is not a number from " + range);
    }
    out.push_back(v);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

std::vector<double> parse_px_list(std::string_view list)
{
  return parse_number_list(list, "--px-per-module", 1.5, 16);
}

// --strip-px: "8192,32768" -> column strip widths in scan pixels (qrplate decode's range).
std::vector<double> parse_strip_list(std::string_view list)
{
  return parse_number_list(list, "--strip-px", plate::min_strip_px, plate::max_strip_px);
}

// --prepare-rows: "0,1" -> qrplate decode --prepare-rows values (0: automatic).
std::vector<int> parse_prepare_rows_list(std::string_view list)
{
  std::vector<int> out;
  for (double v : parse_number_list(list, "--prepare-rows", 0, 64)) {
    if (v != static_cast<int>(v)) throw invalid_argument("--prepare-rows takes whole numbers 0..64");
    out.push_back(static_cast<int>(v));
  }
  return out;
}

decode_row run_decode_row(backend where, const shape& s, double px, const bench_args& args, double seconds,
                          progress_line& progress, const std::string& label)
{
  progress.show(label + ": drawing the codes");
  const int side = s.version >= 25 ? 4 : 8;
  const scan::synthetic_codes sc = scan::make_synthetic_codes(s.version, s.ecc, px, side, side, 0.5, 2500, payload_seed);
  const std::size_t count = sc.maps.size();
  const unsigned threads = where == backend::cpu ? resolved_threads(args.threads) : 1;
  std::vector<core::code_outcome> outcomes(count);
  std::vector<std::uint8_t> bytes(count * spec::max_data_codewords);
  std::vector<std::unique_ptr<core::read_code_workspace>> workspaces;
  for (unsigned t = 0; t < threads; ++t) workspaces.push_back(std::make_unique<core::read_code_workspace>());
  auto read_all = [&] {
    const auto t0 = clock_type::now();
    if (where == backend::cpu) {
      host::parallel_for(threads, count, [&](unsigned t, std::size_t i) {
        outcomes[i] = core::read_code(*sc.plan, sc.view(), sc.maps[i], sc.module_px, 64,
                                      bytes.data() + i * spec::max_data_codewords, *workspaces[t]);
      });
    } else {
#if QRPLATE_WITH_CUDA
      host::read_codes_cuda(*sc.plan, sc.view(), sc.maps.data(), count, sc.module_px, 64, outcomes.data(), bytes.data());
#else
      require_cuda();
#endif
    }
    return std::chrono::duration<double>(clock_type::now() - t0).count();
  };
  progress.show(label + ": warming up");
  read_all();
  std::uint64_t wrong = 0;
  for (std::size_t i = 0; i < count; ++i)
    wrong += !core::decoded(outcomes[i].result) ||
             outcomes[i].result.data_length != static_cast<int>(sc.payloads[i].size()) ||
             !std::equal(sc.payloads[i].begin(), sc.payloads[i].end(), bytes.begin() + static_cast<long>(i * spec::max_data_codewords));
  if (wrong) {
    throw std::logic_error("bench: the read core got " + std::to_string(wrong) + " of " + std::to_string(count) +
                           " synthetic version " + shape_name(s) + " codes at " + std::to_string(px) +
                           " px/module wrong (a bug in qrplate)");
  }
  const std::vector<double> times = timed_runs(read_all, seconds, progress, label + ": timing, pass ");
  const std::vector<double> rates = rates_of(times, static_cast<double>(count));

  // Registration's passes over every pixel (integral image, contrast, finder scan) on the same
  // image as one tile: one thread on the CPU; on the GPU, host memory to host memory.
  progress.show(label + ": the tile passes");
  scan::posed_tile tile;
  tile.image.width = static_cast<std::uint32_t>(sc.width);
  tile.image.height = static_cast<std::uint32_t>(sc.height);
  tile.image.bits = 16;
  tile.image.pixels = sc.pixels;
  tile.module_px = sc.module_px;
  scan::registration_options ro;
  ro.cuda = where == backend::cuda;
  std::vector<scan::finder_detection> dets[2];
  auto passes = [&] {
    const auto t0 = clock_type::now();
    if (!scan::tile_passes(tile, ro, dets) || dets[0].empty())
      throw std::logic_error("bench: registration's passes found no finder in the synthetic codes (a bug in qrplate)");
    return std::chrono::duration<double>(clock_type::now() - t0).count();
  };
  passes();
  const std::vector<double> pass_rates = rates_of(
      timed_runs(passes, seconds / 4, progress, label + ": the tile passes, pass "), static_cast<double>(sc.pixel_count()));

  // CUDA: the read kernel alone on the same codes, image and maps already in GPU memory.
  double kernel_rate = 0;
#if QRPLATE_WITH_CUDA
  if (where == backend::cuda) {
    progress.show(label + ": the read kernel on device memory");
    host::resident_read reader(*sc.plan, sc.view(), sc.maps.data(), count, sc.module_px, 64);
    reader.run(host::scan_read_kernel);
    if (reader.decoded() != count)
      throw std::logic_error("bench: the read kernel did not read every synthetic code (a bug in qrplate)");
    kernel_rate = median_of(rates_of(timed_runs([&] { return reader.run(host::scan_read_kernel); },
                                                seconds / 4, progress, label + ": the read kernel, pass "),
                                     static_cast<double>(count)));
  }
#endif

  decode_row r{};
  r.where = where;
  r.s = s;
  r.px = px;
  r.threads = threads;
  r.codes = count;
  r.runs = static_cast<int>(times.size());
  r.codes_per_s = median_of(rates);
  r.codes_per_s_min = *std::min_element(rates.begin(), rates.end());
  r.codes_per_s_max = *std::max_element(rates.begin(), rates.end());
  r.pixels_per_code = static_cast<double>(sc.pixel_count()) / static_cast<double>(count);
  r.passes_pixels_per_s = median_of(pass_rates);
  r.kernel_codes_per_s = kernel_rate;
  return r;
}

void print_decode_header(const nlohmann::ordered_json& machine, double seconds)
{
  std::printf("qrplate %s bench --decode (read core, maps given), %s: %s (%s, %u logical cores%s), %.3g s per row\n",
              machine["qrplate"].get<std::string>().c_str(), machine["date"].get<std::string>().c_str(),
              machine["cpu"].get<std::string>().c_str(), machine["arch"].get<std::string>().c_str(),
              machine["logical_cores"].get<unsigned>(), gpu_note(machine).c_str(), seconds);
  std::printf("%-7s  %-5s  %9s  %7s  %6s  %5s  %11s  %-25s  %13s  %20s  %s\n", "backend", "shape", "px/module",
              "threads", "codes", "runs", "codes/s", "(min .. max)", "scan Mpixel/s", "tile passes Mpixel/s",
              "kernel codes/s");
  std::fflush(stdout);
}

void print_decode_row(const decode_row& r)
{
  const std::string threads = r.where == backend::cpu ? std::to_string(r.threads) : std::string("-");
  const std::string range = "(" + with_commas(r.codes_per_s_min) + " .. " + with_commas(r.codes_per_s_max) + ")";
  const std::string kernel = r.where == backend::cuda ? with_commas(r.kernel_codes_per_s) : std::string("-");
  std::printf("%-7s  %-5s  %9.2g  %7s  %6llu  %5d  %11s  %-25s  %13.1f  %20.1f  %s\n", to_string(r.where),
              shape_name(r.s).c_str(), r.px, threads.c_str(), static_cast<unsigned long long>(r.codes), r.runs,
              with_commas(r.codes_per_s).c_str(), range.c_str(), r.codes_per_s * r.pixels_per_code / 1e6,
              r.passes_pixels_per_s / 1e6, kernel.c_str());
  std::fflush(stdout);
}

// The fields that say which row a decode or scan row is.
nlohmann::ordered_json read_row_key(backend where, const shape& s, double px)
{
  nlohmann::ordered_json j;
  j["backend"] = to_string(where);
  j["version"] = s.version;
  j["ecc"] = to_string(s.ecc);
  j["px_per_module"] = px;
  return j;
}

nlohmann::ordered_json decode_row_json(const decode_row& r)
{
  nlohmann::ordered_json j = read_row_key(r.where, r.s, r.px);
  j["threads"] = r.where == backend::cpu ? nlohmann::ordered_json(r.threads) : nlohmann::ordered_json(nullptr);
  j["codes_per_pass"] = r.codes;
  j["codes_per_s"] = r.codes_per_s;
  j["codes_per_s_min"] = r.codes_per_s_min;
  j["codes_per_s_max"] = r.codes_per_s_max;
  j["scan_pixels_per_s"] = r.codes_per_s * r.pixels_per_code;
  j["tile_passes_pixels_per_s"] = r.passes_pixels_per_s;
  j["kernel_codes_per_s"] = r.where == backend::cuda ? nlohmann::ordered_json(r.kernel_codes_per_s)
                                                      : nlohmann::ordered_json(nullptr);
  j["runs"] = r.runs;
  return j;
}

nlohmann::ordered_json machine_json()
{
  nlohmann::ordered_json machine;
  machine["cpu"] = cpu_model();
  machine["arch"] = architecture();
  machine["logical_cores"] = std::max(1u, std::thread::hardware_concurrency());
  machine["date"] = utc_now();
  machine["qrplate"] = QRPLATE_VERSION;
  machine["cuda_available"] = cuda_backend_available();
  // The device every CUDA row was measured on (name, sm, SMs, memory, driver and runtime).
  machine["gpu"] = cuda_backend_available() ? nlohmann::ordered_json(cuda_device_description())
                                            : nlohmann::ordered_json(nullptr);
  return machine;
}

void run_decode_bench(const bench_args& args, const CLI::App& cmd)
{
  if (cmd.count("--mask") || cmd.count("--batch")) throw invalid_argument("--mask and --batch are for encode rows, not --decode");
  const double seconds = args.quick && cmd.count("--seconds") == 0 ? 0.2 : args.seconds;
  if (!(seconds > 0 && seconds <= 3600)) throw invalid_argument("--seconds must be more than 0 and at most 3600");
  check_threads(args.threads);
  const std::vector<shape> shapes =
      parse_shapes(cmd.count("--shapes") ? args.shapes : std::string(args.quick ? "10-M" : "10-M,40-L"));
  const std::vector<double> pxs = parse_px_list(cmd.count("--px-per-module") || !args.quick ? args.px : std::string("3"));
  const std::vector<backend> backends = parse_backends(args.backend);
  const nlohmann::ordered_json machine = machine_json();
  if (!args.json) print_decode_header(machine, seconds);
  progress_line progress;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  const std::size_t total = backends.size() * shapes.size() * pxs.size();
  std::size_t done = 0;
  for (backend where : backends)
    for (const shape& s : shapes)
      for (double px : pxs) {
        char px_text[16];
        std::snprintf(px_text, sizeof px_text, "%g", px);
        const std::string label = std::string(to_string(where)) + " " + shape_name(s) + " at " + px_text + " px (" +
                                  std::to_string(++done) + "/" + std::to_string(total) + ")";
        const decode_row r = run_decode_row(where, s, px, args, seconds, progress, label);
        progress.clear();
        if (args.json) {
          rows.push_back(decode_row_json(r));
        } else {
          print_decode_row(r);
        }
      }
  if (args.json) {
    nlohmann::ordered_json j;
    j["machine"] = machine;
    j["seconds_per_row"] = seconds;
    j["decode_results"] = rows;
    std::printf("%s\n", j.dump(2).c_str());
  }
}

// ---------------------------------------------------------------------------------------------
// --scan: `qrplate decode` of a whole scan set, every stage (reading the tile files,
// registration, each code's anchor search and read, frames, the outer code, the SHA-256), on a
// plate encoded and scanned by the simulator for the measurement (scan::make_synthetic_scan:
// clean preset, 8-bit uncompressed TIFF tiles) in a scratch directory removed afterwards.

namespace fs = std::filesystem;

// Where the scan sets go: --scratch, else /dev/shm (memory, so the rows are decodes from host
// memory, no disk) when it is writable and has room, else the system's temporary directory.
struct scratch_place {
  fs::path dir;
  bool memory = false;  // tmpfs (/dev/shm): the files are in memory and stay there
};

// tmpfs keeps its files in memory: a page cache with no device behind it (statfs's magic number).
bool in_memory_file_system(const fs::path& dir)
{
  constexpr long tmpfs_magic = 0x01021994;
  struct statfs s{};
  return ::statfs(dir.c_str(), &s) == 0 && static_cast<long>(s.f_type) == tmpfs_magic;
}

std::uint64_t free_bytes_at(const fs::path& dir)
{
  struct statvfs v{};
  if (::statvfs(dir.c_str(), &v) != 0) return 0;
  return static_cast<std::uint64_t>(v.f_bavail) * static_cast<std::uint64_t>(v.f_frsize);
}

// --from-disk wants a directory on a device: the system's temporary directory by default, and
// never one in memory (its files cannot leave the page cache, so nothing would come from a disk).
scratch_place scratch_dir(const std::string& given, bool from_disk)
{
  scratch_place place;
  if (!given.empty()) {
    std::error_code ec;
    if (!fs::is_directory(given, ec)) throw invalid_argument("--scratch: '" + given + "' is not a directory");
    place.dir = fs::path(given);
  } else {
    const fs::path shm("/dev/shm");
    std::error_code ec;
    if (!from_disk && fs::is_directory(shm, ec) && ::access(shm.c_str(), W_OK) == 0 &&
        free_bytes_at(shm) >= (std::uint64_t{1} << 30)) {
      place.dir = shm;
    } else {
      place.dir = fs::temp_directory_path(ec);
      if (ec) throw io_error("no temporary directory: " + ec.message() + " (give one with --scratch)");
    }
  }
  place.memory = in_memory_file_system(place.dir);
  if (from_disk && place.memory)
    throw invalid_argument("--from-disk: " + place.dir.string() +
                           " is in memory (tmpfs), so no decode would read from a disk: give --scratch DIR on a disk");
  return place;
}

// --from-disk: every file of the scan set written back and dropped from the page cache, so that
// the next decode reads it from the device. Returns what is still cached afterwards, as a
// fraction of the files' bytes (a file system may keep pages, or another process may map them).
double drop_scan_from_page_cache(const fs::path& scan_dir)
{
  std::uint64_t bytes = 0, cached = 0;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(scan_dir)) {
    if (!e.is_regular_file()) continue;
    host::drop_from_page_cache(e.path().string());
    bytes += e.file_size();
    cached += host::cached_bytes(e.path().string());
  }
  return bytes ? static_cast<double>(cached) / static_cast<double>(bytes) : 0.0;
}

constexpr std::string_view scratch_prefix = "qrplate_bench_scan_";

// Removes the scratch directories of earlier runs that were interrupted (Ctrl-C, a kill) before
// they could remove their own, so that /dev/shm does not keep them until a reboot: those named
// for a process that no longer exists.
void remove_stale_scratch(const fs::path& under)
{
  std::error_code ec;
  for (fs::directory_iterator it(under, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(scratch_prefix, 0) != 0) continue;
    const std::string digits = name.substr(scratch_prefix.size());
    long long pid = 0;
    const auto [at, err] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
    if (digits.empty() || err != std::errc() || at != digits.data() + digits.size() || pid <= 0) continue;
    if (pid == ::getpid() || pid > std::numeric_limits<pid_t>::max()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to ask)
    std::error_code ignored;
    fs::remove_all(it->path(), ignored);
  }
}

// A directory of its own under the scratch place, removed with everything in it when done (also
// when a row throws).
class scratch_root {
 public:
  explicit scratch_root(const fs::path& under)
      : path_(under / (std::string(scratch_prefix) + std::to_string(::getpid())))
  {
    remove_stale_scratch(under);
    std::error_code ec;
    fs::remove_all(path_, ec);
    fs::create_directories(path_, ec);
    if (ec) throw io_error("cannot create " + path_.string() + ": " + ec.message() + " (give another with --scratch)");
  }
  ~scratch_root()
  {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  scratch_root(const scratch_root&) = delete;
  scratch_root& operator=(const scratch_root&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct scan_row {
  backend where;
  shape s;
  double px;
  std::uint32_t tile_px;
  double strip_px;  // the decode's column strips (plate_decode_options::strip_px)
  int prepare_rows;  // asked of the decode (plate_decode_options::prepare_rows; 0: automatic)
  std::uint32_t rows_per_prepare;  // what the decode used
  bool serial_reads;  // cuda: every batch of code reads waited for (plate_decode_options::overlap_reads = 0)
  bool register_ahead;  // plate_decode_options::register_ahead
  std::uint64_t tile_reads, tiles_registered_ahead;  // the median run's
  std::uint64_t tile_reads_pose_kept;                // of tile_reads, tiles read again with their kept pose
  unsigned threads;
  std::uint64_t tiles, scan_pixels, scan_file_bytes, codes, payload_bytes;
  double plate_width_um, plate_height_um;  // the plate encoded
  std::uint32_t code_columns;              // of its grid (a strip holds strip_px / pixels a code pitch)
  int runs;
  double seconds, seconds_min, seconds_max;  // whole decodes: median, fastest, slowest
  double files_pixels_per_s;                 // reading and decoding the tile files alone, every thread
  bool from_disk;                            // the files were dropped from the page cache before each decode
  double cached_at_start;                    // --from-disk: the most of the files' bytes a decode found cached
  double disk_bytes_per_s;                   // --from-disk: the tile files' bytes read cold, every thread
  // The median run's split (plate_decode_result's stages), and of its batches' seconds those
  // spent waiting for the reads ahead left to the GPU.
  double seconds_tiles, seconds_code_batches, seconds_cells, seconds_frames, seconds_rest, seconds_waiting_for_background;
  double seconds_finishing_units;  // of the frames' work, all of it (most beside the next unit's reads)
  double seconds_loading_tiles, seconds_placing_tiles;  // of seconds_tiles
};

std::string read_file_bytes(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("bench: cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Reading every tile file into memory (sim::read_gray_image, as the decoder's readers do) on
// `threads` threads: the part of a decode the files alone cost, in scan pixels per second. Cold
// (--from-disk): the files dropped from the page cache before each pass, as before each decode.
double files_rate(const scan::synthetic_scan& scan, unsigned threads, double seconds, bool cold,
                  progress_line& progress, const std::string& label)
{
  auto once = [&] {
    if (cold) drop_scan_from_page_cache(scan.scan_dir);
    const auto t0 = clock_type::now();
    host::parallel_for(threads, scan.tile_files.size(), [&](unsigned, std::size_t i) {
      const sim::gray_image img = sim::read_gray_image(scan.tile_files[i]);
      if (img.pixels.empty()) throw std::logic_error("bench: an empty tile");
    });
    return std::chrono::duration<double>(clock_type::now() - t0).count();
  };
  once();
  return median_of(rates_of(timed_runs(once, seconds, progress, label + ": reading the files, pass "),
                            static_cast<double>(scan.scan_pixels)));
}

// --from-disk: the device's read rate as the decoder meets it, every tile file read whole with
// plain read() calls, cold, on the same threads (the decoder reads tiles on as many threads):
// the tile files' bytes per second, the limit a decode from this disk has.
double disk_rate(const scan::synthetic_scan& scan, unsigned threads, double seconds, progress_line& progress,
                 const std::string& label)
{
  std::vector<std::vector<char>> buffers(std::max(threads, 1u), std::vector<char>(std::size_t{1} << 20));
  auto once = [&] {
    drop_scan_from_page_cache(scan.scan_dir);
    const auto t0 = clock_type::now();
    host::parallel_for(threads, scan.tile_files.size(), [&](unsigned thread, std::size_t i) {
      const host::read_only_file f(scan.tile_files[i]);
      std::vector<char>& buffer = buffers[thread];
      ssize_t got = 0;
      while ((got = ::read(f.fd(), buffer.data(), buffer.size())) > 0) {
      }
      if (got < 0) throw io_error("bench: cannot read " + scan.tile_files[i] + ": " + std::strerror(errno));
    });
    return std::chrono::duration<double>(clock_type::now() - t0).count();
  };
  return median_of(rates_of(timed_runs(once, seconds, progress, label + ": reading the disk, pass "),
                            static_cast<double>(scan.scan_file_bytes)));
}

scan_row run_scan_row(backend where, const shape& s, double px, double strip_px, int prepare_rows, bool serial_reads,
                      const scan::synthetic_scan& scan, double files_pixels_per_s, double disk_bytes_per_s, const bench_args& args, double seconds, const fs::path& out_dir,
                      progress_line& progress, const std::string& label)
{
  plate::plate_decode_options o;
  o.threads = args.threads;
  o.progress = false;
  o.backend = where;
  o.strip_px = strip_px;
  o.prepare_rows = prepare_rows;
  if (serial_reads) o.overlap_reads = 0;
  o.register_ahead = !args.no_register_ahead;
  const std::string out_file = (out_dir / ("restored." + std::string(to_string(where)))).string();
  const std::string payload = read_file_bytes(scan.payload_file);
  std::vector<plate::plate_decode_result> results;
  double cached_at_start = 0;
  auto decode_once = [&] {
    if (args.from_disk) cached_at_start = std::max(cached_at_start, drop_scan_from_page_cache(scan.scan_dir));
    const auto t0 = clock_type::now();
    results.push_back(plate::decode_plates(scan.scan_dir, out_file, o));
    return std::chrono::duration<double>(clock_type::now() - t0).count();
  };
  // The warm-up (the device's context, the page cache, the allocator) must give the payload back.
  progress.show(label + ": warming up");
  decode_once();
  const plate::plate_decode_result& first = results.back();
  if (!first.complete || read_file_bytes(out_file) != payload) {
    throw std::logic_error("bench: the simulated scan set did not decode to its payload (" +
                           std::to_string(first.codes_unreadable) + " of " + std::to_string(first.codes) +
                           " codes unreadable, " + std::to_string(first.lost_frames) +
                           " frames lost; a bug in qrplate)");
  }
  results.clear();
  const std::vector<double> times = timed_runs(decode_once, seconds, progress, label + ": timing, decode ");
  for (const plate::plate_decode_result& r : results)
    if (!r.complete)
      throw std::logic_error("bench: a timed decode of the simulated scan set was incomplete (a bug in qrplate)");
  // The run whose time is the median's (the upper one of an even count), for the stage split.
  std::vector<std::size_t> order(times.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return times[a] < times[b]; });
  const plate::plate_decode_result& mid = results[order[order.size() / 2]];

  scan_row r{};
  r.where = where;
  r.s = s;
  r.px = px;
  r.tile_px = args.tile_px;
  r.strip_px = strip_px;
  r.prepare_rows = prepare_rows;
  r.rows_per_prepare = mid.rows_per_prepare;
  r.serial_reads = serial_reads;
  r.register_ahead = !args.no_register_ahead;
  r.tile_reads = mid.tile_reads;
  r.tiles_registered_ahead = mid.tile_registrations_ahead;
  r.tile_reads_pose_kept = mid.tile_reads_pose_kept;
  r.threads = resolved_threads(args.threads);
  r.tiles = scan.tile_files.size();
  r.scan_pixels = scan.scan_pixels;
  r.scan_file_bytes = scan.scan_file_bytes;
  r.codes = mid.codes;
  r.payload_bytes = scan.payload_bytes;
  r.plate_width_um = scan.plate_width_um;
  r.plate_height_um = scan.plate_height_um;
  r.code_columns = scan.code_columns;
  r.runs = static_cast<int>(times.size());
  r.seconds = median_of(times);
  r.seconds_min = *std::min_element(times.begin(), times.end());
  r.seconds_max = *std::max_element(times.begin(), times.end());
  r.files_pixels_per_s = files_pixels_per_s;
  r.from_disk = args.from_disk;
  r.cached_at_start = cached_at_start;
  r.disk_bytes_per_s = disk_bytes_per_s;
  r.seconds_tiles = mid.seconds_tiles;
  r.seconds_code_batches = mid.seconds_code_batches;
  r.seconds_cells = mid.seconds_cells;
  r.seconds_frames = mid.seconds_frames;
  r.seconds_finishing_units = mid.seconds_finishing_units;
  r.seconds_rest = mid.seconds_rest();
  r.seconds_waiting_for_background = mid.seconds_waiting_for_background;
  r.seconds_loading_tiles = mid.seconds_loading_tiles;
  r.seconds_placing_tiles = mid.seconds_placing_tiles;
  return r;
}

void print_scan_header(const nlohmann::ordered_json& machine, double seconds, const scratch_place& where,
                       bool from_disk)
{
  std::printf(
      "qrplate %s bench --scan (whole decodes of simulated scan sets: clean preset, 8-bit uncompressed TIFF "
      "tiles in %s%s), %s: %s (%s, %u logical cores%s), %.3g s per row\n",
      machine["qrplate"].get<std::string>().c_str(), where.dir.string().c_str(),
      from_disk      ? ", from disk: dropped from the page cache before each decode"
      : where.memory ? ", memory"
                     : "",
      machine["date"].get<std::string>().c_str(), machine["cpu"].get<std::string>().c_str(),
      machine["arch"].get<std::string>().c_str(), machine["logical_cores"].get<unsigned>(), gpu_note(machine).c_str(),
      seconds);
  std::printf("%-11s  %-5s  %9s  %5s  %7s  %4s  %7s  %5s  %6s  %4s  %-22s  %13s  %9s  %11s  %13s  %s%s\n", "backend",
              "shape", "px/module", "tile", "strip", "rows", "threads", "tiles", "codes", "runs", "seconds (min .. max)", "scan Mpixel/s",
              "codes/s", "payload/s", "files Mpixel/s", "tiles / code batches / cells / frames / rest",
              from_disk ? "  disk read  cached" : "");
  std::fflush(stdout);
}

void print_scan_row(const scan_row& r)
{
  char seconds[64], split[96];
  std::snprintf(seconds, sizeof seconds, "%.3f (%.3f .. %.3f)", r.seconds, r.seconds_min, r.seconds_max);
  const double total =
      std::max(r.seconds_tiles + r.seconds_code_batches + r.seconds_cells + r.seconds_frames + r.seconds_rest, 1e-12);
  std::snprintf(split, sizeof split, "%.0f%% / %.0f%% / %.0f%% / %.0f%% / %.0f%%", 100 * r.seconds_tiles / total,
                100 * r.seconds_code_batches / total, 100 * r.seconds_cells / total, 100 * r.seconds_frames / total,
                100 * r.seconds_rest / total);
  const std::string where =
      std::string(to_string(r.where)) + (r.serial_reads ? "-serial" : "") + (r.register_ahead ? "" : "-now");
  std::printf("%-11s  %-5s  %9.2g  %5u  %7.0f  %4u  %7u  %5llu  %6llu  %4d  %-22s  %13.1f  %9s  %11s  %13.1f  %s",
              where.c_str(), shape_name(r.s).c_str(), r.px, r.tile_px, r.strip_px, r.rows_per_prepare, r.threads,
              static_cast<unsigned long long>(r.tiles), static_cast<unsigned long long>(r.codes), r.runs, seconds,
              static_cast<double>(r.scan_pixels) / r.seconds / 1e6,
              with_commas(static_cast<double>(r.codes) / r.seconds).c_str(),
              (human_bytes(static_cast<double>(r.payload_bytes) / r.seconds) + "/s").c_str(),
              r.files_pixels_per_s / 1e6, split);
  if (r.from_disk)
    std::printf("%*s  %9s  %5.0f%%", std::max(0, 35 - static_cast<int>(std::strlen(split))), "",
                (human_bytes(r.disk_bytes_per_s) + "/s").c_str(), 100 * r.cached_at_start);
  std::printf("\n");
  std::fflush(stdout);
}

nlohmann::ordered_json scan_row_json(const scan_row& r)
{
  nlohmann::ordered_json j = read_row_key(r.where, r.s, r.px);
  j["tile_px"] = r.tile_px;
  j["strip_px"] = r.strip_px;
  j["prepare_rows"] = r.prepare_rows;
  j["rows_per_prepare"] = r.rows_per_prepare;
  j["serial_reads"] = r.serial_reads;
  j["register_ahead"] = r.register_ahead;
  j["tile_reads"] = r.tile_reads;
  j["tiles_registered_ahead"] = r.tiles_registered_ahead;
  j["tile_reads_with_kept_pose"] = r.tile_reads_pose_kept;
  j["threads"] = r.threads;
  j["tiles"] = r.tiles;
  j["scan_pixels"] = r.scan_pixels;
  j["scan_file_bytes"] = r.scan_file_bytes;
  j["codes"] = r.codes;
  j["payload_bytes"] = r.payload_bytes;
  j["plate_um"] = {r.plate_width_um, r.plate_height_um};
  j["code_columns"] = r.code_columns;
  j["runs"] = r.runs;
  j["seconds"] = r.seconds;
  j["seconds_min"] = r.seconds_min;
  j["seconds_max"] = r.seconds_max;
  j["scan_pixels_per_s"] = static_cast<double>(r.scan_pixels) / r.seconds;
  j["codes_per_s"] = static_cast<double>(r.codes) / r.seconds;
  j["payload_bytes_per_s"] = static_cast<double>(r.payload_bytes) / r.seconds;
  j["files_pixels_per_s"] = r.files_pixels_per_s;
  j["from_disk"] = r.from_disk;
  if (r.from_disk) {
    j["cached_at_start"] = r.cached_at_start;
    j["disk_bytes_per_s"] = r.disk_bytes_per_s;
  }
  nlohmann::ordered_json stages;
  stages["tiles"] = r.seconds_tiles;
  stages["code_batches"] = r.seconds_code_batches;
  stages["cells"] = r.seconds_cells;
  stages["frames"] = r.seconds_frames;
  stages["rest"] = r.seconds_rest;
  j["seconds_by_stage"] = stages;
  j["seconds_waiting_for_background"] = r.seconds_waiting_for_background;  // of code_batches
  j["seconds_of_tiles"] = {{"loading", r.seconds_loading_tiles}, {"placing", r.seconds_placing_tiles}};
  j["seconds_of_frames"] = {{"finishing", r.seconds_finishing_units}, {"waited_for", r.seconds_frames}};
  return j;
}

void run_scan_bench(const bench_args& args, const CLI::App& cmd)
{
  if (cmd.count("--mask") || cmd.count("--batch"))
    throw invalid_argument("--mask and --batch are for encode rows, not --scan");
  const double seconds = args.quick && cmd.count("--seconds") == 0 ? 0.2 : args.seconds;
  if (!(seconds > 0 && seconds <= 3600)) throw invalid_argument("--seconds must be more than 0 and at most 3600");
  check_threads(args.threads);
  const std::uint64_t kb = args.quick && cmd.count("--scan-kb") == 0 ? 20 : args.scan_kb;
  if (kb < 1 || kb > 1000000) throw invalid_argument("--scan-kb " + std::to_string(kb) + " out of range 1..1000000");
  if (args.tile_px < 256 || args.tile_px > 16384)
    throw invalid_argument("--tile " + std::to_string(args.tile_px) + " out of range 256..16384");
  const std::vector<shape> shapes = parse_shapes(cmd.count("--shapes") ? args.shapes : std::string("10-M"));
  std::optional<plate::plate_size_nm> plate_size;
  if (cmd.count("--scan-plate")) plate_size = plate::parse_plate_size(args.scan_plate);
  // A plate of a given size holds what fills it, unless --scan-kb says otherwise.
  const std::uint64_t payload = plate_size && cmd.count("--scan-kb") == 0 ? 0 : kb * 1000;
  const std::string payload_text = payload ? std::to_string(kb) + " kB" : "a " + args.scan_plate + " plate's worth";
  for (const shape& s : shapes) {  // a payload that does not fit the plate: an error before any work
    scan::synthetic_scan_options so;
    so.version = s.version, so.ecc = s.ecc, so.payload_bytes = payload, so.plate = plate_size;
    (void)scan::synthetic_scan_payload(so);
  }
  const std::vector<double> pxs = parse_px_list(cmd.count("--px-per-module") ? args.px : std::string("3"));
  const std::vector<double> strips = parse_strip_list(args.strip_px);
  const std::vector<int> prepare_rows = parse_prepare_rows_list(args.prepare_rows);
  const std::vector<backend> backends = parse_backends(args.backend);
  const scratch_place place = scratch_dir(args.scratch, args.from_disk);
  const scratch_root root(place.dir);
  const nlohmann::ordered_json machine = machine_json();
  if (!args.json) print_scan_header(machine, seconds, place, args.from_disk);
  progress_line progress;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  // --serial-reads: each CUDA row twice, the reads ahead overlapped (the default) and waited for.
  std::vector<std::pair<backend, bool>> modes;
  for (backend where : backends) {
    modes.push_back({where, false});
    if (args.serial_reads && where == backend::cuda) modes.push_back({where, true});
  }
  const std::size_t total = modes.size() * shapes.size() * pxs.size() * strips.size() * prepare_rows.size();
  std::size_t done = 0, made = 0;
  for (const shape& s : shapes)
    for (double px : pxs) {
      char px_text[16];
      std::snprintf(px_text, sizeof px_text, "%g", px);
      const std::string name = shape_name(s) + " at " + px_text + " px";
      progress.show(name + ": encoding " + payload_text + " and simulating its scan");
      scan::synthetic_scan_options so;
      so.version = s.version;
      so.ecc = s.ecc;
      so.payload_bytes = payload;
      so.plate = plate_size;
      so.px_per_module = px;
      so.tile_px = args.tile_px;
      so.threads = args.threads;
      // One scan set on disk at a time: half the room left, and the decoded payload beside it.
      so.max_scan_bytes = free_bytes_at(root.path()) / 2;
      const fs::path dir = root.path() / ("scan-" + std::to_string(++made));
      const scan::synthetic_scan scan = scan::make_synthetic_scan(dir.string(), so);
      const unsigned threads = resolved_threads(args.threads);
      const double files = files_rate(scan, threads, seconds / 4, args.from_disk, progress, name);
      const double disk = args.from_disk ? disk_rate(scan, threads, seconds / 4, progress, name) : 0.0;
      for (const auto& [where, serial] : modes)
        for (double strip : strips)
          for (int rows_asked : prepare_rows) {
            const std::string label = std::string(to_string(where)) + (serial ? " (serial reads) " : " ") + name +
                                      " (" + std::to_string(++done) + "/" + std::to_string(total) + ")";
            const scan_row r = run_scan_row(where, s, px, strip, rows_asked, serial, scan, files, disk, args, seconds,
                                            dir, progress, label);
            progress.clear();
            if (args.json) {
              rows.push_back(scan_row_json(r));
            } else {
              print_scan_row(r);
            }
          }
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  if (args.json) {
    nlohmann::ordered_json j;
    j["machine"] = machine;
    j["seconds_per_row"] = seconds;
    j["scratch"] = place.dir.string();
    j["scratch_in_memory"] = place.memory;
    j["from_disk"] = args.from_disk;
    j["scan_results"] = rows;
    std::printf("%s\n", j.dump(2).c_str());
  }
}

}  // namespace

void add_bench_command(CLI::App& app)
{
  auto args = std::make_shared<bench_args>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Measure encode (or, with --decode, per-code read; with --scan, whole scan-set decode) throughput on this "
      "machine for each available backend");
  cmd->add_option("--backend", args->backend,
                  "all (the CPU, and CUDA when a device exists), auto, cpu or cuda (default: all)");
  cmd->add_option("--shapes", args->shapes, "Code shapes VERSION-LEVEL, comma-separated (default: 3-L,10-M,25-Q,40-L)");
  cmd->add_option("--mask", args->mask, "Data mask 0..7, or auto: the lowest ISO 18004 penalty (default: auto)");
  cmd->add_option("--threads", args->threads, "CPU threads (default: 0 = every core)");
  cmd->add_option("--seconds", args->seconds, "Timed seconds per row, after the warm-up (default: 1)");
  cmd->add_option("--batch", args->batch, "Codes per encode() call (default: enough for about 50 ms)");
  cmd->add_flag("--quick", args->quick,
                "For tests and CI: 0.2 s per row, shapes 3-L and 40-L (--decode: 10-M at 3 px/module; --scan: 20 kB), "
                "unless --seconds, --shapes, --px-per-module or --scan-kb are given");
  cmd->add_flag("--json", args->json, "Print JSON for scripts");
  cmd->add_flag("--decode", args->decode,
                "Measure the per-code read core instead (sampling, threshold, Reed-Solomon; default shapes 10-M,40-L)");
  cmd->add_option("--px-per-module", args->px,
                  "--decode, --scan: pixels per module, comma-separated (default: 2,3,4 for --decode, 3 for --scan)");
  cmd->add_flag("--scan", args->scan,
                "Measure whole decodes of scan sets instead: a plate encoded and scanned by the simulator, then "
                "`qrplate decode` of it, every stage (default shape 10-M)");
  cmd->add_option("--scan-kb", args->scan_kb, "--scan: payload of each scan set's plate, kB (default: 100; --quick: 20)");
  cmd->add_option("--scan-plate", args->scan_plate,
                  "--scan: the plate's size, WxH with a unit (e.g. 1200x200um; default: just large enough for the "
                  "payload, near square), filled with payload unless --scan-kb is given. A plate wider than the "
                  "strips (--strip-px) is read row by row in each strip, as an A4 plate is; one within a strip, a "
                  "band of rows at a time");
  cmd->add_option("--tile", args->tile_px, "--scan: the scan's tile side in pixels (default: 1024)");
  cmd->add_option("--strip-px", args->strip_px,
                  "--scan: qrplate decode's --strip-px, comma-separated: a row for each (default: 8192)");
  cmd->add_option("--prepare-rows", args->prepare_rows,
                  "--scan: qrplate decode's --prepare-rows, comma-separated: a row for each (default: 0, automatic)");
  cmd->add_flag("--serial-reads", args->serial_reads,
                "--scan: each CUDA row again with qrplate decode's --serial-reads (every batch of code reads waited "
                "for before the next tiles register; backend column cuda-serial): what overlapping them gains");
  cmd->add_flag("--no-register-ahead", args->no_register_ahead,
                "--scan: every row with qrplate decode's --no-register-ahead (each tile registered when its rows "
                "come; backend column ends in -now): what registering ahead gains, beside a run without it");
  cmd->add_option("--scratch", args->scratch,
                  "--scan: directory for the scan sets, removed afterwards (default: /dev/shm when it has 1 GiB "
                  "free, else the system's temporary directory; --from-disk: the temporary directory)");
  cmd->add_flag("--from-disk", args->from_disk,
                "--scan: decode from the disk: the scan set's files are dropped from the page cache before every "
                "decode, and the disk's read rate is measured beside it (--scratch must be on a disk, not tmpfs)");
  cmd->footer(
      "\nEach row encodes full-capacity random payloads (byte mode), generated in memory, in batches of\n"
      "codes; after a warm-up it times batches for --seconds (at least 3) and reports the median of the\n"
      "per-batch rates, with the slowest and fastest batch. codes/s counts whole symbols, mask choice\n"
      "included; payload is codes/s times the bytes one code holds (MB = 10^6 bytes). CPU figures are\n"
      "host memory to host memory (data: host), the way `qrplate encode` uses the encoder. The CUDA\n"
      "backend (when a device exists) has two rows per shape: data host, through the streaming driver\n"
      "from and to pinned host memory, as `qrplate encode` keeps its frames (PCIe both ways, overlapped,\n"
      "no host copies), and data device, payloads and matrices already in GPU memory\n"
      "(the kernel alone, timed with CUDA events).\n\n"
      "Examples:\n"
      "  qrplate bench                                  every backend, default shapes, 1 s per row\n"
      "  qrplate bench --shapes 40-L --threads 1        one core, one shape\n"
      "  qrplate bench --shapes 40-L --mask 0           the cost of a forced mask vs auto\n"
      "  qrplate bench --quick --json > bench.json      for scripts\n"
      "\n--decode: each row reads version-LEVEL codes drawn in memory (8 x 8 of them, 4 x 4 from version\n"
      "25; rotated 0.5 degrees, noise 1/11 of the contrast) through their known maps: sampling every\n"
      "module, the threshold plane, Reed-Solomon with erasures and the segment parser, i.e. what\n"
      "`qrplate decode` does per code after registration and the anchor search (not included), and\n"
      "what the CUDA read kernel runs (its rows: one tile up, one launch, results down; and kernel\n"
      "codes/s, the kernel alone with image and maps already in GPU memory). Every code\n"
      "must read back exactly in the warm-up, else the row is an error. scan Mpixel/s = codes/s x\n"
      "the image pixels per code. tile passes Mpixel/s: registration's passes over every pixel of the\n"
      "same image as one tile (integral image, contrast, finder scan; one thread on the CPU, host\n"
      "memory to host memory on the GPU).\n"
      "  qrplate bench --decode --threads 1             the read core on one core\n"
      "\n--scan: each row is `qrplate decode` of a whole scan set, every stage: reading the tile files,\n"
      "registering the tiles, each code's anchor search and read, the frames, the outer code and the\n"
      "SHA-256. The scan set is made first, once per shape and px/module, in a scratch directory: random\n"
      "bytes (--scan-kb) encoded into a plate of that shape, scanned by the simulator's clean preset\n"
      "(stage error, rotation, beam blur, shot noise; tiles of --tile px, 10% overlap) and written as\n"
      "8-bit uncompressed TIFF tiles, the format a microscope writing raw frames gives. In /dev/shm the\n"
      "files are in memory: the rows are then decodes from host memory, with no disk. The warm-up decode\n"
      "must give the payload back byte for byte, else the row is an error. A row's seconds are the\n"
      "median of its decodes (at least 3); scan Mpixel/s, codes/s and payload/s follow from them. files\n"
      "Mpixel/s: reading the tile files alone on the same threads, the limit the files set. The last\n"
      "column splits the median decode by stage (qrplate decode --report's seconds_by_stage). --strip-px\n"
      "gives a row for each column-strip width (qrplate decode --strip-px: how many tiles are registered\n"
      "side by side), to see what wider strips give a machine with many cores; --prepare-rows one for each\n"
      "count of code rows prepared at once (the rows column: what the decode used; a strip that holds the\n"
      "plate's unit whole takes a band of rows at once). --serial-reads gives each\n"
      "CUDA row a twin (cuda-serial) whose decodes wait for every batch of code reads before the next\n"
      "tiles register (qrplate decode --serial-reads); the default leaves the reads ahead to the GPU\n"
      "meanwhile (JSON: seconds_waiting_for_background, the part of code_batches spent waiting for them).\n"
      "The scratch directory (qrplate_bench_scan_PID) is removed at the end; one an interrupted run\n"
      "left behind is removed by the next --scan run.\n"
      "--from-disk: the scan set is written to --scratch (default: the system's temporary directory; it\n"
      "must be on a disk, not tmpfs) and its files are written back and dropped from the page cache\n"
      "(posix_fadvise) before every decode and every pass of files Mpixel/s, so each reads its tiles\n"
      "from the device. Two more columns: disk read, every tile file read whole, cold, with plain read()\n"
      "calls on the same threads (the limit this disk sets), and cached, the most of the files' bytes\n"
      "a decode still found in the page cache (mincore; near 0% when the drop worked).\n"
      "  qrplate bench --scan                           v10-M at 3 px/module, 100 kB, every backend\n"
      "  qrplate bench --scan --shapes 40-L --px-per-module 2,3 --scan-kb 1000 --tile 2048\n"
      "  qrplate bench --scan --scan-plate 1200x200um --strip-px 8192,32768   rows read one by one, as on A4\n"
      "  qrplate bench --scan --from-disk --scratch /data/tmp   decodes reading their tiles from that disk\n");
  cmd->callback([args, cmd] {
    if (args->decode && args->scan) throw invalid_argument("--decode and --scan are two benches: give one");
    if (!args->scan)
      for (const char* option : {"--scan-kb", "--scan-plate", "--tile", "--scratch", "--strip-px", "--prepare-rows",
                                 "--from-disk", "--serial-reads", "--no-register-ahead"})
        if (cmd->count(option)) throw invalid_argument(std::string(option) + " is for --scan");
    if (args->decode) {
      run_decode_bench(*args, *cmd);
      return;
    }
    if (args->scan) {
      run_scan_bench(*args, *cmd);
      return;
    }
    if (cmd->count("--px-per-module")) throw invalid_argument("--px-per-module is for --decode or --scan");
    // Everything is checked before anything is measured.
    // --quick changes the defaults only: --shapes or --seconds given with it still apply.
    const bool quick_shapes = args->quick && cmd->count("--shapes") == 0;
    const double seconds = args->quick && cmd->count("--seconds") == 0 ? 0.2 : args->seconds;
    if (!(seconds > 0 && seconds <= 3600)) throw invalid_argument("--seconds must be more than 0 and at most 3600");
    check_threads(args->threads);
    if (cmd->count("--batch") && args->batch == 0) throw invalid_argument("--batch must be at least 1");
    const std::vector<shape> shapes = parse_shapes(quick_shapes ? std::string("3-L,40-L") : args->shapes);
    const int mask = parse_mask(args->mask);
    if (args->batch) {
      const double memory = physical_memory_bytes();
      for (const shape& s : shapes) {
        const double need = static_cast<double>(args->batch) * static_cast<double>(bytes_per_code(s));
        if (memory > 0 && need > memory / 2) {
          throw invalid_argument("--batch " + std::to_string(args->batch) + " needs " + human_bytes(need) +
                                 " of memory for version " + shape_name(s) +
                                 " codes, more than half of this machine's " + human_bytes(memory));
        }
      }
    }
    const std::vector<backend> backends = parse_backends(args->backend);

    const nlohmann::ordered_json machine = machine_json();

    if (!args->json) print_table_header(machine, seconds);
    progress_line progress;
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    // CUDA rows come in pairs: host memory to host memory, then data resident on the device.
    std::size_t total = 0;
    for (backend where : backends) total += shapes.size() * (where == backend::cuda ? 2 : 1);
    std::size_t done = 0;
    for (backend where : backends) {
      for (const shape& s : shapes) {
        for (const bool resident : {false, true}) {
          if (resident && where != backend::cuda) continue;
          const std::string label = std::string(to_string(where)) + (resident ? " device " : " ") + shape_name(s) +
                                    " (" + std::to_string(++done) + "/" + std::to_string(total) + ")";
          const row_result r = run_row(where, s, *args, mask, seconds, progress, label, resident);
          progress.clear();
          if (args->json) {
            rows.push_back(row_json(r));
          } else {
            print_table_row(r);
          }
        }
      }
    }
    if (args->json) {
      nlohmann::ordered_json j;
      j["machine"] = machine;
      j["seconds_per_row"] = seconds;
      j["results"] = rows;
      std::printf("%s\n", j.dump(2).c_str());
    }
  });
}

}  // namespace qrplate::cli
