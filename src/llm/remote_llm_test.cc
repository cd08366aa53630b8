// RemoteLlm against a scripted HTTP server on loopback: streaming, error
// mapping, the circuit breaker (with an injected clock), the bulkhead,
// cancellation and timeouts.
#include "llm/remote_llm.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

namespace xnai::llm {
namespace {

using namespace std::chrono_literals;
using Kind = engine::GenerationEvent::Kind;

// --- a scripted HTTP/1.1 server ------------------------------------------------------

struct HttpExchange {
  std::string head;  // request line and headers
  std::string body;
  int fd = -1;
  // Writes `data`; false once the client is gone.
  bool Send(std::string_view data) const {
    while (!data.empty()) {
      const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // A whole answer with a Content-Length.
  void Answer(int status, const std::string& content_type, const std::string& payload) const {
    Send("HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(payload.size()) + "\r\nConnection: close\r\n\r\n" +
         payload);
  }
  // The head of a streamed answer (the body runs until the connection closes).
  void StartStream() const {
    Send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
  }
  std::string Path() const {
    const size_t start = head.find(' ') + 1;
    return head.substr(start, head.find(' ', start) - start);
  }
};

class FakeServer {
 public:
  using Handler = std::function<void(const HttpExchange&)>;

  explicit FakeServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(listen_fd_, 64), 0);
    socklen_t length = sizeof(address);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::vector<std::thread> connections;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      connections.swap(connections_);
    }
    for (std::thread& connection : connections) connection.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(seen_.size());
  }
  std::vector<HttpExchange> seen() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::lock_guard<std::mutex> lock(mutex_);
      connections_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  void Serve(int fd) {
    timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::string data;
    char buffer[4096];
    size_t head_end = std::string::npos;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        ::close(fd);
        return;
      }
      data.append(buffer, static_cast<size_t>(n));
    }
    HttpExchange exchange;
    exchange.fd = fd;
    exchange.head = data.substr(0, head_end);
    size_t length = 0;
    std::string lower = exchange.head;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (const size_t at = lower.find("content-length:"); at != std::string::npos) {
      length = std::stoul(lower.substr(at + 15));
    }
    exchange.body = data.substr(head_end + 4);
    while (exchange.body.size() < length) {
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      exchange.body.append(buffer, static_cast<size_t>(n));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      seen_.push_back(exchange);
    }
    handler_(exchange);
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> connections_;
  std::vector<HttpExchange> seen_;
};

// A port nothing listens on.
int DeadPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string Chunk(const std::string& content) {
  return "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + content +
         "\"},\"finish_reason\":null}]}\n\n";
}

constexpr const char* kFinish =
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3}}\n\n"
    "data: [DONE]\n\n";

// Collects a request's events.
struct Events {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<engine::GenerationEvent> list;

  EventCallback Callback() {
    return [this](engine::GenerationEvent&& event) {
      std::lock_guard<std::mutex> lock(mutex);
      list.push_back(std::move(event));
      changed.notify_all();
    };
  }
  // Waits until `pred(list)` holds; false after `timeout`.
  bool WaitFor(const std::function<bool(const std::vector<engine::GenerationEvent>&)>& pred,
               std::chrono::milliseconds timeout = 20s) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return pred(list); });
  }
  bool WaitForEnd(std::chrono::milliseconds timeout = 20s) {
    return WaitFor(
        [](const auto& events) { return !events.empty() && events.back().kind != Kind::kToken; },
        timeout);
  }
  std::string Text() {
    std::lock_guard<std::mutex> lock(mutex);
    std::string text;
    for (const auto& event : list) text += event.text;
    return text;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return list.size();
  }
};

GenerateRequest Hello() {
  GenerateRequest request;
  request.chat = true;
  request.messages = nlohmann::ordered_json::parse(R"([{"role":"user","content":"hello"}])");
  request.sampling.temperature = 0;
  request.max_tokens = 3;
  return request;
}

RemoteLlmOptions OptionsFor(const std::string& url) {
  RemoteLlmOptions options;
  options.base_url = url;
  options.model = "up-model";
  options.connect_timeout = 2s;
  options.request_timeout = 30s;
  options.idle_timeout = 10s;
  options.response_wait = 10s;
  return options;
}

// --- tests -------------------------------------------------------------------------

TEST(RemoteLlmTest, StreamsTokensAndUsage) {
  FakeServer server([](const HttpExchange& http) {
    http.StartStream();
    // Events split across writes, with a comment and CRLF endings.
    http.Send(": keep-alive\r\n\r\n");
    http.Send(Chunk("Hel").substr(0, 17));
    std::this_thread::sleep_for(5ms);
    http.Send(Chunk("Hel").substr(17));
    http.Send(Chunk("lo"));
    http.Send(kFinish);
  });
  const std::string key_path = ::testing::TempDir() + "/remote_key";
  std::ofstream(key_path) << "  sk-test-123\n";
  RemoteLlmOptions options = OptionsFor(server.url() + "/");
  options.api_key_file = key_path;
  obs::Registry metrics;
  options.metrics = &metrics;
  auto llm = RemoteLlm::Create(options);
  ASSERT_TRUE(llm.has_value()) << llm.error().ToString();
  EXPECT_EQ((*llm)->id(), "up-model");
  Events events;
  auto id = (*llm)->Generate(Hello(), events.Callback());
  ASSERT_TRUE(id.has_value()) << id.error().ToString();
  ASSERT_TRUE(events.WaitForEnd());
  EXPECT_EQ(events.Text(), "Hello");
  const engine::GenerationEvent& done = events.list.back();
  EXPECT_EQ(done.kind, Kind::kDone);
  EXPECT_EQ(done.finish_reason, "length");
  EXPECT_EQ(done.prompt_tokens, 9);
  EXPECT_EQ(done.completion_tokens, 3);
  ASSERT_EQ(server.requests(), 1);
  const HttpExchange request = server.seen()[0];
  EXPECT_EQ(request.Path(), "/v1/chat/completions");
  EXPECT_NE(request.head.find("Authorization: Bearer sk-test-123\r\n"), std::string::npos);
  const auto body = nlohmann::json::parse(request.body);
  EXPECT_EQ(body["model"], "up-model");
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["max_tokens"], 3);
  // The outcome is counted right after the last event.
  for (int tries = 0; tries < 200; ++tries) {
    if (metrics.Value("xnai_llm_remote_requests_total",
                      {{"model", "up-model"}, {"outcome", "ok"}}) == 1) {
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(
      metrics.Value("xnai_llm_remote_requests_total", {{"model", "up-model"}, {"outcome", "ok"}}),
      1);
  EXPECT_EQ(metrics.Value("xnai_llm_remote_breaker_state", {{"model", "up-model"}}), 0);
}

TEST(RemoteLlmTest, AsksTheServerForTheModelName) {
  FakeServer server([](const HttpExchange& http) {
    if (http.Path() == "/v1/models") {
      http.Answer(200, "application/json",
                  R"({"object":"list","data":[{"id":"first"},{"id":"x"}]})");
      return;
    }
    http.StartStream();
    http.Send(Chunk("ok"));
    http.Send(kFinish);
  });
  RemoteLlmOptions options = OptionsFor(server.url());
  options.model.clear();
  options.alias = "local-name";
  auto llm = RemoteLlm::Create(options);
  ASSERT_TRUE(llm.has_value()) << llm.error().ToString();
  EXPECT_EQ((*llm)->id(), "local-name");
  EXPECT_EQ((*llm)->status().remote_model, "first");
  Events events;
  ASSERT_TRUE((*llm)->Generate(Hello(), events.Callback()).has_value());
  ASSERT_TRUE(events.WaitForEnd());
  EXPECT_EQ(nlohmann::json::parse(server.seen().back().body)["model"], "first");
}

TEST(RemoteLlmTest, CreateErrors) {
  RemoteLlmOptions options = OptionsFor("ftp://host/v1");
  EXPECT_EQ(RemoteLlm::Create(options).error().code(), Status::Code::kInvalidArgument);
  options = OptionsFor("http://127.0.0.1:" + std::to_string(DeadPort()) + "/v1");
  options.api_key_file = "/nonexistent/key";
  auto missing = RemoteLlm::Create(options);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message().find("/nonexistent/key"), std::string::npos);
  const std::string empty_key = ::testing::TempDir() + "/empty_key";
  std::ofstream(empty_key) << "\n";
  options.api_key_file = empty_key;
  EXPECT_EQ(RemoteLlm::Create(options).error().code(), Status::Code::kInvalidArgument);
  // No model name, no alias, nobody to ask.
  options.api_key_file.clear();
  options.model.clear();
  auto unknown = RemoteLlm::Create(options);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code(), Status::Code::kUnavailable);
  EXPECT_NE(unknown.error().message().find("/models"), std::string::npos);
}

TEST(RemoteLlmTest, ClientErrorsPassThroughWithoutTrippingTheBreaker) {
  FakeServer server([](const HttpExchange& http) {
    if (http.body.find("limit") != std::string::npos) {
      http.Answer(429, "application/json", R"({"error":{"message":"queue full upstream"}})");
    } else {
      http.Answer(400, "application/json",
                  R"({"error":{"message":"the prompt is too long for the context"}})");
    }
  });
  RemoteLlmOptions options = OptionsFor(server.url());
  options.breaker.failure_threshold = 1;
  auto llm = RemoteLlm::Create(options).value();
  for (int round = 0; round < 3; ++round) {
    Events events;
    auto id = llm->Generate(Hello(), events.Callback());
    ASSERT_FALSE(id.has_value());
    EXPECT_EQ(id.error().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(id.error().message(), "the prompt is too long for the context");
  }
  GenerateRequest limited = Hello();
  limited.stop = {"limit"};
  Events events;
  auto busy = llm->Generate(limited, events.Callback());
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.error().code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(llm->status().breaker_state, resilience::BreakerState::kClosed);
  EXPECT_EQ(llm->status().breaker.failures, 0);
  EXPECT_EQ(events.size(), 0u);  // an error from Generate: no event
}

TEST(RemoteLlmTest, ServerErrorsOpenTheBreakerWhichFailsFastThenRecovers) {
  std::atomic<bool> healthy{false};
  FakeServer server([&](const HttpExchange& http) {
    if (!healthy) {
      http.Answer(500, "application/json", R"({"error":{"message":"out of memory"}})");
      return;
    }
    http.StartStream();
    http.Send(Chunk("back"));
    http.Send(kFinish);
  });
  std::atomic<std::chrono::steady_clock::time_point> now{std::chrono::steady_clock::now()};
  RemoteLlmOptions options = OptionsFor(server.url());
  options.breaker.failure_threshold = 2;
  options.breaker.open_duration = 30s;
  options.clock = [&now] { return now.load(); };
  obs::Registry metrics;
  options.metrics = &metrics;
  auto llm = RemoteLlm::Create(options).value();
  for (int round = 0; round < 2; ++round) {
    Events events;
    auto id = llm->Generate(Hello(), events.Callback());
    ASSERT_FALSE(id.has_value());
    EXPECT_EQ(id.error().code(), Status::Code::kUnavailable);
    EXPECT_NE(id.error().message().find("HTTP 500: out of memory"), std::string::npos)
        << id.error().message();
  }
  EXPECT_EQ(llm->status().breaker_state, resilience::BreakerState::kOpen);
  EXPECT_EQ(metrics.Value("xnai_llm_remote_breaker_state", {{"model", "up-model"}}), 2);
  // Open: no request reaches the server.
  Events events;
  auto fast = llm->Generate(Hello(), events.Callback());
  ASSERT_FALSE(fast.has_value());
  EXPECT_EQ(fast.error().code(), Status::Code::kUnavailable);
  EXPECT_NE(fast.error().message().find("circuit open"), std::string::npos);
  EXPECT_NE(fast.error().message().find("retry in 30 s"), std::string::npos);
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(metrics.Value("xnai_llm_remote_requests_total",
                          {{"model", "up-model"}, {"outcome", "rejected_circuit_open"}}),
            1);
  // After the cool-down a probe goes through and closes it.
  healthy = true;
  now = now.load() + 30s;
  EXPECT_EQ(llm->status().breaker_state, resilience::BreakerState::kHalfOpen);
  EXPECT_EQ(metrics.Value("xnai_llm_remote_breaker_state", {{"model", "up-model"}}), 1);
  auto probe = llm->Generate(Hello(), events.Callback());
  ASSERT_TRUE(probe.has_value()) << probe.error().ToString();
  ASSERT_TRUE(events.WaitForEnd());
  EXPECT_EQ(events.Text(), "back");
  EXPECT_EQ(llm->status().breaker_state, resilience::BreakerState::kClosed);
  EXPECT_EQ(metrics.Value("xnai_llm_remote_breaker_state", {{"model", "up-model"}}), 0);
}

TEST(RemoteLlmTest, ConnectionRefusedIsUnavailableAndAFailure) {
  RemoteLlmOptions options = OptionsFor("http://127.0.0.1:" + std::to_string(DeadPort()) + "/v1");
  options.breaker.failure_threshold = 1;
  auto llm = RemoteLlm::Create(options).value();
  Events events;
  auto id = llm->Generate(Hello(), events.Callback());
  ASSERT_FALSE(id.has_value());
  EXPECT_EQ(id.error().code(), Status::Code::kUnavailable);
  EXPECT_NE(id.error().message().find("is unavailable"), std::string::npos);
  EXPECT_EQ(llm->status().breaker_state, resilience::BreakerState::kOpen);
  EXPECT_EQ(llm->status().breaker.opens, 1);
}

TEST(RemoteLlmTest, LateErrorsArriveAsEvents) {
  // The server answers only once Generate has returned, so the failure is
  // late whatever the scheduling (a refused connection can fail before a
  // zero wait even starts).
  std::promise<void> returned;
  std::shared_future<void> generate_returned = returned.get_future().share();
  FakeServer server([generate_returned](const HttpExchange& http) {
    generate_returned.wait_for(10s);
    http.Answer(503, "application/json", R"({"error":{"message":"overloaded"}})");
  });
  RemoteLlmOptions options = OptionsFor(server.url());
  options.response_wait = 0ms;
  auto llm = RemoteLlm::Create(options).value();
  Events events;
  auto id = llm->Generate(Hello(), events.Callback());
  returned.set_value();
  ASSERT_TRUE(id.has_value()) << id.error().ToString();
  ASSERT_TRUE(events.WaitForEnd());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events.list[0].kind, Kind::kError);
  EXPECT_EQ(events.list[0].error.code(), Status::Code::kUnavailable);
}

TEST(RemoteLlmTest, BrokenStreamsAreErrorEvents) {
  FakeServer server([](const HttpExchange& http) {
    http.StartStream();
    http.Send(Chunk("partial"));
    if (http.body.find("crash") != std::string::npos) {
      http.Send(
          "data: {\"error\":{\"message\":\"the model crashed\",\"type\":\"server_error\"}}\n\n");
    }
    // Otherwise the connection just ends: no finish_reason, no [DONE].
  });
  RemoteLlmOptions options = OptionsFor(server.url());
  auto llm = RemoteLlm::Create(options).value();
  for (const std::string word : {"cut", "crash"}) {
    GenerateRequest request = Hello();
    request.stop = {word};
    Events events;
    ASSERT_TRUE(llm->Generate(request, events.Callback()).has_value());
    ASSERT_TRUE(events.WaitForEnd());
    EXPECT_EQ(events.Text(), "partial");
    EXPECT_EQ(events.list.back().kind, Kind::kError);
    EXPECT_EQ(events.list.back().error.code(), Status::Code::kUnavailable);
    if (word == "crash") {
      EXPECT_NE(events.list.back().error.message().find("the model crashed"), std::string::npos);
    } else {
      EXPECT_NE(events.list.back().error.message().find("ended before"), std::string::npos);
    }
  }
  EXPECT_EQ(llm->status().breaker.failures, 2);
}

TEST(RemoteLlmTest, AWholeJsonAnswerIsAcceptedToo) {
  FakeServer server([](const HttpExchange& http) {
    http.Answer(200, "application/json",
                R"({"choices":[{"index":0,"message":{"role":"assistant","content":"all at once"},
                    "finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3}})");
  });
  auto llm = RemoteLlm::Create(OptionsFor(server.url())).value();
  Events events;
  ASSERT_TRUE(llm->Generate(Hello(), events.Callback()).has_value());
  ASSERT_TRUE(events.WaitForEnd());
  EXPECT_EQ(events.Text(), "all at once");
  EXPECT_EQ(events.list.back().kind, Kind::kDone);
  EXPECT_EQ(events.list.back().completion_tokens, 3);
}

// A server that streams a token every few milliseconds until the client
// leaves, and records when it noticed.
struct EndlessStream {
  std::atomic<bool> client_left{false};
  std::atomic<int> streams{0};
  FakeServer::Handler Handler() {
    return [this](const HttpExchange& http) {
      ++streams;
      http.StartStream();
      for (int token_idx = 0; token_idx < 5000; ++token_idx) {
        if (!http.Send(Chunk("t"))) {
          client_left = true;
          return;
        }
        std::this_thread::sleep_for(5ms);
      }
    };
  }
};

TEST(RemoteLlmTest, CancelStopsEventsAndClosesTheUpstreamConnection) {
  EndlessStream endless;
  FakeServer server(endless.Handler());
  obs::Registry metrics;
  RemoteLlmOptions options = OptionsFor(server.url());
  options.metrics = &metrics;
  auto llm = RemoteLlm::Create(options).value();
  Events events;
  auto id = llm->Generate(Hello(), events.Callback());
  ASSERT_TRUE(id.has_value());
  ASSERT_TRUE(events.WaitFor([](const auto& list) { return list.size() >= 3; }));
  llm->Cancel(*id);
  const size_t seen = events.size();
  for (int tries = 0; tries < 1000 && !endless.client_left; ++tries) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(endless.client_left);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(events.size(), seen);  // nothing after Cancel returned
  for (int tries = 0; tries < 500 && llm->status().active != 0; ++tries) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(llm->status().active, 0);
  EXPECT_EQ(metrics.Value("xnai_llm_remote_requests_total",
                          {{"model", "up-model"}, {"outcome", "cancelled"}}),
            1);
  EXPECT_EQ(llm->status().breaker.failures, 0);
  llm->Cancel(*id);     // finished: ignored
  llm->Cancel(424242);  // unknown: ignored
}

TEST(RemoteLlmTest, CancelFromInsideTheCallback) {
  EndlessStream endless;
  FakeServer server(endless.Handler());
  auto llm = RemoteLlm::Create(OptionsFor(server.url())).value();
  std::atomic<uint64_t> job{0};
  std::atomic<int> calls{0};
  RemoteLlm* raw = llm.get();
  auto id = llm->Generate(Hello(), [&](engine::GenerationEvent&&) {
    ++calls;
    while (job.load() == 0) std::this_thread::yield();
    raw->Cancel(job.load());
  });
  ASSERT_TRUE(id.has_value());
  job = *id;
  for (int tries = 0; tries < 1000 && !endless.client_left; ++tries) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(endless.client_left);
  EXPECT_EQ(calls.load(), 1);
}

TEST(RemoteLlmTest, TheBulkheadRefusesRequestsBeyondTheLimit) {
  EndlessStream endless;
  FakeServer server(endless.Handler());
  RemoteLlmOptions options = OptionsFor(server.url());
  options.max_concurrent = 2;
  auto llm = RemoteLlm::Create(options).value();
  Events first, second, third;
  auto a = llm->Generate(Hello(), first.Callback());
  auto b = llm->Generate(Hello(), second.Callback());
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  auto c = llm->Generate(Hello(), third.Callback());
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(llm->status().active, 2);
  llm->Cancel(*a);
  for (int tries = 0; tries < 500 && llm->status().active != 1; ++tries) {
    std::this_thread::sleep_for(10ms);
  }
  auto d = llm->Generate(Hello(), third.Callback());
  EXPECT_TRUE(d.has_value());
  llm->Cancel(*b);
  if (d) llm->Cancel(*d);
}

TEST(RemoteLlmTest, ASlotIsFreeOnceTheLastEventArrived) {
  FakeServer server([](const HttpExchange& http) {
    if (http.body.find("fail") != std::string::npos) {
      http.Answer(400, "application/json", R"({"error":{"message":"no"}})");
      return;
    }
    http.StartStream();
    http.Send(Chunk("x"));
    http.Send(kFinish);
  });
  RemoteLlmOptions options = OptionsFor(server.url());
  options.max_concurrent = 1;
  auto llm = RemoteLlm::Create(options).value();
  for (int round = 0; round < 20; ++round) {
    Events events;
    auto id = llm->Generate(Hello(), events.Callback());
    ASSERT_TRUE(id.has_value()) << "round " << round << ": " << id.error().ToString();
    ASSERT_TRUE(events.WaitForEnd());
    GenerateRequest failing = Hello();
    failing.stop = {"fail"};
    auto refused = llm->Generate(failing, events.Callback());
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code(), Status::Code::kInvalidArgument) << refused.error().ToString();
  }
}

TEST(RemoteLlmTest, IdleTimeoutEndsASilentStream) {
  FakeServer server([](const HttpExchange& http) {
    http.StartStream();
    http.Send(Chunk("x"));
    std::this_thread::sleep_for(3s);  // then silence
  });
  RemoteLlmOptions options = OptionsFor(server.url());
  options.idle_timeout = 1s;
  auto llm = RemoteLlm::Create(options).value();
  Events events;
  ASSERT_TRUE(llm->Generate(Hello(), events.Callback()).has_value());
  ASSERT_TRUE(events.WaitForEnd(15s));
  EXPECT_EQ(events.list.back().kind, Kind::kError);
  EXPECT_EQ(llm->status().breaker.failures, 1);
}

TEST(RemoteLlmTest, DrainRefusesNewRequests) {
  auto llm = RemoteLlm::Create(OptionsFor("http://127.0.0.1:9/v1")).value();
  llm->Drain();
  Events events;
  auto id = llm->Generate(Hello(), events.Callback());
  ASSERT_FALSE(id.has_value());
  EXPECT_EQ(id.error().code(), Status::Code::kUnavailable);
  EXPECT_FALSE(llm->Generate(Hello(), nullptr).has_value());
}

TEST(RemoteLlmTest, DestroyingItEndsRequestsInFlightWithAnError) {
  EndlessStream endless;
  FakeServer server(endless.Handler());
  Events events;
  {
    auto llm = RemoteLlm::Create(OptionsFor(server.url())).value();
    ASSERT_TRUE(llm->Generate(Hello(), events.Callback()).has_value());
    ASSERT_TRUE(events.WaitFor([](const auto& list) { return !list.empty(); }));
  }
  ASSERT_FALSE(events.list.empty());
  EXPECT_EQ(events.list.back().kind, Kind::kError);
  EXPECT_EQ(events.list.back().error.code(), Status::Code::kUnavailable);
}

}  // namespace
}  // namespace xnai::llm
