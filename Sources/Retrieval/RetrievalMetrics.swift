import Foundation

/// The metrics of one query (what `--per-query` writes, one JSON line each).
public struct QueryMetrics: Equatable, Sendable {
    public var queryID: String
    /// Judged documents with relevance > 0 (among the documents that can be retrieved).
    public var judgedPositives: Int
    /// Rank (1-based) of the first relevant hit, nil when none was retrieved.
    public var firstRelevantRank: Int?
    /// 1 when a relevant document is among the first k hits (DPR's top-k accuracy, trec_eval's success@k).
    public var success: [Int: Double]
    public var recall: [Int: Double]
    /// 1 / rank of the first relevant hit when it is within k, else 0.
    public var reciprocalRank: [Int: Double]
    /// nDCG with graded gains (gain = relevance grade, log2 discount), as trec_eval's ndcg_cut.
    public var ndcg: [Int: Double]

    public func jsonObject() -> [String: Any] {
        var object: [String: Any] = ["query_id": queryID, "judged_positives": judgedPositives,
                                     "first_relevant_rank": firstRelevantRank.map { $0 as Any } ?? NSNull()]
        for (k, v) in success { object["success@\(k)"] = v }
        for (k, v) in recall { object["recall@\(k)"] = v }
        for (k, v) in reciprocalRank { object["mrr@\(k)"] = v }
        for (k, v) in ndcg { object["ndcg@\(k)"] = v }
        return object
    }
}

/// DPR's top-k accuracy plus the usual IR metrics, from ranked passage ids per query and graded
/// judgements (relevance > 0 = relevant; documents without a judgement count as not relevant).
///
/// Means are over every evaluated query: a query without a judged positive scores 0 everywhere
/// (it can never be answered) and is counted in `queriesWithoutJudgedPositive`, so dropping it
/// never inflates the numbers. The definitions are trec_eval's (`success`, `recall`, `ndcg_cut`,
/// `recip_rank` on the first k hits); `RetrievalParityTests` checks them against pytrec_eval.
public struct RetrievalMetrics: Equatable, Sendable {
    public var questions: Int
    /// The cut-offs asked for; nDCG and MRR are also given at 10.
    public var ks: [Int]
    /// Fraction of queries with at least one relevant document among the first k hits.
    public var topKAccuracy: [Int: Double]
    /// Mean over queries of |relevant in the first k| / |relevant|.
    public var recall: [Int: Double]
    /// Mean reciprocal rank of the first relevant hit within k.
    public var mrr: [Int: Double]
    /// Mean nDCG@k with graded gains.
    public var ndcg: [Int: Double]
    public var queriesWithoutJudgedPositive: Int
    public var perQuery: [QueryMetrics]

    public var mrrAt10: Double { mrr[10] ?? 0 }
    public var ndcgAt10: Double { ndcg[10] ?? 0 }

    /// Every cut-off a summary holds: the requested ones and 10.
    static func cutoffs(_ ks: [Int]) -> [Int] { Array(Set(ks + [10])).sorted() }

    /// - Parameters:
    ///   - rankings: for each query, hit ids best first (at least max(ks) and 10 of them when the
    ///     corpus has that many). An id repeated in a ranking counts once, at its first rank.
    ///   - judgements: for each query, relevance grade by document id (grades ≤ 0: not relevant).
    ///   - queryIDs: the queries' ids (default: "1", "2", ...).
    public static func compute(rankings: [[String]], judgements: [[String: Int]], queryIDs: [String]? = nil,
                               ks: [Int]) -> RetrievalMetrics {
        precondition(rankings.count == judgements.count, "one ranking per query")
        let ids = queryIDs ?? (1...max(rankings.count, 1)).prefix(rankings.count).map(String.init)
        let cuts = cutoffs(ks)
        var perQuery: [QueryMetrics] = []
        perQuery.reserveCapacity(rankings.count)
        var withoutPositive = 0
        for (i, (ranking, grades)) in zip(rankings, judgements).enumerated() {
            let metrics = query(id: ids[i], ranking: ranking, grades: grades, cutoffs: cuts)
            if metrics.judgedPositives == 0 { withoutPositive += 1 }
            perQuery.append(metrics)
        }
        let n = Double(max(rankings.count, 1))
        func mean(_ key: KeyPath<QueryMetrics, [Int: Double]>, _ k: Int) -> Double {
            perQuery.reduce(0) { $0 + ($1[keyPath: key][k] ?? 0) } / n
        }
        var accuracy = [Int: Double](), recall = [Int: Double](), mrr = [Int: Double](), ndcg = [Int: Double]()
        for k in cuts {
            mrr[k] = mean(\.reciprocalRank, k)
            ndcg[k] = mean(\.ndcg, k)
        }
        for k in Set(ks) {
            accuracy[k] = mean(\.success, k)
            recall[k] = mean(\.recall, k)
        }
        return RetrievalMetrics(questions: rankings.count, ks: Array(Set(ks)).sorted(), topKAccuracy: accuracy, recall: recall,
                                mrr: mrr, ndcg: ndcg, queriesWithoutJudgedPositive: withoutPositive, perQuery: perQuery)
    }

    /// Binary relevance: every id in `positives` has grade 1.
    public static func compute(rankings: [[String]], positives: [Set<String>], ks: [Int]) -> RetrievalMetrics {
        compute(rankings: rankings, judgements: positives.map { Dictionary(uniqueKeysWithValues: $0.map { ($0, 1) }) }, ks: ks)
    }

    static func query(id: String, ranking: [String], grades: [String: Int], cutoffs: [Int]) -> QueryMetrics {
        let positives = grades.values.filter { $0 > 0 }.count
        // Grade of the hit at each rank (0 for unjudged, non-relevant and repeated ids).
        var seen = Set<String>()
        let gains = ranking.map { id -> Int in seen.insert(id).inserted ? max(0, grades[id] ?? 0) : 0 }
        let firstRelevant = gains.firstIndex { $0 > 0 }.map { $0 + 1 }
        let ideal = grades.values.filter { $0 > 0 }.sorted(by: >)
        var metrics = QueryMetrics(queryID: id, judgedPositives: positives, firstRelevantRank: firstRelevant,
                                   success: [:], recall: [:], reciprocalRank: [:], ndcg: [:])
        for k in cutoffs {
            let found = gains.prefix(k).filter { $0 > 0 }.count
            metrics.success[k] = found > 0 ? 1 : 0
            metrics.recall[k] = positives > 0 ? Double(found) / Double(positives) : 0
            metrics.reciprocalRank[k] = firstRelevant.map { $0 <= k ? 1 / Double($0) : 0 } ?? 0
            var dcg = 0.0, idcg = 0.0
            for (i, gain) in gains.prefix(k).enumerated() where gain > 0 { dcg += Double(gain) / log2(Double(i) + 2) }
            for (i, gain) in ideal.prefix(k).enumerated() { idcg += Double(gain) / log2(Double(i) + 2) }
            metrics.ndcg[k] = idcg > 0 ? dcg / idcg : 0
        }
        return metrics
    }

    /// The summary object `srdpr evaluate` prints: `top_k_accuracy` and `recall` by k (keys as
    /// strings), `mrr@K` and `ndcg@K` for every cut-off and 10, and the count of queries without
    /// a judged positive.
    public func jsonObject(seconds: Double? = nil, extra: [String: Any] = [:]) -> [String: Any] {
        func keyed(_ map: [Int: Double]) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: map.map { (String($0.key), $0.value) })
        }
        var object: [String: Any] = [
            "questions": questions,
            "top_k_accuracy": keyed(topKAccuracy),
            "recall": keyed(recall),
            "queries_without_judged_positive": queriesWithoutJudgedPositive,
        ]
        for (k, v) in mrr { object["mrr@\(k)"] = v }
        for (k, v) in ndcg { object["ndcg@\(k)"] = v }
        if let seconds { object["seconds"] = seconds }
        for (key, value) in extra { object[key] = value }
        return object
    }

    /// Every summary number under a flat name (`mrr@10`, `ndcg@5`, `top_k_accuracy@20`,
    /// `recall@100`): what `keep_best` names and what TensorBoard's `eval/...` tags hold.
    public var flat: [String: Double] {
        var values: [String: Double] = [:]
        for (k, v) in mrr { values["mrr@\(k)"] = v }
        for (k, v) in ndcg { values["ndcg@\(k)"] = v }
        for (k, v) in topKAccuracy { values["top_k_accuracy@\(k)"] = v }
        for (k, v) in recall { values["recall@\(k)"] = v }
        return values
    }

    /// A small table for humans (stderr).
    public func table() -> String {
        func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        var lines = ["queries: \(questions)" + (queriesWithoutJudgedPositive > 0 ? " (\(queriesWithoutJudgedPositive) without a judged positive)" : ""),
                     pad("k", 6) + pad("top-k acc", 11) + pad("recall", 11) + pad("MRR", 11) + pad("nDCG", 11)]
        for k in Self.cutoffs(ks) {
            func cell(_ v: Double?) -> String { pad(v.map { String(format: "%.4f", $0) } ?? "-", 11) }
            lines.append(pad(String(k), 6) + cell(topKAccuracy[k]) + cell(recall[k]) + cell(mrr[k]) + cell(ndcg[k]))
        }
        return lines.joined(separator: "\n")
    }
}
