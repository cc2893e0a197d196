#!/usr/bin/python3
"""Reference cases for tide's attention layers, computed with PyTorch 1.13.

Run with Debian's python3-torch:
    /usr/bin/python3 tests/reference/gen_attention.py
Writes tests/reference/attention.json (committed, so the tests need no
Python); tests/lua/attention_spec.lua reads it.

sdpa: F.scaled_dot_product_attention with PyTorch 2.0's semantics. 1.13
has no such function, so the reference is its definition, computed in
float64: softmax(q k^T / sqrt(E) + mask) v, a bool mask (uint8 here) being
0 where true and -inf where false, is_causal the mask tril(ones(L, S)).
Each case: q, k, v, attn_mask (or null), is_causal, output, weight (w of
s = (out * w).sum()) and grads {q, k, v} of s.

modules: torch.nn.MultiheadAttention, TransformerEncoderLayer,
TransformerDecoderLayer and TransformerEncoder in float64 and training mode
(dropout 0, so the outputs are deterministic). Each case: kind, the
constructor's arguments as tide takes them (args, options), the
state_dict, the forward's inputs and options, the outputs (out, and
weights when the module returns them), weights w (and w2) of
s = (out * w).sum() (+ (weights * w2).sum()), and grads of s for every
input and every parameter by its state_dict key.
"""
import json
import math
import os

import torch
import torch.nn as nn

torch.manual_seed(1313)
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64",
         torch.bool: "uint8", torch.uint8: "uint8"}


def num(v):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def spec(t):
    t = t.detach()
    vals = t.reshape(-1).tolist()
    if t.dtype == torch.bool:
        vals = [int(v) for v in vals]
    else:
        vals = [num(float(v)) for v in vals]
    return {"values": vals, "shape": list(t.shape), "dtype": NAMES[t.dtype]}


def sdpa_reference(q, k, v, mask, causal):
    s = q.double() @ k.double().transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        L, S = q.shape[-2], k.shape[-2]
        keep = torch.ones(L, S, dtype=torch.bool).tril()
        s = s.masked_fill(~keep, float("-inf"))
    if mask is not None:
        if mask.dtype == torch.bool:
            s = s.masked_fill(~mask, float("-inf"))
        else:
            s = s + mask.double()
    return torch.softmax(s, -1) @ v.double()


sdpa_cases = []


def add_sdpa(name, qs, ks, vs, mask=None, causal=False, dtype=torch.float64):
    q, k, v = (torch.randn(s, dtype=dtype) for s in (qs, ks, vs))
    qd, kd, vd = (t.double().requires_grad_() for t in (q, k, v))
    out = sdpa_reference(qd, kd, vd, mask, causal)
    w = torch.randn(out.shape, dtype=torch.float64)
    (out * w).sum().backward()
    sdpa_cases.append({
        "name": name, "q": spec(q), "k": spec(k), "v": spec(v),
        "attn_mask": spec(mask) if mask is not None else None, "is_causal": causal,
        "output": spec(out.to(dtype)), "weight": spec(w.to(dtype)),
        "grads": {"q": spec(qd.grad.to(dtype)), "k": spec(kd.grad.to(dtype)), "v": spec(vd.grad.to(dtype))},
    })


def bool_mask(*shape, p=0.3):
    m = torch.rand(*shape) > p
    m[..., 0] = True  # every query keeps a key, so no row is all -inf
    return m


add_sdpa("3-dim (B, L, E), L != S, Ev != E", (2, 5, 4), (2, 7, 4), (2, 7, 3))
add_sdpa("4-dim (N, H, L, E) with a bool (L, S) mask", (2, 3, 6, 8), (2, 3, 9, 8), (2, 3, 9, 8),
         mask=bool_mask(6, 9))
add_sdpa("4-dim with a float (N, 1, L, S) mask", (2, 2, 5, 4), (2, 2, 6, 4), (2, 2, 6, 5),
         mask=torch.randn(2, 1, 5, 6, dtype=torch.float64))
add_sdpa("float mask holding -inf", (1, 2, 4, 3), (1, 2, 5, 3), (1, 2, 5, 3),
         mask=torch.randn(4, 5, dtype=torch.float64).masked_fill(~bool_mask(4, 5), float("-inf")))
add_sdpa("is_causal, L = S", (2, 7, 4), (2, 7, 4), (2, 7, 4), causal=True)
add_sdpa("is_causal, L < S (top-left aligned)", (1, 2, 4, 3), (1, 2, 6, 3), (1, 2, 6, 3), causal=True)
add_sdpa("2-dim (L, E)", (5, 6), (8, 6), (8, 2))
add_sdpa("several tiles: L = 130, S = 140", (1, 1, 130, 4), (1, 1, 140, 4), (1, 1, 140, 3),
         mask=bool_mask(1, 1, 130, 140))
add_sdpa("several tiles, causal: L = S = 135", (1, 135, 4), (1, 135, 4), (1, 135, 3), causal=True)
add_sdpa("bool mask (N, H, L, S), 5 dims", (2, 2, 2, 4, 3), (2, 2, 2, 5, 3), (2, 2, 2, 5, 3),
         mask=bool_mask(2, 1, 2, 4, 5))
add_sdpa("float32", (1, 1, 70, 4), (1, 1, 130, 4), (1, 1, 130, 4), mask=bool_mask(70, 130),
         dtype=torch.float32)
add_sdpa("float32 causal", (2, 65, 4), (2, 65, 4), (2, 65, 4), causal=True, dtype=torch.float32)

module_cases = []


def neg_inf_mask(m):
    """float mask: -inf where m is true"""
    return torch.zeros(m.shape, dtype=torch.float64).masked_fill(m, float("-inf"))


def causal_float(n):
    return neg_inf_mask(torch.ones(n, n, dtype=torch.bool).triu(1))


def kpm(n, s):
    """a key padding mask (true = padded) that pads the tail of each sequence"""
    m = torch.zeros(n, s, dtype=torch.bool)
    for i in range(n):
        m[i, s - i:] = True
    return m


def add_module_case(name, kind, args, options, module, inputs, fopts, torch_fopts=None):
    module = module.double().train()
    ins = [t.double().requires_grad_() for t in inputs]
    res = module(*ins, **(torch_fopts or fopts))
    out, weights = (res if isinstance(res, tuple) else (res, None))
    w = torch.randn(out.shape, dtype=torch.float64)
    s = (out * w).sum()
    case = {"name": name, "kind": kind, "args": args, "options": options,
            "state_dict": {k: spec(v) for k, v in module.state_dict().items()},
            "inputs": [spec(t) for t in ins],
            "forward_options": {k: (spec(v) if torch.is_tensor(v) else v) for k, v in fopts.items()},
            "output": spec(out), "weight": spec(w)}
    if weights is not None:
        w2 = torch.randn(weights.shape, dtype=torch.float64)
        s = s + (weights * w2).sum()
        case["weights"], case["weight2"] = spec(weights), spec(w2)
    s.backward()
    case["input_grads"] = [spec(t.grad) for t in ins]
    case["grads"] = {k: spec(p.grad) for k, p in module.named_parameters()}
    module_cases.append(case)


E, H, L, S, N = 8, 2, 5, 6, 3
x = torch.randn(L, N, E)
add_module_case("MHA self-attention, sequence-first, weights averaged", "MultiheadAttention", [E, H], {},
                nn.MultiheadAttention(E, H), [x, x, x], {})
add_module_case("MHA cross-attention, batch_first, bool attn_mask and key_padding_mask, need_weights = false",
                "MultiheadAttention", [E, H], {"batch_first": True},
                nn.MultiheadAttention(E, H, batch_first=True),
                [torch.randn(N, L, E), torch.randn(N, S, E), torch.randn(N, S, E)],
                {"attn_mask": ~bool_mask(L, S), "key_padding_mask": kpm(N, S), "need_weights": False})
add_module_case("MHA kdim and vdim, 3-dim float attn_mask, weights per head", "MultiheadAttention", [E, H],
                {"kdim": 5, "vdim": 7}, nn.MultiheadAttention(E, H, kdim=5, vdim=7),
                [torch.randn(L, N, E), torch.randn(S, N, 5), torch.randn(S, N, 7)],
                {"attn_mask": torch.randn(N * H, L, S, dtype=torch.float64), "average_attn_weights": False})
add_module_case("MHA add_bias_kv with key_padding_mask", "MultiheadAttention", [E, H], {"add_bias_kv": True},
                nn.MultiheadAttention(E, H, add_bias_kv=True),
                [torch.randn(L, N, E), torch.randn(S, N, E), torch.randn(S, N, E)],
                {"key_padding_mask": kpm(N, S), "need_weights": False})
add_module_case("MHA without bias, 4 heads, bool attn_mask, weights", "MultiheadAttention", [E, 4], {"bias": False},
                nn.MultiheadAttention(E, 4, bias=False),
                [torch.randn(L, N, E), torch.randn(S, N, E), torch.randn(S, N, E)],
                {"attn_mask": ~bool_mask(L, S)})
x = torch.randn(L, E)
add_module_case("MHA unbatched (L, E)", "MultiheadAttention", [E, H], {}, nn.MultiheadAttention(E, H),
                [x, x, x], {"need_weights": False})

D, FF = 8, 16
for act in ("relu", "gelu"):
    for norm_first in (False, True):
        for batch_first in (False, True):
            opts = {"dim_feedforward": FF, "dropout": 0.0, "activation": act, "norm_first": norm_first,
                    "batch_first": batch_first}
            src = torch.randn((N, L, D) if batch_first else (L, N, D))
            layer = nn.TransformerEncoderLayer(D, H, **opts)
            add_module_case("TransformerEncoderLayer %s norm_first=%s batch_first=%s" % (act, norm_first, batch_first),
                            "TransformerEncoderLayer", [D, H], opts, layer, [src],
                            {"src_mask": causal_float(L), "src_key_padding_mask": kpm(N, L)})
            tgt = torch.randn((N, L, D) if batch_first else (L, N, D))
            mem = torch.randn((N, S, D) if batch_first else (S, N, D))
            layer = nn.TransformerDecoderLayer(D, H, **opts)
            add_module_case("TransformerDecoderLayer %s norm_first=%s batch_first=%s" % (act, norm_first, batch_first),
                            "TransformerDecoderLayer", [D, H], opts, layer, [tgt, mem],
                            {"tgt_mask": torch.ones(L, L, dtype=torch.bool).triu(1),
                             "memory_mask": torch.randn(L, S, dtype=torch.float64),
                             "tgt_key_padding_mask": kpm(N, L), "memory_key_padding_mask": kpm(N, S)})

opts = {"dim_feedforward": FF, "dropout": 0.0}
layer = nn.TransformerEncoderLayer(D, H, **opts)
stack = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(D))
add_module_case("TransformerEncoder of 2 layers with a final LayerNorm", "TransformerEncoder", [D, H], opts, stack,
                [torch.randn(L, N, D)], {"src_key_padding_mask": kpm(N, L)})

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attention.json")
with open(out, "w") as f:
    json.dump({"sdpa": sdpa_cases, "modules": module_cases}, f)
print("wrote %d sdpa and %d module cases to %s" % (len(sdpa_cases), len(module_cases), out))
