#!/usr/bin/env python3
"""Retrieval quality: recall@5 of the gold paragraph through xnai's /api/search,
against a plain Okapi BM25 over the same paragraphs and questions.

The target (from the issue): a public question-answering corpus of about
2,000 paragraphs, ingested as one text file per paragraph, gives recall@5 of
the gold paragraph at least that of a plain BM25 implementation (~0.92).

  recall_eval.py --xnai build/xnai [--corpus DIR] [--out FILE.json]

--corpus DIR: a real QA corpus, in this simple format:
    DIR/paragraphs/<name>.txt       one paragraph per file
    DIR/questions.jsonl             {"question": "...", "gold": "<name>.txt"} per line

Without --corpus (this machine has no internet), a STAND-IN corpus is built
from text every Debian machine has: /usr/share/common-licenses/* and the
plain and gzipped text files under /usr/share/doc (changelogs, READMEs, NEWS),
split into paragraphs of 30-200 words, deduplicated, ~2,000 sampled with a
seed. Each question is made from its gold paragraph: 3-6 content words of one
of its sentences (stopwords dropped), each re-inflected (plural/singular,
-ed, -ing) with probability 0.25, plus with probability 0.5 one content word
of another paragraph, shuffled. Keyword questions still lack real
paraphrase, so the absolute numbers are not comparable with the published
~0.92; the comparison with BM25 over the same questions is the point.

--self-test checks the tokenizer, BM25 ranking and the stand-in corpus
builder on built-in text (no xnai needed); used as a ctest smoke test.

Python 3 standard library only.
"""

import argparse
import collections
import glob
import gzip
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xnai_proc  # noqa: E402

TOKEN_RE = re.compile(r"[a-z0-9]+")
WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]")
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")

# Common English stopwords (written here; a question keeps only content words).
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can cannot could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just let me more most my myself no nor not now of off on once only or other ought
our ours ourselves out over own same shall she should so some such than that the their theirs
them themselves then there these they this those through to too under until up upon us very
was we were what when where which while who whom why will with would you your yours yourself
yourselves also may might must one two new use used using via etc e g ie eg non see within
without
""".split())


def tokenize(text):
    """Plain BM25 tokenization: lowercase alphanumeric runs, no stemming."""
    return TOKEN_RE.findall(text.lower())


class BM25:
    """Okapi BM25 (k1=1.2, b=0.75), idf = ln(1 + (N - df + 0.5) / (df + 0.5))."""

    def __init__(self, docs, k1=1.2, b=0.75):
        self.k1, self.b = k1, b
        self.names = [name for name, _ in docs]
        self.tfs = []
        self.lens = []
        df = collections.Counter()
        self.postings = collections.defaultdict(list)
        for idx, (_, text) in enumerate(docs):
            tf = collections.Counter(tokenize(text))
            self.tfs.append(tf)
            self.lens.append(sum(tf.values()))
            for term in tf:
                df[term] += 1
                self.postings[term].append(idx)
        n = len(docs)
        self.avgdl = (sum(self.lens) / n) if n else 0.0
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}

    def search(self, query, k):
        scores = collections.defaultdict(float)
        for term in set(tokenize(query)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for idx in self.postings[term]:
                tf = self.tfs[idx][term]
                norm = self.k1 * (1 - self.b + self.b * self.lens[idx] / self.avgdl)
                scores[idx] += idf * tf * (self.k1 + 1) / (tf + norm)
        # Ties broken by document order so the result is deterministic.
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [self.names[idx] for idx, _ in ranked]


# --- the stand-in corpus ------------------------------------------------------

def read_text_file(path, max_bytes=4 << 20):
    try:
        if os.path.getsize(path) > max_bytes:
            return None
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read(max_bytes * 8)
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if b"\0" in raw[:8192]:
        return None  # binary
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_paragraphs(text, min_words=30, max_words=200):
    """Blank-line separated blocks with 30-200 words, mostly prose."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        flat = " ".join(block.split())
        words = flat.split(" ")
        if not (min_words <= len(words) <= max_words):
            continue
        letters = sum(ch.isalpha() for ch in flat)
        if letters < 0.7 * len(flat):
            continue  # tables, hex dumps, lists of versions
        alpha_words = sum(1 for w in words if WORD_RE.fullmatch(w.strip(".,;:()\"'!?")))
        if alpha_words < 0.6 * len(words):
            continue
        out.append(flat)
    return out


def standin_sources():
    files = sorted(glob.glob("/usr/share/common-licenses/*"))
    doc_files = []
    for root, dirs, names in os.walk("/usr/share/doc"):
        dirs.sort()
        for name in sorted(names):
            low = name.lower()
            if low == "copyright":
                continue  # license boilerplate, near-duplicates of common-licenses
            stem = low[:-3] if low.endswith(".gz") else low
            if (stem.startswith(("changelog", "readme", "news", "todo", "faq", "authors"))
                    or stem.endswith((".txt", ".md"))):
                doc_files.append(os.path.join(root, name))
    return [f for f in files if os.path.isfile(f)] + doc_files


def build_standin_paragraphs(sources, count, rng):
    seen_full, seen_head, candidates = set(), set(), []
    for path in sources:
        text = read_text_file(path)
        if not text:
            continue
        for para in split_paragraphs(text):
            toks = tokenize(para)
            full, head = " ".join(toks), " ".join(toks[:12])
            # Exact and near duplicates (same opening) would make the gold
            # paragraph ambiguous for every retriever.
            if full in seen_full or head in seen_head:
                continue
            seen_full.add(full)
            seen_head.add(head)
            candidates.append((path, para))
    if len(candidates) > count:
        candidates = rng.sample(candidates, count)
    return candidates


def content_words(sentence):
    out, seen = [], set()
    for w in WORD_RE.findall(sentence):
        low = w.lower()
        if len(low) < 3 or low in STOPWORDS or low in seen:
            continue
        seen.add(low)
        out.append(low)
    return out


def inflect(word):
    """A different inflection of `word` (plural/singular, -ed, -ing), as a person
    asking would use: real questions rarely repeat the answer's exact forms."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    if word.endswith("ing") and len(word) > 5:
        return word[:-3]
    if word.endswith("ed") and len(word) > 4:
        return word[:-2]
    if word.endswith("y") and len(word) > 3:
        return word[:-1] + "ies"
    return word + "s"


def make_question(paragraph, rng, distractor_pool=()):
    """Keyword question for a gold paragraph: 3-6 content words of one of its
    sentences, each re-inflected with probability 0.25, plus (with
    probability 0.5) one content word from another paragraph, shuffled."""
    sentences = [s for s in SENTENCE_RE.split(paragraph) if len(content_words(s)) >= 3]
    words = content_words(rng.choice(sentences)) if sentences else content_words(paragraph)
    if len(words) < 2:
        return None
    n = min(len(words), rng.randint(3, 6))
    picked = [inflect(w) if rng.random() < 0.25 else w for w in rng.sample(words, n)]
    if distractor_pool and rng.random() < 0.5:
        other = content_words(rng.choice(distractor_pool))
        if other:
            picked.append(rng.choice(other))
    rng.shuffle(picked)
    return " ".join(picked)


def write_standin(corpus_dir, paragraphs, n_questions, rng):
    para_dir = os.path.join(corpus_dir, "paragraphs")
    os.makedirs(para_dir, exist_ok=True)
    docs, origins = [], {}
    for i, (origin, text) in enumerate(paragraphs):
        name = f"p{i:05d}.txt"
        with open(os.path.join(para_dir, name), "w", encoding="utf-8") as f:
            f.write(text + "\n")
        docs.append((name, text))
        origins[name] = origin
    questions = []
    pool = [text for _, text in docs]
    for name, text in rng.sample(docs, min(n_questions, len(docs))):
        q = make_question(text, rng, pool)
        if q:
            questions.append({"question": q, "gold": name})
    with open(os.path.join(corpus_dir, "questions.jsonl"), "w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q) + "\n")
    return docs, questions


def load_corpus(corpus_dir):
    para_dir = os.path.join(corpus_dir, "paragraphs")
    if not os.path.isdir(para_dir):
        raise SystemExit(f"recall_eval: {para_dir} is not a directory")
    docs = []
    for name in sorted(os.listdir(para_dir)):
        with open(os.path.join(para_dir, name), encoding="utf-8", errors="replace") as f:
            docs.append((name, f.read()))
    questions = []
    with open(os.path.join(corpus_dir, "questions.jsonl"), encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
                questions.append({"question": str(q["question"]), "gold": str(q["gold"])})
            except (ValueError, KeyError, TypeError) as e:
                raise SystemExit(f"recall_eval: questions.jsonl line {line_no}: {e}")
    names = {n for n, _ in docs}
    missing = [q["gold"] for q in questions if q["gold"] not in names]
    if missing:
        raise SystemExit(f"recall_eval: {len(missing)} gold paragraphs missing, e.g. {missing[0]}")
    return docs, questions


# --- evaluation ---------------------------------------------------------------

def recall_at(k, questions, retrieve):
    """Fraction of questions whose gold is among the first k distinct documents."""
    hits = 0
    for q in questions:
        if q["gold"] in retrieve(q["question"], k):
            hits += 1
    return hits / len(questions) if questions else 0.0


def xnai_recall(xnai, corpus_dir, questions, work_dir, k):
    data_dir = os.path.join(work_dir, "data")
    shutil.rmtree(data_dir, ignore_errors=True)
    t0 = time.monotonic()
    summary = json.loads(xnai_proc.run_cli(
        xnai, data_dir, ["ingest", os.path.join(corpus_dir, "paragraphs"),
                         "--collection", "qa", "--json"]))
    ingest_seconds = time.monotonic() - t0
    if summary.get("skipped"):
        print(f"recall_eval: warning: xnai skipped {summary['skipped']} paragraph files: "
              f"{summary.get('skipped_files', [])[:3]}", file=sys.stderr)
    latencies = []
    with xnai_proc.Server(xnai, data_dir, os.path.join(work_dir, "serve.log")) as server:
        server.start()

        def retrieve(question, kk):
            t = time.monotonic()
            hits = server.get_json("/api/search", {"q": question, "k": kk,
                                                   "collection": "qa"})["hits"]
            latencies.append(time.monotonic() - t)
            return {os.path.basename(h["source"]) for h in hits}

        recall = recall_at(k, questions, retrieve)
    latencies.sort()
    return {
        "recall": recall,
        "ingest_seconds": ingest_seconds,
        "ingested_files": summary.get("added", 0) + summary.get("unchanged", 0),
        "skipped_files": summary.get("skipped", 0),
        "chunks": summary.get("chunks", 0),
        "http_p50_ms": 1e3 * latencies[len(latencies) // 2] if latencies else None,
        "http_p99_ms": 1e3 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        if latencies else None,
    }


def self_test():
    """Fast checks of the pieces that need no xnai. Exit 0 on success."""
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    check(tokenize("Hello, WORLD-42 x_y") == ["hello", "world", "42", "x", "y"], "tokenize")
    docs = [("a", "the cat sat on the mat"), ("b", "dogs chase cats in the park"),
            ("c", "a treatise on mat weaving and mat repair, mats everywhere"),
            ("d", "nothing relevant here at all")]
    bm = BM25(docs)
    check(bm.search("mat", 2) == ["c", "a"], f"bm25 mat ranking {bm.search('mat', 2)}")
    check(bm.search("dogs park", 1) == ["b"], "bm25 two-term")
    check(bm.search("zebra", 5) == [], "bm25 unknown term")
    check(bm.idf["the"] < bm.idf["dogs"], "idf orders common below rare")
    check(all(v > 0 for v in bm.idf.values()), "idf positive")

    prose = ("Licensing terms apply to every redistribution of the software package. " * 3
             + "Each contributor grants permission for modification and distribution freely.")
    paras = split_paragraphs(prose + "\n\n" + "0x1f 0x2e 0x3a " * 20 + "\n\nshort one")
    check(len(paras) == 1 and paras[0].startswith("Licensing"), f"split_paragraphs {paras}")
    q1 = make_question(paras[0], random.Random(5))
    q2 = make_question(paras[0], random.Random(5))
    check(q1 == q2, "make_question deterministic")
    words = q1.split() if q1 else []
    check(3 <= len(words) <= 6, f"question length {q1!r}")
    check(not any(w in STOPWORDS for w in words), "question has no stopwords")
    para_words = set(tokenize(paras[0]))
    check(all(w in para_words or any(inflect(p) == w for p in para_words) for w in words),
          f"question words come from the paragraph {q1!r}")
    check(inflect("licenses") == "license" and inflect("copy") == "copies"
          and inflect("granted") == "grant" and inflect("grant") == "grants", "inflect")
    q3 = make_question(paras[0], random.Random(9), ["zebra giraffe elephant"] * 3)
    check(q3 is not None and len(q3.split()) <= 7, f"question with distractor {q3!r}")

    picked = build_standin_paragraphs([], 10, random.Random(1))
    check(picked == [], "no sources, no paragraphs")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "README.gz")
        with gzip.open(src, "wt") as f:
            f.write(prose + "\n\n" + prose + "\n\n" + prose.replace("Licensing", "Other"))
        got = build_standin_paragraphs([src], 10, random.Random(1))
        check(len(got) == 2, f"dedup of exact duplicates ({len(got)} paragraphs)")
        docs2, qs = write_standin(os.path.join(tmp, "c"), got, 10, random.Random(2))
        loaded_docs, loaded_qs = load_corpus(os.path.join(tmp, "c"))
        check(len(loaded_docs) == 2 and loaded_qs == qs, "write/load round trip")
        bm2 = BM25(loaded_docs)
        check(recall_at(5, qs, lambda q, k: bm2.search(q, k)) == 1.0, "recall on trivial corpus")
    check(recall_at(5, [], lambda q, k: []) == 0.0, "recall of no questions")

    for f in failures:
        print("FAIL:", f)
    print("recall_eval self-test:", "FAILED" if failures else "ok")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--xnai", default="build/xnai", help="the xnai binary")
    ap.add_argument("--corpus", help="a QA corpus dir (paragraphs/ + questions.jsonl)")
    ap.add_argument("--out", help="write the result JSON here")
    ap.add_argument("--paragraphs", type=int, default=2000, help="stand-in corpus size")
    ap.add_argument("--questions", type=int, default=1000, help="stand-in question count")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--work-dir", help="scratch dir (default: a temp dir, removed)")
    ap.add_argument("--bm25-only", action="store_true", help="skip xnai (no binary needed)")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.k < 1 or args.paragraphs < 10 or args.questions < 1:
        ap.error("--k >= 1, --paragraphs >= 10, --questions >= 1")
    if not args.bm25_only:
        xnai_proc.check_executable(args.xnai)

    own_work = args.work_dir is None
    work_dir = tempfile.mkdtemp(prefix="xnai-recall-") if own_work else args.work_dir
    os.makedirs(work_dir, exist_ok=True)
    try:
        rng = random.Random(args.seed)
        if args.corpus:
            corpus_dir, standin = args.corpus, False
            docs, questions = load_corpus(corpus_dir)
            corpus_desc = f"QA corpus at {os.path.abspath(corpus_dir)}"
        else:
            corpus_dir, standin = os.path.join(work_dir, "corpus"), True
            shutil.rmtree(corpus_dir, ignore_errors=True)
            paragraphs = build_standin_paragraphs(standin_sources(), args.paragraphs, rng)
            if len(paragraphs) < 10:
                raise SystemExit("recall_eval: too few paragraphs found under /usr/share")
            docs, questions = write_standin(corpus_dir, paragraphs, args.questions, rng)
            corpus_desc = ("STAND-IN corpus (no public QA corpus reachable): paragraphs from "
                           "/usr/share/common-licenses and /usr/share/doc, synthetic keyword "
                           "questions from a sentence of each gold paragraph")
        if not questions:
            raise SystemExit("recall_eval: no questions")
        print(f"recall_eval: {corpus_desc}", file=sys.stderr)
        print(f"recall_eval: {len(docs)} paragraphs, {len(questions)} questions", file=sys.stderr)

        bm = BM25(docs)
        bm25 = recall_at(args.k, questions, lambda q, k: bm.search(q, k))
        result = {
            "benchmark": "recall",
            "standin_corpus": standin,
            "corpus": corpus_desc,
            "paragraphs": len(docs),
            "questions": len(questions),
            "k": args.k,
            "seed": args.seed,
            f"bm25_recall_at_{args.k}": bm25,
            "bm25": "Okapi BM25 k1=1.2 b=0.75, lowercase [a-z0-9]+ tokens, no stemming",
        }
        if not args.bm25_only:
            xr = xnai_recall(args.xnai, corpus_dir, questions, work_dir, args.k)
            result[f"xnai_recall_at_{args.k}"] = xr.pop("recall")
            result["xnai"] = xr
            result["target"] = f"xnai recall@{args.k} >= plain BM25 recall@{args.k}"
            result["met"] = result[f"xnai_recall_at_{args.k}"] >= bm25
        text = json.dumps(result, indent=2)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        print(text)
        if standin:
            print("recall_eval: NOTE: stand-in corpus, not the public QA corpus the issue names",
                  file=sys.stderr)
        return 0
    finally:
        if own_work:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (xnai_proc.XnaiError, OSError) as e:
        print(f"recall_eval: {e}", file=sys.stderr)
        sys.exit(1)
