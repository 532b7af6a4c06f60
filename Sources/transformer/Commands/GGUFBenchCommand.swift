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
            Prompt: --prompt-tokens token ids fed into an empty cache (as `generate` feeds a prompt: in chunks of 64 \
            through the batched integer kernels, else of 512; timed, best of --repeats). Generation: --gen-tokens \
            greedy tokens after a 16-token prompt, one at a time with the KV cache (tokens/s over the tokens after \
            the first). Weights as stored (quantised) and de-quantised to Float32; with quantised weights, the \
            products with 8-bit activations (integer dot products) and with Float32 ones (--activations).
            """)

    @Option(help: "A .gguf file.") var model: String
    @Option(help: "Prompt length to time.") var promptTokens: Int = 512
    @Option(help: "Tokens to generate.") var genTokens: Int = 128
    @Option(help: "Repeats (the best is reported).") var repeats: Int = 3
    @Option(help: "Threads.") var threads: Int = 2
    @Option(help: "Which weights: both, quantized or dequantized.") var weights: String = "both"
    @Option(help: "Activations for quantised weights: both, int8 or f32.") var activations: String = "both"
    @Option(help: "Time batched decoding instead: steps of 1, 2, 4, … N conversations, a token each (as `serve --parallel N`).")
    var batch: Int?
    @Flag(help: "Leave the Q4_0/Q4_1/Q8_0 matrices as stored (no 8-row repacking), to compare.") var unpackedRows = false
    @Flag(
        help: """
            Time the kernels alone instead: matrix–vector products (blk.0.ffn_gate, blk.0.ffn_down, token_embd, output) \
            and, with 8-bit activations, a prompt chunk of 64 inputs through the packed rows.
            """) var kernels = false

    /// The activation settings to time, from --activations.
    var activationModes: [ActivationPrecision] {
        switch activations {
        case "int8": return [.int8]
        case "f32": return [.float32]
        default: return ActivationPrecision.int8Available ? [.int8, .float32] : [.float32]
        }
    }

    func run() throws {
        do {
            guard promptTokens >= 1, genTokens >= 2, repeats >= 1 else {
                throw GGUFError("--prompt-tokens ≥ 1, --gen-tokens ≥ 2, --repeats ≥ 1")
            }
            guard ["both", "quantized", "dequantized"].contains(weights) else {
                throw GGUFError("--weights is both, quantized or dequantized")
            }
            guard ["both", "int8", "f32"].contains(activations) else { throw GGUFError("--activations is both, int8 or f32") }
            if activations == "int8" && !ActivationPrecision.int8Available {
                throw GGUFError(
                    "--activations int8: the active kernels (\(KernelSet.active)) have no integer dot products; they need the avx2 set")
            }
            Gemm.threads = threads
            let file = try GGUFFile(url: URL(fileURLWithPath: model))
            print("gguf-bench · \(KernelSet.report)")
            if kernels { return try timeKernels(file) }
            if let batch {
                guard batch >= 1 else { throw GGUFError("--batch is the largest number of conversations, at least 1") }
                return try timeBatches(file, upTo: batch)
            }
            let tok = try GGUFTokenizer(gguf: file)
            let text = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: promptTokens / 5 + 8)
            let ids = Array(tok.encode(text).prefix(promptTokens))
            let modes = weights == "both" ? [false, true] : [weights == "dequantized"]
            for deq in modes {
                for act in deq ? [ActivationPrecision.float32] : activationModes {
                    let t0 = Date()
                    let m = try LlamaModel(file: file, dequantize: deq, packRows: act == .int8 && !unpackedRows)
                    let load = Date().timeIntervalSince(t0)
                    let s = LlamaSession(model: m, maxLength: max(promptTokens, 16 + genTokens) + 1, activations: act)
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
                                this project, %@ weights (%.0f MB read per token)%@, %d threads: prompt %d tokens %.1f tokens/s; \
                                generation %.1f tokens/s; load %.2f s
                                """,
                            deq ? "Float32" : "quantised", Double(m.weightBytes) / 1e6,
                            deq
                                ? ""
                                : act == .int8
                                    ? (unpackedRows ? ", 8-bit activations, rows as stored" : ", 8-bit activations")
                                    : ", Float32 activations", threads, ids.count,
                            Double(ids.count) / best, Double(genTokens) / bestGen, load))
                }
            }
        } catch let e as GGUFError { fail(e.description) } catch let e as LlamaError { fail(e.description) }
    }
}

extension GGUFBenchCommand {
    /// ns per 32-value block and GB/s of weights for a matrix–vector product, best of `repeats` runs
    /// of enough products to take ~0.2 s.
    func timeKernels(_ f: GGUFFile) throws {
        let c = try LlamaConfig(gguf: f)
        for (name, rows, cols) in [
            ("blk.0.ffn_gate.weight", c.dFF, c.dModel), ("blk.0.ffn_down.weight", c.dModel, c.dFF),
            ("token_embd.weight", c.vocabSize, c.dModel), ("output.weight", c.vocabSize, c.dModel)
        ] where f.tensor(name) != nil {
            let m = try f.matrix(name, rows: rows, cols: cols)
            for act in activationModes where act == .float32 || Quantized.hasInt8Kernel(m.type) {
                var x = (0..<m.cols).map { Float(($0 * 37) % 19) / 19 - 0.5 }, out = [Float](repeating: 0, count: m.rows)
                var scratch = [Float](repeating: 0, count: m.cols / 32 + 1)
                let iterations = max(1, 200_000_000 / (m.rows * m.cols))
                var best = Double.infinity
                for _ in 0..<repeats {
                    let a = Date()
                    for _ in 0..<iterations { Quantized.matvec(&out, m, x, scratch: &scratch, activations: act); x[0] = out[0] * 1e-9 }
                    best = min(best, Date().timeIntervalSince(a) / Double(iterations))
                }
                let blocks = Double(m.rows * m.cols / 32)
                print(
                    String(
                        format: "%@ (%@, %d×%d), %@ activations, %d threads: %.0f µs per product, %.2f ns per 32 values, %.1f GB/s",
                        name, m.type.name, m.rows, m.cols, act == .int8 ? "8-bit" : "Float32", threads, best * 1e6, best * 1e9 / blocks,
                        Double(m.rows * m.rowBytes) / best / 1e9))
                if act == .int8, let packed = PackedRows(m) { timePromptChunk(m, packed, name) }
            }
        }
    }

    /// G multiply-adds/s of the batched integer kernels on a prompt chunk: 64 inputs against `m`'s rows packed
    /// 8 at a time (`PackedRows`), as `LlamaSession` feeds a prompt; best of `repeats` runs of about 10 G
    /// multiply-adds (at least one product).
    func timePromptChunk(_ m: QuantizedMatrix, _ packed: PackedRows, _ name: String) {
        var pm = m
        pm.packed = packed
        let n = 64, work = n * m.rows * m.cols
        let x = (0..<n * m.cols).map { Float(($0 * 37) % 19) / 19 - 0.5 }
        var out = [Float](repeating: 0, count: n * m.rows)
        let iterations = max(1, 10_000_000_000 / work)
        var best = Double.infinity
        for _ in 0..<repeats {
            let a = Date()
            out.withUnsafeMutableBufferPointer { o in
                x.withUnsafeBufferPointer { xp in
                    for _ in 0..<iterations { Quantized.matvecRows([(o.baseAddress!, pm)], xp.baseAddress!, n: n, activations: .int8) }
                }
            }
            best = min(best, Date().timeIntervalSince(a) / Double(iterations))
        }
        print(
            String(
                format:
                    "%@ (%@, %d×%d), 8-bit activations, %d inputs at once (a prompt chunk), %d threads: %.2f ms, %.1f G multiply-adds/s",
                name, m.type.name, m.rows, m.cols, n, threads, best * 1e3, Double(work) / best / 1e9))
    }
}

extension GGUFBenchCommand {
    /// Tokens/s of `LlamaBatchDecoder` steps with n = 1, 2, 4, … conversations (each after its own
    /// 16-token prompt, greedy), best of `repeats` runs of --gen-tokens steps; the ratio to n = 1 is the
    /// most continuous batching can give a server before HTTP, sampling and prompts.
    func timeBatches(_ file: GGUFFile, upTo maxN: Int) throws {
        let m = try LlamaModel(file: file, dequantize: weights == "dequantized", packRows: !unpackedRows)
        let tok = try GGUFTokenizer(gguf: file)
        let words = ["Once upon a time", "The history of", "A recipe for bread", "In the year 2050", "Chess rules", "Dear diary"]
        for act in weights == "dequantized" ? [ActivationPrecision.float32] : activationModes {
            var sizes = [1]
            while sizes.last! * 2 <= maxN { sizes.append(sizes.last! * 2) }
            if sizes.last! != maxN { sizes.append(maxN) }
            var single = 0.0
            for n in sizes {
                let decoder = LlamaBatchDecoder(model: m, maxRows: n, activations: act)
                let sessions = (0..<n).map { _ in LlamaSession(model: m, maxLength: 16 + genTokens + 1, activations: act) }
                var best = Double.infinity
                for _ in 0..<repeats {
                    var next = [Int]()
                    for (i, s) in sessions.enumerated() {
                        s.reset()
                        let prompt = Array(tok.encode(words[i % words.count] + " (\(i))").prefix(16))
                        let l = try s.feed(prompt)
                        next.append(l.withUnsafeBufferPointer { sampleToken($0, SamplingOptions(temperature: 0), rng: &rngDummy) })
                    }
                    let a = Date()
                    for _ in 0..<genTokens - 1 {
                        try decoder.step(sessions, next)
                        next = (0..<n).map { sampleToken(decoder.logits(row: $0), SamplingOptions(temperature: 0), rng: &rngDummy) }
                    }
                    best = min(best, Date().timeIntervalSince(a))
                }
                let rate = Double(n * (genTokens - 1)) / best
                if n == 1 { single = rate }
                print(
                    String(
                        format: "batched decoding, %@ weights%@, %d threads: %d conversations, %.1f tokens/s (%.2f× one), %.1f ms a step",
                        weights == "dequantized" ? "Float32" : "quantised",
                        weights == "dequantized"
                            ? ""
                            : (act == .int8 ? ", 8-bit activations" : ", Float32 activations")
                                + (unpackedRows ? ", rows as stored" : ", rows packed by 8"),
                        threads, n, rate, rate / single, best * 1e3 / Double(genTokens - 1)))
            }
        }
    }
}

nonisolated(unsafe) private var rngDummy = SeededRNG(seed: 1)
