import Data

/// How the training loop asks for a dev-set evaluation of the bi-encoder it trains, without
/// knowing how retrieval is done: the single process or rank 0 holds an implementation
/// (Retrieval's `DevSetEvaluator`) and calls it every `eval_every` updates.
public protocol DevSetEvaluating: AnyObject {
    /// Encodes the dev corpus and queries with `model`'s current weights (dropout off), searches
    /// and scores the rankings.
    func evaluate(model: BiEncoder, tokenizer: BertTokenizer, maxLength: Int) throws -> DevSetScores
}

/// The summary of one dev evaluation, as logged and sent from rank 0 to the coordinator.
public struct DevSetScores: Codable, Equatable, Sendable {
    /// Every metric by flat name: `mrr@10`, `ndcg@10`, `top_k_accuracy@5`, `recall@20`, ...
    public var metrics: [String: Double]
    public var queries: Int
    public var queriesWithoutJudgedPositive: Int
    /// Wall time of the evaluation (encoding the corpus and the queries, search, scoring).
    public var seconds: Double

    public init(metrics: [String: Double], queries: Int, queriesWithoutJudgedPositive: Int, seconds: Double) {
        self.metrics = metrics
        self.queries = queries
        self.queriesWithoutJudgedPositive = queriesWithoutJudgedPositive
        self.seconds = seconds
    }
}
