#!/usr/bin/env bash
# Runs `transformer bench` and the same configurations in PyTorch (fp32, 2 threads, AdamW) and
# numpy/OpenBLAS for the GEMM, in one run, and prints the Swift/peer ratios.
# Installs torch and numpy into $VENV (default .build/venv-bench) if missing. Not a CI test.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.build/venv-bench}
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -c "import torch, numpy" 2>/dev/null || "$VENV/bin/pip" install -q torch numpy
PY="$VENV/bin/python"
swift build -c release >/dev/null
BIN=$(swift build -c release --show-bin-path)/transformer
echo "== $(date -u +%FT%TZ) · $(nproc) cores =="
STEPS=${STEPS:-10}
CONTEXTS=${CONTEXTS:-64,256,1024}
# PRECISIONS=fp32,bf16: training in both (ours on the AVX-512 BF16 kernel, or emulated without it; PyTorch's is torch.autocast)
PRECISIONS=${PRECISIONS:-fp32}
export PRECISIONS
"$BIN" bench --steps "$STEPS" --contexts "$CONTEXTS" --precision "$PRECISIONS" | tee /tmp/bench-swift.txt
: > /tmp/bench-peer.txt
for t in 1 2; do
  OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$PY" - "$t" <<'PYEOF' | tee -a /tmp/bench-peer.txt
import sys, time, numpy as np
t = int(sys.argv[1])
rng = np.random.default_rng(1)
for name, ta, tb, m, n, k in [("NN", 0, 0, 4096, 1536, 384), ("NT", 0, 1, 4096, 384, 1536), ("TN", 1, 0, 384, 1536, 4096)]:
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    A = a.T if ta else a; B = b.T if tb else b
    A @ B
    best = float("inf")
    for _ in range(5):
        s = time.perf_counter(); A @ B; best = min(best, time.perf_counter() - s)
    print(f"numpy gemm {name} threads {t}: {2 * m * n * k / best / 1e9:.1f} GFLOP/s")
PYEOF
done
"$PY" scripts/bench_pytorch_gpt_speed.py 2 "$STEPS" "$CONTEXTS" | tee /tmp/bench-torch.txt
"$PY" scripts/bench_pytorch_seq2seq.py 2 "$STEPS" | tee -a /tmp/bench-torch.txt
"$PY" - <<'PYEOF'
import re
swift = open("/tmp/bench-swift.txt").read(); peer = open("/tmp/bench-peer.txt").read(); torch = open("/tmp/bench-torch.txt").read()
print("\n== ratios (Swift / peer) ==")
for name in ["NN", "NT", "TN"]:
    for t in [1, 2]:
        s = re.search(rf"gemm {name} .*threads {t}:\s+([\d.]+)", swift); p = re.search(rf"numpy gemm {name} threads {t}: ([\d.]+)", peer)
        if s and p: print(f"gemm {name} {t} thread(s): {float(s.group(1)):.1f} / {float(p.group(1)):.1f} GFLOP/s = {float(s.group(1)) / float(p.group(1)):.2f}")
s = re.search(r"encoder.decoder.*?: (\d+) target tokens/s", swift); p = re.search(r"encoder-decoder: (\d+) target tokens/s", torch)
if s and p: print(f"encoder-decoder training: {s.group(1)} / {p.group(1)} target tokens/s = {int(s.group(1)) / int(p.group(1)):.2f}")
for name in ["gpt-small", "gpt-tiny"]:
    s = re.search(rf"train {name} \(.*?: (\d+) tokens/s", swift); p = re.search(rf"train {name}: (\d+) tokens/s", torch)
    if s and p: print(f"{name} training: {s.group(1)} / {p.group(1)} tokens/s = {int(s.group(1)) / int(p.group(1)):.2f}")
    # bf16: ours (on the bf16 kernel, or emulated) against torch.autocast, and against our own fp32
    s16 = re.search(rf"train {name} \[bf16(, emulated)?\] .*?: (\d+) tokens/s", swift); p16 = re.search(rf"train {name} \[bf16 autocast\]: (\d+) tokens/s", torch)
    if s16 and p16:
        kind = "emulated" if s16.group(1) else "kernel"
        print(f"{name} training bf16 ({kind}) / PyTorch autocast: {s16.group(2)} / {p16.group(1)} tokens/s = {int(s16.group(2)) / int(p16.group(1)):.2f}")
    if s16 and s: print(f"{name} training bf16 / fp32 (ours): {s16.group(2)} / {s.group(1)} = {int(s16.group(2)) / int(s.group(1)):.2f}")
for m in re.finditer(r"generate gpt-small batch 1, context (\d+): KV cache ([\d.]+) tokens/s.*?no cache ([\d.]+) tokens/s", swift):
    ctx = m.group(1)
    p = re.search(rf"pytorch generate gpt-small batch 1, context {ctx}: KV cache ([\d.]+) tokens/s; no cache ([\d.]+) tokens/s", torch)
    if p:
        print(f"generation context {ctx}, KV cache: {m.group(2)} / {p.group(1)} tokens/s = {float(m.group(2)) / float(p.group(1)):.2f}; "
              f"no cache: {m.group(3)} / {p.group(2)} = {float(m.group(3)) / float(p.group(2)):.2f}")
PYEOF
echo "reproduce: scripts/bench-vs-pytorch.sh   (STEPS=$STEPS CONTEXTS=$CONTEXTS)"
