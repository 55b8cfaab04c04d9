#!/usr/bin/env bash
# bench_serve.sh — throughput and latency of miles-serve POST /predict (single titles)
# under wrk on loopback, with RSS before/after (memory must stay flat).
#
#   bench/bench_serve.sh CHECKPOINT [DURATION_S=30] [WRK_THREADS=2] [CONNECTIONS=8]
#
# Env: MILES_BIN (default build/bin), SERVE_ARGS (extra miles-serve options,
# e.g. "--threads 2 --no-db"), TASKSET (e.g. "0-1": pin the server to these CPUs).
# Prints one summary line and exits non-zero if any request failed.
set -eu
CK=${1:?usage: bench/bench_serve.sh CHECKPOINT [DURATION_S] [WRK_THREADS] [CONNECTIONS]}
DUR=${2:-30}
WT=${3:-2}
CONN=${4:-8}
BIN=${MILES_BIN:-build/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "bench_serve: wrk not found (apt-get install wrk)"; exit 2; }
W=$(mktemp -d /tmp/miles_bench_serve.XXXXXX)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$W"' EXIT

PIN=
[ -n "${TASKSET:-}" ] && PIN="taskset -c $TASKSET"
# shellcheck disable=SC2086
$PIN "$BIN/miles-serve" -c "$CK" --port 0 --port-file "$W/port" --db "$W/bench.db" -q ${SERVE_ARGS:-} 2>"$W/server.log" &
PID=$!
for _ in $(seq 1 600); do [ -s "$W/port" ] && break; kill -0 $PID 2>/dev/null || { cat "$W/server.log"; exit 1; }; sleep 0.1; done
PORT=$(cat "$W/port")
URL="http://127.0.0.1:$PORT"
rss() { awk '/VmRSS/ {print $2}' /proc/$PID/status; }
# CPU seconds (user+system) the server has used: the machine may be shared, so the
# CPU cost per request is the number that transfers to dedicated cores
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' /proc/$PID/stat; }

# warm-up (first forward passes allocate their buffers), then measure
wrk -t1 -c2 -d3s -s "$HERE/bench_serve.lua" "$URL" >/dev/null
RSS0=$(rss)
CPU0=$(cpu_s)
OUT=$(wrk -t"$WT" -c"$CONN" -d"${DUR}s" --timeout 10s -s "$HERE/bench_serve.lua" "$URL")
RSS1=$(rss)
CPU1=$(cpu_s)
HEALTH=$(curl -s "$URL/health")
kill -TERM $PID; wait $PID || true; PID=

LINE=$(printf '%s\n' "$OUT" | grep '^BENCH')
echo "$OUT" | grep -E 'Latency|Req/Sec|requests in|Non-2xx' || true
REQS=$(printf '%s\n' "$LINE" | sed 's/.*requests=\([0-9]*\).*/\1/')
CPUREQ=$(awk -v a="$CPU0" -v b="$CPU1" -v n="$REQS" 'BEGIN { printf "%.2f", 1000 * (b - a) / (n > 0 ? n : 1) }')
CAP1=$(awk -v c="$CPUREQ" 'BEGIN { printf "%.0f", (c + 0 > 0) ? 1000 / c : 0 }')
echo "$LINE rss_before_kb=$RSS0 rss_after_kb=$RSS1 server_cpu_ms_per_request=$CPUREQ capacity_one_dedicated_core_rps=$CAP1"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: $(printf '%s' "$HEALTH" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("predictions", d["predictions"], "forward batches", d["forward_batches"], "mean batch %.2f" % (d["predictions"]/max(1,d["forward_batches"])))')"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
# any failed request fails the benchmark
printf '%s\n' "$LINE" | grep -q 'errors_connect=0 errors_read=0 errors_write=0 errors_status=0 errors_timeout=0' || { echo "bench_serve: errors"; exit 1; }
