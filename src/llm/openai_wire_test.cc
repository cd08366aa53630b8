#include "llm/openai_wire.h"

#include <gtest/gtest.h>

namespace xnai::llm::wire {
namespace {

using nlohmann::json;
using ordered_json = nlohmann::ordered_json;
using Kind = engine::GenerationEvent::Kind;

// --- SseParser ---------------------------------------------------------------

std::vector<SseEvent> ParseAll(std::string_view stream) {
  SseParser parser;
  std::vector<SseEvent> out;
  EXPECT_TRUE(parser.Feed(stream, out).ok());
  parser.Finish(out);
  return out;
}

std::vector<std::string> Data(const std::vector<SseEvent>& events) {
  std::vector<std::string> out;
  for (const SseEvent& event : events) out.push_back(event.data);
  return out;
}

TEST(SseParserTest, DispatchesOnBlankLines) {
  SseParser parser;
  std::vector<SseEvent> out;
  ASSERT_TRUE(parser.Feed("data: one\n\ndata: two\n", out).ok());
  EXPECT_EQ(Data(out), std::vector<std::string>({"one"}));
  ASSERT_TRUE(parser.Feed("\n", out).ok());
  EXPECT_EQ(Data(out), std::vector<std::string>({"one", "two"}));
}

TEST(SseParserTest, LineEndingsLfCrlfAndCr) {
  EXPECT_EQ(Data(ParseAll("data: a\r\n\r\ndata: b\r\rdata: c\n\n")),
            std::vector<std::string>({"a", "b", "c"}));
}

TEST(SseParserTest, CommentsAndUnknownFieldsAreSkipped) {
  const auto events =
      ParseAll(": keep-alive\n\nid: 7\nretry: 100\ndata: x\nfoo: bar\n\n: ping\n\n");
  EXPECT_EQ(Data(events), std::vector<std::string>({"x"}));
}

TEST(SseParserTest, MultiLineDataIsJoinedAndEventTypeKept) {
  const auto events = ParseAll("event: update\ndata: first\ndata:second\ndata\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "update");
  EXPECT_EQ(events[0].data, "first\nsecond\n");
}

TEST(SseParserTest, EventTypeResetsAfterDispatchAndEmptyEventsAreDropped) {
  const auto events = ParseAll("event: a\n\ndata: x\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "");  // the lone "event: a" had no data
}

TEST(SseParserTest, ErrorLinesBecomeErrorEvents) {
  const auto events = ParseAll("error: {\"message\": \"boom\"}\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "error");
  EXPECT_EQ(events[0].data, "{\"message\": \"boom\"}");
}

TEST(SseParserTest, OnlyOneSpaceAfterTheColonIsDropped) {
  EXPECT_EQ(Data(ParseAll("data:  two spaces\n\n")), std::vector<std::string>({" two spaces"}));
}

TEST(SseParserTest, FinishDispatchesAnUnterminatedEvent) {
  EXPECT_EQ(Data(ParseAll("data: [DONE]")), std::vector<std::string>({"[DONE]"}));
}

TEST(SseParserTest, AnySplitGivesTheSameEvents) {
  const std::string stream =
      ": hello\r\n\r\ndata: {\"a\": 1}\r\n\r\ndata: line1\r\ndata: line2\r\n\r\n"
      "event: x\ndata: \xc3\xa9t\xc3\xa9\n\ndata: end\r\rdata: [DONE]\r\n\r\n";
  const std::vector<std::string> want = {"{\"a\": 1}", "line1\nline2", "\xc3\xa9t\xc3\xa9", "end",
                                         "[DONE]"};
  EXPECT_EQ(Data(ParseAll(stream)), want);
  for (size_t first = 0; first <= stream.size(); ++first) {
    for (size_t second = first; second <= stream.size(); second += 7) {
      SseParser parser;
      std::vector<SseEvent> out;
      ASSERT_TRUE(parser.Feed(std::string_view(stream).substr(0, first), out).ok());
      ASSERT_TRUE(parser.Feed(std::string_view(stream).substr(first, second - first), out).ok());
      ASSERT_TRUE(parser.Feed(std::string_view(stream).substr(second), out).ok());
      parser.Finish(out);
      ASSERT_EQ(Data(out), want) << "split at " << first << " and " << second;
    }
  }
  // One byte at a time.
  SseParser parser;
  std::vector<SseEvent> out;
  for (char c : stream) ASSERT_TRUE(parser.Feed(std::string_view(&c, 1), out).ok());
  EXPECT_EQ(Data(out), want);
}

TEST(SseParserTest, ACrAtTheEndOfOnePieceAndLfAtTheStartOfTheNextAreOneBreak) {
  SseParser parser;
  std::vector<SseEvent> out;
  ASSERT_TRUE(parser.Feed("data: a\r", out).ok());
  ASSERT_TRUE(parser.Feed("\n", out).ok());
  EXPECT_TRUE(out.empty());  // one line break so far, not two
  ASSERT_TRUE(parser.Feed("\r\n", out).ok());
  EXPECT_EQ(Data(out), std::vector<std::string>({"a"}));
}

TEST(SseParserTest, ARunawayLineIsAnError) {
  SseParser parser;
  std::vector<SseEvent> out;
  const std::string piece(1 << 20, 'x');
  Status status;
  for (size_t fed = 0; fed <= SseParser::kMaxLineBytes && status.ok(); fed += piece.size()) {
    status = parser.Feed(piece, out);
  }
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
}

// --- StreamDecoder -------------------------------------------------------------

std::vector<engine::GenerationEvent> DecodeAll(StreamDecoder& decoder,
                                               const std::vector<std::string>& payloads) {
  std::vector<engine::GenerationEvent> out;
  for (const std::string& payload : payloads) {
    Status status = decoder.Decode({"", payload}, out);
    EXPECT_TRUE(status.ok()) << status.ToString() << " for " << payload;
  }
  return out;
}

TEST(StreamDecoderTest, ChatDeltasUsageAndDone) {
  StreamDecoder decoder(/*chat=*/true);
  const auto events = DecodeAll(
      decoder,
      {R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})",
       R"({"choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}]})",
       R"({"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]})",
       R"({"choices":[{"index":0,"delta":{},"finish_reason":"length"}]})",
       R"({"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13,
           "prompt_tokens_details":{"cached_tokens":4}}})",
       "[DONE]"});
  ASSERT_EQ(events.size(), 2u);  // the empty role delta is not a token
  EXPECT_EQ(events[0].kind, Kind::kToken);
  EXPECT_EQ(events[0].text, "Hel");
  EXPECT_EQ(events[1].text, "lo");
  EXPECT_TRUE(decoder.saw_done());
  EXPECT_TRUE(decoder.saw_finish());
  const engine::GenerationEvent done = decoder.Final();
  EXPECT_EQ(done.kind, Kind::kDone);
  EXPECT_EQ(done.finish_reason, "length");
  EXPECT_EQ(done.prompt_tokens, 11);
  EXPECT_EQ(done.completion_tokens, 2);
  EXPECT_EQ(done.cached_tokens, 4);
}

TEST(StreamDecoderTest, WithoutUsageTheTokensAreCounted) {
  StreamDecoder decoder(/*chat=*/true);
  DecodeAll(decoder, {R"({"choices":[{"delta":{"content":"a"}}]})",
                      R"({"choices":[{"delta":{"content":"b"}}]})"});
  EXPECT_FALSE(decoder.saw_done());
  EXPECT_FALSE(decoder.saw_finish());
  const engine::GenerationEvent done = decoder.Final();
  EXPECT_EQ(done.finish_reason, "stop");
  EXPECT_EQ(done.completion_tokens, 2);
  EXPECT_EQ(done.prompt_tokens, 0);
}

TEST(StreamDecoderTest, ChatLogprobsGiveOneEventPerToken) {
  StreamDecoder decoder(/*chat=*/true);
  const auto events =
      DecodeAll(decoder, {R"({"choices":[{"index":0,"delta":{"content":"ab"},"logprobs":{"content":[
                 {"token":"a","logprob":-0.5,"bytes":[97],
                  "top_logprobs":[{"token":"a","logprob":-0.5,"bytes":[97]},
                                  {"token":"z","logprob":-1.5}]},
                 {"token":"b","logprob":-0.25,"bytes":[98],"top_logprobs":[]}]}}]})"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].text, "ab");
  EXPECT_EQ(events[0].chosen.bytes, "a");
  EXPECT_FLOAT_EQ(events[0].chosen.logprob, -0.5f);
  ASSERT_EQ(events[0].top.size(), 2u);
  EXPECT_EQ(events[0].top[1].bytes, "z");
  EXPECT_FLOAT_EQ(events[0].top[1].logprob, -1.5f);
  EXPECT_EQ(events[1].text, "");
  EXPECT_EQ(events[1].chosen.bytes, "b");
  EXPECT_EQ(decoder.tokens(), 2);
}

TEST(StreamDecoderTest, LogprobBytesKeepPartialCharacters) {
  StreamDecoder decoder(/*chat=*/true);
  const auto events =
      DecodeAll(decoder, {R"({"choices":[{"delta":{"content":""},"logprobs":{"content":[
                 {"token":"\ufffd","logprob":-1,"bytes":[195],"top_logprobs":[]}]}}]})"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].chosen.bytes, std::string("\xc3"));
}

TEST(StreamDecoderTest, CompletionTextAndLogprobs) {
  StreamDecoder decoder(/*chat=*/false);
  const auto events = DecodeAll(
      decoder, {R"({"object":"text_completion","choices":[{"index":0,"text":" upon",
                   "logprobs":{"tokens":[" upon"],"token_logprobs":[-0.1],
                               "top_logprobs":[{" a":-3.0," upon":-0.1}]},"finish_reason":null}]})",
                R"({"choices":[{"index":0,"text":"","finish_reason":"stop"}]})", "[DONE]"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, " upon");
  EXPECT_EQ(events[0].chosen.bytes, " upon");
  ASSERT_EQ(events[0].top.size(), 2u);
  EXPECT_EQ(events[0].top[0].bytes, " upon");  // most likely first
  EXPECT_EQ(decoder.Final().finish_reason, "stop");
}

TEST(StreamDecoderTest, OtherChoicesAreIgnored) {
  StreamDecoder decoder(/*chat=*/true);
  const auto events = DecodeAll(decoder, {R"({"choices":[{"index":1,"delta":{"content":"x"}}]})"});
  EXPECT_TRUE(events.empty());
}

TEST(StreamDecoderTest, ErrorsInTheStream) {
  StreamDecoder decoder(/*chat=*/true);
  std::vector<engine::GenerationEvent> out;
  Status status = decoder.Decode(
      {"", R"({"error":{"message":"the model crashed","type":"server_error"}})"}, out);
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_EQ(status.message(), "the model crashed");
  status = decoder.Decode({"error", R"({"code":500,"message":"slot failed"})"}, out);
  EXPECT_EQ(status.message(), "slot failed");
  status = decoder.Decode({"", "{not json"}, out);
  EXPECT_EQ(status.code(), Status::Code::kInternal);
  EXPECT_NE(status.message().find("{not json"), std::string::npos);
  status = decoder.Decode({"", R"({"choices":"x"})"}, out);
  EXPECT_EQ(status.code(), Status::Code::kInternal);
  status = decoder.Decode({"", R"({"choices":[{"index":"zero","delta":{"content":7}}]})"}, out);
  EXPECT_TRUE(status.ok());  // odd types are skipped, never thrown
  EXPECT_TRUE(out.empty());
}

// --- BuildRequestBody ----------------------------------------------------------

GenerateRequest ChatRequest() {
  GenerateRequest request;
  request.chat = true;
  request.messages = ordered_json::parse(R"([
      {"role":"system","content":"Be brief."},
      {"role":"assistant","content":"","tool_calls":[
        {"id":"c1","type":"function","function":{"name":"f","arguments":{"x":1}}}]},
      {"role":"tool","content":"42","tool_call_id":"c1"},
      {"role":"user","content":"Hi"}])");
  request.sampling.temperature = 0.7f;
  request.sampling.top_p = 0.9f;
  request.sampling.top_k = 0;
  request.sampling.min_p = 0;
  request.sampling.seed = 1234;
  return request;
}

TEST(BuildRequestBodyTest, ChatRequest) {
  GenerateRequest request = ChatRequest();
  request.tools = ordered_json::parse(R"([{"type":"function","function":{"name":"f"}}])");
  request.max_tokens = 32;
  request.stop = {"\n\n", "END"};
  const ordered_json body = BuildRequestBody(request, "qwen");
  EXPECT_EQ(RequestPath(request), "/chat/completions");
  EXPECT_EQ(body["model"], "qwen");
  ASSERT_EQ(body["messages"].size(), 4u);
  // Tool-call arguments go back to the JSON string OpenAI uses.
  EXPECT_EQ(body["messages"][1]["tool_calls"][0]["function"]["arguments"], "{\"x\":1}");
  EXPECT_EQ(body["messages"][3], ordered_json({{"role", "user"}, {"content", "Hi"}}));
  EXPECT_EQ(body["tools"], request.tools);
  EXPECT_EQ(body["temperature"].get<double>(), 0.7);
  EXPECT_EQ(body["top_p"].get<double>(), 0.9);
  EXPECT_EQ(body["seed"], 1234);
  EXPECT_EQ(body["max_tokens"], 32);
  EXPECT_EQ(body["stop"], ordered_json({"\n\n", "END"}));
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"], ordered_json({{"include_usage", true}}));
  // What is off is not sent.
  for (const char* absent :
       {"top_k", "min_p", "presence_penalty", "frequency_penalty", "repeat_penalty", "logprobs",
        "top_logprobs", "response_format", "prompt", "chat_template_kwargs"}) {
    EXPECT_FALSE(body.contains(absent)) << absent;
  }
}

TEST(BuildRequestBodyTest, SamplingExtrasLogprobsAndKwargs) {
  GenerateRequest request = ChatRequest();
  request.sampling.top_k = 40;
  request.sampling.min_p = 0.05f;
  request.sampling.presence_penalty = 0.5f;
  request.sampling.frequency_penalty = -0.25f;
  request.sampling.seed = ~uint64_t{0};
  request.top_logprobs = 3;
  request.template_kwargs = {{"enable_thinking", false}};
  const ordered_json body = BuildRequestBody(request, "m");
  EXPECT_EQ(body["top_k"], 40);
  EXPECT_EQ(body["min_p"].get<double>(), 0.05);
  EXPECT_EQ(body["presence_penalty"].get<double>(), 0.5);
  EXPECT_EQ(body["frequency_penalty"].get<double>(), -0.25);
  EXPECT_EQ(body["seed"], -1);  // the same 64 bits, as a signed integer
  EXPECT_EQ(body["logprobs"], true);
  EXPECT_EQ(body["top_logprobs"], 3);
  EXPECT_EQ(body["chat_template_kwargs"], ordered_json({{"enable_thinking", false}}));
}

TEST(BuildRequestBodyTest, CompletionRequestWithLogprobs) {
  GenerateRequest request;
  request.chat = false;
  request.prompt = "Once upon a time";
  request.top_logprobs = 2;
  request.max_tokens = -1;
  const ordered_json body = BuildRequestBody(request, "m");
  EXPECT_EQ(RequestPath(request), "/completions");
  EXPECT_EQ(body["prompt"], "Once upon a time");
  EXPECT_FALSE(body.contains("messages"));
  EXPECT_FALSE(body.contains("max_tokens"));
  EXPECT_EQ(body["logprobs"], 2);
  EXPECT_FALSE(body.contains("top_logprobs"));
}

TEST(BuildRequestBodyTest, ResponseFormats) {
  GenerateRequest request = ChatRequest();
  request.format = OutputFormat::kJsonObject;
  EXPECT_EQ(BuildRequestBody(request, "m")["response_format"],
            ordered_json({{"type", "json_object"}}));
  request.format = OutputFormat::kJsonSchema;
  request.schema = {{"type", "object"}};
  const ordered_json format = BuildRequestBody(request, "m")["response_format"];
  EXPECT_EQ(format["type"], "json_schema");
  EXPECT_EQ(format["json_schema"]["schema"], request.schema);
  EXPECT_TRUE(format["json_schema"]["name"].is_string());
}

TEST(BuildRequestBodyTest, InvalidUtf8DoesNotThrowWhenDumped) {
  GenerateRequest request;
  request.chat = false;
  request.prompt = "bad \xff byte";
  const ordered_json body = BuildRequestBody(request, "m");
  EXPECT_NO_THROW(body.dump(-1, ' ', false, json::error_handler_t::replace));
}

// --- other answers ---------------------------------------------------------------

TEST(ErrorMessageTest, ReadsTheUsualShapes) {
  EXPECT_EQ(
      ErrorMessage(R"({"error":{"message":"The model 'x' does not exist","code":null}})", 404),
      "The model 'x' does not exist");
  EXPECT_EQ(ErrorMessage(R"({"error":"bad key"})", 401), "bad key");
  EXPECT_EQ(ErrorMessage(R"({"message":"plain"})", 400), "plain");
  EXPECT_EQ(ErrorMessage(R"({"detail":"fastapi style"})", 422), "fastapi style");
  EXPECT_EQ(ErrorMessage("  Bad Gateway\n", 502), "Bad Gateway");
  EXPECT_EQ(ErrorMessage("", 503), "HTTP 503");
  const std::string long_text(1000, 'x');
  EXPECT_LT(ErrorMessage(long_text, 500).size(), 310u);
  // Never cut inside a UTF-8 character.
  std::string accents;
  for (int i = 0; i < 400; ++i) accents += "\xc3\xa9";
  const std::string cut = ErrorMessage(accents, 500);
  EXPECT_EQ(cut.substr(cut.size() - 5), "\xc3\xa9...");
}

TEST(FirstModelIdTest, TakesTheFirstId) {
  EXPECT_EQ(FirstModelId(R"({"object":"list","data":[{"id":"a"},{"id":"b"}]})").value(), "a");
  EXPECT_EQ(FirstModelId(R"({"data":[{"name":"x"},{"id":"b"}]})").value(), "b");
  EXPECT_FALSE(FirstModelId(R"({"data":[]})").has_value());
  EXPECT_FALSE(FirstModelId("[]").has_value());
  EXPECT_FALSE(FirstModelId("<html>").has_value());
}

TEST(RedactUrlTest, DropsCredentials) {
  EXPECT_EQ(RedactUrl("http://user:secret@host:8080/v1"), "http://host:8080/v1");
  EXPECT_EQ(RedactUrl("https://host/v1?q=a@b"), "https://host/v1?q=a@b");
  EXPECT_EQ(RedactUrl("http://127.0.0.1:8080/v1"), "http://127.0.0.1:8080/v1");
  EXPECT_EQ(RedactUrl("not a url"), "not a url");
}

}  // namespace
}  // namespace xnai::llm::wire
