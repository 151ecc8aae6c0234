import Data

/// A passage collection `{"id", "title", "text"}` per line, ids unique.
public struct Corpus {
    public var path: String
    public var ids: [String]
    public var passages: [Passage]
    public var rowByID: [String: Int]

    public static func load(path: String) throws -> Corpus {
        var ids: [String] = [], passages: [Passage] = [], rowByID: [String: Int] = [:], lineOfID: [String: Int] = [:]
        try JSONLines.forEachObject(path: path) { line, object in
            let record = try CorpusRecord(object, path: path, line: line)
            if let first = lineOfID[record.id] {
                throw RetrievalError.duplicateID(path: path, id: record.id, firstLine: first, line: line)
            }
            lineOfID[record.id] = line
            rowByID[record.id] = ids.count
            ids.append(record.id)
            passages.append(Passage(title: record.title, text: record.text))
        }
        return Corpus(path: path, ids: ids, passages: passages, rowByID: rowByID)
    }
}

/// One corpus line: `{"id", "title", "text"}`, or BEIR's `{"_id", "title", "text"}`; the id a
/// string or an integer, the title optional.
public struct CorpusRecord: Equatable {
    public var id: String
    public var title: String
    public var text: String

    public init(id: String, title: String, text: String) {
        self.id = id
        self.title = title
        self.text = text
    }

    init(_ object: JSONValue, path: String, line: Int) throws {
        let idField = object["id"] != nil ? "id" : "_id"
        guard let id = JSONLines.id(object[idField]) else {
            throw RetrievalError.badLine(path: path, line: line, reason: object[idField] == nil
                ? "field \"id\" (or BEIR's \"_id\") is missing" : "field \"\(idField)\" is not a string or an integer")
        }
        guard let text = JSONLines.string(object["text"]) else {
            throw RetrievalError.badLine(path: path, line: line, reason: "field \"text\" is missing or not a string")
        }
        let title = try JSONLines.title(object, path: path, line: line, describe: "field \"title\"")
        self.init(id: id, title: title, text: text)
    }

    /// Parses one corpus line (bytes of a JSON object).
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, path: String, line: Int) throws -> CorpusRecord {
        try CorpusRecord(JSONLines.object(bytes, path: path, line: line), path: path, line: line)
    }
}

/// Evaluation questions `{"question": s, "positive_ids": [...]}` per line.
public struct Qrels {
    public var questions: [String]
    public var positiveIDs: [[String]]

    public static func load(path: String) throws -> Qrels {
        var questions: [String] = [], positives: [[String]] = []
        try JSONLines.forEachObject(path: path) { line, object in
            guard let question = JSONLines.string(object["question"]) else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"question\" is missing or not a string")
            }
            guard case .array(let list)? = object["positive_ids"] else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"positive_ids\" is missing or not a list")
            }
            var ids: [String] = []
            for value in list {
                guard let id = JSONLines.id(value) else {
                    throw RetrievalError.badLine(path: path, line: line, reason: "\"positive_ids\" holds a value that is not a string or integer id")
                }
                ids.append(id)
            }
            questions.append(question)
            positives.append(ids)
        }
        return Qrels(questions: questions, positiveIDs: positives)
    }
}

extension Qrels {
    /// Only the questions of a JSON-lines file (`{"question": s, ...}` per line), for `srdpr search`.
    public static func loadQuestions(path: String) throws -> [String] {
        try JSONLines.objects(path: path).map { line, object in
            guard let question = JSONLines.string(object["question"]) else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"question\" is missing or not a string")
            }
            return question
        }
    }
}
