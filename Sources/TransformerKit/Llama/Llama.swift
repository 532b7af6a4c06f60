extension LlamaArchitecture {
    /// Llama (and SmolLM2, which is a Llama): RMSNorm, rotary embeddings on adjacent pairs (the GGUF
    /// converter permuted Q and K's rows for that), grouped-query attention without biases, SwiGLU.
    public static let llama = LlamaArchitecture(name: "llama", ropePairs: .adjacent, attentionBias: false)
}
