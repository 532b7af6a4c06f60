import Foundation
import ModelFiles
import Serving
import TensorKit
import Tokenizers
import Training
import TransformerKit

extension ServeCommand {
    /// A GPT run folder (its latest checkpoint), checkpoint folder or Hugging Face GPT-2 folder, with
    /// its tokenizer, in `--parallel` slots.
    func gptEngine(_ path: String) throws -> SlotEngine {
        let dir = try Checkpoint.resolve(path)
        let m = try GPTCheckpoint.loadHuggingFace(dir)
        let tok = try TextTokenizer.load(directory: dir)
        guard tok.vocabularySize <= m.config.vocabSize else {
            throw TrainingError("\(dir.path): the tokenizer has \(tok.vocabularySize) tokens but the model only \(m.config.vocabSize)")
        }
        return SlotEngine(
            model: SequentialGPT(model: m), tokenizer: GPTServedTokenizer(tok), parallel: parallel, maxQueue: queue, context: gguf.context)
    }

    /// `serve --model X.gguf | --api --model GPT_DIR [--embeddings DIR]`: the OpenAI-compatible API.
    func runAPI() async throws {
        guard model != nil || embeddings != nil else {
            fail("--api needs --model (a GGUF file, a GPT run or GPT-2 folder) or --embeddings DIR")
        }
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
            if let model, !model.lowercased().hasSuffix(".gguf") {
                guard api else {
                    fail("\(model): a run or checkpoint folder opens the explorer; add --api to serve a GPT over the OpenAI API")
                }
                if let c = gguf.context, c < 2 { fail("--context must be at least 2") }
                let e = try gptEngine(model)
                options.modelID = alias ?? URL(fileURLWithPath: model).standardizedFileURL.lastPathComponent
                e.start()
                engine = e
                lines.append("completions: \(options.modelID) (GPT, \(parallel) slots of \(e.context) tokens, no chat template)")
            } else if let model {
                let url = URL(fileURLWithPath: model)
                guard FileManager.default.fileExists(atPath: url.path) else { throw GGUFError("\(model): no such file") }
                let file = try GGUFFile(url: url)
                // the Q4/Q8 matrices repacked 8 rows at a time for the integer kernels (Float32 activations never read them)
                let activations = try gguf.activationPrecision()
                let m = try LlamaModel(
                    file: file, dequantize: gguf.dequantize, packRows: activations.effective == .int8)
                let tokenizer = try GGUFTokenizer(gguf: file)
                _ = try tokenizer.renderChat([.init(role: "user", content: "")])  // the template must read
                if let c = gguf.context, c < 2 { fail("--context must be at least 2") }
                let e = SlotEngine(
                    model: m, tokenizer: tokenizer, parallel: parallel, maxQueue: queue, context: gguf.context,
                    activations: activations)
                options.modelID = alias ?? url.deletingPathExtension().lastPathComponent
                e.start()
                engine = e
                lines.append("chat: \(options.modelID) (\(m.config.architecture.name), \(parallel) slots of \(e.context) tokens)")
                lines.append("\(KernelSet.report) · activations \(activations.effective.rawValue)")
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
        } catch let e as TrainingError { fail(e.message) } catch let e as TokenizerError { fail(e.message) } catch let e as ConfigError {
            fail(e.message)
        } catch let e as SafetensorsError { fail(e.description) }
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
