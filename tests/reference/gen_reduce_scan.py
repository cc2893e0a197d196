#!/usr/bin/python3
"""Reference vectors for all, any, logsumexp, cumsum, cumprod and
F.one_hot, computed with PyTorch.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_reduce_scan.py
Writes tests/reference/reduce_scan.json, read by tests/lua/reduce_scan_spec.lua.
The case format is gen_core.py's (inputs, args, outputs, and for float64
cases the weights and gradients of loss = sum(out * w)); `error` cases
hold the words PyTorch's error and tide's share instead of outputs.
all and any are uint8 in tide (bool in PyTorch).
"""
import torch
import torch.nn.functional as F

from refcases import F32, F64, I64, INF, NAN, U8, add_error, cases, enc, leaves_of, rn, \
    tolerance, write

torch.manual_seed(20261128)
torch.set_default_dtype(torch.float64)


def add(name, op, inputs, fn, args=None, grad=True):
    leaves = leaves_of(name, inputs, grad)
    out = fn(*leaves)
    dtype = inputs[0].dtype if inputs[0].is_floating_point() else F32
    rtol, atol = tolerance(dtype, [out])
    case = {"name": name, "op": op, "inputs": [enc(t) for t in inputs], "args": args or {},
            "outputs": [enc(out)], "rtol": rtol, "atol": atol}
    if grad and out.requires_grad:
        w = torch.randn(out.shape, dtype=F64)
        g, = torch.autograd.grad((out * w).sum(), leaves[0])
        case["weights"] = [enc(w)]
        case["grads"] = [enc(g)]
        case["grad_atol"] = max(atol, tolerance(F64, [g])[1])
    cases.append(case)


# ---- all and any --------------------------------------------------------
mixed = torch.tensor([[1.0, 0.0, NAN], [2.0, 3.0, 4.0], [0.0, 0.0, 0.0]])
ints = torch.tensor([[0, 5, -1], [2, 3, 4]], dtype=I64)
bytes_ = torch.tensor([[1, 0], [255, 7]], dtype=U8)
for op in ("all", "any"):
    f = getattr(torch, op)
    for tname, t in (("f64", mixed), ("f32", mixed.float()), ("i64", ints), ("u8", bytes_)):
        add(f"{op}_{tname}", op, [t], lambda a: f(a))
        for dim in range(-t.dim(), t.dim()):
            for keep in (False, True):
                add(f"{op}_{tname}_d{dim}_k{int(keep)}", op, [t],
                    lambda a, d=dim, k=keep: f(a, d, keepdim=k), {"dim": dim, "keepdim": keep})
    add(f"{op}_empty", op, [torch.zeros(0)], lambda a: f(a))
    add(f"{op}_empty_rows", op, [torch.zeros(3, 0)], lambda a: f(a, 1), {"dim": 1})
    add(f"{op}_empty_cols", op, [torch.zeros(0, 3)], lambda a: f(a, 0), {"dim": 0})
    add(f"{op}_0dim", op, [torch.tensor(0.0)], lambda a: f(a))
    add(f"{op}_0dim_dim", op, [torch.tensor(2, dtype=I64)], lambda a: f(a, -1, keepdim=True),
        {"dim": -1, "keepdim": True})
    add(f"{op}_nan_only", op, [torch.tensor([NAN, NAN])], lambda a: f(a))
    big = (torch.rand(3, 300, 2) > 0.002).double()
    add(f"{op}_3d_mid", op, [big], lambda a: f(a, 1), {"dim": 1})
    add_error(f"{op}_bad_dim", op, [mixed], lambda a: f(a, 2), {"dim": 2}, "out of range")

# ---- logsumexp --------------------------------------------------------------
x = rn(3, 4, 5)
for dims in (0, 1, 2, -1, [0], [0, 2], [2, 0], [-1, -3], [0, 1, 2], [1, -1]):
    for keep in (False, True):
        label = str(dims).replace(" ", "").replace(",", "_").replace("[", "l").replace("]", "")
        add(f"logsumexp_d{label}_k{int(keep)}", "logsumexp", [x],
            lambda a, d=dims, k=keep: torch.logsumexp(a, d, keepdim=k),
            {"dim": dims, "keepdim": keep})
add("logsumexp_f32", "logsumexp", [rn(4, 6, dtype=F32)], lambda a: torch.logsumexp(a, 1),
    {"dim": 1})
add("logsumexp_large", "logsumexp", [torch.tensor([[1e4, 1e4 - 1, -1e4], [-1e4, -1e4, 3.0]])],
    lambda a: torch.logsumexp(a, 1), {"dim": 1})
add("logsumexp_large_f32", "logsumexp",
    [torch.tensor([[1e30, 1e30, -1e30], [-88.0, -104.0, -1e30]], dtype=F32)],
    lambda a: torch.logsumexp(a, 1), {"dim": 1})
add("logsumexp_inf_rows", "logsumexp",
    [torch.tensor([[1.0, 2.0], [-INF, -INF], [INF, 1.0], [INF, INF], [NAN, 1.0], [-INF, INF],
                   [-INF, 0.5]])],
    lambda a: torch.logsumexp(a, 1), {"dim": 1}, grad=False)
# the gradient where PyTorch's is finite: -inf entries of a finite row get 0
add("logsumexp_neg_inf_entry", "logsumexp", [torch.tensor([[-INF, 0.5, 1.5], [2.0, -1.0, 0.0]])],
    lambda a: torch.logsumexp(a, 1), {"dim": 1})
add("logsumexp_0dim", "logsumexp", [torch.tensor(1.5)], lambda a: torch.logsumexp(a, 0),
    {"dim": 0})
add("logsumexp_empty_dim", "logsumexp", [torch.zeros(2, 0)], lambda a: torch.logsumexp(a, 1),
    {"dim": 1}, grad=False)
add("logsumexp_empty_rows", "logsumexp", [torch.zeros(0, 3)], lambda a: torch.logsumexp(a, 1),
    {"dim": 1}, grad=False)
torch.set_default_dtype(torch.float32)  # integers give the default dtype
add("logsumexp_int64", "logsumexp", [torch.tensor([[1, 2, 3], [-4, 0, 9]], dtype=I64)],
    lambda a: torch.logsumexp(a, 1), {"dim": 1})
torch.set_default_dtype(torch.float64)
add_error("logsumexp_repeated_dim", "logsumexp", [x], lambda a: torch.logsumexp(a, (0, 0)),
          {"dim": [0, -3]}, "more than once")
add_error("logsumexp_bad_dim", "logsumexp", [x], lambda a: torch.logsumexp(a, 3), {"dim": 3},
          "out of range")

# ---- cumsum and cumprod -----------------------------------------------------
x = rn(3, 4, 5)
for op in ("cumsum", "cumprod"):
    f = getattr(torch, op)
    for dim in (0, 1, 2, -1, -3):
        add(f"{op}_d{dim}", op, [x], lambda a, d=dim: f(a, d), {"dim": dim})
    add(f"{op}_f32", op, [rn(4, 70, dtype=F32)], lambda a: f(a, 1), {"dim": 1})
    add(f"{op}_i64", op, [torch.tensor([[1, -2, 3], [4, 5, -6]], dtype=I64)],
        lambda a: f(a, 1), {"dim": 1})
    add(f"{op}_u8", op, [torch.tensor([200, 100, 3], dtype=U8)], lambda a: f(a, 0), {"dim": 0})
    add(f"{op}_dtype_f64", op, [torch.tensor([1, 2, 3], dtype=I64)],
        lambda a: f(a, 0, dtype=F64), {"dim": 0, "dtype": "float64"})
    add(f"{op}_dtype_u8", op, [torch.tensor([200, 100, 3], dtype=I64)],
        lambda a: f(a, 0, dtype=U8), {"dim": 0, "dtype": "uint8"})
    add(f"{op}_0dim", op, [torch.tensor(2.5)], lambda a: f(a, 0), {"dim": 0})
    add(f"{op}_empty", op, [torch.zeros(0, 3)], lambda a: f(a, 0), {"dim": 0}, grad=False)
    add(f"{op}_nan", op, [torch.tensor([1.0, NAN, 2.0])], lambda a: f(a, 0), {"dim": 0},
        grad=False)
    add(f"{op}_len1", op, [rn(3, 1)], lambda a: f(a, 1), {"dim": 1})
    add(f"{op}_long", op, [torch.rand(2, 400) + 0.5], lambda a: f(a, 1), {"dim": 1})
    add_error(f"{op}_bad_dim", op, [x], lambda a: f(a, 3), {"dim": 3}, "out of range")
# zeros in cumprod's input: PyTorch's exact rule, a zero first, last, twice, alone
zeros = torch.tensor([[2.0, 0.0, 3.0, 0.0, 5.0],
                      [0.0, 3.0, 4.0, 0.5, 2.0],
                      [2.0, 3.0, 0.5, 1.5, 0.0],
                      [0.0, 0.0, 1.0, 2.0, 3.0],
                      [1.5, -2.0, 0.0, 4.0, -1.0],
                      [1.5, -2.0, 0.7, 4.0, -1.0]])
add("cumprod_zeros_d1", "cumprod", [zeros], lambda a: torch.cumprod(a, 1), {"dim": 1})
add("cumprod_zeros_d0", "cumprod", [zeros.t().contiguous()], lambda a: torch.cumprod(a, 0),
    {"dim": 0})
add("cumprod_zero_len1", "cumprod", [torch.tensor([[0.0], [2.0]])],
    lambda a: torch.cumprod(a, 1), {"dim": 1})

# ---- F.one_hot -------------------------------------------------------------
add("one_hot_infer", "one_hot", [torch.tensor([0, 2, 1], dtype=I64)], lambda a: F.one_hot(a))
add("one_hot_classes", "one_hot", [torch.tensor([[0, 3], [1, 1]], dtype=I64)],
    lambda a: F.one_hot(a, 5), {"num_classes": 5})
add("one_hot_0dim", "one_hot", [torch.tensor(1, dtype=I64)], lambda a: F.one_hot(a, 3),
    {"num_classes": 3})
add("one_hot_empty", "one_hot", [torch.zeros(0, dtype=I64)], lambda a: F.one_hot(a, 4),
    {"num_classes": 4})
add("one_hot_minus1", "one_hot", [torch.tensor([3, 0], dtype=I64)], lambda a: F.one_hot(a, -1),
    {"num_classes": -1})
add_error("one_hot_negative", "one_hot", [torch.tensor([0, -1], dtype=I64)],
          lambda a: F.one_hot(a), {}, "non-negative")
add_error("one_hot_too_big", "one_hot", [torch.tensor([0, 3], dtype=I64)],
          lambda a: F.one_hot(a, 3), {"num_classes": 3}, "outside [0, 3)")
add_error("one_hot_empty_infer", "one_hot", [torch.zeros(0, dtype=I64)], lambda a: F.one_hot(a),
          {}, "empty tensor")
add_error("one_hot_float", "one_hot", [torch.tensor([0.0, 1.0])], lambda a: F.one_hot(a), {},
          "must be int64")
add_error("one_hot_zero_classes", "one_hot", [torch.tensor([0, 1], dtype=I64)],
          lambda a: F.one_hot(a, 0), {"num_classes": 0}, "outside [0, 0)")

write("gen_reduce_scan.py", "reduce_scan.json")
