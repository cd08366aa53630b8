// HttpServer: HTTP/1.1 on Boost.Beast/Asio with C++20 coroutines.
// Keep-alive; limits on header size, body size, read/write/idle time and
// connection count; graceful shutdown that stops accepting, lets in-flight
// requests finish (up to shutdown_grace_ms) and then closes idle connections.
// Every request gets an id (X-Request-Id, echoed back or generated), a JSON
// log line, and metrics (requests by route and status, latency histogram).
// Handlers run on the server's thread pool; they may block briefly.
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
  // the address ("address already in use").
  Status Bind();
  // The bound port (after Bind).
  uint16_t port() const;

  // Serves until Shutdown() (or SIGINT/SIGTERM if HandleSignals was called).
  // Blocks; runs config.threads threads including the caller.
  void Run();
  // Makes Run() stop on SIGINT/SIGTERM with a graceful drain.
  void HandleSignals();
  // Thread-safe; begins the graceful drain. Run() returns when done.
  void Shutdown();

  // Called once the server is listening and running (e.g. to print the URL).
  void OnReady(std::function<void()> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xnai::server
