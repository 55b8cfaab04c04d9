#!/usr/bin/env bash
# tests/coverage_report.sh BUILD_DIR — line coverage of libmiles/ and tools/ after
# a test run of a --coverage build (`make coverage`): one line per source file,
# least covered first, then BUILD_DIR/coverage/FILE.gcov with every line's count
# ("#####" marks a line no test ran: where an error path or an option has no test).
set -euo pipefail
B=${1:?usage: coverage_report.sh BUILD_DIR}
mkdir -p "$B/coverage"
rm -f "$B"/coverage/*.gcov
summary=$B/coverage/summary.txt
: > "$summary"
for g in "$B"/obj/*.gcda "$B"/obj/tools/*.gcda; do
    [ -e "$g" ] || continue
    # gcov writes NAME.gcov into the current directory; sources are named from the repository root
    gcov -o "$(dirname "$g")" "$g" 2>/dev/null | awk '/^File .(libmiles|tools)\//{f=$2; getline; sub(/^Lines executed:/, "", $0); print $0, f}' \
        | sed "s/'//g" >> "$summary"
done
for f in *.gcov; do
    case $f in *.c.gcov|*.h.gcov) mv -f "$f" "$B/coverage/" ;; *) rm -f "$f" ;; esac
done
# "86.21% of 116 libmiles/x.c": least covered first; a header counted in several objects appears once
sort -u -k4,4 "$summary" | sort -n | awk '{printf "%8s of %5d lines  %s\n", $1, $3, $4}'
awk '{split($1, p, "%"); n += $3; hit += p[1] * $3 / 100} END {printf "total: %.1f%% of %d lines (libmiles/ and tools/)\n", 100 * hit / n, n}' "$summary"
echo "per-line counts: $B/coverage/*.gcov"
