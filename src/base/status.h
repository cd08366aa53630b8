// Status: the outcome of an operation that can fail, and Result<T>, a value or
// the Status that explains why there is none. Every fallible call that crosses
// a module boundary returns one of the two; exceptions stay at the edges.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace xnai {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,    // the caller's input is wrong (HTTP 400, CLI exit 2)
    kNotFound,           // a named thing does not exist (404)
    kAlreadyExists,      // create of something that exists (409)
    kFailedPrecondition, // the system is not in a state to do this (409)
    kPermissionDenied,   // not allowed (403)
    kTooLarge,           // over a configured size limit (413)
    kUnsupported,        // a format or type we do not handle (415)
    kUnprocessable,      // well-formed but cannot be processed, e.g. corrupt PDF (422)
    kResourceExhausted,  // disk full, too many connections (507 / 503)
    kUnavailable,        // a dependency is busy or down, e.g. database locked (503)
    kCorruption,         // stored data is damaged
    kIOError,            // the OS said no
    kInternal,           // a bug
  };

  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  // So that XNAI_RETURN_IF_ERROR works in functions returning Status or Result<T>.
  Status(tl::unexpected<Status> error) : Status(std::move(error.value())) {}  // NOLINT

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status Unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
  static Status Unprocessable(std::string m) { return {Code::kUnprocessable, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {Code::kResourceExhausted, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "not found: collection 'x' does not exist"
  std::string ToString() const;
  // A stable lowercase name of the code: "invalid_argument", "not_found", ...
  static std::string_view CodeName(Code code);

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
using Result = tl::expected<T, Status>;

// `return Err(Status::NotFound("..."));` from a function returning Result<T>.
inline tl::unexpected<Status> Err(Status status) { return tl::unexpected<Status>(std::move(status)); }

}  // namespace xnai

// Propagates a non-OK Status from an expression returning Status; usable in
// functions returning Status or Result<T>.
#define XNAI_RETURN_IF_ERROR(expr)                                      \
  do {                                                                  \
    ::xnai::Status xnai_status_ = (expr);                               \
    if (!xnai_status_.ok()) return ::xnai::Err(std::move(xnai_status_)); \
  } while (0)

// Evaluates `expr` (a Result<T>); on error returns it (from a function
// returning Status or Result<U>), else assigns the value to `lhs`, which may
// be a declaration: XNAI_ASSIGN_OR_RETURN(auto rows, ReadRows());
#define XNAI_ASSIGN_OR_RETURN(lhs, expr) \
  XNAI_ASSIGN_OR_RETURN_IMPL_(XNAI_CONCAT_(xnai_result_, __LINE__), lhs, expr)
#define XNAI_CONCAT_INNER_(a, b) a##b
#define XNAI_CONCAT_(a, b) XNAI_CONCAT_INNER_(a, b)
#define XNAI_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)   \
  auto tmp = (expr);                                  \
  if (!tmp) return ::xnai::Err(std::move(tmp).error()); \
  lhs = std::move(*tmp)
