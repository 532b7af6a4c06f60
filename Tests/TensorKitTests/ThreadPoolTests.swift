import Foundation
import Synchronization
import Testing
@_spi(Tuning) @testable import TensorKit

/// The resident pool with 2–4 threads genuinely at once (each part waits until every part has
/// started, so they must be on different threads), whatever `Gemm.threads` or the core count is.
/// Under ThreadSanitizer (scripts/sanitize.sh thread) this is what checks the pool's hand-offs:
/// plain writes made by the parts must be visible to the caller, and to the next job's parts on
/// other threads, only through the pool's atomics.
@Suite(.serialized) struct ThreadPoolTests {
    // `@available` rather than an early return: on an older macOS the test shows as skipped, not passed.
    @available(macOS 15.0, *)
    @Test(arguments: [2, 3, 4])
    func partsRunAtOnceOnSeparateThreadsAndEachExactlyOnce(parts: Int) throws {
        // A pool of its own, so no other test's product can find it busy.
        let pool = GemmThreadPool()
        let chunk = 64, rounds = 50
        let data = UnsafeMutableBufferPointer<Int>.allocate(capacity: parts * chunk)
        data.initialize(repeating: -1)
        let runs = UnsafeMutableBufferPointer<Int>.allocate(capacity: parts)
        runs.initialize(repeating: 0)
        let threads = UnsafeMutableBufferPointer<UInt>.allocate(capacity: parts)
        threads.initialize(repeating: 0)
        defer { data.deallocate(); runs.deallocate(); threads.deallocate() }
        let (dataAddress, runsAddress, threadsAddress) = (
            UInt(bitPattern: data.baseAddress!),
            UInt(bitPattern: runs.baseAddress!), UInt(bitPattern: threads.baseAddress!)
        )
        let flags = Flags()
        for round in 0..<rounds {
            flags.started.store(0, ordering: .relaxed)
            let ran = pool.run(parts: parts) { part in
                let data = UnsafeMutablePointer<Int>(bitPattern: dataAddress)!
                let runs = UnsafeMutablePointer<Int>(bitPattern: runsAddress)!
                let threads = UnsafeMutablePointer<UInt>(bitPattern: threadsAddress)!
                // Plain (non-atomic) reads and writes: the previous round's values were written by
                // whichever thread ran this part then.
                runs[part] += 1
                for j in 0..<chunk {
                    if data[part * chunk + j] != (round == 0 ? -1 : (round - 1) * 1000 + part) {
                        flags.wrong.add(1, ordering: .relaxed)
                    }
                    data[part * chunk + j] = round * 1000 + part
                }
                threads[part] = unsafeBitCast(pthread_self(), to: UInt.self)
                // Barrier: every part has started before any finishes (bounded, so a broken pool
                // fails the test instead of hanging it).
                flags.started.add(1, ordering: .relaxed)
                let deadline = DispatchTime.now().uptimeNanoseconds + 5_000_000_000
                while flags.started.load(ordering: .relaxed) < parts && !flags.timedOut.load(ordering: .relaxed) {
                    if DispatchTime.now().uptimeNanoseconds > deadline { flags.timedOut.store(true, ordering: .relaxed) }
                    sched_yield()
                }
            }
            let wrong = flags.wrong.load(ordering: .relaxed), timedOut = flags.timedOut.load(ordering: .relaxed)
            #expect(ran)
            #expect(wrong == 0, "round \(round): a part saw another round's data")
            #expect(!timedOut, "round \(round): the \(parts) parts did not all run at once")
            if timedOut { break }
            #expect(Set(threads).count == parts, "round \(round): parts shared a thread")
            for p in 0..<parts { #expect(runs[p] == round + 1) }
            for p in 0..<parts { #expect(data[p * chunk..<(p + 1) * chunk].allSatisfy { $0 == round * 1000 + p }) }
        }
    }

    /// While one thread's job is in progress, a second caller is told the pool is busy (and runs
    /// nothing); once the job is done the pool takes work again.
    @available(macOS 15.0, *)
    @Test func aSecondCallerFindsThePoolBusy() {
        let pool = GemmThreadPool()
        let flags = Flags()  // started: the first job is inside; wrong: the second caller's job ran
        let other = Thread {
            while flags.started.load(ordering: .acquiring) == 0 { sched_yield() }
            let ok = pool.run(parts: 2) { _ in flags.wrong.add(1, ordering: .relaxed) }
            flags.secondGotThePool.store(ok, ordering: .relaxed)
            flags.secondDone.store(true, ordering: .releasing)
        }
        other.start()
        let ok = pool.run(parts: 2) { part in
            if part == 0 {
                flags.started.store(1, ordering: .releasing)
                while !flags.secondDone.load(ordering: .acquiring) { sched_yield() }
            }
        }
        let (secondGotThePool, secondRan) = (flags.secondGotThePool.load(ordering: .relaxed), flags.wrong.load(ordering: .relaxed))
        #expect(ok)
        #expect(!secondGotThePool)
        #expect(secondRan == 0)
        let again = Atomic<Int>(0)
        let ranAgain = pool.run(parts: 3) { _ in again.add(1, ordering: .relaxed) }
        #expect(ranAgain)
        let ranParts = again.load(ordering: .relaxed)
        #expect(ranParts == 3)
    }

    @available(macOS 15.0, *)
    final class Flags: Sendable {
        let started = Atomic<Int>(0), wrong = Atomic<Int>(0)
        let timedOut = Atomic<Bool>(false), secondGotThePool = Atomic<Bool>(false), secondDone = Atomic<Bool>(false)
    }
}
