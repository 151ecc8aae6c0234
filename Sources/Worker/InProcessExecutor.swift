import Collectives
import Data
import Foundation
import JobContracts
import Model

/// The training loop's ``StepExecutor`` for a job of one rank (`srdpr train`): the same ``Rank``
/// a remote worker runs, over an in-process communicator that enforces global_loss_buf_sz as the
/// ring does, materialising its shard (the whole batch) from its own copy of the datasets.
public final class InProcessExecutor: StepExecutor {
    public let threads: Int
    /// Where warnings of the model set-up go.
    public var print: (String) -> Void = { Swift.print($0); fflush(stdout) }
    public private(set) var rank: Rank?
    /// Evaluates the dev set of `eval.*` (required when the configuration has one).
    public var devSetEvaluator: DevSetEvaluating?

    public init(threads: Int) {
        self.threads = threads
    }

    public var worldSize: Int { 1 }

    public func start(_ job: JobStart) throws {
        let resume = try job.resume ? job.config.modelFile.map { try CheckpointFile(url: URL(fileURLWithPath: $0)) } : nil
        let setup = try WorkerSetup(config: job.config, threads: threads,
                                    communicator: InProcessCommunicator(globalLossBufferSize: job.config.globalLossBufferSize),
                                    resume: resume, dropoutSeed: job.dropoutSeed, warn: print)
        let devSet = try Rank.devSetRound(config: job.config, evaluator: devSetEvaluator, resuming: job.resume, warn: print)
        rank = try Rank(setup: setup, devSet: devSet)
    }

    public func execute(step: Int, shards: [[BatchPlan]], lastCheckpoint: String?) throws -> [ControlMessage.StepReport] {
        [try started().step(step, plans: shards[0], fingerprint: true)]
    }

    public func checkpoint(_ state: TrainerState) throws -> String {
        try started().checkpoint(state).path
    }

    public func evaluate(_ state: TrainerState, checkpoint: String?) throws -> DevSetReport {
        try started().evaluate(state, checkpoint: checkpoint)
    }

    public func stop(code: Int32, reason: String, lastCheckpoint: String?) {}

    private func started() throws -> Rank {
        guard let rank else { throw WorkerAgentError.setup("the in-process executor was not started") }
        return rank
    }
}
