#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora under Fuzz/Corpus/<name>/ (small, valid or nearly valid
inputs; the fuzzer mutates from there). Standard library only. Usage: python3 Fuzz/make_corpus.py
[trace.json checkpoint-dir...]: with a trace (`transformer walkthrough --format json`) and checkpoint
folders, their small files are trimmed and added too."""
import json, os, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "Corpus")

def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# --- safetensors ---------------------------------------------------------------------------------
def safetensors(tensors, metadata=None):
    header, blobs, off = {}, b"", 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs += raw; off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blobs

f32 = lambda xs: struct.pack("<%df" % len(xs), *xs)
put("safetensors", "f32-matrix.safetensors", safetensors([("w", "F32", [2, 3], f32([1, 2, 3, 4, 5, 6])), ("b", "F32", [3], f32([0.5, -1, 2]))], {"format": "pt"}))
put("safetensors", "mixed-dtypes.safetensors", safetensors([
    ("h", "F16", [2], struct.pack("<2e", 1.5, -2.0)),
    ("bf", "BF16", [2], struct.pack("<2H", 0x3F80, 0xC000)),
    ("d", "F64", [1], struct.pack("<d", 3.25)),
    ("i", "I64", [2], struct.pack("<2q", 7, -9)),
    ("u", "U8", [3], bytes([1, 2, 255])),
    ("m", "BOOL", [2], bytes([0, 1])),
    ("s", "F32", [], f32([42])),
    ("e", "F32", [0, 4], b""),
    ("f8", "F8_E4M3", [2], bytes([0x38, 0x40])),
]))
put("safetensors", "empty.safetensors", safetensors([]))
put("safetensors", "escaped-name.safetensors", safetensors([("a\u00e9\\\"\n", "I32", [1, 1], struct.pack("<i", 5))], {"k\u00fc": "v\\u0041"}))

# --- GGUF ---------------------------------------------------------------------------------------
def gstr(s):
    b = s.encode(); return struct.pack("<Q", len(b)) + b
def gkv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload
def garr(etype, items):
    return struct.pack("<IQ", etype, len(items)) + b"".join(items)

def gguf(kvs, tensors, alignment=32, version=3):
    body = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    data, infos = b"", b""
    for name, dims, gtype, raw in tensors:
        data += b"\0" * (-len(data) % alignment)
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", gtype, len(data))
        data += raw
    head = body + infos
    head += b"\0" * (-len(head) % alignment)
    return head + data

tokens = ["!", "a", "b", "c", "Ġ", "Ġa", "ab", "<|im_start|>", "<|im_end|>"]
tok_kvs = [
    gkv("general.architecture", 8, gstr("llama")),
    gkv("tokenizer.ggml.model", 8, gstr("gpt2")),
    gkv("tokenizer.ggml.tokens", 9, garr(8, [gstr(t) for t in tokens])),
    gkv("tokenizer.ggml.merges", 9, garr(8, [gstr("Ġ a"), gstr("a b")])),
    gkv("tokenizer.ggml.token_type", 9, garr(5, [struct.pack("<i", 3 if t.startswith("<|") else 1) for t in tokens])),
    gkv("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 7)),
    gkv("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", 8)),
    gkv("tokenizer.ggml.add_bos_token", 7, b"\0"),
    gkv("tokenizer.chat_template", 8, gstr("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}")),
]
every_type = [
    gkv("u8", 0, b"\x07"), gkv("i8", 1, b"\xf9"), gkv("u16", 2, struct.pack("<H", 300)), gkv("i16", 3, struct.pack("<h", -300)),
    gkv("u32", 4, struct.pack("<I", 70000)), gkv("i32", 5, struct.pack("<i", -70000)), gkv("f32", 6, struct.pack("<f", 0.5)),
    gkv("bool", 7, b"\x01"), gkv("str", 8, gstr("héllo")), gkv("u64", 10, struct.pack("<Q", 1 << 40)),
    gkv("i64", 11, struct.pack("<q", -(1 << 40))), gkv("f64", 12, struct.pack("<d", 2.5)),
    gkv("arr", 9, garr(5, [struct.pack("<i", i) for i in range(3)])),
    gkv("nested", 9, garr(9, [garr(8, [gstr("x")])])),
]
q8 = struct.pack("<e", 0.5) + bytes(range(32))
put("gguf", "tokenizer.gguf", gguf(tok_kvs, []))
put("gguf", "every-type.gguf", gguf(every_type, [("v", [4], 0, f32([1, 2, 3, 4]))]))
put("gguf", "tensors.gguf", gguf([gkv("general.alignment", 4, struct.pack("<I", 16))],
    [("f32", [2, 2], 0, f32([1, 2, 3, 4])), ("f16", [4], 1, struct.pack("<4e", 1, 2, 3, 4)), ("q8", [32, 1], 8, q8)], alignment=16))
# one block of each K-quant and 5-bit type (ids 6, 7, 10–14): bytes 0..n−1 with finite f16 scales
kq = []
for gtype, (values, size, halves) in {6: (32, 22, [0]), 7: (32, 24, [0, 2]), 10: (256, 84, [80, 82]), 11: (256, 110, [108]),
                                       12: (256, 144, [0, 2]), 13: (256, 176, [0, 2]), 14: (256, 210, [208])}.items():
    raw = bytearray(i * 37 % 256 for i in range(size))
    for h in halves:
        raw[h:h + 2] = struct.pack("<e", 0.01)
    kq.append(("t%d" % gtype, [values, 1], gtype, bytes(raw)))
put("gguf", "kquants.gguf", gguf([gkv("general.name", 8, gstr("k-quants"))], kq))
put("gguf", "v2.gguf", gguf([gkv("general.name", 8, gstr("tiny"))], [("t", [2], 0, f32([1, 2]))], version=2))

# --- config JSON ------------------------------------------------------------------------------
put("config-json", "transformer-config.json", json.dumps({"d_model": 6, "heads": 2, "d_ff": 12, "encoder_layers": 1, "decoder_layers": 1,
    "source_vocab_size": 40, "target_vocab_size": 40, "max_length": 64, "norm": "post", "activation": "relu",
    "positions": "sinusoidal", "embeddings": "all", "scale_embeddings": False, "attention_bias": False, "layer_norm_eps": 1e-5, "head_dim": 3}))
for name in ["bert-tiny/config.json", "gpt2-tiny/config.json"]:
    with open(os.path.join(ROOT, "Tests/TransformerKitTests/Fixtures", name), "rb") as f:
        put("config-json", name.replace("/", "-"), f.read())
put("config-json", "tokenizer-char.json", json.dumps({"kind": "char", "vocabulary": {"tokens": ["a", "b", "<pad>", "<start>", "<end>", "<unk>"], "corpus_token_count": 2}}))
put("config-json", "tokenizer-bpe.json", json.dumps({"kind": "bpe", "bpe_vocab": json.dumps({**{chr(c): c - 33 for c in range(33, 127)}, "<pad>": 94, "<start>": 95, "<end>": 96, "<unk>": 97}),
    "bpe_merges": "#version: 0.2\n"}))

# --- trace JSON ---------------------------------------------------------------------------------
put("trace-json", "minimal.json", json.dumps({"schema": "transformer-trace/1", "title": "t", "config": {}, "conventions": {}, "corpus": ["ab"],
    "vocabulary": ["a", "b", "<pad>", "<start>", "<end>", "<unk>"], "corpus_token_count": 2, "source": "ab", "target": "ba", "notes": [],
    "steps": [
        {"id": "x", "title": "x", "op": "input", "inputs": [], "shape": [2, 1], "row_labels": ["a", "b"], "col_labels": ["id"], "values": [0, 1],
         "formula": "", "latex": "", "section": "s", "attrs": {}, "extras": {}, "notes": []},
        {"id": "e", "title": "embed", "op": "lookup", "inputs": ["emb", "x"], "shape": [2, 2], "row_labels": ["a", "b"], "col_labels": ["0", "1"],
         "values": [1, 2, 3, 4], "formula": "E[x]", "latex": "E_x", "section": "s", "attrs": {}, "extras": {}, "notes": []},
        {"id": "s", "title": "softmax", "op": "softmax", "inputs": ["e"], "shape": [2, 2], "row_labels": [], "col_labels": [],
         "values": [0.26894142, 0.7310586, 0.26894142, 0.7310586], "formula": "", "latex": "", "section": "s", "attrs": {}, "extras": {}, "notes": []}],
    "parameters": [{"name": "emb", "shape": [2, 2], "values": [1, 2, 3, 4]}]}))

def from_trace(path):
    d = json.load(open(path))
    steps = d["steps"]
    keep_ids = set()
    for n in (6, 16):
        small = dict(d)
        small["steps"] = steps[:n]
        needed = {i for s in small["steps"] for i in s["inputs"]}
        small["parameters"] = [p for p in d["parameters"] if p["name"] in needed]
        small["notes"] = d["notes"][:1]
        put("trace-json", "walkthrough-%d-steps.json" % n, json.dumps(small, separators=(",", ":")))

# --- tokenizers ---------------------------------------------------------------------------------
texts = {"ascii": "Hello, world! It's 2024.\n", "cjk": "马无夜草不肥 → 人无横财不富。", "mixed": "naïve café\t🙂 <pad> <|im_start|>user\nhi<|im_end|>",
         "numbers": "3.14159, -2e10; x_1 = 42", "spaces": "  a  b\r\n\u00a0c  "}
for k, t in texts.items():
    put("tokenizer-char", k + ".txt", t)
    put("tokenizer-gguf", k + ".txt", t)
    put("tokenizer-bpe", "text-" + k + ".bin", b"\x01" + t.encode())
    put("tokenizer-bpe", "train-" + k + ".bin", b"\xf0" + (t * 3).encode())
    put("tokenizer-wordpiece", "text-" + k + ".bin", b"\x20" + t.encode())
put("tokenizer-wordpiece", "text-short-max.bin", b"\x02" + "unaffable running quickly".encode())
vocab = {**{chr(c): c - 33 for c in range(33, 127)}, "Ġ": 94}
put("tokenizer-bpe", "tables.bin", b"\xa0" + json.dumps(vocab).encode() + b"\0" + "#version: 0.2\n".encode())
put("tokenizer-wordpiece", "vocab.bin", b"\x01" + "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##lo\nworld\n,\n!\nun\n##aff\n##able\n".encode())

# --- matrices ---------------------------------------------------------------------------------
mats = {
    "csv.csv": "1.0,2.5,-3\n4,5.25,6\n",
    "csv-labels.csv": ",a,b\nx,0.1,0.2\ny,0.3,0.4\n",
    "semicolon.csv": "1;2\n3;4\n",
    "tabs.tsv": "1\t2\n3\t4\n",
    "whitespace.txt": "  0.1000  0.2000\n -0.3000  inf\n",
    "json-rows.json": "[[1, 2], [3, 4.5]]",
    "json-shape.json": '{"shape": [2, 2], "values": [1, 2, 3, 4]}',
    "json-step.json": '{"id": "x", "shape": [1, 2], "values": [0.5, 1]}',
    "latex.tex": "\\begin{bmatrix} 1 & 2 \\\\ 3 & -4.5 \\end{bmatrix}",
    "latex-two.tex": "$A = \\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}$, $B = \\begin{vmatrix} \\frac{1}{2} & -\\infty \\end{vmatrix}$",
    "latex-array.tex": "\\left[\\begin{array}{cc} 1.5 & 2 \\\\ 3 & 4 \\end{array}\\right]",
    "latex-bare.tex": "1 & 2 \\\\ 3 & 4",
    "markdown.md": "| | a | b |\n|---|---|---|\n| x | 1 | 2 |\n| y | 3 | 4 |\n",
    "numpy.txt": "array([[1., 2.],\n       [3., 4.]], dtype=float32)",
    "python.txt": "[[ 1.  2.]\n [ 3.  4.]]",
    "inline.txt": "1,2;3,4",
}
for k, v in mats.items():
    put("matrix", k, v)

for n, arg in enumerate(sys.argv[1:]):
    if arg.endswith(".json"):
        from_trace(arg)
    else:
        for name in ["config.json", "state.json", "tokenizer.json"]:
            p = os.path.join(arg, name)
            if os.path.exists(p) and os.path.getsize(p) < 8192:
                put("config-json", "checkpoint%d-%s" % (n, name), open(p, "rb").read())

# --- chat templates ------------------------------------------------------------------------------
put("chat-template", "chatml.jinja", "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
put("chat-template", "constructs.jinja", "{%- set ns = namespace(n=0) -%}{% for m in messages[1:] if m.role != 'x' %}"
    "{% set ns.n = ns.n + 1 %}{{ loop.index0 % 2 }}{{ m.content | trim | tojson }}{% else %}none{% endfor %}"
    "{{ ns.n ~ (bos_token if messages[0]['role'] == 'system' else '') }}{# c #}{{ raise_exception('x') if false }}"
    "{{ [1, 2][-1] + {'a': 1}['a'] }}{{ 'a b'.split()|join(',') }}{{ x is defined and not none is none }}")

# --- worksheets (check --worksheet) ---------------------------------------------------------------
# Besides these, Fuzz/Corpus/worksheet holds sheets written by `transformer exercise` (filled from
# their key, partly filled, unfilled), committed as made.
put("worksheet", "spec-only.md", '<!-- transformer-worksheet: {"blanks":"all","integers":true,"seed":1,"topics":["softmax"]} -->\n'
    "<!-- blank: softmax.weights -->\n\n| | k0 | k1 | k2 | k3 |\n|---|---|---|---|---|\n| the | 0.1 | 0.2 | 0.3 | 0.4 |\n")
put("worksheet", "spec-bad.tex", '% transformer-worksheet: {"blanks":"2","integers":false,"seed":3,"topics":["layer-norm"]}\n'
    "% blank: layer-norm.norm\n\\begin{bmatrix}\n1 & 2 \\\\\n\\end{bmatrix}\n")
