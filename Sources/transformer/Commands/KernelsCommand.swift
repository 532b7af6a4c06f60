import ArgumentParser
import Foundation
import TensorKit

/// What will run on this machine: the CPU's features, each kernel set with whether the build and the CPU
/// have it, and the one in use (the best, or `TRANSFORMER_KERNELS`'s).
struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Show the CPU's vector features, the kernel sets, and which one runs (TRANSFORMER_KERNELS forces one).")

    @Flag(help: "One JSON object instead of the table.") var json = false

    /// What each set adds over the one before it.
    static func adds(_ set: KernelSet) -> String {
        switch set {
        case .baseline: return "portable Swift SIMD; quantised weights × Float32 activations"
        case .avx2: return "8-bit activations, vpmaddubsw integer dot products, 8-row packed kernels"
        case .avx512: return "Float32 in zmm registers (not built: no faster than AVX2 with 256-bit FMA units)"
        case .vnni: return "vpdpbusd in the packed Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q6_K kernels"
        case .avx512bf16: return "bf16 GEMM (vdpbf16ps) for train --precision bf16"
        }
    }

    func run() throws {
        let cpu = CPUFeatureSet.current, supported = KernelSet.supported(), active = KernelSet.active
        let bf16 = GemmPrecision.bf16Implementation()
        if json {
            let sets = KernelSet.allCases.map { s in
                [
                    "name": s.rawValue, "in_build": s.inBuild, "cpu_has": cpu.isSuperset(of: s.requires),
                    "requires": s.requires.description, "adds": Self.adds(s)
                ] as [String: Any]
            }
            let object: [String: Any] = [
                "cpu": cpu.description, "active": active.rawValue, "supported": supported.map(\.rawValue),
                "forced": KernelSet.forced,
                "int8_activations": active.hasInt8, "bf16_native": bf16.native, "sets": sets
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(KernelSet.report)
        for s in KernelSet.allCases {
            let state =
                s == active ? "active" : supported.contains(s) ? "available" : !s.inBuild ? "not in this build" : "CPU lacks it"
            func pad(_ t: String, _ n: Int) -> String { t.padding(toLength: max(n, t.count), withPad: " ", startingAt: 0) }
            print("  \(pad(s.rawValue, 12)) \(pad(state, 18)) needs \(s.requires) — \(Self.adds(s))")
        }
        print("8-bit activations for GGUF models: \(active.hasInt8 ? "yes" : "no (Float32 activations)")")
        print("train --precision bf16: \(bf16.note)")
    }
}
