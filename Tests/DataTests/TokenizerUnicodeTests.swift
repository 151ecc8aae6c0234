import Foundation
import XCTest
import Data
import TestSupport

/// Unicode edge cases beyond fixtures/tokenizer/cases.jsonl, recorded from transformers 5 BertTokenizer
/// (the Rust `tokenizers` backend, as the fixtures) with the tiny-bert vocab: NFD folding of punctuation
/// (U+037E -> ';'), CJK compatibility ideographs, U+0085, private use, format characters newer than
/// Unicode 8, categories changed since Unicode 8, the Extension E boundary, Greek sigma, whitespace kinds.
/// (A one-off exhaustive check of every code point below U+30000 in context also matched, both casings.)
final class TokenizerUnicodeTests: XCTestCase {
    static let recorded = #"""
{"do_lower_case": true, "text": "Greek question mark\u037e ano teleia\u0387 end", "tokens": ["greek", "question", "mark", ";", "an", "##o", "tel", "##eia", "\u00b7", "end"], "ids": [101, 3306, 3160, 2928, 1025, 2019, 2080, 10093, 27958, 1087, 2203, 102]}
{"do_lower_case": true, "text": "compat \uf900\uf901 ideographs", "tokens": ["com", "##pa", "##t", "[UNK]", "[UNK]", "id", "##eo", "##graphs"], "ids": [101, 4012, 4502, 2102, 100, 100, 8909, 8780, 27341, 102]}
{"do_lower_case": true, "text": "next\u0085line", "tokens": ["next", "##line"], "ids": [101, 2279, 4179, 102]}
{"do_lower_case": true, "text": "private\ue000use\udb80\udc00", "tokens": ["private", "##use"], "ids": [101, 2797, 8557, 102]}
{"do_lower_case": true, "text": "arabic\u0890pound", "tokens": ["[UNK]"], "ids": [101, 100, 102]}
{"do_lower_case": true, "text": "syllabics\u166dsign", "tokens": ["sy", "##lla", "##bic", "##s", "[UNK]", "sign"], "ids": [101, 25353, 4571, 13592, 2015, 100, 3696, 102]}
{"do_lower_case": true, "text": "ext-e \ud86e\udc20\ud86e\udd20", "tokens": ["ex", "##t", "-", "e", "[UNK]", "[UNK]"], "ids": [101, 4654, 2102, 1011, 1041, 100, 100, 102]}
{"do_lower_case": true, "text": "hanunoo\u1734 mark", "tokens": ["han", "##uno", "##o", "mark"], "ids": [101, 7658, 27819, 2080, 2928, 102]}
{"do_lower_case": true, "text": "\u039f\u0394\u039f\u03a3 \u03a3\u0399\u03a3 Stra\u00dfe \ufb01ne \u0130stanbul", "tokens": ["\u03bf", "##\u03b4", "##\u03bf", "##\u03c3", "\u03c3", "##\u03b9", "##\u03c3", "st", "##ra\u00dfe", "\ufb01", "##ne", "istanbul"], "ids": [101, 1169, 29722, 29730, 29733, 1173, 18199, 29733, 2358, 27807, 1984, 2638, 9960, 102]}
{"do_lower_case": true, "text": "zero\u200bwidth\u200cjoin\u200d soft\u00adhyphen", "tokens": ["zero", "##wi", "##dt", "##h", "##jo", "##in", "soft", "##hy", "##ph", "##en"], "ids": [101, 5717, 9148, 11927, 2232, 5558, 2378, 3730, 10536, 8458, 2368, 102]}
{"do_lower_case": true, "text": "nbsp\u00a0thin\u2009ideo\u3000space line\u2028para\u2029end", "tokens": ["n", "##bs", "##p", "thin", "id", "##eo", "space", "line", "para", "end"], "ids": [101, 1050, 5910, 2361, 4857, 8909, 8780, 2686, 2240, 11498, 2203, 102]}
{"do_lower_case": true, "text": "\uff21\uff42\uff43\uff11\uff12\uff13 full-width", "tokens": ["[UNK]", "full", "-", "width"], "ids": [101, 100, 2440, 1011, 9381, 102]}
{"do_lower_case": true, "text": "\u01c4emo \u01c5 \u01c6", "tokens": ["[UNK]", "[UNK]", "[UNK]"], "ids": [101, 100, 100, 100, 102]}
{"do_lower_case": true, "text": "\u1e31\u1e77\u1e53n \u1e5c \ufb03", "tokens": ["ku", "##on", "r", "[UNK]"], "ids": [101, 13970, 2239, 1054, 100, 102]}
{"do_lower_case": true, "text": "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u53e5\u8aad\u70b9\u3002", "tokens": ["\u65e5", "\u672c", "\u8a9e", "\u306e", "##\u30c6", "##\u30ad", "##\u30b9", "##\u30c8", "\u3001", "[UNK]", "[UNK]", "[UNK]", "\u3002"], "ids": [101, 1864, 1876, 1950, 1671, 30239, 30227, 30233, 30240, 1635, 100, 100, 100, 1636, 102]}
{"do_lower_case": true, "text": "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "tokens": ["\u1112", "##\u1161", "##\u11ab", "##\u1100", "##\u116e", "##\u11a8", "##\u110b", "##\u1165", "\u1110", "##\u1166", "##\u11a8", "##\u1109", "##\u1173", "##\u1110", "##\u1173"], "ids": [101, 1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008, 1467, 30009, 30020, 29997, 30017, 30003, 30017, 102]}
{"do_lower_case": true, "text": "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u03ba\u03b5\u03af\u03bc\u03b5\u03bd\u03b1", "tokens": ["\u03b5", "##\u03bb", "##\u03bb", "##\u03b7", "##\u03bd", "##\u03b9", "##\u03ba", "##\u03b1", "\u03ba", "##\u03b5", "##\u03b9", "##\u03bc", "##\u03b5", "##\u03bd", "##\u03b1"], "ids": [101, 1159, 29727, 29727, 24824, 16177, 18199, 29726, 14608, 1164, 29723, 18199, 29728, 29723, 16177, 14608, 102]}
{"do_lower_case": true, "text": "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442 \u0401\u0451", "tokens": ["\u0440", "##\u0443", "##\u0441", "##\u0441", "##\u043a", "##\u0438\u0438", "\u0442", "##\u0435", "##\u043a", "##\u0441", "##\u0442", "\u0435", "##\u0435"], "ids": [101, 1195, 29748, 29747, 29747, 23925, 15414, 1197, 15290, 23925, 29747, 22919, 1185, 15290, 102]}
{"do_lower_case": true, "text": "mixed\tcontrol\u0001\u007fchars\ufffd", "tokens": ["mixed", "control", "##cha", "##rs"], "ids": [101, 3816, 2491, 7507, 2869, 102]}
{"do_lower_case": true, "text": "emoji \ud83d\udc4d\ud83c\udffd family \ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67", "tokens": ["em", "##oj", "##i", "[UNK]", "family", "[UNK]"], "ids": [101, 7861, 29147, 2072, 100, 2155, 100, 102]}
{"do_lower_case": true, "text": "combining e\u0301 a\u0300 n\u0303 alone \u0301", "tokens": ["combining", "e", "a", "n", "alone"], "ids": [101, 11566, 1041, 1037, 1050, 2894, 102]}
{"do_lower_case": true, "text": "thai \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22", "tokens": ["thai", "[UNK]"], "ids": [101, 7273, 100, 102]}
{"do_lower_case": true, "text": "hindi \u0939\u093f\u0928\u094d\u0926\u0940", "tokens": ["hindi", "\u0939", "##\u093f", "##\u0928", "##\u0926", "##\u0940"], "ids": [101, 9269, 1339, 29877, 29863, 29861, 29878, 102]}
{"do_lower_case": false, "text": "Greek question mark\u037e ano teleia\u0387 end", "tokens": ["[UNK]", "question", "mark", "[UNK]", "an", "##o", "tel", "##eia", "[UNK]", "end"], "ids": [101, 100, 3160, 2928, 100, 2019, 2080, 10093, 27958, 100, 2203, 102]}
{"do_lower_case": false, "text": "compat \uf900\uf901 ideographs", "tokens": ["com", "##pa", "##t", "[UNK]", "[UNK]", "id", "##eo", "##graphs"], "ids": [101, 4012, 4502, 2102, 100, 100, 8909, 8780, 27341, 102]}
{"do_lower_case": false, "text": "next\u0085line", "tokens": ["next", "##line"], "ids": [101, 2279, 4179, 102]}
{"do_lower_case": false, "text": "private\ue000use\udb80\udc00", "tokens": ["private", "##use"], "ids": [101, 2797, 8557, 102]}
{"do_lower_case": false, "text": "arabic\u0890pound", "tokens": ["[UNK]"], "ids": [101, 100, 102]}
{"do_lower_case": false, "text": "syllabics\u166dsign", "tokens": ["sy", "##lla", "##bic", "##s", "[UNK]", "sign"], "ids": [101, 25353, 4571, 13592, 2015, 100, 3696, 102]}
{"do_lower_case": false, "text": "ext-e \ud86e\udc20\ud86e\udd20", "tokens": ["ex", "##t", "-", "e", "[UNK]", "[UNK]"], "ids": [101, 4654, 2102, 1011, 1041, 100, 100, 102]}
{"do_lower_case": false, "text": "hanunoo\u1734 mark", "tokens": ["[UNK]", "mark"], "ids": [101, 100, 2928, 102]}
{"do_lower_case": false, "text": "\u039f\u0394\u039f\u03a3 \u03a3\u0399\u03a3 Stra\u00dfe \ufb01ne \u0130stanbul", "tokens": ["[UNK]", "[UNK]", "[UNK]", "\ufb01", "##ne", "[UNK]"], "ids": [101, 100, 100, 100, 1984, 2638, 100, 102]}
{"do_lower_case": false, "text": "zero\u200bwidth\u200cjoin\u200d soft\u00adhyphen", "tokens": ["zero", "##wi", "##dt", "##h", "##jo", "##in", "soft", "##hy", "##ph", "##en"], "ids": [101, 5717, 9148, 11927, 2232, 5558, 2378, 3730, 10536, 8458, 2368, 102]}
{"do_lower_case": false, "text": "nbsp\u00a0thin\u2009ideo\u3000space line\u2028para\u2029end", "tokens": ["n", "##bs", "##p", "thin", "id", "##eo", "space", "line", "para", "end"], "ids": [101, 1050, 5910, 2361, 4857, 8909, 8780, 2686, 2240, 11498, 2203, 102]}
{"do_lower_case": false, "text": "\uff21\uff42\uff43\uff11\uff12\uff13 full-width", "tokens": ["[UNK]", "full", "-", "width"], "ids": [101, 100, 2440, 1011, 9381, 102]}
{"do_lower_case": false, "text": "\u01c4emo \u01c5 \u01c6", "tokens": ["[UNK]", "[UNK]", "[UNK]"], "ids": [101, 100, 100, 100, 102]}
{"do_lower_case": false, "text": "\u1e31\u1e77\u1e53n \u1e5c \ufb03", "tokens": ["[UNK]", "[UNK]", "[UNK]"], "ids": [101, 100, 100, 100, 102]}
{"do_lower_case": false, "text": "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u53e5\u8aad\u70b9\u3002", "tokens": ["\u65e5", "\u672c", "\u8a9e", "\u306e", "##\u30c6", "##\u30ad", "##\u30b9", "##\u30c8", "\u3001", "[UNK]", "[UNK]", "[UNK]", "\u3002"], "ids": [101, 1864, 1876, 1950, 1671, 30239, 30227, 30233, 30240, 1635, 100, 100, 100, 1636, 102]}
{"do_lower_case": false, "text": "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "tokens": ["[UNK]", "[UNK]"], "ids": [101, 100, 100, 102]}
{"do_lower_case": false, "text": "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u03ba\u03b5\u03af\u03bc\u03b5\u03bd\u03b1", "tokens": ["[UNK]", "[UNK]"], "ids": [101, 100, 100, 102]}
{"do_lower_case": false, "text": "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442 \u0401\u0451", "tokens": ["[UNK]", "\u0442", "##\u0435", "##\u043a", "##\u0441", "##\u0442", "[UNK]"], "ids": [101, 100, 1197, 15290, 23925, 29747, 22919, 100, 102]}
{"do_lower_case": false, "text": "mixed\tcontrol\u0001\u007fchars\ufffd", "tokens": ["mixed", "control", "##cha", "##rs"], "ids": [101, 3816, 2491, 7507, 2869, 102]}
{"do_lower_case": false, "text": "emoji \ud83d\udc4d\ud83c\udffd family \ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67", "tokens": ["em", "##oj", "##i", "[UNK]", "family", "[UNK]"], "ids": [101, 7861, 29147, 2072, 100, 2155, 100, 102]}
{"do_lower_case": false, "text": "combining e\u0301 a\u0300 n\u0303 alone \u0301", "tokens": ["combining", "[UNK]", "[UNK]", "[UNK]", "alone", "[UNK]"], "ids": [101, 11566, 100, 100, 100, 2894, 100, 102]}
{"do_lower_case": false, "text": "thai \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22", "tokens": ["thai", "[UNK]"], "ids": [101, 7273, 100, 102]}
{"do_lower_case": false, "text": "hindi \u0939\u093f\u0928\u094d\u0926\u0940", "tokens": ["hindi", "[UNK]"], "ids": [101, 9269, 100, 102]}
"""#

    func testRecordedUnicodeCases() throws {
        let vocab = try Vocabulary(contentsOf: Fixtures.url("tiny-bert/vocab.txt"))
        let lower = try BertTokenizer(vocabulary: vocab, doLowerCase: true)
        let cased = try BertTokenizer(vocabulary: vocab, doLowerCase: false)
        let cases = try Self.recorded.split(separator: "\n").map {
            try JSONDecoder().decode(TokenizerTests.Case.self, from: Data($0.utf8))
        }
        XCTAssertEqual(cases.count, 46)
        for c in cases {
            let tok = c.do_lower_case ? lower : cased
            XCTAssertEqual(tok.tokenize(c.text), c.tokens, "tokens of \(c.text.debugDescription), lower=\(c.do_lower_case)")
            XCTAssertEqual(tok.encode(c.text), c.ids, "ids of \(c.text.debugDescription), lower=\(c.do_lower_case)")
        }
    }

    /// Special tokens spelled in the text stay whole (HF added tokens), case-sensitively; recorded from HF.
    func testSpecialTokensInText() throws {
        for lower in [true, false] {
            let tok = try BertTokenizer(vocabFile: Fixtures.url("tiny-bert/vocab.txt"), doLowerCase: lower)
            XCTAssertEqual(tok.encode("hello[SEP]world [MASK] [cls] x[UNK]y"),
                           [101, 7592, 102, 2088, 103, 1031, 18856, 2015, 1033, 1060, 100, 1061, 102])
            XCTAssertEqual(tok.encode("[PAD][CLS]"), [101, 0, 101, 102])
            XCTAssertEqual(tok.encode("[SEP]?"), [101, 102, 1029, 102])
        }
    }

    /// Pieces are looked up as byte slices: multi-byte continuation pieces and the 100-character limit.
    func testWordPieceLimits() throws {
        let tok = try BertTokenizer(vocabFile: Fixtures.url("tiny-bert/vocab.txt"), doLowerCase: true)
        XCTAssertEqual(tok.tokenize(String(repeating: "a", count: 100)).contains("[UNK]"), false)
        XCTAssertEqual(tok.tokenize(String(repeating: "a", count: 101)), ["[UNK]"])
        // 101 characters that are 2 bytes each: the limit counts characters, not bytes.
        XCTAssertEqual(tok.tokenize(String(repeating: "\u{e9}", count: 60)).contains("[UNK]"), false)
        XCTAssertEqual(tok.tokenize("\u{0}\u{fffd}"), [])
    }
}
