// engine::Scheduler: many generation requests on one decoder model at once
// (continuous batching).
//
// One thread runs the loop. Each step builds one batch: every sequence that
// is decoding contributes its next token, and sequences still reading their
// prompt contribute chunks of it within a token budget, so a long prompt
// never stalls the others for long; one Model::ForwardBatch evaluates them
// all. New requests join between steps, up to max_parallel sequences; the
// rest wait in a bounded queue (past it Submit fails with ResourceExhausted:
// the HTTP layer answers 429).
//
// Memory: KV pages come from the model's pool, capped by the memory budget.
// A request is admitted when the pool can hold its prompt (a prompt that
// could never fit is refused at Submit); when decoding runs out of pages the
// most recently admitted sequence is preempted: its pages are released and it
// goes back to the front of the queue with everything generated so far, to be
// recomputed (or found in the prefix cache) when room frees up. Its output
// continues exactly where it stopped.
//
// Prefix reuse: on admission a sequence adopts the cached KV pages of the
// longest run of leading full pages of its prompt (Model::ReusePrefix), so a
// shared system prompt or the previous turns of a conversation are not
// recomputed.
//
// Output: the scheduler turns tokens into text (complete UTF-8 only), applies
// stop strings (text after a stop string is never sent; a partial match is
// held back until it is decided), and reports one event per generated token
// and a final event, through the request's callback, on the scheduler thread
// (the callback must not block).
//
// Thread safety: Submit, Cancel, Drain and stats may be called from any
// thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"
#include "obs/metrics.h"

namespace xnai::engine {

// Restricts which tokens may come next (e.g. JSON output by a schema).
// Used by one request on the scheduler thread.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets the logits of tokens that may not come next to -infinity. End-of-
  // generation tokens are the scheduler's: it allows them only when
  // Complete(), and forces one when nothing else is allowed.
  virtual void Mask(std::span<float> logits) = 0;
  // Records the chosen token (one Mask allowed).
  virtual void Accept(int32_t token) = 0;
  // True when the output so far may end here.
  virtual bool Complete() const = 0;
};

struct TokenLogprob {
  int32_t token = -1;
  std::string bytes;  // the token's raw bytes (may be part of a character)
  float logprob = 0;  // natural log of its probability under the model (temperature 1)
};

struct GenerationEvent {
  enum class Kind {
    kToken,  // one generated token: `text` is the new text it completes
    kDone,   // generation ended: finish_reason, usage, timings
    kError,  // generation failed: `error`
  };
  Kind kind = Kind::kToken;
  // kToken: new output text (complete UTF-8; may be empty while bytes or a
  // possible stop string are held back). kDone: the rest of the held text.
  std::string text;
  // kToken with logprobs asked: the chosen token and the top alternatives.
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;
  // kDone:
  std::string finish_reason;  // "stop" (end token or stop string) or "length"
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // of the prompt, taken from the prefix cache
  int64_t completion_tokens = 0;
  double queue_ms = 0;        // submit -> admitted
  double first_token_ms = 0;  // submit -> first token
  double generation_ms = 0;   // first token -> done
  Status error;               // kError
};

struct GenerationRequest {
  std::vector<int32_t> prompt;  // tokens, special tokens included
  SamplingParams sampling;
  int64_t max_tokens = -1;  // -1: until the context is full
  std::vector<std::string> stop;
  int top_logprobs = -1;  // -1: no logprobs; 0..20: the chosen token and this many alternatives
  std::unique_ptr<TokenConstraint> constraint;
  // Receives the events, on the scheduler thread; must not block. After the
  // kDone or kError event it is not called again.
  std::function<void(GenerationEvent&&)> on_event;
};

struct SchedulerOptions {
  int max_parallel = 4;            // sequences decoded together
  int max_queue = 64;              // requests waiting beyond those
  int64_t max_batch_tokens = 256;  // tokens per forward pass (prompt chunks are cut to fit)
};

class Scheduler {
 public:
  // `model` and `tokenizer` must outlive the scheduler. `metrics` may be
  // null; otherwise the scheduler declares and updates its xnai_llm_*
  // series there. Starts the scheduler thread.
  Scheduler(const Model& model, const Tokenizer& tokenizer, SchedulerOptions options,
            obs::Registry* metrics);
  // Stops the thread; requests still queued or running get a kError event
  // (Unavailable).
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request; returns its id (for Cancel). Errors (no event is sent):
  // InvalidArgument for an empty prompt, a prompt that leaves no room in the
  // context, a prompt that needs more KV memory than the budget holds,
  // top_logprobs above 20, or no callback; ResourceExhausted when the queue
  // is full; Unavailable when draining.
  Result<uint64_t> Submit(GenerationRequest request);
  // Stops a request (queued or running) and frees its sequence before the
  // next step; its callback sees no event after the step in progress.
  // Unknown or finished ids are ignored.
  void Cancel(uint64_t id);
  // Refuses new requests (Unavailable); running and queued ones finish.
  void Drain();

  struct Stats {
    int64_t queued = 0;
    int64_t active = 0;
    int64_t kv_pages_used = 0;
    int64_t kv_pages_max = 0;  // 0: no cap
    int64_t kv_page_bytes = 0;
    int64_t prompt_tokens = 0;  // evaluated (cached ones not counted)
    int64_t cached_tokens = 0;  // taken from the prefix cache
    int64_t generated_tokens = 0;
    int64_t preemptions = 0;
    int64_t finished = 0;
    int64_t cancelled = 0;
    double gen_tok_s = 0;     // generated tokens per second over the last ~10 s
    double prompt_tok_s = 0;  // prompt tokens evaluated per second over the last ~10 s
  };
  Stats stats() const;

 private:
  struct Job;
  void Loop();
  // One step: admit, build the batch, run it, sample and report.
  void Step(std::unique_lock<std::mutex>& lock);
  void Admit();
  // Updates stats_ counts and the gauges (under mutex_).
  void PublishGauges();
  void Finish(Job& job, const std::string& reason);
  void Fail(Job& job, const Status& status);
  // Handles the token just sampled for `job`; returns false when the job
  // ended.
  bool Emit(Job& job, int32_t token, std::span<const float> logits);
  bool IsEndToken(int32_t token) const;
  void Preempt(size_t active_index);
  void RecordRates(int64_t prompt_tokens, int64_t generated_tokens);

  const Model& model_;
  const Tokenizer& tokenizer_;
  const SchedulerOptions options_;
  obs::Registry* metrics_;
  // Every token IsEndToken accepts (masked with a constraint until complete).
  std::vector<int32_t> end_tokens_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool draining_ = false;
  uint64_t next_id_ = 1;
  uint64_t admit_counter_ = 0;     // scheduler thread only
  bool admission_paused_ = false;  // under mutex_: set by a preemption, cleared when a job ends
  std::deque<std::unique_ptr<Job>> queue_;    // under mutex_
  std::vector<uint64_t> cancel_requests_;     // under mutex_
  std::vector<std::unique_ptr<Job>> active_;  // scheduler thread only
  Stats stats_;                               // under mutex_
  // Recent (time, prompt tokens, generated tokens) for the rates.
  struct RateSample {
    double t;
    int64_t prompt;
    int64_t generated;
  };
  std::deque<RateSample> rate_samples_;  // under mutex_
  std::thread thread_;
};

}  // namespace xnai::engine
