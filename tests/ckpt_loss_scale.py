#!/usr/bin/env python3
"""ckpt_loss_scale.py FILE [SCALE GROWTH]: print a Miles checkpoint's fp16 loss
scaler as SCALE/GROWTH (or "absent"); with SCALE GROWTH, first rewrite them into
its "state" metadata (the safetensors header, padded to 8 bytes; tensors kept).
Used by tests/test_backend_device.sh and tests/test_dp_device.sh to plant a
scale before a resume."""
import json
import struct
import sys

p = sys.argv[1]
raw = open(p, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
st = json.loads(head["__metadata__"]["state"])
if len(sys.argv) > 2:
    st["loss_scale"], st["loss_scale_growth_tracker"] = float(sys.argv[2]), int(sys.argv[3])
    head["__metadata__"]["state"] = json.dumps(st)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    open(p, "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
print("%g/%d" % (st["loss_scale"], st["loss_scale_growth_tracker"]) if "loss_scale" in st else "absent")
