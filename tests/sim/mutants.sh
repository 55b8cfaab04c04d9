#!/usr/bin/env bash
# tests/sim/mutants.sh SIM_DIR — planted-bug experiments for the SIMT emulator.
#
# Builds deliberately broken copies of kernels (the sources in kernels/ are
# not touched), each linked into the emulated tests/cuda/test_cuda_ops or
# test_cuda_fast, and requires that the test FAILS on every one (and passes on
# the unmodified kernels).  Environment: CXX, SIM_CXXFLAGS, SIM_LINK (set by
# `make sim-mutants`).
#
#   off-by-one   attention.cu  softmax guard `row >= rows` -> `row > rows`: the last
#                block's spare warp writes one score row past att (ragged B*NH*T)
#   no-barrier   layernorm.cu  the __syncthreads() after the column partial sums are
#                stored to shared memory is deleted (dw/db read unwritten slots)
#   shuffle      attention.cu  the key-count reduction starts at offset 8 instead of
#                16: each half-warp sees only its own keys
#   flash-barrier   flash_attn.cu  the __syncthreads() before the next key/value tile
#                is loaded is deleted: warps still reading a tile see the next one
#   flash-dropout   flash_attn.cu  the forward's dropout index swaps query and key
#                (a mask, just not the CPU's)
#   ln-partials  fused_ln.cu  the warps' parameter-gradient partials overwrite instead
#                of adding in shared memory (only the last warp's rows count)
set -u
SIM_DIR=${1:?usage: mutants.sh SIM_DIR}
: "${CXX:?}" "${SIM_CXXFLAGS:?}" "${SIM_LINK:?}"
cd "$(dirname "$0")/../.."
OUT=$SIM_DIR/mutants
mkdir -p "$OUT"
fail=0

# name file section perl-substitution [test program]
mutate() {
    local name=$1 file=$2 section=$3 expr=$4 prog=${5:-test_cuda_ops}
    local dir=$OUT/$name obj=${file%.cu}.o
    mkdir -p "$dir"
    cp "kernels/$file" "$dir/$file"
    perl -0pi -e "$expr" "$dir/$file"
    if cmp -s "kernels/$file" "$dir/$file"; then
        echo "mutant $name: the pattern was not found in kernels/$file (update tests/sim/mutants.sh)"
        return 1
    fi
    echo "== mutant $name ($file, $prog --only $section):"
    diff "kernels/$file" "$dir/$file" | sed -n 's/^[<>]/   &/p'
    local others
    others=$(ls "$SIM_DIR"/kernels/*.o | grep -v "/$obj\$")
    # shellcheck disable=SC2086
    if ! $CXX $SIM_CXXFLAGS -x c++ -c "$dir/$file" -o "$dir/$obj" ||
       ! $CXX "$SIM_DIR/tests/$prog.o" "$dir/$obj" $others $SIM_LINK -o "$dir/$prog"; then
        echo "mutant $name: build failed"
        return 1
    fi
    ASAN_OPTIONS=detect_leaks=0 "$dir/$prog" --quick --only "$section" > "$dir/log" 2>&1
    local rc=$?
    { grep -m2 "^FAIL" "$dir/log"; grep -m2 -E "^simt: kernel|ERROR: AddressSanitizer|runtime error|Segmentation" "$dir/log"; } |
        cut -c1-200 | sed 's/^/   | /'
    if [ $rc -eq 0 ]; then
        echo "   NOT DETECTED: the test passed with the bug (exit 0)"
        return 1
    else
        echo "   detected: $prog exited with $rc (log: $dir/log)"
    fi
}

# the unmodified kernels pass the same sections
if [ -x "$SIM_DIR/test_cuda_ops" ]; then
    for s in attention layernorm; do
        if ! ASAN_OPTIONS=detect_leaks=0 "$SIM_DIR/test_cuda_ops" --quick --only $s > "$OUT/control-$s.log" 2>&1; then
            echo "control: the UNMODIFIED kernels fail --only $s (see $OUT/control-$s.log)"
            fail=1
        fi
    done
    echo "control: the unmodified kernels pass --only attention and --only layernorm"
fi
if [ -x "$SIM_DIR/test_cuda_fast" ]; then
    if ! ASAN_OPTIONS=detect_leaks=0 "$SIM_DIR/test_cuda_fast" --quick --only attention,layernorm \
         > "$OUT/control-fast.log" 2>&1; then
        echo "control: the UNMODIFIED kernels fail test_cuda_fast --only attention,layernorm (see $OUT/control-fast.log)"
        fail=1
    fi
    echo "control: the unmodified kernels pass test_cuda_fast --only attention,layernorm"
fi

# Two at a time (MUTANT_JOBS), the flash_attn.cu ones first (each compiles that file
# under ASan, ~40 s); each one's output is printed whole, in the order below.
MUTANT_JOBS=${MUTANT_JOBS:-2}
order=()
launch() { # name file section expr [prog]
    order+=("$1")
    rm -f "$OUT/$1.out" "$OUT/$1.rc"
    ( mutate "$@"; echo $? > "$OUT/$1.rc" ) > "$OUT/$1.out" 2>&1 &
    while [ "$(jobs -rp | wc -l)" -ge "$MUTANT_JOBS" ]; do wait -n; done
}
launch flash-dropout flash_attn.cu attention \
    's/fa_keep2\(kp, d, \(\(uint64_t\)bh \* T \+ row\) \* T \+ col\);/fa_keep2(kp, d, ((uint64_t)bh * T + col) * T + row);/' \
    test_cuda_fast
launch flash-barrier flash_attn.cu attention \
    's/__syncthreads\(\); \/\* the previous tile is consumed \*\/\n//' test_cuda_fast
launch ln-partials fused_ln.cu layernorm 's/red\[c\] = \(wi \? red\[c\] : 0\.0f\) \+ aw/red[c] = aw/' test_cuda_fast
launch off-by-one attention.cu attention 's/if \(row >= rows\) return;/if (row > rows) return;/'
launch no-barrier layernorm.cu layernorm 's/(sh2\[ty\]\[tx\] = a2;\n)\s*__syncthreads\(\);\n/$1/'
launch shuffle attention.cu attention 's/for \(int o = 16; o > 0; o >>= 1\) nreal \+=/for (int o = 8; o > 0; o >>= 1) nreal +=/'
wait
for name in "${order[@]}"; do
    cat "$OUT/$name.out"
    [ "$(cat "$OUT/$name.rc" 2>/dev/null)" = 0 ] || { echo "   (mutant $name: FAILED, see above)"; fail=1; }
done

if [ $fail -ne 0 ]; then echo "sim-mutants: FAILED"; exit 1; fi
echo "sim-mutants: all 6 planted bugs detected by the emulated tests"
