import Foundation

/// The learning rate at each step (steps count from 1).
public enum LearningRateSchedule: Codable, Sendable, Equatable {
    /// The paper: `factor · d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)` — linear warm-up, then 1/√step decay.
    case noam(dModel: Int, warmup: Int, factor: Float)
    /// A fixed rate after an optional linear warm-up.
    case constant(lr: Float, warmup: Int)
    /// Linear warm-up to `lr`, then cosine decay to `minLR` at `total` steps.
    case cosine(lr: Float, minLR: Float, warmup: Int, total: Int)

    public func rate(at step: Int) -> Float {
        let s = Float(max(step, 1))
        switch self {
        case let .noam(d, w, f):
            return f * Float(d).squareRoot().reciprocal * min(1 / s.squareRoot(), s * Float(Foundation.pow(Double(max(w, 1)), -1.5)))
        case let .constant(lr, w):
            return w > 0 && step < w ? lr * s / Float(w) : lr
        case let .cosine(lr, minLR, w, total):
            if w > 0 && step < w { return lr * s / Float(w) }
            let progress = min(1, Float(step - w) / Float(max(total - w, 1)))
            return minLR + 0.5 * (lr - minLR) * (1 + Float(Foundation.cos(Double.pi * Double(progress))))
        }
    }

    public var name: String {
        switch self {
        case let .noam(d, w, f): return "noam (d_model \(d), warmup \(w), factor \(f))"
        case let .constant(lr, w): return "constant \(lr)" + (w > 0 ? " after \(w) warm-up steps" : "")
        case let .cosine(lr, m, w, t): return "cosine \(lr) → \(m) over \(t) steps, warmup \(w)"
        }
    }
}

extension Float {
    var reciprocal: Float { 1 / self }
}
