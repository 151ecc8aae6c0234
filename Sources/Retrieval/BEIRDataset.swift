import Data
import Foundation

/// A dataset in BEIR's layout: `DIR/corpus.jsonl` (`{"_id", "title", "text"}`), `DIR/queries.jsonl`
/// (`{"_id", "text"}`) and `DIR/qrels/<split>.tsv` (`query-id<TAB>corpus-id<TAB>score` after a
/// header line; graded, score > 0 = relevant). One reader for evaluation and for anything else that
/// reads BEIR directories.
public struct BEIRDataset: Sendable {
    public let directory: String
    public let split: String

    public var corpusPath: String { directory + "/corpus.jsonl" }
    public var queriesPath: String { directory + "/queries.jsonl" }
    public var qrelsPath: String { directory + "/qrels/\(split).tsv" }

    /// Checks the three files exist; a missing split names the splits the directory has.
    public init(directory: String, split: String) throws {
        self.directory = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        self.split = split
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: self.directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RetrievalError.cannotRead(path: directory, reason: "no such directory (a BEIR dataset is a directory with corpus.jsonl, queries.jsonl and qrels/)")
        }
        for path in [corpusPath, queriesPath] where !fm.fileExists(atPath: path) {
            throw RetrievalError.cannotRead(path: path, reason: "no such file: a BEIR directory holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
        }
        guard fm.fileExists(atPath: qrelsPath) else {
            let splits = ((try? fm.contentsOfDirectory(atPath: self.directory + "/qrels")) ?? [])
                .filter { $0.hasSuffix(".tsv") }.map { String($0.dropLast(4)) }.sorted()
            throw RetrievalError.invalidArgument(name: "--split \(split)",
                reason: "\(directory) has no qrels/\(split).tsv; its splits: " + (splits.isEmpty ? "none (no qrels/*.tsv)" : splits.joined(separator: ", ")))
        }
    }

    public func loadCorpus() throws -> Corpus { try Corpus.load(path: corpusPath) }

    /// The split's judged queries with their grades (queries of other splits are not evaluated).
    public func loadEvaluationSet() throws -> EvaluationSet {
        var set = try EvaluationSet.load(queries: queriesPath, qrels: qrelsPath, format: .beirTSV)
        // queries.jsonl holds every split's queries: those of other splits are expected, not a problem.
        set.queriesWithoutJudgement = []
        return set
    }
}

extension BEIRDataset {
    /// The split's relevant passages (grade > 0) per query, queries in order of first appearance in
    /// the qrels file, passages by decreasing grade then id: the positives `create-dataset --from beir` writes.
    public func relevant() throws -> [(queryID: String, passageIDs: [String])] {
        let judgements = try Judgements.load(path: qrelsPath, format: .beirTSV)
        return judgements.queryOrder.compactMap { query in
            let grades = judgements.grades[query] ?? [:]
            let positives = grades.filter { $0.value > 0 }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map(\.key)
            return positives.isEmpty ? nil : (query, positives)
        }
    }

    /// The text of the queries whose ids are in `ids` (others are skipped without being kept).
    public func queries(ids: Set<String>) throws -> [String: String] {
        var result: [String: String] = [:]
        try JSONLines.forEachObject(path: queriesPath) { line, object in
            guard let id = JSONLines.id(object["_id"] ?? object["id"]) else {
                throw RetrievalError.badLine(path: queriesPath, line: line, reason: "field \"_id\" is missing or not a string/integer")
            }
            guard ids.contains(id) else { return }
            guard let text = JSONLines.string(object["text"]) else {
                throw RetrievalError.badLine(path: queriesPath, line: line, reason: "field \"text\" is missing or not a string")
            }
            result[id] = text
        }
        return result
    }

    /// The passages whose ids are in `ids`, read in one streaming pass over the corpus.
    public func passages(ids: Set<String>) throws -> [String: CorpusRecord] {
        var result: [String: CorpusRecord] = [:]
        try JSONLines.forEachObject(path: corpusPath) { line, object in
            let record = try CorpusRecord(object, path: corpusPath, line: line)
            if ids.contains(record.id) { result[record.id] = record }
        }
        return result
    }
}
