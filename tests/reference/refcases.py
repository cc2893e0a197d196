"""What gen_reduce_scan.py and gen_ops_more.py share: the case list, the
tensor encoding (inf and nan as strings, bool as uint8), the tolerances,
the grad leaves, error cases and writing the json. Each generator keeps
its own add(), whose choice of tolerance dtype and of gradients differs.
gen_losses_margin.py and gen_reorder.py take enc() from here too, and
gen_losses_binary.py and gen_metrics.py tj().

A generator imports this beside it (Python puts the script's folder on
sys.path):  from refcases import F64, F32, I64, U8, INF, NAN, cases, enc, ...
"""
import json
import math
import os

import torch

F64, F32, I64, U8 = torch.float64, torch.float32, torch.int64, torch.uint8
NAMES = {F32: "float32", F64: "float64", I64: "int64", U8: "uint8", torch.bool: "uint8"}
INF, NAN = math.inf, math.nan

cases = []
seen = set()


def enc(t):
    t = t.detach()
    dt = NAMES[t.dtype]
    if t.dtype == torch.bool:
        t = t.to(U8)
    flat = t.reshape(-1).tolist()
    flat = [float(v) for v in flat] if dt.startswith("float") else [int(v) for v in flat]
    # JSON has no inf or nan: strings the spec turns back into numbers
    flat = [v if not isinstance(v, float) or math.isfinite(v) else str(v) for v in flat]
    return {"values": flat, "shape": list(t.shape), "dtype": dt}


def tolerance(dtype, outs):
    scale = 1.0
    for o in outs:
        if o.is_floating_point() and o.numel() > 0:
            finite = o.detach()[torch.isfinite(o.detach())]
            if finite.numel() > 0:
                scale = max(scale, finite.abs().max().item())
    if dtype == F32:
        return 1e-5, 1e-6 * scale
    return 1e-10, 1e-12 * scale


def jargs(args):
    """inf as the string the spec decodes (JSON has no inf)"""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in (args or {}).items()}


def leaves_of(name, inputs, grad):
    """claims the case name (each once); copies of inputs, the float64
    ones requiring grad when grad"""
    assert name not in seen, name
    seen.add(name)
    leaves = []
    for t in inputs:
        leaf = t.detach().clone()
        if grad and leaf.dtype == F64:
            leaf.requires_grad_(True)
        leaves.append(leaf)
    return leaves


def add_error(name, op, inputs, fn, args, words):
    """PyTorch must fail too; `words` is what tide's message says"""
    try:
        fn(*inputs)
    except (RuntimeError, IndexError, ValueError) as e:
        cases.append({"name": name, "op": op, "inputs": [enc(t) for t in inputs], "args": jargs(args),
                      "error": words, "torch_error": str(e).split("\n")[0]})
        return
    raise AssertionError(name + ": PyTorch accepted it")


def rn(*shape, dtype=F64):
    return torch.randn(shape, dtype=dtype)


def tj(t):
    """gen_losses_binary.py's and gen_metrics.py's encoding: every value a
    float (inf and nan as strings), the dtype as torch names it"""
    t = t.detach()
    vals = [float(v) for v in t.reshape(-1).tolist()]
    return {"values": [v if math.isfinite(v) else str(v) for v in vals], "shape": list(t.shape),
            "dtype": str(t.dtype).replace("torch.", "")}


def write(generator, name):
    """the cases as tests/reference/<name>, from tests/reference/<generator>"""
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    with open(out, "w") as f:
        json.dump({"generator": "tests/reference/" + generator, "torch": torch.__version__,
                   "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases, {os.path.getsize(out)} bytes -> {out}")
    # empty for a next generator run in the same process (runpy)
    cases.clear()
    seen.clear()
