import ArgumentParser
import Foundation
import TensorKit
import Training
import TransformerKit
import Tokenizers
import ModelFiles

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract:
            """
            Generate text from a GPT checkpoint (this project's runs or a Hugging Face GPT-2 folder) or a GGUF model, streaming \
            tokens as they come.
            """
    )

    @Option(help: "A run folder (its latest checkpoint), a checkpoint / GPT-2 folder, or a .gguf file.") var model: String
    @Option(help: "The prompt.") var prompt: String = "\n"
    @Option(help: "Tokens to generate.") var maxTokens: Int = 200
    @Option(help: "Temperature (0 = greedy).") var temperature: Float = 0.8
    @Option(help: "Keep the k most likely tokens (0 = all).") var topK: Int = 0
    @Option(help: "Nucleus sampling: keep tokens up to this total probability.") var topP: Float = 1
    @Option(help: "Seed for sampling.") var seed: UInt64 = 1
    @Flag(help: "Recompute the whole context for every token instead of using the KV cache (same tokens, slower).") var noCache = false
    @Flag(help: "GGUF: wrap the prompt in the model's chat template, as a user message.") var chat = false
    @OptionGroup var gguf: GGUFOptions

    func run() throws {
        if model.lowercased().hasSuffix(".gguf") { return try runGGUF() }
        do {
            guard temperature >= 0, topK >= 0, topP > 0, topP <= 1, maxTokens >= 0 else {
                throw TrainingError("--temperature ≥ 0, --top-k ≥ 0, 0 < --top-p ≤ 1 and --max-tokens ≥ 0")
            }
            let dir = try Checkpoint.resolve(model)
            let m = try GPTCheckpoint.loadHuggingFace(dir)
            let tok = try TextTokenizer.load(directory: dir)
            guard tok.vocabularySize <= m.config.vocabSize else {
                throw TrainingError("\(dir.path): the tokenizer has \(tok.vocabularySize) tokens but the model only \(m.config.vocabSize)")
            }
            var ids = try tok.encode(prompt)
            if ids.isEmpty { ids = [0] }
            if ids.count >= m.config.contextLength {
                FileHandle.standardError.write(
                    Data(
                        """
                        note: the prompt has \(ids.count) tokens; keeping its last \(m.config.contextLength - 1) (the context is \
                        \(m.config.contextLength))\n
                        """
                        .utf8))
            }
            let gen = GPTGenerator(model: m, useCache: !noCache)
            FileHandle.standardOutput.write(Data(prompt.utf8))
            let start = Date()
            var pending: [Int] = []
            let out = gen.generate(
                prompt: ids, maxNewTokens: maxTokens,
                sampling: SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed)
            ) { t in
                // BPE pieces may split a UTF-8 character: print once the bytes decode cleanly.
                pending.append(t)
                let s = tok.decode(pending)
                if !s.contains("\u{FFFD}") || pending.count > 4 { FileHandle.standardOutput.write(Data(s.utf8)); pending = [] }
            }
            if !pending.isEmpty { FileHandle.standardOutput.write(Data(tok.decode(pending).utf8)) }
            let dt = Date().timeIntervalSince(start)
            FileHandle.standardError.write(
                Data(
                    String(
                        format: "\n[%d tokens in %.2f s: %.1f tokens/s, %@]\n", out.count, dt, Double(out.count) / dt,
                        noCache ? "no cache" : "KV cache"
                    ).utf8))
        } catch let e as TrainingError { fail(e.message) } catch let e as TokenizerError { fail(e.message) } catch let e as ConfigError {
            fail(e.message)
        } catch let e as SafetensorsError { fail(e.description) }
    }
}

extension GenerateCommand {
    /// A GGUF model: the prompt as given (or in the chat template with --chat), no BOS unless the
    /// file asks for one, stopping at the end-of-turn / end-of-text tokens.
    func runGGUF() throws {
        do {
            if noCache { throw GGUFError("--no-cache is for GPT checkpoints; a GGUF model always uses its KV cache") }
            if let t = gguf.threads { Gemm.threads = t }
            let sampling = try SamplingOptions.checked(temperature: temperature, topK: topK, topP: topP, seed: seed, maxTokens: maxTokens)
            let r = try GGUFRunner(path: model, dequantize: gguf.dequantize, context: gguf.context, activations: gguf.activationPrecision())
            let text = chat ? try r.tokenizer.renderChat([.init(role: "user", content: prompt)]) : prompt
            var ids = r.tokenizer.encode(text)
            // a chat template writes its own BOS (bos_token), as apply_chat_template's text is encoded without specials added
            if !chat, r.tokenizer.addBOS, let bos = r.tokenizer.bosID { ids.insert(bos, at: 0) }
            guard !ids.isEmpty else { throw GGUFError("--prompt is empty: give at least one character") }
            guard ids.count < r.session.maxLength else {
                throw GGUFError(
                    """
                    --prompt has \(ids.count) tokens; the context holds \(r.session.maxLength) (the prompt and at least one new \
                    token must fit)
                    """
                )
            }
            if !chat { FileHandle.standardOutput.write(Data(prompt.utf8)) }
            let result = try r.stream(prompt: ids, maxTokens: maxTokens, sampling: sampling)
            FileHandle.standardOutput.write(Data("\n".utf8))
            r.report(promptTokens: ids.count, result: result)
        } catch let e as GGUFError { fail(e.description) } catch let e as LlamaError { fail(e.description) } catch let e
            as ChatTemplateError
        {
            fail("\(model): \(e.message)")
        }
    }
}
