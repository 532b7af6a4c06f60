#!/usr/bin/env bash
# Kill safety: SIGKILL a GPT training run at random moments and inside checkpoint writes, check after
# every kill that the newest checkpoint is complete and loads and that --resume continues from it, then
# compare the finished run with an uninterrupted one: the loss curve (loss.csv) and the final weights
# must be identical bit for bit.
#
#   scripts/kill-test.sh BIN [KILLS] [WORKDIR]      # BIN: the release `transformer`; KILLS: default 20
#
# Half the kills come after a random delay; the other half are aimed at a random phase of a checkpoint
# write (TRANSFORMER_FAULT_SLOW_CHECKPOINT_MS makes the writer print each phase to stderr and pause
# there). Every victim prints the phases (with a 0 ms pause for random kills), so the script knows
# where each kill landed. The corpus: the first 20 KB of $KILL_TEST_DATA, by default the repository's
# data/tinyshakespeare.txt. KILL_TEST_STEPS (default 300) sets the
# run's length (raise it with KILLS: each kill costs ~10 steps), KILL_TEST_SEED the kills' randomness,
# KILL_TEST_MODEL=seq2seq an encoder–decoder (reversing word sequences, dropout 0.1) instead of the GPT.
# Needs only bash and python3.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BIN [KILLS] [WORKDIR]" >&2; exit 2; }
cd "$(dirname "$0")/.."
exec python3 - "$1" "${2:-20}" "${3:-/tmp/kill-test}" <<'PY'
import json, os, queue, random, re, shutil, signal, struct, subprocess, sys, threading, time

BIN, KILLS, WORK = os.path.abspath(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
STEPS, EVERY, SLOW_MS = int(os.environ.get("KILL_TEST_STEPS", "300")), 5, 40
rng = random.Random(int(os.environ.get("KILL_TEST_SEED", "2024")))
t_start = time.time()

def fail(msg):
    print(f"kill test FAILED: {msg}", flush=True)
    sys.exit(1)

shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
data = os.path.join(WORK, "text.txt")
src = os.environ.get("KILL_TEST_DATA") or "data/tinyshakespeare.txt"  # the script runs from the repository's root
if not os.path.exists(src):
    fail(f"cannot read the training text {src} (set KILL_TEST_DATA)")
with open(data, "wb") as f:
    f.write(open(src, "rb").read(20000))

MODEL = os.environ.get("KILL_TEST_MODEL", "gpt")
if MODEL == "gpt":
    DATA_ARGS = ["--model", "gpt", "--data", data]
    ARGS = ["train"] + DATA_ARGS + ["--tokenizer", "char", "--d-model", "32", "--heads", "4",
            "--layers", "2", "--max-length", "32", "--batch-size", "8", "--steps", str(STEPS), "--schedule", "cosine",
            "--lr", "3e-3", "--warmup", "10", "--dropout", "0", "--log-every", "50", "--checkpoint-every", str(EVERY),
            "--eval-every", "25", "--seed", "7"]
    LOAD = ["generate", "--prompt", "ROMEO:", "--max-tokens", "4", "--seed", "1"]
elif MODEL == "seq2seq":
    # Word sequences to reverse; dropout 0.1 and label smoothing, so the dropout stream must resume exactly.
    words = "the a cat dog sat ran on in mat log big small red blue".split()
    pairs = os.path.join(WORK, "pairs.tsv")
    with open(pairs, "w") as f:
        for _ in range(200):
            s = [rng.choice(words) for _ in range(rng.randint(2, 7))]
            f.write(" ".join(s) + "\t" + " ".join(reversed(s)) + "\n")
    DATA_ARGS = ["--pairs", pairs]
    ARGS = ["train"] + DATA_ARGS + ["--tokenizer", "word", "--d-model", "32", "--heads", "4", "--d-ff", "64",
            "--layers", "2", "--max-length", "16", "--batch-size", "8", "--steps", str(STEPS), "--schedule", "noam",
            "--warmup", "20", "--dropout", "0.1", "--label-smoothing", "0.1", "--log-every", "50",
            "--checkpoint-every", str(EVERY), "--eval-every", "25", "--seed", "7"]
    LOAD = ["translate", "the cat sat on the mat"]
else:
    fail(f"KILL_TEST_MODEL must be gpt or seq2seq, not {MODEL}")
REF, VIC = os.path.join(WORK, "reference"), os.path.join(WORK, "victim")
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("TRANSFORMER_FAULT_")}

# 1. The uninterrupted reference.
t0 = time.time()
r = subprocess.run([BIN] + ARGS + ["--output", REF], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=BASE_ENV)
if r.returncode != 0: fail(f"the reference run failed:\n{r.stderr}")
t_ref = time.time() - t0
print(f"reference ({MODEL}): {STEPS} steps, a checkpoint every {EVERY}, {t_ref:.1f} s", flush=True)

# 2. Checks of a run folder after a kill.
FILES = ["model.safetensors", "config.json", "tokenizer.json", "optimizer.safetensors", "state.json"]

def check_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if len(raw) != 8 + n + end: raise ValueError(f"{path}: {len(raw)} bytes, the header says {8 + n + end}")

def complete_steps():
    """Step numbers of the checkpoint folders, each checked to be complete and consistent."""
    ck = os.path.join(VIC, "checkpoints")
    steps = []
    for name in sorted(os.listdir(ck)) if os.path.isdir(ck) else []:
        if not name.startswith("step-"): continue
        d = os.path.join(ck, name)
        missing = [f for f in FILES if not os.path.exists(os.path.join(d, f))]
        if missing: fail(f"{d} is visible but incomplete: {missing} missing")
        for f in ("model.safetensors", "optimizer.safetensors"): check_safetensors(os.path.join(d, f))
        state = json.load(open(os.path.join(d, "state.json")))
        if state["step"] != int(name[5:]) or len(state["history"]) != state["step"]:
            fail(f"{d}/state.json: step {state['step']} with {len(state['history'])} history records")
        steps.append(state["step"])
    latest = os.path.join(VIC, "latest")
    if os.path.exists(latest):
        rel = open(latest).read().strip()
        if not os.path.isdir(os.path.join(VIC, rel)): fail(f"latest names {rel}, which does not exist")
    return steps

# 3. The victim: start (or resume), kill, check; KILLS times; then finish.
kills, in_write, phases_hit, verified, resumes, early = 0, 0, {}, 0, 0, 0
last_committed = 0  # the newest checkpoint whose write the killed process finished renaming into place
marker = re.compile(r"^\[fault\] checkpoint step-(\d+): (.+)$")

def launch(slow_ms):
    global resumes
    have = complete_steps()
    cmd = [BIN] + (["train"] + DATA_ARGS + ["--output", VIC, "--resume"] if have else ARGS + ["--output", VIC])
    env = dict(BASE_ENV, TRANSFORMER_FAULT_SLOW_CHECKPOINT_MS=str(slow_ms))
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    lines, q = [], queue.Queue()
    def reader():
        for line in p.stderr:
            lines.append(line.rstrip("\n")); q.put(line.rstrip("\n"))
        q.put(None)
    th = threading.Thread(target=reader, daemon=True); th.start()
    return p, lines, q, th, (max(have) if have else 0)

def check_resumed(lines, expected, killed):
    """True if the run said it resumed from the newest complete checkpoint (False: killed before it said)."""
    global resumes
    if expected == 0: return True
    m = next((re.search(r"resuming .* at step (\d+)", l) for l in lines if "resuming" in l), None)
    if not m:
        if killed and not any(marker.match(l) for l in lines): return False  # killed while starting up
        fail(f"the run did not say where it resumed:\n" + "\n".join(lines[-10:]))
    got = int(m.group(1))
    if got != expected or got < last_committed:
        fail(f"resumed at step {got}; the newest complete checkpoint is {expected}, the last one committed before the kill {last_committed}")
    resumes += 1
    return True

while kills < KILLS:
    aimed = kills % 2 == 1
    p, lines, q, th, expected = launch(SLOW_MS if aimed else 0)
    # Spread the kills over the run: this one may cost at most its share of the remaining steps.
    budget = max(1, (STEPS - expected) // (KILLS - kills + 1))
    if aimed:
        target_phase = rng.choice(["begin", "model files written", "optimizer written", "state written", "flushed",
                                   "renamed", "committed"])
        target_n = rng.randint(1, max(1, min(3, budget // EVERY)))  # in the 1st, 2nd or 3rd checkpoint write of this process
        seen = 0
        while True:
            line = q.get()
            if line is None: break
            m = marker.match(line)
            if m and m.group(2) == target_phase:
                seen += 1
                if seen == target_n: break
    elif rng.random() < 0.1:
        time.sleep(rng.uniform(0, 0.15))  # while it starts up (loading the checkpoint)
    else:  # once training has started, within the budget (at the reference run's pace)
        while True:
            line = q.get()
            if line is None or line.startswith("training:"): break
        time.sleep(rng.uniform(0, budget * t_ref / STEPS))
    if p.poll() is not None:
        th.join()
        if p.returncode == 0: fail(f"the run finished before kill {kills + 1} could land; lower the delays or raise STEPS")
        fail(f"the run failed (exit {p.returncode}):\n" + "\n".join(lines[-10:]))
    os.kill(p.pid, signal.SIGKILL)
    p.wait(); th.join()
    kills += 1
    started = check_resumed(lines, expected, killed=True)
    # Where did it land? The last phase the process printed before it died.
    marks = [marker.match(l) for l in lines if marker.match(l)]
    if marks and marks[-1].group(2) != "done":
        in_write += 1
        phases_hit[marks[-1].group(2)] = phases_hit.get(marks[-1].group(2), 0) + 1
    for m in marks:
        if m.group(2) == "renamed": last_committed = max(last_committed, int(m.group(1)))
    # The newest checkpoint must be complete, consistent, and load.
    steps = complete_steps()
    if last_committed and (not steps or max(steps) < last_committed):
        fail(f"kill {kills}: checkpoint {last_committed} was in place before the kill but is gone")
    if steps:
        g = subprocess.run([BIN] + LOAD[:1] + ["--model", VIC] + LOAD[1:],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, env=BASE_ENV)
        if g.returncode != 0: fail(f"kill {kills}: the newest checkpoint (step {max(steps)}) does not load:\n{g.stderr}")
        verified += 1
    if not started: early += 1
    where = "while starting up (before resuming)" if not started else f"in a checkpoint write ({marks[-1].group(2)}, step {int(marks[-1].group(1))})" if marks and marks[-1].group(2) != "done" else "between checkpoints"
    print(f"kill {kills:2d}: {'aimed ' if aimed else 'random'} · {where} · newest complete checkpoint: step {max(steps) if steps else '-'}", flush=True)

p, lines, q, th, expected = launch(0)
p.wait(); th.join()
if p.returncode != 0: fail(f"the final resumed run failed (exit {p.returncode}):\n" + "\n".join(lines[-10:]))
check_resumed(lines, expected, killed=False)

# 4. The finished victim against the reference.
same_curve = open(os.path.join(REF, "loss.csv"), "rb").read() == open(os.path.join(VIC, "loss.csv"), "rb").read()
rows = len(open(os.path.join(VIC, "loss.csv")).read().splitlines()) - 1
final = f"checkpoints/step-{STEPS:07d}"
same_weights = all(open(os.path.join(REF, final, f), "rb").read() == open(os.path.join(VIC, final, f), "rb").read()
                   for f in ("model.safetensors", "optimizer.safetensors"))
leftovers = [n for n in os.listdir(os.path.join(VIC, "checkpoints")) if n.startswith(".tmp-")]
print(f"kill test ({MODEL}): {kills} kills ({in_write} during checkpoint writes: "
      + ", ".join(f"{k} {v}" for k, v in sorted(phases_hit.items())) + f"; {early} while starting up), {verified} checkpoints verified (complete, loaded), "
      f"{resumes} resumes each from the newest complete checkpoint; loss curve ({rows} steps) identical bit for bit: "
      f"{'yes' if same_curve else 'NO'}; final weights and moments identical: {'yes' if same_weights else 'NO'}; "
      f"leftover temporary folders: {len(leftovers)}; {time.time() - t_start:.1f} s", flush=True)
if not (same_curve and same_weights) or leftovers or kills < KILLS or rows != STEPS: sys.exit(1)
print("kills survived with nothing lost", flush=True)
PY
