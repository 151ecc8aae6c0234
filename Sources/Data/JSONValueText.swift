/// JSON text for a parsed value, formatted like Python's `json.dumps(value, ensure_ascii=False)`
/// (keys in their source order), so a line read, edited and written back keeps its form.
extension JSONValue {
    public var jsonText: String {
        var out = ""
        appendJSON(to: &out)
        return out
    }

    public func appendJSON(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let v): out += String(v)
        case .bigInt(let text): out += text
        case .float(let v):
            if v.isNaN { out += "NaN" } else if v.isInfinite { out += v < 0 ? "-Infinity" : "Infinity" } else { out += "\(v)" }
        case .string: JSONText.appendString(stringValue ?? "", to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                item.appendJSON(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, member) in members.enumerated() {
                if i > 0 { out += ", " }
                JSONText.appendString(String(decoding: member.key, as: UTF8.self), to: &out)
                out += ": "
                member.value.appendJSON(to: &out)
            }
            out += "}"
        }
    }
}
