#!/usr/bin/python3
"""Reference cases for tide's group/instance norm, the extra pools
(1-d, adaptive max, indices, unpooling, divisor_override, a kept adaptive
size), EmbeddingBag and BatchNorm's momentum=None, from PyTorch 1.13.

Run with Debian's python3-torch:
    /usr/bin/python3 tests/reference/gen_normpool.py
Writes tests/reference/normpool.json (committed, so the tests need no
Python); tests/lua/normpool_spec.lua reads it. Shapes and arguments follow
PyTorch's own sample inputs (common_nn's GroupNorm/InstanceNorm/pool
entries, module_db's EmbeddingBag) where those exist.

"cases" (functional), each:
  name      unique label
  fn        tide.F function name (PyTorch's torch.nn.functional one)
  args      positional arguments: a tensor {values, shape, dtype, grad}, or
            a number / list (null in a list is PyTorch's None: false in Lua)
  options   the trailing options table, tensors as above
  outputs   the results {values, shape, dtype} (two with return_indices)
  weight    w of s = (outputs[0] * w).sum(), whose gradients are checked
  grads     {"a1": ..., "weight": ...}: ds/d(arg 1) or ds/d(option)
  after     {"running_mean": ...}: option tensors changed in place
"modules", each: a module built with ctor args / options (null: false),
its parameters set to "params", run in training mode on each of "steps"
inputs, then in evaluation mode on "eval"; "outputs" per training step,
"eval_output", and "state" (the state_dict after training, keys in order).
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(1313)
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64"}
cases = []
modules = []


def spec(t):
    return {"values": [float(v) for v in t.detach().reshape(-1).tolist()], "shape": list(t.shape),
            "dtype": NAMES[t.dtype]}


def add(name, fn, args, options=None, call=None):
    """args / options values: (value, wants_grad)"""
    options = options or {}
    call = call or getattr(F, fn)
    targs = [a.clone().requires_grad_(g) if torch.is_tensor(a) else a for a, g in args]
    topts = {k: (v.clone().requires_grad_(g) if torch.is_tensor(v) else v) for k, (v, g) in options.items()}
    before = []
    for a, (_, g) in zip(targs, args):
        if torch.is_tensor(a):
            s = spec(a)
            s["grad"] = bool(g)
            before.append(s)
        else:
            before.append(a)
    before_opts = {}
    for k, v in topts.items():
        if torch.is_tensor(v):
            s = spec(v)
            s["grad"] = bool(options[k][1])
            before_opts[k] = s
        else:
            before_opts[k] = v
    out = call(*targs, **topts)
    outs = list(out) if isinstance(out, tuple) else [out]
    w = torch.randn(outs[0].shape, dtype=outs[0].dtype)
    grads = {}
    if outs[0].requires_grad:
        (outs[0] * w).sum().backward()
        for i, a in enumerate(targs):
            if torch.is_tensor(a) and a.requires_grad:
                grads["a%d" % (i + 1)] = spec(a.grad)
        for k, v in topts.items():
            if torch.is_tensor(v) and v.requires_grad:
                grads[k] = spec(v.grad)
    after = {k: spec(v) for k, v in topts.items() if k in ("running_mean", "running_var")}
    cases.append({"name": name, "fn": fn, "args": before, "options": before_opts,
                  "outputs": [spec(o) for o in outs], "weight": spec(w), "grads": grads, "after": after})


def r(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype)


D = torch.float64

# ---- group norm (common_nn: GroupNorm_1d_affine, _2d_affine, _2d_no_affine_IN, ...)
add("group_norm 1d affine", "group_norm", [(r(4, 6, 5), True), (3, False)],
    {"weight": (r(6), True), "bias": (r(6), True), "eps": (1e-3, False)})
add("group_norm 2d no affine", "group_norm", [(r(2, 6, 3, 4), True), (2, False)])
add("group_norm 2d one group per channel", "group_norm", [(r(2, 6, 3, 4), True), (6, False)],
    {"weight": (r(6), True), "bias": (r(6), True)})
add("group_norm (N, C) input", "group_norm", [(r(3, 4), True), (2, False)],
    {"weight": (r(4), True)})
add("group_norm 3d one group", "group_norm", [(r(2, 4, 2, 3, 2) * 3 + 1, True), (1, False)],
    {"weight": (r(4), True), "bias": (r(4), True)})
add("group_norm float32", "group_norm", [(r(3, 8, 4, 4, dtype=torch.float32), True), (4, False)],
    {"weight": (r(8, dtype=torch.float32), True), "bias": (r(8, dtype=torch.float32), True)})

# ---- instance norm (common_nn: InstanceNorm1d (4, 3, 15), InstanceNorm2d (2, 3, 6, 6))
add("instance_norm 1d", "instance_norm", [(r(4, 3, 15), True)])
add("instance_norm 2d affine running stats", "instance_norm", [(r(2, 3, 6, 6) * 2 + 0.5, True)],
    {"running_mean": (r(3), False), "running_var": (torch.rand(3, dtype=D) + 0.5, False),
     "weight": (r(3), True), "bias": (r(3), True), "momentum": (0.3, False)})
add("instance_norm 2d eval stats", "instance_norm", [(r(2, 3, 4, 5), True)],
    {"running_mean": (r(3), False), "running_var": (torch.rand(3, dtype=D) + 0.5, False),
     "weight": (r(3), True), "use_input_stats": (False, False)})

# ---- 1-d pools (common_nn: MaxPool1d (2, 10, 4), AvgPool1d (2, 3, 6))
add("max_pool1d indices", "max_pool1d", [(r(2, 3, 9), True), (3, False)],
    {"stride": (2, False), "padding": (1, False), "return_indices": (True, False)})
add("max_pool1d dilation ceil_mode", "max_pool1d", [(r(2, 3, 10), True), (2, False)],
    {"stride": (3, False), "dilation": (2, False), "ceil_mode": (True, False)})
add("max_pool1d unbatched", "max_pool1d", [(r(10, 4), True), (2, False)])
add("avg_pool1d pad excluded", "avg_pool1d", [(r(2, 3, 10), True), (3, False)],
    {"stride": (2, False), "padding": (1, False), "count_include_pad": (False, False)})
add("avg_pool1d ceil_mode pad included", "avg_pool1d", [(r(2, 3, 9), True), (3, False)],
    {"stride": (2, False), "padding": (1, False), "ceil_mode": (True, False)})
add("adaptive_avg_pool1d", "adaptive_avg_pool1d", [(r(2, 3, 10), True), (4, False)])
add("adaptive_avg_pool1d unbatched up", "adaptive_avg_pool1d", [(r(3, 5), True), (7, False)])

# ---- adaptive max (common_nn: AdaptiveMaxPool2d_single (1, 3, 5, 6), _tuple, _tuple_none)
add("adaptive_max_pool2d indices", "adaptive_max_pool2d", [(r(2, 3, 7, 9), True), ([3, 4], False)],
    {"return_indices": (True, False)})
add("adaptive_max_pool2d single", "adaptive_max_pool2d", [(r(1, 3, 5, 6), True), (3, False)])
add("adaptive_max_pool2d kept width", "adaptive_max_pool2d", [(r(3, 5, 6), True), ([2, None], False)],
    {"return_indices": (True, False)})
add("adaptive_max_pool2d ties keep the first", "adaptive_max_pool2d",
    [(r(1, 2, 6, 6).round().clamp(-1, 1), True), ([4, 3], False)], {"return_indices": (True, False)})
add("adaptive_max_pool2d larger output", "adaptive_max_pool2d", [(r(1, 2, 4, 4), True), (6, False)])

# ---- max_pool2d indices, max_unpool2d, divisor_override, adaptive_avg with None
add("max_pool2d return_indices", "max_pool2d", [(r(2, 3, 6, 7), True), (3, False)],
    {"stride": (2, False), "padding": (1, False), "return_indices": (True, False)})
p, i = F.max_pool2d(r(2, 3, 4, 6), 2, return_indices=True)
add("max_unpool2d", "max_unpool2d", [(p, True), (i, False), (2, False)])
p, i = F.max_pool2d(r(1, 2, 5, 5), 2, stride=2, return_indices=True)
add("max_unpool2d output_size", "max_unpool2d", [(p, True), (i, False), (2, False)],
    {"stride": (2, False), "output_size": ([5, 5], False)})
p, i = F.max_pool2d(r(2, 6, 5), 3, stride=2, padding=1, return_indices=True)
add("max_unpool2d unbatched padded", "max_unpool2d", [(p, True), (i, False), (3, False)],
    {"stride": (2, False), "padding": (1, False), "output_size": ([6, 5], False)})
add("avg_pool2d divisor_override", "avg_pool2d", [(r(2, 3, 6, 6), True), (3, False)],
    {"stride": (2, False), "padding": (1, False), "divisor_override": (5, False)})
add("avg_pool2d divisor_override float32", "avg_pool2d",
    [(r(2, 3, 8, 8, dtype=torch.float32), True), (2, False)], {"divisor_override": (3, False)})
add("adaptive_avg_pool2d kept height", "adaptive_avg_pool2d", [(r(2, 3, 7, 9), True), ([None, 4], False)])
add("adaptive_avg_pool2d kept width", "adaptive_avg_pool2d", [(r(2, 3, 7, 9), True), ([5, None], False)])

# ---- embedding_bag (module_db: EmbeddingBag sum/mean/max, padding_idx, per_sample_weights)
L = torch.int64
add("embedding_bag sum per_sample_weights", "embedding_bag",
    [(torch.tensor([1, 2, 4, 5, 4, 3, 2, 9], dtype=L), False), (r(10, 3), True)],
    {"offsets": (torch.tensor([0, 3, 5], dtype=L), False), "mode": ("sum", False),
     "per_sample_weights": (r(8), True)})
add("embedding_bag mean empty bag padding_idx", "embedding_bag",
    [(torch.tensor([1, 2, 0, 5, 0, 3, 2, 9], dtype=L), False), (r(10, 4), True)],
    {"offsets": (torch.tensor([0, 3, 3, 6], dtype=L), False), "padding_idx": (0, False)})
add("embedding_bag max 2d", "embedding_bag",
    [(torch.tensor([[1, 2, 4, 5], [4, 3, 2, 9], [7, 7, 0, 1]], dtype=L), False), (r(10, 3), True)],
    {"mode": ("max", False)})
add("embedding_bag mean include_last_offset", "embedding_bag",
    [(torch.tensor([3, 1, 4, 1, 5, 9, 2, 6], dtype=L), False), (r(10, 2), True)],
    {"offsets": (torch.tensor([0, 2, 5, 8], dtype=L), False), "include_last_offset": (True, False)})
add("embedding_bag max padding_idx empty", "embedding_bag",
    [(torch.tensor([2, 8, 2, 5, 8, 1], dtype=L), False), (r(10, 3), True)],
    {"offsets": (torch.tensor([0, 2, 3, 3], dtype=L), False), "mode": ("max", False), "padding_idx": (8, False)})
add("embedding_bag sum 2d float32", "embedding_bag",
    [(torch.tensor([[0, 2, 4], [6, 8, 9]], dtype=L), False), (r(10, 5, dtype=torch.float32), True)],
    {"mode": ("sum", False), "per_sample_weights": (r(2, 3, dtype=torch.float32), True)})


# ---- modules with state
def module_case(name, cls, ctor_args, ctor_opts, steps, eval_input, dtype=D):
    m = getattr(nn, cls)(*ctor_args, **ctor_opts).to(dtype)
    params = {}
    with torch.no_grad():
        for k, v in m.named_parameters():
            v.copy_(torch.randn(v.shape, dtype=dtype))
            params[k] = spec(v)
    m.train()
    outs = [spec(m(x)) for x in steps]
    state = [[k, spec(v)] for k, v in m.state_dict().items()]
    m.eval()
    ev = spec(m(eval_input))
    opts = {k: (False if v is None else v) for k, v in ctor_opts.items()}
    modules.append({"name": name, "module": cls, "ctor_args": list(ctor_args), "ctor_opts": opts,
                    "params": params, "steps": [spec(x) for x in steps], "outputs": outs, "state": state,
                    "eval": spec(eval_input), "eval_output": ev})


module_case("BatchNorm3d momentum None", "BatchNorm3d", [3], {"momentum": None},
            [r(2, 3, 2, 3, 2) * (k + 1) + k for k in range(3)], r(2, 3, 2, 3, 2))
module_case("BatchNorm2d momentum None", "BatchNorm2d", [4], {"momentum": None},
            [r(3, 4, 2, 2) + k for k in range(4)], r(1, 4, 2, 2))
module_case("BatchNorm3d momentum 0.2", "BatchNorm3d", [2], {"momentum": 0.2},
            [r(2, 2, 3, 2, 2), r(2, 2, 3, 2, 2) * 2], r(1, 2, 3, 2, 2))
module_case("InstanceNorm2d affine running stats", "InstanceNorm2d", [3],
            {"affine": True, "track_running_stats": True},
            [r(2, 3, 4, 4) * 3 + 1, r(2, 3, 4, 4)], r(2, 3, 4, 4))
module_case("InstanceNorm1d unbatched", "InstanceNorm1d", [3], {}, [r(3, 7)], r(3, 7))
module_case("GroupNorm", "GroupNorm", [2, 6], {"eps": 1e-4}, [r(2, 6, 5)], r(2, 6, 5))

# ---- adaptive_max_pool1d (common_nn: AdaptiveMaxPool1d (1, 3, 5)); last, so
# the draws of every case above stay as they were
add("adaptive_max_pool1d indices", "adaptive_max_pool1d", [(r(1, 3, 5), True), (3, False)],
    {"return_indices": (True, False)})
add("adaptive_max_pool1d unbatched larger output", "adaptive_max_pool1d", [(r(3, 4), True), (6, False)])
add("adaptive_max_pool1d float32 uneven windows", "adaptive_max_pool1d",
    [(r(2, 4, 11, dtype=torch.float32), True), (4, False)], {"return_indices": (True, False)})
add("adaptive_max_pool1d ties keep the first", "adaptive_max_pool1d",
    [(r(2, 3, 9).round().clamp(-1, 1), True), (4, False)], {"return_indices": (True, False)})

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "normpool.json")
with open(path, "w") as fh:
    json.dump({"torch": torch.__version__, "cases": cases, "modules": modules}, fh)
print("wrote %d cases and %d module cases to %s" % (len(cases), len(modules), path))
