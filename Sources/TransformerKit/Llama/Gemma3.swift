extension LlamaArchitecture {
    /// Gemma 3: the embedding scaled by √d_model; per block RMSNorm → attention (each head's query
    /// and key RMS-normalised, rotary embeddings on half-split pairs) → RMSNorm → residual, then
    /// RMSNorm → GeGLU feed-forward (GELU, tanh form, as the gate) → RMSNorm → residual. Five of
    /// every six blocks attend within a sliding window (512 positions, RoPE base 10,000); every sixth
    /// attends globally (RoPE base from `gemma3.rope.freq_base`, 1,000,000). Heads are 256 wide
    /// (`gemma3.attention.key_length`), wider than d_model / heads; the output is tied to the
    /// embedding. The GGUF converter already added Gemma's 1 to every norm weight, so they apply
    /// as in Llama. Gemma 3 270M: 18 blocks, d 640, 4 query heads sharing 1 key/value head.
    public static let gemma3 = LlamaArchitecture(
        name: "gemma3", ropePairs: .halves, attentionBias: false, gate: .geluTanh, scalesEmbedding: true, normalizesQK: true,
        normalizesSublayerOutputs: true, slidingWindowPattern: 6, localRoPEBase: 10_000)
}
