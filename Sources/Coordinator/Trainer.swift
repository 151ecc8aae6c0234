import Collectives
import Data
import Foundation
import Model
import Worker

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

/// Ctrl-C and SIGTERM (what `scancel`, a batch system's time limit or `kill` send) handling: the
/// first one asks the loop to checkpoint and stop after the current step; a second one exits at
/// once (``SecondInterrupt``).
public enum InterruptFlag {
    /// 0: none; 1: a first SIGINT or SIGTERM; 2: a second one.
    nonisolated(unsafe) public static var raised: sig_atomic_t = 0
    /// The first signal received (SIGINT or SIGTERM), for messages.
    nonisolated(unsafe) public static var firstSignal: sig_atomic_t = 0

    public static func install() {
        SecondInterrupt.prepare()
        for number in [SIGINT, SIGTERM] {
            signal(number) { received in
                let first = InterruptFlag.raised == 0
                if first { InterruptFlag.firstSignal = received }
                InterruptFlag.raised = first ? 1 : 2
                SecondInterrupt.handle(first: first)
            }
        }
    }

    /// "Ctrl-C" or "SIGTERM", for messages.
    public static var cause: String { firstSignal == SIGTERM ? "SIGTERM" : "Ctrl-C" }
}

/// The single-node training loop (SPEC §4–§7): the schedule of pipelines, one `TrainingWorker`
/// update per step over an in-process communicator, logs (stdout, metrics.jsonl, TensorBoard),
/// checkpoints every save_checkpoint_freq updates and at the end, resume from `model_file`.
public final class Trainer {
    public let config: TrainingConfig
    public let threads: Int
    /// Where log lines go (stdout by default).
    public var print: (String) -> Void = { Swift.print($0); fflush(stdout) }
    /// Progress bar on a terminal; plain lines otherwise.
    public var showProgress: Bool = isatty(STDERR_FILENO) != 0

    public init(config: TrainingConfig, threads: Int = 2) {
        self.config = config
        self.threads = threads
    }

    /// Creates `path` if needed and checks a file can be created in it.
    static func requireWritableDirectory(_ path: String, key: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw TrainerError.notWritable(key: key, path: path, reason: "it is a file, not a directory")
        }
        do { try fm.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            // Name the obstacle: the nearest existing ancestor.
            var ancestor = url.deletingLastPathComponent()
            while !fm.fileExists(atPath: ancestor.path, isDirectory: &isDirectory), ancestor.path != "/" {
                ancestor = ancestor.deletingLastPathComponent()
            }
            let why = isDirectory.boolValue ? "cannot create the directory inside \(ancestor.path) (permission denied?)"
                : "\(ancestor.path) is a file, so the directory cannot be created"
            throw TrainerError.notWritable(key: key, path: path, reason: why)
        }
        let probe = url.appendingPathComponent(".srdpr-write-test-\(getpid())")
        guard fm.createFile(atPath: probe.path, contents: Foundation.Data("ok".utf8)) else {
            throw TrainerError.notWritable(key: key, path: path, reason: "cannot create files in it (permission denied?)")
        }
        try? fm.removeItem(at: probe)
        return url
    }

    /// Checks that the ByteDataset of every pipeline of train_mode is a directory with its two files.
    static func requireDatasets(_ config: TrainingConfig) throws {
        var paths: [(String, String?)] = []
        for kind in try config.pipelines() {
            switch kind {
            case .inbatch: paths.append(("bytedataset.inbatch", config.bytedataset.inbatch))
            case .pos: paths.append(("bytedataset.pos", config.bytedataset.pos))
            case .poshard: paths.append(("bytedataset.poshard", config.bytedataset.poshard))
            case .hard:
                paths.append(("bytedataset.hard.hardneg", config.bytedataset.hard.hardneg))
                if config.pipeline.hard.useRandneg { paths.append(("bytedataset.hard.randneg", config.bytedataset.hard.randneg)) }
            }
        }
        for case let (key, path?) in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw TrainerError.missingDataset(key: key, path: path,
                    reason: "no such directory (train_mode=\(config.trainMode) needs it); create it with `srdpr create-dataset`")
            }
            for file in ["idxs.pkl", "data.pkl"] where !FileManager.default.fileExists(atPath: path + "/" + file) {
                throw TrainerError.missingDataset(key: key, path: path,
                    reason: "the directory has no \(file); a ByteDataset holds idxs.pkl and data.pkl (made by `srdpr create-dataset`)")
            }
        }
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

    /// Checks what a run needs before anything heavy happens: every required parameter set (all
    /// missing ones named at once), the configuration valid, every dataset of train_mode present
    /// (and with hard negatives where needed), output_dir and log_dir writable, then applies
    /// `OutputDirectoryPolicy` (refuse / overwrite an earlier run's checkpoints, move its logs aside).
    /// Returns (output_dir, log_dir).
    static func checkRun(_ config: TrainingConfig, print: (String) -> Void = { Swift.print($0); fflush(stdout) }) throws
        -> (output: URL, logs: URL) {
        try config.requireParameters()
        try config.validate()
        try requireDatasets(config)
        try HardNegativeCoverage.check(config, warn: { FileHandle.standardError.write(Foundation.Data(($0 + "\n").utf8)) })
        let output = try requireWritableDirectory(config.outputDir!, key: "output_dir")
        let logs = try requireWritableDirectory(config.logDir, key: "log_dir")
        try OutputDirectoryPolicy.prepare(config, outputDir: output, logDir: logs, print: print)
        return (output, logs)
    }

    /// Runs training to total_updates (or until SIGINT). Throws `TrainerError.stopped` on a NaN loss.
    public func run() throws -> TrainingSummary {
        let (outputDir, logDir) = try Self.checkRun(self.config)
        let resumeFile = try self.config.modelFile.map { try CheckpointFile(url: URL(fileURLWithPath: $0)) }
        let setup = try WorkerSetup(config: self.config, threads: threads, communicator: InProcessCommunicator(),
                                    resume: resumeFile, warn: print)
        let config = setup.config
        let worker = setup.worker
        let batches = try TrainingBatches(config: config, tokenizer: setup.tokenizer)
        let (startStep, history) = try Self.restore(batches, from: setup.resumedState, path: resumeFile?.path, trainMode: config.trainMode)
        if let file = resumeFile { print("resumed from \(file.path) at step \(startStep)") }

        let checkpoints = CheckpointDirectory(directory: outputDir, prefix: config.checkpointFileName)
        var lastCheckpoint: URL? = try checkpoints.latest()?.url { didSet { SecondInterrupt.noteCheckpoint(lastCheckpoint?.path) } }
        SecondInterrupt.noteCheckpoint(lastCheckpoint?.path)
        let log = try TrainingLog(config: config, pipelines: batches.schedule.pipelines, logDir: logDir, history: history,
                                  startStep: startStep, terminal: showProgress, print: print)
        defer { try? log.close() }
        func saveCheckpoint(step: Int) throws -> URL {
            let state = TrainerState(
                step: step, pipelines: Dictionary(uniqueKeysWithValues: batches.states.map { ($0.key.rawValue, $0.value) }),
                lossHistory: log.historyByName, dropoutSeed: worker.model.seed, schedule: worker.schedule,
                projectionDim: config.projectionDim)
            let url = try worker.saveCheckpoint(in: checkpoints, state: state, config: config, files: setup.modelFiles)
            lastCheckpoint = url
            return url
        }
        print("training \(config.trainMode) from step \(startStep) to \(config.totalUpdates); checkpoints in \(outputDir.path), logs in \(logDir.path)")

        var step = startStep
        while step < config.totalUpdates {
            if InterruptFlag.raised != 0 {
                let url = try saveCheckpoint(step: step)
                log.progress.finish()
                print("interrupted (\(InterruptFlag.cause)): checkpoint \(url.path) written at step \(step); resume with model_file=\(url.path)")
                return TrainingSummary(step: step, checkpoint: url, logDir: logDir, interrupted: true)
            }
            let t0 = Date()
            let (kind, stepBatches) = try batches.batches(forStep: step)
            let t1 = Date()
            let result: StepResult
            do {
                result = try worker.step(step, batches: stepBatches)
            } catch let error as WorkerError {
                log.recordFailure(done: step + 1, kind: kind, error: error.description)
                throw TrainerError.stopped(reason: error.description, lastCheckpoint: lastCheckpoint?.path)
            }
            let t2 = Date()
            let done = step + 1
            let ids = stepBatches.flatMap(\.sampleIDs).map(String.init).joined(separator: ",")
            try log.record(done: done, kind: kind, result: result, fetchSeconds: t1.timeIntervalSince(t0),
                           computeSeconds: t2.timeIntervalSince(t1),
                           extra: ["batch_sample_ids": .string(ids), "batch_hash": .string(Self.fingerprint(stepBatches))])
            if done % config.saveCheckpointFreq == 0 || done == config.totalUpdates {
                let url = try saveCheckpoint(step: done)
                log.checkpointWritten(url.path)
            }
            step = done
        }
        try log.close()
        return TrainingSummary(step: step, checkpoint: lastCheckpoint, logDir: logDir, interrupted: false)
    }

    /// FNV-1a over every token id and mask value of the step's batches: equal hashes mean equal batches.
    public static func fingerprint(_ batches: [Batch]) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func eat(_ v: Int32) { h = (h ^ UInt64(UInt32(bitPattern: v))) &* 0x0000_0100_0000_01B3 }
        for b in batches {
            for m in [b.questions, b.positiveContexts, b.negativeContexts, b.hardnegContexts, b.contexts].compactMap({ $0 }) {
                eat(Int32(m.rows)); eat(Int32(m.columns))
                m.ids.forEach(eat); m.mask.forEach(eat)
            }
            for id in b.sampleIDs { eat(Int32(truncatingIfNeeded: id)) }
            b.duplicateMask?.forEach(eat); b.hardnegMask?.forEach(eat); b.inbatchMask?.forEach { eat($0 ? 1 : 0) }
        }
        return String(h, radix: 16)
    }
}
