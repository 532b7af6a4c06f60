import ArgumentParser
import Foundation
import TensorKit
import TransformerKit
import Tokenizers
import ModelFiles

/// What `generate` and `chat` share for a GGUF model: loading, sampling options, streaming output.
struct GGUFRunner {
    let model: LlamaModel
    let tokenizer: GGUFTokenizer
    let session: LlamaSession
    let loadSeconds: Double

    init(path: String, dequantize: Bool, context: Int?, activations: ActivationPrecision = .default) throws {
        let start = Date()
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: url.path) else { throw GGUFError("\(path): no such file") }
        let file = try GGUFFile(url: url)
        model = try LlamaModel(file: file, dequantize: dequantize, packRows: activations.effective == .int8)
        tokenizer = try GGUFTokenizer(gguf: file)
        guard tokenizer.vocabSize <= model.config.vocabSize else {
            throw GGUFError("\(path): the tokenizer has \(tokenizer.vocabSize) tokens but the model only \(model.config.vocabSize)")
        }
        if let context, context < 2 { throw GGUFError("--context must be at least 2") }
        session = LlamaSession(model: model, maxLength: context, activations: activations)
        loadSeconds = Date().timeIntervalSince(start)
    }

    var stopTokens: Set<Int> { tokenizer.stopTokens }

    /// Generates after `prompt`, printing text as it comes (holding back split UTF-8 characters and
    /// not printing the stop token). Returns the new tokens and the prompt and generation timings.
    func stream(prompt: [Int], maxTokens: Int, sampling: SamplingOptions) throws -> (
        tokens: [Int], promptSeconds: Double, genSeconds: Double
    ) {
        try streaming { onToken in
            try session.generate(prompt: prompt, maxNewTokens: maxTokens, sampling: sampling, stop: stopTokens, onToken: onToken)
        }
    }

    /// Runs `body` with a callback that prints each new token's text (holding back split UTF-8
    /// characters, not printing stop tokens) and times the first token (the prompt's time) and the rest.
    func streaming<R>(_ body: (_ onToken: (Int) -> Void) throws -> R) throws -> (R, promptSeconds: Double, genSeconds: Double) {
        var utf8 = UTF8Stream()
        let stops = stopTokens
        let t0 = Date()
        var tFirst: Date?
        let out = try body { t in
            if tFirst == nil { tFirst = Date() }
            if stops.contains(t) { return }
            let s = utf8.append(tokenizer.decodeBytes([t]))
            if !s.isEmpty { FileHandle.standardOutput.write(Data(s.utf8)) }
        }
        let rest = utf8.flush()
        if !rest.isEmpty { FileHandle.standardOutput.write(Data(rest.utf8)) }
        let t1 = Date(), first = tFirst ?? t1
        return (out, first.timeIntervalSince(t0), t1.timeIntervalSince(first))
    }

    func report(promptTokens: Int, reused: Int = 0, result r: (tokens: [Int], promptSeconds: Double, genSeconds: Double)) {
        // The first token's time is the prompt's; the other n − 1 tokens are generation.
        let gen = r.tokens.count > 1 ? String(format: "%.1f tokens/s", Double(r.tokens.count - 1) / r.genSeconds) : "–"
        let line = String(
            format: "[prompt %d tokens%@ in %.2f s (%.1f tokens/s); generated %d tokens (%@); %@, %d threads, kernels %@]",
            promptTokens, reused > 0 ? " (+\(reused) from the cache)" : "", r.promptSeconds,
            Double(promptTokens) / max(r.promptSeconds, 1e-9),
            r.tokens.count, gen,
            model.dequantized
                ? "Float32 weights" : session.activations.effective == .int8 ? "quantised weights, 8-bit activations" : "quantised weights",
            Gemm.threads, KernelSet.active.rawValue)
        FileHandle.standardError.write(Data((line + "\n").utf8))
        if session.length >= session.maxLength {
            FileHandle.standardError.write(
                Data("note: stopped because the context of \(session.maxLength) tokens is full (--context)\n".utf8))
        }
    }
}

/// Sampling and model options shared by `generate` and `chat` on a GGUF model.
struct GGUFOptions: ParsableArguments {
    @Flag(help: "GGUF: de-quantise every weight to Float32 at load (more memory; for comparison).") var dequantize = false
    @Option(help: "GGUF: the most tokens of context to hold (default: the model's).") var context: Int?
    @Option(help: "Threads for the matrix products (default: all cores).") var threads: Int?
    @Option(
        help: """
            GGUF: one token's products with 8-bit activations and integer dot products (int8, the default where the CPU \
            has them, as llama.cpp) or Float32 activations (f32: the exact product, slower).
            """)
    var activations: String?

    /// The --activations value (or the default: `TRANSFORMER_ACTIVATIONS`, else int8 where available).
    func activationPrecision() throws -> ActivationPrecision {
        guard let a = activations else { return .default }
        guard let p = ActivationPrecision(rawValue: a) else { throw GGUFError("--activations is int8 or f32, not \(a)") }
        if p == .int8 && !ActivationPrecision.int8Available {
            throw GGUFError(
                "--activations int8: the active kernels (\(KernelSet.active)) have no integer dot products; they need the avx2 set")
        }
        return p
    }
}

extension SamplingOptions {
    static func checked(temperature: Float, topK: Int, topP: Float, seed: UInt64, maxTokens: Int) throws -> SamplingOptions {
        guard temperature >= 0, topK >= 0, topP > 0, topP <= 1, maxTokens >= 0 else {
            throw GGUFError("--temperature ≥ 0, --top-k ≥ 0, 0 < --top-p ≤ 1 and --max-tokens ≥ 0")
        }
        return SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed)
    }
}
