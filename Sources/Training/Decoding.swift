import Foundation
import TensorKit
import TransformerKit
import Tokenizers

/// Greedy and beam-search decoding with a trained `Seq2SeqModel`.
public final class Translator {
    public let model: Seq2SeqModel
    public let codec: SentenceCodec
    public var maxLength: Int
    public let acts: Seq2SeqActivations
    let maxBeam: Int

    public init(model: Seq2SeqModel, codec: SentenceCodec, maxBeam: Int = 8, maxLength: Int? = nil) {
        self.model = model; self.codec = codec; self.maxBeam = max(1, maxBeam)
        self.maxLength = min(maxLength ?? model.config.contextLength, model.config.contextLength)
        acts = Seq2SeqActivations(
            config: model.config, maxBatch: self.maxBeam, maxSource: model.config.contextLength, maxTarget: model.config.contextLength)
    }

    /// Source ids, truncated to the positional table (with `truncated` true when it was).
    func sourceIDs(_ text: String) -> (ids: [Int], truncated: Bool) {
        let ids = codec.encode(text)
        if ids.count > model.config.contextLength { return (Array(ids.prefix(model.config.contextLength)), true) }
        return (ids.isEmpty ? [codec.unkID] : ids, false)
    }

    /// The most likely token at each step, until `<end>` or the length limit.
    public func greedy(_ source: [Int]) -> [Int] {
        let shape = model.encode(source: source, copies: 1, acts: acts)
        var prefix = [codec.startID]
        while prefix.count < maxLength {
            let lp = model.nextTokenLogProbs(prefixes: [prefix], sourceLength: shape.s, acts: acts)[0]
            var best = 0
            for j in lp.indices where lp[j] > lp[best] { best = j }
            prefix.append(best)
            if best == codec.endID { break }
        }
        return Array(prefix.dropFirst())
    }

    /// Beam search: keeps the `beam` best prefixes by total log-probability; a finished hypothesis
    /// is scored by log p / length^α (GNMT-style length normalisation with α = `lengthPenalty`, 0 = none).
    public func beamSearch(_ source: [Int], beam: Int, lengthPenalty: Float = 0.6) -> [Int] {
        let k = max(1, min(beam, maxBeam))
        if k == 1 { return greedy(source) }
        let shape = model.encode(source: source, copies: k, acts: acts)
        var live: [(tokens: [Int], score: Float)] = [([codec.startID], 0)]
        var finished: [(tokens: [Int], score: Float)] = []
        func normalised(_ h: (tokens: [Int], score: Float)) -> Float {
            h.score / Float(Foundation.pow(Double(h.tokens.count - 1), Double(lengthPenalty)))
        }
        while !live.isEmpty && live[0].tokens.count < maxLength {
            // Pad the list of prefixes to k rows (the memory was encoded k times).
            var prefixes = live.map(\.tokens)
            while prefixes.count < k { prefixes.append(prefixes[0]) }
            let lps = model.nextTokenLogProbs(prefixes: prefixes, sourceLength: shape.s, acts: acts)
            var candidates: [(tokens: [Int], score: Float)] = []
            for (i, h) in live.enumerated() {
                let lp = lps[i]
                // Only the top k of each row can enter the top k overall.
                let top = lp.indices.sorted { lp[$0] > lp[$1] }.prefix(k)
                for j in top { candidates.append((h.tokens + [j], h.score + lp[j])) }
            }
            candidates.sort { $0.score > $1.score }
            live = []
            for c in candidates {
                if c.tokens.last == codec.endID { finished.append(c) } else { live.append(c) }
                if live.count == k { break }
            }
            // Stop once k hypotheses have finished and the best live one can no longer beat the k-th best
            // of them. Log-probabilities only fall as a hypothesis grows; with a length penalty its
            // normalised score at the current length is the usual (Hugging Face) stand-in for that bound.
            if finished.count >= k, let top = live.first {
                let kth = finished.map(normalised).sorted(by: >)[k - 1]
                if normalised(top) < kth { break }
            }
        }
        let pool = finished.isEmpty ? live : finished
        let best = pool.max { normalised($0) < normalised($1) }!
        return Array(best.tokens.dropFirst())
    }

    /// Text in, text out.
    public func translate(_ text: String, beam: Int = 1, lengthPenalty: Float = 0.6) -> String {
        let (ids, _) = sourceIDs(text)
        let out = beam <= 1 ? greedy(ids) : beamSearch(ids, beam: beam, lengthPenalty: lengthPenalty)
        return codec.decode(out)
    }
}
