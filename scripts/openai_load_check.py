#!/usr/bin/env python3
"""A bounded loopback load on `transformer serve --model X.gguf`: valid streamed and whole chats,
clients that hang up mid-stream, malformed JSON, over-long bodies and prompts, all at once, while
/health is polled. Standard library only.

Usage: openai_load_check.py HOST PORT API_KEY SERVER_PID [SECONDS] [CLIENTS]
  (the server must have a context under 3,000 tokens per slot, e.g. --context 1024: one kind of
  request is a prompt that must be refused as too long)

Passes (prints PASS, exits 0) when /health answered every poll within 5 s, every answer had the
expected status, no slot is busy and nothing waits once the load stops, and the server's resident
memory levelled off (the last third of the run grew it by at most 10% over the middle third).
"""
import http.client
import json
import random
import socket
import sys
import threading
import time

host, port, key, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 30
clients = int(sys.argv[6]) if len(sys.argv) > 6 else 8
AUTH = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
stop_at = time.time() + seconds
lock = threading.Lock()
counts, problems, health_fail, rss = {}, [], [], []


def note(kind, ok, detail=""):
    with lock:
        counts[kind] = counts.get(kind, 0) + 1
        if not ok:
            problems.append(f"{kind}: {detail}")


def chat(n, stream):
    return json.dumps({"messages": [{"role": "user", "content": random.choice(["Hi", "Name a colour.", "Count to five."])}],
                       "max_tokens": n, "temperature": 0.7, "seed": random.randint(1, 1000), "stream": stream}).encode()


def one():
    kind = random.choice(["whole", "stream", "hangup", "hangup", "badjson", "toolarge", "toolong", "wrongkey"])
    c = http.client.HTTPConnection(host, port, timeout=60)
    try:
        if kind == "whole":
            c.request("POST", "/v1/chat/completions", chat(12, False), AUTH)
            r = c.getresponse(); body = r.read()
            note(kind, r.status in (200, 503), f"{r.status} {body[:80]}")
        elif kind == "stream":
            c.request("POST", "/v1/chat/completions", chat(16, True), AUTH)
            r = c.getresponse(); body = r.read()
            note(kind, r.status == 503 or (r.status == 200 and body.rstrip().endswith(b"data: [DONE]")), f"{r.status} {body[-60:]}")
        elif kind == "hangup":  # read one or two events, then close the socket mid-stream
            c.request("POST", "/v1/chat/completions", chat(200, True), AUTH)
            r = c.getresponse()
            if r.status == 200:
                r.fp.readline(); r.fp.readline()
            c.sock.shutdown(socket.SHUT_RDWR)
            note(kind, r.status in (200, 503), str(r.status))
        elif kind == "badjson":
            c.request("POST", "/v1/chat/completions", b'{"messages": [', AUTH)
            r = c.getresponse(); body = json.loads(r.read())
            note(kind, r.status == 400 and body["error"]["type"] == "invalid_request_error", str(body))
        elif kind == "toolarge":
            c.request("POST", "/v1/chat/completions", b'{"messages": "' + b"x" * (2 << 20) + b'"}', AUTH)
            r = c.getresponse(); r.read()
            note(kind, r.status == 413, str(r.status))
        elif kind == "toolong":
            body = json.dumps({"messages": [{"role": "user", "content": "word " * 3000}], "max_tokens": 4}).encode()
            c.request("POST", "/v1/chat/completions", body, AUTH)
            r = c.getresponse(); e = json.loads(r.read())
            note(kind, r.status == 400 and e["error"]["code"] == "context_length_exceeded", str(e)[:100])
        elif kind == "wrongkey":
            c.request("POST", "/v1/completions", b'{"prompt": "a"}', {"Authorization": "Bearer nope"})
            r = c.getresponse(); r.read()
            note(kind, r.status == 401, str(r.status))
    except (ConnectionError, socket.timeout, http.client.HTTPException) as e:
        # a 413 may close the connection before the whole body is sent
        note(kind, kind in ("toolarge", "hangup"), repr(e))
    finally:
        c.close()


def client():
    while time.time() < stop_at:
        one()


def health():
    while time.time() < stop_at + 1:
        t = time.time()
        try:
            c = http.client.HTTPConnection(host, port, timeout=5)
            c.request("GET", "/health"); r = c.getresponse(); r.read(); c.close()
            if r.status != 200:
                health_fail.append(f"status {r.status}")
        except Exception as e:  # noqa: BLE001
            health_fail.append(repr(e))
        with open(f"/proc/{pid}/status") as f:
            rss.append(next(int(l.split()[1]) for l in f if l.startswith("VmRSS")))
        time.sleep(max(0, 0.25 - (time.time() - t)))


threads = [threading.Thread(target=client) for _ in range(clients)] + [threading.Thread(target=health)]
for t in threads:
    t.start()
for t in threads:
    t.join()
time.sleep(2)
c = http.client.HTTPConnection(host, port, timeout=5)
c.request("GET", "/health"); final = json.loads(c.getresponse().read())
third = max(1, len(rss) // 3)
middle, last = max(rss[third:2 * third] or rss), max(rss[2 * third:] or rss)
print(f"requests: {sum(counts.values())} {dict(sorted(counts.items()))}")
print(f"/health polls: {len(rss)}, failures: {len(health_fail)} {health_fail[:3]}")
print(f"after the load: {final}")
print(f"resident memory (MB): start {rss[0] / 1024:.0f}, middle third max {middle / 1024:.0f}, last third max {last / 1024:.0f}")
ok = (not problems and not health_fail and final["slots_busy"] == 0 and final["waiting"] == 0
      and last <= middle * 1.10 and counts.get("hangup", 0) > 0)
for p in problems[:10]:
    print("problem:", p)
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
