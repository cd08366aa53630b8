#include "llm/remote_llm.h"

#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/log.h"
#include "llm/openai_wire.h"

namespace xnai::llm {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kRequests = "xnai_llm_remote_requests_total";
constexpr const char* kBreakerState = "xnai_llm_remote_breaker_state";
constexpr const char* kActive = "xnai_llm_remote_active_requests";

// Error bodies and whole (non-streamed) answers are kept up to these sizes.
constexpr size_t kMaxErrorBody = 64u << 10;
constexpr size_t kMaxWholeBody = 64u << 20;

void GlobalInitOnce() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) log::Error("llm.curl_init_failed", {{"error", curl_easy_strerror(rc)}});
}

std::string TrimCopy(std::string text) {
  size_t begin = 0;
  while (begin < text.size() && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  size_t end = text.size();
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return text.substr(begin, end - begin);
}

// Hosts reached without a proxy: the environment's no_proxy plus loopback
// (a local model server never goes through a proxy meant for the outside).
std::string NoProxyList() {
  std::string list;
  for (const char* name : {"no_proxy", "NO_PROXY"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') {
      list = value;
      break;
    }
  }
  if (list == "*") return list;
  if (!list.empty()) list += ",";
  return list + "localhost,127.0.0.1,::1";
}

// The status code of a "HTTP/1.1 200 OK" line; 0 for other header lines.
long StatusOfLine(std::string_view line) {
  if (line.rfind("HTTP/", 0) != 0) return 0;
  const size_t space = line.find(' ');
  if (space == std::string_view::npos) return 0;
  long code = 0;
  for (size_t pos = space + 1;
       pos < line.size() && std::isdigit(static_cast<unsigned char>(line[pos])); ++pos) {
    code = code * 10 + (line[pos] - '0');
  }
  return code;
}

double Ms(Clock::duration duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

// Options every transfer shares.
void SetCommonOptions(CURL* curl, std::chrono::milliseconds connect_timeout,
                      std::chrono::milliseconds idle_timeout, char* error_buffer,
                      const std::string& no_proxy) {
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOPROXY, no_proxy.c_str());
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "xnai");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(1, connect_timeout.count())));
  const auto idle_seconds =
      std::max<int64_t>(1, (idle_timeout.count() + 999) / 1000);  // curl counts whole seconds
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(idle_seconds));
}

size_t DiscardOrCollect(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t bytes = size * count;
  if (body->size() + bytes > kMaxWholeBody) return 0;
  body->append(data, bytes);
  return bytes;
}

}  // namespace

// --- a request and its transfer ------------------------------------------------------

struct RemoteLlm::Job {
  uint64_t id = 0;
  GenerateRequest request;
  EventCallback on_event;
  Clock::time_point submitted = Clock::now();
  std::atomic<bool> cancelled{false};

  // The hand-over with Generate, which waits for the HTTP status.
  enum class Phase { kWaiting, kAccepted, kFailed, kDetached };
  std::mutex mutex;
  std::condition_variable answered;
  Phase phase = Phase::kWaiting;  // under mutex
  Status early_error;             // kFailed

  // Delivery, serialized with Cancel.
  std::mutex deliver_mutex;
  std::atomic<std::thread::id> deliverer{};

  bool holds_slot = true;  // of the bulkhead (worker thread only)
};

// The state of one POST, seen by curl's callbacks.
struct RemoteLlm::Transfer {
  RemoteLlm* self = nullptr;
  Job* job = nullptr;
  long status = 0;           // the final status, once the headers are in
  long pending_status = 0;   // of the status line being read
  bool whole_json = false;   // a 2xx answered with one JSON body (the server ignored stream)
  std::string content_type;  // of the final answer
  std::string body;          // error bodies and whole JSON answers
  wire::SseParser parser;
  wire::StreamDecoder decoder;
  Status stream_error;  // set by the write callback when it aborts
  bool first_token = false;
  Clock::time_point started, first_token_at;

  explicit Transfer(bool chat) : decoder(chat) {}

  bool Aborting() const { return job->cancelled.load() || self->stopping_flag_.load(); }

  // Called when the last header of a final (non-1xx) answer is in.
  void OnHeaders() {
    if (status >= 200 && status < 300) {
      whole_json = content_type.find("application/json") != std::string::npos;
      self->breaker_.RecordSuccess();
      std::lock_guard<std::mutex> lock(job->mutex);
      if (job->phase == Job::Phase::kWaiting) {
        job->phase = Job::Phase::kAccepted;
        job->answered.notify_all();
      }
    }
  }

  // Hands decoded events to the caller. False when the transfer must stop.
  bool Emit(std::vector<engine::GenerationEvent>& events) {
    for (engine::GenerationEvent& event : events) {
      if (!first_token) {
        first_token = true;
        first_token_at = Clock::now();
      }
      if (!self->Deliver(*job, std::move(event))) return false;
    }
    events.clear();
    return true;
  }

  // Feeds streamed bytes; false (with stream_error set, unless cancelled)
  // when the stream cannot go on.
  bool OnStreamBytes(std::string_view bytes) {
    std::vector<wire::SseEvent> sse;
    if (Status s = parser.Feed(bytes, sse); !s.ok()) {
      stream_error = Status::Unavailable(self->Who() + " sent a bad event stream: " + s.message());
      return false;
    }
    return DecodeEvents(sse);
  }

  bool DecodeEvents(const std::vector<wire::SseEvent>& sse) {
    std::vector<engine::GenerationEvent> out;
    for (const wire::SseEvent& event : sse) {
      Status s = decoder.Decode(event, out);
      if (!Emit(out)) return false;
      if (!s.ok()) {
        stream_error = Status::Unavailable(self->Who() + " failed: " + s.message());
        return false;
      }
    }
    return true;
  }

  static size_t OnHeader(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t bytes = size * count;
    std::string_view line(data, bytes);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (const long code = StatusOfLine(line); code != 0) {
      t->pending_status = code;
      t->content_type.clear();
    } else if (line.empty()) {
      // The end of one answer's headers; 1xx answers precede the real one.
      if (t->pending_status >= 200 && t->status == 0) {
        t->status = t->pending_status;
        t->OnHeaders();
      }
    } else if (line.size() > 13 && strncasecmp(line.data(), "content-type:", 13) == 0) {
      t->content_type = TrimCopy(std::string(line.substr(13)));
      for (char& c : t->content_type)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return bytes;
  }

  static size_t OnBody(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t bytes = size * count;
    if (t->Aborting()) return CURL_WRITEFUNC_ERROR;
    if (t->status < 200 || t->status >= 300) {
      if (t->body.size() < kMaxErrorBody) {
        t->body.append(data, std::min(bytes, kMaxErrorBody - t->body.size()));
      }
      return bytes;
    }
    if (t->whole_json) {
      if (t->body.size() + bytes > kMaxWholeBody) {
        t->stream_error = Status::Unavailable(t->self->Who() + " sent an answer over " +
                                              std::to_string(kMaxWholeBody >> 20) + " MiB");
        return CURL_WRITEFUNC_ERROR;
      }
      t->body.append(data, bytes);
      return bytes;
    }
    return t->OnStreamBytes(std::string_view(data, bytes)) ? bytes : CURL_WRITEFUNC_ERROR;
  }

  static int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<Transfer*>(user)->Aborting() ? 1 : 0;
  }
};

// --- construction ------------------------------------------------------------------

RemoteLlm::RemoteLlm(RemoteLlmOptions options)
    : options_(std::move(options)), breaker_(options_.breaker, options_.clock) {}

Result<RemoteEndpoint> ParseRemoteEndpoint(const std::string& base_url, const std::string& api_key,
                                           const std::string& api_key_file) {
  std::string base = TrimCopy(base_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string scheme = base.substr(0, base.find("://"));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (base.find("://") == std::string::npos || (scheme != "http" && scheme != "https") ||
      base.size() <= scheme.size() + 3) {
    return Err(Status::InvalidArgument("the remote model URL '" + wire::RedactUrl(base) +
                                       "' is not an http:// or https:// URL"));
  }
  std::string key = api_key;
  if (!api_key_file.empty()) {
    std::ifstream in(api_key_file, std::ios::binary);
    if (!in) return Err(Status::InvalidArgument("cannot read the API key file " + api_key_file));
    std::stringstream buffer;
    buffer << in.rdbuf();
    key = TrimCopy(buffer.str());
    if (key.empty()) {
      return Err(Status::InvalidArgument("the API key file " + api_key_file + " is empty"));
    }
    if (key.find_first_of("\r\n") != std::string::npos) {
      return Err(Status::InvalidArgument("the API key file " + api_key_file +
                                         " holds more than one line"));
    }
  }
  return RemoteEndpoint{base, wire::RedactUrl(base), std::move(key)};
}

Result<std::unique_ptr<RemoteLlm>> RemoteLlm::Create(RemoteLlmOptions options) {
  XNAI_ASSIGN_OR_RETURN(
      RemoteEndpoint endpoint,
      ParseRemoteEndpoint(options.base_url, options.api_key, options.api_key_file));
  options.max_concurrent = std::max(1, options.max_concurrent);
  GlobalInitOnce();

  std::unique_ptr<RemoteLlm> llm(new RemoteLlm(std::move(options)));
  llm->base_url_ = endpoint.base_url;
  llm->display_url_ = endpoint.display_url;
  llm->api_key_ = std::move(endpoint.api_key);
  llm->remote_model_ = llm->options_.model;
  if (llm->remote_model_.empty()) {
    CURL* curl = curl_easy_init();
    bool failed = false;
    Status resolved = curl != nullptr ? llm->ResolveModel(curl, &failed)
                                      : Status::Internal("curl_easy_init failed");
    if (curl != nullptr) curl_easy_cleanup(curl);
    if (!resolved.ok()) {
      if (llm->options_.alias.empty()) {
        return Err(Status::Unavailable("cannot learn the model name from " + llm->display_url_ +
                                       "/models (" + resolved.message() +
                                       "); start that server first or name the model"));
      }
      log::Warn("llm.remote_model_unknown", {{"url", llm->display_url_},
                                             {"error", resolved.message()},
                                             {"retry", "at the first request"}});
    }
  }
  llm->id_ = llm->options_.alias.empty() ? llm->remote_model_ : llm->options_.alias;

  if (obs::Registry* metrics = llm->options_.metrics) {
    metrics->DeclareCounter(kRequests, "Requests to remote model servers, by outcome.");
    metrics->DeclareGauge(kBreakerState,
                          "Circuit breaker of a remote model server: 0 closed, 1 half-open, "
                          "2 open.");
    metrics->DeclareGauge(kActive, "Requests in flight to a remote model server.");
    metrics->Set(kBreakerState, {{"model", llm->id_}}, 0);
    metrics->Set(kActive, {{"model", llm->id_}}, 0);
  }
  RemoteLlm* self = llm.get();
  llm->breaker_.SetListener([self](resilience::BreakerState from, resilience::BreakerState to) {
    self->PublishBreakerState(to);
    log::Fields fields = {{"model", self->id_},
                          {"url", self->display_url_},
                          {"from", std::string(resilience::BreakerStateName(from))},
                          {"to", std::string(resilience::BreakerStateName(to))}};
    if (to == resilience::BreakerState::kOpen) {
      log::Warn("llm.remote_breaker", fields);
    } else {
      log::Info("llm.remote_breaker", fields);
    }
  });
  log::Info("llm.remote_ready", {{"id", llm->id_},
                                 {"url", llm->display_url_},
                                 {"remote_model", llm->remote_model_},
                                 {"max_concurrent", llm->options_.max_concurrent},
                                 {"api_key", !llm->api_key_.empty()}});
  return llm;
}

RemoteLlm::~RemoteLlm() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    stopping_flag_ = true;
    workers.swap(workers_);
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers) worker.join();
}

std::string RemoteLlm::Who() const { return "the remote model server at " + display_url_; }

void RemoteLlm::CountOutcome(const std::string& outcome) {
  if (options_.metrics != nullptr) {
    options_.metrics->Inc(kRequests, {{"model", id_}, {"outcome", outcome}});
  }
}

void RemoteLlm::PublishBreakerState(resilience::BreakerState state) {
  if (options_.metrics != nullptr) {
    options_.metrics->Set(kBreakerState, {{"model", id_}}, static_cast<double>(state));
  }
}

RemoteLlmStatus RemoteLlm::status() const {
  RemoteLlmStatus out;
  out.id = id_;
  out.url = display_url_;
  out.breaker_state = breaker_.state();
  out.breaker = breaker_.counters();
  out.retry_in_seconds = std::chrono::duration<double>(breaker_.RetryAfter()).count();
  out.max_concurrent = options_.max_concurrent;
  std::lock_guard<std::mutex> lock(mutex_);
  out.remote_model = remote_model_;
  out.active = active_;
  return out;
}

// --- requests ----------------------------------------------------------------------

Result<uint64_t> RemoteLlm::Generate(GenerateRequest request, EventCallback on_event) {
  if (!on_event) return Err(Status::InvalidArgument("a generation needs an event callback"));
  if (draining_) return Err(Status::Unavailable("the server is shutting down"));
  auto job = std::make_shared<Job>();
  job->request = std::move(request);
  job->on_event = std::move(on_event);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return Err(Status::Unavailable("the server is shutting down"));
    if (active_ >= options_.max_concurrent) {
      CountOutcome("rejected_busy");
      return Err(Status::ResourceExhausted(Who() + " already has " + std::to_string(active_) +
                                           " requests in flight, the most allowed; retry shortly"));
    }
    ++active_;
  }
  // The breaker after the bulkhead, so a refused request never takes a probe slot.
  if (!breaker_.Allow()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --active_;
    }
    CountOutcome("rejected_circuit_open");
    const double wait_s = std::chrono::duration<double>(breaker_.RetryAfter()).count();
    const int64_t retry_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s)));
    return Err(Status::Unavailable(Who() + " is unavailable (circuit open); retry in " +
                                   std::to_string(retry_s) + " s"));
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job->id = next_id_++;
    jobs_[job->id] = job;
    queue_.push_back(job);
    if (static_cast<size_t>(idle_workers_) < queue_.size() &&
        workers_.size() < static_cast<size_t>(options_.max_concurrent)) {
      workers_.emplace_back([this] { WorkerLoop(); });
    }
    if (options_.metrics != nullptr) options_.metrics->Set(kActive, {{"model", id_}}, active_);
  }
  work_ready_.notify_one();

  std::unique_lock<std::mutex> lock(job->mutex);
  job->answered.wait_for(lock, options_.response_wait,
                         [&] { return job->phase != Job::Phase::kWaiting; });
  if (job->phase == Job::Phase::kFailed) return Err(job->early_error);
  if (job->phase == Job::Phase::kWaiting) job->phase = Job::Phase::kDetached;
  return job->id;
}

void RemoteLlm::Cancel(uint64_t id) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    job = it->second;
  }
  if (job->deliverer.load() == std::this_thread::get_id()) {
    job->cancelled = true;  // from inside its own callback
    return;
  }
  std::lock_guard<std::mutex> lock(job->deliver_mutex);
  job->cancelled = true;
}

bool RemoteLlm::Deliver(Job& job, engine::GenerationEvent&& event) {
  std::lock_guard<std::mutex> lock(job.deliver_mutex);
  if (job.cancelled) return false;
  job.deliverer = std::this_thread::get_id();
  job.on_event(std::move(event));
  job.deliverer = std::thread::id();
  return !job.cancelled;
}

void RemoteLlm::ReleaseSlot(Job& job) {
  if (!job.holds_slot) return;
  job.holds_slot = false;
  std::lock_guard<std::mutex> lock(mutex_);
  --active_;
  if (options_.metrics != nullptr) options_.metrics->Set(kActive, {{"model", id_}}, active_);
}

void RemoteLlm::Fail(Job& job, const Status& status) {
  ReleaseSlot(job);  // before the caller hears of it, so a retry finds the slot free
  {
    std::lock_guard<std::mutex> lock(job.mutex);
    if (job.phase == Job::Phase::kWaiting) {
      job.phase = Job::Phase::kFailed;
      job.early_error = status;
      job.answered.notify_all();
      return;
    }
  }
  engine::GenerationEvent event;
  event.kind = engine::GenerationEvent::Kind::kError;
  event.error = status;
  Deliver(job, std::move(event));
}

void RemoteLlm::WorkerLoop() {
  CURL* curl = curl_easy_init();
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++idle_workers_;
      work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_workers_;
      if (queue_.empty()) break;  // stopping, and nothing left to answer
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (curl == nullptr) {
      breaker_.RecordIgnored();
      CountOutcome("internal_error");
      Fail(*job, Status::Internal("curl_easy_init failed"));
    } else {
      Run(curl, *job);
    }
    ReleaseSlot(*job);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.erase(job->id);
    }
  }
  if (curl != nullptr) curl_easy_cleanup(curl);
}

Status RemoteLlm::ResolveModel(void* handle, bool* counted_failure) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!remote_model_.empty()) return Status::Ok();
  }
  CURL* curl = static_cast<CURL*>(handle);
  char error_buffer[CURL_ERROR_SIZE] = {0};
  const std::string no_proxy = NoProxyList();
  const std::string url = base_url_ + "/models";
  std::string body;
  curl_easy_reset(curl);
  SetCommonOptions(curl, options_.connect_timeout, options_.idle_timeout, error_buffer, no_proxy);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::min<int64_t>(options_.request_timeout.count(), 30'000)));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, DiscardOrCollect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_slist* headers = nullptr;
  if (!api_key_.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + api_key_).c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  }
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  // The handle must not keep pointers to this frame (the connection stays cached).
  curl_easy_reset(curl);
  curl_slist_free_all(headers);
  *counted_failure = false;
  if (rc != CURLE_OK) {
    *counted_failure = true;
    return Status::Unavailable(Who() + " is unavailable: " +
                               (error_buffer[0] != 0 ? error_buffer : curl_easy_strerror(rc)));
  }
  if (status < 200 || status >= 300) {
    *counted_failure = status >= 500;
    return Status::Unavailable(Who() + " answered GET /models with HTTP " + std::to_string(status) +
                               ": " + wire::ErrorMessage(body, status));
  }
  auto model = wire::FirstModelId(body);
  if (!model) return Status::Unavailable(Who() + " lists no model: " + model.error().message());
  std::lock_guard<std::mutex> lock(mutex_);
  if (remote_model_.empty()) remote_model_ = *model;
  return Status::Ok();
}

void RemoteLlm::Run(void* handle, Job& job) {
  CURL* curl = static_cast<CURL*>(handle);
  Transfer t(job.request.chat);
  t.self = this;
  t.job = &job;
  t.started = Clock::now();
  if (stopping_flag_) {
    breaker_.RecordIgnored();
    CountOutcome("shutdown");
    Fail(job, Status::Unavailable("the server is shutting down"));
    return;
  }

  bool resolve_failed = false;
  if (Status resolved = ResolveModel(curl, &resolve_failed); !resolved.ok()) {
    if (resolve_failed) {
      breaker_.RecordFailure();
    } else {
      breaker_.RecordIgnored();
    }
    CountOutcome("unreachable");
    Fail(job, resolved);
    return;
  }
  std::string model;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    model = remote_model_;
  }
  const std::string body = wire::BuildRequestBody(job.request, model)
                               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string url = base_url_ + wire::RequestPath(job.request);
  const std::string no_proxy = NoProxyList();
  char error_buffer[CURL_ERROR_SIZE] = {0};

  curl_easy_reset(curl);
  SetCommonOptions(curl, options_.connect_timeout, options_.idle_timeout, error_buffer, no_proxy);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(1, options_.request_timeout.count())));
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: text/event-stream, application/json");
  headers = curl_slist_append(headers, "Expect:");
  if (!api_key_.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + api_key_).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Transfer::OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Transfer::OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);

  const CURLcode rc = curl_easy_perform(curl);
  // The handle must not keep pointers to this frame (the connection stays cached).
  curl_easy_reset(curl);
  curl_slist_free_all(headers);
  const bool accepted = t.status >= 200 && t.status < 300;  // success already recorded

  if (job.cancelled) {
    if (!accepted) breaker_.RecordIgnored();
    CountOutcome("cancelled");
    return;  // no event after Cancel
  }
  if (stopping_flag_ && rc != CURLE_OK) {
    if (!accepted) breaker_.RecordIgnored();
    CountOutcome("shutdown");
    Fail(job, Status::Unavailable("the server is shutting down"));
    return;
  }
  const std::string detail = error_buffer[0] != 0 ? error_buffer : curl_easy_strerror(rc);

  if (!t.stream_error.ok()) {  // the write callback stopped a bad stream
    breaker_.RecordFailure();
    CountOutcome("stream_error");
    Fail(job, t.stream_error);
    return;
  }
  if (rc != CURLE_OK) {
    breaker_.RecordFailure();
    const bool timeout = rc == CURLE_OPERATION_TIMEDOUT;
    if (!accepted) {
      CountOutcome(timeout ? "timeout" : "unreachable");
      Fail(job, Status::Unavailable(Who() + " is unavailable: " + detail));
    } else {
      CountOutcome(timeout ? "timeout" : "stream_error");
      Fail(job, Status::Unavailable("the answer from " + display_url_ + " broke off: " + detail));
    }
    return;
  }
  if (!accepted) {
    const std::string message = wire::ErrorMessage(t.body, t.status);
    const std::string where = Who() + " answered HTTP " + std::to_string(t.status) + ": " + message;
    if (t.status >= 400 && t.status < 500 && t.status != 408) {
      // The request's fault (or ours to configure): the server itself is fine.
      breaker_.RecordIgnored();
      CountOutcome("client_error");
      if (t.status == 429) {
        Fail(job, Status::ResourceExhausted(message));
      } else if (t.status == 401 || t.status == 403) {
        Fail(job, Status::Unavailable(where + " (check the API key)"));
      } else {
        Fail(job, Status::InvalidArgument(message));
      }
    } else {
      breaker_.RecordFailure();
      CountOutcome("server_error");
      Fail(job, Status::Unavailable(where));
    }
    return;
  }

  // A whole JSON answer, or the end of the event stream.
  std::vector<engine::GenerationEvent> out;
  if (t.whole_json) {
    wire::SseEvent whole;
    whole.data = std::move(t.body);
    // A chat.completion has "message" where a chunk has "delta".
    nlohmann::json parsed = nlohmann::json::parse(whole.data, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("choices") &&
        parsed["choices"].is_array()) {
      for (nlohmann::json& choice : parsed["choices"]) {
        if (choice.is_object() && choice.contains("message")) choice["delta"] = choice["message"];
      }
      whole.data = parsed.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    if (!t.DecodeEvents({whole})) {
      if (job.cancelled) {
        CountOutcome("cancelled");
        return;
      }
      breaker_.RecordFailure();
      CountOutcome("stream_error");
      Fail(job, t.stream_error);
      return;
    }
  } else {
    std::vector<wire::SseEvent> rest;
    t.parser.Finish(rest);
    if (!t.DecodeEvents(rest)) {
      if (job.cancelled) {
        CountOutcome("cancelled");
        return;
      }
      breaker_.RecordFailure();
      CountOutcome("stream_error");
      Fail(job, t.stream_error);
      return;
    }
    if (!t.decoder.saw_done() && !t.decoder.saw_finish()) {
      breaker_.RecordFailure();
      CountOutcome("stream_error");
      Fail(job, Status::Unavailable("the answer from " + display_url_ +
                                    " ended before it was complete"));
      return;
    }
  }
  engine::GenerationEvent done = t.decoder.Final();
  const Clock::time_point now = Clock::now();
  done.queue_ms = Ms(t.started - job.submitted);
  done.first_token_ms =
      t.first_token ? Ms(t.first_token_at - job.submitted) : Ms(now - job.submitted);
  done.generation_ms = t.first_token ? Ms(now - t.first_token_at) : 0;
  // Counted before the caller hears of it, so what it sees next adds up.
  CountOutcome("ok");
  ReleaseSlot(job);
  Deliver(job, std::move(done));
}

// --- RemoteEmbedder -----------------------------------------------------------------

namespace {

// One synchronous request: GET when `post_body` is null. Fills `status` and
// `body`; returns curl's result, with its message in `error`.
CURLcode PerformOnce(const RemoteEmbedderOptions& options, const RemoteEndpoint& endpoint,
                     const std::string& url, const std::string* post_body, long* status,
                     std::string* body, std::string* error) {
  GlobalInitOnce();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    *error = "curl_easy_init failed";
    return CURLE_FAILED_INIT;
  }
  char error_buffer[CURL_ERROR_SIZE] = {0};
  const std::string no_proxy = NoProxyList();
  // No separate idle limit: the whole request's is the bound.
  SetCommonOptions(curl, options.connect_timeout, options.request_timeout, error_buffer, no_proxy);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(1, options.request_timeout.count())));
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, DiscardOrCollect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  if (!endpoint.api_key.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + endpoint.api_key).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (post_body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post_body->size()));
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
  if (rc != CURLE_OK) *error = error_buffer[0] != 0 ? error_buffer : curl_easy_strerror(rc);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  return rc;
}

}  // namespace

RemoteEmbedder::RemoteEmbedder(RemoteEmbedderOptions options)
    : options_(std::move(options)), breaker_(options_.breaker, options_.clock) {}

RemoteEmbedder::~RemoteEmbedder() = default;

void RemoteEmbedder::Count(const std::string& outcome) {
  if (options_.metrics == nullptr) return;
  options_.metrics->Inc(kRequests, {{"model", id_}, {"outcome", outcome}});
  const resilience::BreakerState state = breaker_.state();
  options_.metrics->Set(kBreakerState, {{"model", id_}},
                        state == resilience::BreakerState::kClosed     ? 0
                        : state == resilience::BreakerState::kHalfOpen ? 1
                                                                       : 2);
}

Result<std::unique_ptr<RemoteEmbedder>> RemoteEmbedder::Create(RemoteEmbedderOptions options) {
  XNAI_ASSIGN_OR_RETURN(
      RemoteEndpoint endpoint,
      ParseRemoteEndpoint(options.base_url, options.api_key, options.api_key_file));
  std::unique_ptr<RemoteEmbedder> embedder(new RemoteEmbedder(std::move(options)));
  embedder->endpoint_ = std::move(endpoint);
  const std::string who = "the remote embedding server at " + embedder->endpoint_.display_url;
  embedder->remote_model_ = embedder->options_.model;
  if (embedder->remote_model_.empty()) {
    long status = 0;
    std::string body, error;
    const CURLcode rc =
        PerformOnce(embedder->options_, embedder->endpoint_,
                    embedder->endpoint_.base_url + "/models", nullptr, &status, &body, &error);
    if (rc != CURLE_OK) return Err(Status::Unavailable(who + " is unavailable: " + error));
    if (status < 200 || status >= 300) {
      return Err(Status::Unavailable(who + " answered GET /models with HTTP " +
                                     std::to_string(status) + ": " +
                                     wire::ErrorMessage(body, status)));
    }
    XNAI_ASSIGN_OR_RETURN(embedder->remote_model_, wire::FirstModelId(body));
  }
  embedder->id_ =
      embedder->options_.alias.empty() ? embedder->remote_model_ : embedder->options_.alias;
  int64_t tokens = 0;
  auto probe = embedder->Post({"dimension probe"}, &tokens);
  if (!probe) {
    return Err(Status::Unavailable("cannot learn the embedding dimension from " + who + ": " +
                                   probe.error().message()));
  }
  embedder->dim_ = static_cast<int64_t>((*probe)[0].size());
  return embedder;
}

Result<std::vector<std::vector<float>>> RemoteEmbedder::Embed(const std::vector<std::string>& texts,
                                                              int64_t* tokens_read) {
  for (size_t idx = 0; idx < texts.size(); ++idx) {
    if (texts[idx].empty()) {
      return Err(Status::InvalidArgument("input " + std::to_string(idx) + " is empty"));
    }
  }
  if (!breaker_.Allow()) {
    Count("rejected_circuit_open");
    const double wait_s = std::chrono::duration<double>(breaker_.RetryAfter()).count();
    const int64_t retry_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s)));
    return Err(Status::Unavailable("the remote embedding server at " + endpoint_.display_url +
                                   " is unavailable (circuit open); retry in " +
                                   std::to_string(retry_s) + " s"));
  }
  auto vectors = Post(texts, tokens_read);
  if (vectors && dim_ != 0) {
    for (const auto& vector : *vectors) {
      if (static_cast<int64_t>(vector.size()) != dim_) {
        breaker_.RecordFailure();
        Count("stream_error");
        return Err(Status::Unavailable("the remote embedding server returned vectors of " +
                                       std::to_string(vector.size()) + " dimensions, not " +
                                       std::to_string(dim_)));
      }
    }
  }
  return vectors;
}

Result<std::vector<std::vector<float>>> RemoteEmbedder::Post(const std::vector<std::string>& texts,
                                                             int64_t* tokens_read) {
  const std::string who = "the remote embedding server at " + endpoint_.display_url;
  const std::string request =
      nlohmann::json{{"model", remote_model_}, {"input", texts}, {"encoding_format", "float"}}.dump(
          -1, ' ', false, nlohmann::json::error_handler_t::replace);
  long status = 0;
  std::string body, error;
  const CURLcode rc = PerformOnce(options_, endpoint_, endpoint_.base_url + "/embeddings", &request,
                                  &status, &body, &error);
  if (rc != CURLE_OK) {
    breaker_.RecordFailure();
    Count(rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "unreachable");
    return Err(Status::Unavailable(who + " is unavailable: " + error));
  }
  if (status >= 400 && status < 500) {
    breaker_.RecordIgnored();
    Count("client_error");
    return Err(Status::InvalidArgument(wire::ErrorMessage(body, status)));
  }
  if (status < 200 || status >= 300) {
    breaker_.RecordFailure();
    Count("server_error");
    return Err(Status::Unavailable(who + " answered HTTP " + std::to_string(status) + ": " +
                                   wire::ErrorMessage(body, status)));
  }
  const nlohmann::json answer = nlohmann::json::parse(body, nullptr, false);
  std::vector<std::vector<float>> vectors(texts.size());
  bool ok = answer.is_object() && answer.contains("data") && answer["data"].is_array() &&
            answer["data"].size() == texts.size();
  for (size_t pos = 0; ok && pos < texts.size(); ++pos) {
    const nlohmann::json& item = answer["data"][pos];
    const size_t index = item.contains("index") && item["index"].is_number_unsigned()
                             ? item["index"].get<size_t>()
                             : pos;
    ok = item.is_object() && index < texts.size() && item.contains("embedding") &&
         item["embedding"].is_array() && !item["embedding"].empty() && vectors[index].empty();
    for (size_t dim = 0; ok && dim < item["embedding"].size(); ++dim) {
      ok = item["embedding"][dim].is_number();
      if (ok) vectors[index].push_back(item["embedding"][dim].get<float>());
    }
  }
  if (!ok) {
    breaker_.RecordFailure();
    Count("stream_error");
    return Err(Status::Unavailable(who + " did not answer with one vector per input"));
  }
  breaker_.RecordSuccess();
  Count("ok");
  if (tokens_read != nullptr) {
    *tokens_read = answer.contains("usage") && answer["usage"].is_object()
                       ? answer["usage"].value("prompt_tokens", int64_t{0})
                       : 0;
  }
  return vectors;
}

}  // namespace xnai::llm
