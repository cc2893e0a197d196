#!/usr/bin/python3
"""Reference vectors for floor, ceil, round, trunc, isnan, isinf, isfinite,
nan_to_num, isclose, allclose and where, computed with PyTorch.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_rounding.py
Writes tests/reference/rounding.json; tests/lua/rounding_spec.lua reads it.

Each case: name, op, inputs (tensors {values, shape, dtype}, or numbers),
opts (tide's options table), output ({values, shape, dtype}, or a boolean
for allclose), and for float64 cases with a gradient, weights (w of loss =
sum(out * w)) and grads (per input, null where none). Non-finite values
are the strings "nan", "inf", "-inf"; a Python int argument is {"int": v}. bool results are uint8 in tide.
"""
import json
import math
import os

import torch

torch.manual_seed(20240612)
NAMES = {torch.float32: "float32", torch.float64: "float64",
         torch.int64: "int64", torch.uint8: "uint8", torch.bool: "uint8"}
NAN, INF = float("nan"), float("inf")


def num(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if v != v else ("inf" if v > 0 else "-inf")
    return v


def enc(t):
    if isinstance(t, int):
        return {"int": t}  # a Lua integer, where a Python int and float differ
    if not isinstance(t, torch.Tensor):
        return num(t)
    t = t.detach()
    dt = NAMES[t.dtype]
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    flat = t.reshape(-1).tolist()
    flat = [num(float(v)) if dt.startswith("float") else int(v) for v in flat]
    return {"values": flat, "shape": list(t.shape), "dtype": dt}


cases = []


def case(name, op, inputs, fn, opts=None, grad=False):
    ins = [x.clone().requires_grad_(grad and x.is_floating_point())
           if isinstance(x, torch.Tensor) else x for x in inputs]
    out = fn(*ins)
    c = {"name": name, "op": op, "inputs": [enc(x) for x in inputs],
         "opts": opts or {}, "output": out if isinstance(out, bool) else enc(out)}
    if grad:
        w = torch.randn(out.shape, dtype=out.dtype)
        (out * w).sum().backward()
        c["weights"] = enc(w)
        c["grads"] = [enc(x.grad) if isinstance(x, torch.Tensor) and x.grad is not None
                      else None for x in ins]
    cases.append(c)


special = [-2.5, -1.5, -0.5, -0.49, 0.0, -0.0, 0.5, 0.51, 1.5, 2.5, 3.7, -3.7, 1e10 + 0.5,
           NAN, INF, -INF]
for dt in (torch.float32, torch.float64):
    x = torch.tensor(special, dtype=dt)
    for op in ("floor", "ceil", "round", "trunc", "isnan", "isinf", "isfinite"):
        case(f"{op} special {NAMES[dt]}", op, [x], getattr(torch, op))
    case(f"nan_to_num default {NAMES[dt]}", "nan_to_num", [x], torch.nan_to_num)
    case(f"nan_to_num all {NAMES[dt]}", "nan_to_num", [x],
         lambda t: torch.nan_to_num(t, nan=-1.0, posinf=7.5, neginf=-8.0),
         {"nan": -1.0, "posinf": 7.5, "neginf": -8.0})
    case(f"nan_to_num posinf 1e39 {NAMES[dt]}", "nan_to_num", [x],
         lambda t: torch.nan_to_num(t, posinf=1e39), {"posinf": 1e39})
    r = torch.randn(4, 5, dtype=dt) * 100
    for d in (1, 2, -1, -2, 3):
        case(f"round decimals {d} {NAMES[dt]}", "round", [r],
             lambda t, d=d: torch.round(t, decimals=d), {"decimals": d})
    case(f"round decimals halves {NAMES[dt]}", "round",
         [torch.tensor([0.125, 0.375, 1.5, 2.5, 1234.5678], dtype=dt)],
         lambda t: torch.round(t, decimals=2), {"decimals": 2})

for dt in (torch.int64, torch.uint8):
    x = torch.tensor([0, 1, 7, 200], dtype=dt)
    for op in ("floor", "ceil", "round", "trunc", "isnan", "isinf", "isfinite", "nan_to_num"):
        case(f"{op} {NAMES[dt]}", op, [x], getattr(torch, op))

for op in ("floor", "ceil", "round", "trunc", "isnan"):
    case(f"{op} 0-dim", op, [torch.tensor(-1.5)], getattr(torch, op))
    case(f"{op} empty", op, [torch.empty(0, 3)], getattr(torch, op))

# gradients (float64): 0 for the roundings, g where finite for nan_to_num
g = torch.tensor([-1.3, 0.2, 2.5, NAN, INF, -INF, 4.0], dtype=torch.float64)
for op in ("floor", "ceil", "round", "trunc"):
    case(f"{op} grad", op, [g], getattr(torch, op), grad=True)
case("round decimals grad", "round", [g], lambda t: torch.round(t, decimals=1),
     {"decimals": 1}, grad=True)
case("nan_to_num grad", "nan_to_num", [g], torch.nan_to_num, grad=True)

# isclose / allclose
a = torch.tensor([1.0, 1.0, 1.0, NAN, INF, -INF, INF, 0.0, 1e-9, 100.0])
b = torch.tensor([1.0, 1.0 + 1e-6, 1.001, NAN, INF, -INF, -INF, 1e-8, 0.0, 100.001])
for dt in (torch.float32, torch.float64):
    aa, bb = a.to(dt), b.to(dt)
    case(f"isclose default {NAMES[dt]}", "isclose", [aa, bb], torch.isclose)
    case(f"isclose equal_nan {NAMES[dt]}", "isclose", [aa, bb],
         lambda x, y: torch.isclose(x, y, equal_nan=True), {"equal_nan": True})
    case(f"isclose rtol atol {NAMES[dt]}", "isclose", [aa, bb],
         lambda x, y: torch.isclose(x, y, rtol=1e-3, atol=1e-7), {"rtol": 1e-3, "atol": 1e-7})
    case(f"isclose zero tolerance {NAMES[dt]}", "isclose", [aa, bb],
         lambda x, y: torch.isclose(x, y, rtol=0, atol=0), {"rtol": 0, "atol": 0})
ia = torch.tensor([1, 2, 3, 250], dtype=torch.uint8)
ib = torch.tensor([2, 2, 5, 251], dtype=torch.uint8)
case("isclose uint8", "isclose", [ia, ib], lambda x, y: torch.isclose(x, y, atol=1.5),
     {"atol": 1.5})
case("isclose int64", "isclose", [ia.long(), ib.long()],
     lambda x, y: torch.isclose(x, y, atol=1.5), {"atol": 1.5})
row, col = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([[1.0], [2.000001], [5.0]])
case("isclose broadcast", "isclose", [row, col], torch.isclose)
case("allclose true", "allclose", [row, row + 1e-6], torch.allclose)
case("allclose false", "allclose", [row, row + 1e-3], torch.allclose)
case("allclose broadcast", "allclose", [row, torch.tensor([1.0])], torch.allclose)
case("allclose nan", "allclose", [a, a], torch.allclose)
case("allclose equal_nan", "allclose", [a, a], lambda x, y: torch.allclose(x, y, equal_nan=True),
     {"equal_nan": True})
case("allclose empty", "allclose", [torch.empty(0), torch.empty(0)], torch.allclose)

# where: broadcasting, dtypes, numbers, gradients to both branches
c = torch.tensor([[True, False, True], [False, False, True]])
x = torch.randn(2, 3, dtype=torch.float64)
y = torch.randn(3, dtype=torch.float64)
case("where broadcast grad", "where", [c, x, y], torch.where, grad=True)
case("where column cond grad", "where", [torch.tensor([[True], [False]]), x, y], torch.where,
     grad=True)
case("where scalar other grad", "where", [c, x, 0.5], lambda c_, x_, s: torch.where(c_, x_, s),
     grad=True)
case("where scalar first", "where", [c, 2.0, x], lambda c_, s, x_: torch.where(c_, s, x_))
xi = torch.tensor([[1, 2, 3], [4, 5, 6]])
case("where int and fraction", "where", [c, xi, 1.5], lambda c_, t, s: torch.where(c_, t, s))
case("where int and whole", "where", [c, xi, 7], lambda c_, t, s: torch.where(c_, t, s))
case("where two ints", "where", [c, 1, 2], lambda c_, p, q: torch.where(c_, p, q))
case("where two floats", "where", [c, 1.0, 2.0], lambda c_, p, q: torch.where(c_, p, q))
case("where f32 and 0-dim f64", "where",
     [c, x.float(), torch.tensor(5.0, dtype=torch.float64)], torch.where)
case("where int and 0-dim f64", "where", [c, xi, torch.tensor(5.0, dtype=torch.float64)],
     torch.where)
case("where f32 and f64", "where", [c, x.float(), y], torch.where)
case("where 0-dim", "where", [torch.tensor(False), torch.tensor(1.0), torch.tensor(2.0)],
     torch.where)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rounding.json")
with open(out, "w") as f:
    json.dump({"generator": "tests/reference/gen_rounding.py",
               "torch": torch.__version__, "cases": cases}, f, indent=0)
    f.write("\n")
print(f"{len(cases)} cases -> {out}")
