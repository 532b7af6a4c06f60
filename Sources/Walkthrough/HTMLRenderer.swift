import Foundation
import TransformerKit
import Tokenizers

/// One self-contained HTML page (inline CSS and a few lines of inline JS, nothing fetched).
///
/// Stable hooks for tests and scripts: each step is `<section class="step" id="step-<id>"
/// data-op="<op>">` holding a `<details>`; each matrix is `<table class="matrix">` (attention
/// weights also `heatmap`); masked cells have class `masked`; the predicted tokens have class
/// `prediction`; the top-5 chart of a vocabulary softmax is `<div class="topk">`.
struct HTMLRenderer {
    let doc: TraceDocument
    let options: RenderOptions
    /// How many of the first steps start expanded.
    var openSteps = 4

    func render() -> String {
        var out = Self.head(title: doc.title)
        out.append("<body>")
        out.append(fragment())
        out.append("<script>\(Self.script)\(Self.playScript)</script>")
        out.append("</body>")
        out.append("</html>")
        return out.joined(separator: "\n") + "\n"
    }

    /// `<!DOCTYPE html>` to `</head>`, shared by the trace page and the live page of `transformer serve`.
    static func head(title: String) -> [String] {
        [
            "<!DOCTYPE html>",
            "<html lang=\"zh\">",
            "<head>",
            "<meta charset=\"utf-8\">",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            "<title>\(esc(title))</title>",
            "<style>\(css)\(explorerCSS)\(playCSS)</style>",
            "</head>"
        ]
    }

    /// Everything inside `<body>` but the script: the header, the explorer's pictures (prediction,
    /// attention, training) and every step. `transformer serve` sends this as the page's new content.
    func fragment() -> String {
        let visible = options.visibleSteps(doc)
        let visibleIDs = Set(visible.map(\.id))
        var out: [String] = []
        out.append("<header>")
        out.append("<h1>\(esc(doc.title))</h1>")
        out.append("<details class=\"config\"><summary>Model: \(esc(doc.summaryLine))</summary>")
        out.append("<table class=\"config\"><tbody>")
        for (k, v) in doc.configRows { out.append("<tr><th>\(esc(k))</th><td>\(esc(v))</td></tr>") }
        for (k, v) in doc.conventions.sorted(by: { $0.key < $1.key }) { out.append("<tr><th>\(esc(k))</th><td>\(esc(v))</td></tr>") }
        out.append("</tbody></table></details>")
        out.append(
            """
            <p class=\"controls\"><button type=\"button\" id=\"expand-all\">Expand all</button> <button type=\"button\" \
            id=\"collapse-all\">Collapse all</button></p>
            """
        )
        out.append("</header>")
        out.append("<main>")
        if options.steps.isEmpty {
            out.append(predictionPanel())
            out.append(playPanel())
            out.append(attentionPanel())
            out.append(trainingPanel())
        }
        if options.steps.isEmpty && doc.showsCorpus {
            out.append("<section id=\"dataset\"><h2>Dataset</h2><ol>")
            for l in doc.corpus { out.append("<li>\(esc(l))</li>") }
            out.append("</ol></section>")
            let specials = doc.specialTokens
            out.append("<section id=\"vocabulary\"><h2>Vocabulary</h2>")
            out.append(
                """
                <p>Size <strong>\(doc.corpusTokenCount)</strong> (distinct corpus tokens; punctuation dropped), plus \
                \(specials.count) special tokens = \(doc.vocabulary.count) ids.</p>
                """
            )
            out.append(
                "<p class=\"vocab\">"
                    + doc.vocabulary.prefix(doc.corpusTokenCount).enumerated().map {
                        "<span class=\"tok\"><small>\($0.offset)</small>\(esc($0.element))</span>"
                    }.joined(separator: " ") + "</p>")
            out.append(
                "<p class=\"vocab specials\">Special tokens: "
                    + specials.map {
                        "<span class=\"tok special\"><small>\($0.id)</small>\(esc($0.token))</span>"
                    }.joined(separator: " ") + "</p>")
            let general = doc.generalNotes
            if !general.isEmpty {
                out.append("<ul class=\"doc-notes\">")
                for n in general { out.append("<li>\(esc(n))</li>") }
                out.append("</ul>")
            }
            out.append("</section>")
        } else if options.steps.isEmpty && !doc.generalNotes.isEmpty {
            out.append("<ul class=\"doc-notes\">")
            for n in doc.generalNotes { out.append("<li>\(esc(n))</li>") }
            out.append("</ul>")
        }
        if options.steps.isEmpty { out.append("<h2 id=\"pipeline\">Every step, in order (click one to open it)</h2>") }
        var section: String? = nil
        for (i, step) in visible.enumerated() {
            if step.section != section {
                section = step.section
                out.append("<h2 class=\"model-section\">\(esc(step.section.isEmpty ? "(no section)" : step.section))</h2>")
            }
            let open = i < openSteps || step.id == "out.predicted" || step.op == .crossEntropy
            out.append(renderStep(step, open: open, visibleIDs: visibleIDs))
        }
        let article = doc.seedArticleNotes
        if options.steps.isEmpty && !article.isEmpty {
            out.append("<section id=\"seed-errors\"><h2>Where seed 002 goes wrong</h2><ul>")
            for n in article { out.append("<li>\(esc(n))</li>") }
            out.append("</ul></section>")
        }
        out.append("</main>")
        return out.joined(separator: "\n")
    }

    func renderStep(_ s: TraceStep, open: Bool, visibleIDs: Set<String>) -> String {
        var out: [String] = []
        out.append("<section class=\"step\" id=\"step-\(esc(s.id))\" data-op=\"\(esc(s.op.rawValue))\">")
        out.append("<details\(open ? " open" : "")>")
        out.append(
            """
            <summary><span class=\"step-title\">\(esc(s.title))</span> <code class=\"step-id\">\(esc(s.id))</code> <span \
            class=\"shape\">\(esc(s.shapeText))</span></summary>
            """
        )
        out.append("<div class=\"formula\" data-latex=\"\(esc(s.latex))\">\(esc(s.formula))</div>")
        var meta = "<p class=\"meta\">shape <span class=\"shape\">\(esc(s.shapeText))</span> · op <code>\(esc(s.op.rawValue))</code>"
        if !s.inputs.isEmpty {
            meta +=
                " · inputs: "
                + s.inputs.map { ref in
                    if visibleIDs.contains(ref) && doc.step(ref) != nil {
                        return "<a class=\"input\" href=\"#step-\(esc(ref))\"><code>\(esc(ref))</code></a>"
                    }
                    let kind = doc.step(ref) == nil ? "param" : "input"
                    return "<code class=\"\(kind)\">\(esc(ref))</code>"
                }.joined(separator: ", ")
        }
        out.append(meta + "</p>")
        let (cut, hidden) = s.shown(options)
        out.append(matrixTable(cut))
        if hidden > 0 { out.append("<p class=\"cut\">\(esc(hiddenColumnsNote(hidden)))</p>") }
        if s.id == "out.predicted" || s.op == .argmax { out.append(predictions(s)) }
        if let top = s.topFive { out.append(topChart(top)) }
        if let per = s.extras["per_row"] {
            out.append(
                "<p class=\"per-row\">per row: " + per.map { esc(formatValue($0, decimals: options.decimals)) }.joined(separator: ", ")
                    + "</p>")
        }
        if !s.notes.isEmpty {
            out.append("<ul class=\"notes\">")
            for n in s.notes { out.append("<li>\(esc(n))</li>") }
            out.append("</ul>")
        }
        out.append("</details>")
        out.append("</section>")
        return out.joined(separator: "\n")
    }

    /// Attention weights: a softmax whose id ends in `.weights`.
    func isHeatmap(_ s: TraceStep) -> Bool { s.id.hasSuffix(".weights") }

    /// Where a softmax's input was −∞ (a masked score), so its weight is 0 by the mask, not by chance.
    func maskedPositions(_ s: TraceStep) -> [Bool]? {
        guard s.op == .softmax, let input = s.inputs.first.flatMap({ doc.step($0) }),
            input.values.count == s.values.count, input.values.contains(where: { $0 == -.infinity })
        else { return nil }
        return input.values.map { $0 == -.infinity }
    }

    func matrixTable(_ s: TraceStep) -> String {
        let t = s.tensor
        let places = s.places(options)
        let heat = isHeatmap(s)
        let colour = !s.isIntegral && s.values.count > 1  // a lone number (the loss) needs no scale
        let finite = s.values.filter { $0.isFinite }
        let maxAbs = finite.map { abs($0) }.max() ?? 0
        let masked = maskedPositions(s)
        let extra = s.extraColumns
        var out =
            "<div class=\"table-wrap\"><table class=\"matrix\(heat ? " heatmap" : "")\" data-step=\"\(esc(s.id))\">\n<thead><tr><th class=\"corner\"></th>"
        for c in 0..<t.cols { out += "<th scope=\"col\">\(esc(s.colLabels[safe: c] ?? "\(c)"))</th>" }
        for (name, _) in extra { out += "<th scope=\"col\" class=\"extra\">\(esc(name))</th>" }
        out += "</tr></thead>\n<tbody>\n"
        for r in 0..<t.rows {
            let rowLabel = s.rowLabels[safe: r] ?? "\(r)"
            out += "<tr><th scope=\"row\">\(esc(rowLabel))</th>"
            for c in 0..<t.cols {
                let v = t[r, c]
                let colLabel = s.colLabels[safe: c] ?? "\(c)"
                if v == -.infinity {
                    out += "<td class=\"masked\" title=\"\(esc(rowLabel)) · \(esc(colLabel)): masked, −∞\">−∞</td>"
                    continue
                }
                let text = formatValue(v, decimals: places)
                var classes: [String] = []
                var style = ""
                if masked?[r * t.cols + c] == true {
                    classes.append("masked")
                } else if s.op == .maskMatrix && v == 0 {
                    classes.append("masked")
                } else if colour && v.isFinite {
                    let (bg, dark) = heat ? sequential(v) : diverging(v, maxAbs: maxAbs)
                    style = " style=\"background:\(bg)\(dark ? ";color:#fff" : "")\""
                }
                let cls = classes.isEmpty ? "" : " class=\"\(classes.joined(separator: " "))\""
                let what = classes.contains("masked") ? " (masked)" : ""
                out += "<td\(cls)\(style) title=\"\(esc(rowLabel)) · \(esc(colLabel)) = \(esc(text))\(what)\">\(esc(text))</td>"
            }
            for (_, vals) in extra { out += "<td class=\"extra\">\(esc(formatValue(vals[r], decimals: options.decimals)))</td>" }
            out += "</tr>\n"
        }
        out += "</tbody></table></div>"
        return out
    }

    /// Blue (negative) – white (0) – red (positive), scaled to the matrix's largest |value|; true when the text should be white.
    func diverging(_ v: Float, maxAbs: Float) -> (String, Bool) { Self.diverging(v, maxAbs: maxAbs) }
    /// White (0) → blue (1), for attention weights.
    func sequential(_ v: Float) -> (String, Bool) { Self.sequential(v) }

    static func diverging(_ v: Float, maxAbs: Float) -> (String, Bool) {
        guard maxAbs > 0, v.isFinite else { return ("#ffffff", false) }
        let x = Double(max(-1, min(1, v / maxAbs)))
        let target: (Double, Double, Double) = x < 0 ? (33, 102, 172) : (178, 24, 43)
        let a = abs(x)
        return (rgb(mix(target, a)), a > 0.6)
    }

    static func sequential(_ v: Float) -> (String, Bool) {
        let a = Double(max(0, min(1, v)))
        return (rgb(mix((8, 69, 148), a)), a > 0.55)
    }

    static func mix(_ target: (Double, Double, Double), _ a: Double) -> (Double, Double, Double) {
        (255 + (target.0 - 255) * a, 255 + (target.1 - 255) * a, 255 + (target.2 - 255) * a)
    }

    static func rgb(_ c: (Double, Double, Double)) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "#")]
        for x in [c.0, c.1, c.2] {
            let v = Int(max(0, min(255, x.rounded())))
            out.append(hex[v >> 4]); out.append(hex[v & 15])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The predicted token of each row, read off the argmax ids.
    func predictions(_ s: TraceStep) -> String {
        var out = "<ol class=\"predictions\">"
        for (r, v) in s.values.enumerated() {
            let id = Int(v)
            let token = doc.vocabulary[safe: id] ?? "\(id)"
            out +=
                "<li><span class=\"after\">\(esc(s.rowLabels[safe: r] ?? "\(r)"))</span> → <span class=\"prediction\" data-id=\"\(id)\">\(esc(token))</span></li>"
        }
        return out + "</ol>"
    }

    /// Top five per row as horizontal bars, scaled to the largest probability shown.
    func topChart(_ top: [(row: String, top: [(label: String, value: Float)])]) -> String {
        let maxP = top.flatMap { $0.top.map(\.value) }.filter { $0.isFinite }.max() ?? 1
        var out = "<div class=\"topk\"><p class=\"topk-caption\">Top 5 next tokens per position</p>"
        for (row, items) in top {
            out += "<div class=\"topk-row\"><div class=\"topk-label\">\(esc(row))</div>"
            for item in items {
                let w = maxP > 0 && item.value.isFinite ? Double(item.value / maxP) * 100 : 0
                out += "<div class=\"bar-line\"><span class=\"bar-token\">\(esc(item.label))</span>"
                out +=
                    "<span class=\"bar-track\"><span class=\"bar\" style=\"width:\(formatFixed(Double(w), decimals: 1))%\"></span></span>"
                out += "<span class=\"bar-value\">\(esc(formatValue(item.value, decimals: options.decimals)))</span></div>"
            }
            out += "</div>"
        }
        return out + "</div>"
    }

    /// Text safe in element content and in quoted attributes.
    func esc(_ s: String) -> String { Self.esc(s) }

    static func esc(_ s: String) -> String {
        // Most strings (numbers, labels) need no escaping: a byte scan is far cheaper than walking characters.
        if !s.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) { return s }
        return replacing(s, htmlEntities)
    }

    static let htmlEntities: [Character: String] = ["&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"]

    static let css = """

        :root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --masked: #c8c8c8; }
        body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
               color: var(--fg); margin: 0 auto; padding: 1rem 1.5rem 4rem; max-width: 80rem; line-height: 1.45; }
        h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid var(--line); }
        code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.9em; }
        details.config > summary { cursor: pointer; color: var(--muted); }
        table.config th { text-align: left; font-weight: 600; padding-right: 1rem; font-family: ui-monospace, monospace; }
        table.config td, table.config th { padding: 0.1rem 0.5rem 0.1rem 0; vertical-align: top; }
        .tok { display: inline-block; border: 1px solid var(--line); border-radius: 4px; padding: 0 0.3rem; margin: 0.1rem; }
        .tok small { color: var(--muted); margin-right: 0.25rem; }
        .tok.special { background: #f6f8fa; font-family: ui-monospace, monospace; }
        section.step { margin: 0.4rem 0; border: 1px solid var(--line); border-radius: 6px; }
        section.step > details > summary { cursor: pointer; padding: 0.4rem 0.7rem; background: #f6f8fa; border-radius: 6px; }
        section.step > details[open] > summary { border-bottom: 1px solid var(--line); border-radius: 6px 6px 0 0; }
        section.step > details > :not(summary) { margin-left: 0.8rem; margin-right: 0.8rem; }
        section.step:target { outline: 2px solid #0969da; }
        .step-title { font-weight: 600; } .step-id { color: var(--muted); } summary .shape { color: var(--muted); font-size: 0.85em; }
        .formula { font-family: "Cambria Math", "STIX Two Math", "Latin Modern Math", serif; font-size: 1.05rem; margin: 0.6rem 0 0.3rem; }
        .meta { color: var(--muted); font-size: 0.9em; margin: 0.2rem 0 0.5rem; }
        .table-wrap { overflow-x: auto; }
        table.matrix { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 0.85rem; margin: 0.3rem 0; }
        table.matrix th, table.matrix td { padding: 0.15rem 0.45rem; border: 1px solid #eef0f2; }
        table.matrix td { text-align: right; font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
        table.matrix th { font-weight: 600; background: #fafbfc; white-space: nowrap; }
        table.matrix th[scope=row] { text-align: left; }
        table.matrix td.masked { background: var(--masked); color: #555; }
        table.matrix .extra { background: #f6f8fa; border-left: 2px solid var(--line); }
        table.heatmap td { min-width: 3.2rem; }
        .notes { color: #333; font-size: 0.92em; }
        .predictions { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.4rem 1rem; }
        .prediction { font-weight: 700; font-size: 1.1em; color: #0a3069; }
        .topk { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: 0.6rem 1.2rem; margin: 0.6rem 0; }
        .topk-caption { grid-column: 1 / -1; margin: 0; color: var(--muted); }
        .topk-label { font-weight: 600; margin-bottom: 0.15rem; }
        .bar-line { display: flex; align-items: center; gap: 0.35rem; font-size: 0.85em; }
        .bar-token { width: 3.8rem; text-align: right; white-space: nowrap; overflow: hidden; }
        .bar-track { flex: 1; background: #f0f2f4; height: 0.8rem; border-radius: 2px; }
        .bar { display: block; height: 100%; background: #2166ac; border-radius: 2px; }
        .bar-value { width: 3.5rem; font-family: ui-monospace, monospace; color: var(--muted); }
        button { font: inherit; font-size: 0.85em; }
        @media print { details > summary { list-style: none; } .controls { display: none; } }

        """

    /// Expand/collapse all, and open a step when a link or the address points at it.
    static let script = """

        (function () {
          // Delegated, so that content swapped in by the live page (transformer serve) works too.
          function all(open) { document.querySelectorAll("section.step > details").forEach(function (d) { d.open = open; }); }
          document.addEventListener("click", function (e) {
            var t = e.target;
            if (t && t.id === "expand-all") { all(true); }
            if (t && t.id === "collapse-all") { all(false); }
          });
          function reveal() {
            var id = decodeURIComponent(location.hash.slice(1));
            var el = id ? document.getElementById(id) : null;
            var d = el ? el.querySelector("details") : null;
            if (d) { d.open = true; }
          }
          window.addEventListener("hashchange", reveal);
          reveal();
        })();

        """
}
