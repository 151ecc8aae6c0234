/// JSON text for plain pickled data, formatted like Python's `json.dumps(value, ensure_ascii=False)`
/// (so a sample prints with its keys in the order of the source JSON line).
extension PickleValue {
    /// One line of JSON, or nil if the value holds something JSON cannot express
    /// (bytes, sets, non-string keys, code references).
    public var jsonText: String? {
        var out = ""
        return appendJSON(to: &out) ? out : nil
    }

    private func appendJSON(to out: inout String) -> Bool {
        switch self {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let v): out += String(v)
        case .bigInt(let big): out += big.description
        case .float(let v):
            if v.isNaN { out += "NaN" } else if v.isInfinite { out += v < 0 ? "-Infinity" : "Infinity" } else { out += "\(v)" }
        case .string(let s): JSONText.appendString(s, to: &out)
        case .list(let items), .tuple(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                guard item.appendJSON(to: &out) else { return false }
            }
            out += "]"
        case .dict(let entries):
            out += "{"
            for (i, entry) in entries.enumerated() {
                if i > 0 { out += ", " }
                guard case .string(let key) = entry.key else { return false }
                JSONText.appendString(key, to: &out)
                out += ": "
                guard entry.value.appendJSON(to: &out) else { return false }
            }
            out += "}"
        case .bytes, .set, .frozenSet, .global, .object, .persistentID:
            return false
        }
        return true
    }
}
