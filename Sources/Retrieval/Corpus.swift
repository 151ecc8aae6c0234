import Data

/// A passage collection `{"id", "title", "text"}` per line (BEIR's `{"_id", "title", "text"}` too), ids unique.
public struct Corpus {
    public var path: String
    public var ids: [String]
    public var passages: [Passage]
    public var rowByID: [String: Int]

    public static func load(path: String) throws -> Corpus {
        var ids: [String] = [], passages: [Passage] = [], rowByID: [String: Int] = [:], lineOfID: [String: Int] = [:]
        for (line, object) in try JSONLines.objects(path: path) {
            guard let id = JSONLines.id(object["id"] ?? object["_id"]) else {
                throw RetrievalError.badLine(path: path, line: line, reason: "field \"id\" (or BEIR's \"_id\") is missing or not a string/integer")
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
