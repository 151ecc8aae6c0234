import Foundation
import XCTest
import Data
import TestSupport

/// The byte-level tokenizer entry points give exactly what the String ones give.
final class TokenizerBytesTests: XCTestCase {
    private func withBytes<R>(_ s: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        Array(s.utf8).withUnsafeBytes(body)
    }

    private func assertSame(_ tok: BertTokenizer, _ text: String, pair: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        withBytes(text) { t in
            XCTAssertEqual(tok.tokenIDs(utf8: t), tok.tokenIDs(text), "text \(text.debugDescription)", file: file, line: line)
            XCTAssertEqual(tok.encode(utf8: t, maxLength: 16), tok.encode(text, maxLength: 16), file: file, line: line)
            XCTAssertEqual(tok.encodeQuestion(utf8: t), tok.encode(BertTokenizer.normalizeQuestion(text)),
                           "question \(text.debugDescription)", file: file, line: line)
            if let pair {
                withBytes(pair) { p in
                    XCTAssertEqual(tok.encode(utf8: t, pairUTF8: p), tok.encode(text, textPair: pair),
                                   "pair \(text.debugDescription)", file: file, line: line)
                }
            }
        }
    }

    private func tokenizers() throws -> [BertTokenizer] {
        let vocab = try Vocabulary(contentsOf: Fixtures.url("tiny-bert/vocab.txt"))
        return [try BertTokenizer(vocabulary: vocab, doLowerCase: true), try BertTokenizer(vocabulary: vocab, doLowerCase: false)]
    }

    func testFixtureCases() throws {
        let cases = try TokenizerTests.cases()
        XCTAssertGreaterThan(cases.count, 30)
        for tok in try tokenizers() {
            for c in cases { assertSame(tok, c.text, pair: c.text_pair ?? "") }
        }
    }

    func testFAQCorpusAndQuestions() throws {
        let tok = try tokenizers()[0]
        let corpus = try String(contentsOf: Fixtures.sharedData.appendingPathComponent("faq/corpus.jsonl"), encoding: .utf8)
        var passages = 0
        for line in corpus.split(separator: "\n") {
            guard let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let title = row["title"] as? String, let text = row["text"] as? String else { return XCTFail("bad corpus line") }
            assertSame(tok, title, pair: text)
            passages += 1
        }
        XCTAssertGreaterThan(passages, 5000)
        let train = try JSONLinesFile.readSamples(path: Fixtures.sharedData.appendingPathComponent("faq/train.jsonl").path)
        var questions = 0
        for sample in train {
            for case .text(let q) in sample.questions { assertSame(tok, q); questions += 1 }
        }
        XCTAssertGreaterThan(questions, 500)
    }

    /// `normalizedQuestionRange` equals `normalizeQuestion` around every Unicode scalar: the
    /// trimmed set, and the `?` that a preceding Prepend character joins into one Character.
    func testQuestionNormalisationOnBytesForEveryScalar() {
        var checked = 0
        for v in 0..<0x110000 {
            guard let scalar = Unicode.Scalar(v) else { continue }
            let s = String(Character(scalar))
            for text in ["\(s)ab?\(s)", "ab\(s)?", "\(s)", "\(s)?\(s)"] {
                let expected = BertTokenizer.normalizeQuestion(text)
                let got: String = withBytes(text) { b in
                    let r = BertTokenizer.normalizedQuestionRange(utf8: b)
                    return String(decoding: b[r], as: UTF8.self)
                }
                if got != expected { XCTFail("U+\(String(v, radix: 16)) in \(text.debugDescription): \(got.debugDescription) != \(expected.debugDescription)"); return }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 4_000_000)
        for text in ["", "?", " ? ", "??", "a ?? ", "\u{600}?", "\u{3000}q?\u{2028}", "x\u{301}?", "\r\n?\r\n"] {
            withBytes(text) { b in
                XCTAssertEqual(String(decoding: b[BertTokenizer.normalizedQuestionRange(utf8: b)], as: UTF8.self),
                               BertTokenizer.normalizeQuestion(text), text.debugDescription)
            }
        }
    }

    func testIllFormedUTF8IsRepairedLikeString() throws {
        let tok = try tokenizers()[0]
        let bytes: [UInt8] = [0x68, 0x69, 0xFF, 0x20, 0xE2, 0x82, 0x20, 0x6F, 0x6B, 0xED, 0xA0, 0x80]
        let repaired = String(decoding: bytes, as: UTF8.self)
        bytes.withUnsafeBytes { b in
            XCTAssertEqual(tok.tokenIDs(utf8: b), tok.tokenIDs(repaired))
            XCTAssertEqual(tok.encodeQuestion(utf8: b), tok.encode(BertTokenizer.normalizeQuestion(repaired)))
        }
    }
}
