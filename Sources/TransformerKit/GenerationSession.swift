/// What every model's token-by-token generation offers (`GPTGenerator`, `LlamaSession`): tokens go
/// in at the next positions, the next token's logits come out.
///
/// The logits are an array the caller owns. A pointer into the session's own buffer would be valid
/// only until the next call and only while the session lives — the pattern AddressSanitizer caught
/// when a temporary Llama session was freed before its logits were read.
public protocol GenerationSession: AnyObject {
    /// Tokens in the context so far.
    var length: Int { get }
    /// The most tokens the context holds.
    var maxLength: Int { get }
    /// Forgets the context (the next token goes to position 0).
    func reset()
    /// Feeds `tokens` at positions `length ..< length + tokens.count` and returns the logits that
    /// follow the last one (vocabulary-sized).
    /// - Throws: when the tokens would overflow the context or an id is outside the vocabulary.
    func feed(_ tokens: [Int]) throws -> [Float]
}
