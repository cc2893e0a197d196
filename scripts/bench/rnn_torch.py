"""PyTorch twin of rnn.lua: float32 nn.LSTM (or nn.GRU) (I, H,
num_layers=L) on a (T, N, I) input: seconds per forward, and per forward +
backward (grads of the input and every parameter from (y * gy).sum()).
Usage: rnn_torch.py THREADS T N I H L [LSTM|GRU]. Prints `key value`
lines; `ok 1` last."""
import sys

try:
    import torch
except ImportError:
    print("error no_torch")
    sys.exit(0)

threads, T, n, i, h, layers = (int(v) for v in sys.argv[1:7])
mode = sys.argv[7] if len(sys.argv) > 7 else "LSTM"
torch.set_num_threads(threads)
torch.manual_seed(0)
print("threads", torch.get_num_threads())

m = getattr(torch.nn, mode)(i, h, num_layers=layers)
x = torch.randn(T, n, i)


from torch_timing import timed  # noqa: E402


with torch.no_grad():
    print("forward", timed(lambda: m(x), 1, 3, 1))

xg = x.clone().requires_grad_()
gy = torch.randn(T, n, h)


def fwd_bwd():
    xg.grad = None
    m.zero_grad()
    y, _ = m(xg)
    (y * gy).sum().backward()


print("forward_backward", timed(fwd_bwd, 1, 3, 1))
print("ok", 1)
