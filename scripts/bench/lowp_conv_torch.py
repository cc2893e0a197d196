"""PyTorch twin of lowp_conv.lua: bfloat16 conv2d forward and
forward+backward seconds (3x3, padding 1, bias) at the same thread count,
and a resnet18 (CIFAR stem) training step at batch 64 under
torch.autocast("cpu", torch.bfloat16). Usage: lowp_conv_torch.py THREADS
SHAPES (e.g. 2 128x32x64x14,64x128x128x16: n x c x o x hw). Prints
`key value` lines (seconds); `ok 1` last."""
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("error no_torch")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

threads = int(sys.argv[1])
shapes = [tuple(int(v) for v in s.split("x")) for s in sys.argv[2].split(",")]
torch.set_num_threads(threads)
torch.manual_seed(0)
print("threads", torch.get_num_threads())
print("version", torch.__version__)


def best(fn, warmup, repeats, inner):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


for n, c, o, hw in shapes:
    key = f"{n}x{c}x{o}x{hw}"
    x = torch.randn(n, c, hw, hw).bfloat16()
    w = (torch.randn(o, c, 3, 3) * 0.1).bfloat16()
    b = torch.randn(o).bfloat16()
    gy = torch.randn(n, o, hw, hw).bfloat16()
    with torch.no_grad():
        print("fwd_" + key, best(lambda: F.conv2d(x, w, b, padding=1), 3, 7, 3))
    xg, wg, bg = (t.clone().requires_grad_() for t in (x, w, b))

    def fb():
        xg.grad = wg.grad = bg.grad = None
        F.conv2d(xg, wg, bg, padding=1).backward(gy)

    print("fb_" + key, best(fb, 2, 7, 2))

try:
    from torch_models import resnet18_cifar

    torch.manual_seed(0)
    model = resnet18_cifar(10)
    model.train()
    x = torch.randn(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(5):
        step()
    print("resnet18_step", (time.perf_counter() - t0) / 5)
except Exception as e:  # noqa: BLE001
    print("error resnet18", repr(e).replace(" ", "_"))
print("ok", 1)
