import ArgumentParser
import Foundation
import TensorKit
import TransformerKit
import Tokenizers
import ModelFiles

struct GGUFBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gguf-bench",
        abstract: "Measure a GGUF model's prompt processing and batch-1 generation speed, quantised and de-quantised.",
        discussion: """
            Prompt: --prompt-tokens token ids fed at once into an empty cache (timed, best of --repeats). \
            Generation: --gen-tokens greedy tokens after a 16-token prompt, one at a time with the KV cache \
            (tokens/s over the tokens after the first). Weights as stored (quantised) and de-quantised to Float32.
            """)

    @Option(help: "A .gguf file.") var model: String
    @Option(help: "Prompt length to time.") var promptTokens: Int = 512
    @Option(help: "Tokens to generate.") var genTokens: Int = 128
    @Option(help: "Repeats (the best is reported).") var repeats: Int = 3
    @Option(help: "Threads.") var threads: Int = 2
    @Option(help: "Which weights: both, quantized or dequantized.") var weights: String = "both"
    @Flag(help: "Time the matrix–vector kernels alone (blk.0.ffn_gate, token_embd) instead.") var kernels = false

    func run() throws {
        do {
            guard promptTokens >= 1, genTokens >= 2, repeats >= 1 else {
                throw GGUFError("--prompt-tokens ≥ 1, --gen-tokens ≥ 2, --repeats ≥ 1")
            }
            guard ["both", "quantized", "dequantized"].contains(weights) else {
                throw GGUFError("--weights is both, quantized or dequantized")
            }
            Gemm.threads = threads
            let file = try GGUFFile(url: URL(fileURLWithPath: model))
            if kernels { return try timeKernels(file) }
            let tok = try GGUFTokenizer(gguf: file)
            let text = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: promptTokens / 5 + 8)
            let ids = Array(tok.encode(text).prefix(promptTokens))
            let modes = weights == "both" ? [false, true] : [weights == "dequantized"]
            for deq in modes {
                let t0 = Date()
                let m = try LlamaModel(file: file, dequantize: deq)
                let load = Date().timeIntervalSince(t0)
                let s = LlamaSession(model: m, maxLength: max(promptTokens, 16 + genTokens) + 1)
                var best = Double.infinity
                for _ in 0..<repeats {
                    s.reset()
                    let a = Date()
                    try s.feed(ids)
                    best = min(best, Date().timeIntervalSince(a))
                }
                var bestGen = Double.infinity
                for _ in 0..<repeats {
                    s.reset()
                    var logits = try s.feed(Array(ids.prefix(16)))
                    let a = Date()
                    for _ in 0..<genTokens {
                        let next = logits.withUnsafeBufferPointer { sampleToken($0, SamplingOptions(temperature: 0), rng: &rngDummy) }
                        logits = try s.feed([next])
                    }
                    bestGen = min(bestGen, Date().timeIntervalSince(a))
                }
                print(
                    String(
                        format:
                            """
                            this project, %@ weights (%.0f MB read per token), %d threads: prompt %d tokens %.1f tokens/s; \
                            generation %.1f tokens/s; load %.2f s
                            """,
                        deq ? "Float32" : "quantised", Double(m.weightBytes) / 1e6, threads, ids.count, Double(ids.count) / best,
                        Double(genTokens) / bestGen, load))
            }
        } catch let e as GGUFError { fail(e.description) } catch let e as LlamaError { fail(e.description) }
    }
}

extension GGUFBenchCommand {
    /// ns per 32-value block and GB/s of weights for a matrix–vector product, best of `repeats` runs
    /// of enough products to take ~0.2 s.
    func timeKernels(_ f: GGUFFile) throws {
        let c = try LlamaConfig(gguf: f)
        for (name, rows) in [("blk.0.ffn_gate.weight", c.dFF), ("token_embd.weight", c.vocabSize)] {
            let m = try f.matrix(name, rows: rows, cols: c.dModel)
            var x = (0..<m.cols).map { Float(($0 * 37) % 19) / 19 - 0.5 }, out = [Float](repeating: 0, count: m.rows)
            var scratch = [Float](repeating: 0, count: m.cols / 32 + 1)
            let iterations = max(1, 200_000_000 / (m.rows * m.cols))
            var best = Double.infinity
            for _ in 0..<repeats {
                let a = Date()
                for _ in 0..<iterations { Quantized.matvec(&out, m, x, scratch: &scratch); x[0] = out[0] * 1e-9 }
                best = min(best, Date().timeIntervalSince(a) / Double(iterations))
            }
            let blocks = Double(m.rows * m.cols / 32)
            print(
                String(
                    format: "%@ (%@, %d×%d), %d threads: %.0f µs per product, %.2f ns per block, %.1f GB/s",
                    name, m.type.name, m.rows, m.cols, threads, best * 1e6, best * 1e9 / blocks, Double(m.rows * m.rowBytes) / best / 1e9))
        }
    }
}

nonisolated(unsafe) private var rngDummy = SeededRNG(seed: 1)
