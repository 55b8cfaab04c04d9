#!/usr/bin/env python3
"""Golden fixture of AdamW with parameter groups: tests/fixtures/adamw_groups.safetensors.

torch.optim.AdamW (torch 1.13, /usr/bin/python3) with param groups, 3 steps, on the
tensors of test_model.c's groups_model().  The tensor list (name numel decay) comes from
    MILES_DUMP_GROUP_TENSORS=/tmp/groups.txt build/tests/test_model
The grouping rule is written here independently of libmiles/optim.c:
  new layers (not "bert.*") step at head_lr; encoder layer l of L at lr * d^(L-l),
  embeddings at lr * d^(L+1), the pooler at lr; HF no-decay groups (bias, LayerNorm).
Each group's lr is rounded to float32, as the C side computes it in float.
Usage: python3 tests/gen_adamw_groups.py /tmp/groups.txt
"""
import json
import re
import struct
import sys

import numpy as np
import torch

LR, HEAD_LR, WD, L = 2e-3, 1e-2, 0.05, 2
DECAYS = [0.0, 0.7]
f32 = lambda x: float(np.float32(x))


def scale_lr(name, d):
    lr = f32(LR)
    if not name.startswith("bert."):
        return f32(HEAD_LR)
    if not (0 < d < 1):
        return lr
    d = f32(d)
    if name.startswith("bert.embeddings."):
        return f32(lr * d ** (L + 1))
    m = re.match(r"bert\.encoder\.layer\.(\d+)\.", name)
    if m:
        return f32(lr * d ** (L - int(m.group(1))))
    return lr


def main():
    rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
    g = torch.Generator().manual_seed(17)
    p0 = {n: torch.randn(int(k), generator=g) * 0.5 for n, k, _ in rows}
    grads = [{n: torch.randn(int(k), generator=g) * 10.0 ** float(torch.randint(-3, 1, (1,), generator=g))
              for n, k, _ in rows} for _ in range(3)]
    out = {}
    for n, _, _ in rows:
        out["p0/" + n] = p0[n]
        for s in range(3):
            out["g%d/%s" % (s, n)] = grads[s][n]
    for cs, d in enumerate(DECAYS):
        params = {n: p0[n].clone().requires_grad_(True) for n, _, _ in rows}
        groups = {}
        for n, _, dec in rows:
            nodecay = n.endswith("bias") or "LayerNorm.weight" in n
            assert int(dec) == (0 if nodecay else 1), n  # the model's HF decay flag
            key = (scale_lr(n, d), 0.0 if nodecay else WD)
            groups.setdefault(key, []).append(params[n])
        opt = torch.optim.AdamW([{"params": v, "lr": k[0], "weight_decay": k[1]} for k, v in groups.items()],
                                lr=f32(LR), betas=(0.9, 0.999), eps=1e-8)
        print("case %d: %d param groups, lrs %s" % (cs, len(groups), sorted({k[0] for k in groups})))
        for s in range(3):
            for n, _, _ in rows:
                params[n].grad = grads[s][n].clone()
            opt.step()
        for n, _, _ in rows:
            out["out%d/%s" % (cs, n)] = params[n].detach().clone()
    # safetensors by hand (no package needed)
    header, blobs, off = {}, [], 0
    for k, t in out.items():
        b = t.numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": [t.numel()], "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open("tests/fixtures/adamw_groups.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main()
