#!/usr/bin/env bash
# test_cli.sh — the command-line paths no other test runs:
#   miles-tokenize: ids against HF BertTokenizerFast's (tests/fixtures/
#     tokenizer_cases.txt, tokenizer_encode.txt) from stdin and as arguments,
#     --tokens, --json; invalid UTF-8 and a missing vocabulary refused with a
#     message and a non-zero exit;
#   miles-export: HF directory and ONNX file from the tiny fixture checkpoint,
#     no overwrite without --force, no temp files, a missing / truncated
#     checkpoint and a bad --format refused naming them, --selftest-dump;
#   miles-data convert (a yt-dlp fixture; bad input refused naming file and
#     line, no output; youtube2017 --country), prepare --checkpoint (all rows
#     in the test split, miles-eval scores them, miles-baseline --eval-data),
#     prepare's refusals (empty, header only, --percentile
#     100, --train-frac 0.999; no output) and inspect; miles-baseline --kind all's three reports,
#     its options as recorded in the fitted models, its refusals;
#   miles-train --config (the same checkpoint as the same flags, a flag
#     overrides the file, unknown keys and broken JSON refused), its
#     options as recorded in the checkpoint (train_config, recipe, velocity
#     target, data choices: --csv prepares miles-data prepare's very file)
#     and 14 refusals naming the option; --model (the pretrained encoder
#     loaded, the vocabulary from its directory, the head lr);
#   miles-train's progress on stderr (lines, evaluations, early stopping,
#     resume, the terminal's redrawn bar);
#   miles-eval on the validation split reproducing the training's own
#     evaluation of best.safetensors; --split train (and its progress line);
#     a bad --split; --compare DIR|CHECKPOINT (the baselines or another
#     checkpoint paired on the same rows, their numbers equal to their own
#     reports', its refusals); --predictions (the
#     report's numbers recomputed from its rows); --calibrate (Platt's a and
#     b found again in Python on the val rows, the before/after numbers
#     recomputed, --split val refused; --save-calibrated: miles-predict's
#     answers from the copy, the stored map in eval and both exports);
#   miles-predict: CSV output quoting, a bad record named by file:line (and
#     --skip-bad; the first bad record in file order is the one named,
#     CSV and JSON lines), --topic on JSON lines as on CSV, its option refusals;
#   MILES_GEMM_ISA / MILES_GEMM: every kernel the CPU has trains the same
#     checkpoint, a value that cannot be honoured is named on stderr;
#   every tool's --help lists every long option the tool parses.
# Run by `make test` from the repository root (MILES_BIN: the tools).
set -u
BIN=${MILES_BIN:-build/bin}
W=$(mktemp -d /tmp/miles_cli.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; [ -s "$W/err" ] && echo "     stderr: $(head -c 300 "$W/err")"; }
# expect NAME RC PATTERN: the last command's exit status ($rc) and stderr
expect_fail() {
    if [ "$rc" -ne 0 ] && grep -q -- "$2" "$W/err"; then ok "$1"; else bad "$1 (rc $rc)"; fi
}
VOCAB=tests/fixtures/tokenizer_vocab.txt
CK=tests/fixtures/export_tiny.safetensors

# ---- miles-tokenize: WordPiece ids of the uncased cases, one text per stdin line
python3 - "$W" <<'PY'
import sys
w = sys.argv[1]


def utf8(h):
    """A fixture text (hex bytes), or None where it is not valid UTF-8: the CLI refuses those (checked below)."""
    try:
        return bytes.fromhex(h).decode("utf-8")
    except UnicodeDecodeError:
        return None


def one_line(s, tsv=False):
    """A text that fits one stdin line (and, tsv, one TSV field)."""
    return s is not None and not any(c in s for c in "\n\r\0" + ("\t" if tsv else ""))


texts, want = [], []
for line in open("tests/fixtures/tokenizer_cases.txt", encoding="utf-8"):
    f = line.rstrip("\n").split("\t")
    if f[0] != "T" or f[1] != "u":
        continue
    t = utf8(f[3])
    if not one_line(t):
        continue
    texts.append(t)
    want.append(f[4] if len(f) > 4 else "")
open(f"{w}/texts.txt", "w", encoding="utf-8").write("".join(t + "\n" for t in texts))
open(f"{w}/want.txt", "w").write("".join(x.strip() + "\n" for x in want))
# encode cases without padding: [CLS] a [SEP] (b [SEP]) truncated to max_len
enc = []
for line in open("tests/fixtures/tokenizer_encode.txt", encoding="utf-8"):
    f = line.rstrip("\n").split("\t")
    if f[0] != "E" or f[2] != "0":
        continue
    a, b = utf8(f[3]), None if f[4] == "-" else utf8(f[4])
    if not one_line(a, True) or (f[4] != "-" and not one_line(b, True)):
        continue
    n = sum(int(x) for x in f[7].split())  # the fixture pads every row to L: the mask's ones are the tokens
    enc.append((f[1], a, b, " ".join(f[5].split()[:n])))
with open(f"{w}/enc.tsv", "w", encoding="utf-8") as o:
    for L, a, b, ids in enc[:40]:
        o.write(f"{L}\t{1 if b is not None else 0}\t{ids}\t{a}\t{b if b is not None else '-'}\n")
PY
"$BIN/miles-tokenize" --vocab "$VOCAB" < "$W/texts.txt" > "$W/got.txt" 2> "$W/err"
rc=$?
n=$(wc -l < "$W/want.txt")
if [ "$rc" -eq 0 ] && [ "$n" -ge 500 ] && cmp -s "$W/got.txt" "$W/want.txt"; then
    ok "tokenize: $n texts from stdin, ids equal HF's"
else
    bad "tokenize: stdin ids vs HF ($n texts, rc $rc, $(diff "$W/got.txt" "$W/want.txt" | grep -c '^<') lines differ)"
fi
encn=0
encbad=0
while IFS=$'\t' read -r L haspair ids a b; do
    if [ "$haspair" = 1 ]; then got=$("$BIN/miles-tokenize" --vocab "$VOCAB" --max-len "$L" --pair "$b" -- "$a" 2> "$W/err")
    else got=$("$BIN/miles-tokenize" --vocab "$VOCAB" --max-len "$L" -- "$a" 2> "$W/err"); fi
    encn=$((encn + 1))
    [ "$got" = "$ids" ] || { encbad=$((encbad + 1)); [ -n "${CLI_DEBUG:-}" ] && echo "L=$L pair=$haspair got [$got] want [$ids] a=[$a] b=[$b]"; }
done < "$W/enc.tsv"
if [ "$encn" -ge 10 ] && [ "$encbad" -eq 0 ]; then ok "tokenize: --max-len (--pair) on $encn texts as arguments, ids equal HF's"
else bad "tokenize: --max-len: $encbad of $encn differ"; fi
# a text of more word pieces than the first id buffer (256): tokenized again into a larger one
python3 -c 'print(" ".join(["hello"] * 300 + ["unaffable"]))' | "$BIN/miles-tokenize" --vocab "$VOCAB" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && [ "$(tr ' ' '\n' < "$W/out" | grep -c '^7592$')" -eq 300 ] && [ "$(wc -w < "$W/out")" -eq 303 ]; then
    ok "tokenize: 303 word pieces (past the first buffer of 256)"
else bad "tokenize: a long text (rc $rc, $(wc -w < "$W/out") ids)"; fi
"$BIN/miles-tokenize" --vocab "$VOCAB" --tokens "Hello, World!" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && [ "$(cat "$W/out")" = "hello , world !" ]; then ok "tokenize: --tokens"; else bad "tokenize: --tokens: $(cat "$W/out")"; fi
"$BIN/miles-tokenize" --vocab "$VOCAB" --json --max-len 8 "hello world" > "$W/out" 2> "$W/err"
if python3 -c "import json,sys; d=json.load(open('$W/out')); sys.exit(0 if d['tokens']==['[CLS]','hello','world','[SEP]'] and len(d['ids'])==4 and d['attention_mask']==[1]*4 else 1)"; then
    ok "tokenize: --json"
else bad "tokenize: --json: $(cat "$W/out")"; fi
printf 'fine line\n\xff\xfe not utf-8\n' | "$BIN/miles-tokenize" --vocab "$VOCAB" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "tokenize: invalid UTF-8 on stdin refused, naming the line" "stdin line 2: not valid UTF-8"
if [ "$rc" -eq 1 ]; then ok "tokenize: invalid UTF-8: exit status 1"; else bad "tokenize: invalid UTF-8: exit $rc"; fi
# U+0000 inside a line is text; the bytes after it are checked too (an invalid byte right behind it)
printf 'a\0b\n' | "$BIN/miles-tokenize" --vocab "$VOCAB" > "$W/out" 2> "$W/err"
rc1=$?
printf 'a\0\xff\n' | "$BIN/miles-tokenize" --vocab "$VOCAB" > /dev/null 2> "$W/err2"
rc2=$?
if [ "$rc1" -eq 0 ] && [ "$(wc -l < "$W/out")" -eq 1 ] && [ "$rc2" -eq 1 ] && grep -q "stdin line 1: not valid UTF-8" "$W/err2"; then
    ok "tokenize: U+0000 in a line is text; an invalid byte right behind it is refused"
else bad "tokenize: U+0000 segments (rc $rc1 / $rc2): $(cat "$W/err" "$W/err2" | head -c 200)"; fi
"$BIN/miles-tokenize" --vocab "$VOCAB" "ok" $'\xc3\x28' > "$W/out" 2> "$W/err"
rc=$?
expect_fail "tokenize: invalid UTF-8 argument refused, naming it" "argument 2: not valid UTF-8"
if [ "$rc" -eq 1 ]; then ok "tokenize: invalid UTF-8 argument: exit status 1"; else bad "tokenize: invalid argument: exit $rc"; fi
"$BIN/miles-tokenize" --vocab "$W/no_such_vocab" "x" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "tokenize: missing vocabulary refused, naming it" "no_such_vocab"

# ---- miles-export
"$BIN/miles-export" --checkpoint "$CK" --format hf > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q '^usage: miles-export' "$W/err"; then ok "export: no --out: usage, exit 2"; else bad "export: no --out (rc $rc)"; fi
"$BIN/miles-data" synth --rows 1 --seed 3 --out "$W/one.csv" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && [ "$(wc -l < "$W/one.csv")" -eq 2 ]; then ok "data: synth --rows 1 writes the header and one row"
else bad "data: synth --rows 1 (rc $rc)"; fi
for a in "--rows 5 --seed 3" "--rows 5 --seed 3 --out $W/x.csv stray"; do
    "$BIN/miles-data" synth $a > /dev/null 2> "$W/err"
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q 'synth: need --rows N' "$W/err"; then ok "data: synth $a: usage, exit 2"
    else bad "data: synth $a (rc $rc)"; fi
done
"$BIN/miles-export" --checkpoint "$CK" --format hf --out "$W/hf" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && [ -s "$W/hf/model.safetensors" ] && [ -s "$W/hf/vocab.txt" ] && [ -s "$W/hf/miles_head.py" ] &&
   python3 -c "import json,sys; c=json.load(open('$W/hf/config.json')); sys.exit(0 if c.get('model_type')=='bert' and c.get('hidden_size',0)>0 else 1)"; then
    ok "export: HF directory (config.json model_type bert, weights, vocab, head)"
else bad "export: HF directory (rc $rc)"; fi
# the HF weights: a safetensors header naming the encoder's tensors
if python3 - "$W/hf/model.safetensors" <<'PY'; then ok "export: HF model.safetensors holds the encoder's tensors"; else bad "export: HF model.safetensors"; fi
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
names = [k for k in h if k != "__metadata__"]
ends = max(v["data_offsets"][1] for k, v in h.items() if k != "__metadata__")
sys.exit(0 if any("embeddings.word_embeddings.weight" in k for k in names) and 8 + n + ends == len(b) else 1)
PY
"$BIN/miles-export" --checkpoint "$CK" --format hf --out "$W/hf" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "export: an existing output is not replaced without --force" "force"
"$BIN/miles-export" --checkpoint "$CK" --format hf --out "$W/hf" --force > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && [ -s "$W/hf/config.json" ]; then ok "export: --force replaces it"; else bad "export: --force (rc $rc)"; fi
"$BIN/miles-export" --checkpoint "$CK" --format onnx --out "$W/m.onnx" > "$W/out" 2> "$W/err"
rc=$?
# an ONNX ModelProto: field 1 (ir_version, varint) first, the opset and graph inside
if [ "$rc" -eq 0 ] && [ "$(head -c 1 "$W/m.onnx" | od -An -tx1 | tr -d ' ')" = "08" ] &&
   grep -q "viral_prob" "$W/m.onnx" && grep -q "input_ids" "$W/m.onnx"; then
    ok "export: ONNX file ($(wc -c < "$W/m.onnx") bytes; inputs and outputs named)"
else bad "export: ONNX file (rc $rc)"; fi
ls "$W"/*.tmp* "$W"/.*tmp* > /dev/null 2>&1 && bad "export: a temporary file was left behind" || ok "export: no temporary file left"
head -c 100 "$CK" > "$W/trunc.safetensors"
"$BIN/miles-export" --checkpoint "$W/trunc.safetensors" --format onnx --out "$W/t.onnx" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "export: truncated checkpoint refused, naming it" "trunc.safetensors"
[ -e "$W/t.onnx" ] && bad "export: output written for a bad checkpoint" || ok "export: no output for a bad checkpoint"
"$BIN/miles-export" --checkpoint "$W/none.safetensors" --format onnx --out "$W/t.onnx" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "export: missing checkpoint refused, naming it" "none.safetensors"
"$BIN/miles-export" --checkpoint "$CK" --format xml --out "$W/x" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "export: unknown --format refused" "hf or onnx"
# --selftest-dump: Miles' forward pass on given inputs (the round trip's reference side)
python3 - "$W/in.safetensors" <<'PY'
import json, struct, sys
B, T, F = 2, 6, 18
ids = [101, 7592, 2088, 102, 0, 0, 101, 2129, 2000, 1037, 3231, 102]
mask = [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]
feat = [0.1 * ((i * 7) % 11) - 0.5 for i in range(B * F)]
blobs = [struct.pack(f"<{B*T}i", *[min(x, 99) for x in ids]), struct.pack(f"<{B*T}i", *mask),
         struct.pack(f"<{B*F}f", *feat)]
names, dts, shapes = ["input_ids", "attention_mask", "features"], ["I32", "I32", "F32"], [[B, T], [B, T], [B, F]]
h, off = {}, 0
for n, d, s, b in zip(names, dts, shapes, blobs):
    h[n] = {"dtype": d, "shape": s, "data_offsets": [off, off + len(b)]}
    off += len(b)
j = json.dumps(h).encode()
j += b" " * (-len(j) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(j)) + j + b"".join(blobs))
PY
"$BIN/miles-export" --checkpoint "$CK" --selftest-dump --inputs "$W/in.safetensors" --out "$W/dump.safetensors" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && python3 - "$W/dump.safetensors" <<'PY'; then ok "export: --selftest-dump writes finite logits, probabilities in [0,1], velocity"; else bad "export: --selftest-dump (rc $rc)"; fi
import json, math, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
def get(k):
    s, e = h[k]["data_offsets"]
    return struct.unpack(f"<{(e - s) // 4}f", b[8 + n + s:8 + n + e])
lg, p, v = get("logits"), get("viral_prob"), get("velocity")
ok = len(lg) == 4 and len(p) == 2 and len(v) == 2 and all(math.isfinite(x) for x in lg + v)
# viral_prob is the softmax of the logits
ok = ok and all(abs(p[i] - 1 / (1 + math.exp(lg[2 * i] - lg[2 * i + 1]))) < 1e-6 for i in range(2))
sys.exit(0 if ok else 1)
PY

# ---- miles-data convert / inspect
"$BIN/miles-data" convert --from ytdlp tests/fixtures/ytdlp_lines.json --out "$W/y.csv" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && [ "$(head -1 "$W/y.csv" | tr ',' '\n' | wc -l)" -eq 58 ] && [ "$(wc -l < "$W/y.csv")" -eq 4 ] &&
   grep -q "dropped: 2" "$W/out"; then
    ok "data: convert --from ytdlp: 58-column CSV, 3 rows, the 2 dropped counted"
else bad "data: convert --from ytdlp (rc $rc)"; fi
"$BIN/miles-data" convert --from ytdlp tests/fixtures/ytdlp_bad.json --out "$W/yb.csv" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "data: convert refuses malformed JSON, naming file and line" "ytdlp_bad.json:1:"
[ -e "$W/yb.csv" ] && bad "data: output written for bad input" || ok "data: no output for bad input"
cp tests/fixtures/ytdlp_lines.json "$W/yl.json"
"$BIN/miles-data" convert --from ytdlp "$W/yl.json" --out "$W/./yl.json" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "is the input $W/yl.json: writing it would destroy it" "$W/err" &&
    cmp -s "$W/yl.json" tests/fixtures/ytdlp_lines.json; then ok "data: convert --out the input refused, the input unchanged"
else bad "data: convert --out the input (rc $rc): $(head -c 200 "$W/err")"; fi
"$BIN/miles-data" convert --from bogus tests/fixtures/ytdlp_lines.json --out "$W/yb.csv" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "data: unknown source kind refused" "unknown source kind"
# --country: the trending file's country given on the command line (the file name says US)
YT=${MILES_SHARED:-../shared}/data/youtube_trending_2017_v1/USvideos.csv
if [ -f "$YT" ]; then
    "$BIN/miles-data" convert --from youtube2017 --country DE "$YT" --out "$W/yt.csv" > "$W/out" 2> "$W/err"
    rc=$?
    if [ "$rc" -eq 0 ] && grep -q "country: DE (given), region Europe, language de" "$W/out" && python3 - "$W/yt.csv" <<'PY'; then
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
sys.exit(0 if len(rows) > 1000 and {r["country"] for r in rows} == {"De"} and {r["language"] for r in rows} == {"de"} else 1)
PY
        ok "data: convert --from youtube2017 --country DE overrides the file name's US (every row's country and language)"
    else bad "data: convert --country DE (rc $rc)"; fi
    "$BIN/miles-data" convert --from youtube2017 --country ZZ "$YT" --out "$W/yb.csv" > "$W/out" 2> "$W/err"
    rc=$?
    expect_fail "data: convert --country ZZ refused, listing the countries" 'country "ZZ" (given) is not one of the trending data set.s: US CA GB DE'
else
    echo "skip data: convert --country ($YT absent)"
fi
"$BIN/miles-data" convert --from ytdlp --country DE tests/fixtures/ytdlp_lines.json --out "$W/yb.csv" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "data: --country with another source refused" "country applies to --from youtube2017 only"
[ -e "$W/yb.csv" ] && bad "data: output written for a refused convert" || ok "data: no output for the refused converts"

# ---- miles-baseline --kind all (the text and ridge baselines are not run by another CLI test)
bl_check() {
    "$BIN/miles-data" synth --rows 300 --seed 11 --out "$W/b.csv" > /dev/null 2> "$W/err" &&
        "$BIN/miles-data" prepare "$W/b.csv" --vocab tests/fixtures/export_vocab --out "$W/b.milesdat" > /dev/null 2> "$W/err" &&
        "$BIN/miles-baseline" --data "$W/b.milesdat" --kind all --bootstrap 0 --no-plots --out "$W/bl" > "$W/out" 2> "$W/err" &&
        python3 - "$W/bl" <<'PY'
import json, math, sys
d = sys.argv[1]
for kind in ("text", "numeric"):
    r = json.load(open(f"{d}/baseline_{kind}_test.json"))
    c = r["at_0.5"]["confusion"]
    assert 0 <= r["auroc"] <= 1 and c["tn"] + c["fp"] + c["fn"] + c["tp"] == r["n"], kind
    assert c["fn"] + c["tp"] == r["n_positive"] and abs(r["prevalence"] - r["n_positive"] / r["n"]) < 1e-12, kind
    json.load(open(f"{d}/baseline_{kind}.json"))  # the fitted model
    assert r["run"]["split_rule"] == {"by": "row", "seed": 42, "train_frac": 0.7, "language": "en", "dedup": False}, kind
v = json.load(open(f"{d}/baseline_ridge_test.json"))
run, rep = v["run"], v["velocity_report"]
assert run["split_rule"]["by"] == "row"
assert len(run["coef"]) == 18 and math.isfinite(run["intercept"]) and run["velocity_target"] == "log1p_z"
for k in ("mae", "rmse", "r2"):
    assert math.isfinite(rep["target_space"][k]) and math.isfinite(rep["views_per_day"][k])
assert rep["target_space"]["rmse"] >= rep["target_space"]["mae"]
PY
}
if bl_check && grep -q "^numeric LR baseline (test split by row, n=" "$W/out" &&
    grep -q "^ridge baseline (test split by row, n=" "$W/out"; then
    ok "baseline: --kind all writes the text, numeric and ridge reports (consistent counts, 18 coefficients, the split rule)"
else bad "baseline: --kind all"; fi

# miles-data prepare refuses input it cannot use, naming why, and writes nothing
: > "$W/empty.csv"
head -1 "$W/b.csv" > "$W/hdr.csv"
for a in "$W/empty.csv|empty file (no header)" "$W/hdr.csv|only 0 usable rows after filtering; need at least 3"; do
    "$BIN/miles-data" prepare "${a%%|*}" --vocab tests/fixtures/export_vocab --out "$W/e.milesdat" > "$W/out" 2> "$W/err"
    rc=$?
    expect_fail "data: prepare $(basename "${a%%|*}") refused" "${a#*|}"
done
"$BIN/miles-data" prepare "$W/b.csv" --vocab tests/fixtures/export_vocab --percentile 100 --out "$W/e.milesdat" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "data: --percentile 100 refused (an open interval, said so)" "strictly between 0 and 100"
"$BIN/miles-data" prepare "$W/b.csv" --vocab tests/fixtures/export_vocab --train-frac 0.999 --out "$W/e.milesdat" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "data: --train-frac 0.999 refused" "train-frac: expected a number in .0.01, 0.99."
[ -e "$W/e.milesdat" ] && bad "data: a refused prepare wrote its output" || ok "data: no output from the refused prepares"

# the TF-IDF, logistic-regression and ridge options reach the fitted models
"$BIN/miles-baseline" --data "$W/b.milesdat" --kind all --bootstrap 0 --no-plots --out "$W/bl2" --split val \
    --max-features 20 --min-df 1 --max-df 0.9 --ngram-max 2 --no-stop-words --no-lowercase --sublinear-tf \
    --C 0.5 --class-weight none --tol 1e-6 --max-iter 500 --alpha 2 --velocity-target minmax > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && python3 - "$W/bl2" <<'PY'; then
import json, sys
d = sys.argv[1]
m = json.load(open(f"{d}/baseline_text.json"))
t, l = m["tfidf"], m["logreg"]
ok = (t["max_features"] == 20 and t["min_df"] == 1 and not t["min_df_is_fraction"] and t["max_df"] == 0.9
      and t["max_df_is_fraction"] and t["ngram_max"] == 2 and not t["stop_words_english"] and not t["lowercase"]
      and t["sublinear_tf"] and len(t["vocabulary"]) <= 20 and any(" " in w for w in t["vocabulary"])
      and l["C"] == 0.5 and not l["class_weight_balanced"] and l["class_weight"] == [1, 1] and l["tol"] == 1e-6
      and l["max_iter"] == 500)
r = json.load(open(f"{d}/baseline_ridge_val.json"))["run"]
ok = ok and r["alpha"] == 2 and r["velocity_target"] == "minmax"
ok = ok and json.load(open(f"{d}/baseline_numeric_val.json"))["n"] == json.load(open(f"{d}/baseline_text_val.json"))["n"]
sys.exit(0 if ok else 1)
PY
    ok "baseline: 13 TF-IDF / logistic / ridge options reach the fitted models; --split val writes the _val reports"
else bad "baseline: options (rc $rc)"; fi
# --bootstrap 0: the reports print no intervals (no "[nan, nan]"); with resamples they do
if ! grep -qi nan "$W/out" && grep -q "^  velocity report (target minmax, n = [0-9]*)$" "$W/out" &&
   "$BIN/miles-baseline" --data "$W/b.milesdat" --kind ridge --bootstrap 50 --no-plots --out "$W/bl2" > "$W/out" 2> "$W/err" &&
   grep -q "bootstrap interval, 50 resamples" "$W/out" && grep -Eq "Spearman rho [-0-9.]+ \[[-0-9.]+, [-0-9.]+\]$" "$W/out"; then
    ok "baseline: the velocity report's intervals only where the bootstrap ran"
else bad "baseline: velocity report intervals"; fi
for a in "--split train|split must be test or val" "--kind forest|kind must be text, numeric, ridge, both or all" \
         "--class-weight auto|class-weight must be balanced or none" "--velocity-target log|velocity-target must be log1p_z or minmax" \
         "--ngram-max 9|ngram-max"; do
    "$BIN/miles-baseline" --data "$W/b.milesdat" --bootstrap 0 --no-plots --out "$W/bl3" ${a%%|*} > "$W/out" 2> "$W/err"
    rc=$?
    expect_fail "baseline: ${a%%|*} refused" "${a#*|}"
done

# ---- miles-train's option file (--config) and argument checks
# tc_check: a Python expression over a checkpoint's train_config (c), metadata (m)
# and model config (cfg)
tc_check() { # CHECKPOINT EXPRESSION
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
m = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]
c, cfg = json.loads(m["train_config"]), json.loads(m["config"])
close = lambda a, b: abs(a - b) <= 1e-6 * max(1.0, abs(b))
ok = eval(" ".join(line.strip() for line in sys.argv[2].splitlines()))
if not ok:
    print("train_config:", m["train_config"], "\nrecipe:", m.get("recipe"), "text_clean:", m.get("text_clean"),
          "velocity_target:", m.get("velocity_target"), "preset:", cfg.get("preset"), file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
"$BIN/miles-data" synth --rows 300 --seed 11 --out "$W/d.csv" > /dev/null 2> "$W/err" &&
    "$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --out "$W/d.milesdat" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ]; then ok "train: data for the option checks"; else bad "train: miles-data synth / prepare (rc $rc)"; fi
"$BIN/miles-data" inspect "$W/d.milesdat" > "$W/out" 2> "$W/err"
if [ $? -eq 0 ] && grep -q "^  train n=" "$W/out" && grep -q "^  test  n=" "$W/out"; then ok "data: inspect lists the splits"
else bad "data: inspect"; fi
# features: the 18 features of one record in model order, raw and standardized (missing -> 0, the mean)
"$BIN/miles-data" features --data "$W/d.milesdat" title=hi views=10 likes=1 > "$W/out" 2> "$W/err"
rc=$?
"$BIN/miles-data" features --data "$W/d.milesdat" title=hi views=1000 likes=1 > "$W/out2" 2>> "$W/err"
if [ "$rc" -eq 0 ] && python3 - "$W/out" "$W/out2" <<'PY'; then
import sys
rows = [l.split() for l in open(sys.argv[1])][1:]
rows2 = [l.split() for l in open(sys.argv[2])][1:]
names = ["views", "likes", "comments", "shares", "saves", "engagement_rate", "completion_rate", "like_rate",
         "comment_ratio", "share_rate", "save_rate", "upload_hour", "is_weekend", "duration_sec", "title_length",
         "has_emoji", "creator_avg_views", "publish_dayofweek"]
ok = [r[0] for r in rows] == names and rows[0][1] == "10" and rows[1][1] == "1" and rows2[0][1] == "1000"
ok = ok and rows[2][1] == "missing" and float(rows[2][2]) == 0 and float(rows2[0][2]) > float(rows[0][2])
sys.exit(0 if ok else 1)
PY
    ok "data: features lists the 18 features in model order, raw and standardized (more views, higher z)"
else bad "data: features (rc $rc): $(head -c 200 "$W/err")"; fi
T="--data $W/d.milesdat --vocab tests/fixtures/export_vocab --threads 1 --quiet"
cat > "$W/cfg.json" <<'JSON'
{"init": "random", "size": "tiny", "max-steps": 3, "batch-size": 8, "warmup": 1, "bucket": true,
 "pooling": "mean", "seed": 5, "lr": 0.001, "head-lr": 0.002}
JSON
"$BIN/miles-train" --config "$W/cfg.json" $T --out "$W/tc" > "$W/out" 2> "$W/err"   # --config first: argv[1]
rc1=$?
"$BIN/miles-train" $T --init random --size tiny --max-steps 3 --batch-size 8 --warmup 1 --bucket --pooling mean \
    --seed 5 --lr 0.001 --head-lr 0.002 --out "$W/tf" > "$W/out" 2> "$W/err"
rc2=$?
if [ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] && cmp -s "$W/tc/last.safetensors" "$W/tf/last.safetensors" &&
   tc_check "$W/tc/last.safetensors" 'cfg.get("pooling") == "mean" and cfg.get("hidden_size") == 64'; then
    ok "train: --config FILE gives the checkpoint of the same options as flags (mean pooling, tiny)"
else bad "train: --config vs flags (rc $rc1 / $rc2)"; fi
"$BIN/miles-train" $T --config "$W/cfg.json" --seed 6 --out "$W/ts" > "$W/out" 2> "$W/err"
if [ $? -eq 0 ] && ! cmp -s "$W/tc/last.safetensors" "$W/ts/last.safetensors"; then ok "train: a flag overrides the file (--seed)"
else bad "train: flag over --config"; fi
echo '{"init": "random", "no-such-option": 1}' > "$W/bad.json"
"$BIN/miles-train" $T --config "$W/bad.json" --out "$W/tb" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "train: unknown key in --config refused, naming it" "no-such-option"
echo '{"init": "random", "epochs": [3]}' > "$W/badtype.json"
"$BIN/miles-train" $T --config "$W/badtype.json" --out "$W/tb" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "train: a --config value of another type refused, naming the key" 'key "epochs" must be a string, number or boolean'
echo '{"init": "random", ' > "$W/broken.json"
"$BIN/miles-train" $T --config "$W/broken.json" --out "$W/tb" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "train: malformed --config refused, naming the file" "broken.json"
"$BIN/miles-train" $T --init random --pooling max --out "$W/tb" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "train: bad --pooling refused" "pooling"
"$BIN/miles-train" --init random --out "$W/tb" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "train: no data refused" "one of --data or --csv"

# ---- miles-data prepare --checkpoint: the same CSV prepared for a trained
# model holds every row in its test split, and miles-eval scores it
"$BIN/miles-data" prepare "$W/d.csv" --checkpoint "$W/tc/last.safetensors" --out "$W/dfor.milesdat" \
    --report "$W/dfor.json" > "$W/out" 2> "$W/err"
rc=$?
"$BIN/miles-eval" --checkpoint "$W/tc/last.safetensors" --data "$W/dfor.milesdat" --bootstrap 0 --no-plots --out "$W/evf" \
    > /dev/null 2>> "$W/err"
rc2=$?
nall=$("$BIN/miles-data" inspect "$W/d.milesdat" | sed -n 's/^  [a-z]* *n=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s }')
if [ "$rc" -eq 0 ] && [ "$rc2" -eq 0 ] && grep -q "(the checkpoint's; every row in the test split)" "$W/out" &&
   python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["n"] == int(sys.argv[2]) else 1)' "$W/evf/eval_test.json" "$nall" &&
   python3 - "$W/dfor.json" "$nall" <<'PY'
import json, sys
r, n = json.load(open(sys.argv[1])), int(sys.argv[2])
assert r["applied_checkpoint"] is True and r["splits"]["test"]["n"] == n == r["rows"]["kept"]
assert r["splits"]["train"]["n"] == 0 and r["splits"]["train"]["viral_rate"] is None
assert r["split_rule"] == {"by": "checkpoint", "language": "en", "dedup": False} and r["label"]["scope"] == "train"
assert all(f["rows"] <= n for f in r["features"]) and r["drift"]["suggest_split_by_time"] is False
PY
then
    ok "data: prepare --checkpoint puts all $nall rows in the test split (its --report says so); miles-eval scores them"
else bad "data: prepare --checkpoint + eval (rc $rc / $rc2, n $nall)"; fi
# the baselines fitted on the model's data, evaluated on those rows (--eval-data)
"$BIN/miles-baseline" --data "$W/d.milesdat" --eval-data "$W/dfor.milesdat" --kind all --bootstrap 0 --no-plots \
    --out "$W/evfb" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && python3 - "$W/evfb" "$nall" "$W/dfor.milesdat" <<'PY'; then
import json, sys
d, n, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ok = True
for k in ("text", "numeric", "ridge"):
    j = json.load(open(f"{d}/baseline_{k}_test.json"))
    ok = ok and j["run"]["eval_data"] == src and (j["n"] if k != "ridge" else j["velocity_report"]["n"]) == n
sys.exit(0 if ok else 1)
PY
    ok "baseline: --eval-data: the three baselines fitted on --data, evaluated on the $nall rows prepared for its model"
else bad "baseline: --eval-data (rc $rc)"; fi
"$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --percentile 70 --out "$W/d70.milesdat" -q \
    > /dev/null 2>&1
"$BIN/miles-baseline" --data "$W/d70.milesdat" --eval-data "$W/dfor.milesdat" --kind numeric --out "$W/evfb" > /dev/null 2> "$W/err"
rc=$?
expect_fail "baseline: --eval-data under another scaler refused" "was prepared with another scaler/label threshold than"
"$BIN/miles-data" prepare "$W/d.csv" --checkpoint "$W/tc/last.safetensors" --percentile 70 --out "$W/dfor2.milesdat" \
    > "$W/out" 2> "$W/err"
rc=$?
expect_fail "data: prepare --checkpoint with a fitting option refused, naming it" "--percentile cannot go with --checkpoint"

# ---- miles-train's options reach what it records: train_config / metadata of
# the checkpoint; --csv prepares the very file miles-data prepare writes
R="--init random --size tiny --max-steps 2 --batch-size 8 --warmup 1"
"$BIN/miles-train" $T $R --schedule linear --class-weights 0.5,0.75 --loss-weights 0.9,0.1 --weight-decay 0.05 --clip 0.5 \
    --patience 7 --min-delta 0.01 --eval-every 2 --grad-accum 2 --layer-decay 0.8 --epochs 4 --lr 3e-4 --head-lr 1e-3 \
    --seed 9 --max-len 24 --out "$W/to1" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && tc_check "$W/to1/last.safetensors" 'c["schedule"] == "linear" and c["class_weight"] == [0.5, 0.75]
    and not c["auto_class_weight"] and close(c["w_cls"], 0.9) and close(c["w_reg"], 0.1)
    and close(c["weight_decay"], 0.05) and close(c["clip"], 0.5) and c["patience"] == 7 and close(c["min_delta"], 0.01)
    and c["eval_every"] == 2 and c["grad_accum"] == 2 and close(c["layer_decay"], 0.8) and c["epochs"] == 4
    and close(c["lr"], 3e-4) and close(c["head_lr"], 1e-3) and c["seed"] == 9 and c["max_len"] == 24
    and c["batch_size"] == 8 and c["warmup_steps"] == 1 and not c["decay_all"]'; then
    ok "train: 18 training options recorded as given (train_config)"
else bad "train: options in train_config (rc $rc)"; fi
"$BIN/miles-train" $T $R --schedule constant --class-weights none --out "$W/to2" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && tc_check "$W/to2/last.safetensors" \
    'c["schedule"] == "constant" and c["class_weight"] == [1, 1] and not c["auto_class_weight"]
     and close(c["w_cls"], 0.5) and m["velocity_target"] == "log1p_z" and m["recipe"] == "default"'; then
    ok "train: --schedule constant, --class-weights none, the default loss weights (0.5,0.5 with log1p_z)"
else bad "train: constant / none (rc $rc)"; fi
"$BIN/miles-train" $T $R --velocity-target minmax --out "$W/to3" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && tc_check "$W/to3/last.safetensors" \
    '"velocity_target" not in m and close(c["w_cls"], 0.95) and close(c["w_reg"], 0.05) and c["auto_class_weight"]
     and cfg["velocity_activation"] == "sigmoid"'; then
    ok "train: --velocity-target minmax: sigmoid head, loss weights 0.95,0.05, auto class weights"
else bad "train: --velocity-target minmax (rc $rc)"; fi
# (a min-max checkpoint carries no velocity_target key: that is how older ones read)
# --csv: the prepared file equals miles-data prepare's with the same choices
DOPTS="--language any --text-clean seed --threshold-scope all --split-by creator --drop-features views,likes"
"$BIN/miles-train" --csv "$W/d.csv" --vocab tests/fixtures/export_vocab --threads 1 --quiet $R $DOPTS --seed 3 \
    --max-len 48 --out "$W/to4" > /dev/null 2> "$W/err" &&
    "$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab $DOPTS --seed 3 --max-len 48 \
        --out "$W/p4.milesdat" -q > /dev/null 2>> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$W/to4/prepared.milesdat" "$W/p4.milesdat" && tc_check "$W/to4/last.safetensors" \
    'm["text_clean"] == "seed" and json.loads(m["data"])["dropped"][:3] == [1, 1, 0]'; then
    ok "train: --csv with 5 data options prepares miles-data prepare's file byte for byte"
else bad "train: --csv data options (rc $rc)"; fi
# --split-by time: the same file as miles-data's, splits in publish-day order (its report's ranges)
"$BIN/miles-train" --csv "$W/d.csv" --vocab tests/fixtures/export_vocab --threads 1 --quiet $R --split-by time \
    --max-len 48 --out "$W/to6" > /dev/null 2> "$W/err" &&
    "$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --split-by time --max-len 48 \
        --out "$W/p6.milesdat" > "$W/out6" 2>> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$W/to6/prepared.milesdat" "$W/p6.milesdat" && grep -q "split by time" "$W/out6" &&
    python3 - "$W/out6" <<'PY'
import re, sys
r = [re.search(r"published (\S+)\.\.(\S+)", l).groups() for l in open(sys.argv[1]) if " published " in l]
sys.exit(not (len(r) == 3 and r[0][1] < r[1][0] <= r[1][1] < r[2][0]))
PY
then ok "train/data: --split-by time: one file from both tools, train's days before val's before test's"
else bad "train/data: --split-by time (rc $rc): $(head -c 300 "$W/err")"; fi
# the split record: train_result.json's data_split and inspect's "split:" line say how the rows were split
"$BIN/miles-data" inspect "$W/p4.milesdat" > "$W/in4" 2> "$W/err" && "$BIN/miles-data" inspect "$W/p6.milesdat" > "$W/in6" 2>> "$W/err" &&
    "$BIN/miles-data" inspect "$W/dfor.milesdat" > "$W/infor" 2>> "$W/err" &&
    "$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --max-len 48 --dedup --seed 5 \
        --out "$W/p9.milesdat" -q > /dev/null 2>> "$W/err" && "$BIN/miles-data" inspect "$W/p9.milesdat" > "$W/in9" 2>> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "^split: by creator (no creator in two splits), seed 3, train 0.7; language any$" "$W/in4" &&
    grep -q "^split: none: a checkpoint's scaler applied, every row in test; language en$" "$W/infor" &&
    grep -q "^split: by row, stratified by label, seed 5, train 0.7; language en; repeated row ids dropped$" "$W/in9" &&
    grep -q "^split: by time (oldest publish days train, newest test), train 0.7; language en$" "$W/in6" &&
    python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
a, b = (json.load(open(f"{w}/{d}/train_result.json"))["data_split"] for d in ("to4", "to6"))
sys.exit(not (a == {"by": "creator", "seed": 3, "train_frac": 0.7, "language": "any", "dedup": False}
              and b == {"by": "time", "train_frac": 0.7, "language": "en", "dedup": False}))
PY
then
    if tc_check "$W/to4/last.safetensors" 'json.loads(m["data_split"]) == {"by": "creator", "seed": 3, "train_frac": 0.7, "language": "any", "dedup": False}' &&
        tc_check "$W/to6/last.safetensors" 'm["data_split"] == """{"by":"time","train_frac":0.7,"language":"en","dedup":false}"""'; then
        ok "train/data: the split record in train_result.json, the checkpoints and inspect's split line (creator seed 3; time; checkpoint; row, dedup)"
    else bad "train/data: the checkpoints' data_split"; fi
else bad "train/data: the split record (rc $rc): $(head -c 300 "$W/err") $(grep '^split' "$W/in4" "$W/in6")"; fi
# a seed above 2^53 (a program linking libmiles may use one) reaches the report exactly, not as a double:
# p4's record patched (seed at bytes 136..143, the record's CRC-32 at 188 over 128..187)
python3 - "$W/p4.milesdat" "$W/p4big.milesdat" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
b[136:144] = struct.pack("<Q", 2**64 - 59)
b[188:192] = struct.pack("<I", zlib.crc32(bytes(b[128:188])))
open(sys.argv[2], "wb").write(b)
PY
"$BIN/miles-eval" -c "$W/to4/last.safetensors" --data "$W/p4big.milesdat" --bootstrap 0 --no-plots -q --out "$W/ev4big" \
    > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["run"]["split_rule"]["seed"] != 2**64 - 59)' \
    "$W/ev4big/eval_test.json"; then ok "eval: run.split_rule's seed to the last digit (2^64 - 59)"
else bad "eval: a 64-bit seed in run.split_rule (rc $rc): $(head -c 300 "$W/err")"; fi
# inspect --json: the text's counts, the split rule and the scaler (every number as the text has it)
"$BIN/miles-data" inspect "$W/p6.milesdat" --json > "$W/in6.json" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && python3 - "$W/in6" "$W/in6.json" "$W/p6.milesdat" <<'PY'
import json, re, sys
txt, j = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
for name, n, v in re.findall(r"^  (\w+) +n=(\d+) +viral=(\d+) ", txt, re.M):
    e = j["splits"][name]
    assert (e["n"], e["viral"]) == (int(n), int(v)) and e["viral_rate"] == int(v) / int(n), name
assert j["scaler"] == json.loads(txt[txt.index("scaler:\n") + 8:]) and j["max_len"] == 48
assert j["split_rule"]["by"] == "time" and j["text_clean"] == "none" and len(j["vocab_hash"]) == 16
import zlib   # the data CRC-32: of every byte after the 192-byte header, as the text's first line says too
assert j["crc32"] == "%08x" % zlib.crc32(open(sys.argv[3], "rb").read()[192:])
assert f"data CRC-32 {j['crc32']}," in txt.splitlines()[0]
PY
then ok "data: inspect --json: the text's counts and scaler, the split rule"
else bad "data: inspect --json (rc $rc): $(head -c 300 "$W/err")"; fi
"$BIN/miles-data" inspect --json > /dev/null 2> "$W/err"
rc=$?
expect_fail "data: inspect --json without a file" "usage: miles-data inspect FILE"
# prepare --report: the printed report's numbers as JSON (counts, rates, days, Spearman, drift), with
# the file's split and label rules; a report that cannot be written fails naming it, the data file kept
"$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --split-by time --max-len 48 \
    --out "$W/p6r.milesdat" --report "$W/p6r.json" > "$W/out6r" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$W/p6r.milesdat" "$W/p6.milesdat" && python3 - "$W/out6r" "$W/p6r.json" "$W/to6/prepare_report.json" <<'PY'
import json, re, sys
txt, r = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
assert r["format"] == "miles-prepare-report" and r["version"] == 1 and r["out"].endswith(".milesdat")
raw = open(sys.argv[2]).read()   # the paths joined to the library's JSON in its own layout, nothing lost
assert raw.startswith('{\n\t"csv":\t"') and re.search(r'\n\t"out":\t"[^"\n]*",\n\t"format":\t"miles-prepare-report",\n', raw), raw[:300]
m = re.search(r"rows read (\d+); dropped: language (\d+), missing id/title/views/likes (\d+), no velocity (\d+), "
              r"duplicate id (\d+); kept (\d+)", txt)
d = r["rows"]["dropped"]
assert [int(x) for x in m.groups()] == [r["rows"]["read"], d["language"], d["missing_id_title_views_likes"],
                                         d["no_velocity"], d["duplicate_id"], r["rows"]["kept"]]
for name, n, v, rate, a, b in re.findall(r"^  (\w+) +n=(\d+) +viral=(\d+) +rate=([\d.]+)  published (\S+)\.\.(\S+)$", txt, re.M):
    e = r["splits"][name]
    assert (e["n"], e["viral"], e["first_day"], e["last_day"]) == (int(n), int(v), a, b), name
    assert abs(e["viral_rate"] - float(rate)) <= 5e-5 and e["viral_rate"] == e["viral"] / e["n"], name
thr = float(re.search(r"engagement_velocity >= (\S+) \(p80\)", txt).group(1))
assert r["threshold"]["velocity"] == thr == r["label"]["threshold"] and r["label"]["scope"] == "train"
rows = re.findall(r"^  (\w+) +(\d+) +([+-]\d\.\d{4})(  WARNING)?", txt, re.M)
assert len(rows) == 18 and [f["name"] for f in r["features"]] == [x[0] for x in rows]
for (name, n, rho, warn), f in zip(rows, r["features"]):
    assert f["rows"] == int(n) and abs(f["spearman_velocity"] - float(rho)) <= 5e-5 and f["leak_warning"] == bool(warn), name
m = re.search(r"publish day vs velocity: spearman ([+-][\d.]+) over (\d+) rows", txt)
assert abs(r["drift"]["day_spearman_velocity"] - float(m.group(1))) <= 5e-5 and r["drift"]["n_dated"] == int(m.group(2))
assert r["drift"]["suggest_split_by_time"] is False and "cohorts" not in r   # split by time already
assert r["creator_avg_views"] == {"rule": "data", "suggest_prior": True} and "--creator-avg prior keeps only earlier days" in txt
assert r["split_rule"] == {"by": "time", "train_frac": 0.7, "language": "en", "dedup": False}
t = json.load(open(sys.argv[3]))   # miles-train --csv's, beside its prepared file: the same but the path
assert t.pop("out").endswith("/to6/prepared.milesdat") and r.pop("out") and t == r, "train's prepare_report.json"
PY
then ok "data: prepare --report: the printed report's numbers as JSON, the split and label rules; = train --csv's"
else bad "data: prepare --report (rc $rc): $(head -c 300 "$W/err")"; fi
rm -f "$W/p6x.milesdat"
"$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --max-len 48 --out "$W/p6x.milesdat" \
    --report "$W/no/such/dir/r.json" -q > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "^miles-data: writing the prepare report: $W/no/such/dir/r.json: " "$W/err" && [ -s "$W/p6x.milesdat" ]; then
    ok "data: prepare --report into a missing directory: exit 1 naming it, the prepared file kept"
else bad "data: prepare --report failure (rc $rc): $(head -c 300 "$W/err")"; fi
# --threshold-scope cohort: the same file from both tools; miles-data prepare --checkpoint applies the
# checkpoint's cohort rule to the CSV's own cohorts (the same CSV: the same viral count in all)
"$BIN/miles-train" --csv "$W/d.csv" --vocab tests/fixtures/export_vocab --threads 1 --quiet $R --threshold-scope cohort \
    --cohort-days 10 --max-len 48 --out "$W/to7" > /dev/null 2> "$W/err" &&
    "$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --threshold-scope cohort --cohort-days 10 \
        --max-len 48 --out "$W/p7.milesdat" > "$W/out7" 2>> "$W/err" &&
    "$BIN/miles-data" prepare "$W/d.csv" --checkpoint "$W/to7/last.safetensors" --out "$W/p7for.milesdat" \
        > "$W/out7for" 2>> "$W/err"
rc=$?
v7=$(sed -n 's/^  [a-z]* *n=[0-9]* *viral=\([0-9]*\).*/\1/p' "$W/out7" | awk '{ s += $1 } END { print s }')
v7for=$(sed -n 's/^  [a-z]* *n=[0-9]* *viral=\([0-9]*\).*/\1/p' "$W/out7for" | awk '{ s += $1 } END { print s }')
if [ "$rc" -eq 0 ] && cmp -s "$W/to7/prepared.milesdat" "$W/p7.milesdat" &&
    grep -q "p80 of its publish cohort (10-day windows, >= 50 rows each)" "$W/out7" &&
    grep -q "the checkpoint's rule on this file's rows" "$W/out7for" && [ "$v7" -gt 0 ] && [ "$v7" = "$v7for" ] &&
    tc_check "$W/to7/last.safetensors" 'json.loads(m["data"])["label"]["scope"] == "cohort" and json.loads(m["data"])["label"]["cohort_days"] == 10'; then
    ok "train/data: --threshold-scope cohort: one file from both tools, the rule in the checkpoint, re-applied by prepare --checkpoint ($v7 viral)"
else bad "train/data: --threshold-scope cohort (rc $rc, viral $v7 / $v7for): $(head -c 300 "$W/err")"; fi
# the evaluation report names the label its metrics score (the evaluated file's rule)
"$BIN/miles-eval" -c "$W/to7/last.safetensors" --data "$W/p7.milesdat" --bootstrap 0 --no-plots -q --out "$W/ev7" \
    > /dev/null 2> "$W/err" &&
    "$BIN/miles-eval" -c "$W/to7/last.safetensors" --data "$W/p7for.milesdat" --bootstrap 0 --no-plots -q --out "$W/ev7f" \
    > /dev/null 2>> "$W/err" &&
    "$BIN/miles-eval" -c "$W/tc/last.safetensors" --data "$W/dfor.milesdat" --bootstrap 0 --no-plots -q --out "$W/ev7t" \
    > /dev/null 2>> "$W/err" &&
    "$BIN/miles-eval" -c "$W/to6/last.safetensors" --data "$W/p6.milesdat" --bootstrap 0 --no-plots -q --out "$W/ev6" \
    > "$W/ev6.out" 2>> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "^Miles last.safetensors (test split by time, n=[0-9]*)" "$W/ev6.out" && python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
r = {d: json.load(open(f"{w}/{d}/eval_test.json"))["run"] for d in ("ev7", "ev7f", "ev7t", "ev6")}
a, b, c = (r[d]["label"] for d in ("ev7", "ev7f", "ev7t"))
s = {d: r[d]["split_rule"] for d in r}
sys.exit(not (a["scope"] == b["scope"] == "cohort" and a["cohort_days"] == 10 and a["cohort_min_rows"] == 50
              and c["scope"] == "train" and "cohort_days" not in c and c["threshold"] > 0
              and s["ev7"] == {"by": "row", "seed": 42, "train_frac": 0.7, "language": "en", "dedup": False}
              and s["ev7f"] == s["ev7t"] == {"by": "checkpoint", "language": "en", "dedup": False}
              and s["ev6"] == {"by": "time", "train_frac": 0.7, "language": "en", "dedup": False}
              and r["ev6"]["data_crc32"] == json.load(open(f"{w}/in6.json"))["crc32"]))
PY
then ok "eval: run.label is the evaluated file's rule (cohort, 10 days; the training threshold), run.split_rule its split (row, checkpoint, time)"
else bad "eval: run.label (rc $rc): $(head -c 300 "$W/err")"; fi
# a p90 cohort label: prepare --checkpoint recomputes the cohorts at the checkpoint's percentile, not
# at its own --percentile default of 80 (it did: more viral rows than the model was trained on)
"$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --threshold-scope cohort --cohort-days 10 \
    --percentile 90 --max-len 48 --out "$W/p9.milesdat" > "$W/out9" 2> "$W/err" &&
    "$BIN/miles-train" --data "$W/p9.milesdat" --vocab tests/fixtures/export_vocab --threads 1 --quiet $R --out "$W/to9" \
        > /dev/null 2>> "$W/err" &&
    "$BIN/miles-data" prepare "$W/d.csv" --checkpoint "$W/to9/last.safetensors" --out "$W/p9for.milesdat" \
        --report "$W/p9for.json" > "$W/out9for" 2>> "$W/err"
rc=$?
v9=$(sed -n 's/^  [a-z]* *n=[0-9]* *viral=\([0-9]*\).*/\1/p' "$W/out9" | awk '{ s += $1 } END { print s }')
v9for=$(sed -n 's/^  [a-z]* *n=[0-9]* *viral=\([0-9]*\).*/\1/p' "$W/out9for" | awk '{ s += $1 } END { print s }')
if [ "$rc" -eq 0 ] && [ "$v9" -gt 0 ] && [ "$v9" = "$v9for" ] && [ "$v9" -lt "$v7" ] &&
    grep -q "p90 of its publish cohort (10-day windows" "$W/out9for" &&
    python3 -c 'import json,sys; l = json.load(open(sys.argv[1]))["label"]; sys.exit(not (l["percentile"] == 90 and l["scope"] == "cohort" and l["cohort_days"] == 10))' "$W/p9for.json"; then
    ok "data: prepare --checkpoint with a p90 cohort label: the checkpoint's percentile ($v9 viral both ways; p80 $v7)"
else bad "data: prepare --checkpoint, p90 cohorts (rc $rc, viral $v9 / $v9for / p80 $v7): $(head -c 300 "$W/err")"; fi
# --creator-avg prior: creator_avg_views from the creator's earlier days; the same file from both
# tools, the rule in the checkpoint, applied again by prepare --checkpoint (which refuses its own)
"$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --creator-avg prior --max-len 48 \
    --out "$W/pca.milesdat" --report "$W/pca.json" > "$W/outca" 2> "$W/err" &&
    "$BIN/miles-train" --csv "$W/d.csv" --vocab tests/fixtures/export_vocab --creator-avg prior --max-len 48 --threads 1 \
        --quiet $R --out "$W/toca" > /dev/null 2>> "$W/err" &&
    "$BIN/miles-data" prepare "$W/d.csv" --checkpoint "$W/toca/last.safetensors" --out "$W/pcafor.milesdat" \
        > "$W/outcafor" 2>> "$W/err"
rc=$?
nca=$(sed -n "s/^creator_avg_views: mean views of the creator's videos from earlier publish days; \([0-9]*\) rows have none (missing)$/\1/p" "$W/outca")
if [ "$rc" -eq 0 ] && [ -n "$nca" ] && cmp -s "$W/pca.milesdat" "$W/toca/prepared.milesdat" &&
    grep -q "^creator_avg_views: mean views of the creator's videos from earlier publish days (the checkpoint's rule); $nca rows" "$W/outcafor" &&
    python3 -c 'import json,sys; c = json.load(open(sys.argv[1]))["creator_avg_views"]; sys.exit(not (c == {"rule": "prior", "rows_without_history": int(sys.argv[2]), "suggest_prior": False}))' "$W/pca.json" "$nca" &&
    tc_check "$W/toca/last.safetensors" 'json.loads(m["data"])["creator_avg_views"].startswith("prior: ")'; then
    ok "data/train: --creator-avg prior: one file from both tools ($nca rows without history), the rule in the checkpoint, re-applied"
else bad "data/train: --creator-avg prior (rc $rc, $nca): $(head -c 300 "$W/err")"; fi
"$BIN/miles-eval" -c "$W/toca/last.safetensors" --data "$W/pcafor.milesdat" --bootstrap 0 --no-plots -q --out "$W/evca" \
    > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && python3 -c 'import json,sys; r = json.load(open(sys.argv[1]))["run"]; sys.exit(not (r["creator_avg_views"] == "prior"))' "$W/evca/eval_test.json" &&
    python3 -c 'import json,sys; r = json.load(open(sys.argv[1]))["run"]; sys.exit(not (r["creator_avg_views"] == "data"))' "$W/evf/eval_test.json" &&
    "$BIN/miles-baseline" --data "$W/pca.milesdat" --kind all --bootstrap 0 --no-plots --out "$W/blca" > /dev/null 2>> "$W/err" &&
    python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
assert json.load(open(f"{w}/toca/train_result.json"))["creator_avg_views"] == "prior"
assert json.load(open(f"{w}/to6/train_result.json"))["creator_avg_views"] == "data"
for k in ("text", "numeric", "ridge"):
    r = json.load(open(f"{w}/blca/baseline_{k}_test.json"))["run"]
    assert r["creator_avg_views"] == "prior", k
PY
then
    ok "eval/baseline/train: creator_avg_views names the file's rule (prior; data) in run and train_result.json"
else bad "eval: run.creator_avg_views (rc $rc): $(head -c 300 "$W/err")"; fi
# miles-predict scores records as given: it says once that this model's creator_avg_views is the prior mean
"$BIN/miles-predict" --checkpoint "$W/toca/last.safetensors" "$W/d.csv" --out "$W/pca_pred.csv" 2> "$W/err" &&
    "$BIN/miles-predict" --checkpoint "$W/toca/last.safetensors" "$W/d.csv" --quiet --out "$W/pca_pred2.csv" 2> "$W/err2" &&
    "$BIN/miles-predict" --checkpoint "$W/tc/last.safetensors" "$W/d.csv" --out "$W/pc_pred.csv" 2> "$W/err3"
rc=$?
if [ "$rc" -eq 0 ] && [ "$(grep -c "note: this model learned creator_avg_views from each creator's earlier videos" "$W/err")" = 1 ] &&
    ! grep -q "creator_avg_views" "$W/err2" "$W/err3" && cmp -s "$W/pca_pred.csv" "$W/pca_pred2.csv"; then
    ok "predict: a --creator-avg prior model's note, once (not with --quiet, not for the data's rule)"
else bad "predict: the creator_avg prior note (rc $rc): $(head -c 300 "$W/err")"; fi
# a model without the counts (--drop-features counts): a record without them has nothing of its own filled
# but what the model reads (the rates still count; views..saves are 0 whatever a record says)
"$BIN/miles-train" --csv "$W/d.csv" --vocab tests/fixtures/export_vocab --drop-features counts --max-len 48 --threads 1 \
    --quiet $R --out "$W/todc" > /dev/null 2> "$W/err" &&
    printf '{"title":"a cat on a skateboard","duration_seconds":30}\n' |
    "$BIN/miles-predict" --checkpoint "$W/todc/last.safetensors" --format jsonl --output-format jsonl --quiet --explain \
        --explain-steps 4 - > "$W/dc.jsonl" 2>> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && python3 - "$W/dc.jsonl" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).readline())
f = r["filled"]
assert not {"views", "likes", "comments", "shares", "saves"} & set(f) and "engagement_rate" in f and "duration_sec" not in f, f
assert [x["name"] for x in r["explanation"]["features"] if x.get("filled")] == f, r["explanation"]["features"]
PY
then ok "predict: 'filled' lists only features the model reads (--drop-features counts: the counts are not)"
else bad "predict: filled with dropped features (rc $rc): $(head -c 300 "$W/err")"; fi
"$BIN/miles-data" prepare "$W/d.csv" --checkpoint "$W/toca/last.safetensors" --creator-avg data --out "$W/x.milesdat" \
    > /dev/null 2> "$W/err"
rc=$?
expect_fail "data: prepare --checkpoint --creator-avg refused (the checkpoint's rule)" "creator-avg cannot go with --checkpoint"
printf 'row_id,title,views,likes,language,engagement_velocity\na,t,10,1,en,5\n' > "$W/nodate.csv"
"$BIN/miles-data" prepare "$W/nodate.csv" --checkpoint "$W/to7/last.safetensors" --out "$W/p7n.milesdat" > /dev/null 2> "$W/err"
rc=$?
expect_fail "data: prepare --checkpoint with a cohort rule and no dates refused" "and the checkpoint's cohort label needs it"
"$BIN/miles-train" --csv "$W/d.csv" --vocab tests/fixtures/export_vocab --threads 1 --quiet $R --recipe original \
    --out "$W/to5" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && tc_check "$W/to5/last.safetensors" \
    'm["recipe"] == "original" and c["decay_all"] and c["schedule"] == "original" and c["schedule_per_epoch"]
     and c["class_weight"] == [1, 1] and not c["auto_class_weight"] and m["text_clean"] == "seed"
     and cfg["preset"] == "seed-notebook" and "velocity_target" not in m'; then
    ok "train: --recipe original (decay on every tensor, per-epoch schedule, unweighted CE, seed cleaning, seed-notebook)"
else bad "train: --recipe original (rc $rc)"; fi
# an option given with --recipe original wins over the recipe's choice (the
# cohort label, the miles preset, weighted CE, a cosine schedule stepped every
# step; to5 above has the recipe's own); decay on every tensor stays the recipe's
"$BIN/miles-train" --csv "$W/d.csv" --vocab tests/fixtures/export_vocab --threads 1 --quiet $R --recipe original \
    --threshold-scope cohort --preset miles --class-weights 1,3 --schedule cosine --out "$W/to8" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && tc_check "$W/to8/last.safetensors" 'json.loads(m["data"])["label"]["scope"] == "cohort"
     and cfg["preset"] == "miles" and c["class_weight"] == [1, 3] and not c["auto_class_weight"]
     and c["schedule"] == "cosine" and not c["schedule_per_epoch"] and c["decay_all"] and m["recipe"] == "original"' &&
    tc_check "$W/to5/last.safetensors" 'json.loads(m["data"])["label"]["scope"] == "all"'; then
    ok "train: --recipe original keeps explicit --threshold-scope, --preset, --class-weights, --schedule"
else bad "train: --recipe original with explicit options (rc $rc): $(head -c 200 "$W/err")"; fi
# --model DIR: the pretrained encoder of the README's main job (make check
# fetches it; skipped, saying so, only where `make weights` has not run): the
# encoder's weights are the file's, the vocabulary defaults to the model's
# directory (data tokenized with another is refused), the new layers get the
# head lr 1e-3 and the encoder --lr
MINILM=models/all-MiniLM-L6-v2
if [ -f "$MINILM/model.safetensors" ]; then
    "$BIN/miles-data" prepare "$W/d.csv" --vocab "$MINILM" --max-len 16 --out "$W/dm.milesdat" -q > /dev/null 2> "$W/err" &&
        "$BIN/miles-train" --data "$W/dm.milesdat" --model "$MINILM" --threads 2 --max-steps 2 --batch-size 8 --warmup 1 \
            --max-len 16 --out "$W/tm" > /dev/null 2> "$W/err"
    rc=$?
    if [ "$rc" -eq 0 ] && grep -q "^loaded $MINILM: [0-9]* tensors" "$W/err" && tc_check "$W/tm/last.safetensors" \
        'cfg["hidden_size"] == 384 and cfg["num_hidden_layers"] == 6 and cfg["vocab_size"] == 30522
         and close(c["lr"], 2e-5) and close(c["head_lr"], 1e-3) and m["vocab_dir"].endswith("/all-MiniLM-L6-v2")' &&
       python3 - "$MINILM/model.safetensors" "$W/tm/last.safetensors" <<'PY'; then
import array, json, struct, sys
def tensor(path, names):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    k = next(k for k in names if k in h)
    s, e = h[k]["data_offsets"]
    a = array.array("f")
    a.frombytes(b[8 + n + s:8 + n + e])
    return a
# after two AdamW steps at lr 2e-5 every weight is within ~4e-5 of the file's
# (a random init would be ~0.02 away); the query weight of the last layer
name = "encoder.layer.5.attention.self.query.weight"
want = tensor(sys.argv[1], [name, "bert." + name])
got = tensor(sys.argv[2], ["bert." + name])
d = max(abs(x - y) for x, y in zip(got, want))
print("     max |trained - pretrained| of %s: %.2e" % (name, d))
sys.exit(0 if len(got) == len(want) == 384 * 384 and 0 < d < 1e-4 else 1)
PY
        ok "train: --model $MINILM (pretrained encoder loaded, vocabulary from its directory, head lr 1e-3)"
    else bad "train: --model $MINILM (rc $rc)"; fi
    "$BIN/miles-train" --data "$W/d.milesdat" --model "$MINILM" --threads 1 --quiet --max-steps 1 --out "$W/tm2" \
        > /dev/null 2> "$W/err"
    rc=$?
    expect_fail "train: --model with data tokenized by another vocabulary refused" "prepare the data with --vocab $MINILM"
else
    echo "skip train: --model ($MINILM/model.safetensors absent: run make weights)"
fi
# refusals: each names the option, exit status 2 (usage) or 1
refuse() { # NAME PATTERN ARGS...
    local name=$1 pat=$2; shift 2
    "$BIN/miles-train" "$@" --out "$W/tr" > "$W/out" 2> "$W/err"
    rc=$?
    expect_fail "train: $name refused" "$pat"
}
refuse "--schedule cyclic" "schedule must be cosine, linear or constant" $T $R --schedule cyclic
refuse "--recipe fancy" "recipe must be default or original" $T $R --recipe fancy
refuse "--velocity-target z" "velocity-target must be log1p_z or minmax" $T $R --velocity-target z
refuse "--loss-weights 0.9" "loss-weights wants C,R" $T $R --loss-weights 0.9
refuse "--class-weights 0,1" "class-weights wants auto, none or w0,w1" $T $R --class-weights 0,1
refuse "--class-weights heavy" "class-weights wants auto, none or w0,w1" $T $R --class-weights heavy
refuse "a data option with --data" "split-by" $T $R --split-by creator
refuse "no model" "give --model DIR" $T
refuse "--weight-decay 11" "weight-decay" $T $R --weight-decay 11
refuse "--layer-decay 2" "layer-decay" $T $R --layer-decay 2
refuse "--grad-accum 0" "grad-accum" $T $R --grad-accum 0
refuse "--device tpu" "tpu" $T $R --device tpu
refuse "--precision fp8" "fp8" $T $R --precision fp8
refuse "--drop-features" "nonsense" --csv "$W/d.csv" --vocab tests/fixtures/export_vocab --quiet $R --drop-features views,nonsense
# the data words are checked before any data is read (a misspelt one was a row split / train scope before)
refuse "--split-by day" "split-by must be row, creator or time" --csv "$W/d.csv" --quiet $R --split-by day
refuse "--threshold-scope most" "threshold-scope must be train, all or cohort" --csv "$W/d.csv" --quiet $R --threshold-scope most
refuse "--text-clean some" "text-clean must be seed or none" --csv "$W/d.csv" --quiet $R --text-clean some
refuse "--cohort-days alone" "cohort-days goes with --threshold-scope cohort" --csv "$W/d.csv" --quiet $R --cohort-days 7
refuse "--cohort-days 0" "cohort-days" --csv "$W/d.csv" --quiet $R --threshold-scope cohort --cohort-days 0
refuse "--creator-avg later" "creator-avg must be data or prior" --csv "$W/d.csv" --quiet $R --creator-avg later
refuse "--creator-avg with --data" "creator-avg" $T $R --creator-avg prior

# ---- miles-train's progress on stderr (every other check runs --quiet): a line
# per epoch and per 50 steps when stderr is not a terminal, the evaluations,
# early stopping, the summary; a resume says where; on a terminal a bar
# redrawn in place (util-linux script(1) gives the pty)
L="--data $W/d.milesdat --vocab tests/fixtures/export_vocab --threads 1 --init random --size tiny --batch-size 8 --warmup 1"
"$BIN/miles-train" $L --max-steps 60 --epochs 20 --eval-every 3 --patience 2 --lr 1e-3 --out "$W/tp" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "^model: preset miles, H 64, L 2, [0-9]* parameters; train [0-9]*, val [0-9]* examples$" "$W/err" &&
   grep -Eq "^epoch 1/20 batch 6/6 loss [0-9.]+ lr [0-9.e+-]+ [0-9.]+ ex/s ETA [0-9hms]+$" "$W/err" &&
   [ "$(grep -c '^eval step [0-9]*: val AUROC 0\.[0-9]*  loss' "$W/err")" -eq 3 ] &&
   grep -q "^early stopping: no val AUROC gain > 0.001 for 2 evaluations$" "$W/err" &&
   grep -Eq "^done: 9 steps in [0-9.]+ s; best val AUROC 0\.[0-9]+ at step [0-9]+; decision threshold 0\.[0-9]+$" "$W/err" &&
   [ "$(grep -c '"type":"eval"' "$W/tp/log.jsonl")" -eq 3 ] && [ "$(grep -c '"type":"step"' "$W/tp/log.jsonl")" -eq 9 ]; then
    ok "train: progress lines (epoch, 3 evaluations, early stopping after 2, summary) match log.jsonl"
else bad "train: progress output (rc $rc)"; cat "$W/err"; fi
"$BIN/miles-train" $L --max-steps 4 --out "$W/tr4" > /dev/null 2> "$W/err" &&
    "$BIN/miles-train" $L --max-steps 7 --resume --out "$W/tr4" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "^resumed at step 4 (epoch 1, batch 4)$" "$W/err"; then ok "train: --resume says where it resumed"
else bad "train: resume message (rc $rc)"; fi
if command -v script > /dev/null; then
    script -qec "$BIN/miles-train $L --max-steps 8 --out $W/tty" /dev/null > "$W/out" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && python3 - "$W/out" <<'PY'; then
import re, sys
t = open(sys.argv[1], "rb").read().decode()
bars = re.findall(r"\repoch 1/15 \[([#.]{24})\] (\d)/6 loss [0-9.]+ lr [0-9.e+-]+ [0-9.]+ ex/s ETA \S+ ", t)
ok = [int(b[1]) for b in bars] == [1, 2, 3, 4, 5, 6] and bars[-1][0] == "#" * 24 and bars[0][0].count("#") == 4
sys.exit(0 if ok else 1)
PY
        ok "train: on a terminal one bar redrawn in place (\\r), batches 1..6, full at the epoch's end"
    else bad "train: terminal progress bar (rc $rc)"; fi
else echo "skip train: terminal progress bar (no script(1))"; fi

# ---- miles-eval on the validation split of best.safetensors reproduces the
# training's evaluation at the best step (AUROC, best F1 and its threshold,
# velocity MAE): the same rows, the same forward, the same metric code
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --split val --bootstrap 0 --no-plots \
    --out "$W/ev" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && python3 - "$W/tp" "$W/ev/eval_val.json" <<'PY'; then
import json, sys
r = json.load(open(sys.argv[1] + "/train_result.json"))
ev = [json.loads(l) for l in open(sys.argv[1] + "/log.jsonl") if '"type":"eval"' in l]
best = [e for e in ev if e["step"] == r["best_step"]][0]
e = json.load(open(sys.argv[2]))
ok = (e["auroc"] == r["best_val_auroc"] == best["val_auroc"] and e["best_f1_threshold"] == r["decision_threshold"]
      and e["best_f1"] == best["val_best_f1"] and abs(e["velocity"]["mae"] - best["val_velocity_mae"]) <= 1e-6
      and e["at_stored_threshold"]["threshold"] == r["decision_threshold"] and e["run"]["split"] == "val")
sys.exit(0 if ok else 1)
PY
    ok "eval: --split val of best.safetensors = the training's evaluation at the best step (AUROC, F1, threshold, MAE)"
else bad "eval: val split vs training (rc $rc)"; fi
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --split train --bootstrap 0 --no-plots \
    --out "$W/ev" > /dev/null 2> "$W/err"
rc=$?
ntrain=$("$BIN/miles-data" inspect "$W/d.milesdat" | sed -n 's/^  train n=\([0-9]*\).*/\1/p')
if [ "$rc" -eq 0 ] && [ -n "$ntrain" ] &&
   python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["n"] == int(sys.argv[2]) else 1)' "$W/ev/eval_train.json" "$ntrain"; then
    ok "eval: --split train reports the training split's $ntrain rows"
else bad "eval: --split train (rc $rc)"; fi
# its progress: a summary line on stderr (a log gets a line per 30 s, a terminal a redrawn one)
if grep -qE "^scored $ntrain rows in [0-9.]+ s \([0-9]+ rows/s\)$" "$W/err"; then ok "eval: progress summary on stderr"
else bad "eval: progress summary: $(head -c 200 "$W/err")"; fi
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --split train --bootstrap 0 --no-plots \
    --quiet --out "$W/ev" > /dev/null 2> "$W/err"
if [ $? -eq 0 ] && [ ! -s "$W/err" ]; then ok "eval: --quiet writes nothing on stderr"; else bad "eval: --quiet: $(head -c 200 "$W/err")"; fi
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --split all --out "$W/ev" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --split all refused" "split must be test, val or train"

# ---- miles-eval --compare DIR: the baselines miles-baseline saved, scored on
# the evaluated rows and paired with Miles; their AUROCs and ridge MAEs are the
# very numbers of their own reports on those rows
"$BIN/miles-baseline" --data "$W/d.milesdat" --kind all --bootstrap 0 --no-plots --out "$W/cmpb" > /dev/null 2>&1
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 30 --no-plots -q \
    --compare "$W/cmpb" --out "$W/cmpe" --predictions "$W/cmpe/pred.csv" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q '^Paired with other models on the same rows (test split by row, n=[0-9]*; 95% intervals)$' "$W/out" &&
   grep -qE '^  other +AUROC +this +diff +DeLong CI +bootstrap CI +z +p +p Holm$' "$W/out" &&
   grep -q "^  p Holm: Holm's adjustment over the 2 AUROC tests of this run$" "$W/out" &&
   grep -qE '^  TF-IDF \+ LR +[0-9.]+ +[0-9.]+ +[-+][0-9.]+ +\[[-+][0-9.]+, [-+][0-9.]+\] +\[[-+][0-9.]+, [-+][0-9.]+\] ' "$W/out" &&
   grep -qE '^  PR-AUC +other +this +diff +bootstrap CI$' "$W/out" &&
   grep -qE '^  ridge, views/day +[0-9.e+]+ +[0-9.e+]+ +[-+][0-9.e+]+ +\[' "$W/out" &&
   grep -qE '^  velocity MAE +other +this +diff +bootstrap CI$' "$W/out" &&
   python3 - "$W/cmpe/eval_test.json" "$W/cmpb" "$W/out" <<'PY'; then
import json, sys
e = json.load(open(sys.argv[1]))
c, d = e["comparisons"], sys.argv[2]
# the table's row: the JSON's intervals and p-values, rounded
row = [l for l in open(sys.argv[3], encoding="utf-8") if l.startswith("  TF-IDF + LR ") and "[" in l][0]
t = c["text"]
want = "[%+.4f, %+.4f]   [%+.4f, %+.4f]" % tuple(t["ci"] + t["bootstrap_ci"])
ok = want in row and row.split()[-2:] == ["%.3g" % t["p_value"], "%.3g" % t["p_holm"]]
ok = ok and set(c) == {"text", "numeric", "ridge"}
for k in ("text", "numeric"):
    b = json.load(open(f"{d}/baseline_{k}_test.json"))
    x = c[k]
    ok = ok and x["auroc_baseline"] == b["auroc"] and x["auroc_miles"] == e["auroc"]
    ok = ok and x["diff"] == x["auroc_miles"] - x["auroc_baseline"] and x["n_pos"] + x["n_neg"] == e["n"]
    ok = ok and x["ci"][0] < x["diff"] < x["ci"][1] and 0 < x["p_value"] <= 1 and 20 <= x["bootstrap_used"] <= 30
    ok = ok and x["bootstrap_ci"][0] < x["bootstrap_ci"][1] and x["file"] == f"{d}/baseline_{k}.json"
    ap = x["average_precision"]
    ok = ok and ap["ap_baseline"] == b["average_precision"] and ap["ap_miles"] == e["average_precision"]
    ok = ok and ap["bootstrap_ci"][0] <= ap["bootstrap_ci"][1]
r, b = c["ridge"], json.load(open(f"{d}/baseline_ridge_test.json"))["velocity_report"]
mv = e["velocity_report"]
ok = ok and r["target_space"]["mae_baseline"] == b["target_space"]["mae"]
ok = ok and r["views_per_day"]["mae_baseline"] == b["views_per_day"]["mae"]
ok = ok and r["target_space"]["mae_miles"] == mv["target_space"]["mae"]
ok = ok and r["views_per_day"]["mae_miles"] == mv["views_per_day"]["mae"]
sys.exit(0 if ok else 1)
PY
    ok "eval: --compare: the baselines' AUROCs, PR-AUCs and ridge MAEs on the same rows equal their reports'; DeLong + bootstrap"
else bad "eval: --compare (rc $rc): $(head -c 300 "$W/err")"; fi
# --predictions: the report's numbers recomputed from the file (AUROC by pairs, MAE, the confusion counts)
if python3 - "$W/cmpe/pred.csv" "$W/cmpe/eval_test.json" "$W/cmpb" <<'PY'; then
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
e, d = json.load(open(sys.argv[2])), sys.argv[3]
def auroc(y, s):
    pos = [v for v, t in zip(s, y) if t == 1]
    neg = [v for v, t in zip(s, y) if t == 0]
    return sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))
y = [int(r["label"]) for r in rows]
col = lambda k: [float(r[k]) for r in rows]
mae = lambda a, b: sum(abs(p - q) for p, q in zip(a, b)) / len(a)
st = e["at_stored_threshold"]
ok = len(rows) == e["n"] and len({r["row_id"] for r in rows}) == len(rows) and all(r["title"] for r in rows)
ok = ok and list(rows[0]) == ["row_id", "title", "label", "viral_score", "predicted_viral", "velocity",
                              "predicted_velocity", "baseline_text_score", "baseline_numeric_score",
                              "baseline_ridge_velocity"]
ok = ok and abs(auroc(y, col("viral_score")) - e["auroc"]) < 1e-12
ok = ok and e["prevalence"] == sum(y) / len(y)   # the report's numbers to the last bit (P/n correctly rounded)
ok = ok and sum(int(r["predicted_viral"]) for r in rows) == st["confusion"]["tp"] + st["confusion"]["fp"]
ok = ok and abs(mae(col("predicted_velocity"), col("velocity")) - e["velocity_report"]["views_per_day"]["mae"]) < 1e-9
for k in ("text", "numeric"):
    ok = ok and abs(auroc(y, col(f"baseline_{k}_score")) - json.load(open(f"{d}/baseline_{k}_test.json"))["auroc"]) < 1e-12
rb = json.load(open(f"{d}/baseline_ridge_test.json"))["velocity_report"]["views_per_day"]["mae"]
ok = ok and abs(mae(col("baseline_ridge_velocity"), col("velocity")) - rb) < 1e-9 * max(1, rb)
sys.exit(0 if ok else 1)
PY
    ok "eval: --predictions: the report's AUROC, MAE and confusion counts (and each baseline's) recomputed from the rows"
else bad "eval: --predictions"; fi
if ls "$W"/cmpe/*.png > /dev/null 2>&1; then bad "eval: --no-plots wrote $(ls "$W"/cmpe/*.png | head -1)"
else ok "eval: --no-plots writes no PNG"; fi
rm -rf "$W/cmpn"
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 0 --no-plots -q \
    --out "$W/cmpn" --predictions "$W/nodir/pred.csv" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "miles-eval: --predictions: .*$W/nodir/pred.csv" "$W/err" && [ ! -e "$W/cmpn/eval_test.json" ]; then
    ok "eval: --predictions into a missing directory: exit 1 naming the file, no report written"
else bad "eval: --predictions refusal (rc $rc): $(head -c 200 "$W/err")"; fi
# --split val: the fitted models serve any split; the ridge report is per split (none for val here)
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --split val --bootstrap 0 --no-plots -q \
    --compare "$W/cmpb" --out "$W/cmpe" --predictions "$W/cmpe/pred_val.csv" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && [ "$(head -1 "$W/cmpe/pred_val.csv")" = "row_id,title,label,viral_score,predicted_viral,velocity,predicted_velocity,baseline_text_score,baseline_numeric_score" ] && python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["comparisons"]; sys.exit(0 if set(c) == {"text","numeric"} and c["text"]["bootstrap_ci"] == [None, None] else 1)' "$W/cmpe/eval_val.json"; then
    ok "eval: --compare --split val pairs the two classifiers (no ridge report for val), no bootstrap with --bootstrap 0"
else bad "eval: --compare --split val (rc $rc)"; fi
# ---- miles-eval --calibrate: Platt scaling fitted on the val split.  A pure-Python Newton on
# scikit-learn's sigmoid-calibration objective, fed the val rows' scores (pred_val.csv, just written),
# finds the report's a and b; the calibrated column, the means, Brier and ECE before and after, the mapped
# stored threshold and its decisions are recomputed from the rows
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 0 -q --calibrate \
    --out "$W/cal" --predictions "$W/cal/pred.csv" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q '^Calibration: Platt scaling fitted on the val split (n=[0-9]*, [0-9]* viral), applied to the test split$' "$W/out" &&
   grep -qE '^  ECE \(15 bins\) +[0-9.]+ +[0-9.]+$' "$W/out" && [ -s "$W/cal/eval_test_calibrated.png" ] &&
   python3 - "$W/cmpe/pred_val.csv" "$W/cal/pred.csv" "$W/cal/eval_test.json" <<'PY'; then
import csv, json, math, sys
rd = lambda p: list(csv.DictReader(open(p, newline="", encoding="utf-8")))
val, rows, e = rd(sys.argv[1]), rd(sys.argv[2]), json.load(open(sys.argv[3]))
c = e["calibration"]
eps = 2.0 ** -24
def logit(p):
    p = min(max(p, eps), 1 - eps)
    return math.log(p) - math.log1p(-p)
sig = lambda u: 1 / (1 + math.exp(-u)) if u >= 0 else math.exp(u) / (1 + math.exp(u))
x = [logit(float(r["viral_score"])) for r in val]
y = [int(r["label"]) for r in val]
npos = sum(y)
tp, tn = (npos + 1) / (npos + 2), 1 / (len(y) - npos + 2)
a, b = 0.0, math.log((npos + 1) / (len(y) - npos + 1))
for _ in range(100):   # Newton on sum -t log s - (1-t) log(1-s), s = sig(a x + b)
    g = [0.0, 0.0]; h = [0.0, 0.0, 0.0]
    for xi, yi in zip(x, y):
        s = sig(a * xi + b); r = s - (tp if yi else tn); w = s * (1 - s)
        g[0] += r * xi; g[1] += r; h[0] += w * xi * xi; h[1] += w * xi; h[2] += w
    det = h[0] * h[2] - h[1] ** 2
    da, db = -(h[2] * g[0] - h[1] * g[1]) / det, -(h[0] * g[1] - h[1] * g[0]) / det
    a, b = a + da, b + db
    if abs(da) + abs(db) < 1e-15:
        break
ok = c["method"] == "platt" and c["fitted_on"] == {"split": "val", "n": len(val), "n_pos": npos}
ok = ok and abs(c["a"] - a) <= 1e-10 * abs(a) and abs(c["b"] - b) <= 1e-10 * max(1, abs(b)) and c["a"] > 0
p = [float(r["viral_score"]) for r in rows]
q = [float(r["calibrated_score"]) for r in rows]
lab = [int(r["label"]) for r in rows]
n = len(rows)
ok = ok and list(rows[0])[-1] == "calibrated_score" and n == e["n"]
ok = ok and all(abs(qi - sig(c["a"] * logit(pi) + c["b"])) <= 1e-15 for pi, qi in zip(p, q))
def ece(s):
    edges = [k * (1 / 15) for k in range(1, 15)]
    bins = {}
    for si, yi in zip(s, lab):
        bins.setdefault(sum(ed < si for ed in edges), []).append((si, yi))
    return sum(len(v) / n * abs(sum(t for _, t in v) / len(v) - sum(u for u, _ in v) / len(v)) for v in bins.values())
brier = lambda s: sum((yi - si) ** 2 for si, yi in zip(s, lab)) / n
for key, s in (("uncalibrated", p), ("calibrated", q)):
    m = c[key]
    ok = ok and abs(m["mean_score"] - sum(s) / n) <= 1e-15 and abs(m["brier"] - brier(s)) <= 1e-15
    ok = ok and abs(m["ece"] - ece(s)) <= 1e-12
ok = ok and c["uncalibrated"]["ece"] == e["ece"] and c["uncalibrated"]["log_loss"] == e["log_loss"]
t, tc = c["stored_threshold"], c["stored_threshold_calibrated"]
ok = ok and t == e["at_stored_threshold"]["threshold"] and abs(tc - sig(c["a"] * logit(t) + c["b"])) <= 1e-15
ok = ok and c["decisions_changed"] == 0 and all(int(r["predicted_viral"]) == (qi >= tc) for r, qi in zip(rows, q))
ok = ok and e["plots"]["calibrated"].endswith("eval_test_calibrated.png") and c["prevalence"] == e["prevalence"]
print(f"a = {c['a']:.6f} (Python {a:.6f}), b = {c['b']:.6f}; ECE {c['uncalibrated']['ece']:.4f} -> {c['calibrated']['ece']:.4f}", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
    ok "eval: --calibrate: Platt's a and b as a Python Newton finds them on the val rows; the calibrated column, means, Brier, ECE and mapped threshold recomputed"
else bad "eval: --calibrate (rc $rc): $(head -c 300 "$W/err")"; fi
# --save-calibrated: a copy holding the fit; miles-predict then answers sigma(a logit(p) + b) of the model's own
# score (viral_score_model, equal to the uncalibrated checkpoint's), miles-eval reports the stored map, both
# exports carry it
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 0 --no-plots -q --calibrate \
    --save-calibrated "$W/cal/cal.safetensors" --out "$W/cal" > "$W/out" 2> "$W/err"
rc1=$?
"$BIN/miles-eval" --checkpoint "$W/cal/cal.safetensors" --data "$W/d.milesdat" --bootstrap 0 --no-plots -q \
    --out "$W/cal2" > "$W/out2" 2>> "$W/err"
rc2=$?
head -21 "$W/d.csv" > "$W/d20.csv"
"$BIN/miles-predict" --checkpoint "$W/tp/best.safetensors" -o "$W/cal/p0.csv" "$W/d20.csv" 2>> "$W/err"
rc3=$?
"$BIN/miles-predict" --checkpoint "$W/cal/cal.safetensors" -o "$W/cal/p1.csv" "$W/d20.csv" 2>> "$W/err" &&
    "$BIN/miles-predict" --checkpoint "$W/cal/cal.safetensors" -o "$W/cal/p1.jsonl" "$W/d20.csv" 2>> "$W/err"
rc4=$?
"$BIN/miles-export" --checkpoint "$W/cal/cal.safetensors" --format onnx --out "$W/cal/m.onnx" > /dev/null 2>> "$W/err" &&
    "$BIN/miles-export" --checkpoint "$W/cal/cal.safetensors" --format hf --out "$W/cal/hf" > /dev/null 2>> "$W/err"
rc5=$?
if [ "$rc1$rc2$rc3$rc4$rc5" = 00000 ] && grep -q "^calibrated checkpoint: $W/cal/cal.safetensors$" "$W/out" &&
   grep -q "^Calibration: the checkpoint's Platt scaling (fitted on n=[0-9]*, [0-9]* viral), applied to the test split$" "$W/out2" &&
   grep -q '"method":"platt"' "$W/cal/m.onnx" &&
   python3 - "$W/cal/eval_test.json" "$W/cal2/eval_test.json" "$W/cal/p0.csv" "$W/cal/p1.csv" "$W/cal/p1.jsonl" "$W/cal/hf/config.json" <<'PY'; then
import csv, json, math, sys
fit, stored = (json.load(open(p))["calibration"] for p in sys.argv[1:3])
rd = lambda p: list(csv.DictReader(open(p, newline="", encoding="utf-8")))
p0, p1 = rd(sys.argv[3]), rd(sys.argv[4])
js = [json.loads(l) for l in open(sys.argv[5], encoding="utf-8")]
hf = json.load(open(sys.argv[6]))["miles"]["calibration"]
a, b = fit["a"], fit["b"]
eps = 2.0 ** -24
def cal(p):
    p = min(max(p, eps), 1 - eps)
    return 1 / (1 + math.exp(-(a * (math.log(p) - math.log1p(-p)) + b)))
ok = stored["source"] == "checkpoint" and fit["source"] == "fitted" and stored["a"] == a and stored["b"] == b
ok = ok and stored["calibrated"] == fit["calibrated"] and stored["fitted_on"]["n"] == fit["fitted_on"]["n"]
ok = ok and hf["a"] == a and hf["b"] == b and hf["fitted_on"] == "val" and len(p1) == len(p0) == 20
ok = ok and list(p1[0]) == list(p0[0]) + ["viral_score_model"]
for r0, r1, j in zip(p0, p1, js):   # the CSV's 9 digits; JSON's full ones (the slope amplifies rounding)
    m = j["viral_score_model"]
    ok = ok and r1["viral_score_model"] == r0["viral_score"] and r1["is_viral"] == r0["is_viral"]
    ok = ok and abs(m - float(r0["viral_score"])) <= 5e-10 and abs(j["viral_score"] - cal(m)) <= 1e-13
    ok = ok and abs(float(r1["viral_score"]) - j["viral_score"]) <= 5e-9 * j["viral_score"]
sys.exit(0 if ok else 1)
PY
    ok "eval: --save-calibrated: predict answers the Platt map of the model's score (and the model's), eval reports the stored map, the exports carry it"
else bad "eval: --save-calibrated (rc $rc1$rc2$rc3$rc4$rc5): $(head -c 300 "$W/err")"; fi
# miles-train --calibrate: the same run as tp, then the same fit on the same val scores: calibrated.safetensors
# is byte for byte the copy miles-eval --save-calibrated wrote; without a best checkpoint it says why
L="--data $W/d.milesdat --vocab tests/fixtures/export_vocab --threads 1 --init random --size tiny --batch-size 8 --warmup 1"
"$BIN/miles-train" $L --max-steps 60 --epochs 20 --eval-every 3 --patience 2 --lr 1e-3 --out "$W/tpc" --calibrate \
    > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$W/tpc/best.safetensors" "$W/tp/best.safetensors" &&
   cmp -s "$W/tpc/calibrated.safetensors" "$W/cal/cal.safetensors" &&
   grep -Eq "^calibrated: $W/tpc/calibrated.safetensors \(Platt a [0-9.e+-]+, b [-0-9.e+]+ on the val split: mean P\(viral\) [0-9.]+ -> [0-9.]+, viral rate [0-9.]+\)$" "$W/err" &&
   python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["calibration"]; e=json.load(open(sys.argv[2]))["calibration"]; sys.exit(0 if (c["a"], c["b"], c["fitted_on"]) == (e["a"], e["b"], "val") and c["checkpoint"].endswith("/calibrated.safetensors") else 1)' "$W/tpc/train_result.json" "$W/cal/eval_test.json"; then
    ok "train --calibrate: calibrated.safetensors byte for byte miles-eval --save-calibrated's; train_result.json has a and b"
else bad "train --calibrate (rc $rc): $(head -c 300 "$W/err")"; fi
"$BIN/miles-train" $L --max-steps 2 --eval-every 50 --epochs 1 --out "$W/tpc2" --calibrate --quiet > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "calibrate: no best.safetensors (no evaluation ran): no calibrated.safetensors written" "$W/err" &&
   [ ! -e "$W/tpc2/calibrated.safetensors" ]; then ok "train --calibrate without an evaluation: said, exit 0, no file"
else bad "train --calibrate without an evaluation (rc $rc): $(head -c 300 "$W/err")"; fi
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --save-calibrated "$W/cal/x.safetensors" -q \
    --out "$W/cal" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "save-calibrated goes with --calibrate" "$W/err" && [ ! -e "$W/cal/x.safetensors" ]; then
    ok "eval: --save-calibrated without --calibrate refused"
else bad "eval: --save-calibrated alone (rc $rc)"; fi
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --split val --calibrate -q \
    --out "$W/cal" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "calibrate fits on the val split: evaluating it too would be in-sample" "$W/err"; then
    ok "eval: --calibrate --split val refused (in-sample)"
else bad "eval: --calibrate --split val (rc $rc): $(head -c 200 "$W/err")"; fi
# --compare CHECKPOINT: another checkpoint for the same data, scored on the same rows; its numbers are
# those of miles-eval on it alone; a checkpoint compared with itself: diff 0, p 1
"$BIN/miles-eval" --checkpoint "$W/tc/last.safetensors" --data "$W/d.milesdat" --bootstrap 0 --no-plots -q \
    --out "$W/cmpt" > /dev/null 2> "$W/err"
rc1=$?
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 20 --no-plots -q \
    --compare "$W/tc/last.safetensors" --out "$W/cmpe" --predictions "$W/cmpe/pred_ck.csv" > "$W/out" 2> "$W/err"
rc=$?
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 0 --no-plots -q \
    --compare "$W/tp/best.safetensors" --out "$W/cmps" > /dev/null 2>> "$W/err"
rc2=$?
if [ "$rc1$rc$rc2" = 000 ] && grep -q "^  checkpoint B: $W/tc/last.safetensors" "$W/out" && ! grep -q 'Holm' "$W/out" &&
   python3 - "$W/cmpe/eval_test.json" "$W/cmpt/eval_test.json" "$W/cmps/eval_test.json" "$W/cmpe/pred_ck.csv" <<'PY'; then
import csv, json, sys
e, o, se = (json.load(open(p)) for p in sys.argv[1:4])
c, s = e["comparisons"]["checkpoint"], se["comparisons"]["checkpoint"]
ov, ev = o["velocity_report"], e["velocity_report"]
ok = list(e["comparisons"]) == ["checkpoint"] and c["auroc_baseline"] == o["auroc"] and c["auroc_miles"] == e["auroc"]
ok = ok and c["views_per_day"]["mae_baseline"] == ov["views_per_day"]["mae"]
ok = ok and c["views_per_day"]["mae_miles"] == ev["views_per_day"]["mae"]
same = o["run"]["velocity_target"] == e["run"]["velocity_target"]
ok = ok and (not same or c["target_space"]["mae_baseline"] == ov["target_space"]["mae"])
ok = ok and s["diff"] == 0 and s["p_value"] == 1 and s["views_per_day"]["diff"] == 0
rows = list(csv.DictReader(open(sys.argv[4], newline="", encoding="utf-8")))
ok = ok and list(rows[0])[-2:] == ["compared_viral_score", "compared_predicted_velocity"]
y = [int(r["label"]) for r in rows]
sc = [float(r["compared_viral_score"]) for r in rows]
pos = [v for v, t in zip(sc, y) if t]
neg = [v for v, t in zip(sc, y) if not t]
ok = ok and abs(sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg)) - o["auroc"]) < 1e-12
sys.exit(0 if ok else 1)
PY
    ok "eval: --compare CHECKPOINT: the other checkpoint's AUROC and MAEs are its own report's; itself: diff 0, p 1"
else bad "eval: --compare CHECKPOINT (rc $rc1/$rc/$rc2): $(head -c 300 "$W/err")"; fi
# --compare-data: an ablation prepared on its own (without views: another scaler, the same rows), paired on
# those rows; its numbers are its own report's; a file with other rows (another split seed) is refused
"$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --drop-features views -q \
    --out "$W/dnv.milesdat" > /dev/null 2>&1
"$BIN/miles-train" --data "$W/dnv.milesdat" --vocab tests/fixtures/export_vocab --threads 1 --quiet \
    --init random --size tiny --max-steps 3 --batch-size 8 --warmup 1 --out "$W/tnv" > /dev/null 2> "$W/err"
"$BIN/miles-eval" --checkpoint "$W/tnv/last.safetensors" --data "$W/dnv.milesdat" --bootstrap 0 --no-plots -q \
    --out "$W/cmpnv1" > /dev/null 2>> "$W/err"
rc1=$?
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 0 --no-plots -q \
    --compare "$W/tnv/last.safetensors" --compare-data "$W/dnv.milesdat" --out "$W/cmpnv" > /dev/null 2>> "$W/err"
rc=$?
if [ "$rc1$rc" = 00 ] && python3 - "$W/cmpnv/eval_test.json" "$W/cmpnv1/eval_test.json" "$W/dnv.milesdat" <<'PY'; then
import json, sys
c = json.load(open(sys.argv[1]))["comparisons"]["checkpoint"]
o = json.load(open(sys.argv[2]))
ok = c["auroc_baseline"] == o["auroc"] and c["data"] == sys.argv[3]
ok = ok and c["views_per_day"]["mae_baseline"] == o["velocity_report"]["views_per_day"]["mae"]
sys.exit(0 if ok else 1)
PY
    ok "eval: --compare-data: an ablation prepared without views, paired on the same rows; its numbers are its own"
else bad "eval: --compare-data (rc $rc1/$rc): $(head -c 300 "$W/err")"; fi
"$BIN/miles-data" prepare "$W/d.csv" --vocab tests/fixtures/export_vocab --drop-features views --seed 5 -q \
    --out "$W/dnv5.milesdat" > /dev/null 2>&1
"$BIN/miles-train" --data "$W/dnv5.milesdat" --vocab tests/fixtures/export_vocab --threads 1 --quiet \
    --init random --size tiny --max-steps 1 --batch-size 8 --warmup 1 --out "$W/tnv5" > /dev/null 2>&1
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 0 --no-plots -q \
    --compare "$W/tnv5/last.safetensors" --compare-data "$W/dnv5.milesdat" --out "$W/cmpnv" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --compare-data with other rows (another split seed) refused naming the row" "dnv5.milesdat: \(row [0-9]* of the split differs from .*d.milesdat's in its \|its split holds [0-9]* rows\)"
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 0 --no-plots -q \
    --compare "$W/tnv/last.safetensors" --compare-data "$W/dnv5.milesdat" --out "$W/cmpnv" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --compare-data not the checkpoint's own file refused" "different scaler/label threshold than $W/tnv/last.safetensors"
# several --compare in one run: the baselines and two checkpoints (B = another run, C = an ablation on its own
# file), each member the numbers of its own single run, Holm's adjustment over the 4 AUROC tests
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 20 --no-plots -q \
    --compare "$W/tc/last.safetensors" --compare "$W/cmpb" --compare "$W/tnv/last.safetensors" \
    --compare-data "$W/dnv.milesdat" --out "$W/cmpmany" --predictions "$W/cmpmany/pred.csv" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "^  checkpoint C: $W/tnv/last.safetensors$" "$W/out" &&
   grep -qE "^  checkpoint C +[0-9.]+ +[0-9.]+ +[-+][0-9.]+ .* [0-9.e-]+ +[0-9.e-]+$" "$W/out" &&
   python3 - "$W/cmpmany/eval_test.json" "$W/cmpe/eval_test.json" "$W/cmpnv/eval_test.json" "$W/cmpmany/pred.csv" <<'PY'; then
import csv, json, sys
many, one_ck, one_nv = (json.load(open(p))["comparisons"] for p in sys.argv[1:4])
rows = list(csv.DictReader(open(sys.argv[4], newline="", encoding="utf-8")))
ok = list(many) == ["checkpoint", "text", "numeric", "ridge", "checkpoint_2"]
ok = ok and many["checkpoint"]["baseline"] == "checkpoint B" and many["checkpoint_2"]["baseline"] == "checkpoint C"
ok = ok and many["checkpoint_2"]["data"].endswith("dnv.milesdat")
# the same pairs as the runs with one --compare each (bootstrap counts differ: compare the tests)
for k, ref in (("checkpoint", one_ck["checkpoint"]), ("checkpoint_2", one_nv["checkpoint"])):
    ok = ok and all(many[k][f] == ref[f] for f in ("auroc_baseline", "auroc_miles", "diff", "se", "p_value"))
# Holm: sorted p times m, m - 1, ..., made non-decreasing, capped at 1
tests = [k for k in many if "p_value" in many[k]]
ps = sorted((many[k]["p_value"], k) for k in tests)
run, want = 0.0, {}
for i, (p, k) in enumerate(ps):
    run = max(run, min(1.0, (len(ps) - i) * p))
    want[k] = run
ok = ok and len(tests) == 4 and all(many[k]["holm_m"] == 4 and abs(many[k]["p_holm"] - want[k]) <= 1e-15 * max(1, want[k]) for k in tests)
ok = ok and all(many[k]["p_holm"] >= many[k]["p_value"] for k in tests)
ok = ok and list(rows[0])[7:] == ["compared_viral_score", "compared_predicted_velocity", "baseline_text_score",
                                  "baseline_numeric_score", "baseline_ridge_velocity", "compared_2_viral_score",
                                  "compared_2_predicted_velocity"]
sys.exit(0 if ok else 1)
PY
    ok "eval: --compare three times (a checkpoint, the baselines, an ablation on its own file): each pair as alone, Holm over the 4 tests"
else bad "eval: several --compare (rc $rc): $(head -c 300 "$W/err")"; fi
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --compare "$W/cmpb" \
    --compare "$W/cmpb" --out "$W/cmpe" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: the same --compare twice refused" "compare $W/cmpb given twice"
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --compare "$W/cmpb" \
    --compare "$W/cmpb/" --out "$W/cmpe" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: two baselines directories refused" "one baselines directory per run"
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --compare "$W/cmpb" \
    --compare-data "$W/dnv.milesdat" --out "$W/cmpe" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --compare-data after a baselines directory refused" "compare-data goes with --compare CHECKPOINT (a file), not"
for i in 1 2 3 4 5 6 7 8 9; do set -- "$@" --compare "$W/x$i"; done
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" "$@" --out "$W/cmpe" > /dev/null 2> "$W/err"
rc=$?
set --
expect_fail "eval: a ninth --compare refused" "compare given more than 8 times"
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q '^usage: miles-eval' "$W/err"; then ok "eval: no --data: usage, exit 2"; else bad "eval: no --data (rc $rc)"; fi
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --compare-data "$W/dnv.milesdat" \
    --out "$W/cmpnv" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --compare-data without --compare CHECKPOINT refused" "goes after the --compare CHECKPOINT it belongs to"
# a checkpoint of another velocity target (min-max): MAE in views/day only, the target space said not compared
"$BIN/miles-eval" --checkpoint "$W/to3/last.safetensors" --data "$W/d.milesdat" --bootstrap 0 --no-plots -q \
    --out "$W/cmpm1" > /dev/null 2>&1
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --bootstrap 0 --no-plots \
    --compare "$W/to3/last.safetensors" --out "$W/cmpm" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -qE "^  checkpoint B, minmax +not compared: the other model's velocity target is not Miles'" "$W/out" &&
   grep -qE '^scored \(checkpoint B\) [0-9]+ rows in ' "$W/err" &&
   python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["comparisons"]["checkpoint"]; o=json.load(open(sys.argv[2])); sys.exit(0 if c["velocity_target"] == "minmax" and isinstance(c["target_space"], str) and c["views_per_day"]["mae_baseline"] == o["velocity_report"]["views_per_day"]["mae"] else 1)' "$W/cmpm/eval_test.json" "$W/cmpm1/eval_test.json"; then
    ok "eval: --compare a min-max checkpoint: views/day MAE paired (its own report's, its scaler), the target space not"
else bad "eval: --compare min-max checkpoint (rc $rc): $(head -c 200 "$W/err")"; fi
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --compare "$CK" --out "$W/cmpe" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --compare with a checkpoint for other data refused naming it" "than $CK was trained with"
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --compare "$W/nothing.safetensors" --out "$W/cmpe" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --compare with a missing path refused naming it" "^miles-eval: --compare $W/nothing.safetensors: No such file or directory"
# refusals, said before any row is scored: an empty directory, a truncated model, a ridge report without 18 coefficients
mkdir -p "$W/cmpx"
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --compare "$W/cmpx" --out "$W/cmpe" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --compare on a directory without baselines refused" "no baseline_text.json, baseline_numeric.json or baseline_ridge_test.json there"
head -c 100 "$W/cmpb/baseline_numeric.json" > "$W/cmpx/baseline_numeric.json"
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --compare "$W/cmpx" --out "$W/cmpe" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --compare with a truncated baseline refused naming it" "$W/cmpx/baseline_numeric.json"
rm "$W/cmpx/baseline_numeric.json"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j["run"]["coef"]=j["run"]["coef"][:17]; json.dump(j,open(sys.argv[2],"w"))' \
    "$W/cmpb/baseline_ridge_test.json" "$W/cmpx/baseline_ridge_test.json"
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --compare "$W/cmpx" --out "$W/cmpe" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --compare with a ridge report of 17 coefficients refused naming the field" "baseline_ridge_test.json: not a ridge baseline report (run.coef is not an array of 18 numbers)"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j["run"]["velocity_clamp"]["applied"]=True; del j["run"]["velocity_clamp"]["max"]; json.dump(j,open(sys.argv[2],"w"))' \
    "$W/cmpb/baseline_ridge_test.json" "$W/cmpx/baseline_ridge_test.json"
"$BIN/miles-eval" --checkpoint "$W/tp/best.safetensors" --data "$W/d.milesdat" --compare "$W/cmpx" --out "$W/cmpe" > /dev/null 2> "$W/err"
rc=$?
expect_fail "eval: --compare with a ridge report whose clamp lacks its max refused naming it" "(run.velocity_clamp.max is not a finite number)"

# ---- miles-predict: CSV cells quoted as RFC 4180 wants, a bad record stops the
# run naming file:line (or is skipped with --skip-bad), --topic reads JSON lines
# as it reads CSV
P="$BIN/miles-predict -c $CK --vocab tests/fixtures/export_vocab -q"
printf 'row_id,title,views,likes\nr1,"Hello, world ""quoted""",100,5\n"r,2",cats are great,2000,30\nr3,bad views,abc,3\nr4,dogs,50,1\n' > "$W/p.csv"
$P "$W/p.csv" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "predict: a bad record stops the run, naming file:line and the column" "p.csv:4: column 'views': 'abc' is not a number"
$P --skip-bad "$W/p.csv" -o "$W/p_out.csv" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "p.csv:4: skipped: column 'views'" "$W/err" && python3 - "$W/p_out.csv" <<'PY'; then
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
ok = [r["id"] for r in rows] == ["r1", "r,2", "r4"] and rows[0]["title"] == 'Hello, world "quoted"'
ok = ok and all(0 <= float(r["viral_score"]) <= 1 for r in rows)
sys.exit(0 if ok else 1)
PY
    ok "predict: --skip-bad names the skipped line; CSV output quotes commas and quotes (3 rows read back)"
else bad "predict: --skip-bad / CSV quoting (rc $rc)"; fi
# a bad value (found when its batch is scored) before a malformed record (found
# when read): the first in file order is named, and --skip-bad reports in order
printf '{"row_id":"r1","title":"a","views":1}\n{"row_id":"r2","title":"b","views":"abc"}\n{"row_id": \n{"row_id":"r4","title":"d","views":4}\n' > "$W/o.jsonl"
$P "$W/o.jsonl" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "predict: JSON lines: a bad value before a malformed line is named first" "o.jsonl:2: column 'views'"
$P --skip-bad "$W/o.jsonl" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && [ "$(grep -o 'o.jsonl:[0-9]*: skipped' "$W/err" | tr '\n' ' ')" = "o.jsonl:2: skipped o.jsonl:3: skipped " ] &&
   [ "$(cut -d, -f1 "$W/out" | tr '\n' ' ')" = "id r1 r4 " ]; then
    ok "predict: JSON lines --skip-bad skips lines 2 and 3 in file order, scores r1 and r4"
else bad "predict: JSON lines --skip-bad order (rc $rc): $(tr '\n' '|' < "$W/err")"; fi
# the summary line counts both (p.csv: 3 scored, line 4 skipped)
"$BIN/miles-predict" -c "$CK" --vocab tests/fixtures/export_vocab --skip-bad "$W/p.csv" -o "$W/p_out.csv" > /dev/null 2> "$W/err"
if grep -qE '^miles-predict: 3 records scored \([0-9]+ viral at threshold [0-9.]+\), 1 skipped; model ' "$W/err"; then
    ok "predict: the summary line counts 3 scored and 1 skipped"
else bad "predict: summary line: $(tail -1 "$W/err")"; fi
# JSON lines found from the first byte behind a UTF-8 BOM and blank space; a line of spaces and a tab is skipped;
# the batch boundary: --batch-size 2 on 2 records leaves an empty last batch
printf '\xef\xbb\xbf \n{"row_id":"r1","title":"a","views":1}\n \t \r\n{"row_id":"r2","title":"b","views":2}\n' > "$W/bom.jsonl"
printf '{"row_id":"r1","title":"a","views":1}\n{"row_id":"r2","title":"b","views":2}\n' > "$W/plain.jsonl"
$P --batch-size 2 "$W/bom.jsonl" > "$W/bom.out" 2> "$W/err"
rc=$?
$P "$W/plain.jsonl" > "$W/plain.out" 2>> "$W/err"
if [ "$rc" -eq 0 ] && [ $? -eq 0 ] && cmp -s "$W/bom.out" "$W/plain.out" && [ "$(wc -l < "$W/bom.out")" -eq 3 ]; then
    ok "predict: JSON lines behind a BOM, with a blank line of spaces and a tab, in batches of 2 = the plain file's scores"
else bad "predict: BOM / blank line / batch boundary (rc $rc): $(head -c 200 "$W/err")"; fi
"$BIN/miles-predict" -c "$CK" > "$W/out" 2> "$W/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q '^usage: miles-predict' "$W/err"; then ok "predict: no input file: usage, exit 2"
else bad "predict: no input file (rc $rc)"; fi
$P --table "$W/c.csv" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "predict: --table without --topic refused" "need --topic"
printf 'row_id,title,views\nr1,a,1\nr2,b,abc\nr3,c,3\nr4,"d,4\n' > "$W/o.csv"
$P "$W/o.csv" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "predict: CSV: a bad value before a malformed record is named first" "o.csv:3: column 'views'"
$P --skip-bad "$W/o.csv" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "predict: CSV --skip-bad: the malformed record still stops the run, after line 3's skip" "o.csv:5:4: unterminated"
grep -q "o.csv:3: skipped" "$W/err" && ok "predict: CSV --skip-bad: line 3 skipped before" || bad "predict: CSV --skip-bad: no skip of line 3"
printf 'row_id,title,views,likes\nr1,"funny cat, video",100,5\nr2,cats are great,2000,30\nr4,dogs and cats,50,1\nr5,cooking pasta,70,2\n' > "$W/c.csv"
printf '\xef\xbb\xbf{"row_id":"r1","title":"funny cat, video","views":100,"likes":5}\n{"row_id":"r2","title":"cats are great","views":2000,"likes":30}\n \t\n{"row_id":"r4","title":"dogs and cats","views":50,"likes":1}\n{"row_id":"r5","title":"cooking pasta","views":70,"likes":2}\n' > "$W/c.jsonl"
$P --topic cat "$W/c.csv" > "$W/t_csv.json" 2> "$W/err" && $P --topic cat "$W/c.jsonl" > "$W/t_jsonl.json" 2>> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$W/t_csv.json" "$W/t_jsonl.json" &&
   python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["records"] == 4 and d["matched"] == 3 else 1)' "$W/t_csv.json"; then
    ok "predict: --topic on JSON lines (a BOM, a blank line among them) gives the CSV candidates' report"
else bad "predict: --topic JSON lines vs CSV (rc $rc)"; fi
printf '{"row_id":"r1","title":"funny cat"}\n{"row_id": \n' > "$W/c_bad.jsonl"
$P --topic cat "$W/c_bad.jsonl" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "predict: --topic on malformed JSON lines names file:line" "c_bad.jsonl:2: not a JSON object"
$P --vibe funny "$W/c.csv" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "predict: --vibe without --topic refused" "need --topic"
$P --topic cat --explain "$W/c.csv" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "predict: --topic with --explain refused" "no --explain"
$P --explain-target logits "$W/c.csv" > "$W/out" 2> "$W/err"
rc=$?
expect_fail "predict: bad --explain-target refused" "explain-target must be prob, logit or velocity"

# ---- the GEMM's selection by environment (MILES_GEMM_ISA, MILES_GEMM): the
# same checkpoint as the default whatever kernel runs, a warning for a value
# that cannot be honoured
F="$T --init random --size tiny --max-steps 3 --batch-size 8 --warmup 1 --bucket --pooling mean --seed 5 --lr 0.001 --head-lr 0.002"
gemm_env() { # NAME ENV... : train with the environment, same bits as "$W/tf", stderr matching $WANT (or empty)
    local name=$1; shift
    env "$@" "$BIN/miles-train" $F --out "$W/tg" > "$W/out" 2> "$W/err"
    local rc=$?
    if [ "$rc" -eq 0 ] && cmp -s "$W/tf/last.safetensors" "$W/tg/last.safetensors" &&
       { if [ -n "$WANT" ]; then grep -qF -- "$WANT" "$W/err"; else [ ! -s "$W/err" ]; fi; }; then ok "gemm: $name"
    else bad "gemm: $name (rc $rc)"; fi
    rm -rf "$W/tg"
}
WANT="" gemm_env "MILES_GEMM_ISA=generic trains the same checkpoint, silently" MILES_GEMM_ISA=generic
WANT="" gemm_env "MILES_GEMM_ISA=avx2 trains the same checkpoint" MILES_GEMM_ISA=avx2
WANT="MILES_GEMM_ISA=sse9 is unknown (avx512, avx2, generic); using " gemm_env "an unknown MILES_GEMM_ISA is named, the default used" MILES_GEMM_ISA=sse9
if grep -qw avx512f /proc/cpuinfo; then
    WANT="" gemm_env "MILES_GEMM_ISA=avx512 on an AVX-512 CPU" MILES_GEMM_ISA=avx512
else
    WANT="MILES_GEMM_ISA=avx512 is not supported by this CPU; using " gemm_env "MILES_GEMM_ISA=avx512 without AVX-512 is refused, the default used" MILES_GEMM_ISA=avx512
fi
WANT="MILES_GEMM=fast is unknown (own, blas); using own" gemm_env "an unknown MILES_GEMM is named, the own GEMM used" MILES_GEMM=fast
"$BIN/miles-train" $F --out "$W/tblas" > /dev/null 2> "$W/err" && MILES_GEMM=blas "$BIN/miles-train" $F --out "$W/tblas2" > /dev/null 2>> "$W/err"
rc=$?
if [ "$rc" -eq 0 ] && [ ! -s "$W/err" ] && [ -s "$W/tblas2/last.safetensors" ]; then ok "gemm: MILES_GEMM=blas trains"
else bad "gemm: MILES_GEMM=blas (rc $rc)"; fi

# ---- an output that is one of the run's inputs is refused before anything is
# written, whatever its spelling (a symlink, another path): the input stays byte
# for byte (it was overwritten: prepare --out data.csv replaced the CSV)
mkdir -p "$W/cl"
cp "$W/d.csv" "$W/cl/d.csv"; cp "$W/p6.milesdat" "$W/cl/p.milesdat"; cp "$W/to6/last.safetensors" "$W/cl/ck.safetensors"
ln -sf d.csv "$W/cl/link.csv"
clobber() { # NAME WANT INPUT-COPY ORIGINAL CMD...: refused naming it, the input unchanged
    local name=$1 want=$2 in=$3 orig=$4; shift 4
    "$@" > /dev/null 2> "$W/err"
    local rc=$?
    if [ "$rc" -ne 0 ] && grep -qF -- "$want" "$W/err" && cmp -s "$in" "$orig"; then ok "clobber: $name"
    else bad "clobber: $name (rc $rc): $(head -c 300 "$W/err")"; fi
}
V="--vocab tests/fixtures/export_vocab --max-len 48 -q"
clobber "prepare --out the input CSV (through a symlink)" "is the input CSV" "$W/cl/d.csv" "$W/d.csv" \
    "$BIN/miles-data" prepare "$W/cl/d.csv" $V --out "$W/cl/link.csv"
clobber "prepare --report the input CSV" "--report $W/cl/./d.csv is the input CSV" "$W/cl/d.csv" "$W/d.csv" \
    "$BIN/miles-data" prepare "$W/cl/d.csv" $V --out "$W/cl/x.milesdat" --report "$W/cl/./d.csv"
clobber "prepare --checkpoint ... --out the checkpoint" "--out $W/cl/ck.safetensors is the checkpoint" \
    "$W/cl/ck.safetensors" "$W/to6/last.safetensors" \
    "$BIN/miles-data" prepare "$W/cl/d.csv" -q --checkpoint "$W/cl/ck.safetensors" --out "$W/cl/ck.safetensors"
rm -f "$W/cl/new.milesdat"
"$BIN/miles-data" prepare "$W/cl/d.csv" $V --out "$W/cl/new.milesdat" --report "$W/cl//new.milesdat" > /dev/null 2> "$W/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "the prepare report $W/cl//new.milesdat is the prepared file" "$W/err" &&
    "$BIN/miles-data" inspect "$W/cl/new.milesdat" > /dev/null 2>&1; then
    ok "clobber: prepare --report spelled as a new --out: the report refused, the prepared file kept"
else bad "clobber: prepare --report = a new --out (rc $rc): $(head -c 300 "$W/err")"; fi
clobber "predict --out the input" "--out $W/cl/../cl/d.csv is the input" "$W/cl/d.csv" "$W/d.csv" \
    "$BIN/miles-predict" -q -c "$W/cl/ck.safetensors" --vocab tests/fixtures/export_vocab --out "$W/cl/../cl/d.csv" "$W/cl/d.csv"
clobber "predict --out the checkpoint" "is the checkpoint" "$W/cl/ck.safetensors" "$W/to6/last.safetensors" \
    "$BIN/miles-predict" -q -c "$W/cl/ck.safetensors" --vocab tests/fixtures/export_vocab --out "$W/cl/ck.safetensors" "$W/cl/d.csv"
clobber "eval --predictions the --data file" "--predictions $W/cl/p.milesdat is the --data file" "$W/cl/p.milesdat" \
    "$W/p6.milesdat" "$BIN/miles-eval" -q -c "$W/cl/ck.safetensors" --data "$W/cl/p.milesdat" --predictions "$W/cl/p.milesdat"
clobber "eval --predictions the checkpoint" "is the checkpoint" "$W/cl/ck.safetensors" "$W/to6/last.safetensors" \
    "$BIN/miles-eval" -q -c "$W/cl/ck.safetensors" --data "$W/cl/p.milesdat" --predictions "$W/cl/ck.safetensors"
clobber "eval --save-calibrated the --data file" "--save-calibrated $W/cl/p.milesdat is the --data file" "$W/cl/p.milesdat" \
    "$W/p6.milesdat" "$BIN/miles-eval" -q -c "$W/cl/ck.safetensors" --data "$W/cl/p.milesdat" --calibrate \
    --save-calibrated "$W/cl/p.milesdat"
clobber "export --force --out the checkpoint" "--out $W/cl/ck.safetensors is the checkpoint" "$W/cl/ck.safetensors" \
    "$W/to6/last.safetensors" "$BIN/miles-export" --checkpoint "$W/cl/ck.safetensors" --format onnx --force \
    --out "$W/cl/ck.safetensors"

# ---- every long option a tool parses (its getopt_long table, or a "--name" it
# compares) is in its --help
for src in tools/miles-*.c; do
    tool=$(basename "$src" .c)
    opts=$( { grep -ohE '\{ *"[a-z0-9-]+", *[a-z0-9_]+,' "$src" | grep -oE '"[a-z0-9-]+"' | tr -d '"' | sed 's/^/--/'
              grep -ohE '"--[a-z0-9-]+"' "$src" | tr -d '"'; } | sort -u)
    "$BIN/$tool" --help > "$W/help" 2> "$W/help_err"
    hrc=$?
    missing=$(for o in $opts; do grep -qE -- "$o([^a-z0-9-]|\$)" "$W/help" || printf '%s ' "$o"; done)
    if [ "$hrc" -ne 0 ] || [ -s "$W/help_err" ]; then bad "$tool --help: exit $hrc, or text on stderr (want 0, stdout)"
    elif [ -n "$opts" ] && [ -z "$missing" ]; then ok "$tool --help lists its $(echo $opts | wc -w) options (stdout, exit 0)"
    else bad "$tool --help: not listed: ${missing:-(no options found in $src)}"; fi
done

echo "test_cli: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
