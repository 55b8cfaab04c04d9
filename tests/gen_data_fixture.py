#!/usr/bin/env python3
"""Golden values for tests/test_data.c, from numpy / scikit-learn / scipy / zlib.

    /opt/miles-ref/bin/python tests/gen_data_fixture.py   # writes tests/fixtures/data_golden.json

pandas is not in the reference environment; Series.quantile(q) (interpolation
'linear') is numpy.quantile(..., method='linear') on the non-NaN values, which
is what is used here.
"""
import json
import math
import os
import re
import zlib

import numpy as np
import scipy.stats
import sklearn
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "data_golden.json")


def clean_text(text):
    """The original's TextPreprocessor.clean_text (ORIGINAL_SYSTEM.md section 3)."""
    text = re.sub(r"http\S+|www.\S+", "", text)
    text = re.sub(r"[^\w\s#@]", "", text)
    text = text.lower()
    text = text.strip()
    text = re.sub(r"\s+", " ", text)
    return text


def main():
    rng = np.random.default_rng(20251127)
    out = {"generator": "tests/gen_data_fixture.py", "numpy": np.__version__, "sklearn": sklearn.__version__,
           "scipy": scipy.__version__}

    # --- percentiles (linear interpolation, as pandas quantile)
    perc = []
    arrays = [
        [252497 / 4, 270580 / 56, 7385 / 11, 72377 / 10, 16174 / 6],
        list(rng.lognormal(8, 2, 101)),
        list(rng.integers(0, 5, 40).astype(float)),   # many ties
        [3.0],
        list(rng.normal(0, 1, 1000)),
    ]
    for a in arrays:
        for p in (0, 10, 50, 80, 90, 95, 99.5, 100):
            perc.append({"x": [float(v) for v in a], "p": p, "q": float(np.quantile(np.array(a), p / 100.0, method="linear"))})
    out["percentile"] = perc

    # --- StandardScaler (population std, constant column -> scale 1) on an [n,18] matrix
    n = 60
    X = np.zeros((n, 18))
    X[:, 0] = rng.lognormal(10, 2, n)           # views-like
    for j in range(1, 5):
        X[:, j] = np.floor(X[:, 0] * rng.uniform(0.001, 0.1, n))
    X[:, 5:11] = rng.uniform(0, 0.2, (n, 6))
    X[:, 11] = rng.integers(0, 24, n)
    X[:, 12] = rng.integers(0, 2, n)
    X[:, 13] = rng.integers(5, 90, n)
    X[:, 14] = rng.integers(5, 60, n)
    X[:, 15] = 1.0                              # constant column
    X[:, 16] = rng.lognormal(11, 1, n)
    X[:, 17] = rng.integers(0, 7, n)
    sc = StandardScaler().fit(X)
    Z = sc.transform(X)
    Xl = X.copy()
    for j in (0, 1, 2, 3, 4, 16):
        Xl[:, j] = np.log1p(Xl[:, j])
    scl = StandardScaler().fit(Xl)
    out["scaler"] = {
        "X": X.tolist(), "mean": sc.mean_.tolist(), "scale": sc.scale_.tolist(), "Z": Z.tolist(),
        "log1p_mean": scl.mean_.tolist(), "log1p_scale": scl.scale_.tolist(), "log1p_Z": scl.transform(Xl).tolist(),
    }
    v = rng.lognormal(8, 1.5, n)
    vmin, vmax = float(v.min()), float(v.max())
    out["minmax"] = {"v": v.tolist(), "min": vmin, "max": vmax, "scaled": ((v - vmin) / (vmax - vmin)).tolist(),
                     "p80": float(np.quantile(v, 0.8, method="linear"))}

    # --- Spearman (scipy, average ranks for ties)
    sp = []
    for _ in range(4):
        m = int(rng.integers(5, 200))
        a = rng.normal(0, 1, m)
        b = a * rng.uniform(-1, 1) + rng.normal(0, 1, m)
        if _ == 2:
            a = np.round(a)   # ties
        sp.append({"x": a.tolist(), "y": b.tolist(), "rho": float(scipy.stats.spearmanr(a, b).correlation)})
    out["spearman"] = sp

    # --- sklearn split sizes: train_test_split(train_size=0.7, stratify) then 0.5 of the rest
    sizes = []
    for (nn, pos) in ((9542, 1909), (48079, 9616), (100, 20), (10, 2), (1431 + 1432 + 6679, 1909), (777, 155), (30, 6), (1000, 500)):
        y = np.zeros(nn, dtype=int)
        y[:pos] = 1
        idx = np.arange(nn)
        try:
            tr, rest = train_test_split(idx, train_size=0.7, stratify=y, random_state=42)
            va, te = train_test_split(rest, train_size=0.5, stratify=y[rest], random_state=42)
        except ValueError:  # sklearn refuses classes with < 2 members in a stage
            continue
        sizes.append({"n": nn, "pos": pos, "train": len(tr), "val": len(va), "test": len(te),
                      "train_pos": int(y[tr].sum()), "val_pos": int(y[va].sum()), "test_pos": int(y[te].sum())})
    out["split_sizes"] = sizes

    # --- text: clean_text and len() in code points
    titles = [
        "Night Routine — Productivity 🏖️",
        "Football skills in 60s 📱",
        "POV: Budget 😂",
        "Check https://t.co/abc and www.example.com/x NOW!!!",
        "  Multiple   spaces\tand\nnewlines  ",
        "Café naïve — déjà vu #fun @me",
        "chú chó của tôi 🐶",
        "ÀÉÎÕÜ İstanbul ΣΟΦΟΣ",
        "日本語のタイトル！テスト",
        "snake_case_words and digits ١٢٣ ²³",
        "wwwx www.a httpx http",
        "emoji ❤️ and ✨ and 🇺🇸 flag",
        "Pro Tips for Valorant in 60s 🎮",
        "हिन्दी शीर्षक",
        "",
    ]
    out["titles"] = [{"title": t, "clean": clean_text(t), "len": len(t)} for t in titles]

    # --- CRC-32 (zlib)
    blobs = ["", "a", "MILESDAT", "The quick brown fox jumps over the lazy dog", "\x00\x01\x02\xff" * 10]
    out["crc32"] = [{"hex": b.encode("latin-1").hex(), "crc": zlib.crc32(b.encode("latin-1"))} for b in blobs]

    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
