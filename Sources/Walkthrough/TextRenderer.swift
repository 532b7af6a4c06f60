import Foundation
import TransformerKit
import Tokenizers

/// Terminal text: aligned columns with token labels, readable at a glance.
struct TextRenderer {
    let doc: TraceDocument
    let options: RenderOptions

    func render() -> String {
        var out: [String] = []
        out.append(doc.title)
        out.append(String(repeating: "═", count: min(options.width, displayWidth(doc.title))))
        out.append(doc.summaryLine)
        for (k, v) in doc.conventions.sorted(by: { $0.key < $1.key }) { out.append("  \(padRight(k, 16)) \(v)") }
        if options.steps.isEmpty && !doc.showsCorpus {
            for n in doc.notes { out.append("  " + n) }
        }
        if options.steps.isEmpty && doc.showsCorpus {
            out.append("")
            out.append("── Dataset ──")
            for (i, l) in doc.corpus.enumerated() { out.append("  \(i + 1). \(l)") }
            out.append("")
            out.append("── Vocabulary ──")
            out.append(
                """
                  size \(doc.corpusTokenCount) (distinct corpus tokens; punctuation dropped) + \
                \(doc.vocabulary.count - doc.corpusTokenCount) special tokens = \(doc.vocabulary.count) ids
                """
            )
            var line = "  "
            for (i, t) in doc.vocabulary.enumerated().prefix(doc.corpusTokenCount) {
                let cell = "\(i):\(t)"
                if displayWidth(line) + displayWidth(cell) + 2 > options.width { out.append(line); line = "  " }
                line += padRight(cell, 7)
            }
            if line.trimmingCharacters(in: .whitespaces) != "" { out.append(line) }
            out.append(
                "  special: " + doc.vocabulary.enumerated().dropFirst(doc.corpusTokenCount).map { "\($0):\($1)" }.joined(separator: "  "))
            for n in doc.notes where !n.hasPrefix("Seed 002:") { out.append("  " + n) }
        }
        var section = ""
        for step in options.visibleSteps(doc) {
            if step.section != section {
                section = step.section
                out.append("")
                out.append("━━ \(section) " + String(repeating: "━", count: max(3, min(options.width, 100) - displayWidth(section) - 4)))
            }
            out.append(contentsOf: renderStep(step))
        }
        let articleNotes = doc.notes.filter { $0.hasPrefix("Seed 002:") }
        if options.steps.isEmpty && !articleNotes.isEmpty {
            out.append("")
            out.append("── Where seed 002's hand calculation goes wrong ──")
            for n in articleNotes { out.append("  • " + n.dropFirst("Seed 002: ".count)) }
        }
        return out.joined(separator: "\n") + "\n"
    }

    func renderStep(_ s: TraceStep) -> [String] {
        var out: [String] = [""]
        out.append("▸ \(s.title)   [\(s.id)]")
        out.append("  \(s.formula)")
        var meta = "  shape \(s.shape.map(String.init).joined(separator: "×")) · op \(s.op.rawValue)"
        if !s.inputs.isEmpty { meta += " · inputs: " + s.inputs.joined(separator: ", ") }
        out.append(meta)
        var extraCols: [(String, [Float])] = []
        for key in ["mean", "std"] {
            if let v = s.extras[key], v.count == s.tensor.rows { extraCols.append((key == "mean" ? "mean μ" : "std σ", v)) }
        }
        let (cut, hidden) = s.shown(options)
        out.append(contentsOf: matrixLines(cut, extra: extraCols).map { "  " + $0 })
        if hidden > 0 { out.append("  " + hiddenColumnsNote(hidden)) }
        if s.op == .softmax && s.shape.last ?? 0 > 12 {
            out.append("  top 5 per row:")
            let t = s.tensor
            for r in 0..<t.rows {
                let top = t.row(r).enumerated().sorted { $0.element > $1.element }.prefix(5)
                out.append(
                    "    " + padRight(s.rowLabels[safe: r] ?? "\(r)", 8)
                        + top.map {
                            "\(s.colLabels[safe: $0.offset] ?? "\($0.offset)") \(formatValue($0.element, decimals: options.decimals))"
                        }.joined(separator: "  "))
            }
        }
        if let per = s.extras["per_row"] {
            out.append("  per row: " + per.map { formatValue($0, decimals: options.decimals) }.joined(separator: "  "))
        }
        for n in s.notes { out.append("  · " + n) }
        return out
    }

    func matrixLines(_ s: TraceStep, extra: [(String, [Float])]) -> [String] {
        let t = s.tensor
        let rows = t.rows, cols = t.cols
        let places = s.isIntegral ? 0 : options.decimals
        let cells = (0..<rows).map { r in (0..<cols).map { formatValue(t[r, $0], decimals: places) } }
        let labelW = max(2, (s.rowLabels.map(displayWidth).max() ?? 0))
        var colW = [Int](repeating: 0, count: cols)
        for c in 0..<cols {
            colW[c] = max(displayWidth(s.colLabels[safe: c] ?? ""), cells.map { displayWidth($0[c]) }.max() ?? 0)
        }
        let extraCells = extra.map { (name, vals) in (name, vals.map { formatValue($0, decimals: options.decimals) }) }
        // Split wide matrices into blocks of columns that fit the width.
        var blocks: [[Int]] = [], current: [Int] = [], used = labelW
        for c in 0..<cols {
            if !current.isEmpty && used + colW[c] + 2 > options.width - 4 { blocks.append(current); current = []; used = labelW }
            current.append(c); used += colW[c] + 2
        }
        if !current.isEmpty || blocks.isEmpty { blocks.append(current) }
        var out: [String] = []
        for (bi, block) in blocks.enumerated() {
            if blocks.count > 1 { out.append("columns \(block.first.map { String($0) } ?? "")–\(block.last.map { String($0) } ?? ""):") }
            var header = padRight("", labelW)
            for c in block { header += "  " + padLeft(s.colLabels[safe: c] ?? "", colW[c]) }
            let isLast = bi == blocks.count - 1
            if isLast {
                for (name, vals) in extraCells {
                    header += "  │ " + padLeft(name, max(displayWidth(name), vals.map(displayWidth).max() ?? 0))
                }
            }
            out.append(header)
            for r in 0..<rows {
                var line = padRight(s.rowLabels[safe: r] ?? "", labelW)
                for c in block { line += "  " + padLeft(cells[r][c], colW[c]) }
                if isLast {
                    for (name, vals) in extraCells {
                        line += "  │ " + padLeft(vals[r], max(displayWidth(name), vals.map(displayWidth).max() ?? 0))
                    }
                }
                out.append(line)
            }
        }
        return out
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
