import Foundation
import TensorKit
import Tokenizers
import ModelFiles

/// A conversation with a GGUF chat model: the messages so far, rendered by the model's own chat
/// template (`tokenizer.chat_template`) each turn, and a session whose KV cache keeps what it has
/// already read.
///
/// Each turn renders the whole conversation — as Hugging Face's `apply_chat_template` would — and
/// feeds only the tokens after the longest prefix the cache already holds, so a template that
/// rewrites earlier text (or a reply whose text re-encodes to other tokens) costs a partial re-read,
/// never a wrong context. When the conversation no longer fits, the oldest turns after the system
/// message are dropped.
public final class ChatConversation {
    /// The model's session (its KV cache holds `cached`).
    public let session: LlamaSession
    /// The model's tokenizer.
    public let tokenizer: GGUFTokenizer
    /// The system message and the turns so far, oldest first.
    public private(set) var messages: [GGUFTokenizer.Message] = []
    /// The tokens the session's cache holds, in order.
    public private(set) var cached: [Int] = []
    let system: String?

    /// - Throws: `GGUFError` when the file has no chat template, or `ChatTemplateError` when its
    ///   template uses something this project's Jinja subset does not read.
    public init(session: LlamaSession, tokenizer: GGUFTokenizer, system: String? = nil) throws {
        self.session = session
        self.tokenizer = tokenizer
        self.system = system
        _ = try tokenizer.renderChat([GGUFTokenizer.Message(role: "user", content: "")])  // the template reads
        reset()
    }

    /// Starts over: only the system message (if any) is kept.
    public func reset() {
        messages = system.map { [GGUFTokenizer.Message(role: "system", content: $0)] } ?? []
        session.reset()
        cached = []
    }

    /// What one turn did.
    public struct Turn: Sendable {
        /// The reply's tokens (its stop token included, when it stopped on one).
        public var tokens: [Int]
        /// The reply's text (without the stop token).
        public var text: String
        /// Prompt tokens the model read this turn, and those it reused from its cache.
        public var readTokens: Int, reusedTokens: Int
        /// Turns dropped from the start of the conversation to make room.
        public var droppedMessages: Int
    }

    /// Adds the user's message, and the model's reply to it, streaming each token through `onToken`.
    /// - Throws: `LlamaError` when the message alone does not fit in the context; template errors.
    public func reply(
        to text: String, maxTokens: Int, sampling: SamplingOptions, stop: Set<Int>, onToken: (Int) -> Void = { _ in }
    ) throws -> Turn {
        messages.append(GGUFTokenizer.Message(role: "user", content: text))
        var dropped = 0
        var ids = try tokenizer.encode(tokenizer.renderChat(messages), parseSpecial: true)
        // room for the prompt and at least one new token
        while ids.count + 1 > session.maxLength {
            let first = messages.first?.role == "system" ? 1 : 0
            guard messages.count - first > 1 else {
                messages.removeLast()
                throw LlamaError(
                    description:
                        "the message needs \(ids.count) tokens with the template, more than the context of \(session.maxLength) holds")
            }
            messages.remove(at: first)
            dropped += 1
            ids = try tokenizer.encode(tokenizer.renderChat(messages), parseSpecial: true)
        }
        // reuse the cached prefix; at least one token must be fed to get the next logits
        var common = 0
        while common < min(ids.count, cached.count) && ids[common] == cached[common] { common += 1 }
        common = min(common, ids.count - 1)
        session.rewind(to: common)
        let out = try session.generate(
            prompt: Array(ids[common...]), maxNewTokens: maxTokens, sampling: sampling, stop: stop, onToken: onToken)
        cached = ids + out.dropLast()  // the session has not read the last token it made
        let replyTokens = out.last.map { stop.contains($0) } == true ? Array(out.dropLast()) : out
        let reply = tokenizer.decode(replyTokens)
        messages.append(GGUFTokenizer.Message(role: "assistant", content: reply))
        return Turn(tokens: out, text: reply, readTokens: ids.count - common, reusedTokens: common, droppedMessages: dropped)
    }
}
