"""The encoder–decoder benchmark config in PyTorch (fp32, AdamW), for scripts/bench-vs-pytorch.sh.

d_model 256, 8 heads, 3+3 post-norm layers, d_ff 1024, ReLU, dropout 0.1, shared embedding tied to the
output, source/target length 32, batch 64, vocabulary 8000, label smoothing 0.1 — what
`transformer bench` trains. Prints target tokens/s.
"""
import math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
torch.set_num_threads(threads)
torch.manual_seed(0)
V, D, H, L, FF, B, T = 8000, 256, 8, 3, 1024, 64, 32


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.core = nn.Transformer(d_model=D, nhead=H, num_encoder_layers=L, num_decoder_layers=L,
                                   dim_feedforward=FF, dropout=0.1, batch_first=True)
        pe = torch.zeros(64, D)
        pos = torch.arange(64).unsqueeze(1)
        div = torch.exp(torch.arange(0, D, 2) * (-math.log(10000.0) / D))
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe)
        self.drop = nn.Dropout(0.1)

    def forward(self, src, tgt):
        s = self.drop(self.embed(src) * math.sqrt(D) + self.pe[: src.size(1)])
        t = self.drop(self.embed(tgt) * math.sqrt(D) + self.pe[: tgt.size(1)])
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.size(1))
        y = self.core(s, t, tgt_mask=mask, tgt_is_causal=True)
        return y @ self.embed.weight.t()


model = Seq2Seq()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9, weight_decay=0)
src = torch.randint(4, V, (B, T))
tgt = torch.randint(4, V, (B, T))
tin, tout = tgt[:, :-1], tgt[:, 1:]


def step():
    opt.zero_grad(set_to_none=True)
    logits = model(src, tin)
    loss = F.cross_entropy(logits.reshape(-1, V), tout.reshape(-1), label_smoothing=0.1)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


for _ in range(2):
    step()
start = time.perf_counter()
for _ in range(steps):
    step()
dt = (time.perf_counter() - start) / steps
print(f"pytorch {torch.__version__} encoder-decoder: {B * (T - 1) / dt:.0f} target tokens/s ({dt:.3f} s/step, {threads} threads)")
