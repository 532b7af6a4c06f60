import Foundation

extension Quantized {
    /// `out[i, r] = m[r] · x[i]` for `n` inputs at once (one decoding step of `n` conversations): each
    /// tile of weight rows is read from memory once and multiplied by all `n` inputs while it sits in
    /// the L1 cache, so a step of 8 costs far less than 8 steps of 1 when the weights, not the
    /// arithmetic, are the bottleneck. `x` is `[n, cols]`; each `out` is `[n, m.rows]`, as `matmul`
    /// writes it. Row i's result is exactly `matvec` of row i (the same kernels, the same order).
    public static func matvecRows(
        _ products: [(out: FloatPtr, matrix: QuantizedMatrix)], _ x: ConstFloatPtr, n: Int,
        activations: ActivationPrecision = .float32
    ) {
        precondition(n >= 1, "matvecRows: n must be at least 1")
        let cols = products[0].matrix.cols, blocks = cols / 32
        precondition(products.allSatisfy { $0.matrix.cols == cols }, "matvecRows: the matrices must have the same width")
        let int8 = activations.effective == .int8 && products.contains { hasInt8Kernel($0.matrix.type) }
        // Per input row: its block sums (Float32 4-bit kernels) and, with int8, its 8-bit copy.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: n * blocks * 3) { f in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: int8 ? n * cols : 0) { q8 in
                let sums = f.baseAddress!, ds = sums + n * blocks
                for i in 0..<n {
                    let xi = x + i * cols
                    for b in 0..<blocks {
                        var s = load8(xi + 32 * b)
                        s += load8(xi + 32 * b + 8); s += load8(xi + 32 * b + 16); s += load8(xi + 32 * b + 24)
                        sums[i * blocks + b] = s.sum()
                    }
                    if int8 { quantizeActivations(xi, cols: cols, into: rowActivations(q8.baseAddress!, ds, i, cols)) }
                }
                var offsets: [Int] = [], total = 0
                for p in products { offsets.append(total); total += p.matrix.rows }
                let starts = offsets
                let jobs = products.map { (SharedPointer($0.out), $0.matrix) }
                let x0 = SharedPointer(x), s0 = SharedPointer(sums), d0 = SharedPointer(ds)
                let q0 = int8 ? SharedPointer(q8.baseAddress!) : nil
                parallelRanges(count: total, costPerItem: cols * n) { range in
                    for (j, (o, m)) in jobs.enumerated() {
                        let lo = max(range.lowerBound, starts[j]) - starts[j], hi = min(range.upperBound, starts[j] + m.rows) - starts[j]
                        guard lo < hi else { continue }
                        // 16 rows of 1,024 4-bit weights are 9 KB: they stay in L1 across the n inputs.
                        var t = lo
                        while t < hi {
                            let tile = t..<min(hi, t + 16)
                            for i in 0..<n {
                                let out = o.pointer + i * m.rows
                                if let q0, hasInt8Kernel(m.type) {
                                    dotRowsInt8(out, m, rowActivations(q0.pointer, d0.pointer, i, cols), rows: tile)
                                } else {
                                    dotRows(out, m, x0.readOnly + i * cols, s0.readOnly + i * blocks, rows: tile)
                                }
                            }
                            t = tile.upperBound
                        }
                    }
                }
            }
        }
    }

    /// Input row i's 8-bit view: `cols` bytes at `q + i·cols`; scales and scaled sums in `ds` (2 per block and row).
    @inline(__always) private static func rowActivations(
        _ q: UnsafeMutablePointer<Int8>, _ ds: FloatPtr, _ i: Int, _ cols: Int
    ) -> Int8Activations {
        let blocks = cols / 32
        return Int8Activations(q: q + i * cols, d: ds + 2 * i * blocks, s: ds + 2 * i * blocks + blocks)
    }
}
