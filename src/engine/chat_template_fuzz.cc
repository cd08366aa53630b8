// libFuzzer entry point for the chat template interpreter: arbitrary bytes
// are parsed as a template and, when they parse, rendered with a small fixed
// context under tight limits. Any crash, hang, sanitizer report or an error
// code other than the documented ones is a bug. Built with -DXNAI_FUZZ=ON
// (clang); see src/engine/CMakeLists.txt.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::ordered_json kContext = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": "héllo {{ x }}"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {"a": [1, 2.5, true]}}}]}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"
  })");
  std::string_view source(reinterpret_cast<const char*>(data), size);
  auto parsed = xnai::engine::ChatTemplate::Parse(source);
  if (!parsed) {
    if (parsed.error().code() != xnai::Status::Code::kInvalidArgument) std::abort();
    return 0;
  }
  xnai::engine::RenderOptions options;
  options.limits.max_output_bytes = 1 << 16;
  options.limits.max_loop_iterations = 10000;
  options.limits.max_work = 1 << 20;
  auto rendered = parsed->Render(kContext, options);
  if (!rendered) {
    auto code = rendered.error().code();
    if (code != xnai::Status::Code::kInvalidArgument &&
        code != xnai::Status::Code::kFailedPrecondition) {
      std::abort();
    }
  }
  return 0;
}
