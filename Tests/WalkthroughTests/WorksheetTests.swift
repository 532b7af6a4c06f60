import Foundation
import Testing
import TensorKit
import TransformerKit
@testable import Walkthrough

/// `transformer exercise` and `check --worksheet`: worksheets whose key is the trace code's own
/// computation, short answers on integer sheets, and grading that names the mistakes.
@Suite struct WorksheetTests {
    static let articleDoc: TraceDocument = {
        var setup = WalkthroughSetup()
        setup.weightsFile = WalkthroughResources.articleWeightsURL
        return try! setup.run()
    }()

    static func sheets() throws -> [Worksheet] {
        var out: [Worksheet] = []
        for seed in UInt64(1)...4 {
            for integers in [true, false] {
                for t in ExerciseTopic.allCases {
                    out.append(try Worksheet.generate(WorksheetSpec(topics: [t.rawValue], seed: seed, integers: integers)))
                }
                out.append(try Worksheet.generate(WorksheetSpec(topics: [], preset: "yeh-ffn", seed: seed, integers: integers)))
            }
        }
        return out
    }

    @Test func answerKeyReplaysThroughTheTraceCode() throws {
        for sheet in try Self.sheets() {
            #expect(!sheet.blanks.isEmpty)
            // every step recomputed from its inputs by Replay equals the key
            let mismatches = replay(sheet.trace)
            #expect(mismatches.isEmpty, "\(sheet.spec.line): \(mismatches.prefix(3))")
        }
        // The article preset's key is the walkthrough's own trace.
        let article = try Worksheet.generate(WorksheetSpec(topics: [], preset: "article", seed: 1, integers: false)) { Self.articleDoc }
        #expect(article.blanks.map(\.step).contains("enc0.self_attn.weights"))
        for b in article.blanks {
            #expect(article.trace.step(b.step)?.values == Self.articleDoc.step(b.step)?.values)
        }
    }

    @Test func attentionWorksheetEqualsTheHandComputation() throws {
        let sheet = try Worksheet.generate(WorksheetSpec(topics: ["attention"], seed: 2, integers: true))
        let t = { (n: String) in sheet.trace.parameter("attention.\(n)")!.tensor }
        let q = matmul(t("X"), t("W_Q")), k = matmul(t("X"), t("W_K")), v = matmul(t("X"), t("W_V"))
        let weights = softmaxRows(scale(matmul(q, k, transposeB: true), 0.5))
        let context = matmul(roundValues(weights, decimals: 2), v)
        #expect(sheet.trace.step("attention.scores")?.values == matmul(q, k, transposeB: true).data)
        #expect(sheet.trace.step("attention.weights")?.values == weights.data)
        #expect(sheet.trace.step("attention.context")?.values == context.data)
    }

    @Test func integerAnswersHaveAtMostTwoDecimalsAndReLUZeroes() throws {
        for sheet in try Self.sheets() where sheet.spec.integers {
            for b in sheet.blanks {
                let s = try #require(sheet.trace.step(b.step))
                let cells = sheet.keyCells(s)
                for (cell, v) in zip(cells, s.values) {
                    let decimals = cell.split(separator: ".").dropFirst().first?.count ?? 0
                    #expect(decimals <= 2, "\(b.step): \(cell)")
                    guard v.isFinite else { #expect(cell == "-inf"); continue }
                    // exact answers are exactly the key; asked-to-2-decimals ones are the value rounded
                    let want = b.decimals == nil ? Double(v) : (Double(v) * 100).rounded() / 100
                    #expect(abs(Double(cell)! - want) < 1e-4, "\(b.step): \(cell) for \(v)")
                }
            }
            for relu in sheet.trace.steps where relu.op == .relu {
                let input = try #require(sheet.trace.step(relu.inputs[0]))
                #expect(zip(input.values, relu.values).contains { $0 < 0 && $1 == 0 }, "\(sheet.spec.line): the ReLU zeroes nothing")
            }
        }
    }

    @Test func sameSpecSameWorksheet() throws {
        let spec = WorksheetSpec(topics: ["all"], seed: 9, integers: true, blanks: "5")
        let a = try Worksheet.generate(spec), b = try Worksheet.generate(spec)
        #expect(a.markdown() == b.markdown())
        #expect(a.blanks.count == 5)
        #expect(try Worksheet.generate(WorksheetSpec(topics: ["all"], seed: 10, integers: true)).markdown() != a.markdown())
        #expect(throws: WalkthroughError.self) { try Worksheet.generate(WorksheetSpec(topics: ["ffm"], seed: 1)) }
        #expect(throws: WalkthroughError.self) { try Worksheet.generate(WorksheetSpec(topics: ["ffn", "ffn"], seed: 1)) }
        #expect(throws: WalkthroughError.self) { try Worksheet.generate(WorksheetSpec(topics: ["all", "ffn"], seed: 1)) }
        #expect(throws: WalkthroughError.self) {
            try Worksheet.generate(WorksheetSpec(topics: [], preset: "yeh-ffn", seed: 1, blanks: "0"))
        }
        #expect(throws: WalkthroughError.self) { try Worksheet.generate(WorksheetSpec(topics: ["ffn"], seed: 1, blanks: "ffn.nope")) }
    }

    // MARK: Grading

    /// The Markdown with each blank's table rows replaced by `answers[step]` (rows of cells), or by
    /// the key.
    static func fill(_ sheet: Worksheet, _ text: String, replacing answers: [String: [[String]]] = [:]) -> String {
        var lines = text.components(separatedBy: "\n")
        for b in sheet.blanks.reversed() {
            guard let at = lines.firstIndex(of: "<!-- blank: \(b.step) -->") else { continue }
            let s = sheet.trace.step(b.step)!
            var j = at + 1
            while lines[j].isEmpty { j += 1 }
            var end = j
            while end < lines.count, lines[end].hasPrefix("|") { end += 1 }
            let rows: [[String]]
            if let given = answers[b.step] {
                rows = given
            } else {
                let cells = sheet.keyCells(s), c = s.shape[1]
                rows = (0..<s.shape[0]).map { r in Array(cells[(r * c)..<((r + 1) * c)]) }
            }
            let width = rows[0].count
            var table: [String] = ["| " + Array(repeating: "x", count: width).joined(separator: " | ") + " |"]
            table.append("|" + String(repeating: "---|", count: width))
            for r in rows { table.append("| " + r.joined(separator: " | ") + " |") }
            lines.replaceSubrange(j..<end, with: table)
        }
        return lines.joined(separator: "\n")
    }

    static func rows(_ t: Tensor) -> [[String]] {
        let m = t.asMatrix
        return (0..<m.rows).map { r in m.row(r).map { v in v == v.rounded() ? String(Int(v)) : String(format: "%.2f", v) } }
    }

    @Test func threePlantedMistakesAreFoundAndNamed() throws {
        let sheet = try Worksheet.generate(WorksheetSpec(topics: ["attention", "ffn"], seed: 5, integers: true))
        let blank = sheet.markdown(key: false)
        // Filled from the key: all right.
        let (_, allRight) = try Worksheet.grade(text: Self.fill(sheet, blank), name: "filled.md")
        #expect(allRight.allRight, "\(allRight.renderText())")
        #expect(allRight.items.count == sheet.blanks.count)

        let k = try #require(sheet.trace.step("attention.k")).tensor
        let scores = try #require(sheet.trace.step("attention.scores")).tensor
        let hidden = try #require(sheet.trace.step("ffn.hidden")).tensor
        let planted = Self.fill(
            sheet, blank,
            replacing: [
                "attention.k": Self.rows(transpose(k)),  // K written transposed
                "attention.scaled": Self.rows(scores),  // the 1/√d_k left out
                "ffn.act": Self.rows(hidden)  // ReLU not applied: negatives kept
            ])
        let (_, grade) = try Worksheet.grade(text: planted, name: "planted.md")
        let wrong = grade.items.filter { $0.status != "right" }
        #expect(wrong.map(\.step) == ["attention.k", "attention.scaled", "ffn.act"], "\(grade.renderText())")
        let codes = wrong.map { Set(($0.report?.diagnoses ?? []).map(\.code)) }
        #expect(codes.count == 3)
        if codes.count == 3 {
            #expect(codes[0].contains("transposed"))
            #expect(codes[1].contains("missing_scale"))
            #expect(codes[2].contains("relu_negative"))
        }
        #expect(grade.right == sheet.blanks.count - 3)
        #expect(grade.renderText().contains("Score: \(sheet.blanks.count - 3) of \(sheet.blanks.count) blanks right."))
    }

    @Test func unfilledAndOtherFormsAreGraded() throws {
        let sheet = try Worksheet.generate(WorksheetSpec(topics: ["decoder-mask"], seed: 3, integers: true))
        // As written: nothing filled.
        let (_, empty) = try Worksheet.grade(text: sheet.markdown(), name: "blank.md")
        #expect(empty.items.allSatisfy { $0.status == "unfilled" })
        #expect(!empty.allRight)

        // LaTeX with the ? replaced by the key (−∞ as -\infty).
        var tex = sheet.latex(key: false).components(separatedBy: "\n")
        for b in sheet.blanks {
            let s = sheet.trace.step(b.step)!
            let at = tex.firstIndex(of: "% blank: \(b.step)")!
            let begin = tex[at...].firstIndex(of: "\\begin{bmatrix}")!
            let cells = sheet.keyCells(s).map { $0 == "-inf" ? "-\\infty" : $0 }, c = s.shape[1]
            for r in 0..<s.shape[0] {
                tex[begin + 1 + r] = cells[(r * c)..<((r + 1) * c)].joined(separator: " & ") + " \\\\"
            }
        }
        let (_, latex) = try Worksheet.grade(text: tex.joined(separator: "\n"), name: "filled.tex")
        #expect(latex.allRight, "\(latex.renderText())")

        // JSON: answers filled from the key, one cell left null.
        let json = try sheet.json()
        var filled = try TraceDocument.decoder().decode(Worksheet.self, from: json)
        for b in sheet.blanks {
            let s = sheet.trace.step(b.step)!
            let c = s.shape[1]
            filled.answers?[b.step] = (0..<s.shape[0]).map { r in
                s.values[(r * c)..<((r + 1) * c)].map { $0.isFinite ? .number((Double($0) * 100).rounded() / 100) : .text("-inf") }
            }
        }
        let (_, viaJSON) = try Worksheet.grade(text: String(decoding: try filled.json(), as: UTF8.self), name: "filled.json")
        #expect(viaJSON.allRight, "\(viaJSON.renderText())")
        filled.answers?[sheet.blanks[0].step]?[0][0] = .empty
        let (_, oneNull) = try Worksheet.grade(text: String(decoding: try filled.json(), as: UTF8.self), name: "filled.json")
        #expect(oneNull.items[0].status == "unfilled")
        #expect(oneNull.right == sheet.blanks.count - 1)

        #expect(throws: WalkthroughError.self) { try Worksheet.grade(text: sheet.html(), name: "page.html") }
    }
}
