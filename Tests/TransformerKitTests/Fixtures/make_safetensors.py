#!/usr/bin/env python3
"""Writes the safetensors fixtures for SafetensorsTests.swift with the reference implementation.

    pip install safetensors numpy torch
    python Tests/TransformerKitTests/Fixtures/make_safetensors.py

Outputs (next to this script):
  peer.safetensors      F32 tensors (scalar, 1-D, 2-D, 3-D, empty), one F16, one BF16 and one F64,
                        written by safetensors.torch.save_file, with metadata
  peer_f32.safetensors  F32 only, written by safetensors.numpy.save_file, with one metadata key; the
                        Swift writer must reproduce it byte for byte (tensors given in name order).
                        Regenerating gives identical bytes.
                        (peer.safetensors has several metadata keys, which the reference writer
                        emits in hash order, so its bytes, but not its content, vary between runs.)
  peer_expected.json    for each file: metadata, and the tensors in file (data-offset) order with
                        dtype, shape and the expected Float32 values as uint32 bit patterns (so
                        infinities, NaN and -0 compare exactly)
"""
import json
import os
import struct

import numpy as np
import torch
from safetensors.numpy import save_file as np_save_file
from safetensors.torch import save_file as torch_save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def bits(t: torch.Tensor):
    """The Float32 bit patterns of t converted to float32 (exact for f16/bf16; rounded for f64)."""
    a = t.to(torch.float32).contiguous().numpy().reshape(-1)
    return [int(x) for x in a.view(np.uint32)]


def file_order(path):
    """Tensor names sorted by data offset, read from the file's own header."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return [k for k, _ in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))]


def describe(path, tensors, dtypes, metadata):
    return {
        "metadata": metadata,
        "tensors": [
            {"name": name, "dtype": dtypes[name], "shape": list(tensors[name].shape), "bits": bits(tensors[name])}
            for name in file_order(path)
        ],
    }


def main():
    g = torch.Generator().manual_seed(20240601)

    # --- peer.safetensors (torch, mixed dtypes) ---
    f16_values = [1.0, -2.0, 0.5, 65504.0, -65504.0, 2.0 ** -24, -(2.0 ** -24), 2.0 ** -14 - 2.0 ** -24,
                  float("inf"), float("-inf"), -0.0, 0.0, 0.1, 3.140625]
    tensors = {
        "encoder.w": torch.randn(3, 4, generator=g, dtype=torch.float32),
        "bias": torch.tensor([0.25, -1.5, 3.0], dtype=torch.float32),
        "cube": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 8 - 1,
        "scale": torch.tensor(2.5, dtype=torch.float32),  # shape []
        "empty": torch.zeros(0, 5, dtype=torch.float32),
        "half": torch.tensor(f16_values, dtype=torch.float16).reshape(2, 7),
        "brain": torch.tensor([1.0, -2.0, 0.15625, 3.0e38, -1.0e-38, float("inf")], dtype=torch.bfloat16),
        "double": torch.tensor([[0.1, -1.0e300], [1.0e-50, 2.0 / 3.0]], dtype=torch.float64),
    }
    dtypes = {k: {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}[v.dtype]
              for k, v in tensors.items()}
    metadata = {"format": "pt", "model": "tiny \"peer\" test", "note": "héllo\nworld"}
    peer = os.path.join(HERE, "peer.safetensors")
    torch_save_file(tensors, peer, metadata=metadata)

    # --- peer_f32.safetensors (numpy, F32 only) ---
    f32 = {
        "a.bias": np.array([1.0, -2.0], dtype=np.float32),
        "a.weight": (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) / 4,
        "z": np.arange(8, dtype=np.float32).reshape(2, 2, 2) * -0.125,
    }
    # One metadata key only: the reference writer emits metadata in Rust HashMap order, which varies
    # from run to run, and this file must be reproducible byte for byte. The value exercises escaping.
    f32_meta = {"note": "tab\there \"q\" \\ é \u0001 ✓"}
    peer_f32 = os.path.join(HERE, "peer_f32.safetensors")
    np_save_file(f32, peer_f32, metadata=f32_meta)

    expected = {
        "peer.safetensors": describe(peer, tensors, dtypes, metadata),
        "peer_f32.safetensors": describe(peer_f32, {k: torch.from_numpy(v) for k, v in f32.items()},
                                         {k: "F32" for k in f32}, f32_meta),
    }
    with open(os.path.join(HERE, "peer_expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
