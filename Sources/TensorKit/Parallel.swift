import Foundation

/// Runs `body(part)` for `part` in 0..<parts on the GEMM's thread pool (or in a loop when the pool is
/// busy or parts is 1). Each part must write memory no other part touches.
@inline(__always)
func parallelFor(parts: Int, _ body: @Sendable (Int) -> Void) {
    if parts <= 1 { body(0); return }
    if #available(macOS 15.0, *) {
        if !GemmThreadPool.shared.run(parts: parts, body) { for i in 0..<parts { body(i) } }
    } else {
        DispatchQueue.concurrentPerform(iterations: parts, execute: body)
    }
}

/// Splits `count` items into `parts` contiguous ranges and runs them in parallel when the work
/// (items × cost per item, in multiply-adds) is large enough to pay for waking a second thread.
@inline(__always)
public func parallelRanges(count: Int, costPerItem: Int, _ body: @Sendable (Range<Int>) -> Void) {
    let t = min(Gemm.threads, count)
    if t <= 1 || count * costPerItem < (1 << 15) { body(0..<count); return }
    parallelFor(parts: t) { p in
        let lo = count * p / t, hi = count * (p + 1) / t
        if lo < hi { body(lo..<hi) }
    }
}

/// Most blocks a reduction splits into (so at most this many threads share one).
let reductionBlockLimit = 8

/// How many blocks `parallelChunks` splits a reduction over `count` items into: a function of the work
/// alone, never of the thread count, so the partial results are the same and are added in the same
/// order on 1 thread or 8 — the same bits whatever `Gemm.threads` is (a run resumed on a machine with
/// another core count, or tests that change the process-wide setting meanwhile, stay bit-exact).
@inline(__always)
func chunkCount(count: Int, costPerItem: Int) -> Int {
    count * costPerItem < (1 << 15) ? 1 : min(count, reductionBlockLimit)
}

/// Runs `body(block, rows)` for each of `parts` contiguous blocks of `0..<count` (`parts` from
/// `chunkCount`), so reductions can keep one partial result per block and add them in a fixed order
/// afterwards. The blocks are shared out over up to `Gemm.threads` threads, each taking a run of
/// whole blocks: which thread computes a block never changes what it computes.
@inline(__always)
func parallelChunks(count: Int, parts: Int, _ body: @Sendable (Int, Range<Int>) -> Void) {
    if parts <= 1 { body(0, 0..<count); return }
    let t = min(Gemm.threads, parts)
    parallelFor(parts: t) { p in
        for block in (parts * p / t)..<(parts * (p + 1) / t) {
            body(block, (count * block / parts)..<(count * (block + 1) / parts))
        }
    }
}
