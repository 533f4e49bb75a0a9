// Batch encode: validation and backend dispatch.
#include "qrplate/encode.hpp"

#include <string>

#include "encode/encode_cpu.hpp"
#include "qrplate/error.hpp"
#if defined(QRPLATE_WITH_CUDA)
#include "cuda/encode_cuda.hpp"
#endif

namespace qrplate {

const char* to_string(backend b)
{
  switch (b) {
    case backend::automatic: return "auto";
    case backend::cpu: return "cpu";
    case backend::cuda: return "cuda";
  }
  return "?";
}

backend parse_backend(std::string_view text)
{
  if (text == "auto") return backend::automatic;
  if (text == "cpu") return backend::cpu;
  if (text == "cuda") return backend::cuda;
  throw invalid_argument("unknown backend '" + std::string(text) + "' (expected auto, cpu or cuda)");
}

bool cuda_backend_available()
{
#if defined(QRPLATE_WITH_CUDA)
  return host::cuda_device_present();
#else
  return false;
#endif
}

std::string cuda_device_description()
{
#if defined(QRPLATE_WITH_CUDA)
  return host::cuda_device_summary();
#else
  return "";
#endif
}

void symbol_batch::reset(int version, ecc_level ecc, std::uint64_t count)
{
  if (!spec::valid_version(version)) throw invalid_argument("version " + std::to_string(version) + " out of range 1..40");
  version_ = version;
  ecc_ = ecc;
  count_ = count;
  // Not cleared: every backend writes every word, mask and status (test_batch checks it on a
  // batch reused with other payloads), and clearing is a full pass over the results.
  modules_.resize_for_overwrite(count * words_per_symbol());
  masks_.resize_for_overwrite(count);
  status_.resize_for_overwrite(count);
}

backend resolve_backend(backend b)
{
  if (b != backend::automatic) return b;
  return cuda_backend_available() ? backend::cuda : backend::cpu;
}

void encode(const payload_batch_view& payloads, const batch_encode_options& options, symbol_batch& out)
{
  if (!spec::valid_version(options.version))
    throw invalid_argument("version " + std::to_string(options.version) + " out of range 1..40");
  if (static_cast<unsigned>(options.ecc) > 3u)
    throw invalid_argument("unknown error correction level");
  if (options.mask < -1 || options.mask > 7)
    throw invalid_argument("mask " + std::to_string(options.mask) + " out of range 0..7 (or -1 for automatic)");
  if (payloads.count > 0 && (payloads.offsets == nullptr || (payloads.bytes == nullptr && payloads.offsets[payloads.count] > 0)))
    throw invalid_argument("payload batch without offsets or bytes");
  for (std::uint64_t i = 0; i < payloads.count; ++i)
    if (payloads.offsets[i + 1] < payloads.offsets[i])
      throw invalid_argument("payload offsets decrease at item " + std::to_string(i));
  if (payloads.count > 0 && payloads.offsets[0] != 0) throw invalid_argument("payload offsets must start at 0");

  out.reset(options.version, options.ecc, payloads.count);
  const backend where = resolve_backend(options.where);
  if (where == backend::cuda) {
#if defined(QRPLATE_WITH_CUDA)
    if (!host::cuda_device_present()) throw backend_unavailable("backend cuda: no CUDA device is present");
    host::encode_cuda(payloads, options, out);
    return;
#else
    throw backend_unavailable("backend cuda: this build of qrplate has no CUDA backend (built without nvcc)");
#endif
  }
  host::encode_cpu(payloads, options, out);
}

}  // namespace qrplate
