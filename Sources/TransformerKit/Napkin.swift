import Foundation

/// "GPT-3 on a napkin" (seed 004): what a GPT of a given shape costs — parameters per component,
/// FLOPs per token, and memory — computed from its config alone, with the formulas named.
///
/// The layout is GPT-2's (`GPTConfig.parameterShapes`): biases on every projection, two layer norms
/// per block, a final layer norm, the output tied to the token embedding unless `tiedHead` is false.
/// GPT-3 has the same layout (its alternating sparse attention layers change the attention FLOPs
/// a little, not the parameters); this napkin treats every layer as dense.
public struct Napkin: Sendable {
    public var name: String
    public var config: GPTConfig
    /// Whether the output layer reuses the token embedding (GPT-2 and GPT-3 do).
    public var tiedHead: Bool

    public init(name: String, config: GPTConfig, tiedHead: Bool = true) {
        self.name = name; self.config = config; self.tiedHead = tiedHead
    }

    // MARK: Presets

    /// GPT-2 (Radford et al. 2019; the released checkpoints' config.json) and GPT-3 (Brown et al. 2020,
    /// Table 2.1). Every one has vocabulary 50257; GPT-2 a context of 1024, GPT-3 2048.
    public static let presets: [(name: String, title: String, config: GPTConfig)] = {
        func gpt2(_ l: Int, _ d: Int, _ h: Int) -> GPTConfig {
            GPTConfig(vocabSize: 50257, contextLength: 1024, dModel: d, layers: l, heads: h)
        }
        func gpt3(_ l: Int, _ d: Int, _ h: Int) -> GPTConfig {
            GPTConfig(vocabSize: 50257, contextLength: 2048, dModel: d, layers: l, heads: h)
        }
        return [
            ("gpt2", "GPT-2 small", gpt2(12, 768, 12)),
            ("gpt2-medium", "GPT-2 medium", gpt2(24, 1024, 16)),
            ("gpt2-large", "GPT-2 large", gpt2(36, 1280, 20)),
            ("gpt2-xl", "GPT-2 XL", gpt2(48, 1600, 25)),
            ("gpt3-125m", "GPT-3 Small (125M)", gpt3(12, 768, 12)),
            ("gpt3-350m", "GPT-3 Medium (350M)", gpt3(24, 1024, 16)),
            ("gpt3-760m", "GPT-3 Large (760M)", gpt3(24, 1536, 16)),
            ("gpt3-1.3b", "GPT-3 XL (1.3B)", gpt3(24, 2048, 24)),
            ("gpt3-2.7b", "GPT-3 2.7B", gpt3(32, 2560, 32)),
            ("gpt3-6.7b", "GPT-3 6.7B", gpt3(32, 4096, 32)),
            // The paper's table prints d_model 5140, which 40 heads of 128 do not make; 40 × 128 = 5120.
            ("gpt3-13b", "GPT-3 13B", gpt3(40, 5120, 40)),
            ("gpt3-175b", "GPT-3 175B (\"GPT-3\")", gpt3(96, 12288, 96))
        ]
    }()

    /// A preset by name; the error lists the known ones.
    public static func preset(_ name: String) throws -> Napkin {
        guard let p = presets.first(where: { $0.name == name.lowercased() }) else {
            throw ConfigError(message: "unknown preset \"\(name)\"; known presets: \(presets.map(\.name).joined(separator: ", "))")
        }
        return Napkin(name: p.title, config: p.config)
    }

    // MARK: Parameters

    /// One row of the parameter table: a component, its formula and its count.
    public struct Component: Codable, Sendable, Equatable {
        public var name: String
        public var formula: String
        public var count: Int
        /// How many times it occurs (the layers); `count` is for one.
        public var times: Int
        public var total: Int { count * times }
    }

    /// Parameters by component, in model order. Counts are exact for the GPT-2 layout.
    public var components: [Component] {
        let d = config.dModel, f = config.dFF, v = config.vocabSize, t = config.contextLength, l = config.layers
        var out = [
            Component(name: "token embedding wte", formula: "V·d", count: v * d, times: 1),
            Component(name: "position embedding wpe", formula: "T·d", count: t * d, times: 1),
            Component(name: "layer norm ln_1", formula: "2d", count: 2 * d, times: l),
            Component(name: "attention Q,K,V c_attn", formula: "d·3d + 3d", count: d * 3 * d + 3 * d, times: l),
            Component(name: "attention output c_proj", formula: "d·d + d", count: d * d + d, times: l),
            Component(name: "layer norm ln_2", formula: "2d", count: 2 * d, times: l),
            Component(name: "MLP c_fc", formula: "d·d_ff + d_ff", count: d * f + f, times: l),
            Component(name: "MLP c_proj", formula: "d_ff·d + d", count: f * d + d, times: l),
            Component(name: "final layer norm ln_f", formula: "2d", count: 2 * d, times: 1)
        ]
        out.append(
            Component(
                name: tiedHead ? "output head (tied to wte)" : "output head lm_head", formula: tiedHead ? "0" : "d·V",
                count: tiedHead ? 0 : d * v, times: 1))
        return out
    }

    /// Parameters of one block: two layer norms, attention, MLP — `12d² + 13d` when d_ff = 4d.
    public var perLayer: Int {
        let d = config.dModel, f = config.dFF
        return 2 * (2 * d) + (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d)
    }

    public var parameters: Int { components.reduce(0) { $0 + $1.total } }
    /// Parameters outside the embedding tables (Kaplan et al.'s N).
    public var nonEmbeddingParameters: Int { parameters - config.vocabSize * config.dModel - config.contextLength * config.dModel }

    // MARK: FLOPs

    /// Weights that take part in a matrix product for every token: the blocks' four projections and the
    /// output layer (`d·V`, tied or not — looking up embeddings costs no arithmetic). Biases, norms,
    /// softmax and GELU are O(d) per token and left out, as in the sources below.
    public var matmulWeights: Int {
        let d = config.dModel, f = config.dFF
        return config.layers * (4 * d * d + 2 * d * f) + d * config.vocabSize
    }

    /// FLOPs per token of a forward pass with `context` tokens: `2·N_mat + 4·L·T·d` — 2 FLOPs per
    /// multiply-add for each weight, and per layer `QKᵀ` and `A·V` (each `T·d` multiply-adds for one
    /// query row over `T` keys; the causal mask is not subtracted).
    public func forwardFLOPsPerToken(context t: Int) -> Double {
        2 * Double(matmulWeights) + 4 * Double(config.layers) * Double(t) * Double(config.dModel)
    }

    /// FLOPs per token of training (forward + backward, the backward costing twice the forward):
    /// `6·N_mat + 12·L·T·d`, PaLM's model-FLOPs formula (Chowdhery et al. 2022, Appendix B: `6N + 12LHQT`).
    public func trainingFLOPsPerToken(context t: Int) -> Double { 3 * forwardFLOPsPerToken(context: t) }

    // MARK: Memory (bytes)

    public struct Memory: Codable, Sendable, Equatable {
        public var weightsFP32: Double
        public var weightsFP16: Double
        public var gradientsFP32: Double
        /// AdamW's two moments, fp32: 8 bytes per parameter.
        public var adamW: Double
        /// fp32 training: weights + gradients + AdamW = 16 bytes per parameter.
        public var trainingStateFP32: Double
        /// Mixed precision (ZeRO, Rajbhandari et al. 2020, §3.1): fp16 weights and gradients, fp32 master
        /// weights and moments = 2 + 2 + 12 = 16 bytes per parameter.
        public var trainingStateMixed: Double
        /// Korthikanti et al. 2022, eq. (1): `L · T·B·d · (34 + 5·a·T/d)` bytes, 16-bit activations with
        /// dropout masks, no recomputation, no parallelism (+ the logits `4·B·T·V` in fp32 for the loss).
        public var activations16bit: Double
        /// This project's `GPTActivations` (fp32, no dropout), exactly: see `activationFloats`.
        public var activationsThisProject: Double

        enum CodingKeys: String, CodingKey {
            case weightsFP32 = "weights_fp32", weightsFP16 = "weights_fp16", gradientsFP32 = "gradients_fp32", adamW = "adamw_moments_fp32"
            case trainingStateFP32 = "training_state_fp32", trainingStateMixed = "training_state_mixed_precision"
            case activations16bit = "activations_16bit_korthikanti", activationsThisProject = "activations_this_project_fp32"
        }
    }

    public func memory(batch b: Int, context t: Int) -> Memory {
        let p = Double(parameters), l = Double(config.layers), d = Double(config.dModel), a = Double(config.heads)
        let s = Double(t), bb = Double(b)
        let korthikanti = l * s * bb * d * (34 + 5 * a * s / d) + 4 * bb * s * Double(config.vocabSize)
        return Memory(
            weightsFP32: 4 * p, weightsFP16: 2 * p, gradientsFP32: 4 * p, adamW: 8 * p,
            trainingStateFP32: 16 * p, trainingStateMixed: 16 * p,
            activations16bit: korthikanti, activationsThisProject: 4 * Double(activationFloats(batch: b, context: t)))
    }

    /// 4-byte values `GPTActivations(config:maxBatch: b, maxLength: t)` allocates. Per block, with
    /// n = b·t tokens: `n·(10d + 2·d_ff + 4) + b·a·t²` (ln_1, qkv ×3, context, attention out, residual,
    /// ln_2, MLP out, residual; fc and GELU; four row statistics; the attention weights). Outside the
    /// blocks: embeddings and ln_f `2·n·d`, its statistics `2n`, the logits `n·V`, the losses `n`, the
    /// ids and targets `2n`, and the backward pass's buffers `n·(7d + 2·d_ff)`.
    public func activationFloats(batch b: Int, context t: Int) -> Int {
        let n = b * t, d = config.dModel, f = config.dFF, a = config.heads
        let block = n * (10 * d + 2 * f + 4) + b * a * t * t
        let outside = 2 * n * d + 2 * n + n * config.vocabSize + n + 2 * n
        let backward = n * (7 * d + 2 * f)
        return config.layers * block + outside + backward
    }
}
