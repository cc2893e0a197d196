"""PyTorch twin of conv.lua: float32 conv2d (N, C, HW, HW) * (O, C, K, K),
padding K // 2, with bias: seconds per forward, and per forward + backward
(grads of input, weight, bias from (y * gy).sum()).
Usage: conv_torch.py THREADS N C O HW K. Prints `key value` lines; `ok 1` last."""
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("error no_torch")
    sys.exit(0)

threads, n, c, o, hw, k = (int(v) for v in sys.argv[1:7])
torch.set_num_threads(threads)
torch.manual_seed(0)
print("threads", torch.get_num_threads())

x = torch.randn(n, c, hw, hw)
w = torch.randn(o, c, k, k) * 0.1
b = torch.randn(o)


from torch_timing import timed  # noqa: E402


with torch.no_grad():
    print("forward", timed(lambda: F.conv2d(x, w, b, padding=k // 2), 3, 7, 5))

xg = x.clone().requires_grad_()
wg = w.clone().requires_grad_()
bg = b.clone().requires_grad_()
gy = torch.randn(n, o, hw, hw)


def fwd_bwd():
    xg.grad = wg.grad = bg.grad = None
    y = F.conv2d(xg, wg, bg, padding=k // 2)
    (y * gy).sum().backward()


print("forward_backward", timed(fwd_bwd, 2, 9, 2))
print("ok", 1)
