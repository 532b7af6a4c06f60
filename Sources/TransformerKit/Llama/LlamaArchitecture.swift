import Foundation
import ModelFiles

/// What one architecture of the Llama family changes in the shared block (`LlamaModel`): each
/// architecture is one file in this folder that defines its value (`Llama.swift`, `Qwen2.swift`), and
/// `all` lists them. A GGUF file names its architecture in `general.architecture`; its sizes are
/// under that name (`qwen2.embedding_length`, …).
public struct LlamaArchitecture: Sendable, Equatable {
    /// How rotary embeddings pair a head's dimensions.
    public enum RoPEPairs: Sendable {
        /// (x[2i], x[2i+1]): llama.cpp's converter permuted Q and K for this (Llama).
        case adjacent
        /// (x[i], x[i + d/2]): Hugging Face's `rotate_half`, on un-permuted weights (Qwen2, Gemma).
        case halves
    }

    /// The value of `general.architecture`.
    public let name: String
    /// How rotary embeddings pair dimensions.
    public var ropePairs: RoPEPairs
    /// Whether Q, K and V have biases (`blk.N.attn_q.bias` …).
    public var attentionBias: Bool

    /// Every architecture this project runs.
    public static let all: [LlamaArchitecture] = [.llama, .qwen2]

    /// The architecture named `name`, or an error listing the ones this project runs.
    static func named(_ name: String, path: String) throws -> LlamaArchitecture {
        guard let a = all.first(where: { $0.name == name }) else {
            throw GGUFError(
                "\(path): general.architecture is \"\(name)\"; this project runs \(all.map { "\"\($0.name)\"" }.joined(separator: ", "))")
        }
        return a
    }
}
