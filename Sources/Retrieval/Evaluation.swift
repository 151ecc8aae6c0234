import Data
import Foundation

/// One retrieved document of a ranking.
public struct RankedHit: Equatable, Sendable {
    public var id: String
    public var score: Float

    public init(id: String, score: Float) {
        self.id = id
        self.score = score
    }

    /// The order of a ranking, trec_eval's: higher score first, equal scores by document id in
    /// descending byte order (trec_eval sorts its input so; the rank column of a run file is not
    /// used). Rankings are put in this order before they are scored or written, so our metrics and
    /// trec_eval's on our run file see the same ranking.
    public static func ranksBefore(_ a: RankedHit, _ b: RankedHit) -> Bool {
        if a.score != b.score { return a.score > b.score }
        return b.id.utf8.lexicographicallyPrecedes(a.id.utf8)
    }
}

/// `srdpr evaluate` and the dev-set evaluation during training: encode the queries, search the
/// passages, score the rankings against the judgements.
public struct Evaluation {
    public var metrics: RetrievalMetrics
    /// The evaluated queries and their rankings (best first, `RankedHit.ranksBefore` order).
    public var queries: [EvaluationQuery]
    public var rankings: [[RankedHit]]
    /// Judgements naming a document that is not in the corpus (dropped: it can never be retrieved).
    public var unknownJudgedDocuments: Int

    /// Hits kept per query: enough for every cut-off and for MRR/nDCG@10.
    public static func depth(ks: [Int]) -> Int { max(ks.max() ?? 10, 10) }

    /// Evaluates against a passage index built by `srdpr index` (or `evaluate` itself); `progress(done,
    /// total)` after each batch of queries.
    public static func run(encoder: PassageEncoder, index: PassageIndex, set: EvaluationSet, ks: [Int],
                           search: ExactSearch = ExactSearch(), queryBatch: Int = 64,
                           warn: (String) -> Void = { _ in }, progress: (Int, Int) -> Void = { _, _ in }) throws -> Evaluation {
        try run(encoder: encoder, passages: index.embeddings, ids: index.ids, dimension: index.meta.dimension,
                similarity: index.meta.similarity, set: set, ks: ks, search: search, queryBatch: queryBatch, warn: warn,
                progress: progress)
    }

    /// Evaluates against passage embeddings in memory: row-major [ids.count x dimension].
    public static func run(encoder: PassageEncoder, passages: UnsafeBufferPointer<Float>, ids: [String], dimension: Int,
                           similarity: SimilarityFunction, set: EvaluationSet, ks: [Int],
                           search: ExactSearch = ExactSearch(), queryBatch: Int = 64,
                           warn: (String) -> Void = { _ in }, progress: (Int, Int) -> Void = { _, _ in }) throws -> Evaluation {
        guard !ks.isEmpty, ks.allSatisfy({ $0 > 0 }) else {
            throw RetrievalError.invalidArgument(name: "--k", reason: "give one or more positive cut-offs, e.g. 1,5,20,100")
        }
        let judgements = checkedJudgements(set, corpusIDs: Set(ids), warn: warn)
        let depth = Self.depth(ks: ks)
        var rankings: [[RankedHit]] = []
        rankings.reserveCapacity(set.queries.count)
        for start in stride(from: 0, to: set.queries.count, by: max(1, queryBatch)) {
            let batch = set.queries[start..<min(start + max(1, queryBatch), set.queries.count)].map(\.text)
            let vectors = try encoder.encodeQuestions(batch)
            let hits = vectors.withUnsafeBufferPointer { q in
                search.search(queries: q, queryCount: batch.count, passages: passages, passageCount: ids.count,
                              dimension: dimension, k: depth, similarity: similarity)
            }
            for list in hits {
                rankings.append(list.map { RankedHit(id: ids[$0.row], score: $0.score) }.sorted(by: RankedHit.ranksBefore))
            }
            progress(rankings.count, set.queries.count)
        }
        let metrics = RetrievalMetrics.compute(rankings: rankings.map { $0.map(\.id) }, judgements: judgements.grades,
                                               queryIDs: set.queries.map(\.id), ks: ks)
        if metrics.queriesWithoutJudgedPositive > 0 {
            warn("\(metrics.queriesWithoutJudgedPositive) of \(metrics.questions) queries have no judged positive in the corpus; they score 0 (counted in the means)")
        }
        return Evaluation(metrics: metrics, queries: set.queries, rankings: rankings, unknownJudgedDocuments: judgements.unknown)
    }

    /// Drops judgements of documents outside the corpus, counting them, and warns about the
    /// set's own counts (unjudged queries, judgements of unknown queries).
    static func checkedJudgements(_ set: EvaluationSet, corpusIDs: Set<String>,
                                  warn: (String) -> Void) -> (grades: [[String: Int]], unknown: Int) {
        var unknown = 0, warned = 0
        var grades: [[String: Int]] = []
        for (query, judged) in zip(set.queries, set.judgements) {
            let missing = judged.keys.filter { !corpusIDs.contains($0) }.sorted()
            if !missing.isEmpty {
                unknown += missing.count
                if warned < 5 {
                    warn("query \(query.id): judged document(s) not in the corpus: \(missing.prefix(3).joined(separator: ", "))")
                    warned += 1
                }
            }
            grades.append(judged.filter { corpusIDs.contains($0.key) })
        }
        if unknown > 0 { warn("\(unknown) judgement(s) name documents that are not in the corpus; they are dropped") }
        if !set.queriesWithoutJudgement.isEmpty {
            warn("\(set.queriesWithoutJudgement.count) query(ies) have no judgement and are not evaluated (e.g. \(set.queriesWithoutJudgement.prefix(3).joined(separator: ", ")))")
        }
        if !set.judgedUnknownQueries.isEmpty {
            warn("the qrels judge \(set.judgedUnknownQueries.count) query id(s) that are not among the queries (e.g. \(set.judgedUnknownQueries.prefix(3).joined(separator: ", "))); their judgements are unused")
        }
        return (grades, unknown)
    }
}
