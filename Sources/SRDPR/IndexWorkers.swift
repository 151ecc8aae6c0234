import Data
import Foundation
import Model
import Retrieval

/// The passage index built by `--workers N` processes on this host: what `srdpr index --workers`
/// and `srdpr mine-hard-negatives --model --workers` run. One `srdpr index --rows A..<B` child per
/// shard of whole chunks (`ShardedIndexBuild`), `--threads` / N threads each, merged into
/// `directory`: the bytes of a one-process index at the children's thread count.
enum IndexWorkers {
    /// `signature`: the model as the index records it (the children encode with `model`'s options
    /// and must give the same fingerprint, or the merge refuses their shards).
    static func build(model: ModelOptions, signature: PassageIndex.Signature, corpusPath: String, directory: String,
                      chunkRows: Int, workers: Int) throws {
        let threads = max(1, model.threads / workers)
        try ShardedIndexBuild.build(corpusPath: corpusPath, signature: signature, directory: directory, chunkRows: chunkRows,
                                    workers: workers) { shards in
            let progress = progressBar("index", unit: "passages")
            let total = shards.reduce(0) { $0 + $1.rows.count }
            try ShardProcesses.run(shards.enumerated().map { rank, shard in
                ShardProcesses.Child(
                    name: "index shard \(rank + 1) of \(shards.count) (passages \(shard.rows))",
                    arguments: ["index"] + model.arguments(threads: threads)
                        + ["--corpus", corpusPath, "--output", shard.directory, "--chunk-rows", String(chunkRows),
                           "--rows", "\(shard.rows.lowerBound)..<\(shard.rows.upperBound)"],
                    logPath: shard.directory + ".log")
            }, poll: { progress(ShardedIndexBuild.encodedRows(shards), total) })
        }
    }
}
