#!/usr/bin/env python3
"""Makes the byte-level BPE fixtures for BPETests.swift.

Trains a small byte-level BPE (vocab 500) with Hugging Face `tokenizers` on the first 2,000 lines
of tinyshakespeare, saves it in GPT-2's format (bpe_vocab.json + bpe_merges.txt), and records
the ids the Python tokenizer gives a set of varied strings (bpe_cases.json). It also checks that
`transformers`' GPT2Tokenizer, loaded from the same two files, agrees with `tokenizers`.

    pip install tokenizers transformers
    python Tests/TransformerKitTests/Fixtures/make_bpe_fixture.py \
        data/tinyshakespeare.txt

Outputs are written next to this script. Deterministic: rerunning gives the same files.
"""
import json
import os
import random
import sys
import tempfile

from tokenizers import ByteLevelBPETokenizer

from byte_level import bytes_to_unicode

HERE = os.path.dirname(os.path.abspath(__file__))
SPECIALS = ["<pad>", "<start>", "<end>", "<unk>"]

CASES = [
    "Hello, world!",
    "  leading and trailing spaces   ",
    "It's what they're saying: we've, I'm, you'll, he'd, 'tis, O'Neil's ''s",
    "Numbers 12345 and 3.14159, 1,000,000; 2024-06-01 or ٣٤ and ①②",
    "First line\nSecond line\n\nThird\r\nWindows line",
    "tabs\tand\t\tmore   \t  spaces before words",
    "Unicode: café naïve coöperate — “quotes” … ∑ π ≈ 3.14",
    "CJK 白日依山尽，黄河入海流。 日本語のテキスト 한국어",
    "Emoji 👍🏽 👨\u200d👩\u200d👧 🇩🇪 done",
    "Combining e\u0301 a\u0308, NUL \u0000, \x1c and \u00a0nbsp\u3000ideographic",
    "ROMEO:\nBut, soft! what light through yonder window breaks?\n",
    "trailing newline\n\n",
    "",
    "   ",
    "!!! ??? ... --- ''' \"\"\" ",
    "KING RICHARD III:\nThe citizens are mum, and speak not a word.",
]

# A few id sequences whose bytes are not valid UTF-8 on their own; decoded by Python with
# errors="replace" (U+FFFD for each maximal invalid subpart).
def byte_level_decoder():
    return {c: b for b, c in bytes_to_unicode().items()}


class OpenAIEncoder:
    """GPT-2's original encoder.py algorithm (regex module, min-rank bigram loop): a second,
    independent peer for the Rust `tokenizers` implementation."""

    def __init__(self, vocab, merge_lines):
        import regex
        self.encoder = vocab
        self.byte_encoder = bytes_to_unicode()
        self.bpe_ranks = {tuple(l.split(" ")): i for i, l in enumerate(merge_lines)}
        self.pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

    def bpe(self, token):
        word = tuple(token)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
        return word

    def encode(self, text):
        ids = []
        for token in self.pat.findall(text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token))
        return ids


def main():
    corpus_path = sys.argv[1] if len(sys.argv) > 1 else "data/tinyshakespeare.txt"
    with open(corpus_path, encoding="utf-8") as f:
        lines = f.read().split("\n")[:2000]
    tok = ByteLevelBPETokenizer()  # add_prefix_space=False, no normaliser: plain GPT-2 behaviour
    tok.train_from_iterator(lines, vocab_size=500, min_frequency=2, special_tokens=SPECIALS,
                            show_progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_model(tmp)
        for src, dst in [("vocab.json", "bpe_vocab.json"), ("merges.txt", "bpe_merges.txt")]:
            with open(os.path.join(tmp, src), "rb") as f:
                data = f.read()
            with open(os.path.join(HERE, dst), "wb") as f:
                f.write(data)

    vocab_path, merges_path = os.path.join(HERE, "bpe_vocab.json"), os.path.join(HERE, "bpe_merges.txt")
    # Reload from the saved files so the fixture is exactly what the Swift loader sees.
    tok = ByteLevelBPETokenizer(vocab_path, merges_path)
    with open(vocab_path, encoding="utf-8") as f:
        vocab = json.load(f)
    with open(merges_path, encoding="utf-8") as f:
        merge_lines = [l for l in f.read().split("\n")[1:] if l]
    from transformers import GPT2Tokenizer
    hf_gpt2 = GPT2Tokenizer(vocab=dict(vocab), merges=[tuple(l.split(" ")) for l in merge_lines])
    openai = OpenAIEncoder(vocab, merge_lines)

    cases = []
    for text in CASES:
        enc = tok.encode(text)
        ids = enc.ids
        assert hf_gpt2.encode(text, add_special_tokens=False) == ids, text
        assert openai.encode(text) == ids, (text, openai.encode(text), ids)
        decoded = tok.decode(ids, skip_special_tokens=False)
        assert decoded == text, (text, decoded)
        cases.append({"text": text, "ids": ids, "tokens": enc.tokens})

    dec = byte_level_decoder()
    inv_vocab = {i: t for t, i in tok.get_vocab().items()}
    rng = random.Random(1234)
    byte_ids = [i for i in range(len(inv_vocab)) if inv_vocab[i] not in SPECIALS]
    decode_cases = []
    # hand-picked: a lone continuation byte, a truncated 3-byte sequence, an overlong encoding
    for raw in [b"\x80", b"ab\xe6\x97", b"\xc0\xaf x", b"\xed\xa0\x80", b"\xf0\x9f\x91", b"ok \xff\xfe end"]:
        ids = [tok.token_to_id("".join(chr(c) for c in [ord(k) for k, v in dec.items() if v == b])) for b in raw]
        decode_cases.append({"ids": ids, "text": raw.decode("utf-8", errors="replace")})
    for _ in range(20):
        ids = [rng.choice(byte_ids) for _ in range(rng.randint(1, 12))]
        raw = bytes(b for i in ids for b in (dec[ch] for ch in inv_vocab[i]))
        decode_cases.append({"ids": ids, "text": raw.decode("utf-8", errors="replace")})

    out = {
        "generator": "Tests/TransformerKitTests/Fixtures/make_bpe_fixture.py",
        "trained_on": "first 2000 lines of tinyshakespeare.txt",
        "vocab_size": tok.get_vocab_size(),
        "special_tokens": {s: tok.token_to_id(s) for s in SPECIALS},
        "cases": cases,
        "decode_cases": decode_cases,
    }
    with open(os.path.join(HERE, "bpe_cases.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"vocab {tok.get_vocab_size()}, {len(cases)} cases, {len(decode_cases)} decode cases")


if __name__ == "__main__":
    main()
