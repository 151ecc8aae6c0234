import XCTest
import Foundation
import TestSupport

/// `srdpr evaluate`'s numbers equal pytrec_eval's (trec_eval's code) on the run file it writes:
/// the FAQ study's held-out questions against the whole corpus, and a BEIR-layout dataset made
/// from the FAQ data with graded judgements. tiny-bert keeps it fast: the rankings are poor, but
/// parity is about scoring them, and ties and misses are where metrics differ.
final class TRECEvalParityTests: XCTestCase {
    var dir: URL!
    let ks = [1, 5, 20, 100]
    let faq = Fixtures.sharedData.appendingPathComponent("faq")

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-trec-parity") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func jsonLines(_ path: URL) throws -> [[String: Any]] {
        try String(contentsOf: path, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func write(_ lines: [String], _ name: String) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Runs `evaluate` with --run and --per-query, then compares every per-query number and every
    /// mean with pytrec_eval on the run file. Returns the summary.
    func evaluateAndCompare(_ input: [String], qrels: URL, beirTSV: Bool, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let run = dir.appendingPathComponent("run.trec"), perQuery = dir.appendingPathComponent("per-query.jsonl")
        let result = try Command.srdpr(["evaluate", "--model", Fixtures.url("tiny-bert").path, "--max-length", "32"] + input
            + ["--k", ks.map(String.init).joined(separator: ","), "--run", run.path, "--per-query", perQuery.path])
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let reference = try TRECEvalReference.evaluate(qrels: qrels.path, run: run.path, ks: ks, beirTSV: beirTSV)
        let ours = try jsonLines(perQuery)
        XCTAssertEqual(Set(ours.map { $0["query_id"] as! String }), Set(reference.keys), file: file, line: line)
        XCTAssertEqual(summary["questions"] as? Int, ours.count, file: file, line: line)
        var nonZero = 0
        for row in ours {
            let theirs = try XCTUnwrap(reference[row["query_id"] as! String])
            for k in ks {
                for name in ["success", "recall", "ndcg", "mrr"] {
                    let value = try XCTUnwrap((row["\(name)@\(k)"] as? NSNumber)?.doubleValue, "\(name)@\(k)", file: file, line: line)
                    XCTAssertEqual(value, theirs["\(name)@\(k)"]!, accuracy: 1e-6, "\(name)@\(k) of query \(row["query_id"]!)", file: file, line: line)
                    if value > 0 { nonZero += 1 }
                }
            }
        }
        XCTAssertGreaterThan(nonZero, 0, "some metrics are non-zero, so the comparison is not all zeros", file: file, line: line)
        let n = Double(reference.count)
        func mean(_ name: String) -> Double { reference.values.reduce(0) { $0 + $1[name]! } / n }
        let accuracy = try XCTUnwrap(summary["top_k_accuracy"] as? [String: Double]), recall = try XCTUnwrap(summary["recall"] as? [String: Double])
        for k in ks {
            XCTAssertEqual(accuracy[String(k)]!, mean("success@\(k)"), accuracy: 1e-6, file: file, line: line)
            XCTAssertEqual(recall[String(k)]!, mean("recall@\(k)"), accuracy: 1e-6, file: file, line: line)
            XCTAssertEqual((summary["ndcg@\(k)"] as! NSNumber).doubleValue, mean("ndcg@\(k)"), accuracy: 1e-6, file: file, line: line)
            XCTAssertEqual((summary["mrr@\(k)"] as! NSNumber).doubleValue, mean("mrr@\(k)"), accuracy: 1e-6, file: file, line: line)
        }
        // The run holds max(k) = 100 hits per query, ranks 1... in trec_eval's order.
        let runLines = try String(contentsOf: run, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(runLines.count, 100 * ours.count, file: file, line: line)
        XCTAssertEqual(runLines.first?.split(separator: " ").count, 6, file: file, line: line)
        return summary
    }

    /// The FAQ study's held-out questions (the first 3 of every 20, scripts/faq-study.sh) against
    /// all 5,770 passages; binary judgements as the study uses them.
    func testFAQHeldOutQuestionsEqualPytrecEval() throws {
        let lines = try String(contentsOf: faq.appendingPathComponent("train_qrels.jsonl"), encoding: .utf8)
            .split(separator: "\n").enumerated().filter { $0.offset % 20 < 3 }.map { String($0.element) }
        XCTAssertEqual(lines.count, 81)
        let qrelsJSON = try write(lines, "dev_qrels.jsonl")
        // The same judgements in TREC form, query ids 1, 2, ... as evaluate numbers them.
        var trec: [String] = []
        for (i, line) in lines.enumerated() {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for id in object["positive_ids"] as! [String] { trec.append("\(i + 1) 0 \(id) 1") }
        }
        let qrelsTREC = try write(trec, "dev_qrels.trec")
        let summary = try evaluateAndCompare(["--corpus", faq.appendingPathComponent("corpus.jsonl").path, "--qrels", qrelsJSON.path],
                                             qrels: qrelsTREC, beirTSV: false)
        XCTAssertEqual(summary["passages"] as? Int, 5770)
        XCTAssertEqual(summary["queries_without_judged_positive"] as? Int, 0)
    }

    /// A BEIR directory made from the FAQ data: corpus.jsonl with "_id", queries.jsonl with the
    /// queries of two splits, qrels/test.tsv with a header and graded judgements (the first
    /// positive passage of a question 2, the others 1).
    func makeBEIR() throws -> URL {
        let qrelLines = try String(contentsOf: faq.appendingPathComponent("train_qrels.jsonl"), encoding: .utf8).split(separator: "\n")
        var queries: [String] = [], test = ["query-id\tcorpus-id\tscore"], devSplit = ["query-id\tcorpus-id\tscore"]
        var needed = Set<String>()
        for (i, line) in qrelLines.prefix(60).enumerated() {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = "faq-\(i)"
            let text = String(data: try JSONSerialization.data(withJSONObject: [object["question"] as! String], options: []), encoding: .utf8)!.dropFirst().dropLast()
            queries.append(#"{"_id": "\#(id)", "text": \#(text)}"#)
            for (j, passage) in (object["positive_ids"] as! [String]).enumerated() {
                needed.insert(passage)
                if i < 40 { test.append("\(id)\t\(passage)\t\(j == 0 ? 2 : 1)") } else { devSplit.append("\(id)\t\(passage)\t1") }
            }
        }
        var corpus: [String] = [], distractors = 0
        for line in try String(contentsOf: faq.appendingPathComponent("corpus.jsonl"), encoding: .utf8).split(separator: "\n") {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = object["id"] as! String
            guard needed.contains(id) || distractors < 400 else { continue }
            if !needed.contains(id) { distractors += 1 }
            corpus.append(String(line).replacingOccurrences(of: #"{"id": "#, with: #"{"_id": "#))
        }
        let beir = dir.appendingPathComponent("faq-beir")
        _ = try write(corpus, "faq-beir/corpus.jsonl")
        _ = try write(queries, "faq-beir/queries.jsonl")
        _ = try write(test, "faq-beir/qrels/test.tsv")
        _ = try write(devSplit, "faq-beir/qrels/dev.tsv")
        return beir
    }

    func testBEIRDatasetWithGradedJudgementsEqualsPytrecEval() throws {
        let beir = try makeBEIR()
        let summary = try evaluateAndCompare(["--beir", beir.path, "--split", "test"],
                                             qrels: beir.appendingPathComponent("qrels/test.tsv"), beirTSV: true)
        XCTAssertEqual(summary["questions"] as? Int, 40, "only the test split's queries")

        // index and search read the same directory; search's run equals evaluate's.
        let index = dir.appendingPathComponent("index").path, searchRun = dir.appendingPathComponent("search.trec")
        let model = Fixtures.url("tiny-bert").path
        let built = try Command.srdpr(["index", "--model", model, "--max-length", "32", "--beir", beir.path, "--output", index])
        XCTAssertEqual(built.status, 0, built.stderr)
        let search = try Command.srdpr(["search", "--model", model, "--max-length", "32", "--index", index, "--beir", beir.path,
                                        "--split", "test", "--top-k", "100", "--run", searchRun.path, "--output", dir.appendingPathComponent("hits.jsonl").path])
        XCTAssertEqual(search.status, 0, search.stderr)
        XCTAssertEqual(try String(contentsOf: searchRun, encoding: .utf8),
                       try String(contentsOf: dir.appendingPathComponent("run.trec"), encoding: .utf8))
        let hits = try jsonLines(dir.appendingPathComponent("hits.jsonl"))
        XCTAssertEqual(hits.first?["query_id"] as? String, "faq-0", "query ids are kept")
    }

    /// TREC qrels with a queries file: the same numbers as the BEIR form of the same data.
    func testTRECQrelsWithQueriesFile() throws {
        let beir = try makeBEIR()
        let tsv = try String(contentsOf: beir.appendingPathComponent("qrels/test.tsv"), encoding: .utf8).split(separator: "\n").dropFirst()
        let trec = try write(tsv.map { $0.split(separator: "\t").enumerated().map { $0.offset == 1 ? "0 \($0.element)" : String($0.element) }.joined(separator: " ") },
                             "test.trec")
        _ = try evaluateAndCompare(["--corpus", beir.appendingPathComponent("corpus.jsonl").path,
                                    "--queries", beir.appendingPathComponent("queries.jsonl").path, "--qrels-trec", trec.path],
                                   qrels: trec, beirTSV: false)
    }

    /// Bad input: a missing split, unknown ids (counted), unjudged queries (counted), an unwritable run path.
    func testBadInputIsNamedOrCounted() throws {
        let beir = try makeBEIR()
        let model = Fixtures.url("tiny-bert").path
        let noSplit = try Command.srdpr(["evaluate", "--model", model, "--beir", beir.path, "--split", "train"])
        XCTAssertNotEqual(noSplit.status, 0)
        XCTAssertTrue(noSplit.stderr.contains("no qrels/train.tsv") && noSplit.stderr.contains("dev, test"), noSplit.stderr)

        let badRun = try Command.srdpr(["evaluate", "--model", model, "--beir", beir.path, "--run", "/nonexistent-dir/run.trec"])
        XCTAssertNotEqual(badRun.status, 0)
        XCTAssertTrue(badRun.stderr.contains("/nonexistent-dir/run.trec") && badRun.stderr.contains("does not exist"), badRun.stderr)
        XCTAssertFalse(badRun.stderr.contains("index:"), "refused before encoding anything")

        // An earlier result at an output path is left whole by a run that fails after the check.
        let earlier = try write(["{\"mrr@10\": 0.5}"], "earlier-metrics.json")
        let earlierRun = try write(["q Q0 d 1 1.0 earlier"], "earlier.trec")
        let failing = try Command.srdpr(["evaluate", "--model", "/nonexistent-model", "--beir", beir.path,
                                         "--output", earlier.path, "--run", earlierRun.path])
        XCTAssertNotEqual(failing.status, 0)
        XCTAssertEqual(try String(contentsOf: earlier, encoding: .utf8), "{\"mrr@10\": 0.5}\n", "--output untouched")
        XCTAssertEqual(try String(contentsOf: earlierRun, encoding: .utf8), "q Q0 d 1 1.0 earlier\n", "--run untouched")

        // Queries: two judged, one judged only with documents outside the corpus, one without judgement;
        // the qrels also judge a query that is not in the queries file.
        let queries = try write([#"{"_id": "a", "text": "How do I install packages?"}"#, #"{"_id": "b", "text": "What is Perl?"}"#,
                                 #"{"_id": "c", "text": "unanswerable"}"#, #"{"_id": "d", "text": "never judged"}"#], "q.jsonl")
        let qrels = try write(["a 0 debian/faq/software#003.0 1", "b 0 perl/perlfaq1#003.0 2", "b 0 no-such-passage 1",
                               "c 0 gone-1 1", "zzz 0 perl/perlfaq1#003.0 1"], "q.trec")
        let result = try Command.srdpr(["evaluate", "--model", model, "--max-length", "32", "--corpus", beir.appendingPathComponent("corpus.jsonl").path,
                                        "--queries", queries.path, "--qrels-trec", qrels.path, "--k", "1,5"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(summary["questions"] as? Int, 3)
        XCTAssertEqual(summary["unknown_judged_documents"] as? Int, 2)
        XCTAssertEqual(summary["queries_without_judged_positive"] as? Int, 1)
        XCTAssertEqual(summary["unjudged_queries"] as? Int, 1)
        XCTAssertEqual(summary["judged_unknown_queries"] as? Int, 1)
        for expected in ["2 judgement(s) name documents that are not in the corpus", "1 query(ies) have no judgement",
                         "judge 1 query id(s) that are not among the queries", "1 of 3 queries have no judged positive"] {
            XCTAssertTrue(result.stderr.contains(expected), "warning '\(expected)' in: \(result.stderr)")
        }

        let malformed = try write(["a 0 debian/faq/software#003.0"], "bad.trec")
        let bad = try Command.srdpr(["evaluate", "--model", model, "--corpus", beir.appendingPathComponent("corpus.jsonl").path,
                                     "--queries", queries.path, "--qrels-trec", malformed.path])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("\(malformed.path):1:"), bad.stderr)
    }
}
