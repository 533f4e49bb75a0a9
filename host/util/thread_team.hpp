// parallel_for on threads that stay: for callers that spread many short jobs (the plate writer's
// rounds of tiles, the plate encoder's units), where starting threads for each job would cost
// more than the job (measured: packing a round of uncompressed tiles on two fresh threads was
// slower than on one).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qrplate::host {

class thread_team {
 public:
  // `threads` members (0: every core), the caller of run() being member 0: threads - 1 workers
  // start here and wait.
  explicit thread_team(unsigned threads)
  {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(threads - 1);
    for (unsigned m = 1; m < threads; ++m) workers_.emplace_back([this, m] { serve(m); });
  }
  ~thread_team()
  {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    start_.notify_all();
    for (auto& w : workers_) w.join();
  }
  thread_team(const thread_team&) = delete;
  thread_team& operator=(const thread_team&) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // As parallel_for: fn(member, i) for every i in [0, count), each once, member < size(); the
  // first exception stops the claiming and is rethrown once every member is done. One run at a
  // time (run is not reentrant and not for several callers at once).
  void run(std::size_t count, const std::function<void(unsigned, std::size_t)>& fn)
  {
    if (count == 0) return;
    if (workers_.empty() || count == 1) {
      for (std::size_t i = 0; i < count; ++i) fn(0, i);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &fn;
      count_ = count;
      next_ = 0;
      failure_ = nullptr;
      busy_ = static_cast<unsigned>(workers_.size());
      ++generation_;
    }
    start_.notify_all();
    claim(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
    job_ = nullptr;
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  void claim(unsigned member)
  {
    try {
      for (std::size_t i; (i = next_.fetch_add(1)) < count_;) (*job_)(member, i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_) failure_ = std::current_exception();
      next_ = count_;
    }
  }

  void serve(unsigned member)
  {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      claim(member);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --busy_;
      }
      done_.notify_one();
    }
  }

  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(unsigned, std::size_t)>* job_ = nullptr;
  std::size_t count_ = 0;
  std::atomic<std::size_t> next_{0};
  std::exception_ptr failure_;
  unsigned busy_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace qrplate::host
