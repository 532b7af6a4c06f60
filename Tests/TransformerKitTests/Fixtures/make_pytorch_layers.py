#!/usr/bin/env python3
"""Builds pytorch_layers.json, the PyTorch reference for PyTorchReferenceTests.swift.

CI does not run this script; the fixture it writes is committed. To regenerate (needs torch):

    python Tests/TransformerKitTests/Fixtures/make_pytorch_layers.py

Four layers are built with d_model 8, nhead 2, dim_feedforward 16, ReLU, dropout 0, batch_first:
a torch.nn.TransformerEncoderLayer and a torch.nn.TransformerDecoderLayer with norm_first=False
(post-norm, the paper) and the same pair with norm_first=True (pre-norm). Every parameter,
biases and layer-norm gains/shifts included, is randomised so that nothing passes trivially.

For each layer the fixture holds the weights under our names and in our layout, the input(s)
and torch's output. Our conventions (TransformerConfig.parameterShapes):
  * weight matrices are stored [in, out] (the layer computes x . W), the transpose of
    torch's Linear.weight [out, in];
  * torch's MultiheadAttention.in_proj_weight [3d, d] is q, k, v stacked by rows (and
    in_proj_bias [3d] likewise), so w_q = in_proj_weight[0:d].T, w_k = [d:2d].T, w_v = [2d:3d].T;
  * torch's decoder `multihead_attn` is our `cross_attn`; linear1/linear2 are ffn.w1/b1, ffn.w2/b2;
    LayerNorm weight/bias are gamma/beta.
Batch dimension 1 is dropped: tensors are stored as [rows, cols].

Before writing, the script recomputes every layer from the converted weights alone (plain
float64 matrix code in our layout) and checks it matches torch, so a conversion mistake
cannot slip into the fixture.
"""

import json
import math
import os

import torch
import torch.nn as nn

D_MODEL, NHEAD, D_FF, EPS = 8, 2, 16, 1e-5
SRC_LEN, TGT_LEN = 5, 4
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "pytorch_layers.json")


def randomise(module: nn.Module) -> None:
    """Every parameter gets a non-trivial value: matrices U(-0.6, 0.6), biases U(-0.5, 0.5),
    layer-norm gains 1 + U(-0.3, 0.3) and shifts U(-0.5, 0.5)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if isinstance(_owner(module, name), nn.LayerNorm) and name.endswith("weight"):
                p.copy_(1 + torch.empty_like(p).uniform_(-0.3, 0.3))
            elif p.dim() == 1:
                p.uniform_(-0.5, 0.5)
            else:
                p.uniform_(-0.6, 0.6)


def _owner(module: nn.Module, param_name: str) -> nn.Module:
    owner = module
    for part in param_name.split(".")[:-1]:
        owner = getattr(owner, part)
    return owner


def tensor_json(t: torch.Tensor) -> dict:
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def attention_params(mha: nn.MultiheadAttention, prefix: str) -> dict:
    d = mha.embed_dim
    w, b = mha.in_proj_weight, mha.in_proj_bias  # [3d, d], [3d]: q, k, v by rows
    return {
        f"{prefix}.w_q": w[0:d].T, f"{prefix}.b_q": b[0:d],
        f"{prefix}.w_k": w[d:2 * d].T, f"{prefix}.b_k": b[d:2 * d],
        f"{prefix}.w_v": w[2 * d:3 * d].T, f"{prefix}.b_v": b[2 * d:3 * d],
        f"{prefix}.w_o": mha.out_proj.weight.T, f"{prefix}.b_o": mha.out_proj.bias,
    }


def norm_params(ln: nn.LayerNorm, prefix: str) -> dict:
    return {f"{prefix}.gamma": ln.weight, f"{prefix}.beta": ln.bias}


def ffn_params(layer, prefix: str) -> dict:
    return {
        f"{prefix}.w1": layer.linear1.weight.T, f"{prefix}.b1": layer.linear1.bias,
        f"{prefix}.w2": layer.linear2.weight.T, f"{prefix}.b2": layer.linear2.bias,
    }


def encoder_params(layer: nn.TransformerEncoderLayer) -> dict:
    p = "encoder.layers.0"
    return {**attention_params(layer.self_attn, f"{p}.self_attn"), **norm_params(layer.norm1, f"{p}.norm1"),
            **ffn_params(layer, f"{p}.ffn"), **norm_params(layer.norm2, f"{p}.norm2")}


def decoder_params(layer: nn.TransformerDecoderLayer) -> dict:
    p = "decoder.layers.0"
    return {**attention_params(layer.self_attn, f"{p}.self_attn"), **norm_params(layer.norm1, f"{p}.norm1"),
            **attention_params(layer.multihead_attn, f"{p}.cross_attn"), **norm_params(layer.norm2, f"{p}.norm2"),
            **ffn_params(layer, f"{p}.ffn"), **norm_params(layer.norm3, f"{p}.norm3")}


# --- Independent re-computation from the converted weights (our layout, float64) -------------

def _p(params, name):
    return params[name].detach().to(torch.float64)


def ref_layer_norm(x, params, prefix):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + EPS) * _p(params, f"{prefix}.gamma") + _p(params, f"{prefix}.beta")


def ref_attention(xq, xkv, params, prefix, causal):
    q = xq @ _p(params, f"{prefix}.w_q") + _p(params, f"{prefix}.b_q")
    k = xkv @ _p(params, f"{prefix}.w_k") + _p(params, f"{prefix}.b_k")
    v = xkv @ _p(params, f"{prefix}.w_v") + _p(params, f"{prefix}.b_v")
    dk = D_MODEL // NHEAD
    heads = []
    for h in range(NHEAD):
        sl = slice(h * dk, (h + 1) * dk)
        s = q[:, sl] @ k[:, sl].T / math.sqrt(dk)
        if causal:
            s = s.masked_fill(torch.ones_like(s, dtype=torch.bool).triu(1), float("-inf"))
        heads.append(torch.softmax(s, -1) @ v[:, sl])
    return torch.cat(heads, -1) @ _p(params, f"{prefix}.w_o") + _p(params, f"{prefix}.b_o")


def ref_ffn(x, params, prefix):
    h = torch.relu(x @ _p(params, f"{prefix}.w1") + _p(params, f"{prefix}.b1"))
    return h @ _p(params, f"{prefix}.w2") + _p(params, f"{prefix}.b2")


def ref_sublayer(x, params, norm, pre, f):
    if pre:
        return x + f(ref_layer_norm(x, params, norm))
    return ref_layer_norm(x + f(x), params, norm)


def ref_encoder(x, params, pre):
    p = "encoder.layers.0"
    x = ref_sublayer(x, params, f"{p}.norm1", pre, lambda h: ref_attention(h, h, params, f"{p}.self_attn", False))
    return ref_sublayer(x, params, f"{p}.norm2", pre, lambda h: ref_ffn(h, params, f"{p}.ffn"))


def ref_decoder(y, memory, params, pre):
    p = "decoder.layers.0"
    y = ref_sublayer(y, params, f"{p}.norm1", pre, lambda h: ref_attention(h, h, params, f"{p}.self_attn", True))
    y = ref_sublayer(y, params, f"{p}.norm2", pre, lambda h: ref_attention(h, memory, params, f"{p}.cross_attn", False))
    return ref_sublayer(y, params, f"{p}.norm3", pre, lambda h: ref_ffn(h, params, f"{p}.ffn"))


# --- Build, run, check, write ----------------------------------------------------------------

def main() -> None:
    torch.manual_seed(0)
    kw = dict(d_model=D_MODEL, nhead=NHEAD, dim_feedforward=D_FF, dropout=0.0, activation="relu",
              layer_norm_eps=EPS, batch_first=True, bias=True)
    x = torch.randn(1, SRC_LEN, D_MODEL)
    tgt = torch.randn(1, TGT_LEN, D_MODEL)
    memory = torch.randn(1, SRC_LEN, D_MODEL)
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(TGT_LEN)

    layers = {}
    for norm_first in (False, True):
        tag = "pre" if norm_first else "post"
        enc = nn.TransformerEncoderLayer(norm_first=norm_first, **kw)
        dec = nn.TransformerDecoderLayer(norm_first=norm_first, **kw)
        randomise(enc)
        randomise(dec)
        enc.eval()
        dec.eval()
        with torch.no_grad():
            enc_out = enc(x)
            dec_out = dec(tgt, memory, tgt_mask=tgt_mask, tgt_is_causal=True)
        enc_params, dec_params = encoder_params(enc), decoder_params(dec)

        # Conversion check: our-layout weights, plain float64 code, against torch.
        e_ref = ref_encoder(x[0].double(), enc_params, norm_first)
        d_ref = ref_decoder(tgt[0].double(), memory[0].double(), dec_params, norm_first)
        e_err = (e_ref - enc_out[0].double()).abs().max().item()
        d_err = (d_ref - dec_out[0].double()).abs().max().item()
        print(f"{tag}-norm: converted-weights recomputation vs torch: encoder {e_err:.3g}, decoder {d_err:.3g}")
        assert e_err < 1e-5 and d_err < 1e-5, "weight conversion does not reproduce torch"

        layers[f"encoder_{tag}"] = {
            "layer": "encoder", "norm": tag,
            "params": {k: tensor_json(v) for k, v in enc_params.items()},
            "x": tensor_json(x[0]), "output": tensor_json(enc_out[0]),
        }
        layers[f"decoder_{tag}"] = {
            "layer": "decoder", "norm": tag, "causal": True,
            "params": {k: tensor_json(v) for k, v in dec_params.items()},
            "x": tensor_json(tgt[0]), "memory": tensor_json(memory[0]), "output": tensor_json(dec_out[0]),
        }

    fixture = {
        "generator": "make_pytorch_layers.py",
        "torch_version": torch.__version__,
        "config": {"d_model": D_MODEL, "heads": NHEAD, "d_ff": D_FF, "layer_norm_eps": EPS,
                   "activation": "relu", "attention_bias": True},
        "layers": layers,
    }
    with open(OUT, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
