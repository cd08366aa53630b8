#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "base/log.h"

namespace xnai::server {
namespace {

using namespace std::chrono_literals;

// ---- a small blocking client on raw sockets ---------------------------------

struct HttpReply {
  bool ok = false;  // a complete response was read
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class Client {
 public:
  explicit Client(uint16_t port, int timeout_ms = 5000) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  // Bytes read past the last response.
  std::string TakePending() { return std::exchange(pending_, std::string()); }

  bool Send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads one response (Content-Length framed; `head` = no body expected).
  HttpReply Read(bool head = false) {
    HttpReply reply;
    size_t header_end;
    while ((header_end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return reply;
    }
    std::string head_text = pending_.substr(0, header_end);
    pending_.erase(0, header_end + 4);
    size_t line_end = head_text.find("\r\n");
    std::string status_line = head_text.substr(0, line_end);
    if (status_line.size() < 12) return reply;
    reply.status = std::stoi(status_line.substr(9, 3));
    size_t pos = line_end == std::string::npos ? head_text.size() : line_end + 2;
    while (pos < head_text.size()) {
      size_t end = head_text.find("\r\n", pos);
      if (end == std::string::npos) end = head_text.size();
      std::string line = head_text.substr(pos, end - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        reply.headers[name] = value;
      }
      pos = end + 2;
    }
    size_t length = 0;
    if (!head && reply.headers.count("content-length")) {
      length = std::stoul(reply.headers["content-length"]);
    }
    while (pending_.size() < length) {
      if (!Fill()) return reply;
    }
    reply.body = pending_.substr(0, length);
    pending_.erase(0, length);
    reply.ok = true;
    return reply;
  }

  // Reads one chunked response: the header, then chunks until the last one.
  // `chunks` receives each chunk's data as it arrived.
  HttpReply ReadChunked(std::vector<std::string>* chunks = nullptr) {
    HttpReply reply = Read(/*head=*/true);
    if (!reply.ok) return reply;
    reply.ok = false;
    for (;;) {
      size_t line_end;
      while ((line_end = pending_.find("\r\n")) == std::string::npos) {
        if (!Fill()) return reply;
      }
      size_t size = std::stoul(pending_.substr(0, line_end), nullptr, 16);
      pending_.erase(0, line_end + 2);
      while (pending_.size() < size + 2) {
        if (!Fill()) return reply;
      }
      if (size == 0) {
        pending_.erase(0, 2);
        reply.ok = true;
        return reply;
      }
      reply.body += pending_.substr(0, size);
      if (chunks) chunks->push_back(pending_.substr(0, size));
      pending_.erase(0, size + 2);
    }
  }

  void CloseNow() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  // True when the server closed the connection (EOF or reset) before
  // sending anything more.
  bool ClosedByPeer() {
    if (!pending_.empty()) return false;
    char byte;
    ssize_t n = recv(fd_, &byte, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  bool Fill() {
    char buf[16384];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

std::string Get(const std::string& target, const std::string& extra_headers = "",
                bool close_connection = false) {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra_headers +
         (close_connection ? "Connection: close\r\n" : "") + "\r\n";
}

HttpReply Fetch(uint16_t port, const std::string& raw_request, bool head = false) {
  Client client(port);
  if (!client.connected() || !client.Send(raw_request)) return {};
  return client.Read(head);
}

// ---- a server running on its own thread ------------------------------------

class TestServer {
 public:
  TestServer(ServerConfig config, const Router& router, obs::Registry& metrics,
             bool handle_signals = false)
      : server_(config, router, metrics) {
    status_ = server_.Bind();
    if (!status_.ok()) return;
    if (handle_signals) server_.HandleSignals();
    std::promise<void> ready;
    auto ready_future = ready.get_future();
    server_.OnReady([&ready] { ready.set_value(); });
    thread_ = std::thread([this] {
      server_.Run();
      stopped_ = true;
    });
    ready_future.wait();
  }
  ~TestServer() { Stop(); }

  const Status& status() const { return status_; }
  uint16_t port() const { return server_.port(); }
  HttpServer& server() { return server_; }
  bool stopped() const { return stopped_; }

  // Shutdown and wait for Run() to return; the time that took.
  std::chrono::milliseconds Stop() {
    auto start = std::chrono::steady_clock::now();
    if (thread_.joinable()) {
      server_.Shutdown();
      thread_.join();
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  HttpServer server_;
  Status status_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

ServerConfig TestConfig() {
  ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.threads = 2;
  config.read_timeout_ms = 2000;
  config.write_timeout_ms = 2000;
  config.idle_timeout_ms = 2000;
  config.shutdown_grace_ms = 2000;
  return config;
}

// Producers of streamed responses run on their own threads; tests join
// them before the server goes away.
struct StreamProducers {
  std::mutex mutex;
  std::vector<std::thread> threads;
  std::atomic<int> cancelled{0};
  void Spawn(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mutex);
    threads.emplace_back(std::move(fn));
  }
  void JoinAll() {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto& thread : threads) thread.join();
    threads.clear();
  }
};
StreamProducers& Producers() {
  static StreamProducers producers;
  return producers;
}

Router TestRouter() {
  Router router;
  // Three events 50 ms apart, then the end of the body.
  router.Add({"GET", "/stream", "Streams"}, [](Request&) {
    Response response;
    response.content_type = "text/event-stream";
    response.stream = std::make_shared<ResponseStream>();
    Producers().Spawn([stream = response.stream] {
      for (int i = 0; i < 3; ++i) {
        std::this_thread::sleep_for(50ms);
        stream->Write("data: " + std::to_string(i) + "\n\n");
      }
      stream->Close();
    });
    return response;
  });
  // Fails before producing anything: the error status still goes out.
  router.Add({"GET", "/stream-fails", "Streams an early failure"}, [](Request&) {
    Response response;
    response.content_type = "text/event-stream";
    response.stream = std::make_shared<ResponseStream>();
    Producers().Spawn([stream = response.stream] {
      std::this_thread::sleep_for(50ms);
      EXPECT_TRUE(stream->SetStatus(503, "application/json", {{"Retry-After", "1"}}));
      stream->Write("{\"error\":\"busy\"}");
      EXPECT_FALSE(stream->SetStatus(200));  // the head is decided once bytes exist
      stream->Close();
    });
    return response;
  });
  // Writes nothing until cancelled (a request waiting in a queue).
  router.Add({"GET", "/stream-forever", "Streams until the client leaves"}, [](Request&) {
    Response response;
    response.content_type = "text/event-stream";
    response.stream = std::make_shared<ResponseStream>();
    auto done = std::make_shared<std::atomic<bool>>(false);
    response.stream->OnCancel([done] {
      Producers().cancelled++;
      *done = true;
    });
    Producers().Spawn([stream = response.stream, done] {
      auto deadline = std::chrono::steady_clock::now() + 10s;
      while (!*done && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
      }
      stream->Close();
    });
    return response;
  });
  router.Add({"GET", "/health", "Liveness"}, [](Request&) {
    return JsonResponse({{"status", "ok"}});
  });
  router.Add({"GET", "/metrics", "Metrics"}, [](Request&) {
    Response response;
    response.content_type = "text/plain; version=0.0.4";
    response.body = "metrics";
    return response;
  });
  router.Add({"GET", "/echo/{name}/items/{id}", "Echo"}, [](Request& request) {
    nlohmann::json query = nlohmann::json::object();
    for (const auto& [key, value] : request.query) query[key].push_back(value);
    return JsonResponse({{"name", request.path_params.at("name")},
                         {"id", request.path_params.at("id")},
                         {"path", request.path},
                         {"target", request.target},
                         {"query", query},
                         {"request_id", request.request_id},
                         {"remote", request.remote_address},
                         {"agent", request.Header("user-agent")}});
  });
  router.Add({"POST", "/upload", "Upload"}, [](Request& request) {
    return JsonResponse({{"bytes", request.body.size()}}, 201);
  });
  router.Add({"DELETE", "/echo/{name}/items/{id}", "Delete"}, [](Request&) {
    return JsonResponse({{"deleted", true}});
  });
  router.Add({"GET", "/throw", "Throws"},
             [](Request&) -> Response { throw std::runtime_error("secret internal detail"); });
  router.Add({"GET", "/slow", "Sleeps 300 ms"}, [](Request&) {
    std::this_thread::sleep_for(300ms);
    return JsonResponse({{"slept_ms", 300}});
  });
  router.Add({"GET", "/sleep/{ms}", "Sleeps"}, [](Request& request) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(request.path_params["ms"])));
    return JsonResponse({{"done", true}});
  });
  router.Add({"GET", "/headers", "Extra headers"}, [](Request&) {
    Response response = JsonResponse({{"ok", true}});
    response.headers.emplace_back("Cache-Control", "no-store");
    response.headers.emplace_back("Content-Length", "9999");  // framing is the server's
    return response;
  });
  return router;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(ServerConfig config = TestConfig()) {
    server_ = std::make_unique<TestServer>(config, router_, metrics_);
    ASSERT_TRUE(server_->status().ok()) << server_->status().ToString();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    server_.reset();
    Producers().JoinAll();
  }

  Router router_ = TestRouter();
  obs::Registry metrics_;
  std::unique_ptr<TestServer> server_;
  uint16_t port_ = 0;
};

// ---- streamed responses -------------------------------------------------------

TEST_F(HttpServerTest, StreamedResponseArrivesInChunksAndKeepsTheConnection) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(Get("/stream")));
  std::vector<std::string> chunks;
  HttpReply reply = client.ReadChunked(&chunks);
  Producers().JoinAll();
  ASSERT_TRUE(reply.ok);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.Header("content-type"), "text/event-stream");
  EXPECT_EQ(reply.Header("transfer-encoding"), "chunked");
  EXPECT_EQ(reply.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
  EXPECT_EQ(chunks.size(), 3u);  // written 50 ms apart: one chunk each
  // The same connection serves the next request.
  ASSERT_TRUE(client.Send(Get("/health")));
  HttpReply next = client.Read();
  ASSERT_TRUE(next.ok);
  EXPECT_EQ(next.status, 200);
}

TEST_F(HttpServerTest, StreamCanChooseItsStatusBeforeTheFirstBytes) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(Get("/stream-fails")));
  HttpReply reply = client.ReadChunked();
  Producers().JoinAll();
  ASSERT_TRUE(reply.ok);
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(reply.Header("content-type"), "application/json");
  EXPECT_EQ(reply.Header("retry-after"), "1");
  EXPECT_EQ(reply.body, "{\"error\":\"busy\"}");
  // Recorded just after the last chunk went out.
  const obs::Labels labels = {{"route", "/stream-fails"}, {"method", "GET"}, {"status", "503"}};
  for (int tries = 0; tries < 200 && metrics_.Value("xnai_http_requests_total", labels) == 0;
       ++tries) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(metrics_.Value("xnai_http_requests_total", labels), 1);
}

TEST_F(HttpServerTest, ClientLeavingCancelsTheStream) {
  Start();
  Producers().cancelled = 0;
  {
    Client client(port_);
    ASSERT_TRUE(client.Send(Get("/stream-forever")));
    // Nothing is written, so not even the head goes out; leave meanwhile.
    std::this_thread::sleep_for(100ms);
    client.CloseNow();
  }
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (Producers().cancelled == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  Producers().JoinAll();
  EXPECT_EQ(Producers().cancelled, 1);
}

TEST_F(HttpServerTest, ShutdownCancelsAStreamThatNeverEnds) {
  ServerConfig config = TestConfig();
  config.shutdown_grace_ms = 200;
  Start(config);
  Producers().cancelled = 0;
  Client client(port_);
  ASSERT_TRUE(client.Send(Get("/stream-forever")));
  std::this_thread::sleep_for(100ms);
  auto took = server_->Stop();
  Producers().JoinAll();
  EXPECT_EQ(Producers().cancelled, 1);
  EXPECT_LT(took, 5s);
}

TEST_F(HttpServerTest, Http10StreamEndsWithTheConnection) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send("GET /stream HTTP/1.0\r\n\r\n"));
  HttpReply header = client.Read(/*head=*/true);
  ASSERT_TRUE(header.ok);
  EXPECT_EQ(header.Header("transfer-encoding"), "");
  EXPECT_EQ(header.Header("connection"), "close");
  std::string rest;
  char buf[256];
  ssize_t n;
  while ((n = recv(client.fd(), buf, sizeof(buf), 0)) > 0) rest.append(buf, static_cast<size_t>(n));
  Producers().JoinAll();
  EXPECT_EQ(header.body + client.TakePending() + rest, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

// ---- routing ------------------------------------------------------------------

TEST_F(HttpServerTest, Routes200And404And405) {
  Start();
  HttpReply ok = Fetch(port_, Get("/health"));
  ASSERT_TRUE(ok.ok);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.Json()["status"], "ok");
  EXPECT_EQ(ok.Header("content-type"), "application/json");
  EXPECT_EQ(ok.Header("server"), "xnai");
  EXPECT_EQ(ok.Header("content-length"), std::to_string(ok.body.size()));

  HttpReply missing = Fetch(port_, Get("/nope"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Json()["error"]["type"], "not_found_error");
  EXPECT_EQ(missing.Json()["error"]["code"], "route_not_found");

  HttpReply wrong =
      Fetch(port_, "PUT /echo/a/items/b HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.Header("allow"), "GET, HEAD, DELETE");
  EXPECT_EQ(wrong.Json()["error"]["type"], "invalid_request_error");
  EXPECT_EQ(wrong.Json()["error"]["code"], "method_not_allowed");

  HttpReply created =
      Fetch(port_, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(created.status, 201);
  EXPECT_EQ(created.Json()["bytes"], 5);
}

TEST_F(HttpServerTest, PathParamsPercentDecodingAndQuery) {
  Start();
  HttpReply reply =
      Fetch(port_, Get("/echo/caf%C3%A9/items/a%2Fb?q=hello+world&q=two%26three&empty=&flag&x=%2B",
                       "User-Agent: tester/1\r\n"));
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto body = reply.Json();
  EXPECT_EQ(body["name"], "caf\xc3\xa9");
  EXPECT_EQ(body["id"], "a/b");  // an escaped slash stays inside its segment
  EXPECT_EQ(body["path"], "/echo/caf\xc3\xa9/items/a/b");
  EXPECT_EQ(body["target"],
            "/echo/caf%C3%A9/items/a%2Fb?q=hello+world&q=two%26three&empty=&flag&x=%2B");
  EXPECT_EQ(body["query"]["q"], nlohmann::json({"hello world", "two&three"}));
  EXPECT_EQ(body["query"]["empty"], nlohmann::json({""}));
  EXPECT_EQ(body["query"]["flag"], nlohmann::json({""}));
  EXPECT_EQ(body["query"]["x"], nlohmann::json({"+"}));
  EXPECT_EQ(body["remote"], "127.0.0.1");
  EXPECT_EQ(body["agent"], "tester/1");

  HttpReply bad_escape = Fetch(port_, Get("/echo/a/items/%zz"));
  EXPECT_EQ(bad_escape.status, 400);
  EXPECT_EQ(bad_escape.Json()["error"]["code"], "invalid_target");
  HttpReply bad_query = Fetch(port_, Get("/health?x=%G1"));
  EXPECT_EQ(bad_query.status, 400);
  HttpReply nul = Fetch(port_, Get("/echo/a%00/items/b"));
  EXPECT_EQ(nul.status, 400);
}

TEST_F(HttpServerTest, HeadServesGetRouteWithoutBody) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send("HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpReply head = client.Read(/*head=*/true);
  ASSERT_TRUE(head.ok);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-length"), "15");  // length of {"status":"ok"}
  EXPECT_EQ(head.body, "");
  // The connection is still in sync: no body bytes were sent.
  ASSERT_TRUE(client.Send(Get("/health")));
  HttpReply next = client.Read();
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, R"({"status":"ok"})");
}

TEST_F(HttpServerTest, ExtraHeadersPassButFramingIsServers) {
  Start();
  HttpReply reply = Fetch(port_, Get("/headers"));
  ASSERT_TRUE(reply.ok);
  EXPECT_EQ(reply.Header("cache-control"), "no-store");
  EXPECT_EQ(reply.Header("content-length"), std::to_string(reply.body.size()));
  EXPECT_EQ(reply.Json()["ok"], true);
}

// ---- connections ----------------------------------------------------------------

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(Get("/health")));
  HttpReply first = client.Read();
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.Header("connection"), "keep-alive");
  ASSERT_TRUE(client.Send(Get("/echo/a/items/b", "", /*close_connection=*/true)));
  HttpReply second = client.Read();
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.Header("connection"), "close");
  EXPECT_TRUE(client.ClosedByPeer());
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(Get("/echo/one/items/1") + Get("/echo/two/items/2")));
  EXPECT_EQ(client.Read().Json()["name"], "one");
  EXPECT_EQ(client.Read().Json()["name"], "two");
}

TEST_F(HttpServerTest, Http10ClosesUnlessKeepAlive) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send("GET /health HTTP/1.0\r\n\r\n"));
  HttpReply reply = client.Read();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.Header("connection"), "close");
  EXPECT_TRUE(client.ClosedByPeer());
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosedSilently) {
  ServerConfig config = TestConfig();
  config.idle_timeout_ms = 200;
  Start(config);
  Client client(port_);
  ASSERT_TRUE(client.Send(Get("/health")));
  EXPECT_EQ(client.Read().status, 200);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.ClosedByPeer());  // no 408, just closed
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 2000ms);

  // A connection that never sends anything is dropped the same way.
  Client silent(port_);
  EXPECT_TRUE(silent.ClosedByPeer());
}

TEST_F(HttpServerTest, SlowRequestGets408) {
  ServerConfig config = TestConfig();
  config.read_timeout_ms = 200;
  Start(config);
  Client client(port_);
  ASSERT_TRUE(client.Send("GET /health HTTP/1.1\r\nHost: t\r\n"));  // header never ends
  HttpReply reply = client.Read();
  ASSERT_TRUE(reply.ok);
  EXPECT_EQ(reply.status, 408);
  EXPECT_EQ(reply.Json()["error"]["code"], "request_timeout");
  EXPECT_EQ(reply.Header("connection"), "close");
  EXPECT_TRUE(client.ClosedByPeer());

  // The same for a body that stops short.
  Client slow_body(port_);
  ASSERT_TRUE(slow_body.Send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"));
  EXPECT_EQ(slow_body.Read().status, 408);
}

TEST_F(HttpServerTest, MaxConnectionsRejectsWith503) {
  ServerConfig config = TestConfig();
  config.max_connections = 2;
  Start(config);
  Client first(port_);
  Client second(port_);
  ASSERT_TRUE(first.Send(Get("/health")));
  ASSERT_TRUE(second.Send(Get("/health")));
  EXPECT_EQ(first.Read().status, 200);  // both are now open keep-alive connections
  EXPECT_EQ(second.Read().status, 200);
  Client third(port_);
  ASSERT_TRUE(third.connected());
  ASSERT_TRUE(third.Send(Get("/health")));
  HttpReply rejected = third.Read();
  ASSERT_TRUE(rejected.ok);
  EXPECT_EQ(rejected.status, 503);
  EXPECT_EQ(rejected.Header("retry-after"), "1");
  EXPECT_EQ(rejected.Json()["error"]["code"], "too_many_connections");
  EXPECT_EQ(rejected.Json()["error"]["type"], "server_error");
  EXPECT_TRUE(third.ClosedByPeer());
  EXPECT_EQ(metrics_.Value("xnai_http_connections_rejected_total"), 1);
  EXPECT_EQ(metrics_.Value("xnai_http_connections_active"), 2);

  // Once one closes, a new connection is served again.
  { Client closing(port_); }  // (also rejected; harmless)
  first.Send(Get("/health", "", true));
  EXPECT_EQ(first.Read().status, 200);
  EXPECT_TRUE(first.ClosedByPeer());
  HttpReply later;
  for (int attempt = 0; attempt < 50 && later.status != 200; ++attempt) {
    later = Fetch(port_, Get("/health"));
    if (later.status != 200) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(later.status, 200);
}

// ---- limits and malformed input -------------------------------------------------

TEST_F(HttpServerTest, BodyOverLimitIs413) {
  ServerConfig config = TestConfig();
  config.max_body_bytes = 1000;
  Start(config);
  // Declared length over the limit: refused before the body is read.
  Client client(port_);
  ASSERT_TRUE(client.Send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" +
                          std::string(5000, 'x')));
  HttpReply reply = client.Read();
  ASSERT_TRUE(reply.ok);
  EXPECT_EQ(reply.status, 413);
  auto error = reply.Json()["error"];
  EXPECT_EQ(error["code"], "body_too_large");
  EXPECT_EQ(error["type"], "invalid_request_error");
  EXPECT_NE(error["message"].get<std::string>().find("1000"), std::string::npos);
  EXPECT_EQ(reply.Header("connection"), "close");
  EXPECT_TRUE(client.ClosedByPeer());

  // Chunked body that grows over the limit.
  std::string chunk(600, 'y');
  Client chunked(port_);
  ASSERT_TRUE(
      chunked.Send("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "258\r\n" +
                   chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n"));
  EXPECT_EQ(chunked.Read().status, 413);

  // At the limit is fine.
  HttpReply exact =
      Fetch(port_, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" +
                       std::string(1000, 'z'));
  EXPECT_EQ(exact.status, 201);
  EXPECT_EQ(exact.Json()["bytes"], 1000);
}

TEST_F(HttpServerTest, ExpectContinueIsHonoured) {
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(
      "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  HttpReply interim = client.Read(/*head=*/true);
  EXPECT_EQ(interim.status, 100);
  ASSERT_TRUE(client.Send("abc"));
  HttpReply reply = client.Read();
  EXPECT_EQ(reply.status, 201);
  EXPECT_EQ(reply.Json()["bytes"], 3);
}

TEST_F(HttpServerTest, HeaderOverLimitIs431) {
  ServerConfig config = TestConfig();
  config.max_header_bytes = 1024;
  Start(config);
  Client client(port_);
  ASSERT_TRUE(client.Send(Get("/health", "X-Big: " + std::string(4000, 'a') + "\r\n")));
  HttpReply reply = client.Read();
  ASSERT_TRUE(reply.ok);
  EXPECT_EQ(reply.status, 431);
  EXPECT_EQ(reply.Json()["error"]["code"], "headers_too_large");
  EXPECT_TRUE(client.ClosedByPeer());
  // Small headers still work.
  EXPECT_EQ(Fetch(port_, Get("/health", "X-Small: a\r\n")).status, 200);
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  Start();
  for (const std::string& raw :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET /health HTTP/9.9\r\n\r\n"),
        std::string("GET /health HTTP/1.1\r\nBad Header\r\n\r\n"),
        std::string("G(T /health HTTP/1.1\r\n\r\n")}) {
    Client client(port_);
    ASSERT_TRUE(client.Send(raw));
    HttpReply reply = client.Read();
    ASSERT_TRUE(reply.ok) << raw;
    EXPECT_EQ(reply.status, 400) << raw;
    EXPECT_EQ(reply.Json()["error"]["code"], "malformed_request") << raw;
    EXPECT_TRUE(client.ClosedByPeer()) << raw;
  }
  HttpReply star = Fetch(port_, "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(star.status, 400);
  // Absolute-form targets are accepted.
  HttpReply absolute =
      Fetch(port_, "GET http://example/echo/a/items/b?z=1 HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(absolute.status, 200);
  EXPECT_EQ(absolute.Json()["query"]["z"], nlohmann::json({"1"}));
}

// ---- handlers, request ids, auth --------------------------------------------------

TEST_F(HttpServerTest, HandlerExceptionIs500AndServerKeepsServing) {
  std::string logs;
  log::TEST_CaptureTo(&logs);
  Start();
  Client client(port_);
  ASSERT_TRUE(client.Send(Get("/throw")));
  HttpReply reply = client.Read();
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.Json()["error"]["type"], "server_error");
  EXPECT_EQ(reply.body.find("secret internal detail"), std::string::npos);  // not leaked
  // Same connection still usable, and other requests too.
  ASSERT_TRUE(client.Send(Get("/health")));
  EXPECT_EQ(client.Read().status, 200);
  EXPECT_EQ(Fetch(port_, Get("/health")).status, 200);
  server_->Stop();
  log::TEST_CaptureTo(nullptr);
  EXPECT_NE(logs.find("secret internal detail"), std::string::npos);  // but logged
}

TEST_F(HttpServerTest, RequestIdIsEchoedOrGenerated) {
  Start();
  HttpReply echoed = Fetch(port_, Get("/echo/a/items/b", "X-Request-Id: abc-123_x.y\r\n"));
  EXPECT_EQ(echoed.Header("x-request-id"), "abc-123_x.y");
  EXPECT_EQ(echoed.Json()["request_id"], "abc-123_x.y");

  HttpReply generated = Fetch(port_, Get("/echo/a/items/b"));
  std::string id = generated.Header("x-request-id");
  EXPECT_EQ(id.size(), 16u);
  EXPECT_EQ(generated.Json()["request_id"], id);

  for (const std::string& bad : {std::string("has space"), std::string(65, 'a'),
                                 std::string("semi;colon"), std::string("")}) {
    HttpReply replaced = Fetch(port_, Get("/health", "X-Request-Id: " + bad + "\r\n"));
    EXPECT_NE(replaced.Header("x-request-id"), bad);
    EXPECT_EQ(replaced.Header("x-request-id").size(), 16u);
  }
  HttpReply error = Fetch(port_, Get("/nope", "X-Request-Id: err-1\r\n"));
  EXPECT_EQ(error.Header("x-request-id"), "err-1");
}

TEST_F(HttpServerTest, ApiKeyIsRequiredExceptOnPublicEndpoints) {
  ServerConfig config = TestConfig();
  config.api_key = "s3cret-key";
  Start(config);
  HttpReply missing = Fetch(port_, Get("/echo/a/items/b"));
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.Header("www-authenticate"), "Bearer");
  EXPECT_EQ(missing.Json()["error"]["type"], "authentication_error");
  EXPECT_EQ(missing.Json()["error"]["code"], "missing_api_key");

  HttpReply wrong = Fetch(port_, Get("/echo/a/items/b", "Authorization: Bearer s3cret-kex\r\n"));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.Json()["error"]["code"], "invalid_api_key");
  HttpReply prefix = Fetch(port_, Get("/echo/a/items/b", "Authorization: Bearer s3cret\r\n"));
  EXPECT_EQ(prefix.status, 401);
  HttpReply basic = Fetch(port_, Get("/echo/a/items/b", "Authorization: Basic s3cret-key\r\n"));
  EXPECT_EQ(basic.status, 401);
  // Unknown paths do not reveal themselves without a key.
  EXPECT_EQ(Fetch(port_, Get("/nope")).status, 401);

  HttpReply good = Fetch(port_, Get("/echo/a/items/b", "Authorization: Bearer s3cret-key\r\n"));
  EXPECT_EQ(good.status, 200);
  HttpReply scheme_case =
      Fetch(port_, Get("/echo/a/items/b", "authorization: bearer s3cret-key\r\n"));
  EXPECT_EQ(scheme_case.status, 200);

  EXPECT_EQ(Fetch(port_, Get("/health")).status, 200);
  EXPECT_EQ(Fetch(port_, Get("/metrics")).status, 200);
  // Public means public GETs only.
  EXPECT_EQ(Fetch(port_, "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n").status,
            401);
}

TEST_F(HttpServerTest, NoApiKeyMeansNoAuth) {
  Start();
  EXPECT_EQ(Fetch(port_, Get("/echo/a/items/b")).status, 200);
}

// ---- concurrency ----------------------------------------------------------------

TEST_F(HttpServerTest, SlowHandlerDoesNotBlockOtherConnections) {
  Start();  // 2 threads
  Client slow(port_);
  ASSERT_TRUE(slow.Send(Get("/sleep/800")));
  std::this_thread::sleep_for(50ms);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Fetch(port_, Get("/health")).status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_EQ(slow.Read().status, 200);
}

TEST_F(HttpServerTest, ManyConcurrentClients) {
  Start();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Client client(port_);
      for (int i = 0; i < 20; ++i) {
        client.Send(Get("/echo/t" + std::to_string(t) + "/items/" + std::to_string(i)));
        HttpReply reply = client.Read();
        if (reply.status == 200 && reply.Json()["id"] == std::to_string(i)) ok++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 160);
}

// ---- shutdown ---------------------------------------------------------------------

TEST_F(HttpServerTest, GracefulShutdownFinishesInFlightRequest) {
  std::string logs;
  log::TEST_CaptureTo(&logs);
  Start();
  Client idle(port_);
  ASSERT_TRUE(idle.Send(Get("/health")));
  EXPECT_EQ(idle.Read().status, 200);  // now an idle keep-alive connection

  Client busy(port_);
  ASSERT_TRUE(busy.Send(Get("/slow")));
  std::this_thread::sleep_for(100ms);  // the handler is sleeping now
  auto start = std::chrono::steady_clock::now();
  server_->server().Shutdown();
  server_->server().Shutdown();  // idempotent

  EXPECT_TRUE(idle.ClosedByPeer());  // closed at once, not after the grace period
  EXPECT_LT(std::chrono::steady_clock::now() - start, 150ms);
  HttpReply reply = busy.Read();
  ASSERT_TRUE(reply.ok);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.Json()["slept_ms"], 300);
  EXPECT_EQ(reply.Header("connection"), "close");
  EXPECT_TRUE(busy.ClosedByPeer());

  server_->Join();
  EXPECT_TRUE(server_->stopped());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  Client refused(port_);
  EXPECT_FALSE(refused.connected());
  log::TEST_CaptureTo(nullptr);
  EXPECT_NE(logs.find("server.draining"), std::string::npos);
  EXPECT_NE(logs.find("server.stopped"), std::string::npos);
}

TEST_F(HttpServerTest, ShutdownForceClosesAfterGrace) {
  ServerConfig config = TestConfig();
  config.shutdown_grace_ms = 100;
  Start(config);
  Client stuck(port_);
  ASSERT_TRUE(stuck.Send(Get("/sleep/600")));
  // A connection that sent half a request keeps the drain waiting too.
  Client half(port_);
  ASSERT_TRUE(half.Send("GET /health HTTP/1.1\r\n"));
  std::this_thread::sleep_for(50ms);
  auto start = std::chrono::steady_clock::now();
  server_->server().Shutdown();
  EXPECT_TRUE(half.ClosedByPeer());  // force-closed at the end of the grace period
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_TRUE(stuck.ClosedByPeer());  // no response: the handler outlived the grace
  server_->Join();                    // returns once the handler finished
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

TEST_F(HttpServerTest, ShutdownWithoutConnectionsIsPrompt) {
  Start();
  EXPECT_LT(server_->Stop(), 500ms);
  EXPECT_FALSE(Client(port_).connected());
}

TEST_F(HttpServerTest, SigtermTriggersGracefulShutdown) {
  server_ = std::make_unique<TestServer>(TestConfig(), router_, metrics_, /*handle_signals=*/true);
  ASSERT_TRUE(server_->status().ok());
  port_ = server_->port();
  EXPECT_EQ(Fetch(port_, Get("/health")).status, 200);
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  server_->Join();
  EXPECT_TRUE(server_->stopped());
  EXPECT_FALSE(Client(port_).connected());
}

// ---- bind ---------------------------------------------------------------------------

TEST(HttpServerBindTest, ErrorsNameTheAddress) {
  Router router;
  obs::Registry metrics;
  ServerConfig config = TestConfig();
  HttpServer first(config, router, metrics);
  ASSERT_TRUE(first.Bind().ok());
  EXPECT_NE(first.port(), 0);
  EXPECT_EQ(first.Bind().code(), Status::Code::kFailedPrecondition);

  config.listen = "127.0.0.1:" + std::to_string(first.port());
  HttpServer second(config, router, metrics);
  Status status = second.Bind();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(config.listen), std::string::npos) << status.ToString();
  EXPECT_NE(status.message().find("in use"), std::string::npos) << status.ToString();

  config.listen = "no-port";
  HttpServer third(config, router, metrics);
  EXPECT_EQ(third.Bind().code(), Status::Code::kInvalidArgument);

  config.listen = "203.0.113.77:0";  // TEST-NET-3: not an address of this host
  config.api_key = "k";              // (non-loopback needs one)
  HttpServer fourth(config, router, metrics);
  Status foreign = fourth.Bind();
  EXPECT_EQ(foreign.code(), Status::Code::kIOError) << foreign.ToString();
  EXPECT_NE(foreign.message().find("203.0.113.77"), std::string::npos);
}

TEST(HttpServerBindTest, NonLoopbackRequiresApiKey) {
  Router router;
  obs::Registry metrics;
  ServerConfig config = TestConfig();
  config.listen = "0.0.0.0:0";
  HttpServer open_server(config, router, metrics);
  Status status = open_server.Bind();
  EXPECT_EQ(status.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(status.message().find("0.0.0.0:0"), std::string::npos);
  config.api_key = "k";
  HttpServer keyed(config, router, metrics);
  EXPECT_TRUE(keyed.Bind().ok());
}

TEST(HttpServerBindTest, RunWithoutBindReturns) {
  Router router;
  obs::Registry metrics;
  HttpServer server(TestConfig(), router, metrics);
  server.Run();  // logs and returns instead of hanging
  SUCCEED();
}

// ---- observability ------------------------------------------------------------------

TEST_F(HttpServerTest, MetricsAndLogLinesPerRequest) {
  std::string logs;
  log::TEST_CaptureTo(&logs);
  Start();
  EXPECT_EQ(Fetch(port_, Get("/echo/a/items/1")).status, 200);
  EXPECT_EQ(Fetch(port_, Get("/echo/b/items/2", "X-Request-Id: log-me\r\n")).status, 200);
  EXPECT_EQ(Fetch(port_, Get("/nope")).status, 404);
  EXPECT_EQ(Fetch(port_, "DELETE /health HTTP/1.1\r\nHost: t\r\n\r\n").status, 405);
  EXPECT_EQ(Fetch(port_, "BREW /health HTTP/1.1\r\nHost: t\r\n\r\n").status, 405);
  server_->Stop();
  log::TEST_CaptureTo(nullptr);

  EXPECT_EQ(
      metrics_.Value("xnai_http_requests_total",
                     {{"route", "/echo/{name}/items/{id}"}, {"method", "GET"}, {"status", "200"}}),
      2);
  EXPECT_EQ(metrics_.Value("xnai_http_requests_total",
                           {{"route", "unmatched"}, {"method", "GET"}, {"status", "404"}}),
            1);
  EXPECT_EQ(metrics_.Value("xnai_http_requests_total",
                           {{"route", "unmatched"}, {"method", "other"}, {"status", "405"}}),
            1);
  EXPECT_EQ(
      metrics_.Value("xnai_http_request_duration_seconds", {{"route", "/echo/{name}/items/{id}"}}),
      2);
  EXPECT_EQ(metrics_.Value("xnai_http_connections_active"), 0);
  EXPECT_EQ(metrics_.Value("xnai_http_inflight_requests"), 0);
  std::string text = metrics_.RenderPrometheus();
  EXPECT_NE(text.find("xnai_http_requests_total{route=\"/echo/{name}/items/{id}\",method=\"GET\","
                      "status=\"200\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE xnai_http_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("xnai_http_connections_rejected_total 0"), std::string::npos);

  // One JSON line per request, carrying the request id.
  size_t lines = 0;
  bool saw_id = false;
  std::istringstream stream(logs);
  for (std::string line; std::getline(stream, line);) {
    auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_discarded() || json["event"] != "http.request") continue;
    ++lines;
    EXPECT_TRUE(json.contains("method") && json.contains("path") && json.contains("route") &&
                json.contains("status") && json.contains("duration_ms") &&
                json.contains("bytes_out") && json.contains("remote"))
        << line;
    if (json.value("request_id", "") == "log-me") {
      saw_id = true;
      EXPECT_EQ(json["path"], "/echo/b/items/2");
      EXPECT_EQ(json["route"], "/echo/{name}/items/{id}");
      EXPECT_EQ(json["status"], 200);
    }
  }
  EXPECT_EQ(lines, 5u);
  EXPECT_TRUE(saw_id);
}

}  // namespace
}  // namespace xnai::server
