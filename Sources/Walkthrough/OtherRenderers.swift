import Foundation

extension TraceDocument {
    /// Markdown, LaTeX and HTML (written by their own renderers).
    func renderOther(_ format: TraceFormat, options: RenderOptions) throws -> String {
        throw WalkthroughError("the \(format.rawValue) format is not built yet")
    }
}
