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
            their outputs in order: the same bytes as one process with that many threads. The shards wait in \
            OUTPUT.shards/ until then: a failed or killed run keeps the finished ones, and the same command \
            again embeds only the others.
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
        let model = try modelOptions.load()
        let range = try rows.map(Index.parseRows)
        let total = try range?.count ?? EmbeddingStream.countInputs(path: input)
        let sink = try EmbeddingSink(path: output, format: format, dimension: model.dimension, idsPath: ids)
        if workers > 1 {
            try runShards(total: total, model: model, into: sink)
            return
        }
        let bar = ProgressBar(label: "encode", total: total, unit: "inputs")
        var before = 0
        try EmbeddingStream.run(inputPath: input, rows: range, window: window, into: sink, encode: { inputs in
            defer { before += inputs.count }
            return try model.encode(inputs, normalized: model.similarity == .cosine, progress: { bar.update(done: before + $0) })
        })
        bar.finish()
    }

    /// The --workers run: child `srdpr encode --rows` processes write their shards into
    /// OUTPUT.shards/, which are appended into `sink` and removed once it is committed. A failed run
    /// keeps the finished shards; the same command again runs only the others.
    func runShards(total: Int, model: InferenceModel, into sink: EmbeddingSink) throws {
        let directory = output + ".shards"
        let threads = max(1, modelOptions.threads / workers)
        let inputFile = try DatasetFingerprint.File(path: input, name: input, naming: "--input")
        try ShardedEncoding.prepare(directory: directory, identity: [
            "input": input, "input_bytes": inputFile.bytes, "input_crc32c": Int(inputFile.crc32c),
            "model": ShardedEncoding.fingerprint(of: model), "model_arguments": modelOptions.arguments(threads: threads),
            "window": window, "workers": workers, "format": format.rawValue, "ids": ids != nil,
        ])
        let shards = ShardedEncoding.plan(inputs: total, window: window, workers: workers, directory: directory, format: format,
                                          withIDs: ids != nil)
        let finished = shards.filter(ShardedEncoding.isFinished)
        if !finished.isEmpty {
            stderrLine("encode: \(finished.count) of \(shards.count) shard(s) kept from an earlier run of this command (\(directory))")
        }
        do {
            try ShardProcesses.run(shards.enumerated().filter { !finished.contains($0.element) }.map { rank, shard in
                ShardProcesses.Child(
                    name: "encode shard \(rank + 1) of \(shards.count) (inputs \(shard.rows))",
                    arguments: ["encode"] + modelOptions.arguments(threads: threads)
                        + ["--input", input, "--output", shard.output, "--format", format.rawValue, "--window", String(window),
                           "--rows", "\(shard.rows.lowerBound)..<\(shard.rows.upperBound)"] + (shard.ids.map { ["--ids", $0] } ?? []),
                    logPath: shard.output + ".log")
            })
        } catch {
            stderrLine("encode: the finished shards are kept in \(directory): run the same command again to go on from them")
            throw error
        }
        try ShardedEncoding.merge(shards, into: sink)
        try sink.commit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

extension EmbeddingFormat: ExpressibleByArgument {}
