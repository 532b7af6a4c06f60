import Foundation
import Testing
import TensorKit
import TransformerKit
@testable import Walkthrough

/// `check`: a hand-computed matrix against a step, with the mistakes it can name.
@Suite struct CheckTests {
    // Built once: every test reads them.
    static let defaultDoc: TraceDocument = try! WalkthroughSetup().run()
    static let articleDoc: TraceDocument = {
        var setup = WalkthroughSetup()
        setup.weightsFile = WalkthroughResources.articleWeightsURL
        return try! setup.run()
    }()

    /// Seed 002, Step7: the softmax matrix as the article prints it (copied verbatim).
    static let articleSoftmax =
        #"\begin{bmatrix} 0.9693 & 0 & 0.0287 & 0.0006 & 0 & 0.047 \\ 0.86 & 0.0011 & 0.1152 & 0.0001 & 0.0006 & 0.0105 \\ 0.9534 & 0.0001 & 0.0421 & 0 & 0 & 0.0044 \\ 0.6476 & 0.021 & 0.2177 & 0.005 & 0.0146 & 0.094 \\ 0.7803 & 0.0052 & 0.164 & 0.0006 & 0.0029 & 0.047 \\ 0.9174 & 0.0004 & 0.0716 & 0 & 0.0001 & 0.0105 \end{bmatrix}"#

    /// Seed 002, Step7: the whole line, scores ⇒ softmax (two matrices, with text between them).
    static let articleSoftmaxLine =
        #"\begin{array}{} \begin{bmatrix} 23.82 & 12.77 & 20.30 & 6.31& 11.51& 17.62\\ 14.10 & 7.43 & 8.06 & 2.54& 6.78& 10.48\\ 20.77 & 11.18 & 12.09 & 6.98& 10.01& 15.39\\ 7.40 & 3.978 & 4.81 & 3.65& 3.61& 5.47\\ 10.77 & 5.758 & 17.65 & 14.55 & 5.18& 7.96\\ 17.10 & 9.258 & 6.98 &5.72& 8.21& 12.63 \end{bmatrix} \\ \Downarrow \\ softmax(23.82)=\frac{e^{23.82} }{e^{23.82} + e^{12.77}+ e^{20.3}+ e^{8.06}+ e^{11.51}+ e^{17.62} }=0.9693 \\ \downarrow \\ "#
        + articleSoftmax + #" \Longrightarrow SoftMax \end{array}"#

    /// A tensor as a person would type it: CSV at `decimals` places, with the step's labels.
    static func typed(_ t: Tensor, rows: [String]? = nil, cols: [String]? = nil, decimals: Int = 4) throws -> ParsedMatrix {
        let m = t.asMatrix
        var lines: [String] = []
        if let cols { lines.append(([""] + cols).joined(separator: ",")) }
        for r in 0..<m.rows {
            let cells = m.row(r).map { v in v == -.infinity ? "-inf" : String(format: "%.\(decimals)f", Double(v)) }
            lines.append(((rows.map { [$0[r]] } ?? []) + cells).joined(separator: ","))
        }
        return try MatrixParser.parse(lines.joined(separator: "\n"))
    }

    static func report(_ t: Tensor, _ id: String, _ doc: TraceDocument = defaultDoc) throws -> CheckReport {
        let step = try #require(doc.step(id))
        return check(try typed(t), against: step, in: doc, tolerance: nil)
    }

    static func codes(_ r: CheckReport) -> [String] { r.diagnoses.filter { !$0.partial }.map(\.code) }

    static func t(_ id: String, _ doc: TraceDocument = defaultDoc) throws -> Tensor { try #require(doc.step(id)).tensor }

    // MARK: (a) the article's softmax

    @Test func articleSoftmaxRowsDoNotSumToOne() throws {
        let user = try MatrixParser.parse(Self.articleSoftmax)
        #expect(user.shape == [6, 6] && user.format == .latex)
        #expect(user.decimals[5] == 3 && user.decimals[1] == 0)
        let step = try #require(Self.articleDoc.step("enc0.self_attn.weights"))  // one head: no .head0
        let r = check(user, against: step, in: Self.articleDoc, tolerance: nil)
        #expect(!r.isCorrect)
        let sums = try #require(r.rowSums)
        #expect(abs(sums[0] - 1.0456) < 1e-4 && abs(sums[1] - 0.9875) < 1e-4)
        let d = try #require(r.diagnoses.first { $0.code == "row_sums" })
        #expect(d.message.contains("row 马 sums to 1.0456"))
        #expect(d.message.contains("row 无 sums to 0.9875"))
        #expect(!d.message.contains("row 夜"))  // 1.0000 and 0.9999 are rounding, not errors
        let text = r.renderText()
        #expect(text.contains("row 马 sums to 1.0456") && text.contains("✗"))
        let json = try JSONSerialization.jsonObject(with: r.jsonData()) as? [String: Any]
        #expect(json?["correct"] as? Bool == false)
    }

    @Test func theArticleLinePicksAMatrixByIndex() throws {
        let first = try MatrixParser.parse(Self.articleSoftmaxLine)
        #expect(first.matrixCount == 2 && first.values[0] == 23.82 && first.decimals[0] == 2)
        let second = try MatrixParser.parse(Self.articleSoftmaxLine, index: 1)
        #expect(second == (try MatrixParser.parse(Self.articleSoftmax)).with(index: 1, count: 2))
        #expect(throws: MatrixParseError.self) { try MatrixParser.parse(Self.articleSoftmaxLine, index: 2) }
        do { _ = try MatrixParser.parse(Self.articleSoftmaxLine, index: 2) } catch let e as MatrixParseError {
            #expect(e.message.contains("holds 2 matrices") && e.message.contains("1: 6×6"), "\(e.message)")
        }
    }

    // MARK: (b) correct matrices at 4 decimals

    @Test func everyStepPrintedAtFourDecimalsIsCorrect() throws {
        for doc in [Self.articleDoc, Self.defaultDoc] {
            for step in doc.steps {
                let r = check(try Self.typed(step.tensor), against: step, in: doc, tolerance: nil)
                #expect(r.isCorrect && r.wrongCells.isEmpty && r.diagnoses.isEmpty, "\(step.id): \(r.renderText())")
            }
        }
    }

    @Test func twoDecimalsPassAndAnExplicitToleranceIsUsed() throws {
        let step = try #require(Self.articleDoc.step("enc0.self_attn.weights"))
        let user = try Self.typed(step.tensor, rows: step.rowLabels, cols: step.colLabels, decimals: 2)
        #expect(user.rowLabels == step.rowLabels && user.colLabels == step.colLabels)
        #expect(check(user, against: step, in: Self.articleDoc, tolerance: nil).isCorrect)
        #expect(!check(user, against: step, in: Self.articleDoc, tolerance: 1e-4).isCorrect)
    }

    @Test func oneWrongValueIsListedWithItsLabels() throws {
        var t = try Self.t("enc0.self_attn.q", Self.articleDoc)
        t[1, 2] += 0.1
        let r = try Self.report(t, "enc0.self_attn.q", Self.articleDoc)
        #expect(!r.isCorrect && r.wrongCells.count == 1)
        let c = try #require(r.wrongCells.first)
        #expect(c.rowLabel == "无" && c.colLabel == "d2" && c.row == 2 && c.col == 3)
        #expect(r.renderText().contains("无"))
    }

    // MARK: (c) diagnoses

    @Test func scoresWithoutTransposingK() throws {
        var setup = WalkthroughSetup()
        setup.config.heads = 1  // d_k = 6 = the sentence length, so Q·K exists
        let doc = try setup.run()
        let q = try Self.t("enc0.self_attn.q", doc), k = try Self.t("enc0.self_attn.k", doc)
        let r = try Self.report(matmul(q, k), "enc0.self_attn.scores", doc)
        #expect(Self.codes(r).contains("qk_no_transpose"))
        #expect(r.renderText().contains("QK instead of QKᵀ"))
    }

    @Test func scoresTransposedAsKQt() throws {
        let q = try Self.t("enc0.self_attn.head0.q"), k = try Self.t("enc0.self_attn.head0.k")
        let r = try Self.report(matmul(k, q, transposeB: true), "enc0.self_attn.head0.scores")
        #expect(Self.codes(r) == ["transposed"])
        #expect(r.diagnoses[0].message.contains("K·Qᵀ"))
    }

    @Test(arguments: [
        ("missing_scale", "Missing 1/√d_k", 1.0),
        ("divided_by_dk", "instead of √d_k", 1.0 / 3),
        ("multiplied_by_sqrt_dk", "Multiplied by √d_k instead of dividing", 3.0.squareRoot()),
        ("used_d_model", "Used d_model instead of d_k", 1 / 6.0.squareRoot())
    ])
    func scalingMistakes(_ code: String, _ phrase: String, _ factor: Double) throws {
        let scores = try Self.t("enc0.self_attn.head0.scores")
        let r = try Self.report(scale(scores, Float(factor)), "enc0.self_attn.head0.scaled")
        #expect(!r.isCorrect)
        #expect(Self.codes(r) == [code], "\(r.renderText())")
        #expect(r.renderText().contains(phrase))
    }

    @Test func maskAppliedAfterTheSoftmax() throws {
        let scaled = try Self.t("dec0.self_attn.head0.scaled"), mask = try Self.t("dec.mask")
        var after = softmaxRows(scaled)
        for i in after.data.indices where mask.data[i] == 0 { after.data[i] = 0 }
        let r = try Self.report(after, "dec0.self_attn.head0.weights")
        #expect(Self.codes(r).contains("mask_after_softmax"))
        #expect(Self.codes(r).contains("row_sums"))  // and so the rows no longer sum to 1
        #expect(r.renderText().contains("mask applied after the softmax") || r.renderText().contains("Mask applied after the softmax"))
    }

    @Test func maskNotApplied() throws {
        let r = try Self.report(softmaxRows(try Self.t("dec0.self_attn.head0.scaled")), "dec0.self_attn.head0.weights")
        #expect(Self.codes(r) == ["mask_not_applied"])
    }

    @Test func softmaxOfUnscaledScores() throws {
        let scores = try Self.t("dec0.self_attn.head0.scores"), mask = try Self.t("dec.mask")
        let r = try Self.report(softmaxRows(applyMask(scores, mask)), "dec0.self_attn.head0.weights")
        #expect(Self.codes(r) == ["missing_scale_before_softmax"])
        #expect(r.renderText().contains("Missing 1/√d_k before the softmax"))
    }

    @Test func positionalEncodingWithTheElementIndex() throws {
        var pe = Tensor(zeros: [6, 6])
        for p in 0..<6 {
            for j in 0..<6 {
                let a = Double(p) / pow(10000, Double(j) / 6)
                pe[p, j] = Float(j % 2 == 0 ? sin(a) : cos(a))
            }
        }
        let r = try Self.report(pe, "src.pe")
        #expect(Self.codes(r) == ["pe_element_index"])
        #expect(r.renderText().contains("element index j"))
    }

    @Test func positionalEncodingStartingAtOne() throws {
        let r = try Self.report(sinusoidalPositionalEncoding(count: 6, dModel: 6, start: 1), "src.pe")
        #expect(Self.codes(r) == ["pe_start_1"])
    }

    @Test func positionalEncodingTransposed() throws {
        // Square (the source): same shape, values transposed.
        let square = try Self.report(transpose(try Self.t("src.pe")), "src.pe")
        #expect(Self.codes(square) == ["transposed"])
        #expect(square.diagnoses[0].message.contains("rows should be positions"))
        // Not square (the decoder's 7 positions): compared with the transpose.
        let wide = try Self.report(transpose(try Self.t("tgt.pe")), "tgt.pe")
        #expect(wide.comparedWithTranspose && wide.wrongCells.isEmpty && !wide.isCorrect)
        #expect(Self.codes(wide) == ["transposed"])
        #expect(wide.diagnoses[0].message.contains("6×7") && wide.diagnoses[0].message.contains("7×6"))
    }

    @Test func layerNormWithTheSampleStandardDeviation() throws {
        let x = try Self.t("enc0.attn.residual")
        var y = x
        for r in 0..<x.rows {
            let row = x.row(r).map(Double.init), n = Double(x.cols)
            let mu = row.reduce(0, +) / n
            let sd = (row.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / (n - 1) + 1e-5).squareRoot()
            for j in 0..<x.cols { y[r, j] = Float((row[j] - mu) / sd) }
        }
        let r = try Self.report(y, "enc0.attn.norm")
        #expect(Self.codes(r) == ["ln_sample_std"])
        #expect(r.renderText().contains("sample standard deviation"))
    }

    @Test func anyStepTransposed() throws {
        let r = try Self.report(transpose(try Self.t("enc0.self_attn.head0.scaled")), "enc0.self_attn.head0.scaled")
        #expect(Self.codes(r) == ["transposed"])
        // a transposed softmax also has rows that do not sum to 1
        let w = try Self.report(transpose(try Self.t("enc0.self_attn.head0.weights")), "enc0.self_attn.head0.weights")
        #expect(Self.codes(w) == ["row_sums", "transposed"])
        let ffn = try Self.report(transpose(try Self.t("enc0.ffn.hidden")), "enc0.ffn.hidden")  // 6×12 → 12×6
        #expect(ffn.comparedWithTranspose && Self.codes(ffn) == ["transposed"])
    }

    @Test func shapeMismatchGivesBothShapes() throws {
        let r = try Self.report(Tensor([[1, 2, 3], [4, 5, 6]]), "enc0.self_attn.head0.weights")
        #expect(!r.isCorrect && r.cellCount == 0)
        #expect(r.diagnoses.first?.message.contains("2×3") == true && r.diagnoses.first?.message.contains("6×6") == true)
    }

    @Test func reluThatLeavesNegativesAndOtherStepsByName() throws {
        let hidden = try Self.t("enc0.ffn.hidden", Self.articleDoc)
        let r = try Self.report(hidden, "enc0.ffn.act", Self.articleDoc)
        if hidden.data.contains(where: { $0 < 0 }) { #expect(Self.codes(r).contains("relu_negative")) }
        #expect(r.diagnoses.contains { $0.code == "equals_step" && $0.message.contains("enc0.ffn.hidden") })
    }

    @Test func maskedScoresWrittenAsZero() throws {
        var m = try Self.t("dec0.self_attn.head0.masked")
        for i in m.data.indices where m.data[i] == -.infinity { m.data[i] = 0 }
        let r = try Self.report(m, "dec0.self_attn.head0.masked")
        #expect(Self.codes(r).contains("mask_not_infinite"))
        // and -\infty / −∞ are read as −∞
        let step = try #require(Self.defaultDoc.step("dec0.self_attn.head0.masked"))
        let latex = (0..<7).map { r in
            (0..<7).map { c in
                let v = step.tensor[r, c]
                return v == -.infinity ? (c % 2 == 0 ? "-\\infty" : "−∞") : String(format: "%.4f", Double(v))
            }.joined(separator: " & ")
        }.joined(separator: " \\\\ ")
        #expect(
            check(try MatrixParser.parse("\\begin{pmatrix}" + latex + "\\end{pmatrix}"), against: step, in: Self.defaultDoc, tolerance: nil)
                .isCorrect)
    }

    @Test func aStaleSavedTraceIsNoted() throws {
        var doc = Self.defaultDoc
        let i = try #require(doc.steps.firstIndex { $0.id == "src.x" })
        doc.steps[i].values[0] += 1
        let r = check(try Self.typed(doc.steps[i].tensor), against: doc.steps[i], in: doc, tolerance: nil)
        #expect(r.isCorrect && r.notes.contains { $0.contains("does not match its recomputation") })
    }

    // MARK: (d) the parser

    @Test func csvWithHeaderAndLabels() throws {
        let m = try MatrixParser.parse("token,d0,d1,d2\n马,0.79,-0.38,1e-3\n无,0.6,−0.12,0.51\n")
        #expect(m.shape == [2, 3] && m.format == .csv)
        #expect(m.rowLabels == ["马", "无"] && m.colLabels == ["d0", "d1", "d2"])
        #expect(m.values == [0.79, -0.38, 0.001, 0.6, -0.12, 0.51])
        #expect(m.decimals == [2, 2, 3, 1, 2, 2])
        // semicolons with decimal commas, tabs, and a header without a corner cell
        #expect(try MatrixParser.parse("0,5;1,25\n2;3").values == [0.5, 1.25, 2, 3])
        let tabs = try MatrixParser.parse("\ta\tb\nx\t1\t2\ny\t3\t4")
        #expect(tabs.values == [1, 2, 3, 4] && tabs.colLabels == ["a", "b"] && tabs.rowLabels == ["x", "y"])
        #expect(try MatrixParser.parseInline("1,2;3,4").values == [1, 2, 3, 4])
    }

    @Test func latexWithLabelsAndRowBreaks() throws {
        let text = #"""
            \begin{array}{l} Word\space Embedding + Position\space Embedding \space\space\space Liner weight for query\\ \\
            \begin{vmatrix} 马&0.79 & 0.38 & 0.01 & 0.12& 0.88& 0.6\\ 无&0.6 & 0.12 & 0.51 & 0.6& 0.41& 0.33\\
            夜&0.96 & 0.06 & 0.27 & 0.65& 0.79& 0.75 \end{vmatrix} \times \begin{vmatrix} 0.27 & 0.38 \\ -\,0.53 & {-0.12} \end{vmatrix} \end{array}
            """#
        let m = try MatrixParser.parse(text)
        #expect(m.shape == [3, 6] && m.rowLabels == ["马", "无", "夜"] && m.matrixCount == 2)
        #expect(m.values[0] == 0.79 && m.values[17] == 0.75)
        let w = try MatrixParser.parse(text, index: 1)
        #expect(w.values == [0.27, 0.38, -0.53, -0.12])
        // bare, with \text labels and a header row
        let bare = try MatrixParser.parse(#" & \text{马} & \text{无} \\ \text{马} & 1 & 0 \\ \text{无} & 1 & 1 \\"#)
        #expect(bare.shape == [2, 2] && bare.colLabels == ["马", "无"] && bare.rowLabels == ["马", "无"])
    }

    @Test func raggedMatrixNamesTheRow() throws {
        #expect { try MatrixParser.parse("1 2 3\n4 5 6\n7 8\n") } throws: {
            ($0 as? MatrixParseError)?.message == "line 3: row 3 has 2 values, row 1 has 3"
        }
        #expect { try MatrixParser.parse(#"\begin{bmatrix} 1 & 2 \\ 3 & 4 & 5 \end{bmatrix}"#) } throws: {
            ($0 as? MatrixParseError)?.message.contains("row 2 has 3 values, row 1 has 2") ?? false
        }
        #expect { try MatrixParser.parse(#"\begin{matrix} 0.28 & 0.72 & ··· \\ 0.1 & 0.5 & ··· \end{matrix}"#) } throws: {
            ($0 as? MatrixParseError)?.message.contains("row 1, column 3") ?? false
        }
        #expect { try MatrixParser.parse("1,2\n3,x\n") } throws: {
            ($0 as? MatrixParseError)?.message.contains("row 2, column 2: \"x\" is not a number") ?? false
        }
    }

    @Test func jsonForms() throws {
        #expect(try MatrixParser.parse("[[1, 2.5], [3, 4]]").decimals == [0, 1, 0, 0])
        let flat = try MatrixParser.parse(#"{"shape": [2, 2], "values": [0, "-inf", 0.25, 1]}"#)
        #expect(flat.values[1] == -.infinity && flat.shape == [2, 2])
        let step = try #require(Self.defaultDoc.step("dec0.self_attn.head0.masked"))
        let fromStep = try MatrixParser.parse(String(decoding: try TraceDocument.encoder().encode(step), as: UTF8.self))
        #expect(fromStep.rowLabels == step.rowLabels && fromStep.values.count == 49)
        #expect(check(fromStep, against: step, in: Self.defaultDoc, tolerance: nil).isCorrect)
        #expect { try MatrixParser.parse("[[1, 2], [3, 4]") } throws: {
            ($0 as? MatrixParseError)?.message.contains("JSON line 1") ?? false
        }
    }

    @Test func whitespaceMarkdownAndTheWalkthroughsOwnText() throws {
        let text = try Self.defaultDoc.render(
            .text,
            options: {
                var o = RenderOptions(); o.steps = ["src.pe"]; return o
            }())
        let lines = text.components(separatedBy: "\n")
        let start = try #require(lines.firstIndex { $0.contains("[src.pe]") })
        let block = lines[(start + 3)...(start + 9)].joined(separator: "\n")
        let m = try MatrixParser.parse(block)
        #expect(m.shape == [6, 6] && m.rowLabels == ["马", "无", "夜", "草", "不", "肥"] && m.colLabels?.first == "d0")
        #expect(check(m, against: try #require(Self.defaultDoc.step("src.pe")), in: Self.defaultDoc, tolerance: nil).isCorrect)
        let md = try MatrixParser.parse("| | a | b |\n|---|---|---|\n| x | 1 | 2 |\n| y | 3 | 4 |")
        #expect(md.values == [1, 2, 3, 4] && md.format == .markdown && md.rowLabels == ["x", "y"])
        #expect(try MatrixParser.parse("[[1. 2.]\n [3. 4.]]").values == [1, 2, 3, 4])
    }
}

extension ParsedMatrix {
    func with(index: Int, count: Int) -> ParsedMatrix {
        var m = self
        m.index = index; m.matrixCount = count
        return m
    }
}

extension CheckTests {
    /// Seed 002 prints the query weights as Q.
    @Test func queriesGivenAsTheWeightMatrix() throws {
        let w = try #require(Self.articleDoc.parameter("encoder.layers.0.self_attn.w_q")).tensor
        let r = try Self.report(w, "enc0.self_attn.q", Self.articleDoc)
        #expect(r.diagnoses.contains { $0.code == "equals_parameter" && $0.message.contains("encoder.layers.0.self_attn.w_q") })
    }
}
