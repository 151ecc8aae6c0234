/// How BM25 turns a passage or a question into terms:
/// 1. tokens are the maximal runs of Unicode letters, combining marks and numbers (general
///    categories L*, M*, N*); everything else (spaces, punctuation, symbols, `_`) separates tokens;
/// 2. each character is lower-cased on its own with its full Unicode lower-case mapping (no
///    context rules, so a final capital sigma becomes σ, as Python's `c.lower()` per character);
/// 3. with a stop-word list, tokens on it are dropped (after lower-casing).
/// A passage is its title's tokens followed by its text's tokens. Nothing is stemmed.
public struct TextAnalyzer: Equatable, Sendable {
    public var stopWords: Set<String>
    /// "english", "none", or the path of a file (one word a line): recorded in the index.
    public var stopWordsName: String

    public init(stopWords: Set<String>, name: String) {
        self.stopWords = stopWords
        self.stopWordsName = name
    }

    /// The analyzer for `--stopwords english|none|FILE`.
    public static func named(_ name: String) throws -> TextAnalyzer {
        switch name {
        case "english": return TextAnalyzer(stopWords: englishStopWords, name: name)
        case "none": return TextAnalyzer(stopWords: [], name: name)
        default:
            guard let data = FileManager.default.contents(atPath: name) else {
                throw RetrievalError.invalidArgument(name: "--stopwords", reason: "\(name) is not `english`, `none` or a readable file of words (one a line)")
            }
            let text = String(decoding: data, as: UTF8.self)
            var words = Set<String>()
            for line in text.split(whereSeparator: \.isNewline) {
                for token in TextAnalyzer(stopWords: [], name: "none").terms(String(line)) { words.insert(token) }
            }
            return TextAnalyzer(stopWords: words, name: name)
        }
    }

    /// The English stop words of Lucene's `EnglishAnalyzer` (33 words).
    public static let englishStopWords: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
        "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
        "they", "this", "to", "was", "will", "with",
    ]

    /// The terms of `text`, in order (repeated terms repeated).
    public func terms(_ text: String) -> [String] {
        var result: [String] = []
        appendTerms(of: text, to: &result)
        return result
    }

    /// The terms of a passage: its title's, then its text's.
    public func terms(title: String, text: String) -> [String] {
        var result: [String] = []
        appendTerms(of: title, to: &result)
        appendTerms(of: text, to: &result)
        return result
    }

    func appendTerms(of text: String, to result: inout [String]) {
        var token = String.UnicodeScalarView()
        func flush() {
            guard !token.isEmpty else { return }
            let term = String(token)
            if !stopWords.contains(term) { result.append(term) }
            token.removeAll(keepingCapacity: true)
        }
        for scalar in text.unicodeScalars {
            if scalar.isASCII {
                // Fast path for ASCII: letters and digits continue a token.
                let v = scalar.value
                if v >= 0x41 && v <= 0x5A {
                    token.append(Unicode.Scalar(v + 32)!)
                } else if (v >= 0x61 && v <= 0x7A) || (v >= 0x30 && v <= 0x39) {
                    token.append(scalar)
                } else {
                    flush()
                }
                continue
            }
            if TextAnalyzer.isTokenCharacter(scalar) {
                token.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                flush()
            }
        }
        flush()
    }

    static func isTokenCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark,
             .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }
}

import Foundation
