#!/usr/bin/env python3
"""ckpt_loss_scale.py FILE [SCALE GROWTH]: print a Miles checkpoint's fp16 loss
scaler as SCALE/GROWTH (or "absent"); with SCALE GROWTH, first rewrite them into
its "state" metadata (the safetensors header, padded to 8 bytes; tensors kept)
and its header CRC-32 ("header_crc32", libmiles/safetensors.c's canonical text;
checked first against the stored one, so this is also a second implementation
of it).  Used by tests/test_backend_device.sh and tests/test_dp_device.sh to
plant a scale before a resume."""
import json
import struct
import sys
import zlib


def header_crc(head):
    """CRC-32 of: every metadata key but header_crc32 in byte order as key NUL
    value NUL, then every tensor in data order as name NUL dtype NUL
    "d0,d1,..." NUL "begin-end" NUL."""
    md = head.get("__metadata__", {})
    parts = []
    for k in sorted(md, key=lambda s: s.encode()):
        if k != "header_crc32":
            parts += [k, md[k]]
    tensors = sorted((v["data_offsets"][0], k, v) for k, v in head.items() if k != "__metadata__")
    for _, k, v in tensors:
        parts += [k, v["dtype"], ",".join(str(d) for d in v["shape"]), "%d-%d" % tuple(v["data_offsets"])]
    return "%08x" % zlib.crc32(b"".join(p.encode() + b"\0" for p in parts))


p = sys.argv[1]
raw = open(p, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
md = head["__metadata__"]
if "header_crc32" in md and header_crc(head) != md["header_crc32"]:
    sys.exit("%s: header_crc32 %s, computed %s" % (p, md["header_crc32"], header_crc(head)))
st = json.loads(md["state"])
if len(sys.argv) > 2:
    st["loss_scale"], st["loss_scale_growth_tracker"] = float(sys.argv[2]), int(sys.argv[3])
    md["state"] = json.dumps(st)
    if "header_crc32" in md:
        md["header_crc32"] = header_crc(head)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    open(p, "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
print("%g/%d" % (st["loss_scale"], st["loss_scale_growth_tracker"]) if "loss_scale" in st else "absent")
