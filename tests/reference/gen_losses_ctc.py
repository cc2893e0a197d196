#!/usr/bin/python3
"""Reference cases for tide's ctc_loss, from PyTorch 1.13 (Debian's python3-torch).

Writes tests/reference/losses_ctc.json, committed as data so the tests need
no Python. Run with Debian's interpreter: /usr/bin/python3 gen_losses_ctc.py

Each case holds log_probs (T, N, C) or unbatched (T, C), the targets, the
lengths, the options, the loss, and the gradient of (loss * w).sum() with
respect to log_probs as a leaf. That gradient is PyTorch's convention for
CTC: exp(log_probs) - occupation probabilities, the gradient with respect to
the logits through a log_softmax, not the plain partial derivative with
respect to log_probs (the two agree once a log_softmax is in the graph; the
generator checks that too).
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
cases = []


def tensor_spec(t):
    t = t.detach()
    dtype = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64"}[t.dtype]
    values = [float(v) if t.is_floating_point() else int(v) for v in t.reshape(-1).tolist()]
    return {"values": values, "shape": list(t.shape), "dtype": dtype}


def add(name, lp, targets, il, tl, blank=0, reduction="mean", zero_infinity=False, lengths_as="list",
        transpose=False):
    """lp: the log_probs (T, N, C) or (T, C); il, tl: lists, or ints for unbatched 0-dim lengths"""
    leaf = lp.detach().clone().requires_grad_(True)
    il_t, tl_t = torch.tensor(il, dtype=torch.int64), torch.tensor(tl, dtype=torch.int64)
    loss = F.ctc_loss(leaf, targets, il_t, tl_t, blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    if loss.dim() == 0:
        w = torch.tensor(0.75, dtype=lp.dtype)
    else:
        w = torch.randn(loss.shape, dtype=lp.dtype)
    (loss * w).sum().backward()
    case = {
        "name": name,
        "targets": tensor_spec(targets),
        "input_lengths": il,
        "target_lengths": tl,
        "lengths_as": lengths_as,
        "options": {"blank": blank, "reduction": reduction, "zero_infinity": zero_infinity},
        "weight": tensor_spec(w),
        "loss": tensor_spec(loss),
        "grad": tensor_spec(leaf.grad),
    }
    if transpose:
        # stored as (N, T, C); the test transposes dims 0 and 1 back, so it
        # hands ctc_loss a non-contiguous view
        case["log_probs"] = tensor_spec(lp.transpose(0, 1).contiguous())
        case["transpose"] = True
    else:
        case["log_probs"] = tensor_spec(lp)
    cases.append(case)


def logp(T, N, C, dtype=torch.float64, scale=1.0):
    shape = (T, C) if N is None else (T, N, C)
    return (torch.randn(shape, dtype=torch.float64) * scale).to(dtype).log_softmax(-1)


def padded(rows, S, pad=0):
    return torch.tensor([r + [pad] * (S - len(r)) for r in rows], dtype=torch.int64)


def concat(rows):
    return torch.tensor([v for r in rows for v in r], dtype=torch.int64)


# ---- padded and concatenated targets, every reduction ------------------------
rows = [[1, 2, 3], [4, 1], [2]]
for red in ("mean", "sum", "none"):
    add("padded_" + red, logp(6, 3, 5), padded(rows, 3), [6, 5, 4], [3, 2, 1], reduction=red)
    add("concat_" + red, logp(6, 3, 5), concat(rows), [6, 5, 4], [3, 2, 1], reduction=red)

# padding beyond each target's length is never read, whatever it holds
add("padded_garbage_padding", logp(7, 3, 5), padded([[1, 2], [3], [4, 4]], 4, pad=-1), [7, 6, 7], [2, 1, 2],
    reduction="none")

# ---- repeated labels need a blank between them ------------------------------
# [3, 3, 3] needs at least 5 frames: 5 is the tightest feasible length
add("repeated_labels", logp(8, 3, 5), padded([[1, 1, 2], [3, 3, 3], [2, 2]], 3), [8, 5, 3], [3, 3, 2],
    reduction="none")
add("repeated_labels_sum", logp(8, 2, 4), padded([[1, 1, 1, 2], [3, 3]], 4), [8, 8], [4, 2], reduction="sum")

# ---- varying input and target lengths, empty targets ------------------------
add("varying_lengths", logp(10, 4, 6), padded([[1, 2, 3, 4], [], [5, 5], []], 4), [10, 7, 3, 1], [4, 0, 2, 0],
    reduction="none")
add("varying_lengths_mean", logp(10, 4, 6), padded([[1, 2, 3, 4], [], [5, 5], []], 4), [10, 7, 3, 1],
    [4, 0, 2, 0], reduction="mean")
add("empty_targets", logp(5, 2, 3), torch.zeros(2, 0, dtype=torch.int64), [5, 3], [0, 0], reduction="mean")

# ---- impossible alignments: inf, NaN gradients, or 0 with zero_infinity -----
imp_rows = [[1, 2], [2, 2], [1, 2, 3]]
imp_il, imp_tl = [6, 2, 2], [2, 2, 3]  # [2, 2] in 2 frames and 3 labels in 2 frames: impossible
add("impossible_none", logp(6, 3, 4), padded(imp_rows, 3), imp_il, imp_tl, reduction="none")
add("impossible_mean", logp(6, 3, 4), padded(imp_rows, 3), imp_il, imp_tl, reduction="mean")
add("impossible_zero_inf_none", logp(6, 3, 4), padded(imp_rows, 3), imp_il, imp_tl, reduction="none",
    zero_infinity=True)
add("impossible_zero_inf_mean", logp(6, 3, 4), padded(imp_rows, 3), imp_il, imp_tl, reduction="mean",
    zero_infinity=True)
add("impossible_zero_inf_sum", logp(6, 3, 4), concat(imp_rows), imp_il, imp_tl, reduction="sum",
    zero_infinity=True)
add("zero_inf_all_finite", logp(6, 2, 4), padded([[1, 2], [3]], 2), [6, 4], [2, 1], reduction="sum",
    zero_infinity=True)

# ---- blank other than 0 -----------------------------------------------------
add("blank_last", logp(7, 3, 5), padded([[0, 1, 2], [3, 3], [0]], 3), [7, 6, 5], [3, 2, 1], blank=4,
    reduction="mean")
add("blank_middle", logp(7, 2, 5), concat([[0, 1, 3], [4, 4]]), [7, 7], [3, 2], blank=2, reduction="none")

# ---- float32 ---------------------------------------------------------------
add("f32_mean", logp(8, 3, 6, torch.float32), padded([[1, 2, 3], [4, 4], [5]], 3), [8, 7, 6], [3, 2, 1])
add("f32_sum_concat", logp(8, 3, 6, torch.float32), concat([[1, 2, 3], [4, 4], [5]]), [8, 7, 6], [3, 2, 1],
    reduction="sum")
add("f32_none_blank", logp(8, 2, 6, torch.float32), padded([[0, 1, 0], [2, 3]], 3), [8, 5], [3, 2], blank=5,
    reduction="none")
add("f32_impossible_zero_inf", logp(4, 2, 3, torch.float32), padded([[1, 1, 1], [2]], 3), [4, 4], [3, 1],
    reduction="mean", zero_infinity=True)

# ---- unbatched (T, C) -------------------------------------------------------
add("unbatched_mean", logp(6, None, 5), torch.tensor([1, 3, 3], dtype=torch.int64), 6, 3)
add("unbatched_none", logp(6, None, 5), torch.tensor([2, 4], dtype=torch.int64), 5, 2, reduction="none")
add("unbatched_sum_list", logp(6, None, 5), torch.tensor([2, 4], dtype=torch.int64), [6], [2], reduction="sum")
add("unbatched_f32", logp(5, None, 4, torch.float32), torch.tensor([1, 2], dtype=torch.int64), 5, 2,
    reduction="sum")

# ---- lengths as tensors, non-contiguous log_probs, long sequences -----------
add("lengths_tensors", logp(6, 3, 5), padded(rows, 3), [6, 5, 4], [3, 2, 1], lengths_as="tensor",
    reduction="none")
add("transposed_log_probs", logp(6, 3, 5), padded(rows, 3), [6, 6, 5], [3, 2, 1], transpose=True,
    reduction="sum")
long_rows = [[int(v) for v in torch.randint(1, 20, (15,))], [int(v) for v in torch.randint(1, 20, (9,))]]
add("long_sequence", logp(60, 2, 20), padded(long_rows, 15), [60, 41], [15, 9], reduction="none")
add("long_sequence_f32", logp(60, 2, 20, torch.float32), padded(long_rows, 15), [60, 41], [15, 9],
    reduction="mean")

# ---- inputs that are not normalised, and peaked distributions ---------------
# PyTorch's gradient is exp(lp) - occupation even when lp is no log-softmax
add("not_normalised", torch.randn(5, 2, 4, dtype=torch.float64), padded([[1, 2], [3]], 2), [5, 4], [2, 1],
    reduction="none")
add("peaked_logits", logp(6, 2, 4, scale=30.0), padded([[1, 2], [3, 3]], 2), [6, 6], [2, 2], reduction="sum")

# the two gradient conventions agree through a log_softmax of a leaf
x = torch.randn(6, 3, 5, dtype=torch.float64, requires_grad=True)
F.ctc_loss(x.log_softmax(2), padded(rows, 3), torch.tensor([6, 5, 4]), torch.tensor([3, 2, 1]),
           reduction="sum").backward()
lp_leaf = x.detach().log_softmax(2).requires_grad_(True)
F.ctc_loss(lp_leaf, padded(rows, 3), torch.tensor([6, 5, 4]), torch.tensor([3, 2, 1]), reduction="sum").backward()
assert (x.grad - lp_leaf.grad).abs().max() < 1e-12

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "losses_ctc.json")
with open(out, "w") as f:
    json.dump({"generator": "tests/reference/gen_losses_ctc.py", "loss": "ctc_loss", "torch": torch.__version__, "cases": cases}, f)
print("wrote %d cases to %s" % (len(cases), out))
