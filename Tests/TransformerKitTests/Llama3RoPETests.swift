import Foundation
import Testing
import TensorKit
@testable import TransformerKit
@testable import ModelFiles

/// RoPE scaling against Hugging Face transformers on a tiny random Llama (2 blocks, d 64, heads of 16):
/// Llama 3.1's per-frequency scaling (`rope_freqs.weight`: divisors 1, 1.29, 7.67 and 8, so all three
/// of its cases) and linear scaling (factor 4). Fixture: `Fixtures/llama3-rope/`, written by
/// `make_llama3_rope_fixture.py`; the GGUF files are the converter's layout (Q and K permuted).
@Suite struct Llama3RoPETests {
    struct Expected: Decodable {
        struct Run: Decodable { let divisors: [Float]; let logits: [[Float]]; let unscaled_last: [Float] }
        let ids: [Int]; let llama3: Run; let linear: Run
    }

    static func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/llama3-rope/\(name)", withExtension: nil))
    }

    @Test(arguments: ["llama3", "linear"])
    func logitsMatchTransformers(kind: String) throws {
        let e = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Self.fixture("expected.json")))
        let run = kind == "llama3" ? e.llama3 : e.linear
        let model = try LlamaModel(url: Self.fixture(kind == "llama3" ? "tiny.gguf" : "tiny-linear.gguf"))
        if kind == "llama3" {
            #expect(model.ropeDivisors == run.divisors && model.config.ropeScale == 1)
        } else {
            #expect(model.ropeDivisors == nil && model.config.ropeScale == 4)
        }
        // every position, one token at a time; then the whole prompt at once (the GEMM path)
        let s = LlamaSession(model: model, activations: .float32)
        var worst: Float = 0
        for (p, id) in e.ids.enumerated() {
            let logits = try s.feed([id])
            worst = max(worst, zip(logits, run.logits[p]).map { abs($0 - $1) }.max()!)
        }
        s.reset()
        let whole = try s.feed(e.ids)
        worst = max(worst, zip(whole, run.logits.last!).map { abs($0 - $1) }.max()!)
        #expect(worst < 1e-4, "\(kind): worst logit difference \(worst)")
        // The scaling matters here: the same weights without it end elsewhere.
        #expect(zip(whole, run.unscaled_last).map { abs($0 - $1) }.max()! > 0.1)
    }

    /// YaRN and other scalings are refused naming the key; divisors must be positive.
    @Test func otherScalingsAreRefused() throws {
        var w = GGUFTests.tinyLlama()
        w.metadata.append(("llama.rope.scaling.type", .string("yarn")))
        let m = GGUFTests.errorText { _ = try LlamaConfig(gguf: GGUFFile(data: w.data(), path: "y.gguf")) }
        let want = "y.gguf: llama.rope.scaling.type is \"yarn\"; this project applies \"linear\" RoPE scaling (and Llama 3.1's rope_freqs)"
        #expect(m == want)
    }
}
