#!/usr/bin/python3
"""Reference values for tide.metrics (tests/lua/metrics_spec.lua).

Run with Debian's PyTorch 1.13: /usr/bin/python3 tests/reference/gen_metrics.py
Writes tests/reference/metrics.json. Logits are drawn in float32 and stored
exactly; every metric is computed from them in float64 the way the usual
PyTorch code does it: accuracy and top-k from argmax / topk, ECE as the
_ECELoss of Guo et al.'s temperature_scaling repository (bin i of B holds
confidence in (i/B, (i+1)/B], weighted by its share of the samples),
Brier as the mean over samples of the squared error summed over classes,
NLL as F.cross_entropy / F.binary_cross_entropy_with_logits, and the
temperature as the minimiser of the NLL of logits / T, found here by Newton
on log T with autograd's derivatives and checked on a fine grid.
"""
import json
import os

import torch
import torch.nn.functional as F

from refcases import tj

torch.manual_seed(20240501)


def bins_of(conf, right, n_bins):
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    out = []
    ece = torch.zeros((), dtype=torch.float64)
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = conf.gt(lo) * conf.le(hi)
        prop = in_bin.double().mean()
        count = int(in_bin.sum())
        b = {"lo": float(lo), "hi": float(hi), "count": count}
        if count > 0:
            acc = right[in_bin].mean()
            avg = conf[in_bin].mean()
            ece += torch.abs(avg - acc) * prop
            b["confidence"] = float(avg)
            b["accuracy"] = float(acc)
        out.append(b)
    return float(ece), out


def fit_temperature(nll_of):
    """argmin over T of nll_of(T): Newton on u = log T, then a grid check."""
    u = torch.zeros((), dtype=torch.float64, requires_grad=True)
    for _ in range(100):
        f = nll_of(torch.exp(u))
        g, = torch.autograd.grad(f, u, create_graph=True)
        h, = torch.autograd.grad(g, u)
        step = (g / h).detach() if h > 0 else torch.sign(g.detach()) * 0.5
        step = step.clamp(-1, 1)
        with torch.no_grad():
            u -= step
        if abs(float(step)) < 1e-14:
            break
    t = float(torch.exp(u))
    with torch.no_grad():
        grid = [t * (1 + d) for d in (-1e-3, -1e-4, 1e-4, 1e-3)]
        best = float(nll_of(torch.tensor(t, dtype=torch.float64)))
        assert all(float(nll_of(torch.tensor(g, dtype=torch.float64))) >= best for g in grid)
    return t


cases = {}

# multi-class: 10 classes, class 9 never a label (NaN per-class accuracy,
# an empty confusion row), logits leaning to the label so accuracy is ~0.6
n, c = 500, 10
labels = torch.randint(0, c - 1, (n,))
logits = (torch.randn(n, c) * 2.0 + 2.5 * F.one_hot(labels, c)).float()
x = logits.double()
p = F.softmax(x, 1)
conf, pred = p.max(1)
right = pred.eq(labels).double()
per_class = torch.full((c,), float("nan"), dtype=torch.float64)
confusion = torch.zeros(c, c, dtype=torch.int64)
for k in range(c):
    m = labels.eq(k)
    if m.any():
        per_class[k] = right[m].mean()
for t_, p_ in zip(labels.tolist(), pred.tolist()):
    confusion[t_, p_] += 1
ece15, rel15 = bins_of(conf, right, 15)
ece10, _ = bins_of(conf, right, 10)
cases["multi"] = {
    "logits": tj(logits), "labels": tj(labels), "num_classes": c,
    "accuracy": float(right.mean()),
    "top1": float(right.mean()),
    "top3": float(torch.topk(x, 3, 1).indices.eq(labels[:, None]).any(1).double().mean()),
    "top5": float(torch.topk(x, 5, 1).indices.eq(labels[:, None]).any(1).double().mean()),
    "per_class_accuracy": tj(per_class),
    "confusion_matrix": tj(confusion),
    "ece15": ece15, "ece10": ece10, "reliability15": rel15,
    "brier": float(((p - F.one_hot(labels, c).double()) ** 2).sum(1).mean()),
    "nll": float(F.cross_entropy(x, labels)),
    "temperature": fit_temperature(lambda T: F.cross_entropy(x / T, labels)),
}

# the same as probabilities (float32, as a model would hand them over)
probs = F.softmax(logits, 1)
pp = probs.double()
pconf, ppred = pp.max(1)
pright = ppred.eq(labels).double()
cases["probs"] = {
    "probs": tj(probs), "labels": tj(labels),
    "accuracy": float(pright.mean()),
    "ece15": bins_of(pconf, pright, 15)[0],
    "brier": float(((pp - F.one_hot(labels, c).double()) ** 2).sum(1).mean()),
    "nll": float(-torch.log(pp.gather(1, labels[:, None])).mean()),
}

# binary: one logit per sample, labels 0/1
n = 400
labels = torch.randint(0, 2, (n,))
logits = (torch.randn(n) * 2.0 + 1.5 * (2 * labels - 1)).float()
x = logits.double()
y = labels.double()
p = torch.sigmoid(x)
pred = x.gt(0).long()
right = pred.eq(labels).double()
conf = torch.maximum(p, 1 - p)
ece15, rel15 = bins_of(conf, right, 15)
cases["binary"] = {
    "logits": tj(logits), "labels": tj(labels),
    "accuracy": float(right.mean()),
    "ece15": ece15, "reliability15": rel15,
    "brier": float(((p - y) ** 2).mean()),
    "nll": float(F.binary_cross_entropy_with_logits(x, y)),
    "temperature": fit_temperature(lambda T: F.binary_cross_entropy_with_logits(x / T, y)),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics.json")
with open(out, "w") as f:
    json.dump({"generator": "tests/reference/gen_metrics.py", "torch": torch.__version__, "cases": cases}, f)
print("wrote", out)
