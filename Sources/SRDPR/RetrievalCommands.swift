import ArgumentParser
import Data
import Foundation
import Model
import Retrieval

/// Options shared by `index`, `search` and `evaluate`: which model and how to run it.
struct RetrieverOptions: ParsableArguments {
    @OptionGroup var model: ModelOptions

    var threads: Int { model.threads }

    func load() throws -> TrainedRetriever { try model.retriever() }
}

extension ModelOptions {
    /// The model as index, search, evaluate and mine-hard-negatives use it.
    func retriever() throws -> TrainedRetriever { TrainedRetriever(model: try load()) }
}

/// A (done, total) progress callback drawing the one progress bar: passages indexed, questions searched.
func progressBar(_ label: String, unit: String) -> (Int, Int) -> Void {
    var bar: ProgressBar?
    return { done, total in
        if bar == nil { bar = ProgressBar(label: label, total: total, unit: unit) }
        bar!.update(done: done)
        if done >= total { bar!.finish() }
    }
}

/// Where the passages and the queries come from: today's JSON-lines files, TREC qrels with a
/// queries file, or a BEIR directory (`corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`).
struct EvaluationInputOptions: ParsableArguments {
    @Option(help: "Passage collection, JSON lines {\"id\" (or BEIR's \"_id\"), \"title\", \"text\"}.")
    var corpus: String?
    @Option(help: "Questions with their relevant passages, JSON lines {\"question\", \"positive_ids\"} (query ids 1, 2, ... unless a line has \"id\").")
    var qrels: String?
    @Option(name: .customLong("qrels-trec"), help: "Graded judgements in TREC form, \"qid 0 docid relevance\" per line (with --queries).")
    var qrelsTREC: String?
    @Option(help: "Queries, JSON lines {\"_id\", \"text\"} (BEIR) or {\"id\", \"question\"}.")
    var queries: String?
    @Option(help: "A BEIR dataset directory: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (graded).")
    var beir: String?
    @Option(help: "The qrels split of --beir (qrels/<split>.tsv); default test.")
    var split: String?

    var paths: EvaluationInputs {
        EvaluationInputs(corpus: corpus, qrels: qrels, qrelsTREC: qrelsTREC, queries: queries, beir: beir, split: split)
    }
}

/// The paths of ``EvaluationInputOptions``, and which files they name.
struct EvaluationInputs {
    var corpus: String? = nil
    var qrels: String? = nil
    var qrelsTREC: String? = nil
    var queries: String? = nil
    var beir: String? = nil
    var split: String? = nil

    func beirDataset() throws -> BEIRDataset? {
        guard let beir else {
            if let split { throw ValidationError("--split \(split) needs --beir DIR") }
            return nil
        }
        return try BEIRDataset(directory: beir, split: split ?? "test")
    }

    /// The passage collection's file: --corpus, or --beir's corpus.jsonl.
    func corpusPath() throws -> String {
        switch (corpus, beir) {
        case (let path?, nil): return path
        case (nil, _?): return try beirDataset()!.corpusPath
        case (_?, _?): throw ValidationError("give --corpus FILE or --beir DIR, not both")
        case (nil, nil): throw ValidationError("missing the passages: --corpus FILE or --beir DIR")
        }
    }

    /// The queries to evaluate with their judgements.
    func loadEvaluationSet() throws -> EvaluationSet {
        if let dataset = try beirDataset() {
            guard qrels == nil, qrelsTREC == nil, queries == nil else {
                throw ValidationError("--beir DIR brings its own queries and qrels: drop --qrels, --qrels-trec and --queries")
            }
            return try dataset.loadEvaluationSet()
        }
        switch (qrels, qrelsTREC, queries) {
        case (let path?, nil, nil): return try EvaluationSet.load(qrelsJSONLines: path)
        case (nil, let trec?, let queries?): return try EvaluationSet.load(queries: queries, qrels: trec, format: .trec)
        case (nil, _?, nil): throw ValidationError("--qrels-trec needs --queries FILE (the query texts by id)")
        case (nil, nil, _?): throw ValidationError("--queries needs --qrels-trec FILE (the judgements)")
        case (nil, nil, nil): throw ValidationError("missing the judgements: --qrels FILE, --queries FILE --qrels-trec FILE, or --beir DIR")
        default: throw ValidationError("give --qrels (JSON lines) or --queries with --qrels-trec, not both")
        }
    }

    /// The queries to search: --queries, or --beir's judged queries of --split.
    func loadQueries() throws -> [EvaluationQuery] {
        if let dataset = try beirDataset() {
            guard queries == nil else { throw ValidationError("give --queries FILE or --beir DIR, not both") }
            return try dataset.loadEvaluationSet().queries
        }
        guard let queries else { throw ValidationError("missing the queries: --queries FILE or --beir DIR [--split S]") }
        return try EvaluationSet.loadQueries(path: queries)
    }
}

/// `srdpr index`: encodes a passage collection into a memory-mapped matrix (resumable, streamed).
struct Index: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode a passage collection ({\"id\", \"title\", \"text\"} per line, or a BEIR directory's corpus) with the context encoder.",
        discussion: """
            Writes DIR/embeddings.f32, DIR/ids.jsonl and DIR/meta.json. The corpus is checked first (a bad line or a \
            repeated id stops the run before any encoding), then read as it is encoded, --chunk-rows passages at a \
            time, so memory does not grow with the corpus. A killed run continues where it stopped and gives the \
            same files as an uninterrupted one. --workers N starts N `srdpr index-worker` processes on this host \
            (--threads / N threads each) that ask this process for shards of --shard-chunks whole chunks as they \
            finish the last (largest first, so they end together) and send the embeddings back over loopback; the \
            shards are written under DIR/shards/ (a stopped run keeps them) and appended in order: the same bytes as \
            one process. --bind tcp://HOST:PORT --world-size N does the same across the hosts of a job: \
            `srdpr index-worker --coordinator tcp://HOST:PORT` on each host (same secret, --secret-file or \
            SRDPR_SECRET) encodes from its own copy of the corpus and model (checked against this one's); a lost \
            worker's shard goes to another (cluster/README.md).
            """)

    @OptionGroup var retriever: RetrieverOptions
    @Option(help: "Passage collection, JSON lines {\"id\" (or \"_id\"), \"title\", \"text\"}.")
    var corpus: String?
    @Option(help: "A BEIR dataset directory: its corpus.jsonl is indexed.")
    var beir: String?
    @Option(help: "Index directory.")
    var output: String
    @Option(name: .customLong("chunk-rows"), help: "Passages encoded and made durable at a time (memory holds one chunk).")
    var chunkRows: Int = PassageIndex.defaultChunkRows
    @Option(help: "Processes encoding shards of the corpus at once on this host, --threads / N threads each.")
    var workers: Int = 1
    @OptionGroup var job: IndexJobOptions
    @OptionGroup var security: SecurityOptions

    func run() throws {
        guard chunkRows >= 1 else { throw ValidationError("--chunk-rows must be at least 1") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        try job.validate(workers: workers)
        if job.bind == nil, security.secretFile != nil || security.curve {
            throw ValidationError("--secret-file and --curve are for building across hosts (--bind)")
        }
        let corpusPath = try EvaluationInputs(corpus: corpus, beir: beir).corpusPath()
        if let bind = job.bind {
            try runAcrossHosts(corpusPath: corpusPath, bind: bind)
        } else if workers > 1 {
            // The parent only needs the model's identity, read from its files; the index-workers load it.
            let signature = try PassageIndex.Signature(retriever.model.describe())
            try IndexWorkers.build(model: retriever.model, signature: signature, corpusPath: corpusPath, directory: output,
                                   chunkRows: chunkRows, workers: workers, chunksPerShard: job.shardChunks)
        } else {
            try PassageIndex.build(corpusPath: corpusPath, encoder: try retriever.load(), directory: output, chunkRows: chunkRows,
                                   progress: progressBar("index", unit: "passages"))
        }
        print(output)
    }
}

/// `srdpr search`: exact top-k search of questions against an index.
struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exact top-k search: one {\"query_id\", \"question\", \"hits\": [{\"id\", \"score\"}]} line per query; --run also writes a TREC run.",
        discussion: "Hits are ordered by score, equal scores by document id in descending byte order (trec_eval's order).")

    @OptionGroup var retriever: RetrieverOptions
    @Option(help: "Index directory built by `srdpr index` with the same model.")
    var index: String
    @Option(help: "Queries, JSON lines with \"question\" (or BEIR's \"text\") and an optional \"_id\"/\"id\".")
    var queries: String?
    @Option(help: "A BEIR dataset directory: search the queries judged in qrels/<split>.tsv.")
    var beir: String?
    @Option(help: "The qrels split of --beir; default test.")
    var split: String?
    @Option(name: .customLong("top-k"), help: "Hits per question.")
    var topK: Int = 10
    @Option(help: "Write the results here instead of stdout.")
    var output: String?
    @Option(name: .customLong("run"), help: "Also write a TREC run file (qid Q0 docid rank score tag).")
    var runFile: String?
    @Option(name: .customLong("run-tag"), help: "The run file's last column.")
    var runTag: String = "srdpr"
    @Option(name: .customLong("block-size"), help: "Passages scored per block (bounds memory).")
    var blockSize: Int = 16_384

    func run() throws {
        guard topK >= 1, blockSize >= 1 else { throw ValidationError("--top-k and --block-size must be at least 1") }
        let queries = try EvaluationInputs(queries: queries, beir: beir, split: split).loadQueries()
        if let runFile { try TRECRun.checkWritable(runFile, option: "--run") }
        let encoder = try retriever.load()
        let index = try PassageIndex(directory: self.index, expectedModel: (encoder.modelName, encoder.fingerprint))
        var out = ""
        var rankings: [[RankedHit]] = []
        let search = ExactSearch(blockSize: blockSize, selectionThreads: retriever.threads)
        let progress = progressBar("search", unit: "queries")
        for start in stride(from: 0, to: queries.count, by: 64) {
            let batch = Array(queries[start..<min(start + 64, queries.count)])
            let vectors = try encoder.encodeQuestions(batch.map(\.text))
            let hits = vectors.withUnsafeBufferPointer { q in
                search.search(queries: q, queryCount: batch.count, passages: index.embeddings,
                              passageCount: index.meta.encodedRows, dimension: index.meta.dimension,
                              k: topK, similarity: index.meta.similarity)
            }
            for (query, list) in zip(batch, hits) {
                let ranking = list.map { RankedHit(id: index.ids[$0.row], score: $0.score) }.sorted(by: RankedHit.ranksBefore)
                rankings.append(ranking)
                let object: [String: Any] = ["query_id": query.id, "question": query.text,
                                             "hits": ranking.map { ["id": $0.id, "score": Double($0.score)] }]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                out += String(decoding: data, as: UTF8.self) + "\n"
            }
            progress(start + batch.count, queries.count)
        }
        if let runFile { try TRECRun.write(path: runFile, queries: queries, rankings: rankings, tag: runTag) }
        if let output {
            do { try out.write(toFile: output, atomically: true, encoding: .utf8) } catch {
                throw RetrievalError.cannotWrite(path: output, reason: error.localizedDescription)
            }
        } else {
            print(out, terminator: "")
        }
    }
}

/// `srdpr evaluate`: top-k accuracy, recall@k, MRR@k and nDCG@k (graded) of a model on judged queries.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Retrieval accuracy of a model: prints one JSON object, a table on stderr.",
        discussion: """
            Judgements: --qrels (JSON lines), --queries with --qrels-trec, or --beir DIR --split S. Metrics are \
            trec_eval's (success = top-k accuracy, recall, recip_rank within k, ndcg_cut with gain = grade); \
            rankings are ordered by score, equal scores by document id in descending byte order, as trec_eval \
            orders a run. Queries without a judged positive in the corpus score 0 and are counted.
            """)

    @OptionGroup var retriever: RetrieverOptions
    @OptionGroup var input: EvaluationInputOptions
    @Option(help: "Cut-offs for top-k accuracy, recall, MRR and nDCG, comma-separated (MRR and nDCG also at 10).")
    var k: String = "1,5,20,100"
    @Option(help: "Also write the JSON object to this file.")
    var output: String?
    @Option(name: .customLong("run"), help: "Write the rankings as a TREC run file (qid Q0 docid rank score tag), max(k, 10) hits per query.")
    var runFile: String?
    @Option(name: .customLong("run-tag"), help: "The run file's last column.")
    var runTag: String = "srdpr"
    @Option(name: .customLong("per-query"), help: "Write every query's metrics, one JSON line per query.")
    var perQuery: String?
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
        let set = try input.paths.loadEvaluationSet()
        let corpusPath = try input.paths.corpusPath()
        // Output paths are checked before the long encoding, not after it.
        if let runFile { try TRECRun.checkWritable(runFile, option: "--run") }
        if let perQuery { try TRECRun.checkWritable(perQuery, option: "--per-query") }
        if let output { try TRECRun.checkWritable(output, option: "--output") }
        let encoder = try retriever.load()
        let directory = index ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("srdpr-eval-\(UUID().uuidString)").path
        defer { if index == nil { try? FileManager.default.removeItem(atPath: directory) } }
        try PassageIndex.build(corpusPath: corpusPath, encoder: encoder, directory: directory, progress: progressBar("index", unit: "passages"))
        let passageIndex = try PassageIndex(directory: directory, expectedModel: (encoder.modelName, encoder.fingerprint))
        let result = try Evaluation.run(encoder: encoder, index: passageIndex, set: set, ks: ks,
                                        search: ExactSearch(selectionThreads: retriever.threads), warn: { stderrLine("warning: \($0)") },
                                        progress: progressBar("search", unit: "queries"))
        let seconds = Date().timeIntervalSince(start)
        let object = result.metrics.jsonObject(seconds: seconds, extra: [
            "unknown_judged_documents": result.unknownJudgedDocuments,
            "unjudged_queries": set.queriesWithoutJudgement.count,
            "judged_unknown_queries": set.judgedUnknownQueries.count,
            "model": encoder.modelName, "passages": passageIndex.meta.encodedRows,
            "sim_func": encoder.model.settings.simFunc.rawValue, "sim_scale": encoder.model.settings.simScale,
            "max_length": encoder.model.settings.maxLength,
            "pooling": encoder.model.settings.pooling.rawValue, "do_lower_case": encoder.model.tokenizer.doLowerCase,
        ])
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        let line = String(decoding: data, as: UTF8.self)
        if let runFile { try TRECRun.write(path: runFile, queries: result.queries, rankings: result.rankings, tag: runTag) }
        if let perQuery {
            var text = ""
            for metrics in result.metrics.perQuery {
                let data = try JSONSerialization.data(withJSONObject: metrics.jsonObject(), options: [.sortedKeys, .withoutEscapingSlashes])
                text += String(decoding: data, as: UTF8.self) + "\n"
            }
            do { try text.write(toFile: perQuery, atomically: true, encoding: .utf8) } catch {
                throw RetrievalError.cannotWrite(path: perQuery, reason: error.localizedDescription)
            }
        }
        stderrLine(result.metrics.table())
        print(line)
        if let output {
            do { try (line + "\n").write(toFile: output, atomically: true, encoding: .utf8) } catch {
                throw RetrievalError.cannotWrite(path: output, reason: error.localizedDescription)
            }
        }
    }
}
