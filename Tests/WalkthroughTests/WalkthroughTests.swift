import Foundation
import Testing
import TensorKit
import TransformerKit
@testable import Walkthrough

@Suite struct WalkthroughTests {
    @Test func defaultWalkthroughIsTheSeedExample() throws {
        let doc = try WalkthroughSetup().run()
        #expect(doc.corpusTokenCount == 36)
        #expect(doc.vocabulary.count == 40)
        #expect(doc.step("src.ids")?.rowLabels == ["马", "无", "夜", "草", "不", "肥"])
        #expect(doc.step("tgt.ids")?.rowLabels == ["<start>", "人", "无", "横", "财", "不", "富"])
        #expect(doc.step("out.targets")?.rowLabels.last == "<end>")
        #expect(doc.config.dModel == 6)
        // Positional encoding row 1 is the worked example's second position.
        let pe = try #require(doc.step("src.pe")).tensor
        #expect(abs(pe[1, 0] - 0.8415) < 1e-4 && abs(pe[1, 2] - 0.0464) < 1e-4)
        // Every attention-weight matrix has rows summing to 1, and masked weights are 0.
        for s in doc.steps where s.id.hasSuffix(".weights") {
            let t = s.tensor
            for r in 0..<t.rows { #expect(abs(t.row(r).reduce(0, +) - 1) < 1e-6) }
            if s.id.hasPrefix("dec0.self_attn") {
                for r in 0..<t.rows { for c in (r + 1)..<t.cols { #expect(t[r, c] == 0) } }
            }
        }
        // The loss is the mean of −log p(target).
        let loss = try #require(doc.step("out.loss")).values[0]
        #expect(loss > 0 && loss.isFinite)
    }

    @Test func articleWeightsAreUsed() throws {
        var setup = WalkthroughSetup()
        let url: URL = try #require(WalkthroughResources.articleWeightsURL)
        setup.weightsFile = url
        let doc = try setup.run()
        #expect(doc.config.heads == 1 && doc.config.headSize == 4)
        let emb = try #require(doc.step("src.embed"))
        #expect(Array(emb.values.prefix(6)) == [0.68, 0.13, 0.27, 0.38, 0.75, 0.94])
        let wq = try #require(doc.parameter("encoder.layers.0.self_attn.w_q"))
        #expect(wq.shape == [6, 4] && wq.values[0] == 0.27)
        // Q = (E + PE) · W_Q for 马 (pos 0, PE = 0 1 0 1 0 1), column 0, by hand:
        // 0.1836 + 0.5989 + 0.1053 + 0.2484 + 0.5625 + 0.8342 = 2.5329
        // (0.68·0.27 + 1.13·0.53 + 0.27·0.39 + 1.38·0.18 + 0.75·0.75 + 1.94·0.43)
        let q = try #require(doc.step("enc0.self_attn.q"))
        #expect(abs(q.values[0] - 2.5329) < 1e-4)
        #expect(doc.notes.contains { $0.hasPrefix("Seed 002:") })
    }

    @Test func emptyCorpusIsAClearError() {
        var s = WalkthroughSetup()
        s.corpus = ["", "  "]
        #expect { try s.run() } throws: { ($0 as? WalkthroughError)?.message.contains("corpus is empty") ?? false }
    }

    @Test func unknownSourceCharactersBecomeUnkWithANote() throws {
        var s = WalkthroughSetup()
        s.source = "马无猫"
        let doc = try s.run()
        #expect(doc.step("src.ids")?.rowLabels == ["马", "无", "<unk>"])
        #expect(doc.notes.contains { $0.contains("<unk>") && $0.contains("猫") })
    }

    @Test func dModelNotDivisibleByHeads() {
        var s = WalkthroughSetup()
        s.config.heads = 4
        #expect { try s.run() } throws: { ($0 as? WalkthroughError)?.message.contains("not divisible") ?? false }
    }

    @Test func sequenceLongerThanThePositionalTable() {
        var s = WalkthroughSetup()
        s.config.contextLength = 5
        #expect { try s.run() } throws: { ($0 as? WalkthroughError)?.message.contains("positional table") ?? false }
    }

    @Test(arguments: [
        ("{\"parameters\": {\"nope\": [1]}}", "no such parameter"),
        ("{\"parameters\": {\"encoder.layers.0.self_attn.w_q\": [[1, 2], [3]]}}", "row 2 has 1 values"),
        ("{\"parameters\": {\"encoder.layers.0.self_attn.w_q\": [[1, 2]]}}", "the model needs 6×6"),
        ("{\"embedding_rows\": {\"src_embed\": {\"猫\": [1,2,3,4,5,6]}}}", "not in the vocabulary"),
        ("{\"parameters\": {", "malformed JSON"),
        ("{\"config\": {\"heads\": \"two\"}}", "config.heads")
    ])
    func malformedWeightsFiles(_ json: String, _ message: String) throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("w-\(UUID().uuidString).json")
        try Data(json.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        var s = WalkthroughSetup()
        s.weightsFile = url
        #expect { try s.run() } throws: { e in
            let m = (e as? WalkthroughError)?.message ?? "\(e)"
            return m.contains(message) && m.contains(url.lastPathComponent)
        }
    }

    @Test func textOutputLabelsRowsWithTokens() throws {
        let text = try WalkthroughSetup().run().render(.text)
        #expect(text.contains("size 36"))
        #expect(text.contains("[enc0.self_attn.head0.weights]"))
        #expect(text.contains("马  "))
    }

    @Test func jsonTraceRoundTripsWithMaskedScores() throws {
        let doc = try WalkthroughSetup().run()
        let back = try TraceDocument.decoder().decode(TraceDocument.self, from: doc.jsonData())
        #expect(back.steps == doc.steps)
        let masked = try #require(back.step("dec0.self_attn.head0.masked"))
        #expect(masked.values[1] == -.infinity)
    }
}
