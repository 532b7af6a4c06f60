import CKernels
import CPUFeatures
import Foundation

// MARK: - Kernels chosen at run time
//
// One binary meets different CPUs (a Zen 3 with AVX2 only, a Zen 4 with AVX-512, BF16 and VNNI). The
// features are read once with cpuid (`CPUFeatures`, in C: Swift cannot issue it), and the hot kernels
// that have more than one implementation ask `KernelSet.active` which to run. `TRANSFORMER_KERNELS`
// forces a set, which lets CI run every path on whatever CPU it gets.

/// The vector features of the CPU running this process (those its OS also saves the registers of).
public struct CPUFeatureSet: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    /// Wraps `tk_cpu_features()` bits.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let avx = Self(rawValue: UInt64(TK_CPU_AVX))
    public static let avx2 = Self(rawValue: UInt64(TK_CPU_AVX2))
    public static let fma = Self(rawValue: UInt64(TK_CPU_FMA))
    public static let f16c = Self(rawValue: UInt64(TK_CPU_F16C))
    public static let avx512f = Self(rawValue: UInt64(TK_CPU_AVX512F))
    public static let avx512bw = Self(rawValue: UInt64(TK_CPU_AVX512BW))
    public static let avx512vl = Self(rawValue: UInt64(TK_CPU_AVX512VL))
    public static let avx512vnni = Self(rawValue: UInt64(TK_CPU_AVX512VNNI))
    public static let avx512bf16 = Self(rawValue: UInt64(TK_CPU_AVX512BF16))
    public static let avxvnni = Self(rawValue: UInt64(TK_CPU_AVXVNNI))
    public static let neon = Self(rawValue: UInt64(TK_CPU_NEON))
    public static let dotprod = Self(rawValue: UInt64(TK_CPU_DOTPROD))

    /// Each feature with the name Linux's /proc/cpuinfo gives it.
    public static let named: [(feature: CPUFeatureSet, name: String)] = [
        (.avx, "avx"), (.avx2, "avx2"), (.fma, "fma"), (.f16c, "f16c"), (.avx512f, "avx512f"), (.avx512bw, "avx512bw"),
        (.avx512vl, "avx512vl"), (.avx512vnni, "avx512_vnni"), (.avx512bf16, "avx512_bf16"), (.avxvnni, "avx_vnni"),
        (.neon, "asimd"), (.dotprod, "asimddp")
    ]

    /// What this machine's CPU has.
    public static let current = CPUFeatureSet(rawValue: tk_cpu_features())

    /// The features' names, space-separated ("none" for none).
    public var description: String {
        let names = Self.named.filter { contains($0.feature) }.map(\.name)
        return names.isEmpty ? "none" : names.joined(separator: " ")
    }
}

/// A level of kernel implementations. Each needs some CPU features and exists only in builds compiled
/// with it; `active` is the best one the CPU and the build share, or the one `TRANSFORMER_KERNELS` names.
public enum KernelSet: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Portable Swift: SIMD types only, Float32 products against quantised weights.
    case baseline
    /// AVX2 + FMA: adds 8-bit activations with integer dot products (`vpmaddubsw`) on quantised weights.
    case avx2
    /// AVX-512 (F, BW, VL) for Float32: not in this build (on the CPUs measured, Zen 4 among them, the FMA
    /// units are 256 bits wide, so it would peak no higher than AVX2).
    case avx512
    /// The AVX2 kernels, with AVX-512 VNNI (`vpdpbusd`, CKernels/quant_vnni.c) for packed Q4_0, Q4_1 and Q8_0 rows
    /// times 8-bit activations.
    case vnni
    /// The VNNI kernels plus a bfloat16 GEMM on AVX-512 BF16 (`vdpbf16ps`, CKernels/gemm_bf16.c) for
    /// `Gemm.precision = .bf16`. (Every CPU with AVX-512 BF16 also has VNNI.)
    case avx512bf16 = "avx512-bf16"

    public var description: String { rawValue }

    /// The CPU features the set's kernels use.
    public var requires: CPUFeatureSet {
        switch self {
        case .baseline: return []
        case .avx2: return [.avx2, .fma]
        case .avx512: return [.avx2, .fma, .avx512f, .avx512bw, .avx512vl]
        case .avx512bf16: return [.avx2, .fma, .avx512f, .avx512bw, .avx512vl, .avx512vnni, .avx512bf16]
        case .vnni: return [.avx2, .fma, .avx512f, .avx512bw, .avx512vl, .avx512vnni]
        }
    }

    /// Whether this build contains the set's kernels (the AVX2 ones need the Haswell build, the default on x86-64).
    public var inBuild: Bool {
        switch self {
        case .baseline: return true
        case .avx2:
            #if arch(x86_64) && TRANSFORMER_AVX2
                return true
            #else
                return false
            #endif
        case .vnni: return KernelSet.avx2.inBuild && tk_has_vnni_kernels() != 0
        case .avx512bf16: return KernelSet.vnni.inBuild && tk_has_bf16_kernels() != 0
        case .avx512: return false
        }
    }

    /// Whether the set runs 8-bit activations with integer dot products.
    public var hasInt8: Bool { self == .avx2 || hasVNNI }

    /// Whether its 4-bit kernels use `vpdpbusd` (AVX-512 VNNI) rather than AVX2's `vpmaddubsw`.
    public var hasVNNI: Bool { self == .vnni || self == .avx512bf16 }

    /// Whether `Gemm.precision = .bf16` runs on a bfloat16 kernel (otherwise it is emulated in Float32).
    public var hasBF16: Bool { self == .avx512bf16 }

    /// The sets both the CPU and this build have, baseline first.
    public static func supported(by cpu: CPUFeatureSet = .current) -> [KernelSet] {
        allCases.filter { $0.inBuild && cpu.isSuperset(of: $0.requires) }
    }

    /// The set named by `value` (`TRANSFORMER_KERNELS`), or the best supported one when `value` is nil or empty.
    /// Throws, naming what is missing, for a name that is not a set or a set the CPU or the build lacks.
    public static func resolve(_ value: String?, cpu: CPUFeatureSet = .current) throws(KernelSetError) -> KernelSet {
        let ok = supported(by: cpu)
        guard let value, !value.isEmpty else { return ok.last ?? .baseline }
        guard let set = KernelSet(rawValue: value.lowercased()) else {
            throw KernelSetError(
                "TRANSFORMER_KERNELS=\(value) is not a kernel set (expected one of \(allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if !set.inBuild {
            throw KernelSetError(
                "TRANSFORMER_KERNELS=\(value): this build has no \(set) kernels (it has \(allCases.filter(\.inBuild).map(\.rawValue).joined(separator: ", ")))"
            )
        }
        let missing = CPUFeatureSet(rawValue: set.requires.rawValue & ~cpu.rawValue)
        if !missing.isEmpty {
            throw KernelSetError("TRANSFORMER_KERNELS=\(value): this CPU lacks \(missing) (it has \(cpu))")
        }
        return set
    }

    /// The set the process runs, chosen once: `TRANSFORMER_KERNELS` if set and valid, else the best
    /// supported. (The command-line tool refuses an invalid value before it gets here; a library user's
    /// invalid value is reported on standard error and the best set used.)
    public static let active: KernelSet = {
        do {
            return try resolve(ProcessInfo.processInfo.environment["TRANSFORMER_KERNELS"])
        } catch {
            FileHandle.standardError.write(Data("warning: \(error); using \(supported().last ?? .baseline)\n".utf8))
            return supported().last ?? .baseline
        }
    }()

    /// Whether `TRANSFORMER_KERNELS` names the set (rather than the best supported being taken).
    public static var forced: Bool { ProcessInfo.processInfo.environment["TRANSFORMER_KERNELS"].map { !$0.isEmpty } ?? false }

    /// One line for reports: the active set, how it was chosen, the alternatives and the CPU's features.
    public static var report: String {
        return
            "kernels \(active) (\(forced ? "TRANSFORMER_KERNELS" : "best of \(supported().map(\.rawValue).joined(separator: ", "))")) · CPU \(CPUFeatureSet.current)"
    }
}

/// A `TRANSFORMER_KERNELS` value that cannot be honoured.
public struct KernelSetError: Error, CustomStringConvertible {
    /// What is wrong and what would do instead.
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
