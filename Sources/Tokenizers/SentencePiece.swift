import Foundation

/// SentencePiece's BPE as llama.cpp runs it for a GGUF file whose `tokenizer.ggml.model` is
/// `"llama"` (Gemma, Llama 2, TinyLlama): pieces with scores instead of a merge list.
///
/// Encoding a piece of text: spaces become `▁` (U+2581), optionally one `▁` goes in front, the text
/// is cut into characters, and the adjacent pair whose concatenation is a piece with the highest
/// score is merged (ties: the leftmost), over and over until no pair is a piece. A symbol that is
/// not a piece is split back along the merges that made it, and a character no piece covers becomes
/// its UTF-8 bytes as the byte pieces `<0x00>`…`<0xFF>` ("byte fallback").
///
/// Special pieces (control and user-defined) are not produced here: `GGUFTokenizer` finds their
/// text first and encodes only the text between them.
public struct SentencePiece: Sendable {
    /// Pieces by id, as in the file (`▁` for a space, `<0x0A>` for a byte).
    public let pieces: [String]
    /// Each piece's score: the higher, the earlier it merges.
    public let scores: [Float]
    /// Whether `encode` puts a `▁` before the text (`tokenizer.ggml.add_space_prefix`).
    public let addSpacePrefix: Bool
    /// The unknown piece's id, used for a byte with no byte piece.
    public let unknownID: Int?
    private let ids: [[UInt8]: Int32]  // piece UTF-8 → id (the first id when a piece repeats)
    private let pieceBytes: [[UInt8]]  // what each id decodes to
    private let byteIDs: [Int32]  // byte → its <0xXX> piece, or -1

    /// Builds from GGUF's tables.
    /// - Parameters:
    ///   - pieces: `tokenizer.ggml.tokens`.
    ///   - scores: `tokenizer.ggml.scores`, one per piece.
    ///   - types: `tokenizer.ggml.token_type`, one per piece (6 marks a byte piece).
    ///   - addSpacePrefix: Put `▁` before the text.
    ///   - unknownID: `tokenizer.ggml.unknown_token_id`, if any.
    /// - Throws: `TokenizerError` when the tables differ in length or a byte piece is not `<0xXX>`.
    public init(pieces: [String], scores: [Float], types: [Int], addSpacePrefix: Bool, unknownID: Int?) throws {
        guard scores.count == pieces.count, types.count == pieces.count else {
            throw TokenizerError("\(pieces.count) pieces but \(scores.count) scores and \(types.count) token types")
        }
        self.pieces = pieces; self.scores = scores; self.addSpacePrefix = addSpacePrefix; self.unknownID = unknownID
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(pieces.count)
        var byteIDs = [Int32](repeating: -1, count: 256)
        var pieceBytes: [[UInt8]] = []
        pieceBytes.reserveCapacity(pieces.count)
        for (i, p) in pieces.enumerated() {
            let utf8 = Array(p.utf8)
            if ids[utf8] == nil { ids[utf8] = Int32(i) }
            if types[i] == 6 {
                guard let b = Self.byteValue(utf8) else {
                    throw TokenizerError("token \(i) \"\(p)\" is marked as a byte piece but is not <0xXX>")
                }
                if byteIDs[Int(b)] < 0 { byteIDs[Int(b)] = Int32(i) }
                pieceBytes.append([b])
            } else {
                pieceBytes.append(Self.unescape(utf8))
            }
        }
        self.ids = ids; self.byteIDs = byteIDs; self.pieceBytes = pieceBytes
    }

    /// The number of pieces (ids are `0..<vocabSize`).
    public var vocabSize: Int { pieces.count }

    /// The id of a piece given as it is stored (`▁the`), or nil.
    public func id(forPiece piece: String) -> Int? { ids[Array(piece.utf8)].map(Int.init) }

    /// `<0x41>` → 0x41.
    private static func byteValue(_ s: [UInt8]) -> UInt8? {
        guard s.count == 6, s[0] == UInt8(ascii: "<"), s[1] == UInt8(ascii: "0"), s[2] == UInt8(ascii: "x"),
            s[5] == UInt8(ascii: ">")
        else { return nil }
        return UInt8(String(decoding: s[3..<5], as: UTF8.self), radix: 16)
    }

    private static let space: [UInt8] = Array("▁".utf8)  // E2 96 81

    /// `▁` → space.
    private static func unescape(_ s: [UInt8]) -> [UInt8] {
        guard s.count >= 3 else { return s }
        var out: [UInt8] = [], i = 0
        out.reserveCapacity(s.count)
        while i < s.count {
            if i + 3 <= s.count, s[i] == 0xE2, s[i + 1] == 0x96, s[i + 2] == 0x81 {
                out.append(0x20); i += 3
            } else {
                out.append(s[i]); i += 1
            }
        }
        return out
    }

    /// Text → ids (no BOS, no special pieces).
    /// - Parameters:
    ///   - text: Any text.
    ///   - spacePrefix: Whether to put `▁` in front; `nil` follows `addSpacePrefix`. (llama.cpp adds
    ///     it only to text at the start or right after a special piece.)
    public func encode(_ text: String, spacePrefix: Bool? = nil) -> [Int] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 3)
        if spacePrefix ?? addSpacePrefix { bytes += Self.space }
        for b in text.utf8 { if b == 0x20 { bytes += Self.space } else { bytes.append(b) } }
        guard !bytes.isEmpty else { return [] }
        return merge(bytes)
    }

    private func merge(_ bytes: [UInt8]) -> [Int] {
        // Characters (UTF-8 sequences; a stray byte counts as one).
        var symbols: [SymbolRun] = []
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            let n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            let len = min(n, bytes.count - i)
            symbols.append(SymbolRun(start: i, length: len, prev: symbols.count - 1, next: i + len < bytes.count ? symbols.count + 1 : -1))
            i += len
        }
        var heap = CandidateHeap()
        // The symbol pair each merged text came from (the last one recorded, as llama.cpp keeps it).
        var madeFrom: [[UInt8]: (Int, Int)] = [:]
        func consider(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0 else { return }
            let s = symbols[l].start, e = symbols[r].start + symbols[r].length
            let text = Array(bytes[s..<e])
            guard let id = ids[text] else { return }
            heap.push(MergeCandidate(score: scores[Int(id)], left: l, right: r, bytes: e - s))
            madeFrom[text] = (l, r)
        }
        for k in 1..<max(1, symbols.count) { consider(k - 1, k) }
        while let c = heap.pop() {
            let l = symbols[c.left], r = symbols[c.right]
            // Stale: one side was merged since, or the pair is no longer these two symbols.
            if l.length == 0 || r.length == 0 || l.length + r.length != c.bytes { continue }
            symbols[c.left].length += r.length
            symbols[c.right].length = 0
            symbols[c.left].next = r.next
            if r.next >= 0 { symbols[r.next].prev = c.left }
            consider(symbols[c.left].prev, c.left)
            consider(c.left, symbols[c.left].next)
        }
        var out: [Int] = []
        func emit(_ k: Int) {
            let s = symbols[k]
            let text = Array(bytes[s.start..<(s.start + s.length)])
            if let id = ids[text] { out.append(Int(id)); return }
            if let (l, r) = madeFrom[text] { emit(l); emit(r); return }
            for b in text {
                let id = byteIDs[Int(b)]
                if id >= 0 { out.append(Int(id)) } else if let u = unknownID { out.append(u) }
            }
        }
        var k = 0
        while k >= 0 {
            emit(k)
            k = symbols[k].next
        }
        return out
    }

    /// Ids → raw bytes: `▁` becomes a space and a byte piece its byte; ids outside the vocabulary
    /// are skipped.
    public func decodeBytes(_ ids: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && id < pieceBytes.count { out += pieceBytes[id] }
        return out
    }
}

/// One symbol: a run of bytes, linked to its neighbours; `length` 0 once merged into the left one.
private struct SymbolRun { var start: Int, length: Int, prev: Int, next: Int }

/// A candidate merge of symbol `left` and symbol `right`, `bytes` long in all.
private struct MergeCandidate {
    let score: Float, left: Int, right: Int, bytes: Int
    /// Lower priority: a lower score, or the same score further right (llama.cpp's order).
    static func below(_ a: MergeCandidate, _ b: MergeCandidate) -> Bool {
        a.score < b.score || (a.score == b.score && a.left > b.left)
    }
}

/// A max-heap of merge candidates: the highest score first, then the leftmost.
private struct CandidateHeap {
    private var items: [MergeCandidate] = []

    mutating func push(_ c: MergeCandidate) {
        items.append(c)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard MergeCandidate.below(items[p], items[i]) else { break }
            items.swapAt(p, i); i = p
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let a = 2 * i + 1, b = a + 1
                var m = i
                if a < items.count, MergeCandidate.below(items[m], items[a]) { m = a }
                if b < items.count, MergeCandidate.below(items[m], items[b]) { m = b }
                if m == i { break }
                items.swapAt(m, i); i = m
            }
        }
        return top
    }
}
