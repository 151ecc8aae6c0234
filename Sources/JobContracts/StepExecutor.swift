import Data
import Foundation

/// What the training loop hands the ranks when the job starts: the configuration as every rank
/// uses it (validated, max_length capped) and how to start the model.
public struct JobStart: Sendable {
    public var config: TrainingConfig
    /// The dropout seed: the resumed checkpoint's, or the configuration's seed.
    public var dropoutSeed: UInt64
    /// Resume the weights and AdamW's state from `config.modelFile`.
    public var resume: Bool

    public init(config: TrainingConfig, dropoutSeed: UInt64, resume: Bool) {
        self.config = config
        self.dropoutSeed = dropoutSeed
        self.resume = resume
    }
}

/// Runs the optimizer updates the training loop plans, on the ranks of a job: in this process
/// (world size 1) or on remote workers. The loop decides what every step reads and when to
/// checkpoint; an executor only computes, reports and writes what rank 0 owns.
public protocol StepExecutor: AnyObject {
    var worldSize: Int { get }
    /// Loads the model on every rank (resuming weights and optimizer when `job.resume`) and
    /// returns once every rank can run steps.
    func start(_ job: JobStart) throws
    /// Runs update `step` (0-based); `shards[rank]` is that rank's shard of each of the update's
    /// batches. Returns one report per rank, in rank order. A failure of the step itself (NaN,
    /// a lost or failed rank) is thrown as a ``TrainingFailure``.
    func execute(step: Int, shards: [[BatchPlan]], lastCheckpoint: String?) throws -> [ControlMessage.StepReport]
    /// Has rank 0 write the checkpoint of `state`; returns its path.
    func checkpoint(_ state: TrainerState) throws -> String
    /// Has the process holding the weights (the single process or rank 0) evaluate the dev set of
    /// `eval.*` after update `state.step`; `checkpoint` is the one written at this step, if any
    /// (keep_best links it instead of writing another).
    func evaluate(_ state: TrainerState, checkpoint: String?) throws -> DevSetReport
    /// Ends the job: exit code 0 when training finished, else an abort with its reason.
    func stop(code: Int32, reason: String, lastCheckpoint: String?)
}

/// An error that stops training at a step (a non-finite loss, a failed or lost rank): the loop
/// logs it, stops the ranks and reports it with the last good checkpoint.
public protocol TrainingFailure: Error, CustomStringConvertible {}
