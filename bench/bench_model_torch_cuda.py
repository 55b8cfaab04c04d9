#!/usr/bin/env python3
"""PyTorch counterpart of bench/bench_cuda_model.cu on the same GPU.

    bench_model_torch_cuda.py [--quick] [--precisions bf16,fp16,tf32,fp32]
                              [--steps N] [--attn sdpa|eager|default]
                              [--compile auto|0|1]

HF transformers BertModel (bert-base, random weights) + the Miles heads
("miles" preset: numeric 18->256, fusion 1024->512, classifier + sigmoid
regressor), the cases and JSON fields of the C++ benchmark:

  train    B 32 T 128 and B 64 T 32: zero_grad + forward (dropout on) +
           weighted CE/MSE loss + backward + clip_grad_norm_(1.0) + AdamW step
  memory   torch.cuda.max_memory_allocated() over the B 32 T 128 training
           steps (parameters, gradients, AdamW state, activations, cuBLAS
           workspace), and max_memory_reserved
  latency  B 1, T 32 and T 128 inference (eval, inference_mode, logits to host)
  infer    B 256 T 32 inference throughput

The strongest standard PyTorch setup: torch.autocast (bf16 / fp16 +
GradScaler), SDPA attention (attn_implementation="sdpa"), fused AdamW
(fused=True), fp32 master weights; fp32 (TF32 off) and tf32 for reference.
impl "torch-cuda" is eager; with --compile (auto: bf16 and fp16) the same
model under torch.compile is timed again as impl "torch-cuda-compile" (train
B 32 T 128, latency B 1 T 32, infer B 256 T 32; a compile that fails prints a
JSON line with "error" instead: reported, never silently skipped).  FLOPs
and MFU as in bench_cuda_model.cu.  Without torch / transformers / a GPU it
prints one JSON line with "skipped" and exits 3 (run_gpu_bench.sh and
tools/gpu-check report that as a failure).
"""
import argparse
import json
import sys
import time


def skip(why):
    print(json.dumps({"impl": "torch-cuda", "skipped": why}), flush=True)
    sys.exit(3)


try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    skip("torch not importable: %s" % e)
try:
    from transformers import BertConfig, BertModel
except Exception as e:  # noqa: BLE001
    skip("transformers not importable: %s" % e)

SIZES = {
    "bert-base": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072),
    "minilm-l6": dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                      intermediate_size=1536),
}
PREC = {"fp32": 0, "tf32": 1, "fp16": 2, "bf16": 3}


def bert_config(size, attn):
    kw = dict(SIZES[size])
    if attn != "default":
        try:
            return BertConfig(attn_implementation=attn, **kw)
        except TypeError:
            cfg = BertConfig(**kw)
            cfg._attn_implementation = attn
            return cfg
    return BertConfig(**kw)


class Net(nn.Module):
    def __init__(self, size, attn):
        super().__init__()
        cfg = bert_config(size, attn)
        self.bert = BertModel(cfg)
        H = cfg.hidden_size
        self.numeric = nn.Sequential(nn.Linear(18, 256), nn.ReLU(), nn.Dropout(0.3))
        self.fusion = nn.Sequential(nn.Linear(H + 256, 512), nn.ReLU(), nn.Dropout(0.2))
        self.text_drop = nn.Dropout(0.1)
        self.classifier = nn.Linear(512, 2)
        self.regressor = nn.Linear(512, 1)

    def forward(self, ids, mask, feats):
        pooled = self.bert(input_ids=ids, attention_mask=mask).pooler_output
        x = self.fusion(torch.cat([self.text_drop(pooled), self.numeric(feats)], 1))
        return self.classifier(x), torch.sigmoid(self.regressor(x).squeeze(-1))


def forward_flops(size, B, T):
    s = SIZES[size]
    H, I, L = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"]
    per_tok = L * (2.0 * (4 * H * H + 2 * H * I) + 4.0 * T * H)
    per_seq = 2.0 * H * H + 2.0 * 18 * 256 + 2.0 * (H + 256) * 512 + 2.0 * 512 * 3
    return per_tok * B * T + per_seq * B


def table_peak(name, cc, prec):
    h100 = any(k in name for k in ("H100", "H200", "H800"))
    if cc == 90 and h100:
        return ([51.2, 378.0, 756.0, 756.0] if "PCIe" in name else [66.9, 494.7, 989.4, 989.4])[prec]
    if cc == 80 and any(k in name for k in ("A100", "A800")):
        return [19.5, 156.0, 312.0, 312.0][prec]
    return 0.0


def gemm_tflops(prec_name, quick):
    n = 2048 if quick else 8192
    dt = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[prec_name]
    a = torch.rand(n, n, device="cuda", dtype=dt) - 0.5  # random data, not zeros
    b = torch.rand(n, n, device="cuda", dtype=dt) - 0.5
    ts = []
    for i in range(6):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        if i:
            ts.append(time.perf_counter() - t0)
    ts.sort()
    return 2.0 * n ** 3 / ts[len(ts) // 2] / 1e12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--precisions", default="bf16,fp16,tf32,fp32")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--attn", default="sdpa", choices=["default", "eager", "sdpa"])
    ap.add_argument("--compile", default="auto", choices=["auto", "0", "1"])
    ap.add_argument("--fast", default=None)  # accepted for run_gpu_bench.sh's shared arguments
    ap.add_argument("--graphs", default=None)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        skip("torch.cuda.is_available() is False")
    size = "minilm-l6" if a.quick else "bert-base"
    steps = 3 if a.quick else a.steps
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(0)
    major, minor = torch.cuda.get_device_capability(0)
    cc = 10 * major + minor
    torch.manual_seed(42)
    cw = torch.tensor([0.625, 2.5], device=dev)
    V = SIZES[size]["vocab_size"]

    def batch(B, T):
        ids = torch.randint(1000, V, (B, T), device=dev)
        ids[:, 0], ids[:, -1] = 101, 102
        mask = torch.ones(B, T, dtype=torch.long, device=dev)
        feats = torch.rand(B, 18, device=dev) * 2 - 1
        labels = torch.randint(0, 2, (B,), device=dev)
        vel = torch.rand(B, device=dev)
        return ids, mask, feats, labels, vel

    def emit(impl, prec, case, B, T, iters, ms, seq_s, tfl, peak, gemm, attn, **extra):
        d = {"impl": impl, "gpu": name, "cc": cc, "precision": prec, "case": case, "B": B, "T": T, "iters": iters,
             "ms": round(ms, 4), "seq_per_s": round(seq_s, 1), "tflops": round(tfl, 2), "peak_tflops": peak,
             "mfu": round(tfl / peak, 4) if peak else 0.0, "gemm_tflops": round(gemm, 1),
             "mfu_gemm": round(tfl / gemm, 4) if gemm else 0.0, "torch": torch.__version__, "attn": attn}
        d.update(extra)
        print(json.dumps(d), flush=True)

    for prec in [p for p in a.precisions.split(",") if p]:
        if prec not in PREC:
            sys.exit("unknown precision %s" % prec)
        if prec == "bf16" and cc < 80:
            print("skipping bf16 on sm_%d" % cc, file=sys.stderr)
            continue
        tf32 = prec == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        amp = prec in ("bf16", "fp16")
        adt = torch.bfloat16 if prec == "bf16" else torch.float16
        peak = table_peak(name, cc, PREC[prec])
        gemm = gemm_tflops(prec, a.quick)
        compile_ok = a.compile == "1" or (a.compile == "auto" and amp)

        for impl in ("torch-cuda", "torch-cuda-compile") if compile_ok else ("torch-cuda",):
            torch.manual_seed(42)
            model = Net(size, a.attn).to(dev)
            attn_impl = getattr(model.bert.config, "_attn_implementation", "eager")
            try:
                opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01, fused=True)
                fused = True
            except (TypeError, RuntimeError):
                opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
                fused = False
            scaler = torch.amp.GradScaler("cuda", enabled=prec == "fp16")
            fwd = model
            if impl == "torch-cuda-compile":
                try:
                    fwd = torch.compile(model)
                except Exception as e:  # noqa: BLE001
                    emit(impl, prec, "compile", 0, 0, 0, 0, 0, 0, peak, gemm, attn_impl, error=str(e)[:300])
                    continue

            def train_step(ids, mask, feats, labels, vel):
                model.train()
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=adt, enabled=amp):
                    logits, v = fwd(ids, mask, feats)
                    loss = 0.95 * F.cross_entropy(logits.float(), labels, weight=cw) + 0.05 * F.mse_loss(v.float(), vel)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(opt)
                scaler.update()
                return loss

            cases = [(32, 128), (64, 32)] if impl == "torch-cuda" else [(32, 128)]
            for B, T in cases:
                x = batch(B, T)
                try:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    for _ in range(3):
                        train_step(*x)
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    for _ in range(steps):
                        loss = train_step(*x)
                    torch.cuda.synchronize()
                    dt = time.perf_counter() - t0
                except Exception as e:  # noqa: BLE001
                    emit(impl, prec, "train", B, T, 0, 0, 0, 0, peak, gemm, attn_impl, error=str(e)[:300])
                    continue
                emit(impl, prec, "train", B, T, steps, 1e3 * dt / steps, B * steps / dt,
                     3 * forward_flops(size, B, T) * steps / dt / 1e12, peak, gemm, attn_impl, fused_adamw=fused,
                     loss=round(float(loss), 4))
                if (B, T) == (32, 128):
                    emit(impl, prec, "memory", B, T, 0, 0, 0, 0, peak, gemm, attn_impl,
                         mem_bytes=torch.cuda.max_memory_allocated(),
                         mem_reserved_bytes=torch.cuda.max_memory_reserved())

            model.eval()
            lat = [32, 128] if impl == "torch-cuda" else [32]
            with torch.inference_mode(), torch.autocast("cuda", dtype=adt, enabled=amp):
                for T in lat:
                    ids, mask, feats, _, _ = batch(1, T)
                    ms = []
                    iters = 5 if a.quick else 50
                    try:
                        for i in range(iters + 3):
                            t0 = time.perf_counter()
                            logits, _ = fwd(ids, mask, feats)
                            logits.float().cpu()
                            if i >= 3:
                                ms.append(1e3 * (time.perf_counter() - t0))
                    except Exception as e:  # noqa: BLE001
                        emit(impl, prec, "latency", 1, T, 0, 0, 0, 0, peak, gemm, attn_impl, error=str(e)[:300])
                        continue
                    ms.sort()
                    med = ms[len(ms) // 2]
                    emit(impl, prec, "latency", 1, T, iters, med, 1e3 / med,
                         forward_flops(size, 1, T) / (med * 1e-3) / 1e12, peak, gemm, attn_impl,
                         p90_ms=round(ms[(len(ms) * 9) // 10], 4))
                B, T = 256, 32
                ids, mask, feats, _, _ = batch(B, T)
                iters = 3 if a.quick else 20
                try:
                    for _ in range(3):
                        fwd(ids, mask, feats)[0].float().cpu()
                    t0 = time.perf_counter()
                    for _ in range(iters):
                        fwd(ids, mask, feats)
                    logits, _ = fwd(ids, mask, feats)
                    logits.float().cpu()
                    dt = time.perf_counter() - t0
                except Exception as e:  # noqa: BLE001
                    emit(impl, prec, "infer", B, T, 0, 0, 0, 0, peak, gemm, attn_impl, error=str(e)[:300])
                    continue
                emit(impl, prec, "infer", B, T, iters + 1, 1e3 * dt / (iters + 1), B * (iters + 1) / dt,
                     forward_flops(size, B, T) * (iters + 1) / dt / 1e12, peak, gemm, attn_impl)
            del model, opt, fwd
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
