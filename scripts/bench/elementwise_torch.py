"""PyTorch twin of elementwise.lua: out-of-place float32 add and mul,
seconds per op. Usage: elementwise_torch.py THREADS SIZES.
Prints `key value` lines; `ok 1` last."""
import sys

try:
    import torch
except ImportError:
    print("error no_torch")
    sys.exit(0)

threads = int(sys.argv[1])
sizes = [int(s) for s in sys.argv[2].split(",")]
torch.set_num_threads(threads)
torch.manual_seed(0)
print("threads", torch.get_num_threads())


from torch_timing import timed  # noqa: E402


for n in sizes:
    a = torch.randn(n)
    b = torch.randn(n)
    inner = 100 if n <= (1 << 20) else 3
    print(f"add_{n}", timed(lambda: torch.add(a, b), 3, 7, inner))
    print(f"mul_{n}", timed(lambda: torch.mul(a, b), 3, 7, inner))
    del a, b
print("ok", 1)
