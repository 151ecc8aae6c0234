import ArgumentParser
import Collectives
import Data
import DistributedIndex
import Foundation
import Model
import Retrieval

/// `srdpr encode`: embeddings of questions and passages.
struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed questions and passages (one JSON line in, one embedding out, in order, written as the input is read).",
        discussion: """
            Input lines: {"question": s} (question encoder), {"title": t, "text": s} (context encoder) \
            or {"input_ids": [...]} (context encoder, no tokenisation), each with an optional "id". \
            A model scored with cosine similarity gives unit-length embeddings (as sentence-transformers' \
            Normalize does). The input is read --window lines at a time, so memory does not grow \
            with the file; outputs appear at their paths only when the run succeeds. --workers N checks every \
            line first, then starts N `srdpr index-worker` processes on this host (--threads / N threads each) \
            that ask this process for shards (row ranges; the largest first, so they end together) as they \
            finish the last, embed them --window inputs at a time and send the embeddings back over loopback \
            (as `srdpr index --workers` does); the shards are kept in OUTPUT.shards/ (a stopped run keeps them \
            and the same command again goes on from them) and appended in order: the same bytes as one process. \
            --bind tcp://HOST:PORT --world-size N does the same across the hosts of a job: \
            `srdpr index-worker --coordinator tcp://HOST:PORT` on each host (same secret, --secret-file or \
            SRDPR_SECRET) embeds from its own copy of the input and model (checked against this one's) \
            (cluster/README.md).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Input JSON-lines file.")
    var input: String
    @Option(help: "Output file.")
    var output: String
    @Option(help: "jsonl: one {\"embedding\": [...]} line per input; npy: one float32 NumPy matrix [inputs, dimension] (needs --ids).")
    var format: EmbeddingFormat = .jsonl
    @Option(help: "Also write one JSON string per output row: the input line's \"id\" (or \"_id\"), else its line number.")
    var ids: String?
    @Option(help: "Inputs read, embedded (length-sorted batches inside it) and written at a time (with --workers or --bind: per worker, and the embeddings a worker sends at a time).")
    var window: Int = 4096
    @Option(help: "Processes embedding shards of the input at once on this host, --threads / N threads each.")
    var workers: Int = 1
    @OptionGroup var job: IndexJobOptions
    @OptionGroup var security: SecurityOptions

    func run() throws {
        if format == .npy, ids == nil {
            throw ValidationError("--format npy needs --ids FILE: the matrix's rows carry no ids of their own")
        }
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        try job.validate(workers: workers)
        if job.bind == nil, security.secretFile != nil || security.curve {
            throw ValidationError("--secret-file and --curve are for encoding across hosts (--bind)")
        }
        guard FileManager.default.isReadableFile(atPath: input) else {
            throw CLIError("cannot read --input \(input) (missing or unreadable)")
        }
        let model = try modelOptions.load()
        let sink = try EmbeddingSink(path: output, format: format, dimension: model.dimension, idsPath: ids)
        if let bind = job.bind {
            try runShards(model: model, into: sink, listen: try job.listen(bind: bind, security: security), startWorkers: nil)
            return
        }
        if workers > 1 {
            let (listen, start) = IndexWorkers.local(workers: workers, threads: modelOptions.threads, logDirectory: shardsDirectory)
            try runShards(model: model, into: sink, listen: listen, startWorkers: start)
            return
        }
        let bar = ProgressBar(label: "encode", total: try EmbeddingStream.countInputs(path: input), unit: "inputs")
        var before = 0
        try EmbeddingStream.run(inputPath: input, window: window, vocabularySize: model.contextVocabularySize, into: sink, encode: { inputs in
            defer { before += inputs.count }
            return try model.encode(inputs, normalized: model.similarity == .cosine, progress: { bar.update(done: before + $0) })
        })
        bar.finish()
    }

    var shardsDirectory: String { output + ".shards" }

    /// The run by index-workers (`--workers` children or a launcher's, `--bind`): the coordinator
    /// hands out the shards of ``ShardedEncode``, keeps what the workers send in OUTPUT.shards/ and,
    /// once every shard is complete, appends them into `sink`, commits it and removes the shards.
    func runShards(model: InferenceModel, into sink: EmbeddingSink, listen: CoordinatorListenOptions,
                   startWorkers: ((String) throws -> ShardProcesses.Group)?) throws {
        try IndexWorkers.checkChunkSize(rows: window, dimension: model.dimension, option: "--window")
        stderrLine("encode: checking \(input)")
        let plan = try ShardedEncode.plan(inputPath: input, modelFingerprint: model.fingerprint,
                                          vocabularySize: model.contextVocabularySize, chunkRows: window,
                                          shardRows: job.shardChunks.map { $0 * window }, directory: shardsDirectory)
        if plan.kept > 0 {
            stderrLine("encode: \(plan.kept) of \(plan.shards.count) shard(s) kept from an earlier run of this command (\(shardsDirectory))")
        }
        let signature = PassageIndex.Signature(modelName: model.path, fingerprint: model.fingerprint, dimension: model.dimension,
                                               similarity: model.similarity)
        // Local children are started only for work left; a launcher's workers (--bind) are always
        // met and told to end, even when every shard was kept (a resubmitted job).
        if plan.kept < plan.shards.count || (startWorkers == nil && !plan.shards.isEmpty) {
            let coordinator = try IndexJobCoordinator(options: listen, job: .init(
                kind: .encode, corpusPath: input, corpus: plan.input, modelArguments: modelOptions.arguments(threads: modelOptions.threads),
                modelName: model.path, modelFingerprint: model.fingerprint, chunkRows: window))
            coordinator.progress = progressBar("encode", unit: "inputs")
            do {
                try IndexWorkers.run(coordinator, shards: plan.shards, signature: signature, work: plan.work,
                                     shardsDirectory: shardsDirectory, startWorkers: startWorkers)
            } catch {
                stderrLine("encode: the finished shards are kept in \(shardsDirectory): run the same command again to go on from them")
                throw error
            }
        }
        try ShardedEncode.merge(plan.shards, signature: signature, into: sink)
        try sink.commit()
        try? FileManager.default.removeItem(atPath: shardsDirectory)
    }
}

extension EmbeddingFormat: ExpressibleByArgument {}
