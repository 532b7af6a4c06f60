import Foundation
import TensorKit

/// What the trainer does when the loss or a gradient is NaN or infinite (`--on-non-finite`).
public enum NonFinitePolicy: String, Codable, Sendable, CaseIterable {
    /// Exit with an error naming the step and the tensor; the last good checkpoint stays `latest`.
    case stop
    /// Leave the weights and the AdamW moments as they were, count the step as skipped and go on.
    case skip
}

/// The first tensor of a buffer holding a NaN or an infinity.
public struct NonFiniteTensor: Sendable, Equatable {
    public var name: String
    /// Values that are NaN or ±∞, and the tensor's size.
    public var nonFinite: Int, count: Int
    /// "NaN", "+Inf" or "-Inf": the first bad value.
    public var kind: String
}

public enum NonFinite {
    /// Consecutive skipped steps after which `skip` gives up (the run is diverging, not hiccuping).
    public static let maxConsecutiveSkips = 10

    /// The first tensor (in layout order) with a non-finite value, or nil.
    public static func first(in buffer: FlatBuffer, layout: BufferLayout) -> NonFiniteTensor? {
        for e in layout.entries {
            let p = buffer.pointer + e.offset
            var bad = 0, kind = ""
            for i in 0..<e.count where !p[i].isFinite {
                if bad == 0 { kind = p[i].isNaN ? "NaN" : (p[i] > 0 ? "+Inf" : "-Inf") }
                bad += 1
            }
            if bad > 0 { return NonFiniteTensor(name: e.name, nonFinite: bad, count: e.count, kind: kind) }
        }
        return nil
    }

    /// Where a parameter sits, in words: "h.1.mlp.c_fc.weight" → "layer 1, MLP";
    /// "decoder.layers.0.cross_attn.w_q" → "decoder layer 0, cross-attention"; "wte.weight" → "token embedding".
    public static func describe(_ name: String) -> String {
        let parts = name.split(separator: ".").map(String.init)
        var place: String? = nil
        if let i = parts.firstIndex(where: { $0 == "h" || $0 == "layers" || $0 == "layer" || $0 == "blocks" }),
            i + 1 < parts.count, let n = Int(parts[i + 1])
        {
            let stack = parts.contains("encoder") ? "encoder layer" : parts.contains("decoder") ? "decoder layer" : "layer"
            place = "\(stack) \(n)"
        }
        let component: String
        if parts.contains(where: { $0 == "cross_attn" }) {
            component = "cross-attention"
        } else if parts.contains(where: { $0.hasSuffix("attn") || $0 == "attention" }) {
            component = "attention"
        } else if parts.contains(where: { $0 == "mlp" || $0 == "ffn" }) {
            component = "MLP"
        } else if parts.contains(where: { $0 == "ln_f" }) || (place == nil && parts.contains(where: { $0.hasPrefix("norm") })) {
            component = "final layer norm"
        } else if parts.contains(where: { $0.hasPrefix("ln_") || $0.hasPrefix("norm") || $0 == "LayerNorm" }) {
            component = "layer norm"
        } else if parts.contains(where: { $0 == "wte" || $0.hasSuffix("_embed") || $0 == "word_embeddings" }) {
            component = "token embedding"
        } else if parts.contains(where: { $0 == "wpe" || $0.hasSuffix("_pos") || $0 == "position_embeddings" }) {
            component = "position embedding"
        } else {
            component = ""
        }
        return [place, component.isEmpty ? nil : component].compactMap { $0 }.joined(separator: ", ")
    }

    /// One line for a step whose loss or gradients are not finite.
    static func report(step: Int, loss: Float, norm: Float, grads: FlatBuffer, layout: BufferLayout) -> String {
        var line = "step \(step): "
        if let t = first(in: grads, layout: layout) {
            let place = describe(t.name)
            line +=
                "gradient of \(t.name)\(place.isEmpty ? "" : " (\(place))") is \(t.kind) (\(t.nonFinite) of \(t.count) values non-finite)"
        } else if !norm.isFinite {
            line += "the gradient norm overflowed to \(norm) (every gradient value is finite but too large)"
        } else {
            line += "the gradients are finite"
        }
        line += "; loss \(loss)"
        return line
    }

    /// Throws if any tensor of `buffer` holds a NaN or an infinity, naming it.
    public static func check(_ buffer: FlatBuffer, layout: BufferLayout, what: String) throws {
        if let t = first(in: buffer, layout: layout) {
            let place = describe(t.name)
            throw TrainingError(
                "\(what): tensor \(t.name)\(place.isEmpty ? "" : " (\(place))") holds \(t.kind) (\(t.nonFinite) of \(t.count) values non-finite)"
            )
        }
    }
}

/// Global L2 norm of a gradient buffer: squares summed in blocks of 8 lanes, each block's partial added
/// in Double (the sum `clipGradients` uses).
public func gradientNorm(_ grads: FlatBuffer) -> Float {
    let g = grads.pointer
    var sum = 0.0, i = 0
    while i < grads.count {
        let end = min(grads.count, i + 4096)
        var s8 = SIMD8<Float>.zero
        while i + 8 <= end { let x = load8(g + i); s8 += x * x; i += 8 }
        var part = Double(s8.sum())
        while i < end { part += Double(g[i]) * Double(g[i]); i += 1 }
        sum += part
    }
    return Float(sum.squareRoot())
}

/// Fault injection for the reliability tests (never set in normal use).
///
/// - `TRANSFORMER_FAULT_NAN_STEP=S`: at step S (1-based, the step being computed), one gradient value
///   becomes NaN before the gradients are combined (rank 0 only under data parallelism);
///   `TRANSFORMER_FAULT_NAN_PARAM=name` picks the tensor (default: the first), `TRANSFORMER_FAULT_VALUE=inf`
///   an infinity instead.
/// - `TRANSFORMER_FAULT_SLOW_CHECKPOINT_MS=N`: `Checkpoint.save` prints `[fault] checkpoint step-…: <phase>`
///   to stderr at each phase of a write and sleeps N ms after it, so a test can kill the process inside one.
public struct FaultInjection: Sendable, Equatable {
    public var poisonStep: Int
    public var parameter: String?
    public var value: Float

    public init(poisonStep: Int, parameter: String? = nil, value: Float = .nan) {
        self.poisonStep = poisonStep; self.parameter = parameter; self.value = value
    }

    public static func fromEnvironment() -> FaultInjection? {
        let env = ProcessInfo.processInfo.environment
        guard let s = env["TRANSFORMER_FAULT_NAN_STEP"].flatMap({ Int($0) }) else { return nil }
        let v: Float = env["TRANSFORMER_FAULT_VALUE"]?.lowercased() == "inf" ? .infinity : .nan
        return FaultInjection(poisonStep: s, parameter: env["TRANSFORMER_FAULT_NAN_PARAM"], value: v)
    }

    func apply(to grads: FlatBuffer, layout: BufferLayout) {
        let e = parameter.flatMap { layout.entry($0) } ?? layout.entries[0]
        grads.pointer[e.offset + e.count / 2] = value
    }

    /// Milliseconds to sleep at each phase of a checkpoint write (nil: no markers, no sleep).
    static let slowCheckpointMilliseconds: Int? = ProcessInfo.processInfo.environment["TRANSFORMER_FAULT_SLOW_CHECKPOINT_MS"].flatMap {
        Int($0)
    }

    static func checkpointPhase(_ name: String, _ phase: String) {
        guard let ms = slowCheckpointMilliseconds else { return }
        FileHandle.standardError.write(Data("[fault] checkpoint \(name): \(phase)\n".utf8))
        if ms > 0 { usleep(useconds_t(ms * 1000)) }
    }
}
