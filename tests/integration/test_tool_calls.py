"""Tool calls in answers: when a request offers `tools`, <tool_call> blocks
(the Qwen/Hermes format) in the model's output come back as OpenAI
`tool_calls` with finish_reason "tool_calls", streamed and not.

The model here is a scripted OpenAI-compatible upstream (Python, loopback)
behind `xnai serve --remote-url`, so the test controls the exact text; the
extraction is the same for every backend."""

import http.server
import json
import threading
import unittest

from harness import XnaiTestCase

ANSWER = ('I will look that up.\n<tool_call>\n{"name": "get_weather", "arguments": '
          '{"city": "Paris", "unit": "celsius"}}\n</tool_call>\n<tool_call>\n{"name": "get_time",'
          ' "arguments": {}}\n</tool_call>')
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}},
         {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers every chat completion with ANSWER, streamed in small pieces
    that split the tags."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        pieces = [ANSWER[i:i + 5] for i in range(0, len(ANSWER), 5)]
        for piece in pieces:
            chunk = {"id": "x", "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(("data: " + json.dumps(chunk) + "\n\n").encode())
        final = {"id": "x", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(pieces),
                      "total_tokens": 10 + len(pieces)}}
        self.wfile.write(("data: " + json.dumps(final) + "\n\ndata: [DONE]\n\n").encode())
        self.wfile.flush()
        self.close_connection = True


class ToolCallsTest(XnaiTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        threading.Thread(target=self.upstream.serve_forever, daemon=True).start()
        self.addCleanup(self.upstream.server_close)
        self.addCleanup(self.upstream.shutdown)
        self.server = self.start_server(args=[
            "--remote-url", "http://127.0.0.1:%d/v1" % self.upstream.server_address[1]])

    def chat(self, **fields):
        body = {"messages": [{"role": "user", "content": "Weather in Paris?"}], **fields}
        return self.server.post_json("/v1/chat/completions", body, timeout=60)

    def test_non_streaming_answer_has_tool_calls(self):
        r = self.chat(tools=TOOLS)
        self.assertEqual(r.status, 200, r)
        choice = r.json()["choices"][0]
        self.assertEqual(choice["finish_reason"], "tool_calls")
        message = choice["message"]
        self.assertEqual(message["content"], "I will look that up.")
        calls = message["tool_calls"]
        self.assertEqual([c["function"]["name"] for c in calls], ["get_weather", "get_time"])
        self.assertEqual(json.loads(calls[0]["function"]["arguments"]),
                         {"city": "Paris", "unit": "celsius"})
        self.assertEqual(calls[1]["function"]["arguments"], "{}")
        for call in calls:
            self.assertEqual(call["type"], "function")
            self.assertTrue(call["id"].startswith("call_"))
        self.assertNotEqual(calls[0]["id"], calls[1]["id"])

    def test_streamed_answer_has_tool_call_deltas(self):
        r = self.chat(tools=TOOLS, stream=True)
        self.assertEqual(r.status, 200, r)
        events = [line[len("data: "):] for line in r.text.split("\n") if line.startswith("data: ")]
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        self.assertEqual(content.strip(), "I will look that up.")
        self.assertNotIn("<tool_call>", content)
        calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
        self.assertEqual([tc["index"] for tc in calls], [0, 1])
        self.assertEqual([tc["function"]["name"] for tc in calls], ["get_weather", "get_time"])
        self.assertEqual(json.loads(calls[0]["function"]["arguments"])["city"], "Paris")
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "tool_calls")

    def test_without_tools_the_text_is_returned_as_is(self):
        for fields in ({}, {"tools": TOOLS, "tool_choice": "none"}):
            r = self.chat(**fields)
            self.assertEqual(r.status, 200, r)
            choice = r.json()["choices"][0]
            self.assertEqual(choice["message"]["content"], ANSWER)
            self.assertNotIn("tool_calls", choice["message"])
            self.assertEqual(choice["finish_reason"], "stop")
        bad = self.chat(tools=TOOLS, tool_choice="sometimes")
        self.assertEqual(bad.status, 400)
        self.assertEqual(bad.json()["error"]["param"], "tool_choice")


if __name__ == "__main__":
    unittest.main()
