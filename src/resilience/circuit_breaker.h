// CircuitBreaker: stops calling a dependency that keeps failing, so callers
// fail fast instead of each waiting for a timeout, and lets it recover.
//
//   closed ──(failure_threshold consecutive failures)──► open
//   open ──(open_duration elapsed)──► half-open
//   half-open ──(half_open_probes successes)──► closed
//   half-open ──(any failure)──► open (the cool-down starts again)
//
// Callers ask Allow() before each call and report its outcome with exactly
// one of RecordSuccess, RecordFailure or RecordIgnored (an outcome that says
// nothing about the dependency's health: the caller's own mistake, a
// cancellation). A success resets the run of consecutive failures. While open,
// Allow() is false (a rejection). In half-open, Allow() admits up to
// half_open_probes calls at a time (the probes) and rejects the rest until
// they report; a probe that reports nothing for open_duration gives its slot
// to the next caller, so a lost report cannot wedge the breaker.
//
// Outcomes of calls admitted in an earlier state still count where they make
// sense: a failure reported while open changes nothing; a success reported
// while open is counted but does not close the circuit (only probes do).
// RecordFailure may follow a RecordSuccess for the same call (a stream that
// broke after a good start).
//
// Time: the open -> half-open transition is evaluated lazily, on Allow() and
// on state(); no timer thread. The clock is injectable for tests.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>

namespace xnai::resilience {

enum class BreakerState {
  kClosed = 0,    // calls pass
  kHalfOpen = 1,  // a few probes pass; their outcome decides
  kOpen = 2,      // calls are rejected until the cool-down ends
};

// "closed", "half_open", "open".
std::string_view BreakerStateName(BreakerState state);

struct CircuitBreakerOptions {
  int failure_threshold = 5;                        // consecutive failures that open it (>= 1)
  std::chrono::milliseconds open_duration{30'000};  // cool-down before half-open (>= 0)
  int half_open_probes = 1;                         // probe successes that close it (>= 1)
};

class CircuitBreaker {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // Called with the old and new state after each transition, without the
  // breaker's lock held (it may call back into the breaker).
  using Listener = std::function<void(BreakerState from, BreakerState to)>;

  struct Counters {
    int64_t consecutive_failures = 0;  // since the last success (or reopening)
    int64_t failures = 0;              // all failures reported
    int64_t successes = 0;             // all successes reported
    int64_t opens = 0;                 // transitions to open
    int64_t rejections = 0;            // Allow() calls that returned false
  };

  // Values below the minimums are raised to them. `clock` null: the steady
  // clock.
  explicit CircuitBreaker(CircuitBreakerOptions options, Clock clock = nullptr);
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Set before the breaker is shared between threads.
  void SetListener(Listener listener);

  // True when a call may go ahead (see the state machine above). False is
  // counted as a rejection.
  bool Allow();
  void RecordSuccess();
  void RecordFailure();
  // Frees a half-open probe slot without judging the dependency.
  void RecordIgnored();

  // The current state (an elapsed cool-down reads as half-open).
  BreakerState state() const;
  // While open: the time until probes are admitted; zero otherwise.
  std::chrono::milliseconds RetryAfter() const;
  Counters counters() const;
  const CircuitBreakerOptions& options() const { return options_; }

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  // Applies the open -> half-open transition when the cool-down is over.
  // Returns true when the state changed. Needs mutex_.
  bool AdvanceLocked(TimePoint now) const;
  void OpenLocked(TimePoint now);
  void Notify(BreakerState from, BreakerState to) const;

  const CircuitBreakerOptions options_;
  const Clock clock_;
  Listener listener_;

  mutable std::mutex mutex_;
  // Mutable: state() advances an elapsed cool-down.
  mutable BreakerState state_ = BreakerState::kClosed;
  mutable int probes_in_flight_ = 0;
  TimePoint opened_at_{};
  TimePoint last_probe_at_{};
  int probe_successes_ = 0;
  Counters counters_;
};

}  // namespace xnai::resilience
