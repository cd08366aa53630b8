"""`xnai model synth` and `xnai bench engine`: random-weight models of real
shapes are written, load, tokenize, generate and embed; the benchmark prints
sane numbers; wrong usage gets the documented exit codes.

Uses the tiny presets only (a few MB each), so it needs no testdata."""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import clean_env, find_binary

DECODER_TYPES = ("Q8_0", "Q4_K_M", "F16", "Q4_0")


def run(*args, env=None, timeout=120):
    return subprocess.run([find_binary(), *args], capture_output=True, timeout=timeout,
                          env=clean_env(env))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class EngineBenchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="xnai-engine-bench-")
        cls.models = {}
        for preset, types in (("tiny-qwen3", DECODER_TYPES), ("tiny-bert", ("F16",))):
            for type_name in types:
                path = os.path.join(cls.dir, f"{preset}-{type_name}.gguf")
                r = run("model", "synth", "--preset", preset, "--type", type_name, "--out", path)
                if r.returncode != 0:
                    raise RuntimeError(f"synth {preset} {type_name}: {r.stderr.decode()}")
                cls.models[(preset, type_name)] = path

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def bench_json(self, model, *extra, env=None):
        r = run("bench", "engine", "--model", model, "--json", *extra, env=env)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        lines = r.stdout.decode().strip().splitlines()
        self.assertEqual(len(lines), 1, "one JSON object on one line")
        return json.loads(lines[0])

    # --- synth ------------------------------------------------------------------

    def test_synth_reports_and_model_info_agrees(self):
        path = self.models[("tiny-qwen3", "Q4_K_M")]
        info = json.loads(run("model", "info", "--json", path).stdout)
        self.assertEqual(info["architecture"], "qwen3")
        self.assertEqual(info["vocabulary"], "gpt2")
        self.assertEqual(info["vocabulary_size"], 4096)
        types = {t["type"]: t["tensors"] for t in info["tensor_types"]}
        # The Q4_K_M mix: tied embeddings and the second layer's attn_v and
        # ffn_down in Q6_K, the rest Q4_K, norms F32.
        self.assertEqual(types, {"Q4_K": 12, "Q6_K": 3, "F32": 9})
        self.assertEqual(info["file_bytes"], os.path.getsize(path))

    def test_synth_is_deterministic_by_seed(self):
        a = os.path.join(self.dir, "seed-a.gguf")
        b = os.path.join(self.dir, "seed-b.gguf")
        c = os.path.join(self.dir, "seed-c.gguf")
        for path, seed in ((a, "5"), (b, "5"), (c, "6")):
            r = run("model", "synth", "--preset", "tiny-qwen3", "--type", "q8_0", "--out", path,
                    "--seed", seed)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertIn(b"wrote", r.stdout)
            self.assertEqual(r.stderr, b"", "no progress output when stderr is not a terminal")
        self.assertEqual(sha256(a), sha256(b))
        self.assertNotEqual(sha256(a), sha256(c))

    def test_synth_errors(self):
        out = os.path.join(self.dir, "x.gguf")
        r = run("model", "synth", "--preset", "gpt-5", "--type", "Q8_0", "--out", out)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"unknown preset 'gpt-5'", r.stderr)
        self.assertIn(b"qwen3-0.6b", r.stderr)  # lists the valid names
        self.assertIn(b"tiny-qwen3", r.stderr)
        r = run("model", "synth", "--preset", "tiny-qwen3", "--type", "Q3_K", "--out", out)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"Q4_K_M", r.stderr)
        r = run("model", "synth", "--preset", "tiny-qwen3", "--type", "Q8_0")
        self.assertEqual(r.returncode, 2)  # --out is required
        r = run("model", "synth", "--preset", "tiny-qwen3", "--type", "Q8_0", "--out",
                os.path.join(self.dir, "missing", "dir", "x.gguf"))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"No such file or directory", r.stderr)
        self.assertEqual(r.stderr.count(b"\n"), 1)
        self.assertFalse(os.path.exists(out))

    # --- the vocabulary works -----------------------------------------------------

    def test_generate_tokenize_and_embed_on_synthesized_models(self):
        model = self.models[("tiny-qwen3", "Q8_0")]
        r = run("generate", "--model", model, "--prompt", "The capital of France is", "-n", "8",
                "--temp", "0", "-t", "1")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn(b"prompt:", r.stderr)
        self.assertIn(b"generation:", r.stderr)
        text = " Hello world, the quick brown fox!"
        r = run("tokenize", "--model", model, "--json", "--", text)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        ids = json.loads(r.stdout)
        self.assertLess(len(ids), len(text))  # merges apply
        r = run("detokenize", "--model", model, ",".join(map(str, ids)))
        self.assertEqual(r.stdout.decode(), text + "\n")

        bert = self.models[("tiny-bert", "F16")]
        r = run("embed", "--model", bert, "--normalize", "-t", "1", "hello world", "second text")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        vectors = [json.loads(line) for line in r.stdout.decode().splitlines()]
        self.assertEqual(len(vectors), 2)
        self.assertEqual(len(vectors[0]), 128)
        self.assertAlmostEqual(sum(v * v for v in vectors[0]), 1.0, places=3)

    # --- bench engine ---------------------------------------------------------------

    def test_bench_decoder_json_every_type(self):
        for type_name in DECODER_TYPES:
            with self.subTest(type=type_name):
                r = self.bench_json(self.models[("tiny-qwen3", type_name)],
                                    "-p", "8", "-n", "4", "-r", "1", "-t", "1")
                for key in ("prompt_tok_s", "gen_tok_s", "load_ms", "peak_rss_mb", "cpu_path",
                            "threads", "model", "types", "p", "n", "r"):
                    self.assertIn(key, r)
                self.assertGreater(r["prompt_tok_s"], 0)
                self.assertGreater(r["gen_tok_s"], 0)
                self.assertLessEqual(r["prompt_tok_s_min"], r["prompt_tok_s"])
                self.assertGreaterEqual(r["gen_tok_s_max"], r["gen_tok_s"])
                self.assertGreaterEqual(r["load_ms"], 0)
                self.assertGreater(r["peak_rss_mb"], 1)
                self.assertIn(r["cpu_path"], ("scalar", "avx2", "avx512"))
                self.assertEqual((r["p"], r["n"], r["r"], r["threads"]), (8, 4, 1, 1))
                self.assertEqual(r["kind"], "decoder")
                self.assertEqual(r["model"], f"tiny-qwen3-{type_name}.gguf")
                self.assertIn(type_name.split("_M")[0], r["types"])
                self.assertEqual(len(r["runs"]), 1)

    def test_bench_two_threads_and_repetitions(self):
        r = self.bench_json(self.models[("tiny-qwen3", "Q8_0")], "-p", "16", "-n", "4", "-r", "3",
                            "-t", "2")
        self.assertEqual(r["threads"], 2)
        self.assertEqual(len(r["runs"]), 3)
        self.assertLessEqual(r["prompt_tok_s_min"], r["prompt_tok_s"])
        self.assertLessEqual(r["prompt_tok_s"], r["prompt_tok_s_max"])

    def test_bench_cpu_path_from_env(self):
        r = self.bench_json(self.models[("tiny-qwen3", "Q4_K_M")], "-p", "8", "-n", "2", "-r", "1",
                            "-t", "1", env={"XNAI_CPU": "scalar"})
        self.assertEqual(r["cpu_path"], "scalar")
        self.assertGreater(r["gen_tok_s"], 0)

    def test_bench_encoder(self):
        r = self.bench_json(self.models[("tiny-bert", "F16")], "--batch", "4", "--text-tokens",
                            "16", "-r", "2", "-t", "1")
        self.assertEqual(r["kind"], "encoder")
        self.assertGreater(r["texts_per_s"], 0)
        self.assertAlmostEqual(r["tokens_per_s"], r["texts_per_s"] * 16, places=3)
        self.assertEqual((r["batch"], r["text_tokens"], r["r"]), (4, 16, 2))
        for key in ("load_ms", "peak_rss_mb", "cpu_path", "threads"):
            self.assertIn(key, r)

    def test_bench_table_by_default(self):
        r = run("bench", "engine", "--model", self.models[("tiny-qwen3", "Q8_0")], "-p", "8", "-n",
                "2", "-r", "1", "-t", "1")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        out = r.stdout.decode()
        for label in ("model", "cpu path", "load", "prompt", "generation", "peak RSS"):
            self.assertIn(label, out)
        self.assertIn("tok/s", out)

    def test_bench_errors(self):
        model = self.models[("tiny-qwen3", "Q8_0")]
        r = run("bench", "engine", "--model", model, "-p", "8", "-n", "2",
                env={"XNAI_CPU": "pentium"})
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"XNAI_CPU", r.stderr)
        r = run("bench", "engine", "--model", os.path.join(self.dir, "missing.gguf"))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.count(b"\n"), 1)
        r = run("bench", "engine", "--model", "/etc/hostname")
        self.assertEqual(r.returncode, 1)
        r = run("bench", "engine", "--model", model, "-p", "5000", "-n", "1")
        self.assertEqual(r.returncode, 2)  # beyond the 4096-token context
        self.assertIn(b"context", r.stderr)
        r = run("bench", "engine", "--model", model, "-r", "0")
        self.assertEqual(r.returncode, 2)
        r = run("bench", "engine")
        self.assertEqual(r.returncode, 2)
        r = run("bench")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
