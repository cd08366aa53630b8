// RemoteLlm: the Llm interface over an OpenAI-compatible server (another
// xnai, llama.cpp's server, vLLM, a hosted API) reached with libcurl.
//
// Each Generate becomes one streamed POST {base}/chat/completions or
// {base}/completions (stream: true, usage included) run on a worker thread;
// the Server-Sent Events that come back become the same GenerationEvents the
// native engine sends: kToken per content delta (with logprobs when asked),
// then kDone (finish_reason, the upstream's usage) or kError.
//
// Failure handling:
//  - A bulkhead: at most max_concurrent requests in flight; beyond it
//    Generate fails with ResourceExhausted (the HTTP layer answers 429).
//  - A circuit breaker (resilience::CircuitBreaker): connection errors,
//    timeouts, HTTP 5xx and broken streams count as failures; 4xx answers
//    are the client's doing and count as neither. While it is open, Generate
//    fails at once with Unavailable, without a connection attempt.
//  - Generate may wait up to response_wait (default 0: not at all) for the
//    upstream's HTTP status, so that early errors come back as its Status
//    (no event follows); otherwise they arrive as a kError event with that
//    Status:
//    Unavailable for an unreachable server or a 5xx (with the upstream's
//    message), InvalidArgument with the upstream's own message for a 4xx
//    (ResourceExhausted for 429). Later errors arrive as a kError event.
//    Handler threads may block that long; the breaker bounds how often.
//
// Secrets: the API key is sent as "Authorization: Bearer" and never logged;
// it comes from a file so it never sits in argv.
//
// Thread safety: Generate, Cancel, Drain and status may be called from any
// thread. Events arrive on a worker thread, one request's in order; the
// callback must not block.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "llm/llm.h"
#include "obs/metrics.h"
#include "resilience/circuit_breaker.h"

namespace xnai::llm {

struct RemoteLlmOptions {
  std::string base_url;  // "http://127.0.0.1:8080/v1" (http or https; a trailing '/' is dropped)
  // The model named in requests; empty: the first id of GET {base}/models
  // (asked at Create, or at the first request when that fails and an alias
  // names the model locally).
  std::string model;
  std::string alias;         // the local id; empty: the remote model name
  std::string api_key_file;  // a file holding the key (whitespace trimmed); empty: no key
  std::string api_key;       // the key itself, when api_key_file is empty
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds request_timeout{600'000};  // the whole request, stream included
  std::chrono::milliseconds idle_timeout{120'000};     // no byte received (whole seconds)
  // Generate's wait for the HTTP status. 0: return at once; early errors
  // then arrive as kError events (the HTTP layer still answers them with
  // their status, since a streamed response's head waits for the first
  // event).
  std::chrono::milliseconds response_wait{0};
  int max_concurrent = 16;     // the bulkhead
  int64_t context_length = 0;  // what context_length() reports; 0: unknown
  resilience::CircuitBreakerOptions breaker;
  resilience::CircuitBreaker::Clock clock;  // null: the steady clock (tests inject one)
  // May be null; otherwise xnai_llm_remote_requests_total{model,outcome},
  // xnai_llm_remote_breaker_state{model} (0 closed, 1 half-open, 2 open)
  // and xnai_llm_remote_active_requests{model} are kept there.
  obs::Registry* metrics = nullptr;
};

// What /health shows of a remote model.
struct RemoteLlmStatus {
  std::string id;
  std::string url;           // the base URL, without credentials
  std::string remote_model;  // empty until known
  resilience::BreakerState breaker_state = resilience::BreakerState::kClosed;
  resilience::CircuitBreaker::Counters breaker;
  double retry_in_seconds = 0;  // while open
  int active = 0;
  int max_concurrent = 0;
};

// A remote server's base URL and API key, checked: the base URL without a
// trailing '/', its display form without credentials, and the key (from the
// file when one is named). Errors: InvalidArgument for a URL that is not
// http(s), an unreadable, empty or multi-line key file (naming the path,
// never the contents).
struct RemoteEndpoint {
  std::string base_url;
  std::string display_url;
  std::string api_key;
};
Result<RemoteEndpoint> ParseRemoteEndpoint(const std::string& base_url, const std::string& api_key,
                                           const std::string& api_key_file);

class RemoteLlm : public Llm {
 public:
  // Errors: InvalidArgument for a URL that is not http(s), an unreadable or
  // empty key file (naming the path, never the contents); Unavailable when
  // the model name must be asked from the server and it cannot say (and no
  // alias was given).
  static Result<std::unique_ptr<RemoteLlm>> Create(RemoteLlmOptions options);
  // Aborts the transfers in flight (their callers get a kError event,
  // Unavailable) and joins the workers.
  ~RemoteLlm() override;
  RemoteLlm(const RemoteLlm&) = delete;
  RemoteLlm& operator=(const RemoteLlm&) = delete;

  const std::string& id() const override { return id_; }
  int64_t context_length() const override { return options_.context_length; }
  // See the file comment for the errors. Also InvalidArgument without a
  // callback, Unavailable when draining.
  Result<uint64_t> Generate(GenerateRequest request, EventCallback on_event) override;
  // Aborts the transfer; once Cancel returns no event is delivered for `id`
  // (called from inside that request's callback, no later one is).
  // Unknown or finished ids are ignored.
  void Cancel(uint64_t id) override;
  void Drain() override { draining_ = true; }

  RemoteLlmStatus status() const;

 private:
  struct Job;
  struct Transfer;
  explicit RemoteLlm(RemoteLlmOptions options);

  void WorkerLoop();
  void Run(void* curl, Job& job);
  // Asks {base}/models for the model name when none is known yet.
  Status ResolveModel(void* curl, bool* counted_failure);
  // Gives the job's bulkhead slot back (once), before its last event.
  void ReleaseSlot(Job& job);
  // Finishes `job` with an error: Generate's Status while it waits, else a
  // kError event.
  void Fail(Job& job, const Status& status);
  // Delivers an event unless the job was cancelled; false then.
  bool Deliver(Job& job, engine::GenerationEvent&& event);
  void CountOutcome(const std::string& outcome);
  void PublishBreakerState(resilience::BreakerState state);
  // "the remote model server at URL".
  std::string Who() const;

  const RemoteLlmOptions options_;
  std::string base_url_;     // without a trailing '/'
  std::string display_url_;  // without credentials
  std::string api_key_;
  std::string id_;
  resilience::CircuitBreaker breaker_;
  std::atomic<bool> draining_{false};

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  bool stopping_ = false;                          // under mutex_
  std::atomic<bool> stopping_flag_{false};         // read by transfers
  std::string remote_model_;                       // under mutex_
  uint64_t next_id_ = 1;                           // under mutex_
  int active_ = 0;                                 // under mutex_: the bulkhead
  int idle_workers_ = 0;                           // under mutex_
  std::deque<std::shared_ptr<Job>> queue_;         // under mutex_
  std::map<uint64_t, std::shared_ptr<Job>> jobs_;  // under mutex_: accepted, not finished
  std::vector<std::thread> workers_;               // under mutex_
};

struct RemoteEmbedderOptions {
  std::string base_url;  // "http://127.0.0.1:8080/v1"
  // The model named in requests; empty: the first id of GET {base}/models.
  std::string model;
  std::string alias;  // the local id; empty: the remote model name
  std::string api_key_file;
  std::string api_key;
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds request_timeout{120'000};
  resilience::CircuitBreakerOptions breaker;
  resilience::CircuitBreaker::Clock clock;  // null: the steady clock
  // May be null; otherwise xnai_llm_remote_requests_total{model,outcome}
  // and xnai_llm_remote_breaker_state{model} are kept there.
  obs::Registry* metrics = nullptr;
};

// Embeddings from a remote OpenAI-compatible server (POST {base}/embeddings),
// one synchronous request per Embed call, behind its own circuit breaker
// (connection errors, timeouts and 5xx count; 4xx do not).
//
// Thread safety: Embed may be called from any number of threads.
class RemoteEmbedder : public Embedder {
 public:
  // Embeds one probe text to learn the dimension, so the server must be
  // reachable. Errors: those of ParseRemoteEndpoint; Unavailable naming the
  // server when it cannot be reached or answers with an error.
  static Result<std::unique_ptr<RemoteEmbedder>> Create(RemoteEmbedderOptions options);
  ~RemoteEmbedder() override;

  const std::string& id() const override { return id_; }
  int64_t dim() const override { return dim_; }
  // Errors: InvalidArgument with the server's message for a 4xx (and for an
  // empty text); Unavailable for an unreachable server, a 5xx, an answer
  // that is not a list of vectors of this dimension, or an open circuit
  // ("retry in N s").
  Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts,
                                                int64_t* tokens_read) override;
  resilience::BreakerState breaker_state() { return breaker_.state(); }
  const std::string& url() const { return endpoint_.display_url; }

 private:
  explicit RemoteEmbedder(RemoteEmbedderOptions options);
  // One POST of `texts`; vectors and the tokens the server counted.
  Result<std::vector<std::vector<float>>> Post(const std::vector<std::string>& texts,
                                               int64_t* tokens_read);
  void Count(const std::string& outcome);

  const RemoteEmbedderOptions options_;
  RemoteEndpoint endpoint_;
  std::string remote_model_;
  std::string id_;
  int64_t dim_ = 0;
  resilience::CircuitBreaker breaker_;
};

}  // namespace xnai::llm
