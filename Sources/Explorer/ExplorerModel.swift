import Foundation
import Hummingbird
import Walkthrough

/// What the explorer server needs from a model: traces and completions as walkthrough documents and
/// text. The CLI adapts a checkpoint (GPT or encoder–decoder) to it; tests give a small stand-in. The
/// server never touches the kernels itself.
///
/// Implementations need not be safe to call concurrently: the server calls one at a time (`ModelGate`),
/// each call on a thread of its own.
public protocol ExplorerModel: Sendable {
    /// One line for the page: what the model is and where it came from.
    var summary: String { get }
    /// `.gpt` continues a text (`/api/generate`), `.seq2seq` translates it (`/api/translate`).
    var kind: ExplorerModelKind { get }
    /// The most tokens one input may have (a GPT's context; an encoder's positional table).
    var maxInputTokens: Int { get }
    /// How many tokens the model's tokenizer makes of `text`.
    func tokenCount(_ text: String) throws -> Int
    /// Every step of the forward pass on `text`.
    func trace(_ text: String) throws -> TraceDocument
    /// The continuation (GPT, greedy) or the translation (encoder–decoder) of `text`.
    func complete(_ text: String, maxTokens: Int) throws -> String
    /// The training run's loss curve (its `loss.svg`), if there is one; the page shows it.
    var lossCurveSVG: String? { get }
}

extension ExplorerModel {
    public var lossCurveSVG: String? { nil }
}

public enum ExplorerModelKind: String, Codable, Sendable {
    case gpt, seq2seq

    /// The completion endpoint this kind of model answers, and the button that calls it.
    var completion: (label: String, path: String) {
        self == .gpt ? ("Generate", "/api/generate") : ("Translate", "/api/translate")
    }
}

/// One computation on the model at a time (the model need not be thread-safe), at most `maxQueue`
/// requests waiting for their turn; a request beyond that is refused at once (503 "busy, retry") rather
/// than queued, so waiting work, and the memory it holds, stays bounded.
///
/// The work runs on a thread of its own, off Swift's cooperative pool and NIO's event loops. A request
/// whose wait and work exceed its deadline is answered 503 "timed out" at the deadline; work already
/// running cannot be interrupted, so it runs to its end holding the model (no new work starts meanwhile),
/// while work that has not started yet is skipped.
actor ModelGate {
    let model: any ExplorerModel
    let maxQueue: Int
    private var running = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ model: any ExplorerModel, maxQueue: Int = 16) {
        self.model = model
        self.maxQueue = maxQueue
    }

    /// Requests waiting now (tests).
    var queued: Int { waiting.count }

    static let busy = HTTPError(.serviceUnavailable, headers: [.retryAfter: "1"], message: "busy, retry")

    /// Waits for the model, or throws `busy` when the queue is full.
    func enter() async throws {
        if !running {
            running = true
            return
        }
        guard waiting.count < maxQueue else { throw Self.busy }
        await withCheckedContinuation { waiting.append($0) }  // the closure runs on the actor: no other enter in between
    }

    /// Hands the model to the next waiting request, if any.
    func leave() {
        if waiting.isEmpty { running = false } else { waiting.removeFirst().resume() }
    }

    /// `work` on the model when its turn comes, on its own thread; 503 after `timeout`.
    nonisolated func run<T: Sendable>(timeout: Duration, _ work: @escaping @Sendable (any ExplorerModel) throws -> T) async throws -> T {
        let answer = Once<T>()
        return try await withCheckedThrowingContinuation { continuation in
            answer.set(continuation)
            // A Dispatch timer, not `Task.sleep`: the deadline must hold even when Swift's cooperative pool is
            // busy (in the test runner other suites' synchronous work can hold both its threads for seconds).
            let timer = DispatchWorkItem {
                answer.resume(
                    .failure(
                        HTTPError(
                            .serviceUnavailable, headers: [.retryAfter: "1"],
                            message: "timed out after \(timeout.seconds) s; retry later")))
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout.seconds, execute: timer)
            Task {
                do { try await self.enter() } catch {
                    timer.cancel()
                    answer.resume(.failure(error))
                    return
                }
                if answer.isDone {  // timed out while waiting: nobody wants the result
                    await self.leave()
                    return
                }
                let model = self.model
                let result = await onOwnThread { Result { try work(model) } }
                await self.leave()
                timer.cancel()
                answer.resume(result)
            }
        }
    }
}

/// Resumes a continuation exactly once: with the work's result or the deadline's error, whichever comes first.
final class Once<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?
    private var done = false

    func set(_ c: CheckedContinuation<T, any Error>) { lock.withLock { continuation = c } }
    var isDone: Bool { lock.withLock { done } }

    func resume(_ result: Result<T, any Error>) {
        let c: CheckedContinuation<T, any Error>? = lock.withLock {
            if done { return nil }
            done = true
            defer { continuation = nil }
            return continuation
        }
        c?.resume(with: result)
    }
}

/// Runs blocking work on a new thread (8 MiB stack) and waits for it without blocking a pool thread.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
