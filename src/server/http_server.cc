// HTTP/1.1 server on Boost.Beast + Asio with C++20 coroutines.
//
// Threads: `config.threads` threads run one io_context and do only I/O; each
// connection is a coroutine on its own strand. Route handlers are synchronous
// and may block (database work), so they run on a separate pool of
// `config.threads` threads and the connection coroutine awaits the result:
// a slow handler never stalls accepting, timeouts or other connections' I/O.
//
// Shutdown: a drain coroutine on the server strand closes the acceptor,
// closes idle keep-alive connections, lets busy ones finish (their responses
// carry `Connection: close`), force-closes what is left after
// shutdown_grace_ms, and returns once every connection is gone; with no work
// left the io_context stops and Run() returns.

#include <utility>  // before Asio's awaitable headers: std::exchange (Boost 1.74 + GCC 12)

#include "server/http_server.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "base/log.h"

namespace xnai::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kRequestsTotal = "xnai_http_requests_total";
constexpr const char* kRequestDuration = "xnai_http_request_duration_seconds";
constexpr const char* kConnectionsActive = "xnai_http_connections_active";
constexpr const char* kConnectionsRejected = "xnai_http_connections_rejected_total";
constexpr const char* kInflight = "xnai_http_inflight_requests";

// Bytes read and discarded at most when closing a connection gracefully.
constexpr size_t kLingerMaxBytes = 1 << 20;
constexpr int kLingerMaxMs = 500;

// Beast 1.74 uses boost::string_view; the rest of the code std::string_view.
std::string_view SV(beast::string_view text) { return {text.data(), text.size()}; }

auto Await(beast::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && Lower(a) == Lower(b);
}

// 1..64 chars of [A-Za-z0-9._-]: safe to echo and to log.
bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// Compares without an early exit so the time taken does not reveal how much
// of a guessed key was right (only its length may leak).
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// Bounded label values: unknown methods would otherwise grow the series set.
std::string MethodLabel(std::string_view method) {
  static const char* kKnown[] = {"GET",    "HEAD",    "POST",  "PUT",    "PATCH",
                                 "DELETE", "OPTIONS", "TRACE", "CONNECT"};
  for (const char* known : kKnown) {
    if (method == known) return known;
  }
  return "other";
}

bool IsPublicEndpoint(const Request& request) {
  if (request.method != "GET" && request.method != "HEAD") return false;
  // The web UI's static files hold no data (the UI asks for the API key and
  // sends it with its API calls), so a browser can load them without one.
  return request.path == "/health" || request.path == "/ready" || request.path == "/metrics" ||
         request.path == "/openapi.json" || request.path == "/" ||
         request.path == "/favicon.svg" || request.path.rfind("/assets/", 0) == 0;
}

// Splits the request target into the decoded path and query parameters.
Status ParseTarget(Request& request) {
  std::string_view target = request.target;
  // Absolute form ("http://host/p?q") is legal HTTP/1.1; keep only path+query.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() && IEquals(target.substr(0, scheme.size()), scheme)) {
      target.remove_prefix(scheme.size());
      size_t slash = target.find_first_of("/?");
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      break;
    }
  }
  if (target.empty() || target.front() != '/') {
    return Status::InvalidArgument("request target must start with '/'");
  }
  size_t fragment = target.find('#');
  if (fragment != std::string_view::npos) target = target.substr(0, fragment);
  size_t question = target.find('?');
  auto path = PercentDecode(target.substr(0, question), false);
  if (!path) return Status::InvalidArgument("malformed percent-encoding in the request path");
  request.path = std::move(*path);
  if (question == std::string_view::npos) return Status::Ok();
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true);
    auto value = PercentDecode(
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
    if (!key || !value) {
      return Status::InvalidArgument("malformed percent-encoding in the query string");
    }
    request.query.emplace(std::move(*key), std::move(*value));
  }
  return Status::Ok();
}

// A connection as seen by the drain logic. Every field is touched only on
// the connection's strand.
struct Connection {
  explicit Connection(asio::strand<asio::io_context::executor_type> s) : strand(std::move(s)) {}
  asio::strand<asio::io_context::executor_type> strand;
  beast::tcp_stream* stream = nullptr;  // owned by the session coroutine
  bool idle = false;                    // waiting for the first byte of a request
};

// What a finished request reports to the log and metrics.
struct Outcome {
  std::string method;
  std::string path;
  std::string route = "unmatched";
  int status = 0;
  size_t bytes_out = 0;
};

}  // namespace

struct HttpServer::Impl {
  Impl(const ServerConfig& cfg, const Router& r, obs::Registry& m)
      : config(cfg), router(r), metrics(m) {}

  // --- configuration and shared state (declared before the io_context so
  // they outlive coroutine frames destroyed with it) ---
  ServerConfig config;
  const Router& router;
  obs::Registry& metrics;
  std::function<void()> on_ready;
  std::atomic<bool> draining{false};
  std::atomic<int> active{0};
  std::atomic<uint16_t> bound_port{0};
  std::mutex conns_mutex;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> conns;
  uint64_t next_conn_id = 0;   // under conns_mutex
  bool drain_started = false;  // on server_strand
  std::unique_ptr<asio::thread_pool> handler_pool;

  asio::io_context ioc;
  asio::strand<asio::io_context::executor_type> server_strand{asio::make_strand(ioc)};
  tcp::acceptor acceptor{server_strand};
  std::optional<asio::signal_set> signals;

  // --- helpers ---
  void OnCoroutineDone(const char* what, std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      log::Error("server.coroutine_failed", {{"coroutine", what}, {"error", e.what()}});
    } catch (...) {
      log::Error("server.coroutine_failed", {{"coroutine", what}, {"error", "unknown"}});
    }
  }
  auto Completion(const char* what) {
    return [this, what](std::exception_ptr e) { OnCoroutineDone(what, e); };
  }

  // Runs a blocking function on the handler pool; the awaiting coroutine
  // resumes on its own executor with the result.
  template <typename Fn>
  asio::awaitable<Response> RunBlocking(Fn fn) {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(Response)>(
        [this](auto completion, Fn fn) {
          auto io_executor = asio::get_associated_executor(completion);
          auto work = asio::make_work_guard(ioc);  // keeps Run() alive meanwhile
          asio::post(*handler_pool, [completion = std::move(completion), fn = std::move(fn),
                                     io_executor, work = std::move(work)]() mutable {
            Response response = fn();
            asio::post(io_executor, [completion = std::move(completion),
                                     response = std::move(response)]() mutable {
              std::move(completion)(std::move(response));
            });
          });
        },
        asio::use_awaitable, std::move(fn));
  }

  void CloseConnections(bool idle_only) {
    std::lock_guard<std::mutex> lock(conns_mutex);
    for (auto& [id, conn] : conns) {
      asio::post(conn->strand, [conn = conn, idle_only] {
        if (conn->stream == nullptr || (idle_only && !conn->idle)) return;
        beast::error_code ec;
        conn->stream->socket().shutdown(tcp::socket::shutdown_both, ec);
        conn->stream->close();
      });
    }
  }

  void StartDrain() {  // on server_strand
    if (drain_started) return;
    drain_started = true;
    asio::co_spawn(server_strand, Drain(), Completion("drain"));
  }

  asio::awaitable<void> Drain() {
    log::Info("server.draining",
              {{"connections", active.load()}, {"grace_ms", config.shutdown_grace_ms}});
    draining = true;
    beast::error_code ec;
    acceptor.close(ec);
    CloseConnections(/*idle_only=*/true);
    asio::steady_timer timer(server_strand);
    const auto deadline = Clock::now() + milliseconds(std::max(0, config.shutdown_grace_ms));
    while (active.load() > 0 && Clock::now() < deadline) {
      timer.expires_after(milliseconds(10));
      co_await timer.async_wait(Await(ec));
    }
    if (active.load() > 0) {
      log::Warn("server.force_close", {{"connections", active.load()}});
      CloseConnections(/*idle_only=*/false);
      // Connections end as their pending I/O fails; one waiting for a
      // handler ends when the handler returns (it cannot be interrupted).
      while (active.load() > 0) {
        timer.expires_after(milliseconds(10));
        co_await timer.async_wait(Await(ec));
      }
    }
    if (signals) {
      // From here on the process is stopping: a late SIGINT/SIGTERM (a
      // supervisor repeating itself) must not turn the clean exit into death
      // by signal, so they are ignored rather than given back their default.
      signals->cancel(ec);
      signals->clear(ec);
      std::signal(SIGINT, SIG_IGN);
      std::signal(SIGTERM, SIG_IGN);
    }
  }

  asio::awaitable<void> SignalLoop() {
    for (int count = 0;; ++count) {
      beast::error_code ec;
      int signal_number = co_await signals->async_wait(Await(ec));
      if (ec) co_return;
      log::Info("server.signal", {{"signal", signal_number}});
      if (count == 0) {
        StartDrain();
      } else {
        CloseConnections(/*idle_only=*/false);  // a second signal: stop waiting
      }
    }
  }

  asio::awaitable<void> AcceptLoop() {
    for (;;) {
      auto strand = asio::make_strand(ioc);
      tcp::socket socket(strand);
      beast::error_code ec;
      co_await acceptor.async_accept(socket, Await(ec));
      if (ec) {
        if (!acceptor.is_open() || ec == asio::error::operation_aborted) break;
        log::Warn("server.accept_failed", {{"error", ec.message()}});
        // E.g. out of file descriptors: back off instead of spinning.
        asio::steady_timer timer(server_strand);
        timer.expires_after(milliseconds(50));
        co_await timer.async_wait(Await(ec));
        continue;
      }
      if (draining) break;
      if (active.load() >= config.max_connections) {
        metrics.Inc(kConnectionsRejected);
        asio::co_spawn(strand, Reject(std::move(socket)), Completion("reject"));
        continue;
      }
      active++;
      metrics.Inc(kConnectionsActive, {}, 1);
      asio::co_spawn(strand, Session(std::move(socket), std::make_shared<Connection>(strand)),
                     Completion("session"));
    }
  }

  // Beyond max_connections: an immediate 503 rather than a hanging connect.
  asio::awaitable<void> Reject(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::error_code ec;
    auto endpoint = stream.socket().remote_endpoint(ec);
    std::string remote = ec ? "" : endpoint.address().to_string();
    Response response = ErrorResponse(503,
                                      "the server is at its connection limit (" +
                                          std::to_string(config.max_connections) + "); retry later",
                                      "server_error", "too_many_connections");
    response.headers.emplace_back("Retry-After", "1");
    std::string request_id = log::NewRequestId();
    co_await WriteResponse(stream, response, 11, /*keep_alive=*/false, /*head=*/false, request_id);
    co_await LingerClose(stream);
    log::ScopedRequestId scoped(request_id);
    log::Warn("http.connection_rejected",
              {{"remote", remote}, {"max_connections", config.max_connections}});
  }

  // Half-closes, then reads and discards what the client still sends for a
  // short while: closing with unread data makes the kernel send a reset that
  // can destroy the response before the client reads it.
  asio::awaitable<void> LingerClose(beast::tcp_stream& stream) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (!ec) {
      stream.expires_after(milliseconds(std::min(kLingerMaxMs, config.read_timeout_ms)));
      std::vector<char> scratch(16 << 10);
      size_t discarded = 0;
      while (discarded < kLingerMaxBytes) {
        size_t n = co_await stream.async_read_some(asio::buffer(scratch), Await(ec));
        if (ec) break;
        discarded += n;
      }
    }
    stream.close();
  }

  // Serializes and writes `response`. Returns false when the write failed
  // (the connection is then unusable).
  asio::awaitable<bool> WriteResponse(beast::tcp_stream& stream, const Response& response,
                                      unsigned version, bool keep_alive, bool head,
                                      const std::string& request_id) {
    http::response<http::string_body> res;
    res.version(version);
    int status = response.status >= 100 && response.status <= 999 ? response.status : 500;
    res.result(static_cast<unsigned>(status));
    res.set(http::field::server, "xnai");
    res.set(http::field::content_type, response.content_type);
    res.set("X-Request-Id", request_id);
    for (const auto& [name, value] : response.headers) {
      // Framing headers are ours to set; the rest pass through.
      if (IEquals(name, "content-length") || IEquals(name, "transfer-encoding") ||
          IEquals(name, "connection")) {
        continue;
      }
      if (IEquals(name, "content-type") || IEquals(name, "server")) {
        res.set(name, value);
      } else {
        res.insert(name, value);
      }
    }
    res.set(http::field::connection, keep_alive ? "keep-alive" : "close");
    const bool no_body_status = status < 200 || status == 204 || status == 304;
    if (no_body_status) {
      res.erase(http::field::content_type);
    } else {
      res.content_length(response.body.size());  // for HEAD: what GET would send
      if (!head) res.body() = response.body;
    }
    stream.expires_after(milliseconds(config.write_timeout_ms));
    beast::error_code ec;
    co_await http::async_write(stream, res, Await(ec));
    stream.expires_never();
    co_return !ec;
  }

  // Sends a streamed response (see ResponseStream): once the producer has
  // written something or closed the stream, the head (with the status the
  // producer may have set meanwhile), then the producer's pieces as chunks
  // (or raw bytes for HTTP/1.0) as they come, then the last chunk. All the
  // while a watcher reads the socket so that a client that goes away is
  // noticed even when nothing is being written; the stream is then
  // cancelled. Bytes the client sends meanwhile (a pipelined request) stay in
  // `buffer`. Returns false when the connection is unusable. `status` gets the
  // status sent.
  asio::awaitable<bool> WriteStreamed(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                      const Response& response, unsigned version, bool keep_alive,
                                      bool head, const std::string& request_id, size_t& bytes_out,
                                      int& status) {
    ResponseStream& body = *response.stream;
    beast::error_code ec;

    // The writer sleeps on `wake` until the producer writes, closes, or the
    // watcher sees the client go.
    auto executor = co_await asio::this_coro::executor;
    auto wake = std::make_shared<asio::steady_timer>(executor);
    body.SetWaker([wake] { asio::post(wake->get_executor(), [wake] { wake->cancel(); }); });
    struct Watch {
      bool done = false;
      bool stopping = false;   // the writer cancelled the read itself
      bool peer_gone = false;  // the read failed: client gone or socket force-closed
    };
    auto watch = std::make_shared<Watch>();
    asio::co_spawn(
        executor,
        [&stream, &buffer, watch, wake]() -> asio::awaitable<void> {
          beast::error_code read_ec;
          size_t n = co_await stream.async_read_some(buffer.prepare(8192), Await(read_ec));
          if (!read_ec) {
            buffer.commit(n);
          } else if (!watch->stopping) {
            watch->peer_gone = true;
          }
          watch->done = true;
          wake->cancel();
        },
        Completion("stream_watch"));
    auto sleep = [&]() -> asio::awaitable<void> {
      wake->expires_at(asio::steady_timer::time_point::max());
      co_await wake->async_wait(Await(ec));
    };

    bool ok = true;
    // The head waits for the producer's first bytes (or its end): until
    // then it may still choose the status.
    ResponseStream::Head changes;
    while (!head && !body.DecideHead(changes)) {
      if (watch->peer_gone) {
        ok = false;
        break;
      }
      co_await sleep();
    }
    if (ok) {
      http::response<http::empty_body> res;
      res.version(version);
      status = changes.status != 0 ? changes.status : response.status;
      if (status < 100 || status > 999) status = 500;
      res.result(static_cast<unsigned>(status));
      res.set(http::field::server, "xnai");
      res.set(http::field::content_type,
              changes.content_type.empty() ? response.content_type : changes.content_type);
      res.set("X-Request-Id", request_id);
      using HeaderList = std::vector<std::pair<std::string, std::string>>;
      for (const HeaderList* headers : {&response.headers, &std::as_const(changes.headers)}) {
        for (const auto& [name, value] : *headers) {
          if (IEquals(name, "content-length") || IEquals(name, "transfer-encoding") ||
              IEquals(name, "connection")) {
            continue;
          }
          res.insert(name, value);
        }
      }
      res.set(http::field::connection, keep_alive ? "keep-alive" : "close");
      const bool chunked = version >= 11 && !head;
      if (chunked) res.chunked(true);
      if (head) res.content_length(0);
      stream.expires_after(milliseconds(config.write_timeout_ms));
      http::response_serializer<http::empty_body> serializer(res);
      co_await http::async_write_header(stream, serializer, Await(ec));
      stream.expires_never();
      ok = !ec && !head;

      std::string data;
      while (ok) {
        data.clear();
        const bool closed = body.Take(data);
        if (!data.empty()) {
          stream.expires_after(milliseconds(config.write_timeout_ms));
          if (chunked) {
            co_await asio::async_write(stream, http::make_chunk(asio::buffer(data)), Await(ec));
          } else {
            co_await asio::async_write(stream, asio::buffer(data), Await(ec));
          }
          stream.expires_never();
          if (ec) {
            ok = false;
            break;
          }
          bytes_out += data.size();
          continue;  // more may have arrived meanwhile
        }
        if (closed) {
          if (chunked) {
            stream.expires_after(milliseconds(config.write_timeout_ms));
            co_await asio::async_write(stream, http::make_chunk_last(), Await(ec));
            stream.expires_never();
            ok = !ec;
          }
          break;
        }
        if (watch->peer_gone) {
          ok = false;
          break;
        }
        co_await sleep();
      }
      if (head && !ec) {
        body.Cancel();  // nobody reads the body of a HEAD
        ok = true;
      }
    }
    body.SetWaker(nullptr);
    if (!ok) body.Cancel();
    // Stop the watcher (a pending read) and wait for it to let go of the
    // stream and buffer.
    if (!watch->done) {
      watch->stopping = true;
      beast::error_code ignored;
      stream.socket().cancel(ignored);
      while (!watch->done) co_await sleep();
    }
    co_return ok && !watch->peer_gone;
  }

  void Record(const Outcome& outcome, Clock::time_point start, const std::string& remote,
              const std::string& request_id) {
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    metrics.Inc(kRequestsTotal, {{"route", outcome.route},
                                 {"method", MethodLabel(outcome.method)},
                                 {"status", std::to_string(outcome.status)}});
    metrics.Observe(kRequestDuration, {{"route", outcome.route}}, seconds);
    log::ScopedRequestId scoped(request_id);
    log::Info("http.request", {{"method", outcome.method},
                               {"path", outcome.path},
                               {"route", outcome.route},
                               {"status", outcome.status},
                               {"duration_ms", std::round(seconds * 1e6) / 1e3},
                               {"bytes_out", outcome.bytes_out},
                               {"remote", remote}});
  }

  // The response for a failed request read, or nullopt when the connection
  // should just be closed (client went away, server force-closed it).
  std::optional<Response> ReadErrorResponse(const beast::error_code& ec, bool timed_out) {
    if (timed_out) {
      return ErrorResponse(
          408,
          "the request did not arrive within " + std::to_string(config.read_timeout_ms) + " ms",
          "invalid_request_error", "request_timeout");
    }
    if (ec == http::error::header_limit) {
      return ErrorResponse(431,
                           "request headers exceed the limit of " +
                               std::to_string(config.max_header_bytes) + " bytes",
                           "invalid_request_error", "headers_too_large");
    }
    if (ec == http::error::body_limit) {
      return ErrorResponse(
          413,
          "request body exceeds the limit of " + std::to_string(config.max_body_bytes) + " bytes",
          "invalid_request_error", "body_too_large");
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
      return std::nullopt;
    }
    if (&ec.category() == &http::make_error_code(http::error::bad_method).category()) {
      return ErrorResponse(400, "malformed HTTP request: " + ec.message(), "invalid_request_error",
                           "malformed_request");
    }
    return std::nullopt;  // socket errors
  }

  // Reads one request (its first bytes are in `buffer`), serves it and
  // writes the response. Returns whether the connection may be reused.
  asio::awaitable<bool> ServeOne(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                 const std::string& remote) {
    const auto start = Clock::now();
    http::request_parser<http::string_body> parser;
    parser.header_limit(
        static_cast<std::uint32_t>(std::clamp<int64_t>(config.max_header_bytes, 1, UINT32_MAX)));
    parser.body_limit(static_cast<std::uint64_t>(std::max<int64_t>(config.max_body_bytes, 0)));

    // The whole request must arrive within read_timeout_ms. The stream's own
    // timer closes the socket on expiry, which would make a 408 impossible,
    // so a separate timer cancels the read instead.
    struct ReadGuard {
      bool armed = true;
      bool timed_out = false;
    };
    auto guard = std::make_shared<ReadGuard>();
    asio::steady_timer read_timer(co_await asio::this_coro::executor);
    read_timer.expires_at(start + milliseconds(config.read_timeout_ms));
    read_timer.async_wait([guard, &stream](const beast::error_code& ec) {
      if (ec || !guard->armed) return;
      guard->timed_out = true;
      beast::error_code ignored;
      stream.socket().cancel(ignored);
    });
    stream.expires_never();

    beast::error_code ec;
    co_await http::async_read_header(stream, buffer, parser, Await(ec));
    if (!ec) {
      auto length = parser.content_length();
      if (length && *length > static_cast<uint64_t>(config.max_body_bytes)) {
        ec = http::error::body_limit;  // refuse before reading any of it
      }
    }
    if (!ec && !parser.is_done()) {
      auto expect = parser.get()[http::field::expect];
      if (IEquals(SV(expect), "100-continue")) {
        http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
        co_await http::async_write(stream, go_on, Await(ec));
      }
      if (!ec) co_await http::async_read(stream, buffer, parser, Await(ec));
    }
    guard->armed = false;
    read_timer.cancel();

    Outcome outcome;
    std::string request_id;
    if (parser.is_header_done()) {
      outcome.method = std::string(parser.get().method_string());
      outcome.path = std::string(parser.get().target());
      auto incoming_id = parser.get()["X-Request-Id"];
      if (ValidRequestId(SV(incoming_id))) request_id = std::string(SV(incoming_id));
    }
    if (request_id.empty()) request_id = log::NewRequestId();

    if (ec) {
      std::optional<Response> error = ReadErrorResponse(ec, guard->timed_out);
      if (!error) co_return false;
      outcome.status = error->status;
      outcome.bytes_out = error->body.size();
      unsigned version = parser.is_header_done() ? parser.get().version() : 11;
      if (co_await WriteResponse(stream, *error, version, false, false, request_id)) {
        co_await LingerClose(stream);
      }
      Record(outcome, start, remote, request_id);
      co_return false;
    }

    http::request<http::string_body> message = parser.release();
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
      std::string name = Lower(SV(field.name_string()));
      auto [it, inserted] = request.headers.emplace(name, std::string(field.value()));
      if (!inserted) it->second += ", " + std::string(field.value());  // list-valued repeat
    }
    request.body = std::move(message.body());
    request.remote_address = remote;
    request.request_id = request_id;
    const bool head = request.method == "HEAD";

    metrics.Inc(kInflight, {}, 1);
    Response response;
    Status target_status = ParseTarget(request);
    outcome.path = target_status.ok() ? request.path : request.target;
    if (!target_status.ok()) {
      response =
          ErrorResponse(400, target_status.message(), "invalid_request_error", "invalid_target");
    } else if (!Authorized(request, response)) {
      // `response` holds the 401.
    } else {
      Router::Match match = router.Find(request);
      if (match.handler != nullptr) {
        outcome.route = match.route;
        const Handler* handler = match.handler;
        response = co_await RunBlocking([handler, &request, &request_id]() -> Response {
          log::ScopedRequestId scoped(request_id);
          try {
            return (*handler)(request);
          } catch (const std::exception& e) {
            log::Error("http.handler_exception", {{"error", e.what()}});
          } catch (...) {
            log::Error("http.handler_exception", {{"error", "unknown exception"}});
          }
          return ErrorResponse(500, "internal server error (request id " + request_id + ")",
                               "server_error", "internal_error");
        });
      } else if (match.status == 405) {
        response =
            ErrorResponse(405, "method " + request.method + " is not allowed on " + request.path,
                          "invalid_request_error", "method_not_allowed");
        response.headers.emplace_back("Allow", match.allow);
      } else {
        response = ErrorResponse(404, "no route for " + request.method + " " + request.path,
                                 "not_found_error", "route_not_found");
      }
    }

    bool keep_alive = message.keep_alive() && !draining.load();
    bool written = false;
    outcome.status = response.status;
    if (response.stream) {
      // HTTP/1.0 has no chunked encoding: the body ends with the connection.
      if (message.version() < 11) keep_alive = false;
      size_t bytes_out = 0;
      int status = response.status;
      written = co_await WriteStreamed(stream, buffer, response, message.version(), keep_alive,
                                       head, request_id, bytes_out, status);
      outcome.bytes_out = bytes_out;
      outcome.status = status;
    } else {
      written =
          co_await WriteResponse(stream, response, message.version(), keep_alive, head, request_id);
      outcome.bytes_out = head ? 0 : response.body.size();
    }
    metrics.Inc(kInflight, {}, -1);
    Record(outcome, start, remote, request_id);
    co_return written&& keep_alive;
  }

  // True when no key is configured, the endpoint is public, or the request
  // carries `Authorization: Bearer <key>`; otherwise fills `response` (401).
  bool Authorized(const Request& request, Response& response) {
    if (config.api_key.empty() || IsPublicEndpoint(request)) return true;
    std::string authorization = request.Header("authorization");
    std::string_view value = authorization;
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    bool has_bearer = value.size() > 7 && IEquals(value.substr(0, 7), "bearer ");
    if (has_bearer) {
      value.remove_prefix(7);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
      if (ConstantTimeEquals(value, config.api_key)) return true;
    }
    response =
        has_bearer
            ? ErrorResponse(401, "invalid API key", "authentication_error", "invalid_api_key")
            : ErrorResponse(401, "missing API key: send 'Authorization: Bearer <key>'",
                            "authentication_error", "missing_api_key");
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return false;
  }

  asio::awaitable<void> Session(tcp::socket socket, std::shared_ptr<Connection> conn) {
    beast::tcp_stream stream(std::move(socket));
    // Registration for the drain logic; undone however the coroutine ends.
    uint64_t conn_id;
    {
      std::lock_guard<std::mutex> lock(conns_mutex);
      conn_id = next_conn_id++;
      conns[conn_id] = conn;
    }
    struct Unregister {
      Impl* impl;
      std::shared_ptr<Connection> conn;
      uint64_t id;
      ~Unregister() {
        conn->stream = nullptr;
        {
          std::lock_guard<std::mutex> lock(impl->conns_mutex);
          impl->conns.erase(id);
        }
        impl->metrics.Inc(kConnectionsActive, {}, -1);
        impl->active--;
      }
    } unregister{this, conn, conn_id};
    conn->stream = &stream;

    beast::error_code ec;
    auto endpoint = stream.socket().remote_endpoint(ec);
    const std::string remote = ec ? "" : endpoint.address().to_string();
    beast::flat_buffer buffer;
    for (;;) {
      conn->idle = true;
      if (draining.load()) break;
      if (buffer.size() == 0) {
        // Wait for the next request; a silent client is dropped without a
        // response after idle_timeout_ms (the stream closes itself).
        stream.expires_after(milliseconds(config.idle_timeout_ms));
        size_t n = co_await stream.async_read_some(buffer.prepare(8192), Await(ec));
        if (ec) break;
        buffer.commit(n);
      }
      conn->idle = false;
      if (!co_await ServeOne(stream, buffer, remote)) break;
    }
    conn->stream = nullptr;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
  }
};

HttpServer::HttpServer(const ServerConfig& config, const Router& router, obs::Registry& metrics)
    : impl_(std::make_unique<Impl>(config, router, metrics)) {
  metrics.DeclareCounter(kRequestsTotal, "HTTP requests by route pattern, method and status.");
  metrics.DeclareHistogram(
      kRequestDuration, "HTTP request latency by route pattern, in seconds.",
      {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  metrics.DeclareGauge(kConnectionsActive, "Open HTTP connections.");
  metrics.DeclareCounter(kConnectionsRejected,
                         "HTTP connections refused with 503 at the connection limit.");
  metrics.DeclareGauge(kInflight, "HTTP requests being handled.");
  // Present from the first scrape, not only after the first event.
  metrics.Inc(kConnectionsActive, {}, 0);
  metrics.Inc(kConnectionsRejected, {}, 0);
  metrics.Inc(kInflight, {}, 0);
  impl_->handler_pool =
      std::make_unique<boost::asio::thread_pool>(static_cast<size_t>(std::max(1, config.threads)));
}

HttpServer::~HttpServer() {
  // Handlers still running reference the io_context; wait for them first.
  impl_->handler_pool->join();
}

Status HttpServer::Bind() {
  namespace asio = boost::asio;
  if (impl_->acceptor.is_open()) return Status::FailedPrecondition("server is already bound");
  const std::string& listen = impl_->config.listen;
  auto host_port = ParseHostPort(listen);
  if (!host_port) return host_port.error().WithContext("server.listen");
  // Config::Validate checks this too; the server re-checks so no caller can
  // expose an unauthenticated API beyond this machine by skipping it.
  if (!IsLoopbackHost(host_port->host) && impl_->config.api_key.empty()) {
    return Status::FailedPrecondition("refusing to listen on " + listen +
                                      " without an API key: set server.api_key");
  }
  boost::system::error_code ec;
  tcp::resolver resolver(impl_->ioc);
  auto endpoints = resolver.resolve(host_port->host, std::to_string(host_port->port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) {
    return Status::InvalidArgument("cannot resolve listen address " + listen + ": " + ec.message());
  }
  for (const auto& entry : endpoints) {
    tcp::acceptor& acceptor = impl_->acceptor;
    acceptor.open(entry.endpoint().protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(entry.endpoint(), ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) {
      impl_->bound_port = acceptor.local_endpoint().port();
      return Status::Ok();
    }
    boost::system::error_code ignored;
    acceptor.close(ignored);
  }
  if (!ec) ec = asio::error::host_not_found;
  return Status::IOError("cannot listen on " + listen + ": " + ec.message());
}

uint16_t HttpServer::port() const { return impl_->bound_port.load(); }

void HttpServer::Run() {
  Impl& impl = *impl_;
  if (impl.bound_port.load() == 0) {
    log::Error("server.not_bound", {{"listen", impl.config.listen}});
    return;
  }
  boost::asio::co_spawn(impl.server_strand, impl.AcceptLoop(), impl.Completion("accept"));
  log::Info("server.listening",
            {{"listen", impl.config.listen}, {"port", port()}, {"threads", impl.config.threads}});
  if (impl.on_ready) boost::asio::post(impl.ioc, impl.on_ready);
  auto run = [&impl] {
    for (;;) {
      try {
        impl.ioc.run();
        return;
      } catch (const std::exception& e) {
        // A throwing completion handler must not take the server down.
        log::Error("server.io_exception", {{"error", e.what()}});
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, impl.config.threads); ++i) threads.emplace_back(run);
  run();
  for (auto& thread : threads) thread.join();
  log::Info("server.stopped");
}

void HttpServer::HandleSignals() {
  Impl& impl = *impl_;
  if (impl.signals) return;
  impl.signals.emplace(impl.server_strand, SIGINT, SIGTERM);
  boost::asio::co_spawn(impl.server_strand, impl.SignalLoop(), impl.Completion("signals"));
}

void HttpServer::Shutdown() {
  Impl* impl = impl_.get();
  boost::asio::post(impl->server_strand, [impl] { impl->StartDrain(); });
}

void HttpServer::OnReady(std::function<void()> fn) { impl_->on_ready = std::move(fn); }

}  // namespace xnai::server
