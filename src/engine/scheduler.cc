#include "engine/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "base/log.h"

namespace xnai::engine {

namespace {

using Clock = std::chrono::steady_clock;

double MsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

constexpr int kMaxTopLogprobs = 20;
// Window of the tok/s gauges.
constexpr double kRateWindowSeconds = 10;

const char* const kPromptTokens = "xnai_llm_prompt_tokens_total";
const char* const kCachedTokens = "xnai_llm_prompt_cached_tokens_total";
const char* const kGeneratedTokens = "xnai_llm_generated_tokens_total";
const char* const kRequests = "xnai_llm_requests_total";
const char* const kRejections = "xnai_llm_rejections_total";
const char* const kPreemptions = "xnai_llm_preemptions_total";
const char* const kTimeToFirstToken = "xnai_llm_time_to_first_token_seconds";
const char* const kQueueWait = "xnai_llm_queue_wait_seconds";
const char* const kQueueLength = "xnai_llm_queue_length";
const char* const kActive = "xnai_llm_active_sequences";
const char* const kKvPagesUsed = "xnai_llm_kv_pages_used";
const char* const kKvPagesFree = "xnai_llm_kv_pages_free";
const char* const kPrefixHitRatio = "xnai_llm_prefix_cache_hit_ratio";
const char* const kGenRate = "xnai_llm_generation_tokens_per_second";
const char* const kPromptRate = "xnai_llm_prompt_tokens_per_second";

// The length of the longest suffix of `text` that is a proper prefix of one
// of `stops` (text that may still turn into a stop string).
size_t HeldForStops(std::string_view text, const std::vector<std::string>& stops) {
  size_t held = 0;
  for (const std::string& stop : stops) {
    if (stop.empty()) continue;
    for (size_t len = std::min(text.size(), stop.size() - 1); len > held; --len) {
      if (text.substr(text.size() - len) == std::string_view(stop).substr(0, len)) {
        held = len;
        break;
      }
    }
  }
  return held;
}

}  // namespace

struct Scheduler::Job {
  uint64_t id = 0;
  GenerationRequest request;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int64_t n_prompt = 0;
  int64_t max_tokens = 0;  // after clamping to the context
  std::optional<Sequence> sequence;
  std::unique_ptr<Sampler> sampler;
  int64_t generated = 0;
  int64_t cached = 0;  // prompt positions taken from the prefix cache at first admission
  bool admitted_before = false;
  uint64_t admit_order = 0;
  std::string held_bytes;  // an incomplete UTF-8 character
  std::string held_text;   // text that may start a stop string
  Clock::time_point submitted;
  Clock::time_point admitted;
  Clock::time_point first_token;
  bool has_first_token = false;
};

Scheduler::Scheduler(const Model& model, const Tokenizer& tokenizer, SchedulerOptions options,
                     obs::Registry* metrics)
    : model_(model), tokenizer_(tokenizer), options_(options), metrics_(metrics) {
  if (metrics_ != nullptr) {
    metrics_->DeclareCounter(kPromptTokens, "Prompt tokens evaluated (not from the prefix cache).");
    metrics_->DeclareCounter(kCachedTokens, "Prompt tokens taken from the prefix cache.");
    metrics_->DeclareCounter(kGeneratedTokens, "Tokens generated.");
    metrics_->DeclareCounter(kRequests, "Generation requests finished, by outcome.");
    metrics_->DeclareCounter(kRejections, "Generation requests refused, by reason.");
    metrics_->DeclareCounter(kPreemptions,
                             "Sequences set aside to free KV pages (recomputed later).");
    metrics_->DeclareHistogram(kTimeToFirstToken, "Time from request to first token, in seconds.",
                               {0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64});
    metrics_->DeclareHistogram(kQueueWait, "Time requests waited for a sequence slot, in seconds.",
                               {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64});
    metrics_->DeclareGauge(kQueueLength, "Generation requests waiting for a sequence slot.");
    metrics_->DeclareGauge(kActive, "Sequences being evaluated.");
    metrics_->DeclareGauge(kKvPagesUsed, "KV cache pages in use (sequences and prefix cache).");
    metrics_->DeclareGauge(kKvPagesFree,
                           "KV cache pages that can still be allocated under the memory budget "
                           "(free plus evictable prefix-cache pages).");
    metrics_->DeclareGauge(kPrefixHitRatio, "Prefix-cache page lookups that hit, as a ratio.");
    metrics_->DeclareGauge(kGenRate, "Generated tokens per second over the last 10 seconds.");
    metrics_->DeclareGauge(kPromptRate,
                           "Prompt tokens evaluated per second over the last 10 seconds.");
    for (const char* outcome : {"stop", "length", "cancelled", "error"}) {
      metrics_->Inc(kRequests, {{"outcome", outcome}}, 0);
    }
    for (const char* reason : {"queue_full", "draining", "too_large"}) {
      metrics_->Inc(kRejections, {{"reason", reason}}, 0);
    }
    metrics_->Inc(kPreemptions, {}, 0);
    metrics_->Inc(kPromptTokens, {}, 0);
    metrics_->Inc(kCachedTokens, {}, 0);
    metrics_->Inc(kGeneratedTokens, {}, 0);
  }
  for (int32_t id = 0; id < std::min<int64_t>(tokenizer_.vocab_size(), model_.n_vocab()); ++id) {
    if (IsEndToken(id)) end_tokens_.push_back(id);
  }
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Result<uint64_t> Scheduler::Submit(GenerationRequest request) {
  const ModelHparams& hp = model_.hparams();
  auto reject = [this](const char* reason, Status status) -> Result<uint64_t> {
    if (metrics_ != nullptr) metrics_->Inc(kRejections, {{"reason", reason}});
    return Err(std::move(status));
  };
  if (!request.on_event) return Err(Status::InvalidArgument("a request needs an event callback"));
  if (request.prompt.empty()) return Err(Status::InvalidArgument("the prompt is empty"));
  for (int32_t token : request.prompt) {
    if (token < 0 || token >= hp.n_vocab) {
      return Err(Status::InvalidArgument("prompt token id " + std::to_string(token) +
                                         " is outside the vocabulary"));
    }
  }
  const auto n_prompt = static_cast<int64_t>(request.prompt.size());
  if (n_prompt >= hp.n_ctx) {
    return reject("too_large", Status::InvalidArgument(
                                   "the prompt has " + std::to_string(n_prompt) +
                                   " tokens, which leaves no room to generate in the context of " +
                                   std::to_string(hp.n_ctx) + " tokens"));
  }
  const KvPagePool& pool = model_.kv_pool();
  const int64_t per_page = pool.layout().page_positions;
  const int64_t pages_needed = (n_prompt + 1 + per_page - 1) / per_page;
  const int64_t max_pages = pool.max_pages();
  if (max_pages > 0 && pages_needed > max_pages) {
    return reject("too_large",
                  Status::InvalidArgument(
                      "the prompt has " + std::to_string(n_prompt) + " tokens and needs " +
                      std::to_string(pages_needed * pool.page_bytes() >> 20) +
                      " MiB of KV cache, more than the memory budget leaves for it (" +
                      std::to_string(max_pages * pool.page_bytes() >> 20) + " MiB, " +
                      std::to_string(max_pages * per_page) +
                      " tokens); shorten the prompt or raise "
                      "--memory-budget"));
  }
  if (request.top_logprobs > kMaxTopLogprobs) {
    return Err(
        Status::InvalidArgument("top_logprobs must be at most " + std::to_string(kMaxTopLogprobs)));
  }

  auto job = std::make_unique<Job>();
  job->n_prompt = n_prompt;
  job->tokens = request.prompt;
  const int64_t room = hp.n_ctx - n_prompt;
  job->max_tokens = request.max_tokens < 0 ? room : std::min(request.max_tokens, room);
  job->sampler = std::make_unique<Sampler>(request.sampling);
  job->request = std::move(request);
  job->submitted = Clock::now();

  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (draining_ || stopping_) {
      return reject("draining", Status::Unavailable("the server is shutting down"));
    }
    if (static_cast<int64_t>(queue_.size()) >= options_.max_queue) {
      return reject("queue_full",
                    Status::ResourceExhausted(
                        "too many requests: " + std::to_string(queue_.size()) +
                        " are already waiting for one of " + std::to_string(options_.max_parallel) +
                        " sequence slots; retry later"));
    }
    id = next_id_++;
    job->id = id;
    queue_.push_back(std::move(job));
    stats_.queued = static_cast<int64_t>(queue_.size());
  }
  wake_.notify_all();
  return id;
}

void Scheduler::Cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancel_requests_.push_back(id);
  }
  wake_.notify_all();
}

void Scheduler::Drain() {
  std::lock_guard<std::mutex> lock(mutex_);
  draining_ = true;
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats stats = stats_;
  const KvPagePool& pool = model_.kv_pool();
  stats.kv_pages_used = pool.pages_in_use();
  stats.kv_pages_max = pool.max_pages();
  stats.kv_page_bytes = pool.page_bytes();
  return stats;
}

bool Scheduler::IsEndToken(int32_t token) const {
  return token == tokenizer_.eos_id() || tokenizer_.IsControl(token);
}

void Scheduler::RecordRates(int64_t prompt_tokens, int64_t generated_tokens) {
  // Under mutex_.
  const double now = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  rate_samples_.push_back({now, prompt_tokens, generated_tokens});
  while (!rate_samples_.empty() && rate_samples_.front().t < now - kRateWindowSeconds) {
    rate_samples_.pop_front();
  }
  int64_t prompt = 0, generated = 0;
  for (const RateSample& sample : rate_samples_) {
    prompt += sample.prompt;
    generated += sample.generated;
  }
  const double span = std::max(1.0, now - rate_samples_.front().t);
  stats_.prompt_tok_s = static_cast<double>(prompt) / span;
  stats_.gen_tok_s = static_cast<double>(generated) / span;
}

void Scheduler::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    const bool has_work = wake_.wait_for(lock, std::chrono::seconds(1), [this] {
      return stopping_ || !queue_.empty() || !active_.empty() || !cancel_requests_.empty();
    });
    if (!has_work) {
      // Idle: let the rate gauges fall to zero.
      RecordRates(0, 0);
      PublishGauges();
      continue;
    }
    if (stopping_) break;

    // Cancellations: queued jobs just go; running ones free their sequence.
    for (uint64_t id : cancel_requests_) {
      auto match = [id](const std::unique_ptr<Job>& job) { return job->id == id; };
      auto queued = std::find_if(queue_.begin(), queue_.end(), match);
      auto running = std::find_if(active_.begin(), active_.end(), match);
      if (queued == queue_.end() && running == active_.end()) continue;
      if (queued != queue_.end()) queue_.erase(queued);
      if (running != active_.end()) {
        active_.erase(running);
        admission_paused_ = false;
      }
      stats_.cancelled++;
      if (metrics_ != nullptr) metrics_->Inc(kRequests, {{"outcome", "cancelled"}});
    }
    cancel_requests_.clear();

    Admit();
    PublishGauges();
    if (active_.empty()) continue;
    Step(lock);
    PublishGauges();
  }

  // Shutting down: everyone left gets an error.
  const Status gone = Status::Unavailable("the server is shutting down");
  for (auto& job : queue_) Fail(*job, gone);
  for (auto& job : active_) Fail(*job, gone);
  queue_.clear();
  active_.clear();
}

void Scheduler::PublishGauges() {
  // Under mutex_.
  stats_.queued = static_cast<int64_t>(queue_.size());
  stats_.active = static_cast<int64_t>(active_.size());
  if (metrics_ != nullptr) {
    const KvPagePool& pool = model_.kv_pool();
    metrics_->Set(kQueueLength, {}, static_cast<double>(stats_.queued));
    metrics_->Set(kActive, {}, static_cast<double>(stats_.active));
    metrics_->Set(kKvPagesUsed, {}, static_cast<double>(pool.pages_in_use()));
    const int64_t available = pool.pages_available();
    metrics_->Set(
        kKvPagesFree, {},
        available == std::numeric_limits<int64_t>::max() ? -1.0 : static_cast<double>(available));
    const KvPagePool::CacheStats cache = pool.cache_stats();
    metrics_->Set(kPrefixHitRatio, {},
                  cache.lookups == 0
                      ? 0.0
                      : static_cast<double>(cache.hits) / static_cast<double>(cache.lookups));
    metrics_->Set(kGenRate, {}, stats_.gen_tok_s);
    metrics_->Set(kPromptRate, {}, stats_.prompt_tok_s);
  }
}

void Scheduler::Admit() {
  // Under mutex_.
  const KvPagePool& pool = model_.kv_pool();
  const int64_t per_page = pool.layout().page_positions;
  // After a preemption nothing joins until a sequence ends: the pages are
  // short, and re-admitting at once would only preempt again.
  if (admission_paused_ && !active_.empty()) return;
  admission_paused_ = false;
  while (!queue_.empty() && static_cast<int>(active_.size()) < options_.max_parallel) {
    Job& job = *queue_.front();
    Sequence sequence = model_.NewSequence();
    const int64_t reused = model_.ReusePrefix(sequence, job.tokens);
    // Pages for the rest of what it must evaluate, plus one per running
    // sequence so they can keep growing for a while.
    const int64_t pages_needed =
        (static_cast<int64_t>(job.tokens.size()) + 1 + per_page - 1) / per_page -
        sequence.n_pages();
    const int64_t headroom = static_cast<int64_t>(active_.size());
    if (!active_.empty() && pool.pages_available() < pages_needed + headroom) break;
    std::unique_ptr<Job> owned = std::move(queue_.front());
    queue_.pop_front();
    owned->sequence.emplace(std::move(sequence));
    owned->admit_order = ++admit_counter_;
    if (!owned->admitted_before) {
      owned->admitted_before = true;
      owned->admitted = Clock::now();
      owned->cached = reused;
      stats_.cached_tokens += reused;
      if (metrics_ != nullptr) {
        metrics_->Inc(kCachedTokens, {}, static_cast<double>(reused));
        metrics_->Observe(kQueueWait, {}, MsBetween(owned->submitted, owned->admitted) / 1000);
      }
    }
    active_.push_back(std::move(owned));
  }
}

void Scheduler::Preempt(size_t active_index) {
  std::unique_ptr<Job> job = std::move(active_[active_index]);
  active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(active_index));
  job->sequence.reset();  // its pages go back (published ones stay cached)
  log::Info("llm.preempted", {{"request", job->id}, {"tokens", job->tokens.size()}});
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.preemptions++;
  admission_paused_ = true;
  if (metrics_ != nullptr) metrics_->Inc(kPreemptions);
  queue_.push_front(std::move(job));
}

void Scheduler::Step(std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  // The batch: every decoding sequence's next token, then prompt chunks
  // within the remaining token budget (at least a few tokens per step so
  // prompts always advance).
  std::vector<SequenceBatch> parts;
  std::vector<size_t> part_job;  // index into active_
  std::vector<bool> part_samples;
  int64_t budget = options_.max_batch_tokens;
  int64_t prompt_tokens_in_batch = 0;
  for (size_t idx = 0; idx < active_.size(); ++idx) {
    Job& job = *active_[idx];
    const int64_t remaining = static_cast<int64_t>(job.tokens.size()) - job.sequence->n_past();
    if (remaining == 1) {
      parts.push_back(
          {&*job.sequence, std::span(job.tokens).subspan(job.sequence->n_past()), false});
      part_job.push_back(idx);
      part_samples.push_back(true);
      --budget;
    }
  }
  for (size_t idx = 0; idx < active_.size(); ++idx) {
    Job& job = *active_[idx];
    const int64_t remaining = static_cast<int64_t>(job.tokens.size()) - job.sequence->n_past();
    if (remaining <= 1) continue;
    if (budget <= 0 && !parts.empty()) break;
    const int64_t chunk = std::min(remaining, std::max<int64_t>(budget, 16));
    parts.push_back(
        {&*job.sequence, std::span(job.tokens).subspan(job.sequence->n_past(), chunk), false});
    part_job.push_back(idx);
    part_samples.push_back(chunk == remaining);
    budget -= chunk;
    prompt_tokens_in_batch += chunk;
  }

  const auto step_start = Clock::now();
  Result<std::vector<float>> logits = model_.ForwardBatch(parts);
  {
    int64_t n_tokens = 0;
    for (const auto& part : parts) n_tokens += static_cast<int64_t>(part.tokens.size());
    log::Debug("llm.step", {{"sequences", parts.size()},
                            {"tokens", n_tokens},
                            {"ms", MsBetween(step_start, Clock::now())}});
  }
  if (!logits) {
    if (logits.error().code() == Status::Code::kResourceExhausted && active_.size() > 1) {
      // Out of KV pages: set the youngest sequence aside and try again.
      size_t youngest = 0;
      for (size_t idx = 1; idx < active_.size(); ++idx) {
        if (active_[idx]->admit_order > active_[youngest]->admit_order) youngest = idx;
      }
      Preempt(youngest);
    } else if (logits.error().code() == Status::Code::kResourceExhausted) {
      // Alone and still out of room: the budget is the limit of this output.
      Job& job = *active_[0];
      if (job.generated > 0) {
        Finish(job, "length");
      } else {
        Fail(job, logits.error());
      }
      active_.clear();
    } else {
      for (auto& job : active_) Fail(*job, logits.error());
      active_.clear();
    }
    lock.lock();
    return;
  }

  const int64_t n_vocab = model_.n_vocab();
  int64_t generated_in_batch = 0;
  std::vector<bool> ended(active_.size(), false);
  for (size_t part = 0; part < parts.size(); ++part) {
    if (!part_samples[part]) continue;
    Job& job = *active_[part_job[part]];
    std::span<float> row(logits->data() + static_cast<int64_t>(part) * n_vocab,
                         static_cast<size_t>(n_vocab));
    int32_t token;
    if (job.request.constraint) {
      std::vector<float> masked(row.begin(), row.end());
      job.request.constraint->Mask(masked);
      const bool complete = job.request.constraint->Complete();
      for (int32_t id : end_tokens_) {
        masked[id] = complete ? row[id] : -std::numeric_limits<float>::infinity();
      }
      const bool any = std::any_of(masked.begin(), masked.end(), [](float logit) {
        return logit > -std::numeric_limits<float>::infinity();
      });
      if (!any) {
        if (!complete) {
          Fail(job, Status::Internal("the output constraint allows no next token"));
          ended[part_job[part]] = true;
          continue;
        }
        Finish(job, "stop");
        ended[part_job[part]] = true;
        continue;
      }
      token = job.sampler->Sample(masked, job.tokens);
      if (!IsEndToken(token)) job.request.constraint->Accept(token);
    } else {
      token = job.sampler->Sample(row, job.tokens);
    }
    ++generated_in_batch;
    if (!Emit(job, token, row)) ended[part_job[part]] = true;
  }

  // Drop finished jobs (their sequences release their pages).
  std::vector<std::unique_ptr<Job>> still;
  for (size_t idx = 0; idx < active_.size(); ++idx) {
    if (!ended[idx]) still.push_back(std::move(active_[idx]));
  }
  const bool any_ended = still.size() < active_.size();
  active_ = std::move(still);

  lock.lock();
  if (any_ended) admission_paused_ = false;
  stats_.prompt_tokens += prompt_tokens_in_batch;
  stats_.generated_tokens += generated_in_batch;
  RecordRates(prompt_tokens_in_batch, generated_in_batch);
  if (metrics_ != nullptr) {
    metrics_->Inc(kPromptTokens, {}, static_cast<double>(prompt_tokens_in_batch));
    metrics_->Inc(kGeneratedTokens, {}, static_cast<double>(generated_in_batch));
  }
}

bool Scheduler::Emit(Job& job, int32_t token, std::span<const float> logits) {
  const Clock::time_point now = Clock::now();
  if (!job.has_first_token) {
    job.has_first_token = true;
    job.first_token = now;
    if (metrics_ != nullptr) {
      metrics_->Observe(kTimeToFirstToken, {}, MsBetween(job.submitted, now) / 1000);
    }
  }
  if (IsEndToken(token)) {
    Finish(job, "stop");
    return false;
  }
  job.tokens.push_back(token);
  job.generated++;

  GenerationEvent event;
  event.kind = GenerationEvent::Kind::kToken;
  if (job.request.top_logprobs >= 0) {
    // log-softmax of the model's logits (temperature 1).
    const float max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float logit : logits) sum += std::exp(static_cast<double>(logit - max_logit));
    const double log_sum = std::log(sum) + max_logit;
    auto info = [&](int32_t id) {
      return TokenLogprob{id, tokenizer_.TokenPiece(id), static_cast<float>(logits[id] - log_sum)};
    };
    event.chosen = info(token);
    const int k = std::min<int>(job.request.top_logprobs, static_cast<int>(logits.size()));
    if (k > 0) {
      std::vector<int32_t> ids(logits.size());
      std::iota(ids.begin(), ids.end(), 0);
      std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                        [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
      for (int idx = 0; idx < k; ++idx) event.top.push_back(info(ids[idx]));
    }
  }

  // Bytes -> complete characters -> text not held back for stop strings.
  job.held_bytes += tokenizer_.TokenPiece(token);
  const size_t complete = CompleteUtf8Prefix(job.held_bytes);
  job.held_text += job.held_bytes.substr(0, complete);
  job.held_bytes.erase(0, complete);
  const std::vector<std::string>& stops = job.request.stop;
  size_t stop_at = std::string::npos;
  for (const std::string& stop : stops) {
    if (stop.empty()) continue;
    stop_at = std::min(stop_at, job.held_text.find(stop));
  }
  if (stop_at != std::string::npos) {
    event.text = job.held_text.substr(0, stop_at);
    job.held_text.clear();
    job.held_bytes.clear();
    job.request.on_event(std::move(event));
    Finish(job, "stop");
    return false;
  }
  const size_t held = HeldForStops(job.held_text, stops);
  event.text = job.held_text.substr(0, job.held_text.size() - held);
  job.held_text.erase(0, job.held_text.size() - held);
  job.request.on_event(std::move(event));

  if (job.generated >= job.max_tokens) {
    Finish(job, "length");
    return false;
  }
  return true;
}

void Scheduler::Finish(Job& job, const std::string& reason) {
  GenerationEvent event;
  event.kind = GenerationEvent::Kind::kDone;
  event.text = job.held_text + job.held_bytes;
  event.finish_reason = reason;
  event.prompt_tokens = job.n_prompt;
  event.cached_tokens = job.cached;
  event.completion_tokens = job.generated;
  const Clock::time_point now = Clock::now();
  event.queue_ms = job.admitted_before ? MsBetween(job.submitted, job.admitted) : 0;
  event.first_token_ms = job.has_first_token ? MsBetween(job.submitted, job.first_token) : 0;
  event.generation_ms = job.has_first_token ? MsBetween(job.first_token, now) : 0;
  job.request.on_event(std::move(event));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.finished++;
  }
  if (metrics_ != nullptr) metrics_->Inc(kRequests, {{"outcome", reason}});
}

void Scheduler::Fail(Job& job, const Status& status) {
  GenerationEvent event;
  event.kind = GenerationEvent::Kind::kError;
  event.error = status;
  event.prompt_tokens = job.n_prompt;
  event.completion_tokens = job.generated;
  job.request.on_event(std::move(event));
  if (metrics_ != nullptr) metrics_->Inc(kRequests, {{"outcome", "error"}});
  log::Warn("llm.request_failed", {{"request", job.id}, {"error", status.ToString()}});
}

}  // namespace xnai::engine
