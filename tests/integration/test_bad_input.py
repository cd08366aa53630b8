"""Bad input gets a clear 4xx with the uniform error body, never a 5xx, a
hang or a crash; the server keeps serving afterwards."""

import os
import socket
import time
import unittest

from harness import PNG_BYTES, XnaiTestCase, make_pdf, multipart, unique_word


class JsonBodyTest(XnaiTestCase):
    def setUp(self):
        super().setUp()
        self.server = self.start_server()

    def post_raw(self, path, body, ctype="application/json"):
        return self.server.request("POST", path, body=body, headers={"Content-Type": ctype})

    def test_malformed_json_is_400(self):
        for path in ("/api/collections", "/api/documents"):
            for body in (b"{", b"{\"name\": }", b"not json", b"", b"{\"a\":1}}", b"\xff\xfe",
                         b"{\"name\": \"x\",}"):
                r = self.post_raw(path, body)
                self.assertErrorBody(r, 400)
        err = self.assertErrorBody(self.post_raw("/api/collections", b"{\"name\": "), 400)
        self.assertIn("json", err["message"].lower())

    def test_non_object_json_is_400(self):
        for body in (b"[]", b"[{\"name\": \"x\"}]", b"\"name\"", b"42", b"null", b"true"):
            err = self.assertErrorBody(self.post_raw("/api/collections", body), 400)
            self.assertIn("object", err["message"])
            self.assertErrorBody(self.post_raw("/api/documents", body), 400)

    def test_wrong_field_type_names_the_field(self):
        cases = [
            ("/api/collections", {"name": 5}, "name"),
            ("/api/collections", {"name": "ok1", "description": ["x"]}, "description"),
            ("/api/documents", {"text": 5}, "text"),
            ("/api/documents", {"text": "hello", "title": {"a": 1}}, "title"),
            ("/api/documents", {"text": "hello", "collection": []}, "collection"),
            ("/api/documents", {"path": True}, "path"),
        ]
        for path, body, field in cases:
            r = self.server.post_json(path, body)
            err = self.assertErrorBody(r, 400)
            self.assertIn("'%s'" % field, err["message"], "%s %s" % (path, body))
        self.assertErrorBody(self.server.get("/api/collections/ok1"), 404)

    def test_empty_text_is_400(self):
        self.assertErrorBody(self.server.post_json("/api/documents", {"text": ""}), 400)
        self.assertErrorBody(self.server.post_json("/api/documents", {}), 400, "text")
        self.assertErrorBody(self.server.post_json("/api/documents", {"title": "t"}), 400)
        self.assertEqual(self.server.get("/api/documents").json()["documents"], [])

    def test_invalid_collection_in_upload_is_400(self):
        r = self.server.post_json("/api/documents", {"text": "x y z", "collection": "../bad"})
        self.assertErrorBody(r, 400, "collection")
        r = self.server.upload([("file", "a.txt", b"hello", "text/plain")],
                               fields={"collection": "bad name"})
        self.assertErrorBody(r, 400, "collection")


class UploadTest(XnaiTestCase):
    def setUp(self):
        super().setUp()
        self.server = self.start_server()

    def test_corrupt_pdf_is_422_naming_the_file(self):
        r = self.server.upload([("file", "broken-report.pdf", b"%PDF-1.4 garbage",
                                 "application/pdf")])
        self.assertErrorBody(r, 422, "broken-report.pdf")
        # Truncated real PDF, too.
        pdf = make_pdf("truncated text")
        r = self.server.upload([("file", "cut.pdf", pdf[: len(pdf) // 3], "application/pdf")])
        self.assertIn(r.status, (422,), r)
        self.assertErrorBody(r, 422, "cut.pdf")
        self.assertEqual(self.server.get("/api/documents").json()["documents"], [])
        self.assertStatus(self.server.get("/health"), 200)

    def test_binary_upload_is_415(self):
        r = self.server.upload([("file", "image.png", PNG_BYTES, "image/png")])
        self.assertErrorBody(r, 415, "image.png")
        # A PNG that claims to be text is still binary (content wins).
        r = self.server.upload([("file", "sneaky.txt", PNG_BYTES, "text/plain")])
        self.assertErrorBody(r, 415)
        r = self.server.upload([("file", "elf.txt", b"\x7fELF\x02\x01\x01" + bytes(200),
                                 "text/plain")])
        self.assertErrorBody(r, 415)
        self.assertEqual(self.server.get("/api/documents").json()["documents"], [])

    def test_multipart_without_file_is_400(self):
        r = self.server.upload([], fields={"collection": "x", "title": "t"})
        self.assertErrorBody(r, 400, "file")

    def test_malformed_multipart_is_400(self):
        body, ctype = multipart(files=[("file", "a.txt", b"hello world", "text/plain")])
        cases = [
            (body, "multipart/form-data"),                                 # no boundary
            (body[: len(body) // 2], ctype),                               # no closing boundary
            (b"garbage without boundaries", ctype),
            (b"", ctype),
            (body.replace(b"Content-Disposition", b"X-Nothing"), ctype),   # no name
        ]
        for data, content_type in cases:
            r = self.server.request("POST", "/api/documents", body=data,
                                    headers={"Content-Type": content_type})
            self.assertErrorBody(r, 400)
        self.assertStatus(self.server.get("/health"), 200)

    def test_failed_file_in_multi_upload_reports_it(self):
        word = unique_word()
        r = self.server.upload([("file", "good.txt", ("good %s" % word).encode(), "text/plain"),
                                ("file", "bad.png", PNG_BYTES, "image/png")])
        err = self.assertErrorBody(r, 415, "bad.png")
        self.assertIn("earlier", err["message"])


class BodyLimitTest(XnaiTestCase):
    def test_body_over_limit_is_413_and_server_keeps_serving(self):
        server = self.start_server(args=["--set", "server.max_body_bytes=1024"])
        r = server.post_json("/api/documents", {"text": "x " * 2000})
        self.assertErrorBody(r, 413)
        r = server.upload([("file", "big.txt", b"word " * 1000, "text/plain")])
        self.assertErrorBody(r, 413)
        # Declared length far over the limit: refused without reading it all.
        s = socket.create_connection((server.host, server.port), timeout=10)
        try:
            s.sendall(b"POST /api/documents HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: 1000000000\r\n\r\n{\"text\":")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])
        finally:
            s.close()
        # Still serving, and a small body is fine.
        self.assertStatus(server.get("/health"), 200)
        word = unique_word()
        self.add_text(server, "small %s" % word)
        self.assertEqual(len(self.search(server, word)), 1)


class PathIngestTest(XnaiTestCase):
    def setUp(self):
        super().setUp()
        self.root = self.path("root")
        self.outside = self.path("outside")
        os.makedirs(self.root)
        os.makedirs(self.outside)
        self.word_in, self.word_out = unique_word("zi"), unique_word("zo")
        self.write("root/inside.txt", "inside file %s" % self.word_in)
        self.write("root/sub/deeper.md", "# Deep\n\ndeeper %s" % self.word_in)
        self.write("outside/secret.txt", "outside secret %s" % self.word_out)
        os.symlink(os.path.join(self.outside, "secret.txt"), os.path.join(self.root, "link.txt"))
        os.symlink(self.outside, os.path.join(self.root, "linkdir"))

    def test_paths_outside_root_are_400_inside_201(self):
        server = self.start_server(args=["--set", "ingest.allowed_roots=" + self.root])
        bad = [
            "/etc/passwd",
            os.path.join(self.outside, "secret.txt"),
            os.path.join(self.root, "..", "outside", "secret.txt"),
            os.path.join(self.root, "sub", "..", "..", "outside"),
            self.root + "/../outside/secret.txt",
            os.path.join(self.root, "link.txt"),
            os.path.join(self.root, "linkdir"),
            os.path.join(self.root, "linkdir", "secret.txt"),
            self.root + "-sibling",
            "relative/path.txt",
            "../../../../etc/passwd",
        ]
        os.makedirs(self.root + "-sibling")
        self.write("root-sibling/x.txt", "sibling %s" % self.word_out)
        for path in bad:
            r = server.post_json("/api/documents", {"path": path})
            self.assertErrorBody(r, 400)
            self.assertNotIn(r.status, (201, 200), path)
        self.assertEqual(self.search(server, self.word_out), [], "file outside the root ingested")

        r = server.post_json("/api/documents", {"path": os.path.join(self.root, "inside.txt"),
                                                "collection": "files"})
        self.assertStatus(r, 201)
        self.assertEqual(r.json()["documents"][0]["outcome"], "created")
        sub = os.path.join(self.root, "sub")
        r = server.post_json("/api/documents", {"path": sub, "collection": "files"})
        self.assertStatus(r, 201)
        self.assertEqual(len(self.search(server, self.word_in)), 2)
        r = server.post_json("/api/documents", {"path": sub + "/../sub", "collection": "files"})
        self.assertStatus(r, 200)  # nothing changed, and ".." that stays inside is fine
        self.assertTrue(all(d["outcome"] == "unchanged" for d in r.json()["documents"]))

    def test_folder_walk_does_not_follow_symlinks_out_of_root(self):
        server = self.start_server(args=["--set", "ingest.allowed_roots=" + self.root])
        r = server.post_json("/api/documents", {"path": self.root})
        self.assertStatus(r, 201)
        self.assertEqual(len(self.search(server, self.word_in)), 2)
        self.assertEqual(self.search(server, self.word_out), [],
                         "a symlink inside the allowed root let the walk read a file outside it")

    def test_no_allowed_roots_refuses_every_path(self):
        server = self.start_server()
        r = server.post_json("/api/documents", {"path": os.path.join(self.root, "inside.txt")})
        self.assertErrorBody(r, 400)
        self.assertEqual(self.search(server, self.word_in), [])

    def test_missing_path_inside_root_is_4xx(self):
        server = self.start_server(args=["--set", "ingest.allowed_roots=" + self.root])
        r = server.post_json("/api/documents", {"path": os.path.join(self.root, "nope.txt")})
        self.assertIn(r.status, (400, 404), r)
        self.assertErrorBody(r)


if __name__ == "__main__":
    unittest.main()
