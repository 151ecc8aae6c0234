import Data
import Foundation

/// The shards of an index built by several processes (`srdpr index --workers N` on one host,
/// `srdpr index --bind` across hosts): the rows still to encode are cut into shards (row ranges),
/// each built as an index of its own under `DIR/shards/` (written by the coordinator from what the
/// workers send, in chunks of at most `--chunk-rows` from the shard's start), then appended in
/// order. An embedding does not depend on the batch around it (bit for bit, `ForwardOnlyParityTests`),
/// so the merged files are byte-identical to a one-process build wherever the shards are cut. The
/// cut depends on the corpus only, so a rerun with any number of workers keeps the shards already
/// built, and the merge itself is redone from the shards if it was cut short.
public enum ShardedIndexBuild {
    public struct Shard: Equatable {
        /// Corpus rows (0-based, non-blank lines) the shard encodes.
        public var rows: Range<Int>
        public var directory: String

        /// The shard's rows: float32 row-major, and one JSON string id per line.
        public var embeddingsPath: String { PassageIndex.embeddingsPath(directory) }
        public var idsPath: String { PassageIndex.idsPath(directory) }
    }

    /// Shards of `shardRows` rows each from `rows.lowerBound` (the last shorter), under the index
    /// `directory`'s shards directory. Workers ask for them one at a time, so a fast worker takes more.
    public static func plan(rows: Range<Int>, shardRows: Int, directory: String) -> [Shard] {
        plan(rows: rows, shardRows: shardRows, shardsDirectory: PassageIndex.shardsPath(directory))
    }

    /// The same cut with the shards in `shardsDirectory` (`srdpr encode`'s OUTPUT.shards/).
    public static func plan(rows: Range<Int>, shardRows: Int, shardsDirectory: String) -> [Shard] {
        precondition(shardRows > 0)
        return stride(from: rows.lowerBound, to: rows.upperBound, by: shardRows).map { first in
            let shard = first..<min(first + shardRows, rows.upperBound)
            return Shard(rows: shard, directory: shardsDirectory + "/rows-\(shard.lowerBound)-\(shard.upperBound)")
        }
    }

    /// Refuses a shard that is not a complete index of its rows made with `signature`'s model.
    public static func checkComplete(_ shard: Shard, signature: PassageIndex.Signature) throws {
        let shardMeta = try PassageIndex.readMeta(shard.directory)
        guard shardMeta.complete, shardMeta.firstRow == shard.rows.lowerBound, shardMeta.totalRows == shard.rows.count,
              shardMeta.modelFingerprint == signature.fingerprint, shardMeta.dimension == signature.dimension else {
            throw RetrievalError.badIndex(path: shard.directory, reason: "this shard of rows \(shard.rows) is not a complete index of them with \(signature.modelName) (run the same command again to rebuild it)")
        }
    }

    /// Shards an earlier run completed (their meta.json says so), for the messages of a rerun.
    public static func completeShards(_ shards: [Shard]) -> Int {
        shards.filter { (try? PassageIndex.readMeta($0.directory).complete) == true }.count
    }

    /// Rows per shard when the user gives no `--shard-chunks`: at most 8 chunks (a lost worker's
    /// shard costs little to redo, and each shard is one directory), fewer on a corpus of under
    /// 64 x 8 chunks so that there are about 64 shards: the workers' load then balances to within a
    /// small shard (on the FAQ's 5,770 passages, 91-passage shards; whole 512-passage chunks left
    /// one worker idle ~46 s at the end of a 2-worker build at load 5).
    public static func defaultShardRows(rows: Int, chunkRows: Int) -> Int {
        max(1, min(8 * chunkRows, (rows + 63) / 64))
    }

    /// An estimate of each shard's encoding cost: the UTF-8 bytes of its passages' titles and texts
    /// (one pass over their rows). It only orders the shards handed out; a wrong guess costs balance, not bytes.
    public static func estimatedWork(corpusPath: String, shards: [Shard]) throws -> [Int] {
        guard let first = shards.first?.rows.lowerBound, let last = shards.last?.rows.upperBound else { return [] }
        var work = [Int](repeating: 0, count: shards.count), shard = 0
        try CorpusStream.forEach(path: corpusPath, rows: first..<last) { row, record in
            while row >= shards[shard].rows.upperBound { shard += 1 }
            work[shard] += record.title.utf8.count + record.text.utf8.count
        }
        return work
    }

    /// Builds the index of `corpusPath` in `directory` with shards: checks the corpus (every line,
    /// unique ids), records the build as started (an incomplete meta.json, as a one-process build
    /// does), cuts the rows still to encode with `cut`, calls `runShards` to build the shards (it
    /// returns when all are complete, or throws), then merges them. Rows an earlier interrupted
    /// build already merged are kept, not re-encoded.
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
            try checkComplete(shard, signature: signature)
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
