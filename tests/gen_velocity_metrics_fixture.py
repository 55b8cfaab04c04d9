#!/usr/bin/env python3
"""Golden values for miles_velocity_report (libmiles/metrics_velocity.c) with
scikit-learn 1.2.1 / scipy 1.10 / numpy (/usr/bin/python3):

    /usr/bin/python3 tests/gen_velocity_metrics_fixture.py

MAE/RMSE/R^2 (sklearn), Spearman rho (scipy.stats.spearmanr), the constant-median
reference (numpy.median), and percentile-bootstrap intervals replayed with the
library's xoshiro256** index stream (tests/gen_metrics_fixture.py) and
numpy.percentile.  Writes tests/fixtures/velocity_metrics.json.
"""
import importlib.util
import json
import os

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("gm", os.path.join(HERE, "gen_metrics_fixture.py"))
gm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gm)

rng = np.random.default_rng(5)
n = 300
target = np.round(rng.normal(size=n), 2)           # rounded: ties for the ranks
pred = np.round(0.7 * target + 0.5 * rng.normal(size=n), 2)
mean, std = 7.5, 1.7
target_raw = np.expm1(target * std + mean)
pred_raw = np.expm1(pred * std + mean)
median_target, median_raw = 0.1, float(np.expm1(0.1 * std + mean))  # "training" medians


def reg(p, t):
    return {"mae": mean_absolute_error(t, p), "rmse": float(np.sqrt(mean_squared_error(t, p))), "r2": r2_score(t, p)}


N_BOOT, SEED = 200, 11
r = gm.Xoshiro256ss(SEED)
stats = {k: [] for k in ("mae", "rmse", "r2", "rho", "raw_mae", "raw_r2")}
for _ in range(N_BOOT):
    idx = np.array([r.below(n) for _ in range(n)])
    a = reg(pred[idx], target[idx])
    b = reg(pred_raw[idx], target_raw[idx])
    stats["mae"].append(a["mae"]); stats["rmse"].append(a["rmse"]); stats["r2"].append(a["r2"])
    stats["rho"].append(spearmanr(pred[idx], target[idx]).correlation)
    stats["raw_mae"].append(b["mae"]); stats["raw_r2"].append(b["r2"])
out = {
    "generator": "tests/gen_velocity_metrics_fixture.py",
    "pred": pred.tolist(), "target": target.tolist(), "pred_raw": pred_raw.tolist(), "target_raw": target_raw.tolist(),
    "median_target": median_target, "median_raw": median_raw,
    "target_metrics": reg(pred, target), "raw_metrics": reg(pred_raw, target_raw),
    "spearman": spearmanr(pred, target).correlation,
    "median_ref_target": reg(np.full(n, median_target), target),
    "median_ref_raw": reg(np.full(n, median_raw), target_raw),
    "median_of_target": float(np.median(target)),
    "n_boot": N_BOOT, "seed": SEED,
    "ci": {k: np.percentile(v, [2.5, 97.5]).tolist() for k, v in stats.items()},
}
with open(os.path.join(HERE, "fixtures", "velocity_metrics.json"), "w") as f:
    json.dump(out, f)
