// qrplate's CUDA emulation: the runtime behind include/cuda_runtime.h. It exists so that the
// CUDA backend's host glue runs, and is held to the CPU backend, in CI without a GPU; it proves
// nothing about the device itself (timing, the memory model, warps, nvcc's code generation).
//
// What it models, and checks, beyond running the kernels' code:
// - Stream order, lazily: work queued on a stream runs only when something waits for it
//   (cudaStreamSynchronize, cudaEventSynchronize, cudaDeviceSynchronize, cudaFree, a synchronous
//   copy, a copy to or from pageable host memory, which CUDA makes synchronous), so a result read
//   before its wait, or a pinned buffer refilled before its upload ran, shows up as wrong data.
//   The legacy default stream waits for, and is waited for by, blocking streams only.
// - Device memory is not host memory: each allocation has pages of its own, closed to the host
//   (PROT_NONE) except while device work runs, so host code that dereferences a device pointer
//   faults; the allocation ends where a guard page starts, so a kernel that reads past its end faults; freed
//   memory stays mapped and closed (use after free faults). New device and pinned memory is filled
//   with 0xA5, as CUDA does not zero it. A fault in any of these prints what was touched.
// - Launch configuration limits (block <= 1024 threads, grid y/z <= 65535, dynamic shared memory
//   <= 48 KB unless cudaFuncSetAttribute raised it, <= 227 KB), copies within their allocations and
//   in the direction their kind says, and __syncthreads reached by every thread of a block.
// Threads of a block are fibers on the host thread that waits for the work, switched only at
// __syncthreads, in a shuffled order each round; blocks run one after another, also shuffled;
// all device work runs under one lock.
// Environment: QRPLATE_EMULATED_DEVICES (default 1; 0 emulates a machine without a device),
// QRPLATE_EMULATED_SMS (default 2), QRPLATE_EMULATED_MEMORY_MIB (default 81,920),
// QRPLATE_EMULATION_FENCE=0 (leave device memory open to the host), QRPLATE_EMULATION_SHUFFLE=0
// (threads and blocks in index order), QRPLATE_EMULATION_SEED (default 1).
#include <cuda_runtime.h>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define QRPLATE_EMU_ASM_FIBERS 1
#else
#include <ucontext.h>
#endif

struct qrplate_emu_stream {
  struct op {
    std::string what;
    std::function<void()> run;
  };
  std::deque<op> queue;
  bool blocking = true;
};

struct qrplate_emu_event {
  qrplate_emu_stream* stream = nullptr;
  bool recorded = false, done = false, timing = true;
  std::chrono::steady_clock::time_point at;
};

struct qrplate_emu_mem_pool {
  std::uint64_t release_threshold = 0;
};

namespace qrplate_emu {
namespace {

constexpr std::size_t page = 4096;
constexpr std::size_t default_shared_limit = 48 * 1024;
constexpr std::size_t shared_optin_limit = 232448;  // H100: 227 KB per block
constexpr std::size_t shared_per_sm = 233472;       // H100: 228 KB per SM
constexpr unsigned char fill = 0xA5;

int env_int(const char* name, int fallback)
{
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

struct settings {
  int devices = env_int("QRPLATE_EMULATED_DEVICES", 1);
  int sms = std::max(1, env_int("QRPLATE_EMULATED_SMS", 2));
  std::size_t memory = static_cast<std::size_t>(std::max(1, env_int("QRPLATE_EMULATED_MEMORY_MIB", 81920))) << 20;
  bool fence = env_int("QRPLATE_EMULATION_FENCE", 1) != 0;
};
const settings& config_of_emulation()
{
  static const settings s;
  return s;
}

// An allocation's mapping: a guard page, the data pages, a guard page.
struct allocation {
  char* map = nullptr;
  std::size_t map_bytes = 0;
  char* data = nullptr;  // the data pages
  std::size_t data_bytes = 0;
  char* user = nullptr;
  std::size_t bytes = 0;
  bool pinned = false;
};

std::mutex lock;  // everything below, and all device work
std::map<std::uintptr_t, allocation> live;  // by user address
std::deque<allocation> freed;               // quarantined (closed) mappings
std::size_t freed_bytes = 0;
std::size_t device_bytes = 0;
bool device_open = false;
qrplate_emu_stream legacy;
std::set<qrplate_emu_stream*> streams;  // created, not destroyed
std::set<qrplate_emu_event*> events;
std::map<kernel_id, int> shared_limits;  // cudaFuncAttributeMaxDynamicSharedMemorySize
qrplate_emu_mem_pool pool;
thread_local cudaError_t last_error = cudaSuccess;
thread_local const char* running_work = nullptr;  // what device work this thread runs, for fault reports

cudaError_t fail(cudaError_t e, const char* what)
{
  std::fprintf(stderr, "qrplate CUDA emulation: %s: %s\n", what, cudaGetErrorString(e));
  last_error = e;
  return e;
}

const allocation* find_locked(const void* p)
{
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = live.upper_bound(a);
  if (it == live.begin()) return nullptr;
  --it;
  const allocation& x = it->second;
  return a < reinterpret_cast<std::uintptr_t>(x.user) + std::max<std::size_t>(x.bytes, 1) ? &x : nullptr;
}

void protect(const allocation& a, bool open)
{
  if (a.pinned || !config_of_emulation().fence) return;
  if (mprotect(a.data, a.data_bytes, open ? PROT_READ | PROT_WRITE : PROT_NONE) != 0) {
    std::perror("qrplate CUDA emulation: mprotect");
    std::abort();
  }
}

void open_device_locked()
{
  if (device_open) return;
  for (const auto& [at, a] : live) protect(a, true);
  device_open = true;
}

void close_device_locked()
{
  if (!device_open) return;
  for (const auto& [at, a] : live) protect(a, false);
  device_open = false;
}

void install_fault_report();

void* allocate_locked(std::size_t bytes, bool pinned)
{
  install_fault_report();
  // The user's bytes end at the guard page exactly (a read one byte past the end faults); their
  // start is then aligned as the largest power of two dividing the size, enough for the arrays
  // qrplate allocates (CUDA gives 256 bytes, which no code here relies on).
  const std::size_t user_bytes = std::max<std::size_t>(bytes, 1);
  const std::size_t data_bytes = (user_bytes + page - 1) / page * page;
  allocation a;
  a.map_bytes = data_bytes + 2 * page;
  void* m = mmap(nullptr, a.map_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  a.map = static_cast<char*>(m);
  a.data = a.map + page;
  a.data_bytes = data_bytes;
  a.user = a.data + (data_bytes - user_bytes);
  a.bytes = bytes;
  a.pinned = pinned;
  if (mprotect(a.data, a.data_bytes, PROT_READ | PROT_WRITE) != 0) {
    munmap(a.map, a.map_bytes);
    return nullptr;
  }
  std::memset(a.data, fill, a.data_bytes);
  if (!device_open) protect(a, false);
  live.emplace(reinterpret_cast<std::uintptr_t>(a.user), a);
  if (!pinned) device_bytes += user_bytes;
  return a.user;
}

void release_locked(const allocation& a)
{
  allocation x = a;
  live.erase(reinterpret_cast<std::uintptr_t>(a.user));
  if (!x.pinned) device_bytes -= std::max<std::size_t>(x.bytes, 1);
  // Closed and kept mapped (its address is not reused), so that a late use faults; the oldest
  // quarantined mappings go once they pass 16 GiB of address space.
  mprotect(x.data, x.data_bytes, PROT_NONE);
  madvise(x.data, x.data_bytes, MADV_DONTNEED);
  freed.push_back(x);
  freed_bytes += x.map_bytes;
  while (freed_bytes > (std::size_t{16} << 30) && !freed.empty()) {
    munmap(freed.front().map, freed.front().map_bytes);
    freed_bytes -= freed.front().map_bytes;
    freed.pop_front();
  }
}

qrplate_emu_stream* resolve(cudaStream_t s) { return s == nullptr ? &legacy : s; }
bool valid_locked(qrplate_emu_stream* s) { return s == &legacy || streams.count(s) != 0; }

void flush_locked(qrplate_emu_stream* s)
{
  if (s->queue.empty()) return;
  const bool was_open = device_open;
  open_device_locked();
  while (!s->queue.empty()) {
    qrplate_emu_stream::op o = std::move(s->queue.front());
    s->queue.pop_front();
    running_work = o.what.c_str();
    o.run();
    running_work = nullptr;
  }
  if (!was_open) close_device_locked();
}

void flush_all_locked()
{
  flush_locked(&legacy);
  for (qrplate_emu_stream* s : streams) flush_locked(s);
}

// The legacy stream's implicit synchronisation with blocking streams, before work joins `s`.
void order_before_locked(qrplate_emu_stream* s)
{
  if (s == &legacy) {
    for (qrplate_emu_stream* o : streams)
      if (o->blocking) flush_locked(o);
  } else if (s->blocking) {
    flush_locked(&legacy);
  }
}

void enqueue_locked(qrplate_emu_stream* s, std::string what, std::function<void()> run)
{
  order_before_locked(s);
  s->queue.push_back({std::move(what), std::move(run)});
}

// Runs `run` now, in stream order on `s` (everything queued before it first).
void run_now_locked(qrplate_emu_stream* s, const char* what, const std::function<void()>& run)
{
  order_before_locked(s);
  flush_locked(s);
  const bool was_open = device_open;
  open_device_locked();
  running_work = what;
  run();
  running_work = nullptr;
  if (!was_open) close_device_locked();
}

// ---- fibers: the threads of one block ----

struct fiber {
  void* sp = nullptr;
  char* stack = nullptr;  // lowest usable address (a guard page lies below)
  thread_position position{};
  int state = 0;  // 0 runnable, 1 at a barrier, 2 finished
#if !defined(QRPLATE_EMU_ASM_FIBERS)
  ucontext_t context;
#endif
};

constexpr std::size_t stack_bytes = 512 * 1024;

struct block_runner {
  std::vector<fiber> fibers;
  std::vector<char*> stacks;  // mappings, each a guard page and stack_bytes
  void* scheduler_sp = nullptr;
#if !defined(QRPLATE_EMU_ASM_FIBERS)
  ucontext_t scheduler_context;
#endif
  fiber* running = nullptr;
  const std::function<void()>* body = nullptr;
  std::vector<unsigned char> dynamic_shared;
  std::vector<char> signal_stack;
  std::vector<std::size_t> turn;  // the order fibers run in this round
};

thread_local block_runner* runner = nullptr;
thread_local const thread_position* position = nullptr;

}  // namespace
}  // namespace qrplate_emu

extern "C" void qrplate_emu_fiber_main(qrplate_emu::fiber* f);

#if defined(QRPLATE_EMU_ASM_FIBERS)
// qrplate_emu_switch(save, to): saves the callee-saved registers, MXCSR and the x87 control word
// on this stack and its stack pointer in *save, then resumes the stack `to` was saved from.
// qrplate_emu_fiber_start: a new fiber's first return address; its fiber is in rbx.
extern "C" void qrplate_emu_switch(void** save, void* to);
asm(R"(
.text
.globl qrplate_emu_switch
.type qrplate_emu_switch,@function
qrplate_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size qrplate_emu_switch,.-qrplate_emu_switch
.globl qrplate_emu_fiber_start
.type qrplate_emu_fiber_start,@function
qrplate_emu_fiber_start:
  movq %rbx, %rdi
  call qrplate_emu_fiber_main@PLT
  ud2
.size qrplate_emu_fiber_start,.-qrplate_emu_fiber_start
)");
extern "C" void qrplate_emu_fiber_start();
#endif

namespace qrplate_emu {
namespace {

[[noreturn]] void die(const char* message)
{
  std::fprintf(stderr, "qrplate CUDA emulation: %s (in %s)\n", message, running_work ? running_work : "host code");
  std::fflush(stderr);
  std::abort();
}

void to_scheduler(fiber& f)
{
#if defined(QRPLATE_EMU_ASM_FIBERS)
  qrplate_emu_switch(&f.sp, runner->scheduler_sp);
#else
  swapcontext(&f.context, &runner->scheduler_context);
#endif
}

void to_fiber(fiber& f)
{
  runner->running = &f;
  position = &f.position;
#if defined(QRPLATE_EMU_ASM_FIBERS)
  qrplate_emu_switch(&runner->scheduler_sp, f.sp);
#else
  swapcontext(&runner->scheduler_context, &f.context);
#endif
  runner->running = nullptr;
  position = nullptr;
}

void start_fiber(fiber& f)
{
#if defined(QRPLATE_EMU_ASM_FIBERS)
  char* top = f.stack + stack_bytes - 64;  // 16-byte aligned
  // What qrplate_emu_switch pops: MXCSR and control word, r15..r12, rbx (the fiber), rbp, then
  // the return address; after the ret the stack pointer is 16-byte aligned, as a call expects.
  auto* sp = reinterpret_cast<std::uint64_t*>(top - 64);
  std::uint32_t mxcsr = 0;
  std::uint16_t cw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(cw));
  sp[0] = mxcsr | (static_cast<std::uint64_t>(cw) << 32);
  sp[1] = sp[2] = sp[3] = sp[4] = 0;
  sp[5] = reinterpret_cast<std::uint64_t>(&f);
  sp[6] = 0;
  sp[7] = reinterpret_cast<std::uint64_t>(&qrplate_emu_fiber_start);
  f.sp = sp;
#else
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = f.stack;
  f.context.uc_stack.ss_size = stack_bytes - 64;
  f.context.uc_link = nullptr;
  makecontext(&f.context, reinterpret_cast<void (*)()>(&qrplate_emu_fiber_main), 1, &f);
#endif
}

block_runner& this_threads_runner(std::size_t threads)
{
  if (runner == nullptr) {
    runner = new block_runner();  // kept for the thread's life, as its stacks are
    install_fault_report();
    // Faults on a fiber's stack guard need a stack of their own to be reported from; a thread that
    // has one already (a sanitizer's, which it unmaps at thread exit) keeps it.
    stack_t current{};
    if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) != 0) {
      runner->signal_stack.resize(64 * 1024);
      stack_t ss{};
      ss.ss_sp = runner->signal_stack.data();
      ss.ss_size = runner->signal_stack.size();
      sigaltstack(&ss, nullptr);
    }
  }
  block_runner& r = *runner;
  while (r.stacks.size() < threads) {
    void* m = mmap(nullptr, stack_bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) die("out of address space for fiber stacks");
    mprotect(m, page, PROT_NONE);
    r.stacks.push_back(static_cast<char*>(m));
  }
  if (r.fibers.size() < threads) r.fibers.resize(threads);
  for (std::size_t i = 0; i < threads; ++i) r.fibers[i].stack = r.stacks[i] + page;
  return r;
}

// The order threads of a block run in between barriers, and blocks in a grid: shuffled (seeded,
// so a run repeats), so that code which depends on an order CUDA does not promise (a thread
// reading what another writes without a barrier between, a block waiting on another) gives
// results that differ from the CPU's instead of passing by luck.
struct schedule {
  bool shuffled = env_int("QRPLATE_EMULATION_SHUFFLE", 1) != 0;
  std::uint64_t state = static_cast<std::uint64_t>(env_int("QRPLATE_EMULATION_SEED", 1)) * 0x9E3779B97F4A7C15ull + 1;
  std::uint64_t next()
  {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;  // xorshift64
    return state;
  }
};
thread_local schedule order;

void run_block(block_runner& r, std::size_t threads, const thread_position& block)
{
  const dim3 b = block.block_dim;
  std::vector<std::size_t>& turn = r.turn;
  turn.resize(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    fiber& f = r.fibers[i];
    f.position = block;
    f.position.thread_idx = {static_cast<unsigned>(i % b.x), static_cast<unsigned>(i / b.x % b.y),
                             static_cast<unsigned>(i / (static_cast<std::size_t>(b.x) * b.y))};
    f.state = 0;
    start_fiber(f);
    turn[i] = i;
  }
  std::size_t finished = 0;
  for (;;) {
    if (order.shuffled)
      for (std::size_t i = threads; i > 1; --i) std::swap(turn[i - 1], turn[order.next() % i]);
    std::size_t waiting = 0;
    for (std::size_t i = 0; i < threads; ++i) {
      fiber& f = r.fibers[turn[i]];
      if (f.state == 2) continue;
      to_fiber(f);
      if (f.state == 2) ++finished;
      else ++waiting;
    }
    if (waiting == 0) return;
    if (finished > 0) die("__syncthreads() reached by only some threads of a block (the others returned)");
    for (std::size_t i = 0; i < threads; ++i) r.fibers[i].state = 0;
  }
}

void run_grid(const config& c, const std::function<void()>& body)
{
  const std::size_t threads = static_cast<std::size_t>(c.block.x) * c.block.y * c.block.z;
  block_runner& r = this_threads_runner(threads);
  r.dynamic_shared.assign(std::max<std::size_t>(c.shared, 16), fill);
  const std::function<void()>* outer = r.body;
  r.body = &body;
  thread_position block{};
  block.block_dim = c.block;
  block.grid_dim = c.grid;
  // Blocks in the order k -> (k * stride + offset) mod n, stride coprime to n: a permutation.
  const std::uint64_t n = static_cast<std::uint64_t>(c.grid.x) * c.grid.y * c.grid.z;
  std::uint64_t stride = 1, offset = 0;
  if (order.shuffled && n > 1 && n < (std::uint64_t{1} << 32)) {  // k * stride < n^2 fits
    offset = order.next() % n;
    stride = 1 + order.next() % (n - 1);
    while (std::gcd(stride, n) != 1) stride = stride % (n - 1) + 1;  // reaches 1 at the latest
  }
  for (std::uint64_t k = 0; k < n; ++k) {
    const std::uint64_t b = (k * stride + offset) % n;
    block.block_idx = {static_cast<unsigned>(b % c.grid.x), static_cast<unsigned>(b / c.grid.x % c.grid.y),
                       static_cast<unsigned>(b / (static_cast<std::uint64_t>(c.grid.x) * c.grid.y))};
    run_block(r, threads, block);
  }
  r.body = outer;
}

// ---- fault reports ----

struct sigaction previous_segv;

void write_text(const char* s) { [[maybe_unused]] const ssize_t n = write(2, s, std::strlen(s)); }

void on_fault(int sig, siginfo_t* info, void*)
{
  const auto at = reinterpret_cast<std::uintptr_t>(info->si_addr);
  char text[512];
  const char* what = nullptr;
  std::uintptr_t base = 0;
  std::size_t bytes = 0;
  for (const auto& [u, a] : live) {
    const auto map = reinterpret_cast<std::uintptr_t>(a.map);
    if (at < map || at >= map + a.map_bytes) continue;
    base = u;
    bytes = a.bytes;
    if (at >= u && at < u + a.bytes) what = "device memory touched by host code (dereferenced a device pointer?)";
    else if (at >= u) what = "an access past the end of a device allocation";
    else what = "an access before the start of a device allocation";
  }
  if (what == nullptr)
    for (const allocation& a : freed) {
      const auto map = reinterpret_cast<std::uintptr_t>(a.map);
      if (at < map || at >= map + a.map_bytes) continue;
      base = reinterpret_cast<std::uintptr_t>(a.user);
      bytes = a.bytes;
      what = "a use of freed device memory";
    }
  if (what == nullptr && runner != nullptr)
    for (char* s : runner->stacks) {
      const auto m = reinterpret_cast<std::uintptr_t>(s);
      if (at >= m && at < m + page) what = "a kernel thread overflowed its emulated stack";
    }
  if (what != nullptr) {
    std::snprintf(text, sizeof text,
                  "qrplate CUDA emulation: %s, address %#lx (allocation at %#lx of %zu bytes) in %s\n", what,
                  static_cast<unsigned long>(at), static_cast<unsigned long>(base), bytes,
                  running_work ? running_work : "host code");
    write_text(text);
  }
  // Let the fault take its usual course.
  sigaction(sig, &previous_segv, nullptr);
}

void install_fault_report()
{
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa{};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
  });
}

// ---- copies ----

enum class side { host, device };

// Where [p, p + n) lies; an error when it starts in a device allocation and runs past its end.
cudaError_t classify_locked(const void* p, std::size_t n, side& s, const char* who)
{
  if (p == nullptr) return fail(cudaErrorInvalidValue, (std::string(who) + ": a null pointer").c_str());
  const allocation* a = find_locked(p);
  if (a == nullptr || a->pinned) {
    s = side::host;
    if (a != nullptr && static_cast<const char*>(p) + n > a->user + a->bytes)
      return fail(cudaErrorInvalidValue, (std::string(who) + ": runs past the end of a pinned allocation").c_str());
    return cudaSuccess;
  }
  if (static_cast<const char*>(p) + n > a->user + a->bytes)
    return fail(cudaErrorInvalidValue, (std::string(who) + ": runs past the end of a device allocation").c_str());
  s = side::device;
  return cudaSuccess;
}

bool pinned_locked(const void* p)
{
  const allocation* a = find_locked(p);
  return a != nullptr && a->pinned;
}

cudaError_t check_kind(cudaMemcpyKind kind, side dst, side src, const char* who)
{
  const bool ok = kind == cudaMemcpyDefault || (kind == cudaMemcpyHostToDevice && dst == side::device && src == side::host) ||
                  (kind == cudaMemcpyDeviceToHost && dst == side::host && src == side::device) ||
                  (kind == cudaMemcpyDeviceToDevice && dst == side::device && src == side::device) ||
                  (kind == cudaMemcpyHostToHost && dst == side::host && src == side::host);
  return ok ? cudaSuccess
            : fail(cudaErrorInvalidMemcpyDirection,
                   (std::string(who) + ": the pointers are not on the sides the copy's kind names").c_str());
}

// A 2-D copy (a 1-D one is a single row): checks, then runs it in stream order. Copies between
// pageable host memory and the device run at once (CUDA stages or waits for them); the others wait
// in the stream's queue.
cudaError_t copy_2d(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                    std::size_t height, cudaMemcpyKind kind, cudaStream_t stream, bool synchronous, const char* who)
{
  std::lock_guard<std::mutex> g(lock);
  qrplate_emu_stream* s = resolve(stream);
  if (!valid_locked(s)) return fail(cudaErrorInvalidResourceHandle, who);
  if (width == 0 || height == 0) return cudaSuccess;
  if (width > dpitch || width > spitch) return fail(cudaErrorInvalidValue, (std::string(who) + ": width > pitch").c_str());
  side ds = side::host, ss = side::host;
  cudaError_t e = classify_locked(dst, dpitch * (height - 1) + width, ds, who);
  if (e == cudaSuccess) e = classify_locked(src, spitch * (height - 1) + width, ss, who);
  if (e == cudaSuccess) e = check_kind(kind, ds, ss, who);
  if (e != cudaSuccess) return e;
  auto* d = static_cast<char*>(dst);
  const auto* from = static_cast<const char*>(src);
  auto copy = [=] {
    for (std::size_t r = 0; r < height; ++r) std::memmove(d + r * dpitch, from + r * spitch, width);
  };
  const bool pageable = (ds == side::host && !pinned_locked(dst)) || (ss == side::host && !pinned_locked(src));
  if (synchronous) {
    // cudaMemcpy: on the legacy stream, and complete on return.
    enqueue_locked(&legacy, who, copy);
    flush_locked(&legacy);
  } else if (pageable) {
    run_now_locked(s, who, copy);
  } else {
    enqueue_locked(s, who, copy);
  }
  return cudaSuccess;
}

}  // namespace

// ---- the kernel language ----

const thread_position& current()
{
  if (position == nullptr) die("threadIdx or blockIdx used outside a kernel");
  return *position;
}

void syncthreads()
{
  if (runner == nullptr || runner->running == nullptr) die("__syncthreads() outside a kernel");
  fiber& f = *runner->running;
  f.state = 1;
  to_scheduler(f);
}

unsigned char* dynamic_shared()
{
  if (runner == nullptr || runner->running == nullptr) die("dynamic shared memory outside a kernel");
  return runner->dynamic_shared.data();
}

void launch_grid(kernel_id kernel, const char* name, const config& c, std::function<void()> body)
{
  const std::size_t threads = static_cast<std::size_t>(c.block.x) * c.block.y * c.block.z;
  std::lock_guard<std::mutex> g(lock);
  std::string what = std::string("kernel ") + name;
  if (threads == 0 || threads > 1024 || c.block.z > 64 || c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 ||
      c.grid.x > 0x7fffffffu || c.grid.y > 65535 || c.grid.z > 65535) {
    fail(cudaErrorInvalidConfiguration, what.c_str());
    return;
  }
  const auto limit = shared_limits.find(kernel);
  const std::size_t max_shared =
      limit == shared_limits.end() ? default_shared_limit : static_cast<std::size_t>(limit->second);
  if (c.shared > max_shared) {
    fail(cudaErrorInvalidValue, (what + ": more dynamic shared memory than the kernel's limit").c_str());
    return;
  }
  qrplate_emu_stream* s = resolve(c.stream);
  if (!valid_locked(s)) {
    fail(cudaErrorInvalidResourceHandle, what.c_str());
    return;
  }
  const config cfg = c;
  enqueue_locked(s, std::move(what), [cfg, body = std::move(body)] { run_grid(cfg, body); });
}

cudaError_t enqueue(cudaStream_t stream, const char* what, std::function<void()> work)
{
  std::lock_guard<std::mutex> g(lock);
  qrplate_emu_stream* s = resolve(stream);
  if (!valid_locked(s)) return fail(cudaErrorInvalidResourceHandle, what);
  enqueue_locked(s, what, std::move(work));
  return cudaSuccess;
}

bool is_device_range(const void* p, std::size_t bytes)
{
  std::lock_guard<std::mutex> g(lock);
  const allocation* a = find_locked(p);
  return a != nullptr && !a->pinned && static_cast<const char*>(p) + bytes <= a->user + a->bytes;
}

cudaError_t set_func_attribute(kernel_id kernel, cudaFuncAttribute attr, int value)
{
  std::lock_guard<std::mutex> g(lock);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<std::size_t>(value) > shared_optin_limit)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute");
  shared_limits[kernel] = value;
  return cudaSuccess;
}

cudaError_t occupancy(int* blocks, kernel_id kernel, int block_size, std::size_t dynamic_shared)
{
  (void)kernel;
  if (blocks == nullptr || block_size <= 0 || block_size > 1024) return fail(cudaErrorInvalidValue, "occupancy");
  if (dynamic_shared > shared_optin_limit) {
    *blocks = 0;
    return cudaSuccess;
  }
  const std::size_t by_threads = 2048 / static_cast<std::size_t>(block_size);
  const std::size_t by_shared = shared_per_sm / (dynamic_shared + 1024);
  *blocks = static_cast<int>(std::min<std::size_t>({32, by_threads, by_shared}));
  return cudaSuccess;
}

}  // namespace qrplate_emu

extern "C" void qrplate_emu_fiber_main(qrplate_emu::fiber* f)
{
  (*qrplate_emu::runner->body)();
  f->state = 2;
  qrplate_emu::to_scheduler(*f);
  std::abort();  // a finished fiber is never resumed
}

using namespace qrplate_emu;

const char* cudaGetErrorString(cudaError_t error)
{
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
  }
  return "unknown error";
}

const char* cudaGetErrorName(cudaError_t error) { return cudaGetErrorString(error); }

cudaError_t cudaGetLastError()
{
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return last_error; }

cudaError_t cudaGetDeviceCount(int* count)
{
  if (count == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDeviceCount");
  *count = std::max(0, config_of_emulation().devices);
  if (*count == 0) {
    last_error = cudaErrorNoDevice;
    return cudaErrorNoDevice;
  }
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device)
{
  if (config_of_emulation().devices <= 0) return fail(cudaErrorNoDevice, "cudaGetDevice");
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
  return device >= 0 && device < config_of_emulation().devices ? cudaSuccess
                                                               : fail(cudaErrorInvalidDevice, "cudaSetDevice");
}

// How host threads wait for the device: the emulated device runs queued work on the waiting
// thread, so every schedule is the same here; the flags are checked, not used.
cudaError_t cudaSetDeviceFlags(unsigned flags)
{
  const unsigned schedule = flags & 0x07u;
  const bool one = schedule == cudaDeviceScheduleAuto || schedule == cudaDeviceScheduleSpin ||
                   schedule == cudaDeviceScheduleYield || schedule == cudaDeviceScheduleBlockingSync;
  return one && (flags & ~0x07u) == 0 ? cudaSuccess : fail(cudaErrorInvalidValue, "cudaSetDeviceFlags");
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device)
{
  if (value == nullptr || device != 0 || config_of_emulation().devices <= 0)
    return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute");
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = config_of_emulation().sms; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(shared_optin_limit); return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute");
}

// Named so that no figure measured on the emulator can pass for a GPU's.
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device)
{
  if (prop == nullptr || device != 0 || config_of_emulation().devices <= 0)
    return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "qrplate CUDA emulator (on the CPU, not a GPU)");
  prop->totalGlobalMem = std::size_t{1} << 32;
  prop->multiProcessorCount = config_of_emulation().sms;
  prop->major = 9;
  prop->minor = 0;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version)
{
  if (version == nullptr) return fail(cudaErrorInvalidValue, "cudaDriverGetVersion");
  *version = 0;  // no driver
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version)
{
  if (version == nullptr) return fail(cudaErrorInvalidValue, "cudaRuntimeGetVersion");
  *version = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize()
{
  std::lock_guard<std::mutex> g(lock);
  flush_all_locked();
  return cudaSuccess;
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* p, int device)
{
  if (p == nullptr || device != 0) return fail(cudaErrorInvalidValue, "cudaDeviceGetDefaultMemPool");
  *p = &pool;
  return cudaSuccess;
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t p, cudaMemPoolAttr attr, void* value)
{
  if (p != &pool || attr != cudaMemPoolAttrReleaseThreshold || value == nullptr)
    return fail(cudaErrorInvalidValue, "cudaMemPoolSetAttribute");
  std::memcpy(&pool.release_threshold, value, sizeof pool.release_threshold);
  return cudaSuccess;
}

namespace {

cudaError_t malloc_device(void** p, std::size_t bytes, const char* who)
{
  if (p == nullptr) return fail(cudaErrorInvalidValue, who);
  if (config_of_emulation().devices <= 0) return fail(cudaErrorNoDevice, who);
  std::lock_guard<std::mutex> g(lock);
  if (device_bytes + bytes > config_of_emulation().memory) {
    last_error = cudaErrorMemoryAllocation;  // expected by callers that fall back: no message
    return cudaErrorMemoryAllocation;
  }
  *p = allocate_locked(bytes, false);
  if (*p == nullptr) return fail(cudaErrorMemoryAllocation, who);
  return cudaSuccess;
}

cudaError_t free_device(void* p, const char* who)
{
  const allocation* a = find_locked(p);
  if (a == nullptr || a->pinned || a->user != p) return fail(cudaErrorInvalidValue, who);
  release_locked(*a);
  return cudaSuccess;
}

}  // namespace

cudaError_t cudaMalloc(void** p, std::size_t bytes) { return malloc_device(p, bytes, "cudaMalloc"); }

cudaError_t cudaFree(void* p)
{
  if (p == nullptr) return cudaSuccess;
  std::lock_guard<std::mutex> g(lock);
  flush_all_locked();  // cudaFree waits for the device
  return free_device(p, "cudaFree");
}

cudaError_t cudaMallocHost(void** p, std::size_t bytes)
{
  if (p == nullptr) return fail(cudaErrorInvalidValue, "cudaMallocHost");
  std::lock_guard<std::mutex> g(lock);
  *p = allocate_locked(bytes, true);
  return *p != nullptr ? cudaSuccess : fail(cudaErrorMemoryAllocation, "cudaMallocHost");
}

cudaError_t cudaHostAlloc(void** p, std::size_t bytes, unsigned flags)
{
  if ((flags & ~unsigned{cudaHostAllocPortable}) != 0) return fail(cudaErrorInvalidValue, "cudaHostAlloc: flags");
  return cudaMallocHost(p, bytes);
}

// As CUDA 11 and later: a host pointer CUDA does not know is no error, its type is unregistered.
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* p)
{
  if (attributes == nullptr) return fail(cudaErrorInvalidValue, "cudaPointerGetAttributes");
  std::lock_guard<std::mutex> g(lock);
  const allocation* a = find_locked(p);
  attributes->device = 0;
  attributes->type = a == nullptr ? cudaMemoryTypeUnregistered : a->pinned ? cudaMemoryTypeHost : cudaMemoryTypeDevice;
  attributes->hostPointer = a != nullptr && a->pinned ? const_cast<void*>(p) : nullptr;
  attributes->devicePointer = a != nullptr ? const_cast<void*>(p) : nullptr;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* p)
{
  if (p == nullptr) return cudaSuccess;
  std::lock_guard<std::mutex> g(lock);
  flush_all_locked();
  const allocation* a = find_locked(p);
  if (a == nullptr || !a->pinned || a->user != p) return fail(cudaErrorInvalidValue, "cudaFreeHost");
  release_locked(*a);
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t stream)
{
  {
    std::lock_guard<std::mutex> g(lock);
    if (!valid_locked(resolve(stream))) return fail(cudaErrorInvalidResourceHandle, "cudaMallocAsync");
  }
  return malloc_device(p, bytes, "cudaMallocAsync");
}

cudaError_t cudaFreeAsync(void* p, cudaStream_t stream)
{
  std::lock_guard<std::mutex> g(lock);
  qrplate_emu_stream* s = resolve(stream);
  if (!valid_locked(s)) return fail(cudaErrorInvalidResourceHandle, "cudaFreeAsync");
  const allocation* a = find_locked(p);
  if (a == nullptr || a->pinned || a->user != p) return fail(cudaErrorInvalidValue, "cudaFreeAsync");
  enqueue_locked(s, "cudaFreeAsync", [p] {
    // Under the lock already (work runs with it held).
    const allocation* x = find_locked(p);
    if (x == nullptr) die("cudaFreeAsync of memory freed meanwhile");
    release_locked(*x);
  });
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind)
{
  return copy_2d(dst, bytes, src, bytes, bytes, 1, kind, nullptr, true, "cudaMemcpy");
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t stream)
{
  return copy_2d(dst, bytes, src, bytes, bytes, 1, kind, stream, false, "cudaMemcpyAsync");
}

cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                              std::size_t height, cudaMemcpyKind kind, cudaStream_t stream)
{
  return copy_2d(dst, dpitch, src, spitch, width, height, kind, stream, false, "cudaMemcpy2DAsync");
}

namespace {

cudaError_t memset_on(void* p, int value, std::size_t bytes, cudaStream_t stream, bool synchronous, const char* who)
{
  std::lock_guard<std::mutex> g(lock);
  qrplate_emu_stream* s = resolve(stream);
  if (!valid_locked(s)) return fail(cudaErrorInvalidResourceHandle, who);
  if (bytes == 0) return cudaSuccess;
  side d = side::host;
  const cudaError_t e = classify_locked(p, bytes, d, who);
  if (e != cudaSuccess) return e;
  if (d != side::device) return fail(cudaErrorInvalidValue, (std::string(who) + ": not device memory").c_str());
  auto* q = static_cast<unsigned char*>(p);
  enqueue_locked(s, who, [q, value, bytes] { std::memset(q, value, bytes); });
  if (synchronous) flush_locked(s);
  return cudaSuccess;
}

}  // namespace

cudaError_t cudaMemset(void* p, int value, std::size_t bytes) { return memset_on(p, value, bytes, nullptr, true, "cudaMemset"); }

cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t stream)
{
  return memset_on(p, value, bytes, stream, false, "cudaMemsetAsync");
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags)
{
  if (stream == nullptr || (flags & ~1u) != 0) return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags");
  if (config_of_emulation().devices <= 0) return fail(cudaErrorNoDevice, "cudaStreamCreateWithFlags");
  std::lock_guard<std::mutex> g(lock);
  auto* s = new qrplate_emu_stream();
  s->blocking = (flags & cudaStreamNonBlocking) == 0;
  streams.insert(s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
  std::lock_guard<std::mutex> g(lock);
  if (stream == nullptr || streams.count(stream) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy");
  flush_locked(stream);  // its work still completes
  streams.erase(stream);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
  std::lock_guard<std::mutex> g(lock);
  qrplate_emu_stream* s = resolve(stream);
  if (!valid_locked(s)) return fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize");
  if (s == &legacy) order_before_locked(s);  // the legacy stream also waits for blocking streams
  flush_locked(s);
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags)
{
  if (event == nullptr || (flags & ~unsigned{cudaEventDisableTiming}) != 0)
    return fail(cudaErrorInvalidValue, "cudaEventCreateWithFlags");
  std::lock_guard<std::mutex> g(lock);
  *event = new qrplate_emu_event();
  (*event)->timing = (flags & cudaEventDisableTiming) == 0;
  events.insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event)
{
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
  std::lock_guard<std::mutex> g(lock);
  if (events.erase(event) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy");
  // Kept allocated: a record of it may still wait in a queue.
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
  std::lock_guard<std::mutex> g(lock);
  qrplate_emu_stream* s = resolve(stream);
  if (events.count(event) == 0 || !valid_locked(s)) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord");
  event->stream = s;
  event->recorded = true;
  event->done = false;
  enqueue_locked(s, "cudaEventRecord", [event] {
    event->done = true;
    event->at = std::chrono::steady_clock::now();
  });
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
  std::lock_guard<std::mutex> g(lock);
  if (events.count(event) == 0) return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize");
  if (event->recorded && !event->done && valid_locked(event->stream)) flush_locked(event->stream);
  return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end)
{
  std::lock_guard<std::mutex> g(lock);
  if (ms == nullptr || events.count(start) == 0 || events.count(end) == 0)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime");
  if (!start->timing || !end->timing)
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime (an event without timing)");
  if (!start->done || !end->done) return cudaErrorNotReady;
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}
