import XCTest
import Data
import Retrieval
import TestSupport

/// Every form of corpus and qrels id: strings, and integers of any size and sign, 0 and 1
/// included (JSONSerialization gave 0 and 1 as NSNumbers that also cast to Bool, and they were
/// refused as "not a string/integer").
final class CorpusIDTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-ids") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ lines: [String]) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    let idForms: [(json: String, id: String)] = [
        ("\"doc-a\"", "doc-a"), ("\"0\"", "0"), ("\"\"", ""), ("\"é/ü#1\"", "é/ü#1"),
        ("0", "0"), ("1", "1"), ("2", "2"), ("-1", "-1"), ("-42", "-42"),
        ("9223372036854775807", "9223372036854775807"), ("-9223372036854775808", "-9223372036854775808"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
    ]

    func testCorpusAcceptsEveryIDForm() throws {
        // "0" (string) and 0 (integer) are the same id: keep them in two corpora.
        for (index, form) in idForms.enumerated() {
            for key in ["id", "_id"] {
                let path = try write("corpus\(index)\(key).jsonl", [
                    "{\"\(key)\": \(form.json), \"title\": \"t\", \"text\": \"passage \(index)\"}",
                    "{\"\(key)\": \"other\", \"text\": \"no title\"}",
                ])
                let corpus = try Corpus.load(path: path)
                XCTAssertEqual(corpus.ids, [form.id, "other"], "\(key): \(form.json)")
                XCTAssertEqual(corpus.rowByID[form.id], 0)
                XCTAssertEqual(corpus.passages[1], Passage(title: "", text: "no title"))
            }
        }
    }

    func testQrelsAcceptEveryIDForm() throws {
        let path = try write("qrels.jsonl", [
            "{\"question\": \"q\", \"positive_ids\": [\(idForms.map(\.json).joined(separator: ", "))]}",
        ])
        XCTAssertEqual(try Qrels.load(path: path).positiveIDs, [idForms.map(\.id)])
    }

    func testIntegerAndStringZeroAreTheSameID() throws {
        let path = try write("dup.jsonl", ["{\"id\": 0, \"text\": \"a\"}", "{\"id\": \"0\", \"text\": \"b\"}"])
        XCTAssertThrowsError(try Corpus.load(path: path)) { error in
            XCTAssertEqual(error as? RetrievalError, .duplicateID(path: path, id: "0", firstLine: 1, line: 2))
        }
    }

    func testNonIDValuesAreRefusedNamingTheLine() throws {
        for bad in ["true", "false", "null", "1.5", "1e3", "[1]", "{\"a\": 1}"] {
            let path = try write("bad.jsonl", ["{\"id\": \"ok\", \"text\": \"a\"}", "{\"id\": \(bad), \"text\": \"b\"}"])
            XCTAssertThrowsError(try Corpus.load(path: path), bad) { error in
                XCTAssertEqual(error as? RetrievalError, .badLine(path: path, line: 2, reason: "field \"id\" is not a string or an integer"), bad)
            }
        }
        let qrels = try write("badq.jsonl", ["{\"question\": \"q\", \"positive_ids\": [0, true]}"])
        XCTAssertThrowsError(try Qrels.load(path: qrels)) { error in
            XCTAssertEqual(error as? RetrievalError, .badLine(path: qrels, line: 1, reason: "\"positive_ids\" holds a value that is not a string or integer id"))
        }
    }

    func testMissingFieldsNameFileAndLine() throws {
        let noID = try write("noid.jsonl", ["{\"id\": 1, \"text\": \"a\"}", "", "{\"text\": \"b\"}"])
        XCTAssertThrowsError(try Corpus.load(path: noID)) { error in
            XCTAssertEqual("\(error)", "\(noID):3: field \"id\" (or BEIR's \"_id\") is missing")
        }
        let noText = try write("notext.jsonl", ["{\"id\": 1, \"title\": \"a\"}"])
        XCTAssertThrowsError(try Corpus.load(path: noText)) { error in
            XCTAssertEqual("\(error)", "\(noText):1: field \"text\" is missing or not a string")
        }
        let broken = try write("broken.jsonl", ["{\"id\": 1, \"text\": \"a\"}", "{\"id\": 2, \"text\": "])
        XCTAssertThrowsError(try Corpus.load(path: broken)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(broken):2: malformed JSON"), "\(error)")
        }
    }
}
