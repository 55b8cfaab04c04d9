#!/usr/bin/env bash
# tests/test_run_tests.sh — the test runner's own check, run by `make test` before the
# programs (a runner that lost a failure would hide every test behind it): with one
# and two jobs, a failing and a missing program fail the run and are named with
# their exit status, passing ones pass it, each program's output stays whole when
# two run side by side, and a bad job count is refused.
set -u
cd "$(dirname "$0")/.."
W=$(mktemp -d /tmp/miles_run_tests_check.XXXXXX)
trap 'rm -rf "$W"' EXIT
bad=0
no() { echo "test_run_tests: $*"; bad=1; }
printf '#!/bin/sh\necho pass-out\n' > "$W/pass"
printf '#!/bin/sh\necho fail-out\nexit 3\n' > "$W/fail"
# prints two lines a while apart: with two jobs the other program's output must not come between
printf '#!/bin/sh\necho slow-1\nsleep 1\necho slow-2\n' > "$W/slow"
chmod +x "$W/pass" "$W/fail" "$W/slow"

for j in 1 2; do
    out=$(bash tests/run_tests.sh $j "$W/slow" "$W/fail" "$W/pass" "$W/missing" 2>&1); rc=$?
    [ $rc = 1 ] || no "JOBS=$j, a failing and a missing program: exit status $rc, not 1"
    grep -qx "FAILED: $W/fail (exit status 3)" <<<"$out" || no "JOBS=$j: the failing program is not named with its status"
    grep -qx "FAILED: $W/missing (exit status 127)" <<<"$out" || no "JOBS=$j: the missing program is not named"
    grep -q "^2 test program(s) failed:" <<<"$out" || no "JOBS=$j: no count of the failures"
    [ "$(grep -c "^== $W/[a-z]*: [0-9]* s$" <<<"$out")" = 4 ] || no "JOBS=$j: not one time line per program"
    grep -A1 -x 'slow-1' <<<"$out" | grep -qx 'slow-2' || no "JOBS=$j: the slow program's output was split"
    grep -qx 'pass-out' <<<"$out" && grep -qx 'fail-out' <<<"$out" || no "JOBS=$j: a program's output is missing"
    out=$(bash tests/run_tests.sh $j "$W/pass" "$W/slow" 2>&1); rc=$?
    [ $rc = 0 ] || no "JOBS=$j, passing programs: exit status $rc"
    grep -qx "all 2 test programs passed" <<<"$out" || no "JOBS=$j: no 'all 2 test programs passed'"
done
for j in 0 x ""; do
    bash tests/run_tests.sh "$j" "$W/pass" > /dev/null 2>&1; rc=$?
    [ $rc = 2 ] || no "JOBS='$j': exit status $rc, not 2"
done
[ $bad = 0 ] && echo "test_run_tests: the runner passes, fails and names programs as it should (1 and 2 jobs)"
exit $bad
