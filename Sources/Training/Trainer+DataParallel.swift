import DataParallel
import Foundation
import TensorKit

/// Which part of each global batch a rank computes: of `n` rows (GPT windows, or sentence pairs),
/// the contiguous run `n·rank/count ..< n·(rank+1)/count`. Contiguous rather than strided, so that an
/// encoder–decoder batch (sorted by length) splits into shards of similar lengths with little padding.
public struct Shard: Sendable, Equatable {
    public var rank: Int
    public var count: Int
    public init(rank: Int, count: Int) {
        precondition(count >= 1 && (0..<count).contains(rank))
        self.rank = rank; self.count = count
    }
    public static let whole = Shard(rank: 0, count: 1)
    public func rows(of n: Int) -> Range<Int> { (n * rank / count)..<(n * (rank + 1) / count) }
}

/// Data-parallel training: every rank holds the whole model, computes the gradient of its shard of
/// each global batch, and the ranks sum their gradients, so every rank takes the same optimizer step.
///
/// Why the gradients are weighted: a task's gradient is the *mean* over its target tokens. Rank r's
/// shard has n_r of the batch's N tokens, so its gradient is g_r = (1/n_r) Σ_{its tokens} ∇ℓ. The
/// single-process gradient is (1/N) Σ_{all tokens} ∇ℓ = Σ_r (n_r/N) g_r: each rank scales its
/// gradient by n_r/N and the all-reduce sums them. (Averaging the g_r instead would weight a token of
/// a short shard more than one of a long shard.) The result differs from one process only by the
/// order of the floating-point additions.
extension Trainer {
    /// Checks that every rank was started with the same options, model, data and progress, then gives
    /// every rank rank 0's weights and AdamW moments. `run` and `stepOnce` call it first.
    /// - Throws: `TrainingError` naming the ranks and what differs.
    public func synchronize() throws {
        guard group.size > 1 else { synchronized = true; return }
        try checkSameSetup()
        try broadcastState()
        synchronized = true
    }

    /// What every rank must have alike, each part with its own checksum so the error can say which.
    func setupFingerprints() -> [(part: String, value: UInt64)] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var o = Fingerprint(); o.add(String(decoding: (try? enc.encode(options)) ?? Data(), as: UTF8.self))
        var m = Fingerprint()
        for e in task.layout.entries { m.add(e.name); m.add(e.shape) }
        var p = Fingerprint(); p.add([state.step, state.epoch, state.batchInEpoch, optimizer.step])
        return [
            ("options", o.value), ("model shape", m.value), ("training data", task.dataFingerprint), ("progress (step, epoch)", p.value)
        ]
    }

    func checkSameSetup() throws {
        let mine = setupFingerprints()
        var root = mine.map(\.value)
        try root.withUnsafeMutableBytes { try group.broadcast($0.baseAddress!, count: $0.count, root: 0) }
        // One flag per (rank, part), summed over the ranks: every rank learns who differs in what.
        let k = mine.count
        var flags = [Double](repeating: 0, count: group.size * k)
        for (i, f) in mine.enumerated() where f.value != root[i] { flags[group.rank * k + i] = 1 }
        try flags.withUnsafeMutableBufferPointer { try group.allReduceSum($0.baseAddress!, count: $0.count) }
        var lines: [String] = []
        for r in 0..<group.size {
            let parts = (0..<k).filter { flags[r * k + $0] > 0 }.map { mine[$0].part }
            if !parts.isEmpty { lines.append("rank \(r): \(parts.joined(separator: ", "))") }
        }
        guard lines.isEmpty else {
            throw TrainingError(
                "the \(group.size) ranks were not started alike; differing from rank 0: \(lines.joined(separator: "; ")). Every rank must run the same command on the same files (with --resume, the same checkpoint)"
            )
        }
    }

    func broadcastState() throws {
        for buffer in [task.params, optimizer.m, optimizer.v] {
            try group.broadcast(buffer.pointer, count: buffer.count, root: 0)
        }
    }

    /// Sums the ranks' token-weighted gradients into `task.grads` on every rank, with the global
    /// batch's token count, mean loss, and whether any rank asked to stop.
    func combineGradients(_ local: (loss: Float, tokens: Int), stopRequested: Bool) throws -> (loss: Float, tokens: Int, stop: Bool) {
        // Loss × tokens, tokens, stop: one small all-reduce, which also waits for the slowest rank.
        let t0 = Date()
        var totals = [local.tokens > 0 ? Double(local.loss) * Double(local.tokens) : 0, Double(local.tokens), stopRequested ? 1 : 0]
        try totals.withUnsafeMutableBufferPointer { try group.allReduceSum($0.baseAddress!, count: 3) }
        let t1 = Date()
        waitSeconds += t1.timeIntervalSince(t0)
        guard totals[1] > 0 else { throw TrainingError("the global batch has no target tokens") }
        scale(task.grads, by: Float(Double(local.tokens) / totals[1]))
        try group.allReduceSum(task.grads.pointer, count: task.grads.count)
        allReduceSeconds += Date().timeIntervalSince(t1)
        return (Float(totals[0] / totals[1]), Int(totals[1]), totals[2] > 0)
    }

    func scale(_ buffer: FlatBuffer, by s: Float) {
        guard s != 1 else { return }
        for i in 0..<buffer.count { buffer.pointer[i] *= s }
    }

    /// Before a checkpoint: the ranks' weights and moments must still be equal bit for bit. They stay
    /// equal as long as the all-reduce returns the same sum on every rank, which MPI recommends but
    /// does not promise; if a rank has drifted it takes rank 0's state again, and the log says so.
    func checkWeightsInSync(log: (String) -> Void) throws {
        var f = Fingerprint()
        for buffer in [task.params, optimizer.m, optimizer.v] { f.add(UnsafePointer(buffer.pointer), count: buffer.count) }
        var root = f.value
        try withUnsafeMutableBytes(of: &root) { try group.broadcast($0.baseAddress!, count: 8, root: 0) }
        var drifted = [f.value == root ? 0.0 : 1.0]
        try drifted.withUnsafeMutableBufferPointer { try group.allReduceSum($0.baseAddress!, count: 1) }
        if drifted[0] > 0 {
            try broadcastState()
            log(
                """
                note: \(Int(drifted[0])) rank(s) had weights differing from rank 0's at step \(state.step) (the all-reduce \
                rounded differently on different ranks); they now have rank 0's
                """
            )
        }
    }

    /// One line on where a data-parallel step's time went (rank 0's view).
    func dataParallelSummary(steps: Int) -> String {
        let n = Double(max(steps, 1))
        let step = stepSeconds / n, reduce = allReduceSeconds / n, wait = waitSeconds / n
        let megabytes = Double(task.grads.count * MemoryLayout<Float>.stride) / 1e6
        return String(
            format:
                """
                data parallel: %d rank%@ · %d steps · %.4f s/step · %.0f tokens/s · gradient all-reduce %.4f s/step (%.1f%% of \
                the step, %.1f MB) · waiting for the slowest rank %.4f s/step (%.1f%%)
                """,
            group.size, group.size == 1 ? "" : "s", steps, step, Double(tokensTrained) / max(stepSeconds, 1e-12),
            reduce, 100 * reduce / max(step, 1e-12), megabytes, wait, 100 * wait / max(step, 1e-12))
    }
}
