import Foundation
import TensorKit

/// Sentence pairs read from two aligned files (line N of one translates line N of the other) or from
/// one file of tab-separated pairs. Errors name the file and the line.
public struct ParallelCorpus: Sendable {
    public var pairs: [(source: String, target: String)]
    public var description: String

    public init(pairs: [(source: String, target: String)], description: String) {
        self.pairs = pairs
        self.description = description
    }

    /// Two aligned files. `.gz` files are read through `gzip -dc`.
    public static func load(source: String, target: String) throws -> ParallelCorpus {
        let s = try readLines(source), t = try readLines(target)
        guard s.count == t.count else {
            throw TrainingError("\(source) has \(s.count) lines but \(target) has \(t.count): the files must be aligned line by line")
        }
        var pairs: [(String, String)] = []
        for i in 0..<s.count {
            let a = s[i].trimmingCharacters(in: .whitespaces), b = t[i].trimmingCharacters(in: .whitespaces)
            if a.isEmpty {
                throw TrainingError("\(source):\(i + 1): empty line (its translation on \(target):\(i + 1) is \"\(b.prefix(40))\")")
            }
            if b.isEmpty { throw TrainingError("\(target):\(i + 1): empty line (its source on \(source):\(i + 1) is \"\(a.prefix(40))\")") }
            pairs.append((a, b))
        }
        guard !pairs.isEmpty else { throw TrainingError("\(source) and \(target) are empty") }
        return ParallelCorpus(pairs: pairs, description: "\(source) ↔ \(target)")
    }

    /// One file, `source<TAB>target` per line.
    public static func load(tsv path: String) throws -> ParallelCorpus {
        let lines = try readLines(path)
        var pairs: [(String, String)] = []
        for (i, line) in lines.enumerated() {
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw TrainingError("\(path):\(i + 1): expected two fields separated by one tab, found \(parts.count)")
            }
            let a = parts[0].trimmingCharacters(in: .whitespaces), b = parts[1].trimmingCharacters(in: .whitespaces)
            if a.isEmpty || b.isEmpty { throw TrainingError("\(path):\(i + 1): empty \(a.isEmpty ? "source" : "target") field") }
            pairs.append((a, b))
        }
        guard !pairs.isEmpty else { throw TrainingError("\(path) has no sentence pairs") }
        return ParallelCorpus(pairs: pairs, description: path)
    }

    /// Lines of a UTF-8 text file (without the trailing empty line a final newline makes).
    public static func readLines(_ path: String) throws -> [String] {
        let data: Data
        if path.hasSuffix(".gz") {
            data = try gunzip(path)
        } else {
            guard let d = FileManager.default.contents(atPath: path) else { throw TrainingError("\(path): cannot read the file") }
            data = d
        }
        guard let text = String(data: data, encoding: .utf8) else {
            // Find the first bad line for the message.
            var line = 1
            for chunk in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
                if String(data: Data(chunk), encoding: .utf8) == nil { break }
                line += 1
            }
            throw TrainingError("\(path):\(line): not valid UTF-8 text")
        }
        var lines = text.components(separatedBy: "\n").map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    static func gunzip(_ path: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else { throw TrainingError("\(path): no such file") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["gzip", "-dc", path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { throw TrainingError("\(path): cannot run gzip to decompress it (\(error.localizedDescription))") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TrainingError("\(path): gzip could not decompress it (corrupt or not gzip)") }
        return data
    }

    /// Splits off a validation set: every k-th pair after a seeded shuffle.
    public func split(validationFraction: Double, seed: UInt64) -> (train: ParallelCorpus, validation: ParallelCorpus) {
        guard validationFraction > 0, pairs.count > 1 else { return (self, ParallelCorpus(pairs: [], description: "none")) }
        var order = Array(pairs.indices)
        var rng = SeededRNG(seed: seed ^ 0x5EED)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(below: i + 1)) }
        let nVal = max(1, Int(Double(pairs.count) * validationFraction))
        let val = order.prefix(nVal).sorted().map { pairs[$0] }
        let train = order.dropFirst(nVal).sorted().map { pairs[$0] }
        return (
            ParallelCorpus(pairs: train, description: description + " (train)"),
            ParallelCorpus(pairs: val, description: description + " (validation)")
        )
    }
}

public struct TrainingError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Groups tokenised pairs into batches of similar length (less padding), in a seeded order.
public struct BatchPlan: Sendable {
    /// Each batch lists indices into the pairs.
    public private(set) var batches: [[Int]]

    /// Sorts by length, then cuts batches of at most `batchSize` pairs and at most `maxTokens`
    /// padded source+target tokens (0 = no token limit).
    public init(lengths: [(source: Int, target: Int)], batchSize: Int, maxTokens: Int = 0) {
        let order = lengths.indices.sorted { (lengths[$0].source, lengths[$0].target, $0) < (lengths[$1].source, lengths[$1].target, $1) }
        var batches: [[Int]] = [], current: [Int] = []
        var maxS = 0, maxT = 0
        for i in order {
            let s = max(maxS, lengths[i].source), t = max(maxT, lengths[i].target + 1)
            let tokens = (current.count + 1) * (s + t)
            if !current.isEmpty && (current.count >= batchSize || (maxTokens > 0 && tokens > maxTokens)) {
                batches.append(current); current = []; maxS = 0; maxT = 0
            }
            current.append(i)
            maxS = max(maxS, lengths[i].source); maxT = max(maxT, lengths[i].target + 1)
        }
        if !current.isEmpty { batches.append(current) }
        self.batches = batches
    }

    /// The batch order for an epoch: a seeded shuffle, the same for the same (seed, epoch).
    public func order(epoch: Int, seed: UInt64) -> [Int] {
        var idx = Array(batches.indices)
        var rng = SeededRNG(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
        for i in stride(from: idx.count - 1, to: 0, by: -1) { idx.swapAt(i, rng.nextInt(below: i + 1)) }
        return idx
    }
}
