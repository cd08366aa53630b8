// Native request/response types seen by route handlers. Boost.Beast stays
// inside http_server.cc; handlers never see it. JSON bodies are parsed into
// native structs in the handler that owns the route (the HTTP edge).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace xnai::server {

struct Request {
  std::string method;                              // "GET", "POST", ...
  std::string target;                              // raw request target, e.g. "/api/search?q=x"
  std::string path;                                // percent-decoded path without the query
  std::multimap<std::string, std::string> query;   // percent-decoded query parameters
  std::map<std::string, std::string> path_params;  // from "{name}" segments of the route
  std::map<std::string, std::string> headers;      // names lowercased
  std::string body;
  std::string remote_address;
  std::string request_id;

  // First value of a query parameter, if present.
  std::optional<std::string> Query(const std::string& name) const;
  // Header value or "" (name lowercase).
  std::string Header(const std::string& name) const;
};

// A response body produced over time, e.g. Server-Sent Events. A handler
// returns a Response whose `stream` is set; the server sends the status and
// headers at once (HTTP/1.1 chunked encoding, so the connection stays
// reusable), then each piece the producer writes, in order, until the
// producer calls Close(). The producer may be any thread (e.g. an inference
// scheduler) and may outlive the handler call.
//
// Cancellation: when the client disconnects, a write fails or the server
// force-closes the connection, the stream is cancelled: Write returns false
// from then on and the OnCancel callback runs once (on a server thread; it
// must not block). A producer that never calls Close() holds the connection
// until the client goes away.
//
// Thread safety: every method may be called from any thread.
class ResponseStream {
 public:
  // Queues `data` to be sent. False (nothing queued) once cancelled or
  // closed.
  bool Write(std::string data);
  // Ends the body after what was written. Idempotent.
  void Close();
  // Replaces the response's status (and content type, when not empty) and
  // adds headers — only before the first Write or Close: the server sends
  // the head when the first bytes (or the end) arrive, so a producer that
  // fails before producing anything can still answer with an error status.
  // Returns false (and changes nothing) once the head is decided.
  bool SetStatus(int status, std::string content_type = "",
                 std::vector<std::pair<std::string, std::string>> headers = {});
  bool cancelled() const;
  // Runs `fn` once when the stream is cancelled (at once if it already is).
  // Not run when the stream ends normally.
  void OnCancel(std::function<void()> fn);

  // --- for the server ---
  // What SetStatus asked for (status 0: nothing).
  struct Head {
    int status = 0;
    std::string content_type;
    std::vector<std::pair<std::string, std::string>> headers;
  };
  // Whether something was written or the stream closed (the head can go
  // out); from then on SetStatus is refused. `head` receives its changes.
  bool DecideHead(Head& head);
  // Moves what was written since the last call into `out`; returns whether
  // Close() has been called (everything is then in `out`).
  bool Take(std::string& out);
  // Called after every Write and Close (the server wakes its writer).
  void SetWaker(std::function<void()> waker);
  // Marks the stream cancelled and runs the OnCancel callback.
  void Cancel();

 private:
  mutable std::mutex mutex_;
  std::string pending_;
  bool closed_ = false;
  bool cancelled_ = false;
  bool head_decided_ = false;
  Head head_;
  std::function<void()> on_cancel_;
  std::function<void()> waker_;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // When set, the body is streamed from it (and `body` is ignored).
  std::shared_ptr<ResponseStream> stream;
};

// {"error": {"message": ..., "type": ..., "code": ...}} with the status code.
// `type` is e.g. "invalid_request_error", "not_found_error"; code a short
// machine string ("collection_not_found", "body_too_large").
Response ErrorResponse(int status, const std::string& message, const std::string& type,
                       const std::string& code);
// Maps a Status to the right HTTP status and error body.
Response ErrorResponse(const Status& status);
// 200 (or `status`) with a JSON body.
Response JsonResponse(const nlohmann::json& body, int status = 200);
// The HTTP status for a Status code (InvalidArgument -> 400, NotFound -> 404, ...).
int HttpStatusFor(Status::Code code);
// The OpenAI-style error `type` for an HTTP status ("invalid_request_error",
// "authentication_error", "not_found_error", "server_error", ...).
std::string ErrorTypeFor(int http_status);

// Decodes %XX escapes (and '+' as a space when `plus_as_space`, as in query
// strings). Returns nullopt for a malformed escape ("%zz", a trailing "%")
// or an escaped NUL byte, which no path or parameter may contain.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_as_space);

}  // namespace xnai::server
