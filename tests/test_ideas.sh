#!/usr/bin/env bash
# test_ideas.sh — miles-predict --topic and miles-serve's /topic and /ideas, with
# a mock LLM endpoint (tests/mock_llm.py).  Run by tests/test_ideas.c, which
# builds the checkpoint.  Usage: tests/test_ideas.sh CHECKPOINT WORKDIR
set -u
BIN=${MILES_BIN:-build/bin}
CK=$1
W=$2/ideas_sh
FIX=tests/fixtures/ideas_candidates.csv
mkdir -p "$W"
fails=0
passes=0
PID=
MPID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; [ -n "$MPID" ] && kill "$MPID" 2>/dev/null; }
trap cleanup EXIT
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; echo "     $(head -c 400 "$W/out")"; }
# check NAME 'python condition on d (JSON in $W/out)'
check() { if python3 -c "import json,sys; d=json.load(open('$W/out')); sys.exit(0 if ($2) else 1)" 2>/dev/null; then ok "$1"; else bad "$1"; fi; }

# the mock LLM
python3 tests/mock_llm.py "$W/mport" &
MPID=$!
for _ in $(seq 1 100); do [ -s "$W/mport" ] && break; sleep 0.1; done
M="http://127.0.0.1:$(cat "$W/mport")"

# ---- CLI
"$BIN/miles-predict" -c "$CK" --topic ramen "$FIX" > "$W/out" 2> "$W/err"
check "cli: --topic ramen: 6 of 15, patterns" \
  "d['matched']==6 and d['records']==15 and d['patterns']['avg_title_length']==34.5 and d['patterns']['avg_duration']==41.5 and d['patterns']['top_words'][0]=={'word':'ramen','count':6}"
check "cli: ranked best first" "all(a['viral_score']>=b['viral_score'] for a,b in zip(d['top_candidates'],d['top_candidates'][1:]))"
check "cli: suggestions above the draft (the top candidate)" \
  "d['suggestions']['draft_source']=='top candidate' and d['suggestions']['draft']==d['top_candidates'][0]['title'] and all(i['viral_score']>d['suggestions']['draft_score'] for i in d['suggestions']['items'])"
check "cli: 18 feature attributions" "len(d['attributions']['features'])==18 and d['attributions']['explained']==5"
cp "$W/out" "$W/first.json"
"$BIN/miles-predict" -c "$CK" --topic ramen "$FIX" > "$W/out" 2>/dev/null
if cmp -s "$W/out" "$W/first.json"; then ok "cli: deterministic"; else bad "cli: deterministic"; fi
"$BIN/miles-predict" -c "$CK" --topic ramen --draft "late night ramen" --seed 3 --table "$FIX" > "$W/out" 2>&1
if grep -q 'topic "ramen": 6 of 15 candidates match' "$W/out" && grep -q 'suggestions for "late night ramen" (given' "$W/out"; then ok "cli: --table"; else bad "cli: --table"; fi
"$BIN/miles-predict" -c "$CK" --topic ramen --vibe sad "$FIX" > "$W/out" 2>&1
rc=$?; if [ $rc -eq 2 ] && grep -q "vibe must be" "$W/out"; then ok "cli: bad vibe -> 2"; else bad "cli: bad vibe -> 2 (got $rc)"; fi
"$BIN/miles-predict" -c "$CK" --topic ramen --vibe funny --llm-endpoint "$M/valid" "$FIX" > "$W/out" 2> "$W/err"
check "cli: LLM ideas, each scored" "len(d['ideas'])==3 and d['ideas'][1]['title']=='POV: ramen at 3am' and all(0<=i['viral_score']<=1 for i in d['ideas'])"
if python3 -c "import json; b=json.load(open('$W/mport.req')); p=b['messages'][0]['content']; assert 'ramen' in p and 'Desired vibe: funny' in p and 'average title length: 34' in p" 2>/dev/null; then ok "cli: prompt has topic, vibe, patterns"; else bad "cli: prompt"; fi
for m in bad:malformed 500:"HTTP 500" slow:"timed out"; do
    "$BIN/miles-predict" -c "$CK" --topic ramen --llm-endpoint "$M/${m%%:*}" --llm-timeout 500 "$FIX" > "$W/out" 2>&1
    rc=$?; if [ $rc -eq 1 ] && grep -q "${m#*:}" "$W/out"; then ok "cli: LLM ${m%%:*} -> clear error"; else bad "cli: LLM ${m%%:*} (rc $rc)"; fi
done

# ---- server
rm -f "$W/port"
"$BIN/miles-serve" -c "$CK" --port 0 --port-file "$W/port" --db "$W/m.db" -q --llm-endpoint "$M/valid" > "$W/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do [ -s "$W/port" ] && break; sleep 0.1; done
U="http://127.0.0.1:$(cat "$W/port")"
req() { CODE=$(curl -s -o "$W/out" -w '%{http_code}' "$@"); }
req -X POST --data-binary @"$FIX" "$U/predict/file"
[ "$CODE" = 200 ] && ok "serve: candidates stored" || bad "serve: candidates stored ($CODE)"
req "$U/topic?q=ramen&limit=3"
check "serve: GET /topic" "d['matched']==6 and len(d['top_candidates'])==3 and d['candidates_from']=='store' and 'suggestions' not in d and d['patterns']['avg_duration']==41.5"
req -X POST -H 'Content-Type: application/json' -d '{"topic":"ramen","vibe":"funny","draft":"my ramen night","seed":1}' "$U/ideas"
check "serve: POST /ideas: suggestions + scored LLM ideas" \
  "d['suggestions']['draft']=='my ramen night' and all(i['viral_score']>d['suggestions']['draft_score'] for i in d['suggestions']['items']) and len(d['ideas'])==3 and all('viral_score' in i for i in d['ideas'])"
req -X POST -d '{"topic":"tacos","items":[{"title":"Street tacos at home","view_count":1000},{"title":"Taco tuesday hack"}]}' "$U/ideas"
check "serve: POST /ideas with items" "d['candidates_from']=='items' and d['records']==2 and d['matched']==2"
req -X POST -d '{"topic":"ramen","vibe":"sad"}' "$U/ideas"
[ "$CODE" = 400 ] && check "serve: bad vibe -> 400" "'vibe' in d['error']" || bad "serve: bad vibe -> 400 ($CODE)"
req "$U/topic"
[ "$CODE" = 400 ] && ok "serve: /topic without q -> 400" || bad "serve: /topic without q ($CODE)"
req -X POST -d '{"topic":"x","items":[{"title":"a","view_count":-1}]}' "$U/ideas"
[ "$CODE" = 400 ] && check "serve: bad item names it" "d['error'].startswith('items[0]')" || bad "serve: bad item ($CODE)"
req -X GET "$U/ideas"
[ "$CODE" = 405 ] && ok "serve: GET /ideas -> 405" || bad "serve: GET /ideas ($CODE)"
# the request's fields, each refused naming it; a draft given as an object with stats
req -X POST -d '{"topic":"tacos","items":[{"title":"dog"},{"title":"tacos","view_count":"lots"}]}' "$U/ideas"
[ "$CODE" = 400 ] && check "serve: the second item's bad value names items[1]" "d['error'].startswith('items[1].view_count')" || bad "serve: items[1] ($CODE)"
req "$U/topic?q=ramen&limit=0"
[ "$CODE" = 400 ] && check "serve: /topic limit=0 -> 400" "d['error'].startswith('limit:')" || bad "serve: limit=0 ($CODE)"
req -X POST -d '{"topic":"ramen","seed":-1}' "$U/ideas"
[ "$CODE" = 400 ] && check "serve: seed -1 -> 400" "d['error'].startswith('seed:')" || bad "serve: seed -1 ($CODE)"
req -X POST -d '{"topic":"ramen","draft":5}' "$U/ideas"
[ "$CODE" = 400 ] && check "serve: draft 5 -> 400" "d['error'].startswith('draft:')" || bad "serve: draft 5 ($CODE)"
req -X POST -d '{"topic":"ramen","draft":{"view_count":5}}' "$U/ideas"
[ "$CODE" = 400 ] && check "serve: draft without a title -> 400" "d['error'].startswith('draft.title:')" || bad "serve: draft without title ($CODE)"
req -X POST -d '{"topic":"ramen","draft":"my ramen night","seed":1}' "$U/ideas"
cp "$W/out" "$W/draft_title.json"
req -X POST -d '{"topic":"ramen","draft":{"title":"my ramen night","view_count":50000,"like_count":900},"seed":1}' "$U/ideas"
check "serve: a draft with stats is scored with them (another score than the bare title's)" \
  "d['suggestions']['draft']=='my ramen night' and d['suggestions']['draft_source']=='given' and d['suggestions']['draft_score'] != json.load(open('$W/draft_title.json'))['suggestions']['draft_score']"
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=
if [ $rc -eq 0 ] && ! grep -q "Sanitizer" "$W/server.log"; then ok "serve: clean exit after SIGTERM"; else
    fails=$((fails + 1)); echo "FAIL serve: exit status $rc after SIGTERM"; tail -5 "$W/server.log"; fi
# without a database the store's candidates do not exist: 503 saying to send items
rm -f "$W/port"
"$BIN/miles-serve" -c "$CK" --port 0 --port-file "$W/port" --no-db -q > "$W/server2.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do [ -s "$W/port" ] && break; sleep 0.1; done
U="http://127.0.0.1:$(cat "$W/port")"
req "$U/topic?q=ramen"
[ "$CODE" = 503 ] && check "serve --no-db: /topic -> 503, send items" "'send the candidates as \"items\"' in d['error']" || bad "serve --no-db: /topic ($CODE)"
kill -TERM "$PID"; wait "$PID"; PID=
echo "test_ideas.sh: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
