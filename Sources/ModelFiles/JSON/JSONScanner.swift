// MARK: - The one JSON reader of the package
//
// Foundation's JSONSerialization and JSONDecoder lose what the readers of model files need: the
// order of keys, the exact bytes of a key (Swift's String equality merges canonically equivalent
// strings, so two distinct BPE tokens could collide), a number as it was written (the checker counts
// the decimals a person wrote; a shape of 2.0 must be refused, not read as 2) and where in the file a
// value stood. So every reader of JSON in the package — the safetensors header, vocab.json, config
// files, matrices typed by hand — scans with this, and keeps what it needs.
//
// Strict RFC 8259: UTF-8 only, no leading zeros, no control characters in strings, surrogate pairs
// joined and lone surrogates refused, only whitespace after the document, duplicate keys refused
// (compared byte for byte), nesting limited.

/// A JSON value with the byte offset and line where it starts.
package struct JSONNode: Sendable {
    package enum Value: Sendable {
        case null
        case bool(Bool)
        /// The number as written (`"1.50"`, `"-0"`, `"2e0"`): callers decide what it may be.
        case number(String)
        /// The string's UTF-8 bytes, escapes decoded.
        case string([UInt8])
        case array([JSONNode])
        /// Members in the document's order.
        case object([JSONMember])
    }

    package var value: Value
    /// Byte offset of the value's first byte in the scanned text.
    package var offset: Int
    /// 1-based line of the value's first byte.
    package var line: Int

    /// "a string", "an object", … for messages.
    package var kind: String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// A string's text (nil for other kinds). Exact bytes, where they matter, are `stringBytes`.
    package var string: String? {
        if case .string(let b) = value { return String(decoding: b, as: UTF8.self) }
        return nil
    }

    /// A string's UTF-8 bytes as the document spelled them, escapes decoded (nil for other kinds).
    package var stringBytes: [UInt8]? {
        if case .string(let b) = value { return b }
        return nil
    }

    /// `true` or `false` (nil for other kinds).
    package var bool: Bool? {
        if case .bool(let b) = value { return b }
        return nil
    }

    /// The literal of a number.
    package var numberLiteral: String? {
        if case .number(let s) = value { return s }
        return nil
    }

    /// A number as the nearest `Double` (nil for other kinds).
    package var double: Double? { numberLiteral.flatMap(Double.init) }

    /// The number as an `Int` when it is written as an integer (no fraction, no exponent) that fits:
    /// nil for `2.0`, `2e0` and `9223372036854775808` (a shape of 2.0 is a mistake, not 2). `Int(_:)`
    /// takes exactly a sign and digits, and the scanner let no `+` or leading zero through.
    package var integer: Int? { numberLiteral.flatMap { Int($0) } }

    /// An array's items (nil for other kinds).
    package var array: [JSONNode]? {
        if case .array(let a) = value { return a }
        return nil
    }

    /// An object's members in document order (nil for other kinds).
    package var members: [JSONMember]? {
        if case .object(let m) = value { return m }
        return nil
    }

    /// The member named `key` of an object (nil for a missing key or a non-object).
    package subscript(key: String) -> JSONNode? {
        members?.first { $0.key == key }?.value
    }

    /// The value for a message: scalars as written (long strings cut), containers by kind.
    package var brief: String {
        switch value {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .number(let s): return s.count > 40 ? String(s.prefix(40)) + "…" : s
        case .string:
            let s = string ?? ""
            return "\"" + escapedForMessage(s.count > 40 ? String(s.prefix(40)) + "…" : s) + "\""
        case .array, .object: return kind
        }
    }
}

/// One `"key": value` of an object.
package struct JSONMember: Sendable {
    /// The key's UTF-8 bytes, escapes decoded.
    package var keyBytes: [UInt8]
    package var value: JSONNode
    package var key: String { String(decoding: keyBytes, as: UTF8.self) }
}

/// Why a text is not the JSON a reader accepts, and where.
package struct JSONScanError: Error, Sendable, CustomStringConvertible {
    package enum Reason: Sendable, Equatable {
        /// `expected` was due at the offset; `found` is what stood there ("end of input", "'x'", "byte 0xFF").
        case syntax(expected: String, found: String)
        case invalidUTF8
        case loneSurrogate
        case tooDeep(limit: Int)
        /// A key appeared twice in one object; `path` is the keys of the enclosing objects, outermost first.
        case duplicateKey(path: [String], key: String)
    }

    package var reason: Reason
    package var offset: Int
    package var line: Int
    package var column: Int

    /// What went wrong, without the position.
    package var message: String {
        switch reason {
        case .syntax(let expected, let found): "expected \(expected), found \(found)"
        case .invalidUTF8: "not valid UTF-8"
        case .loneSurrogate: "unpaired surrogate in a string"
        case .tooDeep(let limit): "nested more than \(limit) levels deep"
        case .duplicateKey(let path, let key):
            "key \"\(escapedForMessage(key))\" appears twice"
                + (path.isEmpty ? "" : " in \"\(path.map(escapedForMessage).joined(separator: "."))\"")
        }
    }

    package var description: String { "line \(line), column \(column) (byte \(offset)): \(message)" }
}

/// Scans JSON text into `JSONNode`s.
package struct JSONScanner {
    /// How many arrays and objects may nest (the outermost counts 1): a bound on recursion, and a
    /// limit a format may set (safetensors' reference reader refuses more than 64).
    package var maxDepth: Int

    package init(maxDepth: Int = 128) { self.maxDepth = maxDepth }

    /// The one value that makes up `bytes` (surrounding whitespace allowed).
    package func scan<Bytes: Collection>(_ bytes: Bytes) throws(JSONScanError) -> JSONNode where Bytes.Element == UInt8 {
        // One copy, then a buffer pointer: reading an array's bytes through a struct retains and
        // releases it at every byte in a debug build (a seventh of a vocab.json's scan).
        let buffer = Array(bytes)
        return try buffer.withUnsafeBufferPointer { (p) throws(JSONScanError) -> JSONNode in
            var s = State(bytes: p, maxDepth: maxDepth)
            // Validated first, so every error below is about JSON, and string bytes copied through stay UTF-8.
            if let bad = Self.firstInvalidUTF8(p) {
                s.i = bad
                throw s.error(.invalidUTF8)
            }
            s.skipWhitespace()
            let node = try s.value(depth: 1)
            s.skipWhitespace()
            guard s.i == p.count else { throw s.syntax("only whitespace after the JSON value") }
            return node
        }
    }

    static func firstInvalidUTF8(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = 0
        while i < b.count {
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            let need: Int, low: UInt8, high: UInt8
            switch c {
            case 0xC2...0xDF: need = 1; low = 0x80; high = 0xBF
            case 0xE0: need = 2; low = 0xA0; high = 0xBF
            case 0xE1...0xEC, 0xEE...0xEF: need = 2; low = 0x80; high = 0xBF
            case 0xED: need = 2; low = 0x80; high = 0x9F  // no UTF-16 surrogates
            case 0xF0: need = 3; low = 0x90; high = 0xBF
            case 0xF1...0xF3: need = 3; low = 0x80; high = 0xBF
            case 0xF4: need = 3; low = 0x80; high = 0x8F
            default: return i
            }
            guard i + need < b.count, (low...high).contains(b[i + 1]) else { return i }
            for j in 2..<(need + 1) where !(0x80...0xBF).contains(b[i + j]) { return i }
            i += need + 1
        }
        return nil
    }

    struct State {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var i = 0
        var line = 1
        var lineStart = 0
        /// The keys of the objects being scanned, outermost first: only an error reads them, so they
        /// stay bytes (a String per member would cost a third of a vocab.json's scan).
        var keys: [[UInt8]] = []

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func error(_ reason: JSONScanError.Reason, at offset: Int? = nil) -> JSONScanError {
            let at = offset ?? i
            // The line of `at` (it may lie before `i` only within the current line).
            var line = self.line, start = lineStart
            if at < lineStart {
                line = 1; start = 0
                for k in 0..<at where bytes[k] == 0x0A { line += 1; start = k + 1 }
            }
            return JSONScanError(reason: reason, offset: at, line: line, column: at - start + 1)
        }

        func syntax(_ expected: String) -> JSONScanError {
            error(.syntax(expected: expected, found: found()))
        }

        func found() -> String {
            guard i < bytes.count else { return "end of input" }
            let b = bytes[i]
            return (0x21...0x7E).contains(b) ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x" + hex2(b)
        }

        @inline(__always) func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipWhitespace() {
            while i < bytes.count {
                switch bytes[i] {
                case 0x20, 0x09, 0x0D: i += 1
                case 0x0A: i += 1; line += 1; lineStart = i
                default: return
                }
            }
        }

        mutating func value(depth: Int) throws(JSONScanError) -> JSONNode {
            guard let b = peek() else { throw syntax("a value") }
            let start = i, startLine = line
            func node(_ v: JSONNode.Value) -> JSONNode { JSONNode(value: v, offset: start, line: startLine) }
            switch b {
            case UInt8(ascii: "{"):
                guard depth <= maxDepth else { throw error(.tooDeep(limit: maxDepth)) }
                i += 1
                var members: [JSONMember] = []
                var seen = Set<[UInt8]>()
                skipWhitespace()
                if peek() == UInt8(ascii: "}") { i += 1; return node(.object(members)) }
                while true {
                    skipWhitespace()
                    guard peek() == UInt8(ascii: "\"") else { throw syntax("a string key") }
                    let keyOffset = i
                    let key = try string()
                    guard seen.insert(key).inserted else {
                        let path = keys.map { String(decoding: $0, as: UTF8.self) }
                        throw error(.duplicateKey(path: path, key: String(decoding: key, as: UTF8.self)), at: keyOffset)
                    }
                    skipWhitespace()
                    guard peek() == UInt8(ascii: ":") else { throw syntax("':'") }
                    i += 1
                    skipWhitespace()
                    keys.append(key)
                    let v = try value(depth: depth + 1)
                    keys.removeLast()
                    members.append(JSONMember(keyBytes: key, value: v))
                    skipWhitespace()
                    if peek() == UInt8(ascii: ",") { i += 1; continue }
                    if peek() == UInt8(ascii: "}") { i += 1; return node(.object(members)) }
                    throw syntax("',' or '}'")
                }
            case UInt8(ascii: "["):
                guard depth <= maxDepth else { throw error(.tooDeep(limit: maxDepth)) }
                i += 1
                var items: [JSONNode] = []
                skipWhitespace()
                if peek() == UInt8(ascii: "]") { i += 1; return node(.array(items)) }
                while true {
                    skipWhitespace()
                    items.append(try value(depth: depth + 1))
                    skipWhitespace()
                    if peek() == UInt8(ascii: ",") { i += 1; continue }
                    if peek() == UInt8(ascii: "]") { i += 1; return node(.array(items)) }
                    throw syntax("',' or ']'")
                }
            case UInt8(ascii: "\""):
                return node(.string(try string()))
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return node(.number(try number()))
            case UInt8(ascii: "t"):
                try literal("true"); return node(.bool(true))
            case UInt8(ascii: "f"):
                try literal("false"); return node(.bool(false))
            case UInt8(ascii: "n"):
                try literal("null"); return node(.null)
            default:
                throw syntax("a value")
            }
        }

        mutating func literal(_ word: StaticString) throws(JSONScanError) {
            let start = i
            for c in UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
                guard peek() == c else { i = start; throw syntax("'\(word)'") }
                i += 1
            }
        }

        @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

        /// A number's literal: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
        mutating func number() throws(JSONScanError) -> String {
            let start = i
            if peek() == UInt8(ascii: "-") { i += 1 }
            guard let first = peek(), Self.isDigit(first) else { throw syntax("a digit") }
            i += 1
            if first == UInt8(ascii: "0") {
                if let b = peek(), Self.isDigit(b) { throw syntax("no leading zero") }
            } else {
                while let b = peek(), Self.isDigit(b) { i += 1 }
            }
            if peek() == UInt8(ascii: ".") {
                i += 1
                guard let b = peek(), Self.isDigit(b) else { throw syntax("a digit after '.'") }
                while let b = peek(), Self.isDigit(b) { i += 1 }
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                i += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { i += 1 }
                guard let b = peek(), Self.isDigit(b) else { throw syntax("a digit in the exponent") }
                while let b = peek(), Self.isDigit(b) { i += 1 }
            }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        /// A string's bytes, escapes decoded; `i` is at the opening quote.
        mutating func string() throws(JSONScanError) -> [UInt8] {
            i += 1
            var out: [UInt8] = []
            while true {
                // Plain bytes up to the next quote, backslash or control character, copied at once.
                let runStart = i
                while i < bytes.count, bytes[i] != 0x22, bytes[i] != 0x5C, bytes[i] >= 0x20 { i += 1 }
                if i > runStart { out.append(contentsOf: bytes[runStart..<i]) }
                guard let b = peek() else { throw syntax("'\"' to close the string") }
                if b == 0x22 { i += 1; return out }
                if b < 0x20 { throw syntax("no control characters in a string (escape them)") }
                i += 1  // the backslash
                guard let e = peek() else { throw syntax("an escape character") }
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    let escapeStart = i - 1
                    i += 1
                    var code = try hex4()
                    if (0xD800...0xDBFF).contains(code) {
                        guard peek() == UInt8(ascii: "\\"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "u") else {
                            throw error(.loneSurrogate, at: escapeStart)
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error(.loneSurrogate, at: escapeStart) }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(code) {
                        throw error(.loneSurrogate, at: escapeStart)
                    }
                    appendUTF8(Unicode.Scalar(code)!, to: &out)
                    continue
                default:
                    throw syntax("a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)")
                }
                i += 1
            }
        }

        mutating func hex4() throws(JSONScanError) -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 {
                guard let b = peek() else { throw syntax("4 hex digits") }
                let d: UInt32
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a")) + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A")) + 10
                default: throw syntax("4 hex digits")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }
    }
}

@inline(__always) func appendUTF8(_ s: Unicode.Scalar, to out: inout [UInt8]) {
    UTF8.encode(s) { out.append($0) }
}

func hex2(_ b: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}
