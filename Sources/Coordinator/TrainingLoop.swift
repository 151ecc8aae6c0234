import Data
import Foundation
import JobContracts
import Model

/// How a run ended.
public struct TrainingSummary: Sendable {
    /// Updates done in total (including those before a resume).
    public var step: Int
    /// The last checkpoint written, if any.
    public var checkpoint: URL?
    public var logDir: URL
    /// True when SIGINT stopped the run (after writing a checkpoint).
    public var interrupted: Bool
}

/// The training loop of every world size (SPEC §4–§7, DESIGN.md): the schedule of pipelines,
/// restore from `model_file`, one update per step planned here, cut into one shard per rank and
/// run by a ``StepExecutor`` (in this process, or on remote workers), logs (stdout, metrics.jsonl,
/// TensorBoard), checkpoints every save_checkpoint_freq updates and at the end, Ctrl-C and
/// non-finite losses. A single process is a job of one rank: plan -> shard -> materialise as N ranks.
public final class TrainingLoop {
    public let config: TrainingConfig
    public let executor: StepExecutor
    /// Where log lines go (stdout by default).
    public var print: (String) -> Void = { Swift.print($0); fflush(stdout) }
    /// Progress bar on a terminal; plain lines otherwise.
    public var showProgress: Bool = isatty(STDERR_FILENO) != 0
    /// Polled before every step: true checkpoints and stops (Ctrl-C by default).
    public var isInterrupted: () -> Bool = { InterruptFlag.raised != 0 }
    /// Opens a dataset path (`bytedataset.*`) for planning.
    public var openDataset: (String) throws -> any SampleSource = { try ByteDataset(directory: $0) }

    public init(config: TrainingConfig, executor: StepExecutor) {
        self.config = config
        self.executor = executor
    }

    /// Runs the job to total_updates (or until interrupted). Throws `TrainerError.stopped`, naming
    /// the cause and the last checkpoint, when a step fails (a non-finite loss, a lost rank).
    public func run() throws -> TrainingSummary {
        let (outputDir, logDir) = try RunChecks.check(self.config, print: print)
        let resumeState = try self.config.modelFile.map { try TrainingCheckpoint.state(at: $0) }
        let world = executor.worldSize
        let model = ModelDescription(config: self.config, needsTokenizer: world > 1, print: print)
        // max_length is capped here, once: the plans and every rank's tokenizer use the same value.
        var config = self.config
        if let bert = model.bertConfig {
            let (capped, warning) = config.cappingMaxLength(to: bert)
            config = capped
            if let warning { print(warning) }
        }
        let batches = try TrainingBatches(config: config, tokenizer: model.tokenizer, open: openDataset)
        let (startStep, history) = try Self.restore(batches, from: resumeState, path: config.modelFile, trainMode: config.trainMode)
        // A second Ctrl-C names the newest checkpoint (SecondInterrupt keeps it for the signal handler).
        var lastCheckpoint = try CheckpointDirectory(directory: outputDir, prefix: config.checkpointFileName).latest()?.url.path {
            didSet { SecondInterrupt.noteCheckpoint(lastCheckpoint) }
        }
        SecondInterrupt.noteCheckpoint(lastCheckpoint)
        let dropoutSeed = resumeState?.dropoutSeed ?? UInt64(truncatingIfNeeded: config.seed)
        let schedule = LinearWarmupSchedule(baseLearningRate: config.learningRate, warmupSteps: config.warmupSteps,
                                            totalUpdates: config.totalUpdates)
        var step = startStep
        var running: PipelineKind?
        var log: TrainingLog?
        defer { try? log?.close() }
        do {
            try executor.start(JobStart(config: config, dropoutSeed: dropoutSeed, resume: resumeState != nil))
            if resumeState != nil { print("resumed from \(config.modelFile ?? "") at step \(startStep)") }
            print(world == 1
                ? "training \(config.trainMode) from step \(startStep) to \(config.totalUpdates); checkpoints in \(outputDir.path), logs in \(logDir.path)"
                : "training \(config.trainMode) on \(world) worker(s) from step \(startStep) to \(config.totalUpdates); "
                    + "checkpoints by rank 0 in \(outputDir.path), logs in \(logDir.path)")
            let stepLog = try TrainingLog(config: config, pipelines: batches.schedule.pipelines, logDir: logDir, history: history,
                                          startStep: startStep, terminal: showProgress, print: print)
            log = stepLog
            func state(step: Int) -> TrainerState {
                TrainerState(
                    step: step, pipelines: Dictionary(uniqueKeysWithValues: batches.states.map { ($0.key.rawValue, $0.value) }),
                    lossHistory: stepLog.historyByName, dropoutSeed: dropoutSeed, schedule: schedule, projectionDim: config.projectionDim)
            }
            func checkpoint(step: Int) throws -> String {
                let path = try executor.checkpoint(state(step: step))
                lastCheckpoint = path
                return path
            }

            while step < config.totalUpdates {
                if isInterrupted() {
                    let path = try checkpoint(step: step)
                    stepLog.progress.finish()
                    print("interrupted (\(InterruptFlag.cause)): checkpoint \(path) written at step \(step); resume with model_file=\(path)")
                    executor.stop(code: 130, reason: "interrupted (\(InterruptFlag.cause)) at step \(step)", lastCheckpoint: lastCheckpoint)
                    return TrainingSummary(step: step, checkpoint: URL(fileURLWithPath: path), logDir: logDir, interrupted: true)
                }
                let t0 = Date()
                let (kind, plans) = try batches.plans(forStep: step)
                // Rows are dealt out by their exact token counts when there is more than one rank.
                let measured = world > 1 ? try batches.measure(plans) : plans
                let shards = (0..<world).map { rank in measured.map { $0.shard(rank: rank, worldSize: world, cost: model.rowCost) } }
                let planSeconds = Date().timeIntervalSince(t0)
                running = kind
                let reports = try executor.execute(step: step, shards: shards, lastCheckpoint: lastCheckpoint)
                running = nil
                let done = step + 1
                try record(reports, done: done, kind: kind, plans: plans, planSeconds: planSeconds, log: stepLog)
                var checkpointOfStep: String?
                if done % config.saveCheckpointFreq == 0 || done == config.totalUpdates {
                    let path = try checkpoint(step: done)
                    checkpointOfStep = path
                    stepLog.checkpointWritten(path)
                }
                if Self.isDevSetDue(afterUpdate: done, config: config) {
                    // The dev set is evaluated where the weights are (the single process or rank 0).
                    let start = Date()
                    let report = try executor.evaluate(state(step: done), checkpoint: checkpointOfStep)
                    try stepLog.recordEvaluation(report, wallSeconds: Date().timeIntervalSince(start))
                }
                step = done
            }
            try stepLog.close()
            executor.stop(code: 0, reason: "training finished at step \(step)", lastCheckpoint: lastCheckpoint)
            return TrainingSummary(step: step, checkpoint: lastCheckpoint.map { URL(fileURLWithPath: $0) }, logDir: logDir, interrupted: false)
        } catch let failure as TrainingFailure {
            let reason = failure.description
            if let kind = running { log?.recordFailure(done: step + 1, kind: kind, error: reason) }
            executor.stop(code: (failure as? CoordinatorError) == .interruptedTwice ? 130 : 1, reason: reason, lastCheckpoint: lastCheckpoint)
            throw TrainerError.stopped(reason: reason, lastCheckpoint: lastCheckpoint)
        } catch {
            executor.stop(code: 1, reason: "the coordinator failed: \(error)", lastCheckpoint: lastCheckpoint)
            throw error
        }
    }

    /// Logs update `done` from the ranks' reports (the loss, norm and learning rate are the same on
    /// every rank; tokens add up; a step takes as long as its slowest rank).
    private func record(_ reports: [ControlMessage.StepReport], done: Int, kind: PipelineKind, plans: [BatchPlan],
                        planSeconds: Double, log: TrainingLog) throws {
        let first = reports[0]
        let result = StepResult(loss: first.loss, gradientNorm: first.gradientNorm, learningRate: first.learningRate,
                                tokens: reports.reduce(0) { $0 + $1.tokens })
        let fetch = planSeconds + (reports.map(\.fetchSeconds).max() ?? 0)
        let compute = reports.map(\.computeSeconds).max() ?? 0
        var extra: [String: MetricValue] = ["batch_sample_ids": .string(plans.flatMap(\.sampleIDs).map(String.init).joined(separator: ","))]
        var timing = ""
        if reports.count == 1 {
            if let hash = first.batchHash { extra["batch_hash"] = .string(hash) }
        } else {
            let communication = reports.map(\.communicationSeconds)
            let waitFraction = zip(communication, reports.map(\.computeSeconds)).map { $1 > 0 ? $0 / $1 : 0 }
            extra["world_size"] = .int(reports.count)
            extra["communication_seconds"] = .string(communication.map { String(format: "%.4f", $0) }.joined(separator: ","))
            extra["gather_seconds"] = .string(reports.map { String(format: "%.4f", $0.gatherSeconds) }.joined(separator: ","))
            extra["communication_fraction"] = .double(waitFraction.max() ?? 0)
            extra["rank_losses"] = .string(reports.map { String($0.loss) }.joined(separator: ","))
            extra["rank_tokens"] = .string(reports.map { String($0.tokens) }.joined(separator: ","))
            extra["rank_compute_seconds"] = .string(reports.map { String(format: "%.4f", $0.computeSeconds) }.joined(separator: ","))
            timing = String(format: " comm %.0f%%", 100 * (waitFraction.max() ?? 0))
        }
        try log.record(done: done, kind: kind, result: result, fetchSeconds: fetch, computeSeconds: compute, extra: extra, timing: timing)
    }

    /// Whether the dev set is evaluated after update `done` (1-based): every eval_every updates and
    /// at total_updates; never without a dev set.
    static func isDevSetDue(afterUpdate done: Int, config: TrainingConfig) -> Bool {
        guard config.eval != nil else { return false }
        if done == config.totalUpdates { return true }
        guard let every = config.evalEvery, every > 0 else { return false }
        return done % every == 0
    }

    /// Restores the pipelines from a checkpoint's coordinator state; returns the step to start at
    /// and the loss history (step 0 and no history for a fresh run).
    static func restore(_ batches: TrainingBatches, from state: TrainerState?, path: String?,
                        trainMode: String) throws -> (step: Int, history: [PipelineKind: [Float]]) {
        guard let state else { return (0, [:]) }
        let path = path ?? "model_file"
        var states: [PipelineKind: PipelineState] = [:]
        for (name, s) in state.pipelines {
            guard let kind = PipelineKind(rawValue: name) else {
                throw TrainerError.incompatibleCheckpoint(path: path, reason: "unknown pipeline '\(name)' in its state")
            }
            guard batches.pipelines[kind] != nil else {
                throw TrainerError.incompatibleCheckpoint(path: path,
                    reason: "it has a state for the \(name) pipeline, which train_mode=\(trainMode) does not include")
            }
            states[kind] = s
        }
        try batches.restore(states)
        var history: [PipelineKind: [Float]] = [:]
        for (name, losses) in state.lossHistory { if let k = PipelineKind(rawValue: name) { history[k] = losses } }
        return (state.step, history)
    }
}

/// What the planner reads of pretrained_model_cfg when this host has it: the BERT configuration
/// (max_length cap, the ranks' row costs) and, for sharding among several ranks, the vocabulary
/// (rows are then dealt out by their exact token counts instead of estimated from the text's size).
struct ModelDescription {
    var bertConfig: BertConfig?
    var tokenizer: BertTokenizer?
    var rowCost: RowCost { bertConfig.map { RowCost(hiddenSize: $0.hiddenSize) } ?? RowCost() }

    init(config: TrainingConfig, needsTokenizer: Bool, print: (String) -> Void) {
        guard let directory = config.pretrainedModelCfg.map({ URL(fileURLWithPath: $0) }) else { return }
        bertConfig = try? BertConfig.load(directory.appendingPathComponent("config.json"))
        guard needsTokenizer else { return }
        let vocab = directory.appendingPathComponent("vocab.txt")
        do {
            tokenizer = try BertTokenizer(vocabFile: vocab, doLowerCase: config.doLowerCase)
        } catch {
            print("coordinator: cannot read \(vocab.path) (\(error)); ranks get rows by estimated lengths")
        }
    }
}
