"""PyTorch twin of lowp_matmul.lua: bfloat16 matmul GFLOP/s at the same
thread count (PyTorch 1.13 has no float16 matmul on the CPU: "addmm_impl_cpu_"
not implemented for 'Half'). Usage: lowp_matmul_torch.py THREADS SIZES
(e.g. 2 1024,4096). Prints `key value` lines; `ok 1` last."""
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
print("version", torch.__version__)

for n in sizes:
    a = torch.randn(n, n).bfloat16()
    b = torch.randn(n, n).bfloat16()
    inner = 10 if n <= 1024 else 1
    for _ in range(2):
        torch.matmul(a, b)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(inner):
            c = torch.matmul(a, b)
            del c
        times.append((time.perf_counter() - t0) / inner)
    s = min(times)
    print(f"bf16_{n}", 2 * n**3 / s / 1e9)
print("ok", 1)
