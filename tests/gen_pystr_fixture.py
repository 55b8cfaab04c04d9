#!/usr/bin/env python3
"""The case properties str.lower() uses for its final-sigma rule, measured
through str.lower() itself for every code point: tests/fixtures/pystr_cases.json,
read by tests/test_data.c (test_pystr_case_classes) against libmiles/pystr.c.

    python3 tests/gen_pystr_fixture.py        # CPython 3.11 (Unicode 14.0)

For a code point c, "ΑΣ" + c and "ΑΣ" + c + "Β" lowered give Σ as σ or ς:
  σ σ  -> A: cased (and not case-ignorable)
  ς σ  -> B: case-ignorable (skipped on the way to the next letter)
  ς ς  -> C: neither
Unassigned code points (category Cn) and surrogates are U: not compared (a
newer Unicode in utf8proc may have assigned them).  Written as ranges
[first, count, class].
"""
import json
import os
import sys
import unicodedata

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "pystr_cases.json")


def case_class(c):
    if 0xD800 <= c <= 0xDFFF or unicodedata.category(chr(c)) == "Cn":
        return "U"
    ch = chr(c)
    t1 = ("ΑΣ" + ch).lower()[1]
    t2 = ("ΑΣ" + ch + "Β").lower()[1]
    return {("σ", "σ"): "A", ("ς", "σ"): "B", ("ς", "ς"): "C"}[(t1, t2)]


def main():
    ranges = []
    for c in range(0x110000):
        k = case_class(c)
        if ranges and ranges[-1][2] == k:
            ranges[-1][1] += 1
        else:
            ranges.append([c, 1, k])
    out = {"generator": "tests/gen_pystr_fixture.py", "python": sys.version.split()[0],
           "unicode": unicodedata.unidata_version, "ranges": ranges}
    with open(OUT + ".tmp", "w") as f:
        json.dump(out, f, separators=(",", ":"))
    os.replace(OUT + ".tmp", OUT)
    print("wrote", OUT, len(ranges), "ranges")


if __name__ == "__main__":
    main()
