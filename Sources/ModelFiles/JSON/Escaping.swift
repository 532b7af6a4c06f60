// MARK: - Escaping strings: JSON literals and one-line messages
//
// Two needs, one table each. A JSON writer must escape `"`, `\` and the control characters (as
// serde_json and Python's json module do, so files round-trip with the Python tools). An error
// message must stay on one line and show what was really there, so it escapes the line breaks
// Unicode knows (U+0085, U+2028, U+2029) and DEL as well.

/// `s` as a JSON string literal, quotes included: `"`, `\`, `\b \f \n \r \t` as short escapes, other
/// control characters as `\u00XX` — byte for byte what serde_json (Python's `safetensors`) writes.
/// Also what `transformer embed --format json` writes sentences with.
public func jsonString(_ s: String) -> String {
    var out = [UInt8]()
    appendJSONString(s, to: &out)
    return String(decoding: out, as: UTF8.self)
}

/// Appends `jsonString(s)`'s UTF-8 bytes to `out` (writers that build a file as bytes).
package func appendJSONString(_ s: String, to out: inout [UInt8]) {
    out.reserveCapacity(out.count + s.utf8.count + 2)
    out.append(UInt8(ascii: "\""))
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "\""): out += [0x5C, 0x22]
        case UInt8(ascii: "\\"): out += [0x5C, 0x5C]
        case 0x08: out += [0x5C, UInt8(ascii: "b")]
        case 0x0C: out += [0x5C, UInt8(ascii: "f")]
        case 0x0A: out += [0x5C, UInt8(ascii: "n")]
        case 0x0D: out += [0x5C, UInt8(ascii: "r")]
        case 0x09: out += [0x5C, UInt8(ascii: "t")]
        case 0..<0x20: out += Array("\\u00".utf8) + Array(hex2(b).lowercased().utf8)
        default: out.append(b)
        }
    }
    out.append(UInt8(ascii: "\""))
}

/// The scalars that would break a one-line message or hide what was there.
@inline(__always) func breaksLine(_ u: Unicode.Scalar) -> Bool {
    u.value < 0x20 || u.value == 0x7F || u.value == 0x85 || u.value == 0x2028 || u.value == 0x2029
}

func unicodeEscape(_ u: Unicode.Scalar) -> String {
    let h = String(u.value, radix: 16, uppercase: true)
    return "\\u" + String(repeating: "0", count: max(0, 4 - h.count)) + h
}

/// `s` for an error message: quotes and backslashes escaped, line breaks and other control
/// characters as `\n`, `\r`, `\t` or `\uXXXX`.
package func escapedForMessage(_ s: String) -> String {
    let short: [Unicode.Scalar: String] = ["\n": "\\n", "\r": "\\r", "\t": "\\t", "\"": "\\\"", "\\": "\\\\"]
    var out = ""
    for u in s.unicodeScalars {
        if let e = short[u] { out += e } else if breaksLine(u) { out += unicodeEscape(u) } else { out.unicodeScalars.append(u) }
    }
    return out
}

/// A name in double quotes for a message: escaped as `escapedForMessage`, cut after `limit` scalars.
package func quotedForMessage(_ s: String, limit: Int = 120) -> String {
    let short = s.unicodeScalars.count > limit ? String(String.UnicodeScalarView(s.unicodeScalars.prefix(limit))) + "…" : s
    return "\"" + escapedForMessage(short) + "\""
}

/// A message guaranteed to be one line whatever went into it (every line break as `\uXXXX`).
package func oneLine(_ s: String) -> String {
    guard s.unicodeScalars.contains(where: breaksLine) else { return s }
    var out = ""
    for u in s.unicodeScalars { if breaksLine(u) { out += unicodeEscape(u) } else { out.unicodeScalars.append(u) } }
    return out
}
