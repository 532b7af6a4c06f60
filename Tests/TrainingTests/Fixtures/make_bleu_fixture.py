#!/usr/bin/env python3
"""Makes bleu_cases.json for BLEUTests.swift with sacreBLEU (the reference implementation).

    pip install sacrebleu
    python Tests/TrainingTests/Fixtures/make_bleu_fixture.py

Each corpus is scored with sacrebleu.corpus_bleu(hyps, ref_streams) at its defaults (13a
tokenizer, 4-grams, 'exp' smoothing, case-sensitive). The '13a' tokenization of every line and
of random punctuation-heavy strings is recorded too. Deterministic.
"""
import json
import os
import random

import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

HERE = os.path.dirname(os.path.abspath(__file__))

# (hypothesis, reference)
PAIRS = [
    ("A man in an orange hat starring at something.", "A man in an orange hat staring at something."),
    ("Two young, White males are outside near many bushes.", "Two young, White males are outside near many bushes."),
    ("A boston terrier is running on lush green grass in front of a white fence.",
     "A Boston Terrier is running on lush green grass in front of a white fence."),
    ("The girl said \"hello\" to her friend.", "The girl said &quot;hello&quot; to her friend."),
    ("Fish &amp; chips cost $3.50, or 3,50 EUR.", "Fish & chips cost $3.50 , or 3,50 euros."),
    ("", "A dog runs through the snow."),
    ("He was born in 1984-05-12 and lives at No. 42.", "He was born on 1984-05-12 and lives at number 42."),
    ("A well-known state-of-the-art system -- really!", "A well-known, state-of-the-art system - really!"),
    ("It's what they're saying: 'don't go'.", "It is what they are saying: \"do not go\"."),
    ("The price rose 5.5% to 1,234.56 dollars.", "The price rose by 5.5 % to 1,234.56 dollars."),
    ("x &lt; y &gt; z and a&b", "x < y > z and a & b"),
    ("Children play (happily) in the [park]; {yes} / no.", "Children play happily in the park; yes/no."),
    ("A woman wearing a red hat", "A woman in a red hat is walking down the street."),
    ("Men at work.", "Men at work . "),
    ("Die Kinder spielen im Garten.", "Die Kinder spielen draußen im Garten."),
    ("Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.", "Ein Mann mit einem orangen Hut, der etwas anstarrt."),
    ("Café naïve résumé — “quoted” text…", "Café naive resume - \"quoted\" text..."),
    ("Numbers: 1,2,3 and 4.5.6 and 7-8-9.", "Numbers: 1, 2, 3 and 4.5.6 and 7 - 8 - 9."),
    ("Visit http://example.com/path?q=1&r=2 now", "Visit http://example.com/path?q=1&amp;r=2 now"),
    ("e-mail me at a.b@c.de, ok?", "Email me at a.b@c.de, OK?"),
    ("The quick brown fox jumps over the lazy dog", "The quick brown fox jumped over the lazy dog."),
    ("  leading and trailing spaces   ", "leading and trailing spaces"),
    ("tabs\tand\nnewlines", "tabs and newlines"),
    ("A <skipped> token here.", "A token here."),
    ("dash-\nbroken line", "dashbroken line"),
    ("Mr. Smith's dog's toy.", "Mr. Smith's dog's toys."),
    ("Dots... and commas,, and ,leading", "Dots ... and commas , , and , leading"),
    ("3.14 3,14 3. 14 .5 ,5 5. 5,", "3.14 3,14 3 . 14 . 5 , 5 5 . 5 ,"),
    ("a", "a"),
    ("Ένας άντρας με ένα πορτοκαλί καπέλο.", "Ένας άνδρας με πορτοκαλί καπέλο."),
    ("白日依山尽，黄河入海流。", "白日依山尽，黄河入海流。"),
    ("the the the the the the the", "The cat is on the mat."),
]


def score_dict(hyps, streams):
    assert all(isinstance(s, list) and len(s) == len(hyps) for s in streams)
    b = sacrebleu.corpus_bleu(hyps, streams)
    return {"hyps": hyps, "refs": streams, "score": b.score, "precisions": b.precisions, "counts": b.counts,
            "totals": b.totals, "bp": b.bp, "sys_len": b.sys_len, "ref_len": b.ref_len, "summary": str(b)}


def main():
    hyps = [h for h, _ in PAIRS]
    refs = [r for _, r in PAIRS]
    corpora = [score_dict(hyps, [refs])]
    # small corpora: the smoothing branches, no matches at all, an empty system, a perfect one
    corpora.append(score_dict(["A man in an orange hat."], [["A man in an orange hat."]]))
    corpora.append(score_dict(["A man in a hat."], [["The man with the orange hat was here."]]))
    corpora.append(score_dict(["cat dog"], [["cat dog bird"]]))
    corpora.append(score_dict(["totally different"], [["nothing in common"]]))
    corpora.append(score_dict([""], [["A dog."]]))
    corpora.append(score_dict(hyps[:10], [refs[:10]]))
    corpora.append(score_dict(hyps[10:], [refs[10:]]))
    # two reference streams: clipping by the max count, closest reference length
    alt = [r.upper() if i % 3 == 0 else h for i, (h, r) in enumerate(PAIRS)]
    corpora.append(score_dict(hyps, [refs, alt]))

    tok = Tokenizer13a()
    lines = hyps + refs
    rng = random.Random(13)
    alphabet = "ab09 .,-'\"&;<>!?()[]{}/\\:@#$%^*+=_`~|\t\n" + "é€—“…"
    for _ in range(200):
        lines.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))))
    for ent in ["&quot;", "&amp;", "&lt;", "&gt;", "&amp;lt;", "&amp;quot;x", "&apos;", "&#39;"]:
        lines.append(f"a{ent}b {ent}")
    tokenized = [{"line": l, "tokens": tok(l.rstrip())} for l in lines]

    out = {"generator": "Tests/TrainingTests/Fixtures/make_bleu_fixture.py",
           "sacrebleu_version": sacrebleu.__version__,
           "corpora": corpora, "tokenize_13a": tokenized}
    with open(os.path.join(HERE, "bleu_cases.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for c in corpora:
        print(c["summary"])


if __name__ == "__main__":
    main()
