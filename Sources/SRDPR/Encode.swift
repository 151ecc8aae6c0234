import ArgumentParser
import Data
import Foundation
import Model

/// `srdpr encode`: embeddings of questions and passages.
struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed questions and passages (one JSON line in, one embedding out, in order, written as the input is read).",
        discussion: """
            Input lines: {"question": s} (question encoder), {"title": t, "text": s} (context encoder) \
            or {"input_ids": [...]} (context encoder, no tokenisation), each with an optional "id". \
            A model scored with cosine similarity gives unit-length embeddings (as sentence-transformers' \
            Normalize does). The input is read --window lines at a time, so memory does not grow \
            with the file; outputs appear at their paths only when the run succeeds. --workers N runs N \
            `srdpr encode` processes on shards of whole windows (--threads / N threads each) and appends \
            their outputs in order: the same bytes as one process with that many threads.
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
    @Option(help: "Inputs read, embedded (length-sorted batches inside it) and written at a time.")
    var window: Int = 4096
    @Option(help: "Processes embedding shards of the input at once on this host, --threads / N threads each.")
    var workers: Int = 1
    @Option(help: .hidden)
    var rows: String?

    func run() throws {
        if format == .npy, ids == nil {
            throw ValidationError("--format npy needs --ids FILE: the matrix's rows carry no ids of their own")
        }
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        if rows != nil, workers > 1 { throw ValidationError("--rows is set by `srdpr encode --workers` for its shards; give one or the other") }
        guard FileManager.default.isReadableFile(atPath: input) else {
            throw CLIError("cannot read --input \(input) (missing or unreadable)")
        }
        if workers > 1 {
            // The parent needs only the embedding size (read without the weights); the children load the model.
            let dimension = try modelOptions.describe().dimension
            let total = try EmbeddingStream.countInputs(path: input)
            try runShards(total: total, into: EmbeddingSink(path: output, format: format, dimension: dimension, idsPath: ids))
            return
        }
        let model = try modelOptions.load()
        let range = try rows.map(Index.parseRows)
        let total = try range?.count ?? EmbeddingStream.countInputs(path: input)
        let sink = try EmbeddingSink(path: output, format: format, dimension: model.dimension, idsPath: ids)
        let bar = ProgressBar(label: "encode", total: total, unit: "inputs")
        var before = 0
        try EmbeddingStream.run(inputPath: input, rows: range, window: window, into: sink, encode: { inputs in
            defer { before += inputs.count }
            return try model.encode(inputs, normalized: model.similarity == .cosine, progress: { bar.update(done: before + $0) })
        })
        bar.finish()
    }

    /// The --workers run: child `srdpr encode --rows` processes write their shards beside the
    /// output, which are appended into `sink` and removed (also when a child fails).
    func runShards(total: Int, into sink: EmbeddingSink) throws {
        let directory = output + ".shards-\(getpid())"
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw CLIError("cannot create \(directory) for the shards: \(error)")
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let shards = ShardedEncoding.plan(inputs: total, window: window, workers: workers, directory: directory, format: format,
                                          withIDs: ids != nil)
        let threads = max(1, modelOptions.threads / workers)
        try ShardProcesses.run(shards.enumerated().map { rank, shard in
            ShardProcesses.Child(
                name: "encode shard \(rank + 1) of \(shards.count) (inputs \(shard.rows))",
                arguments: ["encode"] + modelOptions.arguments(threads: threads)
                    + ["--input", input, "--output", shard.output, "--format", format.rawValue, "--window", String(window),
                       "--rows", "\(shard.rows.lowerBound)..<\(shard.rows.upperBound)"] + (shard.ids.map { ["--ids", $0] } ?? []),
                logPath: shard.output + ".log")
        })
        try ShardedEncoding.merge(shards, into: sink)
        try sink.commit()
    }
}

extension EmbeddingFormat: ExpressibleByArgument {}
