"""PyTorch twin of train.lua: one training case in a fresh process.

Usage: train_torch.py THREADS CASE STEPS [DATADIR]
  CASE   mlp | smallcnn (one Fashion-MNIST epoch, batch 128, SGD momentum
         0.9, cross entropy) or resnet18 (one step on 3x32x32, batch 64)
  STEPS  0 = the whole epoch; N > 0 = time N steps after the warm-up and
         extrapolate the epoch from them
  DATADIR  the Fashion-MNIST IDX files (train-*.gz); when missing or empty,
         60000 random float32 images made in memory
Prints `key value` lines: step (seconds per step), epoch (seconds, measured
or extrapolated), steps (how many were timed), vmhwm_kb; `ok 1` last."""
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("error no_torch")
    sys.exit(0)

threads, case, steps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
datadir = sys.argv[4] if len(sys.argv) > 4 else ""
torch.set_num_threads(threads)
torch.manual_seed(0)
print("threads", torch.get_num_threads())


from torch_models import read_idx, resnet18_cifar, smallcnn  # noqa: E402


def vmhwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


if case == "resnet18":
    model, batch, per_epoch = resnet18_cifar(), 64, 1
    xs = torch.randn(batch, 3, 32, 32)
    ys = torch.randint(0, 10, (batch,))

    def batches():
        while True:
            yield xs, ys
else:
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10)) if case == "mlp" else smallcnn()
    batch = 128
    img = os.path.join(datadir, "train-images-idx3-ubyte.gz")
    if datadir and os.path.exists(img):
        images = read_idx(img).unsqueeze(1)
        labels = read_idx(os.path.join(datadir, "train-labels-idx1-ubyte.gz")).long()
        print("data", "fashion-mnist")
    else:
        images = torch.rand(60000, 1, 28, 28)
        labels = torch.randint(0, 10, (60000,))
        print("data", "random")
    n = images.shape[0]
    per_epoch = (n + batch - 1) // batch

    def batches():
        while True:
            perm = torch.randperm(n)
            for i in range(0, n, batch):
                idx = perm[i:i + batch]
                x = images[idx]
                yield (x.float().div_(255) if x.dtype == torch.uint8 else x), labels[idx]

model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def step(x, y):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


it = batches()
for _ in range(3):
    step(*next(it))
timed = steps if steps > 0 else per_epoch
t0 = time.perf_counter()
for _ in range(timed):
    step(*next(it))
dt = time.perf_counter() - t0
print("step", dt / timed)
print("epoch", dt / timed * per_epoch)
print("steps", timed)
print("vmhwm_kb", vmhwm_kb())
print("ok", 1)
