import Foundation
import Testing
import TensorKit
import TransformerKit
@testable import Walkthrough

/// Markdown, LaTeX, HTML and CSV renderings of the default (seed 002) trace.
@Suite struct RendererTests {
    let doc: TraceDocument

    init() throws { doc = try WalkthroughSetup().run() }

    /// The cells of a Markdown table row, trimmed (`| a | b |` → `["a", "b"]`).
    func markdownCells(_ line: String) -> [String] {
        line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The lines of a Markdown rendering from a step's heading to the next heading.
    func markdownStep(_ md: String, _ id: String) -> [Substring] {
        let lines = md.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("### ") && $0.hasSuffix("`\(id)`") }) else { return [] }
        let rest = lines[(start + 1)...]
        let end = rest.firstIndex(where: { $0.hasPrefix("#") }) ?? lines.endIndex
        return Array(lines[start..<end])
    }

    // MARK: Markdown

    @Test func markdownTableRowMatchesStepValues() throws {
        var opts = RenderOptions()
        opts.decimals = 3
        let md = try doc.render(.markdown, options: opts)
        let step = try #require(doc.step("src.embed"))
        let block = markdownStep(md, "src.embed")
        #expect(!block.isEmpty)
        let header = try #require(block.first { $0.hasPrefix("|  |") })
        #expect(markdownCells(String(header)) == [""] + step.colLabels)
        let row = try #require(block.first { $0.hasPrefix("| 马 |") })
        let cells = markdownCells(String(row))
        #expect(cells.first == "马")
        let expected = (0..<step.shape[1]).map { formatValue(step.values[$0], decimals: 3) }
        #expect(Array(cells.dropFirst()) == expected)
        // The printed numbers are the values to 3 decimals.
        for (cell, v) in zip(cells.dropFirst(), step.values.prefix(step.shape[1])) {
            #expect(abs((Double(cell) ?? .nan) - Double(v)) <= 0.0005 + 1e-9)
        }
    }

    @Test func markdownHasDocumentPartsAndSpecialCases() throws {
        let md = try doc.render(.markdown)
        #expect(md.hasPrefix("# "))
        #expect(md.contains("## Dataset"))
        #expect(md.contains("Size **36**"))
        #expect(md.contains("Special tokens: 36\u{00A0}\\<pad\\>"))
        #expect(md.contains("## Where seed 002 goes wrong"))
        // One heading per step.
        for s in doc.steps { #expect(md.contains("`\(s.id)`\n")) }
        // Layer norm shows mean and std columns.
        let norm = markdownStep(md, "enc0.attn.norm")
        #expect(norm.contains { $0.hasPrefix("|  |") && $0.hasSuffix("| mean μ | std σ |") })
        // Integral steps print without decimals; masked scores print -∞.
        let ids = markdownStep(md, "src.ids")
        #expect(ids.contains("| 马 | 10 |"))
        let masked = markdownStep(md, "dec0.self_attn.head0.masked")
        #expect(masked.contains { $0.hasPrefix("| \\<start\\> |") && $0.contains("| -∞ |") })
        // A filter leaves out the dataset and the article's errors.
        var opts = RenderOptions()
        opts.steps = ["*.weights"]
        let filtered = try doc.render(.markdown, options: opts)
        #expect(!filtered.contains("## Dataset") && !filtered.contains("Where seed 002"))
        #expect(filtered.components(separatedBy: "\n### ").count - 1 == opts.visibleSteps(doc).count)
    }

    @Test func markdownEscapesPipes() {
        let r = MarkdownRenderer(doc: doc, options: RenderOptions())
        #expect(r.md("a|b") == "a\\|b")
        #expect(r.md("<pad>") == "\\<pad\\>")
        #expect(!r.md("x\ny").contains("\n"))
    }

    // MARK: LaTeX

    @Test func latexIsACompleteBalancedDocument() throws {
        let tex = try doc.render(.latex)
        #expect(tex.contains("\\documentclass"))
        #expect(tex.contains("\\usepackage{amsmath}"))
        #expect(tex.contains("\\usepackage{xeCJK}"))
        #expect(tex.contains("xelatex"))
        #expect(tex.components(separatedBy: "\\begin{document}").count == 2)
        #expect(tex.components(separatedBy: "\\end{document}").count == 2)
        #expect(tex.contains("\\begin{bmatrix}"))
        // Every environment opened is closed, in order.
        var stack: [String] = []
        let regex = try NSRegularExpression(pattern: #"\\(begin|end)\{([A-Za-z*]+)\}"#)
        let ns = tex as NSString
        var mismatches = 0
        for m in regex.matches(in: tex, range: NSRange(location: 0, length: ns.length)) {
            let kind = ns.substring(with: m.range(at: 1)), name = ns.substring(with: m.range(at: 2))
            if kind == "begin" { stack.append(name) } else if stack.popLast() != name { mismatches += 1 }
        }
        #expect(mismatches == 0 && stack.isEmpty)
        // Braces balance (escaped \{ \} aside, comments skipped).
        var depth = 0, minDepth = 0
        for line in tex.split(separator: "\n") {
            var prev: Character = " "
            for ch in line {
                if ch == "%" && prev != "\\" { break }
                if prev != "\\" { if ch == "{" { depth += 1 } else if ch == "}" { depth -= 1; minDepth = min(minDepth, depth) } }
                prev = (prev == "\\" && ch == "\\") ? " " : ch
            }
        }
        #expect(depth == 0 && minDepth == 0)
        // One subsection per step, masked scores as -\infty, no raw specials from the labels.
        #expect(tex.components(separatedBy: "\\subsection*{").count - 1 == doc.steps.count)
        #expect(tex.contains("-\\infty"))
        #expect(!tex.contains("∞"))
        #expect(tex.contains("\\textless{}start\\textgreater{}"))
        #expect(!tex.contains("<start>"))
    }

    @Test func latexSplitsWideMatrices() throws {
        var opts = RenderOptions()
        opts.steps = ["out.logits"]
        let tex = try doc.render(.latex, options: opts)
        let blocks = tex.components(separatedBy: "\\begin{bmatrix}").count - 1
        #expect(blocks >= 4)  // 40 columns
        // No block row has more than 8 cells.
        for chunk in tex.components(separatedBy: "\\begin{bmatrix}").dropFirst() {
            let body = chunk.components(separatedBy: "\\end{bmatrix}")[0]
            for row in body.components(separatedBy: "\\\\") where row.contains("\\cell") {
                #expect(row.components(separatedBy: "&").count <= 8)
            }
        }
    }

    @Test func latexEscapesSpecials() {
        let r = LaTeXRenderer(doc: doc, options: RenderOptions())
        #expect(r.tex("a_b%c&d#e$f{g}h<i>") == "a\\_b\\%c\\&d\\#e\\$f\\{g\\}h\\textless{}i\\textgreater{}")
    }

    // MARK: HTML

    @Test func htmlHasOneSectionPerStepAndNoNetwork() throws {
        let html = try doc.render(.html)
        #expect(html.contains("<meta charset=\"utf-8\">"))
        #expect(html.components(separatedBy: "<section class=\"step\"").count - 1 == doc.steps.count)
        for s in doc.steps {
            #expect(html.contains("<section class=\"step\" id=\"step-\(s.id)\" data-op=\"\(s.op.rawValue)\">"))
        }
        let lower = html.lowercased()
        for bad in ["src=\"http", "href=\"http", "src='http", "href='http", "url(http", "@import", "<link ", "//cdn"] {
            #expect(!lower.contains(bad), "found \(bad)")
        }
        // Inputs link to earlier steps.
        #expect(html.contains("<a class=\"input\" href=\"#step-src.embed\">"))
        // Predictions are marked.
        let predicted = try #require(doc.step("out.predicted"))
        let tokens = predicted.values.map { doc.vocabulary[Int($0)] }
        let marked = html.components(separatedBy: "<span class=\"prediction\"").dropFirst().map {
            String($0.drop(while: { $0 != ">" }).dropFirst().prefix(while: { $0 != "<" }))
        }
        #expect(marked == tokens.map { $0.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;") })
        // Top-5 chart for the vocabulary softmax.
        let probs = try #require(section(html, "out.probs"))
        #expect(probs.components(separatedBy: "class=\"topk-row\"").count - 1 == 7)
        #expect(probs.components(separatedBy: "class=\"bar\"").count - 1 == 35)
        #expect(isBalanced(html))
    }

    @Test func htmlMasksDecoderAttention() throws {
        let html = try doc.render(.html)
        // 7 positions: the causal mask blocks the 21 cells above the diagonal.
        let masked = try #require(section(html, "dec0.self_attn.head0.masked"))
        #expect(masked.components(separatedBy: "<td class=\"masked\"").count - 1 == 21)
        #expect(masked.components(separatedBy: ">−∞</td>").count - 1 == 21)
        let weights = try #require(section(html, "dec0.self_attn.head0.weights"))
        #expect(weights.contains("<table class=\"matrix heatmap\""))
        #expect(weights.components(separatedBy: "<td class=\"masked\"").count - 1 == 21)
        // Unmasked weights are coloured white → blue; the diagonal's first cell is weight 1, full blue.
        #expect(weights.contains("style=\"background:#084594;color:#fff\""))
        // The encoder attention has nothing masked.
        let enc = try #require(section(html, "enc0.self_attn.head0.weights"))
        #expect(!enc.contains("class=\"masked\""))
    }

    @Test func htmlEscapesText() {
        let r = HTMLRenderer(doc: doc, options: RenderOptions())
        #expect(r.esc("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;")
        #expect(r.diverging(1, maxAbs: 1).0 == "#b2182b")
        #expect(r.diverging(-1, maxAbs: 1).0 == "#2166ac")
        #expect(r.diverging(0, maxAbs: 1).0 == "#ffffff")
    }

    /// The text of one step's `<section>`.
    func section(_ html: String, _ id: String) -> String? {
        guard let start = html.range(of: "<section class=\"step\" id=\"step-\(id)\"") else { return nil }
        guard let end = html.range(of: "</section>", range: start.upperBound..<html.endIndex) else { return nil }
        return String(html[start.lowerBound..<end.upperBound])
    }

    /// Every non-void element closed in order (script and style content skipped).
    func isBalanced(_ html: String) -> Bool {
        let void: Set<String> = [
            "meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source", "track", "embed", "param"
        ]
        guard let regex = try? NSRegularExpression(pattern: #"<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*>"#) else { return false }
        let ns = html as NSString
        var stack: [String] = []
        var rawUntil: String? = nil
        for m in regex.matches(in: html, range: NSRange(location: 0, length: ns.length)) {
            let closing = ns.substring(with: m.range(at: 1)) == "/"
            let name = ns.substring(with: m.range(at: 2)).lowercased()
            if let raw = rawUntil {
                if closing && name == raw { rawUntil = nil; if stack.popLast() != name { return false } }
                continue
            }
            if void.contains(name) { continue }
            if closing {
                if stack.popLast() != name { return false }
            } else {
                stack.append(name)
                if name == "script" || name == "style" { rawUntil = name }
            }
        }
        return stack.isEmpty && rawUntil == nil
    }

    // MARK: CSV

    /// RFC 4180 parsing: quoted cells may hold commas, doubled quotes and line breaks.
    func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], cell = "", quoted = false
        var chars = Array(text.unicodeScalars)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { cell.unicodeScalars.append("\""); chars.removeFirst() } else { quoted = false }
                } else {
                    cell.unicodeScalars.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                row.append(cell); cell = ""
            } else if c == "\r" || c == "\n" {
                if c == "\r" && chars.first == "\n" { chars.removeFirst() }
                row.append(cell); rows.append(row); row = []; cell = ""
            } else {
                cell.unicodeScalars.append(c)
            }
        }
        if !cell.isEmpty || !row.isEmpty { row.append(cell); rows.append(row) }
        return rows
    }

    func tempFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("renderer-tests-\(UUID().uuidString)")
    }

    @Test func csvWritesOneFilePerStepAndAnIndex() throws {
        let root = tempFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("nested/steps")  // intermediate folders are created
        var opts = RenderOptions()
        opts.decimals = 5
        let n = try CSVExport.write(doc, options: opts, to: folder)
        #expect(n == doc.steps.count)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(files.count == doc.steps.count + 1)
        #expect(files.contains("index.csv"))
        #expect(files.contains("02-src.embed.csv"))

        let index = parseCSV(try String(contentsOf: folder.appendingPathComponent("index.csv"), encoding: .utf8))
        #expect(index.first?.prefix(6) == ["order", "id", "title", "op", "shape", "section"])
        #expect(index.count == doc.steps.count + 1)
        #expect(index.dropFirst().map { $0[1] } == doc.steps.map(\.id))
        #expect(index.allSatisfy { $0.count == index[0].count })
        // Titles and formulas with commas are quoted, and survive a round trip.
        #expect(index.dropFirst().map { $0[7] } == doc.steps.map(\.formula))

        let step = try #require(doc.step("src.embed"))
        let table = parseCSV(try String(contentsOf: folder.appendingPathComponent("02-src.embed.csv"), encoding: .utf8))
        #expect(table.count == step.shape[0] + 1)
        #expect(table[0] == [""] + step.colLabels)
        #expect(table[1][0] == "马")
        #expect(table[1][1] == formatValue(step.values[0], decimals: 5))
        #expect(abs(Float(table[2][3])! - step.values[1 * step.shape[1] + 2]) <= 0.000005 + 1e-7)

        // Masked scores are written -inf; integral steps without decimals.
        let maskedName = try #require(files.first { $0.hasSuffix("-dec0.self_attn.head0.masked.csv") })
        let masked = parseCSV(try String(contentsOf: folder.appendingPathComponent(maskedName), encoding: .utf8))
        #expect(masked[1][2] == "-inf")
        let ids = parseCSV(try String(contentsOf: folder.appendingPathComponent("01-src.ids.csv"), encoding: .utf8))
        #expect(ids[1] == ["马", "10"])
    }

    @Test func csvFilterKeepsOrderNumbers() throws {
        let folder = tempFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var opts = RenderOptions()
        opts.steps = ["out"]
        let n = try CSVExport.write(doc, options: opts, to: folder)
        let visible = opts.visibleSteps(doc)
        #expect(n == visible.count && n > 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(files.count == n + 1)
        let pos = try #require(doc.steps.firstIndex { $0.id == "out.logits" })
        #expect(files.contains(String(format: "%02d-out.logits.csv", pos + 1)))
    }

    @Test func csvQuotingFollowsRFC4180() {
        #expect(CSVExport.quote("plain") == "plain")
        #expect(CSVExport.quote("a,b") == "\"a,b\"")
        #expect(CSVExport.quote("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(CSVExport.quote("two\nlines") == "\"two\nlines\"")
        #expect(CSVExport.quote("crlf\r\nx") == "\"crlf\r\nx\"")
        #expect(parseCSV(CSVExport.encode([["a,b", "c\"d", "e\nf"]])) == [["a,b", "c\"d", "e\nf"]])
        #expect(CSVExport.fileSafe("a/b c.d") == "a_b_c.d")
    }

    @Test func csvRefusesAFileInPlaceOfTheFolder() throws {
        let file = tempFolder()
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: WalkthroughError.self) { try CSVExport.write(doc, options: RenderOptions(), to: file) }
    }
}

/// The renderers' integer number formatting against printf, the reference.
@Suite struct FormatValueTests {
    @Test func fastFormattingEqualsPrintf() {
        var rng = SeededRNG(seed: 11)
        var values: [Float] = [
            0, -0, 1, -1, 0.5, 1.5, 2.5, -2.5, 0.125, -0.125, 0.0005, -0.0005, 0.00049, 123456.789,
            1e-7, -1e-7, 9.9995, 0.015625, 3.14159, 1e7, -16777216, 1e12, 4.5e15, .leastNonzeroMagnitude,
            .greatestFiniteMagnitude, -.greatestFiniteMagnitude
        ]
        for _ in 0..<20_000 {
            let mantissa = Float(Double(rng.next() % 2_000_001) / 1_000_000 - 1)
            let exponent = Int(rng.next() % 17) - 8
            values.append(mantissa * powf(10, Float(exponent)))
            values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())))  // any bit pattern, NaN and ∞ included
        }
        var mismatches: [String] = []
        for v in values {
            for d in [0, 1, 2, 3, 4, 5, 6, 9, 12] where formatValue(v, decimals: d) != formatValueReference(v, decimals: d) {
                mismatches.append("\(v) d=\(d): \(formatValue(v, decimals: d)) vs \(formatValueReference(v, decimals: d))")
            }
        }
        // SVG coordinates and bar widths: Doubles at one decimal.
        for _ in 0..<20_000 {
            let x = (Double(rng.next() % 100_000_001) / 100_000 - 500) * [1, 0.01, 37.5][Int(rng.next() % 3)]
            if formatFixed(x, decimals: 1) != formatFixedReference(x, decimals: 1) {
                mismatches.append("\(x) d=1: \(formatFixed(x, decimals: 1)) vs \(formatFixedReference(x, decimals: 1))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
        // Exact ties round to even, as printf does; a negative number that rounds to zero prints no sign.
        #expect(formatValue(2.5, decimals: 0) == "2")
        #expect(formatValue(0.125, decimals: 2) == "0.12")
        #expect(formatValue(-0.0004, decimals: 3) == "0.000")
        #expect(formatValue(-1.25, decimals: 1) == "-1.2")
    }
}
