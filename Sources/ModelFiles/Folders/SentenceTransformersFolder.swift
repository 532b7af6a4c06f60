import Foundation

/// What a sentence-transformers folder adds to a BERT folder, read from its small JSON files:
/// `tokenizer_config.json` (case), `sentence_bert_config.json` (`max_seq_length`), `modules.json`
/// (the pipeline: which pooling, whether the vectors are normalised) and the pooling module's
/// `config.json`. Each file is optional; a missing one leaves its default.
public struct SentenceTransformersSettings: Sendable, Equatable {
    /// Lower-case and strip accents before WordPiece (`do_lower_case`; true when absent).
    public var lowercase = true
    /// Tokens per sentence, `[CLS]` and `[SEP]` included (`max_seq_length`; nil when absent).
    public var maxSeqLength: Int?
    /// Whether `modules.json` ends in a `Normalize` module (true when there is no `modules.json`).
    public var normalize = true

    /// The settings of `folder`.
    /// - Throws: `ModelFolderError` naming the file and the field when a file is not JSON, a field has
    ///   the wrong type, or asks for something this project does not implement (a pooling other than the
    ///   mean, accents kept while lower-casing, CJK characters not split).
    public init(_ folder: ModelFolder) throws {
        do { try read(folder) } catch let e as JSONConfigError { throw ModelFolderError(e.message) }
    }

    private mutating func read(_ folder: ModelFolder) throws {
        if folder.has("tokenizer_config.json") {
            let f = try JSONConfigFile(contentsOf: folder.file("tokenizer_config.json"))
            if f["do_lower_case"] != nil {
                guard let b = f["do_lower_case"]?.bool else { throw f.wrong("do_lower_case", "true or false") }
                lowercase = b
            }
            if !f.isAbsent("strip_accents") && f["strip_accents"]?.bool != lowercase {
                throw JSONConfigError("\(f.path): \"strip_accents\" different from \"do_lower_case\" is not supported")
            }
            if f["tokenize_chinese_chars"]?.bool == false {
                throw JSONConfigError("\(f.path): \"tokenize_chinese_chars\": false is not supported")
            }
        }
        if folder.has("sentence_bert_config.json") {
            let f = try JSONConfigFile(contentsOf: folder.file("sentence_bert_config.json"))
            if let v = f["max_seq_length"] {
                guard let i = v.integer, i >= 2 else { throw f.wrong("max_seq_length", "an integer ≥ 2") }
                maxSeqLength = i
            }
        }
        if folder.has("modules.json") {
            let url = folder.file("modules.json")
            let root: JSONNode
            do { root = try JSONScanner().scan(try Data(contentsOf: url)) } catch let e as JSONScanError {
                throw ModelFolderError("\(url.path) is not valid JSON: \(e.description)")
            } catch {
                throw ModelFolderError("\(url.path): cannot read the file: \(error.localizedDescription)")
            }
            guard let items = root.array else { throw ModelFolderError("\(url.path) is not a JSON list of {\"type\", \"path\"} modules") }
            var modules: [(type: String, path: String)] = []
            for (i, item) in items.enumerated() {
                guard let type = item["type"]?.string, let path = item["path"]?.string else {
                    throw ModelFolderError("\(url.path): module \(i) needs \"type\" and \"path\" strings, found \(item.brief)")
                }
                modules.append((type, path))
            }
            normalize = modules.contains { $0.type.hasSuffix(".Normalize") }
            if let pooling = modules.first(where: { $0.type.hasSuffix(".Pooling") }) {
                guard !pooling.path.split(separator: "/").contains("..") else {
                    throw ModelFolderError("\(url.path): the pooling module's path \(quotedForMessage(pooling.path)) leaves the folder")
                }
                let f = try JSONConfigFile(contentsOf: folder.file(pooling.path).appendingPathComponent("config.json"))
                for (key, want) in [
                    ("pooling_mode_mean_tokens", true), ("pooling_mode_cls_token", false), ("pooling_mode_max_tokens", false),
                    ("pooling_mode_mean_sqrt_len_tokens", false)
                ] {
                    if let b = f[key]?.bool, b != want {
                        throw JSONConfigError("\(f.path): \"\(key)\": \(b) is not supported (only mean pooling is implemented)")
                    }
                }
            }
        }
    }
}
