#include "util/lasting_threads.hpp"

#include <map>
#include <mutex>
#include <vector>

namespace qrplate::host {

namespace {

std::mutex lasting_mutex;

}  // namespace

thread_team& lasting_team(unsigned threads)
{
  static std::map<unsigned, thread_team*>* const teams = new std::map<unsigned, thread_team*>();  // never freed
  std::lock_guard<std::mutex> lock(lasting_mutex);
  thread_team*& team = (*teams)[threads];
  if (!team) team = new thread_team(threads);
  return *team;
}

namespace {

std::vector<background_thread*>& idle_background_threads()
{
  static std::vector<background_thread*>* const idle = new std::vector<background_thread*>();  // never freed
  return *idle;
}

}  // namespace

lasting_background_thread::lasting_background_thread()
{
  std::lock_guard<std::mutex> lock(lasting_mutex);
  std::vector<background_thread*>& idle = idle_background_threads();
  if (idle.empty()) {
    thread_ = new background_thread();
  } else {
    thread_ = idle.back();
    idle.pop_back();
  }
}

lasting_background_thread::~lasting_background_thread()
{
  try {
    thread_->wait();
  } catch (...) {  // the owner did not wait for a failed job: nothing to hand it to now
  }
  std::lock_guard<std::mutex> lock(lasting_mutex);
  idle_background_threads().push_back(thread_);
}

}  // namespace qrplate::host
