"""The OpenAI-compatible API of `xnai serve --model M --embed-model E` against
the real binary, with tiny random-weight models written by `xnai model synth`
(no download, no testdata): every endpoint's shape, streaming as SSE, errors
in OpenAI's shape, batching that does not change greedy outputs, the bounded
queue (429 + Retry-After), cancellation when the client leaves, constrained
JSON output, and the memory budget refused up front when it cannot hold the
model."""

import base64
import json
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from harness import XnaiTestCase, clean_env, find_binary

MODELS = {}


def setUpModule():
    directory = tempfile.mkdtemp(prefix="xnai-openai-models-")
    for name, preset, type_name in (("tiny-chat", "tiny-qwen3", "Q8_0"),
                                    ("tiny-embed", "tiny-bert", "F16")):
        path = os.path.join(directory, name + ".gguf")
        r = subprocess.run([find_binary(), "model", "synth", "--preset", preset, "--type",
                            type_name, "--out", path], capture_output=True, env=clean_env(),
                           timeout=120)
        if r.returncode != 0:
            raise RuntimeError("synth failed: " + r.stderr.decode())
        MODELS[name] = path
    MODELS["dir"] = directory


def tearDownModule():
    import shutil
    shutil.rmtree(MODELS.get("dir", ""), ignore_errors=True)


def sse_events(body):
    """The data payloads of an SSE body, in order."""
    events = []
    for block in body.split("\n\n"):
        block = block.strip("\n")
        if not block:
            continue
        for line in block.split("\n"):
            assert line.startswith("data: "), "unexpected SSE line %r" % line
            events.append(line[len("data: "):])
    return events


class OpenAiApiTest(XnaiTestCase):
    def serve(self, *extra):
        return self.start_server(args=["--model", MODELS["tiny-chat"], "--embed-model",
                                       MODELS["tiny-embed"], "--threads", "2", *extra])

    def chat(self, server, messages, **fields):
        body = {"messages": messages, **fields}
        return server.post_json("/v1/chat/completions", body, timeout=120)

    def test_models_are_listed_by_file_name(self):
        server = self.serve()
        r = server.get("/v1/models")
        self.assertEqual(r.status, 200, r)
        ids = [m["id"] for m in r.json()["data"]]
        self.assertEqual(ids, ["tiny-chat", "tiny-embed"])
        for model in r.json()["data"]:
            self.assertEqual(model["object"], "model")
            self.assertEqual(model["owned_by"], "xnai")
        self.assertEqual(server.get("/v1/models/tiny-chat").json()["id"], "tiny-chat")
        health = server.get("/health").json()
        local = {m["id"]: m for m in health["models"]}
        self.assertEqual(local["tiny-chat"]["kind"], "local")
        self.assertEqual(local["tiny-chat"]["context"], 4096)
        self.assertGreater(local["tiny-chat"]["kv_pages_max"], 0)
        self.assertGreater(local["tiny-chat"]["weights_bytes"], 0)
        self.assertEqual(local["tiny-embed"]["kind"], "local-embedding")
        missing = server.get("/v1/models/gpt-4")
        self.assertEqual(missing.status, 404)
        self.assertEqual(missing.json()["error"]["code"], "model_not_found")

    def test_alias_names_the_model(self):
        server = self.start_server(args=["--model", MODELS["tiny-chat"], "--alias", "my-model"])
        self.assertEqual([m["id"] for m in server.get("/v1/models").json()["data"]],
                         ["my-model"])
        r = self.chat(server, [{"role": "user", "content": "hi"}], model="my-model",
                      max_tokens=2)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["model"], "my-model")

    def test_chat_completion_shape_and_usage(self):
        server = self.serve()
        r = self.chat(server, [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "Hello there"}],
                      max_tokens=6, temperature=0, unknown_field={"ignored": True})
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertTrue(body["id"].startswith("chatcmpl-"))
        self.assertEqual(body["object"], "chat.completion")
        self.assertEqual(body["model"], "tiny-chat")
        choice = body["choices"][0]
        self.assertEqual(choice["index"], 0)
        self.assertEqual(choice["message"]["role"], "assistant")
        self.assertIsInstance(choice["message"]["content"], str)
        self.assertIn(choice["finish_reason"], ("stop", "length"))
        usage = body["usage"]
        self.assertGreater(usage["prompt_tokens"], 5)
        self.assertLessEqual(usage["completion_tokens"], 6)
        self.assertEqual(usage["total_tokens"], usage["prompt_tokens"] + usage["completion_tokens"])
        if choice["finish_reason"] == "length":
            self.assertEqual(usage["completion_tokens"], 6)

    def test_streaming_equals_non_streaming(self):
        server = self.serve()
        messages = [{"role": "user", "content": "Count with me"}]
        whole = self.chat(server, messages, max_tokens=12, temperature=0).json()
        r = self.chat(server, messages, max_tokens=12, temperature=0, stream=True,
                      stream_options={"include_usage": True})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type").startswith("text/event-stream"))
        events = sse_events(r.text)
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        text = "".join(c["choices"][0]["delta"].get("content", "")
                       for c in chunks if c["choices"])
        self.assertEqual(text, whole["choices"][0]["message"]["content"])
        finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
        self.assertEqual(len(finals), 1)
        self.assertEqual(finals[0]["choices"][0]["finish_reason"],
                         whole["choices"][0]["finish_reason"])
        usage_chunk = chunks[-1]
        self.assertEqual(usage_chunk["choices"], [])
        self.assertEqual(usage_chunk["usage"]["completion_tokens"],
                         whole["usage"]["completion_tokens"])
        for chunk in chunks:
            self.assertEqual(chunk["object"], "chat.completion.chunk")
            self.assertEqual(chunk["id"], chunks[0]["id"])

    def test_completions_and_logprobs(self):
        server = self.serve()
        r = server.post_json("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 5,
                                                 "temperature": 0, "logprobs": 2})
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["object"], "text_completion")
        choice = body["choices"][0]
        self.assertIsInstance(choice["text"], str)
        self.assertEqual(len(choice["logprobs"]["tokens"]), body["usage"]["completion_tokens"])
        for logprob, top in zip(choice["logprobs"]["token_logprobs"],
                                choice["logprobs"]["top_logprobs"]):
            self.assertLessEqual(logprob, 0)
            self.assertLessEqual(len(top), 2)
        streamed = server.post_json("/v1/completions", {"prompt": "Once upon a time",
                                                        "max_tokens": 5, "temperature": 0,
                                                        "stream": True})
        events = sse_events(streamed.text)
        self.assertEqual(events[-1], "[DONE]")
        text = "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1])
        self.assertEqual(text, choice["text"])
        # Chat logprobs: the chosen token and alternatives.
        chat = self.chat(server, [{"role": "user", "content": "x"}], max_tokens=3,
                         temperature=0, logprobs=True, top_logprobs=2).json()
        content = chat["choices"][0]["logprobs"]["content"]
        self.assertEqual(len(content), chat["usage"]["completion_tokens"])
        self.assertEqual(content[0]["top_logprobs"][0]["token"], content[0]["token"])

    def test_embeddings_float_and_base64(self):
        server = self.serve()
        r = server.post_json("/v1/embeddings", {"input": ["first text", "second"],
                                                "model": "tiny-embed"})
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["object"], "list")
        self.assertEqual([d["index"] for d in body["data"]], [0, 1])
        vector = body["data"][0]["embedding"]
        self.assertGreater(len(vector), 8)
        self.assertAlmostEqual(sum(v * v for v in vector), 1.0, places=3)
        self.assertGreater(body["usage"]["prompt_tokens"], 2)
        b64 = server.post_json("/v1/embeddings", {"input": "first text",
                                                  "encoding_format": "base64"}).json()
        raw = base64.b64decode(b64["data"][0]["embedding"])
        decoded = struct.unpack("<%df" % (len(raw) // 4), raw)
        self.assertEqual(len(decoded), len(vector))
        for a, b in zip(decoded, vector):
            self.assertAlmostEqual(a, b, places=5)
        for bad in ({"input": ""}, {"input": []}, {"input": [1, 2]}, {},
                    {"input": "x", "encoding_format": "hex"}):
            e = server.post_json("/v1/embeddings", bad)
            self.assertEqual(e.status, 400, (bad, e))
            self.assertEqual(e.json()["error"]["type"], "invalid_request_error")
        self.assertEqual(server.post_json("/v1/embeddings",
                                          {"input": "x", "model": "nope"}).status, 404)

    def test_errors_are_openai_shaped(self):
        server = self.serve()
        cases = [
            (server.request("POST", "/v1/chat/completions", body=b"{not json",
                            headers={"Content-Type": "application/json"}), 400, None),
            (self.chat(server, [{"role": "user", "content": "x"}], temperature="hot"), 400,
             "temperature"),
            (self.chat(server, [{"role": "user", "content": "x"}], max_tokens=0), 400,
             "max_tokens"),
            (self.chat(server, [{"role": "user", "content": "x"}], n=2), 400, "n"),
            (self.chat(server, [{"role": "wizard", "content": "x"}]), 400, "messages[0].role"),
            (self.chat(server, [{"role": "user"}]), 400, "messages[0].content"),
            (self.chat(server, []), 400, "messages"),
            (server.post_json("/v1/chat/completions", {}), 400, "messages"),
            (self.chat(server, [{"role": "user", "content": "x"}], model="gpt-4o"), 404, "model"),
            (self.chat(server, [{"role": "user", "content": "x"}], stop=[1]), 400, "stop"),
            (self.chat(server, [{"role": "user", "content": "x"}], top_logprobs=3), 400,
             "top_logprobs"),
            (self.chat(server, [{"role": "user", "content": "x"}],
                       response_format={"type": "xml"}), 400, "response_format.type"),
            (server.post_json("/v1/completions", {"prompt": 5}), 400, "prompt"),
        ]
        for response, status, param in cases:
            self.assertEqual(response.status, status, response)
            error = response.json()["error"]
            self.assertEqual(set(error), {"message", "type", "param", "code"}, error)
            self.assertTrue(error["message"])
            if param:
                self.assertEqual(error["param"], param, error)
        # A prompt longer than the context.
        long_prompt = "word " * 5000
        r = server.post_json("/v1/completions", {"prompt": long_prompt, "max_tokens": 1})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"]["code"], "context_length_exceeded")

    def test_16_concurrent_greedy_requests_equal_sequential_ones(self):
        server = self.serve("--parallel", "16")
        prompts = ["Request number %d: tell me about %s" % (i, "x" * i) for i in range(16)]

        def ask(prompt):
            r = self.chat(server, [{"role": "user", "content": prompt}], max_tokens=10,
                          temperature=0)
            self.assertEqual(r.status, 200, r)
            return r.json()["choices"][0]["message"]["content"]

        sequential = [ask(p) for p in prompts]
        results = [None] * len(prompts)

        def worker(index):
            results[index] = ask(prompts[index])

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        self.assertEqual(results, sequential)

    def test_full_queue_answers_429_with_retry_after(self):
        server = self.serve("--parallel", "1", "--max-queue", "1")
        statuses = []
        lock = threading.Lock()

        def worker():
            r = self.chat(server, [{"role": "user", "content": "go"}], max_tokens=200,
                          temperature=0)
            with lock:
                statuses.append((r.status, r.header("retry-after"),
                                 r.json()["error"]["type"] if r.status != 200 else None))

        threads = [threading.Thread(target=worker) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        rejected = [s for s in statuses if s[0] == 429]
        self.assertTrue(rejected, statuses)
        for status, retry_after, error_type in rejected:
            self.assertEqual(retry_after, "1")
            self.assertEqual(error_type, "rate_limit_error")
        self.assertIn(200, [s[0] for s in statuses])
        metrics = server.get("/metrics").text
        self.assertRegex(metrics, r'xnai_llm_rejections_total\{reason="queue_full"\} [1-9]')

    def test_client_leaving_mid_stream_frees_its_sequence(self):
        server = self.serve()
        body = json.dumps({"messages": [{"role": "user", "content": "talk forever"}],
                           "stream": True, "temperature": 0, "max_tokens": 3000}).encode()
        sock = socket.create_connection((server.host, server.port), timeout=30)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                     % len(body) + body)
        received = b""
        while received.count(b"data: ") < 3:
            chunk = sock.recv(4096)
            self.assertTrue(chunk, "server closed the stream early")
            received += chunk
        sock.close()
        deadline = time.monotonic() + 20
        cancelled = active = None
        while time.monotonic() < deadline:
            metrics = server.get("/metrics").text
            cancelled = self.metric(metrics, 'xnai_llm_requests_total{outcome="cancelled"}')
            active = self.metric(metrics, "xnai_llm_active_sequences")
            if cancelled == 1 and active == 0:
                break
            time.sleep(0.1)
        self.assertEqual(cancelled, 1)
        self.assertEqual(active, 0)

    def test_json_schema_output_is_valid(self):
        server = self.serve()
        schema = {"type": "object",
                  "properties": {"answer": {"enum": ["yes", "no"]},
                                 "score": {"type": "integer"}},
                  "required": ["answer", "score"], "additionalProperties": False}
        r = self.chat(server, [{"role": "user", "content": "Answer in JSON"}], temperature=0,
                      max_tokens=60,
                      response_format={"type": "json_schema",
                                       "json_schema": {"name": "verdict", "schema": schema}})
        self.assertEqual(r.status, 200, r)
        choice = r.json()["choices"][0]
        content = choice["message"]["content"]
        if choice["finish_reason"] == "stop":
            value = json.loads(content)
            self.assertIn(value["answer"], ("yes", "no"))
            self.assertIsInstance(value["score"], int)
        else:
            # Cut by max_tokens inside the (endless) integer: still a valid prefix.
            compact = "".join(content.split())
            self.assertTrue(compact.startswith('{"answer"'), content)
        bad = self.chat(server, [{"role": "user", "content": "x"}],
                        response_format={"type": "json_schema",
                                         "json_schema": {"name": "x",
                                                         "schema": {"type": "object",
                                                                    "patternProperties": {}}}})
        self.assertEqual(bad.status, 400, bad)
        self.assertIn("patternProperties", bad.json()["error"]["message"])

    def test_memory_budget_too_small_is_refused_at_start(self):
        r = subprocess.run([find_binary(), "serve", "--listen", "127.0.0.1:0", "--data",
                            self.path("data"), "--model", MODELS["tiny-chat"],
                            "--memory-budget", "50M"],
                           capture_output=True, env=clean_env(), timeout=60)
        self.assertEqual(r.returncode, 2, r)  # a flag value that cannot work: usage error
        self.assertIn(b"memory budget of 50 MiB is too small", r.stderr)
        bad = subprocess.run([find_binary(), "serve", "--listen", "127.0.0.1:0", "--data",
                              self.path("data"), "--model", MODELS["tiny-chat"],
                              "--memory-budget", "lots"],
                             capture_output=True, env=clean_env(), timeout=60)
        self.assertEqual(bad.returncode, 2, bad)
        self.assertIn(b"not a size", bad.stderr)

    def stream_many(self, server, count, max_tokens):
        """`count` concurrent streaming chat requests; each result is
        (status, retry_after, saw_done, text)."""
        results = [None] * count

        def worker(index):
            body = json.dumps({"messages": [{"role": "user", "content": "client %d" % index}],
                               "stream": True, "temperature": 0,
                               "max_tokens": max_tokens}).encode()
            conn = server.connection(timeout=300)
            try:
                conn.request("POST", "/v1/chat/completions", body=body,
                             headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read().decode("utf-8", errors="replace")
                done = response.status == 200 and sse_events(payload)[-1] == "[DONE]"
                results[index] = (response.status, response.getheader("Retry-After"), done,
                                  payload)
            except OSError as error:
                results[index] = (None, None, False, repr(error))
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        return results

    def test_64_concurrent_streams_all_complete(self):
        server = self.serve("--parallel", "16", "--max-queue", "64")
        results = self.stream_many(server, 64, max_tokens=16)
        self.assertEqual([r[0] for r in results], [200] * 64, [r for r in results if r[0] != 200])
        self.assertTrue(all(r[2] for r in results), "a stream did not end with [DONE]")
        metrics = server.get("/metrics").text
        finished = sum(self.metric(metrics, 'xnai_llm_requests_total{outcome="%s"}' % o) or 0
                       for o in ("stop", "length"))
        self.assertEqual(finished, 64)
        self.assertEqual(self.metric(metrics, "xnai_llm_active_sequences"), 0)

    def test_small_budget_turns_the_excess_away_and_rss_stays_under_it(self):
        # Weights (3 MiB), batch scratch (~4 MiB) and the fixed 96 MiB leave
        # room for ~20 KV pages of 64 tokens: fewer than 64 clients need.
        budget = 106 << 20
        server = self.start_server(args=["--model", MODELS["tiny-chat"], "--threads", "2",
                                         "--parallel", "8", "--max-queue", "8",
                                         "--memory-budget", "106M"])
        plan = [e for e in server.log_events() if e.get("event") == "llm.memory_plan"]
        self.assertTrue(plan and plan[0]["kv_pages"] < 64, plan)
        peak = [0]
        stop = threading.Event()

        def sample_rss():
            while not stop.is_set():
                value = self.metric(server.get("/metrics").text, "process_resident_memory_bytes")
                peak[0] = max(peak[0], value or 0)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample_rss)
        sampler.start()
        try:
            results = self.stream_many(server, 64, max_tokens=24)
        finally:
            stop.set()
            sampler.join(30)
        statuses = [r[0] for r in results]
        self.assertGreaterEqual(statuses.count(200), 4, statuses)
        self.assertGreater(statuses.count(429), 0, statuses)
        self.assertEqual(set(statuses) - {200, 429, 503}, set(), statuses)
        for status, retry_after, done, _ in results:
            if status == 200:
                self.assertTrue(done)
            else:
                self.assertEqual(retry_after, "1")
        self.assertGreater(peak[0], 0)
        self.assertLess(peak[0], budget, "peak RSS %d above the budget" % peak[0])

    @staticmethod
    def metric(text, series):
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return None


if __name__ == "__main__":
    unittest.main()
