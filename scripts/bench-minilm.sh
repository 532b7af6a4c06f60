#!/usr/bin/env bash
# Sentence embeddings with all-MiniLM-L6-v2: `transformer embed` beside sentence-transformers, same
# sentences, same batch size, same threads, in one run; also checks that both give the same vectors.
# Not a CI test.
#
#   scripts/bench-minilm.sh [THREADS] [BATCH]        (defaults 2 and 32)
#
# Model: $MINILM_DIR (default .build/models/all-MiniLM-L6-v2, fetched by scripts/fetch-minilm.sh).
# Python: $PY (default python3) with torch and sentence-transformers.
# Sentences: (1) the 1,000 English captions of Multi30k test 2016 ($MULTI30K: a folder with Multi30k's
# test_2016_flickr.en.gz, from the multi30k/dataset repository on GitHub, data/task1/raw), short, ~15
# tokens; (2) 250 passages of Tiny Shakespeare (data/tinyshakespeare.txt), 16 lines each, ~134 tokens.
# Each side: one warm-up pass, then the best of 3 timed passes of encode(). The machine's load average
# is printed before and after: on a shared machine both sides slow down, not necessarily equally.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}; BATCH=${2:-32}
MODEL=${MINILM_DIR:-.build/models/all-MiniLM-L6-v2}
PY=${PY:-python3}
DATA=${MULTI30K:?set MULTI30K to a folder with Multi30k (the multi30k/dataset repository on GitHub, data/task1/raw)}
SHAKESPEARE=${SHAKESPEARE:-data/tinyshakespeare.txt}
[ -f "$MODEL/model.safetensors" ] || scripts/fetch-minilm.sh "$MODEL"
if [ -z "${BIN:-}" ]; then
  swift build -c release >/dev/null
  BIN=$(swift build -c release --show-bin-path)/transformer
fi
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
gzip -dc "$DATA/test_2016_flickr.en.gz" > "$TMP/captions.txt"
"$PY" - "$SHAKESPEARE" "$TMP/passages.txt" <<'PYEOF'
import sys
lines = [l.strip() for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for i in range(250):
        f.write(" ".join(lines[i * 16:(i + 1) * 16]) + "\n")
PYEOF
echo "== $(date -u +%FT%TZ) · $(nproc) cores · $THREADS thread(s) · batch $BATCH · load average $(cut -d' ' -f1-3 /proc/loadavg) =="
for set in captions passages; do
  "$BIN" embed --model "$MODEL" --file "$TMP/$set.txt" --threads "$THREADS" --batch-size "$BATCH" --format json > "$TMP/$set.json"
  best=0
  for i in 1 2 3; do
    line=$("$BIN" embed --model "$MODEL" --file "$TMP/$set.txt" --threads "$THREADS" --batch-size "$BATCH" --timing 2>&1 >/dev/null)
    rate=$(echo "$line" | sed -E 's/.*: ([0-9.]+) sentences\/s.*/\1/')
    best=$(echo "$rate $best" | awk '{print ($1 > $2) ? $1 : $2}')
  done
  echo "transformer embed      $set: $best sentences/s (best of 3)"
  OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS "$PY" - "$MODEL" "$TMP/$set.txt" "$TMP/$set.json" "$THREADS" "$BATCH" "$set" <<'PYEOF'
import json, sys, time
import numpy as np, torch
from sentence_transformers import SentenceTransformer
model_dir, path, swift_json, threads, batch, name = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
torch.set_num_threads(threads)
with open(path, encoding="utf-8") as f:
    sentences = f.read().split("\n")[:-1]
st = SentenceTransformer(model_dir, device="cpu")
ref = st.encode(sentences, batch_size=batch, convert_to_numpy=True)
best = float("inf")
for _ in range(3):
    t = time.perf_counter(); st.encode(sentences, batch_size=batch); best = min(best, time.perf_counter() - t)
ours = np.array(json.load(open(swift_json, encoding="utf-8"))["embeddings"], dtype=np.float32)
tokens = [len(st.tokenizer(s, truncation=True, max_length=st.max_seq_length)["input_ids"]) for s in sentences]
cos = (ours * ref).sum(1)
print(f"sentence-transformers  {name}: {len(sentences) / best:.1f} sentences/s (best of 3; torch {torch.__version__}, {threads} thread(s))")
print(f"  {len(sentences)} sentences, {sum(tokens)} tokens (mean {np.mean(tokens):.1f}, max {max(tokens)}); "
      f"max |Δ| between the two {np.abs(ours - ref).max():.2e}, lowest cosine {cos.min():.7f}")
PYEOF
done
echo "== done · load average $(cut -d' ' -f1-3 /proc/loadavg) =="
