"""`make run` behaviour: `xnai serve --seed-docs DIR` on an empty data
directory makes DIR searchable in collection "docs" as soon as /ready is 200,
and only on first start."""

import os
import unittest

from harness import XnaiTestCase, unique_word


class SeedDocsTest(XnaiTestCase):
    def test_seed_docs_searchable_when_ready(self):
        w1, w2 = unique_word(), unique_word()
        self.write("seed/quickstart.md", "# Quickstart\n\nStart with %s.\n" % w1)
        self.write("seed/ops/operations.txt", "Operations guide: %s.\n" % w2)
        server = self.start_server(args=["--seed-docs", self.path("seed")], wait_ready=False)
        server.wait_ready()
        # No sleeping: ready means seeded.
        hits = self.search(server, w1, collection="docs")
        self.assertEqual(len(hits), 1)
        self.assertIn("quickstart.md", hits[0]["source"])
        self.assertEqual(hits[0]["collection"], "docs")
        self.assertEqual(len(self.search(server, w2, collection="docs")), 1)
        c = server.get("/api/collections/docs").json()
        self.assertEqual(c["document_count"], 2)
        self.stop_server(server)
        # Second start on the same data: not seeded again (no duplicates, and a
        # new file in the seed folder is not picked up).
        w3 = unique_word()
        self.write("seed/new.txt", "new file %s" % w3)
        again = self.start_server(args=["--seed-docs", self.path("seed")],
                                  data_dir=server.data_dir)
        self.assertEqual(again.get("/api/collections/docs").json()["document_count"], 2)
        self.assertEqual(self.search(again, w3), [])

    def test_missing_seed_folder_is_not_fatal(self):
        server = self.start_server(args=["--seed-docs", self.path("no-such-folder")])
        self.assertStatus(server.get("/health"), 200)
        self.assertIn("seed", server.log())

    def test_repository_docs_folder(self):
        docs = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "docs"))
        if not any(f.endswith((".md", ".txt", ".html")) for _, _, fs in os.walk(docs)
                   for f in fs):
            self.skipTest("repository docs/ has no documents yet")
        server = self.start_server(args=["--seed-docs", docs])
        c = server.get("/api/collections/docs")
        self.assertStatus(c, 200)
        self.assertGreater(c.json()["document_count"], 0)
        self.assertGreater(c.json()["chunk_count"], 0)


if __name__ == "__main__":
    unittest.main()
