#!/usr/bin/env python3
"""Write tests/fixtures/hf_sharded/: a tiny BERT saved by transformers in shards
(the independent reference for sharded HF directories in libmiles/hf.c; see
tests/test_hf_load.c, test_sharded_hf).

  /opt/miles-ref/bin/python tests/gen_hf_sharded.py

BertForSequenceClassification (hidden 16, 1 layer, 2 heads, intermediate 32,
vocab 40, 24 positions), random init with torch.manual_seed(0), saved with
save_pretrained(max_shard_size=2000, safe_serialization=True): transformers
(4.40.2) writes config.json, model.safetensors.index.json and
model-0000k-of-0000n.safetensors with the "bert." names of the BertFor* files
and the classifier head (which Miles ignores as unexpected).

Also writes expected.safetensors: the BertModel state dict in ONE file, under
the Miles names ("bert.<name>"), and last_hidden.safetensors: BertModel's last
hidden state (eval mode) for fixed ids, so the test checks what was loaded and
that the encoder computes what transformers computes with it.
"""
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file

assert transformers.__version__ == "4.40.2", transformers.__version__

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "fixtures", "hf_sharded")
shutil.rmtree(out, ignore_errors=True)

cfg = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=32, max_position_embeddings=24, type_vocab_size=2,
                              hidden_act="gelu", num_labels=2)
torch.manual_seed(0)
model = transformers.BertForSequenceClassification(cfg).eval()
with torch.no_grad():   # biases and LayerNorm are 0/1 at init: make every tensor informative
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.05)
model.save_pretrained(out, max_shard_size=2000, safe_serialization=True)

sd = {"bert." + k: v.contiguous() for k, v in model.bert.state_dict().items() if not k.endswith("position_ids")}
save_file(sd, os.path.join(out, "expected.safetensors"))

ids = torch.tensor([[2, 7, 11, 5, 3, 0, 0], [2, 39, 1, 4, 8, 9, 3]])
mask = (ids != 0).long()
types = torch.tensor([[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1]])
with torch.no_grad():
    h = model.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
save_file({"ids": ids, "mask": mask, "types": types, "last_hidden": h.contiguous()},
          os.path.join(out, "last_hidden.safetensors"))
print(sorted(os.listdir(out)))
