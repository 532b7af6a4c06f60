import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import Walkthrough
@testable import Explorer

/// A stand-in model: the walkthrough's tiny seeded GPT (2 heads, 1 layer, 16 positions) on the seed corpus.
struct TinyGPT: ExplorerModel {
    var summary: String { "tiny seeded GPT" }
    var kind: ExplorerModelKind { .gpt }
    var maxInputTokens: Int { 16 }
    func tokenCount(_ text: String) throws -> Int { text.count }
    func trace(_ text: String) throws -> TraceDocument {
        var s = GPTWalkthroughSetup()
        s.prompt = text
        return try s.run()
    }
    func complete(_ text: String, maxTokens: Int) throws -> String { String(text.reversed().prefix(maxTokens)) }
}

/// The same with a training run's loss curve.
struct TinyGPTWithLoss: ExplorerModel {
    let base = TinyGPT()
    var summary: String { base.summary }
    var kind: ExplorerModelKind { .gpt }
    var maxInputTokens: Int { base.maxInputTokens }
    func tokenCount(_ text: String) throws -> Int { try base.tokenCount(text) }
    func trace(_ text: String) throws -> TraceDocument { try base.trace(text) }
    func complete(_ text: String, maxTokens: Int) throws -> String { try base.complete(text, maxTokens: maxTokens) }
    var lossCurveSVG: String? { "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>" }
}

@Suite struct ExplorerServerTests {
    func app(_ limits: ExplorerLimits = .patient) -> some ApplicationProtocol {
        Application(router: ExplorerServer.router(model: TinyGPT(), limits: limits))
    }

    func body(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    /// The response body as a JSON object.
    func object(_ r: TestResponse) throws -> [String: Any] {
        let data = Data(r.body.readableBytesView)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func error(_ r: TestResponse) throws -> String {
        #expect(r.headers[.contentType]?.hasPrefix("application/json") == true)
        return try #require(try object(r)["error"] as? String)
    }

    @Test func goodTraceHasEveryHeadAndThePrediction() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/api/trace", method: .post, body: body(#"{"text": "马无夜草"}"#)) { r in
                #expect(r.status == .ok)
                let o = try object(r)
                let heads = try #require(o["attention"] as? [[String: Any]])
                #expect(heads.count == 2)  // 1 layer × 2 heads
                let prediction = try #require(o["prediction"] as? [String: Any])
                #expect((prediction["after"] as? String) == "草")
                #expect(((prediction["top"] as? [Any])?.count ?? 0) == 10)
                let html = try #require(o["html"] as? String)
                #expect(html.components(separatedBy: "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\"").count - 1 == 2)
                #expect(html.contains("id=\"predicted-token\""))
                let trace = try #require(o["trace"] as? [String: Any])
                #expect(((trace["steps"] as? [Any])?.count ?? 0) > 20)
                #expect(((trace["parameters"] as? [Any])?.count ?? -1) == 0)
            }
        }
    }

    /// `include` picks the large parts: the page asks for the fragment alone; an unknown part is a 400 that names it.
    @Test func includePicksTheLargeParts() async throws {
        try await app().test(.router) { client in
            var sizes: [String: Int] = [:]
            for (include, html, trace) in [
                ("", true, true), (#", "include": ["html"]"#, true, false),
                (#", "include": ["trace"]"#, false, true), (#", "include": []"#, false, false)
            ] {
                try await client.execute(uri: "/api/trace", method: .post, body: body(#"{"text": "马无夜草""# + include + "}")) { r in
                    #expect(r.status == .ok)
                    let o = try object(r)
                    #expect((o["html"] != nil) == html && (o["trace"] != nil) == trace, "\(include)")
                    #expect(((o["attention"] as? [Any])?.count ?? 0) == 2 && o["prediction"] != nil, "\(include)")
                    sizes[include] = r.body.readableBytes
                }
            }
            #expect(sizes[#", "include": ["html"]"#]! < sizes[""]!)
            try await client.execute(uri: "/api/trace", method: .post, body: body(#"{"text": "马无夜草", "include": ["html", "svg"]}"#)) { r in
                #expect(r.status == .badRequest)
                let message = try error(r)
                #expect(message.contains("\"svg\"") && message.contains("\"html\" and \"trace\""), "\(message)")
            }
        }
    }

    @Test func badRequestsGetClearJSONErrorsAndTheServerKeepsServing() async throws {
        var limits = ExplorerLimits.patient
        limits.maxCharacters = 12
        limits.maxBodyBytes = 200
        try await app(limits).test(.router) { client in
            // Not JSON at all, JSON without "text", and "text" of the wrong type.
            for bad in ["{not json", #"{"prompt": "马"}"#, #"{"text": 5}"#] {
                try await client.execute(uri: "/api/trace", method: .post, body: body(bad)) { r in
                    #expect(r.status == .badRequest, "\(bad)")
                    let message = try error(r)
                    #expect(message.contains("JSON"))
                }
            }
            // Over-long text: more characters than the limit, then more tokens than the context.
            try await client.execute(uri: "/api/trace", method: .post, body: body(#"{"text": "马无夜草不肥马无夜草不肥马"}"#)) { r in
                #expect(r.status == .unprocessableContent)
                let message = try error(r)
                #expect(message.contains("13 characters; the limit is 12"))
            }
            // An empty text.
            try await client.execute(uri: "/api/trace", method: .post, body: body(#"{"text": "  "}"#)) { r in
                #expect(r.status == .unprocessableContent)
                let message = try error(r)
                #expect(message == "the text is empty")
            }
            // A body over the size limit.
            try await client.execute(
                uri: "/api/trace", method: .post, body: body(#"{"text": ""# + String(repeating: "x", count: 400) + #""}"#)
            ) { r in
                #expect(r.status == .contentTooLarge)
                let message = try error(r)
                #expect(message.contains("larger than 200 bytes"))
            }
            // Unknown routes, and the completion route of the other kind of model.
            try await client.execute(uri: "/api/nothing", method: .post, body: body("{}")) { r in
                #expect(r.status == .notFound)
                let message = try error(r)
                #expect(message.contains("no such route: POST /api/nothing"))
            }
            try await client.execute(uri: "/robots.txt", method: .get) { r in
                #expect(r.status == .notFound)
                _ = try error(r)
            }
            try await client.execute(uri: "/api/translate", method: .post, body: body(#"{"text": "马"}"#)) { r in
                #expect(r.status == .notFound)
                let message = try error(r)
                #expect(message.contains("/api/generate"))
            }
            // max_tokens out of range.
            try await client.execute(uri: "/api/generate", method: .post, body: body(#"{"text": "马无", "max_tokens": 100000}"#)) { r in
                #expect(r.status == .unprocessableContent)
            }
            // After all that, good requests still work.
            try await client.execute(uri: "/api/trace", method: .post, body: body(#"{"text": "马无夜草不肥"}"#)) { r in
                #expect(r.status == .ok)
                let o = try object(r)
                #expect(((o["prediction"] as? [String: Any])?["after"] as? String) == "肥")
            }
            try await client.execute(uri: "/api/generate", method: .post, body: body(#"{"text": "马无夜", "max_tokens": 2}"#)) { r in
                #expect(r.status == .ok)
                let o = try object(r)
                #expect((o["output"] as? String) == "夜无")
            }
        }
    }

    @Test func pageAndInfo() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/", method: .get) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "text/html; charset=utf-8")
                let html = String(buffer: r.body)
                for hook in ["id=\"explore-form\"", "id=\"text\"", "id=\"explorer\"", "data-api=\"/api/generate\"", "/api/trace"] {
                    #expect(html.contains(hook), "\(hook)")
                }
                #expect(!html.lowercased().contains("src=\"http"))
            }
            try await client.execute(uri: "/api/info", method: .get) { r in
                let o = try object(r)
                #expect(o["kind"] as? String == "gpt")
                #expect(o["max_characters"] as? Int == 500)
                #expect(o["max_tokens"] as? Int == 16)
            }
        }
    }

    @Test func lossCurveIsServedWhenTheRunHasOne() async throws {
        try await Application(router: ExplorerServer.router(model: TinyGPTWithLoss(), limits: .patient)).test(.router) { client in
            try await client.execute(uri: "/loss.svg", method: .get) { r in
                #expect(r.status == .ok && r.headers[.contentType] == "image/svg+xml")
            }
            try await client.execute(uri: "/", method: .get) { r in
                #expect(String(buffer: r.body).contains("<img id=\"loss-curve\" src=\"/loss.svg\""))
            }
        }
        try await app().test(.router) { client in
            try await client.execute(uri: "/loss.svg", method: .get) { r in
                #expect(r.status == .notFound)
            }
            try await client.execute(uri: "/", method: .get) { r in
                #expect(!String(buffer: r.body).contains("loss-curve"))
            }
        }
    }

    /// Requests at once reach the model one at a time and all succeed.
    @Test func concurrentRequestsAreServed() async throws {
        try await app().test(.router) { client in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for text in ["马", "马无", "马无夜", "马无夜草"] {
                    group.addTask {
                        try await client.execute(uri: "/api/trace", method: .post, body: ByteBuffer(string: "{\"text\": \"\(text)\"}")) {
                            $0.status == .ok
                        }
                    }
                }
                for try await ok in group { #expect(ok) }
            }
        }
    }
}
