import XCTest
import Retrieval

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
