"""nanoGPT's CPU Shakespeare-character run, in PyTorch, as the peer for scripts/bench-shakespeare.sh.

The model is GPT-2's layout written out here (token + position embeddings, pre-norm blocks with
causal self-attention and a tanh-GELU MLP, final layer norm, tied output), trained as nanoGPT's
config/train_shakespeare_char.py with its CPU overrides: 4 layers, 4 heads, 128 wide, block 64,
batch 12, 2000 iterations, AdamW lr 1e-3 → 1e-4 cosine with 100 warm-up steps, β2 0.99, weight
decay 0.1, clip 1.0, dropout 0. Prints the validation loss (mean over 20 batches) and wall time.
"""
import math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

path = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
torch.set_num_threads(threads)
torch.manual_seed(1337)
text = open(path, encoding="utf-8").read()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(0.9 * len(data))
train, val = data[:n], data[n:]
V, L, H, D, T, B = len(chars), 4, 4, 128, 64, 12


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.c_attn, self.c_proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.c_fc, self.mlp_proj = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(D, dim=2)
        q, k, v = (z.view(b, t, H, D // H).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(b, t, D))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, D), nn.Embedding(T, D)
        self.h = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(D)
        for p in self.parameters():
            if p.dim() == 2: nn.init.normal_(p, 0, 0.02)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for blk in self.h: x = blk(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


def batch(d, g):
    ix = torch.randint(len(d) - T, (B,), generator=g)
    return torch.stack([d[i:i + T] for i in ix]), torch.stack([d[i + 1:i + 1 + T] for i in ix])


model = GPT()
decay = [p for p in model.parameters() if p.dim() >= 2]
other = [p for p in model.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))
g = torch.Generator().manual_seed(1)
start = time.perf_counter()
for it in range(steps):
    lr = 1e-3 * (it + 1) / 100 if it < 100 else 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * (it - 100) / (steps - 100)))
    for group in opt.param_groups: group["lr"] = lr
    x, y = batch(train, g)
    loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
wall = time.perf_counter() - start
model.eval()
gv = torch.Generator().manual_seed(2)
with torch.no_grad():
    vl = sum(model(*batch(val, gv)).item() for _ in range(20)) / 20
print(f"pytorch {torch.__version__}: val loss {vl:.4f} after {steps} steps, {wall:.1f} s training ({steps * B * T / wall:.0f} tokens/s, {threads} threads)")
