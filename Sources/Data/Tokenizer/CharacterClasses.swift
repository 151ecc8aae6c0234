import Foundation

/// How the basic tokenizer treats one Unicode scalar (SPEC §2, HF `BasicTokenizer`).
enum ScalarClass: UInt8 {
    /// NUL, U+FFFD and control/format/unassigned/private/surrogate characters: dropped.
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
    /// Classification of any scalar, following HF's `_is_control`, `_is_whitespace`, `_is_punctuation`,
    /// `_is_chinese_char` and Python's `str.split()` (which also splits on U+2028/U+2029).
    static func classify(_ v: UInt32) -> ScalarClass {
        if v < 0x80 { return asciiTable[Int(v)] }
        if v == 0xFFFD { return .drop }
        if isCJK(v) { return .cjk }
        guard let scalar = Unicode.Scalar(v) else { return .drop }
        switch scalar.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return .drop
        case .spaceSeparator, .lineSeparator, .paragraphSeparator: return .space
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return .punctuation
        default: return .letter
        }
    }

    static let asciiTable: [ScalarClass] = (0..<128).map { (v: Int) -> ScalarClass in
        switch v {
        case 0x09, 0x0A, 0x0D, 0x20: return .space
        case 0..<0x20, 0x7F: return .drop
        case 33...47, 58...64, 91...96, 123...126: return .punctuation
        default: return .letter
        }
    }

    /// The CJK Unified Ideographs blocks HF treats as Chinese characters (not Hiragana/Katakana/Hangul).
    static func isCJK(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v)
            || (0x2B820...0x2CEAF).contains(v) || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    /// Lower-case, NFD-decompose and drop nonspacing marks (Mn): what `do_lower_case` does to a scalar.
    static func lowerStripped(_ v: UInt32) -> [UInt32] {
        guard let scalar = Unicode.Scalar(v) else { return [] }
        let lowered = scalar.properties.lowercaseMapping
        return lowered.decomposedStringWithCanonicalMapping.unicodeScalars
            .filter { $0.properties.generalCategory != .nonspacingMark }
            .map { $0.value }
    }
}

/// Precomputed `lowerStripped` for the non-ASCII scalars most text uses (Latin, Greek, Cyrillic,
/// Vietnamese, general punctuation: U+0080..<U+2500); others are computed on demand.
struct LowerStripTable {
    static let limit: UInt32 = 0x2500
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
        } else {
            for m in CharacterClasses.lowerStripped(v) { body(m) }
        }
    }
}
