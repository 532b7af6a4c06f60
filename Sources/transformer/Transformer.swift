import ArgumentParser
import Foundation

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
            LogitsCommand.self, NapkinCommand.self, ExplainCommand.self, ServeCommand.self, EmbedCommand.self
        ]
    )
}

/// Prints a one-line error and exits non-zero; used for every user-facing failure.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    Foundation.exit(1)
}
