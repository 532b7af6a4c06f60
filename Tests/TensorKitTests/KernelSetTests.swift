import Foundation
import Testing

@testable import TensorKit

/// Run-time kernel selection: cpuid's answer against the kernel's own (/proc/cpuinfo), the choice of a
/// set and the refusals of `TRANSFORMER_KERNELS`, and the two quantisers giving the same bytes.
@Suite struct KernelSetTests {
    /// Linux lists a feature in /proc/cpuinfo when both the CPU and the kernel support it, which is what
    /// `CPUFeatureSet` reports (cpuid, with xgetbv for the OS's register saving).
    @Test func featuresAgreeWithProcCPUInfo() throws {
        #if os(Linux) && (arch(x86_64) || arch(arm64))
            let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("flags") || $0.hasPrefix("Features") })
            let flags = Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
            for (feature, name) in CPUFeatureSet.named {
                #if arch(x86_64)
                    if feature == .neon || feature == .dotprod { continue }
                #else
                    if feature != .neon && feature != .dotprod { continue }
                #endif
                #expect(CPUFeatureSet.current.contains(feature) == flags.contains(name), "\(name)")
            }
        #endif
    }

    @Test func bestSetIsChosenWithoutTheVariable() throws {
        #expect(try KernelSet.resolve(nil) == KernelSet.supported().last)
        #expect(try KernelSet.resolve("") == KernelSet.supported().last)
        // A CPU with nothing runs the portable kernels.
        #expect(try KernelSet.resolve(nil, cpu: []) == .baseline)
        #expect(KernelSet.supported(by: []) == [.baseline])
        #expect(try KernelSet.resolve("BASELINE", cpu: []) == .baseline)
        if KernelSet.avx2.inBuild {
            #expect(KernelSet.supported(by: [.avx, .avx2, .fma]) == [.baseline, .avx2])
            #expect(try KernelSet.resolve(nil, cpu: [.avx, .avx2, .fma, .f16c]) == .avx2)
            // AVX-512 without BF16 (Ice Lake): no bf16 kernel; with it (Zen 4, Sapphire Rapids): the bf16 set.
            let avx512: CPUFeatureSet = [.avx, .avx2, .fma, .f16c, .avx512f, .avx512bw, .avx512vl, .avx512vnni]
            #expect(try KernelSet.resolve(nil, cpu: avx512) == (KernelSet.vnni.inBuild ? .vnni : .avx2))
            if KernelSet.avx512bf16.inBuild {
                #expect(try KernelSet.resolve(nil, cpu: avx512.union(.avx512bf16)) == .avx512bf16)
                #expect(KernelSet.avx512bf16.hasInt8 && KernelSet.avx512bf16.hasBF16 && KernelSet.avx512bf16.hasVNNI)
                #expect(!KernelSet.vnni.hasBF16 && !KernelSet.avx2.hasBF16 && !KernelSet.avx2.hasVNNI)
            }
        }
    }

    @Test func refusalsSayWhatIsMissing() {
        #expect(throws: KernelSetError.self) { try KernelSet.resolve("fastest") }
        do {
            _ = try KernelSet.resolve("fastest")
        } catch {
            #expect(error.message.contains("is not a kernel set (expected one of baseline, avx2, avx512, vnni, avx512-bf16)"))
        }
        if KernelSet.avx2.inBuild {
            do {
                _ = try KernelSet.resolve("avx2", cpu: [.avx, .fma])
                Issue.record("a CPU without AVX2 was given the avx2 kernels")
            } catch {
                #expect(error.message == "TRANSFORMER_KERNELS=avx2: this CPU lacks avx2 (it has avx fma)")
            }
        }
        if KernelSet.avx512bf16.inBuild {
            do {
                _ = try KernelSet.resolve("avx512-bf16", cpu: [.avx, .avx2, .fma, .avx512f, .avx512bw, .avx512vl, .avx512vnni])
                Issue.record("a CPU without AVX-512 BF16 was given the bf16 kernels")
            } catch {
                #expect(
                    error.message
                        == "TRANSFORMER_KERNELS=avx512-bf16: this CPU lacks avx512_bf16 (it has avx avx2 fma avx512f avx512bw avx512vl avx512_vnni)"
                )
            }
        }
        // Plain AVX-512 (wider Float32 registers, no new instructions) has no kernels of its own yet, whatever the CPU:
        // on the CPUs measured its FMA units are 256 bits wide, so AVX2 peaks as high.
        let all = CPUFeatureSet(rawValue: ~0)
        do {
            _ = try KernelSet.resolve("avx512", cpu: all)
            Issue.record("avx512 accepted")
        } catch {
            #expect(error.message.hasPrefix("TRANSFORMER_KERNELS=avx512: this build has no avx512 kernels"))
        }
    }

    /// The process's set is the one the environment names (CI runs the suites under `baseline` and `avx2`).
    @Test func activeSetFollowsTheEnvironment() throws {
        let env = ProcessInfo.processInfo.environment["TRANSFORMER_KERNELS"]
        #expect(KernelSet.active == (try KernelSet.resolve(env)))
        #expect(ActivationPrecision.int8Available == KernelSet.active.hasInt8)
        #expect(KernelSet.report.hasPrefix("kernels \(KernelSet.active) ("))
    }

    /// The portable quantiser and the AVX2 one round the same values to the same bytes and scales.
    @Test func quantisersAgreeByteForByte() throws {
        guard KernelSet.supported().contains(.avx2) else { return }
        var rng = SeededRNG(seed: 11)
        let cols = 32 * 24
        // ties (x·127/max exactly n + ½) included: both round to even
        var x = (0..<cols).map { _ in (rng.nextUnit() * 2 - 1) * 3 }
        for b in 0..<4 { x[32 * b] = 127; x[32 * b + 1] = Float(b) + 0.5; x[32 * b + 2] = -Float(b) - 1.5 }
        func run(_ k: KernelSet) -> ([Int8], [Float]) {
            var q = [Int8](repeating: 0, count: cols), ds = [Float](repeating: .nan, count: 2 * cols / 32)
            q.withUnsafeMutableBufferPointer { qp in
                ds.withUnsafeMutableBufferPointer { dp in
                    let a = Int8Activations(q: qp.baseAddress!, d: dp.baseAddress!, s: dp.baseAddress! + cols / 32)
                    Quantized.quantizeActivations(x, cols: cols, into: a, kernels: k)
                }
            }
            return (q, ds)
        }
        let (q0, d0) = run(.baseline), (q1, d1) = run(.avx2)
        #expect(q0 == q1)
        #expect(d0 == d1)
        #expect(q0[1] == 0 && q0[2] == -2 && q0[32 + 1] == 2 && q0[64 + 2] == -4)  // 0.5 → 0, −1.5 → −2, 1.5 → 2, −3.5 → −4
    }
}
