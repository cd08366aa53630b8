"""The engine's command-line test surface: `xnai tokenize`, `detokenize` and
`model info`, against the reference vocabularies and models in the shared
testdata (XNAI_TESTDATA, else ../shared/testdata beside the repository)."""

import json
import os
import subprocess
import unittest

from harness import find_binary

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESTDATA = os.environ.get("XNAI_TESTDATA") or os.path.join(REPO, "..", "shared", "testdata")
HAVE_TESTDATA = os.path.isdir(os.path.join(TESTDATA, "vocab"))
SKIP_REASON = ("SKIPPED LOUDLY: reference testdata not found at %s (set XNAI_TESTDATA)"
               % TESTDATA)


def run(*args, env=None):
    full_env = dict(os.environ, **env) if env else None
    return subprocess.run([find_binary(), *args], capture_output=True, timeout=60, env=full_env)


def vocab(name):
    return os.path.join(TESTDATA, "vocab", "ggml-vocab-%s.gguf" % name)


def cases(name):
    """(text, expected ids) pairs from the .inp/.out files of a vocabulary."""
    with open(vocab(name) + ".inp", encoding="utf-8", newline="") as f:
        texts = f.read().split("\n__ggml_vocab_test__\n")
    with open(vocab(name) + ".out", encoding="utf-8") as f:
        ids = [[int(x) for x in line.split()] for line in f.read().split("\n")]
    return list(zip(texts, ids))


@unittest.skipUnless(HAVE_TESTDATA, SKIP_REASON)
class TokenizeCliTest(unittest.TestCase):
    def test_tokenize_matches_reference_ids(self):
        for name in ("gpt-2", "llama-spm", "bert-bge", "gpt2-pre-qwen2"):
            for text, expected in cases(name)[:12]:
                if text.startswith("-"):
                    continue  # covered below with "--"
                r = run("tokenize", "--model", vocab(name), "--json", "--", text)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout), expected, (name, text))

    def test_plain_output_and_leading_dash(self):
        r = run("tokenize", "--model", vocab("gpt-2"), "--", "-x Hello")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(all(tok.isdigit() for tok in r.stdout.decode().split()))

    def test_special_tokens_only_with_flag(self):
        plain = json.loads(run("tokenize", "--model", vocab("gpt-2"), "--json",
                               "Hi <|endoftext|>").stdout)
        special = json.loads(run("tokenize", "--model", vocab("gpt-2"), "--json", "--special",
                                 "Hi <|endoftext|>").stdout)
        self.assertNotIn(50256, plain)
        self.assertEqual(special[-1], 50256)

    def test_detokenize_round_trip(self):
        text = " Hello, wörld!\n\tTabs and  spaces"
        ids = json.loads(run("tokenize", "--model", vocab("gpt-2"), "--json", "--", text).stdout)
        r = run("detokenize", "--model", vocab("gpt-2"), ",".join(map(str, ids)))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode("utf-8"), text + "\n")

    def test_bad_input_is_one_line_and_exit_code(self):
        r = run("detokenize", "--model", vocab("gpt-2"), "99999999")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"out of range", r.stderr)
        self.assertEqual(r.stderr.count(b"\n"), 1)
        r = run("detokenize", "--model", vocab("gpt-2"), "1,x")
        self.assertEqual(r.returncode, 2)
        r = run("tokenize", "--model", "/etc/passwd", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not a GGUF file", r.stderr)
        r = run("tokenize", "--model", "/nonexistent.gguf", "x")
        self.assertEqual(r.returncode, 1)


@unittest.skipUnless(HAVE_TESTDATA, SKIP_REASON)
class ModelInfoCliTest(unittest.TestCase):
    def test_json_describes_the_model(self):
        path = os.path.join(TESTDATA, "models", "qwen3-s-q4_k_m.gguf")
        r = run("model", "info", path, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        info = json.loads(r.stdout)
        self.assertEqual(info["architecture"], "qwen3")
        self.assertEqual(info["file_bytes"], os.path.getsize(path))
        self.assertGreater(info["parameters"], 1_000_000)
        types = {t["type"] for t in info["tensor_types"]}
        self.assertTrue({"Q4_K", "Q6_K", "F32"} <= types, types)
        self.assertAlmostEqual(sum(t["share"] for t in info["tensor_types"]), 1.0, places=6)
        self.assertEqual(info["vocabulary"], "gpt2")
        self.assertFalse(info["chat_template"])

    def test_text_output_and_errors(self):
        r = run("model", "info", os.path.join(TESTDATA, "models", "llama-s-f32.gguf"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"architecture   llama", r.stdout)
        r = run("model", "info", "/etc/hostname")
        self.assertEqual(r.returncode, 1)


@unittest.skipUnless(HAVE_TESTDATA, SKIP_REASON)
class GenerateCliTest(unittest.TestCase):
    MODEL = "qwen3-gpt2vocab-q8_0"

    def reference(self):
        with open(os.path.join(TESTDATA, "reference", self.MODEL + ".json")) as f:
            return json.load(f)

    def test_greedy_generation_reproduces_the_reference_text(self):
        model = os.path.join(TESTDATA, "models", self.MODEL + ".gguf")
        for case in self.reference()["text"]:
            r = run("generate", "--model", model, "--prompt", case["prompt"],
                    "-n", str(len(case["greedy_tokens"])), "--temp", "0", "-t", "2",
                    # A random-weight model has near-ties that cache rounding
                    # can flip; the exact cache reproduces the text exactly.
                    "--kv-cache", "f32")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.decode("utf-8"), case["greedy_text"] + "\n")
            self.assertIn(b"tok/s", r.stderr)

    def test_kv_cache_choices(self):
        model = os.path.join(TESTDATA, "models", self.MODEL + ".gguf")
        case = self.reference()["text"][0]
        for choice in ("f16", "q8_0"):
            r = run("generate", "--model", model, "--prompt", case["prompt"], "-n", "8",
                    "--temp", "0", "--kv-cache", choice)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.strip(), choice)
        r = run("generate", "--model", model, "--prompt", "x", "--kv-cache", "q4")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--kv-cache", r.stderr)

    def test_cpu_paths_give_the_same_greedy_text(self):
        model = os.path.join(TESTDATA, "models", self.MODEL + ".gguf")
        case = self.reference()["text"][0]
        texts = set()
        for path in ("scalar", "avx2", "avx512"):
            r = run("generate", "--model", model, "--prompt", case["prompt"], "-n", "12",
                    "--temp", "0", "--kv-cache", "f32", env={"XNAI_CPU": path})
            if r.returncode == 2 and b"lacks" in r.stderr:
                continue  # this CPU has no such path
            self.assertEqual(r.returncode, 0, r.stderr)
            texts.add(r.stdout)
        self.assertEqual(len(texts), 1, texts)
        r = run("generate", "--model", model, "--prompt", "x", env={"XNAI_CPU": "sse9"})
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"XNAI_CPU=sse9", r.stderr)

    def test_seeded_sampling_is_reproducible(self):
        model = os.path.join(TESTDATA, "models", self.MODEL + ".gguf")
        args = ("generate", "--model", model, "--prompt", "Once upon a time", "-n", "12",
                "--temp", "0.9", "--top-k", "50", "--top-p", "0.9", "--seed", "7")
        first, second = run(*args), run(*args)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(first.stdout, second.stdout)

    def test_logits_match_the_reference(self):
        import struct
        import tempfile
        ref = self.reference()
        model = os.path.join(TESTDATA, "models", self.MODEL + ".gguf")
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "logits.f32")
            r = run("logits", "--model", model, "--tokens", ",".join(map(str, ref["tokens"])),
                    "--out", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out, "rb") as f:
                mine = f.read()
        with open(os.path.join(TESTDATA, ref["logits"]), "rb") as f:
            want = f.read()
        self.assertEqual(len(mine), len(want))
        a = struct.unpack("<%df" % (len(mine) // 4), mine)
        b = struct.unpack("<%df" % (len(want) // 4), want)
        err = sum((x - y) ** 2 for x, y in zip(a, b))
        norm = sum(y * y for y in b)
        self.assertLess((err / norm) ** 0.5, 4e-2)

    def test_bad_input_exit_1(self):
        model = os.path.join(TESTDATA, "models", "qwen3-s-q8_0.gguf")
        r = run("logits", "--model", model, "--tokens", "1,99999", "--out", "/tmp/never")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"99999", r.stderr)
        r = run("generate", "--model", model, "--prompt", "", "-n", "2")
        self.assertEqual(r.returncode, 1)
        r = run("generate", "--model", os.path.join(TESTDATA, "vocab", "ggml-vocab-gpt-2.gguf"),
                "--prompt", "x")
        self.assertEqual(r.returncode, 1)


@unittest.skipUnless(HAVE_TESTDATA, SKIP_REASON)
class EmbedCliTest(unittest.TestCase):
    def test_embeddings_match_the_reference(self):
        for name in ("bert-s-cls-f16", "bert-s-mean-q8_0"):
            with open(os.path.join(TESTDATA, "reference", name + ".json")) as f:
                cases = json.load(f)["cases"]
            model = os.path.join(TESTDATA, "models", name + ".gguf")
            r = run("embed", "--model", model, *[c["text"] for c in cases])
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.decode().splitlines()
            self.assertEqual(len(lines), len(cases))
            for line, case in zip(lines, cases):
                mine, want = json.loads(line), case["embedding"]
                dot = sum(a * b for a, b in zip(mine, want))
                norm = (sum(a * a for a in mine) * sum(b * b for b in want)) ** 0.5
                self.assertGreaterEqual(dot / norm, 0.9999, (name, case["text"]))

    def test_normalize_and_errors(self):
        model = os.path.join(TESTDATA, "models", "bert-s-cls-f16.gguf")
        r = run("embed", "--model", model, "--normalize", "hello")
        self.assertEqual(r.returncode, 0, r.stderr)
        vec = json.loads(r.stdout)
        self.assertAlmostEqual(sum(x * x for x in vec), 1.0, places=4)
        self.assertEqual(run("embed", "--model", model, "").returncode, 1)
        r = run("embed", "--model", os.path.join(TESTDATA, "models", "qwen3-s-q8_0.gguf"), "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not an encoder", r.stderr)


if __name__ == "__main__":
    unittest.main()
