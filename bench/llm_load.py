"""Load generator for xnai's OpenAI-compatible API (used by run-benchmarks'
`llm` benchmark): concurrent streaming chat completions, time to first token
per request, aggregate generation throughput.

Python 3 standard library only.
"""

import http.client
import json
import statistics
import threading
import time


def stream_chat(port, messages, max_tokens, timeout=600):
    """One streaming chat completion. Returns a dict: ttft_s (request sent ->
    first content), total_s, completion_tokens, prompt_tokens, cached_tokens,
    status."""
    body = json.dumps({"messages": messages, "stream": True, "temperature": 0,
                       "max_tokens": max_tokens,
                       "stream_options": {"include_usage": True}}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    start = time.monotonic()
    result = {"status": None, "ttft_s": None, "total_s": None, "completion_tokens": 0,
              "prompt_tokens": 0, "cached_tokens": 0}
    try:
        conn.request("POST", "/v1/chat/completions", body=body,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        result["status"] = response.status
        if response.status != 200:
            response.read()
            return result
        buffer = b""
        while True:
            chunk = response.read1(65536) if hasattr(response, "read1") else response.read(4096)
            if not chunk:
                break
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                data = event.decode("utf-8", "replace").strip()
                if not data.startswith("data: "):
                    continue
                payload = data[len("data: "):]
                if payload == "[DONE]":
                    continue
                obj = json.loads(payload)
                if obj.get("choices"):
                    delta = obj["choices"][0].get("delta", {})
                    if delta.get("content") and result["ttft_s"] is None:
                        result["ttft_s"] = time.monotonic() - start
                if obj.get("usage"):
                    usage = obj["usage"]
                    result["completion_tokens"] = usage["completion_tokens"]
                    result["prompt_tokens"] = usage["prompt_tokens"]
                    result["cached_tokens"] = usage.get("prompt_tokens_details", {}).get(
                        "cached_tokens", 0)
        result["total_s"] = time.monotonic() - start
        if result["ttft_s"] is None:
            result["ttft_s"] = result["total_s"]
        return result
    finally:
        conn.close()


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


TOPICS = ("the sea", "a lighthouse", "winter", "a red fox", "the moon", "a small town",
          "an old clock", "the river", "a garden", "a train journey", "the desert", "a violin",
          "the first snow", "a lost key", "the market", "a paper boat")


def concurrent_streams(port, n_streams, max_tokens):
    """`n_streams` requests at once (distinct short prompts, ~20 tokens with
    the chat template). Aggregate generation tok/s = all completion tokens /
    wall time from first send to last end (prompt reading included)."""
    results = [None] * n_streams

    def worker(index):
        prompt = "Tell me a short story about %s, number %d." % (TOPICS[index % len(TOPICS)],
                                                                 index)
        results[index] = stream_chat(port, [{"role": "user", "content": prompt}], max_tokens)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_streams)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    ok = [r for r in results if r and r["status"] == 200]
    tokens = sum(r["completion_tokens"] for r in ok)
    ttft = [r["ttft_s"] for r in ok]
    return {
        "streams": n_streams,
        "ok": len(ok),
        "max_tokens": max_tokens,
        "completion_tokens": tokens,
        "wall_s": wall,
        "aggregate_gen_tok_s": tokens / wall if wall > 0 else 0,
        "ttft_p50_s": percentile(ttft, 0.5),
        "ttft_p99_s": percentile(ttft, 0.99),
        "ttft_mean_s": statistics.mean(ttft) if ttft else None,
    }


def prefix_reuse(port, prefix_words=900, max_tokens=8):
    """The same long system prompt twice with different questions: time to
    first token of the first (cold) and second (prefix cached) request."""
    system = " ".join(("You answer questions about the documents below, citing each source "
                       "by its number. ") for _ in range(prefix_words // 14))
    cold = stream_chat(port, [{"role": "system", "content": system},
                              {"role": "user", "content": "first question"}], max_tokens)
    warm = stream_chat(port, [{"role": "system", "content": system},
                              {"role": "user", "content": "second question"}], max_tokens)
    if cold["status"] != 200 or warm["status"] != 200:
        raise RuntimeError("prefix reuse requests failed: HTTP %s and %s"
                           % (cold["status"], warm["status"]))
    return {"prompt_tokens": warm["prompt_tokens"], "cached_tokens": warm["cached_tokens"],
            "cold_ttft_s": cold["ttft_s"], "warm_ttft_s": warm["ttft_s"],
            "speedup": (cold["ttft_s"] / warm["ttft_s"]) if warm["ttft_s"] else None}
