import Collectives
import Data
import DistributedIndex
import Foundation
import Model
import Retrieval

/// An index or embeddings built by `srdpr index-worker` processes under an ``IndexJobCoordinator``:
/// one path (one shard scheduler) for `srdpr index --workers N`, `srdpr encode --workers N` (and
/// `mine-hard-negatives --model --workers N`) on this host and for `--bind ADDR --world-size N`
/// across the hosts of a job. Workers pull shards (row ranges) as they finish the last, so a worker
/// given short inputs takes more of them and none sits idle while another ends a long shard; the
/// coordinator writes the shards (kept when a job stops) and appends them in order: the bytes of
/// one process.
enum IndexWorkers {
    /// `--workers N` on this host: the coordinator listens on loopback with a fresh secret, and
    /// the returned closure starts N `srdpr index-worker` children against its endpoint with
    /// `threads` / N threads each, their stderr in `logDirectory`. Loopback TCP rather than a pipe
    /// or ipc://: the same transport, authentication and checks as across hosts (and as
    /// `srdpr train --workers N`); a chunk's embeddings (512 x 384 floats, 0.8 MB) cost well under a
    /// millisecond on loopback next to the seconds of encoding them.
    static func local(workers: Int, threads: Int, logDirectory: String)
        -> (listen: CoordinatorListenOptions, start: (String) throws -> ShardProcesses.Group) {
        let secret = SharedSecret.random()
        let listen = CoordinatorListenOptions(bind: "tcp://127.0.0.1:0", worldSize: workers, secret: Array(secret.utf8))
        let perWorker = max(1, threads / workers)
        var environment = ProcessInfo.processInfo.environment
        environment["SRDPR_SECRET"] = secret
        return (listen, { endpoint in
            try ShardProcesses.Group((0..<workers).map { rank in
                ShardProcesses.Child(
                    name: "index-worker rank \(rank) of \(workers)",
                    arguments: ["index-worker", "--rank", String(rank), "--coordinator", endpoint, "--threads", String(perWorker)],
                    logPath: workerLog(directory: logDirectory, rank: rank))
            }, environment: environment)
        })
    }

    /// `srdpr index --workers N` (and `mine-hard-negatives --model --workers N`) on this host.
    static func build(model: ModelOptions, signature: PassageIndex.Signature, corpusPath: String, directory: String,
                      chunkRows: Int, workers: Int, chunksPerShard: Int? = nil) throws {
        let (listen, start) = local(workers: workers, threads: model.threads, logDirectory: PassageIndex.shardsPath(directory))
        try build(model: model, signature: signature, corpusPath: corpusPath, directory: directory, chunkRows: chunkRows,
                  chunksPerShard: chunksPerShard, listen: listen, startWorkers: start)
    }

    /// The coordinator's side of an index, either launch. `startWorkers` (for `--workers N`) starts
    /// the index-workers against the bound endpoint; without it, the workers come from a launcher
    /// on other hosts.
    static func build(model: ModelOptions, signature: PassageIndex.Signature, corpusPath: String, directory: String,
                      chunkRows: Int, chunksPerShard: Int?, listen: CoordinatorListenOptions,
                      startWorkers: ((String) throws -> ShardProcesses.Group)? = nil) throws {
        try checkChunkSize(rows: chunkRows, dimension: signature.dimension, option: "--chunk-rows")
        stderrLine("index: checking the corpus \(corpusPath)")
        let corpus = try DatasetFingerprint.File(path: corpusPath, name: corpusPath, naming: "--corpus")
        let coordinator = try IndexJobCoordinator(options: listen, job: .init(
            kind: .index, corpusPath: corpusPath, corpus: corpus, modelArguments: model.arguments(threads: model.threads),
            modelName: signature.modelName, modelFingerprint: signature.fingerprint, chunkRows: chunkRows))
        coordinator.progress = progressBar("index", unit: "passages")
        try ShardedIndexBuild.build(corpusPath: corpusPath, signature: signature, directory: directory, shards: { rows in
            ShardedIndexBuild.plan(rows: rows, shardRows: chunksPerShard.map { $0 * chunkRows }
                                       ?? ShardedIndexBuild.defaultShardRows(rows: rows.count, chunkRows: chunkRows),
                                   directory: directory)
        }, runShards: { shards in
            try run(coordinator, shards: shards, signature: signature,
                    work: try ShardedIndexBuild.estimatedWork(corpusPath: corpusPath, shards: shards),
                    shardsDirectory: PassageIndex.shardsPath(directory), startWorkers: startWorkers)
        })
    }

    /// A chunk of `rows` embeddings must fit in one control message (with room to spare).
    static func checkChunkSize(rows: Int, dimension: Int, option: String) throws {
        let bytesPerChunk = rows * dimension * MemoryLayout<Float>.size
        guard bytesPerChunk <= ControlServer.maxMessageBytes / 2 else {
            throw CLIError("\(option) \(rows) makes chunks of \(bytesPerChunk >> 20) MB, more than a control message carries "
                + "(\(ControlServer.maxMessageBytes >> 21) MB); use fewer rows per chunk")
        }
    }

    /// Runs `coordinator` on `shards` (index or encode). With `startWorkers`, the local
    /// index-workers are checked while the job runs (one that dies ends the job, named, with the
    /// end of its log) and must exit cleanly at its end.
    static func run(_ coordinator: IndexJobCoordinator, shards: [ShardedIndexBuild.Shard], signature: PassageIndex.Signature,
                    work: [Int], shardsDirectory: String, startWorkers: ((String) throws -> ShardProcesses.Group)?) throws {
        guard let startWorkers else { return try coordinator.run(shards: shards, signature: signature, work: work) }
        try coordinator.listen()
        guard let endpoint = coordinator.endpoint else { throw CLIError("the coordinator did not bind \(coordinator.options.bind)") }
        let children = try startWorkers(endpoint)
        coordinator.poll = { _ = try children.check() }
        do {
            try coordinator.run(shards: shards, signature: signature, work: work)
            try children.waitForExit(seconds: 30)
        } catch let error as ShardProcesses.Failure {
            children.stop()
            throw CLIError("\(error)\nthe finished shards are kept under \(shardsDirectory): run the same command again to go on")
        } catch IndexJobError.workerFailed(let rank, let host, let reason) {
            children.stop()
            throw IndexJobError.workerFailed(rank: rank, host: host, reason: reason + " (its log: \(workerLog(directory: shardsDirectory, rank: rank)))")
        } catch {
            children.stop()
            throw error
        }
    }

    /// Where the stderr of local index-worker `rank` goes (removed with the shards once merged).
    static func workerLog(directory shardsDirectory: String, rank: Int) -> String {
        shardsDirectory + "/index-worker-\(rank).log"
    }
}
