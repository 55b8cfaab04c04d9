#!/bin/sh
# Miles vs PyTorch CPU model throughput on the same thread count.
#
#   bench/run_model_bench.sh [threads] [extra args for both, e.g. --T 32 --iters 2]
#
# Env: BUILD (default build), PY (default /opt/miles-ref/bin/python),
#      OMP_WAIT_POLICY (default PASSIVE, applied to both).
# Prints both JSON lines per case, then the Miles/PyTorch ratios.
set -eu
THREADS=${1:-2}
[ $# -gt 0 ] && shift
BUILD=${BUILD:-build}
PY=${PY:-/opt/miles-ref/bin/python}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
# OpenMP workers that spin after a parallel region steal the cores from the
# (pthread) OpenBLAS threads: on 2 cores ACTIVE waiting costs both libraries 2x+.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

make -s BUILD="$BUILD" "$BUILD/bench/bench_model" >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$BUILD/bench/bench_model" "$@" | tee "$out"
"$PY" bench/bench_model_torch.py --threads "$THREADS" "$@" | tee -a "$out"
"$PY" - "$out" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for r in rows:
    if r["impl"] != "miles":
        continue
    t = [x for x in rows if x["impl"] == "torch" and x["B"] == r["B"] and x["T"] == r["T"]]
    if not t:
        continue
    t = t[0]
    print("B %d T %d threads %d: forward %.2f vs %.2f seq/s (%.2fx), train step %.2f vs %.2f seq/s (%.2fx)"
          % (r["B"], r["T"], r["threads"], r["fwd_seq_per_s"], t["fwd_seq_per_s"],
             r["fwd_seq_per_s"] / t["fwd_seq_per_s"], r["train_seq_per_s"], t["train_seq_per_s"],
             r["train_seq_per_s"] / t["train_seq_per_s"]))
EOF
