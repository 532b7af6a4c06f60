import Foundation
import TensorKit
import TransformerKit

/// The explorer's "play" panel: the next-token distribution redrawn from the real logits under a
/// temperature, top-k and top-p (and sampled with them); one head's attention stepped through
/// dot product → ÷√d_k → mask → softmax with the hovered cell's formula in numbers; and a guided
/// tour that walks the steps in order. The page carries its data as JSON, so it works offline.
///
/// Hooks (tests, `scripts/browser_test.py`): `#play-data` (JSON), `#temperature`, `#top-k`, `#top-p`,
/// `#sample`, `#sampled`, `.play-bar[data-p]` (the last one `.play-rest` holds the tokens not drawn),
/// `#head-picker`, `.stage-button[data-stage]`, `#stage-next`, `#stage-name`, `#stage-matrix td`,
/// `#cell-formula`; `#tour-start`, `#tour`, `#tour-next`, `#tour-prev`, `#tour-count`,
/// `body[data-tour-step]`.
extension HTMLRenderer {
    /// Numbers kept per page for the attention stepper (Q, K and four n×m matrices a head); heads
    /// past it are left out of the picker rather than making the page huge.
    static let playBudget = 250_000
    /// Tokens of the next-token distribution kept on the page (all of a small vocabulary).
    static let playTokens = 256

    struct PlayHead: Encodable {
        var step: String
        var label: String
        var rows: [String]
        var cols: [String]
        var dk: Int
        var q: [[Float]]
        var k: [[Float]]
        var scores: [[Float]]
        var scaled: [[Float]]
        var masked: [[Float]]?
        var weights: [[Float]]
    }

    struct PlayNext: Encodable {
        var after: String
        var tokens: [String]
        var logits: [Float]
        var vocabulary: Int
        /// The logits are the trace's own (`out.logits`), not log-probabilities.
        var fromLogits: Bool
    }

    struct TourStop: Encodable {
        var target: String
        var title: String
        var text: String
    }

    struct PlayData: Encodable {
        var next: PlayNext?
        var heads: [PlayHead]
        var tour: [TourStop]
    }

    func playData() -> PlayData {
        PlayData(next: playNext(), heads: playHeads(), tour: tourStops())
    }

    func playNext() -> PlayNext? {
        guard let probs = doc.step("out.next") ?? doc.step("out.probs"), probs.shape.count == 2, probs.shape[0] > 0 else { return nil }
        let cols = probs.shape[1]
        let p = Array(probs.values[((probs.shape[0] - 1) * cols)...])
        // The logits at the same position when the trace has them; else log p (the same up to a constant).
        var z = p.map { $0 > 0 ? Float(Foundation.log(Double($0))) : -.infinity }
        var fromLogits = false
        if let l = doc.step("out.logits"), l.shape.count == 2, l.shape[1] == cols, l.shape[0] >= 1 {
            z = Array(l.values[((l.shape[0] - 1) * cols)...])
            fromLogits = true
        }
        let order = z.indices.filter { z[$0].isFinite }.sorted { z[$0] != z[$1] ? z[$0] > z[$1] : $0 < $1 }.prefix(Self.playTokens)
        let label = { (c: Int) in probs.colLabels[safe: c] ?? doc.vocabulary[safe: c] ?? "\(c)" }
        return PlayNext(
            after: probs.rowLabels.last ?? "", tokens: order.map(label), logits: order.map { z[$0] }, vocabulary: cols,
            fromLogits: fromLogits)
    }

    func playHeads() -> [PlayHead] {
        var out: [PlayHead] = []
        var used = 0
        func rows(_ s: TraceStep) -> [[Float]] {
            let c = s.shape.count == 2 ? s.shape[1] : s.values.count
            return (0..<(s.values.count / max(c, 1))).map { r in s.values[(r * c)..<((r + 1) * c)].map { ($0 * 10000).rounded() / 10000 } }
        }
        for m in doc.attentionMaps {
            let prefix = String(m.step.dropLast(".weights".count))
            guard let scores = doc.step(prefix + ".scores"), scores.inputs.count == 2, let scaled = doc.step(prefix + ".scaled"),
                let q = doc.step(scores.inputs[0]), let k = doc.step(scores.inputs[1]), let w = doc.step(m.step)
            else { continue }
            let masked = doc.step(prefix + ".masked")
            let size = q.values.count + k.values.count + 4 * w.values.count
            guard used + size <= Self.playBudget else { break }
            used += size
            out.append(
                PlayHead(
                    step: prefix, label: m.caption, rows: w.rowLabels, cols: w.colLabels, dk: k.shape.last ?? 1, q: rows(q), k: rows(k),
                    scores: rows(scores), scaled: rows(scaled), masked: masked.map(rows), weights: rows(w)))
        }
        return out
    }

    /// One stop per stage of the computation that this trace has, in order, in our own words.
    func tourStops() -> [TourStop] {
        var out: [TourStop] = []
        func first(_ where_: (TraceStep) -> Bool) -> TraceStep? { doc.steps.first(where: where_) }
        func add(_ s: TraceStep?, _ title: String, _ text: String) {
            guard let s else { return }
            out.append(TourStop(target: "step-" + s.id, title: title, text: text))
        }
        let gpt = doc.gpt != nil
        add(
            first { $0.op == .input }, "1. Tokens become ids",
            "The text is cut into tokens, and each token is replaced by its number in the vocabulary. Everything after this works on those numbers."
        )
        add(
            first { $0.op == .lookup }, "2. Embeddings",
            "Each id picks one row of a learned table: a vector of d_model numbers that stands for the token. Similar tokens end up with similar rows."
        )
        add(
            first { $0.op == .positionalEncoding } ?? first { $0.op == .lookup && $0.id.contains("pos") }, "3. Where each token is",
            gpt
                ? "Attention alone ignores word order, so a second table adds a learned vector for each position."
                : "Attention alone ignores word order, so a fixed pattern of sines and cosines is added, a different one for each position."
        )
        add(
            first { $0.id.hasSuffix(".q") }, "4. Queries, keys and values",
            "Three products with learned matrices give every token a query (what it looks for), a key (what it offers) and a value (what it passes on)."
        )
        add(
            first { $0.id.hasSuffix(".scores") }, "5. Dot products",
            "Each query is compared with every key by a dot product: a large score means this key answers this query well.")
        add(
            first { $0.id.hasSuffix(".scaled") }, "6. Divide by √d_k",
            "The scores are divided by the square root of the key width, so that wider heads do not produce ever larger scores that would make the softmax all-or-nothing."
        )
        add(
            first { $0.id.hasSuffix(".masked") }, "7. The mask",
            gpt
                ? "A token may not look at tokens after it (it must predict them): those scores become −∞, so they get weight 0."
                : "Scores a token may not see (padding; in the decoder, later words) become −∞, so they get weight 0.")
        add(
            first { $0.id.hasSuffix(".weights") }, "8. Softmax: scores become weights",
            "Each row goes through a softmax: all weights are positive and each row sums to 1. The \"Play\" panel above steps through these four stages for any head."
        )
        add(
            first { $0.id.hasSuffix(".context") }, "9. Weighted sum of values",
            "Each token's output is the average of the value vectors, weighted by its row of attention weights.")
        add(
            first { $0.op == .concat } ?? first { $0.id.hasSuffix("attn.out") }, "10. Heads side by side",
            "Every head did this on its own slice; their outputs are put side by side and mixed by one more learned matrix.")
        add(
            first { $0.id.hasSuffix(".residual") }, "11. Residual connection",
            "The block's input is added back to its output, so each block only has to learn a correction and gradients flow easily through many layers."
        )
        add(
            first { $0.op == .layerNorm }, "12. Layer norm",
            "Each row is shifted and scaled to mean 0 and variance 1, then multiplied by γ and shifted by β, which keeps the numbers in a steady range."
        )
        add(
            first { $0.op == .relu || $0.op == .gelu }, "13. Feed-forward network",
            "Each position alone goes through a wider layer, a non-linearity and back: this is where much of what the model knows is stored."
        )
        add(
            doc.step("out.logits"), "14. Logits",
            "The last vectors are multiplied by the output matrix: one score for every token of the vocabulary.")
        if doc.nextToken != nil {
            out.append(
                TourStop(
                    target: "play", title: "15. The next token",
                    text:
                        "A softmax turns the logits into probabilities. Move the temperature: below 1 the favourite wins more often, above 1 the choice spreads out; top-k and top-p cut the tail before sampling."
                ))
        }
        return out
    }

    func playPanel() -> String {
        let data = playData()
        guard data.next != nil || !data.heads.isEmpty else { return "" }
        let json: String
        do {
            let e = JSONEncoder()
            e.outputFormatting = [.withoutEscapingSlashes]
            e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            // "</" cannot appear inside a script element
            json = String(decoding: try e.encode(data), as: UTF8.self).replacingOccurrences(of: "</", with: "<\\/")
        } catch { return "" }
        var out = "<section id=\"play\"><h2>Play with it</h2>"
        out += "<script type=\"application/json\" id=\"play-data\">\(json)</script>"
        out += "<p><button type=\"button\" id=\"tour-start\">Take the guided tour</button></p>"
        if let next = data.next {
            out +=
                """
                <h3>Next token after <span class="after">\(esc(next.after))</span></h3>
                <form class="play-controls" onsubmit="return false">
                <label>temperature <input type="range" id="temperature" min="0.05" max="2" step="0.05" value="1"> <output id="temperature-value">1.00</output></label>
                <label>top-k <input type="number" id="top-k" min="0" max="\(next.tokens.count)" value="0"> <small>(0 = off)</small></label>
                <label>top-p <input type="range" id="top-p" min="0.05" max="1" step="0.05" value="1"> <output id="top-p-value">1.00</output></label>
                <button type="button" id="sample">Sample a token</button> <span id="sampled"></span>
                </form>
                <div id="play-bars" class="next-chart"></div>
                <p class="legend">softmax(z / T) over \(next.fromLogits ? "the trace's logits z" : "log-probabilities")\
                \(next.tokens.count < next.vocabulary ? " of the \(next.tokens.count) most likely of \(next.vocabulary) tokens" : ""); \
                top-k keeps the k largest, top-p the smallest set whose probabilities add up to p; the rest is renormalised to sum to 1.</p>
                """
        }
        if !data.heads.isEmpty {
            out +=
                """
                <h3>One head, stage by stage</h3>
                <p class="play-controls"><label>head <select id="head-picker">\(data.heads.enumerated().map { "<option value=\"\($0.offset)\">\(esc($0.element.label))</option>" }.joined())</select></label>
                <span id="stage-buttons"><button type="button" class="stage-button" data-stage="0">1 · Q·Kᵀ</button>\
                <button type="button" class="stage-button" data-stage="1">2 · ÷√d_k</button>\
                <button type="button" class="stage-button" data-stage="2">3 · mask</button>\
                <button type="button" class="stage-button" data-stage="3">4 · softmax</button></span>
                <button type="button" id="stage-next">Next stage →</button></p>
                <p><strong id="stage-name"></strong></p>
                <div class="table-wrap"><table id="stage-matrix" class="matrix heatmap"></table></div>
                <p id="cell-formula" class="formula">Hover a cell to see how it is computed.</p>
                """
        }
        out +=
            """
            <div id="tour" hidden><p id="tour-count"></p><h3 id="tour-title"></h3><p id="tour-text"></p>\
            <p><button type="button" id="tour-prev">← Back</button> <button type="button" id="tour-next">Next →</button> \
            <button type="button" id="tour-close">Close</button></p></div>
            """
        return out + "</section>"
    }

    static let playCSS = """

        #play { margin: 1rem 0 1.5rem; }
        .play-controls { display: flex; flex-wrap: wrap; gap: 0.4rem 1.2rem; align-items: center; margin: 0.4rem 0; }
        .play-controls input[type=number] { width: 4rem; }
        #sampled { font-family: ui-monospace, monospace; font-weight: 700; color: #0a3069; }
        .play-rest .next-label { color: var(--muted); font-style: italic; }
        .stage-button.active { background: #0969da; color: #fff; border-color: #0969da; }
        #stage-matrix td { cursor: default; } #stage-matrix td.hot { outline: 2px solid #d1242f; }
        #cell-formula { min-height: 2.6em; }
        #tour { position: fixed; right: 1rem; bottom: 1rem; max-width: 26rem; background: #fff; border: 2px solid #0969da;
          border-radius: 8px; padding: 0.5rem 1rem; box-shadow: 0 4px 16px rgba(0,0,0,0.2); z-index: 10; }
        #tour h3 { margin: 0.2rem 0; } #tour-count { color: var(--muted); margin: 0; font-size: 0.85em; }
        .tour-focus { outline: 3px solid #0969da !important; outline-offset: 2px; }

        """

    static let playScript = """

        window.transformerPlay = function () {
          var holder = document.getElementById("play-data");
          if (!holder) { return; }
          var data = JSON.parse(holder.textContent);
          function $(id) { return document.getElementById(id); }
          function fmt(x, d) { return x === -Infinity || x === "-inf" ? "−∞" : Number(x).toFixed(d); }
          function num(x) { return x === "-inf" ? -Infinity : x === "inf" ? Infinity : Number(x); }

          // Next token: softmax(z / T), then top-k and top-p, renormalised.
          var next = data.next;
          function distribution() {
            var T = Math.max(0.05, Number($("temperature").value));
            var k = Math.max(0, Math.floor(Number($("top-k").value) || 0));
            var p = Number($("top-p").value);
            var z = next.logits.map(num), m = Math.max.apply(null, z);
            var w = z.map(function (v) { return Math.exp((v - m) / T); });
            var s = w.reduce(function (a, b) { return a + b; }, 0);
            var probs = w.map(function (v) { return v / s; });
            var order = probs.map(function (v, i) { return i; }).sort(function (a, b) { return probs[b] - probs[a] || a - b; });
            if (k > 0) { order = order.slice(0, k); }
            if (p < 1) {
              var acc = 0, kept = [];
              for (var i = 0; i < order.length; i++) { kept.push(order[i]); acc += probs[order[i]]; if (acc >= p) { break; } }
              order = kept;
            }
            var total = order.reduce(function (a, i) { return a + probs[i]; }, 0);
            return order.map(function (i) { return { token: next.tokens[i], p: probs[i] / total }; });
          }
          function drawBars() {
            $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
            $("top-p-value").textContent = Number($("top-p").value).toFixed(2);
            var dist = distribution(), shown = dist.slice(0, 10), rest = dist.slice(10);
            var restP = rest.reduce(function (a, c) { return a + c.p; }, 0);
            var max = Math.max(shown.length ? shown[0].p : 0, restP) || 1, html = "";
            function row(label, p, cls) {
              return "<div class=\\"next-row " + cls + "\\"><span class=\\"next-label\\"></span><span class=\\"bar-track\\">" +
                "<span class=\\"next-bar play-bar\\" data-p=\\"" + p + "\\" style=\\"width:" + (100 * p / max).toFixed(1) + "%\\"></span></span>" +
                "<span class=\\"bar-value\\">" + p.toFixed(4) + "</span></div>";
            }
            shown.forEach(function (c) { html += row(c.token, c.p, ""); });
            if (rest.length) { html += row("", restP, "play-rest"); }
            $("play-bars").innerHTML = html;
            var labels = $("play-bars").querySelectorAll(".next-label");
            shown.forEach(function (c, i) { labels[i].textContent = c.token; });
            if (rest.length) { labels[labels.length - 1].textContent = "+" + rest.length + " more"; }
          }
          if (next) {
            ["temperature", "top-k", "top-p"].forEach(function (id) { $(id).addEventListener("input", drawBars); });
            $("sample").addEventListener("click", function () {
              var dist = distribution(), u = Math.random(), acc = 0, pick = dist[dist.length - 1];
              for (var i = 0; i < dist.length; i++) { acc += dist[i].p; if (u < acc) { pick = dist[i]; break; } }
              $("sampled").textContent = pick.token;
            });
            drawBars();
          }

          // One head, four stages.
          var stages = ["Dot products S = Q·Kᵀ", "Scaled S / √d_k", "Masked: blocked scores set to −∞", "Softmax per row: the attention weights"];
          var keys = ["scores", "scaled", "masked", "weights"];
          var stage = 0, head = 0;
          function matrix(h, s) { return (h[keys[s]] || h.scaled).map(function (r) { return r.map(num); }); }
          function drawStage() {
            var h = data.heads[head], m = matrix(h, stage);
            $("stage-name").textContent = "Stage " + (stage + 1) + " of 4 — " + stages[stage] + (stage === 2 && !h.masked ? " (this head has no mask)" : "");
            document.querySelectorAll(".stage-button").forEach(function (b) { b.classList.toggle("active", Number(b.dataset.stage) === stage); });
            var lo = Infinity, hi = -Infinity;
            m.forEach(function (r) { r.forEach(function (v) { if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }); });
            var t = $("stage-matrix"); t.innerHTML = "";
            var head_ = t.insertRow(); head_.appendChild(document.createElement("th"));
            h.cols.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; head_.appendChild(th); });
            m.forEach(function (r, i) {
              var tr = t.insertRow(), th = document.createElement("th"); th.textContent = h.rows[i]; th.scope = "row"; tr.appendChild(th);
              r.forEach(function (v, j) {
                var td = tr.insertCell(); td.textContent = fmt(v, 4); td.dataset.i = i; td.dataset.j = j;
                if (!isFinite(v)) { td.className = "masked"; }
                else { var a = hi > lo ? (v - lo) / (hi - lo) : 0; td.style.background = "rgba(33,102,172," + (0.08 + 0.6 * a).toFixed(3) + ")"; }
              });
            });
            $("cell-formula").textContent = "Hover a cell to see how it is computed.";
          }
          function explain(i, j) {
            var h = data.heads[head], q = h.q[i], k = h.k[j], d = Math.sqrt(h.dk);
            var s = num(h.scores[i][j]), sc = num(h.scaled[i][j]), mk = h.masked ? num(h.masked[i][j]) : sc;
            var who = "query " + h.rows[i] + " · key " + h.cols[j];
            if (stage === 0) {
              var terms = q.map(function (v, x) { return fmt(v, 2) + "×" + fmt(k[x], 2); });
              if (terms.length > 6) { terms = terms.slice(0, 5).concat(["… (" + q.length + " terms)"]); }
              return "S[" + h.rows[i] + ", " + h.cols[j] + "] = " + who + " = " + terms.join(" + ") + " = " + fmt(s, 4);
            }
            if (stage === 1) { return fmt(s, 4) + " / √" + h.dk + " = " + fmt(s, 4) + " / " + fmt(d, 4) + " = " + fmt(sc, 4); }
            if (stage === 2) {
              return mk === -Infinity ? "key " + h.cols[j] + " may not be seen by " + h.rows[i] + ": the score becomes −∞ (weight 0 after the softmax)"
                : "key " + h.cols[j] + " may be seen by " + h.rows[i] + ": the score stays " + fmt(mk, 4);
            }
            var row = (h.masked || h.scaled)[i].map(num), m = Math.max.apply(null, row.filter(isFinite));
            var sum = row.reduce(function (a, v) { return a + (isFinite(v) ? Math.exp(v - m) : 0); }, 0);
            if (mk === -Infinity) { return "e^(−∞) = 0, so the weight of " + h.cols[j] + " is exactly 0"; }
            var minus = m < 0 ? " + " + fmt(-m, 4) : " − " + fmt(m, 4);
            return "e^(" + fmt(mk, 4) + minus + ") / Σ_row e^(s" + minus + ") = " + fmt(Math.exp(mk - m), 4) + " / " +
              fmt(sum, 4) + " = " + fmt(Math.exp(mk - m) / sum, 4) + "   (the row's largest score, " + fmt(m, 4) + ", is subtracted first)";
          }
          if (data.heads.length) {
            $("head-picker").addEventListener("change", function () { head = Number(this.value); drawStage(); });
            document.querySelectorAll(".stage-button").forEach(function (b) {
              b.addEventListener("click", function () { stage = Number(b.dataset.stage); drawStage(); });
            });
            $("stage-next").addEventListener("click", function () { stage = (stage + 1) % 4; drawStage(); });
            $("stage-matrix").addEventListener("mouseover", function (e) {
              var td = e.target.closest ? e.target.closest("td") : null;
              if (!td) { return; }
              document.querySelectorAll("#stage-matrix td.hot").forEach(function (c) { c.classList.remove("hot"); });
              td.classList.add("hot");
              $("cell-formula").textContent = explain(Number(td.dataset.i), Number(td.dataset.j));
            });
            drawStage();
          }

          // The guided tour.
          var tour = data.tour, at = 0;
          function showTour() {
            document.querySelectorAll(".tour-focus").forEach(function (e) { e.classList.remove("tour-focus"); });
            var stop = tour[at], el = $(stop.target);
            $("tour").hidden = false;
            $("tour-count").textContent = "Step " + (at + 1) + " of " + tour.length;
            $("tour-title").textContent = stop.title;
            $("tour-text").textContent = stop.text;
            $("tour-prev").disabled = at === 0;
            $("tour-next").disabled = at === tour.length - 1;
            document.body.dataset.tourStep = String(at + 1);
            if (el) {
              var d = el.querySelector("details"); if (d) { d.open = true; }
              el.classList.add("tour-focus"); el.scrollIntoView({ block: "center" });
            }
          }
          if (tour.length) {
            $("tour-start").addEventListener("click", function () { at = 0; showTour(); });
            $("tour-next").addEventListener("click", function () { if (at < tour.length - 1) { at++; showTour(); } });
            $("tour-prev").addEventListener("click", function () { if (at > 0) { at--; showTour(); } });
            $("tour-close").addEventListener("click", function () {
              $("tour").hidden = true; delete document.body.dataset.tourStep;
              document.querySelectorAll(".tour-focus").forEach(function (e) { e.classList.remove("tour-focus"); });
            });
          } else { $("tour-start").hidden = true; }
        };
        window.transformerPlay();

        """
}
