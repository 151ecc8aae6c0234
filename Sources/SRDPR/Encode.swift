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
            Normalize does). The input is read a window of lines at a time, so memory does not grow \
            with the file; outputs appear at their paths only when the run succeeds.
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

    func run() throws {
        if format == .npy, ids == nil {
            throw ValidationError("--format npy needs --ids FILE: the matrix's rows carry no ids of their own")
        }
        guard FileManager.default.isReadableFile(atPath: input) else {
            throw CLIError("cannot read --input \(input) (missing or unreadable)")
        }
        let model = try modelOptions.load()
        let total = try EmbeddingStream.countInputs(path: input)
        let bar = ProgressBar(label: "encode", total: total, unit: "inputs")
        let sink = try EmbeddingSink(path: output, format: format, dimension: model.dimension, idsPath: ids)
        var before = 0
        try EmbeddingStream.run(inputPath: input, into: sink, encode: { inputs in
            defer { before += inputs.count }
            return try model.encode(inputs, normalized: model.similarity == .cosine, progress: { bar.update(done: before + $0) })
        })
        bar.finish()
    }
}

extension EmbeddingFormat: ExpressibleByArgument {}
