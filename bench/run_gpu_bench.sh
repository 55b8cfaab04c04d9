#!/bin/sh
# Miles CUDA model vs PyTorch eager AMP on the same GPU.
#
#   bench/run_gpu_bench.sh [--quick] [--precisions fp32,tf32,bf16,fp16] [--steps N]
#
# Builds $BUILD/cuda/bench_cuda_model for this GPU's architecture, runs it and
# bench/bench_model_torch_cuda.py (when torch + transformers with CUDA import)
# with the same arguments, prints both sets of JSON lines, then one ratio line
# per (precision, case, B, T): Miles / PyTorch seq/s (> 1: Miles faster) and
# both MFUs.  Env: BUILD (default build-gpu), PY (default python3), OUTDIR (where
# the JSON lines are kept; default a temp dir), CUDA_ARCH (default from nvidia-smi).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
PY=${PY:-python3}
if [ -z "${CUDA_ARCH:-}" ]; then
  CUDA_ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')
  [ -n "$CUDA_ARCH" ] || { echo "run_gpu_bench: no GPU (nvidia-smi found none)"; exit 1; }
fi
MK="-f Makefile"
grep -q 'kernels/cuda.mk' Makefile || MK="-f Makefile -f kernels/cuda.mk"
make $MK -s -j"$(nproc)" BUILD="$BUILD" CUDA_ARCH="$CUDA_ARCH" ${NVCC:+NVCC="$NVCC"} lib "$BUILD/cuda/bench_cuda_model" >/dev/null
OUTDIR=${OUTDIR:-$(mktemp -d)}
mkdir -p "$OUTDIR"
"$BUILD/cuda/bench_cuda_model" "$@" | tee "$OUTDIR/bench_cuda_model.jsonl"
"$PY" bench/bench_model_torch_cuda.py "$@" | tee "$OUTDIR/bench_model_torch_cuda.jsonl" || true
"$PY" - "$OUTDIR/bench_cuda_model.jsonl" "$OUTDIR/bench_model_torch_cuda.jsonl" <<'PYEOF'
import json, sys
def rows(p):
    try:
        return [json.loads(l) for l in open(p) if l.startswith("{")]
    except OSError:
        return []
m, t = rows(sys.argv[1]), rows(sys.argv[2])
t = [r for r in t if "skipped" not in r]
if not t:
    print("no PyTorch numbers (see bench_model_torch_cuda.jsonl): ratios skipped")
for r in m:
    k = (r["precision"], r["case"], r["B"], r["T"])
    o = [x for x in t if (x["precision"], x["case"], x["B"], x["T"]) == k]
    what = "latency %.2f ms" % r["ms"] if r["case"] == "latency" else "%.1f seq/s" % r["seq_per_s"]
    if not o:
        print("%-5s %-7s B %-3d T %-3d miles %s, MFU %.1f%%" % (k + (what, 100 * r["mfu"])))
        continue
    o = o[0]
    print("%-5s %-7s B %-3d T %-3d miles/torch %.2fx  (%.1f vs %.1f seq/s; MFU %.1f%% vs %.1f%%; %s)"
          % (k + (r["seq_per_s"] / o["seq_per_s"], r["seq_per_s"], o["seq_per_s"], 100 * r["mfu"],
                  100 * o["mfu"], "torch attn " + o.get("attn", "?"))))
PYEOF
