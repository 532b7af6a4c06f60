import ArgumentParser
import Foundation
import TensorKit
import TransformerKit
import Tokenizers
import ModelFiles

struct GGUFInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gguf-info",
        abstract: "List a GGUF file's metadata and tensors (name, type, shape, size) and check it can be run.")

    @Argument(help: "A .gguf file.") var file: String
    @Flag(help: "List every tensor (default: a table of types, and the first block's tensors).") var all = false

    func run() throws {
        do {
            let f = try GGUFFile(url: URL(fileURLWithPath: file))
            print(
                """
                \(file): GGUF v\(f.version), \(f.fileSize) bytes, \(f.keys.count) metadata entries, \(f.tensors.count) tensors, \
                alignment \(f.alignment), data at byte \(f.dataOffset)
                """
            )
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
                print(
                    "  " + name.padding(toLength: 12, withPad: " ", startingAt: 0)
                        + String(format: " %8d %9d %12d   %.2f", e.count, e.values, e.bytes, 8 * Double(e.bytes) / Double(e.values)))
            }
            print("\ntensors\(all ? "" : " (those outside the blocks, and block 0)"):")
            for t in f.tensors where all || !t.name.hasPrefix("blk.") || t.name.hasPrefix("blk.0.") {
                print(
                    "  \(t.name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(t.type.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(t.dims)"
                )
            }
            let c = try LlamaConfig(gguf: f)
            let tok = try GGUFTokenizer(gguf: f)
            var window = ""
            if let w = c.slidingWindow {
                let global = (0..<c.layers).filter { !c.isSlidingWindow(layer: $0) }.map(String.init).joined(separator: ", ")
                window = "; sliding window \(w) (RoPE base \(c.architecture.localRoPEBase)) except blocks \(global)"
            }
            print(
                """
                \nruns as: \(c.architecture.name), vocabulary \(c.vocabSize), d_model \(c.dModel), \(c.layers) blocks, \(c.heads) heads \
                (\(c.kvHeads) key/value, size \(c.headSize)), feed-forward \(c.dFF), context \(c.contextLength), RoPE base \
                \(c.ropeBase), RMSNorm ε \(c.rmsEps)\(window)
                tokenizer: \(tok.sentencePiece != nil ? "SentencePiece" : "byte-level BPE"), \(tok.vocabSize) tokens; chat template: \
                \(tok.chatTemplate == nil ? "none" : tok.chatTemplateIsBuiltIn ? "none in the file, this project's \(c.architecture.name) format" : "the file's")
                """
            )
        } catch let e as GGUFError { fail(e.description) }
    }
}
