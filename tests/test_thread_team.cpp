// host::thread_team: every index once, on members below size() and never two at once on one
// member of a job, runs after runs on the same threads, several callers at once, the first
// exception rethrown after the job's claimed indices are done. host::background_thread: every job
// on the same thread (not the caller's), wait() until it is done and rethrowing what it threw.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "util/background_thread.hpp"
#include "util/lasting_threads.hpp"
#include "util/thread_team.hpp"

namespace {

using qrplate::host::background_thread;
using qrplate::host::thread_team;

TEST(BackgroundThread, EveryJobOnOneThreadBesideTheCaller)
{
  background_thread worker;
  worker.wait();  // nothing started: returns at once
  std::set<std::thread::id> ran_on;
  int done = 0;
  for (int job = 0; job < 50; ++job) {
    std::atomic<bool> release{false};
    worker.start([&] {
      while (!release) std::this_thread::yield();  // runs beside the caller until released
      ran_on.insert(std::this_thread::get_id());
      ++done;
    });
    release = true;
    worker.wait();
    EXPECT_EQ(done, job + 1);  // wait() returned after the job, not before
  }
  ASSERT_EQ(ran_on.size(), 1u);  // one thread for every job (the CUDA reads keep a context per thread)
  EXPECT_NE(*ran_on.begin(), std::this_thread::get_id());
  // run(): start and wait.
  worker.run([&] { ++done; });
  EXPECT_EQ(done, 51);
}

// The process's lasting threads: one team per thread count whose workers serve every caller, and
// background threads lent again once given back, so that per-thread GPU state is made once.
TEST(LastingThreads, TeamsAndBackgroundThreadsAreReused)
{
  qrplate::host::thread_team& team = qrplate::host::lasting_team(3);
  EXPECT_EQ(&qrplate::host::lasting_team(3), &team);
  EXPECT_NE(&qrplate::host::lasting_team(2), &team);
  std::mutex m;
  std::set<std::thread::id> seen;
  for (int run = 0; run < 20; ++run)
    qrplate::host::lasting_team(3).run(64, [&](unsigned, std::size_t) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      std::lock_guard<std::mutex> lock(m);
      seen.insert(std::this_thread::get_id());
    });
  EXPECT_LE(seen.size(), 3u);  // the caller and the same two workers, run after run
  std::thread::id first;
  {
    qrplate::host::lasting_background_thread lent;
    lent.run([&] { first = std::this_thread::get_id(); });
  }
  std::thread::id again;
  {
    qrplate::host::lasting_background_thread lent;  // the one given back above
    lent.run([&] { again = std::this_thread::get_id(); });
    qrplate::host::lasting_background_thread other;  // lent meanwhile: another thread
    std::thread::id third;
    other.run([&] { third = std::this_thread::get_id(); });
    EXPECT_NE(third, again);
  }
  EXPECT_EQ(again, first);
}

TEST(BackgroundThread, WaitRethrowsWhatTheJobThrewOnce)
{
  background_thread worker;
  worker.start([] { throw std::runtime_error("read failed"); });
  EXPECT_THROW(worker.wait(), std::runtime_error);
  worker.wait();  // the failure was handed over: no second throw
  int done = 0;
  worker.run([&] { done = 1; });  // and the thread still serves
  EXPECT_EQ(done, 1);
  // A job in hand when the owner goes is finished first.
  std::atomic<int> finished{0};
  {
    background_thread last;
    last.start([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      finished = 1;
    });
  }
  EXPECT_EQ(finished.load(), 1);
}

TEST(ThreadTeam, EveryIndexOnceOnMembersBelowSize)
{
  for (unsigned threads : {1u, 2u, 5u}) {
    thread_team team(threads);
    EXPECT_EQ(team.size(), threads);
    for (std::size_t count : {0u, 1u, 3u, 1000u}) {
      for (int again = 0; again < 20; ++again) {  // many runs on the same workers
        std::vector<std::atomic<int>> hits(count);
        std::atomic<unsigned> bad_member{0};
        team.run(count, [&](unsigned member, std::size_t i) {
          if (member >= threads) ++bad_member;
          ++hits[i];
        });
        EXPECT_EQ(bad_member, 0u);
        for (std::size_t i = 0; i < count; ++i) ASSERT_EQ(hits[i], 1) << "threads " << threads << ", index " << i;
      }
    }
  }
}

TEST(ThreadTeam, UsesItsWorkers)
{
  // Two members, each of whose indices waits until the other member has started one: only
  // finishes when a worker runs beside the caller.
  thread_team team(2);
  std::atomic<int> started{0};
  std::set<unsigned> members;
  std::mutex m;
  team.run(2, [&](unsigned member, std::size_t) {
    {
      std::lock_guard<std::mutex> lock(m);
      members.insert(member);
    }
    ++started;
    while (started < 2) std::this_thread::yield();
  });
  EXPECT_EQ(members.size(), 2u);
}

TEST(ThreadTeam, FirstExceptionIsRethrownAndTheTeamStaysUsable)
{
  thread_team team(3);
  std::atomic<int> ran{0};
  // Every other index takes a millisecond, so without the stop the run would take ~0.7 s.
  EXPECT_THROW(team.run(2000,
                        [&](unsigned, std::size_t i) {
                          ++ran;
                          if (i == 10) throw std::runtime_error("index 10");
                          std::this_thread::sleep_for(std::chrono::milliseconds(1));
                        }),
               std::runtime_error);
  EXPECT_LT(ran.load(), 2000);  // claiming stopped
  std::atomic<int> after{0};
  team.run(100, [&](unsigned, std::size_t) { ++after; });
  EXPECT_EQ(after, 100);
}

TEST(ThreadTeam, SeveralCallersAtOnceShareTheWorkers)
{
  // Three threads run jobs on one team at the same time (the plate encoder's main and writer
  // threads do): each job's indices run once each, and a member never runs two of one job's
  // indices at once (so members can index per-thread scratch).
  thread_team team(4);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 30; ++round) {
        const std::size_t count = 50 + static_cast<std::size_t>(c) * 37 + static_cast<std::size_t>(round);
        std::vector<std::atomic<int>> hits(count);
        std::vector<std::atomic<int>> busy(team.size());
        team.run(count, [&](unsigned member, std::size_t i) {
          if (member >= team.size() || busy[member].fetch_add(1) != 0) ++failures;
          ++hits[i];
          std::this_thread::yield();
          --busy[member];
        });
        for (std::size_t i = 0; i < count; ++i)
          if (hits[i] != 1) ++failures;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(failures, 0);
}

}  // namespace
