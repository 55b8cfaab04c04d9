#!/usr/bin/env bash
# test_browser.sh — the web page in headless Chromium, as part of `make check`.
#
# Builds what tests/browser_test.py needs from the command-line tools alone
# (synthetic CSV -> tiny model, a few steps), sets up a pinned Selenium in a
# virtual environment under $BUILD (created once), and runs the Selenium checks
# against miles-serve on a loopback port.  Chromium and chromedriver come from
# Debian (`make deps`).  Screenshots go to the work directory (docs/img is
# refreshed by hand with --out docs/img).  Exits non-zero on any failure,
# including a missing browser: a check that cannot run is a failure, not a skip.
set -euo pipefail
BUILD=${BUILD:-build}
BIN=${MILES_BIN:-$BUILD/bin}
VENV=$BUILD/pyenv-browser
SELENIUM=selenium==4.38.0
PY=${PYTHON:-python3}

for f in /usr/bin/chromium /usr/bin/chromedriver; do
    [ -x "$f" ] || { echo "FAIL: $f missing (make deps installs chromium chromium-driver)"; exit 1; }
done
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import selenium' 2>/dev/null; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "$SELENIUM"
fi

W=$(mktemp -d /tmp/miles_browser_XXXXXX)
trap 'rm -rf "$W"' EXIT
vocab=models/all-MiniLM-L6-v2
[ -f "$vocab/vocab.txt" ] || vocab=tests/fixtures/tokenizer_vocab.txt
"$BIN/miles-data" synth --rows 1200 --seed 7 --out "$W/synth.csv" >/dev/null
"$BIN/miles-train" --csv "$W/synth.csv" --vocab "$vocab" --language any --init random --size tiny \
    --max-len 32 --batch-size 32 --lr 1e-3 --warmup 2 --max-steps 12 --eval-every 6 \
    --out "$W/run" --quiet
# a recalibrated copy (the page draws the threshold on the recalibrated scale)
"$BIN/miles-eval" -c "$W/run/best.safetensors" --data "$W/run/prepared.milesdat" --calibrate --bootstrap 0 \
    --no-plots -q --save-calibrated "$W/run/calibrated.safetensors" --out "$W/cal" >/dev/null
# a model for before publishing: no counts or rates (the page disables the fields it cannot use)
"$BIN/miles-train" --csv "$W/synth.csv" --vocab "$vocab" --language any --init random --size tiny \
    --max-len 32 --batch-size 32 --lr 1e-3 --warmup 2 --max-steps 2 --eval-every 2 --drop-features engagement --creator-avg prior \
    --out "$W/prepub" --quiet
"$VENV/bin/python" tests/browser_test.py --checkpoint "$W/run/best.safetensors" --csv "$W/synth.csv" \
    --bin "$BIN" --out "$W/img" --calibrated "$W/run/calibrated.safetensors" --prepub "$W/prepub/best.safetensors"
