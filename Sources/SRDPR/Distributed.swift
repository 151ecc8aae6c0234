import ArgumentParser
import Collectives
import Coordinator
import Data
import Foundation
import Model
import Retrieval
import Worker

/// `srdpr coordinator --world-size N --bind tcp://HOST:PORT KEY=VALUE...`
struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Coordinate a multi-node training job (start one, then `srdpr worker` on every node).",
        discussion: """
            Takes the training parameters of `srdpr train` (KEY=VALUE, --config FILE.yaml), waits for \
            --world-size workers, sends each its shard of every global batch, logs like `train` (log_dir) \
            and has rank 0 write the checkpoints (output_dir on rank 0's host). The shared secret comes from \
            --secret-file or SRDPR_SECRET; workers that cannot prove it are refused.
            """)

    @Argument(help: "Hydra-style key=value training parameters.")
    var parameters: [String] = []
    @Option(help: "YAML file of parameters; key=value arguments override it.")
    var config: String?
    @Option(name: .customLong("world-size"), help: "Number of workers (ranks 0..N-1).")
    var worldSize: Int
    @Option(help: "Control address to listen on, tcp://HOST:PORT (the workers' --coordinator).")
    var bind: String
    @OptionGroup var security: SecurityOptions
    @Option(name: .customLong("heartbeat-timeout"), help: "Seconds of silence after which a process counts as lost.")
    var heartbeatTimeout: Double = 30
    @Option(name: .customLong("join-timeout"), help: "Seconds to wait for every worker to register.")
    var joinTimeout: Double = 600

    func run() throws {
        let all = try (config.map { try ConfigFile.parameters(yamlFile: $0) } ?? []) + parameters
        let (parsed, warnings) = try TrainingConfig.parse(all)
        for warning in warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        let (trainingConfig, _) = try OutputDirectoryPolicy.resolveResume(parsed, parameters: [])
        var options = RemoteWorkers.Options(bind: bind, worldSize: worldSize, secret: try security.secret())
        options.curve = security.curve
        options.heartbeatTimeout = heartbeatTimeout
        options.joinTimeout = joinTimeout
        let loop = TrainingLoop(config: trainingConfig, executor: try RemoteWorkers(options: options))
        InterruptFlag.install()
        let summary: TrainingSummary
        do { summary = try loop.run() } catch { throw secondInterruptExit(error) }
        if let checkpoint = summary.checkpoint { print("checkpoint: \(checkpoint.path)") }
        print("logs: \(summary.logDir.path)")
        if summary.interrupted { throw ExitCode(130) }
    }
}

/// `srdpr worker [--rank R] --coordinator tcp://HOST:PORT [--bind-host ADDR]`
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run one rank of a multi-node training job.",
        discussion: """
            Connects to the coordinator, receives the configuration and the ring addresses, and trains on \
            the shards it is sent, reading the samples from this host's copy of the ByteDatasets (the same \
            paths as the coordinator's parameters) and the model from pretrained_model_cfg. Without --rank, \
            the rank and world size come from the launcher's environment: OMPI_COMM_WORLD_RANK/SIZE \
            (mpirun), PMI_RANK/SIZE, SLURM_PROCID/SLURM_NTASKS (srun) or RANK/WORLD_SIZE, the first set.
            """)

    @Option(help: "This worker's rank (0..world size-1); default: from the launcher's environment.")
    var rank: Int?
    @Option(help: "The coordinator's control address, tcp://HOST:PORT.")
    var coordinator: String
    @Option(name: .customLong("bind-host"), help: """
        Address of this host the other workers reach (the ring socket binds it); auto: the address this \
        host reaches the coordinator from (one command line for every rank, e.g. under mpirun).
        """)
    var bindHost: String = "127.0.0.1"
    @Option(name: .customLong("ring-port"), help: "Ring port (default: a free one).")
    var ringPort: Int?
    @Option(name: .customLong("ring-transport"), help: """
        auto: a ring neighbour on this host (same kernel and network namespace) connects over a Unix socket \
        instead of TCP and passes payloads through shared memory (/dev/shm); tcp: TCP only.
        """)
    var ringTransport: RingTransport = .auto
    @OptionGroup var security: SecurityOptions
    @OptionGroup var process: WorkerProcessOptions

    func run() throws {
        try process.validate()
        let (resolvedRank, launcherWorldSize) = try launcherRank(given: rank, command: "worker")
        var options = WorkerAgent.Options(coordinator: coordinator, rank: resolvedRank, secret: try security.secret())
        options.launcherWorldSize = launcherWorldSize
        options.bindHost = bindHost
        options.ringPort = ringPort
        options.ringTransport = ringTransport
        options.curve = security.curve
        options.threads = process.threads
        options.heartbeatTimeout = process.heartbeatTimeout
        // Ctrl-C goes to the coordinator, which checkpoints and stops every worker; SIGTERM waits for it.
        TerminationSignal.install()
        let agent = WorkerAgent(options: options)
        agent.makeDevSetEvaluator = { [agent] config in
            try DevSetEvaluator(config: config, warn: { agent.print("rank 0: warning: \($0)") })
        }
        let code = try agent.run()
        if code != 0 { throw ExitCode(code) }
    }
}

/// A worker's rank: `--rank`, else its launcher's environment (``LaunchEnvironment``, which is
/// said on stderr as `COMMAND: rank R from VARIABLE ...`), with the launcher's world size if set.
func launcherRank(given rank: Int?, command: String) throws -> (rank: Int, launcherWorldSize: (size: Int, variable: String)?) {
    if let rank { return (rank, nil) }
    let launch = try LaunchEnvironment.resolve(ProcessInfo.processInfo.environment)
    FileHandle.standardError.write(Data("\(command): \(launch.description)\n".utf8))
    return (launch.rank, launch.worldSize.map { ($0, launch.convention.worldVariable) })
}

/// The shared secret of a job: `--secret-file` or the SRDPR_SECRET environment variable (never a
/// command-line value, which `ps` would show).
struct SecurityOptions: ParsableArguments {
    @Option(name: .customLong("secret-file"), help: "File holding the job's shared secret, at least 16 bytes, readable by its owner only (else SRDPR_SECRET).")
    var secretFile: String?
    @Flag(help: "Encrypt the control channel and the ring with CURVE (keys derived from the secret).")
    var curve = false

    func secret() throws -> [UInt8] {
        if let secretFile { return try SharedSecret.load(file: secretFile) }
        if let value = ProcessInfo.processInfo.environment["SRDPR_SECRET"], !value.isEmpty {
            return try SharedSecret.validate(Array(value.utf8), source: "SRDPR_SECRET")
        }
        throw CLIError("no shared secret: pass --secret-file FILE or set SRDPR_SECRET (the same on every process of the job)")
    }
}

extension RingTransport: ExpressibleByArgument {}

/// After a second Ctrl-C, the error (which names the last checkpoint) is printed and the exit
/// status is 130, as for any process ended by SIGINT; other errors pass through.
func secondInterruptExit(_ error: Error) -> Error {
    guard InterruptFlag.raised >= 2 else { return error }
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    return ExitCode(130)
}
