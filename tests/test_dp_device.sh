#!/bin/sh
# test_dp_device.sh WORKDIR — data-parallel training on GPUs (issue 14) through the
# CUDA backend object libmiles loads (MILES_CUDA_BACKEND=$BACKEND): here the backend
# built against the SIMT emulator (`make dp-sim-test`: each MPI rank emulates its own
# GPU; the emulator's NCCL runs each collective as the MPI collective of the same
# semantics), on a GPU node the real libmiles_cuda.so.
#   1. the NCCL layer on 2 ranks ($NCCL_TEST = tests/cuda/test_dist_nccl.cu): plain and
#      bucketed all-reduce, the bucket plan, a model backward with the bucket hook vs the
#      sum of the ranks' gradients, the fp16 overflow flag reduced to every rank;
#   2. `mpirun -np 2` training on cuda vs one process on cuda, fp32, the same global
#      batches (unequal class weights, gradient accumulation 2, a partial last batch,
#      rank 1 starting from another init): every step's loss and grad norm within 1e-5
#      (relative) and every weight of last.safetensors within 1e-6 (the determinism
#      contract of docs/architecture.md), the weights moved > 100x that;
#      one-bucket and many-bucket runs (MILES_NCCL_BUCKET_MB) bitwise equal here
#      (2 ranks: a + b is exact in any bucketing); 4 steps + resume to 8 on 2 ranks
#      bitwise equal to 8 straight (checkpoint bytes and step log);
#      host syncs (fp32 here, fp16 in 3): exactly 1 per logged step (the statistics read at the STEP event, none
#      in the step; counted by the emulator);
#   3. fp16 and bf16 on 2 ranks: train; fp16's loss scale and skipped steps in the STEP
#      events equal one process's (default scale, then a planted 2^21 that overflows),
#      the ranks' weights equal at every checkpoint (the trainer's replica hash would stop it);
#      `mpirun -np 2 miles-train --device cuda` end to end (train_result.json: 2 ranks);
#   4. one visible GPU per rank (CUDA_VISIBLE_DEVICES, as srun --gpus-per-task=1) trains;
#      refusals, one line each: fewer emulated GPUs than ranks; NCCL missing
#      (MILES_NCCL_LIBRARY=/nonexistent); --device cuda:1 with 2 ranks on a node.
# Needs WORKER (tests/cuda/dp_worker.c), NCCL_TEST, BACKEND; HAVE_MPI=1 and mpirun,
# else it prints SKIPPED.  MILES_MPIRUN overrides the launcher.  REAL_GPU=1: the real
# object on this node's GPUs (nvidia-smi counts them; parts 1-3 need 2, the refusals
# run on any number).
set -eu
W=${1:?usage: test_dp_device.sh WORKDIR}
if [ "${HAVE_MPI:-0}" != 1 ] || ! command -v mpirun >/dev/null 2>&1; then
  echo "test_dp_device: SKIPPED: no MPI build or no mpirun"; exit 0
fi
WK=$(pwd)/${WORKER:?set WORKER}
NT=$(pwd)/${NCCL_TEST:?set NCCL_TEST}
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
SO=$(cd "$(dirname "${BACKEND:?set BACKEND}")" && pwd)/$(basename "$BACKEND")
ROOT=""; [ "$(id -u)" = 0 ] && ROOT="--allow-run-as-root"
MPI=${MILES_MPIRUN:-mpirun $ROOT --oversubscribe --mca btl_vader_single_copy_mechanism none}
rm -rf "$W" && mkdir -p "$W"
fail() { echo "FAIL: $*"; exit 1; }
# REAL_GPU=1: the real libmiles_cuda.so on this node's GPUs (the training parts need 2+)
REAL=${REAL_GPU:-0}
NGPU=2
[ "$REAL" = 1 ] && NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
export MILES_CUDA_BACKEND="$SO" OMP_NUM_THREADS=1

data() {
  MILES_BIN=${MILES_BIN:-build/bin}
  "$MILES_BIN/miles-data" synth --rows 400 --seed 3 --out "$W/s.csv" >/dev/null
  "$MILES_BIN/miles-data" prepare "$W/s.csv" --out "$W/d.bin" --vocab tests/fixtures/tokenizer_vocab.txt \
    --max-len 24 --language any >/dev/null
}
data
if [ "$NGPU" -ge 2 ]; then
# ---- 1. the NCCL layer
$MPI -np 2 -x SIMT_DEVICES=2 -x OMP_NUM_THREADS "$NT" >"$W/nccl.txt" 2>&1 || { cat "$W/nccl.txt"; fail "test_dist_nccl"; }
grep "rank 0" "$W/nccl.txt" | sed 's/^/    /'
echo "ok  NCCL layer on 2 emulated GPUs"

# ---- 2. 2 ranks vs 1 process, fp32
one() { # OUT DEVICE [key=value...]: one process
  out=$1 dev=$2; shift 2
  SIMT_DEVICES=1 "$WK" "$W/d.bin" "$W/$out" "$dev" "$@" >"$W/$out.log" 2>&1 || { cat "$W/$out.log"; fail "run $out"; }
}
two() { # OUT DEVICE [key=value...]: mpirun -np 2 (MILES_NCCL_BUCKET_MB from the environment)
  out=$1 dev=$2; shift 2
  $MPI -np 2 -x SIMT_DEVICES=2 -x MILES_CUDA_BACKEND -x OMP_NUM_THREADS -x MILES_NCCL_BUCKET_MB \
    "$WK" "$W/d.bin" "$W/$out" "$dev" "$@" >"$W/$out.log" 2>&1 || { cat "$W/$out.log"; fail "mpirun $out"; }
}
one g1 cuda
MILES_NCCL_BUCKET_MB=0.05 two g2 cuda   # 13,107 floats per bucket: ~170 buckets of the 2.2 M-parameter tiny model
MILES_NCCL_BUCKET_MB=100 two g2one cuda # one bucket
# weights of two checkpoints: max |a - b| and max |a - init| (how far training moved them)
python3 - "$W/g1" "$W/g2" "$W/g2one" <<'PY' || fail "2 ranks vs 1 process"
import json, struct, sys
def tensors(p, name="last"):
    raw = open(p + "/" + name + ".safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__" or v["dtype"] != "F32" or k.startswith("optim.") or k.startswith("tokenizer/"):
            continue
        a, b = v["data_offsets"]
        out[k] = struct.unpack("<%df" % ((b - a) // 4), raw[8 + n + a:8 + n + b])
    return out
def steps(p):
    return [tuple(float(x) for x in l.split()) for l in open(p + "/steps.txt")]
g1, g2, g2one = sys.argv[1:4]
a, b, c = tensors(g1), tensors(g2), tensors(g2one)
assert a.keys() == b.keys() == c.keys() and len(a) > 10, (len(a), len(b))
wmax = max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a)
bits = sum(x != y for k in b for x, y in zip(b[k], c[k]))
sa, sb = steps(g1), steps(g2)
assert len(sa) == len(sb) == 8, (len(sa), len(sb))
rel = lambda x, y: abs(x - y) / max(1e-6, abs(x))
lmax = max(max(rel(x[1], y[1]), rel(x[2], y[2])) for x, y in zip(sa, sb))
i0 = tensors(g1, "init")
moved = max(max(abs(x - y) for x, y in zip(a[k], i0[k])) for k in a)
print("    8 steps: max |w(2 ranks) - w(1 process)| = %.3g over %d tensors (tolerance 1e-6; training moved them up to %.3g); step loss/grad norm max "
      "relative difference %.3g (tolerance 1e-5); one bucket vs many: %d weights differ" % (wmax, len(a), moved, lmax, bits))
print("    losses 1 process: %s" % " ".join("%.6f" % s[1] for s in sa))
print("    losses 2 ranks:   %s" % " ".join("%.6f" % s[1] for s in sb))
sys.exit(0 if wmax <= 1e-6 and lmax <= 1e-5 and bits == 0 and moved > 100 * 1e-6 else 1)
PY
[ -f "$W/g2/last.safetensors" ] && [ -f "$W/g2/best.safetensors" ] || fail "2 ranks: checkpoints missing"
# host syncs between two STEP events (log_every 1): the one read of the statistics,
# nothing in the step (the emulator counts them: dp_worker writes syncs.txt; a real GPU
# does not count).  The first two intervals of a run (or resume) allocate; evaluations
# and checkpoints sync.
syncs_check() { # DIR...
  python3 - "$@" <<'PY'
import sys
bad, n = [], 0
for d in sys.argv[1:]:
    rows = [tuple(int(x) for x in l.split()) for l in open(d + "/syncs.txt")]
    since = 0  # intervals since the run (or a resumed one) started
    for step, k, other in rows:
        since = 0 if k < 0 else since + 1
        if since < 2 or other:
            continue
        n += 1
        if k != 1:
            bad.append("%s step %d: %d" % (d.split("/")[-1], step, k))
print("    host syncs per logged step (the read included): %d intervals checked, %s" %
      (n, "all exactly 1" if not bad else "NOT 1: " + ", ".join(bad)))
sys.exit(0 if n > 0 and not bad else 1)
PY
}
if [ -f "$W/g1/syncs.txt" ]; then
  syncs_check "$W/g1" "$W/g2" "$W/g2one" || fail "host syncs in a data-parallel step"
else
  echo "    host syncs not counted by this backend (a real GPU build)"
fi
# resume: 2 ranks stop at step 4, 2 ranks resume to 8 == 8 straight (bitwise, as one process)
MILES_NCCL_BUCKET_MB=0.05 two g2r cuda steps=4
MILES_NCCL_BUCKET_MB=0.05 two g2r cuda steps=8 resume=1
python3 - "$W/g2" "$W/g2r" <<'PY' || fail "2-rank resume"
import sys
a, b = (open(p + "/last.safetensors", "rb").read() for p in sys.argv[1:3])
sa, sb = (open(p + "/steps.txt").read() for p in sys.argv[1:3])
print("    2 ranks 4 steps + resume to 8 vs 8 straight: checkpoint %s, step log %s" %
      ("bitwise equal" if a == b else "DIFFERS", "equal" if sa == sb else "DIFFERS"))
sys.exit(0 if a == b and sa == sb else 1)
PY
ls "$W/g2" | grep -q '\.tmp' && fail "2 ranks: a temporary file was left"
echo "ok  2 ranks on emulated GPUs match one process"

# ---- 3. fp16 on 2 ranks vs 1 process: the loss scale and skipped steps of the STEP
# events (progress line, log.jsonl, TensorBoard) are the same sequence.  2 steps at the
# default scale (65536), then a planted 2^21 (state "loss_scale" of last.safetensors;
# dp_sync hands rank 0's to rank 1) resumed to 9: some step overflows and is skipped
# (the scale halves), later ones train again.
plant() { # FILE SCALE: the checkpoint's fp16 loss scaler (growth tracker 0)
  python3 "$TESTS_DIR/ckpt_loss_scale.py" "$1" "$2" 0 >/dev/null
}
one f1 cuda precision=2 steps=2
MILES_NCCL_BUCKET_MB=0.05 two f2 cuda precision=2 steps=2
plant "$W/f1/last.safetensors" 2097152
plant "$W/f2/last.safetensors" 2097152
one f1 cuda precision=2 steps=9 resume=1
MILES_NCCL_BUCKET_MB=0.05 two f2 cuda precision=2 steps=9 resume=1
python3 - "$W/f1" "$W/f2" <<'PY' || fail "fp16: 2 ranks vs 1 process (loss scale / skipped steps)"
import math, sys
def steps(p):
    return [l.split() for l in open(p + "/steps.txt")]
a, b = (steps(p) for p in sys.argv[1:3])
assert len(a) == len(b) == 9, (len(a), len(b))
seq = lambda r: [(float(x[3]), int(x[4])) for x in r]
sa, sb = seq(a), seq(b)
rel = max(abs(float(x[1]) - float(y[1])) / abs(float(x[1])) for x, y in zip(a, b))
print("    1 process: scale/skipped " + " ".join("%g/%d" % s for s in sa))
print("    2 ranks:   scale/skipped " + " ".join("%g/%d" % s for s in sb))
print("    step loss max relative difference %.3g (tolerance 1e-4)" % rel)
skips = [i for i in range(1, 9) if sa[i][1] > sa[i - 1][1]]
ok = (sa == sb and sa[0] == (65536.0, 0) and sa[2] == (2097152.0, 0) and skips and skips[-1] < 8
      and sa[-1][1] < 7 and rel <= 1e-4)
sys.exit(0 if ok else 1)
PY
echo "ok  fp16 on 2 ranks: loss scale and skipped steps as one process ($(tail -1 "$W/f2/steps.txt" | awk '{ printf "step %d loss %s scale %s skipped %d", $1, $2, $4, $5 }'))"
if [ -f "$W/f2/syncs.txt" ]; then
  syncs_check "$W/f1" "$W/f2" || fail "fp16: host syncs in a data-parallel step"
fi
MILES_NCCL_BUCKET_MB=0.05 two b2 cuda precision=3 steps=3
[ "$(wc -l <"$W/b2/steps.txt")" -eq 3 ] || fail "bf16: not 3 steps"
echo "ok  bf16 on 2 ranks: $(tail -1 "$W/b2/steps.txt" | awk '{ printf "step %d loss %s", $1, $2 }')"

# ---- 3b. the tool: mpirun -np 2 miles-train --device cuda (tiny preset, dropout on)
B=$(pwd)/${MILES_BIN:-build/bin}
$MPI -np 2 -x SIMT_DEVICES=2 -x MILES_CUDA_BACKEND -x OMP_NUM_THREADS "$B/miles-train" --data "$W/d.bin" --init random \
  --size tiny --batch-size 16 --max-len 24 --epochs 1 --max-steps 3 --eval-every 3 --warmup 1 --device cuda \
  --out "$W/tool" --quiet >"$W/tool.log" 2>&1 || { cat "$W/tool.log"; fail "mpirun -np 2 miles-train --device cuda"; }
grep -q '"ranks":[[:space:]]*2' "$W/tool/train_result.json" && grep -q '"steps":[[:space:]]*3' "$W/tool/train_result.json" \
  || { cat "$W/tool/train_result.json"; fail "miles-train: train_result.json"; }
[ -f "$W/tool/last.safetensors" ] || fail "miles-train: no last.safetensors"
echo "ok  mpirun -np 2 miles-train --device cuda: 3 steps, train_result.json says 2 ranks"

else
  echo "test_dp_device: SKIPPED the training parts: $NGPU GPU(s) here, they need 2"
fi

# ---- 4. refusals
refuse() { # NAME WANT CMD...
  name=$1 want=$2; shift 2
  if "$@" >"$W/r.txt" 2>&1; then cat "$W/r.txt"; fail "$name: succeeded"; fi
  grep -q "$want" "$W/r.txt" || { cat "$W/r.txt"; fail "$name: no \"$want\""; }
  echo "ok  $name: $(grep -m1 "$want" "$W/r.txt")"
}
NP=2; [ "$REAL" = 1 ] && NP=$((NGPU + 1))
refuse "fewer GPUs than ranks" "need $NP CUDA device" \
  $MPI -np $NP -x SIMT_DEVICES=1 -x MILES_CUDA_BACKEND -x OMP_NUM_THREADS "$WK" "$W/d.bin" "$W/r1" cuda
if [ "$REAL" = 0 ]; then
  # a launcher that binds one GPU per rank (CUDA_VISIBLE_DEVICES): each rank sees one
  # device (each emulated rank has its own; on one real GPU NCCL refuses two ranks)
  $MPI -np 2 -x SIMT_DEVICES=1 -x CUDA_VISIBLE_DEVICES=0 -x MILES_CUDA_BACKEND -x OMP_NUM_THREADS "$WK" "$W/d.bin" \
    "$W/bound" cuda steps=2 >"$W/bound.log" 2>&1 || { cat "$W/bound.log"; fail "one visible GPU per rank"; }
  echo "ok  one visible GPU per rank (CUDA_VISIBLE_DEVICES set by the launcher): $(cat "$W/bound.log")"
fi
# (CUDA_VISIBLE_DEVICES=0: the ranks pass the device check on a 1-GPU node too, NCCL loads next)
refuse "NCCL missing" "NCCL not found" \
  $MPI -np 2 -x SIMT_DEVICES=2 -x CUDA_VISIBLE_DEVICES=0 -x MILES_CUDA_BACKEND -x OMP_NUM_THREADS \
  -x MILES_NCCL_LIBRARY=/nonexistent/libnccl.so.2 "$WK" "$W/d.bin" "$W/r2" cuda
refuse "one named GPU for 2 ranks" "names one GPU" \
  $MPI -np 2 -x SIMT_DEVICES=2 -x MILES_CUDA_BACKEND -x OMP_NUM_THREADS "$WK" "$W/d.bin" "$W/r3" cuda:1
echo "test_dp_device ($SO): all passed"
