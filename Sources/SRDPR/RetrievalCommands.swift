import ArgumentParser
import Data
import Foundation
import Retrieval

/// Options shared by `index`, `search` and `evaluate`: which model and how to run it.
struct RetrieverOptions: ParsableArguments {
    @Option(help: "A checkpoint of `srdpr train`, a directory of `srdpr export`, or a Hugging Face BERT directory.")
    var model: String
    @Option(name: .customLong("max-length"), help: "Longest sequence in tokens (default: the checkpoint's max_length, else 256).")
    var maxLength: Int?
    @Option(name: .customLong("sim-func"), help: "dot_product or cosine (default: the checkpoint's sim_func, else dot_product).")
    var simFunc: String?
    @Option(help: "cls or mean (default: the checkpoint's pooling, a sentence-transformers directory's 1_Pooling, else cls).")
    var pooling: Pooling?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.")
    var batchSize: Int = 32
    @Option(help: "Threads for OpenBLAS and the other loops.")
    var threads: Int = 2

    func load() throws -> TrainedRetriever {
        try loadRetriever(model: model, maxLength: maxLength, simFunc: simFunc, pooling: pooling, batchSize: batchSize, threads: threads)
    }
}

/// A model for `--model` commands, with the overrides of `RetrieverOptions`.
func loadRetriever(model: String, maxLength: Int?, simFunc: String?, pooling: Pooling? = nil, batchSize: Int, threads: Int) throws -> TrainedRetriever {
    var options = TrainedRetriever.Options()
    if let maxLength {
        guard maxLength >= 2 else { throw ValidationError("--max-length must be at least 2") }
        options.maxLength = maxLength
    }
    if let simFunc {
        guard let sim = SimilarityFunction(rawValue: simFunc) else {
            throw ValidationError("--sim-func must be dot_product or cosine, not '\(simFunc)'")
        }
        options.similarity = sim
    }
    options.pooling = pooling
    guard batchSize >= 1, threads >= 1 else { throw ValidationError("--batch-size and --threads must be at least 1") }
    options.batchSize = batchSize
    options.threads = threads
    return try TrainedRetriever(path: model, options: options)
}

extension Pooling: ExpressibleByArgument {}

func stderrLine(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Progress on stderr with the rate and the time left: a rewritten line on a terminal, a line
/// every 10% otherwise.
func progressPrinter(_ label: String) -> (Int, Int) -> Void {
    let terminal = isatty(2) != 0
    var lastTenth = -1
    var start: Date? = nil, startDone = 0
    var lastDraw = Date.distantPast
    return { done, total in
        let now = Date()
        if start == nil { start = now; startDone = done }
        let elapsed = now.timeIntervalSince(start!)
        var eta = ""
        if done > startDone, elapsed > 0, total > done {
            let rate = Double(done - startDone) / elapsed
            let left = Int((Double(total - done) / rate).rounded())
            eta = String(format: ", %.0f/s, ETA %d:%02d:%02d", rate, left / 3600, left / 60 % 60, left % 60)
        } else if done >= total, elapsed > 0 {
            eta = String(format: ", %.1f s", elapsed)
        }
        let tenth = total > 0 ? done * 10 / total : 10
        if terminal {
            guard done >= total || now.timeIntervalSince(lastDraw) >= 0.2 else { return }
            lastDraw = now
            let percent = total > 0 ? done * 100 / total : 100
            FileHandle.standardError.write(Data("\r\(label): \(done)/\(total) (\(percent)%\(eta))\u{1B}[K\(done >= total ? "\n" : "")".utf8))
        } else if tenth != lastTenth {
            stderrLine("\(label): \(done)/\(total)\(eta)")
        }
        lastTenth = tenth
    }
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
                               progress: progressPrinter("index"))
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
        try PassageIndex.build(corpus: corpus, encoder: encoder, directory: directory, progress: progressPrinter("index"))
        let passageIndex = try PassageIndex(directory: directory, expectedModel: (encoder.modelName, encoder.fingerprint))
        let result = try Evaluation.run(encoder: encoder, index: passageIndex, qrels: qrels, ks: ks,
                                        search: ExactSearch(selectionThreads: retriever.threads), warn: { stderrLine("warning: \($0)") })
        let seconds = Date().timeIntervalSince(start)
        let object = result.metrics.jsonObject(seconds: seconds, extra: [
            "unknown_positive_ids": result.unknownPositiveIDs,
            "questions_without_positive_in_corpus": result.questionsWithoutKnownPositive,
            "model": encoder.modelName, "passages": passageIndex.meta.encodedRows,
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
