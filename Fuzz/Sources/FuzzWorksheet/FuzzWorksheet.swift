import Foundation
import FuzzSupport
import Walkthrough

// `transformer check --worksheet`: arbitrary text as a filled worksheet (Markdown, LaTeX or JSON with
// "answers"). It is graded or refused with a WalkthroughError, nothing else: a grade has one item per
// blank of the sheet its spec makes, each with a known status, and a blank called right has a report
// that says so.
@_cdecl("FuzzWorksheet_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: data == nil ? 0 : size), as: UTF8.self)
    do {
        let (sheet, grade) = try Worksheet.grade(text: text, name: "input")
        require(grade.items.count == sheet.blanks.count, "\(grade.items.count) grades for \(sheet.blanks.count) blanks")
        for it in grade.items {
            require(["right", "wrong", "unfilled", "unreadable"].contains(it.status), "status \(it.status)")
            if it.status == "right" { require(it.report?.isCorrect == true, "blank \(it.step) right without a correct report") }
        }
        require(grade.renderText().contains("Score: \(grade.right) of \(grade.items.count)"), "the score line")
    } catch is WalkthroughError {
    } catch {
        require(false, "an error that is not a WalkthroughError: \(error)")
    }
    return 0
}
