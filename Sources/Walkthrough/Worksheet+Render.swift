import Foundation
import TensorKit
import TransformerKit

/// A worksheet as Markdown, LaTeX, print-ready HTML (A4, the key on its own last page) or JSON.
/// Markdown and LaTeX carry the spec on one line and a `blank: ID` marker before each blank, which
/// is what `check --worksheet` reads back.
extension Worksheet {
    public static let specMarker = "transformer-worksheet:"
    public static let keyMarker = "answer-key"

    /// A given matrix or a step, as the sheet shows it.
    struct Shown {
        var name: String
        var formula: String
        var rows: [String]
        var cols: [String]
        var values: [Float]
        var shape: [Int]
    }

    func givenMatrix(_ name: String) -> Shown? {
        guard let p = trace.parameter(name) else { return nil }
        let short = name.split(separator: ".").last.map(String.init) ?? name
        let m = p.tensor.asMatrix
        var rows = indexLabels("r", m.rows), cols = indexLabels("d", m.cols)
        // Labels from the first step that reads it: a data input shares that step's rows; a weight's
        // rows are the features of the data it multiplies, its columns the step's.
        if let s = trace.steps.first(where: { $0.inputs.contains(name) }), let k = s.inputs.firstIndex(of: name) {
            let product = s.op == .matmul || s.op == .linear
            if k == 0 {
                if s.rowLabels.count == m.rows { rows = s.rowLabels }
                if !product, s.colLabels.count == m.cols {
                    cols = s.colLabels
                } else if product, s.rowLabels.count == m.cols, trace.tensor(s.inputs[1])?.asMatrix.rows == m.cols {
                    cols = s.rowLabels  // attention weights A in Z = A · X: one column per position
                }
            } else {
                let n = s.rowLabels.count
                if let first = trace.step(s.inputs[0]), first.colLabels.count == m.rows, p.shape.count > 1 {
                    rows = first.colLabels
                } else if let a = trace.parameter(s.inputs[0]), a.shape == [n, n], m.rows == n {
                    rows = s.rowLabels  // X in Z = A · X: one row per position
                } else if p.shape.count > 1 {
                    rows = indexLabels("d", m.rows)
                }
                if s.colLabels.count == m.cols { cols = s.colLabels }
            }
        }
        if p.shape.count == 1 { rows = [short] }
        return Shown(name: short, formula: "", rows: rows, cols: cols, values: m.data, shape: [m.rows, m.cols])
    }

    func shownStep(_ s: TraceStep) -> Shown {
        let m = s.tensor.asMatrix
        let rows = s.rowLabels.count == m.rows ? s.rowLabels : indexLabels("r", m.rows)
        let cols = s.colLabels.count == m.cols ? s.colLabels : indexLabels("c", m.cols)
        return Shown(name: s.title, formula: s.formula, rows: rows, cols: cols, values: m.data, shape: [m.rows, m.cols])
    }

    /// A value as the key prints it: at most `decimals` places, trailing zeros dropped on an
    /// integer worksheet's exact answers, `-inf` for a blocked score.
    func cell(_ v: Float, decimals: Int, trim: Bool) -> String {
        if v.isInfinite { return v < 0 ? "-inf" : "inf" }
        var s = formatFixed(Double(v), decimals: decimals)
        if trim, s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s == "-0" ? "0" : s
    }

    func keyCells(_ s: TraceStep) -> [String] {
        let d = displayDecimals(s)
        let asked = blank(s.id)?.decimals
        return s.values.map { cell($0, decimals: d, trim: spec.integers && asked == nil) }
    }

    /// Given numbers: whole on an integer worksheet, one decimal on a decimal one, 4 for the article's.
    var givenDecimals: Int { spec.integers ? 0 : (spec.preset == "article" ? 4 : 1) }

    /// A step's title, and its formula unless the title already states one.
    func heading(_ s: TraceStep) -> String { s.title.contains("=") ? s.title : "\(s.title): \(s.formula)" }

    func instruction(_ b: WorksheetBlank) -> String {
        if let d = b.decimals { return "to \(d) decimals" }
        return "exact"
    }

    var header: String {
        spec.integers
            ? "Replace every ? with your number. Exact answers have at most 2 decimals; answers marked \"to 2 decimals\" are rounded, and later steps use them rounded."
            : "Replace every ? with your number, to 4 decimals (±0.001 is accepted)."
    }

    // MARK: Markdown

    public func markdown(key: Bool = true) -> String {
        var out = [
            "# \(title)", "", "<!-- \(Self.specMarker) \(spec.line) -->", "", header,
            "Grade it with `transformer check --worksheet FILE.md`.", ""
        ]
        func table(_ m: Shown, cells: [String]) {
            out.append("| | " + m.cols.joined(separator: " | ") + " |")
            out.append("|---|" + String(repeating: "---|", count: m.cols.count))
            for r in 0..<m.rows.count {
                out.append("| \(m.rows[r]) | " + cells[(r * m.cols.count)..<((r + 1) * m.cols.count)].joined(separator: " | ") + " |")
            }
            out.append("")
        }
        for (i, sec) in sections.enumerated() {
            out += ["## \(i + 1). \(sec.title)", "", sec.intro, "", "**Given**", ""]
            for g in sec.givens {
                guard let m = givenMatrix(g) else { continue }
                out += ["`\(m.name)` (\(shapeText(m.shape)))", ""]
                table(m, cells: m.values.map { cell($0, decimals: givenDecimals, trim: true) })
            }
            for id in sec.givenSteps {
                guard let s = trace.step(id) else { continue }
                out += ["`\(s.title)` (\(shapeText(s.shape)))", ""]
                table(shownStep(s), cells: keyCells(s))
            }
            for id in sec.steps {
                guard let s = trace.step(id) else { continue }
                let m = shownStep(s)
                if let b = blank(id) {
                    out += ["### Blank \(b.number) — \(heading(s)) (\(shapeText(s.shape)), \(instruction(b)))", ""]
                    out += ["<!-- blank: \(id) -->", ""]
                    table(m, cells: Array(repeating: "?", count: s.values.count))
                } else {
                    out += ["### \(heading(s)) (worked)", ""]
                    table(m, cells: keyCells(s))
                }
            }
        }
        if key {
            out += ["<!-- \(Self.keyMarker) -->", "", "## Answer key", ""]
            for b in blanks {
                guard let s = trace.step(b.step) else { continue }
                out += ["### Blank \(b.number) — \(s.title) (`\(s.id)`)", ""]
                table(shownStep(s), cells: keyCells(s))
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: LaTeX

    public func latex(key: Bool = true) -> String {
        func tex(_ s: String) -> String { replacing(s, LaTeXRenderer.texReplacements) }
        // Blanks and the key are bmatrix, which `check --worksheet` reads back; labels go beside them.
        func bmatrix(_ m: Shown, cells: [String]) -> [String] {
            var lines = ["rows \(tex(m.rows.joined(separator: ", "))); columns \(tex(m.cols.joined(separator: ", ")))", "\\["]
            lines.append("\\begin{bmatrix}")
            for r in 0..<m.rows.count {
                let row = cells[(r * m.cols.count)..<((r + 1) * m.cols.count)].map { $0 == "-inf" ? "-\\infty" : $0 }
                lines.append(row.joined(separator: " & ") + " \\\\")
            }
            lines += ["\\end{bmatrix}", "\\]"]
            return lines
        }
        func matrix(_ m: Shown, cells: [String]) -> [String] {
            var lines = ["\\[", "\\begin{array}{r|" + String(repeating: "r", count: m.cols.count) + "}"]
            lines.append(" & " + m.cols.map { "\\text{\(tex($0))}" }.joined(separator: " & ") + " \\\\ \\hline")
            for r in 0..<m.rows.count {
                let row = cells[(r * m.cols.count)..<((r + 1) * m.cols.count)].map { $0 == "-inf" ? "-\\infty" : $0 }
                lines.append("\\text{\(tex(m.rows[r]))} & " + row.joined(separator: " & ") + " \\\\")
            }
            lines += ["\\end{array}", "\\]"]
            return lines
        }
        var out = ["% \(Self.specMarker) \(spec.line)", "% Compile with xelatex."] + LaTeXRenderer.xelatexPreamble(options: "11pt,a4paper")
        out += [
            "\\usepackage[margin=18mm]{geometry}",
            "\\setlength{\\parindent}{0pt}",
            "\\begin{document}",
            "\\section*{\(tex(title))}",
            tex(header) + " Grade it with \\texttt{transformer check --worksheet FILE.tex}.",
            ""
        ]
        for (i, sec) in sections.enumerated() {
            out += ["\\subsection*{\(i + 1). \(tex(sec.title))}", tex(sec.intro), "", "\\paragraph{Given}"]
            for g in sec.givens {
                guard let m = givenMatrix(g) else { continue }
                out += ["\\textbf{\(tex(m.name))} (\(tex(shapeText(m.shape))))"]
                out += matrix(m, cells: m.values.map { cell($0, decimals: givenDecimals, trim: true) })
            }
            for id in sec.givenSteps {
                guard let s = trace.step(id) else { continue }
                out += ["\\textbf{\(tex(s.title))} (\(tex(shapeText(s.shape))))"]
                out += matrix(shownStep(s), cells: keyCells(s))
            }
            for id in sec.steps {
                guard let s = trace.step(id) else { continue }
                if let b = blank(id) {
                    out += [
                        "\\paragraph{Blank \(b.number): \(tex(heading(s)))} (\(tex(shapeText(s.shape))), \(instruction(b)))"
                    ]
                    out += ["% blank: \(id)"]
                    out += bmatrix(shownStep(s), cells: Array(repeating: "?", count: s.values.count))
                } else {
                    out += ["\\paragraph{\(tex(heading(s))) (worked)}"]
                    out += matrix(shownStep(s), cells: keyCells(s))
                }
            }
        }
        if key {
            out += ["% \(Self.keyMarker)", "\\newpage", "\\section*{Answer key}"]
            for b in blanks {
                guard let s = trace.step(b.step) else { continue }
                out += ["\\paragraph{Blank \(b.number): \(tex(s.title))}"]
                out += bmatrix(shownStep(s), cells: keyCells(s))
            }
        }
        out.append("\\end{document}")
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: HTML

    /// A self-contained page to print: A4, blanks as empty boxes, the key on the last page.
    public func html(key: Bool = true) -> String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
                of: ">", with: "&gt;"
            )
            .replacingOccurrences(of: "\"", with: "&quot;")
        }
        func table(_ m: Shown, cells: [String]?, cls: String) -> String {
            var h = "<table class=\"\(cls)\"><tr><th></th>" + m.cols.map { "<th>\(esc($0))</th>" }.joined() + "</tr>"
            for r in 0..<m.rows.count {
                h += "<tr><th>\(esc(m.rows[r]))</th>"
                for c in 0..<m.cols.count {
                    h +=
                        cells.map { "<td>\(esc($0[r * m.cols.count + c]).replacingOccurrences(of: "-inf", with: "−∞"))</td>" }
                        ?? "<td class=\"box\"></td>"
                }
                h += "</tr>"
            }
            return h + "</table>"
        }
        var body = "<h1>\(esc(title))</h1>\n<p class=\"how\">\(esc(header))</p>\n"
        for (i, sec) in sections.enumerated() {
            body += "<section><h2>\(i + 1). \(esc(sec.title))</h2>\n<p>\(esc(sec.intro))</p>\n<h3>Given</h3><div class=\"givens\">"
            for g in sec.givens {
                guard let m = givenMatrix(g) else { continue }
                body += "<figure><figcaption>\(esc(m.name)) <span>\(shapeText(m.shape))</span></figcaption>"
                body += table(m, cells: m.values.map { cell($0, decimals: givenDecimals, trim: true) }, cls: "given") + "</figure>"
            }
            for id in sec.givenSteps {
                guard let s = trace.step(id) else { continue }
                body += "<figure><figcaption>\(esc(s.title)) <span>\(shapeText(s.shape))</span></figcaption>"
                body += table(shownStep(s), cells: keyCells(s), cls: "given") + "</figure>"
            }
            body += "</div>\n"
            for id in sec.steps {
                guard let s = trace.step(id) else { continue }
                if let b = blank(id) {
                    body += "<div class=\"step\"><h4><span class=\"n\">\(b.number)</span> \(esc(heading(s))) "
                    body +=
                        "<small>\(shapeText(s.shape)), \(instruction(b))</small></h4>\(table(shownStep(s), cells: nil, cls: "blank"))</div>\n"
                } else {
                    body += "<div class=\"step\"><h4>\(esc(heading(s))) <small>worked</small></h4>"
                    body += table(shownStep(s), cells: keyCells(s), cls: "given") + "</div>\n"
                }
            }
            body += "</section>\n"
        }
        if key {
            body += "<section class=\"key\"><h2>Answer key</h2>\n"
            for b in blanks {
                guard let s = trace.step(b.step) else { continue }
                body += "<div class=\"step\"><h4><span class=\"n\">\(b.number)</span> \(esc(s.title))</h4>"
                body += table(shownStep(s), cells: keyCells(s), cls: "given") + "</div>\n"
            }
            body += "</section>\n"
        }
        let css = """
            @page { size: A4; margin: 15mm; }
            body { font: 11pt/1.4 Georgia, serif; max-width: 180mm; margin: 0 auto; color: #111; }
            h1 { font-size: 18pt; } h2 { font-size: 14pt; border-bottom: 1px solid #999; } h4 { font-weight: normal; margin: 10px 0 4px; }
            .how { font-style: italic; } code { font-size: 10pt; } small { color: #555; }
            .givens { display: flex; flex-wrap: wrap; gap: 10px 18px; } figure { margin: 0; } figcaption { font-weight: bold; }
            figcaption span { font-weight: normal; color: #555; font-size: 9pt; }
            table { border-collapse: collapse; margin: 2px 0; } th { font-weight: normal; color: #555; font-size: 9pt; padding: 0 6px; }
            td { border: 1px solid #444; min-width: 12mm; height: 8mm; text-align: right; padding: 0 5px; font-family: Menlo, monospace; }
            td.box { background: #fff; } .step { break-inside: avoid; page-break-inside: avoid; }
            .n { display: inline-block; min-width: 18px; border: 1px solid #111; border-radius: 9px; text-align: center; font-size: 9pt; }
            .key { break-before: page; page-break-before: always; } section { break-inside: auto; }
            """
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(esc(title))</title>
            <!-- \(Self.specMarker) \(spec.line) -->
            <style>\(css)</style></head>
            <body>
            \(body)</body></html>

            """
    }

    // MARK: JSON

    /// The worksheet with an `answers` template (every cell null) to fill in; its `trace` is the key.
    public func json(pretty: Bool = true) throws -> Data {
        var copy = self
        if copy.answers == nil {
            var a: [String: [[AnswerCell]]] = [:]
            for b in blanks {
                guard let s = trace.step(b.step) else { continue }
                let m = s.tensor.asMatrix
                a[b.step] = Array(repeating: Array(repeating: .empty, count: m.cols), count: m.rows)
            }
            copy.answers = a
        }
        return try TraceDocument.encoder(pretty: pretty).encode(copy)
    }
}
