import Foundation
import XCTest
import Data
import TestSupport

/// BertTokenizer parity with HF on fixtures/tokenizer/cases.jsonl (Must show 1) and bad vocabularies (Must show 6).
final class TokenizerTests: XCTestCase {
    struct Case: Decodable {
        var do_lower_case: Bool
        var text: String
        var text_pair: String?
        var tokens: [String]?
        var ids: [Int32]
    }

    static func cases() throws -> [Case] {
        let text = try String(contentsOf: Fixtures.url("tokenizer/cases.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Case.self, from: Data($0.utf8)) }
    }

    func testAllFixtureCases() throws {
        let vocab = try Vocabulary(contentsOf: Fixtures.url("tiny-bert/vocab.txt"))
        let lower = try BertTokenizer(vocabulary: vocab, doLowerCase: true)
        let cased = try BertTokenizer(vocabulary: vocab, doLowerCase: false)
        let cases = try Self.cases()
        XCTAssertGreaterThan(cases.count, 30)
        for c in cases {
            let tok = c.do_lower_case ? lower : cased
            if let pair = c.text_pair {
                XCTAssertEqual(tok.encode(c.text, textPair: pair), c.ids, "pair \(c.text) / \(pair)")
            } else {
                XCTAssertEqual(tok.encode(c.text), c.ids, "text \(c.text.debugDescription)")
                if let tokens = c.tokens { XCTAssertEqual(tok.tokenize(c.text), tokens, "tokens of \(c.text.debugDescription)") }
            }
        }
    }

    func testTruncationKeepsSEPLast() throws {
        let tok = try BertTokenizer(vocabFile: Fixtures.url("tiny-bert/vocab.txt"), doLowerCase: true)
        let ids = tok.encode("one two three four five six", maxLength: 4)
        XCTAssertEqual(ids.count, 4)
        XCTAssertEqual(ids.first, tok.clsID)
        XCTAssertEqual(ids.last, tok.sepID)
        XCTAssertEqual(Array(ids[1..<3]), Array(tok.encode("one two three four five six")[1..<3]))
        XCTAssertEqual(tok.encode("", textPair: "war"), [tok.clsID, tok.sepID] + tok.tokenIDs("war") + [tok.sepID])
    }

    func testQuestionNormalisation() {
        XCTAssertEqual(BertTokenizer.normalizeQuestion("  who is it?? "), "who is it?")
        XCTAssertEqual(BertTokenizer.normalizeQuestion("why ? "), "why")
        XCTAssertEqual(BertTokenizer.normalizeQuestion(""), "")
    }

    func testVocabularyWithoutSpecialTokensIsRejected() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("vocab.txt")
        try "[PAD]\n[UNK]\n[CLS]\nhello\n".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BertTokenizer(vocabFile: url, doLowerCase: true)) { error in
            XCTAssertEqual(error as? VocabularyError, .missingSpecialToken(path: url.path, token: "[SEP]"))
            XCTAssertTrue("\(error)".contains("[SEP]"))
        }
        try "".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BertTokenizer(vocabFile: url, doLowerCase: true)) { error in
            XCTAssertEqual(error as? VocabularyError, .empty(path: url.path))
        }
        XCTAssertThrowsError(try BertTokenizer(vocabFile: dir.appendingPathComponent("missing.txt"), doLowerCase: true))
    }

    /// A vocab.txt saved with Windows line ends gives the same ids as the original.
    func testCRLFVocabularyReadsLikeLF() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lf = try String(contentsOf: Fixtures.url("tiny-bert/vocab.txt"), encoding: .utf8)
        let url = dir.appendingPathComponent("vocab.txt")
        try lf.replacingOccurrences(of: "\n", with: "\r\n").write(to: url, atomically: true, encoding: .utf8)
        let crlf = try BertTokenizer(vocabFile: url, doLowerCase: true)
        let original = try BertTokenizer(vocabFile: Fixtures.url("tiny-bert/vocab.txt"), doLowerCase: true)
        let text = "Who wrote the novel War and Peace? Tokenization, unaffable!"
        XCTAssertEqual(crlf.encode(text), original.encode(text))
        XCTAssertEqual(crlf.padID, original.padID)
    }
}
