"""PyTorch twin of losses.lua: forward + backward of each loss, seconds per
step, float32, at the thread count given. Usage: losses_torch.py THREADS.
Prints `key value` lines; `ok 1` last. The focal baseline is the composite
formula people write in PyTorch (it has no focal loss of its own)."""
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("error no_torch")
    sys.exit(0)

threads = int(sys.argv[1])
torch.set_num_threads(threads)
torch.manual_seed(0)


from torch_timing import timed as timed_loop  # noqa: E402


def timed(step, inner):
    return timed_loop(step, 3, 7, inner)


def ce_step(n, c):
    x = torch.randn(n, c, requires_grad=True)
    y = torch.randint(0, c, (n,))

    def step():
        x.grad = None
        F.cross_entropy(x, y).backward()
    return step


def bce_step(n, c):
    x = torch.randn(n, c, requires_grad=True)
    y = (torch.rand(n, c) > 0.5).float()

    def step():
        x.grad = None
        F.binary_cross_entropy_with_logits(x, y).backward()
    return step


def focal_step(n, c, gamma=2.0):
    x = torch.randn(n, c, requires_grad=True)
    y = torch.randint(0, c, (n,))

    def step():
        x.grad = None
        logp = F.log_softmax(x, 1).gather(1, y.view(-1, 1)).squeeze(1)
        p = logp.exp()
        (-(1 - p) ** gamma * logp).mean().backward()
    return step


print("threads", torch.get_num_threads())
for n, c, inner in ((8192, 1000, 5), (128, 10, 2000), (65536, 10, 20)):
    print(f"ce_{n}x{c}", timed(ce_step(n, c), inner))
print("bce_8192x1000", timed(bce_step(8192, 1000), 5))
print("focal_8192x1000", timed(focal_step(8192, 1000), 5))
print("ok", 1)
