import Foundation

/// `srdpr evaluate`: encode the questions, search the index, score the rankings.
public struct Evaluation {
    public var metrics: RetrievalMetrics
    /// qrels ids that are not in the corpus (warned about; they can never be retrieved).
    public var unknownPositiveIDs: Int
    /// Questions none of whose positives are in the corpus (counted as misses).
    public var questionsWithoutKnownPositive: Int

    /// - Parameter queryBatch: questions encoded at once.
    public static func run(encoder: PassageEncoder, index: PassageIndex, qrels: Qrels, ks: [Int],
                           search: ExactSearch = ExactSearch(), queryBatch: Int = 64,
                           warn: (String) -> Void = { _ in }, progress: (Int, Int) -> Void = { _, _ in }) throws -> Evaluation {
        guard let maxK = ks.max(), ks.allSatisfy({ $0 > 0 }) else {
            throw RetrievalError.invalidArgument(name: "--k", reason: "give one or more positive cut-offs, e.g. 1,5,20,100")
        }
        let known = Set(index.ids)
        var unknown = 0, withoutKnown = 0
        var positives: [Set<String>] = []
        for (i, ids) in qrels.positiveIDs.enumerated() {
            let missing = ids.filter { !known.contains($0) }
            if !missing.isEmpty {
                unknown += missing.count
                if unknown - missing.count < 5 {
                    warn("question \(i + 1): positive id(s) not in the corpus: \(missing.prefix(3).joined(separator: ", "))")
                }
            }
            let present = Set(ids.filter { known.contains($0) })
            if present.isEmpty { withoutKnown += 1 }
            positives.append(present)
        }
        if unknown > 0 {
            warn("\(unknown) positive id(s) of the qrels are not in the corpus; \(withoutKnown) question(s) have no positive in it and count as misses")
        }

        let depth = max(maxK, 10)
        var rankings: [[String]] = []
        rankings.reserveCapacity(qrels.questions.count)
        for start in stride(from: 0, to: qrels.questions.count, by: queryBatch) {
            let questions = Array(qrels.questions[start..<min(start + queryBatch, qrels.questions.count)])
            let vectors = try encoder.encodeQuestions(questions)
            let hits = vectors.withUnsafeBufferPointer { q in
                search.search(queries: q, queryCount: questions.count, passages: index.embeddings,
                              passageCount: index.meta.encodedRows, dimension: index.meta.dimension,
                              k: depth, similarity: index.meta.similarity)
            }
            for list in hits { rankings.append(list.map { index.ids[$0.row] }) }
            progress(rankings.count, qrels.questions.count)
        }
        let metrics = RetrievalMetrics.compute(rankings: rankings, positives: positives, ks: ks)
        return Evaluation(metrics: metrics, unknownPositiveIDs: unknown, questionsWithoutKnownPositive: withoutKnown)
    }
}
