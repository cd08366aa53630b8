// The language-model interfaces the HTTP API and the answer pipeline use:
// Llm (chat and text completion, streamed as events) and Embedder. Two
// implementations: the native engine (llm/local_llm.h) and, later, a remote
// OpenAI-compatible server.
//
// Requests carry the chat messages as JSON (the OpenAI message objects, with
// string contents): chat templates read them as such, so they stay JSON
// below the HTTP edge, in this one place.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"

namespace xnai::llm {

enum class OutputFormat {
  kText,
  kJsonObject,  // any JSON object, enforced by constrained decoding
  kJsonSchema,  // a JSON document valid for `schema`, enforced likewise
};

struct GenerateRequest {
  bool chat = true;  // messages through the chat template; false: `prompt` as is
  // Chat: [{"role", "content", ...}], contents already strings.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools;  // null when none
  // Extra template variables (e.g. enable_thinking).
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
  std::string prompt;  // completion
  engine::SamplingParams sampling;
  int64_t max_tokens = -1;  // -1: until the context is full
  std::vector<std::string> stop;
  int top_logprobs = -1;  // -1: none
  OutputFormat format = OutputFormat::kText;
  nlohmann::ordered_json schema;  // kJsonSchema
};

using EventCallback = std::function<void(engine::GenerationEvent&&)>;

class Llm {
 public:
  virtual ~Llm() = default;
  // The id clients name it by (file name without .gguf, or the alias).
  virtual const std::string& id() const = 0;
  // Positions per sequence (prompt and output together).
  virtual int64_t context_length() const = 0;
  // Starts a generation; events arrive on another thread (see
  // engine::Scheduler). Returns an id for Cancel. Errors (no event follows):
  // InvalidArgument for a bad request (the template refused the messages,
  // with its message; a prompt too long for the context or the memory
  // budget; an unsupported schema), ResourceExhausted when the queue is
  // full, Unavailable when draining.
  virtual Result<uint64_t> Generate(GenerateRequest request, EventCallback on_event) = 0;
  virtual void Cancel(uint64_t id) = 0;
  // Refuses new requests; running ones finish.
  virtual void Drain() = 0;
};

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual const std::string& id() const = 0;
  virtual int64_t dim() const = 0;
  // One vector per text (L2-normalized), and the tokens read. Errors:
  // InvalidArgument for an empty text or one longer than the model takes
  // (naming its index).
  virtual Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts,
                                                        int64_t* tokens_read) = 0;
};

}  // namespace xnai::llm
