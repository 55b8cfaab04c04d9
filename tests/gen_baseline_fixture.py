#!/usr/bin/env python3
"""Golden values for libmiles/baseline.c (TF-IDF + logistic regression and the
numeric-features logistic regression), computed with scikit-learn 1.2.1.

    /opt/miles-ref/bin/python tests/gen_baseline_fixture.py [MILES_SHARED]

Reads real video titles and counts from
$MILES_SHARED/data/youtube_trending_2017_v1/USvideos.csv (default ../shared),
attaches a made-up label, and writes
  tests/fixtures/baseline_stop_words.h   sklearn's ENGLISH_STOP_WORDS as a C array
  tests/fixtures/baseline_text.json      titles, labels, vocabulary, idf, test
                                         TF-IDF rows, coef, intercept, probabilities
  tests/fixtures/baseline_numeric.json   18 standardized features, labels, coef, ...
libmiles/tfidf.c embeds the same stop-word array; tests/test_baseline.c checks
that it equals tests/fixtures/baseline_stop_words.h (paste it over if sklearn's
list changes).
"""
import csv
import json
import math
import os
import sys

import numpy as np
import sklearn
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")

# Hand-written titles that exercise Unicode handling of lowercase + \w; each is
# present twice in the training set so that min_df=2 keeps its terms.
EDGE_TITLES = [
    "ΟΔΥΣΣΕΥΣ ΚΑΙ ΣΟΦΙΑ: final sigma test",       # Python lower: final sigma -> ς
    "İstanbul İzmir Turkish dotted capital I",       # U+0130 lowers to i + U+0307
    "snake_case_title and __dunder__ words_",
    "café cafe\u0301 naïve résumé",                # precomposed vs combining mark
    "東京 タワー 2017 ２０１７ numbers ½ ⅷ",        # CJK, fullwidth digits, No/Nl
    "emoji 😂😂 test 🔥fire🔥 x2",
    "ÀÉÎÕÜ ÆØÅ ß STRASSE Straße",
    "tab\tseparated\u00a0nbsp\u200bzero width",
]


def write_json(path, obj):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
    os.replace(path + ".tmp", path)
    print("wrote", path, os.path.getsize(path), "bytes")


def load_rows(shared):
    path = os.path.join(shared, "data", "youtube_trending_2017_v1", "USvideos.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    seen, out = set(), []
    for r in rows[1:]:
        d = dict(zip(head, r))
        if d["title"] in seen or not d["views"].isdigit():
            continue
        seen.add(d["title"])
        out.append(d)
    return out


def lr_fit(X, y, solver="newton-cholesky", **kw):
    """The reference solution.  sklearn 1.2.1's lbfgs (scipy L-BFGS-B) stops on
    scipy's default ftol (relative decrease 2.2e-9 of the normalized objective)
    long before gtol=1e-10 and lands ~1e-3 away from the optimum, so the golden
    coefficients come from solver='newton-cholesky' (exact Newton steps on the
    same objective, tol 1e-10); lbfgs's are stored next to them for reference."""
    clf = LogisticRegression(C=kw.get("C", 1.0), class_weight=kw.get("class_weight", "balanced"),
                             solver=solver, tol=1e-10, max_iter=10000)
    clf.fit(X, y)
    assert clf.n_iter_[0] < 10000, "sklearn did not converge"
    return clf


def lr_record(d, X, y, Xte, **kw):
    clf = lr_fit(X, y, **kw)
    lb = lr_fit(X, y, solver="lbfgs", **kw)
    d["coef"] = clf.coef_[0].tolist()
    d["intercept"] = float(clf.intercept_[0])
    d["n_iter"] = int(clf.n_iter_[0])
    d["proba_test"] = clf.predict_proba(Xte)[:, 1].tolist()
    d["solver"] = "newton-cholesky"
    d["coef_lbfgs"] = lb.coef_[0].tolist()
    d["intercept_lbfgs"] = float(lb.intercept_[0])
    d["lbfgs_max_coef_diff"] = float(np.abs(lb.coef_ - clf.coef_).max())
    print("  lbfgs vs newton-cholesky: max |coef diff| %.3g, n_iter %d / %d"
          % (d["lbfgs_max_coef_diff"], lb.n_iter_[0], clf.n_iter_[0]))


def text_case(name, train, ytr, test, tfidf_kw, lr_kw, out_cfg):
    vec = TfidfVectorizer(**tfidf_kw)
    Xtr = vec.fit_transform(train)
    Xte = vec.transform(test).tocsr()
    Xte.sort_indices()   # sparse products may leave column indices unsorted
    terms = vec.get_feature_names_out().tolist()
    d = {"name": name, "config": out_cfg, "vocabulary": terms,
         "idf": vec.idf_.tolist(),
         "test_indptr": Xte.indptr.tolist(), "test_indices": Xte.indices.tolist(),
         "test_data": Xte.data.tolist()}
    mf = tfidf_kw.get("max_features")
    if mf is not None:
        # sklearn keeps the max_features most frequent terms using numpy's
        # (unstable) argsort; make sure the cut-off is not inside a tie, so the
        # kept set is unambiguous (docs/metrics.md states Miles' tie rule).
        cv = TfidfVectorizer(**dict(tfidf_kw, max_features=None, use_idf=False, norm=None))
        C = cv.fit_transform(train)
        tf = np.sort(np.asarray(C.sum(axis=0)).ravel())[::-1]
        if len(tf) > mf:
            assert tf[mf - 1] != tf[mf], "tie at max_features cut-off"
            d["max_features_cut"] = [float(tf[mf - 1]), float(tf[mf])]
    if lr_kw is not None:
        lr_record(d, Xtr, ytr, Xte, **lr_kw)
        d["lr"] = {"C": lr_kw.get("C", 1.0),
                   "balanced": lr_kw.get("class_weight", "balanced") == "balanced"}
    print(name, "vocab", len(terms), "nnz(test)", Xte.nnz)
    return d


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MILES_SHARED", os.path.join(HERE, "..", "..", "shared"))
    rows = load_rows(shared)
    rng = np.random.default_rng(42)
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    titles = [r["title"] for r in rows]
    views = np.array([float(r["views"]) for r in rows])
    # made-up label: top 20% by views, with 10% of labels flipped
    y = (views >= np.quantile(views, 0.8)).astype(int)
    flip = rng.random(len(y)) < 0.1
    y = np.where(flip, 1 - y, y)
    n_train = int(0.75 * len(titles))
    train = titles[:n_train] + EDGE_TITLES + EDGE_TITLES
    ytr = np.concatenate([y[:n_train], np.tile([1, 0], len(EDGE_TITLES))])
    test = titles[n_train:] + EDGE_TITLES[:4]
    base = dict(max_features=5000, ngram_range=(1, 1), stop_words="english",
                lowercase=True, min_df=2, max_df=0.95)
    cases = [
        text_case("miles_default", train, ytr, test, base, {},
                  {"max_features": 5000, "ngram_min": 1, "ngram_max": 1, "lowercase": 1,
                   "stop_words_english": 1, "min_df": 2, "min_df_is_fraction": 0,
                   "max_df": 0.95, "max_df_is_fraction": 1, "smooth_idf": 1,
                   "sublinear_tf": 0, "use_idf": 1, "norm": "l2"}),
        text_case("bigrams_max350", train, ytr, test,
                  dict(base, max_features=350, ngram_range=(1, 2)),
                  {"C": 0.5, "class_weight": None},
                  {"max_features": 350, "ngram_min": 1, "ngram_max": 2, "lowercase": 1,
                   "stop_words_english": 1, "min_df": 2, "min_df_is_fraction": 0,
                   "max_df": 0.95, "max_df_is_fraction": 1, "smooth_idf": 1,
                   "sublinear_tf": 0, "use_idf": 1, "norm": "l2"}),
        text_case("nostop_sublinear_l1", train, ytr, test,
                  dict(max_features=None, stop_words=None, lowercase=False, min_df=0.002,
                       max_df=40, sublinear_tf=True, smooth_idf=False, norm="l1"),
                  None,
                  {"max_features": 0, "ngram_min": 1, "ngram_max": 1, "lowercase": 0,
                   "stop_words_english": 0, "min_df": 0.002, "min_df_is_fraction": 1,
                   "max_df": 40, "max_df_is_fraction": 0, "smooth_idf": 0,
                   "sublinear_tf": 1, "use_idf": 1, "norm": "l1"}),
    ]
    write_json(os.path.join(FIX, "baseline_text.json"), {
        "generator": "tests/gen_baseline_fixture.py", "sklearn_version": sklearn.__version__,
        "source": "youtube_trending_2017_v1/USvideos.csv titles; label = top-20% views with 10% flipped (made up)",
        "train_texts": train, "train_labels": ytr.tolist(), "test_texts": test,
        "cases": cases})

    # ---- numeric features: 18 standardized columns derived from real counts
    def f(r, k):
        return float(r[k])
    feats = []
    for r in rows:
        v, l, dl, c = f(r, "views"), f(r, "likes"), f(r, "dislikes"), f(r, "comment_total")
        t = r["title"]
        tags = r["tags"].split("|")
        feats.append([math.log1p(v), math.log1p(l), math.log1p(dl), math.log1p(c),
                      l / (v + 1), dl / (v + 1), c / (v + 1), math.log1p(l) - math.log1p(dl),
                      len(t), len(t.split()), sum(ch.isupper() for ch in t) / max(1, len(t)),
                      float("!" in t), float("?" in t), float("|" in t), len(tags),
                      float(r["category_id"]) if r["category_id"].isdigit() else 0.0,
                      math.log1p(len(r["tags"])), len(r["channel_title"])])
    X = np.array(feats)
    X = ((X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1)).astype(np.float32)
    rate = X[:, 4] + 0.5 * X[:, 0]
    yn = ((rate + rng.normal(scale=0.8, size=len(rate))) >= np.quantile(rate, 0.8)).astype(int)
    ntr = 1500
    Xtr, Xte, ytrn = X[:ntr].astype(np.float64), X[ntr:2000].astype(np.float64), yn[:ntr]
    num_cases = []
    for name, kw in [("balanced_C1", {}), ("plain_C0.1", {"C": 0.1, "class_weight": None})]:
        d = {"name": name, "C": kw.get("C", 1.0),
             "balanced": kw.get("class_weight", "balanced") == "balanced"}
        print(name, "positives", ytrn.sum())
        lr_record(d, Xtr, ytrn, Xte, **kw)
        num_cases.append(d)
    write_json(os.path.join(FIX, "baseline_numeric.json"), {
        "generator": "tests/gen_baseline_fixture.py", "sklearn_version": sklearn.__version__,
        "source": "youtube_trending_2017_v1/USvideos.csv counts -> 18 derived features, z-scored, float32; made-up label",
        "n_features": 18, "X_train": Xtr.ravel().tolist(), "y_train": ytrn.tolist(),
        "X_test": Xte.ravel().tolist(), "cases": num_cases})

    # ---- stop words as a C array (sorted, as Python sorts str)
    words = sorted(ENGLISH_STOP_WORDS)
    lines = ["/* sklearn.feature_extraction.text.ENGLISH_STOP_WORDS (scikit-learn %s), %d words,"
             % (sklearn.__version__, len(words)),
             " * sorted by code point.  Generated by tests/gen_baseline_fixture.py. */",
             "static const char *const miles_english_stop_words[%d] = {" % len(words)]
    for i in range(0, len(words), 6):
        lines.append("    " + " ".join('"%s",' % w for w in words[i:i + 6]))
    lines.append("};")
    path = os.path.join(FIX, "baseline_stop_words.h")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("wrote", path, "(libmiles/tfidf.c embeds the same list)")


if __name__ == "__main__":
    main()
