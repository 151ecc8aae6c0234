import Data
import Foundation

/// `srdpr index --workers N` on one host: the rows still to encode are cut into N shards of whole
/// chunks, each shard is built as an index of its own (`PassageIndex.build` with `rows`, by a
/// child process the caller starts) under `DIR/shards/`, then the shards are appended in order.
/// Cut on chunk boundaries, every chunk holds the passages it holds in a one-process build, so
/// the merged files are byte-identical to it. Each shard resumes like any index; a rerun with the
/// same N picks them up, and the merge itself is redone from the shards if it was cut short.
public enum ShardedIndexBuild {
    public struct Shard: Equatable {
        /// Corpus rows (0-based, non-blank lines) the shard encodes.
        public var rows: Range<Int>
        public var directory: String
    }

    /// The shards of `rows`, cut among at most `workers` shards on multiples of `chunkRows` from
    /// `rows.lowerBound` (fewer shards when there are fewer chunks).
    public static func plan(rows: Range<Int>, chunkRows: Int, workers: Int, directory: String) -> [Shard] {
        ShardSplit.blockAligned(rows: rows, blockRows: chunkRows, parts: workers).map { shard in
            Shard(rows: shard, directory: PassageIndex.shardsPath(directory) + "/rows-\(shard.lowerBound)-\(shard.upperBound)")
        }
    }

    /// Builds the index of `corpusPath` in `directory` with shards: checks the corpus (every line,
    /// unique ids), records the build as started (an incomplete meta.json, as a one-process build
    /// does), calls `runShards` to build the shards (it returns when all are complete, or throws),
    /// then merges them. Rows an earlier interrupted build already encoded are kept, not re-encoded.
    public static func build(corpusPath: String, signature: PassageIndex.Signature, directory: String, chunkRows: Int,
                             workers: Int, runShards: ([Shard]) throws -> Void) throws {
        try build(corpusPath: corpusPath, signature: signature, directory: directory, shards: { rows in
            plan(rows: rows, chunkRows: chunkRows, workers: workers, directory: directory)
        }, runShards: runShards)
    }

    /// The shards of `srdpr index --bind` (workers on other hosts ask for them one at a time, so a
    /// fast host takes more): `chunksPerShard` chunks each (the last shorter), a cut that depends
    /// on the corpus only, so a rerun with any number of hosts keeps the shards already built.
    public static func plan(rows: Range<Int>, chunkRows: Int, chunksPerShard: Int, directory: String) -> [Shard] {
        let chunks = (rows.count + chunkRows - 1) / chunkRows
        return plan(rows: rows, chunkRows: chunkRows, workers: max(1, (chunks + chunksPerShard - 1) / chunksPerShard), directory: directory)
    }

    /// ``build(corpusPath:signature:directory:chunkRows:workers:runShards:)`` with the shards of
    /// the rows still to encode cut by `shards`.
    public static func build(corpusPath: String, signature: PassageIndex.Signature, directory: String,
                             shards cut: (Range<Int>) -> [Shard], runShards: ([Shard]) throws -> Void) throws {
        let total = try CorpusStream.scan(path: corpusPath)
        guard var meta = try PassageIndex.start(directory: directory, corpusPath: corpusPath, totalRows: total, firstRow: nil,
                                                signature: signature) else { return }
        try PassageIndex.writeMeta(meta, directory)
        let shards = cut(meta.encodedRows..<total)
        if !shards.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: PassageIndex.shardsPath(directory), withIntermediateDirectories: true)
            } catch {
                throw RetrievalError.cannotWrite(path: PassageIndex.shardsPath(directory), reason: "\(error)")
            }
            try runShards(shards)
        }
        let files = try IndexFiles(directory: directory, keepRows: meta.encodedRows, dimension: signature.dimension)
        for shard in shards {
            let shardMeta = try PassageIndex.readMeta(shard.directory)
            guard shardMeta.complete, shardMeta.firstRow == shard.rows.lowerBound, shardMeta.totalRows == shard.rows.count,
                  shardMeta.modelFingerprint == signature.fingerprint, shardMeta.dimension == signature.dimension else {
                throw RetrievalError.badIndex(path: shard.directory, reason: "this shard of rows \(shard.rows) is not a complete index of them with \(signature.modelName) (rerun `srdpr index` to rebuild it)")
            }
            try files.append(contentsOf: shard.directory, rows: shard.rows.count, dimension: signature.dimension)
        }
        meta.encodedRows = total
        try PassageIndex.finish(&meta, directory: directory)
    }

    /// Rows encoded so far by `shards` (their meta.json; 0 for a shard not started), for progress.
    public static func encodedRows(_ shards: [Shard]) -> Int {
        shards.reduce(0) { $0 + ((try? PassageIndex.readMeta($1.directory).encodedRows) ?? 0) }
    }
}
