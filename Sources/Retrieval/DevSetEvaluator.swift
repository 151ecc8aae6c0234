import Data
import Foundation
import Model

/// The dev-set evaluation during training (`eval.*`, `eval_every`): the dev corpus and judged
/// queries are read once, before training starts (so a bad file stops the run at once, naming
/// it); each evaluation encodes them with the live bi-encoder, searches exactly and scores the
/// rankings as `srdpr evaluate` does.
public final class DevSetEvaluator: DevSetEvaluating {
    public let corpus: Corpus
    public let set: EvaluationSet
    public let ks: [Int]
    public let similarity: SimilarityFunction
    public var batchSize = 64

    /// Reads the dev set `config.eval` names; the warnings about it (unknown ids, unjudged
    /// queries) go to `warn` once, here.
    public init(config: TrainingConfig, warn: (String) -> Void) throws {
        guard let dev = config.eval else {
            throw RetrievalError.invalidArgument(name: "eval.*", reason: "no dev set configured")
        }
        if let directory = dev.beir {
            let dataset = try BEIRDataset(directory: directory, split: dev.split)
            corpus = try dataset.loadCorpus()
            set = try dataset.loadEvaluationSet()
        } else {
            guard let corpusPath = dev.corpus, let qrels = dev.qrels else {
                throw RetrievalError.invalidArgument(name: "eval.corpus/eval.qrels", reason: "both are needed without eval.beir")
            }
            corpus = try Corpus.load(path: corpusPath)
            if let queries = dev.queries {
                set = try EvaluationSet.load(queries: queries, qrels: qrels, format: try Judgements.detectFormat(path: qrels))
            } else {
                set = try EvaluationSet.load(qrelsJSONLines: qrels)
            }
        }
        guard !set.queries.isEmpty else {
            throw RetrievalError.invalidArgument(name: "eval.*", reason: "the dev set has no judged query")
        }
        guard !corpus.ids.isEmpty else {
            throw RetrievalError.invalidArgument(name: "eval.*", reason: "the dev corpus \(corpus.path) is empty")
        }
        ks = dev.k
        similarity = config.simFunc
        let checked = Evaluation.checkedJudgements(set, corpusIDs: Set(corpus.ids), warn: { warn("dev set: \($0)") })
        let withoutPositive = checked.grades.filter { !$0.values.contains { $0 > 0 } }.count
        if withoutPositive > 0 {
            warn("dev set: \(withoutPositive) of \(set.queries.count) queries have no judged positive in the corpus; they score 0 (counted in the means)")
        }
    }

    public func evaluate(model: BiEncoder, tokenizer: BertTokenizer, maxLength: Int) throws -> DevSetScores {
        let start = Date()
        let encoder = LiveBiEncoder(model: model, tokenizer: tokenizer, maxLength: maxLength, similarity: similarity, batchSize: batchSize)
        let embeddings = try encoder.encodePassages(corpus.passages)
        let result = try embeddings.withUnsafeBufferPointer { passages in
            try Evaluation.run(encoder: encoder, passages: passages, ids: corpus.ids, dimension: encoder.dimension,
                               similarity: similarity, set: set, ks: ks, search: ExactSearch(selectionThreads: model.threads))
        }
        return DevSetScores(metrics: result.metrics.flat, queries: result.metrics.questions,
                            queriesWithoutJudgedPositive: result.metrics.queriesWithoutJudgedPositive,
                            seconds: Date().timeIntervalSince(start))
    }
}

/// The bi-encoder being trained, as a `PassageEncoder` (dropout off; the weights as they are now).
struct LiveBiEncoder: PassageEncoder {
    /// Encodes questions with the question encoder and passages with the context encoder.
    let text: TextEncoder
    let similarity: SimilarityFunction
    var dimension: Int { text.model.context.outputDim }
    var modelName: String { "the model in training" }
    var fingerprint: String { "live" }

    init(model: BiEncoder, tokenizer: BertTokenizer, maxLength: Int, similarity: SimilarityFunction, batchSize: Int) {
        text = TextEncoder(model: model, tokenizer: tokenizer, maxLength: maxLength, batchSize: batchSize)
        self.similarity = similarity
    }

    func encodePassages(_ passages: [Passage]) throws -> [Float] {
        try text.encode(passages.map(EncodingInput.init(passage:))).flatMap { $0 }
    }

    func encodeQuestions(_ questions: [String]) throws -> [Float] {
        try text.encode(questions.map { .question($0) }).flatMap { $0 }
    }
}
