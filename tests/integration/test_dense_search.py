"""Embeddings in ingestion and dense/hybrid search: `xnai serve --embed-model`
embeds uploaded documents in the background; /api/search takes
mode=lexical|dense|hybrid; /health shows the index; vectors persist across a
restart; a different embedding model is refused with the reindex hint until
`xnai reindex`; the CLI ingests with --embed-model and searches by mode."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import XnaiTestCase, clean_env, find_binary, unique_word
import harness


def run_cli(args, data_dir):
    """`xnai ARGS --data DIR` with stdout and stderr as text."""
    r = harness.run_cli(args, data_dir=data_dir, timeout=120)
    r.stdout = r.stdout.decode("utf-8", errors="replace")
    r.stderr = r.stderr.decode("utf-8", errors="replace")
    return r

MODELS = {}


def setUpModule():
    directory = tempfile.mkdtemp(prefix="xnai-dense-models-")
    for name in ("embed-a", "embed-b"):
        path = os.path.join(directory, name + ".gguf")
        r = subprocess.run([find_binary(), "model", "synth", "--preset", "tiny-bert", "--type",
                            "F16", "--out", path], capture_output=True, env=clean_env(),
                           timeout=120)
        if r.returncode != 0:
            raise RuntimeError("synth failed: " + r.stderr.decode())
        MODELS[name] = path
    MODELS["dir"] = directory


def tearDownModule():
    shutil.rmtree(MODELS.get("dir", ""), ignore_errors=True)


class DenseSearchTest(XnaiTestCase):
    def wait_embedded(self, server, vectors, timeout=30):
        deadline = time.time() + timeout
        index = {}
        while time.time() < deadline:
            index = server.get("/health").json().get("index", {})
            if index.get("vectors") == vectors and not index.get("embedding", {}).get("busy"):
                return index
            time.sleep(0.1)
        self.fail("vectors never reached %d: %r" % (vectors, index))

    def test_upload_is_embedded_and_every_mode_searches(self):
        data = os.path.join(self.tmp, "data")
        server = self.start_server(args=["--embed-model", MODELS["embed-a"]], data_dir=data)
        word = unique_word()
        self.add_text(server, "Green tea %s is made from leaves." % word, title="Tea")
        self.add_text(server, "The automobile was invented by Karl Benz.", title="Cars")
        index = self.wait_embedded(server, 2)
        self.assertEqual(index["embedding_model"], "embed-a")
        self.assertEqual(index["chunks"], 2)
        self.assertEqual(index["embedding"]["last_error"], "")

        body = server.get("/api/search?q=%s" % word).json()
        self.assertEqual(body["mode"], "hybrid")  # the default with an embedding model
        self.assertEqual(body["hits"][0]["title"], "Tea")
        self.assertGreater(body["hits"][0]["lexical_rank"], 0)
        self.assertGreater(body["hits"][0]["dense_rank"], 0)
        self.assertIn("embed_ms", body["timings"])
        lexical = server.get("/api/search?mode=lexical&q=%s" % word).json()
        self.assertEqual(lexical["mode"], "lexical")
        self.assertEqual([h["title"] for h in lexical["hits"]], ["Tea"])
        # Dense ranks every chunk that has a vector, words or not.
        dense = server.get("/api/search?mode=dense&k=5&q=unrelated+words").json()
        self.assertEqual(dense["mode"], "dense")
        self.assertEqual(len(dense["hits"]), 2)
        self.assertEqual(len(server.get("/api/search?mode=dense&k=1&q=x").json()["hits"]), 1)
        self.assertErrorBody(server.get("/api/search?mode=fuzzy&q=x"), 400, "lexical, dense")
        only = server.get("/api/search?source_prefix=nothing&q=%s" % word).json()
        self.assertEqual(only["hits"], [])

        # A deleted document's vectors go with it.
        doc_id = body["hits"][0]["document_id"]
        self.assertStatus(server.request("DELETE", "/api/documents/%d" % doc_id), 200)
        self.assertEqual(server.get("/health").json()["index"]["vectors"], 1)
        dense = server.get("/api/search?mode=dense&k=5&q=tea").json()
        self.assertEqual([h["title"] for h in dense["hits"]], ["Cars"])

        # Restart: the index file is loaded, search works at once.
        self.stop_server(server)
        self.assertTrue(os.listdir(os.path.join(data, "vectors")))
        server = self.start_server(args=["--embed-model", MODELS["embed-a"]], data_dir=data)
        dense = server.get("/api/search?mode=dense&k=5&q=tea").json()
        self.assertEqual([h["title"] for h in dense["hits"]], ["Cars"])
        self.stop_server(server)

        # Another embedding model: refused with the way out, lexical still works.
        server = self.start_server(args=["--embed-model", MODELS["embed-b"]], data_dir=data)
        err = self.assertErrorBody(server.get("/api/search?mode=dense&q=tea"), 409,
                                   "xnai reindex")
        self.assertIn("embed-a", err["message"])
        self.assertEqual(server.get("/api/search?mode=lexical&q=Benz").json()["hits"][0]["title"],
                         "Cars")
        health = server.get("/health").json()["index"]
        self.assertIn("reindex", health["embedding"]["last_error"])
        self.stop_server(server)
        r = run_cli(["reindex", "--embed-model", MODELS["embed-b"]], data_dir=data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 chunk(s) embedded with embed-b", r.stdout)
        server = self.start_server(args=["--embed-model", MODELS["embed-b"]], data_dir=data)
        dense = server.get("/api/search?mode=dense&q=tea").json()
        self.assertEqual([h["title"] for h in dense["hits"]], ["Cars"])

    def test_without_an_embedding_model_search_is_lexical(self):
        server = self.start_server()
        word = unique_word()
        self.add_text(server, "A note about %s." % word, title="Note")
        body = server.get("/api/search?q=%s" % word).json()
        self.assertEqual(body["mode"], "lexical")
        self.assertNotIn("dense_rank", body["hits"][0])
        for mode in ("dense", "hybrid"):
            err = self.assertErrorBody(server.get("/api/search?mode=%s&q=x" % mode), 400,
                                       "--embed-model")
            self.assertEqual(err["code"], "no_embedding_model")
        self.assertIsNone(server.get("/health").json()["index"]["embedding_model"])

    def test_cli_ingest_embeds_and_searches_by_mode(self):
        data = os.path.join(self.tmp, "cli-data")
        docs = os.path.join(self.tmp, "docs")
        self.write("docs/tea.md", "# Tea\nGreen tea is made from leaves.\n")
        self.write("docs/cars.md", "# Cars\nKarl Benz built the automobile.\n")
        r = run_cli(["ingest", docs, "--embed-model", MODELS["embed-a"], "--json"], data_dir=data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["embedded"], 2)
        r = run_cli(["search", "Benz", "--embed-model", MODELS["embed-a"], "--json"],
                    data_dir=data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["hits"][0]["title"], "Cars")
        r = run_cli(["search", "anything", "--mode", "dense", "--embed-model",
                     MODELS["embed-a"], "--json"], data_dir=data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)["hits"]), 2)
        r = run_cli(["search", "tea", "--mode", "dense"], data_dir=data)
        self.assertEqual(r.returncode, 2)
        self.assertIn("needs --embed-model", r.stderr)
        r = run_cli(["search", "tea", "--embed-model", MODELS["embed-b"]], data_dir=data)
        self.assertEqual(r.returncode, 1)
        self.assertIn("xnai reindex", r.stderr)


if __name__ == "__main__":
    unittest.main()
