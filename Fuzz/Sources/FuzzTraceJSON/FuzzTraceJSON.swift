import Foundation
import FuzzSupport
import TransformerKit
import Walkthrough

// Trace JSON (docs/trace-schema.md): arbitrary bytes as a trace file, read as `transformer check
// --trace` and `transformer replay` read it. A trace that decodes is replayed (which promises
// "mismatches with a message, never a crash"), rendered in every single-file format, re-encoded
// and decoded again, and a matrix is checked against each step.
@_cdecl("FuzzTraceJSON_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let d = bytes(data, size)
    guard let doc = try? TraceDocument.load(data: d, name: "trace.json") else { return 0 }
    _ = replay(doc)
    for format in [TraceFormat.text, .markdown, .latex, .html, .json] {
        _ = try? doc.render(format)
    }
    if let again = try? doc.jsonData(pretty: false) {
        guard let back = try? TraceDocument.load(data: again, name: "re-encoded") else {
            require(false, "a decoded trace does not decode after re-encoding"); return 0
        }
        require(back.steps.count == doc.steps.count && back.parameters.count == doc.parameters.count, "trace round trip lost steps")
    }
    for step in doc.steps.prefix(8) {
        let m = ParsedMatrix(rows: 1, cols: 2, values: [0, 1])
        _ = check(m, against: step, in: doc, tolerance: nil).renderText()
        if step.shape.count == 2 {  // the step's own values, as a person would type them, must check out
            let own = ParsedMatrix(rows: step.shape[0], cols: step.shape[1], values: step.values)
            if step.values.allSatisfy({ !$0.isNaN }) {
                require(check(own, against: step, in: doc, tolerance: nil).isCorrect, "\(step.id): its own values do not check")
            }
        }
        _ = doc.tensor(step.id)
    }
    return 0
}
