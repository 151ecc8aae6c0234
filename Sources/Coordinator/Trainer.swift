import Collectives
import Data
import Foundation
import Model
import Worker

/// Errors that stop `srdpr train` before or during training; each names the parameter, file or step.
public enum TrainerError: Error, CustomStringConvertible, Equatable {
    case missingParameter(key: String, reason: String)
    case notWritable(key: String, path: String, reason: String)
    case missingDataset(key: String, path: String, reason: String)
    case pretrainedModel(path: String, reason: String)
    case incompatibleCheckpoint(path: String, reason: String)
    case stopped(reason: String, lastCheckpoint: String?)

    public var description: String {
        switch self {
        case let .missingParameter(key, reason): return "\(key) is required: \(reason)"
        case let .notWritable(key, path, reason): return "\(key)=\(path) is not writable: \(reason)"
        case let .missingDataset(key, path, reason): return "\(key)=\(path): \(reason)"
        case let .pretrainedModel(path, reason): return "pretrained_model_cfg=\(path): \(reason)"
        case let .incompatibleCheckpoint(path, reason): return "model_file=\(path) cannot be resumed: \(reason)"
        case let .stopped(reason, last):
            return "training stopped: \(reason). "
                + (last.map { "The last good checkpoint is \($0) (resume with model_file=\($0))." } ?? "No checkpoint was written.")
        }
    }
}

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

/// Ctrl-C handling: the first SIGINT asks the loop to checkpoint and stop after the current step;
/// a second one exits at once.
public enum InterruptFlag {
    nonisolated(unsafe) public static var raised: sig_atomic_t = 0

    public static func install() {
        signal(SIGINT) { _ in
            if InterruptFlag.raised != 0 { _exit(130) }
            InterruptFlag.raised = 1
        }
    }
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
    public var showProgress: Bool = isatty(STDOUT_FILENO) != 0

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

    /// Runs training to total_updates (or until SIGINT). Throws `TrainerError.stopped` on a NaN loss.
    public func run() throws -> TrainingSummary {
        var config = self.config
        guard let output = config.outputDir else {
            throw TrainerError.missingParameter(key: "output_dir", reason: "checkpoints are written there")
        }
        guard let pretrained = config.pretrainedModelCfg else {
            throw TrainerError.missingParameter(key: "pretrained_model_cfg",
                                                reason: "the directory of a Hugging Face BERT model (config.json, vocab.txt, weights)")
        }
        try config.validate()
        try config.requireDatasetPaths()
        try Self.requireDatasets(config)
        let outputDir = try Self.requireWritableDirectory(output, key: "output_dir")
        let logDir = try Self.requireWritableDirectory(config.logDir, key: "log_dir")

        // Model configuration and tokenizer from pretrained_model_cfg.
        let modelDir = URL(fileURLWithPath: pretrained)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: modelDir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TrainerError.pretrainedModel(path: pretrained,
                reason: "not a local directory; srdpr does not download models: fetch it first "
                    + "(e.g. `huggingface-cli download \(pretrained) --local-dir DIR`) and pass DIR")
        }
        let vocabURL = modelDir.appendingPathComponent("vocab.txt")
        let tokenizer = try BertTokenizer(vocabFile: vocabURL, doLowerCase: config.doLowerCase)
        let bertConfig = try BertConfig.load(modelDir.appendingPathComponent("config.json"))
        if config.maxLength > bertConfig.maxPositions {
            print("warning: max_length=\(config.maxLength) exceeds the model's max_position_embeddings \(bertConfig.maxPositions); using \(bertConfig.maxPositions)")
            config.maxLength = bertConfig.maxPositions
        }
        let batches = try TrainingBatches(config: config, tokenizer: tokenizer)

        // Model, optimizer, schedule: from the pretrained weights, or from model_file.
        let seed = UInt64(truncatingIfNeeded: config.seed)
        let resumeFile = try config.modelFile.map { path -> CheckpointFile in
            try CheckpointFile(url: URL(fileURLWithPath: path))
        }
        var previous: TrainerState? = nil
        let model: BiEncoder
        if let file = resumeFile {
            let state = try file.json(TrainingCheckpoint.stateSection, as: TrainerState.self)
            let saved = try TrainingCheckpoint.modelConfig(file)
            guard saved == bertConfig else {
                throw TrainerError.incompatibleCheckpoint(path: file.path,
                    reason: "its BERT configuration differs from pretrained_model_cfg=\(pretrained)'s config.json")
            }
            guard state.projectionDim == config.projectionDim else {
                throw TrainerError.incompatibleCheckpoint(path: file.path,
                    reason: "it has projection_dim=\(state.projectionDim), the configuration says \(config.projectionDim)")
            }
            model = BiEncoder(config: bertConfig, projectionDim: config.projectionDim, fixContextEncoder: config.fixCtxEncoder,
                              seed: state.dropoutSeed)
            previous = state
        } else {
            model = try BiEncoder.load(directory: modelDir, projectionDim: config.projectionDim,
                                       fixContextEncoder: config.fixCtxEncoder, seed: seed)
        }
        model.setDropout(Float(config.dropout))
        BLASThreads.set(threads)
        model.threads = threads
        let fixed = config.fixCtxEncoder
        let groups = ParameterGroup.standardGroups(layout: model.layout, weightDecay: config.weightDecay,
                                                   isFrozen: { fixed && $0.name.hasPrefix("ctx_model.") })
        let betas = config.adamBetas.count == 2 ? (config.adamBetas[0], config.adamBetas[1]) : (0.9, 0.999)
        let optimizer = AdamW(parameterCount: model.layout.totalCount, groups: groups, betas: betas, eps: config.adamEps)
        let schedule = LinearWarmupSchedule(baseLearningRate: config.learningRate, warmupSteps: config.warmupSteps,
                                            totalUpdates: config.totalUpdates)
        let settings = StepSettings(
            similarity: Model.SimilarityFunction(rawValue: config.simFunc.rawValue) ?? .dotProduct,
            lossScale: Float(config.lossScale), maxGradNorm: Float(config.maxGradNorm),
            questionChunkSize: config.gradCache ? config.qChunkSize : nil,
            contextChunkSize: config.gradCache ? config.ctxChunkSize : nil,
            globalLossBufferSize: config.globalLossBufSz)
        let worker = TrainingWorker(model: model, optimizer: optimizer, schedule: schedule,
                                    communicator: InProcessCommunicator(), settings: settings)

        var startStep = 0
        var history: [PipelineKind: [Float]] = [:]
        if let file = resumeFile, let state = previous {
            try worker.restoreState(from: file)
            var states: [PipelineKind: PipelineState] = [:]
            for (name, s) in state.pipelines {
                guard let kind = PipelineKind(rawValue: name) else {
                    throw TrainerError.incompatibleCheckpoint(path: file.path, reason: "unknown pipeline '\(name)' in its state")
                }
                guard batches.pipelines[kind] != nil else {
                    throw TrainerError.incompatibleCheckpoint(path: file.path,
                        reason: "it has a state for the \(name) pipeline, which train_mode=\(config.trainMode) does not include")
                }
                states[kind] = s
            }
            try batches.restore(states)
            for (name, losses) in state.lossHistory { if let k = PipelineKind(rawValue: name) { history[k] = losses } }
            startStep = state.step
            print("resumed from \(file.path) at step \(startStep)")
        }

        // Checkpoint files carry the tokenizer so that `srdpr export` is self-contained.
        let modelConfigBytes = try JSONSerialization.data(withJSONObject: bertConfig.jsonObject(), options: [.sortedKeys])
        let vocabBytes = try Foundation.Data(contentsOf: vocabURL)
        let tokenizerConfigBytes = try? Foundation.Data(contentsOf: modelDir.appendingPathComponent("tokenizer_config.json"))
        let checkpoints = CheckpointDirectory(directory: outputDir, prefix: config.checkpointFileName)
        var lastCheckpoint: URL? = try checkpoints.latest()?.url
        let runConfig = config
        func saveCheckpoint(step: Int) throws -> URL {
            let state = TrainerState(
                step: step, pipelines: Dictionary(uniqueKeysWithValues: batches.states.map { ($0.key.rawValue, $0.value) }),
                lossHistory: Dictionary(uniqueKeysWithValues: history.map { ($0.key.rawValue, $0.value) }),
                dropoutSeed: model.seed, schedule: schedule, projectionDim: runConfig.projectionDim)
            var writer = CheckpointWriter()
            try worker.addState(to: &writer)
            try writer.addJSON(TrainingCheckpoint.stateSection, state)
            try writer.addJSON(TrainingCheckpoint.configSection, runConfig)
            try writer.addBytes(TrainingCheckpoint.modelConfigSection, Array(modelConfigBytes))
            try writer.addBytes(TrainingCheckpoint.vocabSection, Array(vocabBytes))
            if let tokenizerConfigBytes { try writer.addBytes(TrainingCheckpoint.tokenizerConfigSection, Array(tokenizerConfigBytes)) }
            let url = try checkpoints.save(writer, step: step, keep: runConfig.keepCheckpointMax)
            lastCheckpoint = url
            return url
        }

        let metrics = try MetricsLog(logDir: logDir)
        let tensorBoard = try TensorBoardWriter(logDir: logDir)
        defer { metrics.close(); tensorBoard.close() }
        let progress = ProgressReporter(total: config.totalUpdates, start: startStep, terminal: showProgress, print: print)
        print("training \(config.trainMode) from step \(startStep) to \(config.totalUpdates); checkpoints in \(outputDir.path), logs in \(logDir.path)")

        var step = startStep
        while step < config.totalUpdates {
            if InterruptFlag.raised != 0 {
                let url = try saveCheckpoint(step: step)
                progress.finish()
                print("interrupted: checkpoint \(url.path) written at step \(step); resume with model_file=\(url.path)")
                return TrainingSummary(step: step, checkpoint: url, logDir: logDir, interrupted: true)
            }
            let t0 = Date()
            let (kind, stepBatches) = try batches.batches(forStep: step)
            let t1 = Date()
            let result: StepResult
            do {
                result = try worker.step(step, batches: stepBatches)
            } catch let error as WorkerError {
                progress.finish()
                try? metrics.log(step: step + 1, ["pipeline": .string(kind.rawValue), "error": .string(error.description)])
                throw TrainerError.stopped(reason: error.description, lastCheckpoint: lastCheckpoint?.path)
            }
            let t2 = Date()
            history[kind, default: []].append(result.loss)
            let done = step + 1

            let ids = stepBatches.flatMap(\.sampleIDs).map(String.init).joined(separator: ",")
            try metrics.log(step: done, [
                "pipeline": .string(kind.rawValue), "loss": .double(Double(result.loss)),
                "learning_rate": .double(result.learningRate), "grad_norm": .double(Double(result.gradientNorm)),
                "tokens": .int(result.tokens), "fetch_seconds": .double(t1.timeIntervalSince(t0)),
                "compute_seconds": .double(t2.timeIntervalSince(t1)), "batch_sample_ids": .string(ids),
                "batch_hash": .string(Self.fingerprint(stepBatches)),
            ])
            try tensorBoard.addScalar("learning_rate", Float(result.learningRate), step: done)
            let losses = history[kind] ?? []
            let every = config.pipeline.common(kind).loggingStep
            if losses.count % every == 0 {
                let window = losses.suffix(every)
                try tensorBoard.addScalar("\(kind.rawValue)/loss", window.reduce(0, +) / Float(window.count), step: done)
            }
            progress.update(step: done, pipeline: kind.rawValue, loss: result.loss, tokens: result.tokens,
                            seconds: t2.timeIntervalSince(t0))
            if done % config.logBatchStep == 0 {
                let others = schedulePipelines(batches).filter { $0 != kind }.compactMap { k in
                    history[k]?.last.map { "\(k.rawValue) \(Self.format($0))" }
                }
                progress.line("step \(done)/\(config.totalUpdates) \(kind.rawValue) loss \(Self.format(result.loss))"
                    + (others.isEmpty ? "" : " (last: " + others.joined(separator: ", ") + ")")
                    + " lr \(String(format: "%.3g", result.learningRate))"
                    + " fetch \(String(format: "%.3f", t1.timeIntervalSince(t0)))s compute \(String(format: "%.3f", t2.timeIntervalSince(t1)))s")
            }
            if done % config.saveCheckpointFreq == 0 || done == config.totalUpdates {
                let url = try saveCheckpoint(step: done)
                progress.line("checkpoint \(url.path)")
            }
            step = done
        }
        progress.finish()
        try tensorBoard.flush()
        return TrainingSummary(step: step, checkpoint: lastCheckpoint, logDir: logDir, interrupted: false)
    }

    func schedulePipelines(_ batches: TrainingBatches) -> [PipelineKind] { batches.schedule.pipelines }

    static func format(_ loss: Float) -> String { String(format: "%.4f", loss) }

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
