import Foundation
import XCTest
import Data
import TestSupport

/// `srdpr tokenize` reproduces every fixture case (Must show 1, through the CLI) and reports bad input.
final class TokenizerCLITests: XCTestCase {
    let vocab = Fixtures.url("tiny-bert/vocab.txt").path

    func testFixtureCasesThroughCLI() throws {
        let cases = try TokenizerTests.cases()
        for lower in [true, false] {
            let selected = cases.filter { $0.do_lower_case == lower }
            XCTAssertFalse(selected.isEmpty)
            let input = try selected.map { c -> String in
                var object: [String: String] = ["text": c.text]
                if let pair = c.text_pair { object["text_pair"] = pair }
                return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            }.joined(separator: "\n") + "\n"
            let result = try Command.srdpr(["tokenize", "--vocab", vocab, "--do-lower-case", String(lower)], stdin: input)
            XCTAssertEqual(result.status, 0, result.stderr)
            let lines = result.stdout.split(separator: "\n")
            XCTAssertEqual(lines.count, selected.count)
            for (c, line) in zip(selected, lines) {
                let tree = try JSONDecoder().decode(JSONTree.self, from: Data(line.utf8))
                XCTAssertEqual(tree["ids"]?.items.compactMap(\.int), c.ids.map(Int.init), "ids of \(c.text.debugDescription)")
                if let tokens = c.tokens {
                    let got = tree["tokens"]?.items.map { t -> String in if case .string(let s) = t { return s } else { return "?" } }
                    XCTAssertEqual(got, tokens, "tokens of \(c.text.debugDescription)")
                }
            }
        }
    }

    func testBadInputLineIsNamed() throws {
        let result = try Command.srdpr(["tokenize", "--vocab", vocab], stdin: "{\"text\": \"ok\"}\n{\"txt\": 1}\n")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("line 2"), result.stderr)
        let notJSON = try Command.srdpr(["tokenize", "--vocab", vocab], stdin: "hello\n")
        XCTAssertNotEqual(notJSON.status, 0)
        XCTAssertTrue(notJSON.stderr.contains("line 1"), notJSON.stderr)
    }

    func testVocabWithoutSpecialTokensThroughCLI() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("vocab.txt")
        try "[PAD]\n[SEP]\n[CLS]\nhello\n".write(to: url, atomically: true, encoding: .utf8)
        let result = try Command.srdpr(["tokenize", "--vocab", url.path], stdin: "{\"text\": \"hello\"}\n")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("[UNK]"), result.stderr)
    }
}
