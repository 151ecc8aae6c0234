import ArgumentParser
import JobContracts
import Data
import Foundation
import Model

/// `srdpr encode`: embeddings of questions and passages with a Hugging Face BERT directory.
struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed questions and passages (one JSON line in, one embedding out, in order, as the input is read).",
        discussion: """
            Input lines: {"question": s} (question encoder), {"title": t, "text": s} (context encoder) \
            or {"input_ids": [...]} (context encoder, no tokenisation). --model is a Hugging Face \
            directory (config.json, vocab.txt, model.safetensors or pytorch_model.bin; both encoders \
            start from it) or a checkpoint written by `srdpr train` (its two encoders and vocabulary).
            """)

    @Option(help: "Hugging Face model directory, or a checkpoint of `srdpr train`.")
    var model: String
    @Option(help: "Input JSON-lines file.")
    var input: String
    @Option(help: "Output JSON-lines file.")
    var output: String
    @Option(help: "jsonl: one {\"embedding\": [...]} line per input; npy: one float32 NumPy matrix [inputs, dimension].")
    var format: EmbeddingFormat = .jsonl
    @Option(help: "Also write one JSON string per output row: the input line's \"id\" (or \"_id\"), else its line number.")
    var ids: String?
    @Option(name: .customLong("max-length"), help: "Longest sequence in tokens, [CLS] and [SEP] included.")
    var maxLength: Int = 256
    @Option(name: .customLong("do-lower-case"), help: "true|false (default: tokenizer_config.json's, else true).")
    var doLowerCase: String?
    @Option(help: "cls or mean (default: the checkpoint's pooling, a sentence-transformers directory's 1_Pooling, else cls).")
    var pooling: Pooling?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.")
    var batchSize: Int = 32
    @Option(help: "Threads for OpenBLAS and the other loops.")
    var threads: Int = 2

    func run() throws {
        if format == .npy, ids == nil {
            throw ValidationError("--format npy needs --ids FILE: the matrix's rows carry no ids of their own")
        }
        guard maxLength >= 2 else { throw ValidationError("--max-length must be at least 2") }
        guard FileManager.default.isReadableFile(atPath: input) else { throw CLIError("cannot read --input \(input) (missing or unreadable)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        let dir = URL(fileURLWithPath: model)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) else {
            throw CLIError("--model \(model): no such file or directory; give a checkpoint of `srdpr train` or a Hugging Face "
                + "BERT directory (e.g. question_encoder/ of `srdpr export`)")
        }
        if !isDirectory.boolValue {
            // A checkpoint of `srdpr train`: both encoders, the vocabulary and do_lower_case are inside.
            let loaded = try TrainingCheckpoint.loadModel(dir)
            guard let vocab = loaded.tokenizerFiles["vocab.txt"] else { throw CLIError("checkpoint \(model) holds no vocab.txt") }
            let lower = try doLowerCase.map { _ in try resolveLowerCase(dir) } ?? loaded.config.doLowerCase
            let tokenizer = try BertTokenizer(vocabulary: Vocabulary(vocabText: vocab, path: model + " (vocab.txt)"),
                                              doLowerCase: lower, source: model)
            try encodeFile(model: loaded.model, tokenizer: tokenizer)
            return
        }
        let lower = try resolveLowerCase(dir)
        let biEncoder = try BiEncoder.load(directory: dir, pooling: pooling)
        let tokenizer = try BertTokenizer(vocabFile: dir.appendingPathComponent("vocab.txt"), doLowerCase: lower)
        try encodeFile(model: biEncoder, tokenizer: tokenizer)
    }

    /// Reads --input, embeds every line in order, writes --output.
    func encodeFile(model biEncoder: BiEncoder, tokenizer: BertTokenizer) throws {
        if let pooling { biEncoder.pooling = pooling }
        BLASThreads.set(threads)
        biEncoder.threads = threads
        let encoder = TextEncoder(model: biEncoder, tokenizer: tokenizer,
                                  maxLength: maxLength, batchSize: batchSize)
        let sink = try EmbeddingSink(path: output, format: format, dimension: biEncoder.context.outputDim, idsPath: ids)
        try EmbeddingStream.run(inputPath: input, into: sink, encode: { try encoder.encode($0) })
    }

    func resolveLowerCase(_ dir: URL) throws -> Bool {
        if let doLowerCase {
            switch doLowerCase.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw ValidationError("--do-lower-case must be true or false, not '\(doLowerCase)'")
            }
        }
        let url = dir.appendingPathComponent("tokenizer_config.json")
        if let data = try? Data(contentsOf: url),
           let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
           let value = json["do_lower_case"] as? Bool {
            return value
        }
        return true
    }
}

extension EmbeddingFormat: ExpressibleByArgument {}
