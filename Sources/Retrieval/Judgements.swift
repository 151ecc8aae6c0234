import Foundation

/// Graded relevance judgements: grade by document id, by query id, in the order the queries first
/// appear. Read from TREC qrels (`qid iter docid rel`, whitespace-separated) or BEIR's
/// `qrels/<split>.tsv` (`query-id<TAB>corpus-id<TAB>score` after a header line).
public struct Judgements: Equatable, Sendable {
    public var queryOrder: [String] = []
    public var grades: [String: [String: Int]] = [:]

    public init() {}

    public enum Format: Sendable {
        /// `qid 0 docid rel`.
        case trec
        /// `query-id corpus-id score`, an optional header line first.
        case beirTSV
    }

    /// TREC qrels (4 fields a line) or a BEIR TSV (3 fields), from the first non-empty line.
    public static func detectFormat(path: String) throws -> Format {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RetrievalError.cannotRead(path: path, reason: FileManager.default.fileExists(atPath: path)
                                            ? "permission denied or not a regular file" : "no such file")
        }
        let first = String(decoding: data.prefix(4096), as: UTF8.self).split(separator: "\n")
            .first { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? ""
        switch first.split(whereSeparator: { $0 == " " || $0 == "\t" }).count {
        case 4: return .trec
        case 3: return .beirTSV
        default:
            throw RetrievalError.badLine(path: path, line: 1, reason: "neither TREC qrels (qid 0 docid relevance) nor a BEIR qrels TSV (query-id corpus-id score)")
        }
    }

    /// Reads a qrels file. Errors name the file and line; the same (query, document) judged twice
    /// with different grades is an error.
    public static func load(path: String, format: Format) throws -> Judgements {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RetrievalError.cannotRead(path: path, reason: FileManager.default.fileExists(atPath: path)
                                            ? "permission denied or not a regular file" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RetrievalError.cannotRead(path: path, reason: "not UTF-8 text")
        }
        var judgements = Judgements()
        var lineOfPair: [String: Int] = [:]
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let query: String, document: String, gradeText: String
            switch format {
            case .trec:
                guard fields.count == 4 else {
                    throw RetrievalError.badLine(path: path, line: lineNumber,
                                                 reason: "expected 4 fields \"qid iter docid relevance\" (TREC qrels), found \(fields.count)")
                }
                (query, document, gradeText) = (fields[0], fields[2], fields[3])
            case .beirTSV:
                guard fields.count == 3 else {
                    throw RetrievalError.badLine(path: path, line: lineNumber,
                                                 reason: "expected 3 fields \"query-id corpus-id score\" (BEIR qrels), found \(fields.count)")
                }
                // BEIR's files start with the header "query-id corpus-id score".
                if lineNumber == 1 && Int(fields[2]) == nil { continue }
                (query, document, gradeText) = (fields[0], fields[1], fields[2])
            }
            guard let grade = Int(gradeText) else {
                throw RetrievalError.badLine(path: path, line: lineNumber, reason: "relevance \"\(gradeText)\" is not an integer")
            }
            let pair = query + "\u{0}" + document
            if let first = lineOfPair[pair] {
                if judgements.grades[query]?[document] != grade {
                    throw RetrievalError.badLine(path: path, line: lineNumber,
                        reason: "query \(query) and document \(document) were already judged \(judgements.grades[query]![document]!) on line \(first)")
                }
                continue
            }
            lineOfPair[pair] = lineNumber
            if judgements.grades[query] == nil { judgements.queryOrder.append(query) }
            judgements.grades[query, default: [:]][document] = grade
        }
        return judgements
    }
}
