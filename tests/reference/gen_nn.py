#!/usr/bin/python3
"""Reference data for tests/lua/nn_spec.lua and models_spec.lua, from
PyTorch 1.13 (Debian's /usr/bin/python3): writes tests/reference/nn.json.

torchvision is not installed, so its ResNets are rebuilt here in plain
torch.nn with torchvision's module names; the parameter counts are checked
against torchvision's published ones (resnet18 11,689,512; resnet50
25,557,032) before anything is written.

Run from the repository root: /usr/bin/python3 tests/reference/gen_nn.py
"""
import json
import math

import torch
from torch import nn

torch.manual_seed(0)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def spec(t):
    return {"values": flat(t), "shape": list(t.shape), "dtype": "float64"}


# --- models, as tide's models/*.lua build them ---------------------------

def mlp(sizes):
    layers = [nn.Flatten()]
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def lenet5(num_classes=10, in_channels=1):
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes))


def smallcnn(num_classes=10, in_channels=1):
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(in_channels, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
                         *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, stem="imagenet", in_channels=3):
        super().__init__()
        self.inplanes = 64
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = conv3x3(in_channels, 64)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)


ARCH = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
        "resnet50": (Bottleneck, [3, 4, 6, 3])}


def resnet(name, **kw):
    block, layers = ARCH[name]
    return ResNet(block, layers, **kw)


def lua_repr(m):
    # tide prints Lua's booleans and has no inplace flag
    return repr(m).replace("True", "true").replace("False", "false").replace(", inplace=false", "")


def describe(model, call, with_repr=False):
    d = {
        "call": call,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "parameter_names": [n for n, _ in model.named_parameters()],
        "state_dict_keys": list(model.state_dict().keys()),
        "state_dict_shapes": [list(t.shape) for t in model.state_dict().values()],
    }
    if with_repr:
        d["repr"] = lua_repr(model)
    return d


models = []
models.append(describe(mlp([784, 256, 256, 10]), {"name": "mlp", "opts": {"sizes": [784, 256, 256, 10]}}, True))
models.append(describe(lenet5(), {"name": "lenet5", "opts": {}}, True))
models.append(describe(lenet5(num_classes=2, in_channels=3), {"name": "lenet5", "opts": {"num_classes": 2, "in_channels": 3}}))
models.append(describe(smallcnn(), {"name": "smallcnn", "opts": {}}, True))
models.append(describe(smallcnn(num_classes=1, in_channels=3), {"name": "smallcnn", "opts": {"num_classes": 1, "in_channels": 3}}))
for name in ("resnet18", "resnet34", "resnet50"):
    models.append(describe(resnet(name), {"name": name, "opts": {}}))
models.append(describe(resnet("resnet18", num_classes=10, stem="cifar"),
                       {"name": "resnet18", "opts": {"num_classes": 10, "stem": "cifar"}}, True))
models.append(describe(resnet("resnet50", num_classes=1, stem="cifar", in_channels=1),
                       {"name": "resnet50", "opts": {"num_classes": 1, "stem": "cifar", "in_channels": 1}}))

published = {"resnet18": 11689512, "resnet34": 21797672, "resnet50": 25557032}
for m in models:
    if m["call"]["name"] in published and not m["call"]["opts"]:
        assert m["num_parameters"] == published[m["call"]["name"]], m["call"]

# --- Linear forward and backward ------------------------------------------

lin = nn.Linear(4, 3).double()
x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
w_out = torch.randn(5, 3, dtype=torch.float64)
y = lin(x)
(y * w_out).sum().backward()
linear = {
    "weight": spec(lin.weight), "bias": spec(lin.bias), "x": spec(x), "w_out": spec(w_out),
    "y": spec(y), "grad_x": spec(x.grad), "grad_weight": spec(lin.weight.grad), "grad_bias": spec(lin.bias.grad),
}

# --- init formulas ----------------------------------------------------------

gains = []
for nl, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                  ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)]:
    gains.append({"nonlinearity": nl, "param": param, "gain": nn.init.calculate_gain(nl, param)})
fans = []
for shape in ([3, 5], [64, 3, 7, 7], [16, 4, 3, 2], [10, 7, 1]):
    fi, fo = nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    fans.append({"shape": shape, "fan_in": fi, "fan_out": fo})

reprs = {
    "seq": lua_repr(nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.25), nn.Linear(256, 10, bias=False))),
    "layers": [lua_repr(m) for m in [
        nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.Conv2d(8, 16, (3, 5), stride=2, dilation=2, groups=4),
        nn.BatchNorm1d(10), nn.LayerNorm(6), nn.LeakyReLU(0.2), nn.Softmax(dim=1), nn.LogSoftmax(dim=-1),
        nn.MaxPool2d(3, stride=2, padding=1), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Dropout(0.1),
        nn.Flatten(), nn.Embedding(10, 4, padding_idx=0), nn.Identity(), nn.GELU(), nn.Sigmoid(), nn.Tanh()]],
}

out = {"models": models, "linear": linear, "gains": gains, "fans": fans, "reprs": reprs}
with open("tests/reference/nn.json", "w") as f:
    json.dump(out, f, indent=None, separators=(",", ":"))
    f.write("\n")
print("wrote tests/reference/nn.json:", ", ".join(f"{m['call']['name']} {m['num_parameters']}" for m in models))
