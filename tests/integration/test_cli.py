"""The command line: version, config show (layering, masking), usage errors
(exit 2), runtime errors (exit 1), ingest summaries, search, --data."""

import json
import os
import re
import threading
import time
import unittest

from harness import PNG_BYTES, XnaiTestCase, run_cli, unique_word


def parse_show(text):
    """`config show` TOML -> {"section.key": raw value text}."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        key, _, value = line.partition("=")
        out["%s.%s" % (section, key.strip())] = value.strip()
    return out


class CliTest(XnaiTestCase):
    def cli(self, args, data=None, env=None, cwd=None, expect=None):
        cwd = cwd or self.path("cwd")
        os.makedirs(cwd, exist_ok=True)
        p = run_cli(args, data_dir=data, env=env, cwd=cwd)
        p.out = p.stdout.decode("utf-8", "replace")
        p.err = p.stderr.decode("utf-8", "replace")
        if expect is not None:
            self.assertEqual(p.returncode, expect, "xnai %s\nstdout: %s\nstderr: %s"
                             % (" ".join(args), p.out, p.err))
        return p

    def make_folder(self):
        words = {k: unique_word("z" + k[0]) for k in ("txt", "md", "html")}
        folder = self.path("docs")
        self.write("docs/readme.txt", "The plain %s file.\n" % words["txt"])
        self.write("docs/guide/install.md", "# Install\n\nUse the %s command.\n" % words["md"])
        self.write("docs/page.html", "<html><head><title>Web</title></head><body><p>The %s "
                   "page.</p></body></html>" % words["html"])
        self.write("docs/picture.png", PNG_BYTES)
        return folder, words

    # --- version / usage -------------------------------------------------------

    def test_version(self):
        p = self.cli(["version"], expect=0)
        self.assertRegex(p.out.strip(), r"^xnai \d+\.\d+\.\d+")

    def test_usage_errors_exit_2(self):
        for args in (["--bogus", "version"], ["version", "--bogus"], ["search", "--nope", "x"],
                     ["ingest", "--frobnicate", "x"], ["serve", "--no-such-flag"],
                     ["no-such-command"], [], ["config"],
                     ["config", "show", "--set", "server.threads=abc"],
                     ["config", "show", "--set", "nosuch.key=1"],
                     ["config", "show", "--set", "missing-equals"]):
            p = self.cli(args)
            self.assertEqual(p.returncode, 2, "xnai %s -> %d\n%s%s"
                             % (" ".join(args), p.returncode, p.out, p.err))
            self.assertTrue(p.err.strip(), "no message for xnai %s" % " ".join(args))
        p = self.cli(["config", "show", "--set", "nosuch.key=1"])
        self.assertIn("nosuch.key", p.err)

    # --- config show -----------------------------------------------------------

    def test_config_show_masks_secret_from_env(self):
        secret = "s3cr3t-" + unique_word()
        p = self.cli(["config", "show"], env={"XNAI_SERVER_API_KEY": secret}, expect=0)
        self.assertNotIn(secret, p.out + p.err)
        conf = parse_show(p.out)
        self.assertEqual(conf["server.api_key"], '"********"')
        # From a file via --set server.api_key_file, masked too.
        secret_file = self.write("key.txt", secret + "\n")
        p = self.cli(["config", "show", "--set", "server.api_key_file=" + secret_file], expect=0)
        self.assertNotIn(secret, p.out + p.err)
        self.assertEqual(parse_show(p.out)["server.api_key"], '"********"')
        # Without a secret: empty, not masked.
        p = self.cli(["config", "show"], expect=0)
        self.assertEqual(parse_show(p.out)["server.api_key"], '""')

    def test_config_show_lists_every_key(self):
        p = self.cli(["config", "show"], expect=0)
        conf = parse_show(p.out)
        for key in ("server.listen", "server.threads", "server.max_body_bytes",
                    "server.shutdown_grace_ms", "server.api_key", "data.dir",
                    "ingest.chunk_target_chars", "ingest.allowed_roots", "search.default_k",
                    "search.max_k", "log.level", "log.format"):
            self.assertIn(key, conf)
        self.assertEqual(conf["server.listen"], '"127.0.0.1:8000"')

    def test_config_layering_file_env_flags(self):
        cfg = self.write("conf/xnai.toml", '[server]\nthreads = 3\nlisten = "127.0.0.1:9100"\n'
                         '[search]\ndefault_k = 7\n[ingest]\nallowed_roots = ["/srv/a"]\n')
        env = {"XNAI_SERVER_THREADS": "5", "XNAI_INGEST_ALLOWED_ROOTS": "/srv/b,/srv/c"}
        conf = parse_show(self.cli(["config", "show", "--config", cfg], expect=0).out)
        self.assertEqual(conf["server.threads"], "3")
        self.assertEqual(conf["search.default_k"], "7")
        self.assertEqual(conf["server.listen"], '"127.0.0.1:9100"')
        conf = parse_show(self.cli(["config", "show", "--config", cfg], env=env, expect=0).out)
        self.assertEqual(conf["server.threads"], "5")          # env beats file
        self.assertEqual(conf["search.default_k"], "7")        # file kept where env is silent
        self.assertIn("/srv/b", conf["ingest.allowed_roots"])
        self.assertIn("/srv/c", conf["ingest.allowed_roots"])
        self.assertNotIn("/srv/a", conf["ingest.allowed_roots"])
        conf = parse_show(self.cli(["config", "show", "--config", cfg, "--set",
                                    "server.threads=6", "--set", "search.default_k=9"],
                                   env=env, expect=0).out)
        self.assertEqual(conf["server.threads"], "6")          # --set beats env
        self.assertEqual(conf["search.default_k"], "9")
        # ./xnai.toml in the working directory is read when --config is absent.
        conf = parse_show(self.cli(["config", "show"], cwd=self.path("conf"), expect=0).out)
        self.assertEqual(conf["server.threads"], "3")
        # Bad values are usage errors naming the key.
        p = self.cli(["config", "show"], env={"XNAI_SERVER_THREADS": "many"})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("XNAI_SERVER_THREADS", p.err)
        p = self.cli(["config", "show", "--config", self.path("missing.toml")])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("missing.toml", p.err)
        bad = self.write("bad.toml", "[server]\nnot_a_key = 1\n")
        p = self.cli(["config", "show", "--config", bad])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not_a_key", p.err)

    # --- ingest ----------------------------------------------------------------

    def test_ingest_folder_summary_and_rerun(self):
        folder, words = self.make_folder()
        data = self.path("data")
        p = self.cli(["ingest", folder], data=data, expect=0)
        self.assertRegex(p.out, r"ingested 4 file\(s\) into collection 'default': 3 added, "
                                r"0 updated, 0 unchanged, 1 skipped")
        m = re.search(r"(\d+) chunk\(s\) written, ([\d.]+ (B|KiB|MiB)) read", p.out)
        self.assertTrue(m, p.out)
        self.assertGreaterEqual(int(m.group(1)), 3)
        self.assertIn("skipped:", p.out)
        skipped_line = [l for l in p.out.splitlines() if "picture.png" in l]
        self.assertEqual(len(skipped_line), 1, p.out)
        self.assertRegex(skipped_line[0], r"picture\.png: .*(binary|unsupported|image)")

        p = self.cli(["ingest", folder], data=data, expect=0)
        self.assertIn("0 added, 0 updated, 3 unchanged, 1 skipped", p.out)
        self.assertRegex(p.out, r"\b0 chunk\(s\) written")

        # JSON summary after one file changes.
        self.write("docs/readme.txt", "Now different content %s.\n" % unique_word())
        p = self.cli(["ingest", folder, "--json"], data=data, expect=0)
        summary = json.loads(p.out)
        self.assertEqual(summary["files"], 4)
        self.assertEqual((summary["added"], summary["updated"], summary["unchanged"],
                          summary["skipped"]), (0, 1, 2, 1))
        self.assertGreater(summary["bytes"], 0)
        self.assertEqual(len(summary["skipped_files"]), 1)
        self.assertTrue(summary["skipped_files"][0]["reason"])
        for key in ("md", "html"):
            p = self.cli(["search", words[key], "--json"], data=data, expect=0)
            self.assertEqual(len(json.loads(p.out)["hits"]), 1, key)
        p = self.cli(["search", words["txt"], "--json"], data=data, expect=0)
        self.assertEqual(json.loads(p.out)["hits"], [], "replaced text still found")

    def test_ingest_collection_option(self):
        folder, words = self.make_folder()
        data = self.path("data")
        self.cli(["ingest", folder, "--collection", "manuals"], data=data, expect=0)
        p = self.cli(["search", words["md"], "--json", "--collection", "manuals"], data=data,
                     expect=0)
        hits = json.loads(p.out)["hits"]
        self.assertEqual(len(hits), 1)
        self.assertEqual(hits[0]["collection"], "manuals")
        p = self.cli(["ingest", folder, "--collection", "bad name"], data=data)
        self.assertEqual(p.returncode, 2, p.err)

    def test_ingest_nonexistent_path_exit_1(self):
        data = self.path("data")
        p = self.cli(["ingest", "/nonexistent/xnai-path"], data=data)
        self.assertEqual(p.returncode, 1, p.out + p.err)
        self.assertIn("/nonexistent/xnai-path", p.err)
        self.assertTrue(p.err.startswith("xnai: "), p.err)
        self.assertEqual(len(p.err.strip().splitlines()), 1, "want a one-line message: " + p.err)

    def test_ingest_dangling_symlink_is_skipped(self):
        folder, words = self.make_folder()
        os.symlink(self.path("docs", "gone.txt"), self.path("docs", "dangling.txt"))
        data = self.path("data")
        p = self.cli(["ingest", folder, "--json"], data=data, expect=0)
        summary = json.loads(p.out)
        self.assertEqual(summary["added"], 3)
        reasons = {os.path.basename(s["source"]): s["reason"] for s in summary["skipped_files"]}
        self.assertIn("dangling.txt", reasons, summary)
        self.assertTrue(reasons["dangling.txt"])
        p = self.cli(["search", words["txt"], "--json"], data=data, expect=0)
        self.assertEqual(len(json.loads(p.out)["hits"]), 1)

    def test_files_vanishing_during_ingest(self):
        data = self.path("data")
        word = unique_word()
        names = []
        for i in range(200):
            names.append(self.write("many/f%04d.txt" % i,
                                    ("file %d about %s. " % (i, word)) * 40))
        proc_result = {}

        def run():
            proc_result["p"] = self.cli(["ingest", self.path("many"), "--json"], data=data)

        def blob_count():
            return sum(len(files) for _, _, files in os.walk(os.path.join(data, "blobs")))

        t = threading.Thread(target=run)
        t.start()
        # Once the run is storing files (the folder has been listed), delete
        # files from the end, which it has listed but not read yet.
        deadline = time.monotonic() + 20
        while blob_count() < 5 and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        vanished = names[150:]
        for name in vanished:
            os.unlink(name)
        t.join(60)
        p = proc_result["p"]
        self.assertEqual(p.returncode, 0, p.out + p.err)
        summary = json.loads(p.out)
        self.assertEqual(summary["files"], summary["added"] + summary["updated"] +
                         summary["unchanged"] + summary["skipped"], summary)
        for s in summary["skipped_files"]:
            self.assertTrue(s["reason"], s)
        self.assertGreaterEqual(summary["added"], 100)
        reasons = {os.path.basename(s["source"]): s["reason"] for s in summary["skipped_files"]}
        gone = [n for n in reasons if "vanish" in reasons[n]]
        self.assertTrue(gone, "no file reported as vanished: %s" % summary)
        self.assertTrue(set(gone) <= {os.path.basename(n) for n in vanished}, gone)
        # The store is consistent: every stored document has its chunks and is
        # searchable; the count matches the summary.
        server = self.start_server(data_dir=data)
        docs = []
        offset = 0
        while True:
            page = server.get("/api/documents?limit=1000&offset=%d" % offset).json()["documents"]
            docs += page
            if len(page) < 1000:
                break
            offset += 1000
        self.assertEqual(len(docs), summary["added"])
        for d in docs[:: max(1, len(docs) // 25)]:
            full = server.get("/api/documents/%d" % d["id"]).json()
            self.assertEqual(len(full["chunks"]), full["chunk_count"])
            self.assertGreater(full["chunk_count"], 0)
        self.assertEqual(len(self.search(server, word, k=100)), min(100, len(docs)))

    # --- search ----------------------------------------------------------------

    def test_search_json_and_text(self):
        folder, words = self.make_folder()
        data = self.path("data")
        self.cli(["ingest", folder], data=data, expect=0)
        p = self.cli(["search", words["md"], "--json"], data=data, expect=0)
        hits = json.loads(p.out)["hits"]
        self.assertEqual(len(hits), 1)
        self.assertTrue({"chunk_id", "document_id", "source", "title", "text", "snippet",
                         "score"} <= set(hits[0]))
        self.assertIn("install.md", hits[0]["source"])
        self.assertIn(words["md"], hits[0]["snippet"])
        p = self.cli(["search", words["html"]], data=data, expect=0)
        self.assertIn("Web", p.out)
        self.assertIn(words["html"], p.out)
        self.assertNotIn("\x1b[", p.out, "ANSI colours on a non-terminal")
        p = self.cli(["search", unique_word()], data=data, expect=0)
        self.assertIn("no results", p.out)
        for q in ('"', "NEAR(", "AND OR NOT", "*", "col:x"):
            p = self.cli(["search", q, "--json"], data=data)
            self.assertIn(p.returncode, (0, 2), "search %r: %s" % (q, p.err))

    def test_search_usage_and_runtime_errors(self):
        folder, words = self.make_folder()
        data = self.path("data")
        p = self.cli(["search", ""], data=data)
        self.assertEqual(p.returncode, 2, p.err)
        self.assertIn("empty", p.err)
        p = self.cli(["search", "   "], data=data)
        self.assertEqual(p.returncode, 2, p.err)
        p = self.cli(["search", "anything"], data=self.path("empty-data"))
        self.assertEqual(p.returncode, 1, p.err)
        self.assertIn("xnai ingest", p.err)
        self.cli(["ingest", folder], data=data, expect=0)
        p = self.cli(["search", words["md"], "-k", "1000"], data=data)
        self.assertEqual(p.returncode, 2, p.err)
        p = self.cli(["search", words["md"], "--collection", "nosuch"], data=data)
        self.assertEqual(p.returncode, 1, p.out + p.err)
        self.assertIn("nosuch", p.err)

    # --- --data ----------------------------------------------------------------

    def test_data_flag_respected_by_every_subcommand(self):
        folder, words = self.make_folder()
        data_a, data_b = self.path("data-a"), self.path("data-b")
        cwd = self.path("cwd")
        self.cli(["ingest", folder], data=data_a, expect=0)
        self.assertTrue(os.path.exists(os.path.join(data_a, "xnai.db")))
        # Global option before the subcommand works the same.
        self.cli(["--data", data_b, "ingest", os.path.join(folder, "readme.txt")], expect=0)
        p = self.cli(["search", words["md"], "--json"], data=data_a, expect=0)
        self.assertEqual(len(json.loads(p.out)["hits"]), 1)
        p = self.cli(["search", words["md"], "--json"], data=data_b, expect=0)
        self.assertEqual(json.loads(p.out)["hits"], [])
        p = self.cli(["search", words["txt"], "--json"], data=data_b, expect=0)
        self.assertEqual(len(json.loads(p.out)["hits"]), 1)
        conf = parse_show(self.cli(["config", "show"], data=data_a, expect=0).out)
        self.assertEqual(conf["data.dir"], '"%s"' % data_a)
        conf = parse_show(self.cli(["config", "show"], env={"XNAI_DATA_DIR": data_b},
                                   expect=0).out)
        self.assertEqual(conf["data.dir"], '"%s"' % data_b)
        server = self.start_server(data_dir=data_a)
        self.assertEqual(len(self.search(server, words["html"])), 1)
        self.assertFalse(os.path.exists(os.path.join(cwd, "data")),
                         "a subcommand used ./data despite --data")


if __name__ == "__main__":
    unittest.main()
