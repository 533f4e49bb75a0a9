// One thread that stays, running one job at a time beside its owner: the scan reader's reads
// ahead (scan_reader.cpp) run there while the owner registers the next tiles. The same thread for
// every job, because the CUDA reads keep their stream and device buffers per host thread
// (read_codes_cuda.cu): a thread per job would leave a context behind for each.
#pragma once

#include <cassert>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace qrplate::host {

class background_thread {
 public:
  background_thread() : thread_([this] { serve(); }) {}
  // Waits for the job in hand (its failure, if any, is dropped: a destructor does not throw).
  ~background_thread()
  {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      idle_.wait(lock, [&] { return !job_; });
      stopping_ = true;
    }
    work_.notify_one();
    thread_.join();
  }
  background_thread(const background_thread&) = delete;
  background_thread& operator=(const background_thread&) = delete;

  // Starts `job` there; the one started before must have been waited for (wait()).
  void start(std::function<void()> job)
  {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      assert(!job_ && "background_thread: wait() for a job before starting the next");
      job_ = std::move(job);
      failure_ = nullptr;
    }
    work_.notify_one();
  }
  // Until the job started last is done (at once when none is running); rethrows what it threw.
  void wait()
  {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [&] { return !job_; });
    if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
  }
  // start(job) and wait(): the job on this thread, the caller waiting.
  void run(std::function<void()> job)
  {
    start(std::move(job));
    wait();
  }

 private:
  void serve()
  {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      work_.wait(lock, [&] { return job_ || stopping_; });
      if (!job_) return;  // stopping, nothing left
      lock.unlock();
      std::exception_ptr failure;
      try {
        job_();
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      failure_ = failure;
      job_ = nullptr;
      idle_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable work_, idle_;
  std::function<void()> job_;  // set: running (or about to)
  std::exception_ptr failure_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the members it uses exist
};

}  // namespace qrplate::host
