import Foundation
import Synchronization

/// A small persistent fork/join pool for GEMM: `run(parts:body)` calls `body(0..<parts)` across the
/// calling thread and up to `parts − 1` resident workers, and returns when every part is done.
///
/// Why not `DispatchQueue.concurrentPerform`: measured here, two threads through it only beat one
/// thread from ~2^22 multiply-adds up (its workers take tens of µs to pick up work), while with this
/// pool they win from ~2^17. Workers spin for ~20 µs after each job (so the back-to-back products of a
/// training step find them awake), then poll politely (`sched_yield`) up to 100 µs, then sleep.
///
/// Parts are claimed with a compare-and-swap on one word holding (generation, part count, next part),
/// so whoever is free (the caller included) takes the next part; a worker that has not woken up yet
/// simply finds nothing left. A worker reads the job only after claiming a part of it, and the caller
/// does not return (or publish a new job) before every claimed part has finished, so the job it reads
/// is always the one it claimed. One job at a time: a second concurrent caller is told the pool is
/// busy and runs its product on its own thread.
@available(macOS 15.0, *)
@_spi(Tuning) public final class GemmThreadPool: @unchecked Sendable {
    static let shared = GemmThreadPool()

    /// An idle worker spins on the job word for `spinNanoseconds`, then keeps polling but calls
    /// `sched_yield` between polls (so on a busy machine — parallel tests, other jobs — runnable threads
    /// get the core first) until `yieldNanoseconds`, then sleeps on a condition variable.
    @_spi(Tuning) public nonisolated(unsafe) static var spinNanoseconds: UInt64 = 20_000
    @_spi(Tuning) public nonisolated(unsafe) static var yieldNanoseconds: UInt64 = 100_000

    private let submitLock = NSLock()
    private let sleepLock = NSCondition()
    private var sleepers = 0  // guarded by sleepLock
    private var workerCount = 0  // guarded by submitLock
    // Written under submitLock before publishing. Not an Optional: a closure stored in an Optional is
    // kept at the generic abstraction level, and converting to it allocates a thunk on every job.
    private var job: @Sendable (Int) -> Void = GemmThreadPool.idle
    private static let idle: @Sendable (Int) -> Void = { _ in }
    /// generation << 24 | parts << 12 | next part
    private let claim = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)

    private static let partBits = 12, partMask = (1 << 12) - 1

    @inline(__always) private static func pack(_ gen: Int, _ parts: Int, _ next: Int) -> Int {
        gen << (2 * partBits) | parts << partBits | next
    }

    /// Runs `body(i)` for i in 0..<parts, split between the caller and the workers. Returns false
    /// (having run nothing) if another thread's job is in progress.
    ///
    /// `body` is not escaping: the call returns only after every part has run, and `job` is reset
    /// before that, so the closures callers build (and what they capture) stay on their stack. What
    /// remains per call is the one small box `withoutActuallyEscaping` makes (measured: 87 such
    /// allocations, 2.8 KB, in a small GPT's training step).
    func run(parts: Int, _ body: @Sendable (Int) -> Void) -> Bool {
        precondition(parts >= 1 && parts <= Self.partMask)
        if !submitLock.try() { return false }
        defer { submitLock.unlock() }
        return withoutActuallyEscaping(body) { body in submit(parts: parts, body) }
    }

    private func submit(parts: Int, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
        if workerCount < parts - 1 {
            for _ in workerCount..<(parts - 1) { startWorker() }
            workerCount = parts - 1
        }
        job = body
        finished.store(0, ordering: .relaxed)
        let gen = (claim.load(ordering: .relaxed) >> (2 * Self.partBits)) + 1
        claim.store(Self.pack(gen, parts, 0), ordering: .releasing)
        sleepLock.lock()
        if sleepers > 0 { sleepLock.broadcast() }
        sleepLock.unlock()

        runParts(generation: gen, body)
        // Wait for the parts the workers claimed. On a busy machine the worker holding a part may
        // have been descheduled: after a short spin, yield the core so it can finish (a bare spin
        // here measured 6x slower training with 8 other processes running).
        var spins = 0
        while finished.load(ordering: .acquiring) < parts {
            spins &+= 1
            if spins > 2000 { sched_yield() }
        }
        job = Self.idle
        return true
    }

    /// Claims and runs parts of job `generation` until none are left.
    @inline(__always)
    private func runParts(generation: Int, _ body: (Int) -> Void) {
        var word = claim.load(ordering: .acquiring)
        while true {
            let gen = word >> (2 * Self.partBits), parts = (word >> Self.partBits) & Self.partMask
            let next = word & Self.partMask
            if gen != generation || next >= parts { return }
            let (exchanged, original) = claim.compareExchange(
                expected: word, desired: Self.pack(gen, parts, next + 1), ordering: .acquiringAndReleasing)
            if !exchanged { word = original; continue }
            body(next)
            finished.add(1, ordering: .releasing)
            word = claim.load(ordering: .acquiring)
        }
    }

    private func startWorker() {
        let seen = claim.load(ordering: .acquiring) >> (2 * Self.partBits)
        let thread = Thread { [self] in self.workerLoop(seen: seen) }
        thread.name = "gemm-worker"
        thread.qualityOfService = .userInitiated
        thread.start()
    }

    private func workerLoop(seen start: Int) {
        var seen = start
        while true {
            var word = claim.load(ordering: .acquiring)
            var spins = 0
            var start: UInt64 = 0
            while word >> (2 * Self.partBits) == seen {
                spins &+= 1
                if spins & 255 == 0 {
                    let now = DispatchTime.now().uptimeNanoseconds
                    if start == 0 { start = now }
                    let idle = now - start
                    if idle >= Self.yieldNanoseconds {
                        sleepLock.lock()
                        sleepers += 1
                        while claim.load(ordering: .acquiring) >> (2 * Self.partBits) == seen { sleepLock.wait() }
                        sleepers -= 1
                        sleepLock.unlock()
                        start = 0
                    } else if idle >= Self.spinNanoseconds {
                        sched_yield()
                    }
                }
                word = claim.load(ordering: .acquiring)
            }
            seen = word >> (2 * Self.partBits)
            // `job` is read only once a part of this generation is ours (the caller then waits for it).
            runParts(generation: seen) { i in self.runPart(i) }
        }
    }

    @inline(never)
    private func runPart(_ i: Int) {
        let body = job
        body(i)
    }
}
