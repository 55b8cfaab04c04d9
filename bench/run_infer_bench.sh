#!/bin/sh
# Miles CPU inference (fp32 reference forward, and the inference engine in
# fp32/bf16/int8) vs ONNX Runtime fp32 and int8 (quantize_dynamic) on Miles'
# own ONNX export of the same model, same inputs, same thread count, in one
# script (docs/performance.md, "Inference").  ORT runs two exports: the full
# graph (every row of the last layer, as any HF BERT export) and the
# --pooled-only graph (the last layer on the [CLS] rows alone, as Miles'
# engine computes it): the ratios against both are printed.
#
#   bench/run_infer_bench.sh [threads] [size]      (defaults: 2 minilm-l6)
#
# Env: BUILD (build), PY (/opt/miles-bench/bin/python, onnxruntime),
#      REPS (3: each case is run REPS times, interleaved; the best median is
#      kept: other jobs on a shared machine only ever slow a run down),
#      CASES ("32x32 1x32": BxT), ITERS (20).
# Prints the JSON lines, then per case Miles/ORT ratios and the fraction of
# the measured fp32 peak (bench_sgemm's FMA loop on the same threads).
set -eu
THREADS=${1:-2}
SIZE=${2:-minilm-l6}
BUILD=${BUILD:-build}
PY=${PY:-/opt/miles-bench/bin/python}
REPS=${REPS:-3}
CASES=${CASES:-"32x32 1x32"}
ITERS=${ITERS:-20}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
# OMP_WAIT_POLICY: as the tools (libgomp's default unless set; tools/tool_common.h)

make -s BUILD="$BUILD" "$BUILD/bench/bench_infer" "$BUILD/bench/bench_sgemm" >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out=$dir/rows.jsonl
onnx=$dir/miles_$SIZE.onnx
onnx_po=$dir/miles_${SIZE}_pooled.onnx
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $THREADS threads, load: $(uptime | sed 's/.*load average: //')"
"$BUILD/bench/bench_infer" --size "$SIZE" --B 1 --T 2 --iters 1 --precisions fp32 --onnx "$onnx" --onnx-pooled-only "$onnx_po" >/dev/null
for rep in $(seq "$REPS"); do
  "$BUILD/bench/bench_sgemm" --set attn --quick --only none | grep fp32_peak >> "$out"
  for c in $CASES; do
    B=${c%x*}; T=${c#*x}
    "$BUILD/bench/bench_infer" --size "$SIZE" --B "$B" --T "$T" --iters "$ITERS" >> "$out"
    "$PY" bench/bench_infer_peers.py --onnx "$onnx" --onnx-pooled-only "$onnx_po" --size "$SIZE" --B "$B" --T "$T" --iters "$ITERS" \
        --threads "$THREADS" 2>/dev/null >> "$out"
  done
done
cat "$out"
"$PY" - "$out" "$SIZE" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
peak = max(r["gflops"] for r in rows if r.get("bench") == "fp32_peak")
best = {}
for r in rows:
    if "impl" not in r:
        continue
    k = (r["B"], r["T"], r["precision"])
    if k not in best or r["ms_median"] < best[k]["ms_median"]:
        best[k] = r
print(f"measured fp32 peak ({rows[0]['threads']} threads, FMA loop): {peak:.0f} GFLOP/s")
# ORT ratios against the full export and the [CLS]-rows-only one ("pooled");
# of fp32 peak: the products each Miles row executed (bench_infer "gflops")
print(f"| {sys.argv[2]} case | impl | ms/batch | seq/s | vs ORT fp32 | vs ORT int8 | vs ORT fp32 pooled "
      f"| vs ORT int8 pooled | of fp32 peak |")
print("|---|---|---|---|---|---|---|---|---|")
for (B, T) in sorted({(k[0], k[1]) for k in best}, reverse=True):
    of = lambda p: best.get((B, T, p))
    peers = [of(p) for p in ("ort-fp32", "ort-int8", "ort-fp32-pooled", "ort-int8-pooled")]
    for p in ("fp32-reference", "fp32", "bf16", "int8", "ort-fp32", "ort-int8", "ort-fp32-pooled", "ort-int8-pooled"):
        r = of(p)
        if not r:
            continue
        rat = " | ".join(f"{o['ms_median'] / r['ms_median']:.2f}x" if o else "-" for o in peers)
        fr = f"{r['gflops'] / peak:.0%}" if "gflops" in r and p.startswith("fp32") else "-"
        print(f"| B{B} T{T} | {p} | {r['ms_median']:.2f} | {r['seq_per_s']:.1f} | {rat} | {fr} |")
print("load average during the runs (1 min):", sorted({round(r.get("loadavg_1m", 0), 1) for r in rows}))
PY
