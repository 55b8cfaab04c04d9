#!/usr/bin/env python3
"""Write tests/fixtures/st_python.safetensors with the Python safetensors library
(the independent reference for libmiles/safetensors.c; see tests/test_safetensors.c).

  /opt/miles-ref/bin/python tests/gen_safetensors_fixture.py

Tensors (all values are produced by torch, so the C reader is checked against
torch's own f16/bf16 -> f32 conversion):
  f16_all      F16  [65536]   every half bit pattern 0x0000..0xFFFF in order
  f16_all_f32  F32  [65536]   torch's float32 conversion of f16_all
  bf16_vals    BF16 [4,8]     edge values (0, -0, subnormals, inf, nan, max, min normal ...)
  bf16_vals_f32 F32 [4,8]     torch's float32 conversion
  f32_mat      F32  [3,5]     arange / 7 - 1
  f64_vec      F64  [6]       values including 1/3 (rounded to f32 by the reader)
  i64_ids      I64  [2,4]     token-id-like values, incl. negative and 2^31-1
  i64_big      I64  [2]       a value outside int32 (reader must give MILES_ERANGE)
  i32_v, i16_v, i8_v, u8_v, bool_v   small vectors of each integer dtype
  empty        F32  [0,4]     zero elements
  scalar       F32  []        0-dim
metadata: {"format": "pt", "miles": "fixture-v1"}

Also writes st_python_single.safetensors: three F32/I64 tensors and ONE metadata
key, which the C writer must reproduce byte for byte (Python's metadata is a
hash map, so only a single key has a deterministic order).
"""
import os
import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "fixtures")
os.makedirs(out, exist_ok=True)

bits = torch.arange(0, 65536, dtype=torch.int32)
bits = torch.where(bits >= 32768, bits - 65536, bits).to(torch.int16)
f16_all = bits.view(torch.float16)
f16_all_f32 = f16_all.to(torch.float32)

bf_src = torch.tensor([
    0.0, -0.0, 1.0, -1.0, 0.5, 3.140625, -2.75, 65504.0,
    float("inf"), float("-inf"), float("nan"), 1e-40, -1e-40, 1.1754943508222875e-38, 3.3895313892515355e+38, -3.3895313892515355e+38,
    1e-3, 2e-3, 123.5, -0.0078125, 7.0, 1e10, -1e-10, 0.1,
    0.2, 0.3, 1e30, 1e-30, 9.1835e-41, 255.0, 256.0, 257.0], dtype=torch.float32).reshape(4, 8)
bf16_vals = bf_src.to(torch.bfloat16)
bf16_vals_f32 = bf16_vals.to(torch.float32)

tensors = {
    "f16_all": f16_all,
    "f16_all_f32": f16_all_f32,
    "bf16_vals": bf16_vals,
    "bf16_vals_f32": bf16_vals_f32,
    "f32_mat": torch.arange(15, dtype=torch.float32).reshape(3, 5) / 7 - 1,
    "f64_vec": torch.tensor([0.0, 1.0 / 3.0, -2.5, 1e-300, 1e300, 123456789.123], dtype=torch.float64),
    "i64_ids": torch.tensor([[101, 7592, 2088, 102], [0, -5, 2147483647, -2147483648]], dtype=torch.int64),
    "i64_big": torch.tensor([1, 2**31], dtype=torch.int64),
    "i32_v": torch.tensor([-7, 0, 2147483647], dtype=torch.int32),
    "i16_v": torch.tensor([-32768, 5, 32767], dtype=torch.int16),
    "i8_v": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "u8_v": torch.tensor([0, 200, 255], dtype=torch.uint8),
    "bool_v": torch.tensor([True, False, True, True]),
    "empty": torch.zeros(0, 4, dtype=torch.float32),
    "scalar": torch.tensor(2.5, dtype=torch.float32),
}
save_file(tensors, os.path.join(out, "st_python.safetensors"),
          metadata={"format": "pt", "miles": "fixture-v1"})

single = {
    "b.weight": torch.tensor([[1.0, -2.0], [0.25, 4.0]], dtype=torch.float32),
    "a.bias": torch.tensor([0.5, -0.5, 1.5], dtype=torch.float32),
    "ids": torch.tensor([3, 1, 4, 1, 5], dtype=torch.int64),
}
save_file(single, os.path.join(out, "st_python_single.safetensors"), metadata={"config": "{\"h\": 2}"})
print("wrote", os.path.join(out, "st_python.safetensors"), "and st_python_single.safetensors")
