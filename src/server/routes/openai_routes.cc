// The OpenAI-compatible API: /v1/models, /v1/chat/completions,
// /v1/completions, /v1/embeddings. JSON becomes llm::GenerateRequest here;
// answers (streamed as Server-Sent Events or as one JSON object) are written
// from the scheduler's events through a ResponseStream, so no handler thread
// waits for a generation, and a client that leaves cancels its sequence.
//
// Errors are OpenAI's shape: {"error": {"message", "type", "param", "code"}}
// with its status codes; unknown fields are ignored, wrong types are 400s
// naming the field.
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "base/log.h"
#include "llm/tool_calls.h"
#include "server/routes/routes.h"

namespace xnai::server::routes {
namespace {

using nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// Field errors carry the field as "param".
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;
  std::string code;
};

Response ErrorOf(const ApiError& error) {
  json body = {{"error",
                {{"message", error.message},
                 {"type", error.type},
                 {"param", error.param.empty() ? json(nullptr) : json(error.param)},
                 {"code", error.code.empty() ? json(nullptr) : json(error.code)}}}};
  Response response = JsonResponse(body, error.status);
  if (error.status == 429 || error.status == 503) response.headers.emplace_back("Retry-After", "1");
  return response;
}

ApiError FieldError(const std::string& field, const std::string& message) {
  return {400, message, "invalid_request_error", field, "invalid_value"};
}

// The error for a Status from Llm::Generate / Embed.
ApiError FromStatus(const Status& status) {
  switch (status.code()) {
    case Status::Code::kResourceExhausted:
      return {429, status.message(), "rate_limit_error", "", "queue_full"};
    case Status::Code::kUnavailable:
      return {503, status.message(), "server_error", "", "unavailable"};
    case Status::Code::kInvalidArgument:
      return {400, status.message(), "invalid_request_error", "", "invalid_request"};
    default:
      return {500, status.message(), "server_error", "", "internal_error"};
  }
}

// The error for a generation that could not start: FromStatus, with the
// codes and params clients look for.
ApiError GenerationError(const Status& status) {
  ApiError error = FromStatus(status);
  if (error.code == "invalid_request" && status.message().find("context") != std::string::npos) {
    error.code = "context_length_exceeded";
  }
  if (error.code == "invalid_request" && status.message().rfind("json schema", 0) == 0) {
    error.param = "response_format.json_schema.schema";
  }
  return error;
}

std::string Dump(const ordered_json& value) {
  // Model output may hold bytes that are not UTF-8: replace, never throw.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string RandomId(const std::string& prefix) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kChars[rng() % (sizeof(kChars) - 1)];
  return id;
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- request parsing -------------------------------------------------------------

template <typename T>
using Parsed = tl::expected<T, ApiError>;

// Parsed once, keeping key order (templates render tools' JSON in the
// client's order).
Parsed<ordered_json> ParseBody(const Request& request) {
  ordered_json body = ordered_json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return tl::unexpected(ApiError{400, "the body is not valid JSON"});
  if (!body.is_object()) return tl::unexpected(ApiError{400, "the body must be a JSON object"});
  return body;
}

// Optional number field within [min, max]; absent or null -> nullopt.
Parsed<std::optional<double>> NumberField(const ordered_json& body, const std::string& name,
                                          double min, double max) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number()) return tl::unexpected(FieldError(name, "'" + name + "' must be a number"));
  const double value = it->get<double>();
  if (!(value >= min && value <= max)) {
    return tl::unexpected(
        FieldError(name, "'" + name + "' must be between " + Dump(min) + " and " + Dump(max)));
  }
  return std::optional<double>(value);
}

Parsed<std::optional<int64_t>> IntegerField(const ordered_json& body, const std::string& name,
                                            int64_t min, int64_t max) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) {
    return tl::unexpected(FieldError(name, "'" + name + "' must be an integer"));
  }
  const auto value = it->get<int64_t>();
  if (value < min || value > max) {
    return tl::unexpected(FieldError(name, "'" + name + "' must be between " + std::to_string(min) +
                                               " and " + std::to_string(max)));
  }
  return std::optional<int64_t>(value);
}

Parsed<std::optional<bool>> BoolField(const ordered_json& body, const std::string& name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean())
    return tl::unexpected(FieldError(name, "'" + name + "' must be a boolean"));
  return std::optional<bool>(it->get<bool>());
}

#define XNAI_API_ASSIGN(lhs, expr)                         \
  auto lhs##_parsed = (expr);                              \
  if (!lhs##_parsed) return ErrorOf(lhs##_parsed.error()); \
  auto lhs = std::move(*lhs##_parsed)

// The parameters chat and text completions share.
struct CommonParams {
  llm::GenerateRequest request;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
};

Parsed<CommonParams> ParseCommon(const ordered_json& body, bool chat) {
  CommonParams out;
  llm::GenerateRequest& request = out.request;
  engine::SamplingParams& sampling = request.sampling;
  // OpenAI's defaults: temperature 1, top_p 1, no top-k/min-p.
  sampling.temperature = 1.0f;
  sampling.top_p = 1.0f;
  sampling.top_k = 0;
  sampling.min_p = 0.0f;
  sampling.penalty_last_n = -1;
  std::random_device seed_source;
  sampling.seed = (static_cast<uint64_t>(seed_source()) << 32) ^ seed_source();

  auto temperature = NumberField(body, "temperature", 0, 2);
  if (!temperature) return tl::unexpected(temperature.error());
  if (*temperature) sampling.temperature = static_cast<float>(**temperature);
  auto top_p = NumberField(body, "top_p", 0, 1);
  if (!top_p) return tl::unexpected(top_p.error());
  if (*top_p) sampling.top_p = static_cast<float>(**top_p);
  auto presence = NumberField(body, "presence_penalty", -2, 2);
  if (!presence) return tl::unexpected(presence.error());
  if (*presence) sampling.presence_penalty = static_cast<float>(**presence);
  auto frequency = NumberField(body, "frequency_penalty", -2, 2);
  if (!frequency) return tl::unexpected(frequency.error());
  if (*frequency) sampling.frequency_penalty = static_cast<float>(**frequency);
  auto seed = IntegerField(body, "seed", std::numeric_limits<int64_t>::min(),
                           std::numeric_limits<int64_t>::max());
  if (!seed) return tl::unexpected(seed.error());
  if (*seed) sampling.seed = static_cast<uint64_t>(**seed);
  // Extensions llama.cpp's server also takes.
  auto top_k = IntegerField(body, "top_k", 0, 1 << 20);
  if (!top_k) return tl::unexpected(top_k.error());
  if (*top_k) sampling.top_k = static_cast<int>(**top_k);
  auto min_p = NumberField(body, "min_p", 0, 1);
  if (!min_p) return tl::unexpected(min_p.error());
  if (*min_p) sampling.min_p = static_cast<float>(**min_p);

  const int64_t kMaxTokens = 1 << 20;
  auto max_tokens = IntegerField(body, "max_tokens", 1, kMaxTokens);
  if (!max_tokens) return tl::unexpected(max_tokens.error());
  auto max_completion = IntegerField(body, "max_completion_tokens", 1, kMaxTokens);
  if (!max_completion) return tl::unexpected(max_completion.error());
  if (*max_completion) {
    request.max_tokens = **max_completion;
  } else if (*max_tokens) {
    request.max_tokens = **max_tokens;
  } else if (!chat) {
    request.max_tokens = 16;  // OpenAI's default for completions
  }

  auto n = IntegerField(body, "n", 1, 128);
  if (!n) return tl::unexpected(n.error());
  if (*n && **n != 1) return tl::unexpected(FieldError("n", "only n = 1 is supported"));

  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      request.stop.push_back(it->get<std::string>());
    } else if (it->is_array() && it->size() <= 4) {
      for (const ordered_json& stop : *it) {
        if (!stop.is_string()) {
          return tl::unexpected(FieldError("stop", "'stop' must be a string or up to 4 strings"));
        }
        request.stop.push_back(stop.get<std::string>());
      }
    } else {
      return tl::unexpected(FieldError("stop", "'stop' must be a string or up to 4 strings"));
    }
  }

  auto stream = BoolField(body, "stream");
  if (!stream) return tl::unexpected(stream.error());
  out.stream = stream->value_or(false);
  if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      return tl::unexpected(FieldError("stream_options", "'stream_options' must be an object"));
    }
    auto usage = BoolField(*it, "include_usage");
    if (!usage)
      return tl::unexpected(FieldError("stream_options.include_usage", usage.error().message));
    out.include_usage = usage->value_or(false);
  }

  if (chat) {
    auto logprobs = BoolField(body, "logprobs");
    if (!logprobs) return tl::unexpected(logprobs.error());
    out.logprobs = logprobs->value_or(false);
    auto top = IntegerField(body, "top_logprobs", 0, 20);
    if (!top) return tl::unexpected(top.error());
    if (*top && !out.logprobs) {
      return tl::unexpected(FieldError("top_logprobs", "'top_logprobs' needs 'logprobs': true"));
    }
    if (out.logprobs) request.top_logprobs = static_cast<int>(top->value_or(0));
  } else {
    auto logprobs = IntegerField(body, "logprobs", 0, 5);
    if (!logprobs) return tl::unexpected(logprobs.error());
    if (*logprobs) {
      out.logprobs = true;
      request.top_logprobs = static_cast<int>(**logprobs);
    }
  }

  if (auto it = body.find("response_format"); it != body.end() && !it->is_null()) {
    if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string()) {
      return tl::unexpected(
          FieldError("response_format", "'response_format' must be an object with a 'type'"));
    }
    const std::string type = (*it)["type"].get<std::string>();
    if (type == "json_object") {
      request.format = llm::OutputFormat::kJsonObject;
    } else if (type == "json_schema") {
      const ordered_json& spec = it->value("json_schema", ordered_json());
      if (!spec.is_object() || !spec.contains("schema") || !spec["schema"].is_object()) {
        return tl::unexpected(FieldError("response_format.json_schema",
                                         "'json_schema' must be an object with a 'schema' object"));
      }
      request.format = llm::OutputFormat::kJsonSchema;
    } else if (type != "text") {
      return tl::unexpected(
          FieldError("response_format.type",
                     "'response_format.type' must be text, json_object or json_schema"));
    }
  }
  return out;
}

// A message content: a string, or an array of parts whose text parts are
// joined; null for assistant messages with tool calls.
Parsed<ordered_json> NormalizeContent(const ordered_json& content, size_t index) {
  const std::string field = "messages[" + std::to_string(index) + "].content";
  if (content.is_string() || content.is_null()) return content;
  if (content.is_array()) {
    std::string text;
    for (const ordered_json& part : content) {
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
        return tl::unexpected(FieldError(field, "each content part must have a 'type'"));
      }
      if (part["type"] != "text" || !part.contains("text") || !part["text"].is_string()) {
        return tl::unexpected(FieldError(field, "content parts of type '" +
                                                    part["type"].get<std::string>() +
                                                    "' are not supported (only text)"));
      }
      text += part["text"].get<std::string>();
    }
    return ordered_json(text);
  }
  return tl::unexpected(FieldError(field, "'content' must be a string or an array of parts"));
}

Parsed<ordered_json> ParseMessages(const ordered_json& body) {
  auto it = body.find("messages");
  if (it == body.end()) return tl::unexpected(FieldError("messages", "'messages' is required"));
  if (!it->is_array() || it->empty()) {
    return tl::unexpected(FieldError("messages", "'messages' must be a non-empty array"));
  }
  ordered_json messages = ordered_json::array();
  for (size_t idx = 0; idx < it->size(); ++idx) {
    const ordered_json& message = (*it)[idx];
    const std::string where = "messages[" + std::to_string(idx) + "]";
    if (!message.is_object())
      return tl::unexpected(FieldError(where, where + " must be an object"));
    auto role = message.find("role");
    if (role == message.end() || !role->is_string()) {
      return tl::unexpected(FieldError(where + ".role", where + ".role must be a string"));
    }
    const std::string role_name = role->get<std::string>();
    if (role_name != "system" && role_name != "user" && role_name != "assistant" &&
        role_name != "tool" && role_name != "developer" && role_name != "function") {
      return tl::unexpected(FieldError(where + ".role", "unknown role '" + role_name + "'"));
    }
    ordered_json copy = message;
    if (role_name == "developer") copy["role"] = "system";
    auto content = NormalizeContent(message.value("content", ordered_json()), idx);
    if (!content) return tl::unexpected(content.error());
    if (content->is_null() && role_name != "assistant") {
      return tl::unexpected(FieldError(where + ".content", where + ".content is required"));
    }
    copy["content"] = content->is_null() ? ordered_json("") : *content;
    // Templates read tool-call arguments as objects; OpenAI sends strings.
    if (auto calls = copy.find("tool_calls"); calls != copy.end() && calls->is_array()) {
      for (ordered_json& call : *calls) {
        if (call.is_object() && call.contains("function") && call["function"].is_object()) {
          ordered_json& args = call["function"]["arguments"];
          if (args.is_string()) {
            ordered_json parsed = ordered_json::parse(args.get<std::string>(), nullptr, false);
            if (!parsed.is_discarded()) args = parsed;
          }
        }
      }
    }
    messages.push_back(std::move(copy));
  }
  return messages;
}

// --- model lookup ------------------------------------------------------------------

Parsed<llm::Llm*> FindChatModel(const AppContext& app, const ordered_json& body) {
  std::string name;
  if (auto it = body.find("model"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return tl::unexpected(FieldError("model", "'model' must be a string"));
    name = it->get<std::string>();
  }
  if (app.chat_models.empty()) {
    return tl::unexpected(ApiError{404, "no chat model is loaded: start xnai serve with --model",
                                   "invalid_request_error", "model", "model_not_found"});
  }
  if (name.empty() && app.chat_models.size() == 1) return app.chat_models[0];
  for (llm::Llm* model : app.chat_models) {
    if (model->id() == name) return model;
  }
  // A single chat model also answers requests naming any model the server
  // does not have only when no name was given (above); a wrong name is 404.
  return tl::unexpected(ApiError{404, "The model '" + name + "' does not exist",
                                 "invalid_request_error", "model", "model_not_found"});
}

// --- responses ----------------------------------------------------------------------

ordered_json UsageJson(const engine::GenerationEvent& done) {
  return {{"prompt_tokens", done.prompt_tokens},
          {"completion_tokens", done.completion_tokens},
          {"total_tokens", done.prompt_tokens + done.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", done.cached_tokens}}}};
}

ordered_json BytesJson(const std::string& bytes) {
  ordered_json out = ordered_json::array();
  for (unsigned char c : bytes) out.push_back(static_cast<int>(c));
  return out;
}

ordered_json ChatLogprobJson(const engine::GenerationEvent& event) {
  ordered_json top = ordered_json::array();
  for (const engine::TokenLogprob& alt : event.top) {
    top.push_back(
        {{"token", alt.bytes}, {"logprob", alt.logprob}, {"bytes", BytesJson(alt.bytes)}});
  }
  return {{"token", event.chosen.bytes},
          {"logprob", event.chosen.logprob},
          {"bytes", BytesJson(event.chosen.bytes)},
          {"top_logprobs", top}};
}

// The state of one response, shared by the scheduler's callback.
struct Exchange {
  std::shared_ptr<ResponseStream> stream;
  bool chat = true;
  bool streaming = false;
  bool include_usage = false;
  bool logprobs = false;
  std::string id;
  std::string model;
  int64_t created = 0;
  // Non-streaming: collected output.
  std::string text;
  ordered_json logprob_content = ordered_json::array();
  // Completions logprobs (legacy shape).
  ordered_json tokens = ordered_json::array(), token_logprobs = ordered_json::array(),
               top_logprobs = ordered_json::array();
  bool sent_role = false;
  // Tools were offered: <tool_call> blocks in the output become tool_calls.
  bool tools = false;
  // Streaming with tools: text held back because it is (or may become) a
  // tool call.
  std::string held;

  ordered_json ChunkBase() const {
    return {{"id", id},
            {"object", chat ? "chat.completion.chunk" : "text_completion"},
            {"created", created},
            {"model", model},
            {"system_fingerprint", std::string("xnai-") + Version()}};
  }
  void Send(const ordered_json& chunk) { stream->Write("data: " + Dump(chunk) + "\n\n"); }

  void RecordLogprob(const engine::GenerationEvent& event) {
    if (!logprobs) return;
    if (chat) {
      logprob_content.push_back(ChatLogprobJson(event));
    } else {
      tokens.push_back(event.chosen.bytes);
      token_logprobs.push_back(event.chosen.logprob);
      ordered_json top = ordered_json::object();
      for (const engine::TokenLogprob& alt : event.top) top[alt.bytes] = alt.logprob;
      top_logprobs.push_back(top);
    }
  }
  ordered_json CompletionLogprobs() const {
    return {{"tokens", tokens},
            {"token_logprobs", token_logprobs},
            {"top_logprobs", top_logprobs},
            {"text_offset", ordered_json::array()}};
  }

  // A streamed piece of output (text and/or one token's logprobs).
  void StreamPiece(const std::string& piece, const engine::GenerationEvent* token) {
    ordered_json chunk = ChunkBase();
    ordered_json choice = {{"index", 0}};
    if (chat) {
      ordered_json delta = ordered_json::object();
      if (!sent_role) {
        delta["role"] = "assistant";
        sent_role = true;
      }
      delta["content"] = piece;
      choice["delta"] = delta;
      choice["logprobs"] = token != nullptr && logprobs
                               ? ordered_json{{"content", {ChatLogprobJson(*token)}}}
                               : ordered_json(nullptr);
    } else {
      choice["text"] = piece;
      if (token != nullptr && logprobs) {
        ordered_json top = ordered_json::object();
        for (const engine::TokenLogprob& alt : token->top) top[alt.bytes] = alt.logprob;
        choice["logprobs"] = {{"tokens", {token->chosen.bytes}},
                              {"token_logprobs", {token->chosen.logprob}},
                              {"top_logprobs", {top}},
                              {"text_offset", ordered_json::array()}};
      } else {
        choice["logprobs"] = nullptr;
      }
    }
    choice["finish_reason"] = nullptr;
    chunk["choices"] = {choice};
    Send(chunk);
  }

  // OpenAI's tool_calls entries for the parsed calls.
  static ordered_json ToolCallsJson(const std::vector<llm::ToolCall>& calls, bool with_index) {
    ordered_json out = ordered_json::array();
    for (size_t idx = 0; idx < calls.size(); ++idx) {
      ordered_json call = ordered_json::object();
      if (with_index) call["index"] = idx;
      call["id"] = RandomId("call_");
      call["type"] = "function";
      call["function"] = {{"name", calls[idx].name}, {"arguments", calls[idx].arguments}};
      out.push_back(std::move(call));
    }
    return out;
  }

  // Streaming with tools, at the end: the held text as content, or as
  // tool-call deltas. Returns the finish reason to report.
  std::string FlushToolCalls(const std::string& finish_reason) {
    llm::ParsedToolCalls parsed = llm::ParseToolCalls(held);
    if (parsed.calls.empty()) {
      if (!held.empty()) StreamPiece(held, nullptr);
      held.clear();
      return finish_reason;
    }
    if (!parsed.content.empty()) StreamPiece(parsed.content, nullptr);
    held.clear();
    ordered_json calls = ToolCallsJson(parsed.calls, /*with_index=*/true);
    for (ordered_json& call : calls) {
      ordered_json chunk = ChunkBase();
      ordered_json delta = ordered_json::object();
      if (!sent_role) {
        delta["role"] = "assistant";
        delta["content"] = nullptr;
        sent_role = true;
      }
      delta["tool_calls"] = ordered_json::array({call});
      chunk["choices"] = {
          {{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}}};
      Send(chunk);
    }
    return "tool_calls";
  }

  void OnEvent(engine::GenerationEvent&& event) {
    if (stream->cancelled()) return;
    switch (event.kind) {
      case engine::GenerationEvent::Kind::kToken:
        if (streaming && tools) {
          // Content goes out up to a (possible) <tool_call>; from there on
          // everything waits for the end.
          held += event.text;
          const size_t free = llm::ToolCallFreePrefix(held);
          if (free > 0 && held.find("<tool_call>") != 0) {
            StreamPiece(held.substr(0, free), &event);
            held.erase(0, free);
          }
        } else if (streaming) {
          if (!event.text.empty() || logprobs) StreamPiece(event.text, &event);
        } else {
          text += event.text;
          RecordLogprob(event);
        }
        break;
      case engine::GenerationEvent::Kind::kDone:
        if (streaming) {
          std::string finish_reason = event.finish_reason;
          if (tools) {
            held += event.text;
            finish_reason = FlushToolCalls(finish_reason);
          } else if (!event.text.empty()) {
            StreamPiece(event.text, nullptr);
          }
          ordered_json chunk = ChunkBase();
          ordered_json choice = {{"index", 0}};
          if (chat) {
            choice["delta"] = sent_role ? ordered_json::object()
                                        : ordered_json{{"role", "assistant"}, {"content", ""}};
          } else {
            choice["text"] = "";
          }
          choice["logprobs"] = nullptr;
          choice["finish_reason"] = finish_reason;
          chunk["choices"] = {choice};
          Send(chunk);
          if (include_usage) {
            ordered_json usage = ChunkBase();
            usage["choices"] = ordered_json::array();
            usage["usage"] = UsageJson(event);
            Send(usage);
          }
          stream->Write("data: [DONE]\n\n");
        } else {
          text += event.text;
          ordered_json body = {{"id", id},
                               {"object", chat ? "chat.completion" : "text_completion"},
                               {"created", created},
                               {"model", model},
                               {"system_fingerprint", std::string("xnai-") + Version()}};
          ordered_json choice = {{"index", 0}};
          std::string finish_reason = event.finish_reason;
          if (chat && tools) {
            llm::ParsedToolCalls parsed = llm::ParseToolCalls(text);
            if (!parsed.calls.empty()) {
              choice["message"] = {
                  {"role", "assistant"},
                  {"content",
                   parsed.content.empty() ? ordered_json(nullptr) : ordered_json(parsed.content)},
                  {"refusal", nullptr},
                  {"tool_calls", ToolCallsJson(parsed.calls, /*with_index=*/false)}};
              finish_reason = "tool_calls";
            }
          }
          if (chat && !choice.contains("message")) {
            choice["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
          }
          if (chat) {
            choice["logprobs"] =
                logprobs ? ordered_json{{"content", logprob_content}} : ordered_json(nullptr);
          } else {
            choice["text"] = text;
            choice["logprobs"] = logprobs ? CompletionLogprobs() : ordered_json(nullptr);
          }
          choice["finish_reason"] = finish_reason;
          body["choices"] = {choice};
          body["usage"] = UsageJson(event);
          stream->Write(Dump(body));
        }
        stream->Close();
        break;
      case engine::GenerationEvent::Kind::kError: {
        // Before any output the answer is still an ordinary error response
        // with its status (e.g. a remote model server that is down: 503).
        const ApiError api = GenerationError(event.error);
        std::vector<std::pair<std::string, std::string>> headers;
        if (api.status == 429 || api.status == 503) headers.emplace_back("Retry-After", "1");
        ordered_json error = {
            {"error",
             {{"message", event.error.message()},
              {"type", api.type},
              {"param", api.param.empty() ? ordered_json(nullptr) : ordered_json(api.param)},
              {"code", api.code}}}};
        if (stream->SetStatus(api.status, "application/json", std::move(headers))) {
          stream->Write(Dump(error));
        } else {
          // Mid-answer: the status is sent; the error ends the body.
          error["error"]["code"] = "generation_failed";
          stream->Write(streaming ? "data: " + Dump(error) + "\n\n" : Dump(error));
        }
        stream->Close();
        break;
      }
    }
  }
};

Response Generate(AppContext& app, const Request& http_request, bool chat) {
  auto body_parsed = ParseBody(http_request);
  if (!body_parsed) return ErrorOf(body_parsed.error());
  const ordered_json& body = *body_parsed;
  XNAI_API_ASSIGN(model, FindChatModel(app, body));
  XNAI_API_ASSIGN(params, ParseCommon(body, chat));
  llm::GenerateRequest& request = params.request;
  request.chat = chat;
  std::string tool_choice = "auto";
  if (chat) {
    XNAI_API_ASSIGN(messages, ParseMessages(body));
    request.messages = std::move(messages);
    if (auto it = body.find("tools"); it != body.end() && !it->is_null()) {
      if (!it->is_array()) return ErrorOf(FieldError("tools", "'tools' must be an array"));
      if (!it->empty()) request.tools = *it;
    }
    // "none" keeps tools out of the prompt and the answer; "auto",
    // "required" and a named function let the model call them (xnai does not
    // force a call).
    if (auto it = body.find("tool_choice"); it != body.end() && !it->is_null()) {
      if (it->is_string()) {
        tool_choice = it->get<std::string>();
        if (tool_choice != "none" && tool_choice != "auto" && tool_choice != "required") {
          return ErrorOf(
              FieldError("tool_choice", "'tool_choice' must be none, auto, required or an object"));
        }
      } else if (!it->is_object()) {
        return ErrorOf(
            FieldError("tool_choice", "'tool_choice' must be none, auto, required or an object"));
      }
    }
    if (tool_choice == "none") request.tools = nullptr;
    if (auto it = body.find("chat_template_kwargs"); it != body.end() && !it->is_null()) {
      if (!it->is_object()) {
        return ErrorOf(
            FieldError("chat_template_kwargs", "'chat_template_kwargs' must be an object"));
      }
      request.template_kwargs = *it;
    }
  } else {
    auto it = body.find("prompt");
    if (it == body.end()) return ErrorOf(FieldError("prompt", "'prompt' is required"));
    if (it->is_string()) {
      request.prompt = it->get<std::string>();
    } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
      request.prompt = (*it)[0].get<std::string>();
    } else {
      return ErrorOf(FieldError("prompt", "'prompt' must be a string (one prompt per request)"));
    }
    if (request.prompt.empty()) return ErrorOf(FieldError("prompt", "'prompt' is empty"));
  }
  if (request.format == llm::OutputFormat::kJsonSchema) {
    request.schema = body.at("response_format").at("json_schema").at("schema");
  }

  auto exchange = std::make_shared<Exchange>();
  exchange->stream = std::make_shared<ResponseStream>();
  exchange->chat = chat;
  exchange->streaming = params.stream;
  exchange->include_usage = params.include_usage;
  exchange->logprobs = params.logprobs;
  exchange->tools = chat && !request.tools.is_null() && tool_choice != "none";
  exchange->id = RandomId(chat ? "chatcmpl-" : "cmpl-");
  exchange->model = model->id();
  exchange->created = NowSeconds();

  Result<uint64_t> id = model->Generate(
      std::move(request),
      [exchange](engine::GenerationEvent&& event) { exchange->OnEvent(std::move(event)); });
  if (!id) {
    return ErrorOf(GenerationError(id.error()));
  }
  exchange->stream->OnCancel([model, job = *id] { model->Cancel(job); });

  Response response;
  response.content_type = params.stream ? "text/event-stream" : "application/json";
  if (params.stream) response.headers.emplace_back("Cache-Control", "no-cache");
  response.stream = exchange->stream;
  return response;
}

Response Embeddings(AppContext& app, const Request& http_request) {
  auto body_parsed = ParseBody(http_request);
  if (!body_parsed) return ErrorOf(body_parsed.error());
  const ordered_json& body = *body_parsed;
  llm::Embedder* embedder = app.embedder;
  std::string name;
  if (auto it = body.find("model"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return ErrorOf(FieldError("model", "'model' must be a string"));
    name = it->get<std::string>();
  }
  if (embedder == nullptr) {
    return ErrorOf({404, "no embedding model is loaded: start xnai serve with --embed-model",
                    "invalid_request_error", "model", "model_not_found"});
  }
  if (!name.empty() && name != embedder->id()) {
    return ErrorOf({404, "The model '" + name + "' does not exist", "invalid_request_error",
                    "model", "model_not_found"});
  }
  std::vector<std::string> texts;
  auto input = body.find("input");
  if (input == body.end()) return ErrorOf(FieldError("input", "'input' is required"));
  if (input->is_string()) {
    texts.push_back(input->get<std::string>());
  } else if (input->is_array() && !input->empty() && input->size() <= 2048) {
    for (const ordered_json& text : *input) {
      if (!text.is_string()) {
        return ErrorOf(FieldError("input", "'input' must be a string or an array of strings"));
      }
      texts.push_back(text.get<std::string>());
    }
  } else {
    return ErrorOf(
        FieldError("input", "'input' must be a string or an array of 1 to 2048 strings"));
  }
  bool base64 = false;
  if (auto it = body.find("encoding_format"); it != body.end() && !it->is_null()) {
    if (*it == "base64") {
      base64 = true;
    } else if (*it != "float") {
      return ErrorOf(FieldError("encoding_format", "'encoding_format' must be float or base64"));
    }
  }
  if (auto it = body.find("dimensions"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() != embedder->dim()) {
      return ErrorOf(FieldError("dimensions", "this model's embeddings have " +
                                                  std::to_string(embedder->dim()) +
                                                  " dimensions; 'dimensions' cannot change that"));
    }
  }
  int64_t tokens = 0;
  auto vectors = embedder->Embed(texts, &tokens);
  if (!vectors) {
    ApiError error = FromStatus(vectors.error());
    if (error.status == 400) error.param = "input";
    return ErrorOf(error);
  }
  ordered_json data = ordered_json::array();
  for (size_t idx = 0; idx < vectors->size(); ++idx) {
    const std::vector<float>& vector = (*vectors)[idx];
    ordered_json item = {{"object", "embedding"}, {"index", idx}};
    if (base64) {
      static const char kAlphabet[] =
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      const auto* bytes = reinterpret_cast<const unsigned char*>(vector.data());
      const size_t n = vector.size() * sizeof(float);
      std::string encoded;
      for (size_t pos = 0; pos < n; pos += 3) {
        uint32_t chunk = static_cast<uint32_t>(bytes[pos]) << 16;
        if (pos + 1 < n) chunk |= static_cast<uint32_t>(bytes[pos + 1]) << 8;
        if (pos + 2 < n) chunk |= bytes[pos + 2];
        encoded += kAlphabet[(chunk >> 18) & 63];
        encoded += kAlphabet[(chunk >> 12) & 63];
        encoded += pos + 1 < n ? kAlphabet[(chunk >> 6) & 63] : '=';
        encoded += pos + 2 < n ? kAlphabet[chunk & 63] : '=';
      }
      item["embedding"] = encoded;
    } else {
      item["embedding"] = vector;
    }
    data.push_back(std::move(item));
  }
  ordered_json out = {{"object", "list"},
                      {"data", data},
                      {"model", embedder->id()},
                      {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
  Response response;
  response.body = Dump(out);
  return response;
}

ordered_json ModelJson(const std::string& id, int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "xnai"}};
}

}  // namespace

void AddOpenAiRoutes(Router& router, AppContext& app) {
  const int64_t started = NowSeconds();
  router.Add({"GET", "/v1/models", "OpenAI: the loaded models"}, [&app, started](Request&) {
    ordered_json data = ordered_json::array();
    for (llm::Llm* model : app.chat_models) data.push_back(ModelJson(model->id(), started));
    if (app.embedder != nullptr) data.push_back(ModelJson(app.embedder->id(), started));
    Response response;
    response.body = Dump({{"object", "list"}, {"data", data}});
    return response;
  });
  router.Add({"GET", "/v1/models/{id}", "OpenAI: one loaded model"},
             [&app, started](Request& request) {
               const std::string& id = request.path_params["id"];
               bool found = app.embedder != nullptr && app.embedder->id() == id;
               for (llm::Llm* model : app.chat_models) found = found || model->id() == id;
               if (!found) {
                 return ErrorOf({404, "The model '" + id + "' does not exist",
                                 "invalid_request_error", "model", "model_not_found"});
               }
               Response response;
               response.body = Dump(ModelJson(id, started));
               return response;
             });
  router.Add({"POST", "/v1/chat/completions", "OpenAI: chat completion (SSE with stream)"},
             [&app](Request& request) { return Generate(app, request, /*chat=*/true); });
  router.Add({"POST", "/v1/completions", "OpenAI: text completion (SSE with stream)"},
             [&app](Request& request) { return Generate(app, request, /*chat=*/false); });
  router.Add({"POST", "/v1/embeddings", "OpenAI: embeddings"},
             [&app](Request& request) { return Embeddings(app, request); });
}

}  // namespace xnai::server::routes
