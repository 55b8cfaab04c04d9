#!/usr/bin/env bash
# Reproduces every number in docs/results.md.
#
# Usage: tools/run_experiments.sh [STAGE...]
#   stages (default: all, in this order):
#     build    make BUILD=$BUILD all
#     data     synthetic set + the three real sources converted and prepared (all variants)
#     baselines TF-IDF + LR and numeric LR on every prepared variant
#     synth    exp 1: Miles (MiniLM fine-tuned) on the default synthetic set
#     leak     exp 2: the same without views (and without all five counts)
#     paired   exp 2b: tiny encoder without views / counts / any feature (prepared with
#              --drop-features), each paired with the full model on the same rows
#              (miles-eval --compare CHECKPOINT --compare-data FILE)
#     recipe   exp 3: --recipe original on the synthetic set
#     ablation exp 3: one original choice at a time (tiny encoder)
#     real     exp 4: YouTube 2017, TikTok VN 2025, TikTok 2020 (tiny random encoder)
#     paired_real  exp 4d: the tiny model on each real set paired with its baselines (DeLong)
#     calibrate  exp 4e: Platt scaling of the tiny models (real sets, synthetic full model) fitted
#              on the validation split (miles-eval --calibrate; runs paired_real / paired first if missing)
#     seeds    exp 4f: the tiny models of 4d/4e (synthetic and the three real sets) trained with 9 more
#              seeds, each paired with the numeric LR and recalibrated: training noise against the
#              bootstrap's test noise (SEEDS: "1 ... 9"; summary in $OUT/seeds.md)
#     time     exp 4g: the chronological split (--split-by time) of the synthetic set and the two
#              TikTok sets (YouTube 2017 has no publish dates): the tiny model with seed 42 and SEEDS,
#              each paired with that split's baselines and recalibrated on its val days; set against
#              4f's row split, and again with the cohort label (--threshold-scope cohort: each video
#              against its publish week) (summary in $OUT/time.md; runs seeds first if missing)
#     prepub   exp 4h: before publishing: the chronological split (cohort label) of the synthetic set and
#              the two TikTok sets with every engagement count and rate dropped (title, timing, duration,
#              emoji left), without creator_avg_views or with it from the creator's earlier days
#              (--creator-avg prior); the tiny model with seed 42 and SEEDS, paired with that file's
#              baselines, and the two variants paired with each other (summary in $OUT/prepub.md)
#     prepub_minilm  exp 4h with MiniLM on TikTok 2020 (seed 42, both variants, paired with the baselines)
#     real_minilm  exp 4 with MiniLM on YouTube 2017
#     cross    exp 4c: each real set's tiny model evaluated on the other two sets
#              (miles-data prepare --checkpoint; trains the three tiny runs if missing)
#     minilm_lr  exp 1 and 2 (no counts) again with lr 2e-4 (underfitting check)
#     summary  tables (docs/results/summary.md) + copies of the eval JSONs into docs/results/
# env: BUILD (build-results), OUT (runs/results), THREADS (2), NICE (nice; empty = no nice),
#      FORCE (set: retrain runs whose reports exist; unset: skip them, so an interrupted
#      invocation can simply be repeated)
#
# Every command appends "name<TAB>wall seconds<TAB>exit status" to $OUT/times.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-results}
OUT=${OUT:-runs/results}
THREADS=${THREADS:-2}
NICE=${NICE-nice}
B=$BUILD/bin
MODEL=models/all-MiniLM-L6-v2
SHARED=${MILES_SHARED:-../shared}
V=(--vocab "$MODEL")
mkdir -p "$OUT"

# timed NAME CMD...: run CMD, log its output to $OUT/logs/NAME.log, record its wall time
timed() {
  local name=$1; shift
  mkdir -p "$OUT/logs"
  local t0; t0=$(date +%s.%N)
  echo "== $name: $*" >&2
  local rc=0
  $NICE "$@" > "$OUT/logs/$name.log" 2>&1 || rc=$?
  local t1; t1=$(date +%s.%N)
  printf '%s\t%.1f\t%s\n' "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$rc" >> "$OUT/times.tsv"
  # miles-eval exits 3 when a metric is undefined (reported, not an error)
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "FAILED ($rc): $name; see $OUT/logs/$name.log" >&2; return "$rc"; fi
}

# Miles fine-tuning recipe used on the synthetic set: the default recipe (weighted CE, AdamW with
# decay only on weights, warmup + cosine stepped every optimizer step, clipping 1.0, early stopping
# on val AUROC) shortened to 3 epochs; lr 5e-5 and 30 warmup steps (as `make demo`), because the
# default 500 warmup steps exceed the 267 optimizer steps of 3 epochs on 2,839 rows.
MINILM=(--model "$MODEL" --epochs 3 --lr 5e-5 --warmup 30 --bucket --threads "$THREADS")
# small randomly initialized encoder (same vocab) for the secondary comparisons
TINY=(--init random --size tiny --vocab "$MODEL" --epochs 3 --lr 1e-3 --warmup 30 --bucket --threads "$THREADS")

# train_eval NAME DATA MAXLEN ARGS...: train into $OUT/NAME/run, evaluate on test into $OUT/NAME/report
train_eval() {
  local name=$1 data=$2 maxlen=$3; shift 3
  if [ -z "${FORCE:-}" ] && [ -f "$OUT/$name/report/eval_val.json" ]; then
    echo "== $name: done already ($OUT/$name/report; FORCE=1 reruns it)" >&2; return 0
  fi
  mkdir -p "$OUT/$name"
  timed "$name.train" "$B/miles-train" --data "$data" --max-len "$maxlen" "$@" --out "$OUT/$name/run"
  timed "$name.eval" "$B/miles-eval" --checkpoint "$OUT/$name/run/best.safetensors" --data "$data" \
    --threads "$THREADS" --out "$OUT/$name/report"
  # the validation split too (the stored threshold is fit there)
  timed "$name.eval_val" "$B/miles-eval" --checkpoint "$OUT/$name/run/best.safetensors" --data "$data" \
    --split val --no-plots --threads "$THREADS" --out "$OUT/$name/report"
}

baselines() {  # NAME DATA
  mkdir -p "$OUT/$1"
  timed "$1.baselines" "$B/miles-baseline" --data "$2" --out "$OUT/$1/report"
}

stage_build() { make BUILD="$BUILD" all; }

stage_data() {
  local d=$OUT/data
  mkdir -p "$d"
  timed data.synth "$B/miles-data" synth --rows 20000 --seed 42 --out "$d/synth.csv"
  timed data.synth.prepare "$B/miles-data" prepare "$d/synth.csv" --out "$d/synth.milesdat" "${V[@]}" --max-len 32
  timed data.synth_noviews.prepare "$B/miles-data" prepare "$d/synth.csv" --out "$d/synth_noviews.milesdat" \
    "${V[@]}" --max-len 32 --drop-features views
  timed data.synth_nocounts.prepare "$B/miles-data" prepare "$d/synth.csv" --out "$d/synth_nocounts.milesdat" \
    "${V[@]}" --max-len 32 --drop-features views,likes,comments,shares,saves
  # the original's data choices: p80 threshold on all rows before splitting, seed title cleaning
  timed data.synth_orig.prepare "$B/miles-data" prepare "$d/synth.csv" --out "$d/synth_orig.milesdat" \
    "${V[@]}" --max-len 32 --threshold-scope all --text-clean seed

  timed data.yt.convert "$B/miles-data" convert --from youtube2017 \
    "$SHARED/data/youtube_trending_2017_v1/USvideos.csv" --out "$d/yt.csv"
  # the directory, not panel_scrape1_recrawl_DERIVED.csv: that file name contains "raw" (in "recrawl")
  # and is then misread as the raw scrape (reported to the lead)
  timed data.vn.convert "$B/miles-data" convert --from tiktok-vn "$SHARED/data/tiktok_vn_ie403" --out "$d/vn.csv"
  timed data.tt20.convert "$B/miles-data" convert --from tiktok2020 \
    "$SHARED/data/tiktok_trending_dec2020/trending.json" --out "$d/tt20.csv"
  local s
  for s in yt vn tt20; do
    # --language any: VN captions are mostly Vietnamese; the YouTube/TikTok 2020 language
    # column is a heuristic (docs/data_sources.md), so every row is kept for all three
    timed "data.$s.prepare" "$B/miles-data" prepare "$d/$s.csv" --out "$d/$s.milesdat" "${V[@]}" \
      --max-len 48 --language any
    timed "data.${s}_noviews.prepare" "$B/miles-data" prepare "$d/$s.csv" --out "$d/${s}_noviews.milesdat" \
      "${V[@]}" --max-len 48 --language any --drop-features views
    # every count and the in-sample creator mean (which includes the row's own views)
    timed "data.${s}_nocounts.prepare" "$B/miles-data" prepare "$d/$s.csv" --out "$d/${s}_nocounts.milesdat" \
      "${V[@]}" --max-len 48 --language any --drop-features views,likes,comments,shares,saves,creator_avg_views
  done
}

# all baselines (seconds): every prepared variant
stage_baselines() {
  local n
  for n in synth synth_noviews synth_nocounts synth_orig yt yt_noviews yt_nocounts vn vn_noviews vn_nocounts \
           tt20 tt20_noviews tt20_nocounts; do
    baselines "$n" "$OUT/data/$n.milesdat"
  done
}

stage_synth() {
  train_eval synth "$OUT/data/synth.milesdat" 32 "${MINILM[@]}"
}

stage_leak() {
  train_eval synth_noviews "$OUT/data/synth_noviews.milesdat" 32 "${MINILM[@]}"
  train_eval synth_nocounts_tiny "$OUT/data/synth_nocounts.milesdat" 32 "${TINY[@]}"
  train_eval synth_tiny "$OUT/data/synth.milesdat" 32 "${TINY[@]}"
  train_eval synth_noviews_tiny "$OUT/data/synth_noviews.milesdat" 32 "${TINY[@]}"
}

stage_recipe() {
  # the original recipe with its nominal lr 2e-5 and 500 warmup steps; the schedule is stepped once
  # per epoch, so the LR stays at ~2e-6. The data file carries the original's threshold scope and
  # cleaning (with --data, miles-train does not re-prepare).
  train_eval synth_orig "$OUT/data/synth_orig.milesdat" 32 --recipe original --model "$MODEL" \
    --epochs 3 --lr 2e-5 --warmup 500 --bucket --threads "$THREADS"
}

stage_real() {
  local s
  for s in yt vn tt20; do
    train_eval "${s}_tiny" "$OUT/data/$s.milesdat" 48 "${TINY[@]}"
    train_eval "${s}_nocounts_tiny" "$OUT/data/${s}_nocounts.milesdat" 48 "${TINY[@]}"
    train_eval "${s}_noviews_tiny" "$OUT/data/${s}_noviews.milesdat" 48 "${TINY[@]}"
  done
}

# summary: one table per experiment from the eval JSONs (markdown on stdout and in
# docs/results/summary.md); copies the eval JSONs (without plot paths) and each Miles run's
# train_result.json into docs/results/NAME/
# one original choice at a time, on the tiny encoder (70 s a run): which fix matters
stage_ablation() {
  local d=$OUT/data/synth.milesdat
  train_eval abl_unweighted_tiny "$d" 32 "${TINY[@]}" --class-weights none
  train_eval abl_seednb_tiny "$d" 32 "${TINY[@]}" --preset seed-notebook
  # what the per-epoch stepping leaves: ~0.1 x the nominal lr, flat
  train_eval abl_lowlr_tiny "$d" 32 "${TINY[@]}" --schedule constant --lr 1e-4
  train_eval abl_origdata_tiny "$OUT/data/synth_orig.milesdat" 32 "${TINY[@]}"
  train_eval synth_orig_tiny "$OUT/data/synth_orig.milesdat" 32 "${TINY[@]}" --recipe original --warmup 500
}

# exp 2b: features dropped at preparation (each variant its own file: its own scaler, the same rows),
# the tiny model trained on each and paired with the full one on the same test rows
# (miles-eval --compare CHECKPOINT --compare-data FILE: DeLong's test, paired bootstrap)
stage_paired() {
  local d=$OUT/data
  mkdir -p "$d"
  [ -f "$d/synth.csv" ] || timed data.synth "$B/miles-data" synth --rows 20000 --seed 42 --out "$d/synth.csv"
  [ -f "$d/synth.milesdat" ] || timed data.synth.prepare "$B/miles-data" prepare "$d/synth.csv" \
    --out "$d/synth.milesdat" "${V[@]}" --max-len 32
  local all=views,likes,comments,shares,saves,engagement_rate,completion_rate,like_rate,comment_ratio,share_rate
  all=$all,save_rate,upload_hour,is_weekend,duration_sec,title_length,has_emoji,creator_avg_views,publish_dayofweek
  local v drop
  for v in noviews nocounts textonly; do
    case $v in
      noviews) drop=views ;;
      nocounts) drop=views,likes,comments,shares,saves ;;
      textonly) drop=$all ;;
    esac
    [ -f "$d/synth_$v.milesdat" ] || timed "data.synth_$v.prepare" "$B/miles-data" prepare "$d/synth.csv" \
      --out "$d/synth_$v.milesdat" "${V[@]}" --max-len 32 --drop-features "$drop"
  done
  train_eval pair_full_tiny "$d/synth.milesdat" 32 "${TINY[@]}"
  for v in noviews nocounts textonly; do
    train_eval "pair_${v}_tiny" "$d/synth_$v.milesdat" 32 "${TINY[@]}"
    timed "pair_full_vs_$v" "$B/miles-eval" --checkpoint "$OUT/pair_full_tiny/run/best.safetensors" \
      --data "$d/synth.milesdat" --threads "$THREADS" --no-plots \
      --compare "$OUT/pair_${v}_tiny/run/best.safetensors" --compare-data "$d/synth_$v.milesdat" \
      --out "$OUT/pair_full_tiny/report/vs_$v"
  done
}

# exp 4d: on each real set, the tiny model paired with the three baselines on the same test rows
# (DeLong's test: does Miles beat the numeric LR, i.e. do the titles and the nonlinear branch add
# anything?); converts and prepares a set the data stage has not made
stage_paired_real() {
  local d=$OUT/data s
  mkdir -p "$d"
  [ -f "$d/yt.csv" ] || timed data.yt.convert "$B/miles-data" convert --from youtube2017 \
    "$SHARED/data/youtube_trending_2017_v1/USvideos.csv" --out "$d/yt.csv"
  [ -f "$d/vn.csv" ] || timed data.vn.convert "$B/miles-data" convert --from tiktok-vn "$SHARED/data/tiktok_vn_ie403" \
    --out "$d/vn.csv"
  [ -f "$d/tt20.csv" ] || timed data.tt20.convert "$B/miles-data" convert --from tiktok2020 \
    "$SHARED/data/tiktok_trending_dec2020/trending.json" --out "$d/tt20.csv"
  for s in yt vn tt20; do
    [ -f "$d/$s.milesdat" ] || timed "data.$s.prepare" "$B/miles-data" prepare "$d/$s.csv" --out "$d/$s.milesdat" \
      "${V[@]}" --max-len 48 --language any
    mkdir -p "$OUT/$s"
    timed "$s.baselines_all" "$B/miles-baseline" --data "$d/$s.milesdat" --kind all --out "$OUT/$s/report"
    train_eval "${s}_tiny" "$d/$s.milesdat" 48 "${TINY[@]}"
    timed "${s}_tiny.paired" "$B/miles-eval" --checkpoint "$OUT/${s}_tiny/run/best.safetensors" --data "$d/$s.milesdat" \
      --threads "$THREADS" --no-plots --compare "$OUT/$s/report" --out "$OUT/${s}_tiny/report/paired"
  done
}

# the class-weighted models' probabilities before and after Platt scaling on the val split
stage_calibrate() {
  local s
  for s in yt vn tt20; do
    [ -f "$OUT/${s}_tiny/run/best.safetensors" ] || stage_paired_real
    timed "${s}_tiny.calibrate" "$B/miles-eval" --checkpoint "$OUT/${s}_tiny/run/best.safetensors" \
      --data "$OUT/data/$s.milesdat" --threads "$THREADS" --calibrate --out "$OUT/${s}_tiny/report/calibrated"
  done
  [ -f "$OUT/pair_full_tiny/run/best.safetensors" ] || stage_paired
  timed pair_full_tiny.calibrate "$B/miles-eval" --checkpoint "$OUT/pair_full_tiny/run/best.safetensors" \
    --data "$OUT/data/synth.milesdat" --threads "$THREADS" --calibrate --out "$OUT/pair_full_tiny/report/calibrated"
}

# training noise: the same recipe and data, other seeds (seed 42 is the run of 4d / 2b)
stage_seeds() {
  local s seed name data maxlen base bl
  for s in synth yt vn tt20; do
    if [ "$s" = synth ]; then base=pair_full_tiny maxlen=32 bl=$OUT/synth/report
    else base=${s}_tiny maxlen=48 bl=$OUT/$s/report; fi
    data=$OUT/data/$s.milesdat
    [ -f "$bl/baseline_numeric.json" ] || timed "$s.baselines_all" "$B/miles-baseline" --data "$data" --kind all --out "$bl"
    [ -f "$OUT/$base/run/best.safetensors" ] || { [ "$s" = synth ] && stage_paired || stage_paired_real; }
    for seed in 42 ${SEEDS:-1 2 3 4 5 6 7 8 9}; do
      if [ "$seed" = 42 ]; then name=$base; else name=${s}_tiny_seed$seed; train_eval "$name" "$data" "$maxlen" "${TINY[@]}" --seed "$seed"; fi
      timed "$name.seeds_eval" "$B/miles-eval" --checkpoint "$OUT/$name/run/best.safetensors" --data "$data" \
        --threads "$THREADS" --no-plots --compare "$bl" --calibrate --out "$OUT/$name/report/seeds"
    done
  done
  python3 - "$OUT" ${SEEDS:-1 2 3 4 5 6 7 8 9} > "$OUT/seeds.md" <<'PY'
import json, statistics as st, sys
out, seeds = sys.argv[1], [42] + [int(s) for s in sys.argv[2:]]
print("| set | seeds | test AUROC: mean ± sd [min, max] | bootstrap 95% CI half-width (seed 42) | "
      "AUROC − numeric LR: each seed (DeLong p) | ECE → calibrated (mean) |")
print("|---|---|---|---|---|---|")
for s, base in (("synth", "pair_full_tiny"), ("yt", "yt_tiny"), ("vn", "vn_tiny"), ("tt20", "tt20_tiny")):
    rows = []
    for seed in seeds:
        name = base if seed == 42 else f"{s}_tiny_seed{seed}"
        rows.append(json.load(open(f"{out}/{name}/report/seeds/eval_test.json")))
    au = [r["auroc"] for r in rows]
    ci = rows[0]["bootstrap"]["auroc"]
    d = ", ".join("%+.3f (%.2g)" % (r["comparisons"]["numeric"]["diff"], r["comparisons"]["numeric"]["p_value"])
                  for r in rows)
    e0 = st.mean(r["calibration"]["uncalibrated"]["ece"] for r in rows)
    e1 = st.mean(r["calibration"]["calibrated"]["ece"] for r in rows)
    print(f"| {s} | {len(seeds)} | {st.mean(au):.4f} ± {st.stdev(au):.4f} [{min(au):.4f}, {max(au):.4f}] | "
          f"±{(ci[1] - ci[0]) / 2:.4f} | {d} | {e0:.3f} → {e1:.3f} |")
PY
  cat "$OUT/seeds.md"
}

# exp 4g: train on the oldest publish days, validate on the next, test on the newest (the data a
# deployed model meets), against the stratified row split of 4f with the same recipe and seeds
# seeded_tiny BASE DATA MAXLEN EVAL_ARGS...: every baseline on DATA into $OUT/BASE/report, then the tiny
# recipe with seed 42 (BASE_tiny) and SEEDS (BASE_tiny_seedK), each paired with those baselines
# (miles-eval --compare, EVAL_ARGS added) into its report/paired
seeded_tiny() {
  local base=$1 data=$2 maxlen=$3 seed name bl=$OUT/$1/report
  shift 3
  mkdir -p "$OUT/$base"
  [ -f "$bl/baseline_numeric.json" ] || timed "$base.baselines_all" "$B/miles-baseline" --data "$data" \
    --kind all --out "$bl"
  for seed in 42 ${SEEDS:-1 2 3 4 5 6 7 8 9}; do
    name=${base}_tiny
    [ "$seed" = 42 ] || name=${base}_tiny_seed$seed
    train_eval "$name" "$data" "$maxlen" "${TINY[@]}" --seed "$seed"
    timed "$name.paired" "$B/miles-eval" --checkpoint "$OUT/$name/run/best.safetensors" --data "$data" \
      --threads "$THREADS" --no-plots --compare "$bl" "$@" --out "$OUT/$name/report/paired"
  done
}

stage_time() {
  local d=$OUT/data s data maxlen
  local -a lang
  for s in synth vn tt20; do
    [ -f "$OUT/${s/synth/pair_full}_tiny/report/seeds/eval_test.json" ] || stage_seeds
  done
  # time: the training split's threshold; timecohort: each video against its publish week
  local v
  local -a label
  for s in synth vn tt20; do
    if [ "$s" = synth ]; then maxlen=32 lang=(); else maxlen=48 lang=(--language any); fi
    for v in time timecohort; do
      label=(); [ "$v" = timecohort ] && label=(--threshold-scope cohort --cohort-days 7)
      data=$d/${s}_$v.milesdat
      [ -f "$data" ] || timed "data.${s}_$v.prepare" "$B/miles-data" prepare "$d/$s.csv" --out "$data" "${V[@]}" \
        --max-len "$maxlen" "${lang[@]}" --split-by time "${label[@]}"
      seeded_tiny "${s}_$v" "$data" "$maxlen" --calibrate
    done
  done
  python3 - "$OUT" ${SEEDS:-1 2 3 4 5 6 7 8 9} > "$OUT/time.md" <<'PY'
import json, statistics as st, sys
out, seeds = sys.argv[1], [42] + [int(s) for s in sys.argv[2:]]
def runs(name_42, name_seed, sub):
    return [json.load(open(f"{out}/{name_42 if s == 42 else name_seed + str(s)}/report/{sub}/eval_test.json"))
            for s in seeds]
print("| set | split | test n (viral rate) | Miles test AUROC: mean ± sd [min, max] | 95% CI half-width (seed 42) | "
      "numeric LR / TF-IDF LR AUROC | Miles − numeric LR: range (DeLong p range) | velocity R² (mean) | "
      "mean P(viral) → calibrated (mean) | ECE → calibrated (mean) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for s, row in (("synth", "pair_full_tiny"), ("vn", "vn_tiny"), ("tt20", "tt20_tiny")):
    for split, rs in (("row", runs(row, f"{s}_tiny_seed", "seeds")),
                      ("time", runs(f"{s}_time_tiny", f"{s}_time_tiny_seed", "paired")),
                      ("time, cohort label", runs(f"{s}_timecohort_tiny", f"{s}_timecohort_tiny_seed", "paired"))):
        au = [r["auroc"] for r in rs]
        ci = rs[0]["bootstrap"]["auroc"]
        cn, ct = rs[0]["comparisons"]["numeric"], rs[0]["comparisons"]["text"]
        dif = [r["comparisons"]["numeric"]["diff"] for r in rs]
        p = [r["comparisons"]["numeric"]["p_value"] for r in rs]
        cal = [r["calibration"] for r in rs]
        m0 = st.mean(c["uncalibrated"]["mean_score"] for c in cal)
        m1 = st.mean(c["calibrated"]["mean_score"] for c in cal)
        e0 = st.mean(c["uncalibrated"]["ece"] for c in cal)
        e1 = st.mean(c["calibrated"]["ece"] for c in cal)
        r2 = st.mean(r["velocity"]["r2"] for r in rs)
        print(f"| {s} | {split} | {rs[0]['n']} ({rs[0]['prevalence']:.3f}) | {st.mean(au):.4f} ± {st.stdev(au):.4f} "
              f"[{min(au):.4f}, {max(au):.4f}] | ±{(ci[1] - ci[0]) / 2:.4f} | {cn['auroc_baseline']:.4f} / "
              f"{ct['auroc_baseline']:.4f} | {min(dif):+.3f} … {max(dif):+.3f} ({min(p):.2g} … {max(p):.2g}) | "
              f"{r2:.3f} | {m0:.3f} → {m1:.3f} | {e0:.3f} → {e1:.3f} |")
PY
  cat "$OUT/time.md"
}

# exp 4h: what a model can know before a video is published (time split: the forecast setting; the
# cohort label, so the label does not drift with the age at the crawl, exp 4g)
stage_prepub() {
  local d=$OUT/data s data maxlen v
  local -a lang extra
  for s in synth vn tt20; do
    if [ "$s" = synth ]; then maxlen=32 lang=(); else maxlen=48 lang=(--language any); fi
    for v in prepub prepubprior; do
      # engagement: the five counts and six rates, what is only measured once a video is out
      if [ "$v" = prepub ]; then extra=(--drop-features engagement,creator_avg_views); else extra=(--drop-features engagement --creator-avg prior); fi
      data=$d/${s}_$v.milesdat
      [ -f "$data" ] || timed "data.${s}_$v.prepare" "$B/miles-data" prepare "$d/$s.csv" --out "$data" "${V[@]}" \
        --max-len "$maxlen" "${lang[@]}" --split-by time --threshold-scope cohort --cohort-days 7 "${extra[@]}" \
        --report "$d/${s}_$v.prepare.json"
      seeded_tiny "${s}_$v" "$data" "$maxlen"
    done
    # the creator's history against none, on the same test rows (seed 42)
    timed "${s}_prepubprior_tiny.vs_prepub" "$B/miles-eval" \
      --checkpoint "$OUT/${s}_prepubprior_tiny/run/best.safetensors" --data "$d/${s}_prepubprior.milesdat" \
      --threads "$THREADS" --no-plots --compare "$OUT/${s}_prepub_tiny/run/best.safetensors" \
      --compare-data "$d/${s}_prepub.milesdat" --out "$OUT/${s}_prepubprior_tiny/report/vs_prepub"
  done
  python3 - "$OUT" ${SEEDS:-1 2 3 4 5 6 7 8 9} > "$OUT/prepub.md" <<'PY'
import json, statistics as st, sys
out, seeds = sys.argv[1], [42] + [int(s) for s in sys.argv[2:]]
def runs(s, v):
    return [json.load(open(f"{out}/{s}_{v}_tiny{'' if k == 42 else '_seed' + str(k)}/report/paired/eval_test.json"))
            for k in seeds]
print("| set | features (time split, cohort label) | test n (viral rate) | creator_avg_views: rows without history (of kept) | "
      "Miles test AUROC: mean ± sd [min, max] | 95% CI half-width (seed 42) | numeric LR / TF-IDF LR AUROC | "
      "Miles − numeric LR: range (DeLong p range) | with history − without (seed 42, DeLong p) |")
print("|---|---|---|---|---|---|---|---|---|")
for s in ("synth", "vn", "tt20"):
    vs = json.load(open(f"{out}/{s}_prepubprior_tiny/report/vs_prepub/eval_test.json"))["comparisons"]
    pair = next(iter(vs.values()))
    for v, what in (("prepub", "title, timing, duration, emoji"), ("prepubprior", "the same + creator's earlier views")):
        rs = runs(s, v)
        rep = json.load(open(f"{out}/data/{s}_{v}.prepare.json"))
        hist = rep.get("creator_avg_views", {}).get("rows_without_history")
        hist = "-" if hist is None else f"{hist} of {rep['rows']['kept']}"
        au = [r["auroc"] for r in rs]
        ci = rs[0]["bootstrap"]["auroc"]
        cn, ct = rs[0]["comparisons"]["numeric"], rs[0]["comparisons"]["text"]
        dif = [r["comparisons"]["numeric"]["diff"] for r in rs]
        p = [r["comparisons"]["numeric"]["p_value"] for r in rs]
        last = f"{pair['diff']:+.4f} (p {pair['p_value']:.2g})" if v == "prepubprior" else ""
        print(f"| {s} | {what} | {rs[0]['n']} ({rs[0]['prevalence']:.3f}) | "
              f"{hist} | {st.mean(au):.4f} ± {st.stdev(au):.4f} "
              f"[{min(au):.4f}, {max(au):.4f}] | ±{(ci[1] - ci[0]) / 2:.4f} | {cn['auroc_baseline']:.4f} / "
              f"{ct['auroc_baseline']:.4f} | {min(dif):+.3f} … {max(dif):+.3f} ({min(p):.2g} … {max(p):.2g}) | {last} |")
PY
  cat "$OUT/prepub.md"
}

# exp 4h with the pretrained encoder on TikTok 2020 (the English set small enough for MiniLM on 2 cores):
# does a pretrained reader of titles do better than the tiny one before publishing? (seed 42, both variants,
# paired with the file's baselines; runs prepub first if its files are missing)
stage_prepub_minilm() {
  local v data
  for v in prepub prepubprior; do
    data=$OUT/data/tt20_$v.milesdat
    [ -f "$data" ] || stage_prepub
    train_eval "tt20_${v}_minilm" "$data" 48 "${MINILM[@]}"
    timed "tt20_${v}_minilm.paired" "$B/miles-eval" --checkpoint "$OUT/tt20_${v}_minilm/run/best.safetensors" \
      --data "$data" --threads "$THREADS" --no-plots --compare "$OUT/tt20_$v/report" \
      --out "$OUT/tt20_${v}_minilm/report/paired"
  done
}

# is the MiniLM recipe's lr too small for the freshly initialized layers? same run at 4x the lr
stage_minilm_lr() {
  train_eval synth_minilm_lr2e-4 "$OUT/data/synth.milesdat" 32 "${MINILM[@]}" --lr 2e-4
  train_eval synth_nocounts_minilm_lr2e-4 "$OUT/data/synth_nocounts.milesdat" 32 "${MINILM[@]}" --lr 2e-4
}

# MiniLM on the YouTube 2017 set (the other real sets only with the tiny encoder: time)
stage_real_minilm() {
  train_eval yt_minilm "$OUT/data/yt.milesdat" 48 "${MINILM[@]}"
}

# exp 4c: a model of one source on the others' rows, prepared under its own scaler, label
# threshold (views/day of its training split) and tokenizer; every row of the other set is a test row
stage_cross() {
  local s t
  for s in yt vn tt20; do
    train_eval "${s}_tiny" "$OUT/data/$s.milesdat" 48 "${TINY[@]}"
  done
  for s in yt vn tt20; do
    for t in yt vn tt20; do
      [ "$s" = "$t" ] && continue
      mkdir -p "$OUT/cross_${s}_on_$t"
      timed "cross_${s}_on_$t.prepare" "$B/miles-data" prepare "$OUT/data/$t.csv" --language any \
        --checkpoint "$OUT/${s}_tiny/run/best.safetensors" --out "$OUT/data/cross_${s}_on_$t.milesdat"
      timed "cross_${s}_on_$t.eval" "$B/miles-eval" --checkpoint "$OUT/${s}_tiny/run/best.safetensors" \
        --data "$OUT/data/cross_${s}_on_$t.milesdat" --threads "$THREADS" --out "$OUT/cross_${s}_on_$t/report"
      # the numeric LR and the ridge fitted on the same source, evaluated on the same rows
      timed "cross_${s}_on_$t.baselines" "$B/miles-baseline" --data "$OUT/data/$s.milesdat" --kind all \
        --eval-data "$OUT/data/cross_${s}_on_$t.milesdat" --out "$OUT/cross_${s}_on_$t/report"
    done
  done
}

stage_summary() {
  mkdir -p docs/results
  python3 - "$OUT" docs/results <<'PY'
import json, os, sys
out, dst = sys.argv[1], sys.argv[2]
rows = []
for name in sorted(os.listdir(out)):
    rep = os.path.join(out, name, "report")
    if not os.path.isdir(rep):
        continue
    for model, f in (("Miles", "eval_test.json"), ("TF-IDF + LR", "baseline_text_test.json"),
                     ("numeric LR", "baseline_numeric_test.json")):
        p = os.path.join(rep, f)
        if not os.path.exists(p):
            continue
        j = json.load(open(p))
        os.makedirs(os.path.join(dst, name), exist_ok=True)
        jj = dict(j); jj.pop("plots", None)
        json.dump(jj, open(os.path.join(dst, name, f), "w"), indent=1)
        if model == "Miles":
            tr = os.path.join(out, name, "run", "train_result.json")
            if os.path.exists(tr):
                json.dump(json.load(open(tr)), open(os.path.join(dst, name, "train_result.json"), "w"), indent=1)
            pv = os.path.join(rep, "eval_val.json")
            if os.path.exists(pv):
                jv = dict(json.load(open(pv))); jv.pop("plots", None)
                json.dump(jv, open(os.path.join(dst, name, "eval_val.json"), "w"), indent=1)
        ci = (j.get("bootstrap") or {}).get("auroc")
        st = j.get("at_stored_threshold") or {}
        h = j.get("at_0.5") or {}
        vel = j.get("velocity") or {}
        vo = j.get("velocity_original_units") or {}
        f3 = lambda x: "n/a" if x is None else "%.3f" % x
        rows.append("| %s | %s | %d | %s [%s, %s] | %s | %s | %s | %s | %s | %s | %s |" % (
            name, model, j["n"], f3(j.get("auroc")), f3(ci[0] if ci else None), f3(ci[1] if ci else None),
            f3(j.get("average_precision")), f3(st.get("f1")), f3(h.get("f1")), f3(j.get("precision_at_recall")),
            f3(j.get("ece")), f3(vel.get("mae")) if vel else "–",
            ("%.0f" % vo["mae"]) if vo.get("mae") is not None else "–"))
hdr = ["| experiment | model | n test | AUROC [95% CI] | PR-AUC | F1 @ stored thr | F1 @ 0.5 | P @ 10% R | ECE | vel. MAE (scaled) | vel. MAE (views/day) |",
       "|---|---|---|---|---|---|---|---|---|---|---|"]
txt = "\n".join(hdr + rows) + "\n"
open(os.path.join(dst, "summary.md"), "w").write(txt)
print(txt)
PY
}

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build data baselines synth leak paired recipe ablation real paired_real calibrate seeds time prepub prepub_minilm real_minilm minilm_lr cross summary)
for st in "${stages[@]}"; do
  case $st in
    build|data|baselines|synth|leak|paired|recipe|ablation|real|paired_real|calibrate|seeds|time|prepub|prepub_minilm|real_minilm|minilm_lr|cross|summary) "stage_$st" ;;
    *) echo "unknown stage $st (build data baselines synth leak paired recipe ablation real paired_real calibrate seeds time prepub prepub_minilm real_minilm minilm_lr cross summary)" >&2; exit 2 ;;
  esac
done
