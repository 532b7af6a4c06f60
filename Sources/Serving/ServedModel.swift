import Foundation
import TensorKit
import Tokenizers
import TransformerKit

/// A conversation's state in a slot: a KV cache that can be cut back to a prefix it shares with the
/// next prompt.
public protocol ServedSession: AnyObject {
    var length: Int { get }
    var maxLength: Int { get }
    func reset()
    func rewind(to n: Int)
}

extension LlamaSession: ServedSession {}
extension GPTGenerator: ServedSession {}

/// A step was given a session that another model made.
public enum ServedModelError: Error, CustomStringConvertible {
    case foreignSession
    public var description: String { "a batch step was given a session of another model" }
}

/// What a `SlotEngine` runs: sessions, and one step that feeds several of them at once.
public protocol ServedModel: AnyObject {
    /// Positions a session can hold at most.
    var contextLength: Int { get }
    /// The most prompt tokens one step reads beside the running conversations' next tokens.
    var promptRowsPerStep: Int { get }
    /// A new session of `maxLength` positions; only this model's `step` takes it.
    func makeSession(maxLength: Int) -> any ServedSession
    /// Feeds each part's tokens to its session at its next positions; `logits(part: i)` then holds
    /// what follows part i, until the next step.
    func step(_ parts: [(session: any ServedSession, tokens: [Int])]) throws
    func logits(part i: Int) -> UnsafeBufferPointer<Float>
}

/// A GGUF model: every step is one `LlamaBatchDecoder` step, the products seeing all rows at once.
public final class BatchedLlama: ServedModel {
    public let model: LlamaModel
    public let activations: ActivationPrecision
    public let promptRowsPerStep = 128
    private let decoder: LlamaBatchDecoder

    public init(model: LlamaModel, parallel: Int, activations: ActivationPrecision = .default) {
        self.model = model
        self.activations = activations
        decoder = LlamaBatchDecoder(model: model, maxRows: parallel + promptRowsPerStep, maxSessions: parallel, activations: activations)
    }

    public var contextLength: Int { model.config.contextLength }

    public func makeSession(maxLength: Int) -> any ServedSession {
        LlamaSession(model: model, maxLength: maxLength, activations: activations)
    }

    public func step(_ parts: [(session: any ServedSession, tokens: [Int])]) throws {
        try decoder.step(
            parts.map { p in
                guard let s = p.session as? LlamaSession else { throw ServedModelError.foreignSession }
                return (s, p.tokens)
            })
    }

    public func logits(part i: Int) -> UnsafeBufferPointer<Float> { decoder.logits(row: i) }
}

/// A GPT checkpoint (a run of this project's `train --gpt`, or a Hugging Face GPT-2 folder): its
/// sessions are fed one after another, each with its own KV cache. These models are small; the
/// batched products are the GGUF path's.
public final class SequentialGPT: ServedModel {
    public let model: GPTModel
    public let promptRowsPerStep = 256
    private var last = FlatBuffer(count: 0)  // the parts' logits, part after part

    public init(model: GPTModel) { self.model = model }

    public var contextLength: Int { model.config.contextLength }

    public func makeSession(maxLength: Int) -> any ServedSession { GPTGenerator(model: model) }

    public func step(_ parts: [(session: any ServedSession, tokens: [Int])]) throws {
        let v = model.config.vocabSize
        if last.count < parts.count * v { last = FlatBuffer(count: parts.count * v) }
        for (i, p) in parts.enumerated() {
            guard let s = p.session as? GPTGenerator, s.model === model else {
                throw ServedModelError.foreignSession
            }
            let logits = try s.feed(p.tokens)
            (last.pointer + i * v).update(from: logits, count: v)
        }
    }

    public func logits(part i: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: last.pointer + i * model.config.vocabSize, count: model.config.vocabSize)
    }
}

/// The text side of a served model: prompts to tokens, tokens to text, the chat format.
public protocol ServedTokenizer {
    var vocabSize: Int { get }
    /// The token a plain prompt starts with, when the model's files ask for one.
    var leadingToken: Int? { get }
    /// Tokens that end a reply (end of text, end of turn).
    var stopTokens: Set<Int> { get }
    /// `special`: text such as `<|im_start|>` becomes its special token.
    func tokens(_ text: String, special: Bool) throws -> [Int]
    func text(_ ids: [Int]) -> String
    /// The UTF-8 bytes of the tokens (a character may span two tokens).
    func bytes(_ ids: [Int]) -> [UInt8]
    /// The conversation in the model's chat template, ready for its reply.
    func chatPrompt(_ messages: [GGUFTokenizer.Message]) throws -> String
}

extension GGUFTokenizer: ServedTokenizer {
    public var leadingToken: Int? { addBOS ? bosID : nil }
    public func tokens(_ text: String, special: Bool) -> [Int] { encode(text, parseSpecial: special) }
    public func text(_ ids: [Int]) -> String { decode(ids) }
    public func bytes(_ ids: [Int]) -> [UInt8] { decodeBytes(ids) }
    public func chatPrompt(_ messages: [GGUFTokenizer.Message]) throws -> String { try renderChat(messages) }
}

/// A GPT checkpoint's tokenizer (characters, or GPT-2's byte-level BPE). Such a checkpoint has no
/// chat template: chat requests are refused, completions work.
public struct GPTServedTokenizer: ServedTokenizer {
    public let tokenizer: TextTokenizer
    public init(_ tokenizer: TextTokenizer) { self.tokenizer = tokenizer }

    public var vocabSize: Int { tokenizer.vocabularySize }
    public var leadingToken: Int? { nil }
    public var stopTokens: Set<Int> {
        guard let bpe = tokenizer.bpe, let end = bpe.id(forSpecial: "<|endoftext|>") else { return [] }
        return [end]
    }
    public func tokens(_ text: String, special: Bool) throws -> [Int] { try tokenizer.encode(text) }
    public func text(_ ids: [Int]) -> String { tokenizer.decode(ids) }
    public func bytes(_ ids: [Int]) -> [UInt8] { tokenizer.bpe.map { $0.decodeBytes(ids) } ?? Array(tokenizer.decode(ids).utf8) }
    public func chatPrompt(_ messages: [GGUFTokenizer.Message]) throws -> String {
        throw ChatTemplateError("this model has no chat template: send its prompt to /v1/completions")
    }
}
