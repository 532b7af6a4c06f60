import Foundation
import TransformerKit

/// A sentence-transformers model for `/v1/embeddings`: one batch at a time on its own queue (the
/// matrix products already use every core), at most `maxQueue` more waiting (beyond: busy).
public final class Embedder: @unchecked Sendable {
    public let encoder: SentenceEncoder
    public let id: String
    public let maxQueue: Int
    private let queue = DispatchQueue(label: "embedder")
    private let lock = NSLock()
    private var inFlight = 0

    public init(encoder: SentenceEncoder, id: String, maxQueue: Int) {
        self.encoder = encoder; self.id = id; self.maxQueue = maxQueue
    }

    /// The sentences' vectors and their token count, or nil when the queue is full.
    func embed(_ sentences: [String]) async -> (vectors: [[Float]], tokens: Int)? {
        let admitted = lock.withLock {
            guard inFlight <= maxQueue else { return false }
            inFlight += 1
            return true
        }
        guard admitted else { return nil }
        return await withCheckedContinuation { c in
            queue.async { [self] in
                let tokens = sentences.reduce(0) { $0 + encoder.tokenize($1).count }
                let v = encoder.encode(sentences)
                lock.withLock { inFlight -= 1 }
                c.resume(returning: (v, tokens))
            }
        }
    }
}
