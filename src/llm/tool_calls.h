// Tool calls in model output. Models of the Qwen 2.5/3 and Hermes families
// (the ones whose templates xnai renders for tool use) answer a tool request
// with blocks of the form
//   <tool_call>
//   {"name": "get_weather", "arguments": {"city": "Paris"}}
//   </tool_call>
// which the OpenAI API returns as `tool_calls`, not as text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace xnai::llm {

struct ToolCall {
  std::string name;
  std::string arguments;  // JSON text of the arguments object
};

struct ParsedToolCalls {
  std::string content;  // the text outside the blocks, trimmed
  std::vector<ToolCall> calls;
};

// The well-formed blocks of `text` (a JSON object with a string "name" and
// an object or string "arguments"/"parameters"). A block that does not parse
// stays in `content` as text, so nothing the model wrote is lost.
ParsedToolCalls ParseToolCalls(std::string_view text);

// For streaming: how many leading bytes of `text` are content that can be
// sent now — everything before an opening tag, or before a trailing piece
// that may still become one.
size_t ToolCallFreePrefix(std::string_view text);

}  // namespace xnai::llm
