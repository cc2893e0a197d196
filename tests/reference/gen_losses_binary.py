#!/usr/bin/python3
"""Reference cases for tide's binary losses (tests/lua/loss_binary_spec.lua).

Run with Debian's PyTorch 1.13: /usr/bin/python3 tests/reference/gen_losses_binary.py
Writes tests/reference/losses_binary.json: each case holds the loss name,
its inputs and options, the expected output, and the gradient of
(out * w).sum() (w random, of out's shape; the output itself when it is a
scalar) with respect to input and, where tide gives one, target.

torchvision's sigmoid_focal_loss and the ASL paper's AsymmetricLossOptimized
are re-typed here with torch ops (torchvision need not be installed).
"""
import json
import os

import torch
import torch.nn.functional as F

from refcases import tj

torch.manual_seed(1234)
cases = []


def focal_tv(x, y, alpha=0.25, gamma=2.0, reduction="none"):
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * y + (1 - alpha) * (1 - y)
        loss = alpha_t * loss
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


def asl_optimized(x, y, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, eps=1e-8, reduction="mean"):
    """AsymmetricLossOptimized (Ben-Baruch et al. 2021) without its
    torch.no_grad around the focusing weight; element-wise result."""
    anti = 1 - y
    xs_pos = torch.sigmoid(x)
    xs_neg = 1.0 - xs_pos
    if clip is not None and clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    loss = y * torch.log(xs_pos.clamp(min=eps))
    loss = loss + anti * torch.log(xs_neg.clamp(min=eps))
    if gamma_neg > 0 or gamma_pos > 0:
        w = torch.pow(1 - xs_pos * y - xs_neg * anti, gamma_pos * y + gamma_neg * anti)
        loss = loss * w
    return reduce(-loss, reduction)


def asl_separable(x, y, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, eps=1e-8, reduction="mean"):
    """tide's form for soft targets: each term with its own focusing weight."""
    p = torch.sigmoid(x)
    om = (1 - p + clip).clamp(max=1) if clip > 0 else 1 - p
    pm = 1 - om
    loss = -(y * (1 - p) ** gamma_pos * torch.log(p.clamp(min=eps))
             + (1 - y) * pm ** gamma_neg * torch.log(om.clamp(min=eps)))
    return reduce(loss, reduction)


def reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def add(name, loss, x, y, opts, fn, y_grad=False, tensors=None, note=None):
    """fn(x, y) -> output; opts as tide takes them (tensors by name in `tensors`)."""
    x = x.detach().clone().requires_grad_(True)
    y = y.detach().clone().requires_grad_(y_grad)
    out = fn(x, y)
    if out.dim() == 0:
        w = None
        total = out
    else:
        w = torch.rand(out.shape, dtype=out.dtype) + 0.5
        total = (out * w).sum()
    wanted = [x] + ([y] if y_grad else [])
    grads = torch.autograd.grad(total, wanted, allow_unused=True) if out.numel() > 0 else [torch.zeros_like(t) for t in wanted]
    case = {"name": name, "loss": loss, "input": tj(x), "target": tj(y), "options": opts,
            "tensors": {k: tj(v) for k, v in (tensors or {}).items()},
            "output": tj(out), "grad_input": tj(grads[0])}
    if w is not None:
        case["w"] = tj(w)
    if y_grad:
        case["grad_target"] = tj(grads[1])
    if note:
        case["note"] = note
    for g in [out] + list(grads):
        assert not torch.isnan(g).any() or name.startswith("empty"), name
    cases.append(case)


D = torch.float64
S = torch.float32
REDS = ["mean", "sum", "none"]

# ---- binary_cross_entropy ------------------------------------------------
for red in REDS:
    p = torch.rand(3, 4, dtype=D) * 0.98 + 0.01
    y = torch.rand(3, 4, dtype=D)
    add(f"bce_{red}", "binary_cross_entropy", p, y, {"reduction": red},
        lambda a, b, red=red: F.binary_cross_entropy(a, b, reduction=red), y_grad=True)
for red in ["mean", "none"]:
    p = torch.rand(2, 3, dtype=D) * 0.98 + 0.01
    y = (torch.rand(2, 3, dtype=D) > 0.5).to(D)
    wt = torch.rand(3, dtype=D) + 0.2
    add(f"bce_weight_{red}", "binary_cross_entropy", p, y, {"reduction": red},
        lambda a, b, red=red, wt=wt: F.binary_cross_entropy(a, b, weight=wt, reduction=red),
        y_grad=True, tensors={"weight": wt})
# p exactly 0 and 1: logs clamp at -100, gradient divides by 1e-12
p = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.5, 1e-15], dtype=D)
y = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.25, 1.0], dtype=D)
add("bce_p_0_1_sum", "binary_cross_entropy", p, y, {"reduction": "sum"},
    lambda a, b: F.binary_cross_entropy(a, b, reduction="sum"))
add("bce_p_0_1_none", "binary_cross_entropy", p, y, {"reduction": "none"},
    lambda a, b: F.binary_cross_entropy(a, b, reduction="none"))
p = torch.rand(4, 5, dtype=S) * 0.98 + 0.01
y = torch.rand(4, 5, dtype=S)
add("bce_f32_mean", "binary_cross_entropy", p, y, {},
    lambda a, b: F.binary_cross_entropy(a, b), y_grad=True)
add("empty_bce_mean", "binary_cross_entropy", torch.rand(0, 3, dtype=D), torch.rand(0, 3, dtype=D), {},
    lambda a, b: F.binary_cross_entropy(a, b))

# ---- binary_cross_entropy_with_logits -----------------------------------
BCEL = "binary_cross_entropy_with_logits"
for red in REDS:
    x = torch.randn(3, 4, dtype=D) * 3
    y = torch.rand(3, 4, dtype=D)
    add(f"bcel_{red}", BCEL, x, y, {"reduction": red},
        lambda a, b, red=red: F.binary_cross_entropy_with_logits(a, b, reduction=red), y_grad=True)
for red in REDS:
    x = torch.randn(4, 3, dtype=D) * 2
    y = (torch.rand(4, 3, dtype=D) > 0.5).to(D)
    wt = torch.rand(4, 1, dtype=D) + 0.2
    pw = torch.rand(3, dtype=D) * 3 + 0.1
    add(f"bcel_weight_pos_weight_{red}", BCEL, x, y, {"reduction": red},
        lambda a, b, red=red, wt=wt, pw=pw: F.binary_cross_entropy_with_logits(a, b, weight=wt, pos_weight=pw,
                                                                                reduction=red),
        y_grad=True, tensors={"weight": wt, "pos_weight": pw})
x = torch.randn(2, 3, 4, dtype=D)
y = torch.rand(2, 3, 4, dtype=D)
pw = torch.rand(4, dtype=D) + 0.5
add("bcel_pos_weight_3d_mean", BCEL, x, y, {},
    lambda a, b, pw=pw: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw), y_grad=True,
    tensors={"pos_weight": pw})
wt = torch.rand(3, 4, dtype=D) + 0.5
add("bcel_weight_full_sum", BCEL, x, y, {"reduction": "sum"},
    lambda a, b, wt=wt: F.binary_cross_entropy_with_logits(a, b, weight=wt, reduction="sum"), y_grad=True,
    tensors={"weight": wt})
for e, red in [(0.1, "mean"), (0.2, "none"), (1.0, "sum")]:
    x = torch.randn(3, 5, dtype=D) * 2
    y = (torch.rand(3, 5, dtype=D) > 0.5).to(D)
    pw = torch.rand(5, dtype=D) + 0.5
    add(f"bcel_label_smoothing_{e}_{red}", BCEL, x, y, {"reduction": red, "label_smoothing": e},
        lambda a, b, e=e, red=red, pw=pw: F.binary_cross_entropy_with_logits(a, b * (1 - e) + e / 2, pos_weight=pw,
                                                                              reduction=red),
        y_grad=True, tensors={"pos_weight": pw})
x = torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0, 30.0, -30.0], dtype=D)
y = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 1.0, 0.0], dtype=D)
add("bcel_saturated_none", BCEL, x, y, {"reduction": "none"},
    lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"), y_grad=True)
pw = torch.tensor([2.0], dtype=D)
add("bcel_saturated_pos_weight_sum", BCEL, x, y, {"reduction": "sum"},
    lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw, reduction="sum"), y_grad=True,
    tensors={"pos_weight": pw})
add("bcel_saturated_f32_none", BCEL, x.float(), y.float(), {"reduction": "none"},
    lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"), y_grad=True)
x = torch.randn(6, 7, dtype=S) * 4
y = torch.rand(6, 7, dtype=S)
wt = torch.rand(7, dtype=S) + 0.5
pw = torch.rand(7, dtype=S) + 0.5
add("bcel_f32_mean", BCEL, x, y, {}, lambda a, b: F.binary_cross_entropy_with_logits(a, b), y_grad=True)
add("bcel_f32_weights_none", BCEL, x, y, {"reduction": "none"},
    lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=wt, pos_weight=pw, reduction="none"), y_grad=True,
    tensors={"weight": wt, "pos_weight": pw})
for red in ["mean", "sum"]:
    add(f"empty_bcel_{red}", BCEL, torch.randn(0, 3, dtype=D), torch.rand(0, 3, dtype=D), {"reduction": red},
        lambda a, b, red=red: F.binary_cross_entropy_with_logits(a, b, reduction=red), y_grad=True)

# ---- sigmoid_focal_loss (torchvision) -------------------------------------
SFL = "sigmoid_focal_loss"
for red in REDS:
    x = torch.randn(3, 4, dtype=D) * 3
    y = (torch.rand(3, 4, dtype=D) > 0.5).to(D)
    add(f"focal_default_{red}", SFL, x, y, {"reduction": red},
        lambda a, b, red=red: focal_tv(a, b, reduction=red))
for alpha, gamma in [(0.5, 0.0), (-1.0, 2.0), (0.25, 0.5), (0.75, 1.5), (0.1, 3.0)]:
    x = torch.randn(3, 4, dtype=D) * 3
    y = torch.rand(3, 4, dtype=D)  # soft targets
    add(f"focal_soft_a{alpha}_g{gamma}", SFL, x, y, {"alpha": alpha, "gamma": gamma, "reduction": "sum"},
        lambda a, b, alpha=alpha, gamma=gamma: focal_tv(a, b, alpha, gamma, "sum"))
x = torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0, 8.0], dtype=D)
y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0], dtype=D)
add("focal_saturated_g2_none", SFL, x, y, {"reduction": "none"}, lambda a, b: focal_tv(a, b))
x = torch.randn(5, 6, dtype=S) * 3
y = (torch.rand(5, 6, dtype=S) > 0.7).to(S)
add("focal_f32_mean", SFL, x, y, {"reduction": "mean"}, lambda a, b: focal_tv(a, b, reduction="mean"))
add("empty_focal_sum", SFL, torch.randn(0, 2, dtype=D), torch.rand(0, 2, dtype=D), {"reduction": "sum"},
    lambda a, b: focal_tv(a, b, reduction="sum"))

# ---- multilabel_soft_margin_loss ----------------------------------------
MLSM = "multilabel_soft_margin_loss"
for red in REDS:
    x = torch.randn(4, 5, dtype=D) * 3
    y = (torch.rand(4, 5, dtype=D) > 0.5).to(D)
    add(f"mlsm_{red}", MLSM, x, y, {"reduction": red},
        lambda a, b, red=red: F.multilabel_soft_margin_loss(a, b, reduction=red), y_grad=True)
for red in ["mean", "none"]:
    x = torch.randn(3, 4, dtype=D) * 3
    y = torch.rand(3, 4, dtype=D)
    wt = torch.rand(4, dtype=D) + 0.2
    add(f"mlsm_weight_{red}", MLSM, x, y, {"reduction": red},
        lambda a, b, red=red, wt=wt: F.multilabel_soft_margin_loss(a, b, weight=wt, reduction=red), y_grad=True,
        tensors={"weight": wt})
x = torch.tensor([[1e4, -1e4, 1e4], [-1e4, 0.0, 2.0]], dtype=D)
y = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], dtype=D)
add("mlsm_saturated_none", MLSM, x, y, {"reduction": "none"},
    lambda a, b: F.multilabel_soft_margin_loss(a, b, reduction="none"))
x = torch.randn(5, 8, dtype=S) * 3
y = (torch.rand(5, 8, dtype=S) > 0.5).to(S)
add("mlsm_f32_mean", MLSM, x, y, {}, lambda a, b: F.multilabel_soft_margin_loss(a, b), y_grad=True)

# ---- asymmetric_loss ------------------------------------------------------
ASL = "asymmetric_loss"
for red in REDS:
    x = torch.randn(4, 5, dtype=D) * 3
    y = (torch.rand(4, 5, dtype=D) > 0.5).to(D)
    add(f"asl_default_{red}", ASL, x, y, {"reduction": red},
        lambda a, b, red=red: asl_optimized(a, b, reduction=red))
for gp, gn, clip in [(1.0, 4.0, 0.0), (0.0, 2.0, 0.2), (2.0, 0.0, 0.05), (0.5, 1.5, 0.1)]:
    x = torch.randn(4, 5, dtype=D) * 3
    y = (torch.rand(4, 5, dtype=D) > 0.5).to(D)
    add(f"asl_gp{gp}_gn{gn}_clip{clip}", ASL, x, y,
        {"gamma_pos": gp, "gamma_neg": gn, "clip": clip, "reduction": "sum"},
        lambda a, b, gp=gp, gn=gn, clip=clip: asl_optimized(a, b, gp, gn, clip, reduction="sum"))
x = torch.randn(3, 4, dtype=D) * 3
y = (torch.rand(3, 4, dtype=D) > 0.5).to(D)
add("asl_eps_0.01_sum", ASL, x, y, {"eps": 0.01, "reduction": "sum"},
    lambda a, b: asl_optimized(a, b, eps=0.01, reduction="sum"))
x = torch.tensor([1e4, -1e4, 1e4, -1e4, 0.0, 12.0], dtype=D)
y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0], dtype=D)
add("asl_saturated_none", ASL, x, y, {"reduction": "none"}, lambda a, b: asl_optimized(a, b, reduction="none"))
add("asl_saturated_noclip_none", ASL, x, y, {"clip": 0, "gamma_pos": 1, "reduction": "none"},
    lambda a, b: asl_optimized(a, b, 1.0, 4.0, 0.0, reduction="none"))
x = torch.randn(3, 4, dtype=D) * 3
y = torch.rand(3, 4, dtype=D)
add("asl_soft_targets_sum", ASL, x, y, {"gamma_pos": 1, "reduction": "sum"},
    lambda a, b: asl_separable(a, b, 1.0, 4.0, 0.05, reduction="sum"),
    note="soft targets: tide's separable form, not the paper's mixed focusing weight")
x = torch.randn(5, 6, dtype=S) * 3
y = (torch.rand(5, 6, dtype=S) > 0.5).to(S)
add("asl_f32_mean", ASL, x, y, {}, lambda a, b: asl_optimized(a, b))

# ---- soft_margin_loss -------------------------------------------------------
SML = "soft_margin_loss"
for red in REDS:
    x = torch.randn(3, 4, dtype=D) * 3
    y = (torch.rand(3, 4, dtype=D) > 0.5).to(D) * 2 - 1
    add(f"soft_margin_{red}", SML, x, y, {"reduction": red},
        lambda a, b, red=red: F.soft_margin_loss(a, b, reduction=red))
x = torch.tensor([50.0, -50.0, 300.0, -300.0, 0.0], dtype=D)
y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0], dtype=D)
add("soft_margin_large_correct_none", SML, x, y, {"reduction": "none"},
    lambda a, b: F.soft_margin_loss(a, b, reduction="none"))
x = torch.randn(4, 6, dtype=S) * 3
y = (torch.rand(4, 6, dtype=S) > 0.5).to(S) * 2 - 1
add("soft_margin_f32_mean", SML, x, y, {}, lambda a, b: F.soft_margin_loss(a, b))
add("empty_soft_margin_mean", SML, torch.randn(0, dtype=D), torch.ones(0, dtype=D), {},
    lambda a, b: F.soft_margin_loss(a, b))

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "losses_binary.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
print(f"{len(cases)} cases -> {out} ({os.path.getsize(out)} bytes)")
