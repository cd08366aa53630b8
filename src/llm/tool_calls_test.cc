#include "llm/tool_calls.h"

#include <gtest/gtest.h>

namespace xnai::llm {
namespace {

TEST(ToolCallsTest, BlocksBecomeCallsAndTheRestStaysContent) {
  const ParsedToolCalls parsed = ParseToolCalls(
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\", \"days\": 2}}\n</tool_call>\n<tool_call>{\"name\":\"now\",\"arguments\":{}}"
      "</tool_call>");
  EXPECT_EQ(parsed.content, "Let me check.");
  ASSERT_EQ(parsed.calls.size(), 2u);
  EXPECT_EQ(parsed.calls[0].name, "get_weather");
  EXPECT_EQ(parsed.calls[0].arguments, "{\"city\":\"Paris\",\"days\":2}");
  EXPECT_EQ(parsed.calls[1].name, "now");
  EXPECT_EQ(parsed.calls[1].arguments, "{}");
}

TEST(ToolCallsTest, StringArgumentsParametersAndACutLastBlock) {
  ParsedToolCalls parsed =
      ParseToolCalls("<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}</tool_call>");
  ASSERT_EQ(parsed.calls.size(), 1u);
  EXPECT_EQ(parsed.calls[0].arguments, "{\"x\": 1}");
  parsed = ParseToolCalls("<tool_call>{\"name\": \"g\", \"parameters\": {\"y\": [1]}}");
  ASSERT_EQ(parsed.calls.size(), 1u);  // no closing tag: the output stopped there
  EXPECT_EQ(parsed.calls[0].arguments, "{\"y\":[1]}");
  EXPECT_EQ(parsed.content, "");
}

TEST(ToolCallsTest, MalformedBlocksStayText) {
  for (const char* text :
       {"<tool_call>{\"name\": </tool_call>", "<tool_call>[1, 2]</tool_call>",
        "<tool_call>{\"arguments\": {}}</tool_call>",
        "<tool_call>{\"name\": \"\", \"arguments\": {}}</tool_call>",
        "<tool_call>{\"name\": \"f\", \"arguments\": 5}</tool_call>", "plain text, no calls"}) {
    const ParsedToolCalls parsed = ParseToolCalls(text);
    EXPECT_TRUE(parsed.calls.empty()) << text;
    EXPECT_EQ(parsed.content, text);
  }
}

TEST(ToolCallsTest, FreePrefixHoldsBackWhatMayBecomeATag) {
  EXPECT_EQ(ToolCallFreePrefix("hello"), 5u);
  EXPECT_EQ(ToolCallFreePrefix("hello <tool_call>{"), 6u);
  EXPECT_EQ(ToolCallFreePrefix("hello <tool_ca"), 6u);
  EXPECT_EQ(ToolCallFreePrefix("a < b"), 5u);
  EXPECT_EQ(ToolCallFreePrefix("ends with <"), 10u);
  EXPECT_EQ(ToolCallFreePrefix(""), 0u);
}

}  // namespace
}  // namespace xnai::llm
