import XCTest
import Data
import Retrieval
import TestSupport

/// The miner's selection and guards on a small corpus with BM25: a planted duplicate of a positive
/// (same text, another id), a near-duplicate scoring above the ratio, a question whose positive is
/// missing from the corpus.
final class HardNegativeMinerTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-mine") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ lines: [String]) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    let positiveText = "a word boundary matches between a word character and a non word character in a perl regex"
    var corpusLines: [String] {
        [
            "{\"id\": \"p1\", \"title\": \"Perl regex\", \"text\": \"\(positiveText)\"}",
            "{\"id\": \"n1\", \"title\": \"Perl regex\", \"text\": \"a regex in perl matches text\"}",
            "{\"id\": \"dup\", \"title\": \"Copy\", \"text\": \"\(positiveText)\"}",
            "{\"id\": \"n2\", \"title\": \"Words\", \"text\": \"a word is a run of word characters\"}",
            "{\"id\": \"near\", \"title\": \"Perl regex\", \"text\": \"\(positiveText) too\"}",
            "{\"id\": \"n3\", \"title\": \"Boundary\", \"text\": \"the boundary of a field\"}",
            "{\"id\": \"n4\", \"title\": \"Python\", \"text\": \"python has a regex module\"}",
            "{\"id\": 0, \"title\": \"Debian\", \"text\": \"debian packages a perl\"}",
            "{\"id\": 1, \"title\": \"Unrelated\", \"text\": \"nothing to see here\"}",
        ]
    }

    func samples() -> [String] {
        [
            "{\"sample_id\": 7, \"questions\": [\"what does a word boundary match in a perl regex\"], \"answers\": [\"x\"], "
                + "\"positive_contexts\": [{\"title\": \"Perl regex\", \"text\": \"\(positiveText)\"}], "
                + "\"hardneg_contexts\": [{\"title\": \"old\", \"text\": \"old negative\"}]}",
            "{\"sample_id\": 3, \"questions\": [\"which word characters are in a perl regex\"], "
                + "\"positive_contexts\": [{\"title\": \"Gone\", \"text\": \"a perl passage that is not in the corpus\"}], \"hardneg_contexts\": []}",
        ]
    }

    func retriever() throws -> BM25Retriever {
        let corpus = try write("corpus.jsonl", corpusLines)
        let directory = dir.appendingPathComponent("idx").path
        try BM25IndexBuilder.build(corpusPath: corpus, directory: directory, analyzer: try .named("english"))
        return BM25Retriever(index: try BM25Index(directory: directory), parameters: BM25Parameters(), threads: 2)
    }

    func mine(_ options: MiningOptions, qrels: [String]? = nil) throws -> (summary: MiningSummary, output: [JSONValue], perQuestion: [[String: Any]]) {
        let input = try write("samples.jsonl", samples())
        let qrelsPath = try qrels.map { try write("qrels.jsonl", $0) }
        let output = dir.appendingPathComponent("out.jsonl").path, report = output + ".per-question.jsonl"
        let summary = try HardNegativeMiner(retriever: try retriever(), options: options)
            .run(inputPath: input, qrelsPath: qrelsPath, outputPath: output, perQuestionPath: report)
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        let perQuestion = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        return (summary, try lines.map { try JSONParser.parse(String($0)) }, perQuestion)
    }

    func negativeTexts(_ sample: JSONValue) -> [String] {
        guard case .array(let list)? = sample["hardneg_contexts"] else { return [] }
        return list.compactMap { $0["text"]?.stringValue }
    }

    func testGuardsDropPositivesDuplicatesAndNearDuplicates() throws {
        var options = MiningOptions()
        options.negatives = 3
        options.rangeMax = 9
        // Without the ratio: the positive (matched by title+text) and its planted duplicate are
        // dropped, the near-duplicate is the best negative.
        var run = try mine(options)
        XCTAssertEqual(run.output.count, 2)
        let first = run.perQuestion[0]
        XCTAssertEqual(first["negative_ids"] as? [String], ["near", "n1", "n3"])
        XCTAssertEqual((first["dropped"] as? [String: Int])?["positive_id"], 1)
        XCTAssertEqual((first["dropped"] as? [String: Int])?["positive_text"], 1)
        XCTAssertFalse(negativeTexts(run.output[0]).contains(positiveText))
        // The sample keeps its id, order and other fields; its old negatives are replaced.
        XCTAssertEqual(run.output[0]["sample_id"], .int(7))
        XCTAssertEqual(run.output[0]["answers"], .array([.string(Array("x".utf8))]))
        XCTAssertEqual(run.output[1]["sample_id"], .int(3))
        XCTAssertEqual(negativeTexts(run.output[0]).count, 3)
        XCTAssertNoThrow(try SampleJSON.validate(run.output[0]))
        // The question whose positive is not in the corpus: reported, mined all the same.
        XCTAssertEqual(run.perQuestion[1]["positives_missing_from_corpus"] as? Int, 1)
        XCTAssertEqual(run.summary.questionsWithMissingPositives, 1)
        XCTAssertEqual(run.summary.positivesMissing, 1)
        XCTAssertEqual(negativeTexts(run.output[1]).count, 3)

        // With --max-score-ratio 0.9 the near-duplicate (above 0.9 x the positive's score) goes.
        let positiveScore = try XCTUnwrap(first["best_positive_score"] as? Double)
        let candidates = try retriever().retrieve(questions: ["what does a word boundary match in a perl regex"], k: 9)[0]
        let nearScore = try XCTUnwrap(candidates.first { try retriever().passage(row: $0.row).id == "near" }?.score)
        XCTAssertGreaterThan(nearScore, 0.9 * positiveScore)
        options.maxScoreRatio = 0.9
        run = try mine(options)
        XCTAssertEqual(run.perQuestion[0]["negative_ids"] as? [String], ["n1", "n3", "n2"])
        XCTAssertEqual((run.perQuestion[0]["dropped"] as? [String: Int])?["score_ratio"], 1)
        XCTAssertEqual(run.summary.dropped[.scoreRatio], 1 + ((run.perQuestion[1]["dropped"] as? [String: Int])?["score_ratio"] ?? 0))
    }

    func testQrelsMatchPositivesByID() throws {
        var options = MiningOptions()
        options.negatives = 2
        options.rangeMax = 9
        let run = try mine(options, qrels: [
            "{\"question\": \"what does a word boundary match in a perl regex\", \"positive_ids\": [\"p1\"]}",
            "{\"question\": \"which word characters are in a perl regex\", \"positive_ids\": [\"missing\", 0]}",
        ])
        XCTAssertEqual(run.perQuestion[0]["negative_ids"] as? [String], ["near", "n1"])
        XCTAssertEqual(run.perQuestion[1]["positives_missing_from_corpus"] as? Int, 1)
        XCTAssertEqual(run.perQuestion[1]["positives_found_in_corpus"] as? Int, 1)
        XCTAssertFalse((run.perQuestion[1]["negative_ids"] as? [String] ?? []).contains("0"))
        // Qrels in another order are refused, naming the line, and no output is left.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("out.jsonl"))
        XCTAssertThrowsError(try mine(options, qrels: [
            "{\"question\": \"which word characters are in a perl regex\", \"positive_ids\": [\"p1\"]}",
            "{\"question\": \"what does a word boundary match in a perl regex\", \"positive_ids\": [\"p1\"]}",
        ])) { error in XCTAssertTrue("\(error)".contains("qrels.jsonl:1: question"), "\(error)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out.jsonl").path))
    }

    func testWindowMarginAndSampling() throws {
        var options = MiningOptions()
        options.negatives = 2
        options.rangeMin = 3
        options.rangeMax = 9
        let top = try mine(options)
        let all = try retriever().retrieve(questions: ["what does a word boundary match in a perl regex"], k: 9)[0]
        let windowIDs = try all.dropFirst(3).map { try retriever().passage(row: $0.row).id }
        XCTAssertEqual(top.perQuestion[0]["negative_ids"] as? [String], Array(windowIDs.prefix(2)))
        XCTAssertEqual(top.perQuestion[0]["candidates_in_window"] as? Int, windowIDs.count)

        options.rangeMin = 0
        options.sampling = .random
        options.negatives = 3
        let a = try mine(options), b = try mine(options)
        XCTAssertEqual(a.perQuestion[0]["negative_ids"] as? [String], b.perQuestion[0]["negative_ids"] as? [String])
        var seen = Set<[String]>()
        for seed in 1...8 {
            options.seed = seed
            let ids = try XCTUnwrap(try mine(options).perQuestion[0]["negative_ids"] as? [String])
            XCTAssertEqual(ids.count, 3)
            XCTAssertFalse(ids.contains("p1") || ids.contains("dup"))
            // Listed in rank order.
            let ranks = ids.map { id in all.firstIndex { (try? retriever().passage(row: $0.row).id) == id }! }
            XCTAssertEqual(ranks, ranks.sorted())
            seen.insert(ids)
        }
        XCTAssertGreaterThan(seen.count, 1, "random sampling should depend on the seed")

        // A margin larger than every score drops every candidate that is not a positive.
        options.sampling = .top
        options.margin = 1000
        let none = try mine(options)
        XCTAssertEqual(none.summary.negatives, 0)
        XCTAssertEqual(none.summary.questionsShort, 2)
    }

    func testBadOptionsAndEmptyInput() throws {
        var options = MiningOptions()
        options.rangeMax = 10
        XCTAssertThrowsError(try mine(options)) { error in
            XCTAssertEqual("\(error)", "--range-max: 10 is beyond the corpus, which holds 9 passages")
        }
        options.rangeMax = 5
        options.rangeMin = 5
        XCTAssertThrowsError(try mine(options)) { XCTAssertTrue("\($0)".hasPrefix("--range-max: must be above --range-min")) }
        options.rangeMin = 0
        options.negatives = 0
        XCTAssertThrowsError(try mine(options)) { XCTAssertTrue("\($0)".hasPrefix("--num-negatives")) }
        options.negatives = 1
        let input = try write("empty.jsonl", [""])
        let output = dir.appendingPathComponent("out.jsonl").path
        XCTAssertThrowsError(try HardNegativeMiner(retriever: try retriever(), options: options)
            .run(inputPath: input, qrelsPath: nil, outputPath: output, perQuestionPath: nil)) { error in
            XCTAssertEqual("\(error)", "cannot read \(input): no samples (the file is empty)")
        }
        let bad = try write("bad.jsonl", samples() + ["{\"sample_id\": 9, \"questions\": []}"])
        XCTAssertThrowsError(try HardNegativeMiner(retriever: try retriever(), options: options)
            .run(inputPath: bad, qrelsPath: nil, outputPath: output, perQuestionPath: nil)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(bad):3: missing field `positive_contexts`"), "\(error)")
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("out.jsonl") }
        XCTAssertEqual(left, [], "no output, complete or partial, after a failure")
    }
}
