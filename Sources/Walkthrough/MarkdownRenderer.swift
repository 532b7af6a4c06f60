import Foundation
import TransformerKit
import Tokenizers

/// GitHub-flavoured Markdown: one table per matrix, labels in the first column, formulas as code
/// and as a `math` block.
struct MarkdownRenderer {
    let doc: TraceDocument
    let options: RenderOptions

    func render() -> String {
        var out: [String] = []
        out.append("# " + md(doc.title))
        out.append("")
        out.append("| setting | value |")
        out.append("|---|---|")
        for (k, v) in doc.configRows { out.append("| \(md(k)) | \(md(v)) |") }
        for (k, v) in doc.conventions.sorted(by: { $0.key < $1.key }) { out.append("| \(md(k)) | \(md(v)) |") }
        if options.steps.isEmpty && doc.showsCorpus {
            out.append("")
            out.append("## Dataset")
            out.append("")
            for (i, l) in doc.corpus.enumerated() { out.append("\(i + 1). " + md(l)) }
            out.append("")
            out.append("## Vocabulary")
            out.append("")
            let specials = doc.specialTokens
            out.append(
                """
                Size **\(doc.corpusTokenCount)** (distinct corpus tokens; punctuation dropped), plus \(specials.count) special \
                tokens = \(doc.vocabulary.count) ids.
                """
            )
            out.append("")
            out.append(
                doc.vocabulary.prefix(doc.corpusTokenCount).enumerated().map { "\($0.offset)\u{00A0}\(md($0.element))" }.joined(
                    separator: " · "))
            out.append("")
            out.append("Special tokens: " + specials.map { "\($0.id)\u{00A0}\(md($0.token))" }.joined(separator: " · "))
            let general = doc.generalNotes
            if !general.isEmpty {
                out.append("")
                for n in general { out.append("- " + md(n)) }
            }
        } else if options.steps.isEmpty && !doc.generalNotes.isEmpty {
            out.append("")
            for n in doc.generalNotes { out.append("- " + md(n)) }
        }
        var section = ""
        for step in options.visibleSteps(doc) {
            if step.section != section {
                section = step.section
                out.append("")
                out.append("## " + md(section.isEmpty ? "(no section)" : section))
            }
            out.append(contentsOf: renderStep(step))
        }
        let article = doc.seedArticleNotes
        if options.steps.isEmpty && !article.isEmpty {
            out.append("")
            out.append("## Where seed 002 goes wrong")
            out.append("")
            for n in article { out.append("- " + md(n)) }
        }
        return out.joined(separator: "\n") + "\n"
    }

    func renderStep(_ s: TraceStep) -> [String] {
        var out: [String] = [""]
        out.append("### \(md(s.title)) `\(s.id)`")
        out.append("")
        out.append("Formula: " + inlineCode(s.formula))
        if !s.latex.isEmpty {
            out.append("")
            out.append("```math")
            out.append(s.latex)
            out.append("```")
        }
        out.append("")
        var meta = "Shape \(s.shapeText) · op `\(s.op.rawValue)`"
        if !s.inputs.isEmpty { meta += " · inputs: " + s.inputs.map(inlineCode).joined(separator: ", ") }
        out.append(meta)
        out.append("")
        let (cut, hidden) = s.shown(options)
        out.append(contentsOf: matrixTable(cut))
        if hidden > 0 { out.append(""); out.append(md(hiddenColumnsNote(hidden))) }
        if let top = s.topFive {
            out.append("")
            out.append("Top 5 next tokens per row:")
            out.append("")
            out.append("|  | 1 | 2 | 3 | 4 | 5 |")
            out.append("|---|---|---|---|---|---|")
            for (row, items) in top {
                out.append(
                    "| \(md(row)) | "
                        + items.map { "\(md($0.label)) \(formatValue($0.value, decimals: options.decimals))" }.joined(separator: " | ")
                        + " |")
            }
        }
        if let per = s.extras["per_row"] {
            out.append("")
            out.append("Per row: " + per.map { formatValue($0, decimals: options.decimals) }.joined(separator: ", "))
        }
        if !s.notes.isEmpty {
            out.append("")
            for n in s.notes { out.append("- " + md(n)) }
        }
        return out
    }

    func matrixTable(_ s: TraceStep) -> [String] {
        let t = s.tensor
        let places = s.places(options)
        let extra = s.extraColumns
        var header = "|  |"
        var rule = "|---|"
        for c in 0..<t.cols { header += " \(md(s.colLabels[safe: c] ?? "\(c)")) |"; rule += "---:|" }
        for (name, _) in extra { header += " \(md(name)) |"; rule += "---:|" }
        var out = [header, rule]
        for r in 0..<t.rows {
            var line = "| \(md(s.rowLabels[safe: r] ?? "\(r)")) |"
            for c in 0..<t.cols { line += " \(md(formatValue(t[r, c], decimals: places))) |" }
            for (_, vals) in extra { line += " \(formatValue(vals[r], decimals: options.decimals)) |" }
            out.append(line)
        }
        return out
    }

    /// Text with Markdown's active characters escaped, safe in a table cell (`|`) and free of
    /// HTML interpretation (`<start>` stays visible). Newlines become spaces.
    func md(_ s: String) -> String {
        var r = ""
        for ch in s {
            switch ch {
            case "\\", "`", "*", "_", "[", "]", "<", ">", "|", "#": r.append("\\"); r.append(ch)
            case "\n", "\r": r.append(" ")
            default: r.append(ch)
            }
        }
        return r
    }

    /// Inline code that survives backticks inside and `|` in a table.
    func inlineCode(_ s: String) -> String {
        let flat = s.replacingOccurrences(of: "\n", with: " ")
        if !flat.contains("`") { return "`\(flat)`" }
        return "`` \(flat) ``"
    }
}
