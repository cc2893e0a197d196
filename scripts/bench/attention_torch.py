"""PyTorch twin of attention.lua.
Usage: attention_torch.py THREADS layer D H FF SEQ BATCH
    TransformerEncoderLayer(D, H, FF, batch_first) training step (forward,
    (y * gy).sum() backward, parameter grads zeroed): seconds per step.
Usage: attention_torch.py THREADS sdpa SEQ HEADS DIM
    softmax(q k^T / sqrt(DIM)) v forward + backward for (1, HEADS, SEQ, DIM):
    PyTorch 1.13 has no fused CPU attention, so this is the quadratic
    composition; seconds, and the peak resident bytes its first call added
    (VmHWM reset through /proc/self/clear_refs before, the resident size
    then subtracted).
Prints `key value` lines; `ok 1` last."""
import math
import sys

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("error no_torch")
    sys.exit(0)

from torch_timing import timed  # noqa: E402

threads, mode = int(sys.argv[1]), sys.argv[2]
torch.set_num_threads(threads)
torch.manual_seed(0)
print("threads", torch.get_num_threads())


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


if mode == "layer":
    d, h, ff, seq, batch = (int(v) for v in sys.argv[3:8])
    layer = nn.TransformerEncoderLayer(d, h, ff, batch_first=True).train()
    x = torch.randn(batch, seq, d)
    gy = torch.randn(batch, seq, d)

    def step():
        layer.zero_grad(set_to_none=True)
        (layer(x) * gy).sum().backward()

    print("step", timed(step, 1, 3, 1))
else:
    seq, heads, dim = (int(v) for v in sys.argv[3:6])
    q, k, v = (torch.randn(1, heads, seq, dim, requires_grad=True) for _ in range(3))
    gy = torch.randn(1, heads, seq, dim)

    def sdpa():
        q.grad = k.grad = v.grad = None
        s = (q @ k.transpose(-2, -1)) / math.sqrt(dim)
        (torch.softmax(s, -1) @ v).backward(gy)

    # the first call, before any allocator holds freed blocks it could reuse
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = status_kb("VmRSS")
        sdpa()
        print("peak_rss", (status_kb("VmHWM") - base) * 1024)
    except OSError:
        sdpa()
    print("sdpa", timed(sdpa, 1, 3, 1))
print("ok", 1)
