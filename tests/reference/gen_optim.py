#!/usr/bin/python3
"""Reference trajectories for tide.optim, computed with PyTorch 1.13.

Run with Debian's python3-torch:
    /usr/bin/python3 tests/reference/gen_optim.py
Writes tests/reference/optim.json (committed, so the tests need no Python);
tests/lua/optim_spec.lua reads it.

optimizers: each case
  name, optim   label and tide.optim class name
  options       the options table (lists for betas)
  groups        null, or a list of {params = 0-based indices, ...options}
  params        initial parameters {values (flat, row-major), shape, dtype}
  grads         grads[k][i]: gradient of parameter i at step k (null = no grad)
  steps         steps[k][i]: parameter i after step k (flat values)
schedulers: each case
  name, sched, args (positional after the optimizer), options
  optim         {name, options, group_lrs}: one parameter per group
  lrs           get_last_lr() after construction, then after each step
  momenta       OneCycleLR only: momentum (SGD) or beta1 (Adam) per group, same times
clip: each case
  fn, max_norm / clip_value, norm_type, grads (in), total_norm, out (grads after)
"""
import json
import math
import os
import warnings

import torch

warnings.filterwarnings("ignore")
torch.manual_seed(404)
F64, F32 = torch.float64, torch.float32
NAMES = {F32: "float32", F64: "float64"}
NSTEPS = 6


def spec(t):
    return {"values": t.detach().reshape(-1).tolist(), "shape": list(t.shape), "dtype": NAMES[t.dtype]}


SHAPES = [(2, 3), (4,), (1,)]


def make_params(dtype):
    return [torch.randn(s, dtype=dtype) for s in SHAPES]


def make_grads(dtype, nil=()):
    """grads[k][i]; (k, i) in nil gives no gradient"""
    out = []
    for k in range(NSTEPS):
        row = []
        for i, s in enumerate(SHAPES):
            g = torch.randn(s, dtype=dtype) * (1 + 0.5 * k)
            row.append(None if (k, i) in nil else g)
        out.append(row)
    return out


def to_torch_opts(options):
    o = dict(options)
    if "betas" in o:
        o["betas"] = tuple(o["betas"])
    return o


optim_cases = []


def optim_case(name, optim, options, dtype=F64, groups=None, nil=()):
    init = make_params(dtype)
    grads = make_grads(dtype, nil)
    params = [p.clone().requires_grad_(True) for p in init]
    cls = getattr(torch.optim, optim)
    if groups:
        tg = []
        for g in groups:
            d = {k: v for k, v in g.items() if k != "params"}
            d["params"] = [params[i] for i in g["params"]]
            tg.append(to_torch_opts(d))
        opt = cls(tg, **to_torch_opts(options))
    else:
        opt = cls(params, **to_torch_opts(options))
    steps = []
    for k in range(NSTEPS):
        for i, p in enumerate(params):
            p.grad = None if grads[k][i] is None else grads[k][i].clone()
        opt.step()
        steps.append([p.detach().reshape(-1).tolist() for p in params])
    optim_cases.append({
        "name": name, "optim": optim, "options": options, "groups": groups,
        "params": [spec(p) for p in init],
        "grads": [[None if g is None else g.reshape(-1).tolist() for g in row] for row in grads],
        "steps": steps,
    })


optim_case("sgd plain", "SGD", {"lr": 0.1})
optim_case("sgd momentum", "SGD", {"lr": 0.05, "momentum": 0.9})
optim_case("sgd momentum dampening wd", "SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01})
optim_case("sgd nesterov wd", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.02})
optim_case("sgd maximize", "SGD", {"lr": 0.1, "momentum": 0.5, "maximize": True})
optim_case("sgd float32", "SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, dtype=F32)
optim_case("sgd nil grads", "SGD", {"lr": 0.1, "momentum": 0.9}, nil={(0, 1), (1, 1), (3, 2), (2, 0)})
optim_case("sgd groups", "SGD", {"lr": 0.1, "momentum": 0.9},
           groups=[{"params": [0, 2]}, {"params": [1], "lr": 0.01, "momentum": 0.5, "weight_decay": 0.1}])
optim_case("adam default", "Adam", {})
optim_case("adam lr wd", "Adam", {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.05})
optim_case("adam amsgrad", "Adam", {"lr": 0.01, "amsgrad": True})
optim_case("adam maximize", "Adam", {"lr": 0.01, "maximize": True})
optim_case("adam float32", "Adam", {"lr": 0.01, "weight_decay": 0.01}, dtype=F32)
optim_case("adam nil grads", "Adam", {"lr": 0.01}, nil={(0, 1), (1, 1), (4, 0)})
optim_case("adam groups", "Adam", {"lr": 0.01},
           groups=[{"params": [1]}, {"params": [0, 2], "lr": 0.003, "betas": [0.5, 0.9], "amsgrad": True}])
optim_case("adamw default", "AdamW", {})
optim_case("adamw wd", "AdamW", {"lr": 0.02, "weight_decay": 0.1})
optim_case("adamw amsgrad", "AdamW", {"lr": 0.02, "weight_decay": 0.05, "amsgrad": True})
optim_case("adamw float32", "AdamW", {"lr": 0.01}, dtype=F32)
optim_case("rmsprop default", "RMSprop", {})
optim_case("rmsprop centered momentum", "RMSprop", {"lr": 0.005, "alpha": 0.9, "momentum": 0.8, "centered": True})
optim_case("rmsprop wd eps", "RMSprop", {"lr": 0.01, "eps": 1e-4, "weight_decay": 0.1, "momentum": 0.5})
optim_case("rmsprop maximize", "RMSprop", {"lr": 0.01, "maximize": True, "centered": True})
optim_case("rmsprop float32", "RMSprop", {"lr": 0.01, "momentum": 0.9}, dtype=F32)

# ---- schedulers -----------------------------------------------------------
sched_cases = []
NSCHED = 30


def sched_case(name, sched, args, options, optim="SGD", optim_options=None, group_lrs=(0.1, 0.05),
               torch_build=None, nsteps=NSCHED):
    optim_options = optim_options or {}
    ps = [torch.zeros(1, requires_grad=True) for _ in group_lrs]
    opt = getattr(torch.optim, optim)([{"params": [p], "lr": lr} for p, lr in zip(ps, group_lrs)],
                                      **to_torch_opts(optim_options))
    s = torch_build(opt) if torch_build else getattr(torch.optim.lr_scheduler, sched)(opt, *args, **options)

    def mom():
        if optim == "SGD":
            return [g["momentum"] for g in opt.param_groups]
        return [g["betas"][0] for g in opt.param_groups]

    lrs, moms = [list(s.get_last_lr())], [mom()]
    for _ in range(nsteps):
        opt.step()
        s.step()
        lrs.append(list(s.get_last_lr()))
        moms.append(mom())
    c = {"name": name, "sched": sched, "args": args, "options": options,
         "optim": {"name": optim, "options": optim_options, "group_lrs": list(group_lrs)}, "lrs": lrs}
    if sched == "OneCycleLR":
        c["momenta"] = moms
    sched_cases.append(c)


sched_case("steplr", "StepLR", [7], {})
sched_case("steplr gamma", "StepLR", [3], {"gamma": 0.5})
sched_case("multisteplr", "MultiStepLR", [[4, 10, 10, 22]], {"gamma": 0.3})
sched_case("cosine", "CosineAnnealingLR", [10], {})
sched_case("cosine eta_min", "CosineAnnealingLR", [12], {"eta_min": 0.001})
sched_case("onecycle", "OneCycleLR", [1.0], {"total_steps": 30}, optim_options={"momentum": 0.9})
sched_case("onecycle epochs linear", "OneCycleLR", [[0.5, 0.2]],
           {"epochs": 5, "steps_per_epoch": 6, "pct_start": 0.25, "anneal_strategy": "linear",
            "div_factor": 10.0, "final_div_factor": 100.0}, optim_options={"momentum": 0.9})
sched_case("onecycle three phase adam", "OneCycleLR", [0.01],
           {"total_steps": 30, "three_phase": True, "base_momentum": 0.8, "max_momentum": 0.9},
           optim="Adam")
sched_case("onecycle no momentum", "OneCycleLR", [0.3], {"total_steps": 30, "cycle_momentum": False})
# LinearWarmup(opt, n, {start_factor = f}) is LinearLR(opt, f, 1.0, n)
sched_case("linearwarmup", "LinearWarmup", [10], {"start_factor": 0.1},
           torch_build=lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=10))
# start_factor 0: LinearLR's recursive form divides by zero there; its closed form is
# base_lr * (f + (1 - f) * min(t, n) / n), which is what tide computes
lrs0 = [[lr * min(t, 8) / 8 for lr in (0.1, 0.05)] for t in range(NSCHED + 1)]
sched_cases.append({"name": "linearwarmup from zero", "sched": "LinearWarmup", "args": [8], "options": {},
                    "optim": {"name": "SGD", "options": {}, "group_lrs": [0.1, 0.05]}, "lrs": lrs0})

# ---- gradient clipping ----------------------------------------------------
clip_cases = []


def clip_case(fn, arg, norm_type=None, dtype=F64, scale=1.0):
    gs = [torch.randn(s, dtype=dtype) * scale for s in SHAPES]
    ps = [torch.zeros(s, dtype=dtype, requires_grad=True) for s in SHAPES]
    for p, g in zip(ps, gs):
        p.grad = g.clone()
    c = {"fn": fn, "grads": [spec(g) for g in gs]}
    if fn == "clip_grad_norm_":
        kw = {} if norm_type is None else {"norm_type": norm_type}
        tot = torch.nn.utils.clip_grad_norm_(ps, arg, **kw)
        c["max_norm"] = arg
        c["norm_type"] = "inf" if norm_type == math.inf else norm_type
        c["total_norm"] = tot.item()
    else:
        torch.nn.utils.clip_grad_value_(ps, arg)
        c["clip_value"] = arg
    c["out"] = [p.grad.reshape(-1).tolist() for p in ps]
    clip_cases.append(c)


clip_case("clip_grad_norm_", 1.0)
clip_case("clip_grad_norm_", 100.0)
clip_case("clip_grad_norm_", 0.5, norm_type=1.0)
clip_case("clip_grad_norm_", 0.5, norm_type=math.inf)
clip_case("clip_grad_norm_", 2.0, norm_type=3.0, scale=3.0)
clip_case("clip_grad_norm_", 1.0, dtype=F32)
clip_case("clip_grad_value_", 0.5)
clip_case("clip_grad_value_", 0.1, dtype=F32)

out = {"torch_version": torch.__version__, "optimizers": optim_cases, "schedulers": sched_cases,
       "clip": clip_cases}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", path, len(optim_cases), "optimizer cases,", len(sched_cases), "schedules,", len(clip_cases), "clips")
