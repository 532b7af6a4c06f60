import Foundation
import TransformerKit

/// One CSV file per step (`NN-<id>.csv`: a header row of column labels after an empty corner cell,
/// then one row per row label) and `index.csv` listing the steps. RFC 4180: CRLF line ends,
/// cells with a comma, quote or line break are quoted with quotes doubled. Values use
/// `options.decimals` (integral steps none); −∞ is written `-inf`.
public enum CSVExport {
    /// Writes the visible steps into `folder` (created with any missing parents), each file
    /// atomically. `NN` is the step's 1-based position in the whole trace, so a filtered export
    /// names files as a full one does. Returns the number of step files written (not counting the index).
    @discardableResult
    public static func write(_ doc: TraceDocument, options: RenderOptions, to folder: URL) throws -> Int {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: folder.path, isDirectory: &isDir), !isDir.boolValue {
            throw WalkthroughError("\(folder.path): exists and is not a folder; --format csv writes one file per step into a folder")
        }
        do { try fm.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
            throw WalkthroughError("\(folder.path): cannot create the folder (\(error.localizedDescription))")
        }
        let visible = Set(options.visibleSteps(doc).map(\.id))
        let width = max(2, String(doc.steps.count).count)
        var index: [[String]] = [["order", "id", "title", "op", "shape", "section", "inputs", "formula", "file"]]
        var written = 0
        for (i, step) in doc.steps.enumerated() where visible.contains(step.id) {
            let order = String(repeating: "0", count: max(0, width - String(i + 1).count)) + String(i + 1)
            let name = "\(order)-\(fileSafe(step.id)).csv"
            try save(table(step, options: options), to: folder.appendingPathComponent(name))
            written += 1
            index.append([
                order, step.id, step.title, step.op.rawValue, step.shape.map(String.init).joined(separator: "x"),
                step.section, step.inputs.joined(separator: " "), step.formula, name
            ])
        }
        try save(index, to: folder.appendingPathComponent("index.csv"))
        return written
    }

    /// A step as rows of cells: header (corner, column labels), then label and values per row.
    static func table(_ s: TraceStep, options: RenderOptions) -> [[String]] {
        let t = s.tensor
        let places = s.isIntegral ? 0 : options.decimals
        var rows: [[String]] = [[""] + (0..<t.cols).map { s.colLabels[safe: $0] ?? "\($0)" }]
        for r in 0..<t.rows {
            rows.append([s.rowLabels[safe: r] ?? "\(r)"] + (0..<t.cols).map { value(t[r, $0], decimals: places) })
        }
        return rows
    }

    /// A value for CSV: fixed decimals, `-inf`/`inf`/`nan` for the non-finite.
    static func value(_ v: Float, decimals: Int) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v < 0 ? "-inf" : "inf" }
        return formatValue(v, decimals: decimals)
    }

    /// RFC 4180 quoting: only cells with a comma, quote or line break are quoted.
    static func quote(_ cell: String) -> String {
        guard cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func encode(_ rows: [[String]]) -> String {
        rows.map { $0.map(quote).joined(separator: ",") + "\r\n" }.joined()
    }

    /// A step id as a file name: anything but letters, digits, `.`, `_` and `-` becomes `_`.
    static func fileSafe(_ id: String) -> String {
        let s = String(
            id.unicodeScalars.map { u -> Character in
                let ok = (u.value < 128) && (CharacterSet.alphanumerics.contains(u) || u == "." || u == "_" || u == "-")
                return ok ? Character(u) : "_"
            })
        return s.hasPrefix(".") ? "_" + s.dropFirst() : s
    }

    static func save(_ rows: [[String]], to url: URL) throws {
        do { try Data(encode(rows).utf8).write(to: url, options: .atomic) } catch {
            throw WalkthroughError("\(url.path): cannot write (\(error.localizedDescription))")
        }
    }
}
