import ArgumentParser

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compare a hand-computed matrix with the computed step.")
    func run() throws { fail("check is not built yet") }
}
