"""GPT speed in PyTorch (fp32, eager), the peer for `transformer bench` in scripts/bench-vs-pytorch.sh.

Same configurations, same measurement as the Swift benchmark:
  training  GPT small (vocab 65, 6 layers, 6 heads, 384 wide, context 256, batch 16) and GPT tiny
            (vocab 65, 4 layers, 4 heads, 128 wide, context 64, batch 32): forward, backward, global-norm
            clipping and AdamW on random character ids; the mean of N timed steps after 2 warm-up steps.
  generate  batch 1 on GPT small's shape with the context widened to the longest asked: the context is
            filled to `ctx - timed` tokens, then `timed` tokens are made one at a time (argmax), with a
            KV cache (32 timed) and by recomputing the whole context (8 timed).
  PRECISIONS=fp32,bf16 (environment) times training in each: bf16 is torch.autocast("cpu", dtype=torch.bfloat16)
            around the forward pass and the loss (fp32 master weights and AdamW, as `train --precision bf16`).
Usage: bench_pytorch_gpt_speed.py THREADS STEPS CONTEXTS(comma-separated) [PARTS]
"""
import contextlib, os
import math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
contexts = [int(c) for c in (sys.argv[3] if len(sys.argv) > 3 else "64,256,1024").split(",")]
parts = sys.argv[4].split(",") if len(sys.argv) > 4 else ["gpt-small", "gpt-tiny", "generate"]
torch.set_num_threads(threads)
torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.d, self.h = d, h
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.c_fc, self.mlp_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, cache=None):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.h, d // self.h).transpose(1, 2) for z in (q, k, v))
        if cache is not None:  # one new position: attend over everything cached so far
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2); v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, layers, heads, d, ctx):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, idx, start=0, caches=None):
        x = self.wte(idx) + self.wpe(torch.arange(start, start + idx.size(1)))
        for i, blk in enumerate(self.h):
            x = blk(x, None if caches is None else caches[i])
        return self.ln_f(x) @ self.wte.weight.t()


def train(name, vocab, layers, heads, d, ctx, batch, precision="fp32"):
    model = GPT(vocab, layers, heads, d, ctx)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    params = sum(p.numel() for p in model.parameters())

    def step():
        x = torch.randint(0, vocab, (batch, ctx)); y = torch.randint(0, vocab, (batch, ctx))
        amp = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        with amp:
            loss = F.cross_entropy(model(x).view(-1, vocab).float(), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - start) / steps
    flops = (6 * params + 12 * layers * ctx * d) * batch * ctx
    tag = " [bf16 autocast]" if precision == "bf16" else ""
    print(f"pytorch {torch.__version__} train {name}{tag}: {batch * ctx / dt:.0f} tokens/s ({dt:.3f} s/step, {flops / dt / 1e9:.1f} GFLOP/s of model work, {threads} threads)", flush=True)


@torch.no_grad()
def generate():
    model = GPT(65, 6, 6, 384, max(contexts)).eval()
    g = torch.Generator().manual_seed(5)
    for ctx in contexts:
        line = f"pytorch generate gpt-small batch 1, context {ctx}:"
        for cache in [True, False]:
            timed = 32 if cache else 8
            ids = torch.randint(0, 65, (1, ctx - timed), generator=g)
            caches = [dict() for _ in model.h] if cache else None
            logits = model(ids, 0, caches) if cache else None
            nxt = 1
            start = time.perf_counter()
            for _ in range(timed):
                if cache:
                    logits = model(torch.tensor([[nxt]]), ids.size(1), caches)
                    ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
                else:
                    ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
                    logits = model(ids)
                nxt = int(logits[0, -1].argmax())
            dt = time.perf_counter() - start
            line += f" {'KV cache' if cache else 'no cache'} {timed / dt:.1f} tokens/s;"
        print(line.rstrip(";"), flush=True)


for precision in os.environ.get("PRECISIONS", "fp32").split(","):
    if "gpt-small" in parts:
        train("gpt-small", 65, 6, 6, 384, 256, 16, precision)
    if "gpt-tiny" in parts:
        train("gpt-tiny", 65, 4, 4, 128, 64, 32, precision)
if "generate" in parts:
    generate()
