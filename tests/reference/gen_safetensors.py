#!/usr/bin/python3
"""safetensors interop with PyTorch, both ways.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_safetensors.py

1. Writes tests/reference/torch.safetensors from PyTorch tensors (one per
   dtype tide reads, a 0-dim and an empty one, and metadata), plus
   torch_safetensors.json with each tensor's exact values, dtype and shape
   (float32 values widened to float64, so exact); tests/lua/checkpoint_spec.lua
   loads the file with tide.load and compares.
2. Reads tests/reference/tide.safetensors (written by tide; the spec's
   and committed; TIDE_WRITE_REFERENCE=1 makes the spec rewrite it) with the
   reader below and checks its values against what the spec stored, so
   tide's files are proven readable by another implementation.

The `safetensors` Python package is not in Debian, so the writer and the
reader here follow the format's spec by hand: an 8-byte little-endian
header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
[begin, end]}, "__metadata__": {str: str}}, then the data, little-endian.
The reader is strict, as the reference implementation: offsets must tile
the data region exactly.
"""
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.uint8: "U8"}
TORCH = {v: k for k, v in DTYPES.items()}
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64", torch.uint8: "uint8"}


def write(path, tensors, metadata=None):
    """safetensors as PyTorch's save_file lays it out: entries sorted by
    name, data in that order, header padded with spaces to 8 bytes."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read(path):
    """-> ({name: tensor}, metadata); raises ValueError on a malformed file"""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("too short")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("header length past the end")
    header = json.loads(data[8:8 + n])
    if (8 + n) % 8 != 0:
        raise ValueError("data region not 8-byte aligned")
    body = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    pos, out = 0, {}
    for name, e in entries:
        b, end = e["data_offsets"]
        if b != pos:
            raise ValueError(f"{name}: offsets do not tile the data")
        dt = TORCH[e["dtype"]]
        numel = 1
        for s in e["shape"]:
            numel *= s
        if end - b != numel * torch.tensor([], dtype=dt).element_size():
            raise ValueError(f"{name}: size mismatch")
        raw = bytearray(body[b:end])
        t = torch.frombuffer(raw, dtype=dt) if raw else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
        pos = end
    if pos != len(body):
        raise ValueError("trailing data")
    return out, metadata


def exact(t):
    return {"dtype": NAMES[t.dtype], "shape": list(t.shape),
            "values": [float(v) if t.is_floating_point() else int(v) for v in t.reshape(-1).tolist()]}


def make_torch_file():
    torch.manual_seed(7)
    tensors = {
        "f32": torch.randn(3, 4, dtype=torch.float32),
        "f64": torch.tensor([[0.1, -2.5e-300], [1e300, -0.0]], dtype=torch.float64),
        "i64": torch.tensor([-(2 ** 62), -1, 0, 2 ** 53 - 1, 2 ** 62], dtype=torch.int64),
        "u8": torch.tensor([[0, 1, 127], [128, 200, 255]], dtype=torch.uint8),
        "scalar": torch.tensor(3.25, dtype=torch.float32),
        "empty": torch.zeros(2, 0, dtype=torch.float64),
        "model.layer.0.weight": torch.randn(2, 3, 2, dtype=torch.float32),
    }
    meta = {"format": "pt", "note": "written by gen_safetensors.py"}
    path = os.path.join(HERE, "torch.safetensors")
    write(path, tensors, meta)
    back, m = read(path)  # the writer and the reader agree
    assert m == meta and all(torch.equal(back[k], tensors[k]) for k in tensors)
    with open(os.path.join(HERE, "torch_safetensors.json"), "w") as f:
        json.dump({"metadata": meta, "tensors": {k: exact(v) for k, v in tensors.items()}}, f, indent=1,
                  sort_keys=True)
        f.write("\n")
    print("wrote", path)


# what tests/lua/checkpoint_spec.lua writes into tide.safetensors
TIDE_EXPECTED = {
    "a": torch.tensor([[1.5, -2.0, 3.0], [0.25, 0.0, -7.0]], dtype=torch.float32),
    "b": torch.tensor([1e-310, 2.0 ** 0.5], dtype=torch.float64),
    "c": torch.tensor([-5, 0, 9007199254740991], dtype=torch.int64),
    "d": torch.tensor([0, 255, 17], dtype=torch.uint8),
    "e": torch.tensor(42.0, dtype=torch.float64),
    "f": torch.zeros(0, 3, dtype=torch.float32),
}
TIDE_META = {"written_by": "tide", "epoch": "3"}


def check_tide_file():
    path = os.path.join(HERE, "tide.safetensors")
    if not os.path.exists(path):
        print("no", path, "yet: run the Lua spec first")
        return True
    got, meta = read(path)
    ok = meta == TIDE_META and set(got) == set(TIDE_EXPECTED)
    for k, want in TIDE_EXPECTED.items():
        if k not in got or got[k].dtype != want.dtype or not torch.equal(got[k], want):
            print("mismatch in", k, got.get(k), want)
            ok = False
    print("tide.safetensors read by the Python reader:", "ok" if ok else "MISMATCH")
    return ok


if __name__ == "__main__":
    make_torch_file()
    sys.exit(0 if check_tide_file() else 1)
