"""The timing loop of the PyTorch twins (conv, batchnorm, pool, elementwise,
losses): the best over `repeats` of the mean seconds of `inner`
back-to-back calls, after `warmup` calls, as benchlib.lua's B.time does on
tide's side (other tenants of a shared VM only add time)."""
import time


def timed(fn, warmup, repeats, inner):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return min(times)
