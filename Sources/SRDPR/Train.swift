import ArgumentParser
import Collectives
import Coordinator
import Data
import Foundation
import Model
import Yams

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
        let fromFile = try config.map(Self.yamlParameters) ?? []
        let (parsed, warnings) = try TrainingConfig.parse(fromFile + parameters)
        for warning in warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        let (trainingConfig, resolvedParameters) = try OutputDirectoryPolicy.resolveResume(parsed, parameters: fromFile + parameters)
        if workers > 1 {
            try LocalJob.run(config: trainingConfig, parameters: resolvedParameters, workers: workers, threads: threads,
                             heartbeatTimeout: heartbeatTimeout, ringTransport: ringTransport)
            return
        }
        let trainer = Trainer(config: trainingConfig, threads: threads)
        InterruptFlag.install()
        let summary = try trainer.run()
        if let checkpoint = summary.checkpoint { print("checkpoint: \(checkpoint.path)") }
        print("logs: \(summary.logDir.path) (TensorBoard: tensorboard --logdir \(summary.logDir.path); metrics.jsonl)")
        if summary.interrupted { throw ExitCode(130) }
    }

    /// The parameters of a YAML file as key=value strings (nested mappings become dotted keys).
    static func yamlParameters(_ path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CLIError("--config \(path): cannot read the file (missing or not UTF-8)")
        }
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch {
            throw CLIError("--config \(path): not valid YAML: \(error)")
        }
        guard let root else { return [] }
        guard let mapping = root as? [String: Any] else {
            throw CLIError("--config \(path): the top level must be a mapping of parameter names to values")
        }
        var out: [String] = []
        func scalar(_ v: Any, key: String) throws -> String {
            switch v {
            case let b as Bool: return b ? "true" : "false"
            case let n as Int: return String(n)
            case let d as Double: return String(d)
            case let s as String: return s
            case let list as [Any]: return "[" + (try list.map { try scalar($0, key: key) }).joined(separator: ",") + "]"
            case is NSNull: return "null"
            default: throw CLIError("--config \(path): \(key) has a value of unsupported type (\(type(of: v)))")
            }
        }
        func walk(_ node: [String: Any], prefix: String) throws {
            for key in node.keys.sorted() {
                let value = node[key]!
                let full = prefix.isEmpty ? key : prefix + "." + key
                if let child = value as? [String: Any] { try walk(child, prefix: full) } else {
                    // An unset optional (YAML null or ~) keeps the default.
                    if value is NSNull { continue }
                    out.append("\(full)=\(try scalar(value, key: full))")
                }
            }
        }
        try walk(mapping, prefix: "")
        return out
    }
}
