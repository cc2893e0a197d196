#!/usr/bin/python3
"""Reference cases for tide's recurrent layers, computed with PyTorch 1.13.

Run with Debian's python3-torch:
    /usr/bin/python3 tests/reference/gen_rnn.py
Writes tests/reference/rnn.json (committed, so the tests need no Python);
tests/lua/rnn_spec.lua reads it.

Each case builds torch.nn.<module>(*args, **options) with weights drawn by
the seed, and records:
  state_dict   every parameter, by PyTorch's key (tide loads them as they are)
  input        the padded input; with `lengths`, it is packed first
               (pack_padded_sequence, `enforce_sorted`, `batch_first`) and
               `output` is pad_packed_sequence's padded result
  hx           the initial state: null, a tensor, or [h0, c0]
  output, h_n, c_n (LSTM), or for cells h (and c for LSTMCell)
  w_*          weights of s = sum(output * w_output) + sum(h_n * w_h_n) + ...
  evaluate     true when the module runs in evaluation mode (dropout)
  grads        ds/d(input), ds/d(h0), ds/d(c0) and ds/d(every parameter)
"""
import json
import os

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.manual_seed(1913)
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64"}
cases = []


def spec(t):
    return {"values": [float(v) for v in t.detach().reshape(-1).tolist()], "shape": list(t.shape),
            "dtype": NAMES[t.dtype]}


def add(name, module, args, options=None, T=5, B=3, hx=False, lengths=None, enforce_sorted=True,
        dtype=torch.float64, unbatched=False, cell=False):
    options = options or {}
    m = getattr(nn, module)(*args, **options).to(dtype)
    # dropout between layers is random in training: compare in evaluation
    evaluate = options.get("dropout", 0) > 0
    if evaluate:
        m.eval()
    isz, hsz = args
    lstm = module.startswith("LSTM")
    bf = options.get("batch_first", False)
    if cell:
        shape = [isz] if unbatched else [B, isz]
    else:
        shape = [T, isz] if unbatched else ([B, T, isz] if bf else [T, B, isz])
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    h0 = c0 = None
    if hx:
        if cell:
            hs = [hsz] if unbatched else [B, hsz]
            cs = hs
        else:
            D = 2 if options.get("bidirectional") else 1
            L = options.get("num_layers", 1)
            P = options.get("proj_size", 0) or hsz
            hs = [L * D, P] if unbatched else [L * D, B, P]
            cs = [L * D, hsz] if unbatched else [L * D, B, hsz]
        h0 = torch.randn(hs, dtype=dtype, requires_grad=True)
        if lstm:
            c0 = torch.randn(cs, dtype=dtype, requires_grad=True)
    state = (h0, c0) if lstm and hx else h0
    inp = x
    if lengths is not None:
        inp = pack_padded_sequence(x, torch.tensor(lengths), batch_first=bf, enforce_sorted=enforce_sorted)
    if cell:
        res = m(inp, state) if hx else m(inp)
        outs = {"h": res[0], "c": res[1]} if lstm else {"h": res}
    else:
        out, hn = m(inp, state) if hx else m(inp)
        if lengths is not None:
            out, _ = pad_packed_sequence(out, batch_first=bf)
        outs = {"output": out}
        if lstm:
            outs["h_n"], outs["c_n"] = hn
        else:
            outs["h_n"] = hn
    ws = {k: torch.randn(v.shape, dtype=dtype) for k, v in outs.items()}
    s = sum((v * ws[k]).sum() for k, v in outs.items())
    s.backward()
    grads = {"input": spec(x.grad)}
    if h0 is not None:
        grads["h0"] = spec(h0.grad)
    if c0 is not None:
        grads["c0"] = spec(c0.grad)
    for k, p in m.named_parameters():
        grads[k] = spec(p.grad)
    case = {"name": name, "module": module, "args": list(args), "options": options,
            "state_dict": {k: spec(v) for k, v in m.state_dict().items()},
            "state_keys": list(m.state_dict().keys()),
            "input": spec(x), "hx": None if not hx else ([spec(h0), spec(c0)] if lstm else spec(h0)),
            "outputs": {k: spec(v) for k, v in outs.items()},
            "weights": {k: spec(v) for k, v in ws.items()}, "grads": grads, "evaluate": evaluate}
    if lengths is not None:
        case["lengths"] = lengths
        case["enforce_sorted"] = enforce_sorted
        case["batch_sizes"] = inp.batch_sizes.tolist()
    cases.append(case)


add("rnn_tanh", "RNN", (4, 6), hx=True)
add("rnn_relu_2layers_batch_first", "RNN", (4, 5), {"nonlinearity": "relu", "num_layers": 2, "batch_first": True})
add("rnn_nobias_bidirectional", "RNN", (3, 4), {"bias": False, "bidirectional": True}, hx=True)
add("rnn_unbatched", "RNN", (3, 4), {"num_layers": 2}, unbatched=True, hx=True)
add("lstm", "LSTM", (4, 6), hx=True)
add("lstm_2layers_bidirectional_batch_first", "LSTM", (3, 5),
    {"num_layers": 2, "bidirectional": True, "batch_first": True}, hx=True)
add("lstm_proj", "LSTM", (4, 6), {"proj_size": 3}, hx=True)
add("lstm_proj_2layers_bidirectional", "LSTM", (3, 5), {"proj_size": 2, "num_layers": 2, "bidirectional": True})
add("lstm_nobias_unbatched", "LSTM", (3, 4), {"bias": False}, unbatched=True, hx=True)
add("lstm_float32_2layers", "LSTM", (8, 16), {"num_layers": 2}, T=7, B=4, hx=True, dtype=torch.float32)
add("gru", "GRU", (4, 6), hx=True)
add("gru_2layers_bidirectional_batch_first", "GRU", (3, 5),
    {"num_layers": 2, "bidirectional": True, "batch_first": True}, hx=True)
add("gru_unbatched", "GRU", (3, 4), unbatched=True)
add("gru_float32", "GRU", (8, 16), T=7, B=4, dtype=torch.float32)
add("lstm_dropout_eval", "LSTM", (3, 4), {"num_layers": 2, "dropout": 0.5}, hx=True)
# packed sequences: lengths unsorted (no ties, so the packed order is PyTorch's)
add("packed_lstm_unsorted_bidirectional", "LSTM", (3, 5), {"num_layers": 2, "bidirectional": True},
    T=6, B=4, hx=True, lengths=[3, 6, 1, 4], enforce_sorted=False)
add("packed_gru_sorted_batch_first", "GRU", (3, 4), {"batch_first": True, "bidirectional": True},
    T=5, B=3, hx=True, lengths=[5, 3, 2])
add("packed_rnn_unsorted", "RNN", (3, 4), {"bidirectional": True, "num_layers": 2}, T=6, B=4,
    lengths=[2, 5, 6, 1], enforce_sorted=False)
add("packed_lstm_proj_unsorted", "LSTM", (3, 5), {"proj_size": 2, "bidirectional": True}, T=5, B=3, hx=True,
    lengths=[2, 5, 4], enforce_sorted=False)
add("packed_gru_unsorted_no_h0", "GRU", (2, 3), {}, T=4, B=3, lengths=[1, 4, 2], enforce_sorted=False)
add("packed_rnn_float32_unsorted", "RNN", (5, 8), {"bidirectional": True}, T=6, B=4, hx=True,
    lengths=[3, 6, 2, 5], enforce_sorted=False, dtype=torch.float32)
add("rnn_relu_float32", "RNN", (5, 8), {"nonlinearity": "relu", "num_layers": 2}, T=6, B=4, dtype=torch.float32)
add("packed_lstm_proj_float32", "LSTM", (5, 8), {"proj_size": 3, "num_layers": 2}, T=6, B=4, hx=True,
    lengths=[6, 4, 3, 1], dtype=torch.float32)
add("packed_gru_float32_unsorted", "GRU", (5, 8), {"bidirectional": True}, T=6, B=4, hx=True,
    lengths=[2, 6, 5, 3], enforce_sorted=False, dtype=torch.float32)
# cells
add("rnn_cell", "RNNCell", (4, 6), hx=True, cell=True)
add("rnn_cell_relu_nobias", "RNNCell", (4, 5), {"nonlinearity": "relu", "bias": False}, cell=True, hx=True)
add("lstm_cell", "LSTMCell", (4, 6), hx=True, cell=True)
add("lstm_cell_no_hx", "LSTMCell", (3, 4), cell=True)
add("gru_cell", "GRUCell", (4, 6), hx=True, cell=True)
add("gru_cell_unbatched", "GRUCell", (3, 4), hx=True, cell=True, unbatched=True)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rnn.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
print("wrote %d cases to %s" % (len(cases), out))
