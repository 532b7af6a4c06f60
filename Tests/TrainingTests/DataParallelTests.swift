import DataParallel
import Foundation
import Testing
import TensorKit
import TransformerKit
import Training

/// Data-parallel training without MPI: the sharding and token weighting directly, then the whole
/// trainer with its ranks as threads (`LocalGroup`), against one process on the same global batch.
/// (`scripts/mpi-test.sh` runs the same comparison through `mpirun -np 2` and the CLI.)
@Suite struct DataParallelTests {
    @Test func shardsCoverEachBatchOnceInOrder() {
        for n in [0, 1, 2, 5, 8, 13] {
            for count in 1...4 {
                let parts = (0..<count).map { Shard(rank: $0, count: count).rows(of: n) }
                #expect(parts.flatMap { Array($0) } == Array(0..<n), "n \(n), \(count) ranks")
                #expect(parts.map(\.count).max()! - parts.map(\.count).min()! <= 1)
            }
        }
    }

    /// Σ_r (n_r/N)·g_r over the shards equals the whole batch's gradient; the plain mean of the g_r
    /// does not when the shards have different numbers of target tokens.
    @Test func tokenWeightedShardGradientsEqualTheWholeBatchGradient() throws {
        let trainer = try LearningTests.toyTrainer(steps: 1)
        let task = trainer.task
        let n = task.grads.count
        var rng = SeededRNG(seed: 1)
        // A batch whose two halves have different lengths, so different token counts.
        var index = 0, whole: (loss: Float, tokens: Int) = (0, 0)
        var shardTokens: [Int] = []
        repeat {
            task.grads.zero()
            whole = task.trainStep(epoch: 0, index: index, options: trainer.options, rng: &rng)
            shardTokens = (0..<2).map { r in
                task.grads.zero()
                return task.trainStep(epoch: 0, index: index, shard: Shard(rank: r, count: 2), options: trainer.options, rng: &rng).tokens
            }
            index += 1
        } while shardTokens[0] == shardTokens[1] && index < task.batchesPerEpoch
        #expect(shardTokens[0] != shardTokens[1], "no batch with unequal shards")
        index -= 1
        task.grads.zero()
        whole = task.trainStep(epoch: 0, index: index, options: trainer.options, rng: &rng)
        let full = Array(UnsafeBufferPointer(start: task.grads.pointer, count: n))
        var weighted = [Double](repeating: 0, count: n), mean = [Double](repeating: 0, count: n)
        var lossSum = 0.0
        for r in 0..<2 {
            task.grads.zero()
            let part = task.trainStep(epoch: 0, index: index, shard: Shard(rank: r, count: 2), options: trainer.options, rng: &rng)
            lossSum += Double(part.loss) * Double(part.tokens)
            for i in 0..<n {
                weighted[i] += Double(part.tokens) / Double(whole.tokens) * Double(task.grads[i])
                mean[i] += 0.5 * Double(task.grads[i])
            }
        }
        #expect(shardTokens.reduce(0, +) == whole.tokens)
        #expect(abs(lossSum / Double(whole.tokens) - Double(whole.loss)) < 1e-5)
        let scale = full.map { abs(Double($0)) }.max()!
        let weightedErr = zip(full, weighted).map { abs(Double($0) - $1) }.max()!
        let meanErr = zip(full, mean).map { abs(Double($0) - $1) }.max()!
        #expect(weightedErr < 1e-5 * scale, "token-weighted: max |Δ| \(weightedErr) of \(scale)")
        #expect(meanErr > 1e-3 * scale, "the plain mean should differ; max |Δ| \(meanErr)")
    }

    /// Runs `body` once per rank, each on its own thread with its member of one `LocalGroup`.
    static func onRanks<T>(_ size: Int, _ body: @escaping @Sendable (any ProcessGroup) throws -> T) -> [Result<T, any Error>] {
        let group = LocalGroup(size: size)
        let slots = (0..<size).map { _ in Slot<T>() }
        let done = DispatchSemaphore(value: 0)
        for r in 0..<size {
            let member = group.member(r), slot = slots[r]
            let t = Thread {
                slot.result = Result { try body(member) }
                if case .failure = slot.result { member.abort(code: 1) }
                done.signal()
            }
            t.stackSize = 8 << 20
            t.start()
        }
        for _ in 0..<size { done.wait() }
        return slots.map { $0.result! }
    }

    final class Slot<T>: @unchecked Sendable { var result: Result<T, any Error>? }

    struct Run: @unchecked Sendable { var losses: [Float]; var params: [Float] }

    static func run<T: TrainingTask>(_ trainer: Trainer<T>, group: any ProcessGroup) throws -> Run {
        trainer.group = group
        try trainer.run(log: { _ in })
        return Run(
            losses: trainer.state.history.map(\.loss),
            params: Array(UnsafeBufferPointer(start: trainer.task.params.pointer, count: trainer.task.params.count)))
    }

    static func expectClose(_ ranks: [Result<Run, any Error>], _ single: Run, _ what: String) throws {
        for (r, result) in ranks.enumerated() {
            let run = try result.get()
            #expect(run.losses.count == single.losses.count)
            let lossErr = zip(run.losses, single.losses).map { abs($0 - $1) / max(abs($1), 1) }.max() ?? 0
            let weightErr = zip(run.params, single.params).map { abs($0 - $1) }.max() ?? 0
            #expect(lossErr < 1e-5, "\(what), rank \(r): loss curves differ by \(lossErr)")
            #expect(weightErr < 1e-4, "\(what), rank \(r): weights differ by \(weightErr)")
            // All ranks hold the same weights, bit for bit.
            #expect(run.params == (try ranks[0].get()).params, "\(what): rank \(r)'s weights differ from rank 0's")
        }
    }

    @Test func gptOnThreeRanksFollowsTheSingleProcessCurve() throws {
        let single = try Self.run(try GPTTrainingTests.trainer(steps: 8), group: SingleProcess())
        let ranks = Self.onRanks(3) { g in try Self.run(try GPTTrainingTests.trainer(steps: 8), group: g) }
        try Self.expectClose(ranks, single, "GPT, 3 ranks")
    }

    @Test func encoderDecoderOnTwoRanksFollowsTheSingleProcessCurve() throws {
        let single = try Self.run(try LearningTests.toyTrainer(steps: 8), group: SingleProcess())
        let ranks = Self.onRanks(2) { g in try Self.run(try LearningTests.toyTrainer(steps: 8), group: g) }
        try Self.expectClose(ranks, single, "encoder–decoder, 2 ranks")
    }

    @Test func ranksWithDifferentOptionsRefuseToTrain() throws {
        let ranks = Self.onRanks(2) { g in
            let t = try GPTTrainingTests.trainer(steps: 3)
            if g.rank == 1 {  // as if rank 1 were started with another --lr
                var o = t.options
                o.learningRate *= 2
                let other = try Trainer(task: t.task, options: o)
                return try Self.run(other, group: g)
            }
            return try Self.run(t, group: g)
        }
        for (r, result) in ranks.enumerated() {
            #expect(throws: TrainingError.self, "rank \(r)") { try result.get() }
            if case .failure(let e as TrainingError) = result {
                #expect(e.message.contains("rank 1: options"), "\(e.message)")
            }
        }
    }

    /// Before each checkpoint the ranks compare checksums of their weights; one that drifted takes
    /// rank 0's again (here rank 1's weights are nudged by hand after the start).
    @Test func aRankWhoseWeightsDriftedIsResetAtTheCheckpoint() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dp-drift-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let lines = Lines()
        let ranks = Self.onRanks(2) { g -> Run in
            let t = try GPTTrainingTests.trainer(steps: 4)
            t.group = g
            t.output = dir
            try t.synchronize()
            if g.rank == 1 { t.task.params[0] += 1e-3 }
            try t.run(log: { lines.all.append($0) })
            return Run(
                losses: t.state.history.map(\.loss),
                params: Array(UnsafeBufferPointer(start: t.task.params.pointer, count: t.task.params.count)))
        }
        #expect(try ranks[0].get().params == ranks[1].get().params)
        #expect(lines.all.contains { $0.contains("1 rank(s) had weights differing from rank 0's at step 4") }, "\(lines.all)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("latest").path))
    }

    @Test func aRankThatFailsStopsTheOthersWithAMessage() throws {
        struct Died: Error {}
        let ranks = Self.onRanks(2) { g -> Run in
            let t = try GPTTrainingTests.trainer(steps: 6)
            t.group = g
            try t.synchronize()
            if g.rank == 1 { _ = try t.stepOnce(); throw Died() }
            return try Self.run(t, group: g)
        }
        #expect(throws: Died.self) { try ranks[1].get() }
        #expect(throws: DataParallelError.self) { try ranks[0].get() }
        if case .failure(let e as DataParallelError) = ranks[0] { #expect(e.message.contains("rank 1 stopped the group"), "\(e.message)") }
    }
}
