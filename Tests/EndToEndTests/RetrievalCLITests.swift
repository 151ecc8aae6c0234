import XCTest
import Foundation
import TestSupport

/// `srdpr index`, `search` and `evaluate` end to end on tiny-bert and a small slice of the FAQ data.
final class RetrievalCLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-retrieval-cli") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func smallData(questions n: Int = 12, distractors: Int = 60) throws -> (corpus: String, qrels: String) {
        try RetrievalData.small(dir, questions: n, distractors: distractors)
    }

    func testIndexSearchAndEvaluate() throws {
        let model = Fixtures.url("tiny-bert").path
        let (corpus, qrels) = try smallData()
        let index = dir.appendingPathComponent("index").path
        let built = try Command.srdpr(["index", "--model", model, "--corpus", corpus, "--output", index, "--max-length", "64"])
        XCTAssertEqual(built.status, 0, built.stderr)

        let search = try Command.srdpr(["search", "--model", model, "--index", index, "--queries", qrels,
                                        "--top-k", "3", "--max-length", "64"])
        XCTAssertEqual(search.status, 0, search.stderr)
        let lines = search.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 12)
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        let hits = try XCTUnwrap(first["hits"] as? [[String: Any]])
        XCTAssertEqual(hits.count, 3)
        let scores = hits.map { ($0["score"] as! NSNumber).doubleValue }
        XCTAssertEqual(scores, scores.sorted(by: >), "hits best first")

        let output = dir.appendingPathComponent("metrics.json").path
        let eval = try Command.srdpr(["evaluate", "--model", model, "--corpus", corpus, "--qrels", qrels,
                                      "--k", "1,5,100", "--max-length", "64", "--output", output, "--index", index])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let metrics = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(metrics["questions"] as? Int, 12)
        let accuracy = try XCTUnwrap(metrics["top_k_accuracy"] as? [String: Double])
        XCTAssertEqual(Set(accuracy.keys), ["1", "5", "100"])
        // k = 100 exceeds the corpus (fewer than 100 passages): every question finds a positive.
        XCTAssertEqual(accuracy["100"], 1.0)
        XCTAssertTrue(eval.stderr.contains("top-k acc"), eval.stderr)
        XCTAssertEqual(try String(contentsOfFile: output, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
                       eval.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func testIndexOfAnotherModelIsRefusedNamingBoth() throws {
        let tiny = Fixtures.url("tiny-bert").path
        let other = dir.appendingPathComponent("other-model").path
        let made = try Command.srdpr(["init-model", "--config", Fixtures.packageRoot.appendingPathComponent("demo/model").path,
                                      "--output", other, "--seed", "7"])
        XCTAssertEqual(made.status, 0, made.stderr)
        let (corpus, qrels) = try smallData(questions: 2, distractors: 5)
        let index = dir.appendingPathComponent("index").path
        XCTAssertEqual(try Command.srdpr(["index", "--model", tiny, "--corpus", corpus, "--output", index, "--max-length", "64"]).status, 0)
        let search = try Command.srdpr(["search", "--model", other, "--index", index, "--queries", qrels, "--max-length", "64"])
        XCTAssertNotEqual(search.status, 0)
        XCTAssertTrue(search.stderr.contains(tiny) && search.stderr.contains(other), search.stderr)
    }

    func testBadArguments() throws {
        let (corpus, qrels) = try smallData(questions: 1, distractors: 1)
        let badK = try Command.srdpr(["evaluate", "--model", Fixtures.url("tiny-bert").path, "--corpus", corpus,
                                      "--qrels", qrels, "--k", "1,zero"])
        XCTAssertNotEqual(badK.status, 0)
        XCTAssertTrue(badK.stderr.contains("--k"), badK.stderr)
        let missing = try Command.srdpr(["evaluate", "--model", dir.appendingPathComponent("nope").path,
                                         "--corpus", corpus, "--qrels", qrels])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("--model \(dir.appendingPathComponent("nope").path): no such file or directory"), missing.stderr)
    }
}
