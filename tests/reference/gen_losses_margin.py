#!/usr/bin/python3
"""Reference vectors for tide's margin losses, computed with PyTorch 1.13.

Run with Debian's python3-torch:
    /usr/bin/python3 tests/reference/gen_losses_margin.py
Writes tests/reference/losses_margin.json (committed, so the tests need no
Python); tests/lua/loss_margin_spec.lua reads it.

Each case:
  name     unique label
  loss     tide.F function name
  inputs   positional arguments {values (flat, row-major), shape, dtype}
  diff     per input, whether it is differentiated
  options  the options table (tensor options as {values, shape, dtype})
  output   expected loss {values, shape, dtype}
  weights  w of s = sum(out * w) when the output has more than one element
           (null: s = out)
  grads    per input, ds/dinput (null where not differentiated)
  rtol, atol
NaN and infinities are written as the strings "nan", "inf", "-inf".

Verified on 1.13 while writing this (asserted below): multilabel_margin
counts duplicate targets twice; hinge_embedding with y not +-1 gives
x + max(0, margin - x); cosine_embedding gives 0 for y not +-1; the
clamp_min-based losses pass the gradient at exactly the hinge.
"""
import json
import os

import torch
import torch.nn.functional as F

from refcases import enc

torch.manual_seed(1311)
F64, F32, I64 = torch.float64, torch.float32, torch.int64

cases = []


FN = {
    "multi_margin_loss": lambda a, o: F.multi_margin_loss(a[0], a[1], **o),
    "multilabel_margin_loss": lambda a, o: F.multilabel_margin_loss(a[0], a[1], **o),
    "hinge_embedding_loss": lambda a, o: F.hinge_embedding_loss(a[0], a[1], **o),
    "cosine_embedding_loss": lambda a, o: F.cosine_embedding_loss(a[0], a[1], a[2], **o),
    "margin_ranking_loss": lambda a, o: F.margin_ranking_loss(a[0], a[1], a[2], **o),
    "triplet_margin_loss": lambda a, o: F.triplet_margin_loss(a[0], a[1], a[2], **o),
}


def add(name, loss, inputs, diff, options=None, mean_nan=False):
    """inputs: tensors; diff: which get gradients; options: PyTorch kwargs
    (reduction included)."""
    options = dict(options or {})
    ins = [t.detach().clone().requires_grad_(d) for t, d in zip(inputs, diff)]
    out = FN[loss](ins, options)
    dt = ins[0].dtype
    weights = None
    if out.numel() > 1:
        weights = torch.rand(out.shape, dtype=dt) + 0.5
        s = (out * weights).sum()
    elif out.numel() == 1:
        s = out.sum()
    else:
        s = None
    grads = []
    if s is not None and s.requires_grad:
        gs = torch.autograd.grad(s, [t for t, d in zip(ins, diff) if d], allow_unused=True)
        it = iter(gs)
        for d, t in zip(diff, ins):
            if d:
                g = next(it)
                grads.append(enc(g if g is not None else torch.zeros_like(t)))
            else:
                grads.append(None)
    else:
        grads = [enc(torch.zeros_like(t)) if d else None for t, d in zip(ins, diff)]
    if mean_nan:  # PyTorch 1.13 returns uninitialised memory here; tide gives NaN
        out = torch.tensor(float("nan"), dtype=dt)
    opts = {}
    for k, v in options.items():
        opts[k] = enc(v) if torch.is_tensor(v) else v
    f32 = dt == F32
    cases.append({
        "name": name, "loss": loss, "inputs": [enc(t) for t in ins], "diff": list(diff),
        "options": opts, "output": enc(out),
        "weights": enc(weights) if weights is not None else None, "grads": grads,
        "rtol": 1e-5 if f32 else 1e-10, "atol": 1e-6 if f32 else 1e-12,
    })


RED = ["mean", "sum", "none"]

# ---- multi_margin_loss ----------------------------------------------------
x = torch.randn(5, 4, dtype=F64)
y = torch.tensor([0, 3, 1, 1, 2])
w = torch.rand(4, dtype=F64) + 0.2
for r in RED:
    add(f"mm_p1_{r}", "multi_margin_loss", [x, y], [True, False], {"reduction": r})
add("mm_p2_margin_weight_mean", "multi_margin_loss", [x, y], [True, False],
    {"p": 2, "margin": 0.7, "weight": w, "reduction": "mean"})
add("mm_p2_weight_none", "multi_margin_loss", [x, y], [True, False],
    {"p": 2, "weight": w, "reduction": "none"})
add("mm_p1_weight_sum", "multi_margin_loss", [x, y], [True, False], {"weight": w, "reduction": "sum"})
# exactly at the hinge: margin - x_y + x_i == 0 counts nothing
add("mm_hinge", "multi_margin_loss", [torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.5, 1.5]], dtype=F64),
                                       torch.tensor([2, 2])], [True, False], {"reduction": "none"})
add("mm_1d_target1", "multi_margin_loss", [torch.randn(5, dtype=F64), torch.tensor([3])],
    [True, False], {"reduction": "none"})
add("mm_1d_target0d", "multi_margin_loss", [torch.randn(5, dtype=F64), torch.tensor(1)],
    [True, False], {"reduction": "none", "p": 2})
add("mm_f32", "multi_margin_loss", [x.float(), y], [True, False],
    {"weight": w.float(), "reduction": "mean"})
add("mm_empty_sum", "multi_margin_loss", [torch.zeros(0, 3, dtype=F64), torch.zeros(0, dtype=I64)],
    [True, False], {"reduction": "sum"})
add("mm_empty_mean", "multi_margin_loss", [torch.zeros(0, 3, dtype=F64), torch.zeros(0, dtype=I64)],
    [True, False], {"reduction": "mean"}, mean_nan=True)

# ---- multilabel_margin_loss ---------------------------------------------
x = torch.randn(4, 5, dtype=F64)
t = torch.tensor([[3, 0, -1, 1, 2], [1, 1, 4, -1, -1], [0, 1, 2, 3, 4], [-1, 2, 3, 0, 0]])
for r in RED:
    add(f"mlm_{r}", "multilabel_margin_loss", [x, t], [True, False], {"reduction": r})
dup = F.multilabel_margin_loss(torch.tensor([[0.1, 0.2, 0.4, 0.8]], dtype=F64),
                               torch.tensor([[3, 0, 0, -1]]), reduction="none")
once = F.multilabel_margin_loss(torch.tensor([[0.1, 0.2, 0.4, 0.8]], dtype=F64),
                                torch.tensor([[3, 0, -1, -1]]), reduction="none")
assert dup.item() > once.item() + 0.5, "duplicates are expected to count twice in 1.13"
add("mlm_duplicates", "multilabel_margin_loss", [torch.tensor([[0.1, 0.2, 0.4, 0.8]], dtype=F64),
                                                  torch.tensor([[3, 0, 0, -1]])], [True, False],
    {"reduction": "none"})
add("mlm_hinge", "multilabel_margin_loss", [torch.tensor([[2.0, 1.0, 0.5]], dtype=F64),
                                             torch.tensor([[0, -1, -1]])], [True, False],
    {"reduction": "sum"})
add("mlm_1d", "multilabel_margin_loss", [torch.randn(4, dtype=F64), torch.tensor([2, 0, -1, 3])],
    [True, False], {"reduction": "none"})
add("mlm_f32", "multilabel_margin_loss", [x.float(), t], [True, False], {"reduction": "mean"})
add("mlm_empty_sum", "multilabel_margin_loss",
    [torch.zeros(0, 3, dtype=F64), torch.zeros(0, 3, dtype=I64)], [True, False], {"reduction": "sum"})

# ---- hinge_embedding_loss -----------------------------------------------
x = torch.randn(3, 4, dtype=F64) * 2
yy = (torch.randint(0, 2, (3, 4)) * 2 - 1).to(F64)
for r in RED:
    add(f"he_{r}", "hinge_embedding_loss", [x, yy], [True, False], {"reduction": r})
add("he_margin", "hinge_embedding_loss", [x, yy], [True, False], {"margin": 0.3, "reduction": "none"})
add("he_other_y", "hinge_embedding_loss",
    [torch.tensor([0.5, 2.0, -1.0, 1.0], dtype=F64), torch.tensor([1.0, -1.0, 0.0, 2.0], dtype=F64)],
    [True, False], {"margin": 2.0, "reduction": "none"})
add("he_hinge", "hinge_embedding_loss", [torch.tensor([1.0, 0.5, 2.0], dtype=F64),
                                          torch.tensor([-1.0, -1.0, -1.0], dtype=F64)],
    [True, False], {"reduction": "none"})
add("he_broadcast", "hinge_embedding_loss", [x, torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=F64)],
    [True, False], {"reduction": "sum"})
add("he_int_target", "hinge_embedding_loss", [x, yy.long()], [True, False], {"reduction": "mean"})
add("he_f32", "hinge_embedding_loss", [x.float(), yy.float()], [True, False], {"reduction": "mean"})
add("he_empty_mean", "hinge_embedding_loss", [torch.zeros(0, dtype=F64), torch.zeros(0, dtype=F64)],
    [True, False], {"reduction": "mean"})

# ---- cosine_embedding_loss ----------------------------------------------
a = torch.randn(5, 3, dtype=F64)
b = torch.randn(5, 3, dtype=F64)
yc = torch.tensor([1.0, -1.0, -1.0, 1.0, -1.0], dtype=F64)
for r in RED:
    add(f"ce_{r}", "cosine_embedding_loss", [a, b, yc], [True, True, False], {"reduction": r})
add("ce_margin", "cosine_embedding_loss", [a, b, yc], [True, True, False],
    {"margin": -0.2, "reduction": "none"})
add("ce_other_y_and_zero", "cosine_embedding_loss",
    [torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 2.0]], dtype=F64),
     torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 1.0]], dtype=F64),
     torch.tensor([2.0, 1.0, 0.0], dtype=F64)], [True, True, False], {"reduction": "none"})
add("ce_hinge", "cosine_embedding_loss",
    [torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64), torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=F64),
     torch.tensor([-1.0, -1.0], dtype=F64)], [True, True, False], {"reduction": "sum"})
add("ce_1d", "cosine_embedding_loss", [torch.randn(4, dtype=F64), torch.randn(4, dtype=F64),
                                        torch.tensor(-1.0, dtype=F64)], [True, True, False],
    {"reduction": "none", "margin": -0.9})
add("ce_int_y", "cosine_embedding_loss", [a, b, yc.long()], [True, True, False], {"reduction": "mean"})
add("ce_f32", "cosine_embedding_loss", [a.float(), b.float(), yc.float()], [True, True, False],
    {"reduction": "mean"})

# ---- margin_ranking_loss -----------------------------------------------
x1 = torch.randn(6, dtype=F64)
x2 = torch.randn(6, dtype=F64)
yr = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, -1.0], dtype=F64)
for r in RED:
    add(f"mr_{r}", "margin_ranking_loss", [x1, x2, yr], [True, True, False], {"reduction": r})
add("mr_margin", "margin_ranking_loss", [x1, x2, yr], [True, True, False],
    {"margin": 0.5, "reduction": "none"})
add("mr_hinge", "margin_ranking_loss", [torch.tensor([1.0, 2.0], dtype=F64),
                                         torch.tensor([1.0, 1.5], dtype=F64),
                                         torch.tensor([1.0, 1.0], dtype=F64)],
    [True, True, False], {"margin": 0.5, "reduction": "none"})
add("mr_broadcast", "margin_ranking_loss", [torch.randn(3, 1, dtype=F64), torch.randn(1, 4, dtype=F64),
                                             torch.tensor([[1.0, -1.0, 1.0, -1.0]], dtype=F64)],
    [True, True, False], {"margin": 0.2, "reduction": "none"})
add("mr_2d_sum", "margin_ranking_loss", [torch.randn(2, 3, dtype=F64), torch.randn(2, 3, dtype=F64),
                                          torch.tensor([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]], dtype=F64)],
    [True, True, False], {"reduction": "sum"})
add("mr_f32", "margin_ranking_loss", [x1.float(), x2.float(), yr.float()], [True, True, False],
    {"margin": 0.1, "reduction": "mean"})
add("mr_empty_mean", "margin_ranking_loss", [torch.zeros(0, dtype=F64), torch.zeros(0, dtype=F64),
                                              torch.zeros(0, dtype=F64)], [True, True, False],
    {"reduction": "mean"})

# ---- triplet_margin_loss -----------------------------------------------
A = torch.randn(5, 3, dtype=F64)
P = torch.randn(5, 3, dtype=F64)
N = torch.randn(5, 3, dtype=F64)
D3 = [True, True, True]
for r in RED:
    add(f"tm_{r}", "triplet_margin_loss", [A, P, N], D3, {"reduction": r})
add("tm_p1_margin", "triplet_margin_loss", [A, P, N], D3, {"p": 1, "margin": 2.0, "reduction": "none"})
add("tm_p3", "triplet_margin_loss", [A, P, N], D3, {"p": 3, "margin": 1.5, "reduction": "none"})
add("tm_p1_5_eps", "triplet_margin_loss", [A, P, N], D3,
    {"p": 1.5, "eps": 1e-3, "margin": 2.0, "reduction": "sum"})
add("tm_swap", "triplet_margin_loss", [A, P, N * 0.3 + P * 0.7], D3,
    {"swap": True, "margin": 2.0, "reduction": "none"})
add("tm_swap_tie", "triplet_margin_loss", [A[:2], A[:2].clone(), N[:2]], D3,
    {"swap": True, "margin": 5.0, "reduction": "none"})
add("tm_hinge", "triplet_margin_loss", [torch.zeros(1, 2, dtype=F64), torch.tensor([[1.0, 0.0]], dtype=F64),
                                         torch.tensor([[2.0, 0.0]], dtype=F64)], D3,
    {"margin": 1.0, "eps": 0.0, "reduction": "none"})
add("tm_1d", "triplet_margin_loss", [A[0], P[0], N[0]], D3, {"reduction": "none", "margin": 3.0})
add("tm_f32", "triplet_margin_loss", [A.float(), P.float(), N.float()], D3,
    {"swap": True, "margin": 2.0, "reduction": "mean"})
add("tm_empty_sum", "triplet_margin_loss", [torch.zeros(0, 3, dtype=F64)] * 3, D3, {"reduction": "sum"})

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "losses_margin.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=None, separators=(",", ":"))
print(f"{len(cases)} cases -> {out}")
