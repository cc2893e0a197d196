#!/usr/bin/python3
"""Reference vectors for reductions over several dims (sum, mean, prod,
amax, amin, var, std, all, any, norm), the dtype options (sum, mean, prod,
softmax, log_softmax, cumsum), the norms p = 0, negative, +-inf, "fro" and
"nuc", clamp with tensor bounds, index_add's alpha, split with a list of
sizes, masked_fill with a 0-dim tensor value and einsum, computed with
PyTorch 1.13.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_ops_more.py
Writes tests/reference/ops_more.json, read by tests/lua/ops_more_spec.lua.
A case holds its inputs, the op's arguments, its outputs and, for float64
inputs, the weights w of loss = sum(out * w) and the gradient of every
input (null where an input takes none); `error` cases hold the words
tide's message has, beside PyTorch's own message. all and any over a list
of dims (which PyTorch 1.13 lacks) are PyTorch's over one dim at a time.
"""
import torch

from refcases import F32, F64, I64, INF, NAN, add_error, cases, enc, jargs, leaves_of, rn, \
    tolerance, write

torch.manual_seed(20261207)
torch.set_default_dtype(torch.float64)


def add(name, op, inputs, fn, args=None, grad=True):
    leaves = leaves_of(name, inputs, grad)
    out = fn(*leaves)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    dtype = F32 if any(o.dtype == F32 for o in outs) else F64
    rtol, atol = tolerance(dtype, outs)
    case = {"name": name, "op": op, "inputs": [enc(t) for t in inputs], "args": jargs(args),
            "outputs": [enc(o) for o in outs], "rtol": rtol, "atol": atol}
    wanted = [l for l in leaves if l.requires_grad]
    if grad and wanted and len(outs) == 1 and outs[0].requires_grad:
        w = torch.randn(outs[0].shape, dtype=F64)
        gs = torch.autograd.grad((outs[0] * w).sum(), wanted, allow_unused=True)
        it = iter(gs)
        grads = []
        for l in leaves:
            g = next(it) if l.requires_grad else None
            if l.requires_grad and g is None:
                g = torch.zeros_like(l)
            grads.append(enc(g) if g is not None else None)
        case["weights"] = [enc(w)]
        case["grads"] = grads
        case["grad_atol"] = max(atol, max(tolerance(F64, [g for g in gs if g is not None])[1], 0))
    cases.append(case)


def label(v):
    return str(v).replace(" ", "").replace(",", "_").replace("[", "l").replace("]", "") \
        .replace("-", "m").replace(".", "p")


DIMS = (None, 1, -1, [0, 2], [2, 0], [-1, -3], [0, 1, 2], [1], [])


def dim_arg(dims):
    return {} if dims is None else {"dims": dims}


def tdims(dims):
    return None if dims is None else dims


# ---- sum, mean, prod over lists of dims, with dtype ---------------------
x = rn(3, 4, 5)
for op in ("sum", "mean"):
    f = getattr(torch, op)
    for dims in DIMS:
        for keep in (False, True):
            if dims is None and keep:
                continue
            args = dict(dim_arg(dims), keepdim=keep)
            if dims is None:
                fn = lambda a, f=f: f(a)
            else:
                fn = lambda a, f=f, d=dims, k=keep: f(a, d, keepdim=k)
            add(f"{op}_d{label(dims)}_k{int(keep)}", op, [x], fn, args)
    add(f"{op}_f32_dims", op, [rn(6, 7, 8, dtype=F32)], lambda a, f=f: f(a, [0, 2]),
        {"dims": [0, 2]})
    add(f"{op}_dtype_f64_from_f32", op, [rn(4, 5, dtype=F32)],
        lambda a, f=f: f(a, [1], dtype=F64), {"dims": [1], "dtype": "float64"})
    add(f"{op}_dtype_all", op, [rn(4, 5, dtype=F32)], lambda a, f=f: f(a, dtype=F64),
        {"dtype": "float64"})
    add(f"{op}_dtype_from_int", op, [torch.tensor([[1, 2, 3], [4, 5, 7]], dtype=I64)],
        lambda a, f=f: f(a, 1, dtype=F64), {"dims": 1, "dtype": "float64"})
    add(f"{op}_0dim_dims", op, [torch.tensor(2.5)], lambda a, f=f: f(a, [0], keepdim=True),
        {"dims": [0], "keepdim": True})
    add(f"{op}_4d", op, [rn(2, 3, 4, 2)], lambda a, f=f: f(a, [1, 3]), {"dims": [1, 3]})
    add_error(f"{op}_repeated", op, [x], lambda a, f=f: f(a, [0, -3]), {"dims": [0, -3]},
              "more than once")
    add_error(f"{op}_out_of_range", op, [x], lambda a, f=f: f(a, [0, 3]), {"dims": [0, 3]},
              "out of range")
add("sum_int_list", "sum", [torch.arange(24, dtype=I64).reshape(2, 3, 4)],
    lambda a: a.sum([0, 2]), {"dims": [0, 2]})
add("sum_empty_dim", "sum", [torch.zeros(2, 0, 3)], lambda a: a.sum([0, 1]), {"dims": [0, 1]})
add("prod_dim", "prod", [rn(3, 4)], lambda a: torch.prod(a, 1), {"dims": 1})
add("prod_dim_keep", "prod", [rn(3, 4)], lambda a: torch.prod(a, 0, keepdim=True),
    {"dims": 0, "keepdim": True})
add("prod_zero", "prod", [torch.tensor([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0], [1.0, 2.0, 3.0]])],
    lambda a: torch.prod(a, 1), {"dims": 1})
add("prod_dtype", "prod", [torch.tensor([[1, 2, 3], [4, 5, 7]], dtype=I64)],
    lambda a: torch.prod(a, 1, dtype=F64), {"dims": 1, "dtype": "float64"})
add("prod_dtype_all", "prod", [rn(2, 3, dtype=F32)], lambda a: torch.prod(a, dtype=F64),
    {"dtype": "float64"})
# PyTorch's prod takes one dim; over several, tide's equals one dim at a time
add("prod_dims", "prod", [rn(2, 3, 4)], lambda a: a.prod(2).prod(0), {"dims": [0, 2]})

# ---- amax and amin -----------------------------------------------------------
ties = torch.tensor([[[1.0, 3.0, 3.0], [2.0, -1.0, 3.0]], [[0.5, 0.5, 0.5], [-2.0, -2.0, 1.0]]])
for op in ("amax", "amin"):
    f = getattr(torch, op)
    for dims in DIMS:
        for keep in (False, True):
            if dims is None and keep:
                continue
            if dims is None:
                fn = lambda a, f=f: f(a)
            else:
                fn = lambda a, f=f, d=dims, k=keep: f(a, d, keepdim=k)
            add(f"{op}_d{label(dims)}_k{int(keep)}", op, [x], fn,
                dict(dim_arg(dims), keepdim=keep))
    for dims in (None, 0, 2, [0, 1], [1, 2], [0, 2]):
        fn = (lambda a, f=f: f(a)) if dims is None else (lambda a, f=f, d=dims: f(a, d))
        add(f"{op}_ties_d{label(dims)}", op, [ties], fn, dim_arg(dims))
    add(f"{op}_f32", op, [rn(5, 6, dtype=F32)], lambda a, f=f: f(a, [0, 1]), {"dims": [0, 1]})
    add(f"{op}_int", op, [torch.tensor([[3, -7, 2], [9, 0, 9]], dtype=I64)],
        lambda a, f=f: f(a, 1), {"dims": 1})
    add(f"{op}_nan", op, [torch.tensor([[1.0, NAN, 2.0], [4.0, 5.0, 6.0]])],
        lambda a, f=f: f(a, 1), {"dims": 1}, grad=False)
    add(f"{op}_0dim", op, [torch.tensor(-1.5)], lambda a, f=f: f(a), {})
    add_error(f"{op}_empty", op, [torch.zeros(2, 0)], lambda a, f=f: f(a, 1), {"dims": 1},
              "empty")
    add_error(f"{op}_repeated", op, [x], lambda a, f=f: f(a, [1, 1]), {"dims": [1, 1]},
              "more than once")

# ---- var and std over lists of dims ------------------------------------------
for op in ("var", "std"):
    f = getattr(torch, op)
    for dims in ([0, 2], [2, 0], [-1, 0, 1], [1]):
        for keep in (False, True):
            add(f"{op}_d{label(dims)}_k{int(keep)}", op, [x],
                lambda a, f=f, d=dims, k=keep: f(a, d, keepdim=k),
                {"dims": dims, "keepdim": keep})
    for corr in (0, 2):
        add(f"{op}_d02_c{corr}", op, [x], lambda a, f=f, c=corr: f(a, [0, 2], correction=c),
            {"dims": [0, 2], "correction": corr})
    add(f"{op}_f32_dims", op, [rn(4, 5, 6, dtype=F32)], lambda a, f=f: f(a, [0, 1]),
        {"dims": [0, 1]})

# ---- all and any over lists of dims --------------------------------------------
logic = torch.tensor([[[1.0, 0.0, 2.0], [3.0, 4.0, NAN]], [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]])
for op in ("all", "any"):
    f = getattr(torch, op)
    add(f"{op}_d02", op, [logic], lambda a, f=f: f(f(a, 2), 0), {"dims": [0, 2]})
    add(f"{op}_d20_k", op, [logic], lambda a, f=f: f(f(a, 2, keepdim=True), 0, keepdim=True),
        {"dims": [2, 0], "keepdim": True})
    add(f"{op}_d01_int", op, [torch.tensor([[0, 5], [2, 3]], dtype=I64)],
        lambda a, f=f: f(f(a, 1), 0), {"dims": [0, 1]})
    add(f"{op}_dm1", op, [logic], lambda a, f=f: f(a, -1), {"dims": -1})

# ---- norm: p = 0, negative, +-inf, fro, nuc, over lists of dims ---------------
nz = rn(3, 4, 5)
nz = nz + nz.sign() * 0.1  # away from 0, where negative p and p < 1 blow up
withzero = torch.tensor([[0.0, 1.5, -2.0], [0.0, 0.0, 3.0]])
for p in (0, 1, 2, 3, 0.5, -1, -2.5, INF, -INF, "fro"):
    pl = label(p)
    for dims in (None, 1, [0, 2], [2, 0], [-1]):
        for keep in (False, True):
            if dims is None and keep:
                continue
            if dims is None:
                fn = lambda a, p=p: torch.norm(a, p)
            else:
                fn = lambda a, p=p, d=dims, k=keep: torch.norm(a, p, dim=d, keepdim=k)
            add(f"norm_p{pl}_d{label(dims)}_k{int(keep)}", "norm", [nz], fn,
                dict(dim_arg(dims), p=p, keepdim=keep))
    add(f"norm_p{pl}_f32", "norm", [rn(4, 6, dtype=F32)],
        lambda a, p=p: torch.norm(a, p, dim=[0, 1]), {"p": p, "dims": [0, 1]})
for p in (0, 1, 2, 3, INF, -INF, -1):
    add(f"norm_p{label(p)}_zeros", "norm", [withzero], lambda a, p=p: torch.norm(a, p, dim=1),
        {"p": p, "dims": 1}, grad=p not in (-1, 1, -INF))
infties = torch.tensor([[3.0, -3.0, 1.0], [-2.0, 2.0, -2.0]])
add("norm_pinf_ties", "norm", [infties], lambda a: torch.norm(a, INF, dim=1), {"p": INF, "dims": 1})
add("norm_pminf_ties", "norm", [infties], lambda a: torch.norm(a, -INF, dim=[0, 1]),
    {"p": -INF, "dims": [0, 1]})
add("norm_dtype", "norm", [rn(3, 4, dtype=F32)], lambda a: torch.norm(a, 2, dim=1, dtype=F64),
    {"p": 2, "dims": 1, "dtype": "float64"})
add("norm_nuc_2d", "norm", [rn(4, 3)], lambda a: torch.norm(a, "nuc"), {"p": "nuc"})
add("norm_nuc_wide", "norm", [rn(2, 5)], lambda a: torch.norm(a, "nuc"), {"p": "nuc"})
add("norm_nuc_keep", "norm", [rn(3, 3)], lambda a: torch.norm(a, "nuc", keepdim=True),
    {"p": "nuc", "keepdim": True})
add("norm_nuc_batch", "norm", [rn(2, 3, 4)], lambda a: torch.norm(a, "nuc", dim=(1, 2)),
    {"p": "nuc", "dims": [1, 2]})
add("norm_nuc_batch_mid", "norm", [rn(3, 2, 4)],
    lambda a: torch.norm(a, "nuc", dim=(2, 0), keepdim=True),
    {"p": "nuc", "dims": [2, 0], "keepdim": True})
add("norm_nuc_f32", "norm", [rn(5, 4, dtype=F32)], lambda a: torch.norm(a, "nuc"), {"p": "nuc"})
add_error("norm_repeated", "norm", [nz], lambda a: torch.norm(a, 2, dim=[1, -2]),
          {"p": 2, "dims": [1, -2]}, "more than once")

# ---- dtype options of softmax, log_softmax, cumsum -------------------------------
for op in ("softmax", "log_softmax"):
    f = getattr(torch, op)
    add(f"{op}_dtype_f64", op, [rn(3, 5, dtype=F32)], lambda a, f=f: f(a, 1, dtype=F64),
        {"dims": 1, "dtype": "float64"})
    add(f"{op}_dtype_f32", op, [rn(3, 5)], lambda a, f=f: f(a, 0, dtype=F32),
        {"dims": 0, "dtype": "float32"})
    add(f"{op}_dtype_same", op, [rn(2, 4)], lambda a, f=f: f(a, -1, dtype=F64),
        {"dims": -1, "dtype": "float64"})
add("cumsum_dtype_int", "cumsum", [torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=I64)],
    lambda a: torch.cumsum(a, 1, dtype=F64), {"dims": 1, "dtype": "float64"})
add("cumsum_dtype_f32", "cumsum", [rn(3, 4, dtype=F32)], lambda a: torch.cumsum(a, 0, dtype=F64),
    {"dims": 0, "dtype": "float64"})

# ---- clamp with tensor bounds -----------------------------------------------------
cx = torch.tensor([[-2.0, -0.5, 0.0, 0.5, 2.0], [1.0, 0.25, -1.0, 3.0, -0.75]])
clo = torch.tensor([-1.0, 0.0, 0.0, 1.0, -3.0])
chi = torch.tensor([[1.0], [0.5]])
add("clamp_both", "clamp", [cx, clo, chi], lambda a, l, h: torch.clamp(a, l, h),
    {"min": True, "max": True})
add("clamp_min", "clamp", [cx, clo], lambda a, l: torch.clamp(a, min=l), {"min": True})
add("clamp_max", "clamp", [cx, chi], lambda a, h: torch.clamp(a, max=h), {"max": True})
add("clamp_crossed", "clamp", [cx, torch.full((5,), 0.5), torch.full((5,), -0.5)],
    lambda a, l, h: torch.clamp(a, l, h), {"min": True, "max": True})
add("clamp_broadcast_up", "clamp", [torch.tensor([-1.0, 0.5, 2.0]), torch.zeros(2, 1),
                                    torch.ones(2, 3)],
    lambda a, l, h: torch.clamp(a, l, h), {"min": True, "max": True})
add("clamp_f32", "clamp", [rn(3, 4, dtype=F32), rn(4, dtype=F32), rn(3, 1, dtype=F32) + 1],
    lambda a, l, h: torch.clamp(a, l, h), {"min": True, "max": True})
add("clamp_nan", "clamp", [torch.tensor([NAN, 1.0, -5.0]), torch.tensor([0.0, NAN, 0.0])],
    lambda a, l: torch.clamp(a, min=l), {"min": True}, grad=False)

# ---- index_add with alpha ----------------------------------------------------------
ix = rn(5, 3)
isrc = rn(4, 3)
iidx = torch.tensor([0, 4, 2, 0])
for alpha in (1, 2.5, -1):
    add(f"index_add_alpha{label(alpha)}", "index_add", [ix, iidx, isrc],
        lambda a, i, s, al=alpha: a.index_add(0, i, s, alpha=al), {"dims": 0, "alpha": alpha})
add("index_add_alpha_dim1", "index_add", [rn(2, 4), torch.tensor([3, 1]), rn(2, 2)],
    lambda a, i, s: a.index_add(1, i, s, alpha=0.5), {"dims": 1, "alpha": 0.5})
add("index_add_alpha_int", "index_add", [torch.zeros(3, dtype=I64), torch.tensor([1, 1]),
                                         torch.tensor([2, 5])],
    lambda a, i, s: a.index_add(0, i, s, alpha=3), {"dims": 0, "alpha": 3})

# ---- split with a list of sizes, and split's remainder --------------------------------
sx = torch.arange(30.0).reshape(10, 3)
add("split_sizes", "split", [sx], lambda a: a.split([2, 3, 5]), {"sizes": [2, 3, 5]})
add("split_sizes_zero", "split", [sx], lambda a: a.split([0, 10, 0]), {"sizes": [0, 10, 0]})
add("split_sizes_dim1", "split", [sx], lambda a: a.split([1, 2], 1), {"sizes": [1, 2], "dims": 1})
add("split_sizes_neg_dim", "split", [sx], lambda a: a.split([2, 1], -1),
    {"sizes": [2, 1], "dims": -1})
add("split_int_remainder", "split", [sx], lambda a: a.split(4), {"sizes": 4})
add("split_int_dim1", "split", [sx], lambda a: a.split(2, 1), {"sizes": 2, "dims": 1})
add("split_int_bigger", "split", [sx], lambda a: a.split(20), {"sizes": 20})
add_error("split_sizes_short", "split", [sx], lambda a: a.split([2, 3]), {"sizes": [2, 3]},
          "sum exactly to 10")
add_error("split_sizes_long", "split", [sx], lambda a: a.split([5, 6]), {"sizes": [5, 6]},
          "sum exactly to 10")

# ---- masked_fill with a 0-dim tensor value --------------------------------------------
mx = rn(3, 4)
mask = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 1]], dtype=torch.bool)
add("masked_fill_tensor", "masked_fill", [mx, mask, torch.tensor(2.5)],
    lambda a, m, v: a.masked_fill(m, v))
add("masked_fill_tensor_bcast", "masked_fill", [mx, torch.tensor([True, False, True, False]),
                                               torch.tensor(-1.0)],
    lambda a, m, v: a.masked_fill(m, v))
add("masked_fill_tensor_none", "masked_fill", [mx, torch.zeros(3, 4, dtype=torch.bool),
                                              torch.tensor(7.0)],
    lambda a, m, v: a.masked_fill(m, v))
add("masked_fill_tensor_f32", "masked_fill", [rn(2, 3, dtype=F32),
                                             torch.tensor([[True, False, True]] * 2),
                                             torch.tensor(0.5, dtype=F32)],
    lambda a, m, v: a.masked_fill(m, v))
add("masked_fill_tensor_int", "masked_fill", [torch.tensor([1, 2, 3]),
                                             torch.tensor([False, True, True]),
                                             torch.tensor(9)],
    lambda a, m, v: a.masked_fill(m, v))
add_error("masked_fill_tensor_1dim", "masked_fill", [mx, mask, torch.tensor([2.5])],
          lambda a, m, v: a.masked_fill(m, v), {}, "0-dim")

# ---- einsum -----------------------------------------------------------------------
EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ba,ac", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(4, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(2, 5)]),
    ("ijk->", [(2, 3, 4)]),
    ("ijk->kj", [(2, 3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...ij->...", [(2, 3, 4)]),
    ("i...->...", [(3, 2, 2)]),
    ("a...,a->...", [(3, 4, 2), (3,)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("ab,ab,ab->", [(2, 3), (2, 3), (2, 3)]),
    ("Ab,bC->AC", [(2, 3), (3, 4)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,kl->ijkl", [(2, 2), (3, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("i,i,i->i", [(4,), (4,), (4,)]),
    ("ij,j", [(3, 1), (4,)]),
    (" i j , j k -> i k ", [(2, 3), (3, 2)]),
]
for k, (eq, shapes) in enumerate(EINSUM):
    ops = [rn(*s) for s in shapes]
    add(f"einsum_{k:02d}", "einsum", ops, lambda *a, e=eq: torch.einsum(e, *a), {"equation": eq})
add("einsum_f32", "einsum", [rn(3, 4, dtype=F32), rn(4, 2, dtype=F32)],
    lambda a, b: torch.einsum("ij,jk->ik", a, b), {"equation": "ij,jk->ik"})
add("einsum_int", "einsum", [torch.tensor([[1, 2], [3, 4]]), torch.tensor([5, 6])],
    lambda a, b: torch.einsum("ij,j->i", a, b), {"equation": "ij,j->i"})
add_error("einsum_bad_output", "einsum", [rn(2, 3), rn(3, 4)],
          lambda a, b: torch.einsum("ij,jk->il", a, b), {"equation": "ij,jk->il"},
          "does not appear")
add_error("einsum_count", "einsum", [rn(2, 3)], lambda a: torch.einsum("ijk->i", a),
          {"equation": "ijk->i"}, "number of subscripts")
add_error("einsum_operands", "einsum", [rn(2, 3)], lambda a: torch.einsum("ij,jk->ik", a),
          {"equation": "ij,jk->ik"}, "operands were provided")
add_error("einsum_diag_sizes", "einsum", [rn(2, 3)], lambda a: torch.einsum("ii->i", a),
          {"equation": "ii->i"}, "repeated")
add_error("einsum_sizes", "einsum", [rn(2, 3), rn(4, 2)],
          lambda a, b: torch.einsum("ij,jk->ik", a, b), {"equation": "ij,jk->ik"}, "broadcast")
add_error("einsum_repeat_out", "einsum", [rn(2, 3)], lambda a: torch.einsum("ij->ii", a),
          {"equation": "ij->ii"}, "more than once")

write("gen_ops_more.py", "ops_more.json")
