import TensorKit

/// The named weights of a model, in a fixed order (the order of `names`).
///
/// Names are checkpoint keys: `encoder.layers.0.self_attn.w_q`, `decoder.layers.0.norm2.gamma`, …
/// Weight matrices are stored `[in, out]`, so a layer computes `x · W`, as the by-hand articles write it.
public struct ParameterSet: Sendable, Equatable {
    public private(set) var names: [String] = []
    public private(set) var tensors: [String: Tensor] = [:]

    public init() {}

    public subscript(name: String) -> Tensor? { tensors[name] }

    public mutating func add(_ name: String, _ t: Tensor) {
        precondition(tensors[name] == nil, "parameter \(name) added twice")
        names.append(name)
        tensors[name] = t
    }

    /// Replaces a parameter's values; the shape must stay the same.
    public mutating func set(_ name: String, _ t: Tensor) throws {
        guard let old = tensors[name] else {
            throw ConfigError(
                message: "unknown parameter \"\(name)\"; known: \(names.prefix(12).joined(separator: ", "))\(names.count > 12 ? ", …" : "")"
            )
        }
        guard old.shape == t.shape else {
            throw ConfigError(message: "parameter \"\(name)\" has shape \(t.shape), expected \(old.shape)")
        }
        tensors[name] = t
    }

    public var parameterCount: Int { tensors.values.reduce(0) { $0 + $1.count } }

    /// Throws, naming the parameter, when one of `shapes` is missing or has another shape.
    public func check(against shapes: [(String, [Int])]) throws {
        for (name, shape) in shapes {
            guard let t = tensors[name] else { throw ConfigError(message: "parameter \(name) is missing") }
            guard t.shape == shape else { throw ConfigError(message: "parameter \(name) has shape \(t.shape), the config needs \(shape)") }
        }
    }
}

extension TransformerConfig {
    /// Every parameter name with its shape, in checkpoint order.
    public var parameterShapes: [(String, [Int])] {
        var out: [(String, [Int])] = []
        let d = dModel, a = attentionWidth
        out.append(("src_embed", [sourceVocabSize, d]))
        if embeddings != .all { out.append(("tgt_embed", [targetVocabSize, d])) }
        if positions == .learned {
            out.append(("src_pos", [contextLength, d]))
            out.append(("tgt_pos", [contextLength, d]))
        }
        func attention(_ p: String) {
            for w in ["w_q", "w_k", "w_v"] {
                out.append(("\(p).\(w)", [d, a]))
                if attentionBias { out.append(("\(p).b_\(w.dropFirst(2))", [a])) }
            }
            out.append(("\(p).w_o", [a, d]))
            if attentionBias { out.append(("\(p).b_o", [d])) }
        }
        func normParams(_ p: String) { out.append(("\(p).gamma", [d])); out.append(("\(p).beta", [d])) }
        func ffn(_ p: String) {
            out.append(("\(p).w1", [d, dFF])); out.append(("\(p).b1", [dFF]))
            out.append(("\(p).w2", [dFF, d])); out.append(("\(p).b2", [d]))
        }
        for l in 0..<encoderLayers {
            let p = "encoder.layers.\(l)"
            attention("\(p).self_attn"); normParams("\(p).norm1"); ffn("\(p).ffn"); normParams("\(p).norm2")
        }
        if norm == .pre && encoderLayers > 0 { normParams("encoder.norm") }
        for l in 0..<decoderLayers {
            let p = "decoder.layers.\(l)"
            attention("\(p).self_attn"); normParams("\(p).norm1")
            attention("\(p).cross_attn"); normParams("\(p).norm2")
            ffn("\(p).ffn"); normParams("\(p).norm3")
        }
        if norm == .pre { normParams("decoder.norm") }
        if embeddings == .separate { out.append(("out_proj", [d, targetVocabSize])) }
        return out
    }

    /// Seeded initial weights: Glorot-uniform matrices (as PyTorch's `nn.Transformer`), zero biases,
    /// layer-norm gains 1 and shifts 0. The same seed gives the same numbers on every machine.
    public func initialParameters(seed: UInt64) -> ParameterSet {
        var rng = SeededRNG(seed: seed)
        var ps = ParameterSet()
        for (name, shape) in parameterShapes {
            let t: Tensor
            if name.hasSuffix(".gamma") {
                t = Tensor(repeating: 1, shape: shape)
            } else if shape.count == 1 {
                t = Tensor(zeros: shape)
            } else {
                t = rng.xavierUniform(fanIn: shape[0], fanOut: shape[1])
            }
            ps.add(name, t)
        }
        return ps
    }
}

extension FlatBuffer {
    /// A buffer laid out by `layout`, filled from named tensors whose names and shapes must match it.
    public convenience init(layout: BufferLayout, parameters: ParameterSet) throws {
        self.init(count: layout.total)
        for e in layout.entries {
            guard let t = parameters[e.name] else { throw ConfigError(message: "parameter \(e.name) is missing") }
            guard t.shape == e.shape else {
                throw ConfigError(message: "parameter \(e.name) has shape \(t.shape), the config needs \(e.shape)")
            }
            for i in 0..<e.count { self[e.offset + i] = t.data[i] }
        }
    }
}

extension ParameterSet {
    /// The named tensors a flat buffer holds under `layout` (copies).
    public init(buffer: FlatBuffer, layout: BufferLayout) {
        self.init()
        for e in layout.entries {
            add(e.name, Tensor(shape: e.shape, data: Array(UnsafeBufferPointer(start: buffer.pointer + e.offset, count: e.count))))
        }
    }
}
