import Data
import Foundation
import JobContracts

/// What the training loop reports after each update (SPEC §7), the same for `srdpr train` and a
/// multi-node coordinator: a metrics.jsonl line, TensorBoard scalars (`learning_rate` every step,
/// `{pipeline}/loss` every logging_step updates of that pipeline), the progress bar, and a log
/// line every log_batch_step steps. It also keeps each pipeline's loss history for checkpoints.
final class TrainingLog {
    let config: TrainingConfig
    let pipelines: [PipelineKind]
    private(set) var history: [PipelineKind: [Float]]
    let metrics: MetricsLog
    let tensorBoard: TensorBoardWriter
    let progress: ProgressBar
    private let print: (String) -> Void

    init(config: TrainingConfig, pipelines: [PipelineKind], logDir: URL, history: [PipelineKind: [Float]], startStep: Int,
         terminal: Bool, print: @escaping (String) -> Void) throws {
        self.config = config
        self.pipelines = pipelines
        self.history = history
        metrics = try MetricsLog(logDir: logDir)
        tensorBoard = try TensorBoardWriter(logDir: logDir)
        try RunConfigurationFile.write(config, to: logDir)
        progress = ProgressBar(label: "step", total: config.totalUpdates, unit: "updates", rateUnit: "tok", start: startStep,
                               terminal: terminal, plainLines: false)
        self.print = print
    }

    /// The loss history by `train_mode` name, as checkpoints store it.
    var historyByName: [String: [Float]] { Dictionary(uniqueKeysWithValues: history.map { ($0.key.rawValue, $0.value) }) }

    /// Records update `done` (1-based) of pipeline `kind`. `extra` adds fields to the metrics line
    /// (sample ids, batch hash, communication time...).
    func record(done: Int, kind: PipelineKind, result: StepResult, fetchSeconds: Double, computeSeconds: Double,
                extra: [String: MetricValue] = [:], timing: String = "") throws {
        history[kind, default: []].append(result.loss)
        var fields: [String: MetricValue] = [
            "pipeline": .string(kind.rawValue), "loss": .double(Double(result.loss)),
            "learning_rate": .double(result.learningRate), "grad_norm": .double(Double(result.gradientNorm)),
            "tokens": .int(result.tokens), "fetch_seconds": .double(fetchSeconds), "compute_seconds": .double(computeSeconds),
        ]
        fields.merge(extra) { _, new in new }
        try metrics.log(step: done, fields)
        try tensorBoard.addScalar("learning_rate", Float(result.learningRate), step: done)
        let losses = history[kind] ?? []
        let every = config.pipeline.common(kind).loggingStep
        if losses.count % every == 0 {
            let window = losses.suffix(every)
            try tensorBoard.addScalar("\(kind.rawValue)/loss", window.reduce(0, +) / Float(window.count), step: done)
        }
        progress.update(done: done, work: result.tokens, status: "\(kind.rawValue) loss \(Self.format(result.loss))")
        if done % config.logBatchStep == 0 {
            let others = pipelines.filter { $0 != kind }.compactMap { k in history[k]?.last.map { "\(k.rawValue) \(Self.format($0))" } }
            line("step \(done)/\(config.totalUpdates) \(kind.rawValue) loss \(Self.format(result.loss))"
                + (others.isEmpty ? "" : " (last: " + others.joined(separator: ", ") + ")")
                + " lr \(String(format: "%.3g", result.learningRate))"
                + " fetch \(String(format: "%.3f", fetchSeconds))s compute \(String(format: "%.3f", computeSeconds))s" + timing)
        }
    }

    /// A log line, above the progress bar.
    func line(_ text: String) { progress.line(text, print: print) }

    /// Says that a checkpoint was written, with its size when this host sees the file (a
    /// MiniLM checkpoint is ~540 MB: two encoders and AdamW's two moments).
    func checkpointWritten(_ path: String) {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        line("checkpoint \(path)" + (size.map { String(format: " (%.1f MB; at most %d kept)", Double($0) / 1_048_576, config.keepCheckpointMax) } ?? ""))
    }

    /// A metrics line for a step that failed (the error, no loss).
    func recordFailure(done: Int, kind: PipelineKind, error: String) {
        progress.finish()
        try? metrics.log(step: done, ["pipeline": .string(kind.rawValue), "error": .string(error)])
    }

    private var closed = false

    /// Flushes and closes the logs (again: nothing).
    func close() throws {
        guard !closed else { return }
        closed = true
        progress.finish()
        try tensorBoard.flush()
        metrics.close()
        tensorBoard.close()
    }

    static func format(_ loss: Float) -> String { String(format: "%.4f", loss) }
}
