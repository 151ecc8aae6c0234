import ArgumentParser
import Data
import Foundation
import Model
import Retrieval

/// Options shared by `index`, `search` and `evaluate`: which model and how to run it.
struct RetrieverOptions: ParsableArguments {
    @OptionGroup var model: ModelOptions

    var threads: Int { model.threads }

    func load() throws -> TrainedRetriever {
        TrainedRetriever(model: try model.load())
    }
}

/// The bar of a (done, total) progress: passages indexed, questions searched.
func progressBar(_ label: String, unit: String) -> (Int, Int) -> Void {
    var bar: ProgressBar?
    return { done, total in
        if bar == nil { bar = ProgressBar(label: label, total: total, unit: unit) }
        bar!.update(done: done)
        if done >= total { bar!.finish() }
    }
}

/// The same, for commands with their own option names (`mine-hard-negatives`): one loader for every `--model`.
func loadRetriever(model: String, maxLength: Int?, simFunc: String?, batchSize: Int, threads: Int) throws -> TrainedRetriever {
    let options = try ModelOptions.parse(["--model", model, "--batch-size", String(batchSize), "--threads", String(threads)]
        + (maxLength.map { ["--max-length", String($0)] } ?? []) + (simFunc.map { ["--sim-func", $0] } ?? []))
    try options.validate()
    return TrainedRetriever(model: try options.load())
}

/// The shared progress line under the name the mining command uses.
func progressPrinter(_ label: String) -> (Int, Int) -> Void {
    progressBar(label, unit: "items")
}

/// `srdpr index`: encodes a passage collection into a memory-mapped matrix (resumable).
struct Index: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode a passage collection ({\"id\", \"title\", \"text\"} per line) with the context encoder.",
        discussion: "Writes DIR/embeddings.f32, DIR/ids.jsonl and DIR/meta.json; a killed run continues where it stopped.")

    @OptionGroup var retriever: RetrieverOptions
    @Option(help: "Passage collection, JSON lines.")
    var corpus: String
    @Option(help: "Index directory.")
    var output: String
    @Option(name: .customLong("chunk-rows"), help: "Passages encoded and made durable at a time.")
    var chunkRows: Int = 512

    func run() throws {
        guard chunkRows >= 1 else { throw ValidationError("--chunk-rows must be at least 1") }
        let encoder = try retriever.load()
        let corpus = try Corpus.load(path: self.corpus)
        try PassageIndex.build(corpus: corpus, encoder: encoder, directory: output, chunkRows: chunkRows,
                               progress: progressBar("index", unit: "passages"))
        print(output)
    }
}

/// `srdpr search`: exact top-k search of questions against an index.
struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exact top-k search: one {\"question\", \"hits\": [{\"id\", \"score\"}]} line per question.")

    @OptionGroup var retriever: RetrieverOptions
    @Option(help: "Index directory built by `srdpr index` with the same model.")
    var index: String
    @Option(help: "Questions, JSON lines with a \"question\" field.")
    var queries: String
    @Option(name: .customLong("top-k"), help: "Hits per question.")
    var topK: Int = 10
    @Option(help: "Write the results here instead of stdout.")
    var output: String?
    @Option(name: .customLong("block-size"), help: "Passages scored per block (bounds memory).")
    var blockSize: Int = 16_384

    func run() throws {
        guard topK >= 1, blockSize >= 1 else { throw ValidationError("--top-k and --block-size must be at least 1") }
        let encoder = try retriever.load()
        let index = try PassageIndex(directory: self.index, expectedModel: (encoder.modelName, encoder.fingerprint))
        let questions = try Qrels.loadQuestions(path: queries)
        var out = ""
        let search = ExactSearch(blockSize: blockSize, selectionThreads: retriever.threads)
        let progress = progressBar("search", unit: "questions")
        for start in stride(from: 0, to: questions.count, by: 64) {
            let batch = Array(questions[start..<min(start + 64, questions.count)])
            let vectors = try encoder.encodeQuestions(batch)
            let hits = vectors.withUnsafeBufferPointer { q in
                search.search(queries: q, queryCount: batch.count, passages: index.embeddings,
                              passageCount: index.meta.encodedRows, dimension: index.meta.dimension,
                              k: topK, similarity: index.meta.similarity)
            }
            for (question, list) in zip(batch, hits) {
                let object: [String: Any] = ["question": question,
                                             "hits": list.map { ["id": index.ids[$0.row], "score": Double($0.score)] }]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                out += String(decoding: data, as: UTF8.self) + "\n"
            }
            progress(start + batch.count, questions.count)
        }
        if let output {
            do { try out.write(toFile: output, atomically: true, encoding: .utf8) } catch {
                throw RetrievalError.cannotWrite(path: output, reason: error.localizedDescription)
            }
        } else {
            print(out, terminator: "")
        }
    }
}

/// `srdpr evaluate`: top-k accuracy, recall@k, MRR@10 and nDCG@10 of a model on qrels.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Retrieval accuracy of a model: prints one JSON object, a table on stderr.")

    @OptionGroup var retriever: RetrieverOptions
    @Option(help: "Passage collection, JSON lines {\"id\", \"title\", \"text\"}.")
    var corpus: String
    @Option(help: "Questions with their relevant passages, JSON lines {\"question\", \"positive_ids\"}.")
    var qrels: String
    @Option(help: "Cut-offs for top-k accuracy and recall, comma-separated.")
    var k: String = "1,5,20,100"
    @Option(help: "Also write the JSON object to this file.")
    var output: String?
    @Option(help: "Keep the passage index in this directory (reused and resumed); by default a temporary one.")
    var index: String?

    func run() throws {
        let ks = try k.split(separator: ",").map { part -> Int in
            guard let value = Int(part.trimmingCharacters(in: .whitespaces)), value >= 1 else {
                throw ValidationError("--k must be positive integers separated by commas, got '\(k)'")
            }
            return value
        }
        guard !ks.isEmpty else { throw ValidationError("--k needs at least one cut-off") }
        let start = Date()
        let encoder = try retriever.load()
        let corpus = try Corpus.load(path: self.corpus)
        let qrels = try Qrels.load(path: self.qrels)
        let directory = index ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("srdpr-eval-\(UUID().uuidString)").path
        defer { if index == nil { try? FileManager.default.removeItem(atPath: directory) } }
        try PassageIndex.build(corpus: corpus, encoder: encoder, directory: directory, progress: progressBar("index", unit: "passages"))
        let passageIndex = try PassageIndex(directory: directory, expectedModel: (encoder.modelName, encoder.fingerprint))
        let result = try Evaluation.run(encoder: encoder, index: passageIndex, qrels: qrels, ks: ks,
                                        search: ExactSearch(selectionThreads: retriever.threads), warn: { stderrLine("warning: \($0)") },
                                        progress: progressBar("search", unit: "questions"))
        let seconds = Date().timeIntervalSince(start)
        let object = result.metrics.jsonObject(seconds: seconds, extra: [
            "unknown_positive_ids": result.unknownPositiveIDs,
            "questions_without_positive_in_corpus": result.questionsWithoutKnownPositive,
            "model": encoder.modelName, "passages": passageIndex.meta.encodedRows,
            "sim_func": encoder.model.settings.simFunc.rawValue, "max_length": encoder.model.settings.maxLength,
            "pooling": encoder.model.settings.pooling.rawValue, "do_lower_case": encoder.model.tokenizer.doLowerCase,
        ])
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        let line = String(decoding: data, as: UTF8.self)
        stderrLine(result.metrics.table())
        print(line)
        if let output {
            do { try (line + "\n").write(toFile: output, atomically: true, encoding: .utf8) } catch {
                throw RetrievalError.cannotWrite(path: output, reason: error.localizedDescription)
            }
        }
    }
}
