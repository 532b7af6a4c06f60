import Foundation

/// Why a model folder could not be used: one line naming the folder or file and what was expected.
public struct ModelFolderError: Error, CustomStringConvertible, Sendable {
    /// One line, for the user.
    public var message: String
    /// Makes an error with a one-line message.
    public init(_ message: String) { self.message = message }
    /// The message, as is.
    public var description: String { message }
}

/// A Hugging Face model folder, as `save_pretrained` writes it for GPT-2 and BERT:
/// `config.json`, `model.safetensors`, and a tokenizer (`tokenizer.json`, GPT-2's `vocab.json` +
/// `merges.txt`, or BERT's `vocab.txt`).
///
/// It finds the files and says what is missing, with a hint when a known alternative is there
/// instead (a sharded checkpoint, `pytorch_model.bin`); reading each file is its format's business.
public struct ModelFolder: Sendable {
    /// The folder.
    public let url: URL
    /// What the folder should be, for messages: "a Hugging Face GPT-2 folder".
    public let kind: String
    /// Its files, for messages: "config.json + model.safetensors".
    public let expected: String

    /// Checks that `url` is a folder.
    /// - Parameters:
    ///   - url: The folder.
    ///   - kind: What the folder should be, for messages ("a Hugging Face BERT folder").
    ///   - expected: The files it should hold, for messages ("config.json, model.safetensors, vocab.txt").
    ///   - fetchHint: How to get one, added when the folder does not exist ("scripts/fetch-minilm.sh DIR …").
    /// - Throws: `ModelFolderError` when the path does not exist or is a file.
    public init(_ url: URL, kind: String, expected: String, fetchHint: String? = nil) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ModelFolderError("\(url.path) does not exist (expected \(kind): \(expected)\(fetchHint.map { "; \($0)" } ?? ""))")
        }
        guard isDir.boolValue else { throw ModelFolderError("\(url.path) is a file, not a model folder (expected \(kind))") }
        self.url = url
        self.kind = kind
        self.expected = expected
    }

    /// The file `name` in the folder (which may not exist).
    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// Whether the folder holds `name`.
    public func has(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name).path) }

    /// `config.json`.
    /// - Throws: `ModelFolderError` when it is missing.
    public func configFile() throws -> URL {
        guard has("config.json") else { throw ModelFolderError("\(url.path) has no config.json (expected \(kind): \(expected))") }
        return file("config.json")
    }

    /// `model.safetensors`.
    /// - Throws: `ModelFolderError` when it is missing, saying what is there instead when that is a
    ///   sharded checkpoint or a PyTorch pickle.
    public func weightsFile() throws -> URL {
        let weights = file("model.safetensors")
        guard has("model.safetensors") else {
            var hint = ""
            if has("model.safetensors.index.json") {
                hint = " (sharded checkpoints, model.safetensors.index.json, are not supported)"
            } else if has("pytorch_model.bin") {
                hint = " (only pytorch_model.bin is there; re-save it with save_pretrained(dir, safe_serialization=True))"
            }
            throw ModelFolderError("\(weights.path) does not exist\(hint)")
        }
        return weights
    }

    /// The tokenizer files a folder may hold, in the order a reader should try them.
    public enum TokenizerFiles: Sendable, Equatable {
        /// A `tokenizer.json` (Hugging Face's, or this project's in Hugging Face's schema).
        case tokenizerJSON(URL)
        /// GPT-2's `vocab.json` and `merges.txt`.
        case vocabAndMerges(vocab: URL, merges: URL)
        /// BERT's `vocab.txt`.
        case wordPieceVocab(URL)
    }

    /// The tokenizers present: `tokenizer.json` first, then `vocab.json` + `merges.txt`, then `vocab.txt`.
    public var tokenizerFiles: [TokenizerFiles] {
        var out: [TokenizerFiles] = []
        if has("tokenizer.json") { out.append(.tokenizerJSON(file("tokenizer.json"))) }
        if has("vocab.json") && has("merges.txt") { out.append(.vocabAndMerges(vocab: file("vocab.json"), merges: file("merges.txt"))) }
        if has("vocab.txt") { out.append(.wordPieceVocab(file("vocab.txt"))) }
        return out
    }
}
