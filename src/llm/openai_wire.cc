#include "llm/openai_wire.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

namespace xnai::llm::wire {

using nlohmann::json;
using ordered_json = nlohmann::ordered_json;

namespace {

// A float as the short decimal a person would write (0.7f -> 0.7, not
// 0.699999988079071).
double FloatJson(float value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.7g", static_cast<double>(value));
  return std::strtod(text, nullptr);
}

// Chat messages as OpenAI takes them: tool-call arguments are JSON strings
// (the HTTP edge parsed them into objects for the chat templates).
ordered_json WireMessages(const ordered_json& messages) {
  ordered_json out = messages;
  if (!out.is_array()) return out;
  for (ordered_json& message : out) {
    if (!message.is_object()) continue;
    auto calls = message.find("tool_calls");
    if (calls == message.end() || !calls->is_array()) continue;
    for (ordered_json& call : *calls) {
      if (!call.is_object()) continue;
      auto function = call.find("function");
      if (function == call.end() || !function->is_object()) continue;
      auto arguments = function->find("arguments");
      if (arguments != function->end() && !arguments->is_string()) {
        *arguments = arguments->dump(-1, ' ', false, json::error_handler_t::replace);
      }
    }
  }
  return out;
}

// A token's raw bytes: the "bytes" array when given, else the token text.
std::string TokenBytes(const json& entry) {
  auto bytes = entry.find("bytes");
  if (bytes != entry.end() && bytes->is_array()) {
    std::string out;
    for (const json& byte : *bytes) {
      if (!byte.is_number_integer()) {
        out.clear();
        break;
      }
      out.push_back(static_cast<char>(byte.get<int>() & 0xff));
    }
    if (!out.empty() || bytes->empty()) return out;
  }
  auto token = entry.find("token");
  return token != entry.end() && token->is_string() ? token->get<std::string>() : std::string();
}

float NumberOr(const json& value, float fallback) {
  return value.is_number() ? value.get<float>() : fallback;
}

int64_t IntegerOr(const json& object, const char* name) {
  auto it = object.find(name);
  return it != object.end() && it->is_number() ? it->get<int64_t>() : 0;
}

// Cuts `text` to at most `max` bytes without splitting a UTF-8 character.
std::string CutUtf8(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end)) + "...";
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

// --- requests ----------------------------------------------------------------------

std::string RequestPath(const GenerateRequest& request) {
  return request.chat ? "/chat/completions" : "/completions";
}

ordered_json BuildRequestBody(const GenerateRequest& request, const std::string& model) {
  const engine::SamplingParams& sampling = request.sampling;
  ordered_json body = ordered_json::object();
  body["model"] = model;
  if (request.chat) {
    body["messages"] = WireMessages(request.messages);
    if (!request.tools.is_null()) body["tools"] = request.tools;
    if (request.template_kwargs.is_object() && !request.template_kwargs.empty()) {
      body["chat_template_kwargs"] = request.template_kwargs;
    }
  } else {
    body["prompt"] = request.prompt;
  }
  body["temperature"] = FloatJson(sampling.temperature);
  body["top_p"] = FloatJson(sampling.top_p);
  // Extensions (llama.cpp's server and xnai take them): only when on, so a
  // strict server is not sent what it does not know.
  if (sampling.top_k > 0) body["top_k"] = sampling.top_k;
  if (sampling.min_p > 0) body["min_p"] = FloatJson(sampling.min_p);
  if (sampling.repeat_penalty != 1.0f) body["repeat_penalty"] = FloatJson(sampling.repeat_penalty);
  if (sampling.presence_penalty != 0) {
    body["presence_penalty"] = FloatJson(sampling.presence_penalty);
  }
  if (sampling.frequency_penalty != 0) {
    body["frequency_penalty"] = FloatJson(sampling.frequency_penalty);
  }
  // The HTTP edge reads seeds as signed 64-bit integers and keeps the bits.
  body["seed"] = static_cast<int64_t>(sampling.seed);
  if (request.max_tokens > 0) body["max_tokens"] = request.max_tokens;
  if (!request.stop.empty()) body["stop"] = request.stop;
  if (request.top_logprobs >= 0) {
    if (request.chat) {
      body["logprobs"] = true;
      body["top_logprobs"] = request.top_logprobs;
    } else {
      body["logprobs"] = request.top_logprobs;
    }
  }
  if (request.format == OutputFormat::kJsonObject) {
    body["response_format"] = {{"type", "json_object"}};
  } else if (request.format == OutputFormat::kJsonSchema) {
    body["response_format"] = {{"type", "json_schema"},
                               {"json_schema", {{"name", "response"}, {"schema", request.schema}}}};
  }
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  return body;
}

// --- Server-Sent Events ------------------------------------------------------------

Status SseParser::Feed(std::string_view bytes, std::vector<SseEvent>& out) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (after_cr_) {
      after_cr_ = false;
      if (bytes[pos] == '\n') {
        ++pos;
        continue;
      }
    }
    const size_t end = bytes.find_first_of("\r\n", pos);
    const size_t stop = end == std::string_view::npos ? bytes.size() : end;
    line_.append(bytes.data() + pos, stop - pos);
    if (line_.size() > kMaxLineBytes) {
      return Status::InvalidArgument("an event-stream line is longer than " +
                                     std::to_string(kMaxLineBytes) + " bytes");
    }
    if (end == std::string_view::npos) break;
    after_cr_ = bytes[end] == '\r';
    ProcessLine(out);
    pos = end + 1;
  }
  return Status::Ok();
}

void SseParser::Finish(std::vector<SseEvent>& out) {
  if (!line_.empty()) ProcessLine(out);
  Dispatch(out);
  after_cr_ = false;
}

void SseParser::ProcessLine(std::vector<SseEvent>& out) {
  if (line_.empty()) {
    Dispatch(out);
    return;
  }
  if (line_[0] == ':') {  // a comment (keep-alive)
    line_.clear();
    return;
  }
  std::string_view line = line_;
  std::string_view field = line, value;
  if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data" || field == "error") {
    if (field == "error") pending_.event = "error";
    if (has_data_) pending_.data.push_back('\n');
    pending_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    pending_.event = std::string(value);
  }
  line_.clear();
}

void SseParser::Dispatch(std::vector<SseEvent>& out) {
  if (has_data_) out.push_back(std::move(pending_));
  pending_ = SseEvent();
  has_data_ = false;
}

// --- streamed chunks ---------------------------------------------------------------

Status StreamDecoder::Decode(const SseEvent& event, std::vector<engine::GenerationEvent>& out) {
  if (event.event == "error") return Status::Unavailable(ErrorMessage(event.data, 0));
  if (Trim(event.data) == "[DONE]") {
    saw_done_ = true;
    return Status::Ok();
  }
  const json chunk = json::parse(event.data, nullptr, /*allow_exceptions=*/false);
  if (chunk.is_discarded() || !chunk.is_object()) {
    return Status::Internal("the remote model server sent a malformed stream event: " +
                            CutUtf8(event.data, 120));
  }
  if (auto error = chunk.find("error"); error != chunk.end() && !error->is_null()) {
    return Status::Unavailable(ErrorMessage(event.data, 0));
  }
  if (auto usage = chunk.find("usage"); usage != chunk.end() && usage->is_object()) {
    saw_usage_ = true;
    prompt_tokens_ = IntegerOr(*usage, "prompt_tokens");
    completion_tokens_ = IntegerOr(*usage, "completion_tokens");
    auto details = usage->find("prompt_tokens_details");
    cached_tokens_ =
        details != usage->end() && details->is_object() ? IntegerOr(*details, "cached_tokens") : 0;
  }
  auto choices = chunk.find("choices");
  if (choices == chunk.end() || choices->is_null()) return Status::Ok();
  if (!choices->is_array()) {
    return Status::Internal("the remote model server sent a chunk whose 'choices' is not a list");
  }
  for (const json& choice : *choices) {
    // One choice is asked for (n = 1); others are not ours.
    if (!choice.is_object() || IntegerOr(choice, "index") != 0) continue;
    XNAI_RETURN_IF_ERROR(DecodeChoice(choice, out));
  }
  return Status::Ok();
}

Status StreamDecoder::DecodeChoice(const json& choice, std::vector<engine::GenerationEvent>& out) {
  std::string text;
  std::vector<engine::GenerationEvent> tokens;  // one per token with logprobs
  const json* logprobs = nullptr;
  if (auto it = choice.find("logprobs"); it != choice.end() && it->is_object()) logprobs = &*it;
  if (chat_) {
    auto delta = choice.find("delta");
    if (delta != choice.end() && delta->is_object()) {
      auto content = delta->find("content");
      if (content != delta->end() && content->is_string()) text = content->get<std::string>();
    }
    if (logprobs != nullptr) {
      auto content = logprobs->find("content");
      if (content != logprobs->end() && content->is_array()) {
        for (const json& entry : *content) {
          if (!entry.is_object()) continue;
          engine::GenerationEvent token;
          token.chosen.bytes = TokenBytes(entry);
          token.chosen.logprob = NumberOr(entry.value("logprob", json()), 0);
          auto top = entry.find("top_logprobs");
          if (top != entry.end() && top->is_array()) {
            for (const json& alt : *top) {
              if (!alt.is_object()) continue;
              token.top.push_back({-1, TokenBytes(alt), NumberOr(alt.value("logprob", json()), 0)});
            }
          }
          tokens.push_back(std::move(token));
        }
      }
    }
  } else {
    auto piece = choice.find("text");
    if (piece != choice.end() && piece->is_string()) text = piece->get<std::string>();
    if (logprobs != nullptr) {
      const json& words = logprobs->value("tokens", json::array());
      const json& values = logprobs->value("token_logprobs", json::array());
      const json& tops = logprobs->value("top_logprobs", json::array());
      if (words.is_array()) {
        for (size_t idx = 0; idx < words.size(); ++idx) {
          engine::GenerationEvent token;
          token.chosen.bytes = words[idx].is_string() ? words[idx].get<std::string>() : "";
          token.chosen.logprob =
              values.is_array() && idx < values.size() ? NumberOr(values[idx], 0) : 0;
          if (tops.is_array() && idx < tops.size() && tops[idx].is_object()) {
            for (auto alt = tops[idx].begin(); alt != tops[idx].end(); ++alt) {
              token.top.push_back({-1, alt.key(), NumberOr(alt.value(), 0)});
            }
            // An object's keys carry no order: most likely first.
            std::stable_sort(token.top.begin(), token.top.end(),
                             [](const engine::TokenLogprob& a, const engine::TokenLogprob& b) {
                               return a.logprob > b.logprob;
                             });
          }
          tokens.push_back(std::move(token));
        }
      }
    }
  }
  if (tokens.empty() && !text.empty()) tokens.emplace_back();
  for (size_t idx = 0; idx < tokens.size(); ++idx) {
    engine::GenerationEvent& token = tokens[idx];
    token.kind = engine::GenerationEvent::Kind::kToken;
    if (idx == 0) token.text = std::move(text);
    out.push_back(std::move(token));
    ++tokens_;
  }
  auto finish = choice.find("finish_reason");
  if (finish != choice.end() && finish->is_string() && !finish->get<std::string>().empty()) {
    finish_reason_ = finish->get<std::string>();
  }
  return Status::Ok();
}

engine::GenerationEvent StreamDecoder::Final() const {
  engine::GenerationEvent done;
  done.kind = engine::GenerationEvent::Kind::kDone;
  done.finish_reason = finish_reason_.empty() ? "stop" : finish_reason_;
  done.prompt_tokens = saw_usage_ ? prompt_tokens_ : 0;
  done.completion_tokens = saw_usage_ ? completion_tokens_ : tokens_;
  done.cached_tokens = saw_usage_ ? cached_tokens_ : 0;
  return done;
}

// --- other answers -----------------------------------------------------------------

std::string ErrorMessage(std::string_view body, long http_status) {
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_discarded() && parsed.is_object()) {
    auto error = parsed.find("error");
    if (error != parsed.end()) {
      if (error->is_object()) {
        auto message = error->find("message");
        if (message != error->end() && message->is_string() && !message->empty()) {
          return message->get<std::string>();
        }
      } else if (error->is_string() && !error->empty()) {
        return error->get<std::string>();
      }
    }
    for (const char* name : {"message", "detail"}) {
      auto message = parsed.find(name);
      if (message != parsed.end() && message->is_string() && !message->empty()) {
        return message->get<std::string>();
      }
    }
  }
  const std::string_view text = Trim(body);
  if (!text.empty()) return CutUtf8(text, 300);
  return "HTTP " + std::to_string(http_status);
}

Result<std::string> FirstModelId(std::string_view body) {
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("data") ||
      !parsed["data"].is_array()) {
    return Err(Status::InvalidArgument("the model list is not {\"data\": [...]}"));
  }
  for (const json& model : parsed["data"]) {
    if (model.is_object() && model.contains("id") && model["id"].is_string() &&
        !model["id"].get<std::string>().empty()) {
      return model["id"].get<std::string>();
    }
  }
  return Err(Status::InvalidArgument("the model list is empty"));
}

std::string RedactUrl(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const size_t start = scheme + 3;
  const size_t end = std::min(url.find_first_of("/?#", start), url.size());
  const size_t at = url.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  return std::string(url.substr(0, start)) + std::string(url.substr(at + 1));
}

}  // namespace xnai::llm::wire
