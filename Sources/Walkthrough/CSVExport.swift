import Foundation

public enum CSVExport {
    public static func write(_ doc: TraceDocument, options: RenderOptions, to folder: URL) throws -> Int {
        throw WalkthroughError("csv export is not built yet")
    }
}
