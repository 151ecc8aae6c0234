import Foundation
import Yams

/// `--config FILE.yaml`: training parameters as (nested) YAML, turned into the key=value arguments
/// `TrainingConfig.parse` takes (nested mappings become dotted keys; key=value arguments given
/// after them override them).
public enum ConfigFile {
    /// The parameters of the YAML file at `path`, sorted by key. An unset optional (YAML null or
    /// `~`) keeps the default and is left out.
    public static func parameters(yamlFile path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigFileError(path: path, reason: "cannot read the file (missing or not UTF-8)")
        }
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch {
            throw ConfigFileError(path: path, reason: "not valid YAML: \(error)")
        }
        guard let root else { return [] }
        guard let mapping = root as? [String: Any] else {
            throw ConfigFileError(path: path, reason: "the top level must be a mapping of parameter names to values")
        }
        var out: [String] = []
        func scalar(_ v: Any, key: String) throws -> String {
            switch v {
            case let b as Bool: return b ? "true" : "false"
            case let n as Int: return String(n)
            case let d as Double: return String(d)
            case let s as String: return s
            case let list as [Any]: return "[" + (try list.map { try scalar($0, key: key) }).joined(separator: ",") + "]"
            case is NSNull: return "null"
            default: throw ConfigFileError(path: path, reason: "\(key) has a value of unsupported type (\(type(of: v)))")
            }
        }
        func walk(_ node: [String: Any], prefix: String) throws {
            for key in node.keys.sorted() {
                let value = node[key]!
                let full = prefix.isEmpty ? key : prefix + "." + key
                if let child = value as? [String: Any] { try walk(child, prefix: full) } else {
                    if value is NSNull { continue }
                    out.append("\(full)=\(try scalar(value, key: full))")
                }
            }
        }
        try walk(mapping, prefix: "")
        return out
    }
}

/// A `--config` file that cannot be used; names the file and what is wrong.
public struct ConfigFileError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String

    public var description: String { "--config \(path): \(reason)" }
}
