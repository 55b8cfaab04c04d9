#!/usr/bin/env python3
"""Verdicts on the CPU speed goals from the logs bench/run_cpu_goals.sh wrote.

    python3 bench/cpu_goals.py OUT_DIR

Reads OUT_DIR/{infer_minilm-l6,infer_bert-base,model}.txt (the JSON lines the
bench scripts print), OUT_DIR/serve_{fp32,bf16,int8}.txt (bench_serve.sh's
BENCH line per round), meta.txt and lscpu.txt; writes OUT_DIR/summary.json and
OUT_DIR/summary.md and prints the table.  Standard library only.

Conventions (the strict reading of each goal):
  - the fp32 peak is the best FMA-loop figure of every round of the run
    (a higher peak lowers every share);
  - a ratio against ONNX Runtime: the verdict is on Miles' default export (the
    full graph, as any HF BERT export), and a second verdict ("strict") on
    the --pooled-only export, which computes what Miles' engine does (the
    last layer on the [CLS] rows alone);
  - a share of peak counts the products Miles executed (bench_infer "gflops",
    bench_model "fwd_gflop_exec"), not the model's nominal FLOPs;
  - every rate is the best round of the run (run_*_bench keep the best).
A row whose bench did not run (a CPU without avx512_bf16, a failed server)
is "n/a", never "met".
"""
import json
import os
import re
import sys


def jsonl(path):
    rows = []
    if not os.path.exists(path):
        return rows
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def serve_row(path):
    """The round with the lowest p99 of bench_serve.sh's BENCH lines."""
    if not os.path.exists(path):
        return None
    rows = []
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("BENCH "):
            kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            rows.append({k: float(v) for k, v in kv.items()})
    return min(rows, key=lambda r: r.get("p99_ms", 1e9)) if rows else None


def main(out):
    infer = {s: jsonl(os.path.join(out, "infer_%s.txt" % s)) for s in ("minilm-l6", "bert-base")}
    model = jsonl(os.path.join(out, "model.txt"))
    peaks = [r["gflops"] for rows in list(infer.values()) + [model] for r in rows
             if r.get("bench") == "fp32_peak"]
    peak = max(peaks) if peaks else None
    results = []

    def word(ok):
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    def add(measure, value, text, goal, ok, strict=None, extra=False):
        results.append({"measure": measure, "value": value, "result": text, "goal": goal,
                        "verdict": word(ok), "strict": "-" if strict is None else word(strict),
                        "extra": extra})

    def best(rows, B, T, prec):
        c = [r for r in rows if r.get("B") == B and r.get("T") == T and r.get("precision") == prec
             and "ms_median" in r]
        return min(c, key=lambda r: r["ms_median"]) if c else None

    for size in ("minilm-l6", "bert-base"):
        rows = infer[size]
        # B32 T32: speed ratios (peer time / Miles time) and the fp32 share of peak
        ort = [best(rows, 32, 32, p) for p in ("ort-fp32", "ort-fp32-pooled")]
        orti = [best(rows, 32, 32, p) for p in ("ort-int8", "ort-int8-pooled")]
        for prec, goal, g in (("fp32", 1.0, ">= 1.0x ORT fp32"), ("bf16", 1.6, ">= 1.6x ORT fp32"),
                              ("int8", 2.5, ">= 2.5x ORT fp32")):
            m = best(rows, 32, 32, prec)
            if m and all(ort):
                rat = [o["ms_median"] / m["ms_median"] for o in ort]
                add("%s B32 T32 %s vs ORT fp32" % (size, prec), rat[0],
                    "%.2fx (pooled export %.2fx)" % (rat[0], rat[1]), g, rat[0] >= goal, rat[1] >= goal)
            else:
                add("%s B32 T32 %s vs ORT fp32" % (size, prec), None, "not run", g, None)
            if prec == "fp32":
                ok = m and peak
                share = m["gflops"] / peak if ok else None
                add("%s B32 T32 fp32 share of measured peak" % size, share,
                    "%.0f%% (%.0f of %.0f GFLOP/s executed)" % (100 * share, m["gflops"], peak) if ok else "not run",
                    ">= 75%", share >= 0.75 if ok else None)
            if prec == "int8":
                if m and all(orti):
                    rat = [o["ms_median"] / m["ms_median"] for o in orti]
                    add("%s B32 T32 int8 vs ORT int8" % size, rat[0],
                        "%.2fx (pooled export %.2fx)" % (rat[0], rat[1]), ">= 1.0x ORT int8",
                        rat[0] >= 1.0, rat[1] >= 1.0)
                else:
                    add("%s B32 T32 int8 vs ORT int8" % size, None, "not run", ">= 1.0x ORT int8", None)
        # B1 T32 latency: Miles' time as a fraction of ORT fp32's
        ort1 = [best(rows, 1, 32, p) for p in ("ort-fp32", "ort-fp32-pooled")]
        for prec, goal, g in (("fp32", 1.0, "<= 1.0x ORT fp32 time"), ("int8", 0.5, "<= 0.5x ORT fp32 time")):
            m = best(rows, 1, 32, prec)
            if m and all(ort1):
                fr = [m["ms_median"] / o["ms_median"] for o in ort1]
                add("%s B1 T32 %s latency" % (size, prec), fr[0],
                    "%.2f ms = %.2fx ORT fp32's time (pooled export %.2fx)" % (m["ms_median"], fr[0], fr[1]),
                    g, fr[0] <= goal, fr[1] <= goal)
            else:
                add("%s B1 T32 %s latency" % (size, prec), None, "not run", g, None)

    # bert-base train step vs PyTorch, and its share of peak
    for T in (32, 128):
        mr = [r for r in model if r.get("bench") == "model" and r.get("T") == T]
        mi = [r for r in mr if r.get("impl") == "miles"]
        pt = [r for r in mr if r.get("impl") == "torch"]
        if mi and pt:
            m = max(mi, key=lambda r: r["train_seq_per_s"])
            t = max(pt, key=lambda r: r["train_seq_per_s"])
            rat = m["train_seq_per_s"] / t["train_seq_per_s"]
            add("bert-base B32 T%d train step vs PyTorch %s" % (T, t.get("torch", "?")), rat,
                "%.2fx (%.2f vs %.2f seq/s)" % (rat, m["train_seq_per_s"], t["train_seq_per_s"]),
                ">= 1.5x", rat >= 1.5)
            if peak:
                fl = 3 * m.get("fwd_gflop_exec", m["fwd_gflop"]) / m["B"]  # GFLOP per sequence, executed
                share = fl * m["train_seq_per_s"] / peak
                add("bert-base B32 T%d train step share of measured peak" % T, share,
                    "%.0f%% executed (%.0f%% in the model's FLOPs)"
                    % (100 * share, 100 * 3 * m["fwd_gflop"] / m["B"] * m["train_seq_per_s"] / peak),
                    ">= 60%", share >= 0.60)
        else:
            add("bert-base B32 T%d train step vs PyTorch" % T, None, "not run", ">= 1.5x", None)

    # miles-serve, one title per request, 8 connections: 2x the 203 req/s of
    # the issue at p99 <= 30 ms; the goal is the default (fp32) server's, bf16
    # and int8 are shown against the same bar but do not count in all_met
    for prec in ("fp32", "bf16", "int8"):
        s = serve_row(os.path.join(out, "serve_%s.txt" % prec))
        extra = prec != "fp32"
        g = ">= 406 req/s at p99 <= 30 ms" + (" (shown, not a goal)" if extra else "")
        if s and s.get("requests", 0) > 0:
            errs = sum(v for k, v in s.items() if k.startswith("errors_"))
            ok = s["rps"] >= 406 and s["p99_ms"] <= 30 and errs == 0
            add("miles-serve MiniLM %s" % prec, s["rps"],
                "%.0f req/s, p99 %.1f ms, %d errors" % (s["rps"], s["p99_ms"], errs), g, ok, extra=extra)
        else:
            add("miles-serve MiniLM %s" % prec, None, "not run", g, None, extra=extra)

    meta = open(os.path.join(out, "meta.txt")).read().split("\n") if os.path.exists(os.path.join(out, "meta.txt")) else []
    cpu = {}
    if os.path.exists(os.path.join(out, "lscpu.txt")):
        for line in open(os.path.join(out, "lscpu.txt")):
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU family", "Model", "CPU(s)"):
                cpu[k.strip()] = v.strip()
            if k.strip() == "Flags":
                fl = v.split()
                cpu["flags"] = " ".join(f for f in fl if re.match(r"avx512(f|bw|vl|_bf16|_vnni)$|avx_vnni$|amx|avx2$|fma$", f))
    summary = {"date": meta[0] if meta else "", "commit": meta[1] if len(meta) > 1 else "",
               "command": meta[2] if len(meta) > 2 else "", "cpu": cpu,
               "fp32_peak_gflops": peak, "rows": results,
               "all_met": all(r["verdict"] == "met" for r in results if not r["extra"]),
               "all_met_strict": all(r["verdict"] == "met" and r["strict"] in ("met", "-")
                                     for r in results if not r["extra"])}
    with open(os.path.join(out, "summary.json.tmp"), "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(os.path.join(out, "summary.json.tmp"), os.path.join(out, "summary.json"))
    lines = ["Machine: `lscpu` \"%s\" (family %s model %s), %s CPUs, %s; %s, commit %s; `%s`"
             % (cpu.get("Model name", "?"), cpu.get("CPU family", "?"), cpu.get("Model", "?"),
                cpu.get("CPU(s)", "?"), cpu.get("flags", ""), summary["date"], summary["commit"], summary["command"]),
             "Measured fp32 peak (FMA loop, best of the run): %s GFLOP/s" % ("%.0f" % peak if peak else "?"), "",
             "| measure | result | goal | verdict | strict (pooled export) |", "|---|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s | %s |" % (r["measure"], r["result"], r["goal"], r["verdict"], r["strict"])
              for r in results]
    yn = lambda b: "yes" if b else "no"
    lines += ["", "all goals met: %s; also against the pooled export: %s"
              % (yn(summary["all_met"]), yn(summary["all_met_strict"]))]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: cpu_goals.py OUT_DIR")
    main(sys.argv[1])
