#!/usr/bin/env python3
"""SmolLM2-135M-Instruct (GGUF) speed in the peers, with the same measurements as `transformer gguf-bench`:
prompt tokens/s (PROMPT token ids fed at once into an empty cache, best of REPEATS) and batch-1 greedy
generation tokens/s (GEN tokens after a 16-token prompt, one at a time with the KV cache).

    PEERS=llama.cpp|transformers bench_smollm2_peers.py FILE.gguf [PROMPT=512] [GEN=128] [REPEATS=3] [THREADS=2]

transformers: de-quantises the file to float32 (as the fixture does), torch.set_num_threads(THREADS).
llama.cpp (llama-cpp-python, if installed): the file as shipped (its own block types), n_threads=THREADS, its default
F16 KV cache, greedy tokens chosen in Python from its logits (the Python loop costs well under 1%).
OMP_WAIT_POLICY=passive unless set: on a shared, busy machine llama.cpp's spinning OpenMP threads
measured 29 tokens/s at 2 threads against 78 passive (1 thread: 124 either way).
"""
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

path = os.path.abspath(sys.argv[1])
PROMPT = int(sys.argv[2]) if len(sys.argv) > 2 else 512
GEN = int(sys.argv[3]) if len(sys.argv) > 3 else 128
REPEATS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
THREADS = int(sys.argv[5]) if len(sys.argv) > 5 else 2
TEXT = "The quick brown fox jumps over the lazy dog. " * (PROMPT // 5 + 8)


def bench_transformers():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    import transformers
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(THREADS)
    folder, name = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    ids = tok.encode(TEXT, add_special_tokens=False)[:PROMPT]
    best = float("inf")
    with torch.no_grad():
        for _ in range(REPEATS):
            t = time.perf_counter()
            model(torch.tensor([ids]), use_cache=True)
            best = min(best, time.perf_counter() - t)
        best_gen = float("inf")
        for _ in range(REPEATS):
            out = model(torch.tensor([ids[:16]]), use_cache=True)
            past, nxt = out.past_key_values, out.logits[0, -1].argmax()
            t = time.perf_counter()
            for _ in range(GEN):
                out = model(nxt.view(1, 1), past_key_values=past, use_cache=True)
                past, nxt = out.past_key_values, out.logits[0, -1].argmax()
            best_gen = min(best_gen, time.perf_counter() - t)
    print(f"transformers {transformers.__version__} (torch {torch.__version__}), Float32 weights, {THREADS} threads: "
          f"prompt {len(ids)} tokens {len(ids) / best:.1f} tokens/s; generation {GEN / best_gen:.1f} tokens/s", flush=True)


def bench_llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        print("llama.cpp: not installed (pip install llama-cpp-python builds it from source, ~10 min)", flush=True)
        return
    import numpy as np
    llm = llama_cpp.Llama(model_path=path, n_threads=THREADS, n_threads_batch=THREADS, n_ctx=max(PROMPT, 16 + GEN) + 8,
                          n_batch=PROMPT, n_ubatch=PROMPT, verbose=False)
    ids = llm.tokenize(TEXT.encode(), add_bos=False, special=False)[:PROMPT]
    best = float("inf")
    for _ in range(REPEATS):
        llm.reset()
        t = time.perf_counter()
        llm.eval(ids)
        best = min(best, time.perf_counter() - t)
    best_gen = float("inf")
    for _ in range(REPEATS):
        llm.reset()
        llm.eval(ids[:16])
        t = time.perf_counter()
        for _ in range(GEN):
            nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            llm.eval([nxt])
        best_gen = min(best_gen, time.perf_counter() - t)
    print(f"llama.cpp (llama-cpp-python {llama_cpp.__version__}), the file as shipped, {THREADS} threads: "
          f"prompt {len(ids)} tokens {len(ids) / best:.1f} tokens/s; generation {GEN / best_gen:.1f} tokens/s", flush=True)


if __name__ == "__main__":
    which = os.environ.get("PEERS", "llama.cpp,transformers").split(",")
    if "llama.cpp" in which:
        bench_llama_cpp()
    if "transformers" in which:
        bench_transformers()
