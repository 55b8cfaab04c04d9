#!/usr/bin/env bash
# check_layering.sh — the library's layering rules (docs/architecture.md, "Layers"):
#   1. tools/ and docs/examples/ use only the public headers: they include
#      "miles.h" (examples: <miles.h>; with MPI also miles_mpi.h) and the
#      tools' own headers, never a libmiles/*_internal.h, internal.h or ops.h;
#   2. kernels/ include no header that lives only under tests/;
#   3. every function libmiles/miles.h declares is used outside tests/: by a
#      tool, an example, a benchmark, a fuzzer, the CUDA code, or another part
#      of the library (a function only tests call belongs in an internal header);
#   4. the shared library exports only miles_* symbols (nm), when LIB is given
#      (sanitizer builds add their own __asan/__odr_asan markers, coverage
#      builds (make coverage) libgcov's __gcov_* and mangle_path: not ours).
#
#   tests/check_layering.sh [ROOT] [LIB]      ROOT: repository root (default .),
#                                             LIB: path of libmiles.so (optional)
# Prints every violation and exits 1 if there is any.  tests/test_layering.c
# runs it on the tree and on planted violations (so it can fail).
set -u
ROOT=${1:-.}
LIB=${2:-}
bad=0
fail() { echo "LAYERING: $*"; bad=$((bad + 1)); }

# ---- 1. tools and examples: public header only
for f in "$ROOT"/tools/*.c "$ROOT"/tools/*.h "$ROOT"/docs/examples/*.c; do
    [ -f "$f" ] || continue
    while IFS= read -r inc; do
        h=$(printf '%s' "$inc" | sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]+)[">].*/\1/')
        case "$h" in
            miles.h|miles_mpi.h) continue ;;
        esac
        case "$f" in
            */tools/*) [ -f "$ROOT/tools/$h" ] && continue ;;
        esac
        # system headers (<...>) that are not library headers are fine
        if printf '%s' "$inc" | grep -q '<' && [ ! -f "$ROOT/libmiles/$h" ]; then continue; fi
        fail "$f includes \"$h\": tools and examples may use only miles.h (and the tools' own headers)"
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include' "$f")
done

# ---- 2. kernels do not include test headers
for f in "$ROOT"/kernels/*; do
    [ -f "$f" ] || continue
    while IFS= read -r h; do
        [ -n "$h" ] || continue
        if [ ! -f "$ROOT/kernels/$h" ] && [ ! -f "$ROOT/libmiles/$h" ] && \
           [ -n "$(find "$ROOT/tests" -name "$h" -print -quit 2>/dev/null)" ]; then
            fail "$f includes \"$h\", a header of tests/"
        fi
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed -E 's/.*"([^"]+)".*/\1/')
done

# ---- 3. every public function has a user outside tests/
HDR="$ROOT/libmiles/miles.h"
USERS=$(ls "$ROOT"/tools/*.[ch] "$ROOT"/docs/examples/*.c "$ROOT"/bench/*.c "$ROOT"/bench/*.cu "$ROOT"/fuzz/*.c \
           "$ROOT"/kernels/* 2>/dev/null)
# declarations: "type name(" at the start of a line (continuation lines indented)
for fn in $(grep -oE '^[A-Za-z][A-Za-z0-9_ *]*[ *](miles_[a-z0-9_]+)\(' "$HDR" | grep -oE 'miles_[a-z0-9_]+\($' | tr -d '(' | sort -u); do
    # a use in the library is a line that mentions it and is not its definition
    # (definitions start at column 0 with the return type)
    lib_uses=$(grep -hwE "$fn" "$ROOT"/libmiles/*.c | grep -vE "^[A-Za-z].*\\b$fn\\(" | grep -c .)
    other=0
    [ -n "$USERS" ] && other=$(grep -lw "$fn" $USERS 2>/dev/null | grep -c .)
    if [ "$lib_uses" -eq 0 ] && [ "$other" -eq 0 ]; then
        fail "miles.h declares $fn, which only tests call: move it to an internal header"
    fi
done

# ---- 4. exported symbols
if [ -n "$LIB" ]; then
    if [ ! -f "$LIB" ]; then
        fail "$LIB not found"
    else
        n=$(nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | grep -v '^miles_' \
            | grep -vE '^(_init|_fini|_edata|_end|__bss_start)$|^__(odr_)?asan|^__ubsan|^__sanitizer|^__gcov_|^mangle_path$' | tee /tmp/miles_layering_syms.$$ | grep -c .)
        if [ "$n" -gt 0 ]; then
            fail "$LIB exports $n symbols without the miles_ prefix, e.g. $(head -5 /tmp/miles_layering_syms.$$ | tr '\n' ' ')"
        fi
        rm -f /tmp/miles_layering_syms.$$
    fi
fi

if [ "$bad" -gt 0 ]; then echo "check_layering: $bad violation(s)"; exit 1; fi
echo "check_layering: tools/examples use only miles.h; kernels include no test header; every public function has a non-test user${LIB:+; $LIB exports only miles_*}"
exit 0
