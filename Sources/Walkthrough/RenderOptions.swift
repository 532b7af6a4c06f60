import Foundation
import TransformerKit

/// The output formats every trace can be written in.
public enum TraceFormat: String, CaseIterable, Sendable {
    case text, markdown, latex, html, csv, json
}

public struct RenderOptions: Sendable {
    /// Decimal places for values.
    public var decimals: Int = 4
    /// Step filters (see `matches`); empty shows every step.
    public var steps: [String] = []
    /// Widest line for the text renderer before a matrix is split into column blocks.
    public var width: Int = 120
    /// Widest matrix shown whole (0: no limit); a wider one (a GPT-2 vocabulary of 50,257 logits) shows
    /// its first `maxColumns` columns and says how many more there are. JSON and CSV hold every value.
    public var maxColumns: Int = 100
    public init() {}

    /// A filter matches a step whose id equals it, starts with it followed by `.`, or fits it as a
    /// glob (`*` any run of characters): `enc0` matches every step of encoder layer 1,
    /// `*.weights` every attention-weight matrix.
    public func matches(_ step: TraceStep) -> Bool {
        if steps.isEmpty { return true }
        return steps.contains { f in
            step.id == f || step.id.hasPrefix(f + ".") || (f.contains("*") && glob(f, step.id))
        }
    }

    public func visibleSteps(_ doc: TraceDocument) -> [TraceStep] { doc.steps.filter(matches) }
}

func glob(_ pattern: String, _ s: String) -> Bool {
    let p = Array(pattern), t = Array(s)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && p[pi] == t[ti] {
            pi += 1; ti += 1
        } else if pi < p.count && p[pi] == "*" {
            star = pi; mark = ti; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; ti = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == "*" { pi += 1 }
    return pi == p.count
}

/// A number as the renderers print it: fixed decimals, `-∞`/`∞`/`NaN` for the non-finite, no `-0`.
public func formatValue(_ v: Float, decimals: Int) -> String {
    if v.isNaN { return "NaN" }
    if v.isInfinite { return v < 0 ? "-∞" : "∞" }
    return formatFixed(Double(v), decimals: decimals)
}

/// A finite number with fixed decimals and no `-0`, as `String(format: "%.{d}f")` prints it.
///
/// Pages hold tens of thousands of numbers and `String(format:)` costs microseconds each, so the common
/// case is done in integers: the product |x|·10^d is rounded to the nearest integer, which is what
/// printf does unless the product lies within a hair of a tie (there printf's exact decimal expansion
/// decides, so those few fall back to it). `formatValueReference` is the printf version.
public func formatFixed(_ x: Double, decimals: Int) -> String {
    guard x.isFinite, decimals >= 0 && decimals <= 9 else { return formatFixedReference(x, decimals: decimals) }
    let pow10: [Double] = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9]
    let scaled = x.magnitude * pow10[decimals]
    guard scaled < 9e15 else { return formatFixedReference(x, decimals: decimals) }
    let rounded = scaled.rounded(.toNearestOrEven)
    // ×10^d (d ≤ 9, exact in Double) leaves a relative error ≤ 2⁻⁵³: only a product this close to
    // k + ½ could round differently from the exact value.
    if abs(abs(scaled - rounded) - 0.5) <= scaled * 0x1p-50 + 0x1p-60 { return formatFixedReference(x, decimals: decimals) }
    let n = UInt64(rounded)
    if n == 0 { return decimals == 0 ? "0" : "0." + String(repeating: "0", count: decimals) }
    var digits = Array(String(n).utf8)
    if digits.count <= decimals { digits.insert(contentsOf: repeatElement(UInt8(ascii: "0"), count: decimals + 1 - digits.count), at: 0) }
    var out: [UInt8] = []
    out.reserveCapacity(digits.count + 2)
    if x < 0 { out.append(UInt8(ascii: "-")) }
    out.append(contentsOf: digits[..<(digits.count - decimals)])
    if decimals > 0 { out.append(UInt8(ascii: ".")); out.append(contentsOf: digits[(digits.count - decimals)...]) }
    return String(decoding: out, as: UTF8.self)
}

func formatFixedReference(_ x: Double, decimals: Int) -> String {
    let s = String(format: "%.\(decimals)f", x)
    if s.hasPrefix("-"), s.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(s.dropFirst()) }
    return s
}

/// `formatValue` by printf: the reference the fast path is tested against.
public func formatValueReference(_ v: Float, decimals: Int) -> String {
    if v.isNaN { return "NaN" }
    if v.isInfinite { return v < 0 ? "-∞" : "∞" }
    return formatFixedReference(Double(v), decimals: decimals)
}

/// Terminal columns a string takes: East Asian wide characters take two.
public func displayWidth(_ s: String) -> Int {
    s.unicodeScalars.reduce(0) { w, u in
        switch u.value {
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
            0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x20000...0x3FFFD:
            return w + 2
        case 0x0300...0x036F, 0x200B...0x200F:
            return w
        default:
            return w + 1
        }
    }
}

func padLeft(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - displayWidth(s))) + s }
func padRight(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - displayWidth(s))) }

extension TraceDocument {
    /// Renders the trace in one of the single-file formats (CSV writes a folder: see `CSVExport`).
    public func render(_ format: TraceFormat, options: RenderOptions = RenderOptions()) throws -> String {
        switch format {
        case .text: return TextRenderer(doc: self, options: options).render()
        case .json:
            var doc = self
            doc.steps = options.visibleSteps(self)
            return String(decoding: try doc.jsonData(), as: UTF8.self) + "\n"
        default:
            return try renderOther(format, options: options)
        }
    }
}

extension TraceStep {
    /// Steps whose values are whole numbers by construction (ids, masks), printed without decimals.
    public var isIntegral: Bool { op == .input || op == .argmax || op == .maskMatrix }
}

/// `s` with every character that `table` lists replaced by its entry (HTML entities, LaTeX escapes).
func replacing(_ s: String, _ table: [Character: String]) -> String {
    var r = ""
    r.reserveCapacity(s.utf8.count)
    for ch in s {
        if let e = table[ch] { r += e } else { r.append(ch) }
    }
    return r
}
