#!/usr/bin/python3
"""Training equivalence with PyTorch 1.13, llm.c style.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_train.py
Writes, for tests/lua/train_spec.lua (which needs no Python):

tests/reference/train_smallcnn.safetensors (written by the safetensors
writer of gen_safetensors.py)
  init.<key>        smallcnn's initial state_dict (PyTorch names, float32,
                    num_batches_tracked int64); float32 so that the float32
                    and float64 runs start from exactly the same numbers
  batch.x, batch.y  the fixed batch: 8 images 1x28x28 (float32), int64 labels
  <run>.step<k>.<key>
                    parameters and BN running statistics after k steps of
                    the float64 run, stored as the difference from init,
                    computed in float64 and rounded to float32: the values
                    come back as init + delta to about |delta| * 6e-8, far
                    below the tolerance, and the file stays small (2.3 MB)
tests/reference/train.json
  smallcnn.runs[]   per run: optimizer name and options, the steps whose
                    snapshots are stored, PyTorch's loss at each step in
                    float64 and in float32, and how far PyTorch's own float32
                    run lands from its float64 run (max abs difference of
                    the losses and of every parameter and buffer), which is
                    what an honest float32 tolerance is measured against
  resnet18          the logits test, see below

smallcnn is tide's models/smallcnn.lua: three 3x3 conv (no bias)-BN-ReLU
blocks of 32, 64, 128 channels, 2x2 max pools after the first two, global
average pool, flatten, linear; nn.Sequential, so the keys are 0.weight,
1.weight, 1.bias, 1.running_mean, ..., 13.weight, 13.bias. Initial weights:
PyTorch's default initialisation with seed 2024, then BN weight, bias and
running statistics set to random non-trivial values (so that neither the
affine transform nor the running-statistics update can be wrong unseen).
Training mode, F.cross_entropy (mean), steps on the same batch.

resnet18: torchvision's resnet18 (BasicBlock, [2, 2, 2, 2]) with tide's
"cifar" stem (conv1 a 3x3 stride-1 padding-1 convolution, no max pool) and
10 classes. Its 11.2M weights would be 45 MB as float32, so they are not
stored: each tensor is rebuilt on both sides from a small integer seed by
`uniform(n, seed)` below, a middle-square hash done in float64 with whole
numbers below 2^53 only, so every operation is exact and PyTorch and tide
produce the same bits; w = lo + u * (hi - lo). The JSON lists, per state_dict
key, its seed, lo, hi and the float64 sum of the values, which the spec
checks before anything else. The input (2x3x32x32) comes from the same hash.
Logits are stored for evaluation mode (BN with the random positive running
statistics) and training mode (batch statistics), each computed in float64
and in float32, and the sums of the running statistics after the training
forward.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_safetensors import write  # noqa: E402

torch.set_num_threads(1)
F64, F32 = torch.float64, torch.float32

# ---------------------------------------------------------------- smallcnn


def smallcnn(num_classes=10, in_channels=1):
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(in_channels, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
                         *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))


RUNS = [
    # name, optimizer, options, steps whose snapshots are stored
    ("sgd", "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-2}, [1, 5]),
    ("nesterov", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-3}, [5]),
    ("adamw", "AdamW", {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.05}, [1, 5]),
]
NSTEPS = 5


def make_optimizer(name, params, opts):
    o = dict(opts)
    if "betas" in o:
        o["betas"] = tuple(o["betas"])
    return getattr(torch.optim, name)(params, **o)


def train(init, x, y, dtype, optim, opts):
    """-> (losses, {step: state_dict (float64 copies)})"""
    m = smallcnn().to(dtype)
    m.load_state_dict(init)
    m.train()
    opt = make_optimizer(optim, m.parameters(), opts)
    x = x.to(dtype)
    losses, snaps = [], {}
    for k in range(1, NSTEPS + 1):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        snaps[k] = {n: t.detach().clone().to(F64) if t.is_floating_point() else t.detach().clone()
                    for n, t in m.state_dict().items()}
    return losses, snaps


def gen_smallcnn(tensors):
    torch.manual_seed(2024)
    m = smallcnn()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(torch.rand(c) + 0.5)
                mod.bias.copy_((torch.rand(c) - 0.5) * 0.2)
                mod.running_mean.copy_(torch.randn(c) * 0.1)
                mod.running_var.copy_(torch.rand(c) + 0.5)
    init = {n: t.detach().clone() for n, t in m.state_dict().items()}
    x = torch.randn(8, 1, 28, 28)
    y = torch.randint(0, 10, (8,))
    for n, t in init.items():
        tensors["init." + n] = t
    tensors["batch.x"] = x
    tensors["batch.y"] = y

    runs = []
    for name, optim, opts, stored in RUNS:
        l64, s64 = train(init, x, y, F64, optim, opts)
        l32, s32 = train(init, x, y, F32, optim, opts)
        for k in stored:
            for n, t in s64[k].items():
                if t.is_floating_point():
                    tensors[f"{name}.step{k}.{n}"] = (t - init[n].to(F64)).to(F32)
        dev = {}
        for k in stored:
            dev[str(k)] = max((s32[k][n] - s64[k][n]).abs().max().item()
                              for n in s64[k] if s64[k][n].is_floating_point())
        runs.append({
            "name": name, "optim": optim, "options": opts, "stored_steps": stored,
            "losses_float64": l64, "losses_float32": l32,
            "torch_f32_vs_f64": {"loss": max(abs(a - b) for a, b in zip(l32, l64)), "params": dev},
        })
        print(f"smallcnn {name}: losses {l64[0]:.6f} .. {l64[-1]:.6f}; torch float32 vs float64: "
              f"loss {runs[-1]['torch_f32_vs_f64']['loss']:.2e}, params {dev}")
    return {"keys": list(init.keys()), "num_params": sum(p.numel() for p in m.parameters()),
            "batch": [8, 1, 28, 28], "runs": runs}

# ---------------------------------------------------------------- resnet18


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


class ResNet18Cifar(nn.Module):
    """torchvision.models.resnet18 with conv1 = 3x3 stride 1 and maxpool = Identity"""

    def __init__(self, num_classes=10):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(64, 2, 1)
        self.layer2 = self._make_layer(128, 2, 2)
        self.layer3 = self._make_layer(256, 2, 2)
        self.layer4 = self._make_layer(512, 2, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


M26 = float(2 ** 26)


def _mod(x, m):
    return x - torch.trunc(x / m) * m


def uniform(n, seed):
    """n values in [0, 1), a multiple of 2^-26 each. Every intermediate is a
    whole number below 2^53 (or such a number times a power of two), so each
    float64 operation is exact and tide's twin gives the same bits."""
    i = torch.arange(n, dtype=F64)
    x = _mod(i * 40503.0 + float(seed * 7919 + 12345), M26)
    x = _mod(torch.trunc(x * x / 8192.0), M26)
    x = _mod(x * 69069.0 + 1.0, M26)
    x = _mod(torch.trunc(x * x / 8192.0), M26)
    return x / M26


def resnet_ranges(name, shape):
    """(lo, hi) of the uniform values of one state_dict entry"""
    leaf = name.rsplit(".", 1)[1]
    if leaf == "weight" and len(shape) == 4:          # conv: He uniform
        fan_in = shape[1] * shape[2] * shape[3]
        b = (6.0 / fan_in) ** 0.5
        return -b, b
    if name.startswith("fc."):
        b = (1.0 / shape[-1]) ** 0.5 if leaf == "weight" else 0.05
        return -b, b
    return {"weight": (0.5, 1.5), "bias": (-0.1, 0.1),
            "running_mean": (-0.1, 0.1), "running_var": (0.5, 2.0)}[leaf]


def gen_resnet():
    m = ResNet18Cifar().to(F64)
    entries = []
    sd = {}
    for seed, (name, t) in enumerate(m.state_dict().items(), start=1):
        if not t.is_floating_point():       # num_batches_tracked stays 0
            sd[name] = t.clone()
            continue
        lo, hi = resnet_ranges(name, list(t.shape))
        v = (uniform(t.numel(), seed) * (hi - lo) + lo).reshape(t.shape)
        sd[name] = v
        entries.append({"name": name, "seed": seed, "lo": lo, "hi": hi, "shape": list(t.shape),
                        "sum": v.sum().item()})
    input_seed = 9001
    x = (uniform(2 * 3 * 32 * 32, input_seed) * 2.0 - 1.0).reshape(2, 3, 32, 32)

    out = {"tensors": entries, "input": {"seed": input_seed, "lo": -1.0, "hi": 1.0, "shape": [2, 3, 32, 32],
                                         "sum": x.sum().item()},
           "num_params": sum(p.numel() for p in m.parameters())}
    for dtype, dname in ((F64, "float64"), (F32, "float32")):
        net = ResNet18Cifar().to(dtype)
        net.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()})
        net.eval()
        with torch.no_grad():
            out["eval_" + dname] = net(x.to(dtype)).reshape(-1).tolist()
            net.train()
            out["train_" + dname] = net(x.to(dtype)).reshape(-1).tolist()
        stats = {}
        for n, t in net.state_dict().items():
            if n.endswith("running_mean") or n.endswith("running_var"):
                stats[n] = t.to(F64).sum().item()
        out["running_sums_" + dname] = stats
    ev = torch.tensor(out["eval_float64"])
    tr = torch.tensor(out["train_float64"])
    print("resnet18: eval logits |max| %.3g, f32 vs f64 %.2e; train logits |max| %.3g, f32 vs f64 %.2e" % (
        ev.abs().max(), (torch.tensor(out["eval_float32"]) - ev).abs().max(),
        tr.abs().max(), (torch.tensor(out["train_float32"]) - tr).abs().max()))
    return out


def main():
    tensors = {}
    data = {"smallcnn": gen_smallcnn(tensors), "resnet18": gen_resnet()}
    write(os.path.join(HERE, "train_smallcnn.safetensors"), tensors,
          {"generator": "tests/reference/gen_train.py", "torch": torch.__version__})
    with open(os.path.join(HERE, "train.json"), "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
