import Data
import Foundation
import JobContracts
import Model

/// Evaluation during training on the process that holds the weights: every `eval_every` updates
/// and after the last one, evaluate the dev set with the live model, then offer the value of
/// `keep_best` to the keeper. The single-node loop and rank 0 of a multi-node job call the same.
public final class DevSetRound {
    public let evaluator: DevSetEvaluating
    public let keeper: BestCheckpointKeeper?

    public init(config: TrainingConfig, evaluator: DevSetEvaluating, checkpoints: CheckpointDirectory, resuming: Bool,
                warn: (String) -> Void) {
        self.evaluator = evaluator
        keeper = config.keepBest.map { BestCheckpointKeeper(metric: $0, directory: checkpoints, resuming: resuming, warn: warn) }
    }

    /// The round of a run: nil without a dev set; an error when the configuration has one but the
    /// caller gave no evaluator (the dev set would be silently skipped).
    public static func make(config: TrainingConfig, evaluator: DevSetEvaluating?, checkpoints: CheckpointDirectory,
                            resuming: Bool, warn: (String) -> Void) throws -> DevSetRound? {
        guard config.eval != nil else { return nil }
        guard let evaluator else {
            throw TrainerError.missingParameter(key: "eval.*", reason: "a dev set is configured, but this process was started without a dev-set evaluator")
        }
        return DevSetRound(config: config, evaluator: evaluator, checkpoints: checkpoints, resuming: resuming, warn: warn)
    }

    /// Evaluates `worker`'s current weights after update `step`; `checkpointOfStep` is the
    /// checkpoint written at this step if any (keep_best links it instead of writing another).
    public func run(step: Int, worker: TrainingWorker, tokenizer: BertTokenizer, maxLength: Int, state: TrainerState,
                    config: TrainingConfig, files: ModelFiles, checkpointOfStep: URL?) throws -> DevSetReport {
        let scores = try evaluator.evaluate(model: worker.model, tokenizer: tokenizer, maxLength: maxLength)
        var outcome: BestCheckpointKeeper.Outcome?
        if let keeper {
            guard let value = scores.metrics[keeper.metric] else {
                throw TrainerError.missingParameter(key: "keep_best", reason: "the evaluation has no metric \(keeper.metric)")
            }
            outcome = try keeper.offer(value: value, step: step, checkpointOfStep: checkpointOfStep) { url in
                try worker.checkpointWriter(state: state, config: config, files: files).write(to: url)
            }
        }
        return DevSetReport(step: step, scores: scores, best: outcome)
    }
}
