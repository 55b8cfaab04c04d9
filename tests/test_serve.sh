#!/usr/bin/env bash
# test_serve.sh — HTTP tests of miles-serve on loopback (run by tests/test_serve.c,
# which builds the checkpoint).  Usage: tests/test_serve.sh CHECKPOINT CSV WORKDIR
# Needs curl and python3 (JSON checks).  Exits 1 on any mismatch.
set -u
BIN=${MILES_BIN:-build/bin}
CK=$1
CSV=$2
W=$3/http
mkdir -p "$W"
fails=0
passes=0
PID=
PORT=

cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; }
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
# py 'python expression on d (the JSON body)' -> prints it
py() { python3 -c "import json,sys; d=json.load(open('$W/body')); print($1)"; }

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

# ---------------------------------------------------------------- endpoints
req GET /health
expect "GET /health" 200 "d['status']=='healthy' and d['model_loaded'] and d['database']['predictions']==0"
req GET /model/info
expect "GET /model/info" 200 "d['parameters']>0 and len(d['features'])==18 and d['features'][0]['name']=='views' and d['encoder']['num_hidden_layers']==2 and d['tokenizer']['max_len']==32 and 0<=d['decision_threshold']<=1 and d['request_fields']['view_count']=='views'"
json '{"title":"I tried the 5am routine for 30 days 😱","description":"d","thumbnail_url":"http://x/t.jpg","view_count":120000,"like_count":9000,"comment_count":310,"duration_seconds":41}'
req POST /predict -H 'Content-Type: application/json' --data-binary @"$W/req.json"
expect "POST /predict" 200 "0<=d['viral_score']<=1 and d['is_viral']==(d['viral_score']>=d['decision_threshold']) and abs(d['confidence']-abs(d['viral_score']-0.5)*2)<1e-12 and 'views' in d['features']['supplied'] and 'duration_sec' in d['features']['supplied'] and 'like_rate' in d['features']['derived'] and 'shares' in d['features']['filled'] and d['model_version'].startswith('run/best.safetensors@') and d['processing_time_ms']>0 and d['stored']"
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
same=$(python3 -c "import json; print(json.loads(open('$W/nul.jsonl').readline())['viral_score']==$SN)")
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
import json, sys
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
printf '%s\n' '{"id":"yt1","title":"POV: you fixed your sleep","view_count":1250000,"like_count":84000,"comment_count":1320,"duration":42,"upload_date":"20250301","timestamp":1740852000,"channel":"Sleepy","extractor_key":"Youtube","tags":["a"]}' \
              '{"id":"tt1","title":"3 ingredient pasta","view_count":98000,"repost_count":510,"duration":28.4,"upload_date":"20250310","extractor_key":"TikTok"}' > "$W/up.jsonl"
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
hdr=$(curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/health" | tr -d '\r' | grep -i '^access-control-allow-origin: \*')
if [ -n "$hdr" ]; then ok "CORS header"; else CODE=-; bad "no CORS header"; fi
req OPTIONS /predict
if [ "$CODE" = 204 ]; then ok "OPTIONS preflight 204"; else bad "OPTIONS preflight"; fi

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

# ---------------------------------------------------------------- concurrency
json '{"title":"same title for everyone","view_count":5000}'
for i in $(seq 1 16); do
    curl -s -X POST "http://127.0.0.1:$PORT/predict" --data-binary @"$W/req.json" > "$W/par$i.json" &
done
wait_ok=1
for j in $(jobs -p); do [ "$j" != "$PID" ] && { wait "$j" || wait_ok=0; }; done
conc=$(python3 - "$W" <<'EOF'
import json, sys
# micro-batching puts a request in batches of different shapes: float summation
# order may differ in the 7th digit, nothing more
s = [json.load(open(f"{sys.argv[1]}/par{i}.json"))['viral_score'] for i in range(1, 17)]
print(max(s) - min(s) < 1e-5)
EOF
)
if [ "$conc" = True ] && [ $wait_ok = 1 ]; then ok "16 concurrent /predict: all answered, scores agree within 1e-5"; else CODE=-; bad "concurrent requests ($conc)"; fi

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
stop_server

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

# a sanitizer build of the server reports here (leaks are printed at exit)
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$W/server.log"; then
    CODE=-; bad "sanitizer report in $W/server.log"; grep -E -A5 'Sanitizer|runtime error' "$W/server.log" | head -20
else ok "no sanitizer reports from the server"; fi

echo "test_serve.sh: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
