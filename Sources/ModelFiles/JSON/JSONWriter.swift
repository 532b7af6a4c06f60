// MARK: - Writing JSON whose key order and spelling matter
//
// `JSONEncoder` sorts keys or keeps none of their order, and may rewrite strings; a `tokenizer.json`
// wants Hugging Face's key order, exact token bytes and one entry a line (so a diff of two
// vocabularies reads). This tree says what to write; `JSONScanner` reads it back.

/// A JSON value to write, members in the order given.
package indirect enum JSONValueOut: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([JSONValueOut])
    case object([(String, JSONValueOut)])

    /// UTF-8 text as serde_json's pretty printer lays it out: two spaces a level, one member or
    /// item a line, `[]` and `{}` for empty containers.
    package func rendered() -> [UInt8] {
        var out: [UInt8] = []
        render(into: &out, depth: 0)
        out.append(0x0A)
        return out
    }

    private func render(into out: inout [UInt8], depth: Int) {
        func newline(_ d: Int) {
            out.append(0x0A)
            out += [UInt8](repeating: 0x20, count: 2 * d)
        }
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .int(let i): out += Array(String(i).utf8)
        case .string(let s): appendJSONString(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(depth + 1)
                item.render(into: &out, depth: depth + 1)
            }
            if !items.isEmpty { newline(depth) }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(depth + 1)
                appendJSONString(key, to: &out)
                out += Array(": ".utf8)
                value.render(into: &out, depth: depth + 1)
            }
            if !members.isEmpty { newline(depth) }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Whether a scanned value says the same: same kinds, strings byte for byte, integers by value,
    /// objects with the same keys (in any order) and equal values, arrays item by item.
    package func matches(_ node: JSONNode) -> Bool {
        switch (self, node.value) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .number): return node.integer == a
        case (.string(let a), .string(let b)): return Array(a.utf8) == b
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.matches($1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            return a.allSatisfy { key, value in node[key].map { value.matches($0) } ?? false }
        default: return false
        }
    }
}
