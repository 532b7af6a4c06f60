#!/usr/bin/env python3
"""Writes the tiny Hugging Face GPT-2 fixture for GPT2CompatTests.swift with the reference implementation.

    pip install torch transformers safetensors
    python Tests/TransformerKitTests/Fixtures/make_gpt2_fixture.py

CI does not run this; the outputs are committed. Outputs (in gpt2-tiny/ next to this script):
  config.json        written by GPT2LMHeadModel.save_pretrained
  model.safetensors  written by save_pretrained(safe_serialization=True): `transformer.`-prefixed
                     names, lm_head.weight left out (tied to wte)
  expected.json      {"config": {...}, "cases": [{"ids": [...], "logits": [[V floats] per position]}]}:
                     the PyTorch model's logits (eval mode, float32) at every position, 7 significant
                     digits

The model is a randomly initialised GPT2LMHeadModel, torch.manual_seed(0). So that the comparison
tests more than a near-uniform attention, the initializer range is 0.2 (GPT-2 uses 0.02) and the
biases and layer-norm gains/offsets, which GPT-2 initialises to 0 and 1, are perturbed too.
"""
import json
import os
import shutil

import torch
from transformers import GPT2Config, GPT2LMHeadModel

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "gpt2-tiny")


def main():
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=97, n_positions=32, n_embd=48, n_layer=2, n_head=4, n_inner=None,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5, initializer_range=0.2, bos_token_id=96, eos_token_id=96,
    )
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.add_(0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    model.eval()

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    model.save_pretrained(OUT, safe_serialization=True)
    for f in os.listdir(OUT):
        if f not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(OUT, f))

    gen = torch.Generator().manual_seed(1)
    cases = []
    for length in (1, 6, 17, 32):
        ids = torch.randint(0, config.vocab_size, (length,), generator=gen)
        ids[0] = {1: 0, 6: 96}.get(length, int(ids[0]))  # the first and last vocabulary rows
        with torch.no_grad():
            logits = model(ids.unsqueeze(0)).logits[0].float()
        cases.append({
            "ids": [int(i) for i in ids],
            "logits": [[float("%.7g" % x) for x in row.tolist()] for row in logits],
        })
    expected = {
        "config": {"vocab_size": config.vocab_size, "n_positions": config.n_positions, "n_embd": config.n_embd,
                   "n_layer": config.n_layer, "n_head": config.n_head},
        "cases": cases,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"))
        f.write("\n")
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)), "bytes")
    print("max |logit|:", max(abs(x) for c in cases for row in c["logits"] for x in row))


if __name__ == "__main__":
    main()
