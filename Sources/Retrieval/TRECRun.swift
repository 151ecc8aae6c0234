import Foundation

/// Writes rankings as a TREC run file, `qid Q0 docid rank score tag` per line, the form trec_eval,
/// pytrec_eval and ir-measures read. Scores are written as the shortest text that reads back to
/// the same float, so equal scores stay equal and the order trec_eval derives is ours.
public enum TRECRun {
    /// Checks that `path` can be written before any long work starts, without touching it: an
    /// earlier result at that path stays whole until the new one replaces it (every output is
    /// written to a temporary file and renamed), even if this run stops half-way.
    public static func checkWritable(_ path: String, option: String) throws {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists, isDirectory.boolValue {
            throw RetrievalError.cannotWrite(path: path, reason: "it is a directory (\(option) takes a file name)")
        }
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RetrievalError.cannotWrite(path: path, reason: "the directory \(parent) does not exist (\(option))")
        }
        // The rename at the end needs the directory writable; replacing a file needs nothing of the file.
        guard access(parent, W_OK | X_OK) == 0 else {
            throw RetrievalError.cannotWrite(path: path, reason: "permission denied on \(parent) (\(option))")
        }
    }

    /// The run's text. Ids with whitespace cannot be written in this format and are an error.
    public static func text(queries: [EvaluationQuery], rankings: [[RankedHit]], tag: String) throws -> String {
        var out = ""
        let safeTag = tag.isEmpty ? "srdpr" : tag.replacingOccurrences(of: " ", with: "_")
        for (query, ranking) in zip(queries, rankings) {
            try requireToken(query.id, what: "query id")
            for (rank, hit) in ranking.enumerated() {
                try requireToken(hit.id, what: "document id")
                out += "\(query.id) Q0 \(hit.id) \(rank + 1) \(hit.score) \(safeTag)\n"
            }
        }
        return out
    }

    public static func write(path: String, queries: [EvaluationQuery], rankings: [[RankedHit]], tag: String) throws {
        let body = try text(queries: queries, rankings: rankings, tag: tag)
        do { try body.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw RetrievalError.cannotWrite(path: path, reason: error.localizedDescription)
        }
    }

    private static func requireToken(_ id: String, what: String) throws {
        if id.isEmpty || id.contains(where: { $0.isWhitespace }) {
            throw RetrievalError.invalidArgument(name: "--run", reason: "\(what) \"\(id)\" is empty or holds whitespace, which a TREC run file cannot carry")
        }
    }
}
