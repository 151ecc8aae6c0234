import ArgumentParser
import Collectives
import Foundation
import Model
import Retrieval

/// `srdpr mine-hard-negatives`: SR-DPR samples in, the same samples with mined `hardneg_contexts` out.
struct MineHardNegatives: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mine-hard-negatives",
        abstract: "Mine hard negatives for SR-DPR samples from a corpus, with BM25 (--bm25) or a model (--model).",
        discussion: """
            Each sample's first question is searched in the corpus; candidates ranked --range-min+1 ... \
            --range-max (positives included in the ranks) are taken in rank order (--sampling top) or in \
            a seeded random order (--sampling random), skipping: the sample's positives (by corpus id with \
            --qrels, else by identical title+text), any passage whose text equals a positive's, candidates \
            scoring above --max-score-ratio x the best positive's score or above that score minus --margin, \
            and repeats of a text already taken. The output keeps every sample, in order, with its \
            hardneg_contexts replaced (best rank first). A summary goes to --report and one line per \
            sample to --per-question. Outputs are written under temporary names and renamed at the end.

            BM25: Okapi BM25 with Lucene's idf ln(1 + (N - df + 0.5) / (df + 0.5)) over terms = maximal runs \
            of Unicode letters, marks and digits, each character lower-cased, stop words dropped \
            (--stopwords english: Lucene's 33 English stop words; none; or a file, one word a line), no \
            stemming; a passage is its title's terms then its text's. Scores in double precision; equal \
            scores ranked in corpus order. The index is built on disk (--index, reused and resumed), \
            memory-mapped for search.

            Model: the passages are encoded into a passage index on disk (--index, reused and resumed) as \
            `srdpr index` builds it, and each question is searched exactly in it as `srdpr search` does. \
            --workers N builds that index as `srdpr index --workers N` does: N `srdpr index-worker` children \
            pulling passage-range shards (--threads / N threads each), merged into the bytes of one process; \
            --bind tcp://HOST:PORT --world-size N builds it across the hosts of a job as `srdpr index --bind` \
            does (an `srdpr index-worker --coordinator tcp://HOST:PORT` per host). Either way this process then \
            encodes and searches the questions with --threads threads (a small part of the work: one question \
            per sample against the whole corpus): only the passages' encoding is spread.
            """)

    @Option(help: "SR-DPR samples, JSON lines {\"sample_id\", \"questions\", \"positive_contexts\", \"hardneg_contexts\"}.")
    var input: String
    @Option(help: "Passage collection, JSON lines {\"id\", \"title\", \"text\"} (or BEIR's {\"_id\", ...}).")
    var corpus: String
    @Option(help: "Output: the samples with their mined hardneg_contexts.")
    var output: String
    @Option(help: "Questions with positive corpus ids, JSON lines {\"question\", \"positive_ids\"} in the samples' order; without it positives are matched by identical title+text.")
    var qrels: String?

    @Flag(help: "Mine with BM25 (an index of our own, built on disk).")
    var bm25 = false
    @Option(help: "Mine with this model: a checkpoint of `srdpr train`, a directory of `srdpr export` or a Hugging Face / sentence-transformers directory.")
    var model: String?
    @Option(help: "Keep the BM25 or passage index in this directory (reused and resumed); by default a temporary one, removed at the end.")
    var index: String?

    @Option(name: .customLong("num-negatives"), help: "Hard negatives per question.")
    var numNegatives: Int
    @Option(name: .customLong("range-min"), help: "Skip the best RANGE_MIN candidates.")
    var rangeMin: Int = 0
    @Option(name: .customLong("range-max"), help: "Consider candidates down to this rank.")
    var rangeMax: Int = 100
    @Option(name: .customLong("max-score-ratio"), help: "Drop a candidate scoring above R x the best positive's score (e.g. 0.95).")
    var maxScoreRatio: Double?
    @Option(help: "Drop a candidate scoring above the best positive's score minus this margin.")
    var margin: Double?
    @Option(help: "top (best ranks first) or random (seeded) within the window.")
    var sampling: String = "top"
    @Option(help: "Seed of --sampling random.")
    var seed: Int = 12345

    @Option(help: "Summary report (JSON); default OUTPUT.report.json.")
    var report: String?
    @Option(name: .customLong("per-question"), help: "One JSON line per sample (negatives taken, their ids, what each guard dropped); default OUTPUT.per-question.jsonl.")
    var perQuestion: String?
    @Option(help: "Also write the retriever's raw candidates (id, score) per question, before any guard.")
    var candidates: String?

    @Option(help: "BM25 k1.")
    var k1: Double = 1.2
    @Option(help: "BM25 b.")
    var b: Double = 0.75
    @Option(help: "BM25 stop words: english, none, or a file (one word a line).")
    var stopwords: String = "english"

    @Option(name: .customLong("max-length"), help: "--model: longest sequence in tokens (default: the model's, as `srdpr evaluate`; capped at max_position_embeddings).")
    var maxLength: Int?
    @Option(name: .customLong("sim-func"), help: "--model: dot_product or cosine (default: the model's, as `srdpr evaluate`).")
    var simFunc: String?
    @Option(help: "--model: cls or mean (default: the model's, as `srdpr evaluate`).")
    var pooling: String?
    @Option(name: .customLong("do-lower-case"), help: "--model: true|false (default: the model's, as `srdpr evaluate`).")
    var doLowerCase: String?
    @Option(name: .customLong("batch-size"), help: "--model: sequences per forward pass.")
    var batchSize: Int = 32
    @Option(name: .customLong("query-batch"), help: "Questions searched at a time.")
    var queryBatch: Int = 256
    @Option(help: "Threads (default: all cores, as every command).")
    var threads: Int = BLASThreads.defaultCount
    @Option(help: "--model: processes building the passage index at once on this host, --threads / N threads each (as `srdpr index --workers`).")
    var workers: Int = 1
    @OptionGroup var job: IndexJobOptions
    @OptionGroup var security: SecurityOptions

    func validate() throws {
        guard bm25 != (model != nil) else { throw ValidationError("give exactly one retriever: --bm25 or --model M") }
        guard MiningOptions.Sampling(rawValue: sampling) != nil else { throw ValidationError("--sampling must be top or random, not '\(sampling)'") }
        guard threads >= 1, queryBatch >= 1 else { throw ValidationError("--threads and --query-batch must be at least 1") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        if bm25 && (workers > 1 || job.bind != nil) {
            throw ValidationError("--workers and --bind spread the encoding of a dense index: use them with --model (BM25 builds its index in one process)")
        }
        try job.validate(workers: workers)
        if job.bind == nil, security.secretFile != nil || security.curve {
            throw ValidationError("--secret-file and --curve are for building the index across hosts (--bind)")
        }
        if !bm25 && (k1 != 1.2 || b != 0.75 || stopwords != "english") {
            throw ValidationError("--k1, --b and --stopwords are BM25 settings: use them with --bm25")
        }
        if bm25 && (maxLength != nil || simFunc != nil || pooling != nil || doLowerCase != nil) {
            throw ValidationError("--max-length, --sim-func, --pooling and --do-lower-case are model settings: use them with --model")
        }
    }

    func run() throws {
        var options = MiningOptions()
        options.negatives = numNegatives
        options.rangeMin = rangeMin
        options.rangeMax = rangeMax
        options.maxScoreRatio = maxScoreRatio
        options.margin = margin
        options.sampling = MiningOptions.Sampling(rawValue: sampling)!
        options.seed = seed
        options.batchSize = queryBatch

        let directory = index ?? FileManager.default.temporaryDirectory.appendingPathComponent("srdpr-mine-\(UUID().uuidString)").path
        defer { if index == nil { try? FileManager.default.removeItem(atPath: directory) } }
        let retriever: CandidateRetriever
        if bm25 {
            let parameters = BM25Parameters(k1: k1, b: b)
            try parameters.validate()
            let analyzer = try TextAnalyzer.named(stopwords)
            let vocabulary = progressBar("bm25 index, pass 1", unit: "MB of corpus")
            let postings = progressBar("bm25 index, pass 2", unit: "passages")
            try BM25IndexBuilder.build(corpusPath: corpus, directory: directory, analyzer: analyzer) { p in
                if p.stage == "vocabulary" { vocabulary(p.done >> 20, p.total >> 20) } else { postings(p.done, p.total) }
            }
            retriever = BM25Retriever(index: try BM25Index(directory: directory), parameters: parameters, threads: threads)
        } else {
            let modelOptions = try ModelOptions.with(model: model!, maxLength: maxLength, doLowerCase: doLowerCase, simFunc: simFunc,
                                                     pooling: pooling, batchSize: batchSize, threads: threads)
            let passages = try Corpus.load(path: corpus)
            guard !passages.ids.isEmpty else { throw RetrievalError.cannotRead(path: corpus, reason: "the corpus holds no passage (an empty file or only blank lines)") }
            // Index-workers (children, or a launcher's on other hosts) encode the passages; this
            // process loads the model for the questions afterwards.
            if let bind = job.bind {
                try IndexWorkers.build(model: modelOptions, signature: PassageIndex.Signature(modelOptions.describe()), corpusPath: corpus,
                                       directory: directory, chunkRows: PassageIndex.defaultChunkRows, chunksPerShard: job.shardChunks,
                                       listen: try job.listen(bind: bind, security: security))
            } else if workers > 1 {
                try IndexWorkers.build(model: modelOptions, signature: PassageIndex.Signature(modelOptions.describe()), corpusPath: corpus,
                                       directory: directory, chunkRows: PassageIndex.defaultChunkRows, workers: workers,
                                       chunksPerShard: job.shardChunks)
            }
            let encoder = try modelOptions.retriever()
            if workers == 1, job.bind == nil {
                try PassageIndex.build(corpus: passages, encoder: encoder, directory: directory, progress: progressBar("index", unit: "passages"))
            }
            let passageIndex = try PassageIndex(directory: directory, expectedModel: (encoder.modelName, encoder.fingerprint))
            retriever = DenseRetriever(encoder: encoder, corpus: passages, index: passageIndex,
                                       search: ExactSearch(selectionThreads: threads))
        }
        let miner = HardNegativeMiner(retriever: retriever, options: options)
        let perQuestionPath = perQuestion ?? output + ".per-question.jsonl"
        let summary = try miner.run(inputPath: input, qrelsPath: qrels, outputPath: output, perQuestionPath: perQuestionPath,
                                    candidatesPath: candidates, progress: progressBar("mine", unit: "questions"))
        let object = summary.jsonObject(retriever: retriever.name, options: options, input: input, output: output)
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        let reportPath = report ?? output + ".report.json"
        do { try data.write(to: URL(fileURLWithPath: reportPath), options: .atomic) } catch {
            throw RetrievalError.cannotWrite(path: reportPath, reason: error.localizedDescription)
        }
        let dropped = MiningGuard.allCases.map { "\($0.rawValue) \(summary.dropped[$0] ?? 0)" }.joined(separator: ", ")
        stderrLine("mined \(summary.negatives) negatives for \(summary.questions) questions (\(summary.questionsShort) with fewer than \(numNegatives)); dropped: \(dropped); positives missing from the corpus: \(summary.positivesMissing) (in \(summary.questionsWithMissingPositives) questions)")
        print(output)
    }
}
