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

/// How many parts `parallelChunks` will use for this much work (1 when it is too small to share).
@inline(__always)
func chunkCount(count: Int, costPerItem: Int) -> Int {
    let t = min(Gemm.threads, count)
    return t <= 1 || count * costPerItem < (1 << 15) ? 1 : t
}

/// Like `parallelRanges`, but each part also gets its index `0..<parts` (`parts` from `chunkCount`),
/// so reductions can keep one partial result per part and add them in a fixed order afterwards
/// (the same bits whatever the timing).
@inline(__always)
func parallelChunks(count: Int, parts: Int, _ body: @Sendable (Int, Range<Int>) -> Void) {
    if parts <= 1 { body(0, 0..<count); return }
    parallelFor(parts: parts) { p in
        let lo = count * p / parts, hi = count * (p + 1) / parts
        body(p, lo..<hi)
    }
}
