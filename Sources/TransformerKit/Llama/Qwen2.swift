extension LlamaArchitecture {
    /// Qwen2 (and Qwen2.5): a Llama block whose Q, K and V projections have biases, with rotary
    /// embeddings on half-split pairs (its GGUF weights are not permuted) and a large RoPE base
    /// (1,000,000, from `qwen2.rope.freq_base`). Small models tie the output to the embedding (no
    /// `output.weight`). Qwen2.5-0.5B: 24 blocks, d 896, 14 query heads sharing 2 key/value heads.
    public static let qwen2 = LlamaArchitecture(name: "qwen2", ropePairs: .halves, attentionBias: true)
}
