import Foundation

/// The pooling a sentence-transformers model directory declares: its Pooling module's
/// `config.json` (the module listed in `modules.json`, usually `1_Pooling/`).
public enum SentenceTransformersPooling {
    /// Why a directory's pooling cannot be used; the message names the file and what to do.
    public struct Unsupported: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String {
            "\(path): \(reason); srdpr pools with [CLS] (pooling=cls) or the token mean (pooling=mean): set one explicitly"
        }
    }

    /// The Pooling module's config.json of `directory`, or nil when the directory is not a
    /// sentence-transformers model (no modules.json naming a Pooling module, no 1_Pooling/).
    public static func configURL(in directory: URL) -> URL? {
        let fm = FileManager.default
        if let data = fm.contents(atPath: directory.appendingPathComponent("modules.json").path),
           let modules = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] {
            for module in modules {
                guard let type = module["type"] as? String, type.hasSuffix(".Pooling"), let path = module["path"] as? String else { continue }
                let url = directory.appendingPathComponent(path).appendingPathComponent("config.json")
                if fm.fileExists(atPath: url.path) { return url }
            }
        }
        let fallback = directory.appendingPathComponent("1_Pooling/config.json")
        return fm.fileExists(atPath: fallback.path) ? fallback : nil
    }

    /// The pooling `directory` was trained with, nil when it declares none.
    /// - Throws: `Unsupported` for an unreadable file or a mode other than cls or mean (max,
    ///   weighted mean, last token, several at once).
    public static func pooling(of directory: URL) throws -> (pooling: Pooling, file: URL)? {
        guard let url = configURL(in: directory) else { return nil }
        return (try pooling(config: url), url)
    }

    /// The pooling a Pooling module's `config.json` at `url` declares.
    /// - Throws: `Unsupported` as `pooling(of:)`.
    public static func pooling(config url: URL) throws -> Pooling {
        guard let data = FileManager.default.contents(atPath: url.path),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw Unsupported(path: url.path, reason: "not a readable JSON object")
        }
        // sentence-transformers writes the pooling_mode_* flags; a hand-written config may give
        // only the constructor's "pooling_mode": "mean" (or "cls", "max", ...).
        if json.keys.allSatisfy({ !$0.hasPrefix("pooling_mode_") }), let mode = json["pooling_mode"] as? String {
            guard let pooling = Pooling(rawValue: mode) else {
                throw Unsupported(path: url.path, reason: "pooling_mode \(mode) is not supported")
            }
            return pooling
        }
        let modes = json.keys.filter { $0.hasPrefix("pooling_mode_") && (json[$0] as? Bool) == true }.sorted()
        switch modes {
        case ["pooling_mode_cls_token"]: return .cls
        case ["pooling_mode_mean_tokens"]: return .mean
        case []: throw Unsupported(path: url.path, reason: "no pooling_mode_* flag is true")
        default:
            let names = modes.map { String($0.dropFirst("pooling_mode_".count)) }.joined(separator: " + ")
            throw Unsupported(path: url.path, reason: "pooling \(names) is not supported")
        }
    }
}
