import Foundation
import TensorKit
import Tokenizers
import TransformerKit

/// What one generation asks for: the prompt's tokens (already rendered and encoded) and how to sample.
public struct GenerationJob: Sendable {
    public var prompt: [Int]
    public var maxTokens: Int
    public var sampling: SamplingOptions
    /// Text that ends the generation where it appears (not sent itself), as OpenAI's `stop`.
    public var stopStrings: [String]
    public init(prompt: [Int], maxTokens: Int, sampling: SamplingOptions, stopStrings: [String] = []) {
        self.prompt = prompt; self.maxTokens = maxTokens; self.sampling = sampling; self.stopStrings = stopStrings
    }
}

/// What a generation sends back, in order: text pieces, then one `done` (or `failed`).
public enum GenerationEvent: Sendable, Equatable {
    /// New text: whole UTF-8 characters, never part of a stop string.
    case text(String)
    /// `finishReason` is "stop" (a stop token or string) or "length" (max tokens or the context).
    case done(finishReason: String, promptTokens: Int, completionTokens: Int, cachedTokens: Int)
    case failed(String)
}

/// A submitted job: its events, and a way to give up on it (idempotent; harmless after it ended).
public struct GenerationHandle: Sendable {
    public let events: AsyncStream<GenerationEvent>
    public let cancel: @Sendable () -> Void
}

/// Why the engine refused a job before it started.
public enum SlotEngineRefusal: Error, Equatable, Sendable {
    /// Every slot is busy and the waiting queue is full (an HTTP 503 with Retry-After).
    case busy
    /// The prompt and one new token do not fit in a slot's context.
    case contextExceeded(promptTokens: Int, context: Int)
}

/// Serves several generations at once on one model: `parallel` slots, each a session with its own KV
/// cache, advanced together one step at a time (a GGUF model's in one `LlamaBatchDecoder` step; continuous
/// batching: a slot that finishes takes the next waiting job at the next step, and a new job's prompt
/// is read within the steps, beside the running jobs' tokens). Jobs beyond the slots wait, at most `maxQueue` of them; a job whose
/// stream is dropped (the client went away) gives up its slot before the next step.
///
/// A slot keeps the tokens its cache holds after its job: a new job goes to the free slot sharing
/// the longest prefix with its prompt (a chat's next turn re-reads only the new messages).
public final class SlotEngine: @unchecked Sendable {
    public let model: any ServedModel
    public let tokenizer: any ServedTokenizer
    public let parallel: Int
    public let maxQueue: Int
    /// Positions per slot (prompt and reply together).
    public let context: Int
    /// Tokens that end a reply: EOS and the chat formats' end-of-turn tokens.
    public let stopTokens: Set<Int>

    final class Job: @unchecked Sendable {  // its mutable state is touched by the engine thread, `cancelled` under the lock
        let job: GenerationJob
        let events: AsyncStream<GenerationEvent>.Continuation
        var cancelled = false  // under the engine's lock
        var rng: SeededRNG
        var utf8 = UTF8Stream()
        var held = ""  // text that may be the start of a stop string
        var generated = 0
        init(_ job: GenerationJob, _ events: AsyncStream<GenerationEvent>.Continuation) {
            self.job = job; self.events = events; rng = SeededRNG(seed: job.sampling.seed)
        }
    }

    final class Slot {
        let session: any ServedSession
        var cached: [Int] = []  // the tokens in the session's cache
        var job: Job?
        var next = 0  // the token to feed at the next step
        var pending: ArraySlice<Int> = []  // the prompt's tokens not read yet
        var promptTokens = 0, reused = 0
        init(_ s: any ServedSession) { session = s }
    }

    private let lock = NSCondition()
    private var waiting: [Job] = []
    private let slots: [Slot]
    private var stopped = false
    private var thread: Thread?

    /// `context`: positions per slot (at most the model's).
    public init(model: any ServedModel, tokenizer: any ServedTokenizer, parallel: Int, maxQueue: Int, context: Int? = nil) {
        precondition(parallel >= 1 && maxQueue >= 0)
        self.model = model
        self.tokenizer = tokenizer
        self.parallel = parallel
        self.maxQueue = maxQueue
        let context = min(context ?? model.contextLength, model.contextLength)
        self.context = context
        slots = (0..<parallel).map { _ in Slot(model.makeSession(maxLength: context)) }
        stopTokens = tokenizer.stopTokens
    }

    /// A GGUF model, its slots decoded in batched steps.
    public convenience init(
        model: LlamaModel, tokenizer: GGUFTokenizer, parallel: Int, maxQueue: Int, context: Int? = nil,
        activations: ActivationPrecision = .default
    ) {
        self.init(
            model: BatchedLlama(model: model, parallel: parallel, activations: activations), tokenizer: tokenizer, parallel: parallel,
            maxQueue: maxQueue, context: context)
    }

    /// Starts the engine's thread (idempotent).
    public func start() {
        lock.lock(); defer { lock.unlock() }
        guard thread == nil else { return }
        let t = Thread { [self] in run() }
        t.name = "slot-engine"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    /// Stops the loop after the current step; waiting and running jobs end with `failed`.
    public func stop() {
        lock.lock(); stopped = true; lock.signal(); lock.unlock()
    }

    /// Slots at work, jobs waiting.
    public var load: (busy: Int, waiting: Int) {
        lock.lock(); defer { lock.unlock() }
        return (slots.filter { $0.job != nil }.count, waiting.count)
    }

    /// Queues a job; its events arrive on the handle's stream. `cancel` (or cancelling the task that
    /// reads the stream) frees its slot before the next step.
    /// - Throws: `SlotEngineRefusal` when the prompt cannot fit or every slot and queue place is taken.
    public func submit(_ job: GenerationJob) throws -> GenerationHandle {
        guard job.prompt.count + 1 <= context else {
            throw SlotEngineRefusal.contextExceeded(promptTokens: job.prompt.count, context: context)
        }
        let (stream, continuation) = AsyncStream<GenerationEvent>.makeStream(bufferingPolicy: .unbounded)
        let j = Job(job, continuation)
        lock.lock()
        let free = slots.filter { $0.job == nil }.count
        guard waiting.count < free + maxQueue, !stopped else {
            lock.unlock()
            throw SlotEngineRefusal.busy
        }
        waiting.append(j)
        lock.signal()
        lock.unlock()
        let cancel: @Sendable () -> Void = { [weak self, weak j] in
            guard let self, let j else { return }
            self.lock.lock(); j.cancelled = true; self.lock.signal(); self.lock.unlock()
        }
        continuation.onTermination = { _ in cancel() }
        return GenerationHandle(events: stream, cancel: cancel)
    }

    // MARK: The loop (the engine's thread only)

    private func run() {
        while true {
            lock.lock()
            while !stopped && waiting.isEmpty && !slots.contains(where: { $0.job != nil }) { lock.wait() }
            if stopped {
                let all = waiting + slots.compactMap(\.job)
                waiting.removeAll()
                for s in slots { s.job = nil }
                thread = nil  // the thread's closure holds the engine: without this the two keep each other alive
                lock.unlock()
                for j in all { j.events.yield(.failed("the server is shutting down")); j.events.finish() }
                return
            }
            // free the slots of cancelled jobs; drop cancelled waiting jobs
            var dropped: [Job] = []
            for s in slots where s.job?.cancelled == true { dropped.append(s.job!); s.job = nil }
            dropped += waiting.filter(\.cancelled)
            waiting.removeAll { $0.cancelled }
            // admit waiting jobs into free slots, each to the slot sharing the longest prefix
            var admitted: [Slot] = []
            while !waiting.isEmpty, let slot = bestFreeSlot(for: waiting[0].job.prompt) {
                slot.job = waiting.removeFirst()
                admitted.append(slot)
            }
            lock.unlock()
            for j in dropped { j.events.finish() }
            for s in admitted { begin(s) }
            step()
        }
    }

    private func bestFreeSlot(for prompt: [Int]) -> Slot? {
        var best: Slot?, bestCommon = -1
        for s in slots where s.job == nil {
            let c = commonPrefix(s.cached, prompt)
            if c > bestCommon { best = s; bestCommon = c }
        }
        return best
    }

    private func commonPrefix(_ a: [Int], _ b: [Int]) -> Int {
        var i = 0
        while i < min(a.count, b.count) && a[i] == b[i] { i += 1 }
        return i
    }

    /// Keeps the prefix of the job's prompt that the slot's cache already holds; the rest is read by the
    /// next steps, beside the other slots' tokens.
    private func begin(_ s: Slot) {
        guard let j = s.job else { return }
        let prompt = j.job.prompt
        let common = min(commonPrefix(s.cached, prompt), prompt.count - 1)  // read at least one token
        s.session.rewind(to: common)
        s.cached = Array(prompt[..<common])
        s.pending = prompt[common...]
        s.promptTokens = prompt.count
        s.reused = common
    }

    /// One batched step: every slot at work gives its next token, or (up to `promptRowsPerStep` over all)
    /// the next tokens of its prompt; a slot whose prompt is all read samples its first token.
    private func step() {
        var parts: [(session: any ServedSession, tokens: [Int])] = [], stepping: [(Slot, prompt: Int)] = []
        // a long prompt is read over several steps, so the other conversations wait at most one such step
        var budget = model.promptRowsPerStep
        for s in slots where s.job != nil {
            if s.pending.isEmpty {
                parts.append((s.session, [s.next])); stepping.append((s, 0))
            } else if budget > 0 {
                let chunk = Array(s.pending.prefix(budget))
                budget -= chunk.count
                parts.append((s.session, chunk)); stepping.append((s, chunk.count))
            }
        }
        guard !parts.isEmpty else { return }
        do {
            try model.step(parts)
        } catch {
            for (s, _) in stepping {
                s.cached = []
                s.pending = []
                s.session.reset()
                finish(s, failure: "\(error)")
            }
            return
        }
        for (i, (s, read)) in stepping.enumerated() {
            if read > 0 {
                s.cached += s.pending.prefix(read)
                s.pending = s.pending.dropFirst(read)
                if !s.pending.isEmpty { continue }
            } else {
                s.cached.append(s.next)
            }
            guard let j = s.job else { continue }
            accept(s, sampleToken(model.logits(part: i), j.job.sampling, rng: &j.rng))
        }
    }

    /// A new token for the slot's job: sent as text, or the end of the job.
    private func accept(_ s: Slot, _ token: Int) {
        guard let j = s.job else { return }
        lock.lock()
        let cancelled = j.cancelled
        lock.unlock()
        if cancelled {
            release(s)
            j.events.finish()
            return
        }
        j.generated += 1
        if stopTokens.contains(token) { return finish(s, reason: "stop") }
        j.held += j.utf8.append(tokenizer.bytes([token]))
        if let r = j.job.stopStrings.compactMap({ j.held.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            j.held = String(j.held[..<r.lowerBound])
            return finish(s, reason: "stop")
        }
        // send all but the longest tail that could begin a stop string
        let keep =
            j.job.stopStrings.map { stop in
                (1..<max(1, stop.count)).reversed().first { j.held.hasSuffix(stop.prefix($0)) } ?? 0
            }.max() ?? 0
        if j.held.count > keep {
            let cut = j.held.index(j.held.endIndex, offsetBy: -keep)
            j.events.yield(.text(String(j.held[..<cut])))
            j.held = String(j.held[cut...])
        }
        if j.generated >= j.job.maxTokens || s.session.length + 1 > s.session.maxLength {
            return finish(s, reason: "length")
        }
        s.next = token
    }

    private func finish(_ s: Slot, reason: String) {
        guard let j = s.job else { return }
        // what was held back as a possible stop string's start (or, after a stop string, what came before it)
        let rest = j.held + (reason == "length" ? j.utf8.flush() : "")
        // the slot is free before the client hears the end: a client that sends its next request at once (the same
        // conversation, one message longer) then finds the slot and its cache
        release(s)
        if !rest.isEmpty { j.events.yield(.text(rest)) }
        j.events.yield(.done(finishReason: reason, promptTokens: s.promptTokens, completionTokens: j.generated, cachedTokens: s.reused))
        j.events.finish()
    }

    private func finish(_ s: Slot, failure: String) {
        guard let j = s.job else { return }
        release(s)
        j.events.yield(.failed(failure))
        j.events.finish()
    }

    private func release(_ s: Slot) {
        lock.lock(); s.job = nil; lock.unlock()
    }
}
