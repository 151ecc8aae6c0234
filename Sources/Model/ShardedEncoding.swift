import Data
import Foundation

/// `srdpr encode --workers N` on one host: the inputs are cut into N shards of whole windows
/// (input ranges, so each window holds the inputs it holds in a one-process run and gives the
/// same bytes), each shard is embedded by a child `srdpr encode --rows` into files of its own,
/// and the shards' files are appended in order into the run's outputs.
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
