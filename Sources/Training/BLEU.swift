import Foundation

/// Corpus BLEU, computed as sacreBLEU computes it by default:
/// `sacrebleu.corpus_bleu(hypotheses, [references])` — the '13a' tokenizer, n-grams up to 4,
/// case-sensitive, the brevity penalty, and 'exp' smoothing (a zero n-gram match count counts as
/// 1/2, 1/4, … of a match), with precisions and the score as percentages.
public enum BLEU {
    /// The maximum n-gram order.
    public static let maxOrder = 4

    /// BLEU of hypotheses against one reference each.
    public static func corpusScore(hypotheses: [String], references: [String]) -> BLEUScore {
        corpusScore(hypotheses: hypotheses, referenceStreams: [references])
    }

    /// BLEU with several references per hypothesis, given as sacreBLEU takes them: a list of
    /// reference streams, each holding one reference per hypothesis. For each hypothesis, n-gram
    /// matches are clipped by the largest count in any reference, and the reference length is the
    /// one closest to the hypothesis length (the shorter on a tie).
    public static func corpusScore(hypotheses: [String], referenceStreams: [[String]]) -> BLEUScore {
        precondition(!referenceStreams.isEmpty, "BLEU: no references")
        for s in referenceStreams {
            precondition(s.count == hypotheses.count, "BLEU: \(hypotheses.count) hypotheses but \(s.count) references")
        }
        var interner = Interner()
        var correct = [Int](repeating: 0, count: maxOrder), total = correct
        var sysLen = 0, refLen = 0
        for (i, hyp) in hypotheses.enumerated() {
            var refNgrams: [[Int32]: Int] = [:]
            var refLens: [Int] = []
            for stream in referenceStreams {
                let tokens = interner.ids(tokenize13a(rstrip(stream[i])))
                refLens.append(tokens.count)
                for (g, c) in ngrams(tokens) { refNgrams[g] = max(refNgrams[g] ?? 0, c) }
            }
            let tokens = interner.ids(tokenize13a(rstrip(hyp)))
            // the closest reference length, the shorter one on a tie
            var closest = -1, closestDiff = -1
            for r in refLens {
                let d = abs(tokens.count - r)
                if closestDiff == -1 || d < closestDiff {
                    closestDiff = d; closest = r
                } else if d == closestDiff && r < closest {
                    closest = r
                }
            }
            sysLen += tokens.count
            refLen += closest
            for (g, c) in ngrams(tokens) {
                total[g.count - 1] += c
                if let r = refNgrams[g] { correct[g.count - 1] += min(c, r) }
            }
        }
        return score(correct: correct, total: total, sysLen: sysLen, refLen: refLen)
    }

    /// The score from its sufficient statistics (sacreBLEU's `compute_bleu` with 'exp' smoothing).
    public static func score(correct: [Int], total: [Int], sysLen: Int, refLen: Int) -> BLEUScore {
        let order = correct.count
        var bp = 1.0
        if sysLen < refLen { bp = sysLen > 0 ? exp(1 - Double(refLen) / Double(sysLen)) : 0 }
        var precisions = [Double](repeating: 0, count: order)
        if correct.allSatisfy({ $0 == 0 }) {
            return BLEUScore(
                score: 0, precisions: precisions, counts: correct, totals: total,
                brevityPenalty: bp, sysLen: sysLen, refLen: refLen)
        }
        var smooth = 1.0
        for n in 0..<order {
            if total[n] == 0 { break }
            if correct[n] == 0 {
                smooth *= 2
                precisions[n] = 100 / (smooth * Double(total[n]))
            } else {
                precisions[n] = 100 * Double(correct[n]) / Double(total[n])
            }
        }
        // log(0) is floored at -9999999999, as in sacreBLEU
        let logSum = precisions.reduce(0.0) { $0 + ($1 == 0 ? -9_999_999_999 : log($1)) }
        return BLEUScore(
            score: bp * exp(logSum / Double(order)), precisions: precisions, counts: correct,
            totals: total, brevityPenalty: bp, sysLen: sysLen, refLen: refLen)
    }

    // MARK: - The 13a tokenizer

    /// sacreBLEU's '13a' tokenizer (mteval-v13a): drops `<skipped>`, joins lines, unescapes
    /// `&quot; &amp; &lt; &gt;`, puts spaces around punctuation and symbols, around `.` and `,`
    /// except between digits, after a `-` that follows a digit, then collapses whitespace.
    /// Works on Unicode scalars, as Python works on code points.
    public static func tokenize13a(_ line: String) -> String {
        var s = Array(line.unicodeScalars.map(\.value))
        s = replace(s, "<skipped>", "")
        s = replace(s, "-\n", "")
        s = replace(s, "\n", " ")
        if s.contains(0x26) {  // &
            s = replace(s, "&quot;", "\"")
            s = replace(s, "&amp;", "&")
            s = replace(s, "&lt;", "<")
            s = replace(s, "&gt;", ">")
        }
        s = [0x20] + s + [0x20]

        // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) → ' \1 '
        var t: [UInt32] = []
        t.reserveCapacity(s.count * 2)
        for c in s {
            switch c {
            case 0x7B...0x7E, 0x5B...0x60, 0x20...0x26, 0x28...0x2B, 0x3A...0x40, 0x2F: t += [0x20, c, 0x20]
            default: t.append(c)
            }
        }
        // ([^0-9])([\.,]) → '\1 \2 '
        t = substitutePairs(t, first: { !isDigit($0) }, second: isPeriodOrComma) { [$0, 0x20, $1, 0x20] }
        // ([\.,])([^0-9]) → ' \1 \2'
        t = substitutePairs(t, first: isPeriodOrComma, second: { !isDigit($0) }) { [0x20, $0, 0x20, $1] }
        // ([0-9])(-) → '\1 \2 '
        t = substitutePairs(t, first: isDigit, second: { $0 == 0x2D }) { [$0, 0x20, $1, 0x20] }

        // ' '.join(line.split())
        var out = String.UnicodeScalarView()
        var inWord = false, any = false
        for c in t {
            if isPythonSpace(c) { inWord = false; continue }
            if !inWord && any { out.append(" ") }
            out.append(Unicode.Scalar(c)!)
            inWord = true; any = true
        }
        return String(out)
    }

    // MARK: - Helpers

    @inline(__always) static func isDigit(_ c: UInt32) -> Bool { c >= 0x30 && c <= 0x39 }
    @inline(__always) static func isPeriodOrComma(_ c: UInt32) -> Bool { c == 0x2E || c == 0x2C }

    /// Python's `str.isspace` (what `str.split()` and `str.rstrip()` use).
    static func isPythonSpace(_ c: UInt32) -> Bool {
        switch c {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// Python's `str.rstrip()`.
    static func rstrip(_ s: String) -> String {
        var v = s.unicodeScalars
        while let last = v.last, isPythonSpace(last.value) { v.removeLast() }
        return String(v)
    }

    /// Python's `str.replace`: every non-overlapping occurrence, left to right.
    static func replace(_ s: [UInt32], _ pattern: String, _ with: String) -> [UInt32] {
        let p = pattern.unicodeScalars.map(\.value), r = with.unicodeScalars.map(\.value)
        guard s.count >= p.count, let first = p.first else { return s }
        var out: [UInt32] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if s[i] == first && i + p.count <= s.count && s[i..<(i + p.count)].elementsEqual(p) {
                out += r; i += p.count
            } else {
                out.append(s[i]); i += 1
            }
        }
        return out
    }

    /// `re.sub` for a pattern of two single-character classes: scanning left to right, a match at
    /// i is replaced and the scan resumes after it (matches do not overlap).
    static func substitutePairs(
        _ s: [UInt32], first: (UInt32) -> Bool, second: (UInt32) -> Bool,
        _ replacement: (UInt32, UInt32) -> [UInt32]
    ) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(s.count + s.count / 4)
        var i = 0
        while i < s.count {
            if i + 1 < s.count && first(s[i]) && second(s[i + 1]) {
                out += replacement(s[i], s[i + 1]); i += 2
            } else {
                out.append(s[i]); i += 1
            }
        }
        return out
    }

    /// Counts of all 1…maxOrder-grams of a token sequence.
    static func ngrams(_ tokens: [Int32]) -> [[Int32]: Int] {
        var counts: [[Int32]: Int] = [:]
        for n in 1...maxOrder where n <= tokens.count {
            for i in 0...(tokens.count - n) { counts[Array(tokens[i..<(i + n)]), default: 0] += 1 }
        }
        return counts
    }

    /// Token ids by exact code points (Swift's String equality would equate canonically
    /// equivalent tokens that Python keeps apart).
    struct Interner {
        var table: [[UInt8]: Int32] = [:]
        mutating func ids(_ tokenized: String) -> [Int32] {
            tokenized.utf8.split(separator: 0x20).map { word in
                let key = Array(word)
                if let id = table[key] { return id }
                let id = Int32(table.count)
                table[key] = id
                return id
            }
        }
    }
}

/// A BLEU score and its parts. `score` and `precisions` are percentages (0–100).
public struct BLEUScore: Sendable, Equatable, CustomStringConvertible {
    public var score: Double
    /// The 1- to 4-gram precisions (smoothed, as sacreBLEU reports them).
    public var precisions: [Double]
    /// Matched n-grams (clipped by the reference counts), for n = 1…4.
    public var counts: [Int]
    /// Hypothesis n-grams, for n = 1…4.
    public var totals: [Int]
    public var brevityPenalty: Double
    /// Hypothesis and reference lengths in tokens, summed over the corpus.
    public var sysLen: Int
    public var refLen: Int

    public init(score: Double, precisions: [Double], counts: [Int], totals: [Int], brevityPenalty: Double, sysLen: Int, refLen: Int) {
        self.score = score; self.precisions = precisions; self.counts = counts; self.totals = totals
        self.brevityPenalty = brevityPenalty; self.sysLen = sysLen; self.refLen = refLen
    }

    /// sacreBLEU's summary line, e.g. `BLEU = 41.36 70.6/47.1/35.3/25.0 (BP = 1.000 ratio = 1.000 hyp_len = 17 ref_len = 17)`.
    public var description: String {
        let ratio = refLen > 0 ? Double(sysLen) / Double(refLen) : 0
        return String(format: "BLEU = %.2f ", score)
            + precisions.map { String(format: "%.1f", $0) }.joined(separator: "/")
            + String(format: " (BP = %.3f ratio = %.3f hyp_len = %d ref_len = %d)", brevityPenalty, ratio, sysLen, refLen)
    }
}
