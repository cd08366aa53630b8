"""A remote model: `xnai serve --remote-url` (server B) in front of another
xnai (server A) serving a tiny synthesized model. B answers exactly as A
does, passes A's 4xx errors through, fails with 503 when A is gone, opens
its circuit breaker after --breaker-failures and then fails fast without
trying A, recovers once A is back, and cancels A's generation when B's
client leaves."""

import json
import os
import socket
import subprocess
import tempfile
import time
import unittest

from harness import XnaiTestCase, clean_env, find_binary
from test_openai_api import sse_events

MODELS = {}


def setUpModule():
    directory = tempfile.mkdtemp(prefix="xnai-remote-models-")
    path = os.path.join(directory, "tiny.gguf")
    r = subprocess.run([find_binary(), "model", "synth", "--preset", "tiny-qwen3", "--type",
                        "Q8_0", "--out", path], capture_output=True, env=clean_env(), timeout=120)
    if r.returncode != 0:
        raise RuntimeError("synth failed: " + r.stderr.decode())
    MODELS["tiny"] = path
    embed_path = os.path.join(directory, "tiny-embed.gguf")
    r = subprocess.run([find_binary(), "model", "synth", "--preset", "tiny-bert", "--type",
                        "F16", "--out", embed_path], capture_output=True, env=clean_env(),
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError("synth failed: " + r.stderr.decode())
    MODELS["tiny-embed"] = embed_path
    MODELS["dir"] = directory


def tearDownModule():
    import shutil
    shutil.rmtree(MODELS.get("dir", ""), ignore_errors=True)


def metric(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


HELLO = [{"role": "user", "content": "Tell me about the sea"}]


class RemoteLlmTest(XnaiTestCase):
    def start_upstream(self, listen="127.0.0.1:0", data_dir=None):
        return self.start_server(args=["--model", MODELS["tiny"], "--threads", "2"],
                                 listen=listen, data_dir=data_dir)

    def start_proxy(self, upstream, *extra):
        return self.start_server(args=["--remote-url",
                                       "http://127.0.0.1:%d/v1" % upstream.port, *extra])

    def chat(self, server, messages=HELLO, **fields):
        return server.post_json("/v1/chat/completions", {"messages": messages, **fields},
                                timeout=120)

    def remote_metric(self, server, outcome):
        text = server.get("/metrics").text
        return metric(text, 'xnai_llm_remote_requests_total{model="tiny",outcome="%s"}'
                      % outcome) or 0

    def remote_status(self, server):
        r = server.get("/health")
        self.assertEqual(r.status, 200, r)
        remote = [m for m in r.json()["models"] if m["kind"] == "remote"]
        self.assertEqual(len(remote), 1, r)
        return remote[0]

    def test_remote_embeddings_equal_the_upstreams_and_fail_cleanly(self):
        upstream = self.start_server(args=["--embed-model", MODELS["tiny-embed"], "--threads",
                                           "2"])
        proxy = self.start_server(args=["--remote-embed-url",
                                        "http://127.0.0.1:%d/v1" % upstream.port,
                                        "--breaker-failures", "2"])
        models = [m["id"] for m in proxy.get("/v1/models").json()["data"]]
        self.assertEqual(models, ["tiny-embed"])
        texts = {"input": ["first text", "a second one"]}
        want = upstream.post_json("/v1/embeddings", texts).json()
        got = proxy.post_json("/v1/embeddings", texts)
        self.assertEqual(got.status, 200, got)
        for a, b in zip(got.json()["data"], want["data"]):
            self.assertEqual(len(a["embedding"]), len(b["embedding"]))
            for x, y in zip(a["embedding"], b["embedding"]):
                self.assertAlmostEqual(x, y, places=5)
        self.assertEqual(got.json()["usage"], want["usage"])
        health = {m["id"]: m for m in proxy.get("/health").json()["models"]}
        self.assertEqual(health["tiny-embed"]["kind"], "remote-embedding")
        self.assertEqual(health["tiny-embed"]["dim"], len(want["data"][0]["embedding"]))
        # The upstream's 400 passes through.
        bad = proxy.post_json("/v1/embeddings", {"input": ["x" * 100000]})
        self.assertEqual(bad.status, 400, bad)
        # Upstream gone: 503, then the breaker opens and fails fast.
        upstream.kill()
        for _ in range(2):
            down = proxy.post_json("/v1/embeddings", texts)
            self.assertEqual(down.status, 503, down)
        fast = proxy.post_json("/v1/embeddings", texts)
        self.assertEqual(fast.status, 503, fast)
        self.assertIn("circuit open", fast.json()["error"]["message"])
        # Both an embedding model and a remote one: refused at start.
        r = subprocess.run([find_binary(), "serve", "--listen", "127.0.0.1:0", "--data",
                            self.path("both"), "--embed-model", MODELS["tiny-embed"],
                            "--remote-embed-url", "http://127.0.0.1:9/v1"],
                           capture_output=True, env=clean_env(), timeout=60)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn(b"give one", r.stderr)

    def test_answers_like_the_upstream(self):
        a = self.start_upstream()
        b = self.start_proxy(a)
        models = b.get("/v1/models").json()["data"]
        self.assertEqual([m["id"] for m in models], ["tiny"])  # the upstream's first model
        status = self.remote_status(b)
        self.assertEqual(status["id"], "tiny")
        self.assertEqual(status["url"], "http://127.0.0.1:%d/v1" % a.port)
        self.assertEqual(status["breaker"], "closed")

        direct = self.chat(a, max_tokens=12, temperature=0)
        via = self.chat(b, max_tokens=12, temperature=0)
        self.assertEqual(direct.status, 200, direct)
        self.assertEqual(via.status, 200, via)
        want, got = direct.json(), via.json()
        self.assertEqual(got["object"], "chat.completion")
        self.assertEqual(got["model"], "tiny")
        self.assertEqual(got["choices"][0]["message"]["content"],
                         want["choices"][0]["message"]["content"])
        self.assertEqual(got["choices"][0]["finish_reason"], want["choices"][0]["finish_reason"])
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            self.assertEqual(got["usage"][key], want["usage"][key], key)

        streamed = self.chat(b, max_tokens=12, temperature=0, stream=True,
                             stream_options={"include_usage": True})
        self.assertEqual(streamed.status, 200, streamed)
        self.assertTrue(streamed.header("content-type").startswith("text/event-stream"))
        events = sse_events(streamed.text)
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "")
                       for c in chunks if c["choices"])
        self.assertEqual(text, want["choices"][0]["message"]["content"])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"],
                         want["usage"]["completion_tokens"])
        self.assertEqual(chunks[-1]["usage"]["prompt_tokens"], want["usage"]["prompt_tokens"])

        # Logprobs and text completions come through too.
        direct = self.chat(a, max_tokens=4, temperature=0, logprobs=True, top_logprobs=2).json()
        via = self.chat(b, max_tokens=4, temperature=0, logprobs=True, top_logprobs=2).json()
        self.assertEqual(via["choices"][0]["logprobs"]["content"],
                         direct["choices"][0]["logprobs"]["content"])
        body = {"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0}
        direct = a.post_json("/v1/completions", body).json()
        via = b.post_json("/v1/completions", body).json()
        self.assertEqual(via["choices"][0]["text"], direct["choices"][0]["text"])
        self.assertEqual(via["usage"]["completion_tokens"], direct["usage"]["completion_tokens"])

        metrics = b.get("/metrics").text
        self.assertEqual(metric(metrics, 'xnai_llm_remote_breaker_state{model="tiny"}'), 0)
        self.assertEqual(self.remote_metric(b, "ok"), 4)

    def test_local_and_remote_models_side_by_side(self):
        a = self.start_upstream()
        b = self.start_proxy(a, "--remote-alias", "far", "--model", MODELS["tiny"])
        self.assertEqual([m["id"] for m in b.get("/v1/models").json()["data"]], ["tiny", "far"])
        kinds = {m["id"]: m["kind"] for m in b.get("/health").json()["models"]}
        self.assertEqual(kinds, {"tiny": "local", "far": "remote"})
        local = self.chat(b, model="tiny", max_tokens=6, temperature=0)
        remote = self.chat(b, model="far", max_tokens=6, temperature=0)
        self.assertEqual(local.status, 200, local)
        self.assertEqual(remote.status, 200, remote)
        self.assertEqual(remote.json()["model"], "far")
        self.assertEqual(remote.json()["choices"][0]["message"]["content"],
                         local.json()["choices"][0]["message"]["content"])
        # Two models with one id are refused at start.
        r = subprocess.run([find_binary(), "serve", "--listen", "127.0.0.1:0", "--data",
                            self.path("dup"), "--model", MODELS["tiny"], "--remote-url",
                            "http://127.0.0.1:%d/v1" % a.port],
                           capture_output=True, env=clean_env(), timeout=60)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn(b"have the id 'tiny'", r.stderr)

    def test_upstream_client_errors_pass_through(self):
        a = self.start_upstream()
        b = self.start_proxy(a)
        # B's own 404 for a model it does not serve.
        r = self.chat(b, model="gpt-4o", max_tokens=2)
        self.assertErrorBody(r, 404)
        # A's 400: a prompt longer than A's context, with A's message.
        body = {"prompt": "word " * 5000, "max_tokens": 1}
        direct = a.post_json("/v1/completions", body)
        via = b.post_json("/v1/completions", body)
        self.assertErrorBody(direct, 400)
        err = self.assertErrorBody(via, 400)
        self.assertEqual(err["message"], direct.json()["error"]["message"])
        self.assertEqual(err["code"], "context_length_exceeded")
        # A's 404 for a remote model name it does not have.
        ghost = self.start_proxy(a, "--remote-model", "no-such-model", "--remote-alias", "ghost")
        direct = self.chat(a, model="no-such-model", max_tokens=2)
        self.assertErrorBody(direct, 404)
        via = self.chat(ghost, max_tokens=2)
        self.assertTrue(400 <= via.status < 500, via)
        err = self.assertErrorBody(via)
        self.assertEqual(err["message"], direct.json()["error"]["message"])
        # None of that is the upstream failing.
        for server in (b, ghost):
            status = self.remote_status(server)
            self.assertEqual(status["breaker"], "closed")
            self.assertEqual(status["failures"], 0)

    def kill_and_fail(self, a, b, failures):
        """Kills A; B's next `failures` requests are 503s (connection refused)."""
        a.kill()
        for _ in range(failures):
            r = self.chat(b, max_tokens=4)
            err = self.assertErrorBody(r, 503, message_contains="unavailable")
            self.assertEqual(err["type"], "server_error")
            self.assertIn("127.0.0.1:%d" % a.port, err["message"])
            self.assertEqual(r.header("retry-after"), "1")

    def test_breaker_opens_and_fails_fast(self):
        a = self.start_upstream()
        b = self.start_proxy(a, "--breaker-failures", "2", "--breaker-open-seconds", "60")
        self.assertEqual(self.chat(b, max_tokens=2).status, 200)
        self.kill_and_fail(a, b, 2)
        self.assertEqual(self.remote_metric(b, "unreachable"), 2)
        status = self.remote_status(b)
        self.assertEqual(status["breaker"], "open")
        self.assertEqual(status["consecutive_failures"], 2)
        self.assertEqual(status["opens"], 1)
        self.assertGreater(status["retry_in_seconds"], 0)
        metrics = b.get("/metrics").text
        self.assertEqual(metric(metrics, 'xnai_llm_remote_breaker_state{model="tiny"}'), 2)
        # Open: refused at once, and no connection attempt is made (the
        # metrics count no new unreachable request).
        for _ in range(3):
            started = time.monotonic()
            r = self.chat(b, max_tokens=4)
            elapsed = time.monotonic() - started
            self.assertErrorBody(r, 503, message_contains="circuit open")
            self.assertLess(elapsed, 5.0)  # lenient: the proof is in the metrics
        self.assertEqual(self.remote_metric(b, "unreachable"), 2)
        self.assertEqual(self.remote_metric(b, "rejected_circuit_open"), 3)
        self.assertEqual(self.remote_status(b)["rejections"], 3)
        # Liveness does not depend on the upstream.
        self.assertEqual(b.get("/health").json()["status"], "ok")

    def test_breaker_recovers_when_the_upstream_returns(self):
        a = self.start_upstream()
        b = self.start_proxy(a, "--breaker-failures", "2", "--breaker-open-seconds", "1")
        want = self.chat(b, max_tokens=6, temperature=0).json()["choices"][0]["message"]
        self.kill_and_fail(a, b, 2)
        self.assertIn(self.remote_status(b)["breaker"], ("open", "half_open"))
        a2 = self.start_upstream(listen="127.0.0.1:%d" % a.port, data_dir=a.data_dir)
        self.assertEqual(a2.port, a.port)
        deadline = time.monotonic() + 60
        last = None
        while time.monotonic() < deadline:
            last = self.chat(b, max_tokens=6, temperature=0)
            if last.status == 200:
                break
            self.assertEqual(last.status, 503, last)
            time.sleep(0.2)
        self.assertEqual(last.status, 200, last)
        self.assertEqual(last.json()["choices"][0]["message"], want)
        status = self.remote_status(b)
        self.assertEqual(status["breaker"], "closed")
        self.assertEqual(status["consecutive_failures"], 0)
        metrics = b.get("/metrics").text
        self.assertEqual(metric(metrics, 'xnai_llm_remote_breaker_state{model="tiny"}'), 0)

    def test_client_leaving_cancels_the_upstream_generation(self):
        a = self.start_upstream()
        b = self.start_proxy(a)
        body = json.dumps({"messages": [{"role": "user", "content": "talk forever"}],
                           "stream": True, "temperature": 0, "max_tokens": 3000}).encode()
        sock = socket.create_connection((b.host, b.port), timeout=60)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                     % len(body) + body)
        received = b""
        while received.count(b"data: ") < 3:
            chunk = sock.recv(4096)
            self.assertTrue(chunk, "B closed the stream early: %r" % received)
            received += chunk
        sock.close()
        deadline = time.monotonic() + 30
        cancelled = active = None
        while time.monotonic() < deadline:
            metrics = a.get("/metrics").text
            cancelled = metric(metrics, 'xnai_llm_requests_total{outcome="cancelled"}')
            active = metric(metrics, "xnai_llm_active_sequences")
            if cancelled == 1 and active == 0:
                break
            time.sleep(0.1)
        self.assertEqual(cancelled, 1)
        self.assertEqual(active, 0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (self.remote_metric(b, "cancelled") != 1 or
                                               self.remote_status(b)["active_requests"] != 0):
            time.sleep(0.1)
        self.assertEqual(self.remote_metric(b, "cancelled"), 1)
        self.assertEqual(self.remote_status(b)["active_requests"], 0)
        self.assertEqual(self.remote_status(b)["failures"], 0)


if __name__ == "__main__":
    unittest.main()
