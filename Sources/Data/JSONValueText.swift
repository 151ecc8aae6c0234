/// JSON text for a parsed value, formatted like Python's `json.dumps(value, ensure_ascii=False)`
/// (keys in their source order), so a line read, edited and written back keeps its form.
extension JSONValue {
    public var jsonText: String { orderedJSON.serialized() }

    /// The value for the JSON writer, keys in their source order.
    public var orderedJSON: OrderedJSON {
        switch self {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let v): return .int(v)
        case .bigInt(let text): return .literal(text)
        case .float(let v): return .pythonFloat(v)
        case .string: return .string(stringValue ?? "")
        case .array(let items): return .array(items.map(\.orderedJSON))
        case .object(let members):
            return .object(members.map { (String(decoding: $0.key, as: UTF8.self), $0.value.orderedJSON) })
        }
    }
}
