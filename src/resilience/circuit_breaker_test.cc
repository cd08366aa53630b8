#include "resilience/circuit_breaker.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace xnai::resilience {
namespace {

using std::chrono::milliseconds;
using TimePoint = std::chrono::steady_clock::time_point;

// A clock the test moves by hand.
struct FakeClock {
  TimePoint now = TimePoint() + std::chrono::hours(1);
  CircuitBreaker::Clock AsClock() {
    return [this] { return now; };
  }
  void Advance(milliseconds by) { now += by; }
};

CircuitBreakerOptions Options(int failures, int open_ms, int probes) {
  CircuitBreakerOptions options;
  options.failure_threshold = failures;
  options.open_duration = milliseconds(open_ms);
  options.half_open_probes = probes;
  return options;
}

// Reports `n` admitted calls that failed.
void FailCalls(CircuitBreaker& breaker, int n) {
  for (int call_idx = 0; call_idx < n; ++call_idx) {
    ASSERT_TRUE(breaker.Allow());
    breaker.RecordFailure();
  }
}

TEST(CircuitBreakerTest, StartsClosedAndAllows) {
  CircuitBreaker breaker(Options(3, 1000, 1));
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_TRUE(breaker.Allow());
  breaker.RecordSuccess();
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(breaker.RetryAfter(), milliseconds(0));
  EXPECT_EQ(breaker.counters().successes, 1);
}

TEST(CircuitBreakerTest, OpensAfterThresholdConsecutiveFailures) {
  FakeClock clock;
  CircuitBreaker breaker(Options(3, 1000, 1), clock.AsClock());
  FailCalls(breaker, 2);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(breaker.counters().consecutive_failures, 2);
  FailCalls(breaker, 1);
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker.counters().opens, 1);
}

TEST(CircuitBreakerTest, SuccessResetsTheRunOfFailures) {
  CircuitBreaker breaker(Options(3, 1000, 1));
  FailCalls(breaker, 2);
  ASSERT_TRUE(breaker.Allow());
  breaker.RecordSuccess();
  EXPECT_EQ(breaker.counters().consecutive_failures, 0);
  FailCalls(breaker, 2);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(breaker.counters().failures, 4);
}

TEST(CircuitBreakerTest, IgnoredOutcomesNeitherOpenNorReset) {
  CircuitBreaker breaker(Options(2, 1000, 1));
  FailCalls(breaker, 1);
  for (int call_idx = 0; call_idx < 10; ++call_idx) {
    ASSERT_TRUE(breaker.Allow());
    breaker.RecordIgnored();
  }
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(breaker.counters().consecutive_failures, 1);
  FailCalls(breaker, 1);
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
}

TEST(CircuitBreakerTest, OpenRejectsAndCountsRejections) {
  FakeClock clock;
  CircuitBreaker breaker(Options(1, 1000, 1), clock.AsClock());
  FailCalls(breaker, 1);
  for (int call_idx = 0; call_idx < 5; ++call_idx) EXPECT_FALSE(breaker.Allow());
  EXPECT_EQ(breaker.counters().rejections, 5);
  // Failures reported while open (calls admitted earlier) change nothing.
  breaker.RecordFailure();
  EXPECT_EQ(breaker.counters().opens, 1);
  EXPECT_EQ(breaker.RetryAfter(), milliseconds(1000));
}

TEST(CircuitBreakerTest, CoolDownFollowsTheClock) {
  FakeClock clock;
  CircuitBreaker breaker(Options(1, 1000, 1), clock.AsClock());
  FailCalls(breaker, 1);
  clock.Advance(milliseconds(400));
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker.RetryAfter(), milliseconds(600));
  EXPECT_FALSE(breaker.Allow());
  clock.Advance(milliseconds(599));
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker.RetryAfter(), milliseconds(1));
  clock.Advance(milliseconds(1));
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
  EXPECT_EQ(breaker.RetryAfter(), milliseconds(0));
}

TEST(CircuitBreakerTest, HalfOpenAdmitsOnlyTheProbes) {
  FakeClock clock;
  CircuitBreaker breaker(Options(1, 1000, 2), clock.AsClock());
  FailCalls(breaker, 1);
  clock.Advance(milliseconds(1000));
  EXPECT_TRUE(breaker.Allow());
  EXPECT_TRUE(breaker.Allow());
  EXPECT_FALSE(breaker.Allow());  // two probes in flight
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
  breaker.RecordSuccess();
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);  // one of two successes
  EXPECT_TRUE(breaker.Allow());                         // its slot is free again
  breaker.RecordSuccess();
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_TRUE(breaker.Allow());
  EXPECT_EQ(breaker.counters().consecutive_failures, 0);
}

TEST(CircuitBreakerTest, FailureInHalfOpenReopensWithANewCoolDown) {
  FakeClock clock;
  CircuitBreaker breaker(Options(2, 1000, 1), clock.AsClock());
  FailCalls(breaker, 2);
  clock.Advance(milliseconds(1500));
  ASSERT_TRUE(breaker.Allow());
  breaker.RecordFailure();
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker.counters().opens, 2);
  EXPECT_EQ(breaker.RetryAfter(), milliseconds(1000));
  clock.Advance(milliseconds(999));
  EXPECT_FALSE(breaker.Allow());
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(breaker.Allow());
  breaker.RecordSuccess();
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

TEST(CircuitBreakerTest, IgnoredProbeFreesItsSlot) {
  FakeClock clock;
  CircuitBreaker breaker(Options(1, 1000, 1), clock.AsClock());
  FailCalls(breaker, 1);
  clock.Advance(milliseconds(1000));
  ASSERT_TRUE(breaker.Allow());
  EXPECT_FALSE(breaker.Allow());
  breaker.RecordIgnored();
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
  EXPECT_TRUE(breaker.Allow());
}

TEST(CircuitBreakerTest, SilentProbeLosesItsSlotAfterACoolDown) {
  FakeClock clock;
  CircuitBreaker breaker(Options(1, 1000, 1), clock.AsClock());
  FailCalls(breaker, 1);
  clock.Advance(milliseconds(1000));
  ASSERT_TRUE(breaker.Allow());  // this probe never reports
  clock.Advance(milliseconds(999));
  EXPECT_FALSE(breaker.Allow());
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(breaker.Allow());
}

TEST(CircuitBreakerTest, SuccessWhileOpenDoesNotClose) {
  FakeClock clock;
  CircuitBreaker breaker(Options(1, 1000, 1), clock.AsClock());
  ASSERT_TRUE(breaker.Allow());  // a slow call admitted while closed
  FailCalls(breaker, 1);
  breaker.RecordSuccess();  // the slow call ends well
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(breaker.counters().successes, 1);
}

TEST(CircuitBreakerTest, ZeroCoolDownGoesStraightToHalfOpen) {
  CircuitBreaker breaker(Options(1, 0, 1));
  FailCalls(breaker, 1);
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
  EXPECT_TRUE(breaker.Allow());
}

TEST(CircuitBreakerTest, OptionsBelowTheMinimumsAreRaised) {
  CircuitBreaker breaker(Options(0, -5, 0));
  EXPECT_EQ(breaker.options().failure_threshold, 1);
  EXPECT_EQ(breaker.options().half_open_probes, 1);
  EXPECT_EQ(breaker.options().open_duration, milliseconds(0));
}

TEST(CircuitBreakerTest, ListenerSeesEveryTransition) {
  FakeClock clock;
  CircuitBreaker breaker(Options(1, 1000, 1), clock.AsClock());
  std::vector<std::pair<BreakerState, BreakerState>> seen;
  breaker.SetListener([&](BreakerState from, BreakerState to) {
    seen.emplace_back(from, to);
    EXPECT_EQ(breaker.state(), to);  // no lock is held while notifying
  });
  FailCalls(breaker, 1);
  clock.Advance(milliseconds(1000));
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
  ASSERT_TRUE(breaker.Allow());
  breaker.RecordFailure();
  clock.Advance(milliseconds(1000));
  ASSERT_TRUE(breaker.Allow());
  breaker.RecordSuccess();
  const std::vector<std::pair<BreakerState, BreakerState>> want = {
      {BreakerState::kClosed, BreakerState::kOpen},
      {BreakerState::kOpen, BreakerState::kHalfOpen},
      {BreakerState::kHalfOpen, BreakerState::kOpen},
      {BreakerState::kOpen, BreakerState::kHalfOpen},
      {BreakerState::kHalfOpen, BreakerState::kClosed}};
  EXPECT_EQ(seen, want);
}

TEST(CircuitBreakerTest, StateNames) {
  EXPECT_EQ(BreakerStateName(BreakerState::kClosed), "closed");
  EXPECT_EQ(BreakerStateName(BreakerState::kHalfOpen), "half_open");
  EXPECT_EQ(BreakerStateName(BreakerState::kOpen), "open");
}

TEST(CircuitBreakerTest, ManyThreadsRecordingKeepExactCounts) {
  CircuitBreaker breaker(Options(1'000'000, 1000, 1));
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 5000;
  std::vector<std::thread> threads;
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    threads.emplace_back([&breaker, thread_idx] {
      for (int call_idx = 0; call_idx < kCallsPerThread; ++call_idx) {
        if (!breaker.Allow()) continue;
        if ((call_idx + thread_idx) % 2 == 0) {
          breaker.RecordFailure();
        } else {
          breaker.RecordSuccess();
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const CircuitBreaker::Counters counters = breaker.counters();
  EXPECT_EQ(counters.failures + counters.successes, kThreads * kCallsPerThread);
  EXPECT_EQ(counters.failures, kThreads * kCallsPerThread / 2);
  EXPECT_EQ(counters.rejections, 0);
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
}

TEST(CircuitBreakerTest, ManyThreadsFailingOpenItExactlyOnce) {
  FakeClock clock;
  CircuitBreaker breaker(Options(100, 1000, 1), clock.AsClock());
  std::atomic<int> transitions{0};
  breaker.SetListener([&](BreakerState, BreakerState to) {
    if (to == BreakerState::kOpen) transitions.fetch_add(1);
  });
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 1000;
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    threads.emplace_back([&] {
      for (int call_idx = 0; call_idx < kCallsPerThread; ++call_idx) {
        if (breaker.Allow()) {
          admitted.fetch_add(1);
          breaker.RecordFailure();
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const CircuitBreaker::Counters counters = breaker.counters();
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(counters.opens, 1);
  EXPECT_EQ(transitions.load(), 1);
  EXPECT_EQ(counters.failures, admitted.load());
  // Calls admitted just before it opened may still report, so at least the
  // threshold and at most one late report per thread beyond it.
  EXPECT_GE(admitted.load(), 100);
  EXPECT_LE(admitted.load(), 100 + kThreads);
  EXPECT_EQ(counters.rejections + admitted.load(), kThreads * kCallsPerThread);
}

TEST(CircuitBreakerTest, ConcurrentProbesNeverExceedTheLimit) {
  FakeClock clock;
  CircuitBreaker breaker(Options(1, 1000, 3), clock.AsClock());
  FailCalls(breaker, 1);
  clock.Advance(milliseconds(1000));
  constexpr int kThreads = 8;
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    threads.emplace_back([&] {
      for (int call_idx = 0; call_idx < 100; ++call_idx) {
        if (breaker.Allow()) admitted.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(admitted.load(), 3);  // nobody reported, and the clock stood still
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
}

}  // namespace
}  // namespace xnai::resilience
