import Walkthrough

/// What the explorer server needs from a model: traces and completions as walkthrough documents and
/// text. The CLI adapts a checkpoint (GPT or encoder–decoder) to it; tests give a small stand-in. The
/// server never touches the kernels itself.
///
/// Implementations need not be safe to call concurrently: the server calls one at a time (`ModelGate`).
public protocol ExplorerModel: Sendable {
    /// One line for the page: what the model is and where it came from.
    var summary: String { get }
    /// `.gpt` continues a text (`/api/generate`), `.seq2seq` translates it (`/api/translate`).
    var kind: ExplorerModelKind { get }
    /// The most tokens one input may have (a GPT's context; an encoder's positional table).
    var maxInputTokens: Int { get }
    /// How many tokens the model's tokenizer makes of `text`.
    func tokenCount(_ text: String) throws -> Int
    /// Every step of the forward pass on `text`.
    func trace(_ text: String) throws -> TraceDocument
    /// The continuation (GPT, greedy) or the translation (encoder–decoder) of `text`.
    func complete(_ text: String, maxTokens: Int) throws -> String
    /// The training run's loss curve (its `loss.svg`), if there is one; the page shows it.
    var lossCurveSVG: String? { get }
}

extension ExplorerModel {
    public var lossCurveSVG: String? { nil }
}

public enum ExplorerModelKind: String, Codable, Sendable {
    case gpt, seq2seq

    /// The completion endpoint this kind of model answers, and the button that calls it.
    var completion: (label: String, path: String) {
        self == .gpt ? ("Generate", "/api/generate") : ("Translate", "/api/translate")
    }
}

/// Serialises calls into a model that is not thread-safe: requests wait their turn.
actor ModelGate {
    let model: any ExplorerModel
    init(_ model: any ExplorerModel) { self.model = model }

    func tokenCount(_ text: String) throws -> Int { try model.tokenCount(text) }
    func trace(_ text: String) throws -> TraceDocument { try model.trace(text) }
    func complete(_ text: String, maxTokens: Int) throws -> String { try model.complete(text, maxTokens: maxTokens) }
}
