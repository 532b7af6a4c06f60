import ArgumentParser
import Foundation
import TensorKit
import TransformerKit
import Tokenizers
import ModelFiles

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
            FileHandle.standardError.write(
                Data(
                    String(
                        format:
                            """
                            %@: %d layers, d_model %d, %d/%d heads, %@ weights; loaded in %.2f s. Empty line or Ctrl-D to quit, \
                            /reset to start over.\n
                            """,
                        (model as NSString).lastPathComponent, r.model.config.layers, r.model.config.dModel, r.model.config.heads,
                        r.model.config.kvHeads,
                        r.model.dequantized ? "Float32" : "quantised", r.loadSeconds
                    ).utf8))
            var first = true
            var unfed: [Int] = []  // the last reply's stop token, which the session has not seen yet
            var turn = 0
            while true {
                if interactive { FileHandle.standardOutput.write(Data("> ".utf8)) }
                guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else { break }
                if !interactive { FileHandle.standardOutput.write(Data("> \(line)\n".utf8)) }  // a readable transcript
                if line == "/reset" {
                    r.session.reset(); first = true; unfed = []; FileHandle.standardOutput.write(Data("(new conversation)\n".utf8));
                    continue
                }
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
