import Foundation
import TensorKit

/// AdamW (Loshchilov & Hutter), as PyTorch's `torch.optim.AdamW` computes it:
///
///     p ← p − lr·λ·p                      (decoupled weight decay, only where `decays[i]`)
///     m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
///     p ← p − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)
///
/// The paper uses β1 0.9, β2 0.98, ε 1e-9. Moments live in flat buffers laid out like the parameters,
/// so the update is one loop and checkpointing them is one write.
public final class AdamW: @unchecked Sendable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.98
    public var eps: Float = 1e-9
    public var weightDecay: Float = 0
    public let m: FlatBuffer
    public let v: FlatBuffer
    /// Steps taken (t in the bias correction).
    public var step = 0
    /// 1 where weight decay applies (matrices), 0 for biases, norms and (by convention) nothing else.
    let decayMask: [Bool]

    public init(count: Int, decayMask: [Bool]? = nil) {
        m = FlatBuffer(count: count)
        v = FlatBuffer(count: count)
        self.decayMask = decayMask ?? Array(repeating: true, count: count)
    }

    /// Decay weight matrices (2-D tensors whose names are not embeddings or position tables); not biases or norms.
    public static func decayMask(for layout: BufferLayout) -> [Bool] {
        var mask = [Bool](repeating: false, count: layout.total)
        for e in layout.entries where e.shape.count == 2 {
            for i in e.offset..<(e.offset + e.count) { mask[i] = true }
        }
        return mask
    }

    public func update(params: FlatBuffer, grads: FlatBuffer, lr: Float) {
        step += 1
        let b1 = beta1, b2 = beta2
        let c1 = 1 - Float(Foundation.pow(Double(b1), Double(step)))
        let c2 = 1 - Float(Foundation.pow(Double(b2), Double(step)))
        let p = params.pointer, g = grads.pointer, mm = m.pointer, vv = v.pointer
        let decay = lr * weightDecay
        for i in 0..<params.count {
            if decay != 0 && decayMask[i] { p[i] -= decay * p[i] }
            let gi = g[i]
            mm[i] = b1 * mm[i] + (1 - b1) * gi
            vv[i] = b2 * vv[i] + (1 - b2) * gi * gi
            let mhat = mm[i] / c1, vhat = vv[i] / c2
            p[i] -= lr * mhat / (vhat.squareRoot() + eps)
        }
    }
}

/// Global L2 norm of the gradients; if it exceeds `maxNorm`, scales them down to it. Returns the norm before clipping.
@discardableResult
public func clipGradients(_ grads: FlatBuffer, maxNorm: Float) -> Float {
    var sum = 0.0
    let g = grads.pointer
    for i in 0..<grads.count { sum += Double(g[i]) * Double(g[i]) }
    let norm = Float(sum.squareRoot())
    if maxNorm > 0 && norm > maxNorm {
        let s = maxNorm / (norm + 1e-6)
        for i in 0..<grads.count { g[i] *= s }
    }
    return norm
}
