import Foundation
import TensorKit
import TransformerKit

/// A whole recorded computation: what went in (corpus, vocabulary, config, parameters) and every
/// step in order. Every renderer (text, Markdown, LaTeX, HTML, CSV, JSON) and `check` read this.
/// The JSON schema is documented in docs/trace-schema.md.
public struct TraceDocument: Codable, Sendable {
    public var schema: String = "transformer-trace/1"
    public var title: String
    public var config: TransformerConfig
    /// Convention name → how this trace does it (norm placement, activation, …).
    public var conventions: [String: String]
    public var corpus: [String]
    /// All tokens by id; the first `corpusTokenCount` come from the corpus, the rest are specials.
    public var vocabulary: [String]
    public var corpusTokenCount: Int
    public var source: String
    public var target: String
    /// General notes: where the input came from, tokens mapped to `<unk>`, the seed article's errors.
    public var notes: [String]
    public var steps: [TraceStep]
    public var parameters: [TraceParameter]
    /// Present for a GPT trace (`transformer walkthrough --model gpt`): the model's own config, in
    /// Hugging Face's GPT-2 names. `config` then holds the nearest encoder–decoder description
    /// (0 encoder layers, pre-norm, learned positions, tied output) for readers that know only it.
    public var gpt: GPTConfig? = nil

    public init(
        title: String, config: TransformerConfig, conventions: [String: String], corpus: [String], vocabulary: [String],
        corpusTokenCount: Int, source: String, target: String, notes: [String], steps: [TraceStep],
        parameters: [TraceParameter], gpt: GPTConfig? = nil
    ) {
        self.title = title; self.config = config; self.conventions = conventions; self.corpus = corpus
        self.vocabulary = vocabulary; self.corpusTokenCount = corpusTokenCount; self.source = source; self.target = target
        self.notes = notes; self.steps = steps; self.parameters = parameters; self.gpt = gpt
    }

    enum CodingKeys: String, CodingKey {
        case schema, title, config, conventions, corpus, vocabulary, source, target, notes, steps, parameters, gpt
        case corpusTokenCount = "corpus_token_count"
    }

    public func step(_ id: String) -> TraceStep? { steps.first { $0.id == id } }
    public func parameter(_ name: String) -> TraceParameter? { parameters.first { $0.name == name } }

    /// A step's or a parameter's values by id or name.
    public func tensor(_ ref: String) -> Tensor? {
        if let s = step(ref) { return s.tensor }
        return parameter(ref)?.tensor
    }

    // MARK: JSON

    public static func encoder(pretty: Bool = true) -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    public func jsonData(pretty: Bool = true) throws -> Data { try Self.encoder(pretty: pretty).encode(self) }

    public static func load(from url: URL) throws -> TraceDocument {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw WalkthroughError("\(url.path): cannot read the trace file (\(error.localizedDescription))")
        }
        return try load(data: data, name: url.path)
    }

    /// Same as `load(from:)`, from the file's bytes; `name` names it in errors. Besides the JSON's
    /// types, checks that every step's and parameter's shape holds exactly its values (the renderers
    /// and `check` rely on it; a file edited by hand or truncated may not).
    public static func load(data: Data, name: String) throws -> TraceDocument {
        let doc: TraceDocument
        do { doc = try decoder().decode(TraceDocument.self, from: data) } catch {
            throw WalkthroughError("\(name): not a valid trace: \(describeDecodingError(error))")
        }
        if let problem = doc.shapeProblem { throw WalkthroughError("\(name): not a valid trace: \(problem)") }
        return doc
    }

    /// The first step or parameter whose shape does not hold its values (negative or overflowing
    /// sizes included), in one line; nil when all fit.
    public var shapeProblem: String? {
        func fits(_ shape: [Int], _ count: Int) -> Bool {
            var n = 1
            for d in shape {
                guard d >= 0 else { return false }
                let (p, o) = n.multipliedReportingOverflow(by: d)
                guard !o else { return false }
                n = p
            }
            return n == count
        }
        func text(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
        for s in steps where !fits(s.shape, s.values.count) {
            return "step \"\(s.id)\" has shape \(text(s.shape)) but \(s.values.count) values"
        }
        for p in parameters where !fits(p.shape, p.values.count) {
            return "parameter \"\(p.name)\" has shape \(text(p.shape)) but \(p.values.count) values"
        }
        return nil
    }
}

/// An error with a message meant for the person at the terminal.
public struct WalkthroughError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One line saying where in a JSON document decoding failed and what was expected.
public func describeDecodingError(_ error: Error) -> String {
    func path(_ keys: [CodingKey]) -> String {
        let s = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return s.isEmpty ? "the top level" : String(s.drop(while: { $0 == "." }))
    }
    switch error {
    case DecodingError.dataCorrupted(let c):
        if let u = c.underlyingError as NSError?, let d = u.userInfo["NSDebugDescription"] as? String {
            return "malformed JSON at \(path(c.codingPath)): \(d)"
        }
        return "malformed JSON at \(path(c.codingPath)): \(c.debugDescription)"
    case DecodingError.keyNotFound(let k, let c):
        return "missing field \"\(k.stringValue)\" in \(path(c.codingPath))"
    case DecodingError.typeMismatch(let t, let c):
        return "field \(path(c.codingPath)): expected \(t)"
    case DecodingError.valueNotFound(let t, let c):
        return "field \(path(c.codingPath)): expected \(t), found null"
    default:
        return "\(error)"
    }
}
