import Foundation
import FuzzSupport
import Walkthrough

// `transformer check`'s matrix parser: arbitrary text (CSV, JSON, LaTeX, Markdown, NumPy, whitespace,
// inline `--values`). A parsed matrix must be consistent (rows × cols values, a decimals and a
// literal per value, labels per row and column), and written back as CSV it must parse to the same
// shape and values.
func consistent(_ m: ParsedMatrix, _ what: String) {
    require(m.rows > 0 && m.cols > 0 && m.rows * m.cols == m.values.count, "\(what): \(m.rows)×\(m.cols) with \(m.values.count) values")
    require(m.decimals.count == m.values.count && m.literals.count == m.values.count, "\(what): decimals/literals per value")
    if let r = m.rowLabels { require(r.count == m.rows, "\(what): \(r.count) row labels for \(m.rows) rows") }
    if let c = m.colLabels { require(c.count == m.cols, "\(what): \(c.count) column labels for \(m.cols) columns") }
    require(m.index >= 0 && m.index < m.matrixCount, "\(what): matrix \(m.index) of \(m.matrixCount)")
    _ = m.tensor
}

@_cdecl("FuzzMatrix_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: data == nil ? 0 : size), as: UTF8.self)
    if let m = try? MatrixParser.parse(text) {
        consistent(m, "parse")
        // Plain decimal literals written back as CSV read back the same.
        if m.literals.allSatisfy({ Float($0) != nil && !$0.contains(where: { $0 == "," || $0 == " " }) }) {
            let csv = (0..<m.rows).map { r in m.literals[(r * m.cols)..<((r + 1) * m.cols)].joined(separator: ",") }.joined(separator: "\n")
            if let back = try? MatrixParser.parse(csv) {
                require(
                    back.rows == m.rows && back.cols == m.cols,
                    "CSV round trip: \(m.rows)×\(m.cols) became \(back.rows)×\(back.cols)\n\(csv)")
                require(
                    zip(back.values, m.values).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "CSV round trip changed values\n\(csv)")
            } else {
                require(false, "CSV round trip does not parse:\n\(csv)")
            }
        }
    }
    if let all = try? MatrixParser.parseEach(text) {
        for case .success(let m) in all { consistent(m, "parseEach") }
        if all.count > 1, let m = try? MatrixParser.parse(text, index: all.count - 1) { consistent(m, "parse(index:)") }
    }
    if let m = try? MatrixParser.parseInline(text) { consistent(m, "parseInline") }
    return 0
}
