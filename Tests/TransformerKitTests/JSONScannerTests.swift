import Foundation
import Testing
import TensorKit
@testable import ModelFiles

/// The package's one JSON reader (ModelFiles/JSON): what it keeps that Foundation's readers lose
/// (exact bytes, number literals, key order, positions), and what it refuses.
@Suite struct JSONScannerTests {
    func scan(_ text: String, maxDepth: Int = 128) throws(JSONScanError) -> JSONNode {
        try JSONScanner(maxDepth: maxDepth).scan(Array(text.utf8))
    }

    func failure(_ text: String, maxDepth: Int = 128) -> JSONScanError? {
        do { _ = try scan(text, maxDepth: maxDepth); return nil } catch { return error }
    }

    @Test func escapesAndSurrogatePairsDecodeToTheExactBytes() throws {
        let n = try scan(#"{"a\"b\\c\/\b\f\n\r\t": "\u00e9\u4e2d\ud83d\ude00", "e\u0301": 1, "é": 2}"#)
        let members = try #require(n.members)
        #expect(members[0].keyBytes == Array("a\"b\\c/\u{8}\u{C}\n\r\t".utf8))
        #expect(members[0].value.stringBytes == Array("é中😀".utf8))
        // Canonically equivalent keys stay distinct: e + combining acute is not the precomposed é.
        #expect(members[1].keyBytes == [0x65, 0xCC, 0x81] && members[2].keyBytes == [0xC3, 0xA9])
        #expect(members.map(\.key) == ["a\"b\\c/\u{8}\u{C}\n\r\t", "e\u{301}", "é"])  // document order
    }

    @Test func loneSurrogatesAreRefused() {
        for text in [#""\ud800""#, #""\udc00""#, #""\ud800\u0041""#, #""\ud800x""#] {
            #expect(failure(text)?.reason == .loneSurrogate, "\(text)")
        }
    }

    @Test func numbersKeepTheirLiteral() throws {
        let items = try #require(try scan("[1.50, -0, 1e-3, 2E+10, 0, 12345678901234567890123]").array)
        #expect(items.map(\.numberLiteral) == ["1.50", "-0", "1e-3", "2E+10", "0", "12345678901234567890123"])
        #expect(items.map(\.integer) == [nil, 0, nil, nil, 0, nil])  // fractions, exponents and overflow are not integers
        #expect(items[0].double == 1.5 && items[2].double == 0.001)
        for bad in ["01", "-", "1.", ".5", "+1", "1e", "0x10", "NaN", "Infinity"] {
            #expect(failure("[\(bad)]") != nil, "\(bad)")
        }
    }

    @Test func duplicateKeysAreRefusedWithTheirPath() {
        let e = failure(#"{"a": {"b": {"c": 1, "c": 2}}}"#)
        #expect(e?.reason == .duplicateKey(path: ["a", "b"], key: "c"))
        #expect(e?.message == #"key "c" appears twice in "a.b""#)
        #expect(failure(#"{"x": 1, "x": 1}"#)?.reason == .duplicateKey(path: [], key: "x"))
        #expect(failure(#"[{"x": 1}, {"x": 1}]"#) == nil)  // the same key in two objects is fine
        // The path is the enclosing keys at the repeat: earlier siblings are gone, arrays add nothing.
        #expect(failure(#"{"a": {"x": {}}, "b": {"y": 1, "y": 2}}"#)?.reason == .duplicateKey(path: ["b"], key: "y"))
        #expect(failure(#"{"a": [{"k": 1}, {"k": 1, "k": 2}]}"#)?.reason == .duplicateKey(path: ["a"], key: "k"))
        // Keys are compared as bytes: "é" precomposed and e + U+0301 are two keys.
        #expect(failure(#"{"é": 1, "e\u0301": 2}"#) == nil)
        #expect(failure(#"{"é": 1, "\u00e9": 2}"#)?.reason == .duplicateKey(path: [], key: "é"))
        // Where: the repeated key's opening quote.
        let e2 = failure("{\n  \"a\": 1,\n  \"a\": 2\n}")
        #expect(e2?.line == 3 && e2?.column == 3 && e2?.offset == 14, "\(String(describing: e2))")
    }

    @Test func integerIsExactOrNil() throws {
        let items = try #require(
            try scan("[9223372036854775807, 9223372036854775808, -9223372036854775808, -0, 2.0, 2e0, 20, 1E2]").array)
        #expect(items.map(\.integer) == [Int.max, nil, Int.min, 0, nil, nil, 20, nil])
        #expect(try scan("\"2\"").integer == nil && scan("true").integer == nil)
    }

    @Test func errorsGiveLineColumnAndByte() {
        let text = "{\n  \"a\": [1, 2,\n        ]\n}"
        let e = failure(text)
        #expect(e?.line == 3 && e?.column == 9, "\(String(describing: e))")
        #expect(e?.offset == Array(text.utf8).firstIndex(of: UInt8(ascii: "]")))
        #expect(e?.description == "line 3, column 9 (byte 24): expected a value, found ']'")
        let trailing = failure("{}\n x")
        #expect(trailing?.message == "expected only whitespace after the JSON value, found 'x'" && trailing?.line == 2)
        #expect(failure("")?.message == "expected a value, found end of input")
        #expect(failure("\"abc")?.message == "expected '\"' to close the string, found end of input")
    }

    @Test func nestingIsLimited() {
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(failure(deep, maxDepth: 64)?.reason == .tooDeep(limit: 64))
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(failure(ok, maxDepth: 64) == nil)
    }

    @Test func invalidUTF8AndControlCharactersAreRefused() {
        #expect((try? JSONScanner().scan([0x22, 0xC3, 0x28, 0x22])) == nil)
        do { _ = try JSONScanner().scan([0x5B, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x5D]) } catch {
            #expect(error.reason == .invalidUTF8 && error.offset == 2)  // an encoded surrogate is not UTF-8
        }
        #expect(failure("\"a\tb\"")?.message.contains("control characters") == true)
        #expect(failure(#""\q""#)?.message.contains("escape") == true)
    }

    @Test func positionsOfValues() throws {
        let n = try scan("{\n \"a\": [\n  true,\n  null\n ]\n}")
        let a = try #require(n["a"])
        #expect(a.line == 2 && a.offset == 8)
        #expect(a.array?.map(\.line) == [3, 4] && a.array?.map(\.kind) == ["a boolean", "null"])
        #expect(n["missing"] == nil && n.kind == "an object")
    }

    /// The escaper and the scanner are inverses, for any string: control characters, quotes,
    /// backslashes, non-BMP scalars, U+2028.
    @Test func escaperRoundTripsThroughTheScanner() throws {
        var rng = SeededRNG(seed: 7)
        let pool: [Unicode.Scalar] = [
            "a", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "中", "😀", "\u{2028}", "\u{8}", "\u{C}"
        ]
        for _ in 0..<300 {
            var s = String.UnicodeScalarView()
            for _ in 0..<rng.nextInt(below: 20) { s.append(pool[rng.nextInt(below: pool.count)]) }
            let text = String(s)
            let literal = jsonString(text)
            #expect(try scan(literal).stringBytes == Array(text.utf8), "\(literal)")
            // What Foundation's reader makes of it agrees.
            let viaFoundation = try JSONSerialization.jsonObject(with: Data(literal.utf8), options: .fragmentsAllowed) as? String
            #expect(viaFoundation == text)
        }
        #expect(jsonString("a\u{1}\u{8}") == #""a\u0001\b""#)
    }

    @Test func messagesStayOnOneLine() {
        #expect(oneLine("a\nb\u{2028}c\u{85}") == #"a\u000Ab\u2028c\u0085"#)
        #expect(quotedForMessage("x\ny", limit: 120) == #""x\ny""#)
        #expect(quotedForMessage(String(repeating: "z", count: 130), limit: 120).count == 123)
    }
}
