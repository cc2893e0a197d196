#!/usr/bin/python3
"""Reference vectors for sort, argsort, topk, flip, roll, tril and triu,
computed with PyTorch.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_reorder.py
Writes tests/reference/reorder.json, committed as data so the tests need no
Python. tests/lua/reorder_spec.lua reads it.

Each case:
  name     unique label
  op       sort | argsort | topk | flip | roll | tril | triu
  input    {values (flat, row-major), shape, dtype}
  args     the op's arguments by PyTorch's names (dims 0-based); "t": the
           input is transposed (a strided view) before the op
  outputs  expected tensors {values, shape, dtype}, one per result
  weight   float64 cases: w of loss = sum(values * w) ...
  grad     ... and d loss / d input

NaN and infinities are written as the strings "nan", "inf", "-inf".
sort and argsort run with stable=True: tide's sort is always stable, and
PyTorch's CPU sort is stable in practice either way. topk cases have no
ties among the values they select (PyTorch's order of ties is not
defined), except where the tied values are selected whole.
"""
import json
import os

import torch

from refcases import enc

torch.manual_seed(20240917)

F32, F64, I64, U8 = torch.float32, torch.float64, torch.int64, torch.uint8

cases = []
seen = set()


def call(op, x, a):
    if a.get("t"):
        x = x.t()
    if op == "sort":
        return torch.sort(x, dim=a.get("dim", -1), descending=a.get("descending", False),
                          stable=True)
    if op == "argsort":
        return torch.argsort(x, dim=a.get("dim", -1), descending=a.get("descending", False),
                             stable=True)
    if op == "topk":
        return torch.topk(x, a["k"], dim=a.get("dim", -1), largest=a.get("largest", True))
    if op == "flip":
        return torch.flip(x, a["dims"])
    if op == "roll":
        if "dims" in a:
            return torch.roll(x, a["shifts"], a["dims"])
        return torch.roll(x, a["shifts"])
    if op == "tril":
        return torch.tril(x, a.get("diagonal", 0))
    if op == "triu":
        return torch.triu(x, a.get("diagonal", 0))
    raise ValueError(op)


def add(name, op, x, **a):
    assert name not in seen, name
    seen.add(name)
    leaf = x.detach().clone()
    grad = leaf.dtype == F64
    if grad:
        leaf.requires_grad_(True)
    out = call(op, leaf, a)
    outs = list(out) if isinstance(out, tuple) else [out]
    case = {"name": name, "op": op, "input": enc(x), "args": a,
            "outputs": [enc(o) for o in outs]}
    if grad and outs[0].requires_grad:
        w = torch.randn(outs[0].shape, dtype=F64)
        (g,) = torch.autograd.grad((outs[0] * w).sum(), leaf)
        case["weight"] = enc(w)
        case["grad"] = enc(g)
    cases.append(case)


def rn(*shape, dtype=F64):
    return torch.randn(shape, dtype=dtype)


nan, inf = float("nan"), float("inf")
ties = torch.tensor([3., nan, 1., 3., -inf, nan, 1., inf, 0., -0.])
small = torch.tensor([[2, 0, 1, 2, 0], [1, 1, 0, 2, 2], [0, 2, 2, 1, 0]], dtype=I64)

# ---- sort and argsort ------------------------------------------------------
# (2**62 + 1024: an int64 that a double holds exactly, as the spec reads JSON
# numbers as doubles)
for op in ("sort", "argsort"):
    for desc in (False, True):
        d = "desc" if desc else "asc"
        add(f"{op}_1d_{d}", op, rn(7), descending=desc)
        add(f"{op}_2d_dim0_{d}", op, rn(4, 5), dim=0, descending=desc)
        add(f"{op}_2d_dimneg1_{d}", op, rn(4, 5), dim=-1, descending=desc)
        add(f"{op}_3d_mid_{d}", op, rn(2, 6, 3), dim=1, descending=desc)
        add(f"{op}_3d_neg3_{d}", op, rn(3, 2, 2), dim=-3, descending=desc)
        add(f"{op}_strided_{d}", op, rn(5, 3), dim=1, descending=desc, t=True)
        add(f"{op}_nan_ties_f32_{d}", op, ties.to(F32), descending=desc)
        add(f"{op}_nan_ties_f64_{d}", op, ties.to(F64), descending=desc)
        add(f"{op}_ties_2d_{d}", op, torch.tensor([[1., 1., 0., 1.], [2., 0., 2., 0.]]).to(F64),
            dim=1, descending=desc)
        add(f"{op}_int64_{d}", op, small, dim=1, descending=desc)
        add(f"{op}_int64_dim0_{d}", op, small, dim=0, descending=desc)
        add(f"{op}_int64_big_{d}", op, torch.tensor([2**62, -2**62, 2**62 + 1024, 0, -1]),
            descending=desc)
        add(f"{op}_uint8_{d}", op, torch.tensor([3, 255, 0, 3, 7], dtype=U8), descending=desc)
        add(f"{op}_scalar_{d}", op, torch.tensor(5.0, dtype=F64), descending=desc)
        add(f"{op}_scalar_dim0_{d}", op, torch.tensor(5.0, dtype=F64), dim=0, descending=desc)
        add(f"{op}_empty_{d}", op, torch.zeros(0, 3, dtype=F64), dim=0, descending=desc)
        add(f"{op}_empty_dim1_{d}", op, torch.zeros(0, 3, dtype=F32), dim=1, descending=desc)
        add(f"{op}_long_{d}", op, rn(300), descending=desc)

# ---- topk ------------------------------------------------------------------
add("topk_1d", "topk", rn(8), k=3)
add("topk_1d_smallest", "topk", rn(8), k=3, largest=False)
add("topk_k0", "topk", rn(5), k=0)
add("topk_all", "topk", rn(5), k=5)
add("topk_all_smallest", "topk", rn(5), k=5, largest=False)
add("topk_2d_dim0", "topk", rn(6, 3), k=2, dim=0)
add("topk_2d_dim1", "topk", rn(3, 6), k=4, dim=1)
add("topk_3d_mid_smallest", "topk", rn(2, 7, 3), k=3, dim=-2, largest=False)
add("topk_strided", "topk", rn(6, 4), k=2, dim=1, t=True)
add("topk_f32", "topk", rn(4, 9, dtype=F32), k=3)
add("topk_nan", "topk", torch.tensor([0.5, nan, -2., 4., -inf, 1.]).to(F64), k=3)
add("topk_nan_smallest", "topk", torch.tensor([0.5, nan, -2., 4., -inf, 1.]).to(F64), k=5,
    largest=False)
add("topk_int64", "topk", torch.tensor([[5, -3, 9, 0], [7, 2, -8, 4]]), k=2, dim=1)
add("topk_uint8", "topk", torch.tensor([3, 250, 0, 17, 9], dtype=U8), k=2, largest=False)
add("topk_scalar", "topk", torch.tensor(2.5, dtype=F64), k=1)
add("topk_scalar_k0", "topk", torch.tensor(2.5, dtype=F64), k=0)
add("topk_empty_other_dim", "topk", torch.zeros(0, 4, dtype=F64), k=2, dim=1)
add("topk_long", "topk", rn(500), k=7)

# ---- flip --------------------------------------------------------------------
add("flip_1d", "flip", rn(5), dims=[0])
add("flip_2d_both", "flip", rn(3, 4), dims=[0, 1])
add("flip_2d_neg", "flip", rn(3, 4), dims=[-1])
add("flip_3d_outer_inner", "flip", rn(2, 3, 4), dims=[2, 0])
add("flip_none", "flip", rn(2, 3), dims=[])
add("flip_strided", "flip", rn(3, 5), dims=[1], t=True)
add("flip_int64", "flip", small, dims=[0, -1])
add("flip_uint8", "flip", torch.tensor([1, 2, 3], dtype=U8), dims=[0])
add("flip_f32", "flip", rn(2, 5, dtype=F32), dims=[1])
add("flip_scalar", "flip", torch.tensor(3.0, dtype=F64), dims=[0])
add("flip_empty", "flip", torch.zeros(0, 2, dtype=F64), dims=[0, 1])

# ---- roll --------------------------------------------------------------------
add("roll_flat", "roll", rn(2, 3), shifts=1)
add("roll_flat_neg", "roll", rn(2, 3), shifts=-4)
add("roll_flat_big", "roll", rn(7), shifts=23)
add("roll_dim0", "roll", rn(4, 3), shifts=1, dims=0)
add("roll_dim1_neg", "roll", rn(4, 3), shifts=-1, dims=1)
add("roll_two", "roll", rn(3, 4, 2), shifts=[2, -1], dims=[0, 2])
add("roll_same_dim_twice", "roll", rn(5, 2), shifts=[1, 3], dims=[0, 0])
add("roll_big_shift", "roll", rn(3, 4), shifts=[-10, 9], dims=[0, -1])
add("roll_strided", "roll", rn(4, 3), shifts=2, dims=1, t=True)
add("roll_strided_flat", "roll", rn(4, 3), shifts=5, t=True)
add("roll_int64", "roll", small, shifts=[1, 2], dims=[0, 1])
add("roll_uint8", "roll", torch.tensor([9, 8, 7, 6], dtype=U8), shifts=1)
add("roll_f32", "roll", rn(3, 3, dtype=F32), shifts=1, dims=0)
add("roll_scalar", "roll", torch.tensor(4.0, dtype=F64), shifts=3)
add("roll_empty", "roll", torch.zeros(0, 3, dtype=F64), shifts=2, dims=1)
add("roll_empty_flat", "roll", torch.zeros(0, 3, dtype=F64), shifts=2)

# ---- tril and triu -------------------------------------------------------------
for op in ("tril", "triu"):
    add(f"{op}_square", op, rn(4, 4))
    for k in (-2, -1, 1, 3, 10, -10):
        add(f"{op}_diag{k}", op, rn(3, 5), diagonal=k)
    add(f"{op}_tall", op, rn(5, 3), diagonal=1)
    add(f"{op}_batched", op, rn(2, 3, 3, 4), diagonal=-1)
    add(f"{op}_strided", op, rn(4, 3), t=True)
    add(f"{op}_nan_inf", op, torch.tensor([[nan, inf, -inf], [nan, 1., 2.]]).to(F64))
    add(f"{op}_f32", op, rn(3, 3, dtype=F32), diagonal=1)
    add(f"{op}_int64", op, small, diagonal=-1)
    add(f"{op}_uint8", op, torch.tensor([[1, 2], [3, 4]], dtype=U8))
    add(f"{op}_empty", op, torch.zeros(0, 3, dtype=F64))
    add(f"{op}_empty_batch", op, torch.zeros(2, 0, 4, dtype=F64), diagonal=1)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reorder.json")
with open(out, "w") as f:
    json.dump({"generator": "tests/reference/gen_reorder.py", "torch": torch.__version__,
               "cases": cases}, f, separators=(",", ":"))
    f.write("\n")
print(f"{len(cases)} cases, {os.path.getsize(out)} bytes -> {out}")
