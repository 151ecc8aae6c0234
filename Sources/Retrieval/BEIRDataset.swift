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
