#!/usr/bin/env python3
"""bench/cpu_goals.py turns bench logs into verdicts: check it on logs with
known numbers (no benchmark runs here).  Standard library only; exits
non-zero on the first wrong verdict.

    python3 tests/test_cpu_goals.py
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "bench", "cpu_goals.py")


def infer_rows(size, ms):
    """JSON lines as run_infer_bench.sh prints them: ms[(B, precision)] = (ms_median, gflops)."""
    rows = [{"bench": "fp32_peak", "isa": "avx512", "threads": 2, "gflops": 200.0},
            {"bench": "fp32_peak", "isa": "avx512", "threads": 2, "gflops": 190.0}]
    for (B, prec), (t, gf) in ms.items():
        r = {"impl": "miles" if not prec.startswith("ort") else prec, "precision": prec, "size": size,
             "B": B, "T": 32, "threads": 2, "ms_median": t, "seq_per_s": 1000.0 * B / t}
        if gf is not None:
            r["gflops"] = gf
        rows.append(r)
    # a slower second round of Miles fp32: the best median must be kept
    rows.append({"impl": "miles", "precision": "fp32", "size": size, "B": 32, "T": 32, "threads": 2,
                 "ms_median": 10 * ms[(32, "fp32")][0], "seq_per_s": 1.0, "gflops": 1.0})
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def main():
    d = tempfile.mkdtemp(prefix="miles_goals_")
    base = {(32, "fp32"): (100.0, 160.0), (32, "bf16"): (55.0, None), (32, "int8"): (40.0, None),
            (32, "ort-fp32"): (110.0, None), (32, "ort-fp32-pooled"): (95.0, None),
            (32, "ort-int8"): (44.0, None), (32, "ort-int8-pooled"): (38.0, None),
            (1, "fp32"): (3.0, 100.0), (1, "int8"): (1.0, None),
            (1, "ort-fp32"): (4.0, None), (1, "ort-fp32-pooled"): (3.5, None)}
    with open(os.path.join(d, "infer_minilm-l6.txt"), "w") as f:
        f.write("# header line\n" + infer_rows("minilm-l6", base))
    bert = dict(base)
    bert[(32, "fp32")] = (100.0, 140.0)  # 140 / 200 = 70% of the peak: below 75%
    bert.pop((32, "bf16"))  # a CPU without avx512_bf16: "n/a", never "met"
    with open(os.path.join(d, "infer_bert-base.txt"), "w") as f:
        f.write(infer_rows("bert-base", bert))
    model = [{"bench": "fp32_peak", "isa": "avx512", "threads": 2, "gflops": 180.0}]
    for T, mi, pt in ((32, 12.0, 7.9), (128, 3.0, 2.1)):
        model.append({"bench": "model", "impl": "miles", "size": "bert-base", "B": 32, "T": T, "threads": 2,
                      "train_seq_per_s": mi, "fwd_seq_per_s": 1.0, "fwd_gflop": 176.0 * T / 32,
                      "fwd_gflop_exec": 160.0 * T / 32})
        model.append({"bench": "model", "impl": "torch", "torch": "2.x", "size": "bert-base", "B": 32, "T": T,
                      "threads": 2, "train_seq_per_s": pt, "fwd_seq_per_s": 1.0})
    with open(os.path.join(d, "model.txt"), "w") as f:
        f.write("\n".join(json.dumps(r) for r in model) + "\nB 32 T 32: a summary line\n")
    bench = ("BENCH requests={n} duration_s=20 rps={rps} p50_ms=5 p90_ms=8 p99_ms={p99} max_ms=40 "
             "errors_connect=0 errors_read=0 errors_write=0 errors_status=0 errors_timeout={to}\n")
    with open(os.path.join(d, "serve_fp32.txt"), "w") as f:  # two rounds: the lower p99 is kept
        f.write(bench.format(n=9000, rps=450, p99=34.0, to=0) + bench.format(n=9000, rps=440, p99=21.0, to=0))
    with open(os.path.join(d, "serve_int8.txt"), "w") as f:
        f.write(bench.format(n=9000, rps=900, p99=10.0, to=3))  # errors: not met
    with open(os.path.join(d, "meta.txt"), "w") as f:
        f.write("2026-12-05 00:00 UTC\nabc1234\nbench/run_cpu_goals.sh\n")
    with open(os.path.join(d, "lscpu.txt"), "w") as f:
        f.write("Model name:   Test CPU\nCPU family: 26\nModel: 2\nCPU(s): 2\nFlags: fpu avx2 avx512f avx512_bf16\n")

    p = subprocess.run([sys.executable, SCRIPT, d], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("cpu_goals.py failed: " + p.stderr)
    s = json.load(open(os.path.join(d, "summary.json")))
    got = {r["measure"]: r for r in s["rows"]}
    failures = []

    def expect(measure, verdict, value=None, strict=None):
        r = got.get(measure)
        if r is None:
            failures.append("%s: missing" % measure)
            return
        if r["verdict"] != verdict:
            failures.append("%s: verdict %s, expected %s" % (measure, r["verdict"], verdict))
        if strict is not None and r["strict"] != strict:
            failures.append("%s: strict %s, expected %s" % (measure, r["strict"], strict))
        if value is not None and abs(r["value"] - value) > 1e-9:
            failures.append("%s: value %r, expected %r" % (measure, r["value"], value))

    expect("minilm-l6 B32 T32 fp32 vs ORT fp32", "met", 1.10, strict="NOT met")  # 110/100, 95/100
    expect("minilm-l6 B32 T32 fp32 share of measured peak", "met", 160.0 / 200.0)  # the best peak of the run
    expect("minilm-l6 B32 T32 bf16 vs ORT fp32", "met", 2.0, strict="met")  # 110/55, 95/55
    expect("minilm-l6 B32 T32 int8 vs ORT int8", "met", 1.10, strict="NOT met")  # 44/40, 38/40
    expect("minilm-l6 B1 T32 fp32 latency", "met", 0.75, strict="met")  # 3/4, 3/3.5
    expect("minilm-l6 B1 T32 int8 latency", "met", 0.25, strict="met")
    expect("bert-base B32 T32 fp32 share of measured peak", "NOT met", 0.70)
    expect("bert-base B32 T32 bf16 vs ORT fp32", "n/a")
    expect("bert-base B32 T32 train step vs PyTorch 2.x", "met", 12.0 / 7.9)
    expect("bert-base B32 T128 train step vs PyTorch 2.x", "NOT met", 3.0 / 2.1)
    # 3 x executed GFLOP per sequence x seq/s over the run's best peak (200)
    expect("bert-base B32 T32 train step share of measured peak", "met", 3 * 160.0 / 32 * 12.0 / 200.0)
    expect("miles-serve MiniLM fp32", "met", 440)
    expect("miles-serve MiniLM int8", "NOT met")
    expect("miles-serve MiniLM bf16", "n/a")
    if s["all_met"] or s["all_met_strict"]:
        failures.append("all_met must be false (bert-base share, T128 train)")
    if s["fp32_peak_gflops"] != 200.0:
        failures.append("peak %r, expected the run's best, 200" % s["fp32_peak_gflops"])
    md = open(os.path.join(d, "summary.md")).read()
    if "Test CPU" not in md or "| bert-base B32 T32 fp32 share of measured peak | 70%" not in md:
        failures.append("summary.md lacks the machine or the table:\n" + md)
    for f in failures:
        print("FAIL:", f)
    print("cpu_goals.py: %d rows checked, %d failures" % (len(got), len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
