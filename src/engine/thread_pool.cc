#include "engine/thread_pool.h"

#include <system_error>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace xnai::engine {

namespace {

// How long a thread spins before sleeping (a pause is ~50-150 cycles, so
// this is some tens of microseconds): long enough to cover the gap between
// two regions of one forward pass (a norm, a RoPE: microseconds), short
// enough that a pool between requests goes to sleep at once and that, on an
// oversubscribed machine, a spinning thread does not hold the core for long
// while the thread it waits for is descheduled.
constexpr int kSpinIterations = 1 << 11;

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  const int n_workers = n_threads > 1 ? n_threads - 1 : 0;
  workers_.reserve(static_cast<size_t>(n_workers));
  for (int i = 0; i < n_workers; ++i) {
    try {
      workers_.emplace_back([this, index = i + 1] { WorkerLoop(index); });
    } catch (const std::system_error&) {
      break;  // run with the threads we have
    }
  }
}

ThreadPool::~ThreadPool() {
  stopping_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  { std::lock_guard<std::mutex> sleep_lock(sleep_mutex_); }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::RunRegion(RegionFn fn, void* context) {
  const int n_threads = size();
  if (n_threads == 1) {
    fn(context, 0, 1);
    return;
  }
  std::lock_guard<std::mutex> lock(run_mutex_);
  region_fn_ = fn;
  region_context_ = context;
  pending_.store(n_threads - 1, std::memory_order_relaxed);
  // The release pairs with the workers' acquire load of the generation: they
  // see region_fn_, region_context_ and pending_.
  generation_.fetch_add(1, std::memory_order_release);
  // A worker past its spin checks the generation under sleep_mutex_ before it
  // waits; taking the mutex here orders this bump against that check, so the
  // notify cannot fall between them and be lost.
  { std::lock_guard<std::mutex> sleep_lock(sleep_mutex_); }
  wake_.notify_all();

  fn(context, 0, n_threads);

  // Wait for the workers: spin, then sleep on pending_.
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kSpinIterations) {
      CpuRelax();
    } else {
      std::unique_lock<std::mutex> sleep_lock(sleep_mutex_);
      done_.wait(sleep_lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
  }
}

void ThreadPool::WorkerLoop(int thread_index) {
  // Generation 0 is "no region yet", whenever this thread gets to run: a
  // region started before it was scheduled must still be seen as new.
  uint32_t seen = 0;
  for (;;) {
    int spins = 0;
    uint32_t current;
    while ((current = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinIterations) {
        CpuRelax();
      } else {
        std::unique_lock<std::mutex> sleep_lock(sleep_mutex_);
        wake_.wait(sleep_lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
    }
    seen = current;
    if (stopping_.load(std::memory_order_acquire)) return;
    region_fn_(region_context_, thread_index, size());
    // The last worker to finish wakes a caller that went to sleep.
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      { std::lock_guard<std::mutex> sleep_lock(sleep_mutex_); }
      done_.notify_one();
    }
  }
}

}  // namespace xnai::engine
