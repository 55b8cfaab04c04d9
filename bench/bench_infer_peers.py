#!/usr/bin/env python3
"""ONNX Runtime on Miles' own ONNX export (bench/bench_infer.c --onnx), the peer
rows of bench/run_infer_bench.sh: fp32 and int8 (onnxruntime.quantization.
quantize_dynamic, per-channel int8 weights, dynamic activations), same B, T,
inputs shape, timing (2 warm-ups, median of --iters) and thread count as
bench_infer.  With --onnx-pooled-only also the export whose last layer runs
on the [CLS] rows alone (what Miles' engine computes; ort-*-pooled rows).
One JSON line per case.

  /opt/miles-bench/bin/python bench/bench_infer_peers.py --onnx F --B 32 --T 32 --threads 2
"""
import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic


def session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", default="minilm-l6")
    ap.add_argument("--onnx-pooled-only", default=None,
                    help="also the export with the last layer on the [CLS] rows alone (miles-export --pooled-only)")
    a = ap.parse_args()
    graphs = [("ort-fp32", a.onnx)] + ([("ort-fp32-pooled", a.onnx_pooled_only)] if a.onnx_pooled_only else [])
    for name, path in list(graphs):
        q8 = path + ".int8.onnx"
        if not os.path.exists(q8) or os.path.getmtime(q8) < os.path.getmtime(path):
            quantize_dynamic(path, q8, weight_type=QuantType.QInt8, per_channel=True)
        graphs.append((name.replace("fp32", "int8"), q8))
    B, T = a.B, a.T
    ids = np.empty((B, T), np.int64)
    for b in range(B):
        for t in range(T):
            ids[b, t] = 101 if t == 0 else 102 if t == T - 1 else 1000 + (b * 31 + t * 17) % 20000
    feeds = {"input_ids": ids, "attention_mask": np.ones((B, T), np.int64),
             "token_type_ids": np.zeros((B, T), np.int64),
             "features": np.sin(1.0 + np.arange(B)[:, None] * 7.1 + np.arange(18)[None, :] * 1.3).astype(np.float32)}
    for name, path in graphs:
        s = session(path, a.threads)
        names = {i.name for i in s.get_inputs()}
        f = {k: v for k, v in feeds.items() if k in names}
        for _ in range(2):
            s.run(None, f)
        ts = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            s.run(None, f)
            ts.append(time.perf_counter() - t0)
        ts.sort()
        med = ts[len(ts) // 2]
        print(json.dumps({"impl": name, "precision": name, "size": a.size, "B": B, "T": T, "threads": a.threads,
                          "iters": a.iters, "ms_median": round(med * 1e3, 3), "ms_best": round(ts[0] * 1e3, 3),
                          "seq_per_s": round(B / med, 2), "onnxruntime": ort.__version__,
                          "loadavg_1m": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main()
