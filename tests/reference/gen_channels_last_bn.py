#!/usr/bin/python3
"""Reference for batch norm on a channels-last input, computed with PyTorch 1.13.

Run with Debian's python3-torch:
    /usr/bin/python3 tests/reference/gen_channels_last_bn.py
Writes tests/reference/channels_last_bn.json (committed, so the tests need no
Python); tests/lua/channels_last_bn_spec.lua reads it.

Each case runs F.batch_norm on x.contiguous(memory_format=torch.channels_last)
(PyTorch's output is channels_last too, checked here); every tensor is
written in logical (N, C, H, W) order, whatever its layout:
  name, dtype, training, momentum, eps
  x, weight, bias, running_mean, running_var   the inputs (stats before)
  upstream      w of s = (out * w).sum(), the scalar whose gradients are given
  output        the result
  running_mean_after, running_var_after
  grad_x, grad_weight, grad_bias   ds/dx, ds/dweight, ds/dbias
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(2024)
NAMES = {torch.float32: "float32", torch.float64: "float64"}


def spec(t):
    return {"values": [float(v) for v in t.detach().reshape(-1).tolist()], "shape": list(t.shape),
            "dtype": NAMES[t.dtype]}


def case(name, dtype, shape, training, momentum, eps=1e-5):
    n, c, h, w = shape
    x = (torch.randn(shape, dtype=torch.float64) * 2 + 3).to(dtype)
    weight = torch.rand(c, dtype=torch.float64).add(0.5).to(dtype)
    bias = torch.randn(c, dtype=torch.float64).to(dtype)
    rm = torch.randn(c, dtype=torch.float64).to(dtype)
    rv = torch.rand(c, dtype=torch.float64).add(0.5).to(dtype)
    up = torch.randn(shape, dtype=torch.float64).to(dtype)
    out = {"name": name, "dtype": NAMES[dtype], "training": training, "momentum": momentum, "eps": eps,
           "x": spec(x), "weight": spec(weight), "bias": spec(bias), "running_mean": spec(rm),
           "running_var": spec(rv), "upstream": spec(up)}
    xl = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    wl, bl = weight.clone().requires_grad_(), bias.clone().requires_grad_()
    y = F.batch_norm(xl, rm, rv, wl, bl, training, momentum, eps)
    assert y.is_contiguous(memory_format=torch.channels_last)
    (y * up).sum().backward()
    out.update({"output": spec(y), "running_mean_after": spec(rm), "running_var_after": spec(rv),
                "grad_x": spec(xl.grad), "grad_weight": spec(wl.grad), "grad_bias": spec(bl.grad)})
    return out


cases = [
    case("float64 training", torch.float64, (2, 3, 4, 5), True, 0.2),
    case("float64 evaluation", torch.float64, (2, 3, 4, 5), False, 0.1),
    case("float32 training", torch.float32, (3, 5, 3, 2), True, 0.1),
]

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "channels_last_bn.json")
with open(path, "w") as fh:
    json.dump({"torch": torch.__version__, "cases": cases}, fh)
print("wrote %d cases to %s" % (len(cases), path))
