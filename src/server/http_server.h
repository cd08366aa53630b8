// HttpServer: HTTP/1.1 on Boost.Beast/Asio with C++20 coroutines.
// Keep-alive; limits on header size, body size, read/write/idle time and
// connection count; graceful shutdown that stops accepting, lets in-flight
// requests finish (up to shutdown_grace_ms) and then closes idle connections.
// Every request gets an id (X-Request-Id, echoed back or generated), a JSON
// log line, and metrics (requests by route and status, latency histogram).
// Threads: config.threads threads do the network I/O; handlers run on a
// separate pool of config.threads threads, so a handler that blocks (database
// work) delays only requests waiting for a handler thread, never accepting,
// timeouts or other connections' I/O.
//
// Errors sent by the server itself (all OpenAI-style JSON bodies):
//   400 malformed request / bad percent-encoding, 401 missing or wrong API key
//   (with WWW-Authenticate: Bearer), 404 no route, 405 wrong method (with
//   Allow), 408 request not received within read_timeout_ms, 413 body over
//   max_body_bytes (code "body_too_large"), 431 headers over
//   max_header_bytes, 500 handler threw, 503 over max_connections (with
//   Retry-After: 1). After 400/408/413/431/503 the connection is closed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/config.h"
#include "base/status.h"
#include "obs/metrics.h"
#include "server/router.h"

namespace xnai::server {

class HttpServer {
 public:
  // `router` and `metrics` must outlive the server.
  HttpServer(const ServerConfig& config, const Router& router, obs::Registry& metrics);
  ~HttpServer();

  // Binds and listens on config.listen (port 0 = any free port). Errors name
  // the address: InvalidArgument for an unparsable/unresolvable address,
  // IOError for an OS refusal ("address already in use"),
  // FailedPrecondition when already bound or when the host is not loopback
  // and config.api_key is empty.
  Status Bind();
  // The bound port (after Bind).
  uint16_t port() const;

  // Serves until Shutdown() (or SIGINT/SIGTERM if HandleSignals was called).
  // Blocks; runs config.threads threads including the caller. Call once,
  // after a successful Bind() (otherwise it logs an error and returns).
  // Returns after the drain, once every connection is closed.
  void Run();
  // Makes Run() stop on SIGINT/SIGTERM with a graceful drain; a second
  // signal force-closes the remaining connections; once the drain is over
  // both signals are ignored for the rest of the process (it is exiting).
  // Call before Run().
  void HandleSignals();
  // Thread-safe, idempotent, may be called before or during Run(); begins the
  // graceful drain: stop accepting (new connects are refused), close idle
  // keep-alive connections, let in-flight requests finish and answer them
  // with `Connection: close`, force-close what remains after
  // shutdown_grace_ms. Run() returns when done. A handler that is running
  // cannot be interrupted: Run() waits for it to return.
  void Shutdown();

  // Called once, on a server thread, when the server is listening and
  // running (e.g. to print the URL). Set before Run().
  void OnReady(std::function<void()> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xnai::server
