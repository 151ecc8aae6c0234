import Data
import Foundation

/// `srdpr encode --workers N` on one host: the inputs are cut into N shards of whole windows
/// (input ranges, so each window holds the inputs it holds in a one-process run and gives the
/// same bytes), each shard is embedded by a child `srdpr encode --rows` into files of its own,
/// and the shards' files are appended in order into the run's outputs. The shards live in
/// `OUTPUT.shards/` with what made them (`run.json`: input, model, options): a run that fails
/// keeps its finished shards, and the same command again embeds only the others.
public enum ShardedEncoding {
    public struct Shard: Equatable {
        /// Inputs (0-based, non-blank lines) the shard embeds.
        public var rows: Range<Int>
        /// The shard's embeddings file, and its ids file (nil when the run writes no ids).
        public var output: String
        public var ids: String?
    }

    /// The shards of `inputs` inputs among at most `workers`, cut on multiples of `window`, their
    /// files in `directory`.
    public static func plan(inputs: Int, window: Int, workers: Int, directory: String, format: EmbeddingFormat,
                            withIDs: Bool) -> [Shard] {
        ShardSplit.blockAligned(rows: 0..<inputs, blockRows: window, parts: workers).map { rows in
            let name = directory + "/inputs-\(rows.lowerBound)-\(rows.upperBound)"
            return Shard(rows: rows, output: name + "." + format.rawValue, ids: withIDs ? name + ".ids.jsonl" : nil)
        }
    }

    /// Makes `directory` ready for the run described by `identity` (input, model, options): its
    /// shards are kept when an earlier run of the same description made them, else removed.
    public static func prepare(directory: String, identity: [String: Any]) throws {
        let fm = FileManager.default
        let description = try JSONSerialization.data(withJSONObject: identity, options: [.sortedKeys, .withoutEscapingSlashes])
        let record = directory + "/run.json"
        if fm.fileExists(atPath: directory), fm.contents(atPath: record) != description {
            do { try fm.removeItem(atPath: directory) } catch {
                throw ModelError.ioError(file: directory, reason: "cannot remove the shards of another run: \(error)")
            }
        }
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if !fm.fileExists(atPath: record) { try description.write(to: URL(fileURLWithPath: record), options: .atomic) }
        } catch {
            throw ModelError.ioError(file: directory, reason: "cannot create the shards' directory: \(error)")
        }
    }

    /// A shard whose child finished: its outputs are committed (renamed into place) only at its
    /// end, the ids file last.
    public static func isFinished(_ shard: Shard) -> Bool {
        [shard.output, shard.ids].compactMap { $0 }.allSatisfy { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }

    /// What in `model` decides its embeddings: both encoders' weights and the settings, hashed.
    public static func fingerprint(of model: InferenceModel) -> String {
        var crc = CRC32C()
        for encoder in [model.questionModel, model.contextModel].compactMap({ $0 }) {
            crc.update(UnsafeRawBufferPointer(UnsafeBufferPointer(start: encoder.parameters.pointer, count: encoder.parameters.count)))
        }
        crc.update(Array("\(model.settings) \(model.tokenizer.doLowerCase) \(model.dimension)".utf8))
        return String(format: "crc32c:%08x", crc.finalValue)
    }

    /// Appends every shard's files, in order, to `sink` (which the caller commits).
    public static func merge(_ shards: [Shard], into sink: EmbeddingSink) throws {
        for shard in shards {
            let before = sink.rows
            try sink.append(filesOf: shard)
            guard sink.rows - before == shard.rows.count else {
                throw ModelError.invalidInput("\(shard.output) holds \(sink.rows - before) embeddings, expected \(shard.rows.count) (inputs \(shard.rows))")
            }
        }
    }
}
