// parallel_for on threads that stay, shared by several callers: the plate encoder's main thread
// (frames, rasters), its writer thread (tiles) and the preview run their jobs on one team, so
// `--threads N` means N - 1 workers beside the callers, not N per stage. Starting threads for
// each job would cost more than many jobs take (measured: packing a round of uncompressed tiles on
// two fresh threads was slower than on one).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace qrplate::host {

class thread_team {
 public:
  // size() == threads (0: every core): threads - 1 workers start here and wait for jobs; a caller
  // of run() works on its own job beside them. Fewer when the system will not start that many
  // (size() says how many).
  explicit thread_team(unsigned threads)
  {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(threads - 1);
    try {
      for (unsigned m = 1; m < threads; ++m) workers_.emplace_back([this, m] { serve(m); });
    } catch (const std::system_error&) {  // the system would not start them all: work with those it did
    }
  }
  ~thread_team() { stop(); }
  thread_team(const thread_team&) = delete;
  thread_team& operator=(const thread_team&) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // As parallel_for: fn(member, i) for every i in [0, count), each once; member < size(), and no
  // two calls of one run() with the same member overlap (the caller is member 0, worker k is
  // member k), so member can index per-thread scratch. The first exception stops the claiming and
  // is rethrown once the job's claimed indices are done. Several threads may run() at once (their
  // jobs share the workers); fn must not call run() on the same team.
  void run(std::size_t count, const std::function<void(unsigned, std::size_t)>& fn)
  {
    if (count == 0) return;
    if (workers_.empty() || count == 1) {
      for (std::size_t i = 0; i < count; ++i) fn(0, i);
      return;
    }
    job j;
    j.fn = &fn;
    j.count = count;
    std::unique_lock<std::mutex> lock(mutex_);
    jobs_.push_back(&j);
    work_.notify_all();
    for (std::size_t i; (i = claim(j)) < count;) execute(lock, j, 0, i);
    done_.wait(lock, [&] { return j.running == 0; });  // claim() took it off jobs_ when none were left
    if (j.failure) std::rethrow_exception(j.failure);
  }

 private:
  void stop()
  {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    work_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  struct job {
    const std::function<void(unsigned, std::size_t)>* fn = nullptr;
    std::size_t count = 0;
    std::size_t next = 0;     // next index to claim (count: none left)
    unsigned running = 0;     // indices claimed and not finished
    std::exception_ptr failure;
  };

  // With the lock held: the next index of j (count when none is left, and j leaves jobs_).
  std::size_t claim(job& j)
  {
    if (j.next >= j.count) {
      jobs_.erase(std::remove(jobs_.begin(), jobs_.end(), &j), jobs_.end());
      return j.count;
    }
    ++j.running;
    return j.next++;
  }

  // Runs index i of j without the lock, then records it; the lock is held again on return.
  void execute(std::unique_lock<std::mutex>& lock, job& j, unsigned member, std::size_t i)
  {
    lock.unlock();
    std::exception_ptr failure;
    try {
      (*j.fn)(member, i);
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    if (failure) {
      if (!j.failure) j.failure = failure;
      j.next = j.count;  // stop claiming
    }
    if (--j.running == 0 && j.next >= j.count) done_.notify_all();
  }

  void serve(unsigned member)
  {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      work_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job& j = *jobs_.front();
      const std::size_t i = claim(j);
      if (i < j.count) execute(lock, j, member, i);
    }
  }

  std::mutex mutex_;
  std::condition_variable work_, done_;
  std::deque<job*> jobs_;  // jobs with indices left to claim, oldest first
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace qrplate::host
