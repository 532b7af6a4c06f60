import ArgumentParser
import Foundation
import TransformerKit
import Walkthrough

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Compare a hand-computed matrix with the computed step.",
        discussion: """
            The matrix may be CSV (commas, semicolons or tabs; a header row and a label column are skipped), JSON \
            (a list of rows, {"values", "shape"}, or a step from a saved trace), LaTeX pasted from an article \
            (\\begin{bmatrix} … \\end{bmatrix}, vmatrix, pmatrix, matrix, or bare a & b \\\\ c & d), a Markdown table, \
            or rows of numbers separated by spaces. Each value is checked to the decimals you wrote it with.
            The same options as `walkthrough` say what is computed (e.g. --weights article); --trace compares with a saved trace instead.
            Exit status: 0 correct, 1 wrong (after the report), 2 for a usage or parse error.
            Examples:
              transformer check --weights article --step enc0.self_attn.weights --matrix softmax.tex
              transformer check --step src.pe --values "0,1,0,1,0,1;0.8415,0.5403,0.0464,0.9989,0.0022,1"
              pbpaste | transformer check --step enc0.self_attn.head0.scaled --matrix -
              transformer check --worksheet ffn.md      (a worksheet from `transformer exercise`, filled in)
            """)

    @OptionGroup var input: WalkthroughOptions
    @Option(help: "The step to compare with (see `walkthrough --list-steps`).")
    var step: String?
    @Option(help: "File holding the matrix; '-' reads standard input.")
    var matrix: String?
    @Option(help: "The matrix inline: rows separated by ';', values by ',' (e.g. \"1,2;3,4\").")
    var values: String?
    @Option(help: "Which matrix, when the text holds several (1 = the first).")
    var index: Int?
    @Option(help: "Absolute tolerance per value (default: half a unit in the last decimal you wrote).")
    var tolerance: Double?
    @Option(help: "Output format: text or json.")
    var format: String = "text"
    @Option(help: "Compare with this saved trace (walkthrough --format json) instead of computing one.")
    var trace: String?

    @Option(help: "Grade a filled worksheet from `transformer exercise` (its Markdown, LaTeX or JSON; '-' reads standard input).")
    var worksheet: String?

    func run() throws {
        guard format == "text" || format == "json" else { usageError("--format must be text or json (got \(format))") }
        if let worksheet { return try gradeWorksheet(worksheet) }
        guard let stepID = step?.trimmingCharacters(in: .whitespaces), !stepID.isEmpty else {
            usageError("give the step to compare with: --step ID (list them with `transformer walkthrough --list-steps`)")
        }
        if matrix != nil && values != nil { usageError("give the matrix once: --matrix FILE or --values \"1,2;3,4\", not both") }
        if let index, index < 1 { usageError("--index counts from 1 (got \(index))") }
        if let tolerance, !(tolerance >= 0 && tolerance.isFinite) {
            usageError("--tolerance must be a non-negative number (got \(tolerance))")
        }

        // The matrix text, read before the (slower) walkthrough so input errors come first.
        let text: String
        let source: String
        if let values {
            text = values; source = "--values"
        } else if let matrix {
            if matrix == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self); source = "standard input"
            } else {
                guard let data = FileManager.default.contents(atPath: matrix) else { usageError("\(matrix): cannot read the matrix file") }
                guard let s = String(data: data, encoding: .utf8) else { usageError("\(matrix): the matrix file is not UTF-8 text") }
                text = s; source = matrix
            }
        } else {
            usageError("give the matrix: --matrix FILE, --matrix - (standard input) or --values \"1,2;3,4\"")
        }

        let doc: TraceDocument
        do {
            doc = try trace.map { try TraceDocument.load(from: URL(fileURLWithPath: $0)) } ?? input.document()
        } catch let e as WalkthroughError {
            usageError(e.message)
        }
        guard let target = doc.step(stepID) else { usageError(unknownStepMessage(stepID, doc)) }

        let user: ParsedMatrix
        do {
            user = try chooseMatrix(text, inline: values != nil, for: target)
        } catch let e as MatrixParseError {
            usageError("\(source): \(e.message)")
        }

        let report = check(user, against: target, in: doc, tolerance: tolerance.map(Float.init))
        if format == "json" {
            do {
                FileHandle.standardOutput.write(try report.jsonData())
                print()
            } catch { usageError("cannot write the report as JSON: \(error)") }
        } else {
            FileHandle.standardOutput.write(Data(report.renderText().utf8))
        }
        if !report.isCorrect { throw ExitCode(1) }
    }

    /// Grades every blank of a filled worksheet; exit 0 when all are right, 1 otherwise.
    func gradeWorksheet(_ path: String) throws {
        if step != nil || matrix != nil || values != nil {
            usageError("--worksheet grades every blank: leave out --step, --matrix and --values")
        }
        let text: String
        if path == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: path) else { usageError("\(path): cannot read the worksheet") }
            guard let s = String(data: data, encoding: .utf8) else { usageError("\(path): the worksheet is not UTF-8 text") }
            text = s
        }
        let grade: WorksheetGrade
        do { grade = try Worksheet.grade(text: text, name: path == "-" ? "standard input" : path, article: articleTrace).1 } catch let e
            as WalkthroughError
        { usageError(e.message) }
        if format == "json" {
            do { FileHandle.standardOutput.write(try TraceDocument.encoder().encode(grade)) } catch {
                usageError("cannot write the grade as JSON: \(error)")
            }
            print()
        } else {
            FileHandle.standardOutput.write(Data(grade.renderText().utf8))
        }
        if !grade.allRight { throw ExitCode(1) }
    }

    /// The matrix the user means: `--index`, else the first — unless the first cannot be compared with
    /// the step (wrong shape) and exactly one other matrix of the text can.
    func chooseMatrix(_ text: String, inline: Bool, for step: TraceStep) throws -> ParsedMatrix {
        let parse = { (i: Int?) in inline ? try MatrixParser.parseInline(text, index: i) : try MatrixParser.parse(text, index: i) }
        if let index { return try parse(index - 1) }
        let first = try parse(nil)
        guard first.matrixCount > 1 else { return first }
        func fits(_ m: ParsedMatrix) -> Bool { m.shape == step.shape || m.shape == Array(step.shape.reversed()) }
        var chosen = first
        var others = ""
        let shape = step.shape.map(String.init).joined(separator: "×")
        if !fits(first) {
            let all = inline ? [] : ((try? MatrixParser.parseEach(text)) ?? [])
            let fitting = all.compactMap { r -> ParsedMatrix? in (try? r.get()).flatMap { fits($0) ? $0 : nil } }
            if fitting.count == 1 {
                chosen = fitting[0]
            } else if fitting.count > 1 {
                others = "; matrices \(fitting.map { String($0.index + 1) }.joined(separator: ", ")) have the step's shape \(shape)"
            }
        }
        let which = chosen.index == 0 ? "the first" : "number \(chosen.index + 1), the only one shaped \(shape)"
        FileHandle.standardError.write(
            Data("note: the text holds \(first.matrixCount) matrices; comparing \(which)\(others). Choose with --index N.\n".utf8))
        return chosen
    }
}

/// Prints a one-line error and exits with status 2 (usage or input error).
func usageError(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    Foundation.exit(2)
}

/// "no step X" with the ids closest to it.
func unknownStepMessage(_ id: String, _ doc: TraceDocument) -> String {
    let ids = doc.steps.map(\.id)
    let lower = id.lowercased()
    // A group prefix ("enc0") lists its steps; anything else, the ids nearest by edit distance.
    var close = ids.filter { $0.lowercased().hasPrefix(lower + ".") }
    if close.isEmpty {
        // sharing the last part ("weights", "scaled") counts for more than a few letters
        let last = lower.split(separator: ".").last.map(String.init) ?? lower
        let scored = ids.map { i -> (String, Int) in
            let l = i.lowercased()
            return (i, editDistance(lower, l) - (l.hasSuffix("." + last) ? 3 : 0))
        }.sorted { $0.1 < $1.1 }
        let best = scored.first?.1 ?? 0
        close = scored.filter { $0.1 <= best + 1 }.map(\.0)
    }
    let shown = close.prefix(8)
    let list = shown.isEmpty ? "" : "; close: " + shown.joined(separator: ", ") + (close.count > shown.count ? ", …" : "")
    return "no step \"\(id)\" in this trace\(list) (all ids: transformer walkthrough --list-steps)"
}

func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count)
    for i in 1...x.count {
        var cur = [i] + Array(repeating: 0, count: y.count)
        for j in 1...y.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        prev = cur
    }
    return prev[y.count]
}
