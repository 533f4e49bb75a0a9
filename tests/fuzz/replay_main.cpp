// A libFuzzer-free driver for the fuzz targets, built with any compiler and run by ctest: every
// file of the seed corpus (regressions included), then deterministic pseudo-random inputs and
// mutations of the corpus files, each through LLVMFuzzerTestOneInput.
//
//   fuzz_replay_<name> CORPUS_DIR [INPUTS [MAX_LEN]]   INPUTS: generated inputs (default 2000),
//                                                      MAX_LEN: their largest size (default 4096)
// The seed is printed; QRPLATE_FUZZ_SEED=<n> overrides it. When an input aborts or crashes, it is
// written to ./replay-crash-input first (rerun it under a libFuzzer build: fuzz_<name> FILE).
// Like libFuzzer under tools/fuzz.sh (-malloc_limit_mb), a single allocation past 1 GiB is a
// failure: no input here is larger than a few KiB, so such a request trusts a header too far.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

constexpr std::size_t allocation_limit = std::size_t{1} << 30;

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QRPLATE_REPLAY_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(QRPLATE_REPLAY_ASAN)
// ASan owns operator new: its allocator enforces the limit (a report, then abort).
extern "C" const char* __asan_default_options() { return "max_allocation_size_mb=1024:allocator_may_return_null=0"; }
#else
void* operator new(std::size_t n)
{
  if (n > allocation_limit) {
    std::fprintf(stderr, "fuzz_replay: an allocation of %zu bytes, past the 1 GiB limit\n", n);
    std::abort();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

using bytes = std::vector<std::uint8_t>;

const bytes* current = nullptr;  // the input running now, for the crash handler

extern "C" void on_crash(int sig)
{
  if (current != nullptr) {
    const int fd = ::open("replay-crash-input", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ssize_t ignored = ::write(fd, current->data(), current->size());
      (void)ignored;
      ::close(fd);
    }
    static const char msg[] = "fuzz_replay: the failing input is in ./replay-crash-input\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void run(const bytes& input)
{
  current = &input;
  // A copy of exactly the input's size, so that reads past its end are caught (under ASan).
  const std::unique_ptr<std::uint8_t[]> copy(new std::uint8_t[input.size() + (input.empty() ? 1 : 0)]);
  std::copy(input.begin(), input.end(), copy.get());
  LLVMFuzzerTestOneInput(copy.get(), input.size());
  current = nullptr;
}

// Bytes the parsers treat specially: zero, signs, boundaries of small and large integers.
constexpr std::uint8_t interesting[] = {0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF, 0xFE, 0x10, 0x40, '0', '9', '-',
                                        '"',  '{',  '}',  '[',  ']',  ',',  ':',  '.',  'e', 'E', ' ', '\n'};

bytes mutate(const bytes& seed, const std::vector<bytes>& corpus, std::mt19937_64& rng, std::size_t max_len)
{
  bytes b = seed;
  const int rounds = 1 + static_cast<int>(rng() % 8);
  for (int r = 0; r < rounds; ++r) {
    const std::size_t pos = b.empty() ? 0 : static_cast<std::size_t>(rng() % b.size());
    switch (rng() % 8) {
      case 0:  // flip a bit
        if (!b.empty()) b[pos] = static_cast<std::uint8_t>(b[pos] ^ (1u << (rng() % 8)));
        break;
      case 1:  // a random byte
        if (!b.empty()) b[pos] = static_cast<std::uint8_t>(rng());
        break;
      case 2:  // an interesting byte
        if (!b.empty()) b[pos] = interesting[rng() % sizeof interesting];
        break;
      case 3:  // insert bytes
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos), 1 + rng() % 8, static_cast<std::uint8_t>(rng()));
        break;
      case 4: {  // erase bytes
        const std::size_t k = std::min<std::size_t>(b.size() - pos, 1 + rng() % 16);
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(pos), b.begin() + static_cast<std::ptrdiff_t>(pos + k));
        break;
      }
      case 5:  // truncate
        b.resize(pos);
        break;
      case 6: {  // splice in a piece of another corpus file
        const bytes& other = corpus[rng() % corpus.size()];
        if (other.empty()) break;
        const std::size_t from = rng() % other.size();
        const std::size_t k = std::min<std::size_t>(other.size() - from, 1 + rng() % 64);
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos), other.begin() + static_cast<std::ptrdiff_t>(from),
                 other.begin() + static_cast<std::ptrdiff_t>(from + k));
        break;
      }
      default: {  // an extreme little- or big-endian integer over up to 8 bytes
        const std::size_t k = std::min<std::size_t>(b.size() - pos, 1 + rng() % 8);
        const std::uint8_t fill = (rng() & 1) ? 0xFF : 0x00;
        for (std::size_t i = 0; i < k; ++i) b[pos + i] = fill;
        if (k > 0 && (rng() & 1)) b[pos + (rng() & 1 ? 0 : k - 1)] ^= 0x80;
        break;
      }
    }
  }
  if (b.size() > max_len) b.resize(max_len);
  return b;
}

}  // namespace

int main(int argc, char** argv)
{
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [INPUTS [MAX_LEN]]\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const long inputs = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 2000;
  const std::size_t max_len = argc > 3 ? static_cast<std::size_t>(std::strtoul(argv[3], nullptr, 10)) : 4096;
  const char* env = std::getenv("QRPLATE_FUZZ_SEED");
  const std::uint64_t seed = env ? std::strtoull(env, nullptr, 10) : 18004u;
  std::printf("fuzz_replay: corpus %s, %ld generated inputs up to %zu bytes, QRPLATE_FUZZ_SEED=%llu\n",
              dir.string().c_str(), inputs, max_len, static_cast<unsigned long long>(seed));
  for (const int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, on_crash);

  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    std::fprintf(stderr, "fuzz_replay: %s is not a directory\n", dir.string().c_str());
    return 2;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());  // a fixed order, so a seed means the same inputs everywhere
  std::vector<bytes> corpus;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    std::printf("  %s (%zu bytes)\n", f.filename().string().c_str(), corpus.back().size());
    std::fflush(stdout);
    run(corpus.back());
  }
  const std::size_t seeds = corpus.size();
  if (corpus.empty()) corpus.emplace_back();

  std::mt19937_64 rng(seed);
  for (long i = 0; i < inputs; ++i) {
    if (i % 4 == 0) {  // pure noise, any length
      bytes b(static_cast<std::size_t>(rng() % (max_len + 1)));
      for (auto& v : b) v = static_cast<std::uint8_t>(rng());
      run(b);
    } else {
      run(mutate(corpus[rng() % corpus.size()], corpus, rng, max_len));
    }
  }
  std::printf("fuzz_replay: %zu corpus files and %ld generated inputs passed\n", seeds, inputs);
  return 0;
}
