#!/usr/bin/env python3
"""Golden values for libmiles/metrics_compare.c (miles_compare_scores, miles_compare_mae).

Run with the reference environment (tests/requirements-ref.txt: numpy 1.24.2,
scikit-learn 1.2.1):
    /opt/miles-ref/bin/python tests/gen_compare_fixture.py
Writes tests/fixtures/compare_cases.json, read by tests/test_compare.c.

DeLong's test here is computed from its definition, not from the midrank
algorithm the C code uses: the structural components by the m*n pairwise
comparisons psi(x, y) = 1 if x > y, 1/2 if x == y, 0 otherwise,
    V10_i = mean_j psi(X_i, Y_j),   V01_j = mean_i psi(X_i, Y_j),
S = numpy.cov(V10 of a and b) / m + numpy.cov(V01 of a and b) / n (ddof 1),
var(diff) = S_aa + S_bb - 2 S_ab; the AUROCs are checked against scikit-learn's
roc_auc_score; the p-value is erfc(|z| / sqrt 2) and the interval's quantile
statistics.NormalDist().inv_cdf.  The paired bootstrap replays libmiles'
resample stream (gen_metrics_fixture.py's Xoshiro256ss) and takes
roc_auc_score / average_precision_score / mean_absolute_error on each
resample and numpy.percentile.
"""
import json
import math
import os
import statistics
import sys

import numpy as np
from sklearn.metrics import average_precision_score, mean_absolute_error, roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_metrics_fixture import Xoshiro256ss  # noqa: E402  (the resample stream)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "compare_cases.json")
ALPHA = 0.05


def delong(y, a, b):
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    comps = []
    for s in (a, b):
        x, z = s[pos][:, None], s[neg][None, :]
        psi = (x > z) + 0.5 * (x == z)
        comps.append((psi.mean(axis=1), psi.mean(axis=0)))
    s10 = np.cov(np.vstack([comps[0][0], comps[1][0]]))
    s01 = np.cov(np.vstack([comps[0][1], comps[1][1]]))
    S = s10 / m + s01 / n
    auc_a, auc_b = comps[0][0].mean(), comps[1][0].mean()
    assert abs(auc_a - roc_auc_score(y, a)) < 1e-12 and abs(auc_b - roc_auc_score(y, b)) < 1e-12
    diff = auc_a - auc_b
    var = S[0, 0] + S[1, 1] - 2 * S[0, 1]
    se = math.sqrt(var) if var > 0 else 0.0
    z = diff / se if se > 0 else 0.0
    q = statistics.NormalDist().inv_cdf(1 - ALPHA / 2)
    return {"n_pos": m, "n_neg": n, "auroc_a": auc_a, "auroc_b": auc_b, "diff": diff,
            "var_a": S[0, 0], "var_b": S[1, 1], "cov": S[0, 1], "se": se, "z": z,
            "p_value": math.erfc(abs(z) / math.sqrt(2)), "ci": [diff - q * se, diff + q * se]}


def paired_bootstrap(y, a, b, va, vb, vt, n_boot, seed):
    """The same resamples for both statistics (miles_bootstrap_columns)."""
    n = len(y)
    rng = Xoshiro256ss(seed)
    d_auc, d_ap, d_mae = [], [], []
    for _ in range(n_boot):
        idx = np.array([rng.below(n) for _ in range(n)])
        if y[idx].min() != y[idx].max():
            d_auc.append(roc_auc_score(y[idx], a[idx]) - roc_auc_score(y[idx], b[idx]))
            d_ap.append(average_precision_score(y[idx], a[idx]) - average_precision_score(y[idx], b[idx]))
        d_mae.append(mean_absolute_error(vt[idx], va[idx]) - mean_absolute_error(vt[idx], vb[idx]))
    return {"n_boot": n_boot, "seed": seed, "auroc_diff_ci": np.percentile(d_auc, [2.5, 97.5]).tolist(),
            "auroc_used": len(d_auc), "ap_diff_ci": np.percentile(d_ap, [2.5, 97.5]).tolist(),
            "mae_diff_ci": np.percentile(d_mae, [2.5, 97.5]).tolist()}


def case(name, y, a, b, boot=None):
    y = np.asarray(y, dtype=np.int64)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(len(y))
    vt = rng.normal(0, 1, len(y))                      # velocity targets and two predictors
    va = vt + rng.normal(0, 0.5, len(y))
    vb = vt + rng.normal(0.1, 0.8, len(y))
    d = {"name": name, "labels": y.tolist(), "a": a.tolist(), "b": b.tolist(),
         "vel_a": va.tolist(), "vel_b": vb.tolist(), "vel_t": vt.tolist(),
         "alpha": ALPHA, "expected": delong(y, a, b)}
    d["expected"]["ap_a"] = average_precision_score(y, a)
    d["expected"]["ap_b"] = average_precision_score(y, b)
    d["expected"]["mae_a"] = mean_absolute_error(vt, va)
    d["expected"]["mae_b"] = mean_absolute_error(vt, vb)
    if boot:
        d["expected"]["bootstrap"] = paired_bootstrap(y, a, b, va, vb, vt, *boot)
    return d


def main():
    rng = np.random.default_rng(2026)
    cases = []
    # a stronger and a weaker scorer of the same rows, correlated through the signal
    y = (rng.random(300) < 0.3).astype(int)
    sig = y + rng.normal(0, 0.9, 300)
    a = 1 / (1 + np.exp(-(sig + rng.normal(0, 0.5, 300))))
    b = 1 / (1 + np.exp(-(0.4 * sig + rng.normal(0, 1.0, 300))))
    cases.append(case("correlated_300", y, a, b, boot=(200, 7)))
    # rounded to 2 decimals: ties inside each class and across them
    cases.append(case("ties_300", y, np.round(a, 2), np.round(b, 2), boot=(200, 11)))
    # five score levels only
    y2 = (rng.random(80) < 0.5).astype(int)
    cases.append(case("five_levels_80", y2, rng.integers(0, 5, 80) / 4.0 * (0.5 + 0.5 * y2),
                      rng.integers(0, 5, 80) / 4.0))
    # the smallest input the test accepts: 2 positives, 3 negatives
    cases.append(case("tiny_2_3", [1, 0, 1, 0, 0], [0.9, 0.8, 0.4, 0.3, 0.4], [0.2, 0.6, 0.7, 0.1, 0.7]))
    # B worse than chance: a negative z the other way
    y3 = (rng.random(150) < 0.2).astype(int)
    s3 = y3 + rng.normal(0, 1, 150)
    cases.append(case("b_inverted_150", y3, s3 + rng.normal(0, 0.3, 150), -s3 + rng.normal(0, 0.3, 150)))
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/gen_compare_fixture.py", "numpy": np.__version__,
                   "sklearn": __import__("sklearn").__version__, "cases": cases}, f, indent=0)
        f.write("\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes,", len(cases), "cases")


if __name__ == "__main__":
    main()
