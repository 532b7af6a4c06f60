import Foundation
import ModelFiles

// MARK: - Chat templates: the part of Jinja that model files use
//
// A GGUF file's `tokenizer.chat_template` (and a Hugging Face `tokenizer_config.json`'s
// `chat_template`) is a Jinja template that turns a list of messages into the exact text the model
// was trained on. Hugging Face renders it with Jinja2 (`trim_blocks` and `lstrip_blocks` on); this is
// the subset those templates use — text, `{{ }}`, `{% if/elif/else %}`, `{% for %}` with `loop.*`,
// `{% set %}` (also into a `namespace`), string and number literals, lists and dicts, `+ - * / % ~`,
// comparisons, `and or not in is`, attributes and subscripts, the filters and string methods templates
// call, `raise_exception` — with an error naming the construct and its line for anything else.

/// Why a chat template could not be read or rendered: the construct, and its line in the template.
public struct ChatTemplateError: Error, CustomStringConvertible, Sendable {
    /// One line, for the user.
    public var message: String
    /// Makes an error with a one-line message.
    public init(_ message: String) { self.message = message }
    /// The message, as is.
    public var description: String { message }
}

/// A parsed chat template, ready to render messages.
public struct ChatTemplate: Sendable {
    let nodes: [TemplateNode]

    /// Parses `source`.
    /// - Throws: `ChatTemplateError` naming the line and the construct this subset does not support.
    public init(_ source: String) throws {
        var parser = TemplateParser(tokens: try TemplateLexer.tokens(source))
        nodes = try parser.parseBody(until: [])
    }

    /// Renders the template with `variables` (`messages`, `add_generation_prompt`, `bos_token`, …).
    /// - Throws: `ChatTemplateError` when the template raises an exception or uses a value wrongly.
    public func render(_ variables: [String: TemplateValue]) throws -> String {
        var ctx = TemplateContext(scopes: [variables])
        var out = ""
        try ctx.run(nodes, into: &out)
        return out
    }

    /// Renders chat messages the way Hugging Face's `apply_chat_template` does.
    public func render(
        messages: [[String: String]], addGenerationPrompt: Bool, bosToken: String = "", eosToken: String = ""
    ) throws -> String {
        try render([
            // keys as Hugging Face's messages have them: role, content, then any others
            "messages": .list(
                messages.map { m in
                    let keys = ["role", "content"].filter { m[$0] != nil } + m.keys.filter { $0 != "role" && $0 != "content" }.sorted()
                    return .dict(keys.map { ($0, .string(m[$0]!)) })
                }),
            "add_generation_prompt": .bool(addGenerationPrompt), "bos_token": .string(bosToken), "eos_token": .string(eosToken)
        ])
    }
}

/// A value inside a template.
public indirect enum TemplateValue: Sendable {
    case undefined, none
    case bool(Bool), int(Int), double(Double), string(String)
    case list([TemplateValue])
    /// Keys in insertion order (what `tojson` and `items()` show).
    case dict([(String, TemplateValue)])
    /// A `namespace(...)`: attributes that `{% set ns.x = … %}` may change from inside a loop.
    case namespace(NamespaceBox)

    var truthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .list(let l): !l.isEmpty
        case .dict(let d): !d.isEmpty
        case .namespace: true
        }
    }

    var kind: String {
        switch self {
        case .undefined: "undefined"
        case .none: "none"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .list: "a list"
        case .dict, .namespace: "a mapping"
        }
    }

    /// How `{{ }}` prints a value (Python's `str`).
    var printed: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .string(let s): s
        case .list, .dict, .namespace: json(pretty: false)
        }
    }

    /// `tojson`: Python's `json.dumps(x, ensure_ascii=False)` (separators ", " and ": ").
    func json(pretty: Bool) -> String {
        switch self {
        case .undefined, .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return jsonString(s)
        case .list(let l): return "[" + l.map { $0.json(pretty: pretty) }.joined(separator: ", ") + "]"
        case .dict(let d): return "{" + d.map { jsonString($0.0) + ": " + $0.1.json(pretty: pretty) }.joined(separator: ", ") + "}"
        case .namespace(let n): return TemplateValue.dict(n.values).json(pretty: pretty)
        }
    }

    func attribute(_ name: String) -> TemplateValue {
        switch self {
        case .dict(let d): return d.last { $0.0 == name }?.1 ?? .undefined
        case .namespace(let n): return n.values.last { $0.0 == name }?.1 ?? .undefined
        default: return .undefined
        }
    }
}

/// The mutable storage of a `namespace`.
public final class NamespaceBox: @unchecked Sendable {
    var values: [(String, TemplateValue)]
    init(_ values: [(String, TemplateValue)]) { self.values = values }
    func set(_ name: String, _ v: TemplateValue) {
        if let i = values.firstIndex(where: { $0.0 == name }) { values[i].1 = v } else { values.append((name, v)) }
    }
}

// MARK: - Lexer

enum TemplateToken: Equatable {
    case text(String)
    case outputStart(line: Int), outputEnd
    case blockStart(line: Int), blockEnd
    case name(String), string(String), int(Int), double(Double), op(String)
}

enum TemplateLexer {
    /// The template cut into text and tag tokens, with Jinja's whitespace control applied: `{%-`,
    /// `-%}`, `{{-`, `-}}` strip the whitespace beside them; as Hugging Face configures Jinja, a block
    /// tag also takes the first newline after it (`trim_blocks`) and the spaces before it on its line
    /// (`lstrip_blocks`). Comments `{# #}` vanish.
    static func tokens(_ source: String) throws -> [TemplateToken] {
        var s = Array(source.unicodeScalars)
        if s.last == "\n" { s.removeLast() }  // Jinja drops one trailing newline (keep_trailing_newline is off)
        var out: [TemplateToken] = [], text = String.UnicodeScalarView()
        var i = 0, line = 1
        var stripNextLeading = false, trimNewline = false
        func flushText(stripTrailing: Bool, lstripBlock: Bool) {
            var t = text
            if stripTrailing {
                while let last = t.last, last.properties.isWhitespace { t.removeLast() }
            } else if lstripBlock {
                // spaces and tabs back to the line's start, only if nothing else is on that line
                var j = t.endIndex
                while j > t.startIndex, t[t.index(before: j)] == " " || t[t.index(before: j)] == "\t" { j = t.index(before: j) }
                if j == t.startIndex || t[t.index(before: j)] == "\n" { t.removeSubrange(j..<t.endIndex) }
            }
            if !t.isEmpty { out.append(.text(String(t))) }
            text = String.UnicodeScalarView()
        }
        while i < s.count {
            let c = s[i]
            if c == "{", i + 1 < s.count, s[i + 1] == "{" || s[i + 1] == "%" || s[i + 1] == "#" {
                let kind = s[i + 1]
                let minus = i + 2 < s.count && s[i + 2] == "-"
                flushText(stripTrailing: minus, lstripBlock: kind != "{")
                let startLine = line
                i += minus ? 3 : 2
                if kind == "#" {
                    // a comment: skip to #}
                    var closedWithMinus = false
                    while i + 1 < s.count && !(s[i] == "#" && s[i + 1] == "}") {
                        if s[i] == "\n" { line += 1 }
                        i += 1
                    }
                    guard i + 1 < s.count else { throw ChatTemplateError("line \(startLine): a comment {# is not closed") }
                    closedWithMinus = i > 0 && s[i - 1] == "-"
                    i += 2
                    stripNextLeading = closedWithMinus; trimNewline = true
                    continue
                }
                out.append(kind == "{" ? .outputStart(line: startLine) : .blockStart(line: startLine))
                let close: Unicode.Scalar = kind == "{" ? "}" : "%"
                // expression tokens up to the closing tag
                while true {
                    while i < s.count, s[i].properties.isWhitespace {
                        if s[i] == "\n" { line += 1 }
                        i += 1
                    }
                    guard i < s.count else { throw ChatTemplateError("line \(startLine): a tag is not closed") }
                    if s[i] == "-", i + 2 < s.count, s[i + 1] == close, s[i + 2] == "}" {
                        i += 3; stripNextLeading = true; break
                    }
                    if s[i] == close, i + 1 < s.count, s[i + 1] == "}" {
                        i += 2; stripNextLeading = false; break
                    }
                    out.append(try token(s, &i, line: line))
                }
                out.append(kind == "{" ? .outputEnd : .blockEnd)
                trimNewline = kind == "%"
                continue
            }
            if stripNextLeading && c.properties.isWhitespace {
                if c == "\n" { line += 1 }
                i += 1; continue
            }
            stripNextLeading = false
            if trimNewline {
                trimNewline = false
                if c == "\n" { line += 1; i += 1; continue }
            }
            if c == "\n" { line += 1 }
            text.append(c); i += 1
        }
        flushText(stripTrailing: false, lstripBlock: false)
        return out
    }

    static func token(_ s: [Unicode.Scalar], _ i: inout Int, line: Int) throws -> TemplateToken {
        let c = s[i]
        if c == "'" || c == "\"" {
            var v = String.UnicodeScalarView()
            i += 1
            while i < s.count && s[i] != c {
                if s[i] == "\\", i + 1 < s.count {
                    i += 1
                    switch s[i] {
                    case "n": v.append("\n")
                    case "t": v.append("\t")
                    case "r": v.append("\r")
                    default: v.append(s[i])
                    }
                } else {
                    v.append(s[i])
                }
                i += 1
            }
            guard i < s.count else { throw ChatTemplateError("line \(line): a string is not closed") }
            i += 1
            return .string(String(v))
        }
        if c.properties.numericType != nil && c.isASCII {
            var j = i
            while j < s.count, s[j].isASCII, s[j].properties.numericType != nil || s[j] == "." { j += 1 }
            let lit = String(String.UnicodeScalarView(s[i..<j]))
            i = j
            if let n = Int(lit) { return .int(n) }
            if let d = Double(lit) { return .double(d) }
            throw ChatTemplateError("line \(line): \(quotedForMessage(lit)) is not a number")
        }
        if c == "_" || c.properties.isAlphabetic {
            var j = i
            while j < s.count, s[j] == "_" || s[j].properties.isAlphabetic || (s[j].isASCII && s[j].properties.numericType != nil) {
                j += 1
            }
            let name = String(String.UnicodeScalarView(s[i..<j]))
            i = j
            return .name(name)
        }
        for op in ["==", "!=", "<=", ">=", "//", "**"] where i + 1 < s.count && String(s[i]) + String(s[i + 1]) == op {
            i += 2
            return .op(op)
        }
        if "()[]{}.,:|~+-*/%<>=".unicodeScalars.contains(c) {
            i += 1
            return .op(String(c))
        }
        throw ChatTemplateError("line \(line): unexpected character \(quotedForMessage(String(c))) in a tag")
    }
}

// MARK: - Parser

indirect enum TemplateExpr: Sendable {
    case literal(TemplateValue)
    case name(String)
    case attribute(TemplateExpr, String)
    case item(TemplateExpr, TemplateExpr)
    case slice(TemplateExpr, TemplateExpr?, TemplateExpr?)
    case call(TemplateExpr, [TemplateExpr], [(String, TemplateExpr)])
    case filter(TemplateExpr, String, [TemplateExpr])
    case test(TemplateExpr, String, negated: Bool)
    case not(TemplateExpr)
    case negate(TemplateExpr)
    case binary(String, TemplateExpr, TemplateExpr)
    case list([TemplateExpr])
    case dict([(TemplateExpr, TemplateExpr)])
    case conditional(TemplateExpr, TemplateExpr, TemplateExpr?)
}

indirect enum TemplateNode: Sendable {
    case text(String)
    case output(TemplateExpr, line: Int)
    case conditional([(TemplateExpr, [TemplateNode])], otherwise: [TemplateNode], line: Int)
    case loop(names: [String], over: TemplateExpr, filter: TemplateExpr?, body: [TemplateNode], otherwise: [TemplateNode], line: Int)
    case assign(target: String, attribute: String?, TemplateExpr, line: Int)
}

struct TemplateParser {
    let tokens: [TemplateToken]
    var i = 0
    var line = 1

    init(tokens: [TemplateToken]) { self.tokens = tokens }

    func fail(_ what: String) -> ChatTemplateError { ChatTemplateError("chat template line \(line): \(what)") }

    var peek: TemplateToken? { i < tokens.count ? tokens[i] : nil }

    mutating func next() -> TemplateToken? {
        defer { i += 1 }
        return peek
    }

    mutating func accept(_ t: TemplateToken) -> Bool {
        if peek == t { i += 1; return true }
        return false
    }

    mutating func expect(_ t: TemplateToken, _ what: String) throws {
        guard accept(t) else { throw fail("expected \(what), found \(describe(peek))") }
    }

    func describe(_ t: TemplateToken?) -> String {
        switch t {
        case nil: "the end of the template"
        case .text: "text"
        case .outputStart: "{{"
        case .outputEnd: "}}"
        case .blockStart: "{%"
        case .blockEnd: "%}"
        case .name(let n): "\"\(n)\""
        case .string: "a string"
        case .int, .double: "a number"
        case .op(let o): "\"\(o)\""
        }
    }

    mutating func name() throws -> String {
        guard case .name(let n) = peek else { throw fail("expected a name, found \(describe(peek))") }
        i += 1
        return n
    }

    /// Nodes up to a `{% end… %}`, `{% elif %}` or `{% else %}` whose keyword is in `until` (left for the
    /// caller: `i` stays on that tag's first name).
    mutating func parseBody(until: Set<String>) throws -> [TemplateNode] {
        var nodes: [TemplateNode] = []
        while let t = peek {
            switch t {
            case .text(let s):
                i += 1
                nodes.append(.text(s))
            case .outputStart(let l):
                i += 1; line = l
                let e = try expression()
                try expect(.outputEnd, "}}")
                nodes.append(.output(e, line: l))
            case .blockStart(let l):
                line = l
                guard case .name(let keyword) = tokens[safe: i + 1] else { throw fail("expected a statement after {%") }
                if until.contains(keyword) { i += 1; return nodes }
                i += 2
                nodes.append(try statement(keyword))
            default:
                throw fail("unexpected \(describe(t))")
            }
        }
        if !until.isEmpty { throw fail("the template ends before {% \(until.sorted().joined(separator: " / ")) %}") }
        return nodes
    }

    mutating func statement(_ keyword: String) throws -> TemplateNode {
        let l = line
        switch keyword {
        case "if":
            var branches: [(TemplateExpr, [TemplateNode])] = []
            var cond = try expression()
            while true {
                try expect(.blockEnd, "%}")
                let body = try parseBody(until: ["elif", "else", "endif"])
                branches.append((cond, body))
                let k = try name()
                if k == "elif" { cond = try expression(); continue }
                if k == "else" {
                    try expect(.blockEnd, "%}")
                    let otherwise = try parseBody(until: ["endif"])
                    _ = try name()
                    try expect(.blockEnd, "%}")
                    return .conditional(branches, otherwise: otherwise, line: l)
                }
                try expect(.blockEnd, "%}")
                return .conditional(branches, otherwise: [], line: l)
            }
        case "for":
            var names = [try name()]
            while accept(.op(",")) { names.append(try name()) }
            guard try name() == "in" else { throw fail("expected \"in\" in a for loop") }
            let over = try orExpression()
            var filter: TemplateExpr?
            if accept(.name("if")) { filter = try expression() }
            if accept(.name("recursive")) { throw fail("recursive loops are not supported") }
            try expect(.blockEnd, "%}")
            let body = try parseBody(until: ["else", "endfor"])
            var otherwise: [TemplateNode] = []
            if try name() == "else" {
                try expect(.blockEnd, "%}")
                otherwise = try parseBody(until: ["endfor"])
                _ = try name()
            }
            try expect(.blockEnd, "%}")
            return .loop(names: names, over: over, filter: filter, body: body, otherwise: otherwise, line: l)
        case "set":
            let target = try name()
            var attribute: String?
            if accept(.op(".")) { attribute = try name() }
            guard accept(.op("=")) else { throw fail("{% set %} blocks ({% set x %}…{% endset %}) are not supported") }
            let value = try expression()
            try expect(.blockEnd, "%}")
            return .assign(target: target, attribute: attribute, value, line: l)
        default:
            throw fail("{% \(keyword) %} is not supported (this reads if, for and set)")
        }
    }

    // Precedence, lowest first, as Jinja2: conditional, or, and, not, comparisons, + -, ~, * / // %,
    // unary minus, then postfix (attributes, subscripts, calls), filters and tests.
    mutating func expression() throws -> TemplateExpr {
        let e = try orExpression()
        if accept(.name("if")) {
            let cond = try orExpression()
            let otherwise = accept(.name("else")) ? try expression() : nil
            return .conditional(e, cond, otherwise)
        }
        return e
    }

    mutating func orExpression() throws -> TemplateExpr {
        var e = try andExpression()
        while accept(.name("or")) { e = .binary("or", e, try andExpression()) }
        return e
    }

    mutating func andExpression() throws -> TemplateExpr {
        var e = try notExpression()
        while accept(.name("and")) { e = .binary("and", e, try notExpression()) }
        return e
    }

    mutating func notExpression() throws -> TemplateExpr {
        if accept(.name("not")) { return .not(try notExpression()) }
        return try comparison()
    }

    mutating func comparison() throws -> TemplateExpr {
        var e = try additive()
        while true {
            if case .op(let o) = peek, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                i += 1
                e = .binary(o, e, try additive())
            } else if accept(.name("in")) {
                e = .binary("in", e, try additive())
            } else if peek == .name("not"), tokens[safe: i + 1] == .name("in") {
                i += 2
                e = .not(.binary("in", e, try additive()))
            } else {
                return e
            }
        }
    }

    mutating func additive() throws -> TemplateExpr {
        var e = try concatenation()
        while case .op(let o) = peek, o == "+" || o == "-" {
            i += 1
            e = .binary(o, e, try concatenation())
        }
        return e
    }

    mutating func concatenation() throws -> TemplateExpr {
        var e = try multiplicative()
        while accept(.op("~")) { e = .binary("~", e, try multiplicative()) }
        return e
    }

    mutating func multiplicative() throws -> TemplateExpr {
        var e = try unary()
        while case .op(let o) = peek, ["*", "/", "//", "%"].contains(o) {
            i += 1
            e = .binary(o, e, try unary())
        }
        return e
    }

    mutating func unary() throws -> TemplateExpr {
        if accept(.op("-")) { return .negate(try unary()) }
        var e = try postfix(try primary())
        // filters and tests
        while true {
            if accept(.op("|")) {
                let f = try name()
                var args: [TemplateExpr] = []
                if accept(.op("(")) { args = try arguments().positional }
                e = try postfix(.filter(e, f, args))
            } else if accept(.name("is")) {
                let negated = accept(.name("not"))
                let t = try name()
                if accept(.op("(")) {
                    guard try arguments().positional.isEmpty else { throw fail("the test \"is \(t)\" with arguments is not supported") }
                }
                e = .test(e, t, negated: negated)
            } else {
                return e
            }
        }
    }

    mutating func primary() throws -> TemplateExpr {
        guard let t = next() else { throw fail("an expression is missing") }
        switch t {
        case .string(var s):
            while case .string(let more) = peek { s += more; i += 1 }  // 'a' 'b' is 'ab'
            return .literal(.string(s))
        case .int(let n): return .literal(.int(n))
        case .double(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            let e = try expression()
            if accept(.op(",")) { throw fail("tuples are not supported") }
            try expect(.op(")"), ")")
            return e
        case .op("["):
            var items: [TemplateExpr] = []
            while !accept(.op("]")) {
                items.append(try expression())
                if !accept(.op(",")) { try expect(.op("]"), "]"); break }
            }
            return .list(items)
        case .op("{"):
            var pairs: [(TemplateExpr, TemplateExpr)] = []
            while !accept(.op("}")) {
                let k = try expression()
                try expect(.op(":"), ":")
                pairs.append((k, try expression()))
                if !accept(.op(",")) { try expect(.op("}"), "}"); break }
            }
            return .dict(pairs)
        default:
            throw fail("unexpected \(describe(t)) in an expression")
        }
    }

    mutating func postfix(_ base: TemplateExpr) throws -> TemplateExpr {
        var e = base
        while true {
            if accept(.op(".")) {
                e = .attribute(e, try name())
            } else if accept(.op("[")) {
                var lo: TemplateExpr?
                if peek != .op(":") { lo = try expression() }
                if accept(.op(":")) {
                    var hi: TemplateExpr?
                    if peek != .op("]") { hi = try expression() }
                    if accept(.op(":")) { throw fail("slices with a step are not supported") }
                    try expect(.op("]"), "]")
                    e = .slice(e, lo, hi)
                } else {
                    try expect(.op("]"), "]")
                    e = .item(e, lo!)
                }
            } else if accept(.op("(")) {
                let a = try arguments()
                e = .call(e, a.positional, a.named)
            } else {
                return e
            }
        }
    }

    /// After `(`: arguments up to `)`, positional then `name=value`.
    mutating func arguments() throws -> (positional: [TemplateExpr], named: [(String, TemplateExpr)]) {
        var positional: [TemplateExpr] = [], named: [(String, TemplateExpr)] = []
        while !accept(.op(")")) {
            if case .name(let n) = peek, tokens[safe: i + 1] == .op("=") {
                i += 2
                named.append((n, try expression()))
            } else {
                positional.append(try expression())
            }
            if !accept(.op(",")) { try expect(.op(")"), ")"); break }
        }
        return (positional, named)
    }
}

extension Array {
    fileprivate subscript(safe i: Int) -> Element? { i >= 0 && i < count ? self[i] : nil }
}

// MARK: - Evaluation

struct TemplateContext {
    var scopes: [[String: TemplateValue]]
    var line = 1

    func fail(_ what: String) -> ChatTemplateError { ChatTemplateError("chat template line \(line): \(what)") }

    func lookup(_ name: String) -> TemplateValue {
        for s in scopes.reversed() { if let v = s[name] { return v } }
        return .undefined
    }

    mutating func run(_ nodes: [TemplateNode], into out: inout String) throws {
        for node in nodes {
            switch node {
            case .text(let s): out += s
            case .output(let e, let l):
                line = l
                out += try eval(e).printed
            case .conditional(let branches, let otherwise, let l):
                line = l
                var taken = false
                for (cond, body) in branches where try eval(cond).truthy {
                    try run(body, into: &out)
                    taken = true
                    break
                }
                if !taken { try run(otherwise, into: &out) }
            case .loop(let names, let over, let filter, let body, let otherwise, let l):
                line = l
                var items: [TemplateValue]
                switch try eval(over) {
                case .list(let xs): items = xs
                case .dict(let d): items = d.map { .string($0.0) }
                case .string(let s): items = s.map { .string(String($0)) }
                case .undefined, .none: items = []
                case let v: throw fail("cannot loop over \(v.kind)")
                }
                if let filter {
                    items = try items.filter { item in
                        scopes.append(try bind(names, item))
                        defer { scopes.removeLast() }
                        return try eval(filter).truthy
                    }
                }
                if items.isEmpty { try run(otherwise, into: &out) }
                for (k, item) in items.enumerated() {
                    var scope = try bind(names, item)
                    scope["loop"] = .dict([
                        ("index0", .int(k)), ("index", .int(k + 1)), ("first", .bool(k == 0)), ("last", .bool(k == items.count - 1)),
                        ("length", .int(items.count)), ("revindex0", .int(items.count - 1 - k)), ("revindex", .int(items.count - k)),
                        ("previtem", k > 0 ? items[k - 1] : .undefined), ("nextitem", k + 1 < items.count ? items[k + 1] : .undefined)
                    ])
                    scopes.append(scope)
                    defer { scopes.removeLast() }
                    try run(body, into: &out)
                }
            case .assign(let target, let attribute, let e, let l):
                line = l
                let v = try eval(e)
                if let attribute {
                    guard case .namespace(let ns) = lookup(target) else {
                        throw fail("{% set \(target).\(attribute) %} needs \(target) to be a namespace(), found \(lookup(target).kind)")
                    }
                    ns.set(attribute, v)
                } else {
                    scopes[scopes.count - 1][target] = v
                }
            }
        }
    }

    func bind(_ names: [String], _ item: TemplateValue) throws -> [String: TemplateValue] {
        if names.count == 1 { return [names[0]: item] }
        guard case .list(let parts) = item, parts.count == names.count else {
            throw fail("cannot unpack \(item.kind) into \(names.joined(separator: ", "))")
        }
        return Dictionary(uniqueKeysWithValues: zip(names, parts).map { ($0, $1) })
    }

    func eval(_ e: TemplateExpr) throws -> TemplateValue {
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .attribute(let base, let name):
            let b = try eval(base)
            if case .undefined = b { throw fail("\(name) of an undefined value") }
            return b.attribute(name)
        case .item(let base, let index):
            let b = try eval(base), k = try eval(index)
            switch (b, k) {
            case (.list(let l), .int(let i)):
                let j = i < 0 ? l.count + i : i
                guard j >= 0 && j < l.count else { return .undefined }
                return l[j]
            case (.string(let s), .int(let i)):
                let chars = Array(s), j = i < 0 ? chars.count + i : i
                return j >= 0 && j < chars.count ? .string(String(chars[j])) : .undefined
            case (.dict, .string(let key)), (.namespace, .string(let key)): return b.attribute(key)
            case (.undefined, _): throw fail("a subscript of an undefined value")
            default: return .undefined
            }
        case .slice(let base, let lo, let hi):
            let b = try eval(base)
            func bound(_ x: TemplateExpr?, _ count: Int, _ dflt: Int) throws -> Int {
                guard let x else { return dflt }
                guard case .int(let i) = try eval(x) else { throw fail("a slice bound must be an integer") }
                return Swift.min(count, Swift.max(0, i < 0 ? count + i : i))
            }
            switch b {
            case .list(let l):
                let a = try bound(lo, l.count, 0), z = try bound(hi, l.count, l.count)
                return .list(a < z ? Array(l[a..<z]) : [])
            case .string(let s):
                let c = Array(s), a = try bound(lo, c.count, 0), z = try bound(hi, c.count, c.count)
                return .string(a < z ? String(c[a..<z]) : "")
            default: throw fail("cannot slice \(b.kind)")
            }
        case .call(let callee, let args, let named): return try call(callee, args, named)
        case .filter(let base, let name, let args): return try filter(try eval(base), name, try args.map(eval))
        case .test(let base, let name, let negated):
            let v = try eval(base)
            let r: Bool
            switch name {
            case "defined": if case .undefined = v { r = false } else { r = true }
            case "undefined": if case .undefined = v { r = true } else { r = false }
            case "none": if case .none = v { r = true } else { r = false }
            case "string": if case .string = v { r = true } else { r = false }
            case "number": if case .int = v { r = true } else if case .double = v { r = true } else { r = false }
            case "mapping": if case .dict = v { r = true } else { r = false }
            case "iterable", "sequence":
                switch v {
                case .list, .string, .dict: r = true
                default: r = false
                }
            case "true": if case .bool(true) = v { r = true } else { r = false }
            case "false": if case .bool(false) = v { r = true } else { r = false }
            default: throw fail("the test \"is \(name)\" is not supported")
            }
            return .bool(r != negated)
        case .not(let x): return .bool(!(try eval(x)).truthy)
        case .negate(let x):
            switch try eval(x) {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            case let v: throw fail("cannot negate \(v.kind)")
            }
        case .binary(let op, let l, let r):
            if op == "and" { let a = try eval(l); return a.truthy ? try eval(r) : a }
            if op == "or" { let a = try eval(l); return a.truthy ? a : try eval(r) }
            return try binary(op, try eval(l), try eval(r))
        case .list(let items): return .list(try items.map(eval))
        case .dict(let pairs):
            return .dict(
                try pairs.map { k, v in
                    guard case .string(let key) = try eval(k) else { throw fail("dictionary keys must be strings") }
                    return (key, try eval(v))
                })
        case .conditional(let then, let cond, let otherwise):
            if try eval(cond).truthy { return try eval(then) }
            return try otherwise.map(eval) ?? .undefined
        }
    }

    func equal(_ a: TemplateValue, _ b: TemplateValue) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
        case (.double(let x), .double(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.list(let x), .list(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.dict(let x), .dict(let y)):
            return x.count == y.count && x.allSatisfy { k, v in equal(v, b.attribute(k)) }
        default: return false
        }
    }

    func number(_ v: TemplateValue) -> Double? {
        switch v {
        case .int(let i): Double(i)
        case .double(let d): d
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    func binary(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws -> TemplateValue {
        switch op {
        case "==": return .bool(equal(a, b))
        case "!=": return .bool(!equal(a, b))
        case "~": return .string(a.printed + b.printed)
        case "in":
            switch b {
            case .list(let l): return .bool(l.contains { equal($0, a) })
            case .string(let s):
                guard case .string(let sub) = a else { throw fail("\"in\" a string needs a string on the left") }
                return .bool(s.contains(sub))
            case .dict(let d):
                guard case .string(let k) = a else { return .bool(false) }
                return .bool(d.contains { $0.0 == k })
            case .undefined, .none: return .bool(false)
            default: throw fail("\"in\" needs a list, string or mapping on the right, found \(b.kind)")
            }
        case "+":
            switch (a, b) {
            case (.string(let x), .string(let y)): return .string(x + y)
            case (.list(let x), .list(let y)): return .list(x + y)
            case (.int(let x), .int(let y)): return .int(x &+ y)
            default: break
            }
        case "-", "*":
            if case .int(let x) = a, case .int(let y) = b { return .int(op == "-" ? x &- y : x &* y) }
            if op == "*", case .string(let s) = a, case .int(let n) = b { return .string(String(repeating: s, count: Swift.max(0, n))) }
        case "%", "//":
            if case .int(let x) = a, case .int(let y) = b {
                guard y != 0 else { throw fail("division by zero") }
                // Python's floor division and modulo
                let q = Int((Double(x) / Double(y)).rounded(.down))
                return .int(op == "//" ? q : x - q * y)
            }
        case "/":
            if let x = number(a), let y = number(b) {
                guard y != 0 else { throw fail("division by zero") }
                return .double(x / y)
            }
        case "<", ">", "<=", ">=":
            if let x = number(a), let y = number(b) {
                return .bool(op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y)
            }
            if case .string(let x) = a, case .string(let y) = b {
                return .bool(op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y)
            }
        default: break
        }
        if case .undefined = a { throw fail("\"\(op)\" with an undefined value") }
        if case .undefined = b { throw fail("\"\(op)\" with an undefined value") }
        throw fail("cannot apply \"\(op)\" to \(a.kind) and \(b.kind)")
    }

    func call(_ callee: TemplateExpr, _ args: [TemplateExpr], _ named: [(String, TemplateExpr)]) throws -> TemplateValue {
        let values = try args.map(eval)
        if case .name(let fn) = callee {
            switch fn {
            case "raise_exception":
                throw ChatTemplateError("the chat template refuses these messages: \(values.first?.printed ?? "")")
            case "namespace":
                return .namespace(NamespaceBox(try named.map { ($0.0, try eval($0.1)) }))
            case "range":
                let ints = values.compactMap { v -> Int? in if case .int(let i) = v { i } else { nil } }
                guard ints.count == values.count, (1...2).contains(ints.count) else { throw fail("range() takes one or two integers") }
                let (a, z) = ints.count == 1 ? (0, ints[0]) : (ints[0], ints[1])
                return .list(a < z ? (a..<z).map { .int($0) } : [])
            default:
                throw fail("the function \(fn)() is not supported")
            }
        }
        guard case .attribute(let base, let method) = callee else { throw fail("only named functions and methods can be called") }
        let b = try eval(base)
        switch (b, method) {
        case (.string(let s), "strip"), (.string(let s), "lstrip"), (.string(let s), "rstrip"):
            let chars: Set<Character>? = values.first.flatMap { if case .string(let c) = $0 { Set(c) } else { nil } }
            let drop: (Character) -> Bool = { chars?.contains($0) ?? $0.isWhitespace }
            var t = Substring(s)
            if method != "rstrip" { t = t.drop(while: drop) }
            if method != "lstrip" { while let last = t.last, drop(last) { t = t.dropLast() } }
            return .string(String(t))
        case (.string(let s), "startswith"), (.string(let s), "endswith"):
            guard case .string(let p)? = values.first else { throw fail("\(method)() takes a string") }
            return .bool(method == "startswith" ? s.hasPrefix(p) : s.hasSuffix(p))
        case (.string(let s), "upper"): return .string(s.uppercased())
        case (.string(let s), "lower"): return .string(s.lowercased())
        case (.string(let s), "split"):
            if case .string(let sep)? = values.first {
                return .list(s.components(separatedBy: sep).map { .string($0) })
            }
            return .list(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
        case (.string(let s), "replace"):
            guard values.count == 2, case .string(let x) = values[0], case .string(let y) = values[1] else {
                throw fail("replace() takes two strings")
            }
            return .string(s.replacingOccurrences(of: x, with: y))
        case (.dict(let d), "items"): return .list(d.map { .list([.string($0.0), $0.1]) })
        case (.dict(let d), "keys"): return .list(d.map { .string($0.0) })
        case (.dict(let d), "values"): return .list(d.map { $0.1 })
        case (.dict, "get"):
            guard case .string(let k)? = values.first else { throw fail("get() takes a key") }
            let v = b.attribute(k)
            if case .undefined = v { return values.count > 1 ? values[1] : .none }
            return v
        default:
            throw fail("the method \(method)() of \(b.kind) is not supported")
        }
    }

    func filter(_ v: TemplateValue, _ name: String, _ args: [TemplateValue]) throws -> TemplateValue {
        switch name {
        case "trim":
            guard case .string(let s) = v else { throw fail("trim needs a string, found \(v.kind)") }
            return .string(s.trimmingCharacters(in: .whitespacesAndNewlines))
        case "tojson": return .string(v.json(pretty: false))
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.count)
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.count)
            default: throw fail("length of \(v.kind)")
            }
        case "upper": return .string(v.printed.uppercased())
        case "lower": return .string(v.printed.lowercased())
        case "capitalize":
            let s = v.printed
            return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "string": return .string(v.printed)
        case "int":
            if case .string(let s) = v { return .int(Int(s.trimmingCharacters(in: .whitespaces)) ?? 0) }
            return .int(Int(number(v) ?? 0))
        case "first", "last":
            guard case .list(let l) = v else { throw fail("\(name) needs a list, found \(v.kind)") }
            return (name == "first" ? l.first : l.last) ?? .undefined
        case "join":
            guard case .list(let l) = v else { throw fail("join needs a list, found \(v.kind)") }
            return .string(l.map(\.printed).joined(separator: args.first?.printed ?? ""))
        case "default", "d":
            // default(x, true) also replaces a falsy value
            let replace: Bool
            if case .undefined = v { replace = true } else { replace = args.count > 1 && args[1].truthy && !v.truthy }
            return replace ? args.first ?? .string("") : v
        case "list":
            switch v {
            case .list: return v
            case .string(let s): return .list(s.map { .string(String($0)) })
            default: throw fail("list of \(v.kind)")
            }
        case "reverse":
            if case .list(let l) = v { return .list(l.reversed()) }
            if case .string(let s) = v { return .string(String(s.reversed())) }
            throw fail("reverse of \(v.kind)")
        default:
            throw fail("the filter \"| \(name)\" is not supported")
        }
    }
}
