import Foundation
import Testing
import TensorKit
import TransformerKit
@testable import Walkthrough

/// `transformer walkthrough --model bert`, on the tiny random `BertModel` of TransformerKitTests'
/// fixtures (read from the source tree): the trace, its replay and every renderer.
@Suite struct BERTWalkthroughTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("TransformerKitTests/Fixtures/bert-tiny")

    static func doc(_ text: String = "a man is playing a guitar.") throws -> TraceDocument {
        try BERTWalkthrough.document(encoder: SentenceEncoder(directory: folder), text: text, notes: [])
    }

    @Test func stepsEndInTheSentenceEmbedding() throws {
        let encoder = try SentenceEncoder(directory: Self.folder)
        let doc = try Self.doc()
        #expect(doc.step("in.ids")?.rowLabels == ["[CLS]", "a", "man", "is", "playing", "a", "gui", "##tar", ".", "[SEP]"])
        #expect(doc.step("mask")?.attrs["causal"] == 0 && doc.step("mask")?.values.allSatisfy { $0 == 1 } == true)
        for l in 0..<2 {
            for h in 0..<4 {
                let w = try #require(doc.step("l\(l).attn.head\(h).weights")).tensor
                for r in 0..<w.rows { #expect(abs(w.row(r).reduce(0, +) - 1) < 1e-5) }
            }
        }
        // The last step is what `transformer embed` prints for the sentence.
        let e = try #require(doc.step("out.embedding"))
        let fast = encoder.encode(["a man is playing a guitar."])[0]
        #expect(e.shape == [1, 32] && zip(e.values, fast).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(doc.parameters.map(\.name).contains("encoder.layers.1.self_attn.w_q"))
    }

    @Test func traceReplaysExactly() throws {
        for text in ["a man is playing a guitar.", "", "Crème brûlée!"] {
            let mismatches = replay(try Self.doc(text))
            #expect(mismatches.isEmpty, "\(text): \(mismatches.map(\.description).joined(separator: "\n"))")
        }
    }

    /// Every format shows the tokens (WordPiece pieces included), the last block and the sentence
    /// embedding's numbers as the trace holds them, not just "something".
    @Test func everyRendererShowsTheTokensAndTheEmbedding() throws {
        let doc = try Self.doc()
        let e = try #require(doc.step("out.embedding"))
        let first = String(format: "%.4f", e.values[0]), last = String(format: "%.4f", e.values[e.values.count - 1])
        for format in TraceFormat.allCases where format != .csv {
            let text = try doc.render(format)
            let escapedPiece = format == .latex || format == .markdown ? #"\#\#tar"# : "##tar"
            #expect(text.contains(escapedPiece), "\(format): the WordPiece piece ##tar")
            #expect(text.contains("playing"), "\(format): the token labels")
            if format == .json {
                #expect(text.contains("\"out.embedding\"") && text.contains("\"l1.ffn"), "json: step ids")
            } else {
                #expect(text.contains(first) && text.contains(last), "\(format): the embedding's values \(first) … \(last)")
            }
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bert-trace-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(doc.render(.json).utf8).write(to: url)
        #expect(try replay(contentsOf: url).isEmpty)
    }
}
