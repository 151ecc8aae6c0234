import Data
import Foundation
import Model
import Retrieval

/// `srdpr encode` by several processes (`--workers N` on this host, `--bind` across the hosts of a
/// job): every input line is checked first (a bad one is named by file and line before anything
/// is embedded), the inputs are cut into row-range shards that depend on the input only, the
/// workers pull them (the largest, by their lines' bytes, first) and send the embeddings back, and
/// the coordinator keeps each shard as an index of its own under `OUTPUT.shards/` (written chunk
/// by chunk, durable). When all are complete they are appended in order into the run's outputs,
/// JSON lines or `.npy` with the ids file: the bytes of one process. The directory records what
/// made it (input, model, cut); a stopped run keeps its shards and the same command again goes
/// on from them, with any number of workers.
public enum ShardedEncode {
    /// The cut of `input` into shards, with what the coordinator needs to run them.
    public struct Plan {
        public var shards: [ShardedIndexBuild.Shard]
        /// Each shard's estimated cost: its lines' bytes (orders the queue, nothing else).
        public var work: [Int]
        public var input: DatasetFingerprint.File
        /// Shards an earlier run of the same command completed.
        public var kept: Int
    }

    /// Checks every line of `inputPath` (token ids below `vocabularySize`), cuts its inputs into shards of `shardRows` (nil: about 64
    /// shards, at most 8 chunks each, as `srdpr index` cuts a corpus) and makes `directory` ready:
    /// the shards of an earlier run of the same input, model and cut are kept, others removed.
    public static func plan(inputPath: String, modelFingerprint: String, vocabularySize: Int?, chunkRows: Int, shardRows: Int?,
                            directory: String) throws -> Plan {
        let total = try EmbeddingStream.countInputs(path: inputPath)
        let rowsPerShard = shardRows ?? ShardedIndexBuild.defaultShardRows(rows: total, chunkRows: chunkRows)
        var work = [Int](repeating: 0, count: (total + rowsPerShard - 1) / rowsPerShard)
        let checked = try EmbeddingStream.check(path: inputPath, vocabularySize: vocabularySize) { row, bytes in
            if row < total { work[row / rowsPerShard] += bytes }
        }
        guard checked == total else {
            throw ModelError.invalidInput("\(inputPath) changed while it was read (\(total) inputs, then \(checked))")
        }
        let input = try DatasetFingerprint.File(path: inputPath, name: inputPath, naming: "--input")
        try prepare(directory: directory, identity: [
            "input": inputPath, "input_bytes": input.bytes, "input_crc32c": Int(input.crc32c),
            "model": modelFingerprint, "shard_rows": rowsPerShard, "inputs": total,
        ])
        let shards = ShardedIndexBuild.plan(rows: 0..<total, shardRows: rowsPerShard, shardsDirectory: directory)
        return Plan(shards: shards, work: work, input: input, kept: ShardedIndexBuild.completeShards(shards))
    }

    /// Appends every shard, in order, to `sink` (which the caller commits); each must be a
    /// complete index of its rows made with `signature`'s model.
    public static func merge(_ shards: [ShardedIndexBuild.Shard], signature: PassageIndex.Signature, into sink: EmbeddingSink) throws {
        for shard in shards {
            try ShardedIndexBuild.checkComplete(shard, signature: signature)
            try sink.append(rows: shard.rows.count, embeddingsPath: shard.embeddingsPath, idsPath: shard.idsPath)
        }
    }

    /// Makes `directory` ready for the run described by `identity`: its shards are kept when an
    /// earlier run of the same description made them, else removed.
    static func prepare(directory: String, identity: [String: Any]) throws {
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
}
