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

echo "== 4/5 baselines on the same split (TF-IDF + LR on titles; LR on the 18 features; ridge for velocity)"
$BIN/miles-baseline --data "$OUT/data.milesdat" --kind all --out "$OUT/report" | grep -E '^(TF-IDF|numeric|ridge)|AUROC  |model, target|report:|plot:'

echo "== 5/5 evaluate the best checkpoint on the test split, paired with the baselines on the same rows;"
echo "       its probabilities recalibrated on the val split (the class weights raise them), kept in a copy"
$BIN/miles-eval --checkpoint "$OUT/run/best.safetensors" --data "$OUT/data.milesdat" --out "$OUT/report" \
  --compare "$OUT/report" --calibrate --save-calibrated "$OUT/run/calibrated.safetensors" ${DEVICE:+--device "$DEVICE"}

python3 - "$OUT/report" <<'PY' 2>/dev/null || true
import json, sys, os
d = sys.argv[1]
rows = [("Miles (fine-tuned)", "eval_test.json"), ("TF-IDF + LR", "baseline_text_test.json"),
        ("numeric LR", "baseline_numeric_test.json")]
def ci(b, k):
    v = (b or {}).get(k)
    return "[%.3f, %.3f]" % tuple(v) if v else ""
cmp = json.load(open(os.path.join(d, "eval_test.json"))).get("comparisons", {})
print("\nviral classification (test split; p: DeLong's test of Miles' AUROC against the row's, same rows)")
print("%-20s %8s %17s %8s %8s %9s" % ("model", "AUROC", "95% CI", "PR-AUC", "F1@thr", "p"))
for (name, f), key in zip(rows, (None, "text", "numeric")):
    j = json.load(open(os.path.join(d, f)))
    st = j.get("at_stored_threshold") or j.get("at_0.5") or {}
    b = j.get("bootstrap") or {}
    p = cmp.get(key, {}).get("p_value") if key else None
    print("%-20s %8.4f %17s %8.4f %8s %9s" % (name, j["auroc"], ci(b, "auroc_ci") or ci(b, "auroc"),
          j["average_precision"],
          ("%.4f" % st["f1"]) if isinstance(st, dict) and st.get("f1") is not None else "n/a",
          "%.2g" % p if p is not None else "-"))
print("\nvelocity (test split; R2 in the target space, MAE in views/day)")
print("%-20s %9s %17s %9s %12s" % ("model", "R2", "95% CI", "Spearman", "MAE views/d"))
vrows = [("Miles (fine-tuned)", "eval_test.json"), ("ridge (18 features)", "baseline_ridge_test.json")]
for name, f in vrows:
    v = json.load(open(os.path.join(d, f)))["velocity_report"]
    vpd = v.get("views_per_day", {})
    print("%-20s %9.4f %17s %9.4f %12.4g" % (name, v["target_space"]["r2"], ci(v["bootstrap"], "target_r2"),
          v["spearman"], vpd.get("mae", float("nan"))))
    if f == "eval_test.json":
        ref = v["constant_median"]
        tgt = v["target"]
print("%-20s %9.4f %17s %9s %12.4g" % ("constant median", ref["target_space"]["r2"], "", "-",
      ref.get("views_per_day", {}).get("mae", float("nan"))))
print("(velocity target: %s)" % tgt)
PY
echo
echo "outputs: $OUT/run (checkpoints, log.jsonl, tb/), $OUT/report (JSON reports and PNG plots)"
echo "serve:   $BIN/miles-serve --checkpoint $OUT/run/calibrated.safetensors --port 8080"
