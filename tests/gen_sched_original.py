#!/usr/bin/env python3
"""Golden fixture of the original project's LR schedule: tests/fixtures/sched_original.json.

The seed notebook's scheduler, as ../shared/ORIGINAL_SYSTEM.md records it:
    SequentialLR(opt, [LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=warmup),
                       CosineAnnealingLR(opt, T_max=total - warmup, eta_min=eta_min)],
                 milestones=[warmup])
traced here with torch (2.15.0, the bench environment's pin: bench/requirements.txt), the
optimizer's lr read before each scheduler.step(), for step 0 .. total.  lr and eta_min are
float32 values, as libmiles holds them (MilesTrainConfig.lr / eta_min are float).
tests/test_train.c test_schedule_original_golden compares miles_train_lr
(MILES_SCHED_ORIGINAL, stepped per step) with each trace.
Usage: /opt/miles-bench/bin/python tests/gen_sched_original.py > tests/fixtures/sched_original.json
"""
import json
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")  # torch's "step() before optimizer.step()" notice
CASES = [  # (lr, eta_min, warmup, total)
    (2e-5, 1e-7, 5, 40),
    (2e-5, 1e-7, 500, 3135),
    (1e-3, 0.0, 1, 17),
    (5e-5, 1e-6, 10, 11),
]


def trace(lr, eta_min, warmup, total):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=lr)
    s = torch.optim.lr_scheduler.SequentialLR(
        opt,
        [torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=warmup),
         torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=eta_min)],
        milestones=[warmup])
    out = []
    for _ in range(total + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out


cases = []
for lr, eta_min, warmup, total in CASES:
    lr32, eta32 = float(np.float32(lr)), float(np.float32(eta_min))
    cases.append({"lr": lr32, "eta_min": eta32, "warmup": warmup, "total": total,
                  "lrs": trace(lr32, eta32, warmup, total)})
print(json.dumps({"generator": "tests/gen_sched_original.py", "torch": torch.__version__,
                  "cases": cases}, indent=None, separators=(",", ":")))
