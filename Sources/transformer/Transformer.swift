import ArgumentParser
import Foundation
import TensorKit

@main
struct TransformerCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transformer",
        abstract: "A Transformer you can train, run and see through.",
        discussion: "Start with `transformer demo`, or `transformer walkthrough` to see every step of the seed example.",
        subcommands: [
            DemoCommand.self, WalkthroughCommand.self, CheckCommand.self, ExerciseCommand.self, TrainCommand.self, TranslateCommand.self,
            EvaluateCommand.self,
            BenchCommand.self, GenerateCommand.self, ChatCommand.self, GGUFInfoCommand.self, GGUFBenchCommand.self, TokenizerCommand.self,
            LogitsCommand.self, NapkinCommand.self, ExplainCommand.self, ServeCommand.self, EmbedCommand.self, KernelsCommand.self
        ]
    )

    /// Refuses a `TRANSFORMER_KERNELS` the CPU or the build cannot honour before any command runs, then
    /// runs the command as ArgumentParser would.
    static func main() async {
        do { _ = try KernelSet.resolve(ProcessInfo.processInfo.environment["TRANSFORMER_KERNELS"]) } catch { fail(error.message) }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch {
            exit(withError: error)
        }
    }
}

/// Prints a one-line error and exits non-zero; used for every user-facing failure.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    Foundation.exit(1)
}
