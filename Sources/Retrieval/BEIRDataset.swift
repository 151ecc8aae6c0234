import Foundation
import Data

/// A BEIR dataset directory: `corpus.jsonl` (`{"_id", "title", "text"}`), `queries.jsonl`
/// (`{"_id", "text"}`) and `qrels/<split>.tsv` (`query-id corpus-id score`, a header line, tab
/// separated). A passage with score > 0 is relevant.
public struct BEIRDataset {
    public let directory: String

    public init(directory: String) throws {
        self.directory = directory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RetrievalError.cannotRead(path: directory, reason: "not a directory (a BEIR dataset is a directory with corpus.jsonl, queries.jsonl and qrels/)")
        }
    }

    public var corpusPath: String { directory + "/corpus.jsonl" }
    public var queriesPath: String { directory + "/queries.jsonl" }
    public func qrelsPath(split: String) -> String { directory + "/qrels/\(split).tsv" }

    /// Relevant passages per query, queries in order of first appearance in the qrels file.
    public func relevant(split: String) throws -> [(queryID: String, passageIDs: [String])] {
        let path = qrelsPath(split: split)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RetrievalError.cannotRead(path: path, reason: FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file (is --split right?)")
        }
        var order: [String] = [], relevant: [String: [String]] = [:]
        var lineNumber = 0
        for raw in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            if lineNumber == 1 && fields.first == "query-id" { continue }
            guard fields.count >= 3, let score = Double(fields[2]) else {
                throw RetrievalError.badLine(path: path, line: lineNumber, reason: "expected query-id<TAB>corpus-id<TAB>score")
            }
            guard score > 0 else { continue }
            if relevant[fields[0]] == nil { order.append(fields[0]); relevant[fields[0]] = [] }
            relevant[fields[0]]!.append(fields[1])
        }
        return order.map { ($0, relevant[$0]!) }
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
