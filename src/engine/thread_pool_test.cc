// ThreadPool: every thread runs each region once, ParallelFor covers its
// range exactly once, regions run back to back and from several callers.
#include "engine/thread_pool.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace xnai::engine {
namespace {

TEST(ThreadPoolTest, EveryThreadRunsEachRegionOnce) {
  for (int n_threads : {1, 2, 4}) {
    ThreadPool pool(n_threads);
    ASSERT_EQ(pool.size(), n_threads);
    std::vector<std::atomic<int>> calls(static_cast<size_t>(n_threads));
    for (int region = 0; region < 1000; ++region) {
      pool.Run([&](int index, int size) {
        EXPECT_EQ(size, n_threads);
        calls[static_cast<size_t>(index)].fetch_add(1);
      });
    }
    for (auto& count : calls) EXPECT_EQ(count.load(), 1000);
  }
}

TEST(ThreadPoolTest, ParallelForCoversTheRangeExactlyOnce) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 7, 64, 1000, 4097}) {
    for (int64_t grain : {1, 3, 64, 5000}) {
      std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
      pool.ParallelFor(n, grain, [&](int64_t begin, int64_t end) {
        ASSERT_LT(begin, end);
        ASSERT_LE(end - begin, grain);
        for (int64_t i = begin; i < end; ++i) seen[static_cast<size_t>(i)].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << i;
    }
  }
}

TEST(ThreadPoolTest, ConcurrentCallersTakeTurns) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int region = 0; region < 200; ++region) {
        pool.ParallelFor(100, 10, [&](int64_t begin, int64_t end) { total += end - begin; });
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(total.load(), 4 * 200 * 100);
}

TEST(ThreadPoolTest, IdlePoolSleepsAndWakes) {
  ThreadPool pool(2);
  std::atomic<int> calls{0};
  pool.Run([&](int, int) { ++calls; });
  // Long enough for the worker to stop spinning and sleep on the counter.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pool.Run([&](int, int) { ++calls; });
  EXPECT_EQ(calls.load(), 4);
}

}  // namespace
}  // namespace xnai::engine
