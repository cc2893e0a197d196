#!/usr/bin/python3
"""PyTorch 1.13's CPU autocast rules, op by op, for tests/lua/autocast_spec.lua.

Run with Debian's python3-torch:
    /usr/bin/python3 tests/reference/gen_autocast.py
Writes tests/reference/autocast.json: for each case the dtype of the
result under torch.autocast("cpu", dtype=torch.bfloat16) (1.13's CPU
autocast takes bfloat16 only), with float32 inputs ("f32") or with the
first input already bfloat16 ("bf16"), and for a few cases the values
(inputs are bfloat16-exact so both sides round the same numbers).
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(2024)


def exact(*shape):
    """float32 values that bfloat16 holds exactly"""
    return torch.randn(*shape).bfloat16().float()


def ids(*v):
    return torch.tensor(v, dtype=torch.int64)


x46, w36, b3 = exact(4, 6), exact(3, 6), exact(3)
img, k = exact(2, 3, 6, 6), exact(4, 3, 3, 3)
seq, k1 = exact(2, 3, 9), exact(4, 3, 3)
vol, k3 = exact(1, 2, 4, 4, 4), exact(3, 2, 3, 3, 3)
kt1, kt2 = exact(3, 2, 3), exact(3, 2, 3, 3)
tgt = ids(0, 1, 2, 0)
prob = torch.rand(4, 6)
pm = (torch.rand(4, 6) > 0.5).float() * 2 - 1

# name -> (fn of the (possibly cast) first input, the first input)
CASES = {
    "matmul": (lambda a: torch.matmul(a, w36.t()), x46),
    "mm": (lambda a: torch.mm(a, w36.t()), x46),
    "bmm": (lambda a: torch.bmm(a, a.transpose(1, 2)), exact(2, 3, 4)),
    "addmm": (lambda a: torch.addmm(b3, a, w36.t()), x46),
    "linear": (lambda a: F.linear(a, w36, b3), x46),
    "conv1d": (lambda a: F.conv1d(a, k1, padding=1), seq),
    "conv2d": (lambda a: F.conv2d(a, k, padding=1), img),
    "conv3d": (lambda a: F.conv3d(a, k3), vol),
    "conv_transpose1d": (lambda a: F.conv_transpose1d(a, kt1), seq),
    "conv_transpose2d": (lambda a: F.conv_transpose2d(a, kt2), img),
    "relu": (lambda a: F.relu(a), x46),
    "gelu": (lambda a: F.gelu(a), x46),
    "softmax": (lambda a: F.softmax(a, 1), x46),
    "log_softmax": (lambda a: F.log_softmax(a, 1), x46),
    "sum": (lambda a: a.sum(), x46),
    "mean": (lambda a: a.mean(), x46),
    "cumsum": (lambda a: a.cumsum(0), x46),
    "add float32": (lambda a: a + x46, x46),
    "max_pool2d": (lambda a: F.max_pool2d(a, 2), img),
    "avg_pool2d": (lambda a: F.avg_pool2d(a, 2), img),
    "batch_norm": (lambda a: F.batch_norm(a, None, None, training=True), img),
    "layer_norm": (lambda a: F.layer_norm(a, (6,)), x46),
    "cross_entropy": (lambda a: F.cross_entropy(a, tgt), x46),
    "nll_loss": (lambda a: F.nll_loss(a, tgt), x46),
    "mse_loss": (lambda a: F.mse_loss(a, prob), x46),
    "l1_loss": (lambda a: F.l1_loss(a, prob), x46),
    "smooth_l1_loss": (lambda a: F.smooth_l1_loss(a, prob), x46),
    "huber_loss": (lambda a: F.huber_loss(a, prob), x46),
    "kl_div": (lambda a: F.kl_div(a, prob, reduction="batchmean"), x46),
    "binary_cross_entropy_with_logits": (lambda a: F.binary_cross_entropy_with_logits(a, prob), x46),
    "binary_cross_entropy": (lambda a: F.binary_cross_entropy(a, prob), torch.rand(4, 6).bfloat16().float()),
    "multi_margin_loss": (lambda a: F.multi_margin_loss(a, tgt), x46),
    "soft_margin_loss": (lambda a: F.soft_margin_loss(a, pm), x46),
    "multilabel_soft_margin_loss": (lambda a: F.multilabel_soft_margin_loss(a, (pm > 0).float()), x46),
    "hinge_embedding_loss": (lambda a: F.hinge_embedding_loss(a, pm), x46),
    "poisson_nll_loss": (lambda a: F.poisson_nll_loss(a, prob), x46),
}
VALUES = {"linear", "conv2d", "matmul", "cross_entropy"}

cases = []
for name, (fn, a) in CASES.items():
    c = {"name": name, "input": {"values": a.reshape(-1).tolist(), "shape": list(a.shape)}}
    for mode in ("f32", "bf16"):
        if mode == "bf16" and name in ("conv_transpose1d", "conv_transpose2d", "conv1d", "conv3d", "bmm"):
            continue
        arg = a if mode == "f32" else a.bfloat16()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            r = fn(arg)
        c[mode] = str(r.dtype).replace("torch.", "")
        if name in VALUES and mode == "f32":
            c["values"] = r.float().reshape(-1).tolist()
            c["shape"] = list(r.shape)
    cases.append(c)

consts = {"w36": w36, "b3": b3, "k": k, "k1": k1, "k3": k3, "kt1": kt1, "kt2": kt2, "prob": prob, "pm": pm}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "autocast.json")
with open(path, "w") as fh:
    json.dump({"torch": torch.__version__, "cases": cases,
               "tensors": {n: {"values": t.reshape(-1).tolist(), "shape": list(t.shape)} for n, t in consts.items()}},
              fh)
print("wrote %d cases to %s" % (len(cases), path))
