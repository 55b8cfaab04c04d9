#!/usr/bin/env bash
# run_sgemm_bench.sh — the GEMM table of docs/performance.md: the own GEMM and
# OpenBLAS with OPENBLAS_CORETYPE=Haswell and unset (its own CPU detection), on
# 1 and 2 threads, each configuration run REPS times; prints the best GFLOP/s
# per case as a markdown table (fraction of the measured FMA peak in brackets)
# and keeps the JSON lines in $OUT.
#
#   make bench && bench/run_sgemm_bench.sh [SET=bert|small|attn|lowp] [REPS=2]
set -euo pipefail
BUILD=${BUILD:-build}
SET=${SET:-bert}
REPS=${REPS:-2}
OUT=${OUT:-$BUILD/sgemm_bench.jsonl}
: > "$OUT"
for rep in $(seq "$REPS"); do
  for t in 1 2; do
    OMP_NUM_THREADS=$t OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 \
      "$BUILD/bench/bench_sgemm" --set "$SET" | sed "s/^{/{\"cfg\":\"haswell\",/" >> "$OUT"
    [ "$SET" = lowp ] || OMP_NUM_THREADS=$t env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
      "$BUILD/bench/bench_sgemm" --set "$SET" --backend blas | sed "s/^{/{\"cfg\":\"auto\",/" >> "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import json, sys
rows, peak, cols = {}, {}, []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["bench"] == "fp32_peak":
        t = r["threads"]; peak[t] = max(peak.get(t, 0), r["gflops"]); peak[1] = max(peak.get(1, 0), r["gflops_1thread"])
        continue
    if r["bench"] == "sgemm":
        col = r["backend"] if r["backend"] != "openblas" else "openblas_" + r["cfg"]
        t = r["threads"]
        key = (r["case"], r["trans"], r["M"], r["N"], r["K"])
    elif r["bench"] == "gemm_lowp" and "gflops" in r:
        col, t = r["precision"], r["threads"]
        key = (r["case"], "nt", r["M"], r["N"], r["K"])
    else:
        continue
    c = (col, t)
    if c not in cols: cols.append(c)
    rows.setdefault(key, {})
    rows[key][c] = max(rows[key].get(c, 0), r["gflops"])
print("peak (FMA loop): %s GFLOP/s" % ", ".join("%d thread(s) %.0f" % (t, p) for t, p in sorted(peak.items())))
print("| case | op | M×N×K | " + " | ".join("%s %dT" % (c, t) for c, t in cols) + " |")
print("|---" * (3 + len(cols)) + "|")
for key, v in rows.items():
    cells = []
    for c, t in cols:
        g = v.get((c, t))
        pk = peak.get(t, 0)
        cells.append("" if g is None else ("%.0f (%.0f%%)" % (g, 100 * g / pk) if pk else "%.0f" % g))
    print("| %s | %s | %d×%d×%d | %s |" % (key[0], key[1], key[2], key[3], key[4], " | ".join(cells)))
PY
