"""PyTorch twin of gpu_train.lua, on the same GPU.

Usage: gpu_train_torch.py CASE STEPS [DATADIR]
  CASE   resnet18 (STEPS training steps at batch 256 on random 3x32x32
         images, after 5 warm-up steps), smallcnn (one Fashion-MNIST epoch
         at batch 128, batches moved to the GPU one by one) or all
  DATADIR  the Fashion-MNIST IDX files (train-*.gz); random images when
         missing or empty
Same rules as tide: cudnn.benchmark and cudnn.deterministic on, TF32 off
(on for both when TIDE_CUDNN_TF32=1). Prints `key value` lines:
resnet18_ips (images per second), smallcnn_epoch (seconds); `ok 1` last."""
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

if not torch.cuda.is_available():
    print("error no_gpu")
    print("note PyTorch sees no GPU")
    sys.exit(0)

case, steps = sys.argv[1], int(sys.argv[2])
datadir = sys.argv[3] if len(sys.argv) > 3 else ""
tf32 = os.environ.get("TIDE_CUDNN_TF32", "0") not in ("", "0")
torch.backends.cudnn.benchmark = True
torch.backends.cudnn.deterministic = True
torch.backends.cudnn.allow_tf32 = tf32
torch.backends.cuda.matmul.allow_tf32 = False
dev = torch.device("cuda")
print("device", torch.cuda.get_device_name(0).replace(" ", "_"))


from torch_models import read_idx, resnet18_cifar, smallcnn  # noqa: E402


def trainer(model):
    model.to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def run_resnet18():
    torch.manual_seed(0)
    step = trainer(resnet18_cifar())
    x = torch.randn(256, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (256,), device=dev)
    for _ in range(5):
        step(x, y)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    print("resnet18_step", dt)
    print("resnet18_ips", 256 / dt)


def run_smallcnn():
    torch.manual_seed(0)
    step = trainer(smallcnn())
    img = os.path.join(datadir, "train-images-idx3-ubyte.gz")
    if datadir and os.path.exists(img):
        images = read_idx(img).unsqueeze(1)
        labels = read_idx(os.path.join(datadir, "train-labels-idx1-ubyte.gz")).long()
    else:
        images = torch.rand(60000, 1, 28, 28)
        labels = torch.randint(0, 10, (60000,))
    n, batch = images.shape[0], 128

    def batches():
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            x = images[idx]
            yield (x.float().div_(255) if x.dtype == torch.uint8 else x), labels[idx]

    for i, (x, y) in enumerate(batches()):
        step(x.to(dev), y.to(dev))
        if i == 2:
            break
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for x, y in batches():
        step(x.to(dev), y.to(dev))
    torch.cuda.synchronize()
    print("smallcnn_epoch", time.perf_counter() - t0)


if case in ("resnet18", "all"):
    run_resnet18()
if case in ("smallcnn", "all"):
    run_smallcnn()
print("ok", 1)
