"""GET /api/search: hit shape, highlighting, collection filter, k, parameter
validation, and hostile queries that must never produce a 5xx."""

import random
import string
import unittest
from urllib.parse import quote, urlencode

import harness
from harness import XnaiTestCase, unique_word


class SearchTest(XnaiTestCase):
    def setUp(self):
        super().setUp()
        self.server = self.start_server()
        self.word = unique_word()
        self.add_text(self.server, "Kubernetes clusters need %s monitoring. Prometheus scrapes "
                      "targets." % self.word, title="Ops Guide", collection="ops")
        self.add_text(self.server, "The %s cookbook has recipes with \"quotes\" and "
                      "col:umns and AND OR NOT words, and unicode: café naïve 東京." % self.word,
                      title="Cookbook", collection="food")

    def test_hit_shape_and_highlight(self):
        hits = self.search(self.server, self.word)
        self.assertEqual(len(hits), 2)
        for hit in hits:
            self.assertTrue(harness.REQUIRED_HIT_KEYS <= set(hit), hit.keys())
            self.assertIsInstance(hit["chunk_id"], int)
            self.assertIsInstance(hit["document_id"], int)
            self.assertIsInstance(hit["score"], (int, float))
            self.assertIn(self.word, hit["text"])
            self.assertIn("<mark>", hit["snippet"])
            self.assertIn("</mark>", hit["snippet"])
            self.assertIn("<mark>%s</mark>" % self.word, hit["snippet"])
            self.assertTrue(hit["source"])
            self.assertIn(hit["title"], ("Ops Guide", "Cookbook"))
        scores = [h["score"] for h in hits]
        self.assertEqual(scores, sorted(scores, reverse=True), "hits not ordered by score")
        # The hit points at a real chunk of a real document.
        doc = self.server.get("/api/documents/%d" % hits[0]["document_id"]).json()
        self.assertIn(hits[0]["chunk_id"], [c["id"] for c in doc["chunks"]])

    def test_snippet_escapes_html(self):
        w = unique_word()
        self.add_text(self.server, "<b>bold</b> %s <script>alert(1)</script>" % w, title="X")
        hits = self.search(self.server, w)
        self.assertEqual(len(hits), 1)
        snippet = hits[0]["snippet"]
        self.assertNotIn("<script>", snippet)
        self.assertNotIn("<b>", snippet)
        self.assertIn("<mark>", snippet)

    def test_collection_filter(self):
        hits = self.search(self.server, self.word, collection="ops")
        self.assertEqual([h["title"] for h in hits], ["Ops Guide"])
        hits = self.search(self.server, self.word, collection="food")
        self.assertEqual([h["title"] for h in hits], ["Cookbook"])
        self.assertEqual(len(self.search(self.server, self.word, collection="")), 2)

    def test_unknown_collection_is_404(self):
        r = self.search(self.server, self.word, expect=404, collection="nosuch")
        self.assertErrorBody(r, 404, "nosuch")

    def test_k_limits_hits(self):
        w = unique_word()
        for i in range(5):
            self.add_text(self.server, "entry %d about %s" % (i, w), title="E%d" % i)
        self.assertEqual(len(self.search(self.server, w)), 5)
        self.assertEqual(len(self.search(self.server, w, k=2)), 2)
        self.assertEqual(len(self.search(self.server, w, k=1)), 1)
        self.assertEqual(len(self.search(self.server, w, k=100)), 5)

    def test_bad_parameters_are_400(self):
        for query in ("", "q=", "q=%20%20", "q=%09%0A"):
            r = self.server.get("/api/search?" + query)
            self.assertErrorBody(r, 400, "q")
        for k in ("0", "1000", "-1", "abc", "1.5", "99999999999999999999"):
            r = self.server.get("/api/search?q=x&k=" + k)
            self.assertErrorBody(r, 400, "k")
        r = self.server.get("/api/search?" + urlencode({"q": "a" * 1001}))
        self.assertErrorBody(r, 400, "too long")

    def test_no_match_is_empty_list(self):
        self.assertEqual(self.search(self.server, unique_word()), [])

    def test_hostile_queries_never_5xx(self):
        fixed = [
            '"', '""', '"unterminated', 'quotes "inside" here', "AND", "OR", "NOT", "AND OR NOT",
            "a AND", "NOT a", "OR OR OR", "NEAR(", "NEAR(a b", "NEAR(a b, 2)", "*", "a*", "*a",
            "**", "col:x", "title:x", "text:foo", ":", "^", "^a", "+", "-", "-a", "a -b", "()",
            "(", ")", "((a)", "{a b}", "a + b", "'", "'; DROP TABLE chunks; --", "\\", "%",
            "%25", "\x00", "a\x00b", "\x7f", "\u200b", "café", "東京", "🙂🙃", "naïve AND café",
            "\ud7ff", "a" * 1000, ("word " * 200).strip(), self.word, '"%s"' % self.word,
            "%s*" % self.word[:5], "NEAR(%s cookbook)" % self.word, "ops:%s" % self.word,
        ]
        rng = random.Random(1234)
        alphabet = string.printable + "éü東京🙂\u2028\u00a0"
        randoms = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
                   for _ in range(1000)]
        conn = self.server.connection()
        statuses = {}
        try:
            for q in fixed + randoms:
                path = "/api/search?q=" + quote(q.encode("utf-8", "surrogatepass"), safe="")
                for attempt in range(2):
                    try:
                        conn.request("GET", path)
                        r = harness.read_response(conn)
                        break
                    except (ConnectionError, harness.http.client.HTTPException):
                        conn.close()
                        conn = self.server.connection()
                        if attempt:
                            raise
                statuses[r.status] = statuses.get(r.status, 0) + 1
                self.assertLess(r.status, 500, "query %r -> %r" % (q, r))
                self.assertIn(r.status, (200, 400), "query %r -> %r" % (q, r))
                if r.status == 200:
                    self.assertIsInstance(r.json()["hits"], list)
                else:
                    self.assertErrorBody(r)
        finally:
            conn.close()
        self.assertGreater(statuses.get(200, 0), 900, statuses)
        # The server is still healthy and still finds things afterwards.
        self.assertStatus(self.server.get("/health"), 200)
        self.assertEqual(len(self.search(self.server, self.word)), 2)

    def test_punctuated_text_is_found(self):
        hits = self.search(self.server, '"quotes"')
        self.assertEqual([h["title"] for h in hits], ["Cookbook"])
        hits = self.search(self.server, "café")
        self.assertEqual([h["title"] for h in hits], ["Cookbook"])


if __name__ == "__main__":
    unittest.main()
