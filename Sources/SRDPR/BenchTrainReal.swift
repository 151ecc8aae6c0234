import ArgumentParser
import Benchmarks
import Foundation

/// `srdpr bench train-real KEY=VALUE...`: the training engine's throughput on a configuration's real batches.
struct BenchTrainReal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-real",
        abstract: "Training throughput on the real batches of a configuration (one JSON line).",
        discussion: """
            Takes `srdpr train`'s key=value parameters (pretrained_model_cfg, train_mode, bytedataset.*, \
            pipeline.*, max_length, ...), builds the model and the batches as train does (the same batches \
            `srdpr dump-batches` prints), runs --warmup-steps untimed updates and then --steps timed ones, \
            and reports real (non-padding) and padded tokens per second, overall and per pipeline, the \
            median step time and the peak RSS. Benchmarks/bench-train-real.sh compares it with PyTorch on the same batches.
            """)

    @Argument(help: "Hydra-style key=value parameters, as for `srdpr train`.")
    var parameters: [String] = []
    @Option(help: "Timed updates (after the warm-up).") var steps = 8
    @Option(name: .customLong("warmup-steps"), help: "Untimed updates first (default: until every pipeline of train_mode has run once).")
    var warmupSteps: Int?
    @Option(help: "Threads (OpenBLAS and the other loops).") var threads = 2

    func run() throws {
        guard steps > 0 else { throw ValidationError("--steps must be positive, got \(steps)") }
        guard threads > 0 else { throw ValidationError("--threads must be positive, got \(threads)") }
        if let warmupSteps, warmupSteps < 0 { throw ValidationError("--warmup-steps must not be negative, got \(warmupSteps)") }
        var o = TrainRealBench.Options()
        (o.parameters, o.steps, o.warmupSteps, o.threads) = (parameters, steps, warmupSteps, threads)
        BenchOutput.printJSONLine(try TrainRealBench.run(o, warn: { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }))
    }
}
