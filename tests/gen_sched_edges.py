#!/usr/bin/env python3
"""The transformers LR lambdas at the edges of (warmup, total) that the golden
fixtures' sched.cases (tests/gen_golden.py: (2,10), (0,5), (3,3), (500,3135))
leave out: one or two steps after warmup, warmup 1, a single step, warmup past
total.  Writes tests/fixtures/sched_edges.json, read by tests/test_golden.c
(test_lr_lambdas), which compares miles_lr_lambda with each value.

    /opt/miles-ref/bin/python tests/gen_sched_edges.py   # `make ref-env`: transformers 4.40.2
"""
import json
import os

import torch
import transformers
from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                          get_linear_schedule_with_warmup)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sched_edges.json")
EDGES = [(4, 5), (3, 5), (5, 3), (1, 2), (1, 1), (0, 1), (1, 8), (7, 9)]


def main():
    rows = []
    dummy = torch.nn.Parameter(torch.zeros(1))
    for kind, fn in ((0, get_constant_schedule_with_warmup), (1, get_linear_schedule_with_warmup),
                     (2, get_cosine_schedule_with_warmup)):
        for warmup, total in EDGES:
            opt = torch.optim.SGD([dummy], lr=1.0)
            s = fn(opt, num_warmup_steps=warmup) if kind == 0 else \
                fn(opt, num_warmup_steps=warmup, num_training_steps=total)
            lam = s.lr_lambdas[0]
            for st in range(0, max(warmup, total) + 3):
                rows.append([kind, st, warmup, total, float(lam(st))])
    out = {"generator": "tests/gen_sched_edges.py", "transformers_version": transformers.__version__,
           "columns": ["kind (0 constant, 1 linear, 2 cosine)", "step", "warmup", "total", "lambda"],
           "cases": rows}
    with open(OUT + ".tmp", "w") as f:
        json.dump(out, f, separators=(",", ":"))
    os.replace(OUT + ".tmp", OUT)
    print("wrote", OUT, len(rows), "cases")


if __name__ == "__main__":
    main()
