import Foundation
import TensorKit
import Tokenizers
import ModelFiles

/// Why a BERT / sentence-transformers folder could not be read: one line naming the file and the
/// field or tensor at fault. (Malformed safetensors files give a `SafetensorsError` instead.)
public struct BERTCheckpointError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Hugging Face BERT folders (`config.json` + `model.safetensors`, as `BertModel.save_pretrained`
/// writes them) into `BERTModel`.
///
/// Tensor names are Hugging Face's (`embeddings.word_embeddings.weight`,
/// `encoder.layer.N.attention.self.query.weight`, …), optionally prefixed `bert.`. Linear weights are
/// stored `[out, in]` there and transposed into this project's `[in, out]`.
public enum BERTCheckpoint {
    public static let configFile = "config.json"
    public static let weightsFile = "model.safetensors"

    /// Hugging Face's name, shape and orientation for each of this model's parameters.
    static func huggingFaceNames(_ c: BERTConfig) -> [(hf: String, ours: String, shape: [Int], transpose: Bool)] {
        var out: [(String, String, [Int], Bool)] = []
        for (name, shape) in c.parameterShapes {
            if name.hasPrefix("embeddings.") { out.append((name, name, shape, false)); continue }
            // encoder.layers.L.<part>
            let parts = name.split(separator: ".")
            let l = parts[2], part = parts[3...].joined(separator: ".")
            let hf: String
            switch part {
            case "self_attn.w_q", "self_attn.b_q": hf = "attention.self.query"
            case "self_attn.w_k", "self_attn.b_k": hf = "attention.self.key"
            case "self_attn.w_v", "self_attn.b_v": hf = "attention.self.value"
            case "self_attn.w_o", "self_attn.b_o": hf = "attention.output.dense"
            case "norm1.gamma", "norm1.beta": hf = "attention.output.LayerNorm"
            case "ffn.w1", "ffn.b1": hf = "intermediate.dense"
            case "ffn.w2", "ffn.b2": hf = "output.dense"
            case "norm2.gamma", "norm2.beta": hf = "output.LayerNorm"
            default: preconditionFailure("no Hugging Face name for \(name)")
            }
            let isMatrix = shape.count == 2
            let suffix = isMatrix || part.hasSuffix("gamma") ? "weight" : "bias"
            out.append(("encoder.layer.\(l).\(hf).\(suffix)", name, isMatrix ? [shape[1], shape[0]] : shape, isMatrix))
        }
        return out
    }

    /// Reads a Hugging Face BERT folder. F16/BF16/F64 tensors are converted to Float32. The pooler
    /// (`pooler.*`), task heads (`cls.*`) and the `embeddings.position_ids` buffer are ignored; any
    /// other tensor missing, misshapen or left over is an error naming the tensor, the file and both shapes.
    public static func load(_ directory: URL) throws -> BERTModel {
        let folder = try folder(directory)
        let (configURL, weightsURL) = try mapFolderErrors { (try folder.configFile(), try folder.weightsFile()) }
        let config = try readConfig(configURL)
        let archive = try Safetensors.open(weightsURL)
        let ps = try parameters(from: archive, config: config, configPath: configURL.path)
        do { return try BERTModel(config: config, parameters: ps) } catch let e as ConfigError {
            throw BERTCheckpointError("\(directory.path): \(e.message)")
        }
    }

    static func folder(_ directory: URL) throws -> ModelFolder {
        try mapFolderErrors {
            try ModelFolder(
                directory, kind: "a Hugging Face BERT folder", expected: "config.json, model.safetensors, vocab.txt",
                fetchHint: "scripts/fetch-minilm.sh DIR downloads all-MiniLM-L6-v2")
        }
    }

    /// `body`'s `ModelFolderError` as a `BERTCheckpointError`.
    static func mapFolderErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ModelFolderError { throw BERTCheckpointError(e.message) }
    }

    /// Reads a Hugging Face `BertConfig` file. Needed: `vocab_size`, `hidden_size`, `num_hidden_layers`,
    /// `num_attention_heads`, `intermediate_size`, `max_position_embeddings`. Optional: `type_vocab_size`
    /// (2), `layer_norm_eps` (1e-12), `hidden_act` ("gelu"). Refused: a `model_type` other than "bert",
    /// `position_embedding_type` other than "absolute", a decoder or cross-attention.
    public static func readConfig(_ url: URL) throws -> BERTConfig {
        try readConfig(try mapConfigErrors { try JSONConfigFile(contentsOf: url) })
    }

    /// Same as `readConfig(_:)`, from the file's bytes; `path` names it in errors.
    public static func readConfig(data: Data, path: String) throws -> BERTConfig {
        try readConfig(try mapConfigErrors { try JSONConfigFile(data: data, path: path) })
    }

    /// `body`'s `JSONConfigError` as a `BERTCheckpointError`.
    static func mapConfigErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as JSONConfigError { throw BERTCheckpointError(e.message) }
    }

    static func readConfig(_ f: JSONConfigFile) throws -> BERTConfig {
        let path = f.path
        if let t = f["model_type"], t.string != "bert" {
            throw BERTCheckpointError(f.wrong("model_type", "\"bert\" (other architectures are not supported)").message)
        }
        var c = try mapConfigErrors {
            BERTConfig(
                vocabSize: try f.positiveInt("vocab_size"), dModel: try f.positiveInt("hidden_size"),
                layers: try f.positiveInt("num_hidden_layers"), heads: try f.positiveInt("num_attention_heads"),
                dFF: try f.positiveInt("intermediate_size"), contextLength: try f.positiveInt("max_position_embeddings"))
        }
        try mapConfigErrors {
            if f["type_vocab_size"] != nil { c.typeVocabSize = try f.positiveInt("type_vocab_size") }
            if let eps = try f.positiveFloat("layer_norm_eps") { c.layerNormEps = eps }
            if let act = try f.string("hidden_act") { c.hiddenAct = act }
            if !f.isAbsent("position_embedding_type") && f["position_embedding_type"]?.string != "absolute" {
                throw f.wrong("position_embedding_type", "\"absolute\" (relative position embeddings are not supported)")
            }
            for key in ["is_decoder", "add_cross_attention"] where !f.isAbsent(key) && f[key]?.bool != false {
                throw f.wrong(key, "false (this is an encoder)")
            }
        }
        do { try c.validate() } catch let e as ConfigError { throw BERTCheckpointError("\(path): \(e.message)") }
        return c
    }

    /// Matches the archive's tensors to the config's parameters (see `load`).
    static func parameters(from archive: SafetensorsArchive, config: BERTConfig, configPath: String) throws -> ParameterSet {
        let file = archive.name
        let names = huggingFaceNames(config)
        let wanted = Set(names.map(\.hf))
        var found: [String: String] = [:]
        for name in archive.names {
            let bare = name.hasPrefix("bert.") ? String(name.dropFirst(5)) : name
            if bare.hasPrefix("pooler.") || bare.hasPrefix("cls.") || bare == "embeddings.position_ids" { continue }
            guard wanted.contains(bare) else {
                throw BERTCheckpointError(
                    "\(file): tensor \"\(name)\" is not part of the BERT that \(configPath) describes "
                        + """
                        (num_hidden_layers \(config.layers); expected names like \"encoder.layer.0.attention.self.query.weight\", \
                        with or without \"bert.\")
                        """
                )
            }
            if let other = found[bare] {
                throw BERTCheckpointError("\(file): tensors \"\(other)\" and \"\(name)\" are the same parameter; keep one")
            }
            found[bare] = name
        }
        var ps = ParameterSet()
        for (hf, ours, shape, transpose) in names {
            guard let name = found[hf] else {
                throw BERTCheckpointError(
                    "\(file) has no tensor \"\(hf)\" (with or without \"bert.\"), which \(configPath) needs (shape \(shape))")
            }
            let stored = archive.entry(name)!.shape
            guard stored == shape else {
                throw BERTCheckpointError(
                    "\(file): tensor \"\(name)\" has shape \(stored), but \(configPath) (vocab_size \(config.vocabSize), "
                        + "hidden_size \(config.dModel), intermediate_size \(config.dFF), "
                        + "max_position_embeddings \(config.contextLength), type_vocab_size \(config.typeVocabSize)) needs \(shape)")
            }
            let t = try archive.tensor(name)
            ps.add(ours, transpose ? TensorKit.transpose(t) : t)
        }
        return ps
    }
}

/// A sentence-transformers model folder (all-MiniLM-L6-v2 and its kind): WordPiece tokenizer, BERT
/// encoder, mean pooling, L2 normalisation — `SentenceTransformer.encode`.
///
/// Files read: `config.json`, `model.safetensors`, `vocab.txt` (required); `tokenizer_config.json`
/// (`do_lower_case`, default true), `sentence_bert_config.json` (`max_seq_length`), `modules.json`
/// with its pooling folder's `config.json` (only mean pooling is supported; normalisation when a
/// `Normalize` module is listed). A plain BERT folder without `modules.json` gets mean pooling and
/// normalisation.
public final class SentenceEncoder: @unchecked Sendable {
    public let model: BERTModel
    public let tokenizer: WordPieceTokenizer
    /// Tokens per sentence, `[CLS]` and `[SEP]` included; longer sentences are truncated.
    public let maxLength: Int
    public let normalize: Bool

    /// Loads a sentence-transformers folder: the BERT weights and config, the WordPiece vocabulary,
    /// the tokenizer, pooling and sequence-length settings.
    /// - Parameters:
    ///   - directory: the folder (`config.json`, `model.safetensors`, `vocab.txt`, optionally
    ///     `modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`, `tokenizer_config.json`).
    ///   - maxLength: overrides `max_seq_length` (at most `max_position_embeddings`).
    /// - Throws: `BERTCheckpointError`, `SafetensorsError` or `WordPieceError` with a message naming the file.
    public init(directory: URL, maxLength: Int? = nil) throws {
        let folder = try BERTCheckpoint.folder(directory)
        model = try BERTCheckpoint.load(directory)
        let c = model.config
        let settings = try BERTCheckpoint.mapFolderErrors { try SentenceTransformersSettings(folder) }
        // vocab.txt as sentence-transformers saves it; else a WordPiece tokenizer.json.
        let tokenizerURL: URL
        if folder.has("vocab.txt") {
            tokenizerURL = folder.file("vocab.txt")
            tokenizer = try WordPieceTokenizer(vocabFile: tokenizerURL, lowercase: settings.lowercase)
        } else if folder.has("tokenizer.json") {
            tokenizerURL = folder.file("tokenizer.json")
            let model: TokenizerJSON.Model
            do { model = try TokenizerJSON.read(tokenizerURL) } catch let e as TokenizerError { throw BERTCheckpointError(e.message) }
            guard case .wordPiece(let wp) = model else {
                throw BERTCheckpointError("\(tokenizerURL.path): not a WordPiece tokenizer (BERT needs one)")
            }
            tokenizer = wp
        } else {
            throw BERTCheckpointError("\(directory.path) has no vocab.txt (the WordPiece vocabulary) and no tokenizer.json")
        }
        guard tokenizer.vocabularySize <= c.vocabSize else {
            throw BERTCheckpointError(
                "\(tokenizerURL.path) has \(tokenizer.vocabularySize) pieces, but the model's embedding has \(c.vocabSize) rows (vocab_size)"
            )
        }
        var length = min(settings.maxSeqLength ?? c.contextLength, c.contextLength)
        if let m = maxLength {
            guard m >= 2 && m <= c.contextLength else {
                throw BERTCheckpointError("max length \(m) must be between 2 and the model's max_position_embeddings (\(c.contextLength))")
            }
            length = m
        }
        self.maxLength = length
        self.normalize = settings.normalize
    }

    /// `[CLS]` + word pieces + `[SEP]`, truncated to `maxLength`.
    public func tokenize(_ sentence: String) -> [Int] { tokenizer.encode(sentence, maxLength: maxLength) }

    /// One embedding per sentence, in order. Sentences are sorted by length and run `batchSize` at a
    /// time (padding masked), so a batch holds sentences of similar length, as sentence-transformers does.
    public func encode(_ sentences: [String], batchSize: Int = 32) -> [[Float]] {
        precondition(batchSize >= 1)
        let ids = sentences.map(tokenize)
        let order = ids.indices.sorted { ids[$0].count > ids[$1].count || (ids[$0].count == ids[$1].count && $0 < $1) }
        var out = [[Float]](repeating: [], count: sentences.count)
        guard let longest = order.first else { return out }
        let acts = BERTActivations(config: model.config, maxBatch: min(batchSize, ids.count), maxLength: ids[longest].count)
        var start = 0
        while start < order.count {
            let chunk = Array(order[start..<min(start + batchSize, order.count)])
            let vectors = model.embed(chunk.map { ids[$0] }, acts: acts, normalize: normalize)
            for (k, i) in chunk.enumerated() { out[i] = vectors[k] }
            start += batchSize
        }
        return out
    }
}
