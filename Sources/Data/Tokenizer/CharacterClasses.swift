import Foundation

/// How the basic tokenizer treats one Unicode scalar (SPEC §2, HF `BasicTokenizer`).
enum ScalarClass: UInt8 {
    /// NUL, U+FFFD and control (Cc) or format (Cf) characters: dropped. Unassigned and
    /// private-use characters are kept, as HF's `_is_control` does.
    case drop
    /// Whitespace: ends the current word.
    case space
    /// Punctuation (ASCII 33-47, 58-64, 91-96, 123-126 or category P*): a word of its own.
    case punctuation
    /// CJK ideograph: surrounded by spaces, so also a word of its own.
    case cjk
    /// Anything else: part of a word.
    case letter
}

enum CharacterClasses {
    /// Classification of any scalar as Hugging Face `tokenizers`' BertNormalizer/BertPreTokenizer
    /// see it (the backend of transformers' BertTokenizer, which recorded the fixtures): control =
    /// Cc, Cf, Co; whitespace = Rust `char::is_whitespace`; punctuation = ASCII punctuation or P*.
    /// Its category tables are Unicode 8.0: characters assigned later are ordinary letters to it
    /// (even format characters), and the few whose category changed since keep their 8.0 class.
    static func classify(_ v: UInt32) -> ScalarClass {
        if v < 0x80 { return asciiTable[Int(v)] }
        if v == 0xFFFD { return .drop }
        if isCJK(v) { return .cjk }
        guard let scalar = Unicode.Scalar(v) else { return .drop }
        let properties = scalar.properties
        if properties.generalCategory == .control { return .drop }  // before whitespace: U+0085 is dropped
        if properties.isWhitespace { return .space }
        if let old = unicode8Punctuation[v] { return old ? .punctuation : .letter }
        switch properties.generalCategory {
        case .control, .privateUse: return .drop
        case .format: return isInUnicode8(scalar) ? .drop : .letter
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return isInUnicode8(scalar) ? .punctuation : .letter
        default: return .letter
        }
    }

    /// Characters whose punctuation status differs between Unicode 8.0 and today.
    static let unicode8Punctuation: [UInt32: Bool] = [0x166D: true, 0x111C9: true]

    /// Characters whose nonspacing-mark (Mn) status differs between Unicode 8.0 and today.
    static let unicode8NonspacingMark: [UInt32: Bool] = [0x1734: true, 0x1885: false, 0x1886: false, 0xA9BD: false, 0x1171E: true, 0x111C9: false]

    /// Whether accent stripping removes `scalar`: a nonspacing mark in Unicode 8.0.
    static func isUnicode8NonspacingMark(_ scalar: Unicode.Scalar) -> Bool {
        if let old = unicode8NonspacingMark[scalar.value] { return old }
        return scalar.properties.generalCategory == .nonspacingMark && isInUnicode8(scalar)
    }

    static let asciiTable: [ScalarClass] = (0..<128).map { (v: Int) -> ScalarClass in
        switch v {
        case 0x09, 0x0A, 0x0D, 0x20: return .space
        case 0..<0x20, 0x7F: return .drop
        case 33...47, 58...64, 91...96, 123...126: return .punctuation
        default: return .letter
        }
    }

    /// Whether `scalar` was assigned in Unicode 8.0 or earlier.
    @inline(__always)
    static func isInUnicode8(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    /// The CJK Unified Ideographs blocks HF treats as Chinese characters (not Hiragana/Katakana/Hangul).
    /// `tokenizers` starts Extension E at 0x2B920 (the Python original at 0x2B820); we follow `tokenizers`.
    static func isCJK(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v)
            || (0x2B920...0x2CEAF).contains(v) || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    /// Lower-case, NFD-decompose and drop nonspacing marks (Mn): what `do_lower_case` does to a scalar.
    static func lowerStripped(_ v: UInt32) -> [UInt32] {
        guard let scalar = Unicode.Scalar(v) else { return [] }
        let lowered = scalar.properties.lowercaseMapping
        return lowered.decomposedStringWithCanonicalMapping.unicodeScalars
            .filter { !isUnicode8NonspacingMark($0) }
            .map { $0.value }
    }
}

/// Precomputed `lowerStripped` for the non-ASCII scalars most text uses (Latin, Greek, Cyrillic,
/// Vietnamese, punctuation, symbols, kana: U+0080..<U+3400); CJK ideographs (identity) and Hangul
/// syllables (algorithmic NFD) have fast paths; others are computed on demand.
struct LowerStripTable {
    static let limit: UInt32 = 0x3400
    private let offsets: [Int32]
    private let values: [UInt32]

    static let shared = LowerStripTable()

    private init() {
        var offsets = [Int32](repeating: 0, count: Int(Self.limit) + 1)
        var values: [UInt32] = []
        for v in 0..<Self.limit {
            offsets[Int(v)] = Int32(values.count)
            if v >= 0x80 { values.append(contentsOf: CharacterClasses.lowerStripped(v)) }
            else { values.append(v >= 0x41 && v <= 0x5A ? v + 32 : v) }
        }
        offsets[Int(Self.limit)] = Int32(values.count)
        self.offsets = offsets
        self.values = values
    }

    /// Calls `body` with each output scalar of lower-casing and accent-stripping `v`.
    @inline(__always)
    func forEach(_ v: UInt32, _ body: (UInt32) -> Void) {
        if v < Self.limit {
            let start = Int(offsets[Int(v)]), end = Int(offsets[Int(v) + 1])
            var i = start
            while i < end { body(values[i]); i += 1 }
        } else if v <= 0x9FFF {
            body(v)  // CJK Extension A, Yijing hexagrams, CJK Unified Ideographs: no case, no decomposition
        } else if v >= 0xAC00 && v <= 0xD7A3 {
            // Hangul syllable -> leading consonant, vowel, optional trailing consonant (Unicode ch. 3.12).
            let index = v - 0xAC00
            body(0x1100 + index / 588)
            body(0x1161 + (index % 588) / 28)
            if index % 28 != 0 { body(0x11A7 + index % 28) }
        } else {
            for m in CharacterClasses.lowerStripped(v) { body(m) }
        }
    }
}
