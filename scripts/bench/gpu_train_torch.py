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
import gzip
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


def smallcnn(num_classes=10, in_channels=1):
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*block(in_channels, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2),
                         *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


def resnet18_cifar(num_classes=10):
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


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
