import ArgumentParser
import Foundation
import TensorKit
import TransformerKit
import Tokenizers
import ModelFiles

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a GGUF model (SmolLM2, Qwen2.5…) in the terminal, streaming its replies.",
        discussion: """
            Type a message and press return; an empty line or end of input (Ctrl-D) ends the chat, \
            /reset starts a new conversation. The whole conversation goes through the model's own chat \
            template (tokenizer.chat_template, a Jinja template) every turn; the KV cache keeps what the \
            model has read, so each turn only processes the new tokens. When the conversation outgrows \
            the context, its oldest turns (after the system message) are dropped.
            """)

    @Option(help: "A .gguf file (llama or qwen2 architecture, gpt2 tokenizer).") var model: String
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
            let r = try GGUFRunner(
                path: model, dequantize: options.dequantize, context: options.context, activations: options.activationPrecision())
            let conversation = try ChatConversation(session: r.session, tokenizer: r.tokenizer, system: system)
            let interactive = isatty(0) != 0
            let c = r.model.config
            FileHandle.standardError.write(
                Data(
                    String(
                        format:
                            """
                            %@: %@, %d layers, d_model %d, %d/%d heads, %@ weights; loaded in %.2f s. Empty line or Ctrl-D to quit, \
                            /reset to start over.\n
                            """,
                        (model as NSString).lastPathComponent, c.architecture.name, c.layers, c.dModel, c.heads, c.kvHeads,
                        r.model.dequantized ? "Float32" : "quantised", r.loadSeconds
                    ).utf8))
            var turn = 0
            while true {
                if interactive { FileHandle.standardOutput.write(Data("> ".utf8)) }
                guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else { break }
                if !interactive { FileHandle.standardOutput.write(Data("> \(line)\n".utf8)) }  // a readable transcript
                if line == "/reset" {
                    conversation.reset()
                    FileHandle.standardOutput.write(Data("(new conversation)\n".utf8))
                    continue
                }
                var opts = sampling
                opts.seed = sampling.seed &+ UInt64(turn)
                let (done, promptSeconds, genSeconds) = try r.streaming { onToken in
                    try conversation.reply(to: line, maxTokens: maxTokens, sampling: opts, stop: r.stopTokens, onToken: onToken)
                }
                FileHandle.standardOutput.write(Data("\n".utf8))
                if done.droppedMessages > 0 {
                    FileHandle.standardError.write(
                        Data(
                            "note: dropped the \(done.droppedMessages) oldest messages to fit the context of \(r.session.maxLength)\n".utf8)
                    )
                }
                r.report(
                    promptTokens: done.readTokens, reused: done.reusedTokens,
                    result: (done.tokens, promptSeconds, genSeconds))
                turn += 1
            }
        } catch let e as GGUFError { fail(e.description) } catch let e as LlamaError { fail(e.description) } catch let e
            as ChatTemplateError
        {
            fail("\(model): \(e.message)")
        }
    }
}
