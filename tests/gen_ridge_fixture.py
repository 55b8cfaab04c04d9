#!/usr/bin/env python3
"""Golden values for libmiles/ridge.c: scikit-learn Ridge (1.2.1, /usr/bin/python3).

    /usr/bin/python3 tests/gen_ridge_fixture.py

Features: the 18 standardized real features of tests/fixtures/baseline_numeric.json
(X_train 1500 rows, X_test 500), rounded to float32 as the C side holds them.  Target:
a heavy-tailed made-up "velocity" (lognormal, depending on a few features), put through
the log1p_z transform (log1p, standardized with the train mean and population std), as
miles-baseline --kind ridge does.  Writes tests/fixtures/ridge.json: y_train (log1p_z),
alpha, coef, intercept, pred_test for alpha 1.0 and 10.0.
"""
import json
import os

import numpy as np
import sklearn
from sklearn.linear_model import Ridge

HERE = os.path.dirname(os.path.abspath(__file__))
d = json.load(open(os.path.join(HERE, "fixtures", "baseline_numeric.json")))
F = d["n_features"]
Xtr = np.asarray(d["X_train"], dtype=np.float32).reshape(-1, F).astype(np.float64)
Xte = np.asarray(d["X_test"], dtype=np.float32).reshape(-1, F).astype(np.float64)
rng = np.random.default_rng(17)
beta = rng.normal(size=F) * (rng.random(F) < 0.5)
vel = np.exp(6.0 + 0.8 * (Xtr @ beta) / max(1e-9, np.std(Xtr @ beta)) + rng.normal(scale=1.0, size=len(Xtr)))
lp = np.log1p(vel)
y = (lp - lp.mean()) / lp.std()
cases = []
for alpha in (1.0, 10.0):
    m = Ridge(alpha=alpha, fit_intercept=True, solver="cholesky").fit(Xtr, y)
    cases.append({"alpha": alpha, "coef": m.coef_.tolist(), "intercept": float(m.intercept_),
                  "pred_test": m.predict(Xte).tolist()})
out = {"generator": "tests/gen_ridge_fixture.py", "sklearn_version": sklearn.__version__,
       "features": "tests/fixtures/baseline_numeric.json X_train/X_test (float32)",
       "y_train": y.tolist(), "cases": cases}
with open(os.path.join(HERE, "fixtures", "ridge.json"), "w") as f:
    json.dump(out, f)
