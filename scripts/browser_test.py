#!/usr/bin/env python3
"""Browser test of the explorer, in headless Chromium driven by Selenium (Debian's chromium + chromium-driver).

Usage: browser_test.py --bin BIN --checkpoint DIR --out DIR [--static PAGE.html:TRACE.json ...]

Live page: starts `BIN serve --model DIR --port 0` (the OS picks a free loopback port), loads the page,
types a sentence, submits it, and checks through the DOM that an attention heatmap is drawn for every
layer x head (from the checkpoint's config) with the causal mask, and that the predicted token is shown;
then an input the model cannot read gives a visible error and a good one still works; the Generate /
Translate button fills in its output. Saves explorer.png. No console errors allowed.

Both: the play panel (temperature, top-k, top-p redraw bars that sum to 1; top-k = 1 leaves one bar;
the attention stepper shows its four stages with the hovered cell's formula; the tour reaches its end).

Static pages: each PAGE.html (from `walkthrough --format html`) loads from file:// with no console
errors, has a <section> for every step of TRACE.json (the same trace as JSON), a heatmap for every
attention step, and the predicted token; a training trace also shows its gradients and update.
Prints 'N passed, N failed' at the end; exit status 1 on any failure.
"""
import argparse, json, os, re, subprocess, sys, time, urllib.request

os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download a driver or browser
for var in ("NO_PROXY", "no_proxy"):
    os.environ[var] = "127.0.0.1,localhost"

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

passed, failed = 0, 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print(f"  ok   {what}")
    else:
        failed += 1
        print(f"  FAIL {what}")
    return cond


def find(path_candidates):
    return next((p for p in path_candidates if p and os.path.exists(p)), None)


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = find([os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"])
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-proxy-server",
              "--window-size=1280,1400", "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = find([os.environ.get("CHROMEDRIVER"), "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
    if not driver:
        sys.exit("chromedriver not found: apt-get install chromium-driver")
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


def console_errors(d):
    return [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]


def checkpoint_dir(path):
    latest = os.path.join(path, "latest")
    if os.path.exists(latest):
        return os.path.join(path, open(latest).read().strip())
    return path


def expected_heads(ckpt):
    """(block, head) pairs the page must draw, from the checkpoint's config.json."""
    cfg = json.load(open(os.path.join(checkpoint_dir(ckpt), "config.json")))
    if str(cfg.get("format", "")).startswith("transformer-seq2seq"):
        m = cfg["model"]
        h = m["heads"]
        blocks = [(f"enc{l}", "self_attn") for l in range(m["encoder_layers"])]
        blocks += [(f"dec{l}", k) for l in range(m["decoder_layers"]) for k in ("self_attn", "cross_attn")]
        return "seq2seq", {(b, k, i) for b, k in blocks for i in range(h)}
    return "gpt", {(f"h{l}", "attn", i) for l in range(cfg["n_layer"]) for i in range(cfg["n_head"])}


def drawn_heads(d):
    heads = set()
    sizes_ok = True
    for svg in d.find_elements(By.CSS_SELECTOR, "svg.heatmap"):
        heads.add((svg.get_attribute("data-block"), svg.get_attribute("data-kind"), int(svg.get_attribute("data-head"))))
        rect = svg.rect
        n = len(svg.find_elements(By.TAG_NAME, "rect"))
        sizes_ok &= rect["width"] > 20 and rect["height"] > 20 and n > 0
    return heads, sizes_ok


def wait_state(d, timeout=120):
    WebDriverWait(d, timeout).until(lambda drv: drv.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error"))
    return d.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def submit(d, text):
    box = d.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    d.find_element(By.ID, "run").click()
    return wait_state(d)


def live(args, d):
    print(f"live page: {args.bin} serve --model {args.checkpoint}")
    kind, expected = expected_heads(args.checkpoint)
    log = open(os.path.join(args.out, "serve.log"), "w")
    server = subprocess.Popen([args.bin, "serve", "--model", args.checkpoint, "--port", "0", "--host", "127.0.0.1"],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        port = None
        deadline = time.time() + 60
        while time.time() < deadline and port is None:
            line = server.stdout.readline()
            if not line:
                break
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            port = int(m.group(1)) if m else None
        if not check(port is not None, "server printed its port"):
            return
        base = f"http://127.0.0.1:{port}"
        info = json.load(urllib.request.urlopen(base + "/api/info", timeout=10))
        check(info["kind"] == kind, f"/api/info says {info['kind']}")
        d.get(base + "/")
        check(d.title == "Transformer explorer", "page loads")
        if os.path.exists(os.path.join(args.checkpoint, "loss.svg")):
            d.find_element(By.CSS_SELECTOR, "#loss > summary").click()
            width = d.execute_script("return document.getElementById('loss-curve').naturalWidth")
            check(width and width > 0, f"the run's loss curve is shown ({width} px wide)")
        sentence = args.sentence
        state = submit(d, sentence)
        check(state == "done", f"typed {sentence!r}, submitted: {d.find_element(By.ID, 'status').text}")
        heads, sizes_ok = drawn_heads(d)
        check(heads == expected, f"a heatmap for every layer x head: {len(heads)} drawn, {len(expected)} expected")
        check(sizes_ok, "every heatmap has cells and a visible size")
        if kind == "gpt":
            masked = d.find_elements(By.CSS_SELECTOR, "svg.heatmap rect.masked")
            check(len(masked) > 0, f"the causal mask is drawn ({len(masked)} masked cells)")
        predicted = d.find_element(By.ID, "predicted-token")
        check(predicted.is_displayed() and predicted.text.strip() != "", f"predicted token shown: {predicted.text!r}")
        check(d.find_element(By.ID, "input-text").text == sentence, "the page shows the sentence typed")
        bars = d.find_elements(By.CSS_SELECTOR, ".next-chart .next-bar")
        check(len(bars) >= 2, f"next-token bar chart ({len(bars)} bars)")
        steps = d.find_elements(By.CSS_SELECTOR, "section.step")
        check(len(steps) > 20, f"every step listed ({len(steps)})")
        d.find_element(By.ID, "expand-all").click()
        check(all(s.get_attribute("open") is not None for s in d.find_elements(By.CSS_SELECTOR, "section.step > details")),
              "Expand all opens every step")
        d.find_element(By.ID, "collapse-all").click()
        play(d, "live page")
        d.execute_script("document.getElementById('explore-form').scrollIntoView()")
        shot = os.path.join(args.out, "explorer.png")
        d.save_screenshot(shot)
        check(os.path.getsize(shot) > 10000, f"screenshot saved: {shot}")
        # An input the model cannot take: a visible error, and the server goes on serving.
        state = submit(d, "\u20ac\u20ac\u20ac" if kind == "gpt" else "x" * 600)
        check(state == "error" and "Error" in d.find_element(By.ID, "status").text,
              f"unreadable input shows an error: {d.find_element(By.ID, 'status').text}")
        state = submit(d, sentence[:-1] or sentence)
        check(state == "done" and len(d.find_elements(By.CSS_SELECTOR, "svg.heatmap")) == len(expected), "a good input after it works")
        d.find_element(By.ID, "complete").click()
        wait_state(d)
        check(d.find_element(By.ID, "completion").text != "", f"{'Generate' if kind == 'gpt' else 'Translate'} shows output")
        errors = console_errors(d)
        # The deliberate 422 above is logged by Chromium as a failed resource load; anything else is a bug.
        errors = [e for e in errors if "422" not in e.get("message", "")]
        check(not errors, f"no console errors {errors[:3]}")
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def bars(d):
    return [float(b.get_attribute("data-p")) for b in d.find_elements(By.CSS_SELECTOR, "#play-bars .play-bar")]


def set_value(d, element_id, value):
    d.execute_script("var e = document.getElementById(arguments[0]); e.value = arguments[1];"
                     "e.dispatchEvent(new Event('input', {bubbles: true}));", element_id, str(value))


def play(d, where, shot=None):
    """The play panel: temperature, top-k, the attention stages with the hovered cell's formula, the tour."""
    if not d.find_elements(By.ID, "play-bars"):
        check(False, f"{where}: the play panel is there")
        return
    before = bars(d)
    check(len(before) >= 2 and abs(sum(before) - 1) < 1e-3, f"{where}: next-token bars sum to 1 ({sum(before):.4f}, {len(before)} bars)")
    set_value(d, "temperature", 0.3)
    cold = bars(d)
    check(cold != before and abs(sum(cold) - 1) < 1e-3 and cold[0] > before[0],
          f"{where}: temperature 0.3 redraws the bars, the favourite grows ({before[0]:.3f} -> {cold[0]:.3f}), still sum to 1")
    set_value(d, "temperature", 2)
    hot = bars(d)
    check(hot[0] < before[0] and abs(sum(hot) - 1) < 1e-3, f"{where}: temperature 2 flattens them ({hot[0]:.3f}), still sum to 1")
    set_value(d, "top-k", 1)
    one = bars(d)
    check(len(one) == 1 and abs(one[0] - 1) < 1e-6, f"{where}: top-k = 1 leaves one bar of probability 1")
    d.find_element(By.ID, "sample").click()
    check(d.find_element(By.ID, "sampled").text != "", f"{where}: sampling with top-k = 1 draws {d.find_element(By.ID, 'sampled').text!r}")
    set_value(d, "top-k", 0)
    set_value(d, "temperature", 1)
    set_value(d, "top-p", 0.5)
    nucleus = bars(d)
    check(abs(sum(nucleus) - 1) < 1e-3 and len(nucleus) <= len(before), f"{where}: top-p 0.5 keeps {len(nucleus)} bars, sum 1")
    set_value(d, "top-p", 1)
    # The attention stages: a head from the picker, four stages, a formula for the hovered cell.
    picker = d.find_element(By.ID, "head-picker")
    options = picker.find_elements(By.TAG_NAME, "option")
    check(len(options) >= 1, f"{where}: the head picker lists {len(options)} heads")
    options[-1].click()
    names = []
    formulas = []
    for i in range(4):
        if i:
            d.find_element(By.ID, "stage-next").click()
        names.append(d.find_element(By.ID, "stage-name").text)
        cell = d.find_elements(By.CSS_SELECTOR, "#stage-matrix td")[0]
        ActionChains(d).move_to_element(cell).perform()
        formulas.append(d.find_element(By.ID, "cell-formula").text)
    check([n.split(" — ")[0] for n in names] == [f"Stage {i} of 4" for i in range(1, 5)] and len(set(names)) == 4,
          f"{where}: stepping shows the four stages ({' | '.join(n.split(' — ')[1][:14] for n in names if ' — ' in n)})")
    check("·" in formulas[0] and "√" in formulas[1] and "/" in formulas[3], f"{where}: the hovered cell's formula: {formulas[0][:60]!r} … {formulas[3][:50]!r}")
    # The guided tour reaches its last step.
    d.find_element(By.ID, "tour-start").click()
    total = int(d.find_element(By.ID, "tour-count").text.split(" of ")[1])
    for _ in range(total - 1):
        d.find_element(By.ID, "tour-next").click()
    last = d.find_element(By.TAG_NAME, "body").get_attribute("data-tour-step")
    check(total >= 8 and last == str(total) and d.find_element(By.ID, "tour-next").get_attribute("disabled") is not None,
          f"{where}: the tour reaches its last step ({last} of {total}: {d.find_element(By.ID, 'tour-title').text!r})")
    if shot:
        d.find_element(By.ID, "tour-close").click()
        set_value(d, "temperature", 0.7)
        d.execute_script("document.getElementById('play').scrollIntoView()")
        d.save_screenshot(shot)
    d.find_element(By.ID, "tour-close").click() if d.find_element(By.ID, "tour").is_displayed() else None
    check(not console_errors(d), f"{where}: no console errors while playing")


def static(page, trace_path, d):
    print(f"static page: {page}")
    trace = json.load(open(trace_path))
    d.get("file://" + os.path.abspath(page))
    check(not console_errors(d), "loads with no console errors")
    ids = [s["id"] for s in trace["steps"]]
    present = set(d.execute_script(
        "return Array.from(document.querySelectorAll('section.step')).map(function (s) { return s.id.slice(5); });"))
    missing = [i for i in ids if i not in present]
    check(not missing and len(present) == len(ids), f"every step present ({len(ids)}; missing {missing[:5]})")
    attention = [s["id"] for s in trace["steps"] if s["op"] == "softmax" and s["id"].endswith(".weights")]
    drawn = [svg.get_attribute("data-step") for svg in d.find_elements(By.CSS_SELECTOR, "svg.heatmap")]
    check(sorted(drawn) == sorted(attention), f"a heatmap for every attention step ({len(drawn)})")
    check(d.find_element(By.ID, "predicted-token").text.strip() != "", "predicted token shown")
    play(d, os.path.basename(page), os.path.join(os.path.dirname(page), "play-" + os.path.basename(page).replace(".html", ".png")))
    if any(s["op"] == "sgd_update" for s in trace["steps"]):
        grads = [s for s in trace["steps"] if s["op"] in ("gradient", "softmax_cross_entropy_grad")]
        check(len(d.find_elements(By.CSS_SELECTOR, "#training .grad-bar")) == len(grads), "training: a bar per gradient")
        check(len(d.find_elements(By.CSS_SELECTOR, "#training svg.update-map")) == 3, "training: the update before / change / after")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sentence", default="ROMEO: But soft")
    p.add_argument("--static", nargs="*", default=[], help="PAGE.html:TRACE.json pairs")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    d = browser()
    try:
        for name, run in [("live page", lambda: live(args, d))] + [
                (pair, (lambda p=pair: static(*p.split(":", 1), d))) for pair in args.static]:
            try:
                run()
            except Exception as e:  # a missing element or a timeout is a failed check, not the end of the run
                check(False, f"{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    finally:
        d.quit()
    print(f"browser test: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
