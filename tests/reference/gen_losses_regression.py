#!/usr/bin/python3
"""Reference cases for tide's regression losses, computed with PyTorch 1.13.

Run with Debian's python3-torch:
    /usr/bin/python3 tests/reference/gen_losses_regression.py
Writes tests/reference/losses_regression.json (committed, so the tests need
no Python); tests/lua/loss_regression_spec.lua reads it.

Each case:
  name      unique label
  loss      tide.F function name
  inputs    positional tensors {values (flat, row-major), shape, dtype}
  options   the trailing options table
  output    expected result {values, shape, dtype}
  weight    for reduction "none": w of s = (out * w).sum(); null when out
            is a scalar (s = out)
  grads     per input, ds/dinput (every input is differentiated)
  rtol, atol  |got - want| <= atol + rtol * |want|
NaN and infinities are the strings "nan", "inf", "-inf".

poisson_nll_loss's target gradient comes from autograd of PyTorch's own
formula with the Stirling term masked by torch.where instead of
masked_fill (PyTorch's masked_fill form gives 0 * log(0) = NaN at y = 0
when full = True; tide gives the clean 0 there, see docs/losses.md, "Regression losses").
The forward value is checked against F.poisson_nll_loss.
"""
import json
import math
import os

import torch
import torch.nn.functional as F
import warnings

warnings.filterwarnings("ignore")  # PyTorch warns on broadcast targets and kl_div "mean"

torch.manual_seed(1313)
F64, F32 = torch.float64, torch.float32
NAMES = {F32: "float32", F64: "float64"}
cases = []


def num(v):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return float(v)


def enc(t):
    t = t.detach()
    return {"values": [num(v) for v in t.reshape(-1).tolist()], "shape": list(t.shape),
            "dtype": NAMES[t.dtype]}


def t(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def poisson_clean(x, y, log_input=True, full=False, eps=1e-8, reduction="mean"):
    loss = torch.exp(x) - y * x if log_input else x - y * torch.log(x + eps)
    if full:
        big = y > 1
        yc = torch.where(big, y, torch.full_like(y, 2.0))
        st = yc * torch.log(yc) - yc + 0.5 * torch.log(2 * math.pi * yc)
        loss = loss + torch.where(big, st, torch.zeros_like(st))
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def call(loss, ins, opts):
    o = dict(opts)
    if loss == "poisson_nll_loss":
        return poisson_clean(*ins, **o)
    return getattr(F, loss)(*ins, **o)


def add(name, loss, inputs, opts=None, weight_seed=None):
    opts = opts or {}
    ins = [x.clone().requires_grad_(True) for x in inputs]
    out = call(loss, ins, opts)
    if loss == "poisson_nll_loss":  # the clean formula's value is PyTorch's
        ref = F.poisson_nll_loss(*[x.detach() for x in inputs], **opts)
        assert torch.allclose(out.detach(), ref, rtol=1e-12, atol=0, equal_nan=True), name
    if out.dim() > 0:
        w = torch.randn(out.shape, dtype=out.dtype)
        s = (out * w).sum()
    else:
        w = None
        s = out
    grads = torch.autograd.grad(s, ins, allow_unused=True) if s.requires_grad else [None] * len(ins)
    grads = [g if g is not None else torch.zeros_like(x) for g, x in zip(grads, ins)]
    dt = inputs[0].dtype
    scale = 1.0
    for v in [out] + list(grads):
        v = v.detach()
        if v.numel() > 0:
            fin = v[torch.isfinite(v)]
            if fin.numel() > 0:
                scale = max(scale, fin.abs().max().item())
    rtol, atol = (1e-10, 1e-12 * scale) if dt == F64 else (1e-5, 1e-6 * scale)
    cases.append({
        "name": name, "loss": loss, "inputs": [enc(x) for x in inputs], "options": opts,
        "output": enc(out), "weight": enc(w) if w is not None else None,
        "grads": [enc(g) for g in grads], "rtol": rtol, "atol": atol,
    })


def rn(*shape, dtype=F64):
    return torch.randn(*shape, dtype=dtype)


# ---- mse_loss, l1_loss -------------------------------------------------------
for red in ["none", "mean", "sum"]:
    add(f"mse {red}", "mse_loss", [rn(3, 4), rn(3, 4)], {"reduction": red})
    add(f"l1 {red} with zero differences", "l1_loss",
        [t([[1.0, -2.0, 0.5], [3.0, 0.0, -1.5]]), t([[1.0, 2.0, 0.5], [-3.0, 0.0, 1.5]])], {"reduction": red})
add("mse float32 mean", "mse_loss", [rn(5, 3, dtype=F32), rn(5, 3, dtype=F32)])
add("mse target broadcast (3) vs (2,3)", "mse_loss", [rn(2, 3), rn(3)])
add("mse both broadcast (4,1) vs (1,3) none", "mse_loss", [rn(4, 1), rn(1, 3)], {"reduction": "none"})
add("mse empty mean", "mse_loss", [rn(0, 3), rn(0, 3)])
add("mse empty sum", "mse_loss", [rn(0, 3), rn(0, 3)], {"reduction": "sum"})
add("mse 0-dim", "mse_loss", [t(1.5), t(-0.25)])
add("l1 float32 sum", "l1_loss", [rn(4, 5, dtype=F32), rn(4, 5, dtype=F32)], {"reduction": "sum"})
add("l1 broadcast input (3,1) target (3,4) mean", "l1_loss", [rn(3, 1), rn(3, 4)])

# ---- smooth_l1_loss, huber_loss (|d| exactly at beta / delta included) -------
kink_x = t([[0.0, 1.5, -0.5, 2.0, 1.0], [0.25, -1.0, 3.0, 0.5, -2.5]])
kink_y = t([[0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0, 0.0]])
add("smooth_l1 default mean", "smooth_l1_loss", [rn(3, 4) * 2, rn(3, 4)])
add("smooth_l1 beta 0.5 none at the kink", "smooth_l1_loss", [kink_x, kink_y], {"beta": 0.5, "reduction": "none"})
add("smooth_l1 beta 1 none at the kink", "smooth_l1_loss", [kink_x, kink_y], {"beta": 1.0, "reduction": "none"})
add("smooth_l1 beta 0 is l1, sum", "smooth_l1_loss", [kink_x, kink_y], {"beta": 0.0, "reduction": "sum"})
add("smooth_l1 beta 2 float32 mean", "smooth_l1_loss", [rn(6, 3, dtype=F32) * 3, rn(6, 3, dtype=F32)], {"beta": 2.0})
add("smooth_l1 broadcast sum", "smooth_l1_loss", [rn(2, 3, 4) * 2, rn(3, 1)], {"reduction": "sum", "beta": 0.75})
add("huber default mean", "huber_loss", [rn(3, 4) * 2, rn(3, 4)])
add("huber delta 0.5 none at the kink", "huber_loss", [kink_x, kink_y], {"delta": 0.5, "reduction": "none"})
add("huber delta 2.5 sum", "huber_loss", [rn(4, 4) * 3, rn(4, 4)], {"delta": 2.5, "reduction": "sum"})
add("huber float32 none", "huber_loss", [rn(3, 3, dtype=F32) * 2, rn(3, 3, dtype=F32)], {"reduction": "none"})
add("huber broadcast mean", "huber_loss", [rn(4, 1) * 2, rn(1, 5)], {"delta": 1.5})

# ---- kl_div -------------------------------------------------------------------
logp = torch.log_softmax(rn(4, 5), dim=1)
q = torch.softmax(rn(4, 5), dim=1)
q0 = q.clone()
q0[0, 1] = 0.0
q0[2, 3] = 0.0
for red in ["mean", "batchmean", "sum", "none"]:
    add(f"kl_div {red}", "kl_div", [logp, q], {"reduction": red})
add("kl_div zero targets none (target grad NaN there, as PyTorch)", "kl_div", [logp, q0], {"reduction": "none"})
add("kl_div zero targets batchmean", "kl_div", [logp, q0], {"reduction": "batchmean"})
add("kl_div negative target gives NaN", "kl_div", [logp[:1, :3], t([[0.5, -0.25, 0.0]])], {"reduction": "none"})
add("kl_div log_target none", "kl_div", [logp, torch.log(q)], {"log_target": True, "reduction": "none"})
add("kl_div log_target batchmean", "kl_div", [logp, torch.log(q)], {"log_target": True, "reduction": "batchmean"})
add("kl_div 3-d batchmean", "kl_div", [torch.log_softmax(rn(2, 3, 4), 2), torch.softmax(rn(2, 3, 4), 2)],
    {"reduction": "batchmean"})
add("kl_div 0-dim batchmean is the sum", "kl_div", [t(-0.5), t(0.25)], {"reduction": "batchmean"})
add("kl_div float32 mean", "kl_div", [torch.log_softmax(rn(3, 4, dtype=F32), 1), torch.softmax(rn(3, 4, dtype=F32), 1)])
add("kl_div broadcast target (5) batchmean", "kl_div", [logp, q[0]], {"reduction": "batchmean"})

# ---- poisson_nll_loss -----------------------------------------------------------
ys = t([[0.0, 0.5, 1.0, 1.5, 3.0], [7.0, 0.0, 2.0, 1.0, 10.0]])
xs = rn(2, 5)
add("poisson default mean", "poisson_nll_loss", [xs, ys])
add("poisson log_input full none (y <= 1 and y > 1)", "poisson_nll_loss", [xs, ys], {"full": True, "reduction": "none"})
add("poisson rates none", "poisson_nll_loss", [xs.abs() + 0.1, ys], {"log_input": False, "reduction": "none"})
add("poisson rates full eps 0.1 sum", "poisson_nll_loss", [xs.abs(), ys], {"log_input": False, "full": True, "eps": 0.1,
                                                                          "reduction": "sum"})
add("poisson x = 0 rates default eps", "poisson_nll_loss", [t([0.0, 1.0, 2.0]), t([0.0, 0.5, 3.0])],
    {"log_input": False, "reduction": "none"})
add("poisson float32 exp overflows to inf", "poisson_nll_loss", [t([100.0, 1.0, -50.0], F32), t([2.0, 0.0, 1.0], F32)],
    {"reduction": "none"})
add("poisson float64 x = 800 gives inf mean", "poisson_nll_loss", [t([800.0, 1.0]), t([3.0, 2.0])])
add("poisson broadcast full mean", "poisson_nll_loss", [rn(3, 1), ys[1]], {"full": True})
add("poisson float32 full mean", "poisson_nll_loss", [rn(4, 5, dtype=F32), ys.float().repeat(2, 1)], {"full": True})

# ---- gaussian_nll_loss ----------------------------------------------------------
gi, gt = rn(4, 3), rn(4, 3)
add("gaussian same shape mean", "gaussian_nll_loss", [gi, gt, torch.rand(4, 3, dtype=F64) + 0.1])
add("gaussian var lacks last dim none", "gaussian_nll_loss", [gi, gt, torch.rand(4, dtype=F64) + 0.1],
    {"reduction": "none"})
add("gaussian var trailing 1 sum", "gaussian_nll_loss", [gi, gt, torch.rand(4, 1, dtype=F64) + 0.1], {"reduction": "sum"})
add("gaussian full mean", "gaussian_nll_loss", [gi, gt, torch.rand(4, 3, dtype=F64) + 0.1], {"full": True})
add("gaussian var below eps none", "gaussian_nll_loss", [gi[:2], gt[:2], t([[0.0, 1e-8, 0.5], [1e-6, 2e-6, 0.0]])],
    {"reduction": "none"})
add("gaussian eps 0.01 full sum", "gaussian_nll_loss", [gi[:2], gt[:2], t([[0.0, 0.005, 0.5], [0.01, 0.02, 3.0]])],
    {"eps": 0.01, "full": True, "reduction": "sum"})
add("gaussian target broadcast (3) mean", "gaussian_nll_loss", [gi, gt[0], torch.rand(4, 1, dtype=F64) + 0.1])
add("gaussian 3-d var lacks last dim mean", "gaussian_nll_loss",
    [rn(2, 3, 4), rn(2, 3, 4), torch.rand(2, 3, dtype=F64) + 0.1])
add("gaussian 1-d input scalar var", "gaussian_nll_loss", [rn(5), rn(5), t(0.7)], {"reduction": "none"})
add("gaussian float32 mean", "gaussian_nll_loss",
    [rn(5, 2, dtype=F32), rn(5, 2, dtype=F32), torch.rand(5, 2, dtype=F32) + 0.1])
add("gaussian empty mean", "gaussian_nll_loss", [rn(0, 3), rn(0, 3), rn(0, 3).abs()])

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "losses_regression.json")
with open(out, "w") as f:
    json.dump({"cases": cases}, f, separators=(",", ":"))
print(f"{len(cases)} cases -> {out}")
