// Threads that last as long as the process, for work whose threads keep GPU state of their own:
// registration's passes (tile_registration.cpp, this_threads_passes) and the code reads
// (read_codes_cuda.cu) keep a stream, pinned staging and device buffers per host thread, never
// freed (the CUDA runtime may be gone before thread-local destructors run at exit). Threads made
// for each call, as host::parallel_for makes them, would each leave such a set behind: a decode
// that registers tiles on fresh threads for every band of tiles grew by megabytes of pinned and
// device memory per thread and band. These threads are made once and reused by every caller.
#pragma once

#include <functional>
#include <utility>

#include "util/background_thread.hpp"
#include "util/thread_team.hpp"

namespace qrplate::host {

// The process's team of `threads` threads (0: every core), made at the first call with that
// count and never destroyed. Several callers may run() on it at once (thread_team::run).
thread_team& lasting_team(unsigned threads);

// A background thread lent from the process's idle ones (one is made when none is idle) and
// given back idle when this goes.
class lasting_background_thread {
 public:
  lasting_background_thread();
  ~lasting_background_thread();  // waits for the job in hand (a failure it left is dropped)
  lasting_background_thread(const lasting_background_thread&) = delete;
  lasting_background_thread& operator=(const lasting_background_thread&) = delete;

  // As background_thread's.
  void start(std::function<void()> job) { thread_->start(std::move(job)); }
  void wait() { thread_->wait(); }
  void run(std::function<void()> job) { thread_->run(std::move(job)); }

 private:
  background_thread* thread_;
};

}  // namespace qrplate::host
