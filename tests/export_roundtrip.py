#!/usr/bin/env python3
"""Round trip of `miles-export`: Miles' own forward pass vs the exported models.

For each checkpoint below, the script exports it both ways with miles-export and,
on 50 real video titles (youtube_trending_2017_v1/USvideos.csv, tokenized by
BertTokenizerFast loaded from the exported directory) with random standardized
features, compares
  (a) transformers.BertModel + the exported miles_head.py      (PyTorch)
  (b) onnxruntime on the exported ONNX model (onnx.checker'd first)
against
  (c) Miles' forward pass (miles-export --selftest-dump),
on logits, viral_prob and velocity.  It fails when any max abs error > 1e-4.

Checkpoints:
  fixture     tests/fixtures/export_tiny.safetensors: a small random model (larger
              weights than an init, so outputs vary) over tests/fixtures/export_vocab/
              (made by --write-fixture; the C test uses it)
  tiny        miles-train --init random --size tiny, 5 steps on synthetic data
  tiny-cls    same with --pooling cls
  tiny-mean   --preset seed-notebook --pooling mean (raw features, 2 fusion layers,
              linear velocity head)
  minilm      miles-train --model models/all-MiniLM-L6-v2, 2 steps (real size)

Usage (the reference stack: make ref-env, plus onnx/onnxruntime pinned in
tests/requirements-ref.txt):
  /opt/miles-ref/bin/python tests/export_roundtrip.py [--bin build/bin] [--work DIR]
      [--only fixture,tiny,...] [--write-fixture]
--write-fixture regenerates tests/fixtures/export_tiny.safetensors,
tests/fixtures/export_vocab/vocab.txt and tests/fixtures/export_io.safetensors
(inputs + Miles/onnxruntime/PyTorch outputs for the C test).
"""
import argparse
import csv
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
TOL = 1e-4
N_TITLES = 50
FEATURES = 18


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def titles(shared):
    path = os.path.join(shared, "data", "youtube_trending_2017_v1", "USvideos.csv")
    seen, out = set(), []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            t = row["title"]
            if t and t not in seen:
                seen.add(t)
                out.append(t)
    # spread over the file, deterministic
    step = max(1, len(out) // N_TITLES)
    return out[::step][:N_TITLES]


# ---------------------------------------------------------------- fixture model

def make_fixture_vocab(all_titles, out_dir):
    """A 1000-token WordPiece vocabulary trained on the titles (HF tokenizers)."""
    from tokenizers import BertWordPieceTokenizer
    tok = BertWordPieceTokenizer(lowercase=True)
    tok.train_from_iterator(all_titles, vocab_size=1000, min_frequency=2,
                            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    os.makedirs(out_dir, exist_ok=True)
    tok.save_model(out_dir)
    with open(os.path.join(out_dir, "vocab.txt"), encoding="utf-8") as f:
        return sum(1 for _ in f)


def make_fixture_checkpoint(path, vocab_size, data_json):
    """A Miles checkpoint (safetensors + metadata) of a small random model.

    Weights are larger than an initialization (std 0.2 instead of 0.02) so that
    outputs differ clearly between titles and the comparison means something."""
    from safetensors.numpy import save_file
    cfg = {"preset": "miles", "vocab_size": vocab_size, "hidden_size": 32, "num_hidden_layers": 2,
           "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 40,
           "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
           "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "pooling": "pooler",
           "text_dropout": 0.1, "num_features": FEATURES, "numeric_widths": [16],
           "numeric_dropouts": [0.3], "fusion_widths": [24], "fusion_dropouts": [0.2],
           "velocity_activation": "sigmoid"}
    rng = np.random.default_rng(20261127)
    H, I = cfg["hidden_size"], cfg["intermediate_size"]
    t = {}

    def lin(name, o, i):
        t[name + ".weight"] = (rng.standard_normal((o, i)) * 0.2).astype(np.float32)
        t[name + ".bias"] = (rng.standard_normal(o) * 0.1).astype(np.float32)

    def ln(name):
        t[name + ".weight"] = (1 + rng.standard_normal(H) * 0.1).astype(np.float32)
        t[name + ".bias"] = (rng.standard_normal(H) * 0.1).astype(np.float32)

    t["bert.embeddings.word_embeddings.weight"] = (rng.standard_normal((vocab_size, H)) * 0.5).astype(np.float32)
    t["bert.embeddings.position_embeddings.weight"] = (rng.standard_normal((cfg["max_position_embeddings"], H)) * 0.5).astype(np.float32)
    t["bert.embeddings.token_type_embeddings.weight"] = (rng.standard_normal((2, H)) * 0.5).astype(np.float32)
    ln("bert.embeddings.LayerNorm")
    for l in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{l}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            lin(p + n, H, H)
        ln(p + "attention.output.LayerNorm")
        lin(p + "intermediate.dense", I, H)
        lin(p + "output.dense", H, I)
        ln(p + "output.LayerNorm")
    lin("bert.pooler.dense", H, H)
    lin("numeric_mlp.0", 16, FEATURES)
    lin("fusion.0", 24, H + 16)
    lin("classifier", 2, 24)
    lin("regressor", 1, 24)
    meta = {"format": "miles-checkpoint-1", "config": json.dumps(cfg), "decision_threshold": "0.4375",
            "text_clean": "none", "vocab_dir": "tests/fixtures/export_vocab",
            "train_config": json.dumps({"max_len": 40})}
    if data_json:
        meta["data"] = data_json
    save_file(t, path, metadata=meta)


# ---------------------------------------------------------------- checkpoints

def train_checkpoints(args, work):
    b = args.bin
    out = {}
    synth = os.path.join(work, "synth.csv")
    prep = os.path.join(work, "synth.milesdat")
    vocab = os.path.join(ROOT, "tests", "fixtures", "tokenizer_vocab.txt")
    run([f"{b}/miles-data", "synth", "--rows", "600", "--seed", "7", "--out", synth])
    run([f"{b}/miles-data", "prepare", synth, "--out", prep, "--vocab", vocab, "--max-len", "48", "-q"])
    common = ["--data", prep, "--max-steps", "5", "--max-len", "48", "--batch-size", "16", "--quiet"]
    variants = {"tiny": [], "tiny-cls": ["--pooling", "cls"],
                "tiny-mean": ["--preset", "seed-notebook", "--pooling", "mean"]}
    for name, extra in variants.items():
        if args.only and name not in args.only:
            continue
        d = os.path.join(work, "run-" + name)
        run([f"{b}/miles-train", "--init", "random", "--size", "tiny", "--vocab", vocab, "--out", d] + common + extra)
        out[name] = os.path.join(d, "best.safetensors")
    minilm = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
    if (not args.only or "minilm" in args.only) and os.path.exists(os.path.join(minilm, "model.safetensors")):
        prep2 = os.path.join(work, "synth-minilm.milesdat")
        run([f"{b}/miles-data", "prepare", synth, "--out", prep2, "--vocab", minilm, "--max-len", "48", "-q"])
        d = os.path.join(work, "run-minilm")
        run([f"{b}/miles-train", "--model", minilm, "--data", prep2, "--out", d, "--max-steps", "2",
             "--max-len", "48", "--batch-size", "8", "--eval-every", "2", "--quiet"])
        out["minilm"] = os.path.join(d, "best.safetensors")
    return out


# ---------------------------------------------------------------- comparison

def load_head_module(export_dir):
    spec = importlib.util.spec_from_file_location("miles_head_" + str(abs(hash(export_dir))),
                                                  os.path.join(export_dir, "miles_head.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_bert_loading(export_dir, pooling):
    """Plain BertModel.from_pretrained: no missing keys; only miles.* unexpected."""
    from transformers import BertModel
    _, info = BertModel.from_pretrained(export_dir, add_pooling_layer=pooling == "pooler",
                                        output_loading_info=True)
    bad_unexpected = [k for k in info["unexpected_keys"] if not k.startswith("miles.")]
    assert not info["missing_keys"], f"missing keys: {info['missing_keys']}"
    assert not bad_unexpected, f"unexpected non-head keys: {bad_unexpected}"
    assert not info["mismatched_keys"], f"mismatched: {info['mismatched_keys']}"
    return len(info["unexpected_keys"])


def roundtrip(args, name, ckpt, texts, work):
    import onnx
    import onnxruntime as ort
    import torch
    from safetensors.numpy import load_file, save_file
    from transformers import BertTokenizerFast

    hf = os.path.join(work, f"export-{name}")
    onx = os.path.join(work, f"export-{name}.onnx")
    shutil.rmtree(hf, ignore_errors=True)
    if os.path.exists(onx):
        os.remove(onx)
    run([f"{args.bin}/miles-export", "--checkpoint", ckpt, "--format", "hf", "--out", hf])
    run([f"{args.bin}/miles-export", "--checkpoint", ckpt, "--format", "onnx", "--out", onx])
    with open(os.path.join(hf, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    pooling = cfg["miles"]["pooling"]

    tok = BertTokenizerFast.from_pretrained(hf)
    enc = tok(texts, padding=True, truncation=True, max_length=cfg["miles"]["max_len"], return_tensors="np")
    ids = enc["input_ids"].astype(np.int64)
    mask = enc["attention_mask"].astype(np.int64)
    tt = enc["token_type_ids"].astype(np.int64)
    feats = np.random.default_rng(1234).standard_normal((len(texts), FEATURES)).astype(np.float32)

    # (c) Miles
    inp = os.path.join(work, f"inputs-{name}.safetensors")
    outp = os.path.join(work, f"miles-{name}.safetensors")
    save_file({"input_ids": ids, "attention_mask": mask, "token_type_ids": tt, "features": feats}, inp)
    run([f"{args.bin}/miles-export", "--checkpoint", ckpt, "--selftest-dump", "--inputs", inp, "--out", outp])
    miles = load_file(outp)

    # (a) PyTorch: BertModel + miles_head.py
    n_unexp = check_bert_loading(hf, pooling)
    mod = load_head_module(hf)
    model = mod.MilesModel.from_pretrained(hf)
    with torch.no_grad():
        o = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(tt), torch.from_numpy(feats))
        # encoder-level comparison (real-size checkpoints have small head weights
        # that would hide encoder errors in the final outputs)
        bo = model.bert(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        token_type_ids=torch.from_numpy(tt))
        m3 = torch.from_numpy(mask).float().unsqueeze(-1)
        text = {"pooler": bo.pooler_output, "cls": bo.last_hidden_state[:, 0],
                "mean": (bo.last_hidden_state * m3).sum(1) / m3.sum(1).clamp(min=1e-9)}[pooling]
    pt = {k: v.numpy() for k, v in o.items()}
    # padded positions are not compared: nothing downstream reads them
    real = mask.astype(bool)
    enc_err = {"last_hidden": float(np.max(np.abs(bo.last_hidden_state.numpy()[real] - miles["last_hidden"][real]))),
               "pooled": float(np.max(np.abs(text.numpy() - miles["pooled"])))}

    # (b) onnxruntime
    onnx.checker.check_model(onnx.load(onx), full_check=True)
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt, "features": feats}
    sess = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
    r = sess.run(["logits", "viral_prob", "velocity"], feeds)
    ox = dict(zip(["logits", "viral_prob", "velocity"], r))
    # encoder-level check of the ONNX graph: expose its named intermediates
    dbg = onnx.load(onx)
    for n in ("last_hidden_state", "pooled"):
        dbg.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    dsess = ort.InferenceSession(dbg.SerializeToString(), providers=["CPUExecutionProvider"])
    o_hid, o_pool = dsess.run(["last_hidden_state", "pooled"], feeds)
    enc_err_ort = {"last_hidden": float(np.max(np.abs(o_hid[real] - miles["last_hidden"][real]))),
                   "pooled": float(np.max(np.abs(o_pool - miles["pooled"])))}

    # (b') the --pooled-only graph (last layer on the [CLS] rows alone) in onnxruntime
    onx_po = os.path.join(work, f"export-{name}-pooled-only.onnx")
    if os.path.exists(onx_po):
        os.remove(onx_po)
    run([f"{args.bin}/miles-export", "--checkpoint", ckpt, "--format", "onnx", "--out", onx_po, "--pooled-only"])
    onnx.checker.check_model(onnx.load(onx_po), full_check=True)
    r_po = ort.InferenceSession(onx_po, providers=["CPUExecutionProvider"]).run(["logits", "viral_prob", "velocity"], feeds)
    ox_po = dict(zip(["logits", "viral_prob", "velocity"], r_po))

    res = {}
    for ref_name, ref in (("torch", pt), ("onnxruntime", ox), ("ort-pooled", ox_po)):
        for k in ("logits", "viral_prob", "velocity"):
            assert ref[k].shape == miles[k].shape, f"{name} {ref_name} {k}: shape {ref[k].shape} vs {miles[k].shape}"
            res[(ref_name, k)] = float(np.max(np.abs(ref[k].astype(np.float64) - miles[k].astype(np.float64))))
    for k, e in enc_err.items():
        res[("torch", k)] = e
    for k, e in enc_err_ort.items():
        res[("onnxruntime", k)] = e
    spread = float(np.std(miles["viral_prob"]))
    print(f"{name}: B={ids.shape[0]} T={ids.shape[1]} pooling={pooling} "
          f"(BertModel: 0 missing, {n_unexp} unexpected miles.* keys; viral_prob std {spread:.3g})")
    for (ref_name, k), e in res.items():
        print(f"  max |{ref_name:11s} - miles| {k:11s} = {e:.3e}")
    worst = nan_max(res.values())
    return worst, dict(ids=ids, mask=mask, tt=tt, feats=feats, miles=miles, torch=pt, ort=ox)


def nan_max(values):
    """max() that keeps a NaN (Python's max(0.1, nan) is 0.1)."""
    values = list(values)
    return float("nan") if any(math.isnan(v) for v in values) else max(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--work", default=None, help="work directory (default: a temp dir, removed)")
    ap.add_argument("--shared", default=os.environ.get("MILES_SHARED", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--only", default="", help="comma list of fixture,tiny,tiny-cls,tiny-mean,minilm")
    ap.add_argument("--write-fixture", action="store_true")
    args = ap.parse_args()
    args.only = [s for s in args.only.split(",") if s]
    args.bin = os.path.abspath(args.bin)
    os.chdir(ROOT)   # checkpoints name tests/fixtures/... relative to the repo root
    work = args.work or tempfile.mkdtemp(prefix="miles-export-rt-")
    os.makedirs(work, exist_ok=True)
    texts = titles(args.shared)
    assert len(texts) == N_TITLES

    ckpts = {}
    fixture_ckpt = os.path.join(FIX, "export_tiny.safetensors")
    if args.write_fixture:
        path = os.path.join(args.shared, "data", "youtube_trending_2017_v1", "USvideos.csv")
        with open(path, newline="", encoding="utf-8") as f:
            all_titles = [row["title"] for row in csv.DictReader(f)]
        nv = make_fixture_vocab(all_titles, os.path.join(FIX, "export_vocab"))
        # the scaler JSON of a real prepared file, so "data" is realistic
        data_json = None
        tmp_ck = train_checkpoints(argparse.Namespace(bin=args.bin, only=["tiny"]), work).get("tiny")
        if tmp_ck:
            from safetensors import safe_open
            with safe_open(tmp_ck, framework="np") as f:
                data_json = f.metadata().get("data")
        make_fixture_checkpoint(fixture_ckpt, nv, data_json)
    if not args.only or "fixture" in args.only:
        ckpts["fixture"] = fixture_ckpt
    ckpts.update(train_checkpoints(args, work) if (not args.only or set(args.only) - {"fixture"}) else {})

    worst_all, failed = 0.0, []
    for name, ck in ckpts.items():
        worst, io = roundtrip(args, name, ck, texts, work)
        worst_all = nan_max([worst_all, worst])
        if not worst <= TOL:  # a NaN fails
            failed.append(name)
        if name == "fixture" and args.write_fixture:
            from safetensors.numpy import save_file
            t = {"input_ids": io["ids"], "attention_mask": io["mask"], "token_type_ids": io["tt"],
                 "features": io["feats"]}
            for src, d in (("miles", io["miles"]), ("ort", io["ort"]), ("torch", io["torch"])):
                for k in ("logits", "viral_prob", "velocity"):
                    t[f"{src}.{k}"] = np.ascontiguousarray(d[k].astype(np.float32))
            save_file(t, os.path.join(FIX, "export_io.safetensors"),
                      metadata={"generator": "tests/export_roundtrip.py --write-fixture",
                                "titles": "youtube_trending_2017_v1/USvideos.csv, 50 distinct titles",
                                "features": "numpy default_rng(1234) standard normal"})
            print("wrote tests/fixtures/export_io.safetensors")
    print(f"worst max abs error over {len(ckpts)} checkpoints: {worst_all:.3e} (tolerance {TOL:g})")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print("FAILED:", ", ".join(failed))
        return 1
    print(f"{len(ckpts)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
