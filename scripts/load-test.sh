#!/usr/bin/env bash
# A bounded load test of `transformer serve` on loopback.
#
#   scripts/load-test.sh BIN SECONDS CONNECTIONS [MODEL_DIR]
#
# Starts `BIN serve` on a free 127.0.0.1 port with MODEL_DIR (default: a tiny GPT trained here in a few
# seconds), waits until it answers, checks a chunked over-limit body gets 413, runs wrk (Debian package `wrk`)
# for SECONDS with CONNECTIONS connections and scripts/load-test.lua (45 % valid traces, 15 % generations,
# 10 % info, 10 % malformed JSON, 10 % over-long texts, 10 % oversized bodies), then holds a few slowloris connections open
# (bytes trickled in) and checks the server closes them after its idle/read timeouts while a valid request
# still goes through, and finally that it still answers GET /api/info and a valid trace.
# Prints requests/s, p50/p99 latency, the count per status, the error rate (unexpected statuses — 5xx other than
# the deliberate 503 busy/timed out — plus socket errors and timeouts, over all requests) and the server's
# resident memory before, at peak and after (VmRSS, VmHWM from /proc).
# Exits non-zero if the server died, an unexpected status or socket error happened, or it stopped answering.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BIN SECONDS CONNECTIONS [MODEL_DIR]" >&2; exit 2; }
BIN=$1 DURATION=$2 CONNECTIONS=$3 MODEL=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "wrk is missing (Debian: apt-get install wrk)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/load-test.XXXXXX)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

if [ -z "$MODEL" ]; then
  MODEL=$WORK/gpt
  head -c 20000 "$HERE/../data/tinyshakespeare.txt" > "$WORK/data.txt"
  "$BIN" train --model gpt --data "$WORK/data.txt" --tokenizer char --d-model 32 --heads 4 --layers 2 --max-length 32 \
    --batch-size 8 --steps 20 --log-every 20 --output "$MODEL" > "$WORK/train.log" 2>&1
fi

# Shorter connection timeouts than the defaults (15 s idle, 10 s read) so the slowloris check is quick.
IDLE=4 READ=4
"$BIN" serve --model "$MODEL" --port 0 --idle-timeout $IDLE --read-timeout $READ > "$WORK/serve.log" 2>&1 &
SERVER=$!
PORT=""
for _ in $(seq 300); do
  PORT=$(sed -n 's|^open http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$WORK/serve.log")
  [ -n "$PORT" ] && break
  kill -0 "$SERVER" 2>/dev/null || { echo "the server exited:"; cat "$WORK/serve.log"; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "the server did not start"; cat "$WORK/serve.log"; exit 1; }
URL=http://127.0.0.1:$PORT
rss() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER/status"; }   # kB

# One request of each kind first (warm-up, and a check that the limits answer as they should).
status() { curl -s -o "$WORK/body" -w '%{http_code}' "$@"; }
check() { local want=$1; shift; local got; got=$(status "$@"); [ "$got" = "$want" ] || { echo "expected $want, got $got: $* -> $(head -c 300 "$WORK/body")"; exit 1; }; }
check 200 "$URL/api/info"
check 200 -H 'Content-Type: application/json' --data '{"text": "ROMEO:"}' "$URL/api/trace"
echo "a trace answer is $(wc -c < "$WORK/body") bytes"
check 200 -H 'Content-Type: application/json' --data '{"text": "ROMEO:", "include": ["html"]}' "$URL/api/trace"
echo "the page's trace answer (include html) is $(wc -c < "$WORK/body") bytes"
check 200 -H 'Content-Type: application/json' --data '{"text": "ROMEO:", "max_tokens": 8}' "$URL/api/generate"
check 400 -H 'Content-Type: application/json' --data '{"text": "ROMEO:", "include": ["svg"]}' "$URL/api/trace"
check 400 --data '{"text": 5}' "$URL/api/trace"
head -c 20000 /dev/zero | tr '\0' x > "$WORK/big"
check 413 -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/big" "$URL/api/trace"   # no Content-Length
check 422 --data "{\"text\": \"$(head -c 600 /dev/zero | tr '\0' a)\"}" "$URL/api/trace"
RSS_BEFORE=$(rss VmRSS)

echo "== wrk: $DURATION s, $CONNECTIONS connections, 2 threads (load: $(cut -d' ' -f1-3 /proc/loadavg)) =="
( while kill -0 "$SERVER" 2>/dev/null; do echo $(( $(rss VmRSS) / 1024 )); sleep 1; done ) > "$WORK/rss.txt" 2>/dev/null &
SAMPLER=$!
wrk -t 2 -c "$CONNECTIONS" -d "${DURATION}s" --timeout 15s --latency -s "$HERE/load-test.lua" "$URL" > "$WORK/wrk.txt" 2>&1 || true
kill "$SAMPLER" 2>/dev/null || true
cat "$WORK/wrk.txt"
RSS_DURING="server VmRSS during the run, MiB, every 5 s: $(awk 'NR % 5 == 1' "$WORK/rss.txt" | tr '\n' ' ')"
echo "$RSS_DURING"
kill -0 "$SERVER" 2>/dev/null || { echo "FAIL: the server died under load"; tail -20 "$WORK/serve.log"; exit 1; }
RSS_AFTER_LOAD=$(rss VmRSS)
UNEXPECTED=$(sed -n 's/^RESULT unexpected=\([0-9]*\).*/\1/p' "$WORK/wrk.txt")
[ -n "$UNEXPECTED" ] || { echo "FAIL: wrk printed no result"; exit 1; }

echo "== slowloris: 4 connections trickling a request head, 4 trickling a body, one byte a second =="
python3 - "$PORT" "$IDLE" "$READ" "$URL" > "$WORK/slowloris.txt" 2>&1 <<'EOF' || { cat "$WORK/slowloris.txt"; echo "FAIL: slowloris check"; exit 1; }
import socket, sys, threading, time, urllib.request
port, idle, read, url = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def slow(first, results, i):
    s = socket.create_connection(("127.0.0.1", port))
    start = time.time()
    s.sendall(first)
    try:
        for _ in range(60):
            time.sleep(1)
            s.sendall(b"x")
            s.settimeout(0.01)
            try:
                if s.recv(1) == b"": break
            except socket.timeout: pass
            except OSError: break
    except OSError:
        pass
    results[i] = time.time() - start
    s.close()
results = {}
head = b"POST /api/trace HTTP/1.1\r\nHost: x\r\nX-Slow: "
body = b"POST /api/trace HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
threads = [threading.Thread(target=slow, args=(head if i < 4 else body, results, i)) for i in range(8)]
for t in threads: t.start()
time.sleep(1.5)
# While they trickle, a valid request still goes through.
req = urllib.request.Request(url + "/api/trace", data=b'{"text": "ROMEO:"}', headers={"Content-Type": "application/json"})
t0 = time.time()
with urllib.request.urlopen(req, timeout=10) as r:
    print(f"valid trace during slowloris: {r.status} in {1000 * (time.time() - t0):.0f} ms")
for t in threads: t.join()
heads = [results[i] for i in range(4)]
bodies = [results[i] for i in range(4, 8)]
print(f"head tricklers closed after {min(heads):.1f}-{max(heads):.1f} s (idle timeout {idle:g} s)")
print(f"body tricklers closed after {min(bodies):.1f}-{max(bodies):.1f} s (read timeout {read:g} s)")
sys.exit(0 if max(heads) < idle + 3 and max(bodies) < read + 3 else 1)
EOF
cat "$WORK/slowloris.txt"

echo "== afterwards =="
check 200 "$URL/api/info"
check 200 -H 'Content-Type: application/json' --data '{"text": "JULIET:"}' "$URL/api/trace"
kill -0 "$SERVER" 2>/dev/null || { echo "FAIL: the server died"; exit 1; }
RSS_AFTER=$(rss VmRSS) RSS_PEAK=$(rss VmHWM)
echo "still answering: GET /api/info 200, POST /api/trace 200"
echo "server memory (VmRSS): before $((RSS_BEFORE / 1024)) MiB, after load $((RSS_AFTER_LOAD / 1024)) MiB, after all $((RSS_AFTER / 1024)) MiB, peak (VmHWM) $((RSS_PEAK / 1024)) MiB"
grep '^RESULT' "$WORK/wrk.txt" | sed 's/^RESULT /  /'
echo "$RSS_DURING"
if grep -q -i 'error\|fatal' "$WORK/serve.log"; then echo "server log (errors):"; grep -i 'error\|fatal' "$WORK/serve.log" | sort | uniq -c | head -10; fi
if [ "$UNEXPECTED" != 0 ]; then echo "FAIL: $UNEXPECTED unexpected answers (5xx other than 503, socket errors or timeouts)"; exit 1; fi
echo "PASS"
