#!/usr/bin/env python3
"""Golden values for libmiles/metrics_calibrate.c (miles_platt_fit / _apply / _logit).

Run with the reference environment (tests/requirements-ref.txt: numpy 1.24.2,
scikit-learn 1.2.1, mpmath 1.2.1):
    /opt/miles-ref/bin/python tests/gen_calibration_fixture.py
Writes tests/fixtures/calibration_cases.json, read by tests/test_calibration.c.

The objective is scikit-learn's own (sklearn.calibration._sigmoid_calibration,
Platt's smoothed targets), called here for its result: it stops BFGS at a
gradient of 1e-5, so its (a, b) is a loose check.  The reference minimum is
found again in 50-digit arithmetic (mpmath): Newton's method on the same
objective from sklearn's answer until the step is below 1e-40, so "expected"
is the true minimizer rounded once to double.  The logits are numpy's
log(p) - log1p(-p) of p clipped to [2^-24, 1 - 2^-24]; the calibrated
probabilities and the ECE / Brier score after calibration are computed from the
reference (a, b) with scipy.special.expit and sklearn.calibration.calibration_curve
/ brier_score_loss.  Signs: sklearn writes p' = expit(-(A x + B)); libmiles
writes sigma(a x + b), so a = -A, b = -B.
"""
import json
import os

import mpmath
import numpy as np
from scipy.special import expit
from sklearn.calibration import _sigmoid_calibration, calibration_curve
from sklearn.metrics import brier_score_loss

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "calibration_cases.json")
EPS = 2.0 ** -24
mpmath.mp.dps = 50


def logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def platt_mp(x, y, a0, b0):
    """Newton's method on Platt's objective in 50 digits (libmiles' sign convention)."""
    npos = int(y.sum())
    nneg = len(y) - npos
    tp = mpmath.mpf(npos + 1) / (npos + 2)
    tn = mpmath.mpf(1) / (nneg + 2)
    xs = [mpmath.mpf(float(v)) for v in x]
    ts = [tp if v else tn for v in y]
    a, b = mpmath.mpf(a0), mpmath.mpf(b0)

    def obj(a, b):
        f = mpmath.mpf(0)
        for xi, t in zip(xs, ts):
            s = 1 / (1 + mpmath.exp(-(a * xi + b)))
            f -= t * mpmath.log(s) + (1 - t) * mpmath.log(1 - s)
        return f

    for _ in range(200):
        ga = gb = haa = hab = hbb = mpmath.mpf(0)
        for xi, t in zip(xs, ts):
            s = 1 / (1 + mpmath.exp(-(a * xi + b)))
            r, w = s - t, s * (1 - s)
            ga += r * xi
            gb += r
            haa += w * xi * xi
            hab += w * xi
            hbb += w
        det = haa * hbb - hab * hab
        da = -(hbb * ga - hab * gb) / det
        db = -(haa * gb - hab * ga) / det
        step = mpmath.mpf(1)
        f0 = obj(a, b)
        while obj(a + step * da, b + step * db) > f0:
            step /= 2
        a, b = a + step * da, b + step * db
        if abs(step * da) + abs(step * db) < mpmath.mpf(10) ** -40:
            return a, b, obj(a, b), (ga, gb)
    raise RuntimeError("no convergence")


def ece15(y, p):
    """ECE over 15 uniform bins (libmiles' definition, docs/metrics.md), from calibration_curve."""
    frac, mean = calibration_curve(y, p, n_bins=15, strategy="uniform")
    bins = np.searchsorted(np.linspace(0, 1, 16)[1:-1], p)   # calibration_curve's binning
    counts = np.bincount(bins, minlength=15)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(p) * np.abs(frac - mean)))


def case(name, y, p, probe=None):
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    x = logit(p)
    A, B = _sigmoid_calibration(x, y)
    a, b, f, g = platt_mp(x, y, -A, -B)
    a, b = float(a), float(b)
    cal = expit(a * x + b)
    probe = np.asarray(probe if probe is not None else [0.0, 1e-9, 0.25, 0.5, 0.9, 1 - 1e-9, 1.0])
    return {"name": name, "labels": y.tolist(), "scores": p.tolist(),
            "expected": {"a": a, "b": b, "objective": float(f), "sklearn_a": float(-A), "sklearn_b": float(-B),
                         "n_pos": int(y.sum()), "logits": x.tolist(), "calibrated": cal.tolist(),
                         "probe": probe.tolist(), "probe_calibrated": expit(a * logit(probe) + b).tolist(),
                         "ece_before": ece15(y, p), "ece_after": ece15(y, cal),
                         "brier_before": float(brier_score_loss(y, p)), "brier_after": float(brier_score_loss(y, cal))}}


def main():
    rng = np.random.default_rng(2027)
    cases = []
    # a model trained with class weights (prior shift: +1.4 on the logit) and over-confident
    # (slope 1.8), its probabilities rounded to fp32 as Miles' are
    z = rng.normal(-1.2, 1.6, 400)
    y = (rng.random(400) < expit(z)).astype(int)
    cases.append(case("shifted_overconfident_400", y, expit(1.8 * z + 1.4).astype(np.float32)))
    # under-confident: everything squeezed toward 0.5
    z = rng.normal(0, 2.0, 300)
    y = (rng.random(300) < expit(z)).astype(int)
    cases.append(case("underconfident_300", y, expit(0.35 * z).astype(np.float32)))
    # the classes separate perfectly: Platt's smoothed targets keep the minimum finite
    cases.append(case("separable_40", [0] * 25 + [1] * 15,
                      np.concatenate([rng.uniform(0.05, 0.45, 25), rng.uniform(0.55, 0.95, 15)])))
    # scores at and beyond the fp32 ends: 0, 1, 1 - 2^-25 (all clipped), 2^-30
    cases.append(case("clipped_ends_12", [0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0],
                      [0.0, 2.0 ** -30, 0.2, 1.0, 1 - 2.0 ** -25, 0.97, 0.6, 0.4, 0.1, 0.8, 1 - 2.0 ** -24, 0.3]))
    # a confident model on a small split: 2 positives at saturated scores, 50 negatives near 0
    # (a plain Newton step from the start overshoots to where sigma is flat)
    neg = expit(-16.6 + rng.uniform(0, 0.5, 50))
    cases.append(case("saturated_2_50", [1, 1] + [0] * 50, np.concatenate([[1.0, 1 - 2.0 ** -24], neg])))
    # two distinct scores
    cases.append(case("two_levels_30", [1] * 8 + [0] * 7 + [1] * 3 + [0] * 12, [0.7] * 15 + [0.2] * 15))
    # scores that rank worse than chance: the fitted slope is negative
    z = rng.normal(0, 1.5, 120)
    y = (rng.random(120) < expit(z)).astype(int)
    cases.append(case("inverted_120", y, expit(-z)))
    # the smallest: one row of each class
    cases.append(case("one_each_2", [1, 0], [0.6, 0.3]))
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/gen_calibration_fixture.py", "numpy": np.__version__,
                   "sklearn": __import__("sklearn").__version__, "mpmath": mpmath.__version__,
                   "cases": cases}, f, indent=0)
        f.write("\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes,", len(cases), "cases")
    for c in cases:
        e = c["expected"]
        print(f'{c["name"]:28s} a={e["a"]:+.6f} b={e["b"]:+.6f} sklearn a={e["sklearn_a"]:+.6f} '
              f'b={e["sklearn_b"]:+.6f} ECE {e["ece_before"]:.4f} -> {e["ece_after"]:.4f}')


if __name__ == "__main__":
    main()
