// The OpenAI wire format as a client speaks it (internal to llm/, used by
// RemoteLlm and its tests): a GenerateRequest turned back into a request
// body, an incremental Server-Sent Events parser, the decoding of streamed
// chat/completion chunks into GenerationEvents, and the reading of error and
// model-list bodies. Pure functions and small state machines: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/scheduler.h"
#include "llm/llm.h"

namespace xnai::llm::wire {

// "/chat/completions" or "/completions" (appended to the base URL).
std::string RequestPath(const GenerateRequest& request);

// The body of a streamed request for `model` (stream: true with
// stream_options.include_usage). Chat: messages (tool-call arguments back to
// JSON strings, as OpenAI sends them), tools, chat_template_kwargs when any;
// completion: prompt. Sampling: temperature, top_p and seed always;
// presence/frequency penalties, top_k and min_p only when they are on;
// max_tokens when positive; stop when any; logprobs (chat: logprobs +
// top_logprobs; completion: logprobs = n); response_format for JSON output.
nlohmann::ordered_json BuildRequestBody(const GenerateRequest& request, const std::string& model);

// One dispatched Server-Sent Event.
struct SseEvent {
  std::string event;  // the "event:" field; empty for the default "message"
  std::string data;   // the "data:" lines joined with '\n'
};

// Parses an SSE byte stream fed in arbitrary pieces (an event, a line or a
// CRLF pair may be split anywhere). Lines end with LF, CRLF or CR; lines
// starting with ':' are comments; a blank line dispatches the event when it
// has data. Fields other than data and event are ignored, except a
// non-standard "error:" line (some servers report failures so), which
// becomes an event of type "error" carrying the line's value as data.
class SseParser {
 public:
  // A line longer than this is an error (a runaway or hostile stream).
  static constexpr size_t kMaxLineBytes = 16u << 20;

  // Appends the events completed by `bytes` to `out`. InvalidArgument when a
  // line is too long (the parser is then unusable).
  Status Feed(std::string_view bytes, std::vector<SseEvent>& out);
  // End of stream: dispatches a last event whose blank line never came.
  void Finish(std::vector<SseEvent>& out);

 private:
  void ProcessLine(std::vector<SseEvent>& out);
  void Dispatch(std::vector<SseEvent>& out);

  std::string line_;
  bool after_cr_ = false;  // the last byte was a CR: a following LF is its pair
  SseEvent pending_;
  bool has_data_ = false;
};

// Turns the data payloads of a streamed chat.completion.chunk or
// text_completion stream into GenerationEvents.
class StreamDecoder {
 public:
  explicit StreamDecoder(bool chat) : chat_(chat) {}

  // Decodes one event. Appends a kToken event per token (text deltas; with
  // logprobs, one event per token they list). Records finish_reason and
  // usage. Errors: Unavailable with the server's message for an error
  // object (or an "error" event); Internal for a payload that is not JSON
  // or not a chunk. "[DONE]" marks the end.
  Status Decode(const SseEvent& event, std::vector<engine::GenerationEvent>& out);

  bool saw_done() const { return saw_done_; }
  bool saw_finish() const { return !finish_reason_.empty(); }
  // Token events produced so far.
  int64_t tokens() const { return tokens_; }
  // The final kDone event: finish_reason ("stop" when none came) and the
  // usage the server reported (else the counted tokens). Timings are left
  // for the caller.
  engine::GenerationEvent Final() const;

 private:
  Status DecodeChoice(const nlohmann::json& choice, std::vector<engine::GenerationEvent>& out);

  const bool chat_;
  bool saw_done_ = false;
  bool saw_usage_ = false;
  std::string finish_reason_;
  int64_t tokens_ = 0;
  int64_t prompt_tokens_ = 0;
  int64_t completion_tokens_ = 0;
  int64_t cached_tokens_ = 0;
};

// The message of an error answer: error.message of an OpenAI error body
// (or a string "error", or a top-level "message"), else the body text cut
// to 300 bytes, else "HTTP <status>".
std::string ErrorMessage(std::string_view body, long http_status);

// The first model id of a GET /models answer ({"data": [{"id": ...}]}).
// InvalidArgument when the body is not such a list or the list is empty.
Result<std::string> FirstModelId(std::string_view body);

// `url` without "user:password@" (for logs, errors and /health).
std::string RedactUrl(std::string_view url);

}  // namespace xnai::llm::wire
