#!/usr/bin/python3
"""Reference cases for tide's activations and the elementwise math of its op
table, computed with PyTorch 1.13.

Run with Debian's python3-torch:
    /usr/bin/python3 tests/reference/gen_activations.py
Writes tests/reference/activations.json (committed, so the tests need no
Python); tests/lua/activations_spec.lua reads it.

Each case:
  name     unique label
  ns       "F" (tide.F.fn) or "tide" (tide.fn)
  fn       the function's name
  args     positional arguments: a tensor {values, shape, dtype, grad} or a
           plain number
  options  the trailing options table, or null for none
  output   expected result {values, shape, dtype}
  weight   w of s = (out * w).sum(), the scalar whose gradients are checked
           (absent for uint8 results)
  grads    {"a1": ...}: ds/d(arg i) for every tensor marked grad
Non-finite values are written as the strings "inf", "-inf" and "nan".

The elementwise ops' gradients are taken one element at a time: PyTorch
1.13's vectorised kernels disagree with its scalar ones at a few points
(float64's give a NaN input of elu, hardtanh, relu6 and hardswish the
gradient NaN or 0, float32's and the scalar path g; hardswish's at x = 3 is
g in the vectorised kernel, 1.5 g in the scalar one), so the references
are the scalar path's, the formula as PyTorch's scalar code writes it.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1313)
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64",
         torch.uint8: "uint8", torch.bool: "uint8"}
FLOATS = (torch.float32, torch.float64)
cases = []

INF, NAN = math.inf, math.nan
# every branch and its boundary: the kinks of relu6, hardtanh, hardswish,
# hardsigmoid (0, +-1, +-3, 6), softplus's threshold (20 at beta 1), large
# magnitudes, the signed zero region, and the non-finite values
EDGES = [-INF, -40.0, -20.0, -3.5, -3.0, -2.5, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.5, 3.0,
         3.5, 6.0, 6.5, 19.5, 20.0, 20.5, 40.0, INF, NAN]
UNIT = [-1.5, -1.0, -0.999, -0.75, -0.3, -1e-4, 0.0, 1e-4, 0.3, 0.75, 0.999, 1.0, 1.5, INF, NAN]
ABOVE_ONE = [-1.0, 0.0, 0.5, 1.0, 1.01, 1.5, 3.0, 100.0, INF, NAN]
POSITIVE = [-1.0, 0.0, 1e-6, 0.25, 1.0, 4.0, 1e6, INF, NAN]
REAL = [-INF, -30.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 30.0, INF, NAN]


def number(v):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def spec(t):
    return {"values": [number(v) for v in t.detach().reshape(-1).tolist()], "shape": list(t.shape),
            "dtype": NAMES[t.dtype]}


def add(name, ns, fn, call, args, options=None):
    """args: tensors (marked for gradients when floating) and numbers;
    call(*args) computes PyTorch's result"""
    targs = [a.clone().requires_grad_(a.dtype.is_floating_point) if torch.is_tensor(a) else a
             for a in args]
    out = call(*targs)
    case = {"name": name, "ns": ns, "fn": fn, "options": options, "output": spec(out), "grads": {}}
    case["args"] = []
    for a in targs:
        if torch.is_tensor(a):
            s = spec(a)
            s["grad"] = a.requires_grad
            case["args"].append(s)
        else:
            case["args"].append(a)
    if out.requires_grad:
        w = torch.randn(out.shape, dtype=out.dtype)
        (out * w).sum().backward()
        case["weight"] = spec(w)
        for i, a in enumerate(targs):
            if torch.is_tensor(a) and a.requires_grad:
                case["grads"]["a%d" % (i + 1)] = spec(a.grad)
    cases.append(case)


def unary(name, ns, fn, call, values, params=(), options=None):
    """the op over values in both float dtypes; params positional, options
    by name; the gradient element by element (PyTorch's scalar path)"""
    for dt in FLOATS:
        x = torch.tensor(values, dtype=dt)
        label = "%s %s %s %s" % (name, NAMES[dt], list(params), options or {})
        f = lambda t, *ps: call(t, *ps, **(options or {}))
        add(label, ns, fn, f, [x] + list(params), options)
        w = torch.tensor([v if v == v and abs(v) != INF else 0.0 for v in cases[-1]["weight"]["values"]], dtype=dt)
        grad = []
        for i in range(len(values)):
            xi = x[i:i + 1].clone().requires_grad_()
            (f(xi, *params) * w[i]).sum().backward()
            grad.append(xi.grad[0])
        cases[-1]["grads"]["a1"] = spec(torch.stack(grad))


# ---- the elementwise math -------------------------------------------------------
unary("rsqrt", "tide", "rsqrt", torch.rsqrt, POSITIVE)
unary("tan", "tide", "tan", torch.tan, [-1.5, -1.0, -0.3, 0.0, 0.3, 1.0, 1.5, 3.0, INF, NAN])
unary("asin", "tide", "asin", torch.asin, UNIT)
unary("acos", "tide", "acos", torch.acos, UNIT)
unary("atan", "tide", "atan", torch.atan, REAL)
unary("sinh", "tide", "sinh", torch.sinh, REAL)
unary("cosh", "tide", "cosh", torch.cosh, REAL)
unary("asinh", "tide", "asinh", torch.asinh, REAL)
unary("acosh", "tide", "acosh", torch.acosh, ABOVE_ONE)
unary("atanh", "tide", "atanh", torch.atanh, UNIT)

for dt in (torch.float32, torch.float64, torch.int64, torch.uint8):
    x = torch.tensor([0, 1, 2, 0, 255] if dt == torch.uint8 else
                     ([0, -3, 2, 0, 7] if dt == torch.int64 else [0.0, -0.0, 1e-30, NAN, -INF]),
                     dtype=dt)
    add("logical_not %s" % NAMES[dt], "tide", "logical_not", torch.logical_not, [x])

PAIRS = [(torch.float32, torch.float64), (torch.int64, torch.float32), (torch.uint8, torch.int64),
         (torch.float64, torch.float64)]
for name, fn in (("logical_and", torch.logical_and), ("logical_or", torch.logical_or),
                 ("logical_xor", torch.logical_xor)):
    for da, db in PAIRS:
        a = torch.tensor([[0, 1, 2], [0, 0, 3]], dtype=da)
        b = torch.tensor([0, 5, 0], dtype=db)
        if da.is_floating_point:
            a = torch.tensor([[0.0, NAN, -0.0], [1e-30, 0.0, -INF]], dtype=da)
        add("%s %s %s" % (name, NAMES[da], NAMES[db]), "tide", name, fn, [a, b])

for dt in FLOATS:
    a = torch.tensor([[0.0, 1.0, -1.0, 2.5, -0.5], [3.0, -2.0, 0.5, 1e-3, -7.0]], dtype=dt)
    b = torch.tensor([[1.0, 0.5, 1.0, -2.0, -0.25], [-1.0, -3.0, 4.0, 2.0, 0.3]], dtype=dt)
    add("atan2 %s" % NAMES[dt], "tide", "atan2", torch.atan2, [a, b])
    # the axes, zeros of both signs, infinities: values only
    ea = torch.tensor([0.0, -0.0, 0.0, -0.0, 1.0, -1.0, INF, -INF, INF, NAN], dtype=dt)
    eb = torch.tensor([0.0, 0.0, -0.0, -0.0, 0.0, 0.0, INF, INF, 1.0, 1.0], dtype=dt)
    add("atan2 edges %s" % NAMES[dt], "tide", "atan2", lambda p, q: torch.atan2(p.detach(), q.detach()),
        [ea, eb])
    cases[-1]["args"][0]["grad"] = cases[-1]["args"][1]["grad"] = False

# ---- activations --------------------------------------------------------------------
unary("elu", "F", "elu", F.elu, EDGES)
unary("elu", "F", "elu", F.elu, EDGES, options={"alpha": 0.5})
unary("elu", "F", "elu", F.elu, EDGES, params=(2.0,))
unary("selu", "F", "selu", F.selu, EDGES)
unary("selu", "tide", "selu", torch.selu, EDGES)
unary("celu", "F", "celu", F.celu, EDGES)
unary("celu", "F", "celu", F.celu, EDGES, options={"alpha": 2.0})
unary("celu", "tide", "celu", torch.celu, EDGES, params=(0.5,))
unary("silu", "F", "silu", F.silu, EDGES)
unary("mish", "F", "mish", F.mish, EDGES)
unary("relu6", "F", "relu6", F.relu6, EDGES)
unary("hardtanh", "F", "hardtanh", F.hardtanh, EDGES)
unary("hardtanh", "F", "hardtanh", F.hardtanh, EDGES, options={"min_val": -2.5, "max_val": 0.5})
unary("hardtanh", "F", "hardtanh", F.hardtanh, EDGES, params=(0.0, 6.0))
unary("hardswish", "F", "hardswish", F.hardswish, EDGES)
unary("hardsigmoid", "F", "hardsigmoid", F.hardsigmoid, EDGES)
unary("softplus", "F", "softplus", F.softplus, EDGES)
unary("softplus", "F", "softplus", F.softplus, EDGES, options={"beta": 2.0, "threshold": 5.0})
unary("softplus", "F", "softplus", F.softplus, EDGES, options={"beta": 0.5})
unary("softsign", "F", "softsign", F.softsign, EDGES)
unary("logsigmoid", "F", "logsigmoid", F.logsigmoid, EDGES)
unary("threshold", "F", "threshold", F.threshold, EDGES, params=(0.5, -1.0))
unary("threshold", "tide", "threshold", torch.threshold, EDGES, params=(-1.0, 20.0))
unary("gelu", "F", "gelu", F.gelu, EDGES)
unary("gelu", "F", "gelu", F.gelu, EDGES, options={"approximate": "tanh"})
unary("gelu", "F", "gelu", F.gelu, EDGES, options={"approximate": "none"})

# prelu: one weight, one per channel (dim 1; dim 0 of a 1-d input)
for dt in FLOATS:
    x = torch.randn(2, 3, 4, dtype=dt)
    x[0, 0, 0] = 0.0
    add("prelu channels %s" % NAMES[dt], "F", "prelu", F.prelu, [x, torch.tensor([0.25, -0.5, 2.0], dtype=dt)])
    add("prelu one %s" % NAMES[dt], "F", "prelu", F.prelu, [x, torch.tensor([0.1], dtype=dt)])
    add("prelu 1d %s" % NAMES[dt], "F", "prelu", F.prelu,
        [torch.tensor([-2.0, 0.0, 1.5, NAN], dtype=dt), torch.tensor([0.3], dtype=dt)])
    add("prelu 0d %s" % NAMES[dt], "F", "prelu", F.prelu, [torch.tensor(-2.0, dtype=dt), torch.tensor(0.5, dtype=dt)])
    add("prelu 2d %s" % NAMES[dt], "F", "prelu", F.prelu, [torch.randn(5, 2, dtype=dt), torch.tensor([0.2, 3.0], dtype=dt)])
    add("prelu 4d %s" % NAMES[dt], "F", "prelu", F.prelu,
        [torch.randn(2, 3, 2, 2, dtype=dt), torch.tensor([0.2, 3.0, -1.0], dtype=dt)])

# glu: the halves along dim (default -1)
for dt in FLOATS:
    add("glu %s" % NAMES[dt], "F", "glu", F.glu, [torch.randn(3, 6, dtype=dt)])
    add("glu dim0 %s" % NAMES[dt], "F", "glu", lambda t: F.glu(t, dim=0), [torch.randn(4, 3, dtype=dt)],
        {"dim": 0})
    add("glu dim1 3d %s" % NAMES[dt], "F", "glu", lambda t: F.glu(t, dim=1), [torch.randn(2, 4, 3, dtype=dt)],
        {"dim": 1})

# softmin over a dim, with large magnitudes
for dt in FLOATS:
    x = torch.randn(3, 5, dtype=dt)
    x[0, 0], x[1, 1] = 1e4, -1e4
    add("softmin dim1 %s" % NAMES[dt], "F", "softmin", lambda t, d: F.softmin(t, d), [x, 1])
    add("softmin dim0 %s" % NAMES[dt], "F", "softmin", lambda t, d: F.softmin(t, d), [x, 0])

# the module's printing, as PyTorch writes it
reprs = {
    "ELU": repr(torch.nn.ELU()), "ELU alpha": repr(torch.nn.ELU(alpha=2)),
    "SELU": repr(torch.nn.SELU()), "CELU": repr(torch.nn.CELU()), "SiLU": repr(torch.nn.SiLU()),
    "Mish": repr(torch.nn.Mish()), "ReLU6": repr(torch.nn.ReLU6()),
    "Hardtanh": repr(torch.nn.Hardtanh()), "Hardtanh range": repr(torch.nn.Hardtanh(-2, 3.5)),
    "Hardswish": repr(torch.nn.Hardswish()), "Hardsigmoid": repr(torch.nn.Hardsigmoid()),
    "Softplus": repr(torch.nn.Softplus()), "Softplus beta": repr(torch.nn.Softplus(beta=2.5, threshold=10)),
    "Softsign": repr(torch.nn.Softsign()), "LogSigmoid": repr(torch.nn.LogSigmoid()),
    "Threshold": repr(torch.nn.Threshold(0.1, 20)), "PReLU": repr(torch.nn.PReLU()),
    "PReLU 3": repr(torch.nn.PReLU(3)), "GLU": repr(torch.nn.GLU()), "Softmin": repr(torch.nn.Softmin(1)),
    "GELU": repr(torch.nn.GELU()), "GELU tanh": repr(torch.nn.GELU(approximate="tanh")),
}
prelu = torch.nn.PReLU(3, init=0.1)
state_dict_keys = {"PReLU": list(prelu.state_dict().keys())}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "activations.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases, "reprs": reprs,
               "state_dict_keys": state_dict_keys}, f, indent=None, separators=(",", ":"))
    f.write("\n")
print("wrote %d cases to %s" % (len(cases), out))
