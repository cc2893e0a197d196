#!/usr/bin/python3
"""Reference vectors for tide's core ops, computed with PyTorch.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_core.py
Writes tests/reference/core.json, committed as data so the tests need no
Python. tests/lua/reference_spec.lua reads it.

Each case:
  name     unique label
  op       tide operation (see the dispatcher in reference_spec.lua)
  inputs   tensors {values (flat, row-major), shape, dtype}
  args     op arguments; dims are 0-based (negative counts from the end)
  outputs  expected tensors {values, shape, dtype}, one per result
  weights  for gradient cases: per output, the w of loss = sum((out*w).sum())
           (null for outputs that take no part, such as indices)
  grads    per input, d loss / d input (null for inputs with no gradient)
  rtol, atol  tolerance: |got - want| <= atol + rtol * |want|

Gradient cases use float64 inputs; float32 cases check values only.
Comparisons and masks are uint8 in tide (bool in PyTorch).
"""
import json
import math
import os

import torch

torch.manual_seed(20240611)
torch.set_default_dtype(torch.float64)

F64, F32, I64 = torch.float64, torch.float32, torch.int64
NAMES = {torch.float32: "float32", torch.float64: "float64",
         torch.int64: "int64", torch.uint8: "uint8", torch.bool: "uint8"}

cases = []
seen = set()


def enc(t):
    t = t.detach()
    dt = NAMES[t.dtype]
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    flat = t.reshape(-1).tolist()
    if dt in ("float32", "float64"):
        flat = [float(v) for v in flat]
    else:
        flat = [int(v) for v in flat]
    return {"values": flat, "shape": list(t.shape), "dtype": dt}


def tolerance(dtype, outs):
    # relative tolerance, and an absolute floor scaled by the outputs' size
    # (values near zero that come out of sums of larger terms)
    scale = 1.0
    for o in outs:
        if o.is_floating_point() and o.numel() > 0:
            m = o.detach().abs().max().item()
            if math.isfinite(m):
                scale = max(scale, m)
    if dtype == F32:
        return 1e-5, 1e-6 * scale
    return 1e-10, 1e-12 * scale


def add(name, op, inputs, fn, args=None, grad=None):
    """fn(*inputs) gives a tensor or a tuple of tensors.  grad: None = when
    an input is float64, False = never."""
    assert name not in seen, name
    seen.add(name)
    args = args or {}
    float_ins = [t for t in inputs if t.is_floating_point()]
    dtype = float_ins[0].dtype if float_ins else F64
    if grad is None:
        grad = any(t.dtype == F64 for t in inputs)
    leaves = []
    for t in inputs:
        leaf = t.detach().clone()
        if grad and leaf.dtype == F64:
            leaf.requires_grad_(True)
        leaves.append(leaf)
    out = fn(*leaves)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if not any(o.requires_grad for o in outs):
        grad = False
    rtol, atol = tolerance(dtype, outs)
    case = {"name": name, "op": op, "inputs": [enc(t) for t in inputs],
            "args": args, "outputs": [enc(o) for o in outs],
            "rtol": rtol, "atol": atol}
    if grad:
        weights, loss = [], 0
        for o in outs:
            if o.requires_grad:
                w = torch.randn(o.shape, dtype=F64)
                weights.append(enc(w))
                loss = loss + (o * w).sum()
            else:
                weights.append(None)
        want = [t for t in leaves if t.requires_grad]
        gs = torch.autograd.grad(loss, want, allow_unused=True)
        gi = iter(gs)
        grads = []
        for t in leaves:
            if t.requires_grad:
                g = next(gi)
                grads.append(enc(g) if g is not None else enc(torch.zeros_like(t)))
            else:
                grads.append(None)
        case["weights"] = weights
        case["grads"] = grads
        gscale = [g for g in gs if g is not None]
        _, gatol = tolerance(dtype, gscale)
        case["grad_atol"] = max(atol, gatol)
    cases.append(case)


def rn(*shape, dtype=F64):
    return torch.randn(shape, dtype=dtype)


def pos(*shape, dtype=F64):
    return torch.rand(shape, dtype=dtype) + 0.2


def idx(values):
    return torch.tensor(values, dtype=I64)


# ---- creation ---------------------------------------------------------
for dt in (F32, F64, I64):
    n = NAMES[dt]
    add(f"arange_{n}", "arange", [], lambda dt=dt: torch.arange(0, 10, 1, dtype=dt),
        {"start": 0, "end": 10, "step": 1, "dtype": n})
add("arange_step", "arange", [], lambda: torch.arange(1, 4, 0.5, dtype=F64),
    {"start": 1, "end": 4, "step": 0.5, "dtype": "float64"})
add("arange_negstep", "arange", [], lambda: torch.arange(5, -1, -2, dtype=F32),
    {"start": 5, "end": -1, "step": -2, "dtype": "float32"})
add("arange_frac_f64", "arange", [], lambda: torch.arange(-1, 1, 0.3, dtype=F64),
    {"start": -1, "end": 1, "step": 0.3, "dtype": "float64"})
for dt in (F32, F64):
    n = NAMES[dt]
    add(f"linspace_{n}", "linspace", [], lambda dt=dt: torch.linspace(-1, 2, 7, dtype=dt),
        {"start": -1, "end": 2, "steps": 7, "dtype": n})
add("linspace_one", "linspace", [], lambda: torch.linspace(3, 5, 1, dtype=F64),
    {"start": 3, "end": 5, "steps": 1, "dtype": "float64"})
add("linspace_desc", "linspace", [], lambda: torch.linspace(1, 0, 11, dtype=F64),
    {"start": 1, "end": 0, "steps": 11, "dtype": "float64"})
add("eye_square", "eye", [], lambda: torch.eye(4, dtype=F32), {"n": 4, "dtype": "float32"})
add("eye_rect", "eye", [], lambda: torch.eye(2, 3, dtype=F64), {"n": 2, "m": 3, "dtype": "float64"})
add("eye_int", "eye", [], lambda: torch.eye(3, 2, dtype=I64), {"n": 3, "m": 2, "dtype": "int64"})
add("zeros", "zeros", [], lambda: torch.zeros(2, 3, dtype=F32), {"size": [2, 3], "dtype": "float32"})
add("ones", "ones", [], lambda: torch.ones(3, 1, 2, dtype=F64), {"size": [3, 1, 2], "dtype": "float64"})
add("full", "full", [], lambda: torch.full((2, 2), 7.5, dtype=F64),
    {"size": [2, 2], "value": 7.5, "dtype": "float64"})
add("full_int", "full", [], lambda: torch.full((3,), 4, dtype=I64),
    {"size": [3], "value": 4, "dtype": "int64"})
add("tensor_2d", "tensor", [], lambda: torch.tensor([[1.5, -2], [3, 4.25]], dtype=F32),
    {"data": [[1.5, -2], [3, 4.25]]})

# ---- views ------------------------------------------------------------
x = rn(2, 3, 4)
add("view", "view", [x], lambda a: a.view(4, 6), {"size": [4, 6]})
add("view_infer", "view", [x], lambda a: a.view(-1, 2), {"size": [-1, 2]})
add("view_f32", "view", [x.float()], lambda a: a.view(24), {"size": [24]})
add("reshape", "reshape", [x], lambda a: a.reshape(3, 8), {"size": [3, 8]})
add("reshape_noncontig", "reshape_t", [x], lambda a: a.transpose(0, 2).reshape(-1),
    {"d0": 0, "d1": 2, "size": [-1]})
add("transpose", "transpose", [x], lambda a: a.transpose(0, 2), {"d0": 0, "d1": 2})
add("transpose_neg", "transpose", [x], lambda a: a.transpose(-1, -2), {"d0": -1, "d1": -2})
add("permute", "permute", [x], lambda a: a.permute(2, 0, 1), {"dims": [2, 0, 1]})
add("permute_f32", "permute", [x.float()], lambda a: a.permute(1, 2, 0), {"dims": [1, 2, 0]})
m = rn(3, 5)
add("t", "t", [m], lambda a: a.t())
add("t_1d", "t", [rn(4)], lambda a: a.t())
add("narrow", "narrow", [x], lambda a: a.narrow(2, 1, 2), {"dim": 2, "start": 1, "length": 2})
add("narrow_dim0", "narrow", [x], lambda a: a.narrow(0, 1, 1), {"dim": 0, "start": 1, "length": 1})
add("select", "select", [x], lambda a: a.select(1, 2), {"dim": 1, "index": 2})
add("select_neg_dim", "select", [x], lambda a: a.select(-1, 0), {"dim": -1, "index": 0})
add("select_neg_index", "select", [x], lambda a: a.select(0, -1), {"dim": 0, "index": -1})
add("select_to_scalar", "select", [rn(5)], lambda a: a.select(0, 3), {"dim": 0, "index": 3})
s = rn(1, 3, 1, 2)
add("squeeze_all", "squeeze", [s], lambda a: a.squeeze(), {})
add("squeeze_dim", "squeeze", [s], lambda a: a.squeeze(2), {"dim": 2})
add("squeeze_dim_noop", "squeeze", [s], lambda a: a.squeeze(1), {"dim": 1})
add("unsqueeze", "unsqueeze", [m], lambda a: a.unsqueeze(1), {"dim": 1})
add("unsqueeze_end", "unsqueeze", [m], lambda a: a.unsqueeze(-1), {"dim": -1})
add("unsqueeze_front", "unsqueeze", [m], lambda a: a.unsqueeze(0), {"dim": 0})
e = rn(3, 1)
add("expand", "expand", [e], lambda a: a.expand(3, 4), {"size": [3, 4]})
add("expand_newdims", "expand", [e], lambda a: a.expand(2, 3, 5), {"size": [2, 3, 5]})
add("expand_keep", "expand", [e], lambda a: a.expand(-1, 2), {"size": [-1, 2]})
add("contiguous", "contiguous_t", [m], lambda a: a.t().contiguous())
add("flatten", "flatten", [x], lambda a: a.flatten(), {})
add("flatten_range", "flatten", [rn(2, 3, 2, 2)], lambda a: a.flatten(1, 2), {"start": 1, "end": 2})
add("flatten_neg", "flatten", [x], lambda a: a.flatten(-2, -1), {"start": -2, "end": -1})
add("clone", "clone", [m], lambda a: a.clone())

# ---- joining and splitting ------------------------------------------------
a, b, c = rn(2, 3), rn(1, 3), rn(4, 3)
add("cat_dim0", "cat", [a, b, c], lambda *t: torch.cat(t, 0), {"dim": 0})
a2, b2 = rn(2, 3), rn(2, 2)
add("cat_dim1", "cat", [a2, b2], lambda *t: torch.cat(t, 1), {"dim": 1})
add("cat_neg", "cat", [a2, b2], lambda *t: torch.cat(t, -1), {"dim": -1})
add("cat_f32", "cat", [a.float(), c.float()], lambda *t: torch.cat(t, 0), {"dim": 0})
p, q, r = rn(2, 3), rn(2, 3), rn(2, 3)
add("stack_dim0", "stack", [p, q, r], lambda *t: torch.stack(t, 0), {"dim": 0})
add("stack_dim1", "stack", [p, q], lambda *t: torch.stack(t, 1), {"dim": 1})
add("stack_last", "stack", [p, q], lambda *t: torch.stack(t, -1), {"dim": -1})
y = rn(5, 4)
add("split_even", "split", [rn(6, 2)], lambda a: a.split(2, 0), {"size": 2, "dim": 0})
add("split_uneven", "split", [y], lambda a: a.split(2, 0), {"size": 2, "dim": 0})
add("split_dim1", "split", [y], lambda a: a.split(3, 1), {"size": 3, "dim": 1})
add("chunk_even", "chunk", [y], lambda a: a.chunk(2, 1), {"chunks": 2, "dim": 1})
add("chunk_uneven", "chunk", [y], lambda a: a.chunk(3, 0), {"chunks": 3, "dim": 0})
add("chunk_neg", "chunk", [y], lambda a: a.chunk(4, -1), {"chunks": 4, "dim": -1})

# ---- indexing ---------------------------------------------------------
x = rn(4, 3)
add("index_select_0", "index_select", [x, idx([3, 0, 3])], lambda a, i: a.index_select(0, i), {"dim": 0})
add("index_select_1", "index_select", [x, idx([2, 1])], lambda a, i: a.index_select(1, i), {"dim": 1})
add("index_select_f32", "index_select", [x.float(), idx([1, 1, 0])],
    lambda a, i: a.index_select(0, i), {"dim": 0})
add("gather_1", "gather", [x, idx([[0, 0], [2, 1], [1, 1], [2, 0]])],
    lambda a, i: a.gather(1, i), {"dim": 1})
add("gather_0", "gather", [x, idx([[3, 0, 1], [0, 0, 2]])], lambda a, i: a.gather(0, i), {"dim": 0})
add("gather_neg", "gather", [x, idx([[2], [0], [1], [1]])], lambda a, i: a.gather(-1, i), {"dim": -1})
# scatter with distinct indices along the dim (duplicates are unordered in PyTorch)
base, src = rn(3, 5), rn(2, 5)
add("scatter_0", "scatter", [base, idx([[0, 1, 2, 0, 1], [2, 0, 1, 1, 0]]), src],
    lambda a, i, s: a.scatter(0, i, s), {"dim": 0})
add("scatter_1", "scatter", [rn(3, 4), idx([[3, 0], [1, 2], [0, 3]]), rn(3, 2)],
    lambda a, i, s: a.scatter(1, i, s), {"dim": 1})
add("scatter_add", "scatter_add", [rn(3, 4), idx([[0, 0, 3], [1, 1, 1], [2, 0, 2]]), rn(3, 3)],
    lambda a, i, s: a.scatter_add(1, i, s), {"dim": 1})
mask = torch.tensor([[True, False, True], [False, False, True], [True, True, False], [False, True, False]])
add("masked_fill", "masked_fill", [x, mask.to(torch.uint8)], lambda a, mk: a.masked_fill(mk.bool(), -2.5),
    {"value": -2.5})
add("masked_fill_bcast", "masked_fill", [x, torch.tensor([1, 0, 1], dtype=torch.uint8)],
    lambda a, mk: a.masked_fill(mk.bool(), 0.0), {"value": 0})
add("masked_fill_f32", "masked_fill", [x.float(), mask.to(torch.uint8)],
    lambda a, mk: a.masked_fill(mk.bool(), 9.0), {"value": 9})
add("where", "where", [mask.to(torch.uint8), x, rn(4, 3)], lambda cd, a, b: torch.where(cd.bool(), a, b))
add("where_bcast", "where", [torch.tensor([[1], [0], [0], [1]], dtype=torch.uint8), rn(1, 3), rn(4, 3)],
    lambda cd, a, b: torch.where(cd.bool(), a, b))

# ---- broadcasting binary ops -----------------------------------------------
shapes = [("same", (3, 4), (3, 4)), ("row", (3, 4), (4,)), ("outer", (3, 1), (1, 4)),
          ("batch", (2, 1, 3), (4, 1)), ("scalar0d", (2, 3), ())]
ops = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
for opname, f in ops.items():
    for sname, sa, sb in shapes:
        a, b = rn(*sa), rn(*sb)
        if opname == "div":
            b = b.sign() * (b.abs() + 0.5)
        add(f"{opname}_{sname}", opname, [a, b], lambda a, b, f=f: f(a, b))
    a, b = rn(3, 4, dtype=F32), rn(4, dtype=F32)
    if opname == "div":
        b = b.sign() * (b.abs() + 0.5)
    add(f"{opname}_f32", opname, [a, b], lambda a, b, f=f: f(a, b))
    a = rn(2, 3)
    add(f"{opname}_scalar", opname + "_scalar", [a], lambda a, f=f: f(a, 1.75), {"scalar": 1.75})
    add(f"{opname}_scalar_first", opname + "_scalar", [a], lambda a, f=f: f(torch.tensor(-2.5), a),
        {"scalar": -2.5, "scalar_first": True})
add("add_int64", "add", [torch.randint(-9, 9, (2, 3)), torch.randint(-9, 9, (3,))], lambda a, b: a + b)
add("mul_int64", "mul", [torch.randint(-9, 9, (2, 3)), torch.randint(-9, 9, (2, 1))], lambda a, b: a * b)
add("add_promote", "add", [rn(2, 2, dtype=F32), rn(2, 2)], lambda a, b: a + b, grad=False)
add("pow_tensor", "pow", [pos(3, 4), rn(3, 4)], lambda a, b: a.pow(b))
add("pow_tensor_bcast", "pow", [pos(2, 3), rn(3)], lambda a, b: a.pow(b))
add("pow_f32", "pow", [pos(2, 3, dtype=F32), rn(2, 3, dtype=F32)], lambda a, b: a.pow(b))
add("pow_scalar_2", "pow_scalar", [rn(3, 4)], lambda a: a.pow(2), {"exponent": 2})
add("pow_scalar_3", "pow_scalar", [rn(3, 4)], lambda a: a.pow(3), {"exponent": 3})
add("pow_scalar_half", "pow_scalar", [pos(3, 4)], lambda a: a.pow(0.5), {"exponent": 0.5})
add("pow_scalar_neg", "pow_scalar", [pos(5)], lambda a: a.pow(-1.5), {"exponent": -1.5})
add("pow_scalar_f32", "pow_scalar", [rn(5, dtype=F32)], lambda a: a.pow(2), {"exponent": 2})
add("rpow_scalar", "pow_scalar", [rn(5)], lambda a: torch.pow(2.0, a),
    {"exponent": 2.0, "scalar_first": True})

cmp_a = torch.tensor([[1.0, 2.0, 3.0], [4.0, 2.0, -1.0]])
cmp_b = torch.tensor([2.0, 2.0, -1.0])
for opname in ("eq", "ne", "lt", "le", "gt", "ge"):
    f = getattr(torch, opname)
    add(f"{opname}", opname, [cmp_a, cmp_b], lambda a, b, f=f: f(a, b), grad=False)
    add(f"{opname}_f32", opname, [cmp_a.float(), cmp_a.float().t().reshape(2, 3)],
        lambda a, b, f=f: f(a, b), grad=False)
    add(f"{opname}_scalar", opname + "_scalar", [cmp_a], lambda a, f=f: f(a, 2.0), {"scalar": 2},
        grad=False)
    add(f"{opname}_int64", opname, [torch.tensor([1, 5, -3]), torch.tensor([[1], [-3]])],
        lambda a, b, f=f: f(a, b), grad=False)

# ---- unary math ---------------------------------------------------------
unary = {
    "exp": (torch.exp, rn), "log": (torch.log, pos), "log1p": (torch.log1p, pos),
    "sqrt": (torch.sqrt, pos), "abs": (torch.abs, rn), "neg": (torch.neg, rn),
    "sin": (torch.sin, rn), "cos": (torch.cos, rn), "tanh": (torch.tanh, rn),
    "sigmoid": (torch.sigmoid, rn), "relu": (torch.relu, rn),
    "gelu": (torch.nn.functional.gelu, rn),
}
for opname, (f, gen) in unary.items():
    add(f"{opname}", opname, [gen(3, 5) * (2 if gen is rn else 1)], lambda a, f=f: f(a))
    add(f"{opname}_f32", opname, [gen(4, 3, dtype=F32)], lambda a, f=f: f(a))
add("exp_large", "exp", [torch.tensor([-50.0, -1e-3, 0.0, 20.0, 80.0])], torch.exp)
add("sigmoid_extreme", "sigmoid", [torch.tensor([-800.0, -40.0, -5.0, 0.0, 5.0, 40.0, 800.0])],
    torch.sigmoid)
add("tanh_extreme", "tanh", [torch.tensor([-400.0, -20.0, 0.5, 20.0, 400.0])], torch.tanh)
add("gelu_wide", "gelu", [torch.linspace(-8, 8, 17)], torch.nn.functional.gelu)
add("log1p_small", "log1p", [torch.tensor([1e-12, 1e-8, 3e-5, 0.5])], torch.log1p)
add("clamp_both", "clamp", [rn(3, 4)], lambda a: a.clamp(-0.5, 0.7), {"min": -0.5, "max": 0.7})
add("clamp_min", "clamp", [rn(3, 4)], lambda a: a.clamp(min=0.1), {"min": 0.1})
add("clamp_max", "clamp", [rn(3, 4)], lambda a: a.clamp(max=-0.2), {"max": -0.2})
add("clamp_f32", "clamp", [rn(6, dtype=F32)], lambda a: a.clamp(-1, 1), {"min": -1, "max": 1})

# ---- reductions -----------------------------------------------------------
x3 = rn(3, 4, 5)
x2 = rn(4, 6)
xf = rn(5, 7, dtype=F32)
dims = [("all", None, False), ("d0", 0, False), ("d1k", 1, True), ("dlast", -1, False),
        ("dlastk", -1, True)]
for opname in ("sum", "mean", "prod", "var", "std", "norm"):
    f = getattr(torch, opname)
    src = x3 if opname != "prod" else (pos(3, 4, 5) * 1.5)
    for dname, d, k in dims:
        args = {} if d is None else {"dim": d, "keepdim": k}
        if d is None:
            fn = lambda a, f=f: f(a)
        else:
            fn = lambda a, f=f, d=d, k=k: f(a, dim=d, keepdim=k)
        add(f"{opname}_{dname}", opname, [src], fn, args)
    add(f"{opname}_f32_all", opname, [xf], lambda a, f=f: f(a))
    add(f"{opname}_f32_d1", opname, [xf], lambda a, f=f: f(a, dim=1), {"dim": 1, "keepdim": False})
add("sum_int64", "sum", [torch.randint(-100, 100, (3, 4))], lambda a: a.sum())
add("sum_int64_d0", "sum", [torch.randint(-100, 100, (3, 4))], lambda a: a.sum(0),
    {"dim": 0, "keepdim": False})
add("sum_large_f32", "sum", [torch.rand(300, 37, dtype=F32)], lambda a: a.sum(), grad=False)
add("mean_large_f64", "mean", [torch.rand(3, 2000)], lambda a: a.mean(1), {"dim": 1, "keepdim": False},
    grad=False)
add("var_biased", "var", [x3], lambda a: a.var(1, unbiased=False), {"dim": 1, "keepdim": False, "correction": 0})
add("var_biased_all", "var", [x2], lambda a: a.var(unbiased=False), {"correction": 0})
add("std_biased", "std", [x3], lambda a: a.std(-1, unbiased=False, keepdim=True),
    {"dim": -1, "keepdim": True, "correction": 0})
add("norm_p1", "norm", [x2], lambda a: a.norm(1), {"p": 1})
add("norm_p1_dim", "norm", [x2], lambda a: a.norm(1, 0, keepdim=True), {"p": 1, "dim": 0, "keepdim": True})
add("norm_p3_dim", "norm", [x2], lambda a: a.norm(3, 1), {"p": 3, "dim": 1, "keepdim": False})
for opname in ("max", "min"):
    f = getattr(torch, opname)
    add(f"{opname}_all", opname, [x3], lambda a, f=f: f(a))
    add(f"{opname}_f32_all", opname, [xf], lambda a, f=f: f(a))
    for dname, d, k in dims[1:]:
        add(f"{opname}_{dname}", opname, [x3], lambda a, f=f, d=d, k=k: tuple(f(a, d, keepdim=k)),
            {"dim": d, "keepdim": k})
    add(f"{opname}_int64_d1", opname, [torch.randperm(12).reshape(3, 4)],
        lambda a, f=f: tuple(f(a, 1)), {"dim": 1, "keepdim": False})
for opname in ("argmax", "argmin"):
    f = getattr(torch, opname)
    add(f"{opname}_all", opname, [x3], lambda a, f=f: f(a))
    for dname, d, k in dims[1:]:
        add(f"{opname}_{dname}", opname, [x3], lambda a, f=f, d=d, k=k: f(a, d, keepdim=k),
            {"dim": d, "keepdim": k})
    add(f"{opname}_f32_d0", opname, [xf], lambda a, f=f: f(a, 0), {"dim": 0, "keepdim": False})

# ---- softmax ----------------------------------------------------------------
big = torch.tensor([[1e4, -1e4, 0.0, 1e4 - 1.0],
                    [-1e4, -1e4 + 2.0, -1e4 + 0.5, -1e4],
                    [0.3, -0.7, 1.1, 0.0]])
for opname in ("softmax", "log_softmax"):
    f = getattr(torch, opname)
    add(f"{opname}_last", opname, [rn(3, 5)], lambda a, f=f: f(a, -1), {"dim": -1})
    add(f"{opname}_d0", opname, [rn(4, 3)], lambda a, f=f: f(a, 0), {"dim": 0})
    add(f"{opname}_3d_mid", opname, [rn(2, 4, 3)], lambda a, f=f: f(a, 1), {"dim": 1})
    add(f"{opname}_f32", opname, [rn(4, 6, dtype=F32)], lambda a, f=f: f(a, 1), {"dim": 1})
    add(f"{opname}_big", opname, [big], lambda a, f=f: f(a, 1), {"dim": 1})
    add(f"{opname}_big_f32", opname, [big.float()], lambda a, f=f: f(a, -1), {"dim": -1})
    add(f"{opname}_big_d0", opname, [big.t().contiguous()], lambda a, f=f: f(a, 0), {"dim": 0})

# ---- linear algebra -----------------------------------------------------------
add("mm", "mm", [rn(3, 4), rn(4, 5)], torch.mm)
add("mm_f32", "mm", [rn(5, 7, dtype=F32), rn(7, 3, dtype=F32)], torch.mm)
add("mm_f32_larger", "mm", [rn(33, 65, dtype=F32), rn(65, 17, dtype=F32)], torch.mm, grad=False)
add("mm_transposed", "mm_t", [rn(4, 3), rn(5, 4)], lambda a, b: torch.mm(a.t(), b.t()))
add("bmm", "bmm", [rn(2, 3, 4), rn(2, 4, 2)], torch.bmm)
add("bmm_f32", "bmm", [rn(3, 2, 5, dtype=F32), rn(3, 5, 4, dtype=F32)], torch.bmm)
add("matmul_dot", "matmul", [rn(5), rn(5)], torch.matmul)
add("matmul_vec_mat", "matmul", [rn(3), rn(3, 4)], torch.matmul)
add("matmul_mat_vec", "matmul", [rn(3, 4), rn(4)], torch.matmul)
add("matmul_2d", "matmul", [rn(2, 3), rn(3, 4)], torch.matmul)
add("matmul_3d_2d", "matmul", [rn(2, 3, 4), rn(4, 5)], torch.matmul)
add("matmul_2d_3d", "matmul", [rn(3, 4), rn(2, 4, 5)], torch.matmul)
add("matmul_bcast", "matmul", [rn(2, 1, 3, 4), rn(3, 4, 2)], torch.matmul)
add("matmul_batch_vec", "matmul", [rn(2, 3, 4), rn(4)], torch.matmul)
add("matmul_vec_batch", "matmul", [rn(3), rn(2, 3, 4)], torch.matmul)
add("matmul_f32", "matmul", [rn(2, 3, 4, dtype=F32), rn(4, 5, dtype=F32)], torch.matmul)
add("addmm", "addmm", [rn(3, 5), rn(3, 4), rn(4, 5)], torch.addmm)
add("addmm_bcast", "addmm", [rn(5), rn(3, 4), rn(4, 5)], torch.addmm)
add("addmm_beta_alpha", "addmm", [rn(3, 5), rn(3, 4), rn(4, 5)],
    lambda i, a, b: torch.addmm(i, a, b, beta=0.5, alpha=-2.0), {"beta": 0.5, "alpha": -2.0})
add("addmm_f32", "addmm", [rn(1, 4, dtype=F32), rn(2, 3, dtype=F32), rn(3, 4, dtype=F32)], torch.addmm)

# ---- composite: a small chain through several ops ------------------------------
add("chain_mlp", "chain_mlp", [rn(4, 3), rn(3, 5), rn(5)],
    lambda x, w, b: torch.log_softmax(torch.tanh(x.matmul(w) + b), 1))

# ---- edges: ties, kinks, zeros, nan, empty (PyTorch's choices) -------------------
T = torch.tensor
add("prod_one_zero", "prod", [T([2.0, 0.0, 3.0])], lambda a: a.prod())
add("prod_two_zeros", "prod", [T([2.0, 0.0, 3.0, 0.0])], lambda a: a.prod())
add("prod_zero_dim", "prod", [T([[2.0, 0.0, 3.0], [1.0, 2.0, 0.0], [0.0, 0.0, 4.0]])],
    lambda a: a.prod(1), {"dim": 1, "keepdim": False})
add("max_tie_all", "max", [T([1.0, 3.0, 3.0, 2.0])], lambda a: a.max())
add("min_tie_all", "min", [T([[1.0, -3.0], [-3.0, 2.0]])], lambda a: a.min())
add("max_tie_dim", "max", [T([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 0.0, 5.0]])],
    lambda a: tuple(a.max(1)), {"dim": 1, "keepdim": False})
add("min_tie_dim", "min", [T([[1.0, 0.0, 0.0, 2.0], [4.0, 4.0, 4.0, 4.0]])],
    lambda a: tuple(a.min(1)), {"dim": 1, "keepdim": False})
add("argmax_tie", "argmax", [T([1.0, 3.0, 3.0, 2.0])], lambda a: a.argmax())
add("argmin_tie_dim", "argmin", [T([[1.0, 0.0, 0.0], [7.0, 7.0, 7.0]])], lambda a: a.argmin(1),
    {"dim": 1, "keepdim": False})
add("norm_zero_vector", "norm", [torch.zeros(3)], lambda a: a.norm())
add("clamp_boundaries", "clamp", [T([-1.0, 0.0, 0.5, 1.0, -2.0])], lambda a: a.clamp(-1, 0.5),
    {"min": -1, "max": 0.5})
add("relu_at_zero", "relu", [T([-1.0, 0.0, 2.0])], torch.relu)
add("abs_at_zero", "abs", [T([-1.0, 0.0, 2.0])], torch.abs)
add("pow_base_zero", "pow", [T([0.0, 0.0, 2.0]), T([2.0, 3.0, 1.0])], lambda a, b: a.pow(b))
add("pow_scalar_base_zero", "pow_scalar", [T([0.0, 1.5, -2.0])], lambda a: a.pow(2), {"exponent": 2})
add("sigmoid_grad_extreme", "sigmoid", [T([-800.0, -40.0, 40.0, 800.0])], torch.sigmoid)
add("tanh_grad_extreme", "tanh", [T([-400.0, 400.0])], torch.tanh)
add("sum_nan", "sum", [T([1.0, float("nan"), 3.0])], lambda a: a.sum(), grad=False)
add("max_nan", "max", [T([1.0, float("nan"), 3.0])], lambda a: a.max(), grad=False)
add("softmax_neg_inf", "softmax", [T([[-float("inf"), 0.0, 1.0], [2.0, -float("inf"), 2.0]])],
    lambda a: torch.softmax(a, 1), {"dim": 1}, grad=False)
add("sum_empty", "sum", [torch.zeros(0)], lambda a: a.sum(), grad=False)
add("mean_empty", "mean", [torch.zeros(0)], lambda a: a.mean(), grad=False)
add("var_one", "var", [T([2.5])], lambda a: a.var(), grad=False)


def default_f32(fn):
    """integer true division gives the default dtype: float32, as a user has it"""
    def run(*args):
        torch.set_default_dtype(torch.float32)
        try:
            return fn(*args)
        finally:
            torch.set_default_dtype(torch.float64)
    return run


add("div_int64", "div", [T([3, 4, -7]), T([2, 2, 2])], default_f32(lambda a, b: a / b))
add("div_int64_scalar", "div_scalar", [T([3, 4, -7])], default_f32(lambda a: a / 2), {"scalar": 2})

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "core.json")
with open(out, "w") as f:
    json.dump({"generator": "tests/reference/gen_core.py", "torch": torch.__version__,
               "cases": cases}, f, separators=(",", ":"))
    f.write("\n")
print(f"{len(cases)} cases, {os.path.getsize(out)} bytes -> {out}")
