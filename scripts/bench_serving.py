#!/usr/bin/env python3
"""Serving throughput: `transformer serve` against llama.cpp's OpenAI server (llama-cpp-python[server])
on the same GGUF file, with 1, 4 and 8 concurrent streaming clients, in one run.

Usage: [SERVERS=transformer] [CLIENTS=1,4,8] PYTHON_LLAMA=/path/to/venv/bin/python bench_serving.py BIN FILE.gguf [TOKENS] [THREADS] [ROUNDS]

Each client sends ROUNDS streamed /v1/completions requests one after another (temperature 0, a
different short prompt each, max_tokens TOKENS); a token is one streamed chunk with text. Reported
per server and concurrency: total generated tokens/s over the wall time, and time to first token
p50 / p99. Both servers get THREADS threads and a 2,048-token context per conversation:
- ours: `serve --parallel C --context 2048 --threads THREADS` (C slots decoded in one batched step);
- llama-cpp-python: `--n_threads THREADS --n_threads_batch THREADS --n_ctx 2048 --n_batch 512 --interrupt_requests False` (its
  server answers one request at a time; that is how it is shipped, so that is what it is measured as).
Only the standard library on our side; llama-cpp-python must be importable by $PYTHON_LLAMA.
"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

BIN, FILE = sys.argv[1], sys.argv[2]
TOKENS = int(sys.argv[3]) if len(sys.argv) > 3 else 64
THREADS = int(sys.argv[4]) if len(sys.argv) > 4 else 2
ROUNDS = int(sys.argv[5]) if len(sys.argv) > 5 else 3
PY = os.environ.get("PYTHON_LLAMA", sys.executable)
PROMPTS = ["Once upon a time", "The history of the printing press", "A recipe for bread:", "In the year 2050,",
           "The rules of chess are", "Dear diary, today", "The ocean is", "How to learn to program:"]


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_ready(port, proc, seconds=120):
    t = time.time()
    while time.time() - t < seconds:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2); c.request("GET", "/v1/models")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("server did not start")


def stream_once(port, model, prompt):
    """(time to first token, tokens) of one streamed completion."""
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": TOKENS, "temperature": 0, "stream": True})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.time()
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200, (r.status, r.read()[:200])
    first, n = None, 0
    for line in r:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        ch = json.loads(line[6:])["choices"]
        if ch and ch[0].get("text"):
            n += 1
            first = first or time.time() - t0
    c.close()
    return first or time.time() - t0, n


def run(port, model, clients):
    ttft, total = [], [0]
    lock = threading.Lock()

    def client(i):
        for r in range(ROUNDS):
            f, n = stream_once(port, model, PROMPTS[(i + r * clients) % len(PROMPTS)] + f" ({i}.{r})")
            with lock:
                ttft.append(f); total[0] += n

    stream_once(port, model, "warm up")
    t = time.time()
    ths = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    [th.start() for th in ths]; [th.join() for th in ths]
    wall = time.time() - t
    ttft.sort()
    return total[0] / wall, statistics.median(ttft), ttft[min(len(ttft) - 1, int(0.99 * len(ttft)))], total[0]


def serve(kind, clients):
    port = free_port()
    if kind == "transformer":
        cmd = [BIN, "serve", "--model", FILE, "--port", str(port), "--parallel", str(clients), "--context", "2048",
               "--threads", str(THREADS), "--queue", "64"]
        model = os.path.basename(FILE)[:-5]
    else:
        cmd = [PY, "-m", "llama_cpp.server", "--model", FILE, "--port", str(port), "--n_threads", str(THREADS),
               "--n_threads_batch", str(THREADS), "--n_ctx", "2048", "--n_batch", "512", "--interrupt_requests", "False"]
        model = FILE
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, p)
        return run(port, model, clients)
    finally:
        p.terminate(); p.wait()


print(f"# {os.path.basename(FILE)}: {TOKENS} tokens per request, {ROUNDS} requests per client, {THREADS} threads")
print(f"# reproduce: PYTHON_LLAMA={PY} python3 scripts/bench_serving.py {BIN} {FILE} {TOKENS} {THREADS} {ROUNDS}")
print("| clients | server | tokens/s (total) | TTFT p50 (s) | TTFT p99 (s) | tokens |")
print("|---|---|---|---|---|---|")
results = {}
KINDS = os.environ.get("SERVERS", "transformer,llama.cpp").split(",")  # SERVERS=transformer: ours alone
for clients in [int(c) for c in os.environ.get("CLIENTS", "1,4,8").split(",")]:
    for kind in KINDS:
        tps, p50, p99, n = serve(kind, clients)
        results[(kind, clients)] = tps
        print(f"| {clients} | {kind} | {tps:.1f} | {p50:.3f} | {p99:.3f} | {n} |", flush=True)
for (kind, clients), tps in results.items():
    if kind != "transformer":
        continue
    line = f"# {clients} clients:"
    if ("llama.cpp", clients) in results:
        line += f" ours / llama.cpp = {tps / results[('llama.cpp', clients)]:.2f}x;"
    if ("transformer", 1) in results:
        line += f" ours vs our 1 client = {tps / results[('transformer', 1)]:.2f}x"
    print(line)
