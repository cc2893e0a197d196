"""Reference cases for the conv family beyond conv2d, padding and
resampling, from PyTorch 1.13.

Run with Debian's /usr/bin/python3 from the repository root:
    /usr/bin/python3 tests/reference/gen_convfam.py
It writes tests/reference/convfam.json. Each case names a function (conv1d,
conv3d, conv_transpose1d/2d, conv2d with padding strings, pad,
interpolate, pixel_shuffle, pixel_unshuffle) or a conv module with a
padding_mode, with its inputs, options, output, a fixed random g of the
output's shape, and the gradients of (out * g).sum(). Shapes and options
follow PyTorch's common_nn module tests where those exist."""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(13)
CASES = []


def spec(t):
    t = t.detach()
    return {"values": [float(v) for v in t.reshape(-1).tolist()], "shape": list(t.shape),
            "dtype": str(t.dtype).replace("torch.", "")}


def plain(v):
    return list(v) if isinstance(v, tuple) else v


def finish(case, y, leaves):
    g = torch.randn(y.shape, dtype=y.dtype)
    (y * g).sum().backward()
    case["output"] = spec(y)
    case["grad_output"] = spec(g)
    for key, t in leaves.items():
        case["grad_" + key] = spec(t.grad) if t is not None else None
    CASES.append(case)


def conv(name, fn, xshape, wshape, bias=True, dtype=torch.float64, **opts):
    x = torch.randn(*xshape, dtype=dtype, requires_grad=True)
    w = torch.randn(*wshape, dtype=dtype, requires_grad=True)
    b = None
    if bias:
        outs = wshape[1] * opts.get("groups", 1) if fn.startswith("conv_transpose") else wshape[0]
        b = torch.randn(outs, dtype=dtype, requires_grad=True)
    y = getattr(F, fn)(x, w, b, **opts)
    case = {"kind": "conv", "name": name, "fn": fn, "input": spec(x), "weight": spec(w),
            "bias": spec(b) if bias else None,
            "options": {k: plain(v) for k, v in opts.items()}}
    finish(case, y, {"input": x, "weight": w, "bias": b})


def pad(name, xshape, p, mode="constant", value=None, dtype=torch.float64):
    x = torch.randn(*xshape, dtype=dtype, requires_grad=True)
    y = F.pad(x, p, mode=mode, value=value) if value is not None else F.pad(x, p, mode=mode)
    opts = {"mode": mode}
    if value is not None:
        opts["value"] = value
    case = {"kind": "pad", "name": name, "fn": "pad", "input": spec(x), "pad": list(p),
            "options": opts}
    finish(case, y, {"input": x})


def interp(name, xshape, dtype=torch.float64, **opts):
    x = torch.randn(*xshape, dtype=dtype, requires_grad=True)
    y = F.interpolate(x, **opts)
    case = {"kind": "interpolate", "name": name, "fn": "interpolate", "input": spec(x),
            "options": {k: plain(v) for k, v in opts.items()}}
    finish(case, y, {"input": x})


def shuffle(name, fn, xshape, r, dtype=torch.float64):
    x = torch.randn(*xshape, dtype=dtype, requires_grad=True)
    y = getattr(F, fn)(x, r)
    case = {"kind": "shuffle", "name": name, "fn": fn, "input": spec(x), "factor": r}
    finish(case, y, {"input": x})


def module(name, cls, args, xshape, dtype=torch.float64, **opts):
    m = getattr(nn, cls)(*args, **opts).to(dtype)
    x = torch.randn(*xshape, dtype=dtype, requires_grad=True)
    y = m(x)
    case = {"kind": "module", "name": name, "module": cls, "args": list(args),
            "options": {k: plain(v) for k, v in opts.items()}, "input": spec(x),
            "weight": spec(m.weight), "bias": spec(m.bias) if m.bias is not None else None,
            "repr": repr(m)}
    finish(case, y, {"input": x, "weight": m.weight, "bias": m.bias})


for dt, tag in ((torch.float64, "f64"), (torch.float32, "f32")):
    conv(f"conv1d plain {tag}", "conv1d", (2, 4, 10), (5, 4, 3), dtype=dt)
    conv(f"conv1d stride 2 {tag}", "conv1d", (2, 4, 10), (5, 4, 3), dtype=dt, stride=2)
    conv(f"conv1d padding 1 no bias {tag}", "conv1d", (2, 4, 10), (5, 4, 3), bias=False, dtype=dt,
         padding=1)
    conv(f"conv1d dilation 2 {tag}", "conv1d", (2, 4, 10), (5, 4, 3), dtype=dt, dilation=2)
    conv(f"conv1d groups 2 {tag}", "conv1d", (2, 4, 6), (6, 2, 3), dtype=dt, groups=2)
    conv(f"conv1d everything {tag}", "conv1d", (3, 6, 13), (9, 2, 4), dtype=dt, stride=3, padding=2,
         dilation=2, groups=3)
    conv(f"conv1d unbatched {tag}", "conv1d", (4, 10), (5, 4, 3), dtype=dt, padding=1)
    conv(f"conv1d padding same even kernel {tag}", "conv1d", (2, 3, 9), (4, 3, 4), dtype=dt,
         padding="same")
    conv(f"conv1d padding same dilation 3 {tag}", "conv1d", (1, 2, 8), (3, 2, 3), dtype=dt,
         padding="same", dilation=3)
    conv(f"conv1d padding valid {tag}", "conv1d", (1, 2, 8), (3, 2, 3), dtype=dt, padding="valid")
    conv(f"conv2d padding same (4, 3) dilation (1, 2) {tag}", "conv2d", (1, 2, 6, 7), (3, 2, 4, 3),
         dtype=dt, padding="same", dilation=(1, 2))
    conv(f"conv3d plain {tag}", "conv3d", (1, 2, 4, 5, 4), (3, 2, 2, 3, 2), dtype=dt)
    conv(f"conv3d stride 2 padding 1 {tag}", "conv3d", (2, 3, 5, 5, 5), (4, 3, 3, 3, 3), dtype=dt,
         stride=2, padding=1)
    conv(f"conv3d groups 2 {tag}", "conv3d", (1, 4, 4, 5, 6), (4, 2, 2, 3, 4), dtype=dt, groups=2)
    conv(f"conv3d dilation (2, 1, 2) stride (1, 2, 1) {tag}", "conv3d", (1, 2, 6, 6, 6),
         (2, 2, 2, 2, 2), bias=False, dtype=dt, dilation=(2, 1, 2), stride=(1, 2, 1),
         padding=(1, 0, 1))
    conv(f"conv3d padding same {tag}", "conv3d", (1, 2, 4, 4, 4), (2, 2, 2, 3, 2), dtype=dt,
         padding="same")
    conv(f"conv_transpose1d plain {tag}", "conv_transpose1d", (2, 3, 7), (3, 4, 3), dtype=dt)
    conv(f"conv_transpose1d stride 3 padding 1 output_padding 1 {tag}", "conv_transpose1d",
         (1, 3, 7), (3, 4, 3), dtype=dt, stride=3, padding=1, output_padding=1)
    conv(f"conv_transpose1d dilation 2 groups 2 {tag}", "conv_transpose1d", (2, 4, 6), (4, 3, 3),
         bias=False, dtype=dt, stride=2, padding=1, output_padding=1, dilation=2, groups=2)
    conv(f"conv_transpose1d unbatched {tag}", "conv_transpose1d", (3, 5), (3, 2, 2), dtype=dt,
         stride=2)
    conv(f"conv_transpose2d plain {tag}", "conv_transpose2d", (1, 3, 4, 5), (3, 4, 3, 3), dtype=dt)
    conv(f"conv_transpose2d stride (3, 2) padding 1 output_padding (1, 1) {tag}", "conv_transpose2d",
         (1, 3, 7, 6), (3, 4, 3, 3), dtype=dt, stride=(3, 2), padding=1, output_padding=(1, 1))
    conv(f"conv_transpose2d dilated {tag}", "conv_transpose2d", (1, 3, 6, 7), (3, 4, 3, 3),
         bias=False, dtype=dt, stride=(2, 3), padding=1, output_padding=(1, 1), dilation=(2, 2))
    conv(f"conv_transpose2d groups 2 {tag}", "conv_transpose2d", (2, 4, 4, 5), (4, 2, 3, 2),
         dtype=dt, groups=2, stride=2, padding=(1, 0))
    conv(f"conv_transpose2d output_padding < dilation {tag}", "conv_transpose2d", (1, 2, 4, 4),
         (2, 3, 2, 2), dtype=dt, stride=1, dilation=3, output_padding=2)

    pad(f"reflect 1d (1, 2) {tag}", (2, 3, 8), (1, 2), "reflect", dtype=dt)
    pad(f"reflect 2d (1, 2, 3, 4) {tag}", (2, 3, 8, 8), (1, 2, 3, 4), "reflect", dtype=dt)
    pad(f"reflect 3d (1, 1, 2, 0, 1, 2) {tag}", (1, 2, 3, 4, 5), (1, 1, 2, 0, 1, 2), "reflect",
        dtype=dt)
    pad(f"reflect unbatched 2d {tag}", (3, 4, 5), (3, 2, 1, 3), "reflect", dtype=dt)
    pad(f"replicate 1d (1, 2) {tag}", (2, 3, 4), (1, 2), "replicate", dtype=dt)
    pad(f"replicate 2d (1, 2, 3, 4) {tag}", (2, 3, 4, 4), (1, 2, 3, 4), "replicate", dtype=dt)
    pad(f"replicate 3d (1, 2, 3, 3, 2, 1) {tag}", (2, 3, 2, 2, 2), (1, 2, 3, 3, 2, 1),
        "replicate", dtype=dt)
    pad(f"circular 1d (1, 2) {tag}", (1, 2, 3), (1, 2), "circular", dtype=dt)
    pad(f"circular 2d (2, 3, 1, 2) {tag}", (1, 2, 2, 3), (2, 3, 1, 2), "circular", dtype=dt)
    pad(f"zeros 2d (2, 1, 3, 4) {tag}", (2, 3, 8, 8), (2, 1, 3, 4), dtype=dt)
    pad(f"zeros negative (-2, -1, -3, -4) {tag}", (2, 3, 8, 8), (-2, -1, -3, -4), dtype=dt)
    pad(f"constant mixed (-1, 2) value 2 {tag}", (2, 3, 4), (-1, 2), value=2.0, dtype=dt)
    pad(f"constant 3d value -1.5 {tag}", (2, 3, 4, 4, 5), (1, 2, 3, 4, 1, 0), value=-1.5, dtype=dt)
    pad(f"constant 2-dim input {tag}", (3, 4), (1, 1, 2, 0), value=0.5, dtype=dt)

    interp(f"nearest 1d size 12 {tag}", (1, 2, 4), dtype=dt, size=12)
    interp(f"nearest 2d scale 2 {tag}", (1, 2, 4, 4), dtype=dt, scale_factor=2)
    interp(f"nearest 2d scale 1.7 {tag}", (1, 1, 5, 7), dtype=dt, scale_factor=1.7)
    interp(f"nearest 2d scale 1.7 recompute {tag}", (1, 1, 5, 7), dtype=dt, scale_factor=1.7,
           recompute_scale_factor=True)
    interp(f"nearest 2d size (7, 3) {tag}", (2, 1, 4, 5), dtype=dt, size=(7, 3))
    interp(f"nearest 3d scale 2 {tag}", (1, 1, 2, 3, 2), dtype=dt, scale_factor=2)
    interp(f"linear size 9 {tag}", (1, 2, 4), dtype=dt, size=9, mode="linear")
    interp(f"linear size 9 align_corners {tag}", (1, 2, 4), dtype=dt, size=9, mode="linear",
           align_corners=True)
    interp(f"bilinear scale 2 {tag}", (1, 2, 3, 4), dtype=dt, scale_factor=2, mode="bilinear")
    interp(f"bilinear size (5, 9) align_corners {tag}", (2, 1, 4, 4), dtype=dt, size=(5, 9),
           mode="bilinear", align_corners=True)
    interp(f"bilinear downscale (0.6, 0.5) {tag}", (1, 2, 6, 8), dtype=dt, scale_factor=(0.6, 0.5),
           mode="bilinear")
    interp(f"bilinear scale 1.3 recompute {tag}", (1, 1, 5, 4), dtype=dt, scale_factor=1.3,
           mode="bilinear", recompute_scale_factor=True)
    interp(f"bicubic scale 2 {tag}", (1, 2, 4, 5), dtype=dt, scale_factor=2, mode="bicubic")
    interp(f"bicubic size (3, 7) align_corners {tag}", (1, 1, 5, 4), dtype=dt, size=(3, 7),
           mode="bicubic", align_corners=True)
    interp(f"trilinear scale 2 {tag}", (1, 1, 2, 3, 2), dtype=dt, scale_factor=2,
           mode="trilinear")

    shuffle(f"pixel_shuffle 2 {tag}", "pixel_shuffle", (1, 8, 2, 3), 2, dtype=dt)
    shuffle(f"pixel_shuffle 3 batch dims {tag}", "pixel_shuffle", (2, 2, 9, 2, 2), 3, dtype=dt)
    shuffle(f"pixel_unshuffle 2 {tag}", "pixel_unshuffle", (1, 2, 4, 6), 2, dtype=dt)

    module(f"Conv2d reflect {tag}", "Conv2d", (2, 3, 3), (2, 2, 5, 5), dtype=dt, padding=1,
           padding_mode="reflect")
    module(f"Conv1d same circular {tag}", "Conv1d", (2, 3, 4), (2, 2, 7), dtype=dt, padding="same",
           padding_mode="circular")
    module(f"Conv3d replicate {tag}", "Conv3d", (2, 2, 3), (1, 2, 3, 4, 3), dtype=dt, padding=1,
           padding_mode="replicate")
    module(f"Conv1d zeros groups {tag}", "Conv1d", (4, 6, 3), (2, 4, 7), dtype=dt, groups=2,
           stride=2)
    module(f"ConvTranspose1d {tag}", "ConvTranspose1d", (3, 4, 3), (1, 3, 5), dtype=dt, stride=2,
           output_padding=1, bias=False)
    module(f"ConvTranspose2d groups {tag}", "ConvTranspose2d", (4, 6, (3, 2)), (1, 4, 3, 4),
           dtype=dt, stride=(2, 1), padding=(1, 0), groups=2)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "convfam.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": CASES}, f, separators=(",", ":"))
print(f"wrote {len(CASES)} cases to {out}")
