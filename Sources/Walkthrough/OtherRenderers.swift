import Foundation
import TransformerKit

extension TraceDocument {
    /// Markdown, LaTeX and HTML (written by their own renderers).
    func renderOther(_ format: TraceFormat, options: RenderOptions) throws -> String {
        switch format {
        case .markdown: return MarkdownRenderer(doc: self, options: options).render()
        case .latex: return LaTeXRenderer(doc: self, options: options).render()
        case .html: return HTMLRenderer(doc: self, options: options).render()
        case .text: return TextRenderer(doc: self, options: options).render()
        case .json, .csv:
            throw WalkthroughError(
                """
                the \(format.rawValue) format is not a single rendered document here (use TraceDocument.render for json, \
                CSVExport for csv)
                """
            )
        }
    }

    /// The notes that list where seed 002's article goes wrong, without their `Seed 002: ` prefix.
    var seedArticleNotes: [String] {
        notes.filter { $0.hasPrefix(seedNotePrefix) }.map { String($0.dropFirst(seedNotePrefix.count)) }
    }

    /// The general notes (input mapped to `<unk>`, weights file, …).
    var generalNotes: [String] { notes.filter { !$0.hasPrefix(seedNotePrefix) } }

    /// The specials: ids from `corpusTokenCount` on.
    var specialTokens: [(id: Int, token: String)] {
        vocabulary.enumerated().dropFirst(corpusTokenCount).map { ($0.offset, $0.element) }
    }

    /// The configuration as (name, value) rows, shared by the table-making renderers.
    var configRows: [(String, String)] {
        let c = config
        if let g = gpt {
            let rows = [
                ("d_model", "\(g.dModel)"), ("heads", "\(g.heads)"), ("d_ff", "\(g.dFF)"),
                ("layers", "\(g.layers) decoder-only block\(g.layers == 1 ? "" : "s")"), ("context", "\(g.contextLength) positions"),
                ("vocabulary", "\(vocabulary.count) ids")
            ]
            return rows.filter { conventions[$0.0] == nil }
        }
        let rows = [
            ("d_model", "\(c.dModel)"), ("heads", "\(c.heads)"), ("d_k", "\(c.headSize)"), ("d_ff", "\(c.dFF)"),
            ("layers", "\(c.encoderLayers) encoder + \(c.decoderLayers) decoder"), ("vocabulary", "\(vocabulary.count) ids")
        ]
        return rows.filter { conventions[$0.0] == nil }  // a convention row says more (e.g. d_k = d_model / h)
    }
}

let seedNotePrefix = "Seed 002: "

extension TraceDocument {
    /// The sizes in one line (the text renderer's header).
    var summaryLine: String {
        if let g = gpt {
            return
                """
                GPT · d_model \(g.dModel) · heads \(g.heads) · d_k \(g.headSize) · d_ff \(g.dFF) · layers \(g.layers) · context \
                \(g.contextLength) · vocabulary \(vocabulary.count)
                """
        }
        let c = config
        return
            """
            d_model \(c.dModel) · heads \(c.heads) · d_k \(c.headSize) · d_ff \(c.dFF) · layers \
            \(c.encoderLayers)+\(c.decoderLayers) · vocabulary \(vocabulary.count)
            """
    }

    /// Whether to print the dataset and vocabulary sections: not for a checkpoint's text (no corpus,
    /// a vocabulary of tens of thousands).
    var showsCorpus: Bool { !corpus.isEmpty }
}

extension TraceStep {
    /// Decimal places a renderer uses for this step's values.
    func places(_ options: RenderOptions) -> Int { isIntegral ? 0 : options.decimals }

    /// The per-row columns that accompany a layer norm (`mean μ`, `std σ`), when present and the right length.
    var extraColumns: [(name: String, values: [Float])] {
        let rows = tensor.rows
        var out: [(String, [Float])] = []
        for key in ["mean", "std"] {
            if let v = extras[key], v.count == rows { out.append((key == "mean" ? "mean μ" : "std σ", v)) }
        }
        return out
    }

    /// The five largest entries of each row (the next-token distribution), for wide softmax outputs.
    var topFive: [(row: String, top: [(label: String, value: Float)])]? {
        guard op == .softmax, (shape.last ?? 0) > 12 else { return nil }
        let t = tensor
        return (0..<t.rows).map { r in
            let top = t.row(r).enumerated().sorted { $0.element > $1.element }.prefix(5)
            return (rowLabels[safe: r] ?? "\(r)", top.map { (colLabels[safe: $0.offset] ?? "\($0.offset)", $0.element) })
        }
    }

    var shapeText: String { shape.map(String.init).joined(separator: "×") }

    /// The step cut to its first `options.maxColumns` columns when it is wider, and how many were cut.
    func shown(_ options: RenderOptions) -> (step: TraceStep, hidden: Int) {
        guard options.maxColumns > 0, shape.count == 2, shape[1] > options.maxColumns, values.count == shape[0] * shape[1] else {
            return (self, 0)
        }
        let r = shape[0], c = shape[1], k = options.maxColumns
        var s = self
        s.values = (0..<r).flatMap { values[($0 * c)..<($0 * c + k)] }
        s.colLabels = Array(colLabels.prefix(k))
        s.shape = [r, k]
        return (s, c - k)
    }
}

/// The line under a cut matrix.
func hiddenColumnsNote(_ hidden: Int) -> String {
    "… and \(hidden) more columns not shown (--max-columns 0 shows them; --format json and csv hold every value)."
}

extension TraceStep {
}
