import XCTest
import Retrieval
import Foundation
import TestSupport

final class RetrievalMetricsTests: XCTestCase {
    func testHandMadeCasesWithKnownValues() {
        let rankings: [[String]] = [
            ["a", "b", "c", "d"],   // one positive at rank 2
            ["x", "y", "z"],        // two positives, ranks 1 and 3
            ["p", "q"],             // positive never retrieved
            ["m", "n"],             // no positive at all in the qrels: a miss
        ]
        let positives: [Set<String>] = [["b"], ["x", "z"], ["zz"], []]
        let m = RetrievalMetrics.compute(rankings: rankings, positives: positives, ks: [1, 2, 3, 100])
        XCTAssertEqual(m.questions, 4)
        XCTAssertEqual(m.topKAccuracy[1]!, 1.0 / 4, accuracy: 1e-12)
        XCTAssertEqual(m.topKAccuracy[2]!, 2.0 / 4, accuracy: 1e-12)
        XCTAssertEqual(m.topKAccuracy[3]!, 2.0 / 4, accuracy: 1e-12)
        // k larger than every ranking: same as "anywhere in the ranking".
        XCTAssertEqual(m.topKAccuracy[100]!, 2.0 / 4, accuracy: 1e-12)
        XCTAssertEqual(m.recall[1]!, (0 + 0.5 + 0 + 0) / 4, accuracy: 1e-12)
        XCTAssertEqual(m.recall[2]!, (1 + 0.5 + 0 + 0) / 4, accuracy: 1e-12)
        XCTAssertEqual(m.recall[3]!, (1 + 1 + 0 + 0) / 4, accuracy: 1e-12)
        XCTAssertEqual(m.mrrAt10, (0.5 + 1 + 0 + 0) / 4, accuracy: 1e-12)
        let ndcg1 = (1 / log2(3.0)) / 1
        let ndcg2 = (1 + 1 / log2(4.0)) / (1 + 1 / log2(3.0))
        XCTAssertEqual(m.ndcgAt10, (ndcg1 + ndcg2) / 4, accuracy: 1e-12)
    }

    func testMRRAndNDCGStopAtTen() {
        let ranking = (0..<20).map { "p\($0)" }
        let m = RetrievalMetrics.compute(rankings: [ranking], positives: [["p10"]], ks: [10, 11])
        XCTAssertEqual(m.mrrAt10, 0)          // rank 11
        XCTAssertEqual(m.ndcgAt10, 0)
        XCTAssertEqual(m.topKAccuracy[10], 0)
        XCTAssertEqual(m.topKAccuracy[11], 1)
    }

    func testDuplicateIDsInARankingCountOnce() {
        let m = RetrievalMetrics.compute(rankings: [["a", "a", "b"]], positives: [["a", "b"]], ks: [2])
        XCTAssertEqual(m.recall[2]!, 0.5, accuracy: 1e-12)
    }

    func testJSONShape() throws {
        let m = RetrievalMetrics.compute(rankings: [["a"]], positives: [["a"]], ks: [1, 5])
        let object = m.jsonObject(seconds: 1.5)
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(text.contains("\"top_k_accuracy\":{\"1\":1,\"5\":1}"), text)
        XCTAssertTrue(text.contains("\"mrr@10\":1"), text)
        XCTAssertTrue(text.contains("\"ndcg@10\":1"), text)
        XCTAssertTrue(text.contains("\"questions\":1"), text)
    }
}

/// Graded relevance, ties and unjudged documents, by hand and against pytrec_eval (trec_eval's code).
final class GradedMetricsTests: XCTestCase {
    /// Three queries: graded judgements with a judged-but-unretrieved positive, a grade-0 judgement
    /// and unjudged hits; ties in score (broken by document id, descending, as trec_eval does,
    /// including "doc9" before "doc10": byte order, not numeric); a query with only a grade-0 judgement.
    let queries = [EvaluationQuery(id: "q1", text: ""), EvaluationQuery(id: "q2", text: ""), EvaluationQuery(id: "q3", text: "")]
    let judgements: [[String: Int]] = [["d1": 2, "d3": 1, "d7": 1, "d9": 0], ["x": 1, "doc10": 2], ["z": 0]]
    let hits: [[RankedHit]] = [
        [RankedHit(id: "d2", score: 0.9), RankedHit(id: "d1", score: 0.9), RankedHit(id: "d3", score: 0.5),
         RankedHit(id: "d4", score: 0.5), RankedHit(id: "d9", score: 0.4), RankedHit(id: "d5", score: 0.3)],
        [RankedHit(id: "b", score: 1), RankedHit(id: "doc10", score: 1), RankedHit(id: "doc9", score: 1), RankedHit(id: "x", score: 1)],
        [RankedHit(id: "z", score: 2), RankedHit(id: "y", score: 1)],
    ]
    let ks = [1, 2, 3, 5]

    func rankings() -> [[RankedHit]] { hits.map { $0.sorted(by: RankedHit.ranksBefore) } }

    func testTieOrderIsScoreThenDocumentIDDescending() {
        XCTAssertEqual(rankings()[0].map(\.id), ["d2", "d1", "d4", "d3", "d9", "d5"])
        XCTAssertEqual(rankings()[1].map(\.id), ["x", "doc9", "doc10", "b"])
    }

    func testByHand() {
        let m = RetrievalMetrics.compute(rankings: rankings().map { $0.map(\.id) }, judgements: judgements,
                                         queryIDs: queries.map(\.id), ks: ks)
        XCTAssertEqual(m.queriesWithoutJudgedPositive, 1)
        let q1 = m.perQuery[0]
        XCTAssertEqual(q1.judgedPositives, 3)
        XCTAssertEqual(q1.firstRelevantRank, 2)
        XCTAssertEqual(q1.success[1], 0)
        XCTAssertEqual(q1.reciprocalRank[2]!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(q1.recall[5]!, 2.0 / 3, accuracy: 1e-12)
        // DCG@5 = 2/log2(3) + 1/log2(5); the ideal order is grades 2, 1, 1.
        XCTAssertEqual(q1.ndcg[5]!, (2 / log2(3.0) + 1 / log2(5.0)) / (2 + 1 / log2(3.0) + 1 / log2(4.0)), accuracy: 1e-12)
        let q2 = m.perQuery[1]
        XCTAssertEqual(q2.reciprocalRank[1], 1)
        // x (1) at rank 1, doc10 (2) at rank 3; ideal: 2 then 1.
        XCTAssertEqual(q2.ndcg[3]!, (1 + 2 / log2(4.0)) / (2 + 1 / log2(3.0)), accuracy: 1e-12)
        XCTAssertEqual(m.perQuery[2].ndcg[5], 0)
        XCTAssertEqual(m.topKAccuracy[1]!, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.mrr[10]!, (0.5 + 1 + 0) / 3, accuracy: 1e-12)
    }

    func testEqualsPytrecEval() throws {
        let dir = try Fixtures.temporaryDirectory("srdpr-graded")
        defer { try? FileManager.default.removeItem(at: dir) }
        let runPath = dir.appendingPathComponent("run.trec").path, qrelsPath = dir.appendingPathComponent("qrels.txt").path
        try TRECRun.write(path: runPath, queries: queries, rankings: rankings(), tag: "hand")
        var qrels = ""
        for (query, grades) in zip(queries, judgements) {
            for (doc, grade) in grades.sorted(by: { $0.key < $1.key }) { qrels += "\(query.id) 0 \(doc) \(grade)\n" }
        }
        try qrels.write(toFile: qrelsPath, atomically: true, encoding: .utf8)
        // Our metrics from the same files the reference reads.
        let set = try EvaluationSet.load(queries: try writeQueries(dir), qrels: qrelsPath, format: .trec)
        XCTAssertEqual(set.judgements, judgements)
        let ours = RetrievalMetrics.compute(rankings: rankings().map { $0.map(\.id) }, judgements: set.judgements,
                                            queryIDs: set.queries.map(\.id), ks: ks)
        let reference = try TRECEvalReference.evaluate(qrels: qrelsPath, run: runPath, ks: ks)
        try assertEqual(ours, reference, ks: ks)
    }

    func writeQueries(_ dir: URL) throws -> String {
        let path = dir.appendingPathComponent("queries.jsonl").path
        try queries.map { #"{"_id": "\#($0.id)", "text": "question \#($0.id)"}"# }.joined(separator: "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// Every per-query metric and every mean of `ours` equals pytrec_eval's within 1e-6.
func assertEqual(_ ours: RetrievalMetrics, _ reference: [String: [String: Double]], ks: [Int],
                 file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(Set(reference.keys), Set(ours.perQuery.map(\.queryID)), "the same queries are evaluated", file: file, line: line)
    var compared = 0
    for query in ours.perQuery {
        let theirs = try XCTUnwrap(reference[query.queryID], file: file, line: line)
        for k in ks {
            for (name, value) in [("success", query.success[k]), ("recall", query.recall[k]), ("ndcg", query.ndcg[k]), ("mrr", query.reciprocalRank[k])] {
                let expected = try XCTUnwrap(theirs["\(name)@\(k)"], file: file, line: line)
                XCTAssertEqual(try XCTUnwrap(value), expected, accuracy: 1e-6, "\(name)@\(k) of query \(query.queryID)", file: file, line: line)
                compared += 1
            }
        }
    }
    let n = Double(ours.perQuery.count)
    for k in ks {
        func mean(_ name: String) -> Double { reference.values.reduce(0) { $0 + $1["\(name)@\(k)"]! } / n }
        XCTAssertEqual(ours.topKAccuracy[k]!, mean("success"), accuracy: 1e-6, "top-k accuracy@\(k)", file: file, line: line)
        XCTAssertEqual(ours.recall[k]!, mean("recall"), accuracy: 1e-6, "recall@\(k)", file: file, line: line)
        XCTAssertEqual(ours.ndcg[k]!, mean("ndcg"), accuracy: 1e-6, "ndcg@\(k)", file: file, line: line)
        XCTAssertEqual(ours.mrr[k]!, mean("mrr"), accuracy: 1e-6, "mrr@\(k)", file: file, line: line)
    }
    XCTAssertGreaterThan(compared, 0, file: file, line: line)
}
