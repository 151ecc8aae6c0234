import Foundation

/// The Hugging Face `BertTokenizer` of the original trainer (SPEC §2): basic tokenization
/// (cleaning, CJK spacing, optional lower-casing with accent stripping, punctuation splitting)
/// followed by greedy longest-match-first WordPiece.
///
/// The hot loop walks Unicode scalars, writes each word's UTF-8 bytes into one reusable buffer and
/// looks pieces up by byte slice, so no String is created per character, word or candidate piece.
/// Instances are immutable and safe to share between threads.
public final class BertTokenizer: @unchecked Sendable {
    public let vocabulary: Vocabulary
    public let doLowerCase: Bool
    public let clsID: Int32
    public let sepID: Int32
    public let padID: Int32
    public let unkID: Int32
    /// Words with more characters than this become `[UNK]` (HF `max_input_chars_per_word`).
    public let maxCharsPerWord = 100
    /// HF's special tokens present in the vocabulary, as UTF-8, with their ids: matched verbatim in input text.
    private let specialTokens: [([UInt8], Int32)]

    /// - Throws: `VocabularyError.missingSpecialToken` when `[CLS]`, `[SEP]`, `[PAD]` or `[UNK]` is absent.
    public init(vocabulary: Vocabulary, doLowerCase: Bool, source: String = "vocabulary") throws {
        func special(_ token: String) throws -> Int32 {
            guard let id = vocabulary.id(of: token) else {
                throw VocabularyError.missingSpecialToken(path: source, token: token)
            }
            return id
        }
        self.vocabulary = vocabulary
        self.doLowerCase = doLowerCase
        clsID = try special("[CLS]")
        sepID = try special("[SEP]")
        padID = try special("[PAD]")
        unkID = try special("[UNK]")
        specialTokens = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"].compactMap { token in
            vocabulary.id(of: token).map { (Array(token.utf8), $0) }
        }
        if doLowerCase { _ = LowerStripTable.shared }
    }

    /// Loads `vocab.txt` (one token a line, id = line number).
    public convenience init(vocabFile: URL, doLowerCase: Bool) throws {
        try self.init(vocabulary: Vocabulary(contentsOf: vocabFile), doLowerCase: doLowerCase, source: vocabFile.path)
    }

    // MARK: - Public API

    /// WordPiece ids of `text` without special tokens.
    public func tokenIDs(_ text: String) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 4 + 4)
        appendTokenIDs(text, to: &out)
        return out
    }

    /// WordPiece tokens of `text` (strings, for display and `srdpr tokenize`).
    public func tokenize(_ text: String) -> [String] {
        tokenIDs(text).map { vocabulary.tokens[Int($0)] }
    }

    /// `[CLS] text [SEP]`, truncated to `maxLength` (last id set to `[SEP]`) when given.
    public func encode(_ text: String, maxLength: Int? = nil) -> [Int32] {
        var ids: [Int32] = [clsID]
        appendTokenIDs(text, to: &ids)
        ids.append(sepID)
        return truncate(ids, maxLength)
    }

    /// `[CLS] text [SEP] textPair [SEP]` (an empty `text` still gives `[CLS] [SEP] textPair [SEP]`).
    public func encode(_ text: String, textPair: String, maxLength: Int? = nil) -> [Int32] {
        var ids: [Int32] = [clsID]
        appendTokenIDs(text, to: &ids)
        ids.append(sepID)
        appendTokenIDs(textPair, to: &ids)
        ids.append(sepID)
        return truncate(ids, maxLength)
    }

    /// The original's truncation: keep the first `maxLength` ids and make the last one `[SEP]`.
    public func truncate(_ ids: [Int32], _ maxLength: Int?) -> [Int32] {
        guard let maxLength, maxLength > 0, ids.count > maxLength else { return ids }
        var kept = Array(ids[0..<maxLength])
        kept[maxLength - 1] = sepID
        return kept
    }

    /// Question normalisation of the original (SPEC §2): strip, drop ONE trailing `?`, strip again.
    public static func normalizeQuestion(_ question: String) -> String {
        var q = question.trimmingCharacters(in: .whitespacesAndNewlines)
        if q.hasSuffix("?") { q.removeLast() }
        return q.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `normalizeQuestion` on UTF-8 bytes: the result is always a sub-range of the input, so no
    /// copy is made. Trimming uses the same set as Foundation's `.whitespacesAndNewlines` here
    /// (tab to CR, space, U+0085, U+00A0, U+1680, U+2000-U+200B, U+2028, U+2029, U+202F, U+205F,
    /// U+3000), and the `?` is dropped only when it is a whole Character (`String.hasSuffix`).
    /// The bytes must be valid UTF-8.
    public static func normalizedQuestionRange(utf8 bytes: UnsafeRawBufferPointer) -> Range<Int> {
        let b = bytes.bindMemory(to: UInt8.self)
        var range = trimmed(b, 0..<b.count)
        if let last = range.last, b[last] == 0x3F, questionMarkIsWholeCharacter(b, before: last, from: range.lowerBound) {
            range = trimmed(b, range.lowerBound..<last)
        }
        return range
    }

    static func isTrimmedSpace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200B, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// The scalar starting at `i` and its byte length (valid UTF-8 assumed, bounds still checked).
    @inline(__always)
    static func scalar(_ b: UnsafeBufferPointer<UInt8>, at i: Int, end: Int) -> (UInt32, Int) {
        let b0 = b[i]
        let length = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4
        guard i + length <= end else { return (0xFFFD, end - i) }
        var v = length == 1 ? UInt32(b0) : UInt32(b0) & (0x7F >> UInt32(length))
        for k in 1..<max(length, 1) where length > 1 { v = v << 6 | UInt32(b[i + k] & 0x3F) }
        return (v, length)
    }

    /// The start of the scalar that ends just before `end` (not before `start`).
    @inline(__always)
    static func scalarStart(_ b: UnsafeBufferPointer<UInt8>, before end: Int, from start: Int) -> Int {
        var i = end - 1
        while i > start && b[i] & 0xC0 == 0x80 && end - i < 4 { i -= 1 }
        return i
    }

    static func trimmed(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound, upper = range.upperBound
        while lower < upper {
            let (v, length) = scalar(b, at: lower, end: upper)
            guard isTrimmedSpace(v) else { break }
            lower += length
        }
        while upper > lower {
            let s = scalarStart(b, before: upper, from: lower)
            guard isTrimmedSpace(scalar(b, at: s, end: upper).0) else { break }
            upper = s
        }
        return lower..<upper
    }

    /// Whether the `?` at `index` is a Character of its own. Only the scalar before it can join it
    /// into one grapheme cluster (a Prepend character, rule GB9b); ASCII never does.
    static func questionMarkIsWholeCharacter(_ b: UnsafeBufferPointer<UInt8>, before index: Int, from start: Int) -> Bool {
        guard index > start else { return true }
        let s = scalarStart(b, before: index, from: start)
        let (v, _) = scalar(b, at: s, end: index)
        guard v >= 0x80, let previous = Unicode.Scalar(v) else { return true }
        var pair = String(Character(previous))  // a small string: no heap allocation
        pair.unicodeScalars.append("?")
        return pair.hasSuffix("?")
    }

    // MARK: - Basic tokenizer + WordPiece

    /// Appends the WordPiece ids of `text` to `out`.
    public func appendTokenIDs(_ text: String, to out: inout [Int32]) {
        var text = text
        text.withUTF8 { appendTokenIDs(validUTF8: $0, to: &out) }
    }

    /// Appends the WordPiece ids of UTF-8 `bytes` to `out`, exactly as for the String they spell.
    /// Ill-formed UTF-8 is repaired the way `String(decoding:as:)` does (U+FFFD) before tokenising.
    public func appendTokenIDs(utf8 bytes: UnsafeRawBufferPointer, to out: inout [Int32]) {
        let buffer = bytes.bindMemory(to: UInt8.self)
        if UTF8Validation.isValid(bytes) {
            appendTokenIDs(validUTF8: buffer, to: &out)
        } else {
            appendTokenIDs(String(decoding: buffer, as: UTF8.self), to: &out)
        }
    }

    /// WordPiece ids of UTF-8 `bytes` without special tokens (equal to `tokenIDs(String)`).
    public func tokenIDs(utf8 bytes: UnsafeRawBufferPointer) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 4 + 4)
        appendTokenIDs(utf8: bytes, to: &out)
        return out
    }

    /// `[CLS] text [SEP]` from UTF-8 bytes, truncated like `encode(_:maxLength:)`.
    public func encode(utf8 text: UnsafeRawBufferPointer, maxLength: Int? = nil) -> [Int32] {
        var ids: [Int32] = [clsID]
        appendTokenIDs(utf8: text, to: &ids)
        ids.append(sepID)
        return truncate(ids, maxLength)
    }

    /// `[CLS] text [SEP] textPair [SEP]` from UTF-8 bytes (a title and its passage text).
    public func encode(utf8 text: UnsafeRawBufferPointer, pairUTF8 textPair: UnsafeRawBufferPointer, maxLength: Int? = nil) -> [Int32] {
        var ids: [Int32] = [clsID]
        appendTokenIDs(utf8: text, to: &ids)
        ids.append(sepID)
        appendTokenIDs(utf8: textPair, to: &ids)
        ids.append(sepID)
        return truncate(ids, maxLength)
    }

    /// `[CLS] normalizeQuestion(question) [SEP]` from UTF-8 bytes, without making a String.
    public func encodeQuestion(utf8 question: UnsafeRawBufferPointer, maxLength: Int? = nil) -> [Int32] {
        var ids: [Int32] = [clsID]
        appendQuestionTokenIDs(utf8: question, to: &ids)
        ids.append(sepID)
        return truncate(ids, maxLength)
    }

    /// Appends the ids of the normalised question (`normalizeQuestion`) spelled by UTF-8 `bytes`.
    public func appendQuestionTokenIDs(utf8 bytes: UnsafeRawBufferPointer, to out: inout [Int32]) {
        guard UTF8Validation.isValid(bytes) else {
            appendTokenIDs(Self.normalizeQuestion(String(decoding: bytes.bindMemory(to: UInt8.self), as: UTF8.self)), to: &out)
            return
        }
        let range = Self.normalizedQuestionRange(utf8: bytes)
        appendTokenIDs(validUTF8: UnsafeBufferPointer(rebasing: bytes.bindMemory(to: UInt8.self)[range]), to: &out)
    }

    /// Appends the WordPiece ids of `utf8`, which must be valid UTF-8.
    func appendTokenIDs(validUTF8 utf8: UnsafeBufferPointer<UInt8>, to out: inout [Int32]) {
        var word: [UInt8] = []
        word.reserveCapacity(64)
        var charStarts: [Int] = []
        charStarts.reserveCapacity(64)
        let lower = doLowerCase
        let table = LowerStripTable.shared

        @inline(__always) func appendScalar(_ v: UInt32) {
            charStarts.append(word.count)
            if v < 0x80 {
                word.append(UInt8(v))
            } else if v < 0x800 {
                word.append(UInt8(0xC0 | (v >> 6)))
                word.append(UInt8(0x80 | (v & 0x3F)))
            } else if v < 0x10000 {
                word.append(UInt8(0xE0 | (v >> 12)))
                word.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
                word.append(UInt8(0x80 | (v & 0x3F)))
            } else {
                word.append(UInt8(0xF0 | (v >> 18)))
                word.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
                word.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
                word.append(UInt8(0x80 | (v & 0x3F)))
            }
        }
        @inline(__always) func flush() {
            if !charStarts.isEmpty {
                wordPiece(word, charStarts, &out)
                word.removeAll(keepingCapacity: true)
                charStarts.removeAll(keepingCapacity: true)
            }
        }
        @inline(__always) func single(_ v: UInt32) {
            flush()
            appendScalar(v)
            flush()
        }

        do {
            let n = utf8.count
            var i = 0
            while i < n {
                let b0 = utf8[i]
                // Special tokens written in the text ("[SEP]", "[MASK]", ...) are kept whole, like HF's added tokens.
                if b0 == 0x5B, let (id, length) = specialToken(at: i, in: utf8) {
                    flush()
                    out.append(id)
                    i += length
                    continue
                }
                let v: UInt32
                if b0 < 0x80 {
                    v = UInt32(b0); i += 1
                } else if b0 < 0xE0 {
                    v = (UInt32(b0 & 0x1F) << 6) | UInt32(utf8[i + 1] & 0x3F); i += 2
                } else if b0 < 0xF0 {
                    v = (UInt32(b0 & 0x0F) << 12) | (UInt32(utf8[i + 1] & 0x3F) << 6) | UInt32(utf8[i + 2] & 0x3F); i += 3
                } else {
                    v = (UInt32(b0 & 0x07) << 18) | (UInt32(utf8[i + 1] & 0x3F) << 12) | (UInt32(utf8[i + 2] & 0x3F) << 6)
                        | UInt32(utf8[i + 3] & 0x3F); i += 4
                }
                if v < 0x80 {
                    switch CharacterClasses.asciiTable[Int(v)] {
                    case .letter: appendScalar(lower && v >= 0x41 && v <= 0x5A ? v + 32 : v)
                    case .space: flush()
                    case .punctuation: single(v)
                    case .drop, .cjk: break
                    }
                    continue
                }
                let kind = CharacterClasses.classify(v)
                switch kind {
                case .drop: break
                case .space: flush()
                case .punctuation, .cjk, .letter:
                    guard lower else {
                        if kind == .letter { appendScalar(v) } else { single(v) }
                        continue
                    }
                    // HF isolates CJK characters first, then lower-cases and strips accents (NFD may turn
                    // e.g. U+037E into ';' or U+F900 into U+8C48), and splits punctuation last.
                    let isolated = kind != .letter
                    if isolated { flush() }
                    table.forEach(v) { m in
                        if CharacterClasses.classify(m) == .punctuation { single(m) } else { appendScalar(m) }
                    }
                    if isolated { flush() }
                }
            }
        }
        flush()
    }

    /// The special token spelled at byte `i` (which is '['), if any: its id and byte length.
    @inline(__always)
    private func specialToken(at i: Int, in utf8: UnsafeBufferPointer<UInt8>) -> (Int32, Int)? {
        for (bytes, id) in specialTokens where i + bytes.count <= utf8.count {
            var j = 1
            while j < bytes.count && utf8[i + j] == bytes[j] { j += 1 }
            if j == bytes.count { return (id, bytes.count) }
        }
        return nil
    }

    /// Greedy longest-match-first WordPiece over one word given as UTF-8 bytes and character starts.
    @inline(__always)
    private func wordPiece(_ word: [UInt8], _ charStarts: [Int], _ out: inout [Int32]) {
        let charCount = charStarts.count
        if charCount > maxCharsPerWord { out.append(unkID); return }
        let mark = out.count
        let maxBytes = vocabulary.maxPieceBytes
        word.withUnsafeBufferPointer { bytes in
            var start = 0
            while start < charCount {
                let startByte = charStarts[start]
                var end = charCount
                var found: Int32? = nil
                while end > start {
                    let endByte = end == charCount ? bytes.count : charStarts[end]
                    if endByte - startByte <= maxBytes {
                        let piece = UnsafeBufferPointer(rebasing: bytes[startByte..<endByte])
                        found = start == 0 ? vocabulary.startID(piece) : vocabulary.continuationID(piece)
                        if found != nil { break }
                    }
                    end -= 1
                }
                guard let id = found else {
                    out.removeSubrange(mark...)
                    out.append(unkID)
                    return
                }
                out.append(id)
                start = end
            }
        }
    }
}
