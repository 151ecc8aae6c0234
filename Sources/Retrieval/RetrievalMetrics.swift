import Foundation

/// DPR's top-k accuracy plus the usual IR metrics, from ranked passage ids per question.
///
/// Relevance is binary: a passage is relevant when its id is among the question's positives.
public struct RetrievalMetrics: Equatable, Sendable {
    public var questions: Int
    /// Fraction of questions with at least one positive among the first k hits.
    public var topKAccuracy: [Int: Double]
    /// Mean over questions of |positives in the first k| / |positives|.
    public var recall: [Int: Double]
    /// Mean reciprocal rank of the first positive, 0 when it is not in the first 10.
    public var mrrAt10: Double
    /// Binary-relevance nDCG over the first 10 hits (log2 discount).
    public var ndcgAt10: Double

    /// - Parameters:
    ///   - rankings: for each question, hit ids best first (at least max(ks) and 10 of them when
    ///     the corpus has that many).
    ///   - positives: for each question, its relevant ids. A question with none counts as a miss
    ///     everywhere (it can never be answered), so the metrics are not inflated by dropping it.
    ///   - ks: the cut-offs for top-k accuracy and recall.
    public static func compute(rankings: [[String]], positives: [Set<String>], ks: [Int]) -> RetrievalMetrics {
        precondition(rankings.count == positives.count, "one ranking per question")
        let n = rankings.count
        var hitsAtK = [Int: Double](), recallAtK = [Int: Double]()
        for k in ks { hitsAtK[k] = 0; recallAtK[k] = 0 }
        var mrr = 0.0, ndcg = 0.0
        for (ranking, relevant) in zip(rankings, positives) where !relevant.isEmpty {
            // Rank (1-based) of every relevant hit, in order.
            var relevantRanks: [Int] = []
            var seen = Set<String>()
            for (i, id) in ranking.enumerated() where relevant.contains(id) && seen.insert(id).inserted {
                relevantRanks.append(i + 1)
            }
            for k in ks {
                let found = relevantRanks.prefix { $0 <= k }.count
                if found > 0 { hitsAtK[k]! += 1 }
                recallAtK[k]! += Double(found) / Double(relevant.count)
            }
            if let first = relevantRanks.first, first <= 10 { mrr += 1 / Double(first) }
            var dcg = 0.0
            for rank in relevantRanks where rank <= 10 { dcg += 1 / log2(Double(rank) + 1) }
            var ideal = 0.0
            for rank in 1...min(relevant.count, 10) { ideal += 1 / log2(Double(rank) + 1) }
            ndcg += dcg / ideal
        }
        let denominator = Double(max(n, 1))
        return RetrievalMetrics(
            questions: n,
            topKAccuracy: hitsAtK.mapValues { $0 / denominator },
            recall: recallAtK.mapValues { $0 / denominator },
            mrrAt10: mrr / denominator,
            ndcgAt10: ndcg / denominator)
    }

    /// The JSON object `srdpr evaluate` prints (keys of the k-maps as strings, ascending).
    public func jsonObject(seconds: Double, extra: [String: Any] = [:]) -> [String: Any] {
        func keyed(_ map: [Int: Double]) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: map.map { (String($0.key), $0.value) })
        }
        var object: [String: Any] = [
            "questions": questions,
            "top_k_accuracy": keyed(topKAccuracy),
            "recall": keyed(recall),
            "mrr@10": mrrAt10,
            "ndcg@10": ndcgAt10,
            "seconds": seconds,
        ]
        for (key, value) in extra { object[key] = value }
        return object
    }

    /// A small table for humans (stderr).
    public func table() -> String {
        func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        var lines = ["questions: \(questions)", pad("k", 6) + pad("top-k acc", 11) + pad("recall", 11)]
        for k in topKAccuracy.keys.sorted() {
            lines.append(pad(String(k), 6) + pad(String(format: "%.4f", topKAccuracy[k]!), 11)
                         + pad(String(format: "%.4f", recall[k]!), 11))
        }
        lines.append(String(format: "MRR@10 %.4f   nDCG@10 %.4f", mrrAt10, ndcgAt10))
        return lines.joined(separator: "\n")
    }
}
