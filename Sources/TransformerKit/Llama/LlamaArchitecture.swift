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
    /// The feed-forward's gate: SiLU (SwiGLU) or GELU, tanh form (GeGLU, Gemma).
    public enum Gate: Sendable { case silu, geluTanh }
    /// The feed-forward's gate.
    public var gate: Gate = .silu
    /// Whether the token embedding is multiplied by √d_model before the first block (Gemma).
    public var scalesEmbedding = false
    /// Whether each head's query and key go through an RMSNorm of their own before the rotary
    /// embedding (`attn_q_norm`, `attn_k_norm`: Gemma 3).
    public var normalizesQK = false
    /// Whether the attention and feed-forward outputs go through one more RMSNorm each before they are
    /// added to the residual stream (`post_attention_norm`, `post_ffw_norm`: Gemma).
    public var normalizesSublayerOutputs = false
    /// Sliding-window attention: every `slidingWindowPattern`-th block (the last of each group) attends
    /// to every position with the file's RoPE base; the others see only the last
    /// `ARCH.attention.sliding_window` positions and use `localRoPEBase`. 0: every block is global.
    public var slidingWindowPattern = 0
    /// The RoPE base of the sliding-window blocks (Gemma 3: 10,000; the global ones: 1,000,000).
    public var localRoPEBase: Double = 10_000

    /// Every architecture this project runs.
    public static let all: [LlamaArchitecture] = [.llama, .qwen2, .gemma3]

    /// The architecture named `name`, or an error listing the ones this project runs.
    static func named(_ name: String, path: String) throws -> LlamaArchitecture {
        guard let a = all.first(where: { $0.name == name }) else {
            throw GGUFError(
                "\(path): general.architecture is \"\(name)\"; this project runs \(all.map { "\"\($0.name)\"" }.joined(separator: ", "))")
        }
        return a
    }
}
