#!/usr/bin/python3
"""Reference data for bfloat16 and float16 (docs/precision.md), from PyTorch.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_lowp.py
Writes tests/reference/lowp.json and tests/reference/lowp.safetensors;
tests/lua/lowp_spec.lua reads both.

lowp.json:
- "convert": [f32_bits, bf16_bits, f16_bits] rows, the bits PyTorch gives
  converting that float32 to bfloat16 and to float16: a few thousand
  values chosen where rounding is decided (each format's values, the
  midpoints between neighbours, which tie to even both ways, one float32
  ulp either side of them, both formats' subnormals, the largest finite
  values and the overflow to inf, +-0, +-inf, NaN). A NaN's bits are
  PyTorch's; the spec asks only that NaN stays NaN.
- "ops": PyTorch 1.13 CPU results on bfloat16 / float16 tensors where the
  semantics are what is checked (a number beside a low-precision tensor is
  rounded to its dtype first, sums accumulate in float32, type promotion).
  Each: name, dtype, inputs (values), and out {values, dtype}.
- "finfo": torch.finfo of the four float dtypes.
- "file": the tensors in lowp.safetensors, by name: dtype, shape, values.

lowp.safetensors is laid out as PyTorch's safetensors.torch.save_file
writes it (sorted names, header padded with spaces to 8 bytes, raw
little-endian data); the Python package is not in Debian, so by hand.
"""
import json
import math
import os
import random
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
random.seed(20240613)
torch.manual_seed(20240613)


def f32_of_bits(b):
    return struct.unpack("<f", struct.pack("<I", b & 0xFFFFFFFF))[0]


def bits_of_f32(v):
    return struct.unpack("<I", struct.pack("<f", v))[0]


def lowp_bits(t):
    """the 16-bit patterns of a bfloat16 or float16 tensor"""
    return [v & 0xFFFF for v in t.view(torch.int16).tolist()]


# ---- conversion: the float32 inputs ---------------------------------------
inputs = set()


def add(b):
    inputs.add(b & 0xFFFFFFFF)
    inputs.add((b ^ 0x80000000) & 0xFFFFFFFF)  # and its negative


# bfloat16: a value is the top 16 bits; the midpoint to the next one is
# +0x8000, ties to even decide by the low bit of the top half
for _ in range(120):
    hi = random.randrange(0x0000, 0x7F80)  # finite, positive
    base = hi << 16
    for d in (0, 0x8000, 0x7FFF, 0x8001, 0x0001, 0xFFFF):
        add(base + d)
# both parities at a tie, explicitly, across exponents
for e in range(0, 255, 8):
    for m in (0x00, 0x01, 0x7E, 0x7F):
        add((e << 23) | (m << 16) | 0x8000)
# float32 subnormals (bfloat16 keeps them: the same top bits)
for b in (0x00000001, 0x00008000, 0x00008001, 0x00007FFF, 0x00018000, 0x007FFFFF, 0x007F8000,
          0x007FC000, 0x00400000):
    add(b)
# the largest finite bfloat16 (0x7F7F) and what rounds past it to inf
for b in (0x7F7F0000, 0x7F7F7FFF, 0x7F7F8000, 0x7F7F8001, 0x7F7FFFFF, 0x7F7E8000):
    add(b)

# float16: enumerate values across its range, as float32, and their
# midpoints (an exact float32) and one float32 ulp either side
f16_all = torch.arange(0, 0x7C00, dtype=torch.int32).to(torch.int16).view(torch.float16)
f16_vals = f16_all.float()
picks = sorted(set(random.sample(range(0, 0x7BFF), 200)) |
               set(range(0, 24)) | set(range(0x3BF8, 0x3C08)) | set(range(0x03F8, 0x0408)) |
               set(range(0x7BF0, 0x7BFF)))
for i in picks:
    lo, hi = f16_vals[i].item(), f16_vals[i + 1].item()
    mid = bits_of_f32((lo + hi) / 2)  # exact in float32: one more bit
    add(bits_of_f32(lo))
    for d in (0, -1, 1):
        add(mid + d)
# overflow: 65504 is the largest; 65520 (the midpoint to 65536) ties up to inf
for v in (65504.0, 65519.0, 65520.0, 65536.0, 1e5, 3.4e38):
    add(bits_of_f32(v))
add(bits_of_f32(65520.0) - 1)
# below the smallest subnormal 2^-24: 2^-25 ties to 0, just above goes up
for b in (bits_of_f32(2.0 ** -25), bits_of_f32(2.0 ** -26), bits_of_f32(3 * 2.0 ** -25),
          bits_of_f32(2.0 ** -14), bits_of_f32(2.0 ** -14 - 2.0 ** -25)):
    for d in (-1, 0, 1):
        add(b + d)
# specials
for b in (0x00000000, 0x7F800000, 0x7FC00000, 0x7FA00000, 0x7F800001, 0x3F800000):
    add(b)

rows = sorted(inputs)
x = torch.tensor([f32_of_bits(b) for b in rows], dtype=torch.float32)
# the values must be the exact float32s (NaN payloads aside)
assert all(bits_of_f32(v) == b for v, b in zip(x.tolist(), rows)
           if not math.isnan(f32_of_bits(b)))
bf = lowp_bits(x.bfloat16())
hf = lowp_bits(x.half())
convert = [[b, p, q] for b, p, q in zip(rows, bf, hf)]


# ---- ops whose semantics matter --------------------------------------------
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.bfloat16: "bfloat16",
         torch.float16: "float16", torch.int64: "int64", torch.uint8: "uint8"}


def num(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if v != v else ("inf" if v > 0 else "-inf")
    return v


def enc(t):
    vals = t.detach().double().reshape(-1).tolist() if t.is_floating_point() else t.reshape(-1).tolist()
    return {"values": [num(v) for v in vals], "shape": list(t.shape), "dtype": NAMES[t.dtype]}


ops = []


def op(name, dtype, values, fn, **kw):
    """one case; none where PyTorch 1.13's CPU has no kernel for the dtype
    (softmax of float16, for one). values: a list, or a count of ones"""
    ones = isinstance(values, int)
    t = torch.ones(values, dtype=dtype) if ones else torch.tensor(values).to(dtype)
    try:
        out = fn(t)
    except RuntimeError:
        return
    c = {"name": name, "dtype": NAMES[dtype], "input": {"ones": values} if ones else enc(t),
         "out": enc(out), **kw}
    ops.append(c)


for dt in (torch.bfloat16, torch.float16):
    r = torch.randn(64) * 3
    # a number beside the tensor is rounded to its dtype first (PyTorch 1.13 CPU)
    op("mul_number", dt, [3.0, 1.5, -7.25, 100.0], lambda t: t * 1.0049, number=1.0049)
    op("add_number", dt, [1.0, 256.0, 2048.0, -3.0], lambda t: t + 0.3, number=0.3)
    op("div_number", dt, [1.0, 3.0, 10.0, -5.0], lambda t: t / 3.0, number=3.0)
    # 4096 ones sum to 4096 (float32 accumulation); mean and var round once
    op("sum_ones", dt, 4096, lambda t: t.sum())
    op("sum", dt, r.tolist(), lambda t: t.sum())
    op("mean", dt, r.tolist(), lambda t: t.mean())
    op("var", dt, r.tolist(), lambda t: t.var())
    op("softmax", dt, r[:16].tolist(), lambda t: t.softmax(0))
    op("log_softmax", dt, r[:16].tolist(), lambda t: t.log_softmax(0))
    op("cumsum", dt, r[:16].tolist(), lambda t: t.cumsum(0))
    op("exp", dt, r[:16].tolist(), lambda t: t.exp())
    op("sigmoid", dt, r[:16].tolist(), lambda t: t.sigmoid())
    op("amax", dt, r[:16].tolist(), lambda t: t.amax())
    op("to_float32", dt, r[:16].tolist(), lambda t: t.float())
    # promotion: float32 and float64 win, the two 2-byte floats meet in float32,
    # integers join the low dtype
    op("plus_float32", dt, [1.5, 2.5], lambda t: t + torch.tensor([0.1, 0.2], dtype=torch.float32))
    op("plus_float64", dt, [1.5, 2.5], lambda t: t + torch.tensor([0.1, 0.2], dtype=torch.float64))
    op("plus_int64", dt, [1.5, 2.5], lambda t: t + torch.tensor([1, 2]))
    op("plus_uint8", dt, [1.5, 2.5], lambda t: t + torch.tensor([1, 2], dtype=torch.uint8))
    other = torch.float16 if dt == torch.bfloat16 else torch.bfloat16
    op("plus_other_lowp", dt, [1.5, 2.5], lambda t: t + torch.tensor([0.1, 0.2], dtype=other))

finfo = {}
for dt in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
    f = torch.finfo(dt)
    finfo[NAMES[dt]] = {"bits": f.bits, "eps": f.eps, "max": f.max, "min": f.min, "tiny": f.tiny,
                        "smallest_normal": f.smallest_normal, "resolution": f.resolution}


# ---- a safetensors file with BF16 and F16 entries ----------------------------
ST = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}
tensors = {
    "bf16": (torch.randn(3, 5) * 100).bfloat16(),
    "f16": (torch.randn(4, 2) * 10).half(),
    "f16_special": torch.tensor([65504.0, -65504.0, 2.0 ** -24, float("inf"), -0.0, 0.5]).half(),
    "bf16_special": torch.tensor([3.3895313892515355e38, 2.0 ** -133, float("-inf"), -0.0]).bfloat16(),
    "bf16_empty": torch.zeros(0, 3).bfloat16(),
    "f32": torch.tensor([1.0, -2.0]),
}
header, blobs, offset = {}, [], 0
for name in sorted(tensors):
    t = tensors[name].contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
    else:
        raw = t.numpy().astype("<f4").tobytes()
    header[name] = {"dtype": ST[t.dtype], "shape": list(t.shape),
                    "data_offsets": [offset, offset + len(raw)]}
    blobs.append(raw)
    offset += len(raw)
header["__metadata__"] = {"format": "pt"}
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * ((8 - (8 + len(text)) % 8) % 8)
with open(os.path.join(HERE, "lowp.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
file_spec = {name: enc(t) for name, t in tensors.items()}

with open(os.path.join(HERE, "lowp.json"), "w") as f:
    json.dump({"convert": convert, "ops": ops, "finfo": finfo, "file": file_spec}, f,
              separators=(",", ":"))
    f.write("\n")
print(f"lowp.json: {len(convert)} conversions, {len(ops)} ops; lowp.safetensors: {offset} bytes")
