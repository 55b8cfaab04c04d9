#!/usr/bin/env python3
"""PyTorch counterpart of bench/bench_model.c: HF BertModel + the Miles heads.

    bench_model_torch.py [--preset miles] [--size bert-base] [--B 32] [--T 32,128]
                         [--iters N] [--train-iters N] [--threads N] [--attn sdpa|eager]

Same work as the C benchmark: forward in eval mode under no_grad; train step =
zero_grad + forward (train mode, dropout on) + weighted CE/MSE loss + backward +
clip_grad_norm_(1.0) + AdamW step.  One JSON line per (B,T) case.
Attention: PyTorch's fused scaled_dot_product_attention ("sdpa", HF's default
and the fast path of current releases) wherever torch has it (>= 2.0), else
the eager BertSelfAttention; the line says which ran ("attn").
"""
import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import BertConfig, BertModel

SIZES = {
    "bert-base": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072),
    "minilm-l6": dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                      intermediate_size=1536),
    "tiny": dict(vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=128, max_position_embeddings=64),
}


class Net(nn.Module):
    def __init__(self, preset, size, attn):
        super().__init__()
        cfg = BertConfig(**SIZES[size])
        cfg._attn_implementation = attn
        self.bert = BertModel(cfg)
        H = cfg.hidden_size
        if preset == "miles":
            self.numeric = nn.Sequential(nn.Linear(18, 256), nn.ReLU(), nn.Dropout(0.3))
            fus = [nn.Linear(H + 256, 512), nn.ReLU(), nn.Dropout(0.2)]
            w, self.sig = 512, True
        else:
            self.numeric = nn.Identity()
            fus = [nn.Linear(H + 18, 1024), nn.ReLU(), nn.Dropout(0.3), nn.Linear(1024, 256), nn.ReLU(),
                   nn.Dropout(0.2)]
            w, self.sig = 256, False
        self.text_drop = nn.Dropout(0.1)
        self.fusion = nn.Sequential(*fus)
        self.classifier = nn.Linear(w, 2)
        self.regressor = nn.Linear(w, 1)

    def forward(self, ids, tt, mask, feats):
        pooled = self.bert(input_ids=ids, token_type_ids=tt, attention_mask=mask).pooler_output
        x = torch.cat([self.text_drop(pooled), self.numeric(feats)], 1)
        x = self.fusion(x)
        v = self.regressor(x).squeeze(-1)
        return self.classifier(x), torch.sigmoid(v) if self.sig else v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="miles")
    ap.add_argument("--size", default="bert-base")
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--T", default="32,128")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--train-iters", type=int, default=2)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--attn", choices=["sdpa", "eager"],
                    default="sdpa" if hasattr(F, "scaled_dot_product_attention") else "eager")
    ap.add_argument("--peak", type=float, default=0.0)  # accepted for bench_model's arguments; unused
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    model = Net(a.preset, a.size, a.attn)
    attn_used = getattr(model.bert.config, "_attn_implementation", a.attn)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    cw = torch.tensor([0.625, 2.5])
    for T in [int(t) for t in a.T.split(",")]:
        B = a.B
        V = SIZES[a.size]["vocab_size"]
        ids = torch.randint(1000 if V > 2000 else 1, V, (B, T))
        ids[:, 0] = 101 if V > 101 else 0
        tt = torch.zeros(B, T, dtype=torch.long)
        mask = torch.ones(B, T, dtype=torch.long)
        feats = torch.sin(torch.arange(B * 18, dtype=torch.float32)).reshape(B, 18)
        labels = (torch.arange(B) % 5 == 0).long()
        vel = 0.1 * (torch.arange(B) % 10).float()

        def train_step():
            model.train()
            opt.zero_grad(set_to_none=False)
            logits, v = model(ids, tt, mask, feats)
            loss = 0.95 * F.cross_entropy(logits, labels, weight=cw) + 0.05 * F.mse_loss(v, vel)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss.item()

        train_step()  # warm-up
        model.eval()
        with torch.no_grad():
            t0 = time.perf_counter()
            for _ in range(a.iters):
                model(ids, tt, mask, feats)
            fwd = (time.perf_counter() - t0) / a.iters
        t0 = time.perf_counter()
        for _ in range(a.train_iters):
            loss = train_step()
        train = (time.perf_counter() - t0) / a.train_iters
        print(json.dumps({"bench": "model", "impl": "torch", "torch": torch.__version__, "attn": attn_used,
                          "preset": a.preset, "size": a.size, "B": B, "T": T, "threads": a.threads,
                          "fwd_ms": round(fwd * 1e3, 1), "fwd_seq_per_s": round(B / fwd, 2),
                          "train_ms": round(train * 1e3, 1), "train_seq_per_s": round(B / train, 2),
                          "iters": a.iters, "train_iters": a.train_iters, "loss": round(loss, 4)}),
              flush=True)


if __name__ == "__main__":
    main()
