#!/usr/bin/env python3
"""Golden values for libmiles/metrics.c, computed with scikit-learn 1.2.1.

Run with the reference environment (tests/requirements-ref.txt):
    /opt/miles-ref/bin/python tests/gen_metrics_fixture.py
Writes tests/fixtures/metrics_cases.json, read by tests/test_metrics.c.

Every case holds the inputs (scores, labels, velocity predictions/targets) and
what scikit-learn / numpy return for them.  Definitions that scikit-learn has no
single function for (precision at 10% recall, best-F1 threshold, ECE) are
computed here from scikit-learn's own curves, following docs/metrics.md.
"""
import json
import os

import numpy as np
import sklearn
from sklearn.calibration import calibration_curve
from sklearn.metrics import (accuracy_score, average_precision_score,
                             brier_score_loss, confusion_matrix, f1_score,
                             log_loss,
                             mean_absolute_error, mean_squared_error,
                             precision_recall_curve, precision_score,
                             r2_score, recall_score, roc_auc_score, roc_curve)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                   "metrics_cases.json")
STORED_THRESHOLD = 0.3
N_BINS = 15
CLASS_WEIGHT = [1.0, 3.0]   # the weighted log loss's sample_weight = CLASS_WEIGHT[y]


def at_threshold(y, s, t):
    # Miles convention: predicted positive iff score >= threshold.
    pred = (s >= t).astype(int)
    cm = confusion_matrix(y, pred, labels=[0, 1])
    return {
        "threshold": t,
        "accuracy": accuracy_score(y, pred),
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0),
        "f1": f1_score(y, pred, zero_division=0),
        "tn": int(cm[0, 0]), "fp": int(cm[0, 1]),
        "fn": int(cm[1, 0]), "tp": int(cm[1, 1]),
    }


def best_f1(y, s):
    # Over the thresholds of precision_recall_curve (the distinct scores); ties
    # go to the largest threshold (fewest predicted positives).
    p, r, thr = precision_recall_curve(y, s)
    p, r = p[:-1], r[:-1]          # drop the (recall 0, precision 1) end point
    denom = p + r
    f1 = np.where(denom > 0, 2 * p * r / np.where(denom > 0, denom, 1), 0.0)
    best = f1.max()
    cand = thr[f1 == best]
    t = float(cand.max())
    # cross-check with sklearn's f1_score at that threshold
    f1_check = f1_score(y, (s >= t).astype(int), zero_division=0)
    assert abs(f1_check - best) < 1e-12, (f1_check, best)
    return t, float(f1_check)


def precision_at_recall(y, s, level=0.10):
    p, r, thr = precision_recall_curve(y, s)
    ok = r >= level
    return float(p[ok].max())


def ece(y, s, n_bins=N_BINS):
    prob_true, prob_pred = calibration_curve(y, s, n_bins=n_bins,
                                             strategy="uniform")
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    binids = np.searchsorted(bins[1:-1], s)   # same as calibration_curve
    counts = np.bincount(binids, minlength=n_bins)
    nz = counts[counts > 0]
    return float(np.sum(nz / len(s) * np.abs(prob_true - prob_pred))), \
        counts.tolist()


# ---- the bootstrap's PRNG, bit for bit as in libmiles/metrics.c ----------
M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


class Xoshiro256ss:
    def __init__(self, seed):
        self.s = []
        x = seed & M64
        for _ in range(4):
            x, v = splitmix64(x)
            self.s.append(v)

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        res = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return res

    def below(self, n):   # multiply-shift, as rng_below()
        return (self.next() * n) >> 64


def bootstrap(y, s, vp, vt, n_boot, seed):
    """Percentile intervals (numpy.percentile, linear) of AUROC, average
    precision (the AUROC's resamples) and MAE over n_boot resamples; same
    index stream as miles_bootstrap_ranking/_mae."""
    n = len(y)
    rng = Xoshiro256ss(seed)
    aucs, aps = [], []
    for _ in range(n_boot):
        idx = np.array([rng.below(n) for _ in range(n)])
        if y[idx].min() != y[idx].max():
            aucs.append(roc_auc_score(y[idx], s[idx]))
            aps.append(average_precision_score(y[idx], s[idx]))
    rng = Xoshiro256ss(seed)
    maes = []
    for _ in range(n_boot):
        idx = np.array([rng.below(n) for _ in range(n)])
        maes.append(mean_absolute_error(vt[idx], vp[idx]))
    return {"n_boot": n_boot, "seed": seed, "alpha": 0.05,
            "auroc_ci": np.percentile(aucs, [2.5, 97.5]).tolist(), "auroc_used": len(aucs),
            "ap_ci": np.percentile(aps, [2.5, 97.5]).tolist(),
            "mae_ci": np.percentile(maes, [2.5, 97.5]).tolist()}


def ll_or_none(y, s, w):
    p_true = np.where(y == 1, s, 1 - s)
    if np.any(p_true < np.finfo(float).eps):
        return None
    return log_loss(y, s, sample_weight=w, labels=[0, 1])


def case(name, y, s, vp=None, vt=None):
    y = np.asarray(y, dtype=int)
    s = np.asarray(s, dtype=float)
    d = {"name": name, "labels": y.tolist(), "scores": s.tolist()}
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    p, r, pthr = precision_recall_curve(y, s)
    e, counts = ece(y, s)
    bt, bf = best_f1(y, s)
    d["expected"] = {
        "auroc": roc_auc_score(y, s),
        "average_precision": average_precision_score(y, s),
        "precision_at_10pct_recall": precision_at_recall(y, s, 0.10),
        "prevalence": float(y.mean()),
        "at_0.5": at_threshold(y, s, 0.5),
        "at_stored": at_threshold(y, s, STORED_THRESHOLD),
        "best_f1_threshold": bt, "best_f1": bf,
        "ece": e, "ece_bin_counts": counts,
        "calib_prob_true": calibration_curve(y, s, n_bins=N_BINS)[0].tolist(),
        "calib_prob_pred": calibration_curve(y, s, n_bins=N_BINS)[1].tolist(),
        "brier": brier_score_loss(y, s),
        # log loss, plain and with sample_weight = CLASS_WEIGHT[y] (what the
        # trainer's validation loss uses); None where sklearn's clip of p at
        # 2.2e-16 decides it (a score of exactly 0 or 1 on the wrong side), as
        # Miles clips at 1e-30 (miles.h)
        "log_loss": ll_or_none(y, s, None),
        "log_loss_weighted": ll_or_none(y, s, np.asarray(CLASS_WEIGHT)[y]),
        # roc_curve's first threshold is max+1 in sklearn 1.2 (inf in >= 1.3);
        # the C side uses +inf, so the test skips index 0 of roc_thresholds.
        "roc_fpr": fpr.tolist(), "roc_tpr": tpr.tolist(),
        "roc_thresholds": thr.tolist(),
        "pr_precision": p.tolist(), "pr_recall": r.tolist(),
        "pr_thresholds": pthr.tolist(),
    }
    if vp is not None:
        vp = np.asarray(vp, dtype=float)
        vt = np.asarray(vt, dtype=float)
        d["vel_pred"] = vp.tolist()
        d["vel_true"] = vt.tolist()
        d["expected"].update({
            "mae": mean_absolute_error(vt, vp),
            "mse": mean_squared_error(vt, vp),
            "rmse": float(np.sqrt(mean_squared_error(vt, vp))),
            "r2": r2_score(vt, vp),
        })
        if name == "random_n1000":
            d["expected"]["bootstrap"] = bootstrap(y, s, vp, vt, 1000, 7)
    return d


def main():
    rng = np.random.default_rng(20251127)
    cases = []
    # random n = 1000, 20% positives, informative scores, velocity
    n = 1000
    y = (rng.random(n) < 0.2).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 1.2)))
    vt = rng.random(n) * 0.1
    vp = vt + rng.normal(scale=0.03, size=n)
    cases.append(case("random_n1000", y, s, vp, vt))
    # heavy ties: scores rounded to one decimal
    n = 400
    y = (rng.random(n) < 0.3).astype(int)
    s = np.round(np.clip(rng.random(n) * 0.6 + 0.4 * y * rng.random(n), 0, 1), 1)
    cases.append(case("ties_rounded", y, s))
    # scores exactly on the ECE bin edges k/15 and on 0.5 / 0.3
    k = rng.integers(0, 16, size=300)
    s = k / 15.0
    s[:10] = 0.5
    s[10:20] = STORED_THRESHOLD
    y = (rng.random(300) < s * 0.8 + 0.1).astype(int)
    cases.append(case("bin_edges", y, s))
    # all scores equal
    y = np.array([0, 1, 0, 0, 1, 0, 1, 0, 0, 0])
    cases.append(case("all_equal", y, np.full(10, 0.42), rng.random(10), np.full(10, 0.5)))
    # heavy imbalance: 1% positives
    n = 2000
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, 20, replace=False)] = 1
    s = 1 / (1 + np.exp(-(rng.normal(size=n) + 2.0 * y - 3.0)))
    cases.append(case("imbalance_1pct", y, s))
    # perfect and inverted ranking
    y = (rng.random(50) < 0.4).astype(int)
    s = np.where(y == 1, 0.6 + 0.4 * rng.random(50), 0.55 * rng.random(50))
    cases.append(case("perfect", y, s))
    cases.append(case("inverted", y, 1 - s))
    # small n
    cases.append(case("small_n3", [0, 1, 1], [0.2, 0.9, 0.1], [1.0, 2.0, 3.5], [1.5, 2.0, 3.0]))
    cases.append(case("small_n2", [1, 0], [0.7, 0.7]))
    # velocity with constant target and perfect prediction (r2 edge cases)
    cases.append(case("velocity_perfect", [0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6],
                      [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]))
    out = {"generator": "tests/gen_metrics_fixture.py",
           "sklearn_version": sklearn.__version__,
           "numpy_version": np.__version__,
           "stored_threshold": STORED_THRESHOLD, "n_bins": N_BINS,
           "class_weight": CLASS_WEIGHT,
           "cases": cases}
    with open(OUT + ".tmp", "w") as f:
        json.dump(out, f, separators=(",", ":"))
    os.replace(OUT + ".tmp", OUT)
    print("wrote", OUT, os.path.getsize(OUT), "bytes,", len(cases), "cases")


if __name__ == "__main__":
    main()
