import Foundation
import HTTPTypes

// The request and answer shapes of OpenAI's API (the subset local servers speak), and its errors.

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with an HTTP status.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ message: String, type: String? = nil, param: String? = nil, code: String? = nil) {
        self.status = status; self.message = message; self.param = param; self.code = code
        self.type =
            type
            ?? {
                switch status.code {
                case 401: return "authentication_error"
                case 404: return "not_found_error"
                case 400..<500: return "invalid_request_error"
                default: return "server_error"
                }
            }()
    }

    struct Body: Encodable {
        struct Inner: Encodable { var message: String, type: String, param: String?, code: String? }
        var error: Inner
        func encode(to encoder: any Encoder) throws {
            // param and code are written as null when absent, as OpenAI does
            var c = encoder.container(keyedBy: Keys.self)
            var e = c.nestedContainer(keyedBy: InnerKeys.self, forKey: .error)
            try e.encode(error.message, forKey: .message)
            try e.encode(error.type, forKey: .type)
            try e.encode(error.param, forKey: .param)
            try e.encode(error.code, forKey: .code)
        }
        enum Keys: String, CodingKey { case error }
        enum InnerKeys: String, CodingKey { case message, type, param, code }
    }
    var body: Body { Body(error: .init(message: message, type: type, param: param, code: code)) }

    /// A body that did not decode: which field, and what was expected.
    static func decoding(_ error: any Error) -> APIError {
        func path(_ p: [any CodingKey]) -> String {
            p.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error as? DecodingError {
        case .typeMismatch(let t, let c)?:
            return APIError(.badRequest, "\(path(c.codingPath)): expected \(name(of: t))", param: path(c.codingPath), code: "invalid_type")
        case .valueNotFound(let t, let c)?:
            return APIError(
                .badRequest, "\(path(c.codingPath)): expected \(name(of: t)), got null", param: path(c.codingPath), code: "invalid_type")
        case .keyNotFound(let k, let c)?:
            let p = path(c.codingPath + [k])
            return APIError(.badRequest, "missing required field \(p)", param: p, code: "missing_required_parameter")
        case .dataCorrupted(let c)?:
            let p = path(c.codingPath)
            if p.isEmpty {
                return APIError(
                    .badRequest, "the body is not valid JSON: \(c.underlyingError.map { "\($0)" } ?? c.debugDescription)",
                    code: "invalid_json")
            }
            return APIError(.badRequest, "\(p): \(c.debugDescription)", param: p, code: "invalid_value")
        default:
            return APIError(.badRequest, "the body could not be read: \(error)", code: "invalid_json")
        }
    }

    private static func name(of t: Any.Type) -> String {
        switch t {
        case is String.Type: return "a string"
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is [Any].Type: return "an array"
        default: return "\(t)"
        }
    }
}

/// A string, or a list of strings (`stop`, `input`, `prompt`).
struct StringList: Decodable, Sendable {
    var values: [String]
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { values = [s]; return }
        do { values = try c.decode([String].self) } catch {
            throw DecodingError.typeMismatch(
                String.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a string or an array of strings"))
        }
    }
}

/// A message's content: a string, or a list of parts of which the `text` ones are read.
struct MessageContent: Decodable, Sendable {
    var text: String
    struct Part: Decodable { var type: String, text: String? }
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { text = ""; return }
        if let s = try? c.decode(String.self) { text = s; return }
        let parts: [Part]
        do { parts = try c.decode([Part].self) } catch {
            throw DecodingError.typeMismatch(
                String.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a string or an array of content parts"))
        }
        if let other = parts.first(where: { $0.type != "text" }) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "content parts of type \"\(other.type)\" are not supported (text only)"))
        }
        text = parts.compactMap(\.text).joined()
    }
}

/// The fields chat and completions share, read from the same JSON object as the request's own.
struct SamplingFields: Decodable {
    var model: String?
    var maxTokens: Int?, maxCompletionTokens: Int?
    var temperature: Double?, topP: Double?, topK: Int?, seed: Int64?
    var stop: StringList?
    var stream: Bool?, n: Int?
    var streamOptions: StreamOptions?
    enum CodingKeys: String, CodingKey {
        case model, temperature, seed, stop, stream, n
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", topP = "top_p", topK = "top_k"
        case streamOptions = "stream_options"
    }
}

struct StreamOptions: Decodable, Sendable {
    var includeUsage: Bool?
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

struct ChatRequest: Decodable {
    struct Message: Decodable { var role: String, content: MessageContent? }
    var messages: [Message]
    var sampling: SamplingFields
    enum CodingKeys: String, CodingKey { case messages }
    init(from decoder: any Decoder) throws {
        messages = try decoder.container(keyedBy: CodingKeys.self).decode([Message].self, forKey: .messages)
        sampling = try SamplingFields(from: decoder)
    }
}

struct CompletionRequest: Decodable {
    var prompt: StringList
    var sampling: SamplingFields
    enum CodingKeys: String, CodingKey { case prompt }
    init(from decoder: any Decoder) throws {
        prompt = try decoder.container(keyedBy: CodingKeys.self).decode(StringList.self, forKey: .prompt)
        sampling = try SamplingFields(from: decoder)
    }
}

struct EmbeddingRequest: Decodable {
    var model: String?
    var input: StringList
    var encodingFormat: String?
    enum CodingKeys: String, CodingKey { case model, input, encodingFormat = "encoding_format" }
}

struct TokenizeRequest: Decodable {
    var content: String
    var addSpecial: Bool?
    enum CodingKeys: String, CodingKey { case content, addSpecial = "add_special" }
}

struct DetokenizeRequest: Decodable { var tokens: [Int] }

/// Token counts of one generation (`usage`).
struct Usage {
    var promptTokens: Int, completionTokens: Int
    var totalTokens: Int { promptTokens + completionTokens }
    /// Prompt tokens the slot's cache already held.
    var cachedTokens: Int
}
