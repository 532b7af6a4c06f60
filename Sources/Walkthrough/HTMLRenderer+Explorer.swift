import Foundation
import TensorKit
import TransformerKit

/// The explorer's pictures above the steps: the prediction as a bar chart, every attention head as
/// an SVG heatmap, and for a training trace the gradients and the weight update.
///
/// Hooks for tests and the browser test: `#predicted-token`; `.next-chart` with one `.next-bar` per
/// candidate; `svg.heatmap[data-block][data-layer][data-kind][data-head]` per head, masked cells
/// `rect.masked`; `#training` with `.grad-bar` per gradient and `svg.update-map` for the update.
extension HTMLRenderer {
    func predictionPanel() -> String {
        guard let next = doc.nextToken else { return "" }
        var out = "<section id=\"prediction\"><h2>Prediction</h2>"
        if doc.gpt != nil {
            out += "<p class=\"input-text\">Input: <span id=\"input-text\">\(esc(doc.source))</span></p>"
        } else {
            out +=
                """
                <p class=\"input-text\">Input: <span id=\"input-text\">\(esc(doc.source))</span> → <span \
                id=\"target-text\">\(esc(doc.target))</span></p>
                """
        }
        out += "<p class=\"next-line\">After <span class=\"after\">\(esc(next.after))</span> the most likely next token is "
        out += "<strong id=\"predicted-token\" class=\"next-token\" data-id=\"\(next.id)\">\(esc(next.token))</strong>"
        out += " (p = \(esc(formatValue(next.probability, decimals: 4))))</p>"
        out += "<div class=\"next-chart\" role=\"list\" aria-label=\"Most likely next tokens\">"
        let maxP = next.top.map(\.probability).max() ?? 1
        for c in next.top {
            let w = maxP > 0 ? Double(c.probability / maxP) * 100 : 0
            out += "<div class=\"next-row\" role=\"listitem\"><span class=\"next-label\">\(esc(c.token))</span>"
            out +=
                "<span class=\"bar-track\"><span class=\"next-bar\" style=\"width:\(formatFixed(Double(w), decimals: 1))%\"></span></span>"
            out += "<span class=\"bar-value\">\(esc(formatValue(c.probability, decimals: 4)))</span></div>"
        }
        return out + "</div></section>"
    }

    func attentionPanel() -> String {
        let maps = doc.attentionMaps
        guard !maps.isEmpty else { return "" }
        var out = "<section id=\"attention\"><h2>Attention, every layer and head</h2>"
        out += "<p class=\"legend\">Row: the query token; column: the key it looks at. White = weight 0, dark blue = 1; "
        out +=
            """
            <span class=\"masked-swatch\"></span> grey = masked (a score of −∞ before the softmax: that key may not be seen). \
            Hover a cell for its value; click a caption to open the step.</p>
            """
        var group: String? = nil
        for m in maps {
            let key = "\(m.block).\(m.kind)"
            if key != group {
                if group != nil { out += "</div></div>" }
                group = key
                out +=
                    """
                    <div class=\"attention-group\" data-block=\"\(esc(m.block))\" \
                    data-kind=\"\(esc(m.kind))\"><h3>\(esc(m.section))</h3><div class=\"heads\">
                    """
            }
            out +=
                """
                <figure class=\"head\">\(MatrixSVG.attention(m))<figcaption><a href=\"#step-\(esc(m.step))\">head \
                \(m.head)</a></figcaption></figure>
                """
        }
        if group != nil { out += "</div></div>" }
        return out + "</section>"
    }

    func trainingPanel() -> String {
        let grads = doc.steps.filter { $0.op == .gradient || $0.op == .softmaxCrossEntropyGrad }
        let updates = doc.steps.filter { $0.op == .sgdUpdate }
        guard !grads.isEmpty || !updates.isEmpty else { return "" }
        var out = "<section id=\"training\"><h2>Training step: gradients and the update</h2>"
        if let loss = doc.step("out.loss")?.values.first {
            out += "<p>Loss before the step: <strong>\(esc(formatValue(loss, decimals: 4)))</strong>.</p>"
        }
        out +=
            "<p class=\"legend\">Size of each gradient (its Frobenius norm ‖g‖ = √Σg²): the longer the bar, the more that matrix moves.</p>"
        let norms = grads.map { g in (g, g.values.reduce(Float(0)) { $0 + ($1.isFinite ? $1 * $1 : 0) }.squareRoot()) }
        let maxNorm = norms.map(\.1).max() ?? 1
        out += "<div class=\"grad-chart\">"
        for (g, n) in norms {
            let w = maxNorm > 0 ? Double(n / maxNorm) * 100 : 0
            out += "<div class=\"next-row\"><a class=\"grad-label\" href=\"#step-\(esc(g.id))\">\(esc(g.title))</a>"
            out +=
                """
                <span class=\"bar-track\"><span class=\"grad-bar\" data-step=\"\(esc(g.id))\" \
                style=\"width:\(formatFixed(Double(w), decimals: 1))%\"></span></span>
                """
            out += "<span class=\"bar-value\">\(esc(formatValue(n, decimals: 4)))</span></div>"
        }
        out += "</div>"
        for u in updates {
            guard let before = u.inputs.first.flatMap({ doc.tensor($0) }), before.count == u.values.count else { continue }
            let rows = u.shape.first ?? 1, cols = u.shape.last ?? u.values.count
            let delta = zip(u.values, before.data).map { $0 - $1 }
            out += "<h3>\(esc(u.title))</h3><p class=\"formula\">\(esc(u.formula))</p><div class=\"heads\">"
            for (name, values, scale) in [
                ("before", before.data, MatrixSVG.Scale.diverging), ("change (after − before)", delta, .diverging),
                ("after", u.values, .diverging)
            ] {
                let attrs = "class=\"update-map\" data-step=\"\(esc(u.id))\" data-part=\"\(esc(name))\""
                out +=
                    "<figure class=\"head\">"
                    + MatrixSVG.render(
                        values: values, rows: rows, cols: cols, rowLabels: u.rowLabels, colLabels: u.colLabels,
                        scale: scale, title: "\(u.title): \(name)", attributes: attrs)
                out += "<figcaption>\(esc(name))</figcaption></figure>"
            }
            out += "</div>"
            for n in u.notes { out += "<p class=\"notes\">\(esc(n))</p>" }
        }
        return out + "</section>"
    }

    /// Styles of the explorer's pictures and the live page's form (appended to `css`).
    static let explorerCSS = """

        #prediction, #attention, #training { margin: 1rem 0 1.5rem; }
        .next-token { font-size: 1.4em; color: #0a3069; background: #ddf4ff; padding: 0 0.3rem; border-radius: 4px; }
        .next-chart, .grad-chart { max-width: 40rem; }
        .next-row { display: flex; align-items: center; gap: 0.5rem; font-size: 0.9em; margin: 0.1rem 0; }
        .next-label { width: 6rem; text-align: right; white-space: nowrap; overflow: hidden; font-family: ui-monospace, monospace; }
        .grad-label { width: 16rem; text-align: right; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
        .next-bar { display: block; height: 100%; background: #2166ac; border-radius: 2px; }
        .grad-bar { display: block; height: 100%; background: #b2182b; border-radius: 2px; }
        .heads { display: flex; flex-wrap: wrap; gap: 0.5rem 1.2rem; align-items: flex-end; }
        figure.head { margin: 0; } figure.head figcaption { text-align: center; font-size: 0.85em; color: var(--muted); }
        .attention-group h3 { font-size: 1rem; margin: 0.8rem 0 0.3rem; }
        .legend { color: var(--muted); font-size: 0.9em; }
        .masked-swatch { display: inline-block; width: 0.9em; height: 0.9em; background: var(--masked); vertical-align: middle; }
        form#explore-form { display: flex; gap: 0.5rem; flex-wrap: wrap; align-items: center; margin: 0.5rem 0; }
        form#explore-form input[type=text] { flex: 1; min-width: 16rem; font: inherit; padding: 0.3rem 0.5rem; }
        #status { color: var(--muted); } body[data-state=error] #status { color: #b2182b; }
        #completion { font-family: ui-monospace, monospace; white-space: pre-wrap; }

        """

    /// The live page's script: posts the text to `/api/trace` and shows the answer's page fragment (the only
    /// part it asks for: the trace's steps as JSON would more than double the answer).
    static let liveScript = """

        (function () {
          var form = document.getElementById("explore-form"), input = document.getElementById("text");
          var status = document.getElementById("status"), target = document.getElementById("explorer");
          var completion = document.getElementById("completion"), more = document.getElementById("complete");
          function post(path, body) {
            return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
              .then(function (r) { return r.json().then(function (j) { if (!r.ok) { throw new Error(j.error || ("HTTP " + r.status)); } return j; }); });
          }
          function fail(err) { status.textContent = "Error: " + err.message; document.body.dataset.state = "error"; }
          form.addEventListener("submit", function (e) {
            e.preventDefault();
            status.textContent = "Running the model…"; document.body.dataset.state = "busy";
            post("/api/trace", { text: input.value, include: ["html"] }).then(function (j) {
              target.innerHTML = j.html;
              if (window.transformerPlay) { window.transformerPlay(); }
              status.textContent = j.prediction ? "Predicted next token: " + j.prediction.token : "Done.";
              document.body.dataset.state = "done";
            }).catch(fail);
          });
          if (more) {
            more.addEventListener("click", function () {
              status.textContent = "Running the model…"; document.body.dataset.state = "busy";
              post(more.dataset.api, { text: input.value }).then(function (j) {
                completion.textContent = j.output; status.textContent = "Done."; document.body.dataset.state = "done";
              }).catch(fail);
            });
          }
        })();

        """
}

/// The explorer as HTML for other modules (`transformer serve`): a trace's page content, and the
/// live page that fetches it.
public enum ExplorerPage {
    /// The inside of the trace page's `<body>` (header, pictures, steps), without the script.
    public static func fragment(_ doc: TraceDocument, options: RenderOptions = RenderOptions()) -> String {
        HTMLRenderer(doc: doc, options: options).fragment()
    }

    /// The page `transformer serve` sends: a text box, and the explorer of whatever the model made of it.
    /// - Parameters:
    ///   - model: one line describing the model.
    ///   - completion: the second button's label and API path (`Generate`, `/api/generate`), if any.
    ///   - maxCharacters: the longest text the server accepts.
    ///   - lossCurve: where the page finds the run's loss curve (an SVG), if it has one.
    public static func live(
        model: String, completion: (label: String, path: String)?, maxCharacters: Int, example: String,
        lossCurve: String? = nil
    ) -> String {
        let esc = HTMLRenderer.esc
        var out = HTMLRenderer.head(title: "Transformer explorer")
        out.append("<body data-state=\"ready\">")
        out.append("<h1>Transformer explorer</h1>")
        out.append("<p class=\"meta\" id=\"model\">\(esc(model))</p>")
        if let lossCurve {
            out.append(
                """
                <details id=\"loss\"><summary>Training loss of this run</summary><img id=\"loss-curve\" src=\"\(esc(lossCurve))\" \
                alt=\"The training loss curve of this run\" width=\"720\" height=\"420\"></details>
                """
            )
        }
        out.append("<form id=\"explore-form\"><label for=\"text\">Text</label>")
        out.append(
            "<input type=\"text\" id=\"text\" name=\"text\" maxlength=\"\(maxCharacters)\" value=\"\(esc(example))\" autocomplete=\"off\">")
        out.append("<button type=\"submit\" id=\"run\">Show every step</button>")
        if let completion {
            out.append("<button type=\"button\" id=\"complete\" data-api=\"\(esc(completion.path))\">\(esc(completion.label))</button>")
        }
        out.append("</form>")
        out.append("<p id=\"status\" role=\"status\">Type a text (at most \(maxCharacters) characters) and press “Show every step”.</p>")
        out.append("<p id=\"completion\"></p>")
        out.append("<div id=\"explorer\"></div>")
        out.append("<script>\(HTMLRenderer.script)\(HTMLRenderer.playScript)\(HTMLRenderer.liveScript)</script>")
        out.append("</body>")
        out.append("</html>")
        return out.joined(separator: "\n") + "\n"
    }
}
