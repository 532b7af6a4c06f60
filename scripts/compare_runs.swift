// Compares two training runs of `transformer train`: the training-loss column of loss.csv (relative
// tolerance) and every tensor of the latest checkpoint's model.safetensors (absolute tolerance, F32).
// Used by scripts/mpi-test.sh to check that `mpirun -np 2` trains the same model as one process.
//
//   swift scripts/compare_runs.swift RUN_A RUN_B [--loss-tol 1e-5] [--weight-tol 1e-5]
// Exit status 0 when within tolerance, 1 when not, 2 on unreadable input.
import Foundation

func die(_ s: String, _ code: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data("compare_runs: \(s)\n".utf8)); exit(code)
}

var args = Array(CommandLine.arguments.dropFirst())
var lossTol = 1e-5, weightTol = 1e-5
func option(_ name: String) -> Double? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Double(args[i + 1]) else { return nil }
    args.removeSubrange(i...(i + 1)); return v
}
lossTol = option("--loss-tol") ?? lossTol
weightTol = option("--weight-tol") ?? weightTol
guard args.count == 2 else { die("usage: compare_runs.swift RUN_A RUN_B [--loss-tol X] [--weight-tol X]") }

func read(_ path: String) -> Data {
    guard let d = FileManager.default.contents(atPath: path) else { die("cannot read \(path)") }
    return d
}

func losses(_ run: String) -> [Double] {
    let lines = String(decoding: read(run + "/loss.csv"), as: UTF8.self).split(separator: "\n").dropFirst()
    return lines.map { line in
        let cols = line.split(separator: ",", omittingEmptySubsequences: false)
        guard cols.count > 1, let v = Double(cols[1]) else { die("\(run)/loss.csv: bad line \(line)") }
        return v
    }
}

/// name → values of every F32 tensor in a safetensors file.
func tensors(_ run: String) -> [String: [Float]] {
    let latest = String(decoding: read(run + "/latest"), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    let path = run + "/" + latest + "/model.safetensors"
    let data = read(path)
    guard data.count >= 8 else { die("\(path): too short") }
    let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any] else { die("\(path): bad header") }
    var out: [String: [Float]] = [:]
    for (name, value) in header where name != "__metadata__" {
        guard let info = value as? [String: Any], info["dtype"] as? String == "F32",
              let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else { die("\(path): \(name) is not an F32 tensor") }
        let bytes = data.subdata(in: (8 + n + offsets[0])..<(8 + n + offsets[1]))
        out[name] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
    return out
}

let (a, b) = (args[0], args[1])
var ok = true
let la = losses(a), lb = losses(b)
if la.count != lb.count { print("loss curves have \(la.count) and \(lb.count) steps"); ok = false }
let lossDiff = zip(la, lb).map { abs($0 - $1) / max(abs($1), 1) }.max() ?? 0
print(String(format: "loss curve: %d steps, first %.6f, last %.6f; max relative difference %.2e (tolerance %.0e)", la.count, la.first ?? .nan, la.last ?? .nan, lossDiff, lossTol))
if lossDiff > lossTol { ok = false }

let ta = tensors(a), tb = tensors(b)
if Set(ta.keys) != Set(tb.keys) { print("the checkpoints hold different tensors"); ok = false }
var worst = (name: "", diff: 0.0), count = 0
for (name, va) in ta {
    guard let vb = tb[name], vb.count == va.count else { print("\(name): missing or of another size"); ok = false; continue }
    count += va.count
    let d = zip(va, vb).map { Double(abs($0 - $1)) }.max() ?? 0
    if d >= worst.diff { worst = (name, d) }
}
print(String(format: "weights: %d tensors, %d values; max |difference| %.2e in %@ (tolerance %.0e)", ta.count, count, worst.diff, worst.name, weightTol))
if worst.diff > weightTol { ok = false }
print(ok ? "same model: within tolerance" : "DIFFERENT: beyond tolerance")
exit(ok ? 0 : 1)
