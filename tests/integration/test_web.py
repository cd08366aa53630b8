"""The embedded web UI: GET / serves index.html with a strict CSP, the
assets it references are served with the right type and caching, ETags give
304, unknown assets are 404 with the usual error body; with an API key the
UI's static files stay public while the API does not."""

import re
import unittest

from harness import XnaiTestCase


class WebUiTest(XnaiTestCase):
    def setUp(self):
        super().setUp()
        self.server = self.start_server()

    def index(self):
        r = self.server.get("/")
        self.assertStatus(r, 200)
        return r

    def test_index_is_html_with_csp_and_no_cache(self):
        r = self.index()
        self.assertTrue(r.header("content-type").startswith("text/html"), r.header("content-type"))
        self.assertIn("<!doctype html>", r.text.lower())
        csp = r.header("content-security-policy") or ""
        for directive in ("default-src 'self'", "script-src 'self'", "connect-src 'self'",
                          "object-src 'none'", "frame-ancestors 'none'"):
            self.assertIn(directive, csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("unsafe-eval", csp)
        self.assertEqual(r.header("cache-control"), "no-cache")
        self.assertEqual(r.header("x-content-type-options"), "nosniff")
        self.assertRegex(r.header("etag") or "", r'^"[0-9a-f]{16,}"$')
        # No inline script and nothing from another origin.
        self.assertIsNone(re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), "inline script")
        self.assertNotRegex(r.text, r'(src|href)="(https?:)?//')

    def test_assets_referenced_by_index_are_served_immutable(self):
        html = self.index().text
        refs = re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)
        self.assertTrue(any(ref.endswith(".js") for ref in refs), refs)
        self.assertTrue(any(ref.endswith(".css") for ref in refs), refs)
        for ref in refs:
            r = self.server.get(ref)
            self.assertStatus(r, 200, ref)
            want = "text/javascript" if ref.endswith(".js") else "text/css"
            self.assertTrue(r.header("content-type").startswith(want), (ref, r.header("content-type")))
            self.assertEqual(r.header("cache-control"), "public, max-age=31536000, immutable")
            self.assertEqual(r.header("x-content-type-options"), "nosniff")
            self.assertGreater(len(r.body), 100)
            self.assertIsNone(r.header("content-security-policy"))
        head = self.server.request("HEAD", refs[0])
        self.assertStatus(head, 200)
        self.assertEqual(head.body, b"")

    def test_etag_gives_304(self):
        first = self.index()
        etag = first.header("etag")
        r = self.server.get("/", headers={"If-None-Match": etag})
        self.assertStatus(r, 304)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("etag"), etag)
        r = self.server.get("/", headers={"If-None-Match": 'W/"other", ' + etag})
        self.assertStatus(r, 304)
        r = self.server.get("/", headers={"If-None-Match": '"stale"'})
        self.assertStatus(r, 200)
        asset = re.search(r'src="(/assets/[^"]+)"', first.text).group(1)
        tag = self.server.get(asset).header("etag")
        self.assertStatus(self.server.get(asset, headers={"If-None-Match": tag}), 304)

    def test_favicon(self):
        r = self.server.get("/favicon.svg")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("content-type"), "image/svg+xml")

    def test_unknown_asset_is_404_json(self):
        for path in ("/assets/nope.js", "/assets/..%2Findex.html", "/assets/a/b.js",
                     "/index.html"):
            self.assertErrorBody(self.server.get(path), 404)

    def test_routes_are_in_openapi(self):
        paths = self.server.get("/openapi.json").json()["paths"]
        self.assertIn("get", paths["/"])
        self.assertIn("get", paths["/assets/{file}"])


class WebUiWithApiKeyTest(XnaiTestCase):
    def test_ui_files_are_public_api_is_not(self):
        key_file = self.write("key.txt", "s3cret-key\n")
        server = self.start_server(env={"XNAI_SERVER_API_KEY_FILE": key_file})
        index = server.get("/")
        self.assertStatus(index, 200)
        asset = re.search(r'src="(/assets/[^"]+)"', index.text).group(1)
        self.assertStatus(server.get(asset), 200)
        self.assertStatus(server.get("/favicon.svg"), 200)
        self.assertErrorBody(server.get("/api/collections"), 401)
        self.assertErrorBody(server.get("/assets/nope.js"), 404)


if __name__ == "__main__":
    unittest.main()
