// MARK: - Which pattern cuts text into pre-tokens
//
// Byte-level BPE merges only inside a pre-token, so the pattern decides which merges can ever
// apply; a model must be run with the pattern it was trained with. Each pattern is implemented by
// hand over the scalars' classes (letter, number, other, space, other whitespace), alternatives
// tried in the pattern's order, the first that matches winning — as the regex engines do.

/// The pre-tokenizer pattern of a byte-level BPE.
public enum PreTokenizerPattern: String, Sendable, CaseIterable {
    /// GPT-2's `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    case gpt2
    /// Qwen2's: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// — case-insensitive contractions, one punctuation mark or whitespace character kept with the
    /// letters after it, digits one by one, line breaks kept with what precedes them.
    case qwen2
    /// Llama 3's: Qwen2's with numbers in runs of up to three digits (`\p{N}{1,3}`).
    case llama3

    /// The name llama.cpp writes in `tokenizer.ggml.pre` for this pattern's models, or nil.
    static func fromGGUF(_ pre: String?) -> PreTokenizerPattern? {
        switch pre {
        case nil, "default", "gpt2", "smollm", "gpt-2": .gpt2
        case "qwen2", "deepseek-r1-qwen": .qwen2
        case "llama3", "llama-bpe", "llama-v3", "smaug-bpe": .llama3
        default: nil
        }
    }
}

extension ByteLevelBPE {
    /// The pre-tokens of `text` under `pattern` (for inspection and tests).
    public static func preTokenize(_ text: String, pattern: PreTokenizerPattern) -> [String] {
        var out: [String] = [], text = text
        text.withUTF8 { utf8 in
            forEachPreToken(utf8, pattern: pattern) { out.append(String(decoding: UnsafeBufferPointer(rebasing: utf8[$0]), as: UTF8.self)) }
        }
        return out
    }

    static func forEachPreToken(_ utf8: UnsafeBufferPointer<UInt8>, pattern: PreTokenizerPattern, _ body: (Range<Int>) -> Void) {
        switch pattern {
        case .gpt2: forEachPreToken(utf8, body)
        case .qwen2: forEachQwenPreToken(utf8, digitRun: 1, body)
        case .llama3: forEachQwenPreToken(utf8, digitRun: 3, body)
        }
    }

    /// Qwen2's and Llama 3's pattern; `digitRun` is the longest run of digits one pre-token holds.
    static func forEachQwenPreToken(_ utf8: UnsafeBufferPointer<UInt8>, digitRun: Int, _ body: (Range<Int>) -> Void) {
        let (offsets, classes) = scalarClasses(utf8)
        let m = classes.count
        // ASCII letters folded to lower case; 0 for anything that is not one byte.
        @inline(__always) func lower(_ j: Int) -> UInt8 {
            guard j < m, offsets[j + 1] - offsets[j] == 1 else { return 0 }
            let b = utf8[offsets[j]]
            return (0x41...0x5A).contains(b) ? b | 0x20 : b
        }
        @inline(__always) func isLineBreak(_ j: Int) -> Bool { lower(j) == 0x0A || lower(j) == 0x0D }
        @inline(__always) func isSpace(_ j: Int) -> Bool { classes[j] >= space }
        var p = 0
        while p < m {
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if lower(p) == 0x27 {
                let c1 = lower(p + 1), c2 = lower(p + 2)
                if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 {  // s t m d
                    body(offsets[p]..<offsets[p + 2]); p += 2; continue
                }
                if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) {  // re ve ll
                    body(offsets[p]..<offsets[p + 3]); p += 3; continue
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            var q = p
            if classes[p] != letter && classes[p] != number && !isLineBreak(p) && p + 1 < m && classes[p + 1] == letter { q = p + 1 }
            if classes[q] == letter {
                var e = q + 1
                while e < m && classes[e] == letter { e += 1 }
                body(offsets[p]..<offsets[e]); p = e; continue
            }
            // \p{N} or \p{N}{1,3}
            if classes[p] == number {
                var e = p + 1
                while e < m && e - p < digitRun && classes[e] == number { e += 1 }
                body(offsets[p]..<offsets[e]); p = e; continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            q = p
            if classes[p] == space && p + 1 < m && classes[p + 1] == other { q = p + 1 }
            if classes[q] == other {
                var e = q + 1
                while e < m && classes[e] == other { e += 1 }
                while e < m && isLineBreak(e) { e += 1 }
                body(offsets[p]..<offsets[e]); p = e; continue
            }
            // the rest is whitespace: `\s*[\r\n]+` up to the run's last line break, else `\s+(?!\S)`, `\s+`
            var e = p
            while e < m && isSpace(e) { e += 1 }
            if let last = (p..<e).last(where: isLineBreak) {
                body(offsets[p]..<offsets[last + 1]); p = last + 1; continue
            }
            if e < m && e - p >= 2 { e -= 1 }
            body(offsets[p]..<offsets[e]); p = e
        }
    }
}
