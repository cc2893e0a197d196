"""PyTorch twin of softmax.lua: softmax over dim 1 of a float32 (ROWS, COLS)
tensor, seconds per op. Usage: softmax_torch.py THREADS ROWS COLS.
Prints `key value` lines; `ok 1` last."""
import statistics
import sys
import time

try:
    import torch
except ImportError:
    print("error no_torch")
    sys.exit(0)

threads, rows, cols = (int(v) for v in sys.argv[1:4])
torch.set_num_threads(threads)
torch.manual_seed(0)
print("threads", torch.get_num_threads())

x = torch.randn(rows, cols)
for _ in range(3):
    torch.softmax(x, 1)
times = []
for _ in range(7):
    t0 = time.perf_counter()
    for _ in range(10):
        torch.softmax(x, 1)
    times.append((time.perf_counter() - t0) / 10)
print("softmax", statistics.median(times))
print("ok", 1)
