import Foundation
import ModelFiles
import TensorKit

/// How a hand-computed matrix was written.
public enum MatrixTextFormat: String, Codable, Sendable {
    /// Comma-, semicolon- or tab-separated lines.
    case csv
    /// Numbers separated by spaces, one row per line (also the walkthrough's own text output).
    case whitespace
    /// A Markdown table (`| a | b |`).
    case markdown
    /// A list of rows, `{"values", "shape"}`, or a trace step.
    case json
    /// Python / NumPy printing: `[[1. 2.] [3. 4.]]`.
    case python
    /// `\begin{bmatrix} … \end{bmatrix}` (and vmatrix, pmatrix, matrix, array) or bare `a & b \\ c & d`.
    case latex
    /// `--values "1,2;3,4"`: rows separated by `;` or new lines.
    case inline
}

/// A matrix typed by a person: its values, how many decimals each value was written with (which
/// sets the tolerance it is checked with), and the labels written around it, if any.
public struct ParsedMatrix: Codable, Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    /// Row-major.
    public var values: [Float]
    /// Digits after the decimal point as written (`0.047` → 3, `1e-3` → 3, `2` → 0); `nil` for ±∞ and NaN.
    public var decimals: [Int?]
    /// Each value as written.
    public var literals: [String]
    /// A label column written before the numbers (`马 & 0.79 & …`), if any.
    public var rowLabels: [String]?
    /// A header row written above the numbers, if any.
    public var colLabels: [String]?
    public var format: MatrixTextFormat
    /// Which matrix of the text this is (0-based), and how many the text holds.
    public var index: Int = 0
    public var matrixCount: Int = 1
    /// The line (1-based) where it starts, when known.
    public var line: Int?

    public init(
        rows: Int, cols: Int, values: [Float], decimals: [Int?]? = nil, literals: [String]? = nil,
        rowLabels: [String]? = nil, colLabels: [String]? = nil, format: MatrixTextFormat = .inline
    ) {
        precondition(rows * cols == values.count, "\(rows)×\(cols) does not hold \(values.count) values")
        self.rows = rows; self.cols = cols; self.values = values
        self.decimals = decimals ?? Array(repeating: nil, count: values.count)
        self.literals = literals ?? values.map { "\($0)" }
        self.rowLabels = rowLabels; self.colLabels = colLabels; self.format = format
    }

    /// A tensor's values as if written with `decimals` places (rounded), or at full precision (`nil`).
    public init(_ t: Tensor, decimals: Int?) {
        let m = t.asMatrix
        if let decimals {
            let lits = m.data.map { v -> String in
                v.isFinite ? String(format: "%.\(decimals)f", Double(v)) : (v.isNaN ? "nan" : (v < 0 ? "-inf" : "inf"))
            }
            self.init(
                rows: m.rows, cols: m.cols, values: lits.map { Float($0) ?? .nan }, decimals: m.data.map { $0.isFinite ? decimals : nil },
                literals: lits)
        } else {
            self.init(rows: m.rows, cols: m.cols, values: m.data, decimals: m.data.map { _ in nil })
        }
    }

    public var shape: [Int] { [rows, cols] }
    public var tensor: Tensor { Tensor(shape: [rows, cols], data: values) }
    public subscript(r: Int, c: Int) -> Float { values[r * cols + c] }
}

/// Why a text could not be read as a matrix: one line, naming the row or line and what was expected.
public struct MatrixParseError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Reads hand-computed matrices from CSV, JSON, LaTeX (as pasted from an article), Markdown tables
/// or whitespace-separated rows.
public enum MatrixParser {
    /// The matrix number `index` (0-based; default the first) of `text`.
    public static func parse(_ text: String, index: Int? = nil) throws -> ParsedMatrix {
        let grids = try candidates(text)
        return try pick(grids, index: index)
    }

    /// Every matrix the text holds, each parsed or with the reason it cannot be.
    public static func parseEach(_ text: String) throws -> [Result<ParsedMatrix, MatrixParseError>] {
        let grids = try candidates(text)
        return grids.enumerated().map { i, g in
            Result { try build(g, number: i, count: grids.count) }.mapError { $0 as? MatrixParseError ?? MatrixParseError("\($0)") }
        }
    }

    /// The command line's `--values`: rows separated by `;` or new lines, values by `,` or spaces
    /// (`"1,2;3,4"`). LaTeX or JSON given this way is read as such.
    public static func parseInline(_ text: String, index: Int? = nil) throws -> ParsedMatrix {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if t.hasPrefix("[") || t.hasPrefix("{") || t.contains("&") || t.contains("\\") || t.contains("|") {
            return try parse(text, index: index)
        }
        let rowTexts = t.components(separatedBy: CharacterSet(charactersIn: ";\n"))
        let useComma = t.contains(",")
        var rows: [RawRow] = []
        for r in rowTexts {
            let parts = useComma ? r.components(separatedBy: ",") : r.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            rows.append(RawRow(cells: parts.map(cell(plain:)), line: nil))
        }
        let g = Grid(rows: rows, format: .inline, line: nil)
        return try pick([g], index: index)
    }

    static func pick(_ grids: [Grid], index: Int?) throws -> ParsedMatrix {
        guard !grids.isEmpty else {
            throw MatrixParseError(
                """
                no matrix found: expected CSV, JSON, LaTeX (\\begin{bmatrix} … \\end{bmatrix} or a & b \\\\ c & d) or rows of \
                numbers separated by spaces
                """
            )
        }
        let i = index ?? 0
        guard grids.indices.contains(i) else {
            let shapes = grids.enumerated().map { n, g in
                (try? build(g, number: n, count: grids.count)).map { "\(n + 1): \($0.rows)×\($0.cols)" } ?? "\(n + 1): unreadable"
            }
            throw MatrixParseError(
                "the text holds \(grids.count) \(grids.count == 1 ? "matrix" : "matrices") (\(shapes.joined(separator: ", "))); there is no matrix \(i + 1)"
            )
        }
        return try build(grids[i], number: i, count: grids.count)
    }

    // MARK: - Cells, rows, grids

    enum Cell: Equatable {
        case number(Float, decimals: Int?, literal: String)
        case text(String)
        case empty
        case ellipsis(String)

        var isNumber: Bool { if case .number = self { return true }; return false }
        var isText: Bool { if case .text = self { return true }; return false }
        var isEmpty: Bool { self == .empty }
        var label: String {
            switch self {
            case .number(_, _, let l), .text(let l), .ellipsis(let l): return l
            case .empty: return ""
            }
        }
    }

    struct RawRow {
        var cells: [Cell]
        var line: Int?
    }

    struct Grid {
        var rows: [RawRow]
        var format: MatrixTextFormat
        var line: Int?
        var rowLabels: [String]? = nil
        var colLabels: [String]? = nil
        var hasNumbers: Bool { rows.contains { $0.cells.contains(where: \.isNumber) } }
    }

    /// A value written as `0.5`, `-0.57`, `−0.5`, `1e-3`, `.5`, `-inf`, `−∞`, `-\infty`, `nan`.
    static func number(_ raw: String) -> (value: Float, decimals: Int?)? {
        var s = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        for minus in ["\u{2212}", "\u{2013}", "\u{FE63}", "\u{FF0D}", "\u{2012}"] { s = s.replacingOccurrences(of: minus, with: "-") }
        s = s.replacingOccurrences(of: "\u{FF0B}", with: "+")
        s = s.replacingOccurrences(of: "\\infty", with: "∞")
        s = s.filter { !$0.isWhitespace }
        guard !s.isEmpty else { return nil }
        let lower = s.lowercased()
        var body = Substring(lower)
        var negative = false
        if body.first == "-" || body.first == "+" { negative = body.first == "-"; body = body.dropFirst() }
        if ["inf", "infinity", "∞"].contains(String(body)) { return (negative ? -.infinity : .infinity, nil) }
        if body == "nan" { return (.nan, nil) }
        // digits [. digits] [e [+-] digits]
        var intDigits = 0, fracDigits = 0, exponent = 0
        var i = body.startIndex
        while i < body.endIndex, body[i].isASCII, body[i].isNumber { intDigits += 1; i = body.index(after: i) }
        if i < body.endIndex, body[i] == "." {
            i = body.index(after: i)
            while i < body.endIndex, body[i].isASCII, body[i].isNumber { fracDigits += 1; i = body.index(after: i) }
        }
        guard intDigits + fracDigits > 0 else { return nil }
        if i < body.endIndex, body[i] == "e" {
            i = body.index(after: i)
            var sign = 1
            if i < body.endIndex, body[i] == "-" || body[i] == "+" { sign = body[i] == "-" ? -1 : 1; i = body.index(after: i) }
            var digits = "", any = false
            while i < body.endIndex, body[i].isASCII, body[i].isNumber { digits.append(body[i]); any = true; i = body.index(after: i) }
            guard any, let e = Int(digits.prefix(6)) else { return nil }
            exponent = sign * e
        }
        guard i == body.endIndex else { return nil }
        var normal = String(body)
        if normal.hasPrefix(".") { normal = "0" + normal }
        if normal.hasSuffix(".") { normal += "0" }
        normal = normal.replacingOccurrences(of: ".e", with: ".0e")
        guard let d = Double(normal) else { return nil }
        return (Float(negative ? -d : d), max(0, fracDigits - exponent))
    }

    static func isEllipsis(_ s: String) -> Bool {
        let t = s.filter { !$0.isWhitespace }
        guard !t.isEmpty else { return false }
        return t.allSatisfy { "….·⋯⋮⋱⋰•∙".contains($0) }
    }

    /// A cell from plain text (CSV, whitespace, Markdown, inline).
    static func cell(plain raw: String) -> Cell {
        var s = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if s.count >= 2, s.hasPrefix("\""), s.hasSuffix("\"") { s = String(s.dropFirst().dropLast()) }
        if s.isEmpty { return .empty }
        if let (v, d) = number(s) { return .number(v, decimals: d, literal: s) }
        if isEllipsis(s) { return .ellipsis(s) }
        return .text(s)
    }

    // MARK: - Which format

    static func candidates(_ text: String) throws -> [Grid] {
        let t = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        let trimmed = t.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw MatrixParseError("the matrix text is empty") }
        if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") {
            do {
                return try jsonGrids(t)
            } catch let jsonError as MatrixParseError {
                if trimmed.hasPrefix("["), let g = pythonGrid(t) { return [g] }
                throw jsonError
            }
        }
        if t.contains("\\begin") || t.contains("&") || t.contains("\\\\") {
            return latexGrids(t).filter(\.hasNumbers)
        }
        return delimitedGrids(t).filter(\.hasNumbers)
    }

    // MARK: - CSV, whitespace, Markdown

    static func delimitedGrids(_ text: String) -> [Grid] {
        let lines = text.components(separatedBy: "\n")
        let nonEmpty = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        let markdown =
            !nonEmpty.isEmpty && nonEmpty.filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("|") }.count * 2 > nonEmpty.count
        var delimiter: Character? = nil
        var decimalComma = false
        if !markdown {
            let counts = ["\t", ";", ","].map { d in (Character(d), nonEmpty.filter { $0.contains(d) }.count) }
            if let all = counts.first(where: { $0.1 == nonEmpty.count && $0.1 > 0 }) {
                delimiter = all.0
            } else if let most = counts.max(by: { $0.1 < $1.1 }), most.1 * 2 >= nonEmpty.count, most.1 > 0 {
                delimiter = most.0
            }
            if delimiter == ";" {
                // 0,57;0,12 — semicolons between values, commas as decimal points
                decimalComma = nonEmpty.contains { $0.range(of: #"\d,\d"#, options: .regularExpression) != nil }
            }
        }
        let format: MatrixTextFormat = markdown ? .markdown : (delimiter == nil ? .whitespace : .csv)
        var grids: [Grid] = []
        var current: [RawRow] = []
        var start: Int? = nil
        func flush() {
            if !current.isEmpty { grids.append(Grid(rows: current, format: format, line: start)) }
            current = []; start = nil
        }
        for (n, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { flush(); continue }
            var cells: [String]
            if markdown {
                var body = trimmed
                if body.hasPrefix("|") { body.removeFirst() }
                if body.hasSuffix("|") { body.removeLast() }
                cells = body.components(separatedBy: "|")
                // the |---|:--:| rule under a Markdown header
                if cells.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).allSatisfy { "-: ".contains($0) } }) { continue }
            } else if let delimiter {
                cells = splitDelimited(line, delimiter)
                if decimalComma { cells = cells.map { $0.replacingOccurrences(of: ",", with: ".") } }
            } else {
                cells = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\u{3000}" }).map(String.init)
            }
            var row = cells.map(cell(plain:))
            if delimiter != nil || markdown {
                while row.count > 1, row.last == .empty { row.removeLast() }  // a trailing delimiter
            }
            if start == nil { start = n + 1 }
            current.append(RawRow(cells: row, line: n + 1))
        }
        flush()
        return grids
    }

    /// Splits one CSV line, honouring double-quoted fields.
    static func splitDelimited(_ line: String, _ d: Character) -> [String] {
        var out: [String] = [], field = "", quoted = false
        let it = Array(line)
        var i = 0
        while i < it.count {
            let c = it[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < it.count, it[i + 1] == "\"" { field.append("\""); i += 1 } else { quoted = false }
                } else {
                    field.append(c)
                }
            } else if c == "\"" && field.trimmingCharacters(in: .whitespaces).isEmpty {
                quoted = true; field = ""
            } else if c == d {
                out.append(field); field = ""
            } else {
                field.append(c)
            }
            i += 1
        }
        out.append(field)
        return out
    }

    // MARK: - Python / NumPy printing

    /// `[[1. 2.] [3. 4.]]` or `array([[1, 2], [3, 4]])`: each innermost bracket is a row.
    static func pythonGrid(_ text: String) -> Grid? {
        var rows: [RawRow] = []
        var line = 1, depth = 0
        var current = "", rowLine = 1
        var inner = false
        for c in text {
            if c == "\n" { line += 1 }
            if c == "[" { depth += 1; current = ""; inner = true; rowLine = line; continue }
            if c == "]" {
                if inner {
                    let parts = current.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
                    if !parts.isEmpty { rows.append(RawRow(cells: parts.map(cell(plain:)), line: rowLine)) }
                }
                inner = false; depth -= 1; current = ""
                continue
            }
            if inner { current.append(c) }
        }
        guard depth == 0, !rows.isEmpty, rows.allSatisfy({ $0.cells.allSatisfy(\.isNumber) }) else { return nil }
        return Grid(rows: rows, format: .python, line: 1)
    }

    // MARK: - LaTeX

    static let matrixEnvironments: Set<String> = [
        "matrix", "bmatrix", "Bmatrix", "pmatrix", "vmatrix", "Vmatrix", "smallmatrix",
        "matrix*", "bmatrix*", "Bmatrix*", "pmatrix*", "vmatrix*", "Vmatrix*", "array", "tabular"
    ]

    /// The innermost matrix environments of the text, or the whole text as a bare `a & b \\ c & d`.
    static func latexGrids(_ text: String) -> [Grid] {
        let ns = text as NSString
        guard let re = try? NSRegularExpression(pattern: #"\\(begin|end)\s*\{([A-Za-z*]+)\}"#) else { return [] }
        let matches = re.matches(in: text, range: NSRange(location: 0, length: ns.length))
        if matches.isEmpty {
            return [latexGrid(body: text, bodyOffset: 0, in: ns)]
        }
        struct Open { var name: String; var bodyStart: Int; var nested: Bool }
        var stack: [Open] = []
        var found: [(start: Int, end: Int)] = []
        for m in matches {
            let kind = ns.substring(with: m.range(at: 1)), name = ns.substring(with: m.range(at: 2))
            guard matrixEnvironments.contains(name) else { continue }
            if kind == "begin" {
                var bodyStart = m.range.location + m.range.length
                if name == "array" || name == "tabular" { bodyStart = skipColumnSpec(ns, from: bodyStart) }
                if !stack.isEmpty { stack[stack.count - 1].nested = true }
                stack.append(Open(name: name, bodyStart: bodyStart, nested: false))
            } else if let i = stack.lastIndex(where: { $0.name == name }) {
                let open = stack[i]
                stack.removeSubrange(i...)
                if !open.nested, m.range.location >= open.bodyStart {
                    found.append((open.bodyStart, m.range.location))
                }
            }
        }
        return found.sorted { $0.start < $1.start }.map {
            latexGrid(body: ns.substring(with: NSRange(location: $0.start, length: $0.end - $0.start)), bodyOffset: $0.start, in: ns)
        }
    }

    /// Skips `[t]{ccc}` (or `{}`) after `\begin{array}`.
    static func skipColumnSpec(_ ns: NSString, from start: Int) -> Int {
        var i = start
        func skipSpaces() {
            while i < ns.length, let u = UnicodeScalar(ns.character(at: i)), CharacterSet.whitespaces.contains(u) { i += 1 }
        }
        skipSpaces()
        if i < ns.length, ns.character(at: i) == 0x5B /* [ */ {
            while i < ns.length, ns.character(at: i) != 0x5D { i += 1 }
            i += 1
            skipSpaces()
        }
        if i < ns.length, ns.character(at: i) == 0x7B /* { */ {
            var depth = 0
            while i < ns.length {
                let c = ns.character(at: i)
                if c == 0x7B { depth += 1 } else if c == 0x7D { depth -= 1; if depth == 0 { i += 1; break } }
                i += 1
            }
        }
        return i
    }

    static func lineNumber(_ ns: NSString, at offset: Int) -> Int {
        var n = 1
        let upTo = min(offset, ns.length)
        for i in 0..<upTo where ns.character(at: i) == 0x0A { n += 1 }
        return n
    }

    static func latexGrid(body: String, bodyOffset: Int, in ns: NSString) -> Grid {
        let b = body as NSString
        // Row breaks: \\ (with an optional [2pt]) or \cr.
        let rowRE = try! NSRegularExpression(pattern: #"\\\\(\s*\[[^\]]*\])?|\\cr(?![a-zA-Z])"#)
        var rows: [RawRow] = []
        var pos = 0
        var pieces: [(String, Int)] = []
        for m in rowRE.matches(in: body, range: NSRange(location: 0, length: b.length)) {
            pieces.append((b.substring(with: NSRange(location: pos, length: m.range.location - pos)), pos))
            pos = m.range.location + m.range.length
        }
        pieces.append((b.substring(from: pos), pos))
        let firstLine = lineNumber(ns, at: bodyOffset)
        for (piece, offset) in pieces {
            let cleanedRow = piece.replacingOccurrences(
                of: #"\\(hline|midrule|toprule|bottomrule|cline\{[^}]*\})"#, with: " ", options: .regularExpression)
            let cells = splitAmpersands(cleanedRow).map { latexCell($0) }
            if cells.allSatisfy(\.isEmpty) { continue }
            let lead = piece.prefix { $0.isWhitespace }.filter { $0 == "\n" }.count
            let line = firstLine + (b.substring(to: offset) as String).filter { $0 == "\n" }.count + lead
            rows.append(RawRow(cells: cells, line: line))
        }
        return Grid(rows: rows, format: .latex, line: firstLine)
    }

    /// Splits on `&` but not on `\&`.
    static func splitAmpersands(_ s: String) -> [String] {
        var out: [String] = [], cur = ""
        var prevBackslash = false
        for c in s {
            if c == "&" && !prevBackslash { out.append(cur); cur = "" } else { cur.append(c) }
            prevBackslash = c == "\\" && !prevBackslash
        }
        out.append(cur)
        return out
    }

    static let dropCommands = [
        "left", "right", "big", "Big", "bigg", "Bigg", "space", "quad", "qquad", "displaystyle", "textstyle", "scriptstyle",
        "text", "textrm", "textbf", "textit", "mathrm", "mathbf", "mathit", "mathsf", "boldsymbol", "bm", "operatorname",
        "color", "phantom", "hphantom", "vphantom", "mathstrut", "strut", "enspace", "thinspace", "negthinspace"
    ]

    /// A LaTeX cell with spacing, font commands and braces removed: `-\,0.57` → `-0.57`, `\text{马}` → `马`.
    static func latexCell(_ raw: String) -> Cell {
        var s = raw
        s = s.replacingOccurrences(
            of: #"\\(cdots|ldots|dots|vdots|ddots|cdot\s*\\cdot\s*\\cdot)(?![a-zA-Z])"#, with: "…", options: .regularExpression)
        s = s.replacingOccurrences(of: #"\\infty(?![a-zA-Z])"#, with: "∞", options: .regularExpression)
        s = s.replacingOccurrences(of: #"\\(\#(dropCommands.joined(separator: "|")))(?![a-zA-Z])"#, with: " ", options: .regularExpression)
        s = s.replacingOccurrences(of: #"\\[,;:! ]"#, with: " ", options: .regularExpression)
        s = s.replacingOccurrences(of: #"\\[{}]"#, with: " ", options: .regularExpression)
        s = s.replacingOccurrences(of: #"[{}$~]"#, with: " ", options: .regularExpression)
        s = s.trimmingCharacters(in: .whitespacesAndNewlines)
        if s.isEmpty { return .empty }
        if let (v, d) = number(s) { return .number(v, decimals: d, literal: s.filter { !$0.isWhitespace }) }
        if isEllipsis(s) { return .ellipsis(s) }
        return .text(s.replacingOccurrences(of: #"\s+"#, with: " ", options: .regularExpression))
    }

    // MARK: - JSON
    //
    // Read with the package's JSON scanner, which keeps each number's literal (the checker counts the
    // decimals a person wrote) and each value's line (for "JSON line N: …").

    static func jsonGrids(_ text: String) throws -> [Grid] {
        let root: JSONNode
        do { root = try JSONScanner().scan(Array(text.utf8)) } catch {
            throw MatrixParseError("JSON line \(error.line): \(error.message)")
        }
        if field(root, "steps") != nil && field(root, "parameters") != nil {
            throw MatrixParseError(
                "this JSON is a whole trace, not one matrix: give one step's matrix (compare against a saved trace with --trace)")
        }
        switch root.value {
        case .object:
            return [try jsonObjectGrid(root)]
        case .array(let items):
            if !items.isEmpty, items.allSatisfy({ $0.members != nil }) {
                return try items.map(jsonObjectGrid)
            }
            if !items.isEmpty, items.allSatisfy({ $0.array?.first?.array != nil }) {
                return try items.map { try jsonRowsGrid($0) }  // a list of matrices
            }
            return [try jsonRowsGrid(root)]
        default:
            throw MatrixParseError("JSON: expected a list of rows or an object with \"values\" and \"shape\"")
        }
    }

    /// The first of `names` that `node` (an object) has.
    static func field(_ node: JSONNode, _ names: String...) -> JSONNode? {
        for n in names { if let v = node[n] { return v } }
        return nil
    }

    static func jsonCell(_ n: JSONNode) -> Cell {
        switch n.value {
        case .number(let lit):
            if let (v, d) = number(lit) { return .number(v, decimals: d, literal: lit) }
            return .text(lit)
        case .string: return cell(plain: n.string ?? "")
        case .null: return .empty
        case .bool(let b): return .text(b ? "true" : "false")
        case .array, .object: return .text("(nested)")
        }
    }

    static func jsonRowsGrid(_ node: JSONNode) throws -> Grid {
        guard let items = node.array else { throw MatrixParseError("JSON: expected a list of rows") }
        let line = node.line
        if items.allSatisfy({ $0.array == nil }) {
            return Grid(rows: [RawRow(cells: items.map(jsonCell), line: line)], format: .json, line: line)  // one row
        }
        var rows: [RawRow] = []
        for (i, item) in items.enumerated() {
            guard let cells = item.array else {
                throw MatrixParseError("JSON line \(item.line): row \(i + 1) is not a list of values")
            }
            rows.append(RawRow(cells: cells.map(jsonCell), line: item.line))
        }
        return Grid(rows: rows, format: .json, line: line)
    }

    static func jsonObjectGrid(_ node: JSONNode) throws -> Grid {
        guard let values = field(node, "values", "data", "matrix") else {
            throw MatrixParseError(
                "JSON line \(node.line): the object has no \"values\" (expected {\"values\": …, \"shape\": [rows, cols]} or a list of rows)"
            )
        }
        var grid: Grid
        if let items = values.array, items.allSatisfy({ $0.array == nil }) {
            let line = values.line
            var shape: [Int]? = nil
            if let dims = node["shape"]?.array {
                shape = dims.compactMap(\.integer)
                if shape?.count != dims.count { shape = nil }
            }
            let (r, c): (Int, Int)
            switch shape?.count {
            case 2?: (r, c) = (shape![0], shape![1])
            case 1?: (r, c) = (1, shape![0])
            case nil where node["shape"] == nil: (r, c) = (1, items.count)
            default: throw MatrixParseError("JSON: \"shape\" must be [rows, cols]")
            }
            guard r >= 0, c >= 0, r * c == items.count else {
                throw MatrixParseError("JSON: \"shape\" [\(r), \(c)] needs \(r * c) values, \"values\" has \(items.count)")
            }
            let cells = items.map(jsonCell)
            grid = Grid(rows: (0..<r).map { RawRow(cells: Array(cells[($0 * c)..<(($0 + 1) * c)]), line: line) }, format: .json, line: line)
        } else {
            grid = try jsonRowsGrid(values)
        }
        func strings(_ n: JSONNode?) -> [String]? {
            n?.array?.map { $0.string ?? $0.numberLiteral ?? "" }
        }
        grid.rowLabels = strings(field(node, "row_labels", "rowLabels", "rows"))
        grid.colLabels = strings(field(node, "col_labels", "colLabels", "columns", "cols"))
        return grid
    }

    // MARK: - Grid → matrix

    static let indexHeaderNames: Set<String> = ["", "i", "j", "#", "pos", "position", "idx", "index", "row", "n", "token", "k"]

    static func build(_ grid: Grid, number: Int, count: Int) throws -> ParsedMatrix {
        let which = count > 1 ? "matrix \(number + 1): " : ""
        func at(_ line: Int?) -> String {
            guard let line, grid.format != .inline else { return which }
            return "\(which)line \(line): "
        }
        var rows = grid.rows.filter { !$0.cells.allSatisfy(\.isEmpty) }
        guard !rows.isEmpty else { throw MatrixParseError("\(which)no values found") }
        // A header: a first row of names (no numbers) above rows that hold numbers.
        var header: [String]? = nil
        if rows.count >= 2, !rows[0].cells.contains(where: \.isNumber), rows[0].cells.contains(where: \.isText) {
            header = rows[0].cells.map(\.label)
            rows.removeFirst()
        }
        // A label column: every row starts with a name (马 & 0.79 & …).
        var labels: [String]? = nil
        if rows.allSatisfy({ $0.cells.count >= 2 && ($0.cells[0].isText) }) {
            labels = rows.map { $0.cells[0].label }
            rows = rows.map { RawRow(cells: Array($0.cells.dropFirst()), line: $0.line) }
        } else if let h = header, let corner = h.first, indexHeaderNames.contains(corner.lowercased()), h.count >= 2,
            rows.allSatisfy({ $0.cells.count == h.count })
        {
            // An index column under a header like "i": 0, 1, 2, … (or 1, 2, 3, …).
            let firsts = rows.map { r -> Int? in
                if case .number(let v, _, _) = r.cells[0], v == v.rounded(), abs(v) < 1e6 { return Int(v) }
                return nil
            }
            if firsts.allSatisfy({ $0 != nil }), let f = firsts.first!, f == 0 || f == 1,
                firsts.enumerated().allSatisfy({ $0.element == f + $0.offset })
            {
                labels = firsts.map { String($0!) }
                rows = rows.map { RawRow(cells: Array($0.cells.dropFirst()), line: $0.line) }
                header = Array(h.dropFirst())
            }
        }
        let cols = rows[0].cells.count
        for (r, row) in rows.enumerated() where row.cells.count != cols {
            throw MatrixParseError(
                "\(at(row.line))row \(r + 1) has \(row.cells.count) value\(row.cells.count == 1 ? "" : "s"), row 1 has \(cols)")
        }
        var values: [Float] = [], decimals: [Int?] = [], literals: [String] = []
        for (r, row) in rows.enumerated() {
            for (c, cell) in row.cells.enumerated() {
                let place = "row \(r + 1), column \(c + 1)\(labels.map { " (\($0[r]))" } ?? "")"
                switch cell {
                case .number(let v, let d, let l):
                    values.append(v); decimals.append(d); literals.append(l)
                case .text(let t):
                    throw MatrixParseError("\(at(row.line))\(place): \"\(t)\" is not a number")
                case .empty:
                    throw MatrixParseError("\(at(row.line))\(place) is empty; expected a number")
                case .ellipsis(let t):
                    throw MatrixParseError(
                        "\(at(row.line))\(place) is \"\(t)\": a matrix with elided values cannot be checked; write out every value")
                }
            }
        }
        var colLabels: [String]? = grid.colLabels
        if colLabels == nil, let h = header {
            if h.count == cols { colLabels = h } else if labels != nil, h.count == cols + 1 { colLabels = Array(h.dropFirst()) }
        }
        var m = ParsedMatrix(
            rows: rows.count, cols: cols, values: values, decimals: decimals, literals: literals,
            rowLabels: grid.rowLabels ?? labels, colLabels: colLabels, format: grid.format)
        if m.rowLabels?.count != m.rows { m.rowLabels = nil }
        if m.colLabels?.count != m.cols { m.colLabels = nil }
        m.index = number
        m.matrixCount = count
        m.line = grid.line
        return m
    }
}
