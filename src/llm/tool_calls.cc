#include "llm/tool_calls.h"

#include <nlohmann/json.hpp>

namespace xnai::llm {

namespace {

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";

std::string_view Trim(std::string_view text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// The call in one block's body, if it is one.
bool ParseCall(std::string_view body, ToolCall& call) {
  const nlohmann::json value = nlohmann::json::parse(Trim(body), nullptr, false);
  if (!value.is_object()) return false;
  auto name = value.find("name");
  if (name == value.end() || !name->is_string() || name->get<std::string>().empty()) return false;
  auto arguments = value.find("arguments");
  if (arguments == value.end()) arguments = value.find("parameters");
  if (arguments == value.end() || arguments->is_null()) {
    call.arguments = "{}";
  } else if (arguments->is_object()) {
    call.arguments = arguments->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else if (arguments->is_string()) {
    call.arguments = arguments->get<std::string>();
  } else {
    return false;
  }
  call.name = name->get<std::string>();
  return true;
}

}  // namespace

ParsedToolCalls ParseToolCalls(std::string_view text) {
  ParsedToolCalls parsed;
  std::string content;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find(kOpen, pos);
    if (open == std::string_view::npos) break;
    const size_t body = open + kOpen.size();
    const size_t close = text.find(kClose, body);
    // An unterminated last block (the output was cut) still counts if its
    // body is a complete call.
    const size_t body_end = close == std::string_view::npos ? text.size() : close;
    ToolCall call;
    if (!ParseCall(text.substr(body, body_end - body), call)) break;
    content += text.substr(pos, open - pos);
    parsed.calls.push_back(std::move(call));
    pos = close == std::string_view::npos ? text.size() : close + kClose.size();
  }
  content += text.substr(pos);
  parsed.content = std::string(Trim(content));
  return parsed;
}

size_t ToolCallFreePrefix(std::string_view text) {
  const size_t open = text.find(kOpen);
  if (open != std::string_view::npos) return open;
  // A trailing proper prefix of the tag may still complete it.
  for (size_t len = std::min(text.size(), kOpen.size() - 1); len > 0; --len) {
    if (text.substr(text.size() - len) == kOpen.substr(0, len)) return text.size() - len;
  }
  return text.size();
}

}  // namespace xnai::llm
