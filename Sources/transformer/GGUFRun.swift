import ArgumentParser
import Foundation
import TensorKit
import TransformerKit

/// What `generate` and `chat` share for a GGUF model: loading, sampling options, streaming output.
struct GGUFRunner {
    let model: LlamaModel
    let tokenizer: GGUFTokenizer
    let session: LlamaSession
    let loadSeconds: Double

    init(path: String, dequantize: Bool, context: Int?) throws {
        let start = Date()
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: url.path) else { throw GGUFError("\(path): no such file") }
        let file = try GGUFFile(url: url)
        model = try LlamaModel(file: file, dequantize: dequantize)
        tokenizer = try GGUFTokenizer(gguf: file)
        guard tokenizer.vocabSize <= model.config.vocabSize else {
            throw GGUFError("\(path): the tokenizer has \(tokenizer.vocabSize) tokens but the model only \(model.config.vocabSize)")
        }
        if let context, context < 2 { throw GGUFError("--context must be at least 2") }
        session = LlamaSession(model: model, maxLength: context)
        loadSeconds = Date().timeIntervalSince(start)
    }

    var stopTokens: Set<Int> {
        var s = Set<Int>()
        if let e = tokenizer.eosID { s.insert(e) }
        if let e = tokenizer.bpe.id(forSpecial: "<|im_end|>") { s.insert(e) }
        if let e = tokenizer.bpe.id(forSpecial: "<|endoftext|>") { s.insert(e) }
        return s
    }

    /// Generates after `prompt`, printing text as it comes (holding back split UTF-8 characters and
    /// not printing the stop token). Returns the new tokens and the prompt and generation timings.
    func stream(prompt: [Int], maxTokens: Int, sampling: SamplingOptions) throws -> (tokens: [Int], promptSeconds: Double, genSeconds: Double) {
        var utf8 = UTF8Stream()
        let stops = stopTokens
        let t0 = Date()
        var tFirst: Date?
        let out = try session.generate(prompt: prompt, maxNewTokens: maxTokens, sampling: sampling, stop: stops) { t in
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

    func report(promptTokens: Int, result r: (tokens: [Int], promptSeconds: Double, genSeconds: Double)) {
        // The first token's time is the prompt's; the other n − 1 tokens are generation.
        let gen = r.tokens.count > 1 ? String(format: "%.1f tokens/s", Double(r.tokens.count - 1) / r.genSeconds) : "–"
        let line = String(format: "[prompt %d tokens in %.2f s (%.1f tokens/s); generated %d tokens (%@); %@ weights, %d threads]",
                          promptTokens, r.promptSeconds, Double(promptTokens) / max(r.promptSeconds, 1e-9), r.tokens.count, gen,
                          model.dequantized ? "Float32" : "quantised", Gemm.threads)
        FileHandle.standardError.write(Data((line + "\n").utf8))
        if session.length >= session.maxLength {
            FileHandle.standardError.write(Data("note: stopped because the context of \(session.maxLength) tokens is full (--context)\n".utf8))
        }
    }
}

/// Sampling and model options shared by `generate` and `chat` on a GGUF model.
struct GGUFOptions: ParsableArguments {
    @Flag(help: "GGUF: de-quantise every weight to Float32 at load (more memory; for comparison).") var dequantize = false
    @Option(help: "GGUF: the most tokens of context to hold (default: the model's).") var context: Int?
    @Option(help: "Threads for the matrix products (default: all cores).") var threads: Int?
}

extension SamplingOptions {
    static func checked(temperature: Float, topK: Int, topP: Float, seed: UInt64, maxTokens: Int) throws -> SamplingOptions {
        guard temperature >= 0, topK >= 0, topP > 0, topP <= 1, maxTokens >= 0 else {
            throw GGUFError("--temperature ≥ 0, --top-k ≥ 0, 0 < --top-p ≤ 1 and --max-tokens ≥ 0")
        }
        return SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed)
    }
}

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a GGUF model (SmolLM2-135M-Instruct…) in the terminal, streaming its replies.",
        discussion: """
            Type a message and press return; an empty line or end of input (Ctrl-D) ends the chat, \
            /reset starts a new conversation. Messages go through the model's chat template; the KV \
            cache keeps the conversation, so each turn only processes the new tokens.
            """)

    @Option(help: "A .gguf file (Llama architecture, gpt2 tokenizer).") var model: String
    @Option(help: "The system message (default: the template's own).") var system: String?
    @Option(help: "Tokens per reply at most.") var maxTokens: Int = 256
    @Option(help: "Temperature (0 = greedy).") var temperature: Float = 0.7
    @Option(help: "Keep the k most likely tokens (0 = all).") var topK: Int = 40
    @Option(help: "Nucleus sampling: keep tokens up to this total probability.") var topP: Float = 0.9
    @Option(help: "Seed for sampling.") var seed: UInt64 = 1
    @OptionGroup var options: GGUFOptions

    func run() throws {
        do {
            if let t = options.threads { Gemm.threads = t }
            let sampling = try SamplingOptions.checked(temperature: temperature, topK: topK, topP: topP, seed: seed, maxTokens: maxTokens)
            let r = try GGUFRunner(path: model, dequantize: options.dequantize, context: options.context)
            _ = try r.tokenizer.renderChat([])  // fails early on a template this cannot render
            let interactive = isatty(0) != 0
            FileHandle.standardError.write(Data(String(format: "%@: %d layers, d_model %d, %d/%d heads, %@ weights; loaded in %.2f s. Empty line or Ctrl-D to quit, /reset to start over.\n",
                                                       (model as NSString).lastPathComponent, r.model.config.layers, r.model.config.dModel, r.model.config.heads, r.model.config.kvHeads,
                                                       r.model.dequantized ? "Float32" : "quantised", r.loadSeconds).utf8))
            var first = true
            var unfed: [Int] = []  // the last reply's stop token, which the session has not seen yet
            var turn = 0
            while true {
                if interactive { FileHandle.standardOutput.write(Data("> ".utf8)) }
                guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else { break }
                if !interactive { FileHandle.standardOutput.write(Data("> \(line)\n".utf8)) }  // a readable transcript
                if line == "/reset" { r.session.reset(); first = true; unfed = []; FileHandle.standardOutput.write(Data("(new conversation)\n".utf8)); continue }
                var messages: [GGUFTokenizer.Message] = []
                if first, let system { messages.append(.init(role: "system", content: system)) }
                messages.append(.init(role: "user", content: line))
                var text = try r.tokenizer.renderChat(messages)
                if !first { text = Self.stripDefaultSystem(text) }
                // after a reply ending in <|im_end|>, the template's "\n" comes before the next turn
                let ids = unfed + (first ? [] : r.tokenizer.encode("\n")) + r.tokenizer.encode(text)
                if r.session.length + ids.count + 1 > r.session.maxLength {
                    FileHandle.standardOutput.write(Data("(the context is full: starting a new conversation)\n".utf8))
                    r.session.reset(); first = true; unfed = []
                    continue
                }
                var opts = sampling
                opts.seed = sampling.seed &+ UInt64(turn)
                let result = try r.stream(prompt: ids, maxTokens: maxTokens, sampling: opts)
                FileHandle.standardOutput.write(Data("\n".utf8))
                r.report(promptTokens: ids.count, result: result)
                // The session has seen every reply token but the last. A reply cut off by --max-tokens
                // is closed with <|im_end|> so the next turn reads as the template expects.
                let imEnd = r.tokenizer.bpe.id(forSpecial: "<|im_end|>")
                if let last = result.tokens.last {
                    unfed = r.stopTokens.contains(last) ? [last] : [last] + (imEnd.map { [$0] } ?? [])
                } else {
                    unfed = imEnd.map { [$0] } ?? []
                }
                first = false; turn += 1
            }
        } catch let e as GGUFError { fail(e.description) } catch let e as LlamaError { fail(e.description) }
    }

    /// Later turns continue the conversation: no default system message again.
    static func stripDefaultSystem(_ text: String) -> String {
        guard text.hasPrefix("<|im_start|>system\n"), let r = text.range(of: "<|im_end|>\n") else { return text }
        return String(text[r.upperBound...])
    }
}

struct GGUFInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gguf-info",
        abstract: "List a GGUF file's metadata and tensors (name, type, shape, size) and check it can be run.")

    @Argument(help: "A .gguf file.") var file: String
    @Flag(help: "List every tensor (default: a table of types, and the first block's tensors).") var all = false

    func run() throws {
        do {
            let f = try GGUFFile(url: URL(fileURLWithPath: file))
            print("\(file): GGUF v\(f.version), \(f.fileSize) bytes, \(f.keys.count) metadata entries, \(f.tensors.count) tensors, alignment \(f.alignment), data at byte \(f.dataOffset)")
            print("\nmetadata:")
            for k in f.keys { print("  \(k) = \(f.metadata[k]!.summary)") }
            var byType: [String: (count: Int, bytes: Int, values: Int)] = [:]
            for t in f.tensors {
                let e = byType[t.type.name] ?? (0, 0, 0)
                byType[t.type.name] = (e.count + 1, e.bytes + t.byteCount, e.values + t.count)
            }
            print("\ntensor types:")
            print("  type          tensors   values        bytes   bits/value")
            for (name, e) in byType.sorted(by: { $0.value.bytes > $1.value.bytes }) {
                print("  " + name.padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: " %8d %9d %12d   %.2f", e.count, e.values, e.bytes, 8 * Double(e.bytes) / Double(e.values)))
            }
            print("\ntensors\(all ? "" : " (those outside the blocks, and block 0)"):")
            for t in f.tensors where all || !t.name.hasPrefix("blk.") || t.name.hasPrefix("blk.0.") {
                print("  \(t.name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(t.type.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(t.dims)")
            }
            let c = try LlamaConfig(gguf: f)
            _ = try GGUFTokenizer(gguf: f)
            print("\nruns as: llama, vocabulary \(c.vocabSize), d_model \(c.dModel), \(c.layers) blocks, \(c.heads) heads (\(c.kvHeads) key/value, size \(c.headSize)), feed-forward \(c.hidden), context \(c.contextLength), RoPE base \(c.ropeBase), RMSNorm ε \(c.rmsEps)")
        } catch let e as GGUFError { fail(e.description) }
    }
}

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
            guard promptTokens >= 1, genTokens >= 2, repeats >= 1 else { throw GGUFError("--prompt-tokens ≥ 1, --gen-tokens ≥ 2, --repeats ≥ 1") }
            guard ["both", "quantized", "dequantized"].contains(weights) else { throw GGUFError("--weights is both, quantized or dequantized") }
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
                print(String(format: "this project, %@ weights (%.0f MB read per token), %d threads: prompt %d tokens %.1f tokens/s; generation %.1f tokens/s; load %.2f s",
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
        for (name, rows) in [("blk.0.ffn_gate.weight", c.hidden), ("token_embd.weight", c.vocabSize)] {
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
            print(String(format: "%@ (%@, %d×%d), %d threads: %.0f µs per product, %.2f ns per block, %.1f GB/s",
                         name, m.type.name, m.rows, m.cols, threads, best * 1e6, best * 1e9 / blocks, Double(m.rows * m.rowBytes) / best / 1e9))
        }
    }
}

nonisolated(unsafe) private var rngDummy = SeededRNG(seed: 1)
