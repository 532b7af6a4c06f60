import Foundation
import Testing
import TensorKit
import TransformerKit

/// The whole encoder–decoder model — loss and the gradient of every parameter — against PyTorch.
///
/// `Fixtures/pytorch_model_grads.json` is written by `Fixtures/make_pytorch_model_grads.py` (not run
/// in CI). For two configurations it holds every parameter (our names, our `[in, out]` layout, values
/// exactly representable in float32), a batch of three sentence pairs of different lengths, and the
/// loss (label smoothing 0.1, mean over non-pad targets) and gradients that torch's autograd computes
/// in float64 from those parameters. The script cross-checks its model against `torch.nn.Transformer`.
///
/// * `post_relu_separate_bias`: post-norm, ReLU, separate embeddings and `out_proj`, attention biases.
/// * `pre_gelu_tied_scaled`: pre-norm (final norms), exact GELU, output tied to `tgt_embed`,
///   no attention biases, embeddings scaled by √d_model.
@Suite struct PyTorchGradientTests {
    struct Fixture: Decodable {
        var torch_version: String
        var label_smoothing: Double
        var batch: Batch
        var configurations: [String: Configuration]
    }

    struct Pair: Decodable { var source: [Int]; var target: [Int] }

    struct Batch: Decodable {
        var pairs: [Pair]
        var pad: Int, start: Int, end: Int
        var source: [Int]
        var source_padding: [Bool]
        var target_input: [Int]
        var target_output: [Int]
        var source_length: Int, target_length: Int

        var seq2seq: Seq2SeqBatch {
            Seq2SeqBatch(pairs: pairs.map { (source: $0.source, target: $0.target) }, pad: pad, start: start, end: end)
        }
    }

    struct StoredConfig: Decodable {
        var d_model, heads, d_ff, encoder_layers, decoder_layers, source_vocab_size, target_vocab_size, max_length: Int
        var layer_norm_eps: Double
        var norm, activation, embeddings, positions: String
        var attention_bias, scale_embeddings: Bool
    }

    struct Configuration: Decodable {
        var config: StoredConfig
        var loss: Double
        var target_tokens: Int
        var names: [String]
        var params: [String: StoredTensor]
        var grads: [String: StoredTensor]
    }

    /// Parameters are float32 values written as short decimals (decoded as Double, then rounded to
    /// Float: exactly the value the script used); gradients are float64 values to 9 digits.
    struct StoredTensor: Decodable {
        var shape: [Int]
        var data: [Double]
        var tensor: Tensor { Tensor(shape: shape, data: data.map { Float($0) }) }
    }

    static let keys = ["post_relu_separate_bias", "pre_gelu_tied_scaled"]
    /// Loss: relative to the loss.
    static let lossTolerance = 1e-5
    /// Gradients: max |Δ| over a tensor ≤ this × max |reference| over that tensor.
    static let gradientTolerance = 1e-4
    /// A reference tensor whose largest gradient is below this fraction of the model's largest is zero
    /// in exact arithmetic (the key biases b_k: see below).
    static let zeroFraction = 1e-12

    static func fixture() throws -> Fixture {
        let url = try #require(
            Bundle.module.url(forResource: "pytorch_model_grads", withExtension: "json", subdirectory: "Fixtures"),
            "Fixtures/pytorch_model_grads.json is missing from the test bundle")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    /// The configuration each fixture key names, written out here (and checked against the fixture's record).
    static func config(_ key: String) -> TransformerConfig {
        var c = TransformerConfig()
        c.dModel = 8; c.heads = 2; c.dFF = 16; c.encoderLayers = 2; c.decoderLayers = 2
        c.sourceVocabSize = 13; c.targetVocabSize = 11; c.contextLength = 16
        c.positions = .sinusoidal; c.layerNormEps = 1e-5
        switch key {
        case "post_relu_separate_bias":
            c.norm = .post; c.activation = .relu; c.embeddings = .separate; c.attentionBias = true; c.scaleEmbeddings = false
        case "pre_gelu_tied_scaled":
            c.norm = .pre; c.activation = .gelu; c.embeddings = .tiedOutput; c.attentionBias = false; c.scaleEmbeddings = true
        default:
            Issue.record("unknown configuration \(key)")
        }
        return c
    }

    @Test func batchIsPaddedAsTheFixture() throws {
        let b = try Self.fixture().batch
        let batch = b.seq2seq
        #expect(batch.batchSize == b.pairs.count)
        #expect(batch.sourceLength == b.source_length && batch.targetLength == b.target_length)
        #expect(batch.source.map(Int.init) == b.source)
        #expect(batch.sourcePadding == b.source_padding)
        #expect(batch.targetInput.map(Int.init) == b.target_input)
        #expect(batch.targetOutput.map(Int.init) == b.target_output)
    }

    @Test(arguments: keys)
    func lossAndEveryGradientMatchPyTorch(key: String) throws {
        let fixture = try Self.fixture()
        let stored = try #require(fixture.configurations[key], "fixture has no configuration \(key)")
        let config = Self.config(key)
        let s = stored.config
        #expect(s.d_model == config.dModel && s.heads == config.heads && s.d_ff == config.dFF)
        #expect(s.encoder_layers == config.encoderLayers && s.decoder_layers == config.decoderLayers)
        #expect(s.source_vocab_size == config.sourceVocabSize && s.target_vocab_size == config.targetVocabSize)
        #expect(s.max_length == config.contextLength && Float(s.layer_norm_eps) == config.layerNormEps)
        #expect(s.norm == config.norm.rawValue && s.activation == config.activation.rawValue)
        #expect(s.embeddings == config.embeddings.rawValue && s.positions == config.positions.rawValue)
        #expect(s.attention_bias == config.attentionBias && s.scale_embeddings == config.scaleEmbeddings)

        // Every parameter the config has comes from the fixture, in checkpoint order, and nothing else.
        let expectedNames = config.parameterShapes.map(\.0)
        #expect(stored.names == expectedNames)
        #expect(Set(stored.params.keys) == Set(expectedNames) && Set(stored.grads.keys) == Set(expectedNames))
        var parameters = ParameterSet()
        for name in expectedNames {
            parameters.add(name, try #require(stored.params[name], "fixture lacks parameter \(name)").tensor)
        }
        let model = try Seq2SeqModel(config: config, parameters: parameters)
        #expect(model.parameterSet() == parameters)

        let batch = fixture.batch.seq2seq
        let acts = Seq2SeqActivations(
            config: config, maxBatch: batch.batchSize, maxSource: batch.sourceLength, maxTarget: batch.targetLength)
        var rng = SeededRNG(seed: 0)
        model.grads.zero()
        let (loss, tokens) = model.forward(batch, acts: acts, labelSmoothing: Float(fixture.label_smoothing), dropout: 0, rng: &rng)
        model.backward(batch, acts: acts)
        #expect(tokens == stored.target_tokens)

        let lossError = abs(Double(loss) - stored.loss) / abs(stored.loss)
        print("PyTorch whole-model [\(key)]: loss \(loss) vs \(stored.loss), relative error \(lossError)")
        #expect(lossError <= Self.lossTolerance, "loss \(loss), PyTorch \(stored.loss)")

        let grads = model.gradientSet()
        // The whole model's gradient scale: the largest reference gradient of any parameter.
        let globalScale = stored.grads.values.flatMap(\.data).map(abs).max() ?? 0
        #expect(globalScale > 0)
        var worstTensor = (ratio: 0.0, name: "")
        var worstElement = (rel: 0.0, name: "", index: 0, ours: Float(0), torch: 0.0)
        var worstLoose = (err: 0.0, name: "")
        var zeroTensors: [String] = [], worstOnZero = 0.0
        for name in expectedNames {
            let ref = try #require(stored.grads[name], "fixture lacks gradient \(name)")
            let ours = try #require(grads[name])
            #expect(ours.shape == ref.shape, "\(name): shape \(ours.shape) vs \(ref.shape)")
            guard ours.shape == ref.shape else { continue }
            let scale = ref.data.map(abs).max() ?? 0
            var maxDiff = 0.0
            for (i, (a, b)) in zip(ours.data, ref.data).enumerated() {
                let diff = abs(Double(a) - b)
                maxDiff = max(maxDiff, diff)
                let loose = diff / max(1, abs(b))
                if loose > worstLoose.err { worstLoose = (loose, name) }
                #expect(loose <= Self.gradientTolerance, "\(name)[\(i)]: ours \(a), PyTorch \(b)")
                if scale > Self.zeroFraction * globalScale, b != 0, diff / abs(b) > worstElement.rel {
                    worstElement = (diff / abs(b), name, i, a, b)
                }
            }
            if scale <= Self.zeroFraction * globalScale {
                // A gradient that is zero in exact arithmetic (PyTorch's float64 leaves ~1e-17, our float32
                // ~1e-9): the key bias b_k adds q·b_k to every score of a softmax row, which the softmax
                // ignores. Relative to its own (round-off) scale the comparison is meaningless, so it is
                // held to the tolerance relative to the whole model's gradient scale instead.
                zeroTensors.append(name)
                worstOnZero = max(worstOnZero, maxDiff / globalScale)
                #expect(
                    maxDiff <= Self.gradientTolerance * globalScale,
                    "\(name): PyTorch's gradient is zero (max \(scale)), ours reaches \(maxDiff)")
                continue
            }
            let ratio = maxDiff / scale
            if ratio > worstTensor.ratio { worstTensor = (ratio, name) }
            #expect(
                ratio <= Self.gradientTolerance,
                "\(name): max |Δ| \(maxDiff) is \(ratio) of the tensor's largest gradient \(scale)")
        }
        // Only the key biases may have an identically zero gradient.
        #expect(zeroTensors.allSatisfy { $0.hasSuffix(".b_k") }, "unexpected zero gradients: \(zeroTensors)")
        #expect(zeroTensors.count == (config.attentionBias ? config.encoderLayers + 2 * config.decoderLayers : 0))
        print(
            """
            PyTorch whole-model [\(key)]: \(expectedNames.count) gradient tensors; worst max|Δ|/max|ref| \(worstTensor.ratio) \
            (\(worstTensor.name)); 
            """
                + "worst |Δ|/max(1,|ref|) \(worstLoose.err) (\(worstLoose.name)); worst elementwise |Δ|/|ref| \(worstElement.rel) "
                + "(\(worstElement.name)[\(worstElement.index)]: ours \(worstElement.ours), PyTorch \(worstElement.torch)); "
                    + """
                    \(zeroTensors.count) zero-gradient tensors (b_k), ours within \(worstOnZero) of the model's gradient scale \
                    \(globalScale)
                    """
        )
    }

    /// Guards the comparison itself: with one layer-norm gain moved by 0.05 the gradients
    /// must no longer match, so the tolerance above is not vacuous.
    @Test func perturbedWeightIsDetected() throws {
        let fixture = try Self.fixture()
        let key = Self.keys[0]
        let stored = try #require(fixture.configurations[key])
        let config = Self.config(key)
        var parameters = ParameterSet()
        for name in config.parameterShapes.map(\.0) { parameters.add(name, try #require(stored.params[name]).tensor) }
        let name = "decoder.layers.1.norm3.gamma"
        var w = try #require(parameters[name])
        w.data[0] += 0.05
        try parameters.set(name, w)
        let model = try Seq2SeqModel(config: config, parameters: parameters)
        let batch = fixture.batch.seq2seq
        let acts = Seq2SeqActivations(
            config: config, maxBatch: batch.batchSize, maxSource: batch.sourceLength, maxTarget: batch.targetLength)
        var rng = SeededRNG(seed: 0)
        model.grads.zero()
        model.forward(batch, acts: acts, labelSmoothing: Float(fixture.label_smoothing), rng: &rng)
        model.backward(batch, acts: acts)
        let grads = model.gradientSet()
        let globalScale = stored.grads.values.flatMap(\.data).map(abs).max() ?? 0
        var worst = 0.0
        for n in config.parameterShapes.map(\.0) {
            let ours = try #require(grads[n]), ref = try #require(stored.grads[n])
            let scale = ref.data.map(abs).max() ?? 0
            guard scale > Self.zeroFraction * globalScale else { continue }  // b_k: zero either way
            let diff = zip(ours.data, ref.data).map { abs(Double($0) - $1) }.max() ?? 0
            worst = max(worst, diff / scale)
        }
        print("PyTorch whole-model: with \(name)[0] moved by 0.05, gradients differ by up to \(worst) of their scale")
        #expect(worst > 10 * Self.gradientTolerance, "a 0.05 gain change moved the gradients only \(worst) of their scale")
    }
}
