// swift-tools-version:6.1
import PackageDescription

// MARK: - CPU target
// Swift on Linux compiles for generic x86-64 unless told otherwise, so SIMD fused multiply-adds
// become calls to libm's `fmaf` (measured >50x slower). On an x86-64 host we build for Haswell,
// the oldest common AVX2 + FMA CPU. Set TRANSFORMER_PORTABLE=1 to build for generic x86-64
// (for older CPUs). `unsafeFlags` means a package that depends on this one must do so by
// local path or branch; see README "Build settings".
let portable = Context.environment["TRANSFORMER_PORTABLE"] != nil
var cpuFlags: [SwiftSetting] = []
// CPUFeatures refuses, with a message, to start a Haswell build on a CPU without AVX2 + FMA.
var cpuCheck: [CSetting] = []
#if arch(x86_64)
if !portable {
    // TRANSFORMER_AVX2 lets TensorKit call the AVX2 intrinsics (its 8-bit-activation kernels); a
    // portable build compiles without them and falls back to the Float32 kernels. Which of the kernels
    // a build has actually run is chosen at run time (TensorKit's `KernelSet`, `TRANSFORMER_KERNELS`).
    cpuFlags = [.unsafeFlags(["-target-cpu", "haswell"]), .define("TRANSFORMER_AVX2")]
    cpuCheck = [.define("TK_REQUIRE_AVX2")]
}
#endif

let package = Package(
    name: "transformer",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "TensorKit", targets: ["TensorKit"]),
        .library(name: "ModelFiles", targets: ["ModelFiles"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "TransformerKit", targets: ["TransformerKit"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "DataParallel", targets: ["DataParallel"]),
        .library(name: "Walkthrough", targets: ["Walkthrough"]),
        .library(name: "Explorer", targets: ["Explorer"]),
        .executable(name: "transformer", targets: ["transformer"]),
    ],
    // MARK: - Traits (all off by default: the default build needs no system library)
    // BLAS: Gemm.multiply through the system CBLAS (Debian: libopenblas-dev).
    // MPI: data-parallel training across processes and machines through the system MPI (Debian:
    // libopenmpi-dev, openmpi-bin); without it `DataParallel` is a single-process no-op.
    traits: [
        .trait(name: "BLAS", description: "Back Gemm.multiply with the system CBLAS (OpenBLAS: apt-get install libopenblas-dev)."),
        .trait(name: "MPI", description: "Data-parallel training over the system MPI (mpirun -np N transformer train …)"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // Already in the graph through Hummingbird; named for the explorer's request-read deadline (a channel handler).
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
    ],
    targets: [
        // MARK: - Libraries
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // cpuid in C (no flags needed): the features kernels are chosen by at run time.
        .target(name: "CPUFeatures", cSettings: cpuCheck),
        // Kernels needing CPU features beyond the build's (AVX-512 BF16), in C with per-function `target`
        // attributes: no flags, builds anywhere; called only when cpuid says the CPU has them.
        .target(name: "CKernels"),
        .target(name: "TensorKit", dependencies: ["CPUFeatures", "CKernels", .target(name: "CBLAS", condition: .when(traits: ["BLAS"]))],
                swiftSettings: cpuFlags),
        // Model files on disk (safetensors, GGUF, Hugging Face folders) and the one JSON scanner.
        .target(name: "ModelFiles", dependencies: ["TensorKit"], swiftSettings: cpuFlags),
        // Text ↔ ids: char, word, byte-level BPE (+ trainer), WordPiece, GGUF vocabularies.
        .target(name: "Tokenizers", dependencies: ["ModelFiles"], swiftSettings: cpuFlags),
        // The models, one folder per family, and the traced models that record every step.
        .target(name: "TransformerKit", dependencies: ["TensorKit", "ModelFiles", "Tokenizers"], swiftSettings: cpuFlags),
        .target(name: "Training", dependencies: ["TensorKit", "ModelFiles", "Tokenizers", "TransformerKit", "DataParallel"],
                swiftSettings: cpuFlags),
        .target(name: "DataParallel",
                dependencies: [.target(name: "CMPI", condition: .when(traits: ["MPI"]))],
                swiftSettings: cpuFlags),
        // The system MPI, only with the MPI trait: Open MPI's pkg-config name is `ompi`.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin", "pkg-config"]), .brew(["open-mpi"])]),
        .target(name: "Walkthrough", dependencies: ["TensorKit", "ModelFiles", "Tokenizers", "TransformerKit"],
                resources: [.copy("Resources")], swiftSettings: cpuFlags),
        // MARK: - Web explorer (`transformer serve`): pages and JSON from traces; the model comes in through a protocol
        .target(name: "Explorer", dependencies: [
            "Walkthrough",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
        ]),
        // MARK: - OpenAI-compatible server (`transformer serve --model X.gguf`): slots, batched decoding, embeddings
        .target(name: "Serving", dependencies: [
            "TransformerKit", "Tokenizers", "TensorKit", "Explorer",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
        ], swiftSettings: cpuFlags),
        // MARK: - CLI
        .executableTarget(
            name: "transformer",
            dependencies: [
                "TensorKit", "ModelFiles", "Tokenizers", "TransformerKit", "Training", "Walkthrough", "DataParallel", "Explorer", "Serving",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: cpuFlags),
        // MARK: - Tests
        .testTarget(name: "TensorKitTests", dependencies: ["TensorKit"], swiftSettings: cpuFlags),
        .testTarget(name: "TransformerKitTests", dependencies: [
                        "TransformerKit", "TensorKit", "ModelFiles", "Tokenizers", "Serving",
                        .product(name: "HummingbirdTesting", package: "hummingbird"),
                    ],
                    resources: [.copy("Fixtures")], swiftSettings: cpuFlags),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "TransformerKit", "TensorKit", "ModelFiles", "Tokenizers", "DataParallel"],
                    resources: [.copy("Fixtures")], swiftSettings: cpuFlags),
        .testTarget(name: "WalkthroughTests", dependencies: ["Walkthrough", "TransformerKit", "TensorKit", "ModelFiles", "Tokenizers"],
                    resources: [.copy("Fixtures")],
                    swiftSettings: cpuFlags),
        .testTarget(name: "ExplorerTests", dependencies: [
            "Explorer", "Walkthrough",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
