#!/bin/sh
# Every CPU speed goal of docs/performance.md ("Goals") measured side by side
# with its peer in one run, and a verdict per row: the one command to check a
# new machine (a Zen 5, a Sapphire Rapids...) instead of copying figures from
# five scripts by hand.
#
#   bench/run_cpu_goals.sh [OUT_DIR] [CHECKPOINT]     (~20 min on 2 cores)
#
# OUT_DIR (default bench-goals-<date>): the logs of each bench, summary.json
# (machine, commit, command, every row with its value, goal and verdict) and
# summary.md (the same as a table for docs/performance.md).
# CHECKPOINT: a MiniLM-L6 checkpoint for miles-serve; without one, one is
# made by two optimizer steps from models/all-MiniLM-L6-v2 (`make weights`):
# serving speed does not depend on what the weights learned.
# Env: THREADS (2), PY (/opt/miles-bench/bin/python: `make bench-env`),
#      BUILD (build), QUICK=1 (fewer rounds: a smoke run, not a measurement).
# Needs: the bench environment (ONNX Runtime, PyTorch + transformers) and wrk.
# Every rate is the best of interleaved rounds (a shared host only ever slows
# a run down); ORT runs both exports (verdicts on each: bench/cpu_goals.py).
# Exit status: 0 when it ran (whatever the verdicts), non-zero when a bench failed.
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-bench-goals-$(date -u +%Y%m%d-%H%M)}
CK=${2:-}
THREADS=${THREADS:-2}
BUILD=${BUILD:-build}
PY=${PY:-/opt/miles-bench/bin/python}
export PY BUILD
[ -x "$PY" ] || { echo "run_cpu_goals: $PY not found (make bench-env)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "run_cpu_goals: wrk not found (make bench-env)" >&2; exit 2; }
# rounds: R1 MiniLM inference, R2 bert-base inference and serving, R3 the
# train steps (the rows nearest their bar, and the most exposed to neighbours)
if [ "${QUICK:-0}" = 1 ]; then R1=1 R2=1 R3=1 IT=3 TI=1 SD=4; else R1=3 R2=2 R3=3 IT=3 TI=3 SD=20; fi
mkdir -p "$OUT"
make -s BUILD="$BUILD" all "$BUILD/bench/bench_infer" "$BUILD/bench/bench_sgemm" "$BUILD/bench/bench_model" >/dev/null
step() { echo "== $(date -u +%H:%M:%S) $*"; }
{
  date -u '+%Y-%m-%d %H:%M UTC'
  git rev-parse --short HEAD 2>/dev/null || echo unknown
  echo "bench/run_cpu_goals.sh $*"
} > "$OUT/meta.txt"
lscpu > "$OUT/lscpu.txt"

if [ -z "$CK" ]; then
  [ -f models/all-MiniLM-L6-v2/model.safetensors ] || { echo "run_cpu_goals: no CHECKPOINT and no models/all-MiniLM-L6-v2 (make weights)" >&2; exit 2; }
  step "serving checkpoint: 2 steps from all-MiniLM-L6-v2"
  "$BUILD/bin/miles-data" synth --rows 400 --seed 7 --out "$OUT/ck_synth.csv" >/dev/null
  "$BUILD/bin/miles-train" --csv "$OUT/ck_synth.csv" --model models/all-MiniLM-L6-v2 --max-len 32 --max-steps 2 \
      --out "$OUT/ck" --quiet >"$OUT/ck_train.log" 2>&1
  CK=$OUT/ck/last.safetensors
fi

step "inference MiniLM-L6 (B32 T32, B1 T32)"
CASES="32x32 1x32" REPS=$R1 bench/run_infer_bench.sh "$THREADS" minilm-l6 > "$OUT/infer_minilm-l6.txt" 2>&1
step "inference bert-base"
CASES="32x32 1x32" REPS=$R2 ITERS=5 bench/run_infer_bench.sh "$THREADS" bert-base > "$OUT/infer_bert-base.txt" 2>&1
step "bert-base forward and train step vs PyTorch (T32, T128)"
REPS=$R3 bench/run_model_bench.sh "$THREADS" --iters "$IT" --train-iters "$TI" > "$OUT/model.txt" 2>&1
rm -f "$OUT"/serve_*.txt
for rep in $(seq "$R2"); do
  for p in fp32 bf16 int8; do
    step "miles-serve $p, ${SD} s, 8 connections (round $rep)"
    SERVE_ARGS="--precision $p" bench/bench_serve.sh "$CK" "$SD" 2 8 >> "$OUT/serve_$p.txt" 2>&1 ||
      echo "serve $p failed (see $OUT/serve_$p.txt)" >&2
  done
done
step "summary"
"$PY" bench/cpu_goals.py "$OUT"
