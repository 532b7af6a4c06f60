import Foundation
import TensorKit
import TransformerKit

/// What a worksheet is made from. Generation is deterministic: the same spec gives the same numbers,
/// which is how a filled Markdown or LaTeX worksheet is graded (its first lines carry the spec).
public struct WorksheetSpec: Codable, Sendable, Equatable {
    /// Topic names (`ExerciseTopic` raw values), or `["all"]`; empty with a preset.
    public var topics: [String]
    /// `yeh-ffn` (the by-hand posts: attention weighting, then a 3→4→3 FFN on 5 positions) or
    /// `article` (seed 002's corpus and sentence pair, through the walkthrough's own trace).
    public var preset: String?
    public var seed: UInt64
    /// Small integers chosen so every exact answer has at most 2 decimals.
    public var integers: Bool
    /// `all`, a count, or step ids separated by commas.
    public var blanks: String

    public init(topics: [String], preset: String? = nil, seed: UInt64 = 1, integers: Bool = true, blanks: String = "all") {
        self.topics = topics; self.preset = preset; self.seed = seed; self.integers = integers; self.blanks = blanks
    }

    /// One line of JSON, as written into a worksheet's header.
    public var line: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// One value to fill in: a step of the worksheet's trace.
public struct WorksheetBlank: Codable, Sendable, Equatable {
    public var number: Int
    public var step: String
    /// Decimals asked for (`nil`: the exact value, which has at most 2 decimals on an integer worksheet).
    public var decimals: Int?
    /// Accepted distance from the key, per value.
    public var tolerance: Float
}

/// A part of the worksheet: one topic (or the preset's chain), its givens and its steps in order.
public struct WorksheetSection: Codable, Sendable, Equatable {
    public var title: String
    public var intro: String
    /// Parameter names shown as given.
    public var givens: [String]
    /// Steps shown as given (never asked): the article preset's embeddings.
    public var givenSteps: [String] = []
    /// Step ids shown, in order: blanks and worked steps (rounding steps are not shown).
    public var steps: [String]
}

/// A worksheet: sections of given matrices and steps to compute, whose answers are a trace.
public struct Worksheet: Codable, Sendable {
    public var schema = "transformer-worksheet/1"
    public var spec: WorksheetSpec
    public var title: String
    public var sections: [WorksheetSection]
    public var blanks: [WorksheetBlank]
    /// The answer key: every step, recomputable from the parameters (see `replay`).
    public var trace: TraceDocument
    /// The JSON form's place for a person's answers: step id → rows of numbers (null = not filled).
    public var answers: [String: [[AnswerCell]]]?

    public func blank(_ step: String) -> WorksheetBlank? { blanks.first { $0.step == step } }

    /// Decimals a step's values are shown with (blank or worked).
    public func displayDecimals(_ step: TraceStep) -> Int {
        if let b = blank(step.id), let d = b.decimals { return d }
        return spec.integers ? 2 : 4
    }

    /// Steps whose values a person can only approximate (e, sine, logarithm): asked to 2 decimals on
    /// an integer worksheet; a `round` step carries the rounded values on.
    static let roundedOps: Set<TraceOp> = [.softmax, .positionalEncoding, .crossEntropy, .softmaxCrossEntropyGrad]
    /// Steps never asked for: copies, splits and the rounding a person does in their head.
    static let notAsked: Set<TraceOp> = [.round, .input, .splitHeads, .concat]
}

/// A cell of a JSON answer: a number, a string such as "-inf", or null (not filled).
public enum AnswerCell: Codable, Sendable, Equatable {
    case number(Double), text(String), empty

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .empty
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else {
            self = .text(try c.decode(String.self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .number(let d): try c.encode(d)
        case .text(let s): try c.encode(s)
        case .empty: try c.encodeNil()
        }
    }
}

// MARK: Generation

extension Worksheet {
    public static let presets = ["yeh-ffn", "article"]

    /// Builds the worksheet `spec` describes. `article` supplies the walkthrough's trace for the
    /// `article` preset (the CLI computes it with seed 002's weights).
    public static func generate(_ spec: WorksheetSpec, article: (() throws -> TraceDocument)? = nil) throws -> Worksheet {
        var rng = SeededRNG(seed: spec.seed &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        let tracer = Tracer()
        var sections: [WorksheetSection] = []
        var title: String
        var doc: TraceDocument
        if let preset = spec.preset {
            guard spec.topics.isEmpty else { throw WalkthroughError("give --topic or --preset, not both") }
            switch preset {
            case "yeh-ffn":
                title = "Transformer by hand: attention weighting, then the feed-forward network"
                sections.append(
                    try section(
                        [.attentionWeighting, .ffn], prefix: "yeh", title: "Attention weighting and the feed-forward network",
                        integers: spec.integers, rng: &rng, tracer: tracer, yeh: true))
            case "article":
                guard let article else { throw WalkthroughError("the article preset needs the walkthrough's trace") }
                return try articleWorksheet(spec, article())
            default:
                throw WalkthroughError("unknown preset \"\(preset)\"; known presets: \(presets.joined(separator: ", "))")
            }
        } else {
            let topics = try resolveTopics(spec.topics)
            title = topics.count == 1 ? "Worksheet: \(topics[0].title)" : "Worksheet: the Transformer by hand"
            for t in topics {
                sections.append(try section([t], prefix: t.rawValue, title: t.title, integers: spec.integers, rng: &rng, tracer: tracer))
            }
        }
        var config = TransformerConfig()
        config.dModel = 3
        doc = TraceDocument(
            title: title, config: config, conventions: [:], corpus: [], vocabulary: [], corpusTokenCount: 0, source: "", target: "",
            notes: [], steps: tracer.steps, parameters: tracer.parameters)
        var sheet = Worksheet(spec: spec, title: title, sections: sections, blanks: [], trace: doc, answers: nil)
        sheet.blanks = try chooseBlanks(sheet)
        return sheet
    }

    /// Seed 002's encoder, first layer: positional encoding to the attention output, on the
    /// walkthrough's own trace (`--weights article`), so the key is the walkthrough's numbers.
    static func articleWorksheet(_ spec: WorksheetSpec, _ doc: TraceDocument) throws -> Worksheet {
        var spec = spec
        spec.integers = false
        let a = "enc0.self_attn"
        let steps = ["src.pe", "src.x", "\(a).q", "\(a).k", "\(a).v", "\(a).scores", "\(a).scaled", "\(a).weights", "\(a).context"]
        guard steps.allSatisfy({ doc.step($0) != nil }), doc.step("src.embed") != nil else {
            throw WalkthroughError("the walkthrough's trace lacks the encoder steps the article preset asks for")
        }
        let p = "encoder.layers.0.self_attn"
        let givens = ["\(p).w_q", "\(p).w_k", "\(p).w_v"].filter { doc.parameter($0) != nil }
        let section = WorksheetSection(
            title: "Seed 002: \(doc.source) → the encoder's first attention",
            intro: """
                The article's corpus and sentence pair, with the weights the walkthrough prints for it (seed 002's numbers where the \
                article gives them). Start from the word embeddings: add the positional encoding, project to Q, K and V, and follow \
                one attention step to its output. A calculator helps: the numbers have 4 decimals.
                """,
            givens: givens, givenSteps: ["src.embed"], steps: steps)
        var sheet = Worksheet(
            spec: spec, title: "Worksheet: seed 002's example by hand", sections: [section], blanks: [], trace: doc, answers: nil)
        sheet.blanks = try chooseBlanks(sheet)
        return sheet
    }

    static func resolveTopics(_ names: [String]) throws -> [ExerciseTopic] {
        guard !names.isEmpty else { throw WalkthroughError("give a topic (--topic ffn, …, or all) or a preset") }
        if names == ["all"] { return ExerciseTopic.allCases }
        if let twice = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
            throw WalkthroughError("the topic \"\(twice)\" is given twice")
        }
        return try names.map { n in
            guard let t = ExerciseTopic(rawValue: n) else {
                throw WalkthroughError(
                    "unknown topic \"\(n)\"; topics: \(ExerciseTopic.allCases.map(\.rawValue).joined(separator: ", ")), all")
            }
            return t
        }
    }

    /// The steps that can be blanks, in order.
    public var candidates: [TraceStep] {
        let shown = Set(sections.flatMap(\.steps))
        return trace.steps.filter { shown.contains($0.id) && !Self.notAsked.contains($0.op) }
    }

    static func chooseBlanks(_ sheet: Worksheet) throws -> [WorksheetBlank] {
        let cands = sheet.candidates
        var chosen: [TraceStep]
        let spec = sheet.spec.blanks.trimmingCharacters(in: .whitespaces)
        if spec == "all" || spec.isEmpty {
            chosen = cands
        } else if let n = Int(spec) {
            guard n >= 1, n <= cands.count else {
                throw WalkthroughError("--blanks \(n): this worksheet has 1 to \(cands.count) steps to ask for")
            }
            var rng = SeededRNG(seed: sheet.spec.seed ^ 0xB1A9_C5)
            var pool = Array(cands.indices)
            var picked: [Int] = []
            for _ in 0..<n { picked.append(pool.remove(at: rng.nextInt(below: pool.count))) }
            chosen = picked.sorted().map { cands[$0] }
        } else {
            let ids = spec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            chosen = try ids.map { id in
                guard let s = cands.first(where: { $0.id == id }) else {
                    throw WalkthroughError("--blanks: no step \"\(id)\" to ask for; steps: \(cands.map(\.id).joined(separator: ", "))")
                }
                return s
            }
            chosen.sort { a, b in cands.firstIndex { $0.id == a.id }! < cands.firstIndex { $0.id == b.id }! }
        }
        return chosen.enumerated().map { i, s in
            let rounded = Self.roundedOps.contains(s.op)
            let decimals: Int? = sheet.spec.integers ? (rounded ? 2 : nil) : 4
            // An exact answer must be exact; a rounded one may round either way; on a decimal worksheet
            // the values carried on from rounded steps drift a little.
            let tol: Float = sheet.spec.integers ? (rounded ? 0.0051 : 0.001) : 0.0011
            return WorksheetBlank(number: i + 1, step: s.id, decimals: decimals, tolerance: tol)
        }
    }
}
