import Foundation
import Testing
import TensorKit
@testable import TransformerKit

/// The step-by-step GPT (what the walkthrough shows) against the fast batched `GPTModel`.
@Suite struct GPTStepsTests {
    /// Largest |traced − fast| over every logit of one sequence.
    static func maxLogitDifference(_ model: GPTModel, _ ids: [Int]) throws -> Float {
        let traced = try TracedGPT(model).forward(ids: ids, trace: Tracer())
        let fast = GPT2CompatTests.logits(model, ids.map(Int32.init)).flatMap { $0 }
        #expect(traced.logits.shape == [ids.count, model.config.vocabSize])
        return zip(traced.logits.data, fast).map { abs($0 - $1) }.max() ?? .infinity
    }

    @Test(arguments: [
        GPTConfig(vocabSize: 11, contextLength: 8, dModel: 8, layers: 2, heads: 2),
        GPTConfig(vocabSize: 23, contextLength: 16, dModel: 12, layers: 3, heads: 3, dFF: 20),
        GPTConfig(vocabSize: 5, contextLength: 4, dModel: 4, layers: 1, heads: 1)
    ])
    func tracedLogitsMatchTheFastForward(_ config: GPTConfig) throws {
        let model = try GPTModel(config: config, seed: 5)
        // Larger weights than GPT-2's 0.02 init, so attention is far from uniform and every path matters.
        for i in 0..<model.params.count { model.params[i] *= model.params[i] == 1 ? 1 : 25 }
        let ids = (0..<config.contextLength).map { ($0 * 7 + 3) % config.vocabSize }
        #expect(try Self.maxLogitDifference(model, ids) <= 1e-4)
        #expect(try Self.maxLogitDifference(model, Array(ids.prefix(1))) <= 1e-4)
    }

    @Test func tracedLogitsMatchOnTheHuggingFaceFixture() throws {
        let model = try GPTCheckpoint.loadHuggingFace(try GPT2CompatTests.fixture())
        for c in try GPT2CompatTests.expected().cases {
            let ids = c.ids.map(Int.init)
            #expect(try Self.maxLogitDifference(model, ids) <= 1e-4)
            // and against PyTorch's own logits
            let traced = try TracedGPT(model).forward(ids: ids)
            #expect(zip(traced.logits.data, c.logits.flatMap { $0 }).map { abs($0 - $1) }.max()! <= 1e-4)
        }
    }

    @Test func traceHasTheCausalMaskTheHeadsAndTheNextToken() throws {
        let config = GPTConfig(vocabSize: 7, contextLength: 8, dModel: 8, layers: 2, heads: 2)
        let tracer = Tracer()
        let out = try TracedGPT(GPTModel(config: config, seed: 1)).forward(
            ids: [1, 2, 3, 4], tokens: ["a", "b", "c", "d"],
            vocabularyTokens: ["a", "b", "c", "d", "e", "f", "g"], trace: tracer)
        let steps = Dictionary(uniqueKeysWithValues: tracer.steps.map { ($0.id, $0) })
        let mask = try #require(steps["mask"])
        #expect(mask.values == [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1])
        for l in 0..<2 {
            for h in 0..<2 {
                let w = try #require(steps["h\(l).attn.head\(h).weights"]).tensor
                for r in 0..<4 {
                    #expect(abs(w.row(r).reduce(0, +) - 1) < 1e-6)
                    for c in (r + 1)..<4 { #expect(w[r, c] == 0) }
                }
            }
        }
        let next = try #require(steps["out.next"])
        #expect(next.shape == [1, 7] && next.rowLabels == ["d"] && next.colLabels.first == "a")
        #expect(next.values == Array(out.probabilities.data[21..<28]))
        #expect(steps["out.loss"] != nil && out.loss! > 0)
        #expect(tracer.parameters.map(\.name).contains("h.1.attn.c_attn.weight"))
    }

    @Test func badInputIsAnError() throws {
        let model = TracedGPT(try GPTModel(config: GPTConfig(vocabSize: 5, contextLength: 3, dModel: 4, layers: 1, heads: 2), seed: 1))
        #expect(throws: ConfigError.self) { try model.forward(ids: []) }
        #expect(throws: ConfigError.self) { try model.forward(ids: [1, 2, 3, 4]) }
        #expect(throws: ConfigError.self) { try model.forward(ids: [1, 5]) }
    }
}
