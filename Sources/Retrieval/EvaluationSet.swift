import Data
import Foundation

/// A query with the id it keeps from input to run file and per-query metrics.
public struct EvaluationQuery: Equatable, Sendable {
    public var id: String
    public var text: String

    public init(id: String, text: String) {
        self.id = id
        self.text = text
    }
}

/// The queries to evaluate and their graded judgements, from any of the accepted forms:
/// - today's JSON lines `{"question", "positive_ids"}` (ids "1", "2", ... in line order unless the
///   line has an `"id"`, `"qid"` or `"_id"`; grade 1 for each positive);
/// - a queries file (`{"_id", "text"}` as BEIR, or `{"id", "question"}`) with TREC qrels or a BEIR
///   qrels TSV;
/// - a BEIR directory and split (``BEIRDataset``).
///
/// Only judged queries are evaluated (as trec_eval does); queries of the queries file without any
/// judgement and judgements naming a query that is not in it are counted, so a caller can warn.
public struct EvaluationSet: Equatable, Sendable {
    public var queries: [EvaluationQuery]
    /// Grade by document id, one entry per query of `queries` (same order).
    public var judgements: [[String: Int]]
    /// Queries of the queries file that no judgement names (not evaluated).
    public var queriesWithoutJudgement: [String] = []
    /// Query ids of the qrels that the queries file does not hold (their judgements are unused).
    public var judgedUnknownQueries: [String] = []

    public init(queries: [EvaluationQuery], judgements: [[String: Int]]) {
        precondition(queries.count == judgements.count)
        self.queries = queries
        self.judgements = judgements
    }

    /// Today's `{"question", "positive_ids"}` lines.
    public static func load(qrelsJSONLines path: String) throws -> EvaluationSet {
        var queries: [EvaluationQuery] = [], judgements: [[String: Int]] = []
        var seen: [String: Int] = [:]
        for (line, object) in try JSONLines.objects(path: path) {
            guard let question = JSONLines.string(object["question"]) else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"question\" is missing or not a string")
            }
            guard case .array(let list)? = object["positive_ids"] else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"positive_ids\" is missing or not a list")
            }
            var grades: [String: Int] = [:]
            for value in list {
                guard let id = JSONLines.id(value) else {
                    throw RetrievalError.badLine(path: path, line: line, reason: "\"positive_ids\" holds a value that is not a string or integer id")
                }
                grades[id] = 1
            }
            let id = JSONLines.id(object["id"] ?? object["qid"] ?? object["_id"]) ?? String(queries.count + 1)
            if let first = seen[id] {
                throw RetrievalError.badLine(path: path, line: line, reason: "query id \"\(id)\" repeats line \(first)'s")
            }
            seen[id] = line
            queries.append(EvaluationQuery(id: id, text: question))
            judgements.append(grades)
        }
        return EvaluationSet(queries: queries, judgements: judgements)
    }

    /// A queries file with separate qrels (TREC or BEIR TSV).
    public static func load(queries queriesPath: String, qrels qrelsPath: String, format: Judgements.Format) throws -> EvaluationSet {
        let all = try loadQueries(path: queriesPath)
        let judged = try Judgements.load(path: qrelsPath, format: format)
        let known = Set(all.map(\.id))
        var set = EvaluationSet(queries: [], judgements: [])
        for query in all {
            if let grades = judged.grades[query.id] {
                set.queries.append(query)
                set.judgements.append(grades)
            } else {
                set.queriesWithoutJudgement.append(query.id)
            }
        }
        set.judgedUnknownQueries = judged.queryOrder.filter { !known.contains($0) }
        return set
    }

    /// Queries as JSON lines: `{"_id", "text"}` (BEIR) or `{"id"/"qid", "question"/"text"}`;
    /// without an id, "1", "2", ... in line order. Ids must be unique.
    public static func loadQueries(path: String) throws -> [EvaluationQuery] {
        var queries: [EvaluationQuery] = []
        var seen: [String: Int] = [:]
        for (line, object) in try JSONLines.objects(path: path) {
            guard let text = JSONLines.string(object["question"] ?? object["text"]) else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"question\" (or BEIR's \"text\") is missing or not a string")
            }
            let rawID = object["_id"] ?? object["id"] ?? object["qid"]
            if rawID != nil && JSONLines.id(rawID) == nil {
                throw RetrievalError.badLine(path: path, line: line, reason: "the query id is not a string or integer")
            }
            let id = JSONLines.id(rawID) ?? String(queries.count + 1)
            if let first = seen[id] {
                throw RetrievalError.badLine(path: path, line: line, reason: "query id \"\(id)\" repeats line \(first)'s")
            }
            seen[id] = line
            queries.append(EvaluationQuery(id: id, text: text))
        }
        return queries
    }
}
