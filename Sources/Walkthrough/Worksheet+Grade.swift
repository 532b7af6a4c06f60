import Foundation
import TensorKit
import TransformerKit

/// How a filled worksheet did: each blank right, wrong (with `check`'s report and diagnosis) or
/// not filled.
public struct WorksheetGrade: Codable, Sendable {
    public struct Item: Codable, Sendable {
        public var number: Int
        public var step: String
        public var title: String
        /// `right`, `wrong`, `unfilled` or `unreadable`.
        public var status: String
        public var message: String?
        public var report: CheckReport?
    }

    public var title: String
    public var items: [Item]
    public var notes: [String]
    /// Decimals the correct values are printed with (2 on an integer worksheet).
    public var decimals: Int = 4
    public var right: Int { items.filter { $0.status == "right" }.count }
    public var allRight: Bool { right == items.count }

    enum CodingKeys: String, CodingKey { case title, items, notes, right, total }

    public init(title: String, items: [Item], notes: [String], decimals: Int = 4) {
        self.title = title; self.items = items; self.notes = notes; self.decimals = decimals
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        title = try c.decode(String.self, forKey: .title)
        items = try c.decode([Item].self, forKey: .items)
        notes = try c.decode([String].self, forKey: .notes)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(title, forKey: .title)
        try c.encode(items, forKey: .items)
        try c.encode(notes, forKey: .notes)
        try c.encode(right, forKey: .right)
        try c.encode(items.count, forKey: .total)
    }

    public func renderText() -> String {
        var out = ["Grading: \(title)", ""]
        for it in items {
            let mark = it.status == "right" ? "✓" : (it.status == "wrong" ? "✗" : "·")
            out.append("\(mark) Blank \(it.number) · \(it.step) · \(it.title)" + (it.message.map { " — \($0)" } ?? ""))
            if it.status == "wrong", let r = it.report {
                let body = r.renderText(maxCells: 8, decimals: decimals).split(separator: "\n", omittingEmptySubsequences: false).dropFirst(
                    4)
                out += body.filter { !$0.isEmpty }.map { "    " + $0 }
            }
        }
        out.append("")
        for n in notes { out.append("note: " + n) }
        out.append("Score: \(right) of \(items.count) blanks right.")
        return out.joined(separator: "\n") + "\n"
    }
}

extension Worksheet {
    /// Grades a filled worksheet: its JSON (with `answers`), or its Markdown or LaTeX with the `?`
    /// replaced. The numbers are regenerated from the spec written in the file, so the key cannot be
    /// edited along with the answers.
    public static func grade(
        text: String, name: String, article: (() throws -> TraceDocument)? = nil
    ) throws -> (Worksheet, WorksheetGrade) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("{") {
            let filed: Worksheet
            do { filed = try TraceDocument.decoder().decode(Worksheet.self, from: Data(trimmed.utf8)) } catch {
                throw WalkthroughError("\(name): not a worksheet's JSON: \(describeDecodingError(error))")
            }
            let sheet = try generate(filed.spec, article: article)
            var notes: [String] = []
            if filed.trace.steps.map(\.values) != sheet.trace.steps.map(\.values) {
                notes.append("the key inside \(name) differs from the worksheet its spec makes; graded against the latter")
            }
            let items = sheet.blanks.map { b -> WorksheetGrade.Item in
                let s = sheet.trace.step(b.step)!
                guard let rows = filed.answers?[b.step] else { return sheet.item(b, s, status: "unfilled", message: "not in \"answers\"") }
                if rows.contains(where: { $0.contains(.empty) }) {
                    return sheet.item(b, s, status: "unfilled", message: "some cells are null")
                }
                let inline = rows.map { r in
                    r.map { c -> String in
                        switch c {
                        case .number(let d): return "\(d)"
                        case .text(let t): return t
                        case .empty: return "?"
                        }
                    }.joined(separator: ",")
                }.joined(separator: ";")
                return sheet.gradeOne(b, s, text: inline, inline: true)
            }
            return (sheet, WorksheetGrade(title: sheet.title, items: items, notes: notes, decimals: sheet.spec.integers ? 2 : 4))
        }
        if trimmed.prefix(200).lowercased().contains("<!doctype html") || trimmed.prefix(200).lowercased().contains("<html") {
            throw WalkthroughError(
                "\(name): the HTML page is for printing; fill in and grade the Markdown, LaTeX or JSON form (transformer exercise --format markdown)"
            )
        }
        guard let specLine = text.split(separator: "\n").first(where: { $0.contains(specMarker) }) else {
            throw WalkthroughError(
                "\(name): no \"\(specMarker)\" line; grade the Markdown, LaTeX or JSON that `transformer exercise` wrote (not the HTML page)"
            )
        }
        var json = specLine[specLine.range(of: specMarker)!.upperBound...].trimmingCharacters(in: .whitespaces)
        if let end = json.range(of: "-->") { json = String(json[..<end.lowerBound]).trimmingCharacters(in: .whitespaces) }
        let spec: WorksheetSpec
        do { spec = try JSONDecoder().decode(WorksheetSpec.self, from: Data(json.utf8)) } catch {
            throw WalkthroughError("\(name): the \(specMarker) line is not readable: \(describeDecodingError(error))")
        }
        let sheet = try generate(spec, article: article)
        // The answer key, if kept, is not the person's answers.
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if let k = lines.firstIndex(where: { $0.contains(keyMarker) && !$0.contains(specMarker) }) { lines = Array(lines[..<k]) }
        var marks: [String: Int] = [:]
        for (i, l) in lines.enumerated() {
            let t = l.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("<!--") || t.hasPrefix("%"), let r = t.range(of: "blank:") else { continue }
            let id = t[r.upperBound...].replacingOccurrences(of: "-->", with: "").trimmingCharacters(in: .whitespaces)
            marks[id] = i
        }
        let items = sheet.blanks.map { b -> WorksheetGrade.Item in
            let s = sheet.trace.step(b.step)!
            guard let at = marks[b.step] else {
                return sheet.item(b, s, status: "unfilled", message: "its \"blank: \(b.step)\" marker is missing")
            }
            guard let region = matrixRegion(lines, after: at) else {
                return sheet.item(b, s, status: "unreadable", message: "no table or matrix after its marker (line \(at + 1))")
            }
            return sheet.gradeOne(b, s, text: region, inline: false)
        }
        return (sheet, WorksheetGrade(title: sheet.title, items: items, notes: [], decimals: sheet.spec.integers ? 2 : 4))
    }

    /// The table (Markdown) or bmatrix (LaTeX) right after a blank's marker line.
    static func matrixRegion(_ lines: [String], after i: Int) -> String? {
        var j = i + 1
        while j < lines.count, lines[j].trimmingCharacters(in: .whitespaces).isEmpty { j += 1 }
        guard j < lines.count else { return nil }
        if lines[j].trimmingCharacters(in: .whitespaces).hasPrefix("|") {
            var rows: [String] = []
            while j < lines.count, lines[j].trimmingCharacters(in: .whitespaces).hasPrefix("|") { rows.append(lines[j]); j += 1 }
            return rows.joined(separator: "\n")
        }
        guard let b = lines[j...].firstIndex(where: { $0.contains("\\begin{bmatrix}") }),
            let e = lines[b...].firstIndex(where: { $0.contains("\\end{bmatrix}") }),
            !lines[(i + 1)..<b].contains(where: { $0.contains("blank:") })
        else { return nil }
        return lines[b...e].joined(separator: "\n")
    }

    func item(_ b: WorksheetBlank, _ s: TraceStep, status: String, message: String?, report: CheckReport? = nil) -> WorksheetGrade.Item {
        WorksheetGrade.Item(number: b.number, step: b.step, title: s.title, status: status, message: message, report: report)
    }

    func gradeOne(_ b: WorksheetBlank, _ s: TraceStep, text: String, inline: Bool) -> WorksheetGrade.Item {
        let cells = text.components(separatedBy: CharacterSet(charactersIn: "|&,;\n")).map { $0.trimmingCharacters(in: .whitespaces) }
        let unfilled = cells.filter { $0 == "?" }.count
        if unfilled > 0 { return item(b, s, status: "unfilled", message: "\(unfilled) of \(s.values.count) cells are still ?") }
        let user: ParsedMatrix
        do { user = inline ? try MatrixParser.parseInline(text) : try MatrixParser.parse(text) } catch let e as MatrixParseError {
            return item(b, s, status: "unreadable", message: e.message)
        } catch { return item(b, s, status: "unreadable", message: "\(error)") }
        let r = check(user, against: s, in: trace, tolerance: b.tolerance)
        if r.isCorrect { return item(b, s, status: "right", message: nil, report: r) }
        let why = r.diagnoses.first(where: { !$0.partial })?.message ?? r.diagnoses.first?.message
        if r.comparedWithTranspose && r.wrongCells.isEmpty, let why { return item(b, s, status: "wrong", message: why, report: r) }
        let count = r.cellCount == 0 ? "wrong shape" : "\(r.wrongCells.count) of \(r.cellCount) values wrong"
        return item(b, s, status: "wrong", message: count + (why.map { ": " + $0 } ?? ""), report: r)
    }
}
