"""PyTorch twin of lowp.lua: float32 <-> bfloat16 / float16 conversion,
bfloat16 add and bfloat16 sum, seconds per op.
Usage: lowp_torch.py THREADS N. Prints `key value` lines; `ok 1` last."""
import sys

try:
    import torch
except ImportError:
    print("error no_torch")
    sys.exit(0)

threads = int(sys.argv[1])
n = int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
print("threads", torch.get_num_threads())


from torch_timing import timed  # noqa: E402

x = torch.randn(n)
xb = x.bfloat16()
xh = x.half()
yb = torch.randn(n).bfloat16()
ops = {
    "f32_bf16": lambda: x.bfloat16(),
    "bf16_f32": lambda: xb.float(),
    "f32_f16": lambda: x.half(),
    "f16_f32": lambda: xh.float(),
    "bf16_add": lambda: torch.add(xb, yb),
    "bf16_sum": lambda: xb.sum(),
}
for key, fn in ops.items():
    print(key, timed(fn, 3, 7, 3))
print("ok", 1)
