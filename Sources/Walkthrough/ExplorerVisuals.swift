import Foundation
import TensorKit
import TransformerKit

/// One attention head's weights, read off a trace: the softmax step whose id ends in `.weights`
/// (`enc0.self_attn.head1.weights`, `dec0.cross_attn.weights`, `h2.attn.head0.weights`).
public struct AttentionMap: Sendable, Equatable {
    public var step: String
    /// The id's first part: `enc0`, `dec1`, `h2`.
    public var block: String
    /// The layer's index within its stack (0-based).
    public var layer: Int
    /// `self_attn`, `cross_attn` (encoder–decoder) or `attn` (GPT).
    public var kind: String
    public var head: Int
    /// Where in the model, as the trace names it (`decoder layer 1 · self-attention`).
    public var section: String
    public var rowLabels: [String]
    public var colLabels: [String]
    public var rows: Int, cols: Int
    public var values: [Float]
    /// True where the score was −∞ before the softmax: the mask blocked that key, so its weight is 0 by design.
    public var masked: [Bool]

    /// A file name for its SVG: `attention-dec0-self_attn-head1.svg`.
    public var fileName: String { "attention-\(block)-\(kind)-head\(head).svg" }
    public var caption: String { "\(section) · head \(head)" }
}

extension TraceDocument {
    /// Every attention head's weights, in trace order (layer by layer, heads in order).
    public var attentionMaps: [AttentionMap] {
        steps.compactMap { s in
            guard s.op == .softmax, s.id.hasSuffix(".weights"), s.shape.count == 2 else { return nil }
            let parts = s.id.split(separator: ".").map(String.init)
            guard parts.count >= 3 else { return nil }
            let block = parts[0]
            let layer = Int(block.drop(while: { !$0.isNumber })) ?? 0
            let head = parts.first(where: { $0.hasPrefix("head") }).flatMap { Int($0.dropFirst(4)) } ?? 0
            var masked = Array(repeating: false, count: s.values.count)
            if let input = s.inputs.first.flatMap({ step($0) }), input.values.count == s.values.count {
                masked = input.values.map { $0 == -.infinity }
            }
            return AttentionMap(
                step: s.id, block: block, layer: layer, kind: parts[1], head: head, section: s.section,
                rowLabels: s.rowLabels, colLabels: s.colLabels, rows: s.shape[0], cols: s.shape[1],
                values: s.values, masked: masked)
        }
    }

    /// The distribution over the next token: GPT's `out.next`, else the last row of `out.probs`.
    public var nextToken: NextToken? {
        let step = self.step("out.next") ?? self.step("out.probs")
        guard let step, step.shape.count == 2, step.shape[0] > 0 else { return nil }
        let t = step.tensor
        let r = t.rows - 1
        let top = t.row(r).enumerated().filter { $0.element.isFinite }.sorted { $0.element > $1.element }.prefix(10)
        guard let best = top.first else { return nil }
        let label = { (c: Int) in step.colLabels[safe: c] ?? vocabulary[safe: c] ?? "\(c)" }
        return NextToken(
            after: step.rowLabels[safe: r] ?? "\(r)", token: label(best.offset), id: best.offset, probability: best.element,
            top: top.map { NextToken.Candidate(token: label($0.offset), id: $0.offset, probability: $0.element) })
    }
}

/// The most likely next token and the ten most likely, for the explorer's bar chart and the API.
public struct NextToken: Codable, Sendable, Equatable {
    public struct Candidate: Codable, Sendable, Equatable {
        public var token: String
        public var id: Int
        public var probability: Float
    }
    /// The token (row label) after which it is predicted.
    public var after: String
    public var token: String
    public var id: Int
    public var probability: Float
    public var top: [Candidate]
}

/// Matrices as SVG pictures: the attention heatmaps (inline in the explorer page and as files with
/// `--attention-svg`) and the weight update of a training trace.
///
/// Every element is closed explicitly (`<rect …></rect>`), so the markup is also valid inside HTML.
public enum MatrixSVG {
    public enum Scale: Sendable { case sequential, diverging }

    /// One attention head: white (0) → blue (1), masked cells grey.
    /// - Parameter caption: print the head's name under it (for a file; the page has its own caption).
    public static func attention(_ m: AttentionMap, caption: Bool = false) -> String {
        let attrs =
            """
            class=\"heatmap\" data-step=\"\(esc(m.step))\" data-block=\"\(esc(m.block))\" data-layer=\"\(m.layer)\" \
            data-kind=\"\(esc(m.kind))\" data-head=\"\(m.head)\"
            """
        return render(
            values: m.values, rows: m.rows, cols: m.cols, rowLabels: m.rowLabels, colLabels: m.colLabels,
            masked: m.masked, scale: .sequential, title: m.caption, attributes: attrs, caption: caption)
    }

    /// A labelled matrix as a picture. `masked` cells are drawn grey with the title "masked".
    public static func render(
        values: [Float], rows: Int, cols: Int, rowLabels: [String], colLabels: [String], masked: [Bool] = [],
        scale: Scale, title: String, attributes: String, caption: Bool = false
    ) -> String {
        let cell = Double(max(8, min(30, 300 / max(1, max(rows, cols)))))
        let font = min(12, max(8, cell * 0.55))
        func labelWidth(_ s: String) -> Double { Double(displayWidth(s)) * font * 0.62 }
        let left = (rowLabels.map(labelWidth).max() ?? 0) + 8
        let top = (colLabels.map(labelWidth).max() ?? 0) * 0.8 + 10
        let captionHeight = caption ? font * 2.2 : 0
        let width = max(left + cell * Double(cols) + 4, caption ? labelWidth(title) + 8 : 0)
        let height = top + cell * Double(rows) + 4 + captionHeight
        let maxAbs = values.filter { $0.isFinite }.map { abs($0) }.max() ?? 0
        var out =
            """
            <svg xmlns=\"http://www.w3.org/2000/svg\" \(attributes) width=\"\(fmt(width))\" height=\"\(fmt(height))\" viewBox=\"0 \
            0 \(fmt(width)) \(fmt(height))\" role=\"img\" aria-label=\"\(esc(title))\">
            """
        out += "<title>\(esc(title))</title>"
        if caption {
            out += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"></rect>"
            out +=
                """
                <text x=\"4\" y=\"\(fmt(height - font * 0.6))\" font-family=\"system-ui, 'Noto Sans CJK SC', sans-serif\" \
                font-size=\"\(fmt(font))\" fill=\"#59636e\">\(esc(title))</text>
                """
        }
        out += "<g font-family=\"system-ui, 'Noto Sans CJK SC', sans-serif\" font-size=\"\(fmt(font))\" fill=\"#1f2328\">"
        for (r, label) in rowLabels.prefix(rows).enumerated() {
            out +=
                """
                <text x=\"\(fmt(left - 4))\" y=\"\(fmt(top + cell * (Double(r) + 0.5)))\" text-anchor=\"end\" \
                dominant-baseline=\"middle\">\(esc(label))</text>
                """
        }
        for (c, label) in colLabels.prefix(cols).enumerated() {
            let x = left + cell * (Double(c) + 0.5), y = top - 4
            out += "<text x=\"\(fmt(x))\" y=\"\(fmt(y))\" transform=\"rotate(-50 \(fmt(x)) \(fmt(y)))\">\(esc(label))</text>"
        }
        out += "</g>"
        for r in 0..<rows {
            for c in 0..<cols {
                let i = r * cols + c
                guard i < values.count else { continue }
                let v = values[i]
                let x = fmt(left + cell * Double(c)), y = fmt(top + cell * Double(r)), w = fmt(cell)
                let what = "\(rowLabels[safe: r] ?? "\(r)") · \(colLabels[safe: c] ?? "\(c)")"
                if masked[safe: i] == true || v == -.infinity {
                    out +=
                        """
                        <rect class=\"masked\" x=\"\(x)\" y=\"\(y)\" width=\"\(w)\" height=\"\(w)\" fill=\"#c8c8c8\" \
                        stroke=\"#fff\" stroke-width=\"0.5\"><title>\(esc(what)): masked</title></rect>
                        """
                } else {
                    let colour = scale == .sequential ? sequential(v) : diverging(v, maxAbs: maxAbs)
                    out +=
                        """
                        <rect x=\"\(x)\" y=\"\(y)\" width=\"\(w)\" height=\"\(w)\" fill=\"\(colour)\" stroke=\"#fff\" \
                        stroke-width=\"0.5\"><title>\(esc(what)) = \(formatValue(v, decimals: 4))</title></rect>
                        """
                }
            }
        }
        return out + "</svg>"
    }

    /// A standalone SVG file (with the XML declaration) of one head.
    public static func file(_ m: AttentionMap) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + attention(m, caption: true) + "\n"
    }

    /// Writes one SVG per layer and head into `directory` (created if needed); returns the file names.
    @discardableResult
    public static func writeAttention(_ doc: TraceDocument, to directory: URL) throws -> [String] {
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw WalkthroughError("\(directory.path): cannot create the folder (\(error.localizedDescription))")
        }
        var names: [String] = []
        for m in doc.attentionMaps {
            let url = directory.appendingPathComponent(m.fileName)
            do { try Data(file(m).utf8).write(to: url, options: .atomic) } catch {
                throw WalkthroughError("\(url.path): cannot write (\(error.localizedDescription))")
            }
            names.append(m.fileName)
        }
        return names
    }

    static func sequential(_ v: Float) -> String { HTMLRenderer.sequential(v).0 }
    static func diverging(_ v: Float, maxAbs: Float) -> String { HTMLRenderer.diverging(v, maxAbs: maxAbs).0 }

    static func fmt(_ x: Double) -> String { formatFixed(x, decimals: 1) }

    static func esc(_ s: String) -> String { HTMLRenderer.esc(s) }
}
