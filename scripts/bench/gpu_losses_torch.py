"""PyTorch twin of gpu_losses.lua: cross_entropy forward + backward on the
GPU at (N, C) float32, with the same data shapes and repeats.

Usage: gpu_losses_torch.py N C REPEATS
Prints `key value` lines: seconds (per forward + backward), gbs (the same
3 N C 4 bytes count as gpu_losses.lua); `ok 1` last."""
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("error no_torch")
    sys.exit(0)

if not torch.cuda.is_available():
    print("error no_gpu")
    print("note PyTorch sees no GPU")
    sys.exit(0)

n, c, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
x = (torch.randn(n, c, device="cuda") * 4).requires_grad_()
y = torch.randint(0, c, (n,), device="cuda")


def once():
    F.cross_entropy(x, y).backward()
    x.grad = None


for _ in range(3):
    once()
torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(repeats):
    once()
torch.cuda.synchronize()
dt = (time.perf_counter() - t0) / repeats
print("seconds", dt)
print("gbs", 3 * n * c * 4 / dt / 1e9)
print("ok", 1)
