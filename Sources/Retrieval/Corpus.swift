import Data

/// A passage collection `{"id", "title", "text"}` per line, ids unique.
public struct Corpus {
    public var path: String
    public var ids: [String]
    public var passages: [Passage]
    public var rowByID: [String: Int]

    public static func load(path: String) throws -> Corpus {
        var ids: [String] = [], passages: [Passage] = [], rowByID: [String: Int] = [:], lineOfID: [String: Int] = [:]
        for (line, object) in try JSONLines.objects(path: path) {
            guard let id = JSONLines.id(object["id"]) else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"id\" is missing or not a string/integer")
            }
            guard let text = object["text"] as? String else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"text\" is missing or not a string")
            }
            let title = object["title"] ?? ""
            guard let titleText = title as? String else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"title\" is not a string")
            }
            if let first = lineOfID[id] {
                throw RetrievalError.duplicateID(path: path, id: id, firstLine: first, line: line)
            }
            lineOfID[id] = line
            rowByID[id] = ids.count
            ids.append(id)
            passages.append(Passage(title: titleText, text: text))
        }
        return Corpus(path: path, ids: ids, passages: passages, rowByID: rowByID)
    }
}

/// Evaluation questions `{"question": s, "positive_ids": [...]}` per line.
public struct Qrels {
    public var questions: [String]
    public var positiveIDs: [[String]]

    public static func load(path: String) throws -> Qrels {
        var questions: [String] = [], positives: [[String]] = []
        for (line, object) in try JSONLines.objects(path: path) {
            guard let question = object["question"] as? String else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"question\" is missing or not a string")
            }
            guard let list = object["positive_ids"] as? [Any] else {
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
            guard let question = object["question"] as? String else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"question\" is missing or not a string")
            }
            return question
        }
    }
}
