import Collectives
import Data
import Foundation
import JobContracts
import Model
import Worker

/// `srdpr bench train-real`: the training engine on a configuration's real batches. The model,
/// optimizer and schedule are built as `srdpr train` builds them (``WorkerSetup``), the batches
/// are the ones `train` (and `srdpr dump-batches`) would consume, in schedule order, and every
/// update is a real ``TrainingWorker/step(_:batches:)``: forward and backward of both encoders,
/// the pipeline's loss, clipping and AdamW. The batches are tokenized before the clock starts, so
/// the time is the step alone. Reports real (non-padding) and padded tokens per second overall and
/// per pipeline, to compare with Benchmarks/train_real_anchor.py on the same batches.
public enum TrainRealBench {
    public struct Options {
        /// `srdpr train`'s key=value parameters.
        public var parameters: [String] = []
        /// Timed updates, after the warm-up.
        public var steps = 8
        /// Untimed updates first (nil: until every pipeline of train_mode has run once).
        public var warmupSteps: Int?
        public var threads = 2
        public init() {}
    }

    /// Parameters that would make the bench do something else than time steps (resume, evaluate,
    /// write checkpoints or logs): refused rather than accepted and ignored.
    static let refusedKeys = ["model_file", "resume", "eval", "eval_every", "keep_best", "output_dir", "log_dir",
                              "overwrite_output_dir", "checkpoint_file_name", "keep_checkpoint_max",
                              "save_checkpoint_freq", "log_batch_step"]

    static func refusedKey(_ argument: String) -> String? {
        let key = String(argument.prefix { $0 != "=" })
        if refusedKeys.contains(where: { key == $0 || key.hasPrefix($0 + ".") }) { return key }
        if key.hasPrefix("pipeline."), key.hasSuffix(".logging_step") { return key }
        return nil
    }

    /// The updates until every pipeline of the schedule has run once (one cycle of pos, pos, poshard, hard).
    static func defaultWarmup(_ schedule: PipelineSchedule) -> Int {
        var seen = Set<PipelineKind>(), step = 0
        while seen.count < Set(schedule.pipelines).count {
            seen.insert(schedule.pipeline(atStep: step))
            step += 1
        }
        return step
    }

    /// Token counts of one update, the way the original computes them: `real` counts the attention
    /// mask's ones of every tensor, `padded` every cell of every tensor (each padded to its longest row).
    public static func tokenCounts(_ batches: [Batch]) -> (real: Int, padded: Int) {
        var real = 0, padded = 0
        for batch in batches {
            for m in [batch.questions] + batch.contextParts {
                real += m.mask.reduce(0) { $0 + Int($1) }
                padded += m.rows * m.columns
            }
        }
        return (real, padded)
    }

    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    static func rounded(_ x: Double, _ places: Double = 10_000) -> Double { (x * places).rounded() / places }

    public static func run(_ o: Options, warn: @escaping (String) -> Void) throws -> [String: Any] {
        guard o.steps > 0, o.threads > 0, (o.warmupSteps ?? 0) >= 0 else {
            throw ConfigError.invalid(key: "--steps/--threads/--warmup-steps", reason: "steps and threads must be positive, warm-up not negative")
        }
        if let key = o.parameters.lazy.compactMap(refusedKey).first {
            throw ConfigError.invalid(key: key, reason: "bench train-real only times updates from pretrained_model_cfg: it resumes "
                + "nothing and writes no checkpoints, logs or evaluations; drop this parameter")
        }
        let (parsed, warnings) = try TrainingConfig.parse(o.parameters)
        warnings.forEach(warn)
        let loadStart = Date()
        let setup = try WorkerSetup(config: parsed, threads: o.threads,
                                    communicator: InProcessCommunicator(globalLossBufferSize: parsed.globalLossBufferSize),
                                    resume: nil, warn: warn)
        let config = setup.config  // max_length capped to the model's positions, as train does
        let plan = try TrainingBatches(config: config, tokenizer: setup.tokenizer)
        let warmup = o.warmupSteps ?? defaultWarmup(plan.schedule)
        // Tokenized up front: the clock measures the step, not the data pipeline.
        let updates = try (0..<(warmup + o.steps)).map { try plan.batches(forStep: $0) }
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let worker = setup.worker

        var loadBefore = [Double](repeating: 0, count: 3)
        _ = getloadavg(&loadBefore, 3)
        var times: [Double] = [], userCPU: [Double] = [], pageFaults: [Int] = [], losses: [Double] = [], norms: [Double] = []
        for (step, update) in updates.enumerated() {
            let start = DispatchTime.now().uptimeNanoseconds, cpu0 = TrainStepBench.cpuSeconds()
            let faults0 = TrainStepBench.minorPageFaults()
            let result = try worker.step(step, batches: update.batches)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, cpu1 = TrainStepBench.cpuSeconds()
            let faults = TrainStepBench.minorPageFaults() - faults0
            let counts = tokenCounts(update.batches)
            FileHandle.standardError.write(Data(("[train-real] step \(step) \(update.pipeline.rawValue)\(step < warmup ? " (warmup)" : "") "
                + String(format: "%.3fs", seconds) + " real=\(counts.real) padded=\(counts.padded) loss=\(result.loss) gnorm=\(result.gradientNorm) page_faults=\(faults)\n").utf8))
            losses.append(Double(result.loss))
            norms.append(Double(result.gradientNorm))
            if step >= warmup {
                times.append(seconds)
                userCPU.append(rounded(cpu1.user - cpu0.user, 1000))
                pageFaults.append(faults)
            }
        }
        var loadAfter = [Double](repeating: 0, count: 3)
        _ = getloadavg(&loadAfter, 3)

        let timed = Array(updates[warmup...])
        let counts = timed.map { tokenCounts($0.batches) }
        var perPipeline: [String: Any] = [:], stepsPerPipeline: [String: Int] = [:]
        for kind in plan.schedule.pipelines {
            let steps = timed.indices.filter { timed[$0].pipeline == kind }
            stepsPerPipeline[kind.rawValue] = steps.count
            let seconds = steps.reduce(0.0) { $0 + times[$1] }
            let real = steps.reduce(0) { $0 + counts[$1].real }, padded = steps.reduce(0) { $0 + counts[$1].padded }
            perPipeline[kind.rawValue] = [
                "steps": steps.count, "real_tokens": real, "padded_tokens": padded,
                "median_step_s": rounded(median(steps.map { times[$0] })),
                "real_tokens_per_s": seconds > 0 ? rounded(Double(real) / seconds, 10) : 0,
                "padded_tokens_per_s": seconds > 0 ? rounded(Double(padded) / seconds, 10) : 0,
            ] as [String: Any]
        }
        let total = times.reduce(0, +)
        let real = counts.reduce(0) { $0 + $1.real }, padded = counts.reduce(0) { $0 + $1.padded }
        let c = setup.bertConfig
        return [
            "bench": "srdpr_train_real", "ok": true,
            "model": setup.modelDirectory.path, "hidden": c.hiddenSize, "layers": c.numLayers,
            "train_mode": config.trainMode, "regulate_factor": config.regulateFactor, "max_length": config.maxLength,
            "pooling": config.pooling.rawValue, "sim_func": config.simFunc.rawValue, "dropout": config.dropout,
            "threads": o.threads, "warmup_steps": warmup, "steps": o.steps,
            "steps_per_pipeline": stepsPerPipeline,
            "pipelines": perPipeline,
            "step_pipelines": timed.map { $0.pipeline.rawValue },
            "real_tokens_per_step": counts.map(\.real), "padded_tokens_per_step": counts.map(\.padded),
            "real_tokens": real, "padded_tokens": padded,
            "padding_fraction": padded > 0 ? rounded(1 - Double(real) / Double(padded)) : 0,
            "real_tokens_per_s": total > 0 ? rounded(Double(real) / total, 10) : 0,
            "padded_tokens_per_s": total > 0 ? rounded(Double(padded) / total, 10) : 0,
            "median_step_s": rounded(median(times)), "total_s": rounded(total),
            "step_times_s": times.map { rounded($0) }, "step_user_cpu_s": userCPU,
            "step_page_faults": pageFaults, "median_step_page_faults": Int(median(pageFaults.map(Double.init))),
            "losses": losses, "grad_norms": norms,
            "peak_rss_mb": rounded(TrainStepBench.peakRSSMegabytes(), 10), "load_s": rounded(loadSeconds, 100),
            "openblas_core": BLASKernels.coreName, "openblas_chosen_by": BLASCoreChoice.chosenBy,
            "loadavg_before": loadBefore, "loadavg_after": loadAfter,
        ]
    }
}
