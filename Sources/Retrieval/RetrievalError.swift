/// Errors of index building, search and evaluation, each naming the file, line or parameter.
public enum RetrievalError: Error, CustomStringConvertible, Equatable {
    case cannotRead(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case badLine(path: String, line: Int, reason: String)
    case duplicateID(path: String, id: String, firstLine: Int, line: Int)
    case badIndex(path: String, reason: String)
    case modelMismatch(index: String, indexModel: String, requestedModel: String)
    case corpusMismatch(index: String, reason: String)
    case invalidArgument(name: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "cannot read \(path): \(reason)"
        case let .cannotWrite(path, reason): return "cannot write \(path): \(reason)"
        case let .badLine(path, line, reason): return "\(path):\(line): \(reason)"
        case let .duplicateID(path, id, firstLine, line):
            return "\(path):\(line): duplicate passage id \"\(id)\" (first seen on line \(firstLine)); ids must be unique"
        case let .badIndex(path, reason): return "index \(path) is not usable: \(reason)"
        case let .modelMismatch(index, indexModel, requestedModel):
            return "index \(index) was built with model \(indexModel), but the search uses model \(requestedModel); rebuild the index with `srdpr index`"
        case let .corpusMismatch(index, reason):
            return "index \(index) was started on another corpus (\(reason)); remove it or choose another --output"
        case let .invalidArgument(name, reason): return "\(name): \(reason)"
        }
    }
}
