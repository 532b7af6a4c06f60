// swift-tools-version:6.1
import Foundation
import PackageDescription

// libFuzzer targets for the readers and tokenizers (README "Reliability" → "Fuzzing").
// Kept out of the main package so `swift build` and `swift test` are unchanged. Build and run one
// with `scripts/fuzz.sh NAME SECONDS`, which builds this package with
//   swift build -c release --package-path Fuzz --scratch-path .build-fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// Every target defines `LLVMFuzzerTestOneInput` and, since SwiftPM links an executable's entry point
// as `<Module>_main`, that too: it hands control to libFuzzer's driver (`runFuzzer`).

// A path dependency's identity is its folder's name (the checkout may be called anything).
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootName = root.lastPathComponent

func kit(_ product: String) -> Target.Dependency { .product(name: product, package: rootName) }

let targets: [(name: String, deps: [Target.Dependency])] = [
    ("FuzzSafetensors", [kit("ModelFiles")]),
    ("FuzzGGUF", [kit("TensorKit"), kit("ModelFiles"), kit("Tokenizers")]),
    ("FuzzChatTemplate", [kit("Tokenizers")]),
    ("FuzzConfigJSON", [kit("TransformerKit"), kit("Tokenizers"), kit("Training")]),
    ("FuzzTraceJSON", [kit("TransformerKit"), kit("Walkthrough")]),
    ("FuzzTokenizerChar", [kit("Tokenizers")]),
    ("FuzzTokenizerBPE", [kit("Tokenizers")]),
    ("FuzzTokenizerWordPiece", [kit("Tokenizers")]),
    ("FuzzTokenizerGGUF", [kit("ModelFiles"), kit("Tokenizers")]),
    ("FuzzMatrix", [kit("Walkthrough")]),
    ("FuzzWorksheet", [kit("Walkthrough")]),
]

let package = Package(
    name: "transformer-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(path: "..")],
    targets: [.target(name: "CFuzzerDriver"), .target(name: "FuzzSupport", dependencies: ["CFuzzerDriver"])] + targets.map {
        .executableTarget(name: $0.name, dependencies: ["FuzzSupport"] + $0.deps)
    },
    swiftLanguageModes: [.v6]
)
