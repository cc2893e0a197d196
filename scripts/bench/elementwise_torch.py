"""PyTorch twin of elementwise.lua: out-of-place float32 add and mul,
seconds per op. Usage: elementwise_torch.py THREADS SIZES.
Prints `key value` lines; `ok 1` last."""
import statistics
import sys
import time

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


def bench(fn, inner, warmup=3, repeats=7):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


for n in sizes:
    a = torch.randn(n)
    b = torch.randn(n)
    inner = 100 if n <= (1 << 20) else 3
    print(f"add_{n}", bench(lambda: torch.add(a, b), inner))
    print(f"mul_{n}", bench(lambda: torch.mul(a, b), inner))
    del a, b
print("ok", 1)
