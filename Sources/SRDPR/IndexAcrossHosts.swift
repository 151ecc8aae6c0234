import ArgumentParser
import Collectives
import Data
import DistributedIndex
import Foundation
import Model
import Retrieval
import Worker

/// The options of `srdpr index` that make it the coordinator of an index built across hosts.
struct IndexJobOptions: ParsableArguments {
    @Option(help: """
        Spread the work over the hosts of a job: listen on this control address, tcp://HOST:PORT, hand \
        out row-range shards to the `srdpr index-worker --coordinator ADDR` processes that connect \
        (the training's launch: shared secret, ranks, heartbeats) and write what they send back.
        """)
    var bind: String?
    @Option(name: .customLong("world-size"), help: "With --bind: the number of index-workers the launcher starts (ranks 0..N-1).")
    var worldSize: Int?
    @Option(name: .customLong("shard-chunks"), help: """
        With --bind or --workers: chunks (--chunk-rows passages each for index, --window inputs for encode) per \
        shard handed to a worker (default 8, smaller shards on an input of under 512 chunks: about 64 of them, to \
        balance the workers' load).
        """)
    var shardChunks: Int?
    @Option(name: .customLong("heartbeat-timeout"), help: "With --bind: seconds of silence after which a worker counts as lost, its shard going to another (default 30).")
    var heartbeatTimeout: Double?
    @Option(name: .customLong("join-timeout"), help: "With --bind: seconds to wait for every worker to register (default 600).")
    var joinTimeout: Double?

    /// Options given without --bind are not silently ignored.
    func validate(workers: Int) throws {
        if let shardChunks, shardChunks < 1 { throw ValidationError("--shard-chunks must be at least 1") }
        guard bind != nil else {
            if shardChunks != nil, workers == 1 {
                throw ValidationError("--shard-chunks is for a job run by several processes: it needs --workers N or --bind tcp://HOST:PORT --world-size N")
            }
            let given = [("--world-size", worldSize != nil),
                         ("--heartbeat-timeout", heartbeatTimeout != nil), ("--join-timeout", joinTimeout != nil)]
            if let (name, _) = given.first(where: { $0.1 }) {
                throw ValidationError("\(name) is for building across hosts: it needs --bind tcp://HOST:PORT --world-size N")
            }
            return
        }
        guard workers == 1 else { throw ValidationError("--workers N (processes on this host) and --bind (workers on other hosts) exclude each other") }
        guard let worldSize, worldSize >= 1 else { throw ValidationError("--bind needs --world-size N, the number of index-workers (at least 1)") }
        guard workerTimeout > 0, firstWorkerTimeout > 0 else { throw ValidationError("--heartbeat-timeout and --join-timeout must be positive") }
    }

    var workerTimeout: Double { heartbeatTimeout ?? 30 }
    var firstWorkerTimeout: Double { joinTimeout ?? 600 }
}

extension IndexJobOptions {
    /// The coordinator's control address and checks for `--bind ADDR --world-size N`.
    func listen(bind: String, security: SecurityOptions) throws -> CoordinatorListenOptions {
        var options = CoordinatorListenOptions(bind: bind, worldSize: worldSize!, secret: try security.secret())
        options.curve = security.curve
        options.heartbeatTimeout = workerTimeout
        options.joinTimeout = firstWorkerTimeout
        return options
    }
}

extension Index {
    /// `srdpr index --bind ADDR --world-size N`: the coordinator of an index built by index-workers
    /// on the hosts of a job (the path of `--workers N` with the workers started by a launcher).
    func runAcrossHosts(corpusPath: String, bind: String) throws {
        let options = try job.listen(bind: bind, security: security)
        try IndexWorkers.build(model: retriever.model, signature: try PassageIndex.Signature(retriever.model.describe()), corpusPath: corpusPath,
                               directory: output, chunkRows: chunkRows, chunksPerShard: job.shardChunks, listen: options)
    }
}

/// `srdpr index-worker --coordinator tcp://HOST:PORT`: one worker of `srdpr index --bind`.
struct IndexWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index-worker",
        abstract: "Encode shards of an index or of `srdpr encode`'s inputs for a coordinator (`srdpr index` or `srdpr encode` with --bind ADDR --world-size N; with --workers N they start N of them on this host).",
        discussion: """
            Connects to the coordinator and learns the job (an index of a corpus's passages, or the embeddings of \
            `srdpr encode`'s question, passage and token-id lines), checks this host's copy of the file (size and \
            CRC-32C; the coordinator's path, or --corpus) and of the model (the coordinator's --model options; its \
            fingerprint) against the coordinator's, then encodes the row ranges it is handed and sends the \
            embeddings back; nothing is written on this host. Without --rank, the rank comes from the launcher's \
            environment like `srdpr worker`'s: OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_PROCID or RANK.
            """)

    @Option(help: "This worker's rank (0..world size-1); default: from the launcher's environment.")
    var rank: Int?
    @Option(help: "The coordinator's control address, tcp://HOST:PORT (its --bind).")
    var coordinator: String
    @Option(help: "This host's copy of the corpus (index) or input file (encode), if not at the coordinator's path.")
    var corpus: String?
    @OptionGroup var security: SecurityOptions
    @OptionGroup var process: WorkerProcessOptions

    func run() throws {
        try process.validate()
        let (resolvedRank, launcherWorld) = try launcherRank(given: rank, command: "index-worker")
        var options = IndexJobWorker.Options(coordinator: coordinator, rank: resolvedRank, secret: try security.secret())
        options.curve = security.curve
        options.heartbeatTimeout = process.heartbeatTimeout
        options.corpusPath = corpus
        options.launcherWorldSize = launcherWorld
        let threads = process.threads
        let code = try IndexJobWorker(options: options).run(loadEncoder: { job in
            var model = try ModelOptions.parse(job.modelArguments)
            model.threads = threads
            try model.validate()
            switch job.kind {
            case .index: return PassageShardEncoder(try model.retriever())
            case .encode: return InputShardEncoder(try model.load())
            }
        })
        if code != 0 { throw ExitCode(code) }
    }
}
