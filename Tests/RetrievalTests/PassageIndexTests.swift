import XCTest
import Data
import Retrieval
import TestSupport

/// A deterministic stand-in for a trained bi-encoder: vectors from character counts.
final class CountingEncoder: PassageEncoder {
    let dimension = 8
    let modelName: String
    let fingerprint: String
    let similarity = SimilarityFunction.dotProduct
    var failAfterCalls: Int?
    var calls = 0

    init(name: String = "counting-model", fingerprint: String = "fp-1") {
        modelName = name
        self.fingerprint = fingerprint
    }

    struct Interrupted: Error {}

    func vector(_ text: String) -> [Float] {
        var v = [Float](repeating: 0, count: dimension)
        for scalar in text.unicodeScalars { v[Int(scalar.value) % dimension] += 1 }
        return v
    }

    func encodePassages(_ passages: [Passage]) throws -> [Float] {
        calls += 1
        if let failAfterCalls, calls > failAfterCalls { throw Interrupted() }
        return passages.flatMap { p -> [Float] in
            guard case let .text(t) = p.title, case let .text(x) = p.text else { return vector("") }
            return vector(t + " " + x)
        }
    }

    func encodeQuestions(_ questions: [String]) throws -> [Float] { questions.flatMap(vector) }
}

final class PassageIndexTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-index") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func writeCorpus(_ lines: [String]) throws -> String {
        let path = dir.appendingPathComponent("corpus.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func sampleCorpus(_ n: Int) throws -> String {
        try writeCorpus((0..<n).map { #"{"id": "p\#($0)", "title": "t\#($0 % 7)", "text": "passage number \#($0) \#(String(repeating: "x", count: $0 % 13))"}"# })
    }

    func testInterruptedBuildResumesToTheSameIndex() throws {
        let corpus = try Corpus.load(path: try sampleCorpus(50))
        let reference = dir.appendingPathComponent("reference").path
        try PassageIndex.build(corpus: corpus, encoder: CountingEncoder(), directory: reference, chunkRows: 8)

        let resumed = dir.appendingPathComponent("resumed").path
        let failing = CountingEncoder()
        failing.failAfterCalls = 3
        XCTAssertThrowsError(try PassageIndex.build(corpus: corpus, encoder: failing, directory: resumed, chunkRows: 8))
        XCTAssertThrowsError(try PassageIndex(directory: resumed)) { error in
            XCTAssertTrue("\(error)".contains("stopped at row 24 of 50"), "\(error)")
        }
        let second = CountingEncoder()
        try PassageIndex.build(corpus: corpus, encoder: second, directory: resumed, chunkRows: 8)
        XCTAssertEqual(second.calls, 4, "only the 26 missing rows are encoded (4 chunks of 8)")

        let a = try PassageIndex(directory: reference), b = try PassageIndex(directory: resumed)
        XCTAssertEqual(a.ids, b.ids)
        XCTAssertEqual(Array(a.embeddings), Array(b.embeddings))
        XCTAssertEqual(a.ids.count, 50)
    }

    func testIndexBuiltWithAnotherModelIsRefused() throws {
        let corpus = try Corpus.load(path: try sampleCorpus(5))
        let path = dir.appendingPathComponent("idx").path
        try PassageIndex.build(corpus: corpus, encoder: CountingEncoder(name: "model-A", fingerprint: "A"), directory: path)
        XCTAssertThrowsError(try PassageIndex(directory: path, expectedModel: (name: "model-B", fingerprint: "B"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("model-A") && text.contains("model-B"), text)
        }
        XCTAssertThrowsError(try PassageIndex.build(corpus: corpus, encoder: CountingEncoder(name: "model-B", fingerprint: "B"), directory: path))
    }

    func testDuplicateCorpusIDsAreAnError() throws {
        let path = try writeCorpus([#"{"id": "a", "title": "", "text": "x"}"#, #"{"id": "b", "title": "", "text": "y"}"#,
                                    #"{"id": "a", "title": "", "text": "z"}"#])
        XCTAssertThrowsError(try Corpus.load(path: path)) { error in
            XCTAssertEqual("\(error)", "\(path):3: duplicate passage id \"a\" (first seen on line 1); ids must be unique")
        }
    }

    func testMalformedCorpusLineNamesTheLine() throws {
        let path = try writeCorpus([#"{"id": "a", "title": "", "text": "x"}"#, #"{"id": "b", "title": "", "text": 5}"#])
        XCTAssertThrowsError(try Corpus.load(path: path)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(path):2:"), "\(error)")
        }
    }

    func testEvaluationCountsUnknownQrelsIDs() throws {
        let corpus = try Corpus.load(path: try writeCorpus([
            #"{"id": "a", "title": "", "text": "aaaa"}"#, #"{"id": "b", "title": "", "text": "bbbb"}"#,
            #"{"id": "c", "title": "", "text": "cccc"}"#]))
        let indexPath = dir.appendingPathComponent("idx").path
        let encoder = CountingEncoder()
        try PassageIndex.build(corpus: corpus, encoder: encoder, directory: indexPath)
        let qrelsPath = dir.appendingPathComponent("qrels.jsonl").path
        try """
        {"question": "bbb", "positive_ids": ["b"]}
        {"question": "aaa", "positive_ids": ["nope", "a"]}
        {"question": "ccc", "positive_ids": ["gone"]}
        """.write(toFile: qrelsPath, atomically: true, encoding: .utf8)
        var warnings: [String] = []
        let result = try Evaluation.run(encoder: encoder, index: try PassageIndex(directory: indexPath),
                                        set: try EvaluationSet.load(qrelsJSONLines: qrelsPath), ks: [1, 5]) { warnings.append($0) }
        XCTAssertEqual(result.unknownJudgedDocuments, 2)
        XCTAssertEqual(result.metrics.queriesWithoutJudgedPositive, 1)
        XCTAssertEqual(result.metrics.topKAccuracy[1]!, 2.0 / 3, accuracy: 1e-12)
        XCTAssertFalse(warnings.isEmpty)
    }
}
