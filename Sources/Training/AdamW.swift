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
    /// 1 where weight decay applies (matrices), 0 for biases and norms: a float per parameter so the
    /// update runs 8 lanes at a time.
    let decayScale: FlatBuffer

    public init(count: Int, decayMask: [Bool]? = nil) {
        m = FlatBuffer(count: count)
        v = FlatBuffer(count: count)
        decayScale = FlatBuffer(count: count)
        for i in 0..<count { decayScale.pointer[i] = (decayMask?[i] ?? true) ? 1 : 0 }
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
        let b1 = beta1, b2 = beta2, eps = eps
        let c1 = 1 - Float(Foundation.pow(Double(b1), Double(step)))
        let c2 = 1 - Float(Foundation.pow(Double(b2), Double(step)))
        let decay = lr * weightDecay
        let count = params.count
        let a = (
            SharedPointer(params.pointer), SharedPointer(grads.pointer), SharedPointer(m.pointer),
            SharedPointer(v.pointer), SharedPointer(decayScale.pointer)
        )
        // Blocks of 8 parameters, split across threads; every element's arithmetic is the same
        // whichever thread does it.
        parallelRanges(count: (count + 7) / 8, costPerItem: 100) { blocks in
            let p = a.0.pointer, g = a.1.pointer
            let mm = a.2.pointer, vv = a.3.pointer
            let ds = a.4.pointer
            var i = blocks.lowerBound * 8
            let end = min(count, blocks.upperBound * 8)
            while i + 8 <= end {
                var p8 = load8(p + i)
                p8 -= decay * load8(ds + i) * p8
                let g8 = load8(g + i)
                let m8 = b1 * load8(mm + i) + (1 - b1) * g8
                let v8 = b2 * load8(vv + i) + (1 - b2) * g8 * g8
                store8(m8, mm + i); store8(v8, vv + i)
                p8 -= lr * (m8 / c1) / ((v8 / c2).squareRoot() + eps)
                store8(p8, p + i)
                i += 8
            }
            while i < end {
                p[i] -= decay * ds[i] * p[i]
                let gi = g[i]
                mm[i] = b1 * mm[i] + (1 - b1) * gi
                vv[i] = b2 * vv[i] + (1 - b2) * gi * gi
                p[i] -= lr * (mm[i] / c1) / ((vv[i] / c2).squareRoot() + eps)
                i += 1
            }
        }
    }
}

/// Global L2 norm of the gradients; if it exceeds `maxNorm`, scales them down to it. Returns the norm before clipping.
@discardableResult
public func clipGradients(_ grads: FlatBuffer, maxNorm: Float) -> Float {
    let norm = gradientNorm(grads)
    clipGradients(grads, norm: norm, maxNorm: maxNorm)
    return norm
}

/// Scales the gradients down to `maxNorm` if their norm (already computed) exceeds it.
public func clipGradients(_ grads: FlatBuffer, norm: Float, maxNorm: Float) {
    guard maxNorm > 0 && norm > maxNorm else { return }
    let g = grads.pointer
    let s = maxNorm / (norm + 1e-6)
    for i in 0..<grads.count { g[i] *= s }
}
