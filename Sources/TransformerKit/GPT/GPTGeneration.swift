import Foundation
import TensorKit

/// How the next token is picked from the logits.
public struct SamplingOptions: Sendable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Float = 1
    /// Keep only the k most likely tokens (0 = all).
    public var topK: Int = 0
    /// Keep the smallest set of tokens whose probability reaches p (1 = all).
    public var topP: Float = 1
    public var seed: UInt64 = 1
    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, seed: UInt64 = 1) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.seed = seed
    }
}

/// Picks a token from logits with temperature, top-k and top-p (nucleus) filtering.
public func sampleToken(_ logits: UnsafeBufferPointer<Float>, _ o: SamplingOptions, rng: inout SeededRNG) -> Int {
    let v = logits.count
    if o.temperature <= 0 {
        var best = 0
        for j in 1..<v where logits[j] > logits[best] { best = j }
        return best
    }
    if o.topK > 0 && o.topK < v { return sample(logits, ordered: bestTokens(logits, o.topK), o, rng: &rng) }
    return sampleWholeVocabulary(logits, o, rng: &rng)
}

/// The k tokens with the highest logits, highest first (ties: lower id first), found in one pass:
/// most tokens lose their one comparison with the current k-th best.
func bestTokens(_ logits: UnsafeBufferPointer<Float>, _ k: Int) -> [Int] {
    func better(_ a: Int, _ b: Int) -> Bool { logits[a] > logits[b] || (logits[a] == logits[b] && a < b) }
    let v = logits.count
    if k >= v { return Array(0..<v).sorted(by: better) }
    var order: [Int] = []
    order.reserveCapacity(k + 1)
    for j in 0..<v {
        if order.count == k {
            if !better(j, order[k - 1]) { continue }
            order.removeLast()
        }
        var i = order.count
        while i > 0 && better(j, order[i - 1]) { i -= 1 }
        order.insert(j, at: i)
    }
    return order
}

/// Sampling without top-k: the draw (and top-p's cut) only ever reads a prefix of the tokens in
/// order of probability, so the best 64 are found first, then the best 512, then all of them
/// sorted, until the prefix holds the mass the draw needs. Sorting a 49,152-token vocabulary for every token cost about 8 ms a row;
/// this costs one pass of exp over the logits. The total mass is summed in token-id order.
func sampleWholeVocabulary(_ logits: UnsafeBufferPointer<Float>, _ o: SamplingOptions, rng: inout SeededRNG) -> Int {
    let v = logits.count
    var m = logits[0]
    for j in 1..<v where logits[j] > m { m = logits[j] }
    var total: Float = 0
    for j in 0..<v { total += Foundation.exp((logits[j] - m) / o.temperature) }
    let u = rng.nextUnit()
    func grow(_ k: Int) -> Int { k * 8 > v / 16 ? v : k * 8 }
    var k = min(64, v)
    while true {
        let order = bestTokens(logits, k), complete = k >= v
        let probs = order.map { Foundation.exp((logits[$0] - m) / o.temperature) }
        var keep = probs.count, sum = total
        if o.topP < 1 {
            var acc: Float = 0, reached = false
            for (i, p) in probs.enumerated() {
                acc += p / total
                if acc >= o.topP { keep = i + 1; reached = true; break }
            }
            if reached || complete {
                sum = probs[..<keep].reduce(0, +)
            } else {
                k = grow(k); continue
            }
        }
        var r = u * sum
        for i in 0..<keep { r -= probs[i]; if r < 0 { return order[i] } }
        if complete || o.topP < 1 { return order[keep - 1] }
        k = grow(k)
    }
}

/// The sampling step after the ordering: temperature, top-p over `order` (token ids, most likely
/// first), then one draw. Shared with the test that checks the one-pass top-k against a full sort.
func sample(_ logits: UnsafeBufferPointer<Float>, ordered order: [Int], _ o: SamplingOptions, rng: inout SeededRNG) -> Int {
    var order = order
    let m = logits[order[0]]
    var probs = order.map { Foundation.exp((logits[$0] - m) / o.temperature) }
    var sum = probs.reduce(0, +)
    if o.topP < 1 {
        var acc: Float = 0, keep = probs.count
        for (i, p) in probs.enumerated() { acc += p / sum; if acc >= o.topP { keep = i + 1; break } }
        probs.removeLast(probs.count - keep); order.removeLast(order.count - keep)
        sum = probs.reduce(0, +)
    }
    var r = rng.nextUnit() * sum
    for (i, p) in probs.enumerated() { r -= p; if r < 0 { return order[i] } }
    return order[probs.count - 1]
}

/// Token-by-token generation. With the KV cache each new token costs O(context): the keys and values
/// of earlier positions are kept per layer. Without it, the whole context is recomputed for every token
/// (O(context²)), which is what the cache saves — both give the same tokens.
public final class GPTGenerator: GenerationSession {
    public let model: GPTModel
    public let useCache: Bool
    let kCache: [FlatBuffer], vCache: [FlatBuffer]
    let x, h, qkv, ctx, tmp, fc, act, logits: FlatBuffer
    let mean, rstd: FlatBuffer
    public private(set) var length = 0
    public var maxLength: Int { model.config.contextLength }
    private var history: [Int32] = []
    private var fullActs: GPTActivations?

    public init(model: GPTModel, useCache: Bool = true) {
        self.model = model; self.useCache = useCache
        let c = model.config, d = c.dModel
        kCache = (0..<c.layers).map { _ in FlatBuffer(count: c.contextLength * d) }
        vCache = (0..<c.layers).map { _ in FlatBuffer(count: c.contextLength * d) }
        x = FlatBuffer(count: d); h = FlatBuffer(count: d); qkv = FlatBuffer(count: 3 * d); ctx = FlatBuffer(count: d)
        tmp = FlatBuffer(count: d); fc = FlatBuffer(count: c.dFF); act = FlatBuffer(count: c.dFF)
        logits = FlatBuffer(count: c.vocabSize)
        mean = FlatBuffer(count: 1); rstd = FlatBuffer(count: 1)
    }

    public func reset() { length = 0; history = [] }

    /// Forgets all but the first `n` positions (the cache beyond them is overwritten by the next feed):
    /// a server reuses a shared prefix this way.
    public func rewind(to n: Int) {
        precondition(n >= 0 && n <= length, "rewind(to: \(n)) outside 0...\(length)")
        length = n
        history.removeLast(history.count - n)
    }

    /// Appends a token to the context without computing anything (recomputing mode only; the next
    /// `feed` sees it). Lets a benchmark fill a long context without a forward pass per token.
    public func push(_ token: Int) {
        precondition(!useCache && length < model.config.contextLength, "push is for the recomputing mode, within the context")
        history.append(Int32(token)); length += 1
    }

    /// Feeds one token and returns the logits for the next one (a copy the caller owns).
    public func feed(_ token: Int) -> [Float] { Array(advance(token)) }

    /// Feeds tokens one position at a time (the cache path is a mat-vec per token).
    /// - Throws: `ConfigError` when the tokens would overflow the context or an id is out of range.
    @discardableResult
    public func feed(_ tokens: [Int]) throws -> [Float] {
        let c = model.config
        guard !tokens.isEmpty else { throw ConfigError(message: "nothing to feed: the token list is empty") }
        guard length + tokens.count <= c.contextLength else {
            throw ConfigError(
                message:
                    """
                    \(length + tokens.count) tokens do not fit in the context of \(c.contextLength) (\(length) already used, \
                    \(tokens.count) new)
                    """
            )
        }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw ConfigError(message: "token id \(bad) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        for t in tokens.dropLast() { _ = advance(t) }
        return Array(advance(tokens[tokens.count - 1]))
    }

    /// `feed` without the copy: the logits in the generator's own buffer, valid until its next call —
    /// so only for its own methods.
    private func advance(_ token: Int) -> UnsafeBufferPointer<Float> {
        precondition(length < model.config.contextLength, "the context is full")
        history.append(Int32(token))
        if useCache { step(token) } else { recompute() }
        length += 1
        return UnsafeBufferPointer(start: logits.pointer, count: model.config.vocabSize)
    }

    func recompute() {
        let c = model.config, t = history.count
        if fullActs == nil { fullActs = GPTActivations(config: c, maxBatch: 1, maxLength: c.contextLength) }
        model.forward(ids: history, targets: nil, b: 1, t: t, acts: fullActs!)
        logits.pointer.update(from: fullActs!.logits.pointer + (t - 1) * c.vocabSize, count: c.vocabSize)
    }

    /// One position through every block, reading and extending the caches.
    func step(_ token: Int) {
        let c = model.config, d = c.dModel, pos = length, dk = c.headSize, eps = c.layerNormEps
        let wte = model.p("wte.weight") + token * d, wpe = model.p("wpe.weight") + pos * d
        for j in 0..<d { x[j] = wte[j] + wpe[j] }
        for l in 0..<c.layers {
            let o = model.blockOffsets[l]
            Kernels.layerNormForward(
                out: h.pointer, mean: mean.pointer, rstd: rstd.pointer, input: x.pointer, gamma: model.p(o.ln1w), beta: model.p(o.ln1b),
                rows: 1, width: d, eps: eps)
            Kernels.linearForward(
                out: qkv.pointer, input: h.pointer, weight: model.p(o.attnW), bias: model.p(o.attnB), rows: 1, width: d, outWidth: 3 * d)
            (kCache[l].pointer + pos * d).update(from: qkv.pointer + d, count: d)
            (vCache[l].pointer + pos * d).update(from: qkv.pointer + 2 * d, count: d)
            Kernels.cachedAttentionForward(
                out: ctx.pointer, q: qkv.pointer, kCache: kCache[l].pointer, vCache: vCache[l].pointer,
                n: 1, start: pos, heads: c.heads, kvHeads: c.heads, headSize: dk)
            Kernels.linearForward(
                out: tmp.pointer, input: ctx.pointer, weight: model.p(o.projW), bias: model.p(o.projB), rows: 1, width: d, outWidth: d)
            for j in 0..<d { x[j] += tmp[j] }
            Kernels.layerNormForward(
                out: h.pointer, mean: mean.pointer, rstd: rstd.pointer, input: x.pointer, gamma: model.p(o.ln2w), beta: model.p(o.ln2b),
                rows: 1, width: d, eps: eps)
            Kernels.linearForward(
                out: fc.pointer, input: h.pointer, weight: model.p(o.fcW), bias: model.p(o.fcB), rows: 1, width: d, outWidth: c.dFF)
            Kernels.geluForward(out: act.pointer, input: fc.pointer, count: c.dFF, form: c.geluForm)
            Kernels.linearForward(
                out: tmp.pointer, input: act.pointer, weight: model.p(o.mlpW), bias: model.p(o.mlpB), rows: 1, width: c.dFF, outWidth: d)
            for j in 0..<d { x[j] += tmp[j] }
        }
        Kernels.layerNormForward(
            out: h.pointer, mean: mean.pointer, rstd: rstd.pointer, input: x.pointer, gamma: model.p("ln_f.weight"),
            beta: model.p("ln_f.bias"), rows: 1, width: d, eps: eps)
        Gemm.multiply(
            transA: false, transB: true, m: 1, n: c.vocabSize, k: d, a: h.pointer, lda: d, b: model.p("wte.weight"), ldb: d, beta: 0,
            c: logits.pointer, ldc: c.vocabSize)
    }

    /// Prompt in, `maxNewTokens` sampled tokens out (streamed through `onToken`). A prompt longer
    /// than the context keeps its last tokens. When the context fills up, the window slides: the last
    /// half of it is fed again and generation goes on (positions are absolute, so cached keys cannot
    /// simply be shifted). Both the cached and the recomputing path slide the same way, so they agree.
    public func generate(
        prompt: [Int], maxNewTokens: Int, sampling: SamplingOptions, stop: Int? = nil,
        onToken: (Int) -> Void = { _ in }
    ) -> [Int] {
        reset()
        let ctxLen = model.config.contextLength
        var window = prompt.count >= ctxLen ? Array(prompt.suffix(ctxLen - 1)) : prompt
        var rng = SeededRNG(seed: sampling.seed)
        var logits: UnsafeBufferPointer<Float>? = nil
        for t in window { logits = advance(t) }
        var out: [Int] = []
        while out.count < maxNewTokens, let l = logits {
            let next = sampleToken(l, sampling, rng: &rng)
            out.append(next); onToken(next)
            if next == stop || out.count == maxNewTokens { break }
            if length >= ctxLen {
                window = Array(window.suffix(max(1, ctxLen / 2)))
                reset()
                for t in window { logits = advance(t) }
            }
            window.append(next)
            logits = advance(next)
        }
        return out
    }
}
