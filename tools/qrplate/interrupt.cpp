#include "interrupt.hpp"

namespace qrplate::cli {

std::atomic<int> interrupt_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "a signal handler may only touch lock-free atomics");

namespace {
extern "C" void on_interrupt(int sig) { interrupt_signal.store(sig, std::memory_order_relaxed); }
}  // namespace

interrupt_guard::interrupt_guard()
{
  interrupt_signal = 0;
  for (int k = 0; k < 2; ++k) {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    installed_[k] = ::sigaction(signals_[k], nullptr, &old_[k]) == 0 && old_[k].sa_handler != SIG_IGN &&
                    ::sigaction(signals_[k], &sa, nullptr) == 0;
  }
}

interrupt_guard::~interrupt_guard()
{
  for (int k = 0; k < 2; ++k)
    if (installed_[k]) ::sigaction(signals_[k], &old_[k], nullptr);
}

std::string signal_name(int signal_number)
{
  if (signal_number == SIGINT) return "SIGINT";
  if (signal_number == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal_number);
}

}  // namespace qrplate::cli
