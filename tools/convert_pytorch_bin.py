#!/usr/bin/env python3
"""Convert an HF model directory's pytorch_model.bin to model.safetensors.

    python tools/convert_pytorch_bin.py DIR

libmiles reads only safetensors (a pickle file can run arbitrary code when
loaded; safetensors is plain data).  This one-time conversion needs torch and
safetensors (pip install torch safetensors).  It loads DIR/pytorch_model.bin
(or the shards listed in DIR/pytorch_model.bin.index.json) on the CPU with
weights_only=True where torch supports it, un-shares tied tensors (e.g. the MLM
decoder tied to the word embeddings), and writes DIR/model.safetensors
atomically (temp file + rename) with metadata {"format": "pt"}.  Tensor names
are kept as they are: libmiles accepts every HF BERT naming scheme.
"""
import json
import os
import sys


def load_bin(path, torch):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu")


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 2
    d = argv[1]
    import torch
    from safetensors.torch import save_file

    single = os.path.join(d, "pytorch_model.bin")
    index = os.path.join(d, "pytorch_model.bin.index.json")
    if os.path.isfile(single):
        files = [single]
    elif os.path.isfile(index):
        with open(index) as f:
            files = sorted(set(os.path.join(d, v) for v in json.load(f)["weight_map"].values()))
    else:
        print(f"{d}: no pytorch_model.bin (or pytorch_model.bin.index.json)", file=sys.stderr)
        return 1
    state = {}
    for p in files:
        for k, v in load_bin(p, torch).items():
            if k in state:
                print(f"{p}: tensor {k} appears in two shards", file=sys.stderr)
                return 1
            state[k] = v
    out = {}
    seen = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            continue
        v = v.detach().contiguous()
        key = (v.data_ptr(), v.numel(), v.dtype)
        # safetensors refuses tensors that share memory: give tied ones their own copy
        out[k] = v.clone() if key in seen and v.numel() > 0 else v
        seen[key] = k
    dst = os.path.join(d, "model.safetensors")
    tmp = dst + ".tmp"
    save_file(out, tmp, metadata={"format": "pt"})
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dst)
    print(f"wrote {dst}: {len(out)} tensors from {len(files)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
