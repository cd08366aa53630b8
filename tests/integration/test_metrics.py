"""/metrics: Prometheus text that counts requests by route and status, has
the process metrics, and passes `promtool check metrics`."""

import os
import re
import shutil
import subprocess
import time
import unittest

from harness import XnaiTestCase

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_samples(text):
    """[(name, {label: value}, float value)] of every sample line."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("not a Prometheus sample line: %r" % line)
        labels = dict(LABEL_RE.findall(m.group(3) or ""))
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples


class MetricsTest(XnaiTestCase):
    def scrape(self, server, until=None, timeout=3.0):
        """The /metrics text. With `until` (a predicate over the parsed
        samples), scrapes again until it holds: the server records a request
        after writing its response, so a scrape may briefly lag the client."""
        deadline = time.monotonic() + timeout
        while True:
            r = server.get("/metrics")
            self.assertStatus(r, 200)
            self.assertTrue(r.header("content-type").startswith("text/plain"),
                            r.header("content-type"))
            if until is None or until(parse_samples(r.text)) or time.monotonic() > deadline:
                return r.text
            time.sleep(0.05)

    def test_requests_counted_by_route_and_status(self):
        server = self.start_server()
        for _ in range(3):
            self.assertStatus(server.get("/health"), 200)
        self.assertStatus(server.get("/api/search?q="), 400)
        self.assertStatus(server.get("/api/collections/nosuch"), 404)
        self.assertStatus(server.get("/definitely/not/a/route"), 404)
        def total(samples, route, status):
            return sum(v for name, labels, v in samples if name == "xnai_http_requests_total"
                       and labels.get("route") == route and labels.get("status") == str(status))

        text = self.scrape(server, until=lambda s: total(s, "/health", 200) >= 3
                           and total(s, "/api/collections/{name}", 404) >= 1)
        samples = parse_samples(text)
        requests = [(labels, v) for name, labels, v in samples
                    if name == "xnai_http_requests_total"]
        self.assertTrue(requests, "no xnai_http_requests_total samples:\n" + text[:3000])
        for labels, _ in requests:
            self.assertIn("route", labels)
            self.assertIn("status", labels)

        def count(route, status):
            return sum(v for labels, v in requests
                       if labels["route"] == route and labels["status"] == str(status))

        self.assertGreaterEqual(count("/health", 200), 3, requests)
        self.assertGreaterEqual(count("/api/search", 400), 1, requests)
        # The pattern, not the raw path, is the label (bounded cardinality).
        self.assertGreaterEqual(count("/api/collections/{name}", 404), 1, requests)
        for labels, _ in requests:
            self.assertNotIn("nosuch", labels["route"])
            self.assertNotIn("definitely", labels["route"])
        self.assertTrue(any(labels["status"] == "404" for labels, _ in requests))
        # Counters go up between scrapes.
        before = count("/health", 200)
        server.get("/health")
        samples = parse_samples(self.scrape(server,
                                            until=lambda s: total(s, "/health", 200) > before))
        requests = [(labels, v) for name, labels, v in samples
                    if name == "xnai_http_requests_total"]
        self.assertGreater(count("/health", 200), before)
        self.assertIn("# TYPE xnai_http_requests_total counter", text)

    def test_process_metrics_present(self):
        server = self.start_server()
        samples = {name: v for name, labels, v in parse_samples(self.scrape(server))
                   if not labels}
        self.assertIn("process_resident_memory_bytes", samples)
        self.assertIn("process_open_fds", samples)
        rss = samples["process_resident_memory_bytes"]
        self.assertGreater(rss, 1 << 20)
        self.assertLess(rss, 1 << 30)
        self.assertGreaterEqual(samples["process_open_fds"], 3)
        with open("/proc/%d/status" % server.proc.pid) as f:
            vmrss_kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        self.assertLess(abs(rss - vmrss_kb * 1024), 64 << 20)

    def test_latency_histogram_is_consistent(self):
        server = self.start_server()
        for _ in range(5):
            server.get("/health")
        def health_inf(samples):
            return max([v for n, l, v in samples if n.startswith("xnai_http_request")
                        and n.endswith("_bucket") and l.get("le") == "+Inf"
                        and l.get("route") == "/health"] or [0])

        samples = parse_samples(self.scrape(server, until=lambda s: health_inf(s) >= 5))
        buckets = [(l, v) for n, l, v in samples if n.endswith("_bucket")
                   and n.startswith("xnai_http_request")]
        self.assertTrue(buckets, "no HTTP latency histogram")
        inf = [v for l, v in buckets if l.get("le") == "+Inf" and l.get("route") == "/health"]
        self.assertTrue(inf, "no +Inf bucket for /health")
        self.assertGreaterEqual(max(inf), 5)
        health = sorted(((float(l["le"]), v) for l, v in buckets
                         if l.get("route") == "/health"), key=lambda p: p[0])
        values = [v for _, v in health]
        self.assertEqual(values, sorted(values), "histogram buckets are not cumulative")
        counts = [v for n, l, v in samples if n.startswith("xnai_http_request")
                  and n.endswith("_count") and l.get("route") == "/health"]
        self.assertEqual(counts, [values[-1]], "_count differs from the +Inf bucket")

    def test_passes_promtool_check_metrics(self):
        promtool = shutil.which("promtool") or ("/usr/bin/promtool"
                                               if os.path.exists("/usr/bin/promtool") else None)
        if promtool is None:
            self.fail("promtool not found (Debian package 'prometheus'): run scripts/install-deps")
        server = self.start_server()
        server.get("/health")
        server.get("/nope")
        server.get("/api/search?q=hello")
        server.post_json("/api/collections", {"name": "metrics-check"})
        server.post_json("/api/documents", {"text": "metrics words here"})
        text = self.scrape(server)
        check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, "promtool check metrics failed:\n%s%s\n---\n%s"
                         % (check.stdout.decode(), check.stderr.decode(), text[:4000]))


if __name__ == "__main__":
    unittest.main()
