#!/usr/bin/env python3
"""Golden outputs of the real all-MiniLM-L6-v2 on real YouTube titles, for
tests/test_minilm_parity.c (libmiles tokenizer + encoder vs HF transformers).

    make weights     # models/all-MiniLM-L6-v2
    /opt/miles-ref/bin/python tests/gen_minilm_fixture.py

Titles: USvideos.csv (MILES_SHARED/data/youtube_trending_2017_v1, default
../shared), unique titles in file order: the first 40, plus the first 16
containing non-ASCII characters (curly quotes, em dashes, emoji, CJK) that are
not already among them: 56 titles.

Reference: BertTokenizerFast + AutoModel (transformers 4.40.2, torch CPU fp32,
eval mode, local_files_only), one batch padded to the longest title.

Writes tests/fixtures/minilm_golden.safetensors (Python safetensors library):
  input_ids, token_type_ids, attention_mask  I64 [N,T]
  last_hidden   F32 [n_real_tokens, H]  last_hidden_state rows of the real
                (mask = 1) tokens only, title by title (keeps the file < 2 MB)
  pooler_output F32 [N,H]               tanh(W h_CLS + b)
  mean_embedding F32 [N,H]              sum(h * mask) / sum(mask)
metadata: titles (JSON array of strings), model, versions.
"""
import csv
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModel, BertTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
SHARED = os.environ.get("MILES_SHARED", os.path.join(ROOT, "..", "shared"))
CSV = os.path.join(SHARED, "data", "youtube_trending_2017_v1", "USvideos.csv")
OUT = os.path.join(HERE, "fixtures", "minilm_golden.safetensors")


def pick_titles():
    titles, seen = [], set()
    with open(CSV, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r)
        col = header.index("title")
        for row in r:
            if len(row) <= col or not row[col].strip() or row[col] in seen:
                continue
            seen.add(row[col])
            titles.append(row[col])
    first = titles[:40]
    extra = [t for t in titles[40:] if any(ord(c) > 127 for c in t)][:16]
    return first + extra


def main():
    if not os.path.isfile(os.path.join(MODEL, "model.safetensors")):
        sys.exit(f"{MODEL}: run `make weights` first")
    torch.manual_seed(0)
    titles = pick_titles()
    tok = BertTokenizerFast.from_pretrained(MODEL, local_files_only=True)
    model = AutoModel.from_pretrained(MODEL, local_files_only=True).float().eval()
    enc = tok(titles, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc)
    h = out.last_hidden_state.float()                  # [N,T,H]
    mask = enc["attention_mask"]
    m = mask.unsqueeze(-1).float()
    mean = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)   # sentence-transformers mean pooling
    packed = h[mask.bool()].contiguous()               # [n_real, H], row-major title by title
    tensors = {
        "input_ids": enc["input_ids"].to(torch.int64).contiguous(),
        "token_type_ids": enc["token_type_ids"].to(torch.int64).contiguous(),
        "attention_mask": mask.to(torch.int64).contiguous(),
        "last_hidden": packed,
        "pooler_output": out.pooler_output.float().contiguous(),
        "mean_embedding": mean.contiguous(),
    }
    meta = {
        "titles": json.dumps(titles, ensure_ascii=False),
        "model": "sentence-transformers/all-MiniLM-L6-v2 (models/all-MiniLM-L6-v2)",
        "versions": f"torch {torch.__version__}, transformers {transformers.__version__}",
    }
    save_file(tensors, OUT, metadata=meta)
    N, T = enc["input_ids"].shape
    print(f"wrote {OUT}: {N} titles, T={T}, {packed.shape[0]} real tokens, "
          f"{os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
