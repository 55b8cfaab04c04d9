#!/usr/bin/env python3
"""Generate the model golden fixtures tests/fixtures/golden_<preset>_<pooling>.safetensors.

Reference: HF transformers BertModel (eager attention, post-LN BertLayer) + the
Miles fusion/heads written in PyTorch, for both presets ("miles",
"seed-notebook") and all three poolings (pooler, cls, mean).  The C test
(tests/test_golden.c) rebuilds the same model from the stored weights and checks
forward outputs, every parameter gradient and the weights after 3 AdamW steps.

Run with the reference stack (tests/requirements-ref.txt):
    /opt/miles-ref/bin/python tests/gen_golden.py

Setup
  * BERT: BertConfig(vocab 64, hidden 32, 2 layers, 4 heads, intermediate 64,
    max_position 20, type_vocab 2, gelu (erf), eps 1e-12): the "tiny" preset's
    structure at half width, so the six fixtures stay well under 2 MB in total.
    The sizes are stored in meta.bert and the C test overrides the preset with them.
    Dropout probabilities are 0 (the modules run in train mode otherwise).
  * Heads: preset structure with smaller widths to keep the fixtures small:
      miles:          numeric 18->16 ReLU, fusion (32+16)->24 ReLU, sigmoid velocity
      seed-notebook:  raw 18 features, fusion (32+18)->40 ReLU ->16 ReLU, linear velocity
  * Weights: BERT weights/embeddings normal(0, 0.02); biases normal(0, 0.02);
    LayerNorm weight 1 + normal(0, 0.1), bias normal(0, 0.05) (so LN bugs show);
    fusion/heads: PyTorch default Linear init (as the original project).
  * Batch: B 4, T 16, real lengths 16/11/7/13 (padding id 0, mask 0); row 3 has a
    second segment with token_type_ids 1.  Features standard normal, labels
    [0,1,1,0], velocity targets uniform [0,1).
  * Loss: 0.95 * CE(class weights [0.625, 2.5]) + 0.05 * MSE.
  * Optimizer: torch.optim.AdamW(lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 0.01) with
    HF groups (no decay for biases and LayerNorm weights);
    clip_grad_norm_(0.5) before each step (every step clips); transformers
    get_cosine_schedule_with_warmup(warmup 2, total 10) stepped every step.
    3 steps, each on the same batch.

Precision: everything is run twice, in fp32 (as users would) and in fp64 from
the same initial weights.  Every stored reference value comes from the fp64 run,
rounded to fp32, when the fp32 run differs from it by more than a tenth of
the C test's tolerance for that group (forward 1e-5 abs; gradients 1e-4
relative to the tensor's max |grad|, floored at 1e-6 x the largest gradient of
the model because the attention key biases have an exactly-zero gradient;
after-3-steps weights 1e-6 abs);
otherwise the fp32 run is stored.  The choice per group is recorded in
meta.fp64_{forward,grads,after3} and printed.

Stored tensors (names):
  input_ids, token_type_ids, attention_mask [B,T] I32; features [B,18]; labels [B] I32;
  velocity_target [B]; class_weight [2]; loss_weights [2];
  <checkpoint name>            initial weights (Miles checkpoint names)
  out.logits [B,2], out.velocity [B], out.loss [1], out.pooled [B,H], out.last_hidden [B,T,H]
  grad.<name>                  d loss / d param of the first forward
  after3.<name>                weights after 3 optimizer steps
  meta.arch I32 [pooling, velocity_act, n_numeric, n_fusion, numeric_widths[4], fusion_widths[4]]
  meta.bert I32 [vocab, hidden, layers, heads, intermediate, max_position, type_vocab]
  meta.optim [lr, beta1, beta2, eps, weight_decay, max_norm, warmup, total]
  meta.grad_norms [3], meta.lrs [3], meta.losses [3]  (per step, before clipping/update)
  meta.fp64_forward, meta.fp64_grads, meta.fp64_after3 I32 [1]
  sched.cases [K,5] = (kind 1 linear / 2 cosine / 0 constant, step, warmup, total, HF lambda)
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import (BertConfig, BertModel, get_constant_schedule_with_warmup,
                          get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "fixtures")

B, T, H, NF = 4, 16, 32, 18
VOCAB, LAYERS, HEADS, INTER, MAXPOS, TYPES = 64, 2, 4, 64, 20, 2
LENGTHS = [16, 11, 7, 13]
POOLINGS = {"pooler": 0, "cls": 1, "mean": 2}
PRESETS = {
    # name: (numeric widths, fusion widths, sigmoid velocity)
    "miles": ([16], [24], True),
    "seed-notebook": ([], [40, 16], False),
}
LR, BETAS, EPS, WD, MAX_NORM, WARMUP, TOTAL, STEPS = 1e-3, (0.9, 0.999), 1e-8, 0.01, 0.5, 2, 10, 3
TOL_FWD, TOL_GRAD_REL, TOL_AFTER3 = 1e-5, 1e-4, 1e-6


def bert_config():
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                     intermediate_size=INTER, max_position_embeddings=MAXPOS, type_vocab_size=TYPES,
                     hidden_act="gelu", layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    cfg._attn_implementation = "eager"
    return cfg


class MilesNet(nn.Module):
    def __init__(self, preset, pooling):
        super().__init__()
        num_w, fus_w, self.sigmoid = PRESETS[preset]
        self.pooling = pooling
        self.bert = BertModel(bert_config(), add_pooling_layer=(pooling == "pooler"))
        self.numeric_mlp = nn.ModuleList()
        w = NF
        for o in num_w:
            self.numeric_mlp.append(nn.Linear(w, o))
            w = o
        w = H + w
        self.fusion = nn.ModuleList()
        for o in fus_w:
            self.fusion.append(nn.Linear(w, o))
            w = o
        self.classifier = nn.Linear(w, 2)
        self.regressor = nn.Linear(w, 1)

    def forward(self, ids, tt, mask, feats):
        out = self.bert(input_ids=ids, token_type_ids=tt, attention_mask=mask)
        h = out.last_hidden_state
        if self.pooling == "pooler":
            pooled = out.pooler_output
        elif self.pooling == "cls":
            pooled = h[:, 0]
        else:  # sentence-transformers mean pooling
            m = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
        text = F.dropout(pooled, p=0.0, training=self.training)
        num = feats
        for lin in self.numeric_mlp:
            num = F.dropout(F.relu(lin(num)), p=0.0, training=self.training)
        x = torch.cat([text, num], dim=1)
        for lin in self.fusion:
            x = F.dropout(F.relu(lin(x)), p=0.0, training=self.training)
        logits = self.classifier(x)
        v = self.regressor(x).squeeze(-1)
        if self.sigmoid:
            v = torch.sigmoid(v)
        return logits, v, pooled, h


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("bert."):
                continue  # heads keep PyTorch's default init (seeded)
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("LayerNorm.bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))


def make_batch(gen):
    ids = torch.zeros(B, T, dtype=torch.long)
    tt = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(LENGTHS):
        ids[b, :n] = torch.randint(5, VOCAB, (n,), generator=gen)
        ids[b, 0] = 2  # a [CLS]-like id
        ids[b, n - 1] = 3  # a [SEP]-like id
        mask[b, :n] = 1
    # row 3: "[CLS] a a a a a [SEP] b b b b b [SEP]" -> second segment has type 1
    ids[3, 6] = 3
    tt[3, 7:LENGTHS[3]] = 1
    feats = torch.randn(B, NF, generator=gen)
    labels = torch.tensor([0, 1, 1, 0], dtype=torch.long)
    vel = torch.rand(B, generator=gen)
    return ids, tt, mask, feats, labels, vel


def decay_flag(name):
    return not (name.endswith("bias") or "LayerNorm.weight" in name)


def run(model, batch, dtype):
    """Forward/backward, then 3 AdamW steps.  Returns a dict of numpy float64 arrays."""
    ids, tt, mask, feats, labels, vel = batch
    feats = feats.to(dtype)
    vel = vel.to(dtype)
    cw = torch.tensor([0.625, 2.5], dtype=dtype)
    model.train()
    names = [n for n, _ in model.named_parameters()]
    params = dict(model.named_parameters())

    def loss_fn():
        logits, v, pooled, h = model(ids, tt, mask, feats)
        ce = F.cross_entropy(logits, labels, weight=cw)
        mse = F.mse_loss(v, vel)
        return 0.95 * ce + 0.05 * mse, logits, v, pooled, h

    res = {}
    groups = [
        {"params": [params[n] for n in names if decay_flag(n)], "weight_decay": WD},
        {"params": [params[n] for n in names if not decay_flag(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=WARMUP, num_training_steps=TOTAL)
    norms, lrs, losses = [], [], []
    for step in range(STEPS):
        opt.zero_grad(set_to_none=False)
        loss, logits, v, pooled, h = loss_fn()
        loss.backward()
        if step == 0:
            res["out.logits"] = logits.detach()
            res["out.velocity"] = v.detach()
            res["out.loss"] = loss.detach().reshape(1)
            res["out.pooled"] = pooled.detach()
            res["out.last_hidden"] = h.detach()
            for n in names:
                res["grad." + n] = params[n].grad.detach().clone()
        losses.append(loss.item())
        lrs.append(opt.param_groups[0]["lr"])
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)))
        opt.step()
        sched.step()
    for n in names:
        res["after3." + n] = params[n].detach().clone()
    res = {k: v.double().numpy() for k, v in res.items()}
    return res, np.array(norms), np.array(lrs), np.array(losses)


def group_gap(r32, r64, prefix, rel=False):
    """Max abs gap of a group; rel: relative to each tensor's max |value|, with a
    floor of 1e-6 x the group's max |value| (as tests/test_golden.c does: the key
    biases have an exactly-zero gradient, softmax being shift-invariant)."""
    gmax = max(np.abs(r64[k]).max() for k in r64 if k.startswith(prefix))
    worst = 0.0
    for k in r64:
        if not k.startswith(prefix):
            continue
        d = np.abs(r32[k] - r64[k]).max() if r64[k].size else 0.0
        if rel:
            d /= max(np.abs(r64[k]).max(), 1e-6 * gmax)
        worst = max(worst, d)
    return worst


def sched_cases():
    rows = []
    dummy = torch.nn.Parameter(torch.zeros(1))
    for kind, fn in ((0, get_constant_schedule_with_warmup), (1, get_linear_schedule_with_warmup),
                     (2, get_cosine_schedule_with_warmup)):
        for warmup, total in ((2, 10), (0, 5), (3, 3), (500, 3135)):
            opt = torch.optim.SGD([dummy], lr=1.0)
            if kind == 0:
                s = fn(opt, num_warmup_steps=warmup)
            else:
                s = fn(opt, num_warmup_steps=warmup, num_training_steps=total)
            lam = s.lr_lambdas[0]
            steps = sorted(set(list(range(0, 13)) + [total - 1, total, total + 5, warmup, warmup + 1,
                                                      (warmup + total) // 2]))
            for st in steps:
                if st < 0:
                    continue
                rows.append([kind, st, warmup, total, lam(st)])
    return np.array(rows, dtype=np.float64)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_num_threads(1)
    sched = sched_cases()
    total_bytes = 0
    for preset in PRESETS:
        for pooling in POOLINGS:
            torch.manual_seed(42)  # head init; with gen seed 1, every fixture clips
            gen = torch.Generator().manual_seed(1)
            m32 = MilesNet(preset, pooling)
            randomize(m32, gen)
            batch = make_batch(gen)
            m64 = MilesNet(preset, pooling).double()
            m64.load_state_dict({k: v.double() for k, v in m32.state_dict().items()})
            init = {n: p.detach().clone() for n, p in m32.named_parameters()}

            r32, n32, lr32, l32 = run(m32, batch, torch.float32)
            r64, n64, lr64, l64 = run(m64, batch, torch.float64)

            gap_f = group_gap(r32, r64, "out.")
            gap_g = group_gap(r32, r64, "grad.", rel=True)
            gap_a = group_gap(r32, r64, "after3.")
            use = {"out.": gap_f > 0.1 * TOL_FWD, "grad.": gap_g > 0.1 * TOL_GRAD_REL,
                   "after3.": gap_a > 0.1 * TOL_AFTER3}
            out = {}
            ids, tt, mask, feats, labels, vel = batch
            out["input_ids"] = ids.to(torch.int32)
            out["token_type_ids"] = tt.to(torch.int32)
            out["attention_mask"] = mask.to(torch.int32)
            out["features"] = feats.float()
            out["labels"] = labels.to(torch.int32)
            out["velocity_target"] = vel.float()
            out["class_weight"] = torch.tensor([0.625, 2.5])
            out["loss_weights"] = torch.tensor([0.95, 0.05])
            for n, p in init.items():
                out[n] = p.float().contiguous()
            for k in r64:
                src = r64 if any(k.startswith(p) and u for p, u in use.items()) else r32
                out[k] = torch.from_numpy(src[k].astype(np.float32)).contiguous()
            num_w, fus_w, sig = PRESETS[preset]
            arch = [POOLINGS[pooling], 0 if sig else 1, len(num_w), len(fus_w)]
            arch += (num_w + [0] * 4)[:4] + (fus_w + [0] * 4)[:4]
            out["meta.arch"] = torch.tensor(arch, dtype=torch.int32)
            out["meta.bert"] = torch.tensor([VOCAB, H, LAYERS, HEADS, INTER, MAXPOS, TYPES],
                                            dtype=torch.int32)
            out["meta.optim"] = torch.tensor([LR, BETAS[0], BETAS[1], EPS, WD, MAX_NORM, WARMUP, TOTAL],
                                             dtype=torch.float32)
            out["meta.grad_norms"] = torch.tensor(n64 if use["grad."] else n32, dtype=torch.float32)
            out["meta.lrs"] = torch.tensor(lr32, dtype=torch.float32)
            out["meta.losses"] = torch.tensor(l64 if use["out."] else l32, dtype=torch.float32)
            out["meta.fp64_forward"] = torch.tensor([int(use["out."])], dtype=torch.int32)
            out["meta.fp64_grads"] = torch.tensor([int(use["grad."])], dtype=torch.int32)
            out["meta.fp64_after3"] = torch.tensor([int(use["after3."])], dtype=torch.int32)
            out["sched.cases"] = torch.from_numpy(sched.astype(np.float32))
            path = os.path.join(OUT_DIR, "golden_%s_%s.safetensors" % (preset, pooling))
            save_file(out, path, metadata={"generator": "tests/gen_golden.py",
                                           "torch": torch.__version__})
            size = os.path.getsize(path)
            total_bytes += size
            print("%-40s %7.1f KB  loss %.6f  grad norms %s (clip %.1f)  lrs %s" %
                  (os.path.basename(path), size / 1024, l32[0],
                   " ".join("%.4f" % x for x in n32), MAX_NORM, " ".join("%.2e" % x for x in lr32)))
            print("    fp32 vs fp64: forward %.2e  grads(rel) %.2e  after3 %.2e -> stored %s/%s/%s" %
                  (gap_f, gap_g, gap_a, *("fp64" if use[p] else "fp32" for p in ("out.", "grad.", "after3."))))
            if not any(n > MAX_NORM for n in n32):
                print("error: no clipping happened; adjust the setup", file=sys.stderr)
                sys.exit(1)
    print("total %.1f KB" % (total_bytes / 1024))


if __name__ == "__main__":
    main()
