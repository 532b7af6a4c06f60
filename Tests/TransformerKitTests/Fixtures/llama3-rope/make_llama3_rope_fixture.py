#!/usr/bin/env python3
"""Writes tiny.gguf and expected.json for Llama3RoPETests: a tiny random Llama whose rotary embeddings
use Llama 3.1's frequency scaling ("rope_type": "llama3"), run by Hugging Face transformers.

    pip install torch transformers gguf
    python Tests/TransformerKitTests/Fixtures/llama3-rope/make_llama3_rope_fixture.py

CI does not run this; both outputs are committed (the model is random and tiny: 2 blocks, d 64).
tiny.gguf is written the way llama.cpp's converter writes a Llama 3.1 file: Q and K rows permuted to
adjacent-pair order, and the scaling as a `rope_freqs.weight` tensor of per-frequency divisors. Here
the divisors come straight from transformers' own frequencies (base frequency / scaled frequency),
not from a re-implementation of the formula. A second file, tiny-linear.gguf, uses linear scaling
("rope_type": "linear", factor 4) written as llama.rope.scaling.type/factor.

expected.json: {"ids": [...], "llama3": {"divisors", "logits": [[...]] per position, "unscaled_last": the last
position's logits of the same weights without scaling}, "linear": {...}}
The divisors cover all three of Llama 3.1's cases (1 for high frequencies, the factor for low ones, smoothed between).
"""
import json
import os

import numpy as np
import torch
from gguf import GGUFWriter
from transformers import LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
THETA = 10000.0
torch.manual_seed(0)

def permute(w, heads):  # llama.cpp's converter: half-split rows → adjacent pairs
    out, inp = w.shape
    return w.reshape(heads, 2, out // heads // 2, inp).swapaxes(1, 2).reshape(out, inp)

def build(rope_scaling, name):
    cfg = LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5,
                      rope_parameters=dict(rope_scaling, rope_theta=THETA), tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():  # norms away from 1, so a wrong norm shows; sharp attention, so positions matter
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            if "q_proj" in n or "k_proj" in n:
                p.mul_(15)
            if "o_proj" in n or "v_proj" in n:
                p.mul_(5)
    rotary = model.model.rotary_emb
    inv_scaled = rotary.inv_freq.double()
    head = cfg.hidden_size // cfg.num_attention_heads
    inv_base = 1.0 / (THETA ** (torch.arange(0, head, 2, dtype=torch.float64) / head))
    w = GGUFWriter(os.path.join(HERE, name), "llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(THETA)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_rope_dimension_count(head)
    if rope_scaling["rope_type"] == "llama3":
        w.add_tensor("rope_freqs.weight", (inv_base / inv_scaled).float().numpy())
    else:
        w.add_rope_scaling_type(__import__("gguf").RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope_scaling["factor"])
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    for l in range(cfg.num_hidden_layers):
        p = f"model.layers.{l}."
        w.add_tensor(f"blk.{l}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(f"blk.{l}.attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], cfg.num_attention_heads))
        w.add_tensor(f"blk.{l}.attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], cfg.num_key_value_heads))
        w.add_tensor(f"blk.{l}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        w.add_tensor(f"blk.{l}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        w.add_tensor(f"blk.{l}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        w.add_tensor(f"blk.{l}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        w.add_tensor(f"blk.{l}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        w.add_tensor(f"blk.{l}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.add_tensor("output.weight", sd["lm_head.weight"])
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    return model, (inv_base / inv_scaled)

ids = [int(i) for i in torch.randint(0, 96, (40,), generator=torch.Generator().manual_seed(1))]
out = {"ids": ids}
for kind, scaling, name in [
    ("llama3", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64}, "tiny.gguf"),
    ("linear", {"rope_type": "linear", "factor": 4.0}, "tiny-linear.gguf"),
]:
    model, divisors = build(scaling, name)
    # the same weights without the scaling: the test checks the scaling moves the logits
    plain = LlamaForCausalLM(LlamaConfig(**{**model.config.to_dict(), "rope_parameters": {"rope_type": "default", "rope_theta": THETA}}))
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
        unscaled = plain.float().eval()(torch.tensor([ids])).logits[0, -1]
    out[kind] = {"divisors": [float(x) for x in divisors], "logits": [[round(float(v), 6) for v in row] for row in logits],
                 "unscaled_last": [round(float(v), 6) for v in unscaled]}
    print(kind, "divisors", [round(float(x), 3) for x in divisors])
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(out, f)
    f.write("\n")
