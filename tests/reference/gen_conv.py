"""Reference cases for conv2d, from PyTorch 1.13.

Run with Debian's /usr/bin/python3 from the repository root:
    /usr/bin/python3 tests/reference/gen_conv.py
It writes tests/reference/conv.json: for each case the input, weight,
bias (or null), the options, the output, and the gradients of
(out * g).sum() (g a fixed random tensor of out's shape) with respect to
input, weight and bias."""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(4)
CASES = []


def spec(t):
    t = t.detach()
    return {"values": [float(v) for v in t.reshape(-1).tolist()], "shape": list(t.shape),
            "dtype": str(t.dtype).replace("torch.", "")}


def case(name, n, c, h, w, o, kh, kw, bias=True, dtype=torch.float64, **opts):
    groups = opts.get("groups", 1)
    x = torch.randn(n, c, h, w, dtype=dtype, requires_grad=True)
    wt = torch.randn(o, c // groups, kh, kw, dtype=dtype, requires_grad=True)
    b = torch.randn(o, dtype=dtype, requires_grad=True) if bias else None
    y = F.conv2d(x, wt, b, **opts)
    g = torch.randn(y.shape, dtype=dtype)
    (y * g).sum().backward()
    CASES.append({
        "name": name,
        "input": spec(x), "weight": spec(wt), "bias": spec(b) if bias else None,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()},
        "output": spec(y), "grad_output": spec(g),
        "grad_input": spec(x.grad), "grad_weight": spec(wt.grad),
        "grad_bias": spec(b.grad) if bias else None,
    })


for dt, tag in ((torch.float64, "f64"), (torch.float32, "f32")):
    case(f"plain 3x3 {tag}", 1, 3, 6, 5, 4, 3, 3, dtype=dt)
    case(f"stride 2 padding 1 {tag}", 4, 3, 7, 8, 5, 3, 3, dtype=dt, stride=2, padding=1)
    case(f"padding (1, 2) no bias {tag}", 2, 2, 5, 6, 3, 3, 2, bias=False, dtype=dt, padding=(1, 2))
    case(f"stride (2, 1) {tag}", 1, 2, 7, 6, 3, 2, 3, dtype=dt, stride=(2, 1))
    case(f"dilation 2 {tag}", 2, 3, 8, 9, 4, 3, 3, dtype=dt, dilation=2, padding=2)
    case(f"dilation (1, 2) {tag}", 1, 2, 6, 9, 2, 2, 3, dtype=dt, dilation=(1, 2))
    case(f"groups 2 {tag}", 2, 4, 6, 6, 6, 3, 3, dtype=dt, groups=2, padding=1)
    case(f"depthwise {tag}", 4, 3, 6, 5, 3, 3, 3, bias=False, dtype=dt, groups=3, padding=1)
    case(f"depthwise multiplier 2 {tag}", 1, 3, 5, 5, 6, 3, 3, dtype=dt, groups=3, stride=2)
    case(f"1x1 {tag}", 4, 5, 4, 3, 7, 1, 1, dtype=dt)
    case(f"1x1 stride 2 no bias {tag}", 1, 4, 5, 5, 2, 1, 1, bias=False, dtype=dt, stride=2)
    case(f"everything {tag}", 2, 4, 9, 8, 4, 3, 2, dtype=dt, stride=(2, 3), padding=(1, 2), dilation=(2, 1), groups=2)
    case(f"kernel = padded input {tag}", 1, 2, 3, 3, 2, 5, 5, dtype=dt, padding=1)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": CASES}, f, separators=(",", ":"))
print(f"wrote {len(CASES)} cases to {out}")
