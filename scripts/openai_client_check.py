#!/usr/bin/env python3
"""Drives `transformer serve --model X.gguf --embeddings DIR` with the real `openai` package.

Usage: openai_client_check.py BASE_URL API_KEY MODEL_ID EMBED_ID EMBED_JSON
  EMBED_JSON: `transformer embed --format json` of the two sentences below, to compare vectors with.

Checks: a chat completion; the same streamed (the chunks joined equal the whole answer at
temperature 0 with the same seed); a completion; embeddings equal to `transformer embed`'s (float and
the client's default base64); and the errors raising the client's own exception types (bad JSON,
a prompt over the context, a wrong API key, an unknown model). Exits non-zero on the first failure.
"""
import json
import math
import sys
import urllib.request

import openai

base, key, model, embed_id, embed_json = sys.argv[1:6]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)
SENTENCES = ["A man is playing a guitar.", "A man plays the guitar."]
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


models = [m.id for m in client.models.list().data]
check(model in models and embed_id in models, f"/v1/models lists {model!r} and {embed_id!r}: {models}")

messages = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"}]
whole = client.chat.completions.create(model=model, messages=messages, max_tokens=24, temperature=0, seed=7)
text = whole.choices[0].message.content
check(bool(text) and whole.choices[0].finish_reason in ("stop", "length"), f"chat: {text!r} ({whole.choices[0].finish_reason})")
check(whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0
      and whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens, f"chat usage: {whole.usage}")
check("Paris" in text, "the model answers Paris")

chunks = list(client.chat.completions.create(model=model, messages=messages, max_tokens=24, temperature=0, seed=7,
                                             stream=True, stream_options={"include_usage": True}))
streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
usage = [c.usage for c in chunks if c.usage]
check(streamed == text, f"streamed chunks ({len(chunks)}) join to the same text: {streamed!r}")
check(finish == [whole.choices[0].finish_reason], f"one finish_reason in the stream: {finish}")
check(len(usage) == 1 and usage[0].completion_tokens == whole.usage.completion_tokens, f"stream usage: {usage}")

stop = client.chat.completions.create(model=model, messages=messages, max_tokens=24, temperature=0, seed=7, stop=["Paris"])
check("Paris" not in stop.choices[0].message.content and stop.choices[0].finish_reason == "stop",
      f"stop string: {stop.choices[0].message.content!r} ({stop.choices[0].finish_reason})")

comp = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0)
check(bool(comp.choices[0].text) and comp.usage.completion_tokens >= 1, f"completion: {comp.choices[0].text!r}")
short = client.completions.create(model=model, prompt="Once upon a time", max_tokens=3, temperature=0.8, seed=1)
check(short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 3, f"max_tokens 3: {short.usage}")

want = json.load(open(embed_json))["embeddings"]
for fmt in ("float", None):  # None: the client's default, base64
    kw = {"encoding_format": fmt} if fmt else {}
    got = client.embeddings.create(model=embed_id, input=SENTENCES, **kw)
    worst = max(abs(a - b) for g, w in zip(got.data, want) for a, b in zip(g.embedding, w))
    check(len(got.data) == 2 and worst <= 1e-6, f"embeddings ({fmt or 'base64'}) equal `transformer embed`'s: worst {worst:.2e}")
one = client.embeddings.create(model=embed_id, input=SENTENCES[0], encoding_format="float")
check(len(one.data) == 1 and math.isclose(sum(x * x for x in one.data[0].embedding), 1, rel_tol=1e-4), "one string in")

# errors, as the client's own exception types
try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "word " * 20000}], max_tokens=4)
    check(False, "an over-long prompt is refused")
except openai.BadRequestError as e:
    check(e.code == "context_length_exceeded", f"over-long prompt: BadRequestError {e.code}: {e.message[:90]}")
try:
    openai.OpenAI(base_url=base, api_key="wrong-key", max_retries=0).models.list()
    check(False, "a wrong API key is refused")
except openai.AuthenticationError as e:
    check(e.status_code == 401, f"wrong API key: AuthenticationError {e.code}")
try:
    client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=4)
    check(False, "an unknown model is refused")
except openai.NotFoundError as e:
    check(e.code == "model_not_found", f"unknown model: NotFoundError {e.code}")
try:
    client.chat.completions.create(model=model, messages=messages, max_tokens="many")
    check(False, "a field of the wrong type is refused")
except openai.BadRequestError as e:
    check(e.param == "max_tokens", f"wrong type: BadRequestError param={e.param}: {e.message[:80]}")
try:  # malformed JSON: the client always sends valid JSON, so through its raw post
    req = urllib.request.Request(base + "/chat/completions", data=b'{"model": "x", "messages": [',
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    urllib.request.urlopen(req)
    check(False, "malformed JSON is refused")
except urllib.error.HTTPError as e:
    body = json.load(e)
    check(e.code == 400 and body["error"]["type"] == "invalid_request_error", f"malformed JSON: 400 {body['error']['message'][:70]}")
    # the same body through the client's machinery raises its BadRequestError
    try:
        resp = client._client.post(base + "/chat/completions", content=b"{bad",
                                   headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        raise client._make_status_error_from_response(resp)
    except openai.BadRequestError as e2:
        check(e2.status_code == 400, f"malformed JSON as the client's BadRequestError: {e2.message[:60]}")

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
