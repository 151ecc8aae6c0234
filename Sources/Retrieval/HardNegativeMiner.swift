import Foundation
import Data

/// How candidates become hard negatives.
public struct MiningOptions {
    public enum Sampling: String, Sendable { case top, random }

    /// Negatives wanted per question.
    public var negatives: Int = 5
    /// The window of ranks considered: candidates ranked rangeMin+1 ... rangeMax (1-based ranks
    /// in the retriever's list, positives included), i.e. the best `rangeMin` are skipped.
    public var rangeMin: Int = 0
    public var rangeMax: Int = 100
    /// Drop a candidate scoring above ratio x the best positive's score.
    public var maxScoreRatio: Double?
    /// Drop a candidate scoring above the best positive's score minus this margin.
    public var margin: Double?
    public var sampling: Sampling = .top
    /// Seeds `random` sampling (Python's `random.Random(seed)`, one generator for the whole run).
    public var seed: Int = 12345
    /// Questions retrieved at a time.
    public var batchSize: Int = 256

    public init() {}

    public func validate(passageCount: Int) throws {
        guard negatives >= 1 else { throw RetrievalError.invalidArgument(name: "--num-negatives", reason: "must be at least 1, got \(negatives)") }
        guard rangeMin >= 0 else { throw RetrievalError.invalidArgument(name: "--range-min", reason: "must be >= 0, got \(rangeMin)") }
        guard rangeMax > rangeMin else {
            throw RetrievalError.invalidArgument(name: "--range-max", reason: "must be above --range-min (\(rangeMin)), got \(rangeMax)")
        }
        guard rangeMax <= passageCount else {
            throw RetrievalError.invalidArgument(name: "--range-max", reason: "\(rangeMax) is beyond the corpus, which holds \(passageCount) passages")
        }
        if let maxScoreRatio, !(maxScoreRatio.isFinite && maxScoreRatio > 0) {
            throw RetrievalError.invalidArgument(name: "--max-score-ratio", reason: "must be a number > 0, got \(maxScoreRatio)")
        }
        if let margin, !margin.isFinite {
            throw RetrievalError.invalidArgument(name: "--margin", reason: "must be a finite number, got \(margin)")
        }
        guard batchSize >= 1 else { throw RetrievalError.invalidArgument(name: "--batch-size", reason: "must be at least 1") }
    }
}

/// Why a candidate in the window was not taken.
public enum MiningGuard: String, CaseIterable, Sendable {
    /// It is one of the question's positives (by corpus id).
    case positiveID = "positive_id"
    /// Its text is identical to a positive's (a duplicate passage under another id).
    case positiveText = "positive_text"
    /// It scores above --max-score-ratio x the best positive's score.
    case scoreRatio = "score_ratio"
    /// It scores above the best positive's score minus --margin.
    case margin
    /// Its text is identical to a negative already taken for the question.
    case duplicateNegative = "duplicate_negative"
}

/// Totals of a mining run (the summary report).
public struct MiningSummary {
    public var questions = 0
    public var negatives = 0
    public var questionsShort = 0
    public var questionsWithMissingPositives = 0
    public var positivesMissing = 0
    public var questionsWithoutPositiveScore = 0
    public var dropped: [MiningGuard: Int] = [:]
    public var histogram: [Int: Int] = [:]

    public func jsonObject(retriever: String, options: MiningOptions, input: String, output: String) -> [String: Any] {
        var object: [String: Any] = [
            "retriever": retriever, "input": input, "output": output,
            "questions": questions, "negatives": negatives,
            "questions_with_fewer_than_requested": questionsShort,
            "questions_with_positives_missing_from_corpus": questionsWithMissingPositives,
            "positives_missing_from_corpus": positivesMissing,
            "questions_without_positive_score": questionsWithoutPositiveScore,
            "dropped": Dictionary(uniqueKeysWithValues: MiningGuard.allCases.map { ($0.rawValue, dropped[$0] ?? 0) }),
            "negatives_per_question": Dictionary(uniqueKeysWithValues: histogram.map { (String($0.key), $0.value) }),
            "num_negatives": options.negatives, "range_min": options.rangeMin, "range_max": options.rangeMax,
            "sampling": options.sampling.rawValue, "seed": options.seed,
        ]
        if let r = options.maxScoreRatio { object["max_score_ratio"] = r }
        if let m = options.margin { object["margin"] = m }
        return object
    }
}

/// Mines hard negatives for SR-DPR training samples (see `MiningOptions` and `MiningGuard`):
/// samples are read from JSON lines, their first question is searched, and their
/// `hardneg_contexts` are replaced by the chosen negatives (best rank first); every other field and
/// the sample order are kept. The outputs are written under temporary names and renamed at the end.
public struct HardNegativeMiner {
    public let retriever: CandidateRetriever
    public let options: MiningOptions

    public init(retriever: CandidateRetriever, options: MiningOptions) {
        self.retriever = retriever
        self.options = options
    }

    /// The positives of one sample resolved against the corpus.
    struct Positives {
        var rows: Set<Int> = []
        var missing = 0
    }

    /// - Parameters:
    ///   - qrelsPath: JSON lines `{"question", "positive_ids"}` in the samples' order; without it
    ///     positives are found in the corpus by identical title and text.
    ///   - perQuestionPath: one JSON line per sample (counts, ids taken, what each guard dropped).
    ///   - candidatesPath: the retriever's raw candidates (ids and scores, before any guard).
    public func run(inputPath: String, qrelsPath: String?, outputPath: String, perQuestionPath: String?,
                    candidatesPath: String? = nil, progress: (Int, Int) -> Void = { _, _ in }) throws -> MiningSummary {
        try options.validate(passageCount: retriever.passageCount)
        let input: JSONLinesFile
        do { input = try JSONLinesFile(path: inputPath) } catch {
            throw RetrievalError.cannotRead(path: inputPath, reason: "\(error)")
        }
        // Pass 1: validate the samples and gather what their positives are.
        var lines: [Int] = []
        var questions: [String] = []
        var positiveKeys: [[UInt64]] = []        // per sample: hashes of its positives' title+text
        try input.forEachLine { number, bytes, _ in
            let sample = try parseSample(bytes, path: inputPath, line: number)
            lines.append(number)
            questions.append(sample.question)
            positiveKeys.append(sample.positives.map { HardNegativeMiner.passageKey(title: $0.title, text: $0.text) })
        }
        guard !lines.isEmpty else { throw RetrievalError.cannotRead(path: inputPath, reason: "no samples (the file is empty)") }
        var positiveIDs: [[String]]? = nil
        if let qrelsPath {
            let qrels = try Qrels.load(path: qrelsPath)
            guard qrels.questions.count == questions.count else {
                throw RetrievalError.invalidArgument(name: "--qrels", reason: "\(qrelsPath) has \(qrels.questions.count) questions, \(inputPath) has \(questions.count) samples; they must be in the same order")
            }
            for i in questions.indices where qrels.questions[i] != questions[i] {
                throw RetrievalError.badLine(path: qrelsPath, line: i + 1, reason: "question \"\(qrels.questions[i])\" differs from the sample's on line \(lines[i]) of \(inputPath) (\"\(questions[i])\"); the files must be in the same order")
            }
            positiveIDs = qrels.positiveIDs
        }
        let resolved = try resolvePositives(positiveIDs: positiveIDs, positiveKeys: positiveKeys)

        // Pass 2: retrieve, select and write.
        let output = try AtomicOutputFile(path: outputPath)
        let perQuestion = try perQuestionPath.map { try AtomicOutputFile(path: $0) }
        let candidatesFile = try candidatesPath.map { try AtomicOutputFile(path: $0) }
        var summary = MiningSummary()
        var random = PythonRandom(seed: options.seed)
        var sampleIndex = 0
        var batch: [(line: Int, object: JSONValue, sample: ParsedSample)] = []
        func flush() throws {
            guard !batch.isEmpty else { return }
            let hits = try retriever.retrieve(questions: batch.map { $0.sample.question }, k: options.rangeMax)
            for (entry, candidates) in zip(batch, hits) {
                let index = sampleIndex
                sampleIndex += 1
                let positives = resolved[index]
                let choice = try select(sample: entry.sample, candidates: candidates, positives: positives, random: &random)
                var members: [JSONMember] = []
                if case .object(let m) = entry.object { members = m }
                let negatives = JSONValue.array(choice.taken.map { record in
                    JSONValue.object([JSONMember("title", .string(Array(record.title.utf8))),
                                      JSONMember("text", .string(Array(record.text.utf8)))])
                })
                if let at = members.firstIndex(where: { $0.key == Array("hardneg_contexts".utf8) }) {
                    members[at].value = negatives
                } else {
                    members.append(JSONMember("hardneg_contexts", negatives))
                }
                try output.write(JSONValue.object(members).jsonText + "\n")
                summary.questions += 1
                summary.negatives += choice.taken.count
                summary.histogram[choice.taken.count, default: 0] += 1
                if choice.taken.count < options.negatives { summary.questionsShort += 1 }
                if positives.missing > 0 { summary.questionsWithMissingPositives += 1 }
                summary.positivesMissing += positives.missing
                if choice.bestPositiveScore == nil { summary.questionsWithoutPositiveScore += 1 }
                for (guardName, count) in choice.dropped { summary.dropped[guardName, default: 0] += count }
                if let perQuestion {
                    var object: [String: Any] = [
                        "line": entry.line, "question": entry.sample.question, "negatives": choice.taken.count,
                        "negative_ids": choice.taken.map(\.id), "candidates_in_window": choice.inWindow,
                        "positives": entry.sample.positives.count, "positives_found_in_corpus": positives.rows.count,
                        "positives_missing_from_corpus": positives.missing,
                        "dropped": Dictionary(uniqueKeysWithValues: MiningGuard.allCases.map { ($0.rawValue, choice.dropped[$0] ?? 0) }),
                    ]
                    if let id = entry.sample.sampleID { object["sample_id"] = id }
                    if let best = choice.bestPositiveScore { object["best_positive_score"] = best }
                    try perQuestion.write(HardNegativeMiner.jsonLine(object))
                }
                if let candidatesFile {
                    var object: [String: Any] = ["question": entry.sample.question]
                    object["hits"] = try candidates.map { ["id": try retriever.passage(row: $0.row).id, "score": $0.score] as [String: Any] }
                    try candidatesFile.write(HardNegativeMiner.jsonLine(object))
                }
            }
            batch.removeAll(keepingCapacity: true)
            progress(sampleIndex, lines.count)
        }
        do {
            progress(0, lines.count)
            try input.forEachLine { number, bytes, _ in
                let object = try JSONLines.object(bytes, path: inputPath, line: number)
                batch.append((number, object, try parseSample(bytes, path: inputPath, line: number)))
                if batch.count == options.batchSize { try flush() }
            }
            try flush()
            try output.commit()
            try perQuestion?.commit()
            try candidatesFile?.commit()
        } catch {
            output.abandon()
            perQuestion?.abandon()
            candidatesFile?.abandon()
            throw error
        }
        return summary
    }

    // MARK: - samples

    struct ParsedSample {
        var sampleID: Int?
        var question: String
        var positives: [(title: String, text: String)]
        var positivePassages: [Passage] { positives.map { Passage(title: $0.title, text: $0.text) } }
    }

    func parseSample(_ bytes: UnsafeBufferPointer<UInt8>, path: String, line: Int) throws -> ParsedSample {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw RetrievalError.badLine(path: path, line: line, reason: "malformed JSON: \(error)")
        }
        do { try SampleJSON.validate(value) } catch {
            throw RetrievalError.badLine(path: path, line: line, reason: error.message)
        }
        guard case .array(let questions)? = value["questions"], let first = questions.first else {
            throw RetrievalError.badLine(path: path, line: line, reason: "the sample has no question")
        }
        guard let question = first.stringValue else {
            throw RetrievalError.badLine(path: path, line: line, reason: "the first question is pre-tokenized (token ids); mining needs text")
        }
        var positives: [(String, String)] = []
        if case .array(let list)? = value["positive_contexts"] {
            for passage in list {
                guard let title = passage["title"]?.stringValue, let text = passage["text"]?.stringValue else {
                    throw RetrievalError.badLine(path: path, line: line, reason: "a positive context is pre-tokenized (token ids); mining needs text")
                }
                positives.append((title, text))
            }
        }
        var sampleID: Int? = nil
        if case .int(let id)? = value["sample_id"] { sampleID = id }
        return ParsedSample(sampleID: sampleID, question: question, positives: positives)
    }

    static func passageKey(title: String, text: String) -> UInt64 {
        BM25IndexBuilder.stableHash(title + "\u{1}" + text)
    }

    static func normalisedText(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// One scan of the corpus: positive ids (or title+text) to rows.
    func resolvePositives(positiveIDs: [[String]]?, positiveKeys: [[UInt64]]) throws -> [Positives] {
        var rowOfID: [String: Int] = [:]
        var rowsOfKey: [UInt64: [Int]] = [:]
        if let positiveIDs {
            for ids in positiveIDs { for id in ids { rowOfID[id] = -1 } }
        } else {
            for keys in positiveKeys { for key in keys { rowsOfKey[key] = [] } }
        }
        try retriever.forEachPassage { row, record in
            if positiveIDs != nil {
                if rowOfID[record.id] != nil { rowOfID[record.id] = row }
            } else {
                let key = HardNegativeMiner.passageKey(title: record.title, text: record.text)
                if rowsOfKey[key] != nil { rowsOfKey[key]!.append(row) }
            }
        }
        var result: [Positives] = []
        for index in positiveKeys.indices {
            var positives = Positives()
            if let positiveIDs {
                for id in positiveIDs[index] {
                    if let row = rowOfID[id], row >= 0 { positives.rows.insert(row) } else { positives.missing += 1 }
                }
            } else {
                for key in positiveKeys[index] {
                    let rows = rowsOfKey[key] ?? []
                    if rows.isEmpty { positives.missing += 1 }
                    positives.rows.formUnion(rows)
                }
            }
            result.append(positives)
        }
        return result
    }

    // MARK: - selection

    struct Choice {
        var taken: [CorpusRecord] = []
        var dropped: [MiningGuard: Int] = [:]
        var inWindow = 0
        var bestPositiveScore: Double?
    }

    func select(sample: ParsedSample, candidates: [Hit<Double>], positives: Positives,
                random: inout PythonRandom) throws -> Choice {
        var choice = Choice()
        let positiveScores = try retriever.scores(question: sample.question, passages: sample.positivePassages)
        choice.bestPositiveScore = positiveScores.max()
        let positiveTexts = Set(sample.positives.map { HardNegativeMiner.normalisedText($0.text) })
        var survivors: [(hit: Hit<Double>, record: CorpusRecord)] = []
        var takenTexts = Set<String>()
        let window = candidates.dropFirst(options.rangeMin).prefix(options.rangeMax - options.rangeMin)
        choice.inWindow = window.count
        for hit in window {
            // Top sampling stops at the first `negatives` that pass: later candidates are not examined.
            if options.sampling == .top && survivors.count == options.negatives { break }
            if positives.rows.contains(hit.row) { choice.dropped[.positiveID, default: 0] += 1; continue }
            let record = try retriever.passage(row: hit.row)
            let text = HardNegativeMiner.normalisedText(record.text)
            if positiveTexts.contains(text) { choice.dropped[.positiveText, default: 0] += 1; continue }
            if let best = choice.bestPositiveScore {
                if let ratio = options.maxScoreRatio, hit.score > ratio * best {
                    choice.dropped[.scoreRatio, default: 0] += 1; continue
                }
                if let margin = options.margin, hit.score > best - margin {
                    choice.dropped[.margin, default: 0] += 1; continue
                }
            }
            if !takenTexts.insert(text).inserted { choice.dropped[.duplicateNegative, default: 0] += 1; continue }
            survivors.append((hit, record))
        }
        // Random sampling draws `negatives` of all the survivors in a seeded random order; both list
        // the negatives best rank first.
        var chosen = Array(survivors.indices)
        if options.sampling == .random {
            random.shuffle(&chosen)
            chosen = Array(chosen.prefix(options.negatives)).sorted()
        }
        choice.taken = chosen.map { survivors[$0].record }
        return choice
    }

    static func jsonLine(_ object: [String: Any]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
