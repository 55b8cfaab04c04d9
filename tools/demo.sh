#!/usr/bin/env bash
# The README's main job: synthetic data -> prepare -> fine-tune -> evaluate -> baselines.
# Usage: tools/demo.sh [OUT_DIR]   (env: BUILD, ROWS, EPOCHS, MAX_LEN, THREADS,
#        DEVICE=cuda[:N] and PRECISION=fp32|tf32|fp16|bf16 for training and evaluation)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${1:-runs/demo}
ROWS=${ROWS:-20000}
EPOCHS=${EPOCHS:-2}
MAX_LEN=${MAX_LEN:-32}
BIN=$BUILD/bin
MODEL=models/all-MiniLM-L6-v2
mkdir -p "$OUT"

echo "== 1/5 synthetic data set ($ROWS rows, seed 42, 58-column seed schema)"
$BIN/miles-data synth --rows "$ROWS" --seed 42 --out "$OUT/synth.csv"

if [ -f "$MODEL/model.safetensors" ]; then
  VOCAB=$MODEL; INIT=(--model "$MODEL"); LR=5e-5; WARMUP=30
else
  echo "note: $MODEL is absent (run 'make weights'); using a small random encoder instead"
  VOCAB=tests/fixtures/tokenizer_vocab.txt; INIT=(--init random --size tiny --vocab "$VOCAB"); LR=1e-3; WARMUP=20
fi

echo "== 2/5 prepare: English rows, 18 features, label = velocity >= p80 of train, 70/15/15 split"
$BIN/miles-data prepare "$OUT/synth.csv" --out "$OUT/data.milesdat" --vocab "$VOCAB" --max-len "$MAX_LEN"

echo "== 3/5 train (${INIT[*]}, $EPOCHS epochs)"
$BIN/miles-train --data "$OUT/data.milesdat" "${INIT[@]}" --epochs "$EPOCHS" --lr "$LR" --warmup "$WARMUP" \
  --max-len "$MAX_LEN" --bucket --out "$OUT/run" ${THREADS:+--threads "$THREADS"} \
  ${DEVICE:+--device "$DEVICE"} ${PRECISION:+--precision "$PRECISION"} >/dev/null

echo "== 4/5 evaluate the best checkpoint on the test split"
$BIN/miles-eval --checkpoint "$OUT/run/best.safetensors" --data "$OUT/data.milesdat" --out "$OUT/report" \
  ${DEVICE:+--device "$DEVICE"}

echo "== 5/5 baselines on the same split (TF-IDF + LR on titles; LR on the 18 features)"
$BIN/miles-baseline --data "$OUT/data.milesdat" --out "$OUT/report" | grep -E '^(TF-IDF|numeric)|AUROC  |report:|plot:'

python3 - "$OUT/report" <<'PY' 2>/dev/null || true
import json, sys, os
d = sys.argv[1]
rows = [("Miles (fine-tuned)", "eval_test.json"), ("TF-IDF + LR", "baseline_text_test.json"),
        ("numeric LR", "baseline_numeric_test.json")]
print("\n%-20s %8s %8s %8s" % ("model (test split)", "AUROC", "PR-AUC", "F1@thr"))
for name, f in rows:
    j = json.load(open(os.path.join(d, f)))
    st = j.get("at_stored_threshold") or j.get("at_0.5") or {}
    print("%-20s %8.4f %8.4f %8s" % (name, j["auroc"], j["average_precision"],
          ("%.4f" % st["f1"]) if isinstance(st, dict) and st.get("f1") is not None else "n/a"))
PY
echo
echo "outputs: $OUT/run (checkpoints, log.jsonl, tb/), $OUT/report (JSON reports and PNG plots)"
