/// JSON text for plain pickled data, formatted like Python's `json.dumps(value, ensure_ascii=False)`
/// (so a sample prints with its keys in the order of the source JSON line).
extension PickleValue {
    /// One line of JSON, or nil if the value holds something JSON cannot express
    /// (bytes, sets, non-string keys, code references).
    public var jsonText: String? { orderedJSON?.serialized() }

    /// The value for the JSON writer, or nil if JSON cannot express it.
    public var orderedJSON: OrderedJSON? {
        switch self {
        case .none: return .null
        case .bool(let b): return .bool(b)
        case .int(let v): return .int(v)
        case .bigInt(let big): return .literal(big.description)
        case .float(let v): return .pythonFloat(v)
        case .string(let s): return .string(s)
        case .list(let items), .tuple(let items):
            var converted: [OrderedJSON] = []
            for item in items {
                guard let json = item.orderedJSON else { return nil }
                converted.append(json)
            }
            return .array(converted)
        case .dict(let entries):
            var members: [(String, OrderedJSON)] = []
            for entry in entries {
                guard case .string(let key) = entry.key, let value = entry.value.orderedJSON else { return nil }
                members.append((key, value))
            }
            return .object(members)
        case .bytes, .set, .frozenSet, .global, .object, .persistentID:
            return nil
        }
    }
}
