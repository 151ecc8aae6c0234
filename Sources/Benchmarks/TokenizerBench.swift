import Data
import Foundation

/// Errors of the tokenizer benchmark's input.
public enum TokenizerBenchError: Error, CustomStringConvertible {
    case badCorpusLine(path: String, line: Int, reason: String)
    case emptyCorpus(path: String)

    public var description: String {
        switch self {
        case .badCorpusLine(let path, let line, let reason): return "\(path):\(line): \(reason)"
        case .emptyCorpus(let path): return "\(path) has no documents"
        }
    }
}

/// `srdpr bench tokenizer`: one-thread BertTokenizer throughput on real text. Each document of a
/// JSON-lines corpus (`{"title": ..., "text": ...}`) is encoded as the pair (title, text), like a
/// context passage in training; tokens/s counts every id produced, special tokens included.
public enum TokenizerBench {
    /// Reads (title, text) pairs from JSON lines; `title` may be missing.
    public static func loadCorpus(path: String, limit: Int? = nil) throws -> [(String, String)] {
        let file = try JSONLinesFile(path: path)
        var docs: [(String, String)] = []
        try file.forEachLine { lineNumber, bytes, _ in
            if let limit, docs.count >= limit { return }
            let value: JSONValue
            do { value = try JSONParser.parse(bytes) } catch {
                throw TokenizerBenchError.badCorpusLine(path: path, line: lineNumber, reason: "not JSON: \(error)")
            }
            guard let text = value["text"]?.stringValue else {
                throw TokenizerBenchError.badCorpusLine(path: path, line: lineNumber, reason: "no string \"text\"")
            }
            docs.append((value["title"]?.stringValue ?? "", text))
        }
        guard !docs.isEmpty else { throw TokenizerBenchError.emptyCorpus(path: path) }
        return docs
    }

    /// Encodes the corpus `repeats` times and reports the best pass, as a JSON-ready dictionary.
    public static func run(tokenizer: BertTokenizer, documents: [(String, String)], repeats: Int) -> [String: Any] {
        var best = Double.infinity
        var tokens = 0
        var checksum = 0
        for _ in 0..<max(1, repeats) {
            var count = 0, sum = 0
            let start = DispatchTime.now().uptimeNanoseconds
            for (title, text) in documents {
                let ids = tokenizer.encode(title, textPair: text)
                count += ids.count
                sum &+= Int(ids.last ?? 0) &+ Int(ids[ids.count / 2])
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = min(best, seconds)
            tokens = count
            checksum = sum
        }
        return [
            "bench": "tokenizer", "impl": "srdpr-swift", "threads": 1,
            "documents": documents.count, "tokens": tokens, "seconds": best,
            "tokens_per_s": Double(tokens) / best, "docs_per_s": Double(documents.count) / best,
            "checksum": checksum,
        ]
    }
}
