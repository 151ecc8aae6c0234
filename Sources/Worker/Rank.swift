import Data
import Foundation
import JobContracts
import Model

/// One rank of a job once set up: its worker and its own copy of the datasets. Runs the updates
/// and writes the checkpoints the training loop orders, the same way in process and on a remote
/// worker (``InProcessExecutor``, ``WorkerAgent``).
public final class Rank {
    public let setup: WorkerSetup
    public let batches: TrainingBatches
    /// Fault injection only (cluster/faults, tests): a pause inside every step, so that a kill lands mid-step.
    var faultDelayMilliseconds: UInt32 = 0
    /// The dev-set round of `eval.*` (the single process or rank 0 of a job with a dev set).
    public let devSet: DevSetRound?

    public init(setup: WorkerSetup, devSet: DevSetRound? = nil) throws {
        self.setup = setup
        self.devSet = devSet
        batches = try TrainingBatches(config: setup.config, tokenizer: setup.tokenizer)
    }

    /// Materialises this rank's shards of update `step` and runs the update. `fingerprint` adds the
    /// hash of the batches' tokens to the report.
    public func step(_ step: Int, plans: [BatchPlan], fingerprint: Bool = false) throws -> ControlMessage.StepReport {
        let worker = setup.worker
        let t0 = DispatchTime.now().uptimeNanoseconds
        let shards = try batches.materialize(plans)
        let t1 = DispatchTime.now().uptimeNanoseconds
        if faultDelayMilliseconds > 0 { usleep(faultDelayMilliseconds * 1000) }
        let result = try worker.step(step, batches: shards)
        let t2 = DispatchTime.now().uptimeNanoseconds
        return ControlMessage.StepReport(
            rank: worker.communicator.rank, step: step, loss: result.loss, gradientNorm: result.gradientNorm,
            learningRate: result.learningRate, tokens: result.tokens, fetchSeconds: Double(t1 - t0) / 1e9,
            computeSeconds: Double(t2 - t1) / 1e9, communicationSeconds: worker.lastCommunicationWait,
            gatherSeconds: worker.lastGatherWait, batchHash: fingerprint ? shards.fingerprint : nil)
    }

    /// Writes the checkpoint of `state` into output_dir (rank 0's job).
    public func checkpoint(_ state: TrainerState) throws -> URL {
        guard let output = setup.config.outputDir else {
            throw TrainerError.missingParameter(key: "output_dir", reason: "checkpoints are written there")
        }
        let directory = CheckpointDirectory(directory: URL(fileURLWithPath: output), prefix: setup.config.checkpointFileName)
        return try setup.worker.saveCheckpoint(in: directory, state: state, config: setup.config, files: setup.modelFiles)
    }

    /// Evaluates the dev set with the current weights after update `state.step`.
    public func evaluate(_ state: TrainerState, checkpoint: String?) throws -> DevSetReport {
        guard let devSet else {
            throw TrainerError.missingParameter(key: "eval.*", reason: "this rank has no dev set to evaluate (only the single process or rank 0 of a job with a dev set evaluates)")
        }
        return try devSet.run(step: state.step, worker: setup.worker, tokenizer: setup.tokenizer, maxLength: setup.config.maxLength,
                              state: state, config: setup.config, files: setup.modelFiles,
                              checkpointOfStep: checkpoint.map { URL(fileURLWithPath: $0) })
    }

    /// The dev-set round of a job's configuration on the process that holds the weights: nil
    /// without `eval.*`; an error when there is a dev set but no evaluator.
    public static func devSetRound(config: TrainingConfig, evaluator: DevSetEvaluating?, resuming: Bool,
                                   warn: (String) -> Void) throws -> DevSetRound? {
        let checkpoints = CheckpointDirectory(directory: URL(fileURLWithPath: config.outputDir ?? "."), prefix: config.checkpointFileName)
        return try DevSetRound.make(config: config, evaluator: evaluator, checkpoints: checkpoints, resuming: resuming, warn: warn)
    }
}
