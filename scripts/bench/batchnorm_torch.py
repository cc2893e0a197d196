"""PyTorch twin of batchnorm.lua: float32 batch norm in training mode
(weight, bias, running statistics) on resnet18-like shapes, contiguous and
channels_last: seconds per forward, and per forward + backward
(y.backward(gy), gy in y's layout; grads of input, weight and bias).
Usage: batchnorm_torch.py THREADS. Prints `key value` lines, keys
fwd_NxCxHxW_LAYOUT and fb_NxCxHxW_LAYOUT (LAYOUT contiguous or cl);
`ok 1` last."""
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("error no_torch")
    sys.exit(0)

SHAPES = [(64, 64, 32, 32), (64, 128, 16, 16), (64, 256, 8, 8), (64, 512, 4, 4)]

threads = int(sys.argv[1])
torch.set_num_threads(threads)
torch.manual_seed(0)
print("threads", torch.get_num_threads())


from torch_timing import timed  # noqa: E402


for n, c, h, w in SHAPES:
    for layout in ("contiguous", "cl"):
        fmt = torch.channels_last if layout == "cl" else torch.contiguous_format
        x = torch.randn(n, c, h, w).contiguous(memory_format=fmt)
        gy = torch.randn(n, c, h, w).contiguous(memory_format=fmt)
        rm, rv = torch.zeros(c), torch.ones(c)
        wt = torch.rand(c).add_(0.5).requires_grad_()
        b = torch.randn(c).requires_grad_()
        key = "%dx%dx%dx%d_%s" % (n, c, h, w, layout)
        with torch.no_grad():
            print("fwd_" + key, timed(lambda: F.batch_norm(x, rm, rv, wt, b, True, 0.1, 1e-5), 3, 7, 5))
        xg = x.clone().requires_grad_()
        assert xg.is_contiguous(memory_format=fmt)

        def fwd_bwd():
            xg.grad = wt.grad = b.grad = None
            y = F.batch_norm(xg, rm, rv, wt, b, True, 0.1, 1e-5)
            y.backward(gy)

        print("fb_" + key, timed(fwd_bwd, 2, 7, 3))
print("ok", 1)
