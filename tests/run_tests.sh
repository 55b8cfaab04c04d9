#!/usr/bin/env bash
# tests/run_tests.sh JOBS PROGRAM... — what `make test` runs.
#
# Runs every program even if one fails and exits 1 if any did, printing
# "== PROGRAM", its output, "== PROGRAM: N s" (and "FAILED: PROGRAM").
# JOBS=1: one after the other, output as it comes.  JOBS=2: two at a time in
# the order given (callers put the longest first), each one's output kept in a
# file and printed whole when it ends.  Why: `make asan`'s programs keep ~1.5
# of the 2 cores busy on average (small parallel regions under ASan, serial
# setup, mpirun start-up), so two side by side finish ~25% sooner.  They then
# share the cores, hence OMP_WAIT_POLICY=PASSIVE and OpenMPI's yield-when-idle:
# threads that spin while waiting take the core from the other program
# (tests/determinism.sh met 4-30x slowdowns that way).  Every test makes its
# own temporary directory, so two never write the same files.
set -u
jobs=${1-}
case $jobs in ''|*[!0-9]*|0) echo "usage: run_tests.sh JOBS PROGRAM... (JOBS a positive integer, not '$jobs')" >&2; exit 2 ;; esac
shift
failed=0
failures=""

if [ "$jobs" = 1 ]; then
    for t in "$@"; do
        echo "== $t"; s0=$(date +%s)
        "$t"; rc=$?
        if [ "$rc" != 0 ]; then echo "FAILED: $t (exit status $rc)"; failed=$((failed + 1)); failures="$failures $t"; fi
        echo "== $t: $(( $(date +%s) - s0 )) s"
    done
else
    export OMP_WAIT_POLICY=PASSIVE OMPI_MCA_mpi_yield_when_idle=1
    logs=$(mktemp -d /tmp/miles_run_tests.XXXXXX)
    trap 'rm -rf "$logs"' EXIT
    declare -A prog start
    running=0 i=0
    finish() { # PID STATUS: print that program's output whole
        local p=$1 rc=$2 t=${prog[$1]}
        echo "== $t"
        cat "$logs/$p.log"
        if [ "$rc" != 0 ]; then echo "FAILED: $t (exit status $rc)"; failed=$((failed + 1)); failures="$failures $t"; fi
        echo "== $t: $(( $(date +%s) - ${start[$p]} )) s"
        unset "prog[$p]"; running=$((running - 1))
    }
    for t in "$@"; do
        if [ "$running" -ge "$jobs" ]; then
            wait -n -p done_pid; rc=$?
            finish "$done_pid" "$rc"
        fi
        i=$((i + 1))
        "$t" > "$logs/$i.out" 2>&1 &
        p=$!
        mv "$logs/$i.out" "$logs/$p.log" # same file, still open by the program
        prog[$p]=$t; start[$p]=$(date +%s); running=$((running + 1))
    done
    while [ "$running" -gt 0 ]; do
        wait -n -p done_pid; rc=$?
        finish "$done_pid" "$rc"
    done
fi
if [ "$failed" -ne 0 ]; then echo "$failed test program(s) failed:$failures"; exit 1; fi
echo "all $# test programs passed"
