#!/usr/bin/env python3
"""HF tokenizers single-thread throughput on the same strings as
bench/bench_tokenizer.c (tests/fixtures/tokenizer_cases.txt, "u" set).

    TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 \
      /opt/miles-ref/bin/python bench/bench_tokenizer_hf.py [MODEL_DIR]
"""
import os, sys, time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
from transformers import BertTokenizerFast  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
tok = BertTokenizerFast.from_pretrained(model)
raw = tok.backend_tokenizer
raw.no_padding()
raw.no_truncation()
texts, nbytes = [], 0
with open(os.path.join(ROOT, "tests", "fixtures", "tokenizer_cases.txt")) as f:
    for line in f:
        p = line.rstrip("\n").split("\t")
        if p[0] == "T" and p[1] == "u":
            b = bytes.fromhex(p[3])
            nbytes += len(b)
            texts.append(b.decode("utf-8", "replace"))


def run(name, fn):
    reps, toks, t0 = 0, 0, time.perf_counter()
    while True:
        toks += fn()
        reps += 1
        el = time.perf_counter() - t0
        if el >= 1.0:
            break
    print("%s: %d strings x %d reps in %.3f s: %.2f M tokens/s, %.0f k strings/s, %.1f MB/s" % (
        name, len(texts), reps, el, toks / el / 1e6, len(texts) * reps / el / 1e3, nbytes * reps / el / 1e6))


run("hf tokenizers Tokenizer.encode, one call per string",
    lambda: sum(len(raw.encode(t, add_special_tokens=False).ids) for t in texts))
run("hf tokenizers Tokenizer.encode_batch (1 thread)",
    lambda: sum(len(e.ids) for e in raw.encode_batch(texts, add_special_tokens=False)))
run("hf transformers BertTokenizerFast(text), one call per string",
    lambda: sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts))
print("threads: TOKENIZERS_PARALLELISM=%s RAYON_NUM_THREADS=%s" % (
    os.environ.get("TOKENIZERS_PARALLELISM"), os.environ.get("RAYON_NUM_THREADS")))
