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
progs=("$@")
# show I RC START: program I's footer (and failure) once it has ended
show() {
    local t=${progs[$1]}
    if [ "$2" != 0 ]; then echo "FAILED: $t (exit status $2)"; failed=$((failed + 1)); failures="$failures $t"; fi
    echo "== $t: $(( $(date +%s) - $3 )) s"
}

if [ "$jobs" = 1 ]; then
    for i in "${!progs[@]}"; do
        echo "== ${progs[$i]}"; s0=$(date +%s)
        "${progs[$i]}"; show "$i" $? "$s0"
    done
else
    export OMP_WAIT_POLICY=PASSIVE OMPI_MCA_mpi_yield_when_idle=1
    logs=$(mktemp -d /tmp/miles_run_tests.XXXXXX)
    trap 'rm -rf "$logs"' EXIT
    declare -A index_of=() # running program's pid -> its index
    declare -a started=()
    finish() { # wait for any running program; print its output whole
        local pid rc i
        wait -n -p pid; rc=$?
        i=${index_of[$pid]}; unset "index_of[$pid]"
        echo "== ${progs[$i]}"; cat "$logs/$i.log"
        show "$i" "$rc" "${started[$i]}"
    }
    for i in "${!progs[@]}"; do
        [ ${#index_of[@]} -ge "$jobs" ] && finish
        started[$i]=$(date +%s)
        "${progs[$i]}" > "$logs/$i.log" 2>&1 &
        index_of[$!]=$i
    done
    while [ ${#index_of[@]} -gt 0 ]; do finish; done
fi
if [ "$failed" -ne 0 ]; then echo "$failed test program(s) failed:$failures"; exit 1; fi
echo "all $# test programs passed"
