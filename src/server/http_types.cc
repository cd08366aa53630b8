#include "server/http_types.h"

namespace xnai::server {

bool ResponseStream::Write(std::string data) {
  std::function<void()> waker;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cancelled_ || closed_) return false;
    pending_ += data;
    waker = waker_;
  }
  if (waker) waker();
  return true;
}

void ResponseStream::Close() {
  std::function<void()> waker;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
    waker = waker_;
  }
  if (waker) waker();
}

bool ResponseStream::SetStatus(int status, std::string content_type,
                               std::vector<std::pair<std::string, std::string>> headers) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (head_decided_ || closed_ || !pending_.empty()) return false;
  head_.status = status;
  if (!content_type.empty()) head_.content_type = std::move(content_type);
  for (auto& header : headers) head_.headers.push_back(std::move(header));
  return true;
}

bool ResponseStream::DecideHead(Head& head) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!head_decided_ && (closed_ || !pending_.empty() || cancelled_)) head_decided_ = true;
  if (head_decided_) head = head_;
  return head_decided_;
}

bool ResponseStream::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancelled_;
}

void ResponseStream::OnCancel(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!cancelled_) {
      on_cancel_ = std::move(fn);
      return;
    }
  }
  if (fn) fn();
}

bool ResponseStream::Take(std::string& out) {
  std::lock_guard<std::mutex> lock(mutex_);
  out += pending_;
  pending_.clear();
  return closed_;
}

void ResponseStream::SetWaker(std::function<void()> waker) {
  std::lock_guard<std::mutex> lock(mutex_);
  waker_ = std::move(waker);
}

void ResponseStream::Cancel() {
  std::function<void()> on_cancel;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cancelled_) return;
    cancelled_ = true;
    pending_.clear();
    on_cancel = std::move(on_cancel_);
    on_cancel_ = nullptr;
  }
  if (on_cancel) on_cancel();
}

std::optional<std::string> Request::Query(const std::string& name) const {
  auto it = query.find(name);  // multimap: the first inserted value among equals
  if (it == query.end()) return std::nullopt;
  return it->second;
}

std::string Request::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

int HttpStatusFor(Status::Code code) {
  using Code = Status::Code;
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kFailedPrecondition:
      return 409;
    case Code::kPermissionDenied:
      return 403;
    case Code::kTooLarge:
      return 413;
    case Code::kUnsupported:
      return 415;
    case Code::kUnprocessable:
      return 422;
    case Code::kResourceExhausted:
      return 507;
    case Code::kUnavailable:
      return 503;
    case Code::kCorruption:
      return 500;
    case Code::kIOError:
      return 500;
    case Code::kInternal:
      return 500;
  }
  return 500;
}

std::string ErrorTypeFor(int http_status) {
  switch (http_status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 409:
      return "conflict_error";
    case 429:
      return "rate_limit_error";
    default:
      break;
  }
  if (http_status >= 500) return "server_error";
  // 400, 405, 408, 413, 415, 422, 431 and any other client error.
  return "invalid_request_error";
}

Response ErrorResponse(int status, const std::string& message, const std::string& type,
                       const std::string& code) {
  nlohmann::json body = {{"error", {{"message", message}, {"type", type}, {"code", code}}}};
  return JsonResponse(body, status);
}

Response ErrorResponse(const Status& status) {
  if (status.ok()) {
    // A caller bug: an error response for success. Report it as such rather
    // than sending a 200 with an error body.
    return ErrorResponse(500, "internal error: error response for an OK status", "server_error",
                         "internal");
  }
  int http_status = HttpStatusFor(status.code());
  return ErrorResponse(http_status, status.message(), ErrorTypeFor(http_status),
                       std::string(Status::CodeName(status.code())));
}

Response JsonResponse(const nlohmann::json& body, int status) {
  Response response;
  response.status = status;
  response.content_type = "application/json";
  // Invalid UTF-8 (e.g. echoed user input) is replaced, never thrown.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      char decoded = static_cast<char>(high * 16 + low);
      if (decoded == '\0') return std::nullopt;
      out += decoded;
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out += ' ';
    } else if (c == '\0') {
      return std::nullopt;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace xnai::server
