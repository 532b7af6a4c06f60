import Foundation
import Testing
import TensorKit
@testable import TransformerKit

@Suite struct Seq2SeqTests {
    static func config(
        norm: NormPlacement = .post, activation: Activation = .relu, embeddings: EmbeddingSharing = .separate,
        positions: PositionKind = .sinusoidal, bias: Bool = false, scale: Bool = false
    ) -> TransformerConfig {
        var c = TransformerConfig()
        c.dModel = 8; c.heads = 2; c.dFF = 12; c.encoderLayers = 2; c.decoderLayers = 2
        c.sourceVocabSize = 9; c.targetVocabSize = embeddings == .all ? 9 : 11; c.contextLength = 16
        c.norm = norm; c.activation = activation; c.embeddings = embeddings; c.positions = positions
        c.attentionBias = bias; c.scaleEmbeddings = scale
        return c
    }

    static let pairs: [(source: [Int], target: [Int])] = [([1, 2, 3, 4], [3, 4, 5]), ([5, 6], [6, 7, 8, 2, 1]), ([2, 3, 1], [4])]
    static let pad = 0, start = 7, end = 8

    static let variants: [TransformerConfig] = [
        config(),
        config(norm: .pre, activation: .gelu, bias: true),
        config(activation: .geluTanh, embeddings: .all, positions: .learned, scale: true),
        config(norm: .pre, embeddings: .tiedOutput)
    ]

    @Test(arguments: variants)
    func batchedForwardEqualsStepByStep(config: TransformerConfig) throws {
        let model = try Seq2SeqModel(config: config, seed: 3)
        let reference = try TracedEncoderDecoder(config: config, parameters: model.parameterSet())
        let batch = Seq2SeqBatch(pairs: Self.pairs, pad: Self.pad, start: Self.start, end: Self.end)
        let acts = Seq2SeqActivations(config: config, maxBatch: 3, maxSource: 4, maxTarget: 6)
        var rng = SeededRNG(seed: 0)
        let (loss, tokens) = model.forward(batch, acts: acts, rng: &rng, computeGradient: false)
        #expect(tokens == 3 + 5 + 1 + 3)
        var total = 0.0
        for (bi, pair) in Self.pairs.enumerated() {
            let tin = [Self.start] + pair.target, tout = pair.target + [Self.end]
            let padding = (0..<batch.sourceLength).map { $0 >= pair.source.count }
            let src = pair.source + Array(repeating: Self.pad, count: batch.sourceLength - pair.source.count)
            let out = try reference.forward(
                source: src, target: tin, targets: tout, sourceTokens: src.map(String.init),
                targetTokens: tin.map(String.init), vocabularyTokens: (0..<config.targetVocabSize).map(String.init),
                sourcePadding: padding)
            for r in 0..<tin.count {
                for j in 0..<config.targetVocabSize {
                    let batched = acts.logits[(bi * batch.targetLength + r) * config.targetVocabSize + j]
                    #expect(abs(batched - out.logits[r, j]) < 1e-4, "sentence \(bi) position \(r) logit \(j)")
                }
            }
            total += Double(out.loss!) * Double(tout.count)
        }
        #expect(abs(Double(loss) - total / Double(tokens)) < 1e-4)
    }

    /// Central differences on the whole model's loss, for a sample of coordinates of every parameter.
    /// Smooth activations only: a step of h moves many ReLU inputs across 0 in the later layers, and
    /// the difference quotient across that kink is not the derivative (ReLU's backward is checked per kernel).
    @Test(
        arguments: variants.map { c -> TransformerConfig in
            var c = c
            if c.activation == .relu { c.activation = c.norm == .post ? .gelu : .geluTanh }
            return c
        })
    func wholeModelGradientCheck(config: TransformerConfig) throws {
        let model = try Seq2SeqModel(config: config, seed: 5)
        let batch = Seq2SeqBatch(pairs: Self.pairs, pad: Self.pad, start: Self.start, end: Self.end)
        let acts = Seq2SeqActivations(config: config, maxBatch: 3, maxSource: 4, maxTarget: 6)
        var rng = SeededRNG(seed: 0)
        model.grads.zero()
        model.forward(batch, acts: acts, labelSmoothing: 0.1, rng: &rng)
        model.backward(batch, acts: acts)
        func loss() -> Double {
            var r = SeededRNG(seed: 0)
            return Double(model.forward(batch, acts: acts, labelSmoothing: 0.1, rng: &r, computeGradient: false).loss)
        }
        checkGradients(layout: model.layout, params: model.params, grads: model.grads, seed: 99, loss: loss)
    }

    @Test func dropoutIsSeededAndOffMeansOff() throws {
        let config = Self.config()
        let model = try Seq2SeqModel(config: config, seed: 3)
        let batch = Seq2SeqBatch(pairs: Self.pairs, pad: Self.pad, start: Self.start, end: Self.end)
        let acts = Seq2SeqActivations(config: config, maxBatch: 3, maxSource: 4, maxTarget: 6)
        var r1 = SeededRNG(seed: 1), r2 = SeededRNG(seed: 1), r3 = SeededRNG(seed: 2), r0 = SeededRNG(seed: 0)
        let a = model.forward(batch, acts: acts, dropout: 0.3, rng: &r1, computeGradient: false).loss
        let b = model.forward(batch, acts: acts, dropout: 0.3, rng: &r2, computeGradient: false).loss
        let c = model.forward(batch, acts: acts, dropout: 0.3, rng: &r3, computeGradient: false).loss
        let clean = model.forward(batch, acts: acts, dropout: 0, rng: &r0, computeGradient: false).loss
        #expect(a == b)
        #expect(a != c)
        #expect(a != clean)
    }
}
