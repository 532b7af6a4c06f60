import Testing
import TensorKit

/// Central differences on a whole model's loss against the analytic gradients in `grads`, for
/// `samples` seeded coordinates of every tensor in `layout`.
func checkGradients(
    layout: BufferLayout, params: FlatBuffer, grads: FlatBuffer, samples: Int = 3, seed: UInt64,
    h: Float = 5e-3, loss: () -> Double
) {
    var sample = SeededRNG(seed: seed)
    for e in layout.entries {
        for _ in 0..<samples {
            let i = e.offset + sample.nextInt(below: e.count)
            let old = params[i]
            params[i] = old + h; let up = loss()
            params[i] = old - h; let down = loss()
            params[i] = old
            let numeric = Float((up - down) / Double(2 * h)), analytic = grads[i]
            #expect(
                abs(numeric - analytic) <= 1e-3 + 2e-2 * abs(numeric),
                "\(e.name)[\(i - e.offset)]: analytic \(analytic), numeric \(numeric)")
        }
    }
}

@Suite struct FiniteDifferenceCheckTests {
    /// The check must catch wrong gradients: zeroed gradients of a nonzero loss are reported.
    @Test func catchesWrongGradients() throws {
        let layout = BufferLayout([("w", [3])])
        let params = FlatBuffer(count: 3), grads = FlatBuffer(count: 3)
        for i in 0..<3 { params[i] = Float(i + 1) }
        // loss = Σ w², true gradient 2w; leave grads at 0.
        withKnownIssue {
            checkGradients(layout: layout, params: params, grads: grads, samples: 2, seed: 1) {
                (0..<3).reduce(0.0) { $0 + Double(params[$1]) * Double(params[$1]) }
            }
        }
        for i in 0..<3 { grads[i] = 2 * params[i] }
        checkGradients(layout: layout, params: params, grads: grads, samples: 2, seed: 1) {
            (0..<3).reduce(0.0) { $0 + Double(params[$1]) * Double(params[$1]) }
        }
    }
}
