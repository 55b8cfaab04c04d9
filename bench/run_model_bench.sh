#!/bin/sh
# Miles vs PyTorch CPU model throughput on the same thread count.
#
#   bench/run_model_bench.sh [threads] [extra args for both, e.g. --T 32 --iters 2]
#
# Env: REPS (2: rounds of both, alternating; each side's best round is kept),
#      BUILD (default build), PY (default /opt/miles-bench/bin/python when it
#      exists: current PyPI torch, SDPA attention; else /opt/miles-ref/bin/python),
#      OMP_WAIT_POLICY (libgomp default unless set, as the tools; applied to both).
# Prints both JSON lines per case, then the Miles/PyTorch ratios and each
# side's GFLOP/s (the model's matrix-product FLOPs, bench_model.c) as a
# fraction of the best fp32 peak bench_model measured (FMA loop; --peak G
# gives it instead, e.g. an idle-machine figure).
set -eu
THREADS=${1:-2}
REPS=${REPS:-2}
[ $# -gt 0 ] && shift
BUILD=${BUILD:-build}
if [ -z "${PY:-}" ]; then
    PY=/opt/miles-ref/bin/python
    [ -x /opt/miles-bench/bin/python ] && PY=/opt/miles-bench/bin/python
fi
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
# OpenMP workers that spin after a parallel region steal the cores from the
# (pthread) OpenBLAS threads: on 2 cores ACTIVE waiting costs both libraries 2x+.
# OMP_WAIT_POLICY: as the tools (libgomp's default unless set; tools/tool_common.h)

make -s BUILD="$BUILD" "$BUILD/bench/bench_model" >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# REPS rounds, Miles and PyTorch alternating: on a shared host other jobs
# only ever slow a run down, so each side's best round is its figure
for rep in $(seq "$REPS"); do
    "$BUILD/bench/bench_model" "$@" | tee -a "$out"
    "$PY" bench/bench_model_torch.py --threads "$THREADS" "$@" | tee -a "$out"
done
"$PY" - "$out" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
peak = sorted((r for r in rows if r.get("bench") == "fp32_peak"), key=lambda r: -r["gflops"])
if peak:
    print("fp32 peak (FMA loop, %s, %d threads, best of %d): %.1f GFLOP/s"
          % (peak[0]["isa"], peak[0]["threads"], len(peak), peak[0]["gflops"]))
best = {}  # (impl, B, T): the fastest forward and train step over the rounds
for r in rows:
    if r.get("bench") != "model":
        continue
    k = (r["impl"], r["B"], r["T"])
    if k not in best:
        best[k] = dict(r)
    b = best[k]
    for f in ("fwd_seq_per_s", "train_seq_per_s"):
        b[f] = max(b[f], r[f])
    if peak:
        b["peak_gflops"] = peak[0]["gflops"]
rows = list(best.values())
for r in rows:
    if r.get("impl") != "miles":
        continue
    t = [x for x in rows if x.get("impl") == "torch" and x["B"] == r["B"] and x["T"] == r["T"]]
    if not t:
        continue
    t = t[0]
    print("B %d T %d threads %d: forward %.2f vs %.2f seq/s (%.2fx), train step %.2f vs %.2f seq/s (%.2fx)"
          % (r["B"], r["T"], r["threads"], r["fwd_seq_per_s"], t["fwd_seq_per_s"],
             r["fwd_seq_per_s"] / t["fwd_seq_per_s"], r["train_seq_per_s"], t["train_seq_per_s"],
             r["train_seq_per_s"] / t["train_seq_per_s"]))
    pk = r.get("peak_gflops", 0)
    if pk > 0 and r.get("fwd_gflop"):
        f = r["fwd_gflop"] / r["B"]  # GFLOP per sequence, forward (the same model on both sides)
        # Miles' share of peak: the products it executed (the last layer on
        # the [CLS] rows alone runs fewer than the model's)
        fx = r.get("fwd_gflop_exec", r["fwd_gflop"]) / r["B"]
        print("    GFLOP/s (%% of %.0f peak): Miles forward %.0f (%.0f%%), train %.0f (%.0f%%) in the model's "
              "FLOPs, executed %.0f%% / %.0f%% of peak%s; "
              "PyTorch (%s attention) forward %.0f (%.0f%%), train %.0f (%.0f%%)"
              % (pk, f * r["fwd_seq_per_s"], 100 * f * r["fwd_seq_per_s"] / pk,
                 3 * f * r["train_seq_per_s"], 300 * f * r["train_seq_per_s"] / pk,
                 100 * fx * r["fwd_seq_per_s"] / pk, 300 * fx * r["train_seq_per_s"] / pk,
                 " (last layer: [CLS] rows only)" if r.get("pooled_only") else "", t.get("attn", "?"),
                 f * t["fwd_seq_per_s"], 100 * f * t["fwd_seq_per_s"] / pk,
                 3 * f * t["train_seq_per_s"], 300 * f * t["train_seq_per_s"] / pk))
EOF
