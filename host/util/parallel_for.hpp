// A fixed pool of threads over an index range: what the scan reader, the plate decoder and the
// simulator each spread their tiles or cells with.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace qrplate::host {

// Runs fn(thread, i) for every i in [0, count), in increasing order of claim, on up to `threads`
// threads (the caller's one of them, thread 0); the first exception stops the others and is
// rethrown once all have stopped.
template <typename Fn>
void parallel_for(unsigned threads, std::size_t count, Fn&& fn)
{
  std::atomic<std::size_t> next{0};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  auto worker = [&](unsigned t) {
    try {
      for (std::size_t i; (i = next.fetch_add(1)) < count;) fn(t, i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = count;
    }
  };
  std::vector<std::thread> pool;
  try {
    for (unsigned t = 1; t < threads && t < count; ++t) pool.emplace_back(worker, t);
  } catch (const std::system_error&) {  // the system would not start them all: work with those it did
  }
  worker(0);
  for (auto& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace qrplate::host
