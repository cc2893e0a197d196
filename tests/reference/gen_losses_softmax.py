"""Reference cases for the softmax losses (cross_entropy, nll_loss,
focal_loss, poly1_cross_entropy), from PyTorch 1.13.

Run with Debian's /usr/bin/python3 from the repository root:
    /usr/bin/python3 tests/reference/gen_losses_softmax.py
It writes tests/reference/losses_softmax.json: for each case the inputs,
the options, the output, and the gradients of (out * w).sum() (w a fixed
random tensor of out's shape; w = 1 for a scalar out) with respect to the
input (and to class-probability targets). cross_entropy and nll_loss come
from torch.nn.functional; focal_loss and poly1_cross_entropy, which PyTorch
lacks, from their composite formulas evaluated in float64. NaN and
infinities are stored as the strings "nan", "inf", "-inf"."""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
CASES = []


def enc(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return v


def spec(t):
    t = t.detach()
    vals = t.reshape(-1).tolist()
    if t.dtype.is_floating_point:
        vals = [enc(float(v)) for v in vals]
    return {"values": vals, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")}


def focal_ref(x, y, gamma=2.0, alpha=None, ignore_index=-100, reduction="mean"):
    x64 = x.double()
    cdim = 0 if x.dim() == 1 else 1
    logp_all = F.log_softmax(x64, cdim)
    mask = y != ignore_index
    ys = torch.where(mask, y, torch.zeros_like(y))
    logp = logp_all.gather(cdim, ys.unsqueeze(cdim)).squeeze(cdim)
    p = logp.exp()
    if alpha is None:
        a = torch.ones_like(logp)
    elif isinstance(alpha, float):
        a = torch.full_like(logp, alpha)
    else:
        a = alpha.double()[ys]
    loss = -a * (1 - p) ** gamma * logp
    loss = torch.where(mask, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss.to(x.dtype)
    s = loss.sum()
    if reduction == "sum":
        return s.to(x.dtype)
    return (s / mask.sum()).to(x.dtype)


def poly1_ref(x, y, epsilon=1.0, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    x64 = x.double()
    w64 = None if weight is None else weight.double()
    cdim = 0 if x.dim() == 1 else 1
    ce = F.cross_entropy(x64, y, weight=w64, ignore_index=ignore_index, label_smoothing=label_smoothing,
                         reduction="none")
    c = x.shape[cdim]
    mask = y != ignore_index
    ys = torch.where(mask, y, torch.zeros_like(y))
    py = F.softmax(x64, cdim).gather(cdim, ys.unsqueeze(cdim)).squeeze(cdim)
    pt = (1 - label_smoothing) * py + label_smoothing / c
    wy = torch.ones_like(py) if w64 is None else w64[ys]
    loss = ce + epsilon * wy * (1 - pt)
    loss = torch.where(mask, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss.to(x.dtype)
    s = loss.sum()
    if reduction == "sum":
        return s.to(x.dtype)
    return (s / torch.where(mask, wy, torch.zeros_like(wy)).sum()).to(x.dtype)


def poly1_focal_ref(x, y, epsilon=1.0, gamma=2.0, alpha=None, ignore_index=-100, reduction="mean"):
    cdim = 0 if x.dim() == 1 else 1
    mask = y != ignore_index
    ys = torch.where(mask, y, torch.zeros_like(y))
    p = F.softmax(x.double(), cdim).gather(cdim, ys.unsqueeze(cdim)).squeeze(cdim)
    poly = torch.where(mask, epsilon * (1 - p) ** (gamma + 1), torch.zeros_like(p))
    focal = focal_ref(x, y, gamma=gamma, alpha=alpha, ignore_index=ignore_index, reduction="none").double()
    loss = focal + poly
    if reduction == "none":
        return loss.to(x.dtype)
    s = loss.sum()
    if reduction == "sum":
        return s.to(x.dtype)
    return (s / mask.sum()).to(x.dtype)


def torch_opts(loss, opts):
    o = dict(opts)
    if loss == "focal_loss":
        return o
    return o


def add(name, loss, x, y, **opts):
    x = x.detach().clone().requires_grad_(True)
    prob = y.dtype.is_floating_point
    if prob:
        y = y.detach().clone().requires_grad_(True)
    if loss == "cross_entropy":
        out = F.cross_entropy(x, y, **opts)
    elif loss == "nll_loss":
        out = F.nll_loss(x, y, **opts)
    elif loss == "focal_loss":
        out = focal_ref(x, y, **opts)
    elif loss == "poly1_cross_entropy":
        out = poly1_ref(x, y, **opts)
    elif loss == "poly1_focal_loss":
        out = poly1_focal_ref(x, y, **opts)
    w = torch.rand(out.shape, dtype=x.dtype) + 0.5 if out.dim() > 0 else torch.ones((), dtype=x.dtype)
    (out * w).sum().backward()
    case = {"name": name, "loss": loss, "input": spec(x), "target": spec(y), "output": spec(out), "w": spec(w),
            "grad_input": spec(x.grad)}
    if prob:
        case["grad_target"] = spec(y.grad)
    o = {}
    for k, v in opts.items():
        o[k] = spec(v) if isinstance(v, torch.Tensor) else v
    case["options"] = o
    CASES.append(case)


def randn(*s, dt=torch.float64):
    return torch.randn(*s, dtype=dt)


def idx(c, *s):
    return torch.randint(0, c, s)


def probs(*s, dt=torch.float64, dim=1):
    return F.softmax(torch.randn(*s, dtype=dt) * 2, dim)


R = ["mean", "sum", "none"]
f64, f32 = torch.float64, torch.float32

# ---- cross_entropy --------------------------------------------------------
x, y = randn(4, 5), idx(5, 4)
wt = torch.rand(5, dtype=f64) + 0.2
for r in R:
    add("ce basic " + r, "cross_entropy", x, y, reduction=r)
    add("ce weight " + r, "cross_entropy", x, y, weight=wt, reduction=r)
    add("ce smoothing " + r, "cross_entropy", x, y, label_smoothing=0.1, reduction=r)
    add("ce smoothing weight " + r, "cross_entropy", x, y, weight=wt, label_smoothing=0.2, reduction=r)
yi = torch.tensor([1, -100, 4, -100])
for r in R:
    add("ce ignore weight " + r, "cross_entropy", x, yi, weight=wt, reduction=r)
    add("ce ignore smoothing weight " + r, "cross_entropy", x, yi, weight=wt, label_smoothing=0.3, reduction=r)
add("ce ignore smoothing noweight mean", "cross_entropy", x, yi, label_smoothing=0.3)
add("ce ignore_index real class", "cross_entropy", x, torch.tensor([2, 0, 2, 3]), ignore_index=2)
yall = torch.full((4,), -100)
for r in R:
    add("ce all ignored " + r, "cross_entropy", x, yall, reduction=r)
add("ce smoothing 1", "cross_entropy", x, y, label_smoothing=1.0)
xk = randn(2, 3, 4)
yk = idx(3, 2, 4)
yk[0, 1] = -100
for r in R:
    add("ce kdim " + r, "cross_entropy", xk, yk, reduction=r)
add("ce kdim2 weight smoothing", "cross_entropy", randn(2, 4, 2, 3), idx(4, 2, 2, 3), weight=torch.rand(4, dtype=f64) + 0.1,
    label_smoothing=0.15, reduction="none")
add("ce kdim2 weight smoothing mean", "cross_entropy", randn(2, 4, 2, 3), idx(4, 2, 2, 3),
    weight=torch.rand(4, dtype=f64) + 0.1, label_smoothing=0.15)
for r in ["mean", "none"]:
    add("ce unbatched " + r, "cross_entropy", randn(5), torch.tensor(3), reduction=r)
pt = probs(4, 5)
for r in R:
    add("ce prob " + r, "cross_entropy", x, pt, reduction=r)
    add("ce prob smoothing weight " + r, "cross_entropy", x, pt, weight=wt, label_smoothing=0.2, reduction=r)
add("ce prob smoothing", "cross_entropy", x, pt, label_smoothing=0.1)
add("ce prob weight", "cross_entropy", x, pt, weight=wt)
add("ce prob kdim", "cross_entropy", xk, probs(2, 3, 4), reduction="mean")
add("ce prob unbatched", "cross_entropy", randn(5), probs(5, dim=0), reduction="none")
xe = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], dtype=f64)
ye = torch.tensor([1, 2, 0])
for r in ["mean", "none"]:
    add("ce extreme " + r, "cross_entropy", xe, ye, reduction=r)
add("ce extreme smoothing", "cross_entropy", xe, ye, label_smoothing=0.1, reduction="none")
for r in R:
    add("ce empty " + r, "cross_entropy", randn(0, 5), idx(5, 0), reduction=r)
add("ce f32 mean", "cross_entropy", randn(6, 7, dt=f32), idx(7, 6))
add("ce f32 smoothing weight none", "cross_entropy", randn(6, 7, dt=f32), idx(7, 6), weight=torch.rand(7) + 0.2,
    label_smoothing=0.1, reduction="none")
add("ce f32 kdim", "cross_entropy", randn(2, 5, 3, dt=f32), idx(5, 2, 3))
add("ce f32 extreme", "cross_entropy", xe.float(), ye, reduction="none")
add("ce f32 prob", "cross_entropy", randn(3, 4, dt=f32), probs(3, 4, dt=f32), label_smoothing=0.05)
add("ce wide", "cross_entropy", randn(3, 300), idx(300, 3))

# ---- nll_loss ------------------------------------------------------------
lp = F.log_softmax(randn(5, 4), 1)
yn = idx(4, 5)
wn = torch.rand(4, dtype=f64) + 0.2
for r in R:
    add("nll basic " + r, "nll_loss", lp, yn, reduction=r)
    add("nll weight ignore " + r, "nll_loss", lp, torch.tensor([0, -100, 3, 1, -100]), weight=wn, reduction=r)
add("nll ignore_index 1", "nll_loss", lp, torch.tensor([1, 1, 3, 0, 2]), ignore_index=1)
add("nll all ignored mean", "nll_loss", lp, torch.full((5,), -100))
add("nll all ignored sum", "nll_loss", lp, torch.full((5,), -100), reduction="sum")
add("nll kdim", "nll_loss", F.log_softmax(randn(2, 4, 3), 1), idx(4, 2, 3), weight=wn)
add("nll kdim none", "nll_loss", F.log_softmax(randn(2, 4, 3, 2), 1), idx(4, 2, 3, 2), reduction="none")
add("nll unbatched", "nll_loss", F.log_softmax(randn(4), 0), torch.tensor(2))
add("nll f32", "nll_loss", F.log_softmax(randn(5, 4, dt=f32), 1), yn, weight=wn.float())
add("nll empty sum", "nll_loss", randn(0, 4), idx(4, 0), reduction="sum")

# ---- focal_loss ------------------------------------------------------------
xf, yf = randn(6, 5), idx(5, 6)
af = torch.rand(5, dtype=f64)
for r in R:
    add("focal gamma2 " + r, "focal_loss", xf, yf, gamma=2.0, reduction=r)
    add("focal alpha tensor ignore " + r, "focal_loss", xf, torch.tensor([0, -100, 4, 2, -100, 1]), gamma=1.5,
        alpha=af, reduction=r)
add("focal gamma0", "focal_loss", xf, yf, gamma=0.0)
add("focal gamma0.5", "focal_loss", xf, yf, gamma=0.5, reduction="none")
add("focal alpha 0.25", "focal_loss", xf, yf, gamma=2.0, alpha=0.25, reduction="sum")
add("focal ignore_index 3", "focal_loss", xf, torch.tensor([3, 3, 1, 0, 4, 3]), gamma=3.0, ignore_index=3)
add("focal all ignored", "focal_loss", xf, torch.full((6,), -100))
add("focal kdim", "focal_loss", randn(2, 5, 3), idx(5, 2, 3), gamma=2.0, reduction="none")
add("focal kdim mean", "focal_loss", randn(2, 5, 2, 2), idx(5, 2, 2, 2), gamma=1.0, alpha=af)
add("focal unbatched", "focal_loss", randn(5), torch.tensor(1), gamma=2.0)
add("focal f32", "focal_loss", randn(6, 5, dt=f32), yf, gamma=2.0, alpha=af.float(), reduction="none")
add("focal moderate logits", "focal_loss", torch.tensor([[8.0, 0.0, -3.0], [0.0, 9.0, 1.0]], dtype=f64),
    torch.tensor([0, 1]), gamma=0.5, reduction="none")

# ---- poly1_cross_entropy ---------------------------------------------------
xp, yp = randn(5, 6), idx(6, 5)
wp = torch.rand(6, dtype=f64) + 0.2
for r in R:
    add("poly1 basic " + r, "poly1_cross_entropy", xp, yp, reduction=r)
    add("poly1 weight smoothing ignore " + r, "poly1_cross_entropy", xp, torch.tensor([0, -100, 5, 2, 3]),
        epsilon=2.0, weight=wp, label_smoothing=0.1, reduction=r)
add("poly1 eps -1", "poly1_cross_entropy", xp, yp, epsilon=-1.0)
add("poly1 smoothing", "poly1_cross_entropy", xp, yp, label_smoothing=0.2, reduction="none")
add("poly1 weight", "poly1_cross_entropy", xp, yp, weight=wp)
add("poly1 all ignored", "poly1_cross_entropy", xp, torch.full((5,), -100))
add("poly1 kdim", "poly1_cross_entropy", randn(2, 6, 3), idx(6, 2, 3), epsilon=0.5, reduction="none")
add("poly1 unbatched", "poly1_cross_entropy", randn(6), torch.tensor(4))
add("poly1 f32", "poly1_cross_entropy", randn(5, 6, dt=f32), yp, weight=wp.float(), label_smoothing=0.1)

# ---- poly1_focal_loss -------------------------------------------------------
xq, yq = randn(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])
for r in ("mean", "sum", "none"):
    add("poly1 focal " + r, "poly1_focal_loss", xq, yq, reduction=r)
add("poly1 focal eps -1 gamma 0.5 alpha", "poly1_focal_loss", xq, yq, epsilon=-1.0, gamma=0.5, alpha=0.25)
add("poly1 focal ignore kdim", "poly1_focal_loss", randn(2, 5, 3), torch.tensor([[0, -100, 4], [1, 2, -100]]),
    epsilon=2.0, gamma=1.0, reduction="none")

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "losses_softmax.json")
with open(out, "w") as f:
    json.dump({"generator": "gen_losses_softmax.py", "torch": torch.__version__, "cases": CASES}, f)
print(len(CASES), "cases ->", out)
