import ArgumentParser
import Collectives
import Coordinator
import Data
import Foundation
import Model
import Retrieval
import Worker

/// `srdpr train KEY=VALUE... [--config FILE.yaml]`: the original's `train_srdpr.py` on CPUs.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train an SR-DPR bi-encoder (single node).",
        discussion: """
            Takes the original's Hydra-style parameters verbatim, e.g. train_mode=pos \
            pipeline.pos.forward_batch_size=8 bytedataset.pos=DIR pretrained_model_cfg=DIR output_dir=DIR. \
            --config FILE.yaml gives parameters as (nested) YAML; key=value arguments override it; every run \
            writes the configuration it used to log_dir/config.yaml, which --config reads back. \
            An output_dir with an earlier run's checkpoints is refused unless the run resumes \
            (model_file=CHECKPOINT, or resume=latest) or says overwrite_output_dir=true. \
            Ctrl-C writes a checkpoint and exits; a second Ctrl-C exits at once without one.

            """ + TrainingConfig.parameterReference())

    @Argument(help: "Hydra-style key=value parameters.")
    var parameters: [String] = []

    @Option(help: "YAML file of parameters (nested mappings or dotted keys); key=value arguments override it.")
    var config: String?

    @Option(help: "Threads for OpenBLAS and the other loops (split among the workers with --workers).")
    var threads: Int = BLASThreads.defaultCount

    @Option(help: "Worker processes on this machine (1: train in this process; N > 1: a coordinator here and N `srdpr worker` processes on loopback).")
    var workers: Int = 1

    @Option(name: .customLong("heartbeat-timeout"), help: "With --workers N > 1: seconds of silence after which a process counts as lost.")
    var heartbeatTimeout: Double = 30

    @Option(name: .customLong("ring-transport"), help: "With --workers N > 1: auto (Unix sockets and shared memory between the local workers) or tcp (loopback TCP).")
    var ringTransport: RingTransport = .auto

    func run() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        let fromFile = try config.map { try ConfigFile.parameters(yamlFile: $0) } ?? []
        let (parsed, warnings) = try TrainingConfig.parse(fromFile + parameters)
        for warning in warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        // resume=latest becomes model_file= here, once: the typed configuration every rank receives names the file.
        let (trainingConfig, _) = try OutputDirectoryPolicy.resolveResume(parsed, parameters: [])
        // The dev set is read now: a bad file stops the run before any training.
        let devSetEvaluator = try trainingConfig.eval.map { _ in
            try DevSetEvaluator(config: trainingConfig, warn: { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) })
        }
        InterruptFlag.install()
        let summary: TrainingSummary
        var failedWorker: Int32?
        if workers > 1 {
            let executable = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0])
            do {
                (summary, failedWorker) = try LocalJob.run(config: trainingConfig, workers: workers, threads: threads,
                                                           heartbeatTimeout: heartbeatTimeout, ringTransport: ringTransport,
                                                           executable: executable)
            } catch { throw secondInterruptExit(error) }
        } else {
            let executor = InProcessExecutor(threads: threads)
            executor.devSetEvaluator = devSetEvaluator
            summary = try TrainingLoop(config: trainingConfig, executor: executor).run()
        }
        if let checkpoint = summary.checkpoint { print("checkpoint: \(checkpoint.path)") }
        print("logs: \(summary.logDir.path) (TensorBoard: tensorboard --logdir \(summary.logDir.path); metrics.jsonl)")
        if summary.interrupted { throw ExitCode(130) }
        if let failedWorker { throw CLIError("a worker exited with status \(failedWorker)") }
    }
}
