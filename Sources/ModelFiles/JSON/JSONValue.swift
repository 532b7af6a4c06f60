/// A scanned JSON document as plain values, for readers of config files that look fields up by name
/// and only need to tell a missing field from a wrong one, and a number from a boolean.
package enum JSONValue: Sendable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    package init(_ node: JSONNode) {
        switch node.value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let literal): self = .number(Double(literal) ?? .nan)
        case .string: self = .string(node.string ?? "")
        case .array(let items): self = .array(items.map(JSONValue.init))
        case .object(let members):
            // Keys are unique as bytes (the scanner refuses repeats); equal-as-String keys keep the last.
            self = .object(Dictionary(members.map { ($0.key, JSONValue($0.value)) }, uniquingKeysWith: { _, last in last }))
        }
    }

    /// Scans `bytes` (UTF-8 JSON).
    package static func parse<Bytes: Collection>(_ bytes: Bytes) throws(JSONScanError) -> JSONValue where Bytes.Element == UInt8 {
        JSONValue(try JSONScanner().scan(bytes))
    }

    package var integer: Int? {
        guard case .number(let x) = self, x == x.rounded(), abs(x) < 9e15 else { return nil }
        return Int(x)
    }

    package var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// The value for an error message: scalars as written, containers by kind.
    package var brief: String {
        switch self {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .number(let x): x == x.rounded() && abs(x) < 9e15 ? "\(Int(x))" : "\(x)"
        case .string(let s): "\"" + escapedForMessage(s.count > 40 ? String(s.prefix(40)) + "…" : s) + "\""
        case .array, .object: kind
        }
    }
}
