import ArgumentParser
import Foundation
import Walkthrough

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The main demonstration: the seed example's walkthrough, every step shown.")

    func run() throws {
        do {
            let doc = try WalkthroughSetup().run()
            try emit(doc, format: .text, options: RenderOptions(), output: nil)
        } catch let e as WalkthroughError {
            fail(e.message)
        }
    }
}
