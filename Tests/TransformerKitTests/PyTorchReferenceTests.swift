import Foundation
import Testing
import TensorKit
import TransformerKit

/// One encoder layer and one decoder layer, post-norm and pre-norm, against
/// `torch.nn.TransformerEncoderLayer` / `TransformerDecoderLayer` (ReLU, dropout 0, attention biases).
///
/// The fixture `Fixtures/pytorch_layers.json` is written by `Fixtures/make_pytorch_layers.py`
/// (not run in CI): every parameter randomised, weights already converted to our names and our
/// `[in, out]` layout, plus torch's input(s) and output for each layer.
@Suite struct PyTorchReferenceTests {
    struct Fixture: Decodable {
        var torch_version: String
        var layers: [String: Layer]
    }

    struct Layer: Decodable {
        var layer: String
        var norm: String
        var params: [String: StoredTensor]
        var x: StoredTensor
        var memory: StoredTensor?
        var output: StoredTensor
    }

    /// Values are float32 numbers written as JSON doubles; decoded as Double, then rounded to Float (exact).
    struct StoredTensor: Decodable {
        var shape: [Int]
        var data: [Double]
        var tensor: Tensor { Tensor(shape: shape, data: data.map(Float.init)) }
    }

    /// The largest difference allowed between our float32 reference path and torch's float32 kernels.
    static let tolerance: Float = 1e-5

    func fixture() throws -> Fixture {
        let url = try #require(
            Bundle.module.url(forResource: "pytorch_layers", withExtension: "json", subdirectory: "Fixtures"),
            "Fixtures/pytorch_layers.json is missing from the test bundle")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func config(norm: NormPlacement) -> TransformerConfig {
        var c = TransformerConfig()
        c.dModel = 8; c.heads = 2; c.dFF = 16
        c.encoderLayers = 1; c.decoderLayers = 1
        c.attentionBias = true
        c.norm = norm
        c.activation = .relu
        c.sourceVocabSize = 10; c.targetVocabSize = 10
        c.embeddings = .separate
        c.layerNormEps = 1e-5
        return c
    }

    /// A model whose layer-0 parameters are the fixture's. Every layer parameter of the config
    /// must come from the fixture (only embeddings, output projection and final norms may not).
    func model(_ layer: Layer, norm: NormPlacement) throws -> TracedEncoderDecoder {
        var m = try TracedEncoderDecoder(config: config(norm: norm), seed: 1)
        for (name, stored) in layer.params { try m.parameters.set(name, stored.tensor) }
        let prefix = "\(layer.layer).layers.0."
        let needed = m.config.parameterShapes.map(\.0).filter { $0.hasPrefix(prefix) }
        let missing = needed.filter { layer.params[$0] == nil }
        #expect(missing.isEmpty, "fixture lacks \(missing)")
        #expect(needed.count == layer.params.count)
        return m
    }

    func layer(_ key: String) throws -> Layer {
        try #require(try fixture().layers[key], "fixture has no layer \(key)")
    }

    @Test(arguments: [NormPlacement.post, .pre])
    func encoderLayerMatchesPyTorch(norm: NormPlacement) throws {
        let l = try layer("encoder_\(norm.rawValue)")
        #expect(l.layer == "encoder" && l.norm == norm.rawValue)
        let m = try model(l, norm: norm)
        let y = m.encoderLayer(l.x.tensor, layer: 0)
        let diff = y.maxAbsDifference(l.output.tensor)
        print("PyTorch reference: encoder layer, \(norm.rawValue)-norm: max |Δ| = \(diff)")
        #expect(diff <= Self.tolerance, "encoder layer (\(norm.rawValue)-norm) differs from torch by \(diff)")
    }

    @Test(arguments: [NormPlacement.post, .pre])
    func decoderLayerMatchesPyTorch(norm: NormPlacement) throws {
        let l = try layer("decoder_\(norm.rawValue)")
        #expect(l.layer == "decoder" && l.norm == norm.rawValue)
        let memory = try #require(l.memory, "decoder fixture has no memory")
        let m = try model(l, norm: norm)
        let y = m.decoderLayer(l.x.tensor, memory: memory.tensor, layer: 0)
        let diff = y.maxAbsDifference(l.output.tensor)
        print("PyTorch reference: decoder layer, \(norm.rawValue)-norm: max |Δ| = \(diff)")
        #expect(diff <= Self.tolerance, "decoder layer (\(norm.rawValue)-norm) differs from torch by \(diff)")
    }

    /// Guards the test itself: with one weight transposed (the classic PyTorch-import mistake)
    /// the encoder layer must no longer match, so the comparison above is not vacuous.
    @Test func transposedWeightIsDetected() throws {
        let l = try layer("encoder_post")
        var m = try model(l, norm: .post)
        let name = "encoder.layers.0.self_attn.w_q"
        try m.parameters.set(name, transpose(try #require(m.parameters[name])))
        let diff = m.encoderLayer(l.x.tensor, layer: 0).maxAbsDifference(l.output.tensor)
        #expect(diff > 1e-2)
    }
}
