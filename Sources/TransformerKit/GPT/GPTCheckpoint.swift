import Foundation
import TensorKit
import ModelFiles

/// Why a Hugging Face GPT-2 folder could not be read or written: one line naming the file and the
/// field or tensor at fault. (Malformed safetensors files give a `SafetensorsError` instead.)
public struct GPTCheckpointError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Hugging Face GPT-2 folders (`config.json` + `model.safetensors`, as `GPT2LMHeadModel.save_pretrained`
/// writes them) in and out of `GPTModel`.
///
/// The tensor names are GPT-2's (`GPTConfig.parameterShapes`), optionally prefixed `transformer.`.
/// GPT-2's Conv1D stores weights `[in, out]`, this project's orientation, so nothing is transposed.
public enum GPTCheckpoint {
    public static let configFile = "config.json"
    public static let weightsFile = "model.safetensors"
    static let prefix = "transformer."

    // MARK: Loading

    /// Reads a Hugging Face GPT-2 folder. F16/BF16/F64 tensors are converted to Float32.
    /// `lm_head.weight` is accepted only when it equals `wte.weight` (this model ties them);
    /// the attention-mask buffers `h.N.attn.bias` / `h.N.attn.masked_bias` are ignored.
    /// Any tensor missing, misshapen or left over is an error naming the tensor, the file and both shapes.
    public static func loadHuggingFace(_ directory: URL) throws -> GPTModel {
        func mapped<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as ModelFolderError { throw GPTCheckpointError(e.message) }
        }
        let folder = try mapped {
            try ModelFolder(directory, kind: "a Hugging Face GPT-2 folder", expected: "config.json + model.safetensors")
        }
        let configURL = try mapped { try folder.configFile() }
        let config = try readConfig(configURL)  // a bad config is reported before a missing weights file
        let weightsURL = try mapped { try folder.weightsFile() }
        let archive = try Safetensors.open(weightsURL)
        let parameters = try parameters(from: archive, config: config, configPath: configURL.path)
        let model: GPTModel
        do {
            model = try GPTModel(config: config, parameters: parameters)
        } catch let e as ConfigError {
            throw GPTCheckpointError("\(directory.path): \(e.message)")
        }
        // A NaN or an infinity in a weight would poison every output: name the tensor instead.
        for e in model.layout.entries {
            let p = model.params.pointer + e.offset
            var bad = 0, first: Float = 0
            for i in 0..<e.count where !p[i].isFinite { if bad == 0 { first = p[i] }; bad += 1 }
            if bad > 0 {
                throw GPTCheckpointError(
                    "\(weightsURL.path): tensor \(e.name) holds \(first.isNaN ? "NaN" : "\(first)") (\(bad) of \(e.count) values non-finite)"
                )
            }
        }
        return model
    }

    /// Reads a Hugging Face `GPT2Config` file. Needed: `vocab_size`, `n_positions`, `n_embd`, `n_layer`,
    /// `n_head`. Optional: `n_inner` (null or missing = 4 · n_embd), `layer_norm_epsilon` (default 1e-5)
    /// and `activation_function` (default gelu_new), as in `GPT2Config`. Other keys are ignored, except
    /// those that would change the computation in ways this model does not implement.
    public static func readConfig(_ url: URL) throws -> GPTConfig {
        do { return try readConfig(JSONConfigFile(contentsOf: url)) } catch let e as JSONConfigError {
            throw GPTCheckpointError(e.message)
        }
    }

    /// Same as `readConfig(_:)`, from the file's bytes; `path` names it in errors.
    public static func readConfig(data: Data, path: String) throws -> GPTConfig {
        do { return try readConfig(JSONConfigFile(data: data, path: path)) } catch let e as JSONConfigError {
            throw GPTCheckpointError(e.message)
        }
    }

    static func readConfig(_ f: JSONConfigFile) throws -> GPTConfig {
        let path = f.path
        var config = GPTConfig(
            vocabSize: try f.positiveInt("vocab_size"), contextLength: try f.positiveInt("n_positions"),
            dModel: try f.positiveInt("n_embd"), layers: try f.positiveInt("n_layer"), heads: try f.positiveInt("n_head"))
        config.explicitDFF = try f.optionalPositiveInt("n_inner")
        if let eps = try f.positiveFloat("layer_norm_epsilon") { config.layerNormEps = eps }
        if let a = try f.string("activation_function") { config.activation = a }
        // GPT2Config switches that change the arithmetic; refuse rather than compute something else.
        let unsupported: [(String, Bool)] = [
            ("scale_attn_weights", true), ("scale_attn_by_inverse_layer_idx", false), ("add_cross_attention", false)
        ]
        for (key, supported) in unsupported {
            if let b = try f.bool(key), b != supported {
                throw GPTCheckpointError("\(path): \"\(key)\": \(b) is not supported (this model implements \(supported))")
            }
        }
        do { try config.validate() } catch let e as ConfigError {
            throw GPTCheckpointError("\(path): \(e.message)")
        }
        return config
    }

    /// Matches the archive's tensors to the config's parameters (see `loadHuggingFace`).
    static func parameters(from archive: SafetensorsArchive, config: GPTConfig, configPath: String) throws -> ParameterSet {
        let file = archive.name
        let shapes = config.parameterShapes
        let wanted = Set(shapes.map(\.0))
        // Bare name → name in the file.
        var found: [String: String] = [:]
        var lmHead: String?
        for name in archive.names {
            let bare = name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : name
            if bare == "lm_head.weight" { lmHead = name; continue }
            let parts = bare.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count == 4, parts[0] == "h", parts[2] == "attn", parts[3] == "bias" || parts[3] == "masked_bias",
                let l = Int(parts[1]), l >= 0, l < config.layers
            {
                continue
            }
            guard wanted.contains(bare) else {
                throw GPTCheckpointError(
                    "\(file): tensor \"\(name)\" is not part of the GPT-2 that \(configPath) describes "
                        + """
                        (n_layer \(config.layers); expected names like \"\(prefix)h.0.attn.c_attn.weight\", with or without \
                        \"\(prefix)\")
                        """
                )
            }
            if let other = found[bare] {
                throw GPTCheckpointError("\(file): tensors \"\(other)\" and \"\(name)\" are the same parameter; keep one")
            }
            found[bare] = name
        }
        var ps = ParameterSet()
        for (bare, shape) in shapes {
            guard let name = found[bare] else {
                throw GPTCheckpointError(
                    "\(file) has no tensor \"\(bare)\" (with or without \"\(prefix)\"), which \(configPath) needs (shape \(shape))")
            }
            let stored = archive.entry(name)!.shape
            guard stored == shape else {
                throw GPTCheckpointError(
                    "\(file): tensor \"\(name)\" has shape \(stored), but \(configPath) "
                        + """
                        (vocab_size \(config.vocabSize), n_positions \(config.contextLength), n_embd \(config.dModel), n_inner \
                        \(config.dFF)) needs \(shape)
                        """
                )
            }
            ps.add(bare, try archive.tensor(name))
        }
        if let lmHead {
            let wte = ps["wte.weight"]!
            let stored = archive.entry(lmHead)!.shape
            guard stored == wte.shape, try archive.tensor(lmHead).data == wte.data else {
                throw GPTCheckpointError(
                    "\(file): tensor \"\(lmHead)\" (shape \(stored)) differs from \"\(found["wte.weight"]!)\" (shape \(wte.shape)); "
                        + "this model ties the output layer to the token embedding, so an untied lm_head cannot be loaded")
            }
        }
        return ps
    }

    // MARK: Saving

    /// Writes `config.json` and `model.safetensors` (names prefixed `transformer.`, `lm_head.weight` left
    /// out as tied, metadata `format: pt`) into `directory`, creating it if needed. Each file is replaced
    /// atomically. `transformers.GPT2LMHeadModel.from_pretrained(directory)` loads the result.
    public static func saveHuggingFace(_ model: GPTModel, to directory: URL) throws {
        let fm = FileManager.default
        do { try fm.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw GPTCheckpointError("cannot create \(directory.path): \(error.localizedDescription)")
        }
        let ps = model.parameterSet()
        let tensors = ps.names.map { (prefix + $0, ps[$0]!) }
        try Safetensors.write(tensors, metadata: ["format": "pt"], to: directory.appendingPathComponent(weightsFile))
        let configURL = directory.appendingPathComponent(configFile)
        do { try Data(configJSON(model.config).utf8).write(to: configURL, options: .atomic) } catch {
            throw GPTCheckpointError("cannot write \(configURL.path): \(error.localizedDescription)")
        }
    }

    /// `config.json` for `GPT2LMHeadModel`, keys sorted as `save_pretrained` writes them. No dropout
    /// (this model has none). Token 0 … vocab_size-1: the last id is named as bos/eos, as in GPT-2.
    static func configJSON(_ c: GPTConfig) -> String {
        let eps = "\(c.layerNormEps)"  // shortest decimal that reads back as the same Float
        let fields: [(String, String)] = [
            ("activation_function", jsonString(c.activation)),
            ("architectures", "[\n    \"GPT2LMHeadModel\"\n  ]"),
            ("attn_pdrop", "0.0"),
            ("bos_token_id", "\(c.vocabSize - 1)"),
            ("dtype", "\"float32\""),
            ("embd_pdrop", "0.0"),
            ("eos_token_id", "\(c.vocabSize - 1)"),
            ("layer_norm_epsilon", eps.contains(".") || eps.contains("e") ? eps : eps + ".0"),
            ("model_type", "\"gpt2\""),
            ("n_ctx", "\(c.contextLength)"),
            ("n_embd", "\(c.dModel)"),
            ("n_head", "\(c.heads)"),
            ("n_inner", c.explicitDFF.map { "\($0)" } ?? "null"),
            ("n_layer", "\(c.layers)"),
            ("n_positions", "\(c.contextLength)"),
            ("resid_pdrop", "0.0"),
            ("scale_attn_by_inverse_layer_idx", "false"),
            ("scale_attn_weights", "true"),
            ("tie_word_embeddings", "true"),
            ("vocab_size", "\(c.vocabSize)")
        ]
        return "{\n" + fields.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
    }
}
