"""Liveness, readiness, the API description, routing errors, request ids and
keep-alive, against the real binary."""

import re
import time
import unittest

from harness import XnaiTestCase, run_cli

# Every /api route the server must describe in /openapi.json (path -> methods).
API_ROUTES = {
    "/api/collections": {"get", "post"},
    "/api/collections/{name}": {"get", "delete"},
    "/api/documents": {"get", "post"},
    "/api/documents/{id}": {"get", "delete"},
    "/api/search": {"get"},
}
OPS_ROUTES = {"/health": {"get"}, "/ready": {"get"}, "/metrics": {"get"},
              "/openapi.json": {"get"}}


class HealthTest(XnaiTestCase):
    def test_health_reports_status_version_uptime(self):
        server = self.start_server()
        r = server.get("/health")
        self.assertStatus(r, 200)
        self.assertIn("application/json", r.header("content-type"))
        body = r.json()
        self.assertEqual(body["status"], "ok")
        version = run_cli(["version"])
        self.assertEqual(version.returncode, 0, version.stderr)
        self.assertEqual(version.stdout.decode().strip(), "xnai " + body["version"])
        self.assertRegex(body["version"], r"^\d+\.\d+\.\d+")
        self.assertIsInstance(body["uptime_seconds"], (int, float))
        self.assertGreaterEqual(body["uptime_seconds"], 0)
        self.assertLess(body["uptime_seconds"], 60)
        time.sleep(0.3)
        later = server.get("/health").json()["uptime_seconds"]
        self.assertGreater(later, body["uptime_seconds"])

    def test_ready_is_200_once_ready(self):
        server = self.start_server(wait_ready=False)
        server.wait_ready(timeout=10)
        r = server.get("/ready")
        self.assertStatus(r, 200)
        self.assertEqual(r.json().get("status"), "ready")
        # Health stays open and reports readiness too.
        self.assertTrue(server.get("/health").json().get("ready", True))

    def test_openapi_lists_every_route(self):
        server = self.start_server()
        r = server.get("/openapi.json")
        self.assertStatus(r, 200)
        doc = r.json()
        self.assertTrue(str(doc.get("openapi", "")).startswith("3."), doc.get("openapi"))
        self.assertIn("version", doc.get("info", {}))
        paths = doc["paths"]
        for route, methods in {**API_ROUTES, **OPS_ROUTES}.items():
            self.assertIn(route, paths, "route missing from /openapi.json")
            described = {m.lower() for m in paths[route].keys()}
            self.assertTrue(methods <= described,
                            "%s: want methods %s, described %s" % (route, methods, described))
            for m in methods:
                op = paths[route][m] if m in paths[route] else paths[route][m.upper()]
                self.assertTrue(op.get("summary"), "%s %s has no summary" % (m, route))
        # And nothing under /api that the server does not actually serve.
        for route, item in paths.items():
            if not route.startswith("/api/"):
                continue
            probe = route.replace("{name}", "nosuchcollection").replace("{id}", "999999")
            for method in item:
                if method.lower() not in ("get", "delete"):
                    continue
                resp = server.request(method.upper(), probe + ("?q=x" if "search" in probe
                                                               else ""))
                self.assertNotIn(resp.status, (405, 500), "%s %s -> %r" % (method, probe, resp))

    def test_unknown_route_is_404_with_error_body(self):
        server = self.start_server()
        for path in ("/nope", "/api/nope", "/api/collections/a/b/c", "/health/extra"):
            r = server.get(path)
            self.assertErrorBody(r, 404)
        r = server.request("POST", "/api/unknown", json_body={"x": 1})
        self.assertErrorBody(r, 404)

    def test_wrong_method_is_405_with_allow(self):
        server = self.start_server()
        cases = {
            ("DELETE", "/health"): {"GET"},
            ("POST", "/ready"): {"GET"},
            ("PUT", "/api/collections"): {"GET", "POST"},
            ("PATCH", "/api/documents/1"): {"GET", "DELETE"},
            ("POST", "/api/search"): {"GET"},
        }
        for (method, path), allowed in cases.items():
            r = server.request(method, path, body=b"{}",
                               headers={"Content-Type": "application/json"})
            self.assertErrorBody(r, 405)
            allow = r.header("allow")
            self.assertIsNotNone(allow, "%s %s: no Allow header" % (method, path))
            got = {m.strip().upper() for m in allow.split(",") if m.strip()}
            self.assertTrue(allowed <= got, "%s %s: Allow %r" % (method, path, allow))
            self.assertNotIn(method, got)

    def test_request_id_is_echoed_or_generated(self):
        server = self.start_server()
        r = server.get("/health", headers={"X-Request-Id": "it-test-abc123"})
        self.assertEqual(r.header("x-request-id"), "it-test-abc123")
        r1 = server.get("/health")
        r2 = server.get("/health")
        self.assertTrue(r1.header("x-request-id"))
        self.assertNotEqual(r1.header("x-request-id"), r2.header("x-request-id"))
        # The id appears in the request log line.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and "it-test-abc123" not in server.log():
            time.sleep(0.05)
        self.assertIn("it-test-abc123", server.log())

    def test_keep_alive_two_requests_one_connection(self):
        server = self.start_server()
        conn = server.connection()
        try:
            conn.request("GET", "/health")
            r1 = conn.getresponse()
            r1.read()
            self.assertEqual(r1.status, 200)
            self.assertNotEqual((r1.getheader("connection") or "").lower(), "close")
            sock = conn.sock
            self.assertIsNotNone(sock, "server closed the connection after one request")
            local = sock.getsockname()
            conn.request("GET", "/api/collections")
            r2 = conn.getresponse()
            body = r2.read()
            self.assertEqual(r2.status, 200, body)
            self.assertIs(conn.sock, sock, "second request used a new connection")
            self.assertEqual(conn.sock.getsockname(), local)
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
