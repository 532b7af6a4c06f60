import Foundation
import TensorKit
import TransformerKit
import Tokenizers

/// A JSON file of weights a user types in (for example from an article), applied over seeded ones.
///
///     {
///       "description": "…",
///       "config": { "d_model": 6, "heads": 1, "d_k": 4, "d_ff": 6 },
///       "parameters": { "encoder.layers.0.self_attn.w_q": [[0.27, 0.38, 0.75, 0.94], …] },
///       "embedding_rows": { "src_embed": { "马": [0.68, 0.13, 0.27, 0.38, 0.75, 0.94] } }
///     }
///
/// Matrices are lists of rows, `[in, out]` (x · W); vectors are plain lists. Parameters not named
/// keep their seeded values. Names and shapes are checked against the model.
public struct WeightsFile: Decodable, Sendable {
    public struct ConfigPatch: Decodable, Sendable {
        var dModel: Int?, heads: Int?, dK: Int?, dFF: Int?, encoderLayers: Int?, decoderLayers: Int?
        var norm: NormPlacement?, activation: Activation?, positions: PositionKind?, embeddings: EmbeddingSharing?
        var scaleEmbeddings: Bool?, attentionBias: Bool?
        enum CodingKeys: String, CodingKey {
            case dModel = "d_model", heads, dK = "d_k", dFF = "d_ff", encoderLayers = "encoder_layers", decoderLayers = "decoder_layers"
            case norm, activation, positions, embeddings, scaleEmbeddings = "scale_embeddings", attentionBias = "attention_bias"
        }
        func apply(to c: inout TransformerConfig) {
            if let dModel { c.dModel = dModel }
            if let heads { c.heads = heads }
            if let dK { c.explicitHeadSize = dK }
            if let dFF { c.dFF = dFF }
            if let encoderLayers { c.encoderLayers = encoderLayers }
            if let decoderLayers { c.decoderLayers = decoderLayers }
            if let norm { c.norm = norm }
            if let activation { c.activation = activation }
            if let positions { c.positions = positions }
            if let embeddings { c.embeddings = embeddings }
            if let scaleEmbeddings { c.scaleEmbeddings = scaleEmbeddings }
            if let attentionBias { c.attentionBias = attentionBias }
        }
    }

    /// A matrix (list of rows) or a vector.
    enum Values: Decodable, Sendable {
        case vector([Float]), matrix([[Float]])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode([Float].self) { self = .vector(v); return }
            self = .matrix(try c.decode([[Float]].self))
        }
    }

    public var description: String?
    public var config: ConfigPatch?
    var parameters: [String: Values]?
    var embeddingRows: [String: [String: [Float]]]?
    /// Marks the bundled file with seed 002's numbers, so its notes are shown.
    public var isArticle: Bool?

    enum CodingKeys: String, CodingKey {
        case description, config, parameters, embeddingRows = "embedding_rows", isArticle = "article"
    }

    public static func load(from url: URL) throws -> WeightsFile {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw WalkthroughError("\(url.path): cannot read the weights file (\(error.localizedDescription))")
        }
        do { return try JSONDecoder().decode(WeightsFile.self, from: data) } catch {
            throw WalkthroughError("\(url.path): not a valid weights file: \(describeDecodingError(error))")
        }
    }

    /// Writes the named values over `params`, checking every name and shape.
    public func apply(to params: inout ParameterSet, vocabulary: Vocabulary, file: String) throws {
        for (name, values) in (parameters ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let old = params[name] else {
                throw WalkthroughError(
                    "\(file): parameters.\(name): no such parameter in this model (known: \(params.names.joined(separator: ", ")))")
            }
            let t: Tensor
            switch values {
            case .vector(let v):
                t = Tensor(shape: [v.count], data: v)
            case .matrix(let rows):
                let cols = rows.first?.count ?? 0
                if let bad = rows.firstIndex(where: { $0.count != cols }) {
                    throw WalkthroughError("\(file): parameters.\(name): row \(bad + 1) has \(rows[bad].count) values, row 1 has \(cols)")
                }
                t = Tensor(shape: [rows.count, cols], data: rows.flatMap { $0 })
            }
            guard t.shape == old.shape else {
                throw WalkthroughError(
                    "\(file): parameters.\(name): shape \(t.shape.map(String.init).joined(separator: "×")), the model needs \(old.shape.map(String.init).joined(separator: "×"))"
                )
            }
            try params.set(name, t)
        }
        for (table, rows) in (embeddingRows ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard var t = params[table], t.shape.count == 2 else {
                throw WalkthroughError("\(file): embedding_rows.\(table): no such embedding table (use src_embed or tgt_embed)")
            }
            for (token, row) in rows.sorted(by: { $0.key < $1.key }) {
                guard let id = vocabulary.id(token) else {
                    throw WalkthroughError("\(file): embedding_rows.\(table).\(token): the token is not in the vocabulary")
                }
                guard row.count == t.cols else {
                    throw WalkthroughError("\(file): embedding_rows.\(table).\(token): \(row.count) values, d_model is \(t.cols)")
                }
                for c in 0..<t.cols { t[id, c] = row[c] }
            }
            try params.set(table, t)
        }
    }
}
