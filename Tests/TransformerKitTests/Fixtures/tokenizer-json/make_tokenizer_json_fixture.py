#!/usr/bin/env python3
"""Checks this project's tokenizer.json files with Hugging Face `tokenizers`, for TokenizerJSONTests.swift.

1. Opens each `ours_*.json` (written by the Swift writer; `UPDATE_TOKENIZER_JSON_FIXTURES=1 swift test
   --filter TokenizerJSON` rewrites them) with `tokenizers.Tokenizer.from_file`.
2. Writes two files with Hugging Face's own writer: `hf_bpe.json` (a byte-level BPE of 400 tokens
   trained on corpus.txt, merges saved as pairs) and `hf_wordpiece.json` (BERT's WordPiece over
   ../bert-tiny/vocab.txt, lower-cased).
3. Records in expected.json the ids each file gives a set of texts (no special tokens added, except
   WordPiece's [CLS] … [SEP]) and the decoded text; `ids` is null where Hugging Face refuses the
   text (a character missing from a GPT's character vocabulary, which has no unknown token).

    pip install tokenizers
    python Tests/TransformerKitTests/Fixtures/tokenizer-json/make_tokenizer_json_fixture.py

Deterministic: rerunning gives the same files.
"""
import json
import os

import tokenizers
from tokenizers import ByteLevelBPETokenizer, Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
SPECIALS = ["<pad>", "<start>", "<end>", "<unk>"]

TEXTS = [
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "Hello, world!",
    "  leading and trailing spaces   ",
    "It's what they're saying: we've, I'm, you'll, he'd",
    "Numbers 12345 and 3.14159, 1,000,000; 2024-06-01",
    "First line\nSecond line\n\nThird\r\nWindows line",
    "tabs\tand\t\tmore   \t  spaces",
    "Unicode: café naïve coöperate — “quotes” … ∑ π",
    "CJK 白日依山尽，黄河入海流。 日本語 한국어",
    "Emoji 👍🏽 🇩🇪 done",
    "Combining e\u0301 a\u0308 and \u00a0nbsp\u3000ideographic",
    "ROMEO:\nBut, soft! what light through yonder window breaks?\n",
    "!!! ??? ... --- '''",
    "You are all resolved rather to die than to famish?",
    "",
]


def main():
    corpus = [l for l in open(os.path.join(HERE, "corpus.txt"), encoding="utf-8").read().split("\n") if l]

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=SPECIALS, show_progress=False)
    bpe.save(os.path.join(HERE, "hf_bpe.json"))

    wp = BertWordPieceTokenizer(os.path.join(HERE, "..", "bert-tiny", "vocab.txt"), lowercase=True)
    wp.save(os.path.join(HERE, "hf_wordpiece.json"))

    files = {}
    for name in ["ours_char.json", "ours_word.json", "ours_bpe.json", "ours_gpt_char.json", "hf_bpe.json", "hf_wordpiece.json"]:
        tok = Tokenizer.from_file(os.path.join(HERE, name))
        cases = []
        for text in TEXTS:
            try:
                enc = tok.encode(text, add_special_tokens=name == "hf_wordpiece.json")
                ids = enc.ids
                decoded = tok.decode(ids, skip_special_tokens=False)
            except Exception:
                ids, decoded = None, None
            cases.append({"text": text, "ids": ids, "decoded": decoded})
        files[name] = cases

    out = {"generator": "Tests/TransformerKitTests/Fixtures/tokenizer-json/make_tokenizer_json_fixture.py",
           "tokenizers_version": tokenizers.__version__, "files": files}
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
