"""Collections and documents over HTTP: create/list/get/delete, JSON and
multipart uploads of txt/md/html/pdf, idempotent re-upload, replacement, and
search consistency after every change."""

import unittest

from harness import XnaiTestCase, make_pdf, unique_word


class CollectionsTest(XnaiTestCase):
    def test_create_list_get_delete(self):
        server = self.start_server()
        r = server.post_json("/api/collections", {"name": "papers", "description": "PDFs"})
        self.assertStatus(r, 201)
        c = r.json()
        self.assertEqual(c["name"], "papers")
        self.assertEqual(c["description"], "PDFs")
        self.assertEqual(c["document_count"], 0)
        self.assertEqual(c["chunk_count"], 0)
        self.assertIn("created_at", c)

        self.assertStatus(server.post_json("/api/collections", {"name": "notes"}), 201)
        r = server.get("/api/collections")
        self.assertStatus(r, 200)
        names = [x["name"] for x in r.json()["collections"]]
        self.assertIn("papers", names)
        self.assertIn("notes", names)

        r = server.get("/api/collections/papers")
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["description"], "PDFs")

        r = server.request("DELETE", "/api/collections/papers")
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["deleted"], "papers")
        self.assertErrorBody(server.get("/api/collections/papers"), 404)
        names = [x["name"] for x in server.get("/api/collections").json()["collections"]]
        self.assertNotIn("papers", names)
        self.assertIn("notes", names)

    def test_duplicate_is_409(self):
        server = self.start_server()
        self.assertStatus(server.post_json("/api/collections", {"name": "dup"}), 201)
        err = self.assertErrorBody(server.post_json("/api/collections", {"name": "dup"}), 409)
        self.assertIn("dup", err["message"])

    def test_bad_names_are_400(self):
        server = self.start_server()
        for bad in ["", "has space", "../etc", "a/b", "-leading", ".hidden", "x" * 65,
                    "naïve", "semi;colon", "quote\"d"]:
            r = server.post_json("/api/collections", {"name": bad})
            self.assertErrorBody(r, 400)
        err = self.assertErrorBody(server.post_json("/api/collections", {}), 400)
        self.assertIn("name", err["message"])
        err = self.assertErrorBody(server.post_json("/api/collections", {"name": 42}), 400)
        self.assertIn("name", err["message"])
        # The longest valid name works.
        self.assertStatus(server.post_json("/api/collections", {"name": "a" * 64}), 201)
        names = [x["name"] for x in server.get("/api/collections").json()["collections"]]
        self.assertEqual(names.count("a" * 64), 1)
        self.assertFalse(any(" " in n or "/" in n for n in names))

    def test_unknown_collection_is_404(self):
        server = self.start_server()
        self.assertErrorBody(server.get("/api/collections/nosuch"), 404, "nosuch")
        self.assertErrorBody(server.request("DELETE", "/api/collections/nosuch"), 404)

    def test_delete_collection_removes_its_documents_from_search(self):
        server = self.start_server()
        word = unique_word()
        self.add_text(server, "the %s lives here" % word, title="t1", collection="gone")
        self.add_text(server, "the %s also lives here" % word, title="t2", collection="kept")
        self.assertEqual(len(self.search(server, word)), 2)
        self.assertEqual(server.get("/api/collections/gone").json()["document_count"], 1)
        r = server.request("DELETE", "/api/collections/gone")
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["documents_deleted"], 1)
        hits = self.search(server, word)
        self.assertEqual([h["collection"] for h in hits], ["kept"])
        r = server.get("/api/documents?collection=gone")
        if r.status == 200:
            self.assertEqual(r.json()["documents"], [])
        else:
            self.assertErrorBody(r, 404, "gone")
        self.assertEqual(len(server.get("/api/documents").json()["documents"]), 1)


class DocumentsTest(XnaiTestCase):
    def test_json_text_upload_is_idempotent(self):
        server = self.start_server()
        word = unique_word()
        text = "Remember the %s protocol for backups." % word
        body = self.add_text(server, text, title="Backups", collection="ops")
        self.assertEqual(body["skipped"], [])
        self.assertEqual(len(body["documents"]), 1)
        doc = body["documents"][0]
        self.assertEqual(doc["outcome"], "created")
        self.assertEqual(doc["collection"], "ops")
        self.assertEqual(doc["title"], "Backups")
        self.assertGreaterEqual(doc["chunk_count"], 1)
        self.assertEqual(len(doc["sha256"]), 64)

        again = self.add_text(server, text, title="Backups", collection="ops", expect=200)
        self.assertEqual(again["documents"][0]["outcome"], "unchanged")
        self.assertEqual(again["documents"][0]["id"], doc["id"])
        self.assertEqual(len(server.get("/api/documents?collection=ops").json()["documents"]), 1)
        self.assertEqual(len(self.search(server, word)), 1)

    def test_changed_text_with_same_title_replaces(self):
        server = self.start_server()
        old, new = unique_word("zo"), unique_word("zn")
        first = self.add_text(server, "the old word is %s" % old, title="Policy")
        doc_id = first["documents"][0]["id"]
        self.assertEqual(len(self.search(server, old)), 1)
        second = self.add_text(server, "the new word is %s" % new, title="Policy")
        doc = second["documents"][0]
        self.assertEqual(doc["outcome"], "updated")
        self.assertEqual(self.search(server, old), [], "old text still searchable after update")
        hits = self.search(server, new)
        self.assertEqual(len(hits), 1)
        self.assertEqual(hits[0]["document_id"], doc["id"])
        docs = server.get("/api/documents").json()["documents"]
        self.assertEqual(len(docs), 1, "update created a second document")
        chunks = server.get("/api/documents/%d" % doc["id"]).json()["chunks"]
        self.assertTrue(all(old not in c["text"] for c in chunks))
        if doc["id"] != doc_id:
            self.assertErrorBody(server.get("/api/documents/%d" % doc_id), 404)

    def test_multipart_txt_md_html_pdf(self):
        server = self.start_server()
        w = {k: unique_word("z" + k[0]) for k in ("txt", "md", "html", "pdf", "script")}
        files = {
            "notes.txt": ("text/plain", ("Plain notes mention %s twice: %s.\n"
                                         % (w["txt"], w["txt"])).encode(), "text/plain"),
            "guide.md": ("text/markdown", ("# Guide\n\n## Install\n\nRun the %s step.\n"
                                           % w["md"]).encode(), "text/markdown"),
            "page.html": ("text/html", ("<html><head><title>Page Title</title>"
                                        "<script>var x='%s';</script></head><body>"
                                        "<h1>Heading</h1><p>The %s paragraph.</p></body></html>"
                                        % (w["script"], w["html"])).encode(), "text/html"),
            "paper.pdf": ("application/pdf", make_pdf("Portable %s document" % w["pdf"]),
                          "application/pdf"),
        }
        ids = {}
        for name, (media_type, data, ctype) in files.items():
            r = server.upload([("file", name, data, ctype)], fields={"collection": "mixed"})
            self.assertStatus(r, 201, "uploading " + name)
            doc = r.json()["documents"][0]
            self.assertEqual(doc["outcome"], "created")
            self.assertEqual(doc["media_type"], media_type, name)
            self.assertEqual(doc["collection"], "mixed")
            self.assertIn(name, doc["source"])
            self.assertEqual(doc["size_bytes"], len(data))
            ids[name] = doc["id"]
        for key, name in (("txt", "notes.txt"), ("md", "guide.md"), ("html", "page.html"),
                          ("pdf", "paper.pdf")):
            hits = self.search(server, w[key])
            self.assertEqual(len(hits), 1, "word of %s not found" % name)
            self.assertEqual(hits[0]["document_id"], ids[name])
        self.assertEqual(self.search(server, w["script"]), [], "<script> content was indexed")
        html = server.get("/api/documents/%d" % ids["page.html"]).json()
        self.assertEqual(html["title"], "Page Title")
        md = server.get("/api/documents/%d" % ids["guide.md"]).json()
        self.assertTrue(any("Install" in c["section"] for c in md["chunks"]), md["chunks"])
        pdf = server.get("/api/documents/%d" % ids["paper.pdf"]).json()
        self.assertEqual(pdf["chunks"][0]["page"], 1)
        # Same bytes again: unchanged, 200.
        name = "notes.txt"
        r = server.upload([("file", name, files[name][1], "text/plain")],
                          fields={"collection": "mixed"})
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["documents"][0]["outcome"], "unchanged")

    def test_multipart_title_and_several_files(self):
        server = self.start_server()
        w1, w2 = unique_word(), unique_word()
        r = server.upload([("file", "one.txt", ("first %s" % w1).encode(), "text/plain")],
                          fields={"title": "Custom Title"})
        self.assertStatus(r, 201)
        self.assertEqual(r.json()["documents"][0]["title"], "Custom Title")
        self.assertEqual(r.json()["documents"][0]["collection"], "default")
        r = server.upload([("file", "a.txt", ("alpha %s" % w2).encode(), "text/plain"),
                           ("file", "b.md", ("# B\n\nbeta %s" % w2).encode(), "text/markdown")])
        self.assertStatus(r, 201)
        self.assertEqual(len(r.json()["documents"]), 2)
        self.assertEqual(len(self.search(server, w2)), 2)

    def test_list_get_delete(self):
        server = self.start_server()
        word = unique_word()
        a = self.add_text(server, "alpha %s" % word, title="A", collection="left")
        self.add_text(server, "beta %s" % word, title="B", collection="right")
        self.add_text(server, "gamma", title="C", collection="right")

        left = server.get("/api/documents?collection=left").json()["documents"]
        self.assertEqual([d["title"] for d in left], ["A"])
        right = server.get("/api/documents?collection=right").json()["documents"]
        self.assertEqual(sorted(d["title"] for d in right), ["B", "C"])
        self.assertEqual(len(server.get("/api/documents").json()["documents"]), 3)
        self.assertEqual(len(server.get("/api/documents?limit=2").json()["documents"]), 2)
        self.assertEqual(len(server.get("/api/documents?limit=2&offset=2").json()["documents"]), 1)
        r = server.get("/api/documents?collection=nosuch")
        if r.status == 200:
            self.assertEqual(r.json()["documents"], [])
        else:
            self.assertErrorBody(r, 404, "nosuch")
        for bad in ("limit=0", "limit=abc", "limit=100000", "offset=-1"):
            self.assertErrorBody(server.get("/api/documents?" + bad), 400)

        doc_id = a["documents"][0]["id"]
        r = server.get("/api/documents/%d" % doc_id)
        self.assertStatus(r, 200)
        doc = r.json()
        self.assertEqual(doc["title"], "A")
        self.assertEqual(len(doc["chunks"]), doc["chunk_count"])
        chunk = doc["chunks"][0]
        for key in ("id", "ordinal", "text", "char_begin", "char_end", "token_count"):
            self.assertIn(key, chunk)
        self.assertEqual(chunk["ordinal"], 0)
        self.assertIn(word, chunk["text"])
        self.assertEqual(server.get("/api/collections/left").json()["document_count"], 1)

        self.assertEqual(len(self.search(server, word)), 2)
        r = server.request("DELETE", "/api/documents/%d" % doc_id)
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["deleted"], doc_id)
        self.assertErrorBody(server.get("/api/documents/%d" % doc_id), 404)
        self.assertErrorBody(server.request("DELETE", "/api/documents/%d" % doc_id), 404)
        hits = self.search(server, word)
        self.assertEqual(len(hits), 1)
        self.assertNotEqual(hits[0]["document_id"], doc_id)
        self.assertEqual(server.get("/api/collections/left").json()["document_count"], 0)
        for bad in ("abc", "0", "-1", "1.5", "99999999999999999999999"):
            self.assertErrorBody(server.get("/api/documents/" + bad), 404)

    def test_documents_survive_restart(self):
        server = self.start_server()
        word = unique_word()
        self.add_text(server, "durable %s" % word, title="D")
        self.stop_server(server)
        again = self.start_server(data_dir=server.data_dir)
        self.assertEqual(len(self.search(again, word)), 1)


if __name__ == "__main__":
    unittest.main()
