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
#if arch(x86_64)
if !portable {
    cpuFlags = [.unsafeFlags(["-target-cpu", "haswell"])]
}
#endif

let package = Package(
    name: "transformer",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "TensorKit", targets: ["TensorKit"]),
        .library(name: "TransformerKit", targets: ["TransformerKit"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "DataParallel", targets: ["DataParallel"]),
        .library(name: "Walkthrough", targets: ["Walkthrough"]),
        .executable(name: "transformer", targets: ["transformer"]),
    ],
    // MARK: - Traits
    // MPI (off by default): data-parallel training across processes and machines through the system
    // MPI library (Debian: libopenmpi-dev, openmpi-bin). Without it `DataParallel` is a single-process
    // no-op and the build needs no system library.
    traits: [
        .trait(name: "MPI", description: "Data-parallel training over the system MPI (mpirun -np N transformer train …)"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: - Libraries
        .target(name: "TensorKit", swiftSettings: cpuFlags),
        .target(name: "TransformerKit", dependencies: ["TensorKit"], swiftSettings: cpuFlags),
        .target(name: "Training", dependencies: ["TensorKit", "TransformerKit", "DataParallel"], swiftSettings: cpuFlags),
        .target(name: "DataParallel",
                dependencies: [.target(name: "CMPI", condition: .when(traits: ["MPI"]))],
                swiftSettings: cpuFlags),
        // The system MPI, only with the MPI trait: Open MPI's pkg-config name is `ompi`.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin", "pkg-config"]), .brew(["open-mpi"])]),
        .target(name: "Walkthrough", dependencies: ["TensorKit", "TransformerKit"],
                resources: [.copy("Resources")], swiftSettings: cpuFlags),
        // MARK: - CLI
        .executableTarget(
            name: "transformer",
            dependencies: [
                "TensorKit", "TransformerKit", "Training", "Walkthrough", "DataParallel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: cpuFlags),
        // MARK: - Tests
        .testTarget(name: "TensorKitTests", dependencies: ["TensorKit"], swiftSettings: cpuFlags),
        .testTarget(name: "TransformerKitTests", dependencies: ["TransformerKit", "TensorKit"],
                    resources: [.copy("Fixtures")], swiftSettings: cpuFlags),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "TransformerKit", "TensorKit", "DataParallel"],
                    resources: [.copy("Fixtures")], swiftSettings: cpuFlags),
        .testTarget(name: "WalkthroughTests", dependencies: ["Walkthrough", "TransformerKit", "TensorKit"],
                    swiftSettings: cpuFlags),
    ],
    swiftLanguageModes: [.v6]
)
