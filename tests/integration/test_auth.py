"""API keys: /api/* needs the bearer token when one is configured; health
endpoints stay open; listening off loopback without a key is refused."""

import os
import subprocess
import time
import unittest

import harness
from harness import XnaiTestCase, clean_env, unique_word


class AuthTest(XnaiTestCase):
    KEY = "it-key-" + unique_word()

    def test_bearer_required_on_api(self):
        server = self.start_server(env={"XNAI_SERVER_API_KEY": self.KEY})
        for method, path in (("GET", "/api/collections"), ("GET", "/api/documents"),
                             ("GET", "/api/search?q=x"), ("POST", "/api/collections"),
                             ("DELETE", "/api/documents/1")):
            r = server.request(method, path, json_body={"name": "x"} if method == "POST" else None)
            self.assertErrorBody(r, 401)
            self.assertIn("bearer", (r.header("www-authenticate") or "").lower(),
                          "401 without WWW-Authenticate: Bearer")
        for bad in ("Bearer wrong", "Bearer " + self.KEY[:-1], "Bearer " + self.KEY + "x",
                    "Basic " + self.KEY, self.KEY, "Bearer", "bearer  "):
            r = server.get("/api/collections", headers={"Authorization": bad})
            self.assertErrorBody(r, 401)
        ok = {"Authorization": "Bearer " + self.KEY}
        self.assertStatus(server.get("/api/collections", headers=ok), 200)
        r = server.post_json("/api/collections", {"name": "secured"}, headers=ok)
        self.assertStatus(r, 201)
        # Unauthorized writes did nothing.
        names = [c["name"] for c in server.get("/api/collections", headers=ok)
                 .json()["collections"]]
        self.assertEqual(names, ["secured"])
        # Liveness/readiness stay open for orchestrators.
        self.assertStatus(server.get("/health"), 200)
        self.assertStatus(server.get("/ready"), 200)
        # The key never appears in the log.
        self.assertNotIn(self.KEY, server.log())

    def test_key_from_file(self):
        key_file = self.write("api.key", self.KEY + "\n")
        server = self.start_server(env={"XNAI_SERVER_API_KEY_FILE": key_file})
        self.assertErrorBody(server.get("/api/collections"), 401)
        self.assertStatus(server.get("/api/collections",
                                     headers={"Authorization": "Bearer " + self.KEY}), 200)

    def test_no_key_means_open_on_loopback(self):
        server = self.start_server()
        self.assertStatus(server.get("/api/collections"), 200)

    def test_refuses_non_loopback_without_key(self):
        cwd = self.path("cwd")
        os.makedirs(cwd, exist_ok=True)
        start = time.monotonic()
        p = subprocess.Popen([harness.XNAI_BIN, "serve", "--listen", "0.0.0.0:0", "--data",
                              self.path("data")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=cwd, env=clean_env())
        try:
            out, err = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("xnai serve --listen 0.0.0.0:0 without a key kept running")
        self.assertLess(time.monotonic() - start, 5)
        self.assertNotEqual(p.returncode, 0)
        self.assertNotIn(b"serving on", out)
        message = err.decode().lower()
        self.assertIn("auth", message)
        self.assertIn("api_key", message)
        self.assertFalse(os.path.exists(os.path.join(self.path("data"), "xnai.db")))
        # Same through the environment variable.
        p = subprocess.run([harness.XNAI_BIN, "serve", "--data", self.path("data")],
                           capture_output=True, cwd=cwd, timeout=5,
                           env=clean_env({"XNAI_SERVER_LISTEN": "[::]:0"}))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("auth", p.stderr.decode().lower())


if __name__ == "__main__":
    unittest.main()
