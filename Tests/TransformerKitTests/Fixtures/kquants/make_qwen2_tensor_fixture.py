#!/usr/bin/env python3
"""Rows of real tensors of Qwen2.5-Coder-0.5B-Instruct Q4_K_M, de-quantised by the `gguf` package,
for QuantizedBlockTests.swift (the file itself, 491 MB, is fetched by scripts/fetch-qwen2.sh).

For one tensor of each block type in the file (Q5_0, Q8_0, Q4_K, Q6_K, F32) it records the first 256
values of row 0 and, for a few rows, their sum and sum of squares (float64). Writes
qwen2_tensors.json next to this script.

    pip install gguf numpy
    python Tests/TransformerKitTests/Fixtures/kquants/make_qwen2_tensor_fixture.py \
        .build/models/qwen2.5-coder-0.5b/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
"""
import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

HERE = os.path.dirname(os.path.abspath(__file__))
TENSORS = ["token_embd.weight", "output.weight", "blk.11.ffn_down.weight", "blk.0.ffn_down.weight",
           "blk.0.attn_q.weight", "blk.3.attn_v.weight", "blk.0.attn_q.bias"]


def main():
    reader = GGUFReader(sys.argv[1])
    by_name = {t.name: t for t in reader.tensors}
    out = {"generator": "Tests/TransformerKitTests/Fixtures/kquants/make_qwen2_tensor_fixture.py", "tensors": []}
    for name in TENSORS:
        t = by_name[name]
        dims = [int(d) for d in t.shape]  # ggml order: dims[0] is the row length
        cols = dims[0]
        rows = int(np.prod(dims[1:])) if len(dims) > 1 else 1
        values = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(rows, cols)
        picks = sorted({0, min(1, rows - 1), rows // 2, rows - 1})
        out["tensors"].append({
            "name": name, "type": t.tensor_type.name, "dims": dims,
            "row0": [float(v) for v in values[0][:256]],  # the first 256 values (one K-quant block)
            "rows": [{"row": r, "sum": float(values[r].astype(np.float64).sum()),
                      "sumsq": float((values[r].astype(np.float64) ** 2).sum())} for r in picks],
        })
    with open(os.path.join(HERE, "qwen2_tensors.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
