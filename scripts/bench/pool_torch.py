"""PyTorch twin of pool.lua: float32 max_pool2d 2x2, max_pool2d 3x3 stride 2
padding 1 and adaptive_avg_pool2d to 1x1 over three shapes, contiguous and
channels_last (input and upstream gradient): seconds per forward, and per
forward + backward (y.backward(gy)).
Usage: pool_torch.py THREADS. Prints `key value` lines; `ok 1` last."""
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
print("threads", torch.get_num_threads())

# keep these in step with pool.lua
shapes = [(128, 32, 28, 28), (128, 64, 14, 14), (64, 512, 4, 4)]
ops = [
    ("max2", lambda t: F.max_pool2d(t, 2)),
    ("max3", lambda t: F.max_pool2d(t, 3, stride=2, padding=1)),
    ("gap", lambda t: F.adaptive_avg_pool2d(t, 1)),
]
layouts = [("nchw", torch.contiguous_format), ("cl", torch.channels_last)]


from torch_timing import timed  # noqa: E402


for name, op in ops:
    for s in shapes:
        for lay, fmt in layouts:
            key = "%s_%dx%dx%dx%d_%s" % ((name,) + s + (lay,))
            x = torch.randn(*s).contiguous(memory_format=fmt)
            with torch.no_grad():
                print(key + "_fwd", timed(lambda: op(x), 3, 7, 5))
            xg = x.clone().requires_grad_()
            gy = torch.randn(op(x).shape).contiguous(memory_format=fmt)

            def fwd_bwd():
                xg.grad = None
                op(xg).backward(gy)

            print(key + "_fb", timed(fwd_bwd, 3, 7, 3))
print("ok", 1)
