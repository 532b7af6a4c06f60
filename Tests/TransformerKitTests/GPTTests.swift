import Foundation
import Testing
import TensorKit
@testable import TransformerKit

@Suite struct GPTTests {
    static let config = GPTConfig(vocabSize: 11, contextLength: 8, dModel: 8, layers: 2, heads: 2)

    @Test func wholeModelGradientCheck() throws {
        let model = try GPTModel(config: Self.config, seed: 3)
        // Larger weights than GPT-2's 0.02 init, so every path carries a gradient worth checking.
        for i in 0..<model.params.count { model.params[i] *= model.params[i] == 1 ? 1 : 10 }
        let acts = GPTActivations(config: Self.config, maxBatch: 2, maxLength: 5)
        let ids: [Int32] = [1, 4, 2, 9, 3, 7, 7, 0, 5, 10]
        let targets: [Int32] = [4, 2, 9, 3, -1, 7, 0, 5, 10, 6]
        model.grads.zero()
        model.forward(ids: ids, targets: targets, b: 2, t: 5, acts: acts)
        model.backward(b: 2, t: 5, acts: acts)
        func loss() -> Double { Double(model.forward(ids: ids, targets: targets, b: 2, t: 5, acts: acts, computeGradient: false)) }
        checkGradients(layout: model.layout, params: model.params, grads: model.grads, seed: 7, loss: loss)
    }

    @Test func laterTokensDoNotChangeEarlierLogits() throws {
        let model = try GPTModel(config: Self.config, seed: 1)
        let acts = GPTActivations(config: Self.config, maxBatch: 1, maxLength: 4)
        model.forward(ids: [1, 2, 3, 4], targets: nil, b: 1, t: 4, acts: acts)
        let a = Array(UnsafeBufferPointer(start: acts.logits.pointer, count: 4 * 11))
        model.forward(ids: [1, 2, 9, 10], targets: nil, b: 1, t: 4, acts: acts)
        let b = Array(UnsafeBufferPointer(start: acts.logits.pointer, count: 4 * 11))
        #expect(Array(a[0..<22]) == Array(b[0..<22]))
        #expect(Array(a[22..<33]) != Array(b[22..<33]))
    }

    /// GPT-2's start scales the residual projections by 1/√(2·layers); `.normal` does not. The
    /// sample standard deviations of 128×128 / 512×128 matrices are within a few % of the target.
    @Test func initialisationSchemes() {
        let c = GPTConfig(vocabSize: 65, contextLength: 16, dModel: 128, layers: 8, heads: 4)
        func std(_ t: Tensor) -> Float {
            let n = Float(t.data.count), m = t.data.reduce(0, +) / n
            return (t.data.map { ($0 - m) * ($0 - m) }.reduce(0, +) / n).squareRoot()
        }
        let g = c.initialParameters(seed: 1, initialisation: .gpt2), n = c.initialParameters(seed: 1, initialisation: .normal)
        for name in ["h.0.attn.c_proj.weight", "h.3.mlp.c_proj.weight"] {
            #expect(abs(std(g[name]!) - 0.02 / 4) < 0.0002, "\(name) gpt2")
            #expect(abs(std(n[name]!) - 0.02) < 0.0008, "\(name) normal")
        }
        #expect(abs(std(g["h.0.mlp.c_fc.weight"]!) - 0.02) < 0.0008)
        #expect(g["h.0.mlp.c_fc.weight"]! == n["h.0.mlp.c_fc.weight"]!)  // only the projections differ
    }

    @Test func huggingFaceNamesAndShapes() {
        let names = Self.config.parameterShapes.map(\.0)
        #expect(names.first == "wte.weight" && names.contains("h.1.attn.c_attn.weight") && names.last == "ln_f.bias")
        #expect(Self.config.parameterShapes.first { $0.0 == "h.0.attn.c_attn.weight" }?.1 == [8, 24])
    }

    @Test func badConfigIsRefused() {
        var c = Self.config
        c.heads = 3
        #expect(throws: ConfigError.self) { try c.validate() }
    }
}

@Suite struct GPTGenerationTests {
    @Test func cacheAndNoCacheGiveTheSameLogitsAndTokens() throws {
        let model = try GPTModel(config: GPTTests.config, seed: 4)
        let cached = GPTGenerator(model: model, useCache: true), plain = GPTGenerator(model: model, useCache: false)
        for (i, tok) in [3, 1, 4, 1, 5].enumerated() {
            let a = Array(cached.feed(tok)), b = Array(plain.feed(tok))
            for j in a.indices { #expect(abs(a[j] - b[j]) < 1e-5, "position \(i) logit \(j)") }
        }
        let s = SamplingOptions(temperature: 0.9, topK: 5, topP: 0.9, seed: 3)
        #expect(
            cached.generate(prompt: [2, 7], maxNewTokens: 5, sampling: s) == plain.generate(prompt: [2, 7], maxNewTokens: 5, sampling: s))
        // The context is 8: a long prompt keeps its last 7 tokens, and the window slides as it fills,
        // the same way with and without the cache.
        let long = cached.generate(prompt: Array(repeating: 1, count: 20), maxNewTokens: 20, sampling: s)
        #expect(long.count == 20)
        #expect(long == plain.generate(prompt: Array(repeating: 1, count: 20), maxNewTokens: 20, sampling: s))
    }

    @Test func samplingFilters() {
        let logits: [Float] = [1, 5, 3, 4, 2]
        var rng = SeededRNG(seed: 1)
        logits.withUnsafeBufferPointer { l in
            #expect(sampleToken(l, SamplingOptions(temperature: 0), rng: &rng) == 1)
            for _ in 0..<50 { #expect([1, 3].contains(sampleToken(l, SamplingOptions(temperature: 1, topK: 2), rng: &rng))) }
            // p(1) = e^5 / Σ ≈ 0.64: top-p 0.5 keeps only token 1.
            for _ in 0..<20 { #expect(sampleToken(l, SamplingOptions(temperature: 1, topP: 0.5), rng: &rng) == 1) }
        }
    }

    /// Top-k by one pass gives the same tokens as sorting everything and cutting (ties included).
    @Test func topKSelectionMatchesFullSort() {
        func reference(_ logits: [Float], _ o: SamplingOptions, _ rng: inout SeededRNG) -> Int {
            var order = Array(0..<logits.count)
            order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            order.removeLast(logits.count - o.topK)
            return logits.withUnsafeBufferPointer { sample($0, ordered: order, o, rng: &rng) }
        }
        var gen = SeededRNG(seed: 11)
        let logits = (0..<300).map { _ in (gen.nextUnit() * 40).rounded() / 10 }  // many ties
        for k in [1, 2, 7, 40, 299] {
            for p: Float in [1, 0.8] {
                let o = SamplingOptions(temperature: 0.9, topK: k, topP: p, seed: 5)
                var a = SeededRNG(seed: UInt64(k)), b = SeededRNG(seed: UInt64(k))
                for _ in 0..<30 {
                    let x = logits.withUnsafeBufferPointer { sampleToken($0, o, rng: &a) }
                    #expect(x == reference(logits, o, &b), "k \(k), p \(p)")
                }
            }
        }
    }

    /// Without top-k only a prefix of the sorted vocabulary is read; the tokens equal those of sorting
    /// everything, for peaked and flat distributions (a flat one needs the whole vocabulary).
    @Test func wholeVocabularySamplingMatchesFullSort() {
        func reference(_ logits: [Float], _ o: SamplingOptions, _ rng: inout SeededRNG) -> Int {
            let m = logits.max()!
            let total = logits.reduce(Float(0)) { $0 + Foundation.exp(($1 - m) / o.temperature) }
            let order = Array(0..<logits.count).sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            let probs = order.map { Foundation.exp((logits[$0] - m) / o.temperature) }
            var keep = probs.count, sum = total
            if o.topP < 1 {
                var acc: Float = 0
                for (i, p) in probs.enumerated() { acc += p / total; if acc >= o.topP { keep = i + 1; break } }
                sum = probs[..<keep].reduce(0, +)
            }
            var r = rng.nextUnit() * sum
            for i in 0..<keep { r -= probs[i]; if r < 0 { return order[i] } }
            return order[keep - 1]
        }
        var gen = SeededRNG(seed: 3)
        let base = (0..<3000).map { _ in gen.nextUnit() * 2 - 1 }
        for scale: Float in [12, 3, 0.01] {
            let logits = base.map { ($0 * scale * 10).rounded() / 10 }  // ties too
            for p: Float in [1, 0.95, 0.3] {
                let o = SamplingOptions(temperature: 0.8, topP: p)
                var a = SeededRNG(seed: 9), b = SeededRNG(seed: 9)
                var distinct = Set<Int>()
                for _ in 0..<30 {
                    let x = logits.withUnsafeBufferPointer { sampleToken($0, o, rng: &a) }
                    #expect(x == reference(logits, o, &b), "scale \(scale), p \(p)")
                    distinct.insert(x)
                }
                // A flat distribution spreads its draws; a peaked one with a small p does not.
                if scale < 1 && p == 1 { #expect(distinct.count > 20) }
            }
        }
    }
}
