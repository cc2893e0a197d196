#!/usr/bin/python3
"""Reference cases for tide's functional layers, computed with PyTorch 1.13.

Run with Debian's python3-torch:
    /usr/bin/python3 tests/reference/gen_layers.py
Writes tests/reference/layers.json (committed, so the tests need no Python);
tests/lua/layers_spec.lua reads it.

Each case:
  name     unique label
  fn       tide.F function name
  args     positional arguments: a tensor {values, shape, dtype, grad} or a
           plain number / list / null
  options  the trailing options table; tensor values as above
  output   expected result {values, shape, dtype}
  weight   w of s = (out * w).sum(), the scalar whose gradients are checked
  grads    {"a1": ..., "weight": ...}: ds/d(arg 1) or ds/d(option) for every
           tensor marked grad
  after    {"a2": ...}: tensors changed in place (running statistics)
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(4242)
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64"}
cases = []


def spec(t):
    return {"values": [float(v) for v in t.detach().reshape(-1).tolist()], "shape": list(t.shape),
            "dtype": NAMES[t.dtype]}


def add(name, fn, call, args, options=None, dtype=torch.float64):
    options = options or {}
    targs = [a.clone().requires_grad_(a.dtype.is_floating_point and g) if torch.is_tensor(a) else a
             for a, g in args]
    topts = {k: (v.clone().requires_grad_(g) if torch.is_tensor(v) else v) for k, (v, g) in options.items()}
    before = [spec(a) if torch.is_tensor(a) else a for a in targs]
    before_opts = {k: spec(v) if torch.is_tensor(v) else v for k, v in topts.items()}
    for i, (a, g) in enumerate(args):
        if torch.is_tensor(a):
            before[i]["grad"] = bool(g and a.dtype.is_floating_point)
    for k, (v, g) in options.items():
        if torch.is_tensor(v):
            before_opts[k]["grad"] = bool(g)
    out = call(*targs, **topts)
    w = torch.randn(out.shape, dtype=out.dtype)
    grads = {}
    if out.requires_grad:
        (out * w).sum().backward()
        for i, a in enumerate(targs):
            if torch.is_tensor(a) and a.requires_grad:
                grads["a%d" % (i + 1)] = spec(a.grad)
        for k, v in topts.items():
            if torch.is_tensor(v) and v.requires_grad:
                grads[k] = spec(v.grad)
    after = {}
    for i, (a, g) in enumerate(args):
        if torch.is_tensor(a) and not g and a.dtype.is_floating_point:
            after["a%d" % (i + 1)] = spec(targs[i])
    cases.append({"name": name, "fn": fn, "args": before, "options": before_opts, "output": spec(out),
                  "weight": spec(w), "grads": grads, "after": after})


D = torch.float64
r = lambda *s: torch.randn(*s, dtype=D)

# linear
x, w, b = r(4, 3), r(5, 3), r(5)
add("linear bias", "linear", lambda x, w, bias: F.linear(x, w, bias), [(x, True), (w, True)], {"bias": (b, True)})
x3 = r(2, 3, 3)
add("linear 3d no bias", "linear", lambda x, w: F.linear(x, w), [(x3, True), (w, True)])

# batch_norm
for shape in [(6, 3), (4, 3, 2, 5)]:
    x = r(*shape) * 2 + 1
    rm, rv = r(3), torch.rand(3, dtype=D) + 0.5
    g, bb = r(3), r(3)
    tag = "%dd" % len(shape)
    add("bn train " + tag, "batch_norm",
        lambda x, rm, rv, weight, bias, **_: F.batch_norm(x, rm, rv, weight, bias, training=True, momentum=0.1, eps=1e-5),
        [(x, True), (rm, False), (rv, False)], {"weight": (g, True), "bias": (bb, True), "training": (True, False)})
    add("bn train momentum " + tag, "batch_norm",
        lambda x, rm, rv, **_: F.batch_norm(x, rm, rv, training=True, momentum=0.3, eps=1e-3),
        [(x, True), (rm, False), (rv, False)], {"training": (True, False), "momentum": (0.3, False),
                                                 "eps": (1e-3, False)})
    add("bn eval " + tag, "batch_norm",
        lambda x, rm, rv, weight, bias, **_: F.batch_norm(x, rm, rv, weight, bias, training=False),
        [(x, True), (rm, False), (rv, False)], {"weight": (g, True), "bias": (bb, True)})

# layer_norm
x = r(3, 4, 5)
add("layer_norm 1 dim", "layer_norm", lambda x, ns, weight, bias: F.layer_norm(x, [5], weight, bias),
    [(x, True), (5, False)], {"weight": (r(5), True), "bias": (r(5), True)})
add("layer_norm 2 dims", "layer_norm", lambda x, ns, eps: F.layer_norm(x, [4, 5], eps=eps),
    [(x, True), ([4, 5], False)], {"eps": (1e-3, False)})

# pooling
x = r(2, 3, 7, 6)
mp = [
    ("max k2", 2, {}),
    ("max k3 s2 p1", 3, {"stride": 2, "padding": 1}),
    ("max k3 s2 ceil", 3, {"stride": 2, "ceil_mode": True}),
    ("max k2 dil2", 2, {"stride": 1, "dilation": 2}),
    ("max k(3,2) s(2,1) p(1,1) dil ceil", [3, 2], {"stride": [2, 1], "padding": [1, 1], "dilation": [1, 2],
                                                   "ceil_mode": True}),
]
for name, k, o in mp:
    add(name, "max_pool2d", lambda x, k, **o: F.max_pool2d(x, k, **o), [(x, True), (k, False)],
        {kk: (v, False) for kk, v in o.items()})
xt = torch.tensor([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 1.0, 3.0], [0.0, 0.0, 0.0, 0.0]]]], dtype=D)
add("max ties first", "max_pool2d", lambda x, k, stride: F.max_pool2d(x, k, stride=stride), [(xt, True), (2, False)],
    {"stride": (1, False)})
ap = [
    ("avg k2", 2, {}),
    ("avg k3 s2 p1", 3, {"stride": 2, "padding": 1}),
    ("avg k3 s2 p1 no pad count", 3, {"stride": 2, "padding": 1, "count_include_pad": False}),
    ("avg k3 s2 ceil", 3, {"stride": 2, "ceil_mode": True}),
    ("avg k3 s2 p1 ceil no pad", 3, {"stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}),
    ("avg k(2,3) s(1,2)", [2, 3], {"stride": [1, 2]}),
]
for name, k, o in ap:
    add(name, "avg_pool2d", lambda x, k, **o: F.avg_pool2d(x, k, **o), [(x, True), (k, False)],
        {kk: (v, False) for kk, v in o.items()})
for os_ in [1, 3, [4, 5], [7, 6], [5, 4]]:
    add("adaptive %s" % (os_,), "adaptive_avg_pool2d", lambda x, o: F.adaptive_avg_pool2d(x, o),
        [(x, True), (os_, False)])
add("adaptive 3d input", "adaptive_avg_pool2d", lambda x, o: F.adaptive_avg_pool2d(x, o), [(r(3, 5, 5), True), (2, False)])
add("max 3d input", "max_pool2d", lambda x, k: F.max_pool2d(x, k), [(r(3, 5, 5), True), (2, False)])

# leaky_relu, embedding
add("leaky_relu default", "leaky_relu", lambda x: F.leaky_relu(x), [(r(4, 5), True)])
add("leaky_relu 0.2", "leaky_relu", lambda x, negative_slope: F.leaky_relu(x, negative_slope),
    [(r(4, 5), True)], {"negative_slope": (0.2, False)})
idx = torch.tensor([[0, 2, 4], [4, 3, 2]])
add("embedding", "embedding", lambda i, w: F.embedding(i, w), [(idx, False), (r(5, 3), True)])
add("embedding padding_idx", "embedding", lambda i, w, padding_idx: F.embedding(i, w, padding_idx=padding_idx),
    [(idx, False), (r(5, 3), True)], {"padding_idx": (2, False)})

# float32 versions of a few, checked at float32 tolerance
f = torch.float32
x32 = torch.randn(4, 3, 5, 5)
add("f32 bn train", "batch_norm", lambda x, rm, rv, **_: F.batch_norm(x, rm, rv, training=True),
    [(x32, True), (torch.zeros(3), False), (torch.ones(3), False)], {"training": (True, False)})
add("f32 max k3 s2 p1", "max_pool2d", lambda x, k, **o: F.max_pool2d(x, k, **o), [(x32, True), (3, False)],
    {"stride": (2, False), "padding": (1, False)})
add("f32 avg k2", "avg_pool2d", lambda x, k: F.avg_pool2d(x, k), [(x32, True), (2, False)])

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.json")
with open(path, "w") as fh:
    json.dump({"torch": torch.__version__, "cases": cases}, fh)
print("wrote %d cases to %s" % (len(cases), path))
