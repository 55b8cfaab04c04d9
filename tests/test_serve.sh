#!/usr/bin/env bash
# test_serve.sh — HTTP tests of miles-serve on loopback (run by tests/test_serve.c,
# which builds the checkpoint).  Usage: tests/test_serve.sh CHECKPOINT CSV WORKDIR [PART]
# PART: scores (what the server answers and that its bits match miles-predict, alone
# and batched, from a calibrated copy too; what the determinism matrix runs), errors_limits (error statuses,
# limits, access, slow clients, failed starts: a bad checkpoint, a port in use, a
# database that cannot be opened) or all (default).
# Needs curl and python3 (JSON checks).  Exits 1 on any mismatch.
set -u
BIN=${MILES_BIN:-build/bin}
CK=$1
CSV=$2
W=$3/http${4:+_$4}
PART=${4:-all}
part() { [ "$PART" = all ] || [ "$PART" = "$1" ]; }
case $PART in all | scores | errors_limits) ;; *) echo "test_serve.sh: unknown part '$PART'"; exit 2 ;; esac
mkdir -p "$W"
fails=0
passes=0
PID=
PORT=

SLOW_PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; [ -n "$SLOW_PID" ] && kill "$SLOW_PID" 2>/dev/null; }
trap cleanup EXIT

start_server() { # extra args...
    rm -f "$W/port"
    "$BIN/miles-serve" --port 0 --port-file "$W/port" --db "$W/miles.db" -q "$@" >>"$W/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 300); do
        [ -s "$W/port" ] && break
        kill -0 "$PID" 2>/dev/null || { echo "FAIL: server exited at start"; tail -5 "$W/server.log"; exit 1; }
        sleep 0.1
    done
    [ -s "$W/port" ] || { echo "FAIL: server did not start"; exit 1; }
    PORT=$(cat "$W/port")
}

stop_server() { # expects a clean exit 0 after SIGTERM
    kill -TERM "$PID"
    wait "$PID"
    local rc=$?
    PID=
    if [ "$rc" -ne 0 ]; then echo "FAIL: server exit status $rc after SIGTERM"; fails=$((fails + 1)); fi
}

# req METHOD PATH [curl args...] -> CODE, body in $W/body
req() {
    local m=$1 p=$2
    shift 2
    CODE=$(curl -s -o "$W/body" -w '%{http_code}' -X "$m" "http://127.0.0.1:$PORT$p" "$@")
}
# py 'python expression on d (the JSON body)' -> prints it (an exception: "ERROR ...").
# One python answers them all: a python start is ~0.1 s and the script checks ~100 bodies.
coproc PYC { python3 -u -c '
import json, math, sys
for line in sys.stdin:
    path, expr = line.rstrip("\n").split("\t", 1)
    try:
        out = str(eval(expr, {"json": json, "math": math, "d": json.load(open(path))}))
    except Exception as e:
        out = "ERROR %r" % (e,)
    sys.stdout.write(out.replace("\n", " ") + "\n")
'; }
py() { printf '%s\t%s\n' "$W/body" "$1" >&"${PYC[1]}"; local r; IFS= read -r r <&"${PYC[0]}"; printf '%s\n' "$r"; }

ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; echo "     status $CODE body: $(head -c 400 "$W/body")"; }
# expect NAME STATUS [python condition on d]
expect() {
    local name=$1 st=$2 cond=${3:-True}
    if [ "$CODE" != "$st" ]; then bad "$name (want $st)"; return; fi
    if [ "$(py "bool($cond)" 2>/dev/null)" != "True" ]; then bad "$name (condition: $cond)"; return; fi
    ok "$name"
}
json() { printf '%s' "$1" > "$W/req.json"; }

start_server -c "$CK"
# read by both parts
printf '%s\n' '{"id":"yt1","title":"POV: you fixed your sleep","view_count":1250000,"like_count":84000,"comment_count":1320,"duration":42,"upload_date":"20250301","timestamp":1740852000,"channel":"Sleepy","extractor_key":"Youtube","tags":["a"]}' \
              '{"id":"tt1","title":"3 ingredient pasta","view_count":98000,"repost_count":510,"duration":28.4,"upload_date":"20250310","extractor_key":"TikTok"}' > "$W/up.jsonl"

if part scores; then
# ---------------------------------------------------------------- endpoints
req GET /health
expect "GET /health" 200 "d['status']=='healthy' and d['model_loaded'] and d['database']['predictions']==0"
req GET /model/info
expect "GET /model/info" 200 "d['parameters']>0 and len(d['features'])==18 and d['features'][0]['name']=='views' and d['encoder']['num_hidden_layers']==2 and d['tokenizer']['max_len']==32 and 0<=d['decision_threshold']<=1 and d['request_fields']['view_count']=='views' and d['calibration'] is None and d['viral_velocity_threshold']>0 and 'viral_label_cohort_days' not in d and d['creator_avg_views']=='data'"
json '{"title":"I tried the 5am routine for 30 days 😱","description":"d","thumbnail_url":"http://x/t.jpg","view_count":120000,"like_count":9000,"comment_count":310,"duration_seconds":41}'
req POST /predict -H 'Content-Type: application/json' --data-binary @"$W/req.json"
expect "POST /predict" 200 "0<=d['viral_score']<=1 and d['is_viral']==(d['viral_score']>=d['decision_threshold']) and abs(d['confidence']-abs(d['viral_score']-0.5)*2)<1e-12 and 'views' in d['features']['supplied'] and 'duration_sec' in d['features']['supplied'] and 'like_rate' in d['features']['derived'] and 'shares' in d['features']['filled'] and d['model_version'].startswith('run/best.safetensors@') and d['processing_time_ms']>0 and d['stored'] and 'viral_score_model' not in d and 'decision_threshold_calibrated' not in d"
S1=$(py "d['viral_score']")
# the same title with the 18-feature names gives the same score (request-field mapping)
json '{"title":"I tried the 5am routine for 30 days 😱","views":120000,"likes":9000,"comments":310,"duration_sec":41}'
req POST /predict --data-binary @"$W/req.json"
expect "POST /predict with feature names = request fields" 200 "d['viral_score']==$S1"
# U+0000 in a JSON title: dropped by the tokenizer as HF does ("a\u0000b c" = [CLS] ab c [SEP]),
# counted by title_length as Python's len(); the server and miles-predict agree
json '{"title":"a\u0000b c","views":10}'
req POST /predict --data-binary @"$W/req.json"
expect "POST /predict title with U+0000" 200 "0<=d['viral_score']<=1"
SN=$(py "d['viral_score']")
printf '%s\n' '{"title":"a\u0000b c","views":10}' | "$BIN/miles-predict" -q -c "$CK" --output-format jsonl - > "$W/nul.jsonl" \
  || bad "miles-predict on a U+0000 title"
same=$(py "json.loads(open('$W/nul.jsonl').readline())['viral_score']==$SN")
if [ "$same" = True ]; then ok "miles-predict == /predict for a U+0000 title"; else CODE=-; bad "U+0000 title: $same"; fi
json '{"title":"only a title"}'
req POST /predict --data-binary @"$W/req.json"
expect "POST /predict title only (features filled)" 200 "len(d['features']['filled'])>=10 and d['features']['supplied']==[] and 'explanation' not in d"
# ?explain=1: integrated-gradients attributions (docs/explain.md); they add up to f(x) - f(x')
json '{"title":"I tried the 5am routine for 30 days","view_count":120000,"like_count":9000}'
req POST '/predict?explain=1' --data-binary @"$W/req.json"
expect "POST /predict?explain=1" 200 "(e:=d['explanation']) and e['target']=='p_viral' and abs(e['f_input']-d['viral_score'])<1e-5 and [t['token'] for t in e['tokens']][:2]==['i','tried'] and len(e['features'])==18 and all(f['attribution']==0 for f in e['features'] if f.get('filled')) and abs(sum(t['attribution'] for t in e['tokens'])+sum(f['attribution'] for f in e['features'])-(e['f_input']-e['f_baseline'])-e['completeness_error'])<1e-4 and abs(e['completeness_error'])<=0.1*abs(e['f_input']-e['f_baseline'])+1e-3"
json '{"items":[{"title":"a","video_id":"v1","platform":"youtube","view_count":10},{"title":"b","video_id":"v2","platform":"tiktok","view_count":1000000,"like_count":90000},{"title":"c c c","video_id":"v3","platform":"tiktok"}]}'
req POST /predict/batch --data-binary @"$W/req.json"
expect "POST /predict/batch" 200 "d['count']==3 and [r['video_id'] for r in d['results']]==['v1','v2','v3'] and all(0<=r['viral_score']<=1 for r in d['results'])"
# CSV upload (seed schema) and JSON lines (yt-dlp -j) upload
head -n 21 "$CSV" > "$W/up.csv"
req POST /predict/file -H 'Content-Type: text/csv' --data-binary @"$W/up.csv"
expect "POST /predict/file CSV (20 rows)" 200 "d['count']==20"
cp "$W/body" "$W/file_result.json"
# miles-predict on the same rows: one code path, identical scores
"$BIN/miles-predict" -q -c "$CK" "$W/up.csv" --out "$W/pred.jsonl" || bad "miles-predict exit status"
same=$(python3 - "$W/file_result.json" "$W/pred.jsonl" <<'EOF'
import json, math, sys
a = json.load(open(sys.argv[1]))['results']
b = [json.loads(l) for l in open(sys.argv[2])]
print(len(a) == len(b) == 20 and all(x['viral_score'] == y['viral_score'] and x['is_viral'] == y['is_viral'] for x, y in zip(a, b)))
EOF
)
if [ "$same" = True ]; then ok "miles-predict == /predict/file scores (20 rows)"; else CODE=-; bad "miles-predict vs /predict/file: $same"; fi
# miles-predict --explain (docs/explain.md): same scores plus attributions that add up
"$BIN/miles-predict" -q -c "$CK" "$W/up.csv" --explain --explain-target logit > "$W/expl.jsonl" || bad "miles-predict --explain exit status"
same=$(python3 - "$W/pred.jsonl" "$W/expl.jsonl" <<'EOF'
import json, math, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
def okx(x, y):
    e = y['explanation']
    z = math.log(x['viral_score'] / (1 - x['viral_score']))
    s = sum(t['attribution'] for t in e['tokens']) + sum(f['attribution'] for f in e['features'])
    return (x['viral_score'] == y['viral_score'] and e['target'] == 'viral_logit' and abs(e['f_input'] - z) < 1e-3
            and abs(s - (e['f_input'] - e['f_baseline']) - e['completeness_error']) < 1e-4 and len(e['features']) == 18)
print(len(a) == len(b) == 20 and all(okx(x, y) for x, y in zip(a, b)))
EOF
)
if [ "$same" = True ]; then ok "miles-predict --explain (20 rows): same scores, attributions add up"; else CODE=-; bad "miles-predict --explain: $same"; fi
if "$BIN/miles-predict" -q -c "$CK" "$W/up.csv" --explain --output-format csv >/dev/null 2>"$W/expl.err"; then CODE=-; bad "miles-predict --explain accepted CSV output"
else ok "miles-predict --explain refuses CSV output"; fi
# miles-predict: bad row -> exit 1 and no output file (atomic); --skip-bad skips it; JSON lines on stdin
{ head -n 1 "$CSV"; sed -n 2,6p "$CSV"; } > "$W/five.csv"
python3 - "$W/five.csv" "$W/bad.csv" <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8")))
rows[3][rows[0].index("views")] = "lots"
csv.writer(open(sys.argv[2], "w", encoding="utf-8", newline="")).writerows(rows)
PYEOF
rm -f "$W/bad.out"
if "$BIN/miles-predict" -q -c "$CK" "$W/bad.csv" --out "$W/bad.out" 2>"$W/bad.err"; then CODE=-; bad "miles-predict accepted a bad row"
elif [ -e "$W/bad.out" ] || ! grep -q "bad.csv:4: column 'views'" "$W/bad.err"; then CODE=-; bad "miles-predict bad row: $(cat "$W/bad.err")"
else ok "miles-predict: bad row -> exit 1, file:line named, no output file"; fi
n=$("$BIN/miles-predict" -q --skip-bad -c "$CK" "$W/bad.csv" 2>/dev/null | wc -l)
if [ "$n" = 5 ]; then ok "miles-predict --skip-bad (header + 4 rows)"; else CODE=-; bad "miles-predict --skip-bad gave $n lines"; fi
n=$(printf '%s\n' '{"id":"a","title":"x","view_count":5}' '' '{"id":"b","title":"y"}' | "$BIN/miles-predict" -q -c "$CK" - --output-format jsonl | python3 -c 'import json,sys; print([json.loads(l)["id"] for l in sys.stdin])')
if [ "$n" = "['a', 'b']" ]; then ok "miles-predict JSON lines on stdin"; else CODE=-; bad "miles-predict stdin: $n"; fi
req POST /predict/file --data-binary @"$W/up.jsonl"
expect "POST /predict/file yt-dlp JSON lines" 200 "d['count']==2 and 'shares' in d['results'][1]['features']['supplied'] and 'upload_hour' in d['results'][0]['features']['derived'] and 'upload_hour' in d['results'][1]['features']['filled']"
req GET '/history?limit=5'
expect "GET /history?limit=5" 200 "d['count']==5 and d['history'][0]['id']>d['history'][1]['id'] and d['history'][0]['title']=='3 ingredient pasta'"
req GET '/candidates?limit=100'
expect "GET /candidates (ranked)" 200 "d['count']>=25 and all(a['miles_score']>=b['miles_score'] for a,b in zip(d['candidates'],d['candidates'][1:]))"
req GET '/candidates?platform=tiktok'
expect "GET /candidates?platform=tiktok" 200 "d['count']==2 and all(c['platform']=='tiktok' for c in d['candidates'])"
req GET /
if [ "$CODE" = 200 ] && grep -q '<html' "$W/body"; then ok "GET / serves the web page"; else bad "GET / is not the web page"; fi
req GET /app.js
if [ "$CODE" = 200 ] && grep -q 'predict/file' "$W/body"; then ok "GET /app.js"; else bad "GET /app.js"; fi
req GET /../Makefile --path-as-is
if [ "$CODE" = 404 ]; then ok "no path traversal (404)"; else bad "path traversal"; fi
# CORS is off by default (issue 18): no page on another origin may read the history
hdr=$(curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/history" | tr -d '\r' | grep -i '^access-control-allow-origin')
if [ -z "$hdr" ]; then ok "no CORS header by default (/history)"; else CODE=-; bad "CORS header without --cors: $hdr"; fi
hdr=$(curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: http://evil.example' "http://127.0.0.1:$PORT/predict" | tr -d '\r')
if printf '%s' "$hdr" | grep -q '^HTTP/1.1 204' && ! printf '%s' "$hdr" | grep -qi '^access-control-allow'; then
    ok "OPTIONS preflight 204 allows no origin by default"; else CODE=-; bad "OPTIONS preflight: $hdr"; fi

# ---------------------------------------------------------------- concurrency
json '{"title":"same title for everyone","view_count":5000}'
ppids=
for i in $(seq 1 16); do
    curl -s -X POST "http://127.0.0.1:$PORT/predict" --data-binary @"$W/req.json" > "$W/par$i.json" &
    ppids="$ppids $!"
done
wait_ok=1
for j in $ppids; do wait "$j" || wait_ok=0; done
conc=$(python3 - "$W" <<'EOF'
import json, math, sys
# micro-batching puts a request in batches of different shapes; the engine's
# bits do not depend on what else is in the batch (model_infer.c)
s = [json.load(open(f"{sys.argv[1]}/par{i}.json"))['viral_score'] for i in range(1, 17)]
print(max(s) == min(s))
EOF
)
if [ "$conc" = True ] && [ $wait_ok = 1 ]; then ok "16 concurrent /predict: all answered, the same score bit for bit"; else CODE=-; bad "concurrent requests ($conc)"; fi

# ---------------------------------------------------------------- restart: nothing lost
req GET /health
n_pred=$(py "d['database']['predictions']")
n_cand=$(py "d['database']['candidates']")
n_evt=$(py "d['database']['events']")
stop_server
start_server -c "$CK"
req GET /health
expect "store survives a restart ($n_pred predictions, $n_cand candidates, $n_evt events)" 200 \
    "d['database']['predictions']==$n_pred and d['database']['candidates']==$n_cand and d['database']['events']==$n_evt and $n_pred>=44"
req GET '/history?limit=1000'
expect "history after restart lists every prediction" 200 "d['count']==$n_pred"
fi  # part scores

if part errors_limits; then
# slow clients (600 connections trickling header lines, ~10 s) do not starve /health:
# on a server of their own, in the background while the checks below run
MAIN_PID=$PID MAIN_PORT=$PORT
start_server -c "$CK" --no-db --max-conn-per-ip 64 --timeout 3
SLOW_PID=$PID SLOW_PORT=$PORT PID=$MAIN_PID PORT=$MAIN_PORT
python3 tests/serve_slow_clients.py "$SLOW_PORT" > "$W/slow.log" 2>&1 &
SLOW_CHECK=$!

# ---------------------------------------------------------------- errors
json '{"title": "x", '
req POST /predict --data-binary @"$W/req.json"
expect "400 malformed JSON" 400 "d['field']=='body' and 'malformed' in d['error']"
json '{"description":"no title"}'
req POST /predict --data-binary @"$W/req.json"
expect "400 missing title" 400 "d['field']=='title'"
json '{"title":"x","view_count":"lots"}'
req POST /predict --data-binary @"$W/req.json"
expect "400 non-numeric count" 400 "d['field']=='view_count'"
# strict JSON (issue 18): one value, numbers as numbers
json '{"title":"x","view_count":5} trailing'
req POST /predict --data-binary @"$W/req.json"
expect "400 trailing garbage after the object" 400 "d['field']=='body' and 'after the JSON value' in d['error']"
json '{"title":"x"}{"title":"y"}'
req POST /predict --data-binary @"$W/req.json"
expect "400 two objects in one body" 400 "d['field']=='body' and 'second value' in d['error']"
json '{"title":"x","view_count":[5]}'
req POST /predict --data-binary @"$W/req.json"
expect "400 array where a number belongs" 400 "d['field']=='view_count' and 'array' in d['error']"
json '{"title":"x","likes":{"n":5}}'
req POST /predict --data-binary @"$W/req.json"
expect "400 object where a number belongs (feature name)" 400 "d['field']=='likes'"
json '{"title":"x","view_count":"0x10"}'
req POST /predict --data-binary @"$W/req.json"
expect "400 \"0x10\" is not read as 16" 400 "d['field']=='view_count' and '0x10' in d['error']"
json '{"title":"x","views":"0x10"}'
req POST /predict --data-binary @"$W/req.json"
expect "400 \"0x10\" for a feature column" 400 "d['field']=='views'"
json '{"title":"x","upload_hour":"inf"}'
req POST /predict --data-binary @"$W/req.json"
expect "400 \"inf\" string" 400 "d['field']=='upload_hour'"
json '{"title":"x","views":"1e999"}'
req POST /predict --data-binary @"$W/req.json"
expect "400 \"1e999\" (not finite)" 400 "d['field']=='views'"
json '{"title":"x","like_count":"1200","views":" 5e3 "}'
req POST /predict --data-binary @"$W/req.json"
expect "decimal strings still accepted" 200 "'views' in d['features']['supplied']"
json '{"items":[{"title":"a"},{"title":"b","comment_count":[1]}]}'
req POST /predict/batch --data-binary @"$W/req.json"
expect "400 batch: array for a number names the item" 400 "d['field']=='items[1].comment_count'"
json '[{"title":"a"}]'
req POST /predict --data-binary @"$W/req.json"
expect "400 /predict: an array body, not the object" 400 "d['error']=='body: expected a JSON object'"
req POST /predict/batch --data-binary @"$W/req.json"
expect "400 batch: an array body, not {\"items\": [...]}" 400 "d['field']=='items'"
json '{"records":[{"title":"a"}]}'
req POST /predict/batch --data-binary @"$W/req.json"
expect "400 batch: no 'items' field" 400 "d['field']=='items' and 'is required' in d['error']"
json '{"items":[{"title":"a"}]} {"items":[]}'
req POST /predict/batch --data-binary @"$W/req.json"
expect "400 batch: trailing second object" 400 "d['field']=='body'"
printf '%s\n' '{"title":"a","view_count":1}' '{"title":"b","view_count":"0x10"}' > "$W/up_bad.jsonl"
req POST /predict/file --data-binary @"$W/up_bad.jsonl"
expect "400 JSON lines: hex string names line and field" 400 "d['field']=='view_count' and d['error'].startswith('line 2.view_count:')"
# a JSON array upload: the records of the JSON lines above, the same scores
python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])]))' "$W/up.jsonl" > "$W/up_arr.json"
req POST /predict/file --data-binary @"$W/up.jsonl"
cp "$W/body" "$W/body_jsonl"
req POST /predict/file --data-binary @"$W/up_arr.json"
expect "POST /predict/file JSON array = the same records as JSON lines" 200 \
    "d['count']==2 and [(r['video_id'], r['viral_score']) for r in d['results']]==[(r['video_id'], r['viral_score']) for r in json.load(open('$W/body_jsonl'))['results']]"
printf '[{"title":"a"},{"title":"b","view_count":"many"}]' > "$W/up_bad.json"
req POST /predict/file --data-binary @"$W/up_bad.json"
expect "400 JSON array: a bad field names the record" 400 "d['field']=='view_count' and d['error'].startswith('record 2.view_count:')"
printf '[{"title":"a"}, 3]' > "$W/up_bad.json"
req POST /predict/file --data-binary @"$W/up_bad.json"
expect "400 JSON array: a non-object names the record" 400 "d['error']=='record 2: expected a JSON object'"
printf '%s\n' '{"title":"a"} x' > "$W/up_bad.jsonl"
req POST /predict/file --data-binary @"$W/up_bad.jsonl"
expect "400 JSON lines: trailing bytes on a line" 400 "'line 1' in d['error'] and 'after the JSON value' in d['error']"
req GET '/history?limit=5&x=1' ; expect "GET /history with an unknown query parameter" 200
req POST '/predict?explain=maybe' --data-binary '{"title":"x"}'
expect "400 explain=maybe" 400 "d['field']=='explain'"
json '{"title":"x","like_count":-3}'
req POST /predict --data-binary @"$W/req.json"
expect "400 negative count" 400 "d['field']=='like_count'"
printf '{"title":"bad \xff\xfe utf8"}' > "$W/req.json"
req POST /predict --data-binary @"$W/req.json"
expect "400 invalid UTF-8 title" 400 "d['field']=='title' and 'UTF-8' in d['error']"
json '{"title":"x","upload_hour":31}'
req POST /predict --data-binary @"$W/req.json"
expect "400 out-of-range feature" 400 "d['field']=='upload_hour'"
json '{"items":[{"title":"fine"},{"title":"x","comment_count":"?"}]}'
req POST /predict/batch --data-binary @"$W/req.json"
expect "400 batch names the item" 400 "'items[1]' in d['error'] and d['field']=='items[1].comment_count'"
json '{"items":[{"title":"fine"},{"title":"x","views":"12x"}]}'
req POST /predict/batch --data-binary @"$W/req.json"
expect "400 batch, feature-name field" 400 "d['field']=='items[1].views'"
json '{"items":[]}'
req POST /predict/batch --data-binary @"$W/req.json"
expect "400 empty batch" 400 "d['field']=='items'"
req GET '/history?limit=abc'
expect "400 bad limit" 400 "d['field']=='limit'"
req GET /nope
expect "404 unknown path" 404 "'error' in d"
req POST /predict/nope --data-binary '{}'
expect "404 unknown API path" 404
req GET /predict
expect "405 GET /predict" 405 "'POST' in d['error']"
req DELETE /health
expect "405 DELETE /health" 405
python3 -c "print('{\"title\":\"' + 'a'*(2*1024*1024) + '\"}')" > "$W/big.json"
req POST /predict --data-binary @"$W/big.json"
expect "413 body over 1 MiB" 413 "d['field']=='body'"
# the same without a Content-Length (chunked): refused while reading, not after
req POST /predict/file -H 'Transfer-Encoding: chunked' --data-binary @"$W/big.json"
expect "413 chunked body over 1 MiB" 413 "d['field']=='body' and 'larger than 1048576 bytes (--max-body)' in d['error']"
# at the limit: exactly 1048576 bytes pass, one more does not (with and without a Content-Length)
python3 -c "import sys; sys.stdout.write('{\"title\":\"' + 'a'*(1048576-12) + '\"}')" > "$W/edge.json"
python3 -c "import sys; sys.stdout.write('{\"title\":\"' + 'a'*(1048577-12) + '\"}')" > "$W/edge1.json"
[ "$(wc -c < "$W/edge.json")" = 1048576 ] && [ "$(wc -c < "$W/edge1.json")" = 1048577 ] || bad "edge bodies of the wrong size"
req POST /predict --data-binary @"$W/edge.json"
expect "a body of exactly --max-body bytes" 200
req POST /predict --data-binary @"$W/edge1.json"
expect "413 one byte over --max-body" 413 "d['field']=='body'"
req POST /predict -H 'Transfer-Encoding: chunked' --data-binary @"$W/edge.json"
expect "a chunked body of exactly --max-body bytes" 200
req POST /predict -H 'Transfer-Encoding: chunked' --data-binary @"$W/edge1.json"
expect "413 chunked, one byte over --max-body" 413 "d['field']=='body'"
# no --checkpoint: usage, exit 2
"$BIN/miles-serve" --port 0 --no-db > "$W/usage.log" 2>&1
rc=$?
if [ "$rc" = 2 ] && grep -q -i 'usage' "$W/usage.log"; then ok "no --checkpoint: usage, exit 2"
else CODE=$rc; bad "no --checkpoint: exit $rc: $(head -c 200 "$W/usage.log")"; fi

fi  # part errors_limits
stop_server

if part errors_limits; then
# ---------------------------------------------------------------- limits and access (issue 18)
# raw HTTP on a socket: rawreq 'REQUEST BYTES (printf escapes)' SECONDS -> first line of the answer (or "none")
rawreq() {
    python3 - "$PORT" "$1" "$2" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(float(sys.argv[3]))
try:
    data = s.recv(4096).decode("latin-1")
    print(data.split("\r\n")[0] if data else "closed")
except socket.timeout:
    print("none")
EOF
}
start_server -c "$CK" --max-explain 1 --db-busy-ms 300 --cors http://app.example
# 413 from the Content-Length header alone, before any body byte is sent
t0=$(date +%s.%N)
line=$(rawreq "POST /predict HTTP/1.1\r\nHost: 127.0.0.1:$PORT\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n" 3)
dt=$(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $t0 }")
if [[ "$line" == *" 413 "* ]]; then ok "413 on Content-Length before the body (${dt}s)"; else CODE=-; bad "Content-Length 50 MB without a body: '$line'"; fi
# Host checked on a loopback bind (DNS rebinding)
req GET /health -H "Host: evil.example:$PORT"
expect "403 foreign Host on loopback" 403 "d['field']=='host'"
req GET /history -H "Host: localhost:$PORT"
expect "Host localhost:PORT accepted" 200
req GET /health -H "Host: 127.0.0.1:1"
expect "403 Host with another port" 403
# --cors ORIGIN: that origin, on every answer and the preflight
hdr=$(curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/history" | tr -d '\r' | grep -i '^access-control-allow-origin:')
if [ "$hdr" = "Access-Control-Allow-Origin: http://app.example" ]; then ok "--cors ORIGIN sent"; else CODE=-; bad "--cors: '$hdr'"; fi
hdr=$(curl -s -D - -o /dev/null -X OPTIONS "http://127.0.0.1:$PORT/predict" | tr -d '\r' | grep -i '^access-control-allow-headers:')
if [[ "$hdr" == *Authorization* ]]; then ok "--cors preflight allows Authorization"; else CODE=-; bad "preflight: '$hdr'"; fi
# --max-explain 1: a client holding an explanation (body not sent yet) -> the next one 503 + Retry-After
hold_explain() {   # a client that takes the explain slot for 2.5 s; HOLD: its pid
  rm -f "$W/holding"
  python3 - "$PORT" "$W" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /predict?explain=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 20\r\n\r\n{\"ti" % int(sys.argv[1]))
open(sys.argv[2] + "/holding", "w").close()
time.sleep(2.5)
s.close()
EOF
  HOLD=$!
  for _ in $(seq 1 50); do [ -e "$W/holding" ] && break; sleep 0.05; done
  sleep 0.2
}
rm -f "$W/locked"
hold_explain
json '{"title":"explain me"}'
CODE=$(curl -s -D "$W/hdr" -o "$W/body" -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/predict?explain=1" --data-binary @"$W/req.json")
expect "503 over --max-explain" 503 "d['field']=='explain'"
if grep -qi '^retry-after: 1' "$W/hdr"; then ok "503 carries Retry-After"; else CODE=-; bad "no Retry-After"; fi
req POST /predict --data-binary @"$W/req.json"
expect "plain /predict unaffected by the explain limit" 200
wait $HOLD
sleep 0.3
req POST '/predict?explain=1' --data-binary @"$W/req.json"
expect "explain slot free again after the client left" 200 "'explanation' in d"
# the count is exact after a refusal, a departure and an answer: one slot, not none or two
hold_explain
req POST '/predict?explain=1' --data-binary @"$W/req.json"
expect "still one explain slot: a second holder is refused" 503 "d['field']=='explain'"
wait $HOLD
# a locked database: 503 + Retry-After, never 200 with "stored": false; stored once unlocked
req GET /health
n0=$(py "d['database']['predictions']")
python3 - "$W/miles.db" "$W" <<'EOF' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2] + "/locked", "w").close()
time.sleep(2)
c.execute("ROLLBACK")
EOF
LOCK=$!
for _ in $(seq 1 50); do [ -e "$W/locked" ] && break; sleep 0.05; done
json '{"title":"while locked","video_id":"lock1"}'
CODE=$(curl -s -D "$W/hdr" -o "$W/body" -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/predict" --data-binary @"$W/req.json")
expect "503 when the database is locked" 503 "'not stored' in d['error']"
if grep -qi '^retry-after:' "$W/hdr"; then ok "locked database: Retry-After"; else CODE=-; bad "locked database: no Retry-After"; fi
wait $LOCK
req POST /predict --data-binary @"$W/req.json"
expect "stored once the lock is gone" 200 "d['stored']"
req GET /health
expect "exactly one row more after the lock" 200 "d['database']['predictions']==$n0+1"
stop_server
# bearer token: needed on state-changing and history routes, not on /health
printf 'abcdefghijklmnop0123456789\n' > "$W/token"
start_server -c "$CK" --token-file "$W/token"
req POST /predict --data-binary '{"title":"x"}'
expect "401 /predict without a token" 401 "d['field']=='authorization'"
req GET /history
expect "401 /history without a token" 401
req POST /predict -H 'Authorization: Bearer abcdefghijklmnop012345678X' --data-binary '{"title":"x"}'
expect "401 wrong token" 401
req POST /predict -H 'Authorization: Bearer abcdefghijklmnop0123456789' --data-binary '{"title":"x"}'
expect "200 with the token" 200
req GET /candidates -H 'Authorization: Bearer abcdefghijklmnop0123456789'
expect "200 /candidates with the token" 200
req GET /health
expect "/health needs no token" 200
req GET /
if [ "$CODE" = 200 ]; then ok "web page needs no token"; else bad "web page with --token-file"; fi
stop_server
# off loopback without a token: refuses to start, naming the flag
if "$BIN/miles-serve" -c "$CK" --host 0.0.0.0 --port 0 --no-db > "$W/noauth.log" 2>&1; then CODE=-; bad "started on 0.0.0.0 without --token-file"
elif grep -q -- '--token-file' "$W/noauth.log"; then ok "non-loopback bind without a token refused: $(head -c 90 "$W/noauth.log")..."
else CODE=-; bad "refusal message: $(cat "$W/noauth.log")"; fi
printf 'short\n' > "$W/token"
if "$BIN/miles-serve" -c "$CK" --token-file "$W/token" --port 0 --no-db > "$W/noauth.log" 2>&1; then CODE=-; bad "accepted a 5-character token"
else ok "short token refused"; fi
# a stray positional argument (a mistyped option value): usage on stderr, exit 2, nothing started
"$BIN/miles-serve" -c "$CK" --port 0 --no-db stray > "$W/usage.log" 2>&1
rc=$?
if [ "$rc" = 2 ] && grep -q -i 'usage' "$W/usage.log"; then ok "a stray argument: usage, exit 2"
else CODE=$rc; bad "a stray argument: exit $rc: $(head -c 200 "$W/usage.log")"; fi
fi  # part errors_limits

if part scores; then
# ---------------------------------------------------------------- suspended connections
# Scoring jobs suspend their connection until the inference thread is done
# (no worker waits on the model): 12 concurrent requests, batched however they
# arrive, answer exactly what each title gets alone; clients that hang up
# while queued (explanations take long) do not keep the server from exiting.
start_server -c "$CK" --no-db
for i in $(seq 1 12); do
    printf '{"title":"concurrent title number %d about cats","view_count":%d,"like_count":%d}' "$i" $((1000 * i)) $((7 * i)) > "$W/c$i.json"
done
for i in $(seq 1 12); do
    curl -s -o "$W/c$i.out" -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/predict" --data-binary @"$W/c$i.json" > "$W/c$i.code" &
    cpids="${cpids:-} $!"
done
wait $cpids
same=0
for i in $(seq 1 12); do
    req POST /predict --data-binary @"$W/c$i.json"
    if [ "$(cat "$W/c$i.code")" = 200 ] && [ "$CODE" = 200 ] && \
       [ "$(py "[(a['viral_score'], a['predicted_velocity']) for a in [json.load(open('$W/c$i.out'))]]==[(d['viral_score'], d['predicted_velocity'])]")" = True ]; then
        same=$((same + 1))
    fi
done
req GET /health
if [ "$same" = 12 ]; then ok "12 concurrent requests = the same titles alone, bit for bit ($(py "'%d predictions in %d forward batches' % (d['predictions'], d['forward_batches'])"))"
else CODE=-; bad "concurrent vs alone: $same of 12 identical"; fi
for i in $(seq 1 2); do
    curl -s -o /dev/null --max-time 0.05 -X POST "http://127.0.0.1:$PORT/predict?explain=1" --data-binary @"$W/c$i.json" &
    apids="${apids:-} $!"
done
for i in $(seq 1 30); do
    curl -s -o /dev/null --max-time 0.1 -X POST "http://127.0.0.1:$PORT/predict" --data-binary @"$W/c$((i % 12 + 1)).json" &
    apids="${apids:-} $!"
done
wait $apids
sleep 0.2
kill -TERM "$PID"
for _ in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then CODE=-; bad "server still running 30 s after SIGTERM with abandoned requests"; kill -9 "$PID"; wait "$PID"
else wait "$PID"; rc=$?; if [ "$rc" = 0 ]; then ok "abandoned requests: clean exit after SIGTERM"; else CODE=-; bad "exit status $rc after SIGTERM"; fi; fi
PID=

# ---------------------------------------------------------------- a calibrated checkpoint
# (miles-eval --calibrate --save-calibrated on the training data): viral_score is the Platt map
# of the model's own score, which viral_score_model keeps (the uncalibrated server's, bit for
# bit); the decision stays on the model's score; miles-predict answers the same bits
DATA=$3/data.milesdat
"$BIN/miles-eval" -c "$CK" --data "$DATA" --calibrate --save-calibrated "$W/cal.safetensors" --bootstrap 0 --no-plots \
    -q --out "$W/cal" > /dev/null 2> "$W/cal.err" || { CODE=-; bad "miles-eval --save-calibrated: $(head -c 200 "$W/cal.err")"; }
json '{"title":"I tried the 5am routine for 30 days 😱","view_count":120000,"like_count":9000,"comment_count":310}'
start_server -c "$CK" --no-db
req POST /predict --data-binary @"$W/req.json"
S0=$(py "repr(d['viral_score'])")
stop_server
start_server -c "$W/cal.safetensors" --no-db
req GET /model/info
expect "calibrated: GET /model/info lists the map" 200 "d['calibration']['method']=='platt' and d['calibration']['a']>0 and abs(d['calibration']['decision_threshold_calibrated']-1/(1+math.exp(-(d['calibration']['a']*math.log(d['decision_threshold']/(1-d['decision_threshold']))+d['calibration']['b']))))<1e-15"
A=$(py "repr(d['calibration']['a'])")
B=$(py "repr(d['calibration']['b'])")
req POST /predict --data-binary @"$W/req.json"
expect "calibrated: POST /predict answers sigma(a logit(p) + b) of the model's score, decides on the model's" 200 \
    "d['viral_score_model']==$S0 and abs(d['viral_score']-1/(1+math.exp(-($A*math.log($S0/(1-$S0))+$B))))<1e-15 and d['is_viral']==($S0>=d['decision_threshold']) and d['viral_score']!=$S0 and abs(d['decision_threshold_calibrated']-1/(1+math.exp(-($A*math.log(d['decision_threshold']/(1-d['decision_threshold']))+$B))))<1e-15"
SC=$(py "repr(d['viral_score'])")
"$BIN/miles-predict" -q -c "$W/cal.safetensors" --output-format jsonl "$W/req.json" > "$W/cal.jsonl" 2>> "$W/cal.err" || bad "miles-predict on the calibrated checkpoint"
same=$(py "[json.loads(open('$W/cal.jsonl').readline())[k] for k in ('viral_score', 'viral_score_model')]==[$SC, $S0]")
if [ "$same" = True ]; then ok "calibrated: miles-predict == /predict, both scores bit for bit"; else CODE=-; bad "calibrated: miles-predict vs /predict: $same"; fi
stop_server
# a checkpoint whose label ranked each video within its publish cohort: no one velocity threshold;
# its creator_avg_views from the creator's earlier videos (what a request should send)
if "$BIN/miles-train" --csv "$CSV" --language any --threshold-scope cohort --cohort-days 14 --creator-avg prior \
    --init random --size tiny \
    --vocab tests/fixtures/tokenizer_vocab.txt --max-len 32 --max-steps 1 --batch-size 8 --threads 1 --quiet \
    --out "$W/cohort" > /dev/null 2> "$W/cohort.err"; then
    start_server -c "$W/cohort/last.safetensors" --no-db
    req GET /model/info
    expect "cohort label: GET /model/info has no single threshold, the cohort's window; data_split the training rows' split; creator_avg_views prior" 200 \
        "d['viral_velocity_threshold'] is None and d['viral_label_cohort_days']==14 and d['creator_avg_views']=='prior' and d['data_split']=={'by': 'row', 'seed': 42, 'train_frac': 0.7, 'language': 'any', 'dedup': False}"
    stop_server
else CODE=-; bad "miles-train --threshold-scope cohort: $(head -c 200 "$W/cohort.err")"; fi
fi  # part scores

if part errors_limits; then
# ---------------------------------------------------------------- 503: model not loaded
start_server -c "$W/does-not-exist.safetensors" --lazy --db "$W/lazy.db"
sleep 0.3
req GET /health
expect "GET /health while the model failed to load" 200 "d['status']=='error' and not d['model_loaded']"
req POST /predict --data-binary '{"title":"x"}'
expect "503 model not loaded" 503 "'not loaded' in d['error']"
req GET /model/info
expect "503 /model/info" 503
stop_server

# a start that fails (checkpoint not loadable, non-lazy) leaves no database it created; one that existed stays
printf 'garbage!' > "$W/bad.safetensors"
rm -f "$W"/fail.db*
if "$BIN/miles-serve" -q -c "$W/bad.safetensors" --port 0 --db "$W/fail.db" 2>"$W/fail.err"; then CODE=-; bad "miles-serve started on a bad checkpoint"
elif ls "$W"/fail.db* >/dev/null 2>&1; then CODE=-; bad "failed start left $(ls "$W"/fail.db*)"
elif ! grep -q "bad.safetensors" "$W/fail.err"; then CODE=-; bad "failed start does not name the checkpoint: $(cat "$W/fail.err")"
else ok "failed start: exit 1, checkpoint named, no database left behind"; fi
: > "$W/keep.db"
"$BIN/miles-serve" -q -c "$W/bad.safetensors" --port 0 --db "$W/keep.db" 2>/dev/null
if [ -e "$W/keep.db" ]; then ok "failed start keeps a database that existed"; else CODE=-; bad "failed start removed an existing database"; fi
# a port another program listens on: exit 1 naming host:port, no database left
python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(60)' > "$W/busy.port" &
BUSY=$!
for _ in $(seq 1 100); do [ -s "$W/busy.port" ] && break; sleep 0.05; done
BPORT=$(cat "$W/busy.port")
rm -f "$W"/busy.db*
"$BIN/miles-serve" -q -c "$CK" --port "$BPORT" --db "$W/busy.db" 2> "$W/busy.err" &
SRV=$!
( sleep 20; kill "$SRV" 2>/dev/null ) &
WD=$!
wait "$SRV"
brc=$?
kill "$WD" "$BUSY" 2>/dev/null; wait "$BUSY" "$WD" 2>/dev/null
if [ "$brc" -eq 1 ] && grep -q "cannot listen on 127.0.0.1:$BPORT: Address already in use" "$W/busy.err" &&
   ! ls "$W"/busy.db* > /dev/null 2>&1; then ok "a port in use: exit 1, host:port named, no database left"
else CODE=-; bad "port in use: rc $brc, $(cat "$W/busy.err"), $(ls "$W"/busy.db* 2>/dev/null)"; fi
# a database that cannot be created: exit 1 naming it
if "$BIN/miles-serve" -q -c "$CK" --port 0 --db "$W/no/such/dir/miles.db" 2> "$W/db.err"; then CODE=-; bad "started without its database"
elif grep -q "no/such/dir/miles.db: cannot open database" "$W/db.err"; then ok "a database that cannot be opened: exit 1, named"
else CODE=-; bad "database refusal: $(cat "$W/db.err")"; fi

# the slow clients, started before the errors
if wait "$SLOW_CHECK"; then ok "slow clients: $(tail -1 "$W/slow.log")"
else CODE=-; bad "slow clients: $(tail -3 "$W/slow.log")"; fi
PID=$SLOW_PID SLOW_PID=
stop_server
fi  # part errors_limits

# a sanitizer build of the server reports here (leaks are printed at exit)
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$W/server.log"; then
    CODE=-; bad "sanitizer report in $W/server.log"; grep -E -A5 'Sanitizer|runtime error' "$W/server.log" | head -20
else ok "no sanitizer reports from the server"; fi

echo "test_serve.sh: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
