#!/usr/bin/env bash
# tests/determinism.sh — the determinism matrix (`make determinism`; docs/architecture.md,
# "Determinism"): the bit-identity test programs again under every BLAS setting the
# machines of our kind have (OPENBLAS_CORETYPE=Haswell + OPENBLAS_L2_SIZE=512, or both
# unset) and on 1 and 2 threads.
#
# Environment (set by the Makefile):
#   BUILD, SHARED     build folder (tests in $BUILD/tests, tools in $BUILD/bin), ../shared
#   DET_TESTS         the programs
#   DET_SKIP          PROGRAM=cmocka-pattern ...: what depends on neither BLAS nor threads
#   DET_AFTER_TEST=1  `make check` ran `make test` just before: the cell that is its own
#                     environment (both variables unset, OMP_NUM_THREADS unset or = nproc)
#                     is not run again
#   DET_JOBS          cells run side by side at most (default: nproc); a cell of n
#                     threads takes n of them, so on 2 cores the two 1-thread cells run
#                     together and the 2-thread ones alone.  Each cell's output is
#                     printed whole when it ends.  A cell of fewer threads than DET_JOBS
#                     runs with OMP_WAIT_POLICY=PASSIVE: test_infer compares 1 and 2
#                     threads inside every cell, and two such 2-thread teams spinning at
#                     their barriers on 2 cores took 187 s a cell instead of ~10 (the
#                     policy changes when a waiting thread sleeps, never a result).
set -u
: "${BUILD:?}" "${SHARED:?}" "${DET_TESTS:?}"
DET_SKIP=${DET_SKIP:-}
DET_AFTER_TEST=${DET_AFTER_TEST:-0}
DET_JOBS=${DET_JOBS:-$(nproc)}
ENVS="OPENBLAS_CORETYPE=Haswell+OPENBLAS_L2_SIZE=512 -u+OPENBLAS_CORETYPE+-u+OPENBLAS_L2_SIZE"
OUT=$BUILD/det
rm -rf "$OUT" && mkdir -p "$OUT"

# run_cell ID "ENV ARGS" N: every program, one after another; exit status = failures
run_cell() {
    local id=$1 envargs=$2 n=$3 failed=0 t skip s0 wait=
    [ "$n" -lt "$DET_JOBS" ] && wait=OMP_WAIT_POLICY=PASSIVE
    for t in $DET_TESTS; do
        skip=$(printf '%s\n' $DET_SKIP | sed -n "s/^$t=//p")
        echo "== [$envargs OMP_NUM_THREADS=$n${wait:+ $wait}] $t${skip:+ (skipping $skip)}"
        s0=$(date +%s)
        # shellcheck disable=SC2086
        if ! env $envargs OMP_NUM_THREADS=$n $wait MILES_TEST_SKIP="$skip" MILES_SHARED="$SHARED" MILES_BIN="$BUILD/bin" \
             "$BUILD/tests/$t" > "$OUT/$id.$t.log" 2>&1; then
            cat "$OUT/$id.$t.log"
            echo "FAILED: $t [$envargs OMP_NUM_THREADS=$n${wait:+ $wait}]"
            failed=$((failed + 1))
        fi
        echo "   $(($(date +%s) - s0)) s"
    done
    return $failed
}

set -f # DET_SKIP's patterns are not file names
cells=() byt=
for n in 1 2; do # the 1-thread cells first: they run side by side
    for e in $ENVS; do
        envargs=$(echo "$e" | tr + ' ')
        if [ "$DET_AFTER_TEST" = 1 ] && [ "$e" = "-u+OPENBLAS_CORETYPE+-u+OPENBLAS_L2_SIZE" ] &&
           [ -z "${OPENBLAS_CORETYPE-}${OPENBLAS_L2_SIZE-}" ] && [ "${OMP_NUM_THREADS:-$(nproc)}" = "$n" ]; then
            echo "== [$envargs OMP_NUM_THREADS=$n]: make test's environment, its run counts"
            byt=" (1 cell by make test)"
            continue
        fi
        cells+=("$envargs|$n")
    done
done

# start cells while their threads fit in DET_JOBS (always at least one running)
failed=0 busy=0 next=0 printed=0
declare -A pid_of=() n_of=()
finish() { # the next cell in order, when it has ended: print it, free its threads
    local id=$1 rc
    wait "${pid_of[$id]}"
    rc=$?
    cat "$OUT/cell$id.log"
    failed=$((failed + rc))
    busy=$((busy - n_of[$id]))
}
while [ $printed -lt ${#cells[@]} ]; do
    if [ $next -lt ${#cells[@]} ]; then
        envargs=${cells[$next]%|*} n=${cells[$next]#*|}
        if [ $busy -eq 0 ] || [ $((busy + n)) -le "$DET_JOBS" ]; then
            run_cell $next "$envargs" "$n" > "$OUT/cell$next.log" 2>&1 &
            pid_of[$next]=$! n_of[$next]=$n busy=$((busy + n)) next=$((next + 1))
            continue
        fi
    fi
    finish $printed
    printed=$((printed + 1))
done
set +f
if [ $failed -ne 0 ]; then echo "determinism: $failed run(s) failed"; exit 1; fi
echo "determinism: $(echo $DET_TESTS | wc -w) test programs x 2 BLAS settings x 2 thread counts passed$byt"
