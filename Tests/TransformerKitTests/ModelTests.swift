import Testing
import TensorKit
@testable import TransformerKit

@Suite struct ModelTests {
    func config() -> TransformerConfig {
        var c = TransformerConfig()
        c.dModel = 8; c.heads = 2; c.dFF = 16; c.sourceVocabSize = 11; c.targetVocabSize = 13
        c.encoderLayers = 2; c.decoderLayers = 2
        return c
    }

    func run(_ m: TracedEncoderDecoder, _ src: [Int], _ tgt: [Int], trace: Tracer? = nil) throws -> TracedEncoderDecoder.Output {
        try m.forward(
            source: src, target: tgt, targets: nil, sourceTokens: src.map(String.init), targetTokens: tgt.map(String.init),
            vocabularyTokens: (0..<m.config.targetVocabSize).map(String.init), trace: trace)
    }

    @Test func decoderCannotSeeTheFuture() throws {
        let m = try TracedEncoderDecoder(config: config(), seed: 1)
        let a = try run(m, [1, 2, 3], [4, 5, 6, 7])
        let b = try run(m, [1, 2, 3], [4, 5, 9, 10])
        // Positions 0 and 1 saw the same prefix, so their logits agree exactly; position 2 differs.
        for r in 0..<2 { #expect(a.logits.row(r) == b.logits.row(r)) }
        #expect(a.logits.row(2) != b.logits.row(2))
    }

    @Test func encoderSeesTheWholeSource() throws {
        let m = try TracedEncoderDecoder(config: config(), seed: 1)
        let a = try run(m, [1, 2, 3], [4, 5])
        let b = try run(m, [1, 2, 8], [4, 5])
        #expect(a.memory.row(0) != b.memory.row(0))  // changing the last source token changes the first position
    }

    @Test func probabilitiesAreADistributionPerPosition() throws {
        for norm in NormPlacement.allCases {
            for emb in EmbeddingSharing.allCases {
                var c = config(); c.norm = norm; c.embeddings = emb; c.activation = .gelu; c.positions = .learned
                if emb == .all { c.targetVocabSize = c.sourceVocabSize }
                let m = try TracedEncoderDecoder(config: c, seed: 5)
                let out = try run(m, [1, 2], [3, 4, 5])
                #expect(out.probabilities.shape == [3, c.targetVocabSize])
                for r in 0..<3 { #expect(abs(out.probabilities.row(r).reduce(0, +) - 1) < 1e-5) }
            }
        }
    }

    @Test func sameSeedSameWeightsDifferentSeedDifferentWeights() throws {
        let a = config().initialParameters(seed: 9), b = config().initialParameters(seed: 9), c = config().initialParameters(seed: 10)
        #expect(a == b)
        #expect(a != c)
        #expect(a["encoder.layers.0.norm1.gamma"] == Tensor(repeating: 1, shape: [8]))
    }

    @Test func traceRecordsEveryStepOnce() throws {
        let t = Tracer()
        let m = try TracedEncoderDecoder(config: config(), seed: 1)
        _ = try run(m, [1, 2, 3], [4, 5], trace: t)
        #expect(Set(t.steps.map(\.id)).count == t.steps.count)
        #expect(t.steps.contains { $0.id == "enc1.self_attn.head1.weights" })
        #expect(t.steps.contains { $0.id == "dec1.cross_attn.head0.weights" && $0.shape == [2, 3] })
        // Parameters the trace names exist in the model.
        for p in t.parameters { #expect(m.parameters[p.name] != nil) }
    }

    @Test(arguments: [
        ("heads", "not divisible"),
        ("vocab", "vocabulary sizes"),
        ("dff", "d_ff")
    ])
    func badConfigsAreRefused(_ what: String, _ message: String) {
        var c = config()
        switch what {
        case "heads": c.heads = 3
        case "vocab": c.sourceVocabSize = 0
        default: c.dFF = 0
        }
        #expect {
            try c.validate()
        } throws: { e in
            (e as? ConfigError)?.message.contains(message) ?? false
        }
    }

    @Test func tooLongSequenceIsAnError() throws {
        var c = config(); c.contextLength = 4
        let m = try TracedEncoderDecoder(config: c, seed: 1)
        #expect(throws: ConfigError.self) { try run(m, [1, 2, 3, 4, 5], [1]) }
        #expect(throws: ConfigError.self) { try run(m, [1, 99], [1]) }
    }
}
