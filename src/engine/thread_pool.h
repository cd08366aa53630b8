// ThreadPool: a fixed set of worker threads, started once, that run one
// parallel region at a time together with the calling thread. A forward pass
// runs a few hundred regions per token (every matrix product, attention), so
// starting threads per region (tens of microseconds each) would cost more
// than the work; here a region costs about a microsecond: workers spin
// briefly on a generation counter between regions, then sleep on it
// (std::atomic::wait) so an idle pool uses no CPU.
//
// Thread safety: Run may be called from any thread; concurrent calls are
// serialized (the pool has one set of workers). Run must not be called from
// inside a region (it would wait for itself).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace xnai::engine {

class ThreadPool {
 public:
  // `n_threads` threads take part in each region: the caller and
  // n_threads - 1 workers (values below 1 mean 1: no workers). When a worker
  // cannot be started (the OS refuses), the pool runs with fewer.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads per region, the caller included.
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(thread_index, size()) once on each thread of the pool (the
  // caller is index 0) and returns when every call has returned. fn must not
  // throw.
  template <typename Fn>
  void Run(Fn&& fn) {
    RunRegion(&CallRegion<Fn>, &fn);
  }

  // Calls fn(begin, end) over [0, n) in pieces of at most `grain` items.
  // Each thread starts on its own contiguous share of the range and walks it
  // in order (long sequential streams for the hardware prefetcher), then
  // takes what is left of the others' shares, so a thread slowed by other
  // load on the machine ends up doing less. Runs on the calling thread alone
  // when n fits in one piece.
  template <typename Fn>
  void ParallelFor(int64_t n, int64_t grain, Fn&& fn) {
    if (grain < 1) grain = 1;
    if (n <= grain || size() == 1) {
      if (n > 0) fn(int64_t{0}, n);
      return;
    }
    const int n_shares = size();
    // next[s]: the first item of share s not taken yet.
    struct alignas(64) Cursor {
      std::atomic<int64_t> next;
    };
    std::vector<Cursor> cursors(static_cast<size_t>(n_shares));
    const int64_t per_share = (n + n_shares - 1) / n_shares;
    for (int s = 0; s < n_shares; ++s) cursors[s].next.store(s * per_share);
    Run([&](int thread_index, int) {
      for (int step = 0; step < n_shares; ++step) {
        const int share = (thread_index + step) % n_shares;
        const int64_t share_end = std::min(n, (share + 1) * per_share);
        for (;;) {
          const int64_t begin = cursors[share].next.fetch_add(grain, std::memory_order_relaxed);
          if (begin >= share_end) break;
          fn(begin, std::min(begin + grain, share_end));
        }
      }
    });
  }

 private:
  using RegionFn = void (*)(void* context, int thread_index, int n_threads);

  template <typename Fn>
  static void CallRegion(void* context, int thread_index, int n_threads) {
    (*static_cast<Fn*>(context))(thread_index, n_threads);
  }

  void RunRegion(RegionFn fn, void* context);
  void WorkerLoop(int thread_index);

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one region at a time
  // The current region; written by the caller before the generation bump.
  RegionFn region_fn_ = nullptr;
  void* region_context_ = nullptr;
  // Bumped once per region (and on shutdown); workers wait for it to change.
  std::atomic<uint32_t> generation_{0};
  // Workers still running the current region.
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
  // Sleeping after the spin: workers wait on wake_ for a new generation, the
  // caller on done_ for pending_ to reach zero.
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
};

}  // namespace xnai::engine
