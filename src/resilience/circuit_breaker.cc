#include "resilience/circuit_breaker.h"

#include <algorithm>

namespace xnai::resilience {

std::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kHalfOpen:
      return "half_open";
    case BreakerState::kOpen:
      return "open";
  }
  return "unknown";
}

namespace {

CircuitBreakerOptions Sanitized(CircuitBreakerOptions options) {
  options.failure_threshold = std::max(1, options.failure_threshold);
  options.half_open_probes = std::max(1, options.half_open_probes);
  options.open_duration = std::max(std::chrono::milliseconds(0), options.open_duration);
  return options;
}

}  // namespace

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options, Clock clock)
    : options_(Sanitized(options)),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {}

void CircuitBreaker::SetListener(Listener listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  listener_ = std::move(listener);
}

bool CircuitBreaker::AdvanceLocked(TimePoint now) const {
  if (state_ != BreakerState::kOpen || now - opened_at_ < options_.open_duration) return false;
  state_ = BreakerState::kHalfOpen;
  probes_in_flight_ = 0;
  return true;
}

void CircuitBreaker::OpenLocked(TimePoint now) {
  state_ = BreakerState::kOpen;
  opened_at_ = now;
  probes_in_flight_ = 0;
  probe_successes_ = 0;
  ++counters_.opens;
}

void CircuitBreaker::Notify(BreakerState from, BreakerState to) const {
  if (from != to && listener_) listener_(from, to);
}

bool CircuitBreaker::Allow() {
  const TimePoint now = clock_();
  BreakerState before, after;
  bool allowed = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    before = state_;
    AdvanceLocked(now);
    switch (state_) {
      case BreakerState::kClosed:
        allowed = true;
        break;
      case BreakerState::kOpen:
        allowed = false;
        break;
      case BreakerState::kHalfOpen:
        // A probe that went silent for a whole cool-down gives up its slot.
        if (probes_in_flight_ >= options_.half_open_probes &&
            now - last_probe_at_ >= options_.open_duration) {
          probes_in_flight_ = 0;
        }
        allowed = probes_in_flight_ < options_.half_open_probes;
        if (allowed) {
          ++probes_in_flight_;
          last_probe_at_ = now;
        }
        break;
    }
    if (!allowed) ++counters_.rejections;
    after = state_;
  }
  Notify(before, after);
  return allowed;
}

void CircuitBreaker::RecordSuccess() {
  const TimePoint now = clock_();
  BreakerState before, after;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    before = state_;
    AdvanceLocked(now);
    ++counters_.successes;
    if (state_ == BreakerState::kClosed) {
      counters_.consecutive_failures = 0;
    } else if (state_ == BreakerState::kHalfOpen) {
      probes_in_flight_ = std::max(0, probes_in_flight_ - 1);
      if (++probe_successes_ >= options_.half_open_probes) {
        state_ = BreakerState::kClosed;
        counters_.consecutive_failures = 0;
        probe_successes_ = 0;
      }
    }
    after = state_;
  }
  Notify(before, after);
}

void CircuitBreaker::RecordFailure() {
  const TimePoint now = clock_();
  BreakerState before, after;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    before = state_;
    AdvanceLocked(now);
    ++counters_.failures;
    if (state_ == BreakerState::kClosed) {
      if (++counters_.consecutive_failures >= options_.failure_threshold) OpenLocked(now);
    } else if (state_ == BreakerState::kHalfOpen) {
      ++counters_.consecutive_failures;
      OpenLocked(now);
    }
    // Open: already failing fast; the cool-down is not extended.
    after = state_;
  }
  Notify(before, after);
}

void CircuitBreaker::RecordIgnored() {
  const TimePoint now = clock_();
  BreakerState before, after;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    before = state_;
    AdvanceLocked(now);
    if (state_ == BreakerState::kHalfOpen) probes_in_flight_ = std::max(0, probes_in_flight_ - 1);
    after = state_;
  }
  Notify(before, after);
}

BreakerState CircuitBreaker::state() const {
  const TimePoint now = clock_();
  BreakerState before, after;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    before = state_;
    AdvanceLocked(now);
    after = state_;
  }
  Notify(before, after);
  return after;
}

std::chrono::milliseconds CircuitBreaker::RetryAfter() const {
  const TimePoint now = clock_();
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ != BreakerState::kOpen) return std::chrono::milliseconds(0);
  const auto left = options_.open_duration - (now - opened_at_);
  return std::max(std::chrono::milliseconds(0), std::chrono::ceil<std::chrono::milliseconds>(left));
}

CircuitBreaker::Counters CircuitBreaker::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

}  // namespace xnai::resilience
