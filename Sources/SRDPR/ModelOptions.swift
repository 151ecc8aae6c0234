import ArgumentParser
import Data
import Foundation
import Model

/// `--model` and how to run it: the options of every command that embeds text (encode, index,
/// search, evaluate), with the same defaults everywhere.
struct ModelOptions: ParsableArguments {
    @Option(help: """
        A checkpoint of `srdpr train`, an export directory of `srdpr export` (question encoder for questions, \
        context encoder for passages), or one Hugging Face / sentence-transformers directory (used for both).
        """)
    var model: String
    @Option(name: .customLong("max-length"), help: """
        Longest sequence in tokens, [CLS] and [SEP] included (default: the checkpoint's or export's max_length, \
        else sentence_bert_config.json's max_seq_length, else 256; capped at max_position_embeddings).
        """)
    var maxLength: Int?
    @Option(name: .customLong("do-lower-case"), help: "true|false (default: the run's do_lower_case, else tokenizer_config.json's, else true).")
    var doLowerCase: String?
    @Option(name: .customLong("sim-func"), help: """
        dot_product or cosine (default: the run's sim_func; a sentence-transformers directory's similarity; else dot_product).
        """)
    var simFunc: String?
    @Option(help: """
        cls or mean (default: the run's pooling; a sentence-transformers directory's 1_Pooling; else cls).
        """)
    var pooling: String?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass (at most; see --batch-tokens).")
    var batchSize: Int = 32
    @Option(name: .customLong("batch-tokens"), help: """
        Tokens per forward pass at most (sequences x the batch's longest): longer inputs run fewer to a batch, so \
        a batch's activations stay in cache (default: 1024 = 8 passages of 128 tokens, 4 of 256, 32 questions).
        """)
    var batchTokens: Int = TextEncoder.defaultBatchTokens
    @Option(help: "Threads for OpenBLAS and the other loops (default: all cores).")
    var threads: Int = BLASThreads.defaultCount

    /// The options of a command that names them differently (`mine-hard-negatives`), validated.
    static func with(model: String, maxLength: Int?, doLowerCase: String?, simFunc: String?, pooling: String?,
                     batchSize: Int, threads: Int) throws -> ModelOptions {
        let options = try parse(arguments(model: model, maxLength: maxLength, doLowerCase: doLowerCase, simFunc: simFunc,
                                          pooling: pooling, batchSize: batchSize, threads: threads))
        try options.validate()
        return options
    }

    /// These options as command-line arguments, with `threads` instead of this run's (what the
    /// child processes of `--workers` are given).
    func arguments(threads: Int) -> [String] {
        Self.arguments(model: model, maxLength: maxLength, doLowerCase: doLowerCase, simFunc: simFunc, pooling: pooling,
                       batchSize: batchSize, threads: threads) + ["--batch-tokens", String(batchTokens)]
    }

    private static func arguments(model: String, maxLength: Int?, doLowerCase: String?, simFunc: String?, pooling: String?,
                                  batchSize: Int, threads: Int) -> [String] {
        var arguments = ["--model", model, "--batch-size", String(batchSize), "--threads", String(threads)]
        if let maxLength { arguments += ["--max-length", String(maxLength)] }
        if let doLowerCase { arguments += ["--do-lower-case", doLowerCase] }
        if let simFunc { arguments += ["--sim-func", simFunc] }
        if let pooling { arguments += ["--pooling", pooling] }
        return arguments
    }

    func validate() throws {
        // Before any other input is read: a wrong --model is the likeliest mistake.
        guard FileManager.default.fileExists(atPath: model) else {
            throw CLIError("--model \(model): no such file or directory; give a checkpoint of `srdpr train`, an export "
                + "directory of `srdpr export`, or a Hugging Face / sentence-transformers model directory")
        }
        if let maxLength, maxLength < 2 { throw ValidationError("--max-length must be at least 2") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard batchTokens >= 1 else { throw ValidationError("--batch-tokens must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        _ = try lowerCase()
        _ = try similarity()
        _ = try poolingMode()
    }

    func poolingMode() throws -> Pooling? {
        guard let pooling else { return nil }
        guard let mode = Pooling(rawValue: pooling) else { throw ValidationError("--pooling must be cls or mean, not '\(pooling)'") }
        return mode
    }

    func lowerCase() throws -> Bool? {
        guard let doLowerCase else { return nil }
        switch doLowerCase.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw ValidationError("--do-lower-case must be true or false, not '\(doLowerCase)'")
        }
    }

    func similarity() throws -> SimilarityFunction? {
        guard let simFunc else { return nil }
        guard let sim = SimilarityFunction(rawValue: simFunc) else {
            throw ValidationError("--sim-func must be dot_product or cosine, not '\(simFunc)'")
        }
        return sim
    }

    var inferenceOptions: InferenceModel.Options {
        get throws {
            var options = InferenceModel.Options()
            options.maxLength = maxLength
            options.doLowerCase = try lowerCase()
            options.similarity = try similarity()
            options.pooling = try poolingMode()
            options.batchSize = batchSize
            options.batchTokens = batchTokens
            options.threads = threads
            return options
        }
    }

    /// Loads the model; warnings and notes go to stderr.
    func load() throws -> InferenceModel {
        let model = try InferenceModel(path: model, options: inferenceOptions, warn: stderrLine)
        for note in model.notes { stderrLine("note: \(note)") }
        return model
    }

    /// The model without its weights (settings, tokenizer, size); warnings and notes go to stderr.
    func describe() throws -> ModelDescription {
        let description = try ModelDescription(path: model, options: inferenceOptions, warn: stderrLine)
        for note in description.notes { stderrLine("note: \(note)") }
        return description
    }
}

func stderrLine(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
