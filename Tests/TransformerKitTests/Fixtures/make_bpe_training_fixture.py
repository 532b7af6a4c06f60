#!/usr/bin/env python3
"""Makes bpe_training.json: the merges a naive byte-level BPE trainer learns, for BPETests.swift.

The Swift trainer updates pair counts incrementally; this one recounts every pair from scratch
before each merge, with the same rules (GPT-2 pre-tokens; 256 byte tokens with id = byte value;
most frequent pair first, ties to the pair whose (left bytes, right bytes) sorts first; stop at
vocab_size - len(specials) tokens or when the best pair occurs fewer than min_frequency times;
no merge may make a token spelled like a special token; a merge whose bytes already have a
token reuses that id). Matching it checks the bookkeeping.

    python Tests/TransformerKitTests/Fixtures/make_bpe_training_fixture.py \
        data/tinyshakespeare.txt
"""
import json
import os
import sys
from collections import Counter

import regex

from byte_level import bytes_to_unicode

HERE = os.path.dirname(os.path.abspath(__file__))
PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")



B2U = bytes_to_unicode()


def show(bs):
    return "".join(B2U[b] for b in bs)


def train(texts, vocab_size, specials, min_frequency):
    counts = Counter(t.encode("utf-8") for text in texts for t in PAT.findall(text))
    words = [(list(w), c) for w, c in counts.items()]
    tokens = [bytes([b]) for b in range(256)]
    id_of = {t: i for i, t in enumerate(tokens)}
    merges, merged, forbidden = [], set(), set()
    target = vocab_size - len(specials)
    while len(tokens) < target:
        pairs = Counter()
        for w, c in words:
            for a, b in zip(w, w[1:]):
                if (a, b) not in forbidden:
                    pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], tokens[p[0]], tokens[p[1]]))
        if pairs[best] < min_frequency:
            break
        new = tokens[best[0]] + tokens[best[1]]
        if show(new) in specials:
            forbidden.add(best)
            continue
        if new in id_of:
            nid = id_of[new]
        else:
            nid = len(tokens)
            tokens.append(new)
            id_of[new] = nid
        if best not in merged:
            merged.add(best)
            merges.append(best)
        for k, (w, c) in enumerate(words):
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(nid)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[k] = (out, c)
    return [f"{show(tokens[a])} {show(tokens[b])}" for a, b in merges], [show(t) for t in tokens] + specials


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "data/tinyshakespeare.txt"
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")[2000:2600]
    # a few non-ASCII lines, and special-token text that must not become a token
    lines += ["Grüße aus Köln, schöne Grüße! Straße, Straße.", "日本語 日本語 日本", "<end> <end> <end>"] * 3
    specials = ["<pad>", "<start>", "<end>", "<unk>"]
    cases = []
    for vocab_size, min_frequency in [(700, 2), (400, 5)]:
        merges, tokens = train(lines, vocab_size, specials, min_frequency)
        cases.append({"vocab_size": vocab_size, "min_frequency": min_frequency, "merges": merges, "tokens": tokens})
        print(f"vocab_size {vocab_size}: {len(merges)} merges, {len(tokens)} tokens")
    out = {"generator": "Tests/TransformerKitTests/Fixtures/make_bpe_training_fixture.py",
           "texts": lines, "special_tokens": specials, "cases": cases}
    with open(os.path.join(HERE, "bpe_training.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
