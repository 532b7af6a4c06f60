#!/usr/bin/env python3
"""Random blocks of every ggml block type this project reads, de-quantised by the `gguf` package
(llama.cpp's own Python reader), for QuantizedBlockTests.swift.

Each block's bytes are random, except its half-precision scales, which are drawn finite (±0.1 for
`d`, 0..0.1 for a minimum) so that every value is a number. Writes blocks.json next to this script:
per type, the hex of 3 blocks and the 3 × block-size float32 values `gguf.quants.dequantize` gives.

    pip install gguf numpy
    python Tests/TransformerKitTests/Fixtures/kquants/make_kquant_fixture.py

Deterministic (seeded).
"""
import json
import os

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

HERE = os.path.dirname(os.path.abspath(__file__))
# type → byte offsets of its f16 fields (signed scale first, then any minimum)
HALVES = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def main():
    rng = np.random.default_rng(20261205)
    out = {"generator": "Tests/TransformerKitTests/Fixtures/kquants/make_kquant_fixture.py",
           "gguf_version": getattr(gguf, "__version__", "unknown"), "types": {}}
    for qtype, halves in HALVES.items():
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        blocks = rng.integers(0, 256, size=(3, type_size), dtype=np.uint8)
        for b in range(3):
            for i, off in enumerate(halves):
                v = rng.uniform(-0.1, 0.1) if i == 0 else rng.uniform(0, 0.1)
                blocks[b, off:off + 2] = np.frombuffer(np.float16(v).tobytes(), dtype=np.uint8)
        values = dequantize(blocks.reshape(-1), qtype).astype(np.float32).reshape(-1)
        assert values.size == 3 * block_size and np.all(np.isfinite(values))
        out["types"][qtype.name] = {
            "id": int(qtype), "block_size": block_size, "block_bytes": type_size,
            "hex": blocks.tobytes().hex(), "values": [float(v) for v in values],
        }
    with open(os.path.join(HERE, "blocks.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
