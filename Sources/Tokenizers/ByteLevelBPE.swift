import Foundation
import ModelFiles
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Byte-level byte-pair encoding, as in GPT-2.
///
/// Text is cut into pre-tokens by GPT-2's pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (implemented by hand),
/// each pre-token becomes its UTF-8 bytes, one symbol per byte, and the learned merges are applied
/// lowest rank first. Every byte has a token, so there is no unknown input and decoding gives back
/// the exact text.
///
/// Token strings use GPT-2's byte ↔ character table (a space is `Ġ`, a newline `Ċ`), which is what
/// `vocab.json` / `merges.txt` contain. Special tokens (`<pad>`, …) have ids of their own and are
/// never produced by `encode`: the text `<end>` is encoded as ordinary bytes.
public struct ByteLevelBPE: Sendable {
    /// Token strings by id, as in `vocab.json` (byte-level characters; special tokens verbatim).
    public let tokens: [String]
    /// The special tokens, in id order.
    public let specialTokens: [String]
    /// Raw bytes by id (for a special token: its UTF-8).
    private let tokenBytes: [[UInt8]]
    private let isSpecial: [Bool]
    private let specialIDs: [[UInt8]: Int]
    private let tokenIDs: [[UInt8]: Int]  // keyed by the token string's UTF-8
    /// Merges in rank order, as ids (left, right, result).
    private let mergeTable: [(left: Int32, right: Int32, result: Int32)]
    private let ranks: [UInt64: Int32]
    private let byteIDs: [Int32]  // byte value → id
    private let cache = WordCache()
    /// How text is cut into pre-tokens before merging (GPT-2's pattern unless the model says otherwise).
    /// The cache of merged pre-tokens does not depend on it.
    public var pattern: PreTokenizerPattern = .gpt2

    // MARK: - GPT-2's byte ↔ character table

    /// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 bytes
    /// to U+0100… in byte order, so that no token string contains whitespace or control characters.
    public static let byteToCharacter: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return table
    }()

    /// The inverse of `byteToCharacter`, indexed by scalar value (-1: not a byte character).
    static let characterToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, c) in byteToCharacter.enumerated() { table[Int(c.value)] = Int16(b) }
        return table
    }()

    /// The byte-level string for raw bytes.
    public static func byteLevelString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(byteToCharacter[Int(b)]) }
        return String(s)
    }

    /// The raw bytes of a byte-level string, or nil if it holds a character outside the table.
    public static func bytes(ofByteLevel string: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(string.unicodeScalars.count)
        for c in string.unicodeScalars {
            let v = Int(c.value)
            guard v < characterToByte.count, characterToByte[v] >= 0 else { return nil }
            out.append(UInt8(characterToByte[v]))
        }
        return out
    }

    // MARK: - Construction

    /// Builds from raw token bytes (ids 0..<n), merges by rank, and which ids are special.
    /// `allowMissingBytes`: a vocabulary may lack tokens for bytes its corpus never had (SmolLM2's
    /// has none for 21 bytes, such as 0x04 and 0xFF); such bytes are then dropped when encoding, as
    /// Hugging Face's tokenizers do for a BPE without an unknown token.
    init(tokenBytes: [[UInt8]], special: [Bool], merges: [(Int32, Int32, Int32)], allowMissingBytes: Bool = false) throws {
        var tokens: [String] = [], tokenIDs: [[UInt8]: Int] = [:], specialIDs: [[UInt8]: Int] = [:]
        var specialTokens: [String] = []
        var byteIDs = [Int32](repeating: -1, count: 256)
        tokens.reserveCapacity(tokenBytes.count)
        for (id, bytes) in tokenBytes.enumerated() {
            let s = special[id] ? String(decoding: bytes, as: UTF8.self) : Self.byteLevelString(bytes)
            if tokenIDs.updateValue(id, forKey: Array(s.utf8)) != nil {
                throw TokenizerError("BPE vocabulary: token \"\(s)\" appears twice")
            }
            tokens.append(s)
            if special[id] {
                specialIDs[bytes] = id
                specialTokens.append(s)
            } else if bytes.count == 1 {
                byteIDs[Int(bytes[0])] = Int32(id)
            }
        }
        if !allowMissingBytes, let missing = byteIDs.firstIndex(of: -1) {
            throw TokenizerError("BPE vocabulary: no token for byte \(missing) (\"\(Self.byteToCharacter[missing])\")")
        }
        var ranks: [UInt64: Int32] = [:]
        ranks.reserveCapacity(merges.count)
        for (rank, m) in merges.enumerated() where ranks[Self.key(m.0, m.1)] == nil {
            ranks[Self.key(m.0, m.1)] = Int32(rank)
        }
        self.tokens = tokens
        self.specialTokens = specialTokens
        self.tokenBytes = tokenBytes
        self.isSpecial = special
        self.specialIDs = specialIDs
        self.tokenIDs = tokenIDs
        self.mergeTable = merges.map { (left: $0.0, right: $0.1, result: $0.2) }
        self.ranks = ranks
        self.byteIDs = byteIDs
    }

    /// Loads GPT-2's format: `vocab.json` (`{"token": id, …}`, ids 0..<n) and `merges.txt`
    /// (an optional `#version` line, then one `left right` pair a line, in rank order).
    ///
    /// Special tokens: those listed in `specialTokens`, plus every vocabulary entry that is not
    /// byte-level text. When `specialTokens` is nil, entries of more than one character that no
    /// merge produces (GPT-2's `<|endoftext|>`, the `<pad>`… of a Hugging Face tokenizer) count as
    /// special too.
    public init(vocabJSON: Data, merges: String, specialTokens: [String]? = nil) throws {
        // merges.txt, read as bytes so that "\r\n" and odd characters need no care
        var pairs: [(left: [UInt8], right: [UInt8])] = [], lines: [Int] = []
        var lineNumber = 0
        for var line in Array(merges.utf8).split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.last == 0x0D { line = line.dropLast() }
            if line.isEmpty || (lineNumber == 1 && line.starts(with: Array("#version".utf8))) { continue }
            let parts = line.split(separator: 0x20)
            guard parts.count == 2 else {
                throw TokenizerError(
                    "BPE merges line \(lineNumber): expected two tokens, found \"\(String(decoding: line, as: UTF8.self))\"")
            }
            pairs.append((Array(parts[0]), Array(parts[1])))
            lines.append(lineNumber)
        }
        try self.init(
            vocabulary: try Self.parseVocabJSON(vocabJSON), merges: pairs, mergeName: { "BPE merges line \(lines[$0])" },
            specialTokens: specialTokens)
    }

    /// The common core of `vocab.json` + `merges.txt` and of a `tokenizer.json`'s `model`: token strings
    /// (exact UTF-8) with their ids, and merges as pairs of token strings in rank order.
    /// - Parameter mergeName: Names merge `i` in errors (`"BPE merges line 7"`, `"model.merges[5]"`).
    init(
        vocabulary entries: [([UInt8], Int)], merges pairs: [(left: [UInt8], right: [UInt8])],
        mergeName: (Int) -> String, specialTokens: [String]?
    ) throws {
        var byID = [[UInt8]?](repeating: nil, count: entries.count)  // token string UTF-8 by id
        for (key, id) in entries {
            guard id >= 0 && id < entries.count else {
                throw TokenizerError("BPE vocabulary: ids must be 0..<\(entries.count), found \(id)")
            }
            guard byID[id] == nil else { throw TokenizerError("BPE vocabulary: id \(id) appears twice") }
            byID[id] = key
        }
        let keys = byID.map { $0! }
        var idOf: [[UInt8]: Int32] = [:]
        for (id, k) in keys.enumerated() {
            guard idOf.updateValue(Int32(id), forKey: k) == nil else {
                throw TokenizerError("BPE vocabulary: token \"\(String(decoding: k, as: UTF8.self))\" appears twice")
            }
        }
        var mergeList: [(Int32, Int32, Int32)] = []
        var produced = Set<Int32>()
        for (i, pair) in pairs.enumerated() {
            guard let a = idOf[pair.left], let b = idOf[pair.right], let c = idOf[pair.left + pair.right] else {
                let text = String(decoding: pair.left + [0x20] + pair.right, as: UTF8.self)
                throw TokenizerError("\(mergeName(i)): \"\(text)\" uses or makes a token missing from the vocabulary")
            }
            mergeList.append((a, b, c))
            produced.insert(c)
        }
        // which tokens are special, and every token's raw bytes
        let listed = Set((specialTokens ?? []).map { Array($0.utf8) })
        for s in listed where idOf[s] == nil {
            throw TokenizerError("BPE vocabulary: special token \"\(String(decoding: s, as: UTF8.self))\" is missing")
        }
        var bytes: [[UInt8]] = [], special: [Bool] = []
        bytes.reserveCapacity(keys.count)
        for (id, k) in keys.enumerated() {
            let text = String(decoding: k, as: UTF8.self)
            let raw = Self.bytes(ofByteLevel: text)
            var isSpecial = listed.contains(k) || raw == nil
            if specialTokens == nil && !isSpecial && text.unicodeScalars.count > 1 && !produced.contains(Int32(id)) {
                isSpecial = true
            }
            special.append(isSpecial)
            bytes.append(isSpecial ? k : raw!)
        }
        for m in mergeList where special[Int(m.0)] || special[Int(m.1)] || special[Int(m.2)] {
            throw TokenizerError("BPE merges: \"\(keys[Int(m.0)]) \(keys[Int(m.1)])\" involves a special token")
        }
        try self.init(tokenBytes: bytes, special: special, merges: mergeList)
    }

    /// Loads `vocab.json` and `merges.txt` from files.
    public init(vocabURL: URL, mergesURL: URL, specialTokens: [String]? = nil) throws {
        let vocab = try Data(contentsOf: vocabURL)
        let merges = String(decoding: try Data(contentsOf: mergesURL), as: UTF8.self)
        try self.init(vocabJSON: vocab, merges: merges, specialTokens: specialTokens)
    }

    /// Loads `vocab.json` and `merges.txt` from a directory.
    public init(directory: URL, specialTokens: [String]? = nil) throws {
        try self.init(
            vocabURL: directory.appendingPathComponent("vocab.json"),
            mergesURL: directory.appendingPathComponent("merges.txt"),
            specialTokens: specialTokens)
    }

    // MARK: - Vocabulary

    /// The number of tokens, special ones included (ids are 0..<vocabSize).
    public var vocabSize: Int { tokens.count }
    /// Merges in rank order, as token strings (the lines of `merges.txt`).
    public var merges: [(String, String)] { mergeTable.map { (tokens[Int($0.left)], tokens[Int($0.right)]) } }
    /// The id of a token string (a byte-level string such as `Ġthe`, or a special token).
    public func id(forToken token: String) -> Int? { tokenIDs[Array(token.utf8)] }
    /// The id of a special token, or nil if it isn't one.
    public func id(forSpecial token: String) -> Int? { specialIDs[Array(token.utf8)] }
    /// The id of one of the model specials (`<pad>`, `<start>`, …), or nil if this BPE lacks it.
    public func id(forSpecial token: SpecialToken) -> Int? { id(forSpecial: token.rawValue) }
    /// Whether `id` is a special token (false for ids out of range).
    public func isSpecial(_ id: Int) -> Bool { id >= 0 && id < isSpecial.count && isSpecial[id] }

    /// The special tokens the model uses, in `Vocabulary`'s order: pass these to `train` to get a
    /// tokenizer whose ids `vocabulary()` can mirror.
    public static let modelSpecialTokens: [String] = SpecialToken.allCases.map(\.rawValue)

    /// The same id space as a `Vocabulary`: id i is `tokens[i]` in both. Needs the last four ids to
    /// be `<pad> <start> <end> <unk>` (what `train(…, specialTokens: modelSpecialTokens)` gives),
    /// because `Vocabulary` always puts its specials last in that order.
    public func vocabulary() throws -> Vocabulary {
        let n = tokens.count, specials = Self.modelSpecialTokens
        guard n >= specials.count, Array(tokens[(n - specials.count)...]) == specials,
            specials.allSatisfy({ id(forSpecial: $0) != nil })
        else {
            throw TokenizerError(
                "BPE → Vocabulary: the last ids must be the special tokens \(specials.joined(separator: " ")), found \(tokens.suffix(specials.count).joined(separator: " "))"
            )
        }
        let v = Vocabulary(corpusTokens: Array(tokens[..<(n - specials.count)]))
        guard v.tokens == tokens else {
            throw TokenizerError("BPE → Vocabulary: the id spaces differ (a corpus token repeats or looks like a special token)")
        }
        return v
    }

    // MARK: - Encoding

    /// Text → ids. Special-token strings in the text are encoded as ordinary text.
    public func encode(_ text: String) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(text.utf8.count / 3 + 1)
        var text = text
        text.withUTF8 { utf8 in
            Self.forEachPreToken(utf8, pattern: pattern) { range in
                for id in encodeWord(UnsafeBufferPointer(rebasing: utf8[range])) { out.append(Int(id)) }
            }
        }
        return out
    }

    /// The byte-level token strings of `encode(text)`.
    public func tokenize(_ text: String) -> [String] { encode(text).map { tokens[$0] } }

    /// The merged symbols of one pre-token.
    private func encodeWord(_ bytes: UnsafeBufferPointer<UInt8>) -> [Int32] {
        if bytes.count == 1 { let id = byteIDs[Int(bytes[0])]; return id >= 0 ? [id] : [] }
        let key = Array(bytes)
        if let hit = cache.get(key) { return hit }
        var word = key.compactMap {
            let id = byteIDs[Int($0)]; return id >= 0 ? id : nil
        }
        while word.count > 1 {
            // the adjacent pair of lowest rank
            var best = Int32.max
            for i in 0..<(word.count - 1) {
                if let r = ranks[Self.key(word[i], word[i + 1])], r < best { best = r }
            }
            if best == Int32.max { break }
            let m = mergeTable[Int(best)]
            // merge every occurrence, left to right
            var merged: [Int32] = []
            merged.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i + 1 < word.count && word[i] == m.left && word[i + 1] == m.right {
                    merged.append(m.result); i += 2
                } else {
                    merged.append(word[i]); i += 1
                }
            }
            word = merged
        }
        cache.set(key, word)
        return word
    }

    // MARK: - Decoding

    /// Ids → raw bytes (special tokens give their own text; ids out of range are skipped).
    public func decodeBytes(_ ids: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && id < tokenBytes.count { out += tokenBytes[id] }
        return out
    }

    /// Ids → text; bytes that are not valid UTF-8 become U+FFFD (as Python's `errors="replace"`).
    public func decode(_ ids: [Int]) -> String { String(decoding: decodeBytes(ids), as: UTF8.self) }

    /// Token strings → text (the inverse of `tokenize`).
    public func detokenize(_ tokens: [String]) -> String {
        var out: [UInt8] = []
        for t in tokens {
            if let id = tokenIDs[Array(t.utf8)] {
                out += tokenBytes[id]
            } else if let raw = Self.bytes(ofByteLevel: t) {
                out += raw
            } else {
                out += Array(t.utf8)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Saving

    /// `vocab.json`: one object, entries in id order.
    public func vocabJSON() -> Data {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (id, t) in tokens.enumerated() {
            if id > 0 { out.append(UInt8(ascii: ",")) }
            appendJSONString(t, to: &out)
            out.append(UInt8(ascii: ":"))
            out += Array(String(id).utf8)
        }
        out.append(UInt8(ascii: "}"))
        return Data(out)
    }

    /// `merges.txt`: `#version: 0.2`, then one merge a line in rank order.
    public func mergesText() -> String {
        var s = "#version: 0.2\n"
        for m in mergeTable { s += tokens[Int(m.left)] + " " + tokens[Int(m.right)] + "\n" }
        return s
    }

    /// Writes `vocab.json` and `merges.txt` (each to a temporary file, then renamed into place).
    public func save(vocabURL: URL, mergesURL: URL) throws {
        try Self.writeAtomically(vocabJSON(), to: vocabURL)
        try Self.writeAtomically(Data(mergesText().utf8), to: mergesURL)
    }

    /// Writes `vocab.json` and `merges.txt` into a directory (created if needed).
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try save(
            vocabURL: directory.appendingPathComponent("vocab.json"),
            mergesURL: directory.appendingPathComponent("merges.txt"))
    }

    static func writeAtomically(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try data.write(to: tmp)
        if rename(tmp.path, url.path) != 0 {
            let err = errno
            try? FileManager.default.removeItem(at: tmp)
            throw TokenizerError("could not rename \(tmp.path) to \(url.path): \(String(cString: strerror(err)))")
        }
    }

    // MARK: - Pre-tokenizer

    /// GPT-2's pre-tokens of a text (for inspection and tests).
    public static func preTokenize(_ text: String) -> [String] {
        var out: [String] = []
        var text = text
        text.withUTF8 { utf8 in
            forEachPreToken(utf8) { out.append(String(decoding: UnsafeBufferPointer(rebasing: utf8[$0]), as: UTF8.self)) }
        }
        return out
    }

    // character classes of the pattern
    static let letter: UInt8 = 0, number: UInt8 = 1, other: UInt8 = 2, space: UInt8 = 3, whitespace: UInt8 = 4

    static let asciiClass: [UInt8] = (0..<128).map { v -> UInt8 in
        switch v {
        case 0x41...0x5A, 0x61...0x7A: return letter
        case 0x30...0x39: return number
        case 0x20: return space
        case 0x09...0x0D: return whitespace
        default: return other
        }
    }

    @inline(__always)
    static func characterClass(_ s: Unicode.Scalar) -> UInt8 {
        if s.value < 128 { return asciiClass[Int(s.value)] }
        let p = s.properties
        if p.isWhitespace { return whitespace }  // Unicode White_Space, as \s in the regex
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return letter
        case .decimalNumber, .letterNumber, .otherNumber: return number
        default: return other
        }
    }

    /// The byte offset of each scalar of valid UTF-8 `utf8` (and `utf8.count` at the end), and its
    /// class in the pre-tokenizer patterns: letter, number, other, the space, other whitespace.
    static func scalarClasses(_ utf8: UnsafeBufferPointer<UInt8>) -> (offsets: [Int], classes: [UInt8]) {
        let n = utf8.count
        var offsets: [Int] = [], classes: [UInt8] = []
        offsets.reserveCapacity(n + 1); classes.reserveCapacity(n)
        var i = 0
        while i < n {
            let b0 = utf8[i]
            if b0 < 0x80 {
                offsets.append(i); classes.append(asciiClass[Int(b0)]); i += 1
                continue
            }
            var v: UInt32, len: Int
            if b0 < 0xE0 {
                v = UInt32(b0 & 0x1F); len = 2
            } else if b0 < 0xF0 {
                v = UInt32(b0 & 0x0F); len = 3
            } else {
                v = UInt32(b0 & 0x07); len = 4
            }
            for k in 1..<len { v = v << 6 | UInt32(utf8[i + k] & 0x3F) }
            offsets.append(i); classes.append(characterClass(Unicode.Scalar(v) ?? "\u{FFFD}"))
            i += len
        }
        offsets.append(n)
        return (offsets, classes)
    }

    /// Calls `body` with the byte range of each pre-token of valid UTF-8 `utf8`, in order.
    ///
    /// At each position the alternatives are tried in the pattern's order, the first that matches
    /// wins: a contraction; an optional space then a run of letters, of numbers, or of other
    /// characters (not whitespace, letter or number); else a whitespace run, which gives up its
    /// last character when a non-space follows (`\s+(?!\S)`), so that " word" keeps its space,
    /// unless the run is one character long (`\s+`).
    static func forEachPreToken(_ utf8: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Void) {
        let (offsets, classes) = scalarClasses(utf8)
        if classes.isEmpty { return }
        let m = classes.count
        @inline(__always) func byte(_ j: Int) -> UInt8 { offsets[j + 1] - offsets[j] == 1 ? utf8[offsets[j]] : 0 }
        var p = 0
        while p < m {
            // 's 't 're 've 'm 'll 'd
            if byte(p) == 0x27 && p + 1 < m {
                let c1 = byte(p + 1)
                if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 {  // s t m d
                    body(offsets[p]..<offsets[p + 2]); p += 2; continue
                }
                if p + 2 < m {
                    let c2 = byte(p + 2)
                    if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) {  // re ve ll
                        body(offsets[p]..<offsets[p + 3]); p += 3; continue
                    }
                }
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            var q = p
            if classes[p] == space && p + 1 < m && classes[p + 1] <= other { q = p + 1 }
            let c = classes[q]
            if c <= other {
                var e = q + 1
                while e < m && classes[e] == c { e += 1 }
                body(offsets[p]..<offsets[e]); p = e; continue
            }
            // `\s+(?!\S)`, `\s+`
            var e = p + 1
            while e < m && classes[e] >= space { e += 1 }
            if e < m && e - p >= 2 { e -= 1 }
            body(offsets[p]..<offsets[e]); p = e
        }
    }

    // MARK: - Training

    /// Learns a byte-level BPE from a corpus.
    ///
    /// The vocabulary is the 256 byte tokens (id = byte value), then one token per merge, then
    /// `specialTokens` — `vocabSize` tokens in all, fewer if no pair occurs `minFrequency` times.
    /// Each step merges the most frequent adjacent pair over the pre-token counts; ties go to the
    /// pair whose (left, right) bytes sort first, so training is reproducible. Pair counts are
    /// updated incrementally, with an index from each pair to the words that contain it.
    /// `progress(done, total)` is called after each new token.
    public static func train(
        texts: [String], vocabSize: Int, specialTokens: [String], minFrequency: Int = 2,
        progress: ((Int, Int) -> Void)? = nil
    ) -> ByteLevelBPE {
        var specials: [String] = []
        for s in specialTokens where !specials.contains(where: { Array($0.utf8) == Array(s.utf8) }) { specials.append(s) }
        precondition(vocabSize >= 256 + specials.count, "BPE: vocabSize must be at least 256 + the number of special tokens")
        for s in specials {
            precondition(
                !s.isEmpty && (s.unicodeScalars.count > 1 || bytes(ofByteLevel: s) == nil),
                "BPE: special token \"\(s)\" is a byte token")
        }
        // pre-token counts
        var counts: [[UInt8]: Int] = [:]
        for var text in texts {
            text.withUTF8 { utf8 in
                forEachPreToken(utf8) { counts[Array(UnsafeBufferPointer(rebasing: utf8[$0])), default: 0] += 1 }
            }
        }
        let trainer = BPETrainer(words: counts, forbidden: Set(specials.map { Array($0.utf8) }))
        trainer.run(targetTokens: vocabSize - specials.count, minFrequency: max(minFrequency, 1), progress: progress)

        var bytes = trainer.tokenBytes, special = [Bool](repeating: false, count: bytes.count)
        for s in specials { bytes.append(Array(s.utf8)); special.append(true) }
        do {
            return try ByteLevelBPE(tokenBytes: bytes, special: special, merges: trainer.merges)
        } catch {
            preconditionFailure("BPE training produced an inconsistent vocabulary: \(error)")
        }
    }

    // MARK: - Helpers

    @inline(__always)
    static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    /// Parses a JSON object of string → integer (vocab.json), keeping keys as exact UTF-8 bytes
    /// (Swift's String equality would merge canonically equivalent keys). Errors name vocab.json and
    /// the line and byte of the fault.
    static func parseVocabJSON(_ data: Data) throws -> [([UInt8], Int)] {
        let root: JSONNode
        do { root = try JSONScanner().scan(data) } catch {
            throw TokenizerError("vocab.json: \(error.description)")
        }
        return try vocabEntries(root, name: "vocab.json")
    }

    /// The token → id entries of a JSON object (`vocab.json`, or `model.vocab` of a `tokenizer.json`);
    /// `name` names it in errors.
    static func vocabEntries(_ root: JSONNode, name: String) throws -> [([UInt8], Int)] {
        guard let members = root.members else {
            throw TokenizerError("\(name): expected an object of token → id, found \(root.kind)")
        }
        var entries: [([UInt8], Int)] = []
        entries.reserveCapacity(members.count)
        for m in members {
            // An id of more than 9 digits cannot be a position in a vocabulary (and may not fit in an Int).
            guard let id = m.value.integer, id.magnitude < 1_000_000_000 else {
                let at = "\(name): line \(m.value.line) (byte \(m.value.offset))"
                if let literal = m.value.numberLiteral, literal.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) }) {
                    throw TokenizerError("\(at): id too large (\(m.value.brief))")
                }
                throw TokenizerError("\(at): the id of \(quotedForMessage(m.key)) must be an integer, found \(m.value.brief)")
            }
            entries.append((m.keyBytes, id))
        }
        return entries
    }
}

extension ByteLevelBPE: Tokenizing {}

/// Merged symbols of recently seen pre-tokens, shared by copies of a tokenizer.
private final class WordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var table: [[UInt8]: [Int32]] = [:]
    private let limit = 100_000

    func get(_ key: [UInt8]) -> [Int32]? {
        lock.lock(); defer { lock.unlock() }
        return table[key]
    }
    func set(_ key: [UInt8], _ value: [Int32]) {
        lock.lock(); defer { lock.unlock() }
        if table.count >= limit { table.removeAll(keepingCapacity: true) }
        table[key] = value
    }
}

/// The state of BPE training: unique words as symbol ids with their counts, pair counts, the
/// words each pair occurs in, and a max-heap of (count, pair) with lazy invalidation.
private final class BPETrainer {
    struct Entry { var count: Int; var left: Int32; var right: Int32 }

    var words: [[Int32]] = []
    var wordCounts: [Int] = []
    var tokenBytes: [[UInt8]] = (0..<256).map { [UInt8($0)] }
    var idOfBytes: [[UInt8]: Int32] = [:]
    var merges: [(Int32, Int32, Int32)] = []
    var merged = Set<UInt64>()
    let forbidden: Set<[UInt8]>  // special tokens' UTF-8: no merge may make a token spelled the same
    var forbiddenPairs = Set<UInt64>()
    var pairCounts: [UInt64: Int] = [:]
    var pairWords: [UInt64: [Int32]] = [:]
    var heap: [Entry] = []
    var visited: [Int32] = []

    init(words counts: [[UInt8]: Int], forbidden specials: Set<[UInt8]>) {
        for (i, b) in tokenBytes.enumerated() { idOfBytes[b] = Int32(i) }
        forbidden = specials
        // a fixed word order (by bytes) so that everything below is reproducible
        for (bytes, count) in counts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            words.append(bytes.map { Int32($0) }); wordCounts.append(count)
        }
        visited = [Int32](repeating: -1, count: words.count)
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let k = ByteLevelBPE.key(word[i], word[i + 1])
                pairCounts[k, default: 0] += wordCounts[w]
                addWord(Int32(w), to: k)
            }
        }
        for (k, c) in pairCounts {
            heap.append(Entry(count: c, left: Int32(truncatingIfNeeded: k >> 32), right: Int32(truncatingIfNeeded: k)))
        }
        for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
    }

    @inline(__always) func addWord(_ w: Int32, to k: UInt64) {
        if pairWords[k]?.last != w { pairWords[k, default: []].append(w) }
    }

    /// Does `x` come out of the heap before `y`? Higher count first, then the pair whose
    /// (left bytes, right bytes) sorts first.
    @inline(__always) func above(_ x: Entry, _ y: Entry) -> Bool {
        if x.count != y.count { return x.count > y.count }
        if x.left != y.left {
            return tokenBytes[Int(x.left)].lexicographicallyPrecedes(tokenBytes[Int(y.left)])
        }
        if x.right != y.right {
            return tokenBytes[Int(x.right)].lexicographicallyPrecedes(tokenBytes[Int(y.right)])
        }
        return false
    }

    func siftDown(_ start: Int) {
        var i = start
        let n = heap.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < n && above(heap[l], heap[best]) { best = l }
            if r < n && above(heap[r], heap[best]) { best = r }
            if best == i { return }
            heap.swapAt(i, best); i = best
        }
    }

    func push(_ e: Entry) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !above(heap[i], heap[parent]) { break }
            heap.swapAt(i, parent); i = parent
        }
    }

    func pop() -> Entry? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty { heap[0] = last; siftDown(0) }
        return top
    }

    func run(targetTokens: Int, minFrequency: Int, progress: ((Int, Int) -> Void)?) {
        let total = targetTokens - 256
        var step: Int32 = 0
        while tokenBytes.count < targetTokens, let e = pop() {
            let k = ByteLevelBPE.key(e.left, e.right)
            let current = pairCounts[k] ?? 0
            if current != e.count {  // stale: put back with the real count
                if current > 0 { push(Entry(count: current, left: e.left, right: e.right)) }
                continue
            }
            if current < minFrequency { break }
            if forbiddenPairs.contains(k) { continue }
            let newBytes = tokenBytes[Int(e.left)] + tokenBytes[Int(e.right)]
            if forbidden.contains(Array(ByteLevelBPE.byteLevelString(newBytes).utf8)) {
                forbiddenPairs.insert(k)  // never make a token spelled like a special token
                continue
            }
            let newID: Int32
            if let existing = idOfBytes[newBytes] {
                newID = existing  // the same bytes, reached by another split
            } else {
                newID = Int32(tokenBytes.count)
                tokenBytes.append(newBytes)
                idOfBytes[newBytes] = newID
            }
            if merged.insert(k).inserted { merges.append((e.left, e.right, newID)) }
            apply(left: e.left, right: e.right, result: newID, step: step)
            step += 1
            if newID == Int32(tokenBytes.count - 1), let progress { progress(tokenBytes.count - 256, total) }
        }
    }

    /// Merges (left, right) → result in every word that holds the pair, updating pair counts.
    func apply(left a: Int32, right b: Int32, result c: Int32, step: Int32) {
        let k = ByteLevelBPE.key(a, b)
        guard let ws = pairWords.removeValue(forKey: k) else { return }
        var grown: [UInt64] = []
        @inline(__always) func change(_ x: Int32, _ y: Int32, _ d: Int, _ w: Int32) {
            let key = ByteLevelBPE.key(x, y)
            let v = (pairCounts[key] ?? 0) + d
            pairCounts[key] = v == 0 ? nil : v
            if d > 0 { addWord(w, to: key); grown.append(key) }
        }
        for w in ws where visited[Int(w)] != step {
            visited[Int(w)] = step
            let n = wordCounts[Int(w)]
            var s = words[Int(w)]
            words[Int(w)] = []  // so that `s` is the only reference and mutates in place
            var i = 0
            while i < s.count - 1 {
                if s[i] == a && s[i + 1] == b {
                    if i > 0 { change(s[i - 1], a, -n, w); change(s[i - 1], c, n, w) }
                    change(a, b, -n, w)
                    if i + 2 < s.count { change(b, s[i + 2], -n, w); change(c, s[i + 2], n, w) }
                    s[i] = c
                    s.remove(at: i + 1)
                }
                i += 1
            }
            words[Int(w)] = s
        }
        pairCounts[k] = nil
        var seen = Set<UInt64>()
        for key in grown where seen.insert(key).inserted {
            if let v = pairCounts[key], v > 0 {
                push(Entry(count: v, left: Int32(truncatingIfNeeded: key >> 32), right: Int32(truncatingIfNeeded: key)))
            }
        }
    }
}
