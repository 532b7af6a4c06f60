import Foundation
import ModelFiles
import Serving
import TensorKit
import Tokenizers
import TransformerKit

extension ServeCommand {
    /// `serve --model X.gguf [--embeddings DIR]`: the OpenAI-compatible API.
    func runAPI() async throws {
        guard parallel >= 1 && parallel <= 64 else { fail("--parallel must be 1…64 (got \(parallel))") }
        guard queue >= 0 else { fail("--queue must be 0 or more (got \(queue))") }
        guard readTimeout > 0, idleTimeout > 0, maxConnections > 0 else {
            fail("--read-timeout, --idle-timeout and --max-connections must be positive")
        }
        var options = OpenAIServerOptions()
        options.maxBodyBytes = maxBody ?? 1 << 20
        guard options.maxBodyBytes > 0 else { fail("--max-body must be positive") }
        options.apiKey = apiKey ?? ProcessInfo.processInfo.environment["TRANSFORMER_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        options.readTimeout = .milliseconds(Int((readTimeout * 1000).rounded()))
        options.idleTimeout = .milliseconds(Int((max(idleTimeout, 60) * 1000).rounded()))
        options.maxConnections = maxConnections
        if let t = gguf.threads {
            guard t >= 1 else { fail("--threads must be at least 1") }
            Gemm.threads = t
        }
        var engine: SlotEngine?, embedder: Embedder?
        var lines: [String] = []
        do {
            if let model {
                guard model.lowercased().hasSuffix(".gguf") else {
                    fail("\(model): the API server runs GGUF models; a run or checkpoint folder opens the explorer (without --embeddings)")
                }
                let url = URL(fileURLWithPath: model)
                guard FileManager.default.fileExists(atPath: url.path) else { throw GGUFError("\(model): no such file") }
                let file = try GGUFFile(url: url)
                let m = try LlamaModel(file: file, dequantize: gguf.dequantize)
                let tokenizer = try GGUFTokenizer(gguf: file)
                _ = try tokenizer.renderChat([.init(role: "user", content: "")])  // the template must read
                if let c = gguf.context, c < 2 { fail("--context must be at least 2") }
                let e = SlotEngine(
                    model: m, tokenizer: tokenizer, parallel: parallel, maxQueue: queue, context: gguf.context,
                    activations: try gguf.activationPrecision())
                options.modelID = alias ?? url.deletingPathExtension().lastPathComponent
                e.start()
                engine = e
                lines.append("chat: \(options.modelID) (\(m.config.architecture.name), \(parallel) slots of \(e.context) tokens)")
            }
            if let embeddings {
                let url = URL(fileURLWithPath: embeddings, isDirectory: true)
                let encoder = try SentenceEncoder(directory: url)
                let id = url.standardizedFileURL.lastPathComponent
                embedder = Embedder(encoder: encoder, id: id, maxQueue: queue)
                lines.append("embeddings: \(id)")
            }
        } catch let e as GGUFError { fail(e.description) } catch let e as BERTCheckpointError { fail(e.message) } catch let e
            as ChatTemplateError
        {
            fail("\(model ?? ""): the chat template: \(e)")
        }
        if !["127.0.0.1", "localhost", "::1"].contains(host) && options.apiKey == nil {
            FileHandle.standardError.write(
                Data("warning: --host \(host) may expose the server beyond this machine; consider --api-key\n".utf8))
        }
        let host = self.host, summary = lines.joined(separator: "; ")
        try await OpenAIServer.application(engine: engine, embedder: embedder, host: host, port: port, options: options) { bound in
            FileHandle.standardOutput.write(Data("serving \(summary)\nopenai base url http://\(host):\(bound)/v1  (Ctrl-C stops)\n".utf8))
        }.runService()
    }
}
