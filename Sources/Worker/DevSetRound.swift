import Data
import Foundation
import Model

/// What one dev evaluation reports, from the process holding the weights (the single process or
/// rank 0) to whoever writes the logs.
public struct DevSetReport: Codable, Equatable, Sendable {
    /// Updates done when it ran.
    public var step: Int
    public var scores: DevSetScores
    /// keep_best's effect, when set.
    public var best: BestCheckpointKeeper.Outcome?
}

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

    /// Whether the dev set is evaluated after update `done` (1-based): every eval_every updates and
    /// at total_updates; never without a dev set.
    public static func isDue(afterUpdate done: Int, config: TrainingConfig) -> Bool {
        guard config.eval != nil else { return false }
        if done == config.totalUpdates { return true }
        guard let every = config.evalEvery, every > 0 else { return false }
        return done % every == 0
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
